/*
 * Internal interfaces of the process module: the process object, the
 * start methods (fork in process.c, spawn in spawn.c, forkserver in
 * forkserver.c), the start data handed to a fresh image (boot.c), function
 * pointer translation (fnref.c) and the current process's identity
 * (current.c).
 */
#ifndef MPROC_PROCESS_INTERNAL_H
#define MPROC_PROCESS_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "mproc/process.h"

enum mproc__method {
	MPROC__METHOD_NONE = 0,
	MPROC__METHOD_FORK = 1,
	MPROC__METHOD_SPAWN = 2,
	MPROC__METHOD_FORKSERVER = 3,
};

struct mproc_context {
	int method;
	const char *name;
};

/* Process object states. */
enum {
	MPROC__CREATED = 0,
	MPROC__STARTED = 1,
	MPROC__CLOSED = 2,
};

/* Longest identity chain ("Process-1:2:3..."): deeper children still work,
 * they just stop getting longer names. */
#define MPROC__IDENTITY_MAX 32

struct mproc_process {
	/* Serialises reaping (the one step two joining threads must not both
	 * do) and the state fields below it against each other. */
	pthread_mutex_t lock;
	int state;
	bool is_self;            /* the handle of the current process */
	const mproc_context *ctx;/* NULL: the default context at start */
	int method;              /* fixed at start */
	char *name;
	bool daemon;
	uint8_t authkey[MPROC_AUTHKEY_SIZE];
	uint32_t identity[MPROC__IDENTITY_MAX];
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
	int pidfd;               /* signals; the sentinel for fork/spawn */
	int status_fd;           /* forkserver: status socket (sentinel) */
	bool server_lost;        /* forkserver died before reporting */
	bool done;               /* reaped (or known to be gone) */
	int exitcode;
	int exit_err;            /* 0, or why exitcode is unknown */

	/* The list of started children (see process.c). */
	struct mproc_process *next, *prev;
	bool tracked;
	bool orphan;             /* freed by the user while running */
};

/* current.c ------------------------------------------------------------ */

/* The current process's handle (never NULL). */
mproc_process *mproc__current(void);
/* Make @self the current process: called in a child before the body. */
void mproc__become(mproc_process *self, pid_t parent_pid);
/* The next child identity of the current process. */
void mproc__next_identity(uint32_t *ids, uint32_t *len);
/* Nonzero if this image was started as a spawn child or forkserver but
 * main() has not called mproc_main (so start must refuse). */
bool mproc__spawned_without_main(void);
/* 0, or the getrandom error that left the main process without a key. */
int mproc__current_key_error(void);

/* context.c ------------------------------------------------------------ */

/* Resolve a context (NULL: the default, which gets fixed) to a method. */
int mproc__context_method(const mproc_context *ctx);
const char *mproc__method_name(int method);
/* The method of @ctx without fixing the default (NONE if not fixed). */
int mproc__context_method_peek(const mproc_context *ctx);

/* process.c ------------------------------------------------------------ */

/* Run the body of @self (the current process) and exit with its result,
 * after the same clean-up as at normal exit.  @use_exit selects exit(3)
 * (a fresh image: run its atexit handlers) over _exit(2) (a fork: do not
 * run the parent's). */
_Noreturn void mproc__child_run(mproc_process *self, bool use_exit);
/* Terminate daemon children, then join all children (the atexit work). */
void mproc__exit_cleanup(void);
/* Allocate a bare handle (used by boot.c for a child's self). */
mproc_process *mproc__process_alloc(void);
void mproc__process_release(mproc_process *p);

/* fnref.c -------------------------------------------------------------- */

/* A code address as (loaded object, offset), valid in another image of
 * the same program. */
struct mproc__fnref {
	bool is_main;            /* the main executable */
	char *path;              /* shared object path (NULL for main) */
	uint64_t offset;         /* from the object's load base */
	uint32_t build_id_len;   /* 0: the object has no build id */
	uint8_t build_id[64];
	char *symbol;            /* dynamic symbol at that address, or NULL */
};

/* Translate @fn.  Returns 0, -MPROC_ENOSYMBOL (not in the code of a
 * loaded object, or in one that a new image cannot load), -ENOMEM. */
int mproc__fnref_encode(const void *fn, struct mproc__fnref *out);
/* Translate back in this image (loading the object if needed) and check
 * that the address is code of the same object (build id, symbol).
 * Returns 0 and *fn, or -MPROC_ENOSYMBOL.  @why gets a message. */
int mproc__fnref_resolve(const struct mproc__fnref *ref, void **fn,
			 char *why, size_t why_len);
void mproc__fnref_clear(struct mproc__fnref *ref);

/* boot.c --------------------------------------------------------------- */

/* Write the start data of @p into a new memfd (close-on-exec), with the
 * numbers of the descriptors the child must have (@fds).  Returns the
 * memfd, -MPROC_ENOSYMBOL, -ENOMEM or an errno. */
int mproc__boot_write(const mproc_process *p, const int *fds, size_t nfds);
/* Read start data from @fd: a new handle for the child's self, and the
 * descriptor numbers (malloc'd).  Returns 0, -EPROTO (malformed),
 * -MPROC_ENOSYMBOL (the body does not resolve; @why says why), -ENOMEM. */
int mproc__boot_read(int fd, mproc_process **self, pid_t *parent_pid,
		     int **fds, size_t *nfds, char *why, size_t why_len);

/* spawn.c -------------------------------------------------------------- */

/* argv[1] markers of re-executed images. */
#define MPROC__ARG_SPAWN "--mproc-spawn"
#define MPROC__ARG_FORKSERVER "--mproc-forkserver"

/* posix_spawn /proc/self/exe with argv {argv0, @marker, "<passfd>"}; the
 * child keeps stdin/out/err, @passfd and @keep[] at their numbers and
 * nothing else.  Returns 0 and *pid, or a negative errno. */
int mproc__spawn_self(const char *marker, int passfd, const int *keep,
		      size_t nkeep, pid_t *pid);
/* Start @p with the spawn method. */
int mproc__spawn_start(mproc_process *p);
/* The anonymous segments' descriptors (malloc'd array). */
int mproc__inheritable_fds(int **fds, size_t *n);
/* Child side of mproc_main for the spawn marker. */
_Noreturn void mproc__spawn_child_main(const char *fdstr);

/* forkserver.c --------------------------------------------------------- */

int mproc__forkserver_start(mproc_process *p);
/* Nonblocking read of the exit report.  Returns 1 (recorded in @p), 0 (not
 * yet), or a negative errno. */
int mproc__forkserver_poll_status(mproc_process *p);
_Noreturn void mproc__forkserver_main(const char *fdstr);
/* The server's pid, or 0 if none is running (for tests). */
pid_t mproc__forkserver_pid(void);

/* atfork handlers of the forkserver client: 0 prepare, 1 parent, 2 child. */
void mproc__forkserver_atfork(int phase);

/* misc ------------------------------------------------------------------ */

/* In a new child: die with SIGKILL when @parent dies (PR_SET_PDEATHSIG),
 * and leave at once if it is already gone. */
void mproc__die_with_parent(pid_t parent);

#endif /* MPROC_PROCESS_INTERNAL_H */
