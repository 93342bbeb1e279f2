/*
 * Internal: this process's identity across fork(2), kept by one set of
 * pthread_atfork handlers for every module.
 *
 * mproc__self_pid() is getpid() without the system call: hot paths (a
 * pipe end's ownership check on every send) compare against it.  The fork
 * generation counts the forks this process and its ancestors made; a
 * handle records it at creation, so a later call can tell whether it runs
 * in the process that made the handle or in a forked copy that inherited
 * it, even when pids are reused.
 *
 * Modules with locks of their own to hold across fork register their own
 * handlers; these two words need no lock.
 */
#ifndef MPROC_COMMON_FORK_H
#define MPROC_COMMON_FORK_H

#include <stdatomic.h>
#include <stdint.h>

/* Set when the library is loaded (a constructor), then by the handlers. */
extern _Atomic int mproc__fork_self_pid;
extern _Atomic uint64_t mproc__fork_generation;

/* This process's pid (cached; refreshed in a forked child).  Relaxed: the
 * word is written before fork returns in the child, by the thread that
 * then runs, and never changes otherwise. */
static inline int mproc__self_pid(void)
{
	return atomic_load_explicit(&mproc__fork_self_pid,
				    memory_order_relaxed);
}

/* Forks made by this process and its ancestors so far.  Relaxed: bumped
 * only by this process's own forking thread, read by its later calls. */
static inline uint64_t mproc__fork_gen(void)
{
	return atomic_load_explicit(&mproc__fork_generation,
				    memory_order_relaxed);
}

#endif /* MPROC_COMMON_FORK_H */
