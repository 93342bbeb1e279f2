/*
 * Children watched through pidfds: open one for a child just created,
 * signal through it, and reap through it.  A pidfd names one process for
 * good, so none of these can hit a recycled pid, and waitid(P_PIDFD)
 * touches no other child of the caller.  Used by the parent side of every
 * start method, by the forkserver for its own children, and by the
 * children list.
 */
#ifndef MPROC_PROCESS_PIDFD_H
#define MPROC_PROCESS_PIDFD_H

#include <stdbool.h>
#include <sys/types.h>

#include "process/core.h"

/* A pidfd for @pid, a child that the caller just created and has not
 * reaped.  If none can be had, the child is killed and reaped (it must not
 * run unwatched) and the negative errno is returned. */
int mproc__proc_pidfd_for_child(pid_t pid);
/* Record @pid, a child of this process just created for @p, with a pidfd
 * for it in p->pid and p->pidfd.  Returns 0, or (the child killed and
 * reaped, as above) a negative errno. */
int mproc__proc_pidfd_adopt(mproc_process *p, pid_t pid);
/* Signalling and reaping through a pidfd are common/os.h's
 * (mproc__pidfd_signal, mproc__pidfd_reap). */
/* The poll_status of methods whose children are the caller's own (fork,
 * spawn): reap through p->pidfd.  p->lock held. */
int mproc__proc_reap_own_child(mproc_process *p);

#endif /* MPROC_PROCESS_PIDFD_H */
