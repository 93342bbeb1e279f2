/*
 * Internal: the descriptors this process's mproc objects need in every
 * child, whatever the start method: the memfds of live anonymous segments
 * (shm) and the eventfds of pipes (pipe).  fork(2) inherits them by itself;
 * spawn (exec) and forkserver (a fork of another process) must pass them
 * on explicitly, at the same numbers, so that an exported token names the
 * same object in the child.  The process module reads the list.
 */
#ifndef MPROC_COMMON_FDREG_H
#define MPROC_COMMON_FDREG_H

#include <stddef.h>

/* Add @fd.  Returns 0, -EBADF for a negative @fd, or -ENOMEM.  The owner
 * removes it with mproc__fdreg_remove before closing it. */
int mproc__fdreg_add(int fd);
/* Remove @fd (no-op if absent). */
void mproc__fdreg_remove(int fd);
/* Copy up to @max descriptors into @fds; returns how many there are in
 * all (which may exceed @max: call again with a larger array). */
size_t mproc__fdreg_list(int *fds, size_t max);

#endif /* MPROC_COMMON_FDREG_H */
