/*
 * The end of a process (see exit.h).
 *
 * mproc keeps its own list of exit handlers rather than relying on
 * atexit(3), because atexit(3)'s list cannot be made per-process: a forked
 * child inherits it and must not run it (that would repeat the parent's
 * clean-up), so a forked child (fork and forkserver methods) ends with
 * _exit(2) and any atexit(3) handler its target registered is lost.  This list is emptied in every forked
 * child (an atfork handler), so each process runs only the handlers it
 * registered itself, under every start method, as Python 3.12+ does.
 *
 * Order at the end, as in Python (whose multiprocessing clean-up is the
 * first atexit entry and so runs last): the process's handlers, last
 * registered first; then its children (daemons terminated, the others
 * joined); then, in a process that ends with exit(3), the atexit(3) list.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "process/children.h"
#include "process/exit.h"

struct handler {
	mproc_exit_fn fn;
	void *arg;
	struct handler *next;
};

/* The handlers, last registered first.  The lock is held around fork by
 * the atfork handlers below, never while a handler runs. */
static pthread_mutex_t handlers_lock = PTHREAD_MUTEX_INITIALIZER;
static struct handler *handlers;

enum end_how {
	END_MAIN,  /* not an mproc child: exit(3), whose hook does the rest */
	END_EXIT,  /* a child in a fresh image (spawn) */
	END__EXIT, /* a forked child (fork, forkserver) */
};
/* Written in a child before its body runs (single-threaded then); read
 * only by that process afterwards. */
static enum end_how end_how = END_MAIN;

static pthread_once_t hook_once = PTHREAD_ONCE_INIT;

static void atfork_prepare(void)
{
	pthread_mutex_lock(&handlers_lock);
}

static void atfork_parent(void)
{
	pthread_mutex_unlock(&handlers_lock);
}

/* The parent's handlers are the parent's: the child starts with none.
 * glibc makes malloc usable in atfork child handlers. */
static void atfork_child(void)
{
	struct handler *next;
	for (struct handler *h = handlers; h; h = next) {
		next = h->next;
		free(h);
	}
	handlers = NULL;
	pthread_mutex_unlock(&handlers_lock);
}

/* At load time, like common/fork.c, so that no fork can come between a
 * first registration and the handler that drops it in the child. */
__attribute__((constructor)) static void install_atfork(void)
{
	pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
}

/* Pop and run until the list is empty: a handler may register another,
 * which then runs too, as with atexit(3); one that calls mproc_exit runs
 * the rest itself. */
static void run_handlers(void)
{
	for (;;) {
		pthread_mutex_lock(&handlers_lock);
		struct handler *h = handlers;
		if (h)
			handlers = h->next;
		pthread_mutex_unlock(&handlers_lock);
		if (!h)
			return;
		h->fn(h->arg);
		free(h);
	}
}

static void at_exit(void)
{
	run_handlers();
	mproc__proc_exit_cleanup();
}

static void install_hook(void)
{
	atexit(at_exit);
}

void mproc__proc_exit_init(void)
{
	pthread_once(&hook_once, install_hook);
}

void mproc__proc_set_child_end(bool use_exit)
{
	end_how = use_exit ? END_EXIT : END__EXIT;
}

_Noreturn void mproc__proc_end(int code)
{
	if (end_how == END_MAIN)
		exit(code); /* the hook runs the handlers and the clean-up */
	run_handlers();
	fflush(stdout);
	fflush(stderr);
	/* The children this child started itself: as at any exit. */
	mproc__proc_exit_cleanup();
	if (end_how == END_EXIT)
		exit(code & 0xff);
	_exit(code & 0xff);
}

MPROC_API int mproc_atexit(mproc_exit_fn fn, void *arg)
{
	if (!fn)
		return -EINVAL;
	struct handler *h = malloc(sizeof(*h));
	if (!h)
		return -ENOMEM;
	h->fn = fn;
	h->arg = arg;
	mproc__proc_exit_init();
	pthread_mutex_lock(&handlers_lock);
	h->next = handlers;
	handlers = h;
	pthread_mutex_unlock(&handlers_lock);
	return 0;
}

MPROC_API void mproc_exit(int code)
{
	mproc__proc_end(code);
}
