/*
 * Process objects: creation, attributes, start, and the calls on a
 * started child (join, exit code, sentinel, signals, close, free).
 * Starting goes through the start method of the process's context
 * (method.h); reaping, waiting and the list of started children are
 * children.c's.
 *
 * Locks: a handle's mutex serialises reaping and the state changes around
 * it (children.c explains how it nests with the list's lock).  Start holds
 * it across the method's start, so across fork() with the fork method;
 * the child re-initialises it.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/fork.h"
#include "common/os.h"
#include "process/children.h"
#include "process/context.h"
#include "process/core.h"
#include "process/current.h"
#include "process/exit.h"
#include "process/main.h"
#include "process/method.h"
#include "process/pidfd.h"

/* The handles that describe no child of ours: the current process's own,
 * and a child's handle of its parent.  Neither is started, closed or
 * freed by the caller. */
static bool not_a_child(const mproc_process *p)
{
	return p->is_self || p->is_parent;
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
	mproc_process *cur = mproc__proc_current();
	int rc = mproc__proc_current_key_error();
	if (rc)
		return rc;
	mproc_process *p = mproc__proc_alloc();
	if (!p)
		return -ENOMEM;
	p->ctx = ctx;
	p->target = target;
	p->run = run;
	p->owner_pid = mproc__self_pid();
	memcpy(p->authkey, cur->authkey, sizeof(p->authkey));
	mproc__proc_next_identity(p->identity, &p->identity_len);
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
	mproc__proc_release(p);
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

MPROC_API const char *mproc_current_process_name(void)
{
	return mproc_process_name(mproc__proc_current());
}

MPROC_API int mproc_process_daemon(const mproc_process *p)
{
	return p ? p->daemon : -EINVAL;
}

MPROC_API int mproc_process_set_daemon(mproc_process *p, bool daemon)
{
	if (!p || not_a_child(p))
		return -EINVAL;
	pthread_mutex_lock(&p->lock);
	int rc = p->state == MPROC__PROC_CREATED ? 0
		 : p->state == MPROC__PROC_CLOSED ? -EBADF : -EALREADY;
	if (!rc)
		p->daemon = daemon;
	pthread_mutex_unlock(&p->lock);
	return rc;
}

MPROC_API int mproc_process_authkey(const mproc_process *p,
				    uint8_t key[MPROC_AUTHKEY_SIZE])
{
	if (!p || !key)
		return -EINVAL;
	if (p->is_parent)
		return -ECHILD; /* not sent to the child: a secret stays put */
	if (p == mproc__proc_current()) {
		int rc = mproc__proc_current_key_error();
		if (rc)
			return rc;
	}
	memcpy(key, p->authkey, MPROC_AUTHKEY_SIZE);
	return 0;
}

MPROC_API int mproc_process_set_authkey(mproc_process *p,
					const uint8_t key[MPROC_AUTHKEY_SIZE])
{
	if (!p || !key || p->is_parent)
		return -EINVAL;
	pthread_mutex_lock(&p->lock);
	int rc = 0;
	if (!p->is_self && p->state != MPROC__PROC_CREATED)
		rc = p->state == MPROC__PROC_CLOSED ? -EBADF : -EALREADY;
	if (!rc)
		memcpy(p->authkey, key, MPROC_AUTHKEY_SIZE);
	pthread_mutex_unlock(&p->lock);
	return rc;
}

MPROC_API const char *mproc_process_start_method(const mproc_process *p)
{
	if (!p)
		return NULL;
	const struct mproc__proc_method *m = p->method;
	if (!m && !not_a_child(p))
		m = mproc__proc_context_method_peek(p->ctx);
	return m ? m->name : NULL;
}

/* ---- start ------------------------------------------------------------- */

/* A pidfd of this process for the child to keep as its sentinel on its
 * parent, above stdio: a method installs it in the child at its number,
 * which must not be one of the child's 0, 1, 2. */
static int open_starter_pidfd(mproc_process *p)
{
	int fd = mproc__pidfd_open(mproc__self_pid());
	if (fd >= 0 && fd <= 2) {
		int hi = fcntl(fd, F_DUPFD_CLOEXEC, 3);
		int err = -errno;
		close(fd);
		fd = hi < 0 ? err : hi;
	}
	if (fd < 0)
		return fd;
	p->starter_pidfd = fd;
	return 0;
}

MPROC_API int mproc_process_start(mproc_process *p)
{
	if (!p || not_a_child(p))
		return -EINVAL;
	if (mproc__proc_spawned_without_main())
		return -EPROTO;
	if (mproc__proc_current()->daemon)
		return -EPERM;
	mproc__proc_children_init();
	mproc__proc_exit_init();
	/* Reap children whose handles were freed while they ran, so that
	 * they do not linger as zombies (Python's _cleanup does the same). */
	mproc__proc_sweep_orphans();
	pthread_mutex_lock(&p->lock);
	int rc = 0;
	if (p->state == MPROC__PROC_CLOSED)
		rc = -EBADF;
	else if (p->state != MPROC__PROC_CREATED)
		rc = -EALREADY;
	else if (p->owner_pid != mproc__self_pid())
		rc = -ECHILD;
	if (!rc)
		rc = open_starter_pidfd(p);
	if (!rc) {
		/* Set before start: the start data carries it (boot.c). */
		p->method = mproc__proc_context_method(p->ctx);
		rc = p->method->start(p);
		if (rc)
			p->method = NULL;
		else
			p->state = MPROC__PROC_STARTED;
		close(p->starter_pidfd);
		p->starter_pidfd = -1;
	}
	pthread_mutex_unlock(&p->lock);
	if (!rc)
		mproc__proc_track(p);
	return rc;
}

/* ---- the started child ------------------------------------------------- */

/* Common checks for calls that need a started child of this process. */
static int check_child_locked(const mproc_process *p)
{
	if (p->state == MPROC__PROC_CLOSED)
		return -EBADF;
	if (p->state != MPROC__PROC_STARTED || p->owner_pid != mproc__self_pid())
		return -ECHILD;
	return 0;
}

/* The parent is not our child: we cannot reap it or learn its exit code,
 * only see its pidfd turn readable when it has exited. */
static int parent_wait(const mproc_process *p, const struct mproc__deadline *d)
{
	if (p->pidfd < 0)
		return -ECHILD;
	int rc = mproc__wait_readable(p->pidfd, d);
	return rc < 0 ? rc : rc == 0; /* 1: still alive */
}

MPROC_API int mproc_process_join(mproc_process *p, int64_t timeout_ns)
{
	if (!p || p->is_self)
		return -EINVAL;
	struct mproc__deadline d;
	int rc = mproc__deadline_init(&d, timeout_ns);
	if (rc)
		return rc;
	if (p->is_parent)
		return (rc = parent_wait(p, &d)) < 0 ? rc : 0;
	pthread_mutex_lock(&p->lock);
	rc = check_child_locked(p);
	pthread_mutex_unlock(&p->lock);
	return rc ? rc : mproc__proc_join_until(p, &d);
}

MPROC_API int mproc_process_is_alive(mproc_process *p)
{
	if (!p)
		return -EINVAL;
	if (p->is_self)
		return 1;
	if (p->is_parent) {
		struct mproc__deadline now;
		mproc__deadline_init(&now, MPROC_NOWAIT);
		return parent_wait(p, &now);
	}
	pthread_mutex_lock(&p->lock);
	int rc = 0; /* never started: not alive */
	if (p->state != MPROC__PROC_CREATED && (rc = check_child_locked(p)) == 0) {
		int r = mproc__proc_reap_locked(p);
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
	if (p->is_parent)
		return -ECHILD;
	pthread_mutex_lock(&p->lock);
	int rc;
	if (p->pid == 0)
		rc = p->state == MPROC__PROC_CLOSED ? -EBADF : -ECHILD;
	else if (p->done)
		rc = 1;
	else if ((rc = check_child_locked(p)) == 0)
		rc = mproc__proc_reap_locked(p);
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
		return (int)mproc__self_pid();
	return p->pid ? (int)p->pid : -ECHILD;
}

MPROC_API int mproc_process_ident(const mproc_process *p)
{
	return mproc_process_pid(p);
}

MPROC_API int mproc_process_sentinel(const mproc_process *p)
{
	if (!p || p->is_self)
		return -EINVAL;
	if (p->is_parent)
		return p->pidfd >= 0 ? p->pidfd : -ECHILD;
	if (p->state == MPROC__PROC_CLOSED)
		return -EBADF;
	if (p->state != MPROC__PROC_STARTED)
		return -ECHILD;
	/* A method's status channel, if it has one, turns readable only
	 * once the exit code can be read; a pidfd once the child ended. */
	return p->status_fd >= 0 ? p->status_fd : p->pidfd;
}

static int send_signal(mproc_process *p, int sig)
{
	if (!p || not_a_child(p))
		return -EINVAL;
	pthread_mutex_lock(&p->lock);
	int rc = check_child_locked(p);
	if (!rc && !p->done)
		rc = mproc__pidfd_signal(p->pidfd, sig);
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

MPROC_API int mproc_process_interrupt(mproc_process *p)
{
	return send_signal(p, SIGINT);
}

MPROC_API int mproc_process_close(mproc_process *p)
{
	if (!p || not_a_child(p))
		return -EINVAL;
	pthread_mutex_lock(&p->lock);
	int rc = 0;
	bool mine = p->owner_pid == mproc__self_pid();
	if (p->state == MPROC__PROC_CLOSED)
		rc = -EBADF;
	else if (p->state == MPROC__PROC_STARTED && mine && mproc__proc_reap_locked(p) == 0)
		rc = -EBUSY;
	if (!rc) {
		if (p->pidfd >= 0)
			close(p->pidfd);
		if (p->status_fd >= 0)
			close(p->status_fd);
		p->pidfd = p->status_fd = -1;
		p->state = MPROC__PROC_CLOSED;
	}
	pthread_mutex_unlock(&p->lock);
	if (!rc && mine)
		mproc__proc_untrack_or_orphan(p, false);
	return rc;
}

MPROC_API void mproc_process_free(mproc_process *p)
{
	if (!p || not_a_child(p))
		return;
	bool mine = p->owner_pid == mproc__self_pid();
	pthread_mutex_lock(&p->lock);
	bool running = p->state == MPROC__PROC_STARTED && mine &&
		       mproc__proc_reap_locked(p) == 0;
	pthread_mutex_unlock(&p->lock);
	/* Still running: it stays on the list, to be reaped by a later
	 * start's sweep or at exit. */
	if (mine && mproc__proc_untrack_or_orphan(p, running))
		return;
	mproc__proc_release(p);
}
