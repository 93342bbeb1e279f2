/*
 * A start method as a table of operations.  fork (fork.c), spawn
 * (spawn.c) and forkserver (forkserver.c) each fill one; the contexts
 * (context.c) list them, mproc_main (main.c) finds the one whose
 * re-executed image it is running in, and process.c and children.c call
 * only through the table, so they never name a method.  State a method
 * must keep consistent across fork(2) is its own business: it registers
 * its own pthread_atfork handlers, as common/fork.h describes.
 */
#ifndef MPROC_PROCESS_METHOD_H
#define MPROC_PROCESS_METHOD_H

#include <stdint.h>

#include "process/core.h"

struct mproc__proc_method {
	/* "fork", "spawn", "forkserver": the public name. */
	const char *name;
	/* A stable number for the method in the start data (boot.c). */
	uint32_t id;
	/* argv[1] of an image that this method re-executes, or NULL if it
	 * never executes the program anew. */
	const char *exec_marker;
	/* Start the child of @p (p->lock held, p->method set): set p->pid,
	 * p->pidfd and, if the method has one, p->status_fd.  Returns 0, or
	 * a negative errno with nothing started. */
	int (*start)(mproc_process *p);
	/* Nonblocking check of the started child (p->lock held): returns 1
	 * when it is over (p->done, p->exitcode or p->exit_err recorded), 0
	 * while it runs, or a negative errno. */
	int (*poll_status)(mproc_process *p);
	/* In an image started with exec_marker, run by mproc_main with
	 * argv[2]; never returns.  NULL when exec_marker is NULL. */
	void (*exec_main)(const char *arg);
};

extern const struct mproc__proc_method mproc__proc_fork_method;
extern const struct mproc__proc_method mproc__proc_spawn_method;
extern const struct mproc__proc_method mproc__proc_forkserver_method;

#endif /* MPROC_PROCESS_METHOD_H */
