/*
 * Internal: the descriptors of this process's live anonymous segments
 * (memfds), for start methods that exec (spawn) or fork from another
 * process (forkserver) and so must pass them on explicitly.
 */
#ifndef MPROC_SHM_REGISTRY_H
#define MPROC_SHM_REGISTRY_H

#include <stddef.h>

/* Copy up to @max descriptors into @fds; returns how many there are in
 * all (which may exceed @max: call again with a larger array). */
size_t mproc__shm_inheritable_fds(int *fds, size_t max);

#endif
