/*
 * Async results (mproc_async_*): what apply_async and map_async return,
 * and what the blocking calls wait on internally.
 *
 * The pool thread fills in the outcome, then stores done = 1 with release
 * and wakes the futex on it; a waiter that loads done == 1 with acquire
 * sees the outcome (status, data, message, signal).  Those fields are
 * written once, before done, and never again, so readers need no lock.
 *
 * Lifetime: two references, the caller's (mproc_async_free) and the
 * pool's (dropped after the callbacks ran).  A callback may free the
 * result it is given: the pool's reference keeps it alive until the
 * callback returns.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "common/clock.h"
#include "pool/internal.h"

mproc_async *pool_async_new(const mproc_pool *pool, mproc_async_cb cb,
			    mproc_async_cb ecb, void *userdata)
{
	mproc_async *a = calloc(1, sizeof(*a));
	if (!a)
		return NULL;
	atomic_init(&a->refs, 2);
	a->pool = pool;
	a->callback = cb;
	a->error_callback = ecb;
	a->userdata = userdata;
	a->efd = -1;
	/* The caller has spun already (submit.c): sleep soon. */
	atomic_init(&a->spin.budget, MPROC__SPIN_MIN);
	pthread_mutex_init(&a->fd_lock, NULL);
	return a;
}

void pool_async_unref(mproc_async *a)
{
	/* AcqRel: the last one out frees what the other wrote. */
	if (atomic_fetch_sub_explicit(&a->refs, 1, memory_order_acq_rel) != 1)
		return;
	if (a->efd >= 0)
		close(a->efd);
	pthread_mutex_destroy(&a->fd_lock);
	if (a->data != a->small)
		free(a->data);
	free(a->message);
	free(a);
}

void pool_async_publish(mproc_async *a, int status)
{
	a->status = status;
	/* Release: pairs with the acquire load in is_done (wait, ready, get
	 * and the accessors read the outcome after it). */
	atomic_store_explicit(&a->done, 1, memory_order_release);
	/* W2..W5 of futex.h: wakes a thread in pool_async_sleep. */
	mproc__event_signal(&a->finished);
	pthread_mutex_lock(&a->fd_lock);
	if (a->efd >= 0) {
		uint64_t one = 1;
		(void)!write(a->efd, &one, sizeof(one));
	}
	pthread_mutex_unlock(&a->fd_lock);
}

bool pool_async_has_callback(const mproc_async *a)
{
	return (a->status == 0 ? a->callback : a->error_callback) != NULL;
}

void pool_async_run_callback(mproc_async *a)
{
	mproc_async_cb cb = a->status == 0 ? a->callback : a->error_callback;
	if (cb)
		cb(a, a->userdata);
	pool_async_unref(a);
}

void pool_run_event(struct pool_event *ev)
{
	mproc_async *a = ev->async;
	if (a) {
		pool_async_run_callback(a);
	} else {
		ev->progress(ev->done, ev->total, ev->userdata);
	}
	free(ev);
}

static bool is_done(const mproc_async *a)
{
	/* Acquire: pairs with the release store in pool_async_publish. */
	return atomic_load_explicit(&a->done, memory_order_acquire) != 0;
}

bool pool_async_done(void *arg)
{
	return is_done(arg);
}

int pool_async_sleep(mproc_async *a, const struct mproc__deadline *d)
{
	/* A1..A6 of futex.h, paired with the signal in publish. */
	int rc = mproc__event_wait(&a->finished, pool_async_done, a, d,
				   &a->spin, NULL);
	return rc == -ETIMEDOUT && is_done(a) ? 0 : rc;
}

MPROC_API bool mproc_async_ready(const mproc_async *a)
{
	return a && is_done(a);
}

MPROC_API int mproc_async_successful(const mproc_async *a)
{
	if (!a)
		return -EINVAL;
	if (!is_done(a))
		return -EAGAIN;
	return a->status == 0;
}

MPROC_API const char *mproc_async_error_message(const mproc_async *a)
{
	if (!a || !is_done(a) || !a->message)
		return "";
	return a->message;
}

MPROC_API int mproc_async_signal(const mproc_async *a)
{
	if (!a || !is_done(a) || a->status != -MPROC_EWORKERLOST)
		return 0;
	return a->signo;
}

MPROC_API int mproc_async_fileno(mproc_async *a)
{
	if (!a)
		return -EINVAL;
	pthread_mutex_lock(&a->fd_lock);
	int rc = a->efd;
	if (rc < 0) {
		rc = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (rc < 0) {
			rc = -errno;
		} else {
			a->efd = rc;
			/* Finished before anyone asked: readable at once
			 * (finish writes under fd_lock, so exactly one of us
			 * does). */
			if (is_done(a)) {
				uint64_t one = 1;
				(void)!write(rc, &one, sizeof(one));
			}
		}
	}
	pthread_mutex_unlock(&a->fd_lock);
	return rc;
}

MPROC_API void mproc_async_free(mproc_async *a)
{
	if (a)
		pool_async_unref(a);
}
