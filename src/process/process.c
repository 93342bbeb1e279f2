/*
 * Process objects: creation, attributes, start (the fork method lives
 * here; spawn and forkserver have their own files), waiting, signals, and
 * the list of started children that the atexit handler walks.
 *
 * Waiting never uses signals: every child has a pidfd (from pidfd_open
 * right after fork or posix_spawn, while the child cannot yet have been
 * reaped, or handed over by the forkserver), and join polls it and then
 * reaps with waitid(P_PIDFD), which touches no other child of the process.
 *
 * Locks: each handle has a mutex that serialises reaping and the state
 * changes around it; the children list has one global mutex.  The only
 * code that holds both takes the list lock first (sweep and exit
 * clean-up); everything else holds at most one at a time.  Neither is held
 * across fork() except a handle's own lock in start, which the child
 * re-initialises; the list lock (and the forkserver's) is taken around
 * fork by atfork handlers so that a child never inherits it held.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/os.h"
#include "process/internal.h"
#include "shm/futex.h"

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

/* How long daemon children get to act on SIGTERM at exit before they are
 * killed: Python waits without limit, but a daemon that ignores SIGTERM
 * must not keep a service from exiting. */
#define DAEMON_GRACE_NS (2 * MPROC_SEC)

static pthread_mutex_t children_lock = PTHREAD_MUTEX_INITIALIZER;
static mproc_process *children;
/* In a forked child: the parent's lists, kept only so that the handles
 * the child inherited stay reachable (leak checkers) - the child does not
 * own those processes. */
static mproc_process *inherited[8];
static pthread_once_t hooks_once = PTHREAD_ONCE_INIT;

/* ---- small helpers ----------------------------------------------------- */

static int pidfd_signal(int pidfd, int sig)
{
	if (syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0) < 0)
		return errno == ESRCH ? 0 : -errno; /* ESRCH: already ended */
	return 0;
}

void mproc__die_with_parent(pid_t parent)
{
	/* If the parent is already gone the signal will never come: then
	 * getppid() is no longer the parent, and we leave at once. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(MPROC_EXIT_BOOTSTRAP);
}

mproc_process *mproc__process_alloc(void)
{
	mproc_process *p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	pthread_mutex_init(&p->lock, NULL);
	p->pidfd = -1;
	p->status_fd = -1;
	return p;
}

void mproc__process_release(mproc_process *p)
{
	if (!p)
		return;
	if (p->pidfd >= 0)
		close(p->pidfd);
	if (p->status_fd >= 0)
		close(p->status_fd);
	free(p->name);
	free(p->type_name);
	free(p->arg);
	pthread_mutex_destroy(&p->lock);
	free(p);
}

/* ---- the children list, atfork and atexit ------------------------------ */

static void track(mproc_process *p)
{
	pthread_mutex_lock(&children_lock);
	p->prev = NULL;
	p->next = children;
	if (children)
		children->prev = p;
	children = p;
	p->tracked = true;
	pthread_mutex_unlock(&children_lock);
}

/* children_lock held. */
static void untrack_locked(mproc_process *p)
{
	if (!p->tracked)
		return;
	if (p->prev)
		p->prev->next = p->next;
	else
		children = p->next;
	if (p->next)
		p->next->prev = p->prev;
	p->next = p->prev = NULL;
	p->tracked = false;
}

static void atfork_prepare(void)
{
	pthread_mutex_lock(&children_lock);
	mproc__forkserver_atfork(0);
}

static void atfork_parent(void)
{
	mproc__forkserver_atfork(1);
	pthread_mutex_unlock(&children_lock);
}

static void atfork_child(void)
{
	mproc__forkserver_atfork(2);
	if (children) {
		for (size_t i = 0; i < sizeof(inherited) / sizeof(inherited[0]); i++)
			if (!inherited[i]) {
				inherited[i] = children;
				break;
			}
		children = NULL;
	}
	pthread_mutex_unlock(&children_lock);
}

static void at_exit(void)
{
	mproc__exit_cleanup();
}

static void install_hooks(void)
{
	pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
	atexit(at_exit);
}

/* ---- reaping and waiting ----------------------------------------------- */

/* p->lock held.  Returns 1 if the child is done (reaped now or before), 0
 * if it still runs, or a negative errno. */
static int reap_locked(mproc_process *p)
{
	if (p->done)
		return 1;
	if (p->method == MPROC__METHOD_FORKSERVER)
		return mproc__forkserver_poll_status(p);
	for (;;) {
		siginfo_t si;
		memset(&si, 0, sizeof(si));
		if (waitid((idtype_t)P_PIDFD, (id_t)p->pidfd, &si,
			   WEXITED | WNOHANG) < 0) {
			if (errno == EINTR)
				continue;
			if (errno != ECHILD)
				return -errno;
			/* Someone else reaped it: it is over, the status is
			 * lost. */
			p->done = true;
			p->exit_err = -ECHILD;
			return 1;
		}
		if (si.si_pid == 0)
			return 0;
		p->exitcode = si.si_code == CLD_EXITED ? si.si_status
						       : -si.si_status;
		p->done = true;
		return 1;
	}
}

/* The descriptor that becomes readable when the child's state changes. */
static int wait_fd_locked(const mproc_process *p)
{
	if (p->method == MPROC__METHOD_FORKSERVER && !p->server_lost)
		return p->status_fd;
	return p->pidfd;
}

static int join_until(mproc_process *p, const struct mproc__deadline *d)
{
	int busy_wakeups = 0;
	for (;;) {
		pthread_mutex_lock(&p->lock);
		int rc = reap_locked(p);
		int err = p->exit_err;
		int fd = wait_fd_locked(p);
		pthread_mutex_unlock(&p->lock);
		if (rc < 0)
			return rc;
		if (rc == 1)
			return err == -ECHILD ? -ECHILD : 0;
		if (d->nowait || mproc__deadline_passed(d))
			return 0;
		struct timespec ts, *tsp = NULL;
		if (!d->forever) {
			int64_t left = mproc__deadline_left(d);
			ts.tv_sec = (time_t)(left / MPROC_SEC);
			ts.tv_nsec = (long)(left % MPROC_SEC);
			tsp = &ts;
		}
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		int n = ppoll(&pfd, 1, tsp, NULL);
		if (n < 0 && errno != EINTR)
			return -errno;
		/* Readable but not yet reapable should not happen; if it
		 * does, do not spin on it. */
		if (n > 0 && ++busy_wakeups > 2) {
			struct timespec nap = { 0, 1000 * 1000 };
			nanosleep(&nap, NULL);
		}
	}
}

static void sweep_orphans(void)
{
	pthread_mutex_lock(&children_lock);
	mproc_process *next;
	for (mproc_process *q = children; q; q = next) {
		next = q->next;
		if (!q->orphan)
			continue;
		pthread_mutex_lock(&q->lock);
		int rc = reap_locked(q);
		pthread_mutex_unlock(&q->lock);
		if (rc != 0) {
			untrack_locked(q);
			mproc__process_release(q);
		}
	}
	pthread_mutex_unlock(&children_lock);
}

void mproc__exit_cleanup(void)
{
	pthread_mutex_lock(&children_lock);
	bool any_daemon = false;
	for (mproc_process *q = children; q; q = q->next) {
		pthread_mutex_lock(&q->lock);
		if (q->daemon && reap_locked(q) == 0) {
			pidfd_signal(q->pidfd, SIGTERM);
			any_daemon = true;
		}
		pthread_mutex_unlock(&q->lock);
	}
	if (any_daemon) {
		struct mproc__deadline grace;
		mproc__deadline_init(&grace, DAEMON_GRACE_NS);
		for (mproc_process *q = children; q; q = q->next) {
			if (!q->daemon)
				continue;
			join_until(q, &grace);
			pthread_mutex_lock(&q->lock);
			if (reap_locked(q) == 0)
				pidfd_signal(q->pidfd, SIGKILL);
			pthread_mutex_unlock(&q->lock);
		}
	}
	struct mproc__deadline forever;
	mproc__deadline_init(&forever, MPROC_FOREVER);
	mproc_process *next;
	for (mproc_process *q = children; q; q = next) {
		next = q->next;
		join_until(q, &forever);
		if (q->orphan) {
			untrack_locked(q);
			mproc__process_release(q);
		}
	}
	pthread_mutex_unlock(&children_lock);
}

/* ---- creation and attributes ------------------------------------------- */

static char *default_name(const char *type_name, const uint32_t *ids,
			  uint32_t n)
{
	size_t cap = strlen(type_name) + 2 + (size_t)n * 11;
	char *s = malloc(cap);
	if (!s)
		return NULL;
	size_t len = (size_t)snprintf(s, cap, "%s-", type_name);
	for (uint32_t i = 0; i < n; i++)
		len += (size_t)snprintf(s + len, cap - len, i ? ":%u" : "%u",
					ids[i]);
	return s;
}

static int create_common(const mproc_context *ctx, mproc_target_fn target,
			 int (*run)(mproc_process *, void *, size_t),
			 const char *type_name, const void *arg, size_t len,
			 mproc_process **out)
{
	if (!out)
		return -EINVAL;
	*out = NULL;
	if ((!target && !run) || (len && !arg))
		return -EINVAL;
	mproc_process *cur = mproc__current();
	int rc = mproc__current_key_error();
	if (rc)
		return rc;
	mproc_process *p = mproc__process_alloc();
	if (!p)
		return -ENOMEM;
	p->ctx = ctx;
	p->target = target;
	p->run = run;
	p->owner_pid = getpid();
	memcpy(p->authkey, cur->authkey, sizeof(p->authkey));
	mproc__next_identity(p->identity, &p->identity_len);
	if (run && type_name && !(p->type_name = strdup(type_name)))
		goto nomem;
	if (len) {
		if (!(p->arg = malloc(len)))
			goto nomem;
		memcpy(p->arg, arg, len);
		p->len = len;
	}
	p->name = default_name(p->type_name ? p->type_name : "Process",
			       p->identity, p->identity_len);
	if (!p->name)
		goto nomem;
	*out = p;
	return 0;
nomem:
	mproc__process_release(p);
	return -ENOMEM;
}

MPROC_API int mproc_process_create(const mproc_context *ctx,
				   mproc_target_fn target, const void *arg,
				   size_t len, mproc_process **out)
{
	if (!target)
		return -EINVAL;
	return create_common(ctx, target, NULL, NULL, arg, len, out);
}

MPROC_API int mproc_process_create_ops(const mproc_context *ctx,
				       const struct mproc_process_ops *ops,
				       const void *state, size_t len,
				       mproc_process **out)
{
	if (!ops || !ops->run)
		return -EINVAL;
	return create_common(ctx, NULL, ops->run, ops->type_name, state, len,
			     out);
}

MPROC_API const char *mproc_process_name(const mproc_process *p)
{
	if (!p)
		return NULL;
	return p->name ? p->name : "";
}

MPROC_API int mproc_process_set_name(mproc_process *p, const char *name)
{
	if (!p || !name)
		return -EINVAL;
	char *s = strdup(name);
	if (!s)
		return -ENOMEM;
	free(p->name);
	p->name = s;
	return 0;
}

MPROC_API int mproc_process_daemon(const mproc_process *p)
{
	return p ? p->daemon : -EINVAL;
}

MPROC_API int mproc_process_set_daemon(mproc_process *p, int daemon)
{
	if (!p || p->is_self)
		return -EINVAL;
	pthread_mutex_lock(&p->lock);
	int rc = p->state == MPROC__CREATED ? 0
		 : p->state == MPROC__CLOSED ? -EBADF : -EALREADY;
	if (!rc)
		p->daemon = daemon != 0;
	pthread_mutex_unlock(&p->lock);
	return rc;
}

MPROC_API int mproc_process_authkey(const mproc_process *p,
				    uint8_t key[MPROC_AUTHKEY_SIZE])
{
	if (!p || !key)
		return -EINVAL;
	if (p == mproc__current()) {
		int rc = mproc__current_key_error();
		if (rc)
			return rc;
	}
	memcpy(key, p->authkey, MPROC_AUTHKEY_SIZE);
	return 0;
}

MPROC_API int mproc_process_set_authkey(mproc_process *p,
					const uint8_t key[MPROC_AUTHKEY_SIZE])
{
	if (!p || !key)
		return -EINVAL;
	pthread_mutex_lock(&p->lock);
	int rc = 0;
	if (!p->is_self && p->state != MPROC__CREATED)
		rc = p->state == MPROC__CLOSED ? -EBADF : -EALREADY;
	if (!rc)
		memcpy(p->authkey, key, MPROC_AUTHKEY_SIZE);
	pthread_mutex_unlock(&p->lock);
	return rc;
}

MPROC_API const char *mproc_process_start_method(const mproc_process *p)
{
	if (!p)
		return NULL;
	if (p->method != MPROC__METHOD_NONE || p->is_self)
		return mproc__method_name(p->method);
	return mproc__method_name(mproc__context_method_peek(p->ctx));
}

/* ---- start ------------------------------------------------------------- */

static int fork_start(mproc_process *p)
{
	pid_t parent = getpid();
	/* Data buffered but not yet written would otherwise be written
	 * twice, once by each process. */
	fflush(stdout);
	fflush(stderr);
	pid_t pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		/* The parent's thread held this lock at fork time. */
		pthread_mutex_init(&p->lock, NULL);
		mproc__become(p, parent);
		if (p->daemon)
			mproc__die_with_parent(parent);
		mproc__child_run(p, false);
	}
	int fd = mproc__pidfd_open(pid);
	if (fd < 0) {
		kill(pid, SIGKILL);
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
			;
		return fd;
	}
	p->pid = pid;
	p->pidfd = fd;
	return 0;
}

_Noreturn void mproc__child_run(mproc_process *self, bool use_exit)
{
	int code = self->run ? self->run(self, self->arg, self->len)
			     : self->target(self->arg, self->len);
	fflush(stdout);
	fflush(stderr);
	mproc__exit_cleanup();
	if (use_exit)
		exit(code & 0xff);
	_exit(code & 0xff);
}

MPROC_API int mproc_process_start(mproc_process *p)
{
	if (!p || p->is_self)
		return -EINVAL;
	if (mproc__spawned_without_main())
		return -EPROTO;
	if (mproc__current()->daemon)
		return -EPERM;
	pthread_once(&hooks_once, install_hooks);
	/* Reap children whose handles were freed while they ran, so that
	 * they do not linger as zombies (Python's _cleanup does the same). */
	sweep_orphans();
	pthread_mutex_lock(&p->lock);
	int rc = 0;
	if (p->state == MPROC__CLOSED)
		rc = -EBADF;
	else if (p->state != MPROC__CREATED)
		rc = -EALREADY;
	else if (p->owner_pid != getpid())
		rc = -ECHILD;
	if (!rc) {
		p->method = mproc__context_method(p->ctx);
		switch (p->method) {
		case MPROC__METHOD_FORK:
			rc = fork_start(p);
			break;
		case MPROC__METHOD_SPAWN:
			rc = mproc__spawn_start(p);
			break;
		case MPROC__METHOD_FORKSERVER:
			rc = mproc__forkserver_start(p);
			break;
		default:
			rc = -EINVAL;
		}
		if (rc)
			p->method = MPROC__METHOD_NONE;
		else
			p->state = MPROC__STARTED;
	}
	pthread_mutex_unlock(&p->lock);
	if (!rc)
		track(p);
	return rc;
}

/* ---- the started child ------------------------------------------------- */

/* Common checks for calls that need a started child of this process. */
static int check_child_locked(const mproc_process *p)
{
	if (p->state == MPROC__CLOSED)
		return -EBADF;
	if (p->state != MPROC__STARTED || p->owner_pid != getpid())
		return -ECHILD;
	return 0;
}

MPROC_API int mproc_process_join(mproc_process *p, int64_t timeout_ns)
{
	if (!p || p->is_self)
		return -EINVAL;
	struct mproc__deadline d;
	int rc = mproc__deadline_init(&d, timeout_ns);
	if (rc)
		return rc;
	pthread_mutex_lock(&p->lock);
	rc = check_child_locked(p);
	pthread_mutex_unlock(&p->lock);
	return rc ? rc : join_until(p, &d);
}

MPROC_API int mproc_process_is_alive(mproc_process *p)
{
	if (!p)
		return -EINVAL;
	if (p->is_self)
		return 1;
	pthread_mutex_lock(&p->lock);
	int rc = 0; /* never started: not alive */
	if (p->state != MPROC__CREATED && (rc = check_child_locked(p)) == 0) {
		int r = reap_locked(p);
		rc = r < 0 ? r : r == 0;
	}
	pthread_mutex_unlock(&p->lock);
	return rc;
}

MPROC_API int mproc_process_exitcode(mproc_process *p, int *code)
{
	if (!p || !code)
		return -EINVAL;
	if (p->is_self)
		return -EBUSY;
	pthread_mutex_lock(&p->lock);
	int rc;
	if (p->pid == 0)
		rc = p->state == MPROC__CLOSED ? -EBADF : -ECHILD;
	else if (p->done)
		rc = 1;
	else if ((rc = check_child_locked(p)) == 0)
		rc = reap_locked(p);
	if (rc == 0)
		rc = -EBUSY;
	else if (rc == 1)
		rc = p->exit_err;
	if (rc == 0)
		*code = p->exitcode;
	pthread_mutex_unlock(&p->lock);
	return rc;
}

MPROC_API int mproc_process_pid(const mproc_process *p)
{
	if (!p)
		return -EINVAL;
	if (p->is_self)
		return (int)getpid();
	return p->pid ? (int)p->pid : -ECHILD;
}

MPROC_API int mproc_process_sentinel(const mproc_process *p)
{
	if (!p || p->is_self)
		return -EINVAL;
	if (p->state == MPROC__CLOSED)
		return -EBADF;
	if (p->state != MPROC__STARTED)
		return -ECHILD;
	return p->method == MPROC__METHOD_FORKSERVER ? p->status_fd : p->pidfd;
}

static int send_signal(mproc_process *p, int sig)
{
	if (!p || p->is_self)
		return -EINVAL;
	pthread_mutex_lock(&p->lock);
	int rc = check_child_locked(p);
	if (!rc && !p->done)
		rc = pidfd_signal(p->pidfd, sig);
	pthread_mutex_unlock(&p->lock);
	return rc;
}

MPROC_API int mproc_process_terminate(mproc_process *p)
{
	return send_signal(p, SIGTERM);
}

MPROC_API int mproc_process_kill(mproc_process *p)
{
	return send_signal(p, SIGKILL);
}

MPROC_API int mproc_process_close(mproc_process *p)
{
	if (!p || p->is_self)
		return -EINVAL;
	pthread_mutex_lock(&p->lock);
	int rc = 0;
	bool mine = p->owner_pid == getpid();
	if (p->state == MPROC__CLOSED)
		rc = -EBADF;
	else if (p->state == MPROC__STARTED && mine && reap_locked(p) == 0)
		rc = -EBUSY;
	if (!rc) {
		if (p->pidfd >= 0)
			close(p->pidfd);
		if (p->status_fd >= 0)
			close(p->status_fd);
		p->pidfd = p->status_fd = -1;
		p->state = MPROC__CLOSED;
	}
	pthread_mutex_unlock(&p->lock);
	if (!rc && mine) {
		pthread_mutex_lock(&children_lock);
		untrack_locked(p);
		pthread_mutex_unlock(&children_lock);
	}
	return rc;
}

MPROC_API void mproc_process_free(mproc_process *p)
{
	if (!p || p->is_self)
		return;
	bool mine = p->owner_pid == getpid();
	pthread_mutex_lock(&p->lock);
	bool running = p->state == MPROC__STARTED && mine && reap_locked(p) == 0;
	pthread_mutex_unlock(&p->lock);
	if (mine) {
		pthread_mutex_lock(&children_lock);
		if (running && p->tracked) {
			/* Still running: keep it on the list, to be reaped
			 * by a later start's sweep or at exit. */
			p->orphan = true;
			pthread_mutex_unlock(&children_lock);
			return;
		}
		untrack_locked(p);
		pthread_mutex_unlock(&children_lock);
	}
	mproc__process_release(p);
}
