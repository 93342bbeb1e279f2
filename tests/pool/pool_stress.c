/*
 * The pool when things go wrong, and heavy work (suite "stress", one test
 * at a time):
 *  - a worker SIGKILLed mid-task under each start method: only that task
 *    fails (-MPROC_EWORKERLOST, signal SIGKILL), every other completes,
 *    the worker is counted lost and replaced (CPython gh-66587/gh-96062
 *    hang here);
 *  - tasks that segfault, abort or _exit;
 *  - a task overrunning the pool's task timeout;
 *  - a 64 MiB result, checksummed;
 *  - the parent SIGKILLed: its zygote and workers are gone within 2 s
 *    (pool_parent_helper.c is that parent);
 *  - terminate with a large map in flight.
 */
#include <fcntl.h>
#include <spawn.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "pool_test.h"

TestSuite(stress, .init = forget_worker_marker, .timeout = 300);

extern char **environ;

/* ---- a worker killed mid-task ------------------------------------------- */

static void check_worker_killed(const char *method)
{
	mproc_pool *p = pool_new(method, 2);
	struct pt_tmpdir d;
	pt_tmpdir_new(&d);
	struct pt_file_arg victim;
	pt_file_arg(&victim, &d, "victim.pid", 0);
	mproc_async *va;
	cr_assert_eq(mproc_pool_apply_async(p, task_pidfile_block, &victim,
					    sizeof victim, NULL, NULL, NULL,
					    &va), 0);
	/* Work queued on both workers, some of it behind the victim. */
	enum { N = 40 };
	mproc_async *a[N];
	for (int i = 0; i < N; i++) {
		uint32_t x = (uint32_t)i;
		cr_assert_eq(mproc_pool_apply_async(p, task_square, &x, sizeof x,
						    NULL, NULL, NULL, &a[i]), 0);
	}
	pid_t pid = 0;
	cr_assert(POLL_UNTIL((pid = pt_read_pid(&victim)) > 0, 30000),
		  "%s: the victim task never started", method);
	cr_assert(pt_is_worker(p, pid), "%s: %d is not a worker", method,
		  (int)pid);
	cr_assert_eq(kill(pid, SIGKILL), 0);

	int rc = mproc_async_get(va, 30 * MPROC_SEC, NULL, NULL);
	cr_expect_eq(rc, -MPROC_EWORKERLOST, "%s: victim's task: %s", method,
		     mproc_strerror(rc));
	cr_expect_eq(mproc_async_signal(va), SIGKILL, "%s: signal %d", method,
		     mproc_async_signal(va));
	cr_expect_eq(mproc_async_successful(va), 0);
	for (int i = 0; i < N; i++) {
		const void *data;
		size_t len;
		rc = mproc_async_get(a[i], 30 * MPROC_SEC, &data, &len);
		cr_expect_eq(rc, 0, "%s: task %d: %s", method, i,
			     mproc_strerror(rc));
		if (rc == 0) {
			uint64_t v;
			cr_assert_eq(len, 8u);
			memcpy(&v, data, 8);
			cr_expect_eq(v, (uint64_t)i * i);
		}
		mproc_async_free(a[i]);
	}
	/* Replaced: two workers again, the dead one not among them. */
	cr_expect(POLL_UNTIL(mproc_pool_worker_pids(p, NULL, 0) == 2 &&
			     !pt_is_worker(p, pid), 10000),
		  "%s: no replacement worker", method);
	struct mproc_pool_stats st;
	cr_assert_eq(mproc_pool_stats(p, &st), 0);
	cr_expect_eq(st.workers_lost, 1u, "%s: workers_lost %llu", method,
		     (unsigned long long)st.workers_lost);
	cr_expect_eq(st.workers_started, 3u, "%s: workers_started %llu", method,
		     (unsigned long long)st.workers_started);
	cr_expect_eq(st.failed, 1u);
	/* And the pool goes on, the replacement included. */
	for (int i = 0; i < 10; i++) {
		char buf[8];
		cr_expect_eq(mproc_pool_apply(p, task_echo, "after", 5, buf, 8), 5);
	}
	cr_assert_eq(mproc_pool_close(p), 0);
	cr_expect_eq(mproc_pool_join(p, 30 * MPROC_SEC), 0);
	mproc_async_free(va);
	mproc_pool_destroy(p);
	pt_tmpdir_free(&d);
}

Test(stress, worker_killed_mid_task_fork)
{
	check_worker_killed("fork");
}

Test(stress, worker_killed_mid_task_spawn)
{
	check_worker_killed("spawn");
}

Test(stress, worker_killed_mid_task_forkserver)
{
	check_worker_killed("forkserver");
}

/* A task that ends its own worker: the task fails, the pool goes on. */
static void check_crash(mproc_task_fn fn, int want_signal, const char *what)
{
	mproc_pool *p = pool_new(NULL, 2);
	mproc_async *a, *others[10];
	cr_assert_eq(mproc_pool_apply_async(p, fn, NULL, 0, NULL, NULL, NULL,
					    &a), 0);
	for (int i = 0; i < 10; i++)
		cr_assert_eq(mproc_pool_apply_async(p, task_echo, "x", 1, NULL,
					NULL, NULL, &others[i]), 0);
	int rc = mproc_async_get(a, 30 * MPROC_SEC, NULL, NULL);
	cr_expect_eq(rc, -MPROC_EWORKERLOST, "%s: %s", what, mproc_strerror(rc));
	cr_expect_eq(mproc_async_signal(a), want_signal, "%s: signal %d", what,
		     mproc_async_signal(a));
	for (int i = 0; i < 10; i++) {
		cr_expect_eq(mproc_async_get(others[i], 30 * MPROC_SEC, NULL, NULL),
			     0, "%s: other task %d", what, i);
		mproc_async_free(others[i]);
	}
	struct mproc_pool_stats st;
	cr_assert_eq(mproc_pool_stats(p, &st), 0);
	cr_expect_eq(st.workers_lost, 1u, "%s", what);
	cr_expect(POLL_UNTIL(mproc_pool_worker_pids(p, NULL, 0) == 2, 10000),
		  "%s: not replaced", what);
	char buf[4];
	cr_expect_eq(mproc_pool_apply(p, task_echo, "ok", 2, buf, 4), 2);
	mproc_async_free(a);
	mproc_pool_destroy(p);
}

Test(stress, a_task_that_segfaults)
{
	/* Under ASan too: tests/pool/meson.build sets handle_segv=0, so the
	 * worker dies of the fault itself. */
	check_crash(task_segfault, SIGSEGV, "segfault");
}

Test(stress, a_task_that_aborts)
{
	check_crash(task_abort, SIGABRT, "abort");
}

Test(stress, a_task_that_exits_its_worker)
{
	check_crash(task_exit, 0, "_exit(3)");
}

/* ---- task timeout -------------------------------------------------------- */

Test(stress, an_overrunning_task_fails_with_etimedout)
{
	struct mproc_pool_attr a;
	mproc_pool_attr_init(&a);
	a.processes = 2;
	a.task_timeout_ns = 200 * MPROC_MSEC;
	mproc_pool *p;
	cr_assert_eq(mproc_pool_create(&a, &p), 0);
	struct pt_tmpdir d;
	pt_tmpdir_new(&d);
	struct pt_file_arg g;
	pt_file_arg(&g, &d, "never", 0);
	mproc_async *slow, *quick[20];
	cr_assert_eq(mproc_pool_apply_async(p, task_gate, &g, sizeof g, NULL,
					    NULL, NULL, &slow), 0);
	for (int i = 0; i < 20; i++) {
		int64_t ms = 1;
		cr_assert_eq(mproc_pool_apply_async(p, task_sleep_ms, &ms,
					sizeof ms, NULL, NULL, NULL, &quick[i]), 0);
	}
	int64_t t0 = mproc__now_ns();
	int rc = mproc_async_get(slow, 30 * MPROC_SEC, NULL, NULL);
	int64_t took = mproc__now_ns() - t0;
	cr_expect_eq(rc, -ETIMEDOUT, "overrunning task: %s", mproc_strerror(rc));
	cr_expect_lt(took, 5 * MPROC_SEC, "noticed after %lld ms",
		     (long long)(took / MPROC_MSEC));
	cr_expect_geq(took, 150 * MPROC_MSEC, "timed out after %lld ms",
		      (long long)(took / MPROC_MSEC));
	for (int i = 0; i < 20; i++) {
		cr_expect_eq(mproc_async_get(quick[i], 30 * MPROC_SEC, NULL, NULL),
			     0, "task %d", i);
		mproc_async_free(quick[i]);
	}
	/* The pool goes on with a full set of workers. */
	cr_expect(POLL_UNTIL(mproc_pool_worker_pids(p, NULL, 0) == 2, 10000));
	int64_t ms = 2;
	int64_t back = 0;
	cr_expect_eq(mproc_pool_apply(p, task_sleep_ms, &ms, sizeof ms, &back,
				      sizeof back), 8);
	cr_expect_eq(back, 2);
	mproc_async_free(slow);
	mproc_pool_destroy(p);
	pt_tmpdir_free(&d);
}

/* ---- big results --------------------------------------------------------- */

Test(stress, a_64_mib_result_arrives_intact)
{
	mproc_pool *p = pool_new(NULL, 2);
	const size_t size = (size_t)64 << 20;
	unsigned char *want = malloc(size);
	cr_assert_not_null(want);
	for (uint64_t seed = 1; seed <= 2; seed++) {
		pt_pattern(want, size, seed);
		uint64_t sum = pt_checksum(want, size);
		uint64_t arg[2] = { size, seed };
		mproc_async *a;
		cr_assert_eq(mproc_pool_apply_async(p, task_pattern, arg, sizeof arg,
						    NULL, NULL, NULL, &a), 0);
		const void *data;
		size_t len;
		int rc = mproc_async_get(a, 120 * MPROC_SEC, &data, &len);
		cr_assert_eq(rc, 0, "64 MiB: %s", mproc_strerror(rc));
		cr_assert_eq(len, size);
		cr_expect_eq(pt_checksum(data, len), sum, "checksum differs");
		cr_expect_eq(memcmp(data, want, size), 0);
		mproc_async_free(a);
	}
	/* And 64 MiB of argument bytes, echoed. */
	mproc_async *a;
	cr_assert_eq(mproc_pool_apply_async(p, task_echo, want, size, NULL, NULL,
					    NULL, &a), 0);
	const void *data;
	size_t len;
	cr_assert_eq(mproc_async_get(a, 120 * MPROC_SEC, &data, &len), 0);
	cr_assert_eq(len, size);
	cr_expect_eq(memcmp(data, want, size), 0);
	mproc_async_free(a);
	free(want);
	mproc_pool_destroy(p);
}

Test(stress, a_million_tiny_items)
{
	mproc_pool *p = pool_new(NULL, 2);
	enum { N = 1000000 };
	uint32_t *items = malloc(N * sizeof *items);
	uint64_t *res = malloc(N * sizeof *res);
	for (uint32_t i = 0; i < N; i++)
		items[i] = i;
	cr_assert_eq(mproc_pool_map(p, task_square, items, N, 4, res, 8, NULL,
				    NULL), 0);
	for (uint32_t i = 0; i < N; i++)
		cr_assert_eq(res[i], (uint64_t)i * i, "item %u", i);
	free(items);
	free(res);
	mproc_pool_destroy(p);
}

Test(stress, terminate_in_the_middle_of_a_big_map)
{
	mproc_pool *p = pool_new(NULL, 2);
	enum { N = 100000 };
	uint32_t *items = malloc(N * sizeof *items);
	uint64_t *res = malloc(N * sizeof *res);
	int *status = malloc(N * sizeof *status);
	for (uint32_t i = 0; i < N; i++)
		items[i] = i;
	struct mproc_map_opts o = { .chunksize = 1 };
	mproc_async *a;
	cr_assert_eq(mproc_pool_map_async(p, task_square, items, N, 4, res, 8,
					  status, &o, &a), 0);
	pid_t pids[2];
	cr_assert_eq(mproc_pool_worker_pids(p, pids, 2), 2);
	int64_t t0 = mproc__now_ns();
	cr_assert_eq(mproc_pool_terminate(p), 0);
	cr_expect_lt(mproc__now_ns() - t0, 2 * MPROC_SEC);
	cr_expect_eq(mproc_pool_join(p, 30 * MPROC_SEC), 0);
	int rc = mproc_async_get(a, 30 * MPROC_SEC, NULL, NULL);
	/* Unless the map won the race entirely, it was cancelled. */
	cr_expect(rc == -ECANCELED || rc == 0, "map: %s", mproc_strerror(rc));
	size_t cancelled = 0;
	for (uint32_t i = 0; i < N; i++) {
		if (status[i] == -ECANCELED) {
			cancelled++;
			continue;
		}
		cr_assert_eq(status[i], 0, "item %u: %d", i, status[i]);
		cr_assert_eq(res[i], (uint64_t)i * i);
	}
	cr_expect_eq(rc == -ECANCELED, cancelled > 0);
	for (int i = 0; i < 2; i++)
		cr_expect(POLL_UNTIL(!pt_pid_running(pids[i]), 2000));
	mproc_async_free(a);
	free(items);
	free(res);
	free(status);
	mproc_pool_destroy(p);
}

/* ---- the parent killed --------------------------------------------------- */

static void check_parent_killed(const char *method)
{
	int out[2];
	cr_assert_eq(pipe2(out, O_CLOEXEC), 0);
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, out[1], 1);
	char *argv[] = { (char *)MPROC_TEST_POOL_PARENT_HELPER, (char *)method,
			 NULL };
	pid_t helper;
	cr_assert_eq(posix_spawn(&helper, argv[0], &fa, NULL, argv, environ), 0);
	posix_spawn_file_actions_destroy(&fa);
	close(out[1]);
	FILE *from = fdopen(out[0], "r");
	cr_assert_not_null(from);
	/* "pids P1 P2 P3": the workers, once the pool is up. */
	char line[256];
	cr_assert_not_null(fgets(line, sizeof line, from), "%s: helper said "
			   "nothing", method);
	pid_t workers[8];
	int nw = 0;
	char *s = line;
	cr_assert_eq(strncmp(s, "pids", 4), 0, "%s: helper said %s", method, line);
	s += 4;
	for (char *end; nw < 8; s = end) {
		long v = strtol(s, &end, 10);
		if (end == s)
			break;
		workers[nw++] = (pid_t)v;
	}
	cr_assert_eq(nw, 3, "%s: %d worker pids", method, nw);
	/* Everything below the helper: zygote, workers (and, under
	 * forkserver, the server). */
	pid_t all[64];
	size_t na = pt_descendants(helper, all, 64);
	for (int i = 0; i < nw; i++) {
		bool below = false;
		for (size_t k = 0; k < na; k++)
			below |= all[k] == workers[i];
		cr_expect(below, "%s: worker %d is not below the helper", method,
			  (int)workers[i]);
	}
	cr_assert_eq(kill(helper, SIGKILL), 0);
	int st;
	cr_assert_eq(waitpid(helper, &st, 0), helper);
	int64_t t0 = mproc__now_ns();
	for (size_t k = 0; k < na; k++) {
		bool gone = POLL_UNTIL(!pt_pid_running(all[k]), 2000);
		cr_expect(gone, "%s: process %d outlived its killed parent by "
			  "%lld ms", method, (int)all[k],
			  (long long)((mproc__now_ns() - t0) / MPROC_MSEC));
		if (!gone)
			kill(all[k], SIGKILL); /* leave nothing behind */
	}
	fclose(from);
}

Test(stress, parent_killed_takes_the_pool_with_it_fork)
{
	check_parent_killed("fork");
}

Test(stress, parent_killed_takes_the_pool_with_it_spawn)
{
	check_parent_killed("spawn");
}

Test(stress, parent_killed_takes_the_pool_with_it_forkserver)
{
	check_parent_killed("forkserver");
}

/* The zygote SIGKILLed: no worker can be started any more.  Every task
 * not finished fails with -MPROC_EWORKERLOST (none hangs), new work is
 * refused, join returns and the workers do not outlive it. */
static pid_t parent_of(pid_t pid)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "r");
	cr_assert_not_null(f);
	int self, ppid;
	char state;
	cr_assert_eq(fscanf(f, "%d %*s %c %d", &self, &state, &ppid), 3);
	fclose(f);
	return ppid;
}

static void check_zygote_killed(const char *method)
{
	mproc_pool *p = pool_new(method, 2);
	int64_t ms = 30000;
	mproc_async *a[4];
	for (int i = 0; i < 4; i++)
		cr_assert_eq(mproc_pool_apply_async(p, task_sleep_ms, &ms,
						    sizeof ms, NULL, NULL, NULL,
						    &a[i]), 0);
	pid_t pids[2];
	cr_assert(POLL_UNTIL(mproc_pool_worker_pids(p, pids, 2) == 2, 10000));
	pid_t zygote = parent_of(pids[0]);
	cr_assert_neq(zygote, getpid(), "workers come from the zygote");
	cr_assert_eq(kill(zygote, SIGKILL), 0);
	for (int i = 0; i < 4; i++) {
		int rc = mproc_async_get(a[i], 10 * MPROC_SEC, NULL, NULL);
		cr_expect_eq(rc, -MPROC_EWORKERLOST, "%s task %d: %s", method, i,
			     mproc_strerror(rc));
		mproc_async_free(a[i]);
	}
	char buf[8];
	cr_expect_eq(mproc_pool_apply(p, task_echo, "x", 1, buf, sizeof buf),
		     -EPIPE);
	cr_expect_eq(mproc_pool_join(p, 10 * MPROC_SEC), 0);
	mproc_pool_destroy(p);
}

Test(stress, zygote_killed_fails_the_rest_fork)
{
	check_zygote_killed("fork");
}

Test(stress, zygote_killed_fails_the_rest_forkserver)
{
	check_zygote_killed("forkserver");
}
