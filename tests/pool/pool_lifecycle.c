/*
 * A pool's life: close then join (all work done), join's errors and
 * timeout, submissions after close, terminate with work in flight
 * (prompt, -ECANCELED, callbacks, no worker left), destroy like leaving
 * Python's `with` block; the initializer (once per worker, in the worker
 * itself, under fork and spawn; a failing one makes create fail and
 * leaves no process behind); a waiter on a result does not hold off a
 * terminate from another thread; maxtasksperchild (workers replaced and
 * counted as retired, never as lost); a pool created inside a child
 * process.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#include "pool_test.h"

TestSuite(lifecycle, .init = forget_worker_marker, .timeout = 180);

Test(lifecycle, close_then_join_finishes_all_work)
{
	mproc_pool *p = pool_new(NULL, 2);
	enum { N = 200 };
	mproc_async *a[N];
	for (int i = 0; i < N; i++) {
		int64_t ms = i % 10 == 0 ? 5 : 0;
		cr_assert_eq(mproc_pool_apply_async(p, task_sleep_ms, &ms,
					sizeof ms, NULL, NULL, NULL, &a[i]), 0);
	}
	pid_t pids[2];
	cr_assert_eq(mproc_pool_worker_pids(p, pids, 2), 2);
	cr_expect_eq(mproc_pool_join(p, 0), -EINVAL, "join before close");
	cr_assert_eq(mproc_pool_close(p), 0);
	cr_expect_eq(mproc_pool_close(p), 0, "close is idempotent");
	cr_assert_eq(mproc_pool_join(p, 60 * MPROC_SEC), 0);
	for (int i = 0; i < N; i++) {
		cr_expect(mproc_async_ready(a[i]), "task %d unfinished after join", i);
		cr_expect_eq(mproc_async_get(a[i], MPROC_NOWAIT, NULL, NULL), 0);
		mproc_async_free(a[i]);
	}
	/* The workers exited. */
	for (int i = 0; i < 2; i++)
		cr_expect_not(pt_pid_running(pids[i]), "worker %d still runs",
			      (int)pids[i]);
	cr_expect_eq(mproc_pool_join(p, 0), 0, "a second join");
	struct mproc_pool_stats st;
	cr_assert_eq(mproc_pool_stats(p, &st), 0);
	cr_expect_eq(st.completed, (uint64_t)N);
	cr_expect_eq(st.workers_lost, 0u, "an exit after close is no loss");
	mproc_pool_destroy(p);
}

Test(lifecycle, submissions_after_close_are_epipe)
{
	mproc_pool *p = pool_new(NULL, 1);
	cr_assert_eq(mproc_pool_close(p), 0);
	mproc_async *a = NULL;
	char buf[4];
	cr_expect_eq(mproc_pool_apply(p, task_echo, "a", 1, buf, 4), -EPIPE);
	cr_expect_eq(mproc_pool_apply_async(p, task_echo, "a", 1, NULL, NULL,
					    NULL, &a), -EPIPE);
	cr_expect_eq(mproc_pool_join(p, 30 * MPROC_SEC), 0);
	cr_expect_eq(mproc_pool_apply(p, task_echo, "a", 1, buf, 4), -EPIPE);
	mproc_pool_destroy(p);
}

Test(lifecycle, join_errors_and_timeout)
{
	cr_expect_eq(mproc_pool_join(NULL, 0), -EINVAL);
	cr_expect_eq(mproc_pool_close(NULL), -EINVAL);
	cr_expect_eq(mproc_pool_terminate(NULL), -EINVAL);
	mproc_pool *p = pool_new(NULL, 1);
	struct pt_tmpdir d;
	pt_tmpdir_new(&d);
	struct pt_file_arg g;
	pt_file_arg(&g, &d, "gate", 0);
	mproc_async *a;
	cr_assert_eq(mproc_pool_apply_async(p, task_gate, &g, sizeof g, NULL,
					    NULL, NULL, &a), 0);
	cr_expect_eq(mproc_pool_join(p, MPROC_FOREVER), -EINVAL,
		     "join without close or terminate");
	cr_assert_eq(mproc_pool_close(p), 0);
	int64_t t0 = mproc__now_ns();
	cr_expect_eq(mproc_pool_join(p, 20 * MPROC_MSEC), -ETIMEDOUT);
	cr_expect_geq(mproc__now_ns() - t0, 20 * MPROC_MSEC);
	cr_expect_eq(mproc_pool_join(p, -2), -EINVAL);
	pt_open_gate(&g);
	cr_expect_eq(mproc_pool_join(p, 30 * MPROC_SEC), 0);
	cr_expect_eq(mproc_async_get(a, MPROC_NOWAIT, NULL, NULL), 0);
	mproc_async_free(a);
	mproc_pool_destroy(p);
	pt_tmpdir_free(&d);
}

static atomic_int cancelled_callbacks, ok_callbacks;
static void count_cancelled(mproc_async *a, void *ud)
{
	(void)ud;
	if (mproc_async_get(a, MPROC_NOWAIT, NULL, NULL) == -ECANCELED)
		atomic_fetch_add(&cancelled_callbacks, 1);
}
static void count_ok(mproc_async *a, void *ud)
{
	(void)a;
	(void)ud;
	atomic_fetch_add(&ok_callbacks, 1);
}

Test(lifecycle, terminate_cancels_work_in_flight_and_kills_the_workers)
{
	mproc_pool *p = pool_new(NULL, 2);
	struct pt_tmpdir d;
	pt_tmpdir_new(&d);
	struct pt_file_arg g;
	pt_file_arg(&g, &d, "never", 0);
	enum { N = 12 };
	mproc_async *a[N];
	for (int i = 0; i < N; i++)
		cr_assert_eq(mproc_pool_apply_async(p, task_gate, &g, sizeof g,
					count_ok, count_cancelled, NULL, &a[i]), 0);
	pid_t pids[2];
	cr_assert_eq(mproc_pool_worker_pids(p, pids, 2), 2);
	int64_t t0 = mproc__now_ns();
	cr_assert_eq(mproc_pool_terminate(p), 0);
	int64_t took = mproc__now_ns() - t0;
	cr_expect_lt(took, 2 * MPROC_SEC, "terminate took %lld ms",
		     (long long)(took / MPROC_MSEC));
	cr_expect_eq(mproc_pool_terminate(p), 0, "terminate is idempotent");
	cr_assert_eq(mproc_pool_join(p, 30 * MPROC_SEC), 0);
	for (int i = 0; i < 2; i++)
		cr_expect_not(pt_pid_running(pids[i]),
			      "worker %d runs after terminate+join", (int)pids[i]);
	/* Gone, not only stopped: reaped within a moment. */
	for (int i = 0; i < 2; i++)
		cr_expect(POLL_UNTIL(kill(pids[i], 0) < 0 && errno == ESRCH, 2000),
			  "worker %d not reaped", (int)pids[i]);
	for (int i = 0; i < N; i++) {
		cr_expect_eq(mproc_async_get(a[i], MPROC_NOWAIT, NULL, NULL),
			     -ECANCELED, "task %d", i);
		cr_expect_eq(mproc_async_successful(a[i]), 0);
	}
	cr_expect(POLL_UNTIL(atomic_load(&cancelled_callbacks) == N, 10000),
		  "%d of %d error callbacks", atomic_load(&cancelled_callbacks), N);
	cr_expect_eq(atomic_load(&ok_callbacks), 0);
	mproc_async *b;
	cr_expect_eq(mproc_pool_apply_async(p, task_nothing, NULL, 0, NULL, NULL,
					    NULL, &b), -EPIPE);
	for (int i = 0; i < N; i++)
		mproc_async_free(a[i]);
	mproc_pool_destroy(p);
	pt_tmpdir_free(&d);
}

static void *terminate_thread(void *arg)
{
	static int rc;
	rc = mproc_pool_terminate(arg);
	return &rc;
}

/* A thread waiting on a result helps the pool (it does the pool thread's
 * work while the engine is free).  One that took the engine just after
 * terminate's kick kept it, spinning on the unseen kick, until its own
 * deadline, and the pool thread, which alone cancels the work, waited
 * for it: a wait with no deadline never ended.  The race is won often
 * by a waiter that starts together with the terminating thread, so the
 * test tries it many times. */
Test(lifecycle, a_waiter_does_not_hold_off_terminate_from_another_thread)
{
	struct pt_tmpdir d;
	pt_tmpdir_new(&d);
	struct pt_file_arg g;
	pt_file_arg(&g, &d, "never", 0);
	for (int round = 0; round < 20; round++) {
		mproc_pool *p = pool_new(NULL, 1);
		mproc_async *a;
		cr_assert_eq(mproc_pool_apply_async(p, task_gate, &g, sizeof g,
						    NULL, NULL, NULL, &a), 0);
		pthread_t t;
		cr_assert_eq(pthread_create(&t, NULL, terminate_thread, p), 0);
		cr_assert_eq(mproc_async_wait(a, 20 * MPROC_SEC), 0,
			     "round %d: the wait outlived terminate", round);
		cr_expect_eq(mproc_async_get(a, MPROC_NOWAIT, NULL, NULL),
			     -ECANCELED);
		int *rc;
		cr_assert_eq(pthread_join(t, (void **)&rc), 0);
		cr_expect_eq(*rc, 0);
		mproc_async_free(a);
		mproc_pool_destroy(p);
	}
	pt_tmpdir_free(&d);
}

Test(lifecycle, destroy_is_leaving_the_with_block)
{
	/* Results survive the pool: finished ones keep their bytes,
	 * unfinished ones are cancelled. */
	mproc_pool *p = pool_new(NULL, 2);
	struct pt_tmpdir d;
	pt_tmpdir_new(&d);
	struct pt_file_arg g;
	pt_file_arg(&g, &d, "never", 0);
	mproc_async *done, *pending;
	cr_assert_eq(mproc_pool_apply_async(p, task_echo, "kept", 4, NULL, NULL,
					    NULL, &done), 0);
	cr_assert_eq(mproc_async_wait(done, 30 * MPROC_SEC), 0);
	cr_assert_eq(mproc_pool_apply_async(p, task_gate, &g, sizeof g, NULL,
					    NULL, NULL, &pending), 0);
	pid_t pids[2];
	cr_assert_eq(mproc_pool_worker_pids(p, pids, 2), 2);
	int64_t t0 = mproc__now_ns();
	mproc_pool_destroy(p);
	cr_expect_lt(mproc__now_ns() - t0, 5 * MPROC_SEC, "destroy was slow");
	const void *data;
	size_t len;
	cr_expect_eq(mproc_async_get(done, MPROC_NOWAIT, &data, &len), 0);
	cr_expect_eq(len, 4u);
	cr_expect_eq(memcmp(data, "kept", 4), 0);
	cr_expect_eq(mproc_async_get(pending, 30 * MPROC_SEC, NULL, NULL),
		     -ECANCELED);
	for (int i = 0; i < 2; i++)
		cr_expect(POLL_UNTIL(!pt_pid_running(pids[i]), 2000),
			  "worker %d outlived destroy", (int)pids[i]);
	mproc_async_free(done);
	mproc_async_free(pending);
	pt_tmpdir_free(&d);
}

/* ---- initializer -------------------------------------------------------- */

static void check_initializer(const char *method)
{
	struct pt_tmpdir d;
	pt_tmpdir_new(&d);
	struct pt_init_arg ia = { .value = 42 };
	snprintf(ia.log, sizeof ia.log, "%s/init.log", d.path);
	struct mproc_pool_attr a;
	mproc_pool_attr_init(&a);
	a.ctx = ctx_of(method);
	a.processes = 3;
	a.initializer = init_record;
	a.initarg = &ia;
	a.initarg_len = sizeof ia;
	mproc_pool *p;
	int rc = mproc_pool_create(&a, &p);
	cr_assert_eq(rc, 0, "%s: create: %s", method, mproc_strerror(rc));
	/* initarg was copied at create. */
	ia.value = -1;

	/* Every worker has run it once, before create returned. */
	pid_t logged[16], workers[3];
	size_t nl = pt_read_pids(ia.log, logged, 16);
	cr_assert_eq(mproc_pool_worker_pids(p, workers, 3), 3);
	cr_expect_eq(nl, 3u, "%s: %zu initializer runs for 3 workers", method, nl);
	for (size_t i = 0; i < nl; i++) {
		int hits = 0;
		for (int w = 0; w < 3; w++)
			hits += logged[i] == workers[w];
		cr_expect_eq(hits, 1, "%s: initializer ran in %d, not a worker",
			     method, (int)logged[i]);
	}
	/* Tasks see the initializer's work in their own process. */
	for (int i = 0; i < 30; i++) {
		struct pt_whoami w;
		cr_assert_eq(mproc_pool_apply(p, task_whoami, NULL, 0, &w,
					      sizeof w), (ssize_t)sizeof w);
		cr_expect_eq(w.init_calls, 1, "%s: %d initializer calls in %d",
			     method, w.init_calls, w.pid);
		cr_expect_eq(w.init_pid, w.pid, "%s: initializer ran in %d, task "
			     "in %d", method, w.init_pid, w.pid);
		cr_expect_eq(w.init_value, 42);
	}
	mproc_pool_destroy(p);
	pt_tmpdir_free(&d);
}

Test(lifecycle, initializer_runs_once_in_each_worker_fork)
{
	check_initializer("fork");
}

Test(lifecycle, initializer_runs_once_in_each_worker_spawn)
{
	check_initializer("spawn");
}

Test(lifecycle, initializer_runs_once_in_each_worker_forkserver)
{
	check_initializer("forkserver");
}

static void check_failing_initializer(const char *method)
{
	struct pt_tmpdir d;
	pt_tmpdir_new(&d);
	struct pt_init_arg ia = { .value = -1 };
	snprintf(ia.log, sizeof ia.log, "%s/init.log", d.path);
	struct mproc_pool_attr a;
	mproc_pool_attr_init(&a);
	a.ctx = ctx_of(method);
	a.processes = 2;
	a.initializer = init_record;
	a.initarg = &ia;
	a.initarg_len = sizeof ia;
	pid_t before[64];
	size_t nbefore = pt_descendants(getpid(), before, 64);
	mproc_pool *p = NULL;
	int64_t t0 = mproc__now_ns();
	int rc = mproc_pool_create(&a, &p);
	cr_expect_eq(rc, -MPROC_EINIT, "%s: create: %s", method,
		     mproc_strerror(rc));
	cr_expect_lt(mproc__now_ns() - t0, 10 * MPROC_SEC, "%s: slow failure",
		     method);
	cr_expect_null(p);
	/* The workers that ran it, and the zygote, are gone. */
	pid_t logged[16];
	size_t nl = pt_read_pids(ia.log, logged, 16);
	cr_expect_geq(nl, 1u, "%s: the initializer never ran", method);
	for (size_t i = 0; i < nl; i++)
		cr_expect(POLL_UNTIL(!pt_pid_running(logged[i]), 2000),
			  "%s: worker %d left running", method, (int)logged[i]);
	/* Nothing new below this process: no zygote, no worker. */
	pid_t after[64];
	size_t nafter = 0;
	bool clean = POLL_UNTIL(({
		nafter = pt_descendants(getpid(), after, 64);
		size_t extra = 0;
		for (size_t i = 0; i < nafter; i++) {
			bool old = false;
			for (size_t j = 0; j < nbefore; j++)
				old |= after[i] == before[j];
			if (!old && pt_pid_running(after[i]))
				extra++;
		}
		extra == 0;
	}), 2000);
	cr_expect(clean, "%s: %zu processes below the test after a failed "
		  "create", method, nafter);
	pt_tmpdir_free(&d);
}

Test(lifecycle, a_failing_initializer_fails_create_and_leaves_nothing)
{
	check_failing_initializer("fork");
	check_failing_initializer("spawn");
}

/* ---- maxtasksperchild --------------------------------------------------- */

Test(lifecycle, maxtasksperchild_replaces_workers_without_loss)
{
	struct pt_init_arg ia = { .value = 7 };
	struct mproc_pool_attr a;
	mproc_pool_attr_init(&a);
	a.processes = 2;
	a.maxtasksperchild = 3;
	a.initializer = init_record;
	a.initarg = &ia;
	a.initarg_len = sizeof ia;
	mproc_pool *p;
	cr_assert_eq(mproc_pool_create(&a, &p), 0);
	pid_t first[2];
	cr_assert_eq(mproc_pool_worker_pids(p, first, 2), 2);

	enum { N = 30 };
	mproc_async *r[N];
	for (int i = 0; i < N; i++)
		cr_assert_eq(mproc_pool_apply_async(p, task_whoami, NULL, 0, NULL,
						    NULL, NULL, &r[i]), 0);
	pid_t seen[N];
	int runs[N], nseen = 0;
	for (int i = 0; i < N; i++) {
		const void *data;
		size_t len;
		int rc = mproc_async_get(r[i], 60 * MPROC_SEC, &data, &len);
		cr_assert_eq(rc, 0, "task %d: %s", i, mproc_strerror(rc));
		cr_assert_eq(len, sizeof(struct pt_whoami));
		struct pt_whoami w;
		memcpy(&w, data, sizeof w);
		cr_expect_leq(w.tasks_here, 3, "worker %d ran %d tasks", w.pid,
			      w.tasks_here);
		cr_expect_eq(w.init_calls, 1, "replacement %d: initializer ran "
			     "%d times", w.pid, w.init_calls);
		int k = 0;
		while (k < nseen && seen[k] != w.pid)
			k++;
		if (k == nseen) {
			seen[nseen] = w.pid;
			runs[nseen++] = 0;
		}
		runs[k]++;
		mproc_async_free(r[i]);
	}
	cr_expect_geq(nseen, N / 3, "%d workers ran %d tasks", nseen, N);
	int full = 0;
	for (int k = 0; k < nseen; k++)
		full += runs[k] == 3;
	/* Every worker that ran its 3 tasks retires, and is no worker
	 * any more. */
	struct mproc_pool_stats st;
	cr_expect(POLL_UNTIL(mproc_pool_stats(p, &st) == 0 &&
			     st.workers_retired >= (uint64_t)full, 10000),
		  "retired %llu, expected %d", (unsigned long long)st.workers_retired,
		  full);
	cr_expect_eq(st.workers_lost, 0u);
	cr_expect_geq(st.workers_started, (uint64_t)nseen);
	cr_expect_eq(st.failed, 0u);
	for (int k = 0; k < nseen; k++)
		if (runs[k] == 3)
			cr_expect(POLL_UNTIL(!pt_is_worker(p, seen[k]), 5000),
				  "retired worker %d still listed", (int)seen[k]);
	/* Replacements keep the count. */
	cr_expect(POLL_UNTIL(mproc_pool_worker_pids(p, NULL, 0) == 2, 5000));
	cr_expect_not(pt_is_worker(p, first[0]) && pt_is_worker(p, first[1]),
		      "the first workers are all still there");
	mproc_pool_destroy(p);
}

/* ---- a pool in a child process ------------------------------------------ */

static int child_with_pool(void *arg, size_t len)
{
	(void)arg;
	(void)len;
	struct mproc_pool_attr a;
	mproc_pool_attr_init(&a);
	a.processes = 2;
	mproc_pool *p;
	if (mproc_pool_create(&a, &p))
		return 10;
	uint32_t items[100];
	uint64_t res[100];
	for (uint32_t i = 0; i < 100; i++)
		items[i] = i;
	ssize_t n = mproc_pool_map(p, task_square, items, 100, 4, res, 8, NULL,
				   NULL);
	int code = n == 0 ? 0 : 11;
	for (uint32_t i = 0; i < 100 && !code; i++)
		if (res[i] != (uint64_t)i * i)
			code = 12;
	if (!code && mproc_pool_close(p))
		code = 13;
	if (!code && mproc_pool_join(p, 30 * MPROC_SEC))
		code = 14;
	mproc_pool_destroy(p);
	return code;
}

Test(lifecycle, a_pool_inside_a_child_process)
{
	for (int m = 0; m < N_METHODS; m++) {
		mproc_process *c;
		cr_assert_eq(mproc_process_create(ctx_of(all_methods[m]),
						  child_with_pool, NULL, 0, &c), 0);
		cr_assert_eq(mproc_process_start(c), 0);
		cr_assert_eq(mproc_process_join(c, 60 * MPROC_SEC), 0,
			     "%s: child hangs", all_methods[m]);
		int code = -1000;
		cr_assert_eq(mproc_process_exitcode(c, &code), 0);
		cr_expect_eq(code, 0, "%s: child's pool failed with %d",
			     all_methods[m], code);
		mproc_process_free(c);
	}
}
