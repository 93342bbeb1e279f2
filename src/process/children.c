/*
 * The list of started children, reaping, waiting, and what happens to
 * children when their parent exits (see children.h).
 *
 * Waiting never uses signals: every child has a pidfd (from pidfd_open
 * right after fork or posix_spawn, while the child cannot yet have been
 * reaped, or handed over by the forkserver), and join polls the child's
 * sentinel and then asks its start method for the status; the methods
 * whose children are our own reap with waitid(P_PIDFD), which touches no
 * other child of the process.
 *
 * Locks: each handle has a mutex that serialises reaping and the state
 * changes around it; the children list has one global mutex.  The only
 * code that holds both takes the list lock first (sweep and exit
 * clean-up); everything else holds at most one at a time.  Neither is held
 * across fork() except a handle's own lock in start, which the child
 * re-initialises; the list lock is taken around fork by atfork handlers so
 * that a child never inherits it held.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <time.h>

#include "common/os.h"
#include "process/children.h"
#include "process/method.h"
#include "process/pidfd.h"

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

void mproc__proc_track(mproc_process *p)
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

bool mproc__proc_untrack_or_orphan(mproc_process *p, bool running)
{
	pthread_mutex_lock(&children_lock);
	bool keep = running && p->tracked;
	if (keep)
		p->orphan = true;
	else
		untrack_locked(p);
	pthread_mutex_unlock(&children_lock);
	return keep;
}

static void atfork_prepare(void)
{
	pthread_mutex_lock(&children_lock);
}

static void atfork_parent(void)
{
	pthread_mutex_unlock(&children_lock);
}

static void atfork_child(void)
{
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

static void install_hooks(void)
{
	pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
}

void mproc__proc_children_init(void)
{
	pthread_once(&hooks_once, install_hooks);
}

int mproc__proc_reap_locked(mproc_process *p)
{
	if (p->done)
		return 1;
	return p->method->poll_status(p);
}

/* The descriptor that becomes readable when the child's state changes:
 * the method's status channel while it works, else the pidfd. */
static int wait_fd_locked(const mproc_process *p)
{
	if (p->status_fd >= 0 && !p->status_lost)
		return p->status_fd;
	return p->pidfd;
}

int mproc__proc_join_until(mproc_process *p, const struct mproc__deadline *d)
{
	int busy_wakeups = 0;
	for (;;) {
		pthread_mutex_lock(&p->lock);
		int rc = mproc__proc_reap_locked(p);
		int err = p->exit_err;
		int fd = wait_fd_locked(p);
		pthread_mutex_unlock(&p->lock);
		if (rc < 0)
			return rc;
		if (rc == 1)
			return err == -ECHILD ? -ECHILD : 0;
		if (d->nowait || mproc__deadline_passed(d))
			return 0;
		int n = mproc__wait_readable(fd, d);
		if (n < 0)
			return n;
		/* Readable but not yet reapable should not happen; if it
		 * does, do not spin on it. */
		if (n > 0 && ++busy_wakeups > 2) {
			struct timespec nap = { 0, 1000 * 1000 };
			nanosleep(&nap, NULL);
		}
	}
}

void mproc__proc_sweep_orphans(void)
{
	pthread_mutex_lock(&children_lock);
	mproc_process *next;
	for (mproc_process *q = children; q; q = next) {
		next = q->next;
		if (!q->orphan)
			continue;
		pthread_mutex_lock(&q->lock);
		int rc = mproc__proc_reap_locked(q);
		pthread_mutex_unlock(&q->lock);
		if (rc != 0) {
			untrack_locked(q);
			mproc__proc_release(q);
		}
	}
	pthread_mutex_unlock(&children_lock);
}

MPROC_API int mproc_active_children(mproc_process **out, size_t max)
{
	if (!out && max)
		return -EINVAL;
	pthread_mutex_lock(&children_lock);
	/* From the tail: the list is newest first, the answer oldest first. */
	mproc_process *q = children;
	while (q && q->next)
		q = q->next;
	size_t n = 0;
	mproc_process *prev;
	for (; q; q = prev) {
		prev = q->prev;
		pthread_mutex_lock(&q->lock);
		int rc = mproc__proc_reap_locked(q);
		pthread_mutex_unlock(&q->lock);
		if (rc == 1) {
			/* Over: as Python's _cleanup drops it from _children,
			 * the exit clean-up no longer needs to see it. */
			untrack_locked(q);
			if (q->orphan)
				mproc__proc_release(q);
			continue;
		}
		/* A freed handle is not the caller's to see; a child whose
		 * status cannot be read stays for the exit clean-up. */
		if (rc < 0 || q->orphan)
			continue;
		if (n < max)
			out[n] = q;
		n++;
	}
	pthread_mutex_unlock(&children_lock);
	return n > INT_MAX ? INT_MAX : (int)n;
}

void mproc__proc_exit_cleanup(void)
{
	pthread_mutex_lock(&children_lock);
	bool any_daemon = false;
	for (mproc_process *q = children; q; q = q->next) {
		pthread_mutex_lock(&q->lock);
		if (q->daemon && mproc__proc_reap_locked(q) == 0) {
			mproc__pidfd_signal(q->pidfd, SIGTERM);
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
			mproc__proc_join_until(q, &grace);
			pthread_mutex_lock(&q->lock);
			if (mproc__proc_reap_locked(q) == 0)
				mproc__pidfd_signal(q->pidfd, SIGKILL);
			pthread_mutex_unlock(&q->lock);
		}
	}
	struct mproc__deadline forever;
	mproc__deadline_init(&forever, MPROC_FOREVER);
	mproc_process *next;
	for (mproc_process *q = children; q; q = next) {
		next = q->next;
		mproc__proc_join_until(q, &forever);
		if (q->orphan) {
			untrack_locked(q);
			mproc__proc_release(q);
		}
	}
	pthread_mutex_unlock(&children_lock);
}
