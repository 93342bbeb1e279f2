/*
 * Internal: the descriptors of this process's live anonymous segments
 * (memfds), plus any other descriptor a module registers because its
 * objects need it in the child (the eventfds of pipes), for start methods
 * that exec (spawn) or fork from another process (forkserver) and so must
 * pass them on explicitly.
 */
#ifndef MPROC_SHM_REGISTRY_H
#define MPROC_SHM_REGISTRY_H

#include <stddef.h>

/* Add another descriptor that children started by spawn or forkserver
 * must receive at the same number, e.g. a pipe's eventfds, which are not
 * segments but belong to one.  Returns 0 or -ENOMEM.  The caller removes
 * it again with mproc__shm_unregister_fd before closing it. */
int mproc__shm_register_fd(int fd);
/* Remove a descriptor added by mproc__shm_register_fd (no-op if absent). */
void mproc__shm_unregister_fd(int fd);

/* Copy up to @max descriptors into @fds; returns how many there are in
 * all (which may exceed @max: call again with a larger array). */
size_t mproc__shm_inheritable_fds(int *fds, size_t max);

#endif
