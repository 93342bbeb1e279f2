/*
 * apply_async and async results: callbacks (on the pool thread, one at a
 * time, in completion order), get/wait with timeouts, ready/successful,
 * the completion descriptor (poll and mproc_wait), freeing before the end,
 * and what a callback may and may not do (-EDEADLK for anything that
 * would wait on the pool from its own thread).
 *
 * Tasks that must stay unfinished wait on a gate file the test creates
 * (task_gate), so no test depends on how fast the machine is.
 */
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#include "mproc/wait.h"
#include "pool_test.h"

TestSuite(async, .init = forget_worker_marker, .timeout = 120);

/* What the callbacks saw, shared with the test's thread. */
struct cbrec {
	pthread_mutex_t lock;
	pthread_t submitter;
	int ok, err;            /* callbacks run */
	int wrong_thread;       /* runs on the submitting thread */
	int several_threads;    /* runs on more than one thread */
	bool have_thread;
	pthread_t cb_thread;
	int in_callback;        /* callbacks running right now */
	int overlapped;         /* a callback started while one ran */
	int order[64];          /* the int64 results, in callback order */
	int norder;
	int last_rc;
	int64_t value_sum;
};

static void cbrec_init(struct cbrec *r)
{
	memset(r, 0, sizeof *r);
	pthread_mutex_init(&r->lock, NULL);
	r->submitter = pthread_self();
}

static void note_thread(struct cbrec *r)
{
	pthread_t me = pthread_self();
	if (pthread_equal(me, r->submitter))
		r->wrong_thread++;
	if (r->have_thread && !pthread_equal(me, r->cb_thread))
		r->several_threads++;
	r->have_thread = true;
	r->cb_thread = me;
}

static void on_ok(mproc_async *a, void *ud)
{
	struct cbrec *r = ud;
	const void *data;
	size_t len;
	/* The result is finished: a get from the callback returns at once. */
	int rc = mproc_async_get(a, MPROC_FOREVER, &data, &len);
	pthread_mutex_lock(&r->lock);
	if (r->in_callback++)
		r->overlapped++;
	note_thread(r);
	r->ok++;
	r->last_rc = rc;
	if (rc == 0 && len == sizeof(int64_t)) {
		int64_t v;
		memcpy(&v, data, sizeof v);
		if (r->norder < 64)
			r->order[r->norder++] = (int)v;
		r->value_sum += v;
	}
	r->in_callback--;
	pthread_mutex_unlock(&r->lock);
}

static void on_err(mproc_async *a, void *ud)
{
	struct cbrec *r = ud;
	int rc = mproc_async_get(a, MPROC_FOREVER, NULL, NULL);
	pthread_mutex_lock(&r->lock);
	note_thread(r);
	r->err++;
	r->last_rc = rc;
	pthread_mutex_unlock(&r->lock);
}

static int cb_count(struct cbrec *r, bool err)
{
	pthread_mutex_lock(&r->lock);
	int n = err ? r->err : r->ok;
	pthread_mutex_unlock(&r->lock);
	return n;
}

Test(async, callbacks_run_on_the_pool_thread_one_at_a_time)
{
	mproc_pool *p = pool_new(NULL, 2);
	struct cbrec r;
	cbrec_init(&r);
	enum { N = 40 };
	mproc_async *a[N];
	for (int i = 0; i < N; i++) {
		int64_t ms = i % 3; /* a little overlap between workers */
		mproc_task_fn fn = i % 5 == 4 ? task_fail : task_sleep_ms;
		int32_t code = EDOM;
		cr_assert_eq(mproc_pool_apply_async(p, fn,
				fn == task_fail ? (void *)&code : (void *)&ms,
				fn == task_fail ? sizeof code : sizeof ms,
				on_ok, on_err, &r, &a[i]), 0);
	}
	for (int i = 0; i < N; i++) {
		int rc = mproc_async_get(a[i], 30 * MPROC_SEC, NULL, NULL);
		cr_expect_eq(rc, i % 5 == 4 ? -EDOM : 0, "task %d: %s", i,
			     mproc_strerror(rc));
	}
	/* Finished does not promise the callback has returned yet. */
	cr_expect(POLL_UNTIL(cb_count(&r, false) == 32 && cb_count(&r, true) == 8,
			     10000), "callbacks: %d ok, %d err", r.ok, r.err);
	pthread_mutex_lock(&r.lock);
	cr_expect_eq(r.wrong_thread, 0, "callback on the submitting thread");
	cr_expect_eq(r.several_threads, 0, "callbacks on several threads");
	cr_expect_eq(r.overlapped, 0, "two callbacks at once");
	pthread_mutex_unlock(&r.lock);
	for (int i = 0; i < N; i++)
		mproc_async_free(a[i]);
	mproc_pool_destroy(p);
}

Test(async, callbacks_come_in_completion_order)
{
	/* Four tasks, one per worker, all running; their gates open in the
	 * order 2, 0, 3, 1, each after the previous callback has run: the
	 * callbacks must follow that order, not the submission order. */
	mproc_pool *p = pool_new(NULL, 4);
	struct pt_tmpdir d;
	pt_tmpdir_new(&d);
	struct cbrec r;
	cbrec_init(&r);
	struct pt_file_arg g[4];
	mproc_async *a[4];
	for (int i = 0; i < 4; i++) {
		char name[16];
		snprintf(name, sizeof name, "gate%d", i);
		pt_file_arg(&g[i], &d, name, i);
		cr_assert_eq(mproc_pool_apply_async(p, task_gate, &g[i],
				sizeof g[i], on_ok, on_err, &r, &a[i]), 0);
	}
	static const int open_order[4] = { 2, 0, 3, 1 };
	for (int k = 0; k < 4; k++) {
		pt_open_gate(&g[open_order[k]]);
		cr_assert(POLL_UNTIL(cb_count(&r, false) == k + 1, 30000),
			  "callback %d never ran", open_order[k]);
	}
	pthread_mutex_lock(&r.lock);
	for (int k = 0; k < 4; k++)
		cr_expect_eq(r.order[k], open_order[k], "callback %d was %d", k,
			     r.order[k]);
	cr_expect_eq(r.err, 0);
	pthread_mutex_unlock(&r.lock);
	for (int i = 0; i < 4; i++)
		mproc_async_free(a[i]);
	mproc_pool_destroy(p);
	pt_tmpdir_free(&d);
}

Test(async, wait_get_ready_successful_and_timeouts)
{
	mproc_pool *p = pool_new(NULL, 1);
	struct pt_tmpdir d;
	pt_tmpdir_new(&d);
	struct pt_file_arg g;
	pt_file_arg(&g, &d, "gate", 1234);
	mproc_async *a;
	cr_assert_eq(mproc_pool_apply_async(p, task_gate, &g, sizeof g, NULL,
					    NULL, NULL, &a), 0);
	cr_expect_not(mproc_async_ready(a));
	cr_expect_eq(mproc_async_successful(a), -EAGAIN);
	cr_expect_str_eq(mproc_async_error_message(a), "");
	int64_t t0 = mproc__now_ns();
	cr_expect_eq(mproc_async_wait(a, 10 * MPROC_MSEC), -ETIMEDOUT);
	int64_t waited = mproc__now_ns() - t0;
	cr_expect_geq(waited, 10 * MPROC_MSEC, "returned after %lld ns",
		      (long long)waited);
	cr_expect_eq(mproc_async_wait(a, MPROC_NOWAIT), -ETIMEDOUT);
	const void *data = NULL;
	size_t len = 0;
	cr_expect_eq(mproc_async_get(a, 10 * MPROC_MSEC, &data, &len),
		     -ETIMEDOUT);
	cr_expect_eq(mproc_async_get(a, MPROC_NOWAIT, &data, &len), -ETIMEDOUT);
	cr_expect_eq(mproc_async_wait(a, -2), -EINVAL);

	pt_open_gate(&g);
	cr_assert_eq(mproc_async_wait(a, 30 * MPROC_SEC), 0);
	cr_expect(mproc_async_ready(a));
	cr_expect_eq(mproc_async_successful(a), 1);
	cr_expect_eq(mproc_async_wait(a, MPROC_NOWAIT), 0);
	cr_assert_eq(mproc_async_get(a, MPROC_NOWAIT, &data, &len), 0);
	cr_assert_eq(len, sizeof(int64_t));
	int64_t v;
	memcpy(&v, data, sizeof v);
	cr_expect_eq(v, 1234);
	/* get may be repeated and leaves the same bytes; either out
	 * pointer may be NULL. */
	const void *again;
	cr_expect_eq(mproc_async_get(a, MPROC_NOWAIT, &again, NULL), 0);
	cr_expect_eq(again, data);
	cr_expect_eq(mproc_async_get(a, MPROC_NOWAIT, NULL, &len), 0);
	cr_expect_eq(len, sizeof(int64_t));
	mproc_async_free(a);

	cr_expect_eq(mproc_async_wait(NULL, 0), -EINVAL);
	cr_expect_eq(mproc_async_get(NULL, 0, NULL, NULL), -EINVAL);
	cr_expect_not(mproc_async_ready(NULL));
	cr_expect_eq(mproc_async_successful(NULL), -EINVAL);
	cr_expect_eq(mproc_async_fileno(NULL), -EINVAL);
	mproc_pool_destroy(p);
	pt_tmpdir_free(&d);
}

Test(async, apply_async_rejects_bad_arguments)
{
	mproc_pool *p = pool_new(NULL, 1);
	mproc_async *a = NULL;
	cr_expect_eq(mproc_pool_apply_async(NULL, task_echo, "a", 1, NULL,
					    NULL, NULL, &a), -EINVAL);
	cr_expect_eq(mproc_pool_apply_async(p, NULL, "a", 1, NULL, NULL, NULL,
					    &a), -EINVAL);
	cr_expect_eq(mproc_pool_apply_async(p, task_echo, NULL, 1, NULL, NULL,
					    NULL, &a), -EINVAL);
	cr_expect_eq(mproc_pool_apply_async(p, task_echo, "a", 1, NULL, NULL,
					    NULL, NULL), -EINVAL);
	mproc_pool_destroy(p);
}

Test(async, arguments_are_copied_at_submission)
{
	mproc_pool *p = pool_new(NULL, 1);
	struct pt_tmpdir d;
	pt_tmpdir_new(&d);
	struct pt_file_arg g;
	pt_file_arg(&g, &d, "gate", 0);
	mproc_async *blocker, *a;
	/* The worker is busy, so the second task's argument waits in the
	 * parent while the caller's buffer changes. */
	cr_assert_eq(mproc_pool_apply_async(p, task_gate, &g, sizeof g, NULL,
					    NULL, NULL, &blocker), 0);
	char buf[16] = "before";
	cr_assert_eq(mproc_pool_apply_async(p, task_echo, buf, 7, NULL, NULL,
					    NULL, &a), 0);
	strcpy(buf, "AFTER!");
	pt_open_gate(&g);
	const void *data;
	size_t len;
	cr_assert_eq(mproc_async_get(a, 30 * MPROC_SEC, &data, &len), 0);
	cr_expect_eq(len, 7u);
	cr_expect_str_eq((const char *)data, "before");
	mproc_async_free(a);
	mproc_async_free(blocker);
	mproc_pool_destroy(p);
	pt_tmpdir_free(&d);
}

Test(async, fileno_polls_readable_once_finished)
{
	mproc_pool *p = pool_new(NULL, 1);
	struct pt_tmpdir d;
	pt_tmpdir_new(&d);
	struct pt_file_arg g;
	pt_file_arg(&g, &d, "gate", 5);
	mproc_async *a;
	cr_assert_eq(mproc_pool_apply_async(p, task_gate, &g, sizeof g, NULL,
					    NULL, NULL, &a), 0);
	int fd = mproc_async_fileno(a);
	cr_assert_geq(fd, 0, "fileno: %s", mproc_strerror(fd));
	cr_expect_eq(mproc_async_fileno(a), fd, "a second call, another fd");
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	cr_expect_eq(poll(&pfd, 1, 10), 0, "readable before the task ended");

	struct mproc_waitable w[1] = { { .type = MPROC_WAIT_FD, .fd = fd } };
	cr_expect_eq(mproc_wait(w, 1, 10 * MPROC_MSEC), 0);
	cr_expect_eq(w[0].ready, 0);

	pt_open_gate(&g);
	cr_expect_eq(mproc_wait(w, 1, 30 * MPROC_SEC), 1);
	cr_expect_eq(w[0].ready, 1);
	cr_expect_eq(poll(&pfd, 1, 0), 1);
	cr_expect(pfd.revents & POLLIN);
	/* Readable means finished. */
	cr_expect(mproc_async_ready(a));
	cr_expect_eq(mproc_async_get(a, MPROC_NOWAIT, NULL, NULL), 0);
	/* It stays readable: polling does not consume the completion. */
	cr_expect_eq(poll(&pfd, 1, 0), 1);
	mproc_async_free(a);

	/* Asked for after the end, it is readable at once. */
	cr_assert_eq(mproc_pool_apply_async(p, task_nothing, NULL, 0, NULL,
					    NULL, NULL, &a), 0);
	cr_assert_eq(mproc_async_wait(a, 30 * MPROC_SEC), 0);
	fd = mproc_async_fileno(a);
	cr_assert_geq(fd, 0);
	pfd.fd = fd;
	cr_expect_eq(poll(&pfd, 1, 0), 1);
	mproc_async_free(a);
	mproc_pool_destroy(p);
	pt_tmpdir_free(&d);
}

static atomic_int freed_callbacks;
static void count_callback(mproc_async *a, void *ud)
{
	(void)a; /* freed by its owner already: not to be touched */
	(void)ud;
	atomic_fetch_add(&freed_callbacks, 1);
}

Test(async, free_before_the_end_is_safe_and_callbacks_still_run)
{
	mproc_pool *p = pool_new(NULL, 2);
	struct pt_tmpdir d;
	pt_tmpdir_new(&d);
	struct pt_file_arg g;
	pt_file_arg(&g, &d, "gate", 0);
	enum { N = 20 };
	for (int i = 0; i < N; i++) {
		mproc_async *a;
		cr_assert_eq(mproc_pool_apply_async(p, task_gate, &g, sizeof g,
				count_callback, count_callback, NULL, &a), 0);
		if (i == 0)
			(void)mproc_async_fileno(a); /* with its descriptor too */
		mproc_async_free(a);
	}
	pt_open_gate(&g);
	cr_expect(POLL_UNTIL(atomic_load(&freed_callbacks) == N, 30000),
		  "%d of %d callbacks ran", atomic_load(&freed_callbacks), N);
	/* The pool is still fine. */
	char buf[4];
	cr_expect_eq(mproc_pool_apply(p, task_echo, "ok", 2, buf, 4), 2);
	mproc_pool_destroy(p);
	pt_tmpdir_free(&d);
}

struct waiter {
	mproc_async *a;
	int rc;
	int64_t value;
};

static void *wait_thread(void *arg)
{
	struct waiter *w = arg;
	const void *data;
	size_t len;
	w->rc = mproc_async_get(w->a, 30 * MPROC_SEC, &data, &len);
	if (w->rc == 0 && len == sizeof w->value)
		memcpy(&w->value, data, sizeof w->value);
	return NULL;
}

Test(async, several_threads_wait_on_one_result)
{
	mproc_pool *p = pool_new(NULL, 1);
	struct pt_tmpdir d;
	pt_tmpdir_new(&d);
	struct pt_file_arg g;
	pt_file_arg(&g, &d, "gate", 99);
	mproc_async *a;
	cr_assert_eq(mproc_pool_apply_async(p, task_gate, &g, sizeof g, NULL,
					    NULL, NULL, &a), 0);
	pthread_t th[4];
	struct waiter w[4];
	for (int i = 0; i < 4; i++) {
		w[i] = (struct waiter){ .a = a, .rc = 1 };
		cr_assert_eq(pthread_create(&th[i], NULL, wait_thread, &w[i]), 0);
	}
	pt_open_gate(&g);
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		cr_expect_eq(w[i].rc, 0, "waiter %d: %s", i,
			     mproc_strerror(w[i].rc));
		cr_expect_eq(w[i].value, 99);
	}
	mproc_async_free(a);
	mproc_pool_destroy(p);
	pt_tmpdir_free(&d);
}

/* ---- what a callback may do --------------------------------------------- */

struct deadlk {
	mproc_pool *pool;
	mproc_async *unfinished;  /* a gated task's result */
	atomic_int done;
	int apply_rc, map_rc, get_rc, wait_rc, nowait_rc;
	int own_get_rc;           /* get of the callback's own result */
	int submit_rc;            /* apply_async from the callback */
	mproc_async *submitted;
};

static void refuse_waits(mproc_async *a, void *ud)
{
	struct deadlk *k = ud;
	char buf[8];
	k->apply_rc = (int)mproc_pool_apply(k->pool, task_echo, "x", 1, buf,
					    sizeof buf);
	uint32_t it = 3;
	uint64_t r;
	k->map_rc = (int)mproc_pool_map(k->pool, task_square, &it, 1, sizeof it,
					&r, sizeof r, NULL, NULL);
	k->get_rc = mproc_async_get(k->unfinished, 5 * MPROC_SEC, NULL, NULL);
	k->wait_rc = mproc_async_wait(k->unfinished, 5 * MPROC_SEC);
	/* A zero timeout does not wait, so it is allowed there and simply
	 * reports that the result is not finished. */
	k->nowait_rc = mproc_async_wait(k->unfinished, MPROC_NOWAIT);
	k->own_get_rc = mproc_async_get(a, MPROC_FOREVER, NULL, NULL);
	k->submit_rc = mproc_pool_apply_async(k->pool, task_echo, "sub", 3,
					      NULL, NULL, NULL, &k->submitted);
	atomic_store(&k->done, 1);
}

Test(async, a_callback_that_would_wait_on_the_pool_gets_edeadlk)
{
	mproc_pool *p = pool_new(NULL, 2);
	struct pt_tmpdir d;
	pt_tmpdir_new(&d);
	struct pt_file_arg g;
	pt_file_arg(&g, &d, "gate", 0);
	struct deadlk k = { .pool = p };
	cr_assert_eq(mproc_pool_apply_async(p, task_gate, &g, sizeof g, NULL,
					    NULL, NULL, &k.unfinished), 0);
	mproc_async *a;
	cr_assert_eq(mproc_pool_apply_async(p, task_nothing, NULL, 0,
					    refuse_waits, refuse_waits, &k,
					    &a), 0);
	cr_assert(POLL_UNTIL(atomic_load(&k.done), 30000), "callback never ran");
	cr_expect_eq(k.apply_rc, -EDEADLK, "apply: %s", mproc_strerror(k.apply_rc));
	cr_expect_eq(k.map_rc, -EDEADLK, "map: %s", mproc_strerror(k.map_rc));
	cr_expect_eq(k.get_rc, -EDEADLK, "get: %s", mproc_strerror(k.get_rc));
	cr_expect_eq(k.wait_rc, -EDEADLK, "wait: %s", mproc_strerror(k.wait_rc));
	cr_expect_eq(k.nowait_rc, -ETIMEDOUT, "wait(0): %s",
		     mproc_strerror(k.nowait_rc));
	cr_expect_eq(k.own_get_rc, 0, "own get: %s", mproc_strerror(k.own_get_rc));
	cr_expect_eq(k.submit_rc, 0, "apply_async from a callback: %s",
		     mproc_strerror(k.submit_rc));
	/* The work submitted from the callback runs. */
	if (k.submit_rc == 0) {
		const void *data;
		size_t len;
		cr_expect_eq(mproc_async_get(k.submitted, 30 * MPROC_SEC, &data,
					     &len), 0);
		cr_expect_eq(len, 3u);
		mproc_async_free(k.submitted);
	}
	pt_open_gate(&g);
	cr_expect_eq(mproc_async_get(k.unfinished, 30 * MPROC_SEC, NULL, NULL), 0);
	mproc_async_free(k.unfinished);
	mproc_async_free(a);
	mproc_pool_destroy(p);
	pt_tmpdir_free(&d);
}

struct joinlk {
	mproc_pool *pool;
	atomic_int done;
	int join_rc, close_rc;
};

static void join_from_callback(mproc_async *a, void *ud)
{
	(void)a;
	struct joinlk *j = ud;
	j->join_rc = mproc_pool_join(j->pool, MPROC_FOREVER);
	atomic_store(&j->done, 1);
}

Test(async, join_from_a_callback_gets_edeadlk)
{
	/* The pool is closed first, so join is otherwise allowed. */
	mproc_pool *p = pool_new(NULL, 1);
	struct pt_tmpdir d;
	pt_tmpdir_new(&d);
	struct pt_file_arg g;
	pt_file_arg(&g, &d, "gate", 0);
	struct joinlk j = { .pool = p };
	mproc_async *a;
	cr_assert_eq(mproc_pool_apply_async(p, task_gate, &g, sizeof g,
					    join_from_callback,
					    join_from_callback, &j, &a), 0);
	cr_assert_eq(mproc_pool_close(p), 0);
	pt_open_gate(&g);
	cr_assert(POLL_UNTIL(atomic_load(&j.done), 30000), "callback never ran");
	cr_expect_eq(j.join_rc, -EDEADLK, "join: %s", mproc_strerror(j.join_rc));
	cr_expect_eq(mproc_pool_join(p, 30 * MPROC_SEC), 0);
	mproc_async_free(a);
	mproc_pool_destroy(p);
	pt_tmpdir_free(&d);
}

static void close_from_callback(mproc_async *a, void *ud)
{
	struct joinlk *j = ud;
	j->close_rc = mproc_pool_close(j->pool);
	mproc_async_free(a); /* the callback may free its own result */
	atomic_store(&j->done, 1);
}

Test(async, a_callback_may_close_the_pool_and_free_its_result)
{
	mproc_pool *p = pool_new(NULL, 2);
	struct joinlk j = { .pool = p };
	mproc_async *a, *b;
	cr_assert_eq(mproc_pool_apply_async(p, task_nothing, NULL, 0,
					    close_from_callback,
					    close_from_callback, &j, &a), 0);
	cr_assert(POLL_UNTIL(atomic_load(&j.done), 30000), "callback never ran");
	cr_expect_eq(j.close_rc, 0);
	cr_expect_eq(mproc_pool_apply_async(p, task_nothing, NULL, 0, NULL,
					    NULL, NULL, &b), -EPIPE);
	cr_expect_eq(mproc_pool_join(p, 30 * MPROC_SEC), 0);
	mproc_pool_destroy(p);
}

static void terminate_from_callback(mproc_async *a, void *ud)
{
	(void)a;
	struct joinlk *j = ud;
	j->close_rc = mproc_pool_terminate(j->pool);
	atomic_store(&j->done, 1);
}

Test(async, a_callback_may_terminate_the_pool)
{
	mproc_pool *p = pool_new(NULL, 2);
	struct pt_tmpdir d;
	pt_tmpdir_new(&d);
	struct pt_file_arg g;
	pt_file_arg(&g, &d, "never", 0);
	struct joinlk j = { .pool = p };
	mproc_async *a, *blocked;
	cr_assert_eq(mproc_pool_apply_async(p, task_gate, &g, sizeof g, NULL,
					    NULL, NULL, &blocked), 0);
	cr_assert_eq(mproc_pool_apply_async(p, task_nothing, NULL, 0,
					    terminate_from_callback, NULL, &j,
					    &a), 0);
	cr_assert(POLL_UNTIL(atomic_load(&j.done), 30000), "callback never ran");
	cr_expect_eq(j.close_rc, 0);
	cr_expect_eq(mproc_async_get(blocked, 30 * MPROC_SEC, NULL, NULL),
		     -ECANCELED);
	cr_expect_eq(mproc_pool_join(p, 30 * MPROC_SEC), 0);
	mproc_async_free(a);
	mproc_async_free(blocked);
	mproc_pool_destroy(p);
	pt_tmpdir_free(&d);
}
