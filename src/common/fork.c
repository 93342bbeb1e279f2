/* This process's pid and fork generation, kept across fork (fork.h). */
#include <pthread.h>
#include <unistd.h>

#include "common/fork.h"

_Atomic int mproc__fork_self_pid;
_Atomic uint64_t mproc__fork_generation;

/* Relaxed throughout: both words are written by the forking thread (before
 * fork returns in the child) and read only by this same process. */
static void before_fork(void)
{
	atomic_fetch_add_explicit(&mproc__fork_generation, 1,
				  memory_order_relaxed);
}

static void in_child(void)
{
	atomic_store_explicit(&mproc__fork_self_pid, (int)getpid(),
			      memory_order_relaxed);
}

/* At load time, before any mproc call can run: the getters are then one
 * load each, with no pthread_once on the hot path. */
__attribute__((constructor)) static void fork_init(void)
{
	atomic_store_explicit(&mproc__fork_self_pid, (int)getpid(),
			      memory_order_relaxed);
	pthread_atfork(before_fork, NULL, in_child);
}
