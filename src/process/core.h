/*
 * The process object that every file of the process module works on: its
 * fields, its states and its allocation.  This header is the bottom of the
 * module: it includes nothing else of the module, and the start methods,
 * the children list and the public calls all build on it.
 */
#ifndef MPROC_PROCESS_CORE_H
#define MPROC_PROCESS_CORE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "mproc/process.h"

/* The start method of a process (method.h); the object only points at it. */
struct mproc__proc_method;

/* Process object states. */
enum {
	MPROC__PROC_CREATED = 0,
	MPROC__PROC_STARTED = 1,
	MPROC__PROC_CLOSED = 2,
};

/* Longest identity chain ("Process-1:2:3..."): deeper children still work,
 * they just stop getting longer names. */
#define MPROC__PROC_IDENTITY_MAX 32

struct mproc_process {
	/* Serialises reaping (the one step two joining threads must not both
	 * do) and the state fields below it against each other. */
	pthread_mutex_t lock;
	int state;
	bool is_self;            /* the handle of the current process */
	bool is_parent;          /* a child's handle of its parent */
	const mproc_context *ctx;/* NULL: the default context at start */
	/* Fixed at start; NULL before, and in the main process's handle. */
	const struct mproc__proc_method *method;
	char *name;
	bool daemon;
	uint8_t authkey[MPROC_AUTHKEY_SIZE];
	uint32_t identity[MPROC__PROC_IDENTITY_MAX];
	uint32_t identity_len;

	/* The body: target(arg, len), or ops.run(self, arg, len). */
	mproc_target_fn target;
	int (*run)(mproc_process *self, void *state, size_t len);
	char *type_name;         /* NULL for the target form */
	void *arg;
	size_t len;

	/* The child, once started. */
	pid_t owner_pid;         /* the process that created the handle */
	pid_t pid;
	int pidfd;               /* signals; the sentinel unless status_fd */
	/* During start only: a pidfd of the starting process, which the
	 * child keeps as its parent's sentinel (mproc_parent_process). */
	int starter_pidfd;
	/* A start method's own status channel, -1 if it has none (only the
	 * forkserver has one: its per-child status socket).  When present it
	 * is the sentinel: it turns readable once the exit code is there. */
	int status_fd;
	/* The status channel broke before it reported (its sender died):
	 * the exit code is lost, and only the pidfd still tells the end. */
	bool status_lost;
	bool done;               /* reaped (or known to be gone) */
	int exitcode;
	int exit_err;            /* 0, or why exitcode is unknown */

	/* The list of started children (see children.c). */
	struct mproc_process *next, *prev;
	bool tracked;
	bool orphan;             /* freed by the user while running */
};

/* What a child knows of the process that started it. */
struct mproc__proc_parent {
	pid_t pid;
	char *name;  /* malloc'd, NULL if unknown */
	int pidfd;   /* a pidfd of it, -1 if none */
};

/* A bare handle: no name, no body, no descriptors.  NULL without memory. */
mproc_process *mproc__proc_alloc(void);
/* Close the handle's descriptors and free it and what it owns (NULL is
 * ignored).  The caller has taken it off the children list. */
void mproc__proc_release(mproc_process *p);

#endif /* MPROC_PROCESS_CORE_H */
