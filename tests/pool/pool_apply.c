/*
 * Pool creation and introspection (attributes, worker count, worker pids,
 * counters) and the blocking apply with the task-side calls: results
 * returned by copy and in place, result buffers too small, task errors and
 * their messages, functions that do not resolve, a handle used from a
 * forked child.
 */
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "pool_test.h"

TestSuite(apply, .init = forget_worker_marker, .timeout = 120);

Test(apply, attr_init_sets_the_documented_defaults)
{
	struct mproc_pool_attr a;
	memset(&a, 0x5a, sizeof a);
	mproc_pool_attr_init(&a);
	cr_expect_null(a.ctx);
	cr_expect_eq(a.processes, 0u);
	cr_expect_null(a.initializer);
	cr_expect_null(a.initarg);
	cr_expect_eq(a.initarg_len, 0u);
	cr_expect_eq(a.maxtasksperchild, 0u);
	cr_expect_eq(a.task_timeout_ns, MPROC_FOREVER);
	cr_expect_eq(a.ring_capacity, 0u);
	cr_expect_eq(a.window, 0u);
}

Test(apply, create_rejects_bad_attributes)
{
	struct mproc_pool_attr a;
	mproc_pool *p = NULL;
	cr_expect_eq(mproc_pool_create(NULL, NULL), -EINVAL);

	mproc_pool_attr_init(&a);
	a.processes = MPROC_POOL_MAX_PROCESSES + 1;
	cr_expect_eq(mproc_pool_create(&a, &p), -EINVAL, "too many processes");

	mproc_pool_attr_init(&a);
	a.task_timeout_ns = -2;
	cr_expect_eq(mproc_pool_create(&a, &p), -EINVAL, "task timeout -2");

	mproc_pool_attr_init(&a);
	a.initializer = init_record;
	a.initarg = NULL;
	a.initarg_len = 8;
	cr_expect_eq(mproc_pool_create(&a, &p), -EINVAL,
		     "initarg_len without initarg");
	cr_expect_null(p, "no pool on failure");
}

Test(apply, processes_zero_means_the_usable_cpus)
{
	mproc_pool *p = pool_new(NULL, 0);
	cr_expect_eq(mproc_pool_processes(p), mproc_cpu_count());
	mproc_pool_destroy(p);
	cr_expect_eq(mproc_pool_processes(NULL), -EINVAL);
}

Test(apply, worker_pids_are_distinct_live_children_of_the_pool)
{
	mproc_pool *p = pool_new(NULL, 3);
	cr_expect_eq(mproc_pool_processes(p), 3);
	pid_t pids[8];
	cr_assert_eq(mproc_pool_worker_pids(p, pids, 8), 3);
	for (int i = 0; i < 3; i++) {
		cr_expect_neq(pids[i], getpid());
		cr_expect(pt_pid_running(pids[i]), "worker %d not running",
			  (int)pids[i]);
		for (int j = 0; j < i; j++)
			cr_expect_neq(pids[i], pids[j], "duplicate worker pid");
	}
	/* A smaller array still gets the full count back. */
	pid_t one[1] = { 0 };
	cr_expect_eq(mproc_pool_worker_pids(p, one, 1), 3);
	cr_expect_eq(one[0], pids[0]);
	cr_expect_eq(mproc_pool_worker_pids(p, NULL, 0), 3);
	cr_expect_eq(mproc_pool_worker_pids(NULL, pids, 8), -EINVAL);

	/* Every task runs in one of those processes. */
	for (int i = 0; i < 20; i++) {
		struct pt_whoami w;
		cr_assert_eq(mproc_pool_apply(p, task_whoami, NULL, 0, &w,
					      sizeof w), (ssize_t)sizeof w);
		bool known = false;
		for (int j = 0; j < 3; j++)
			known |= w.pid == pids[j];
		cr_expect(known, "task ran in %d, not a worker", (int)w.pid);
	}
	mproc_pool_destroy(p);
}

Test(apply, apply_returns_the_result_bytes)
{
	mproc_pool *p = pool_new(NULL, 2);
	for (uint32_t x = 0; x < 50; x++) {
		uint64_t r = 0;
		ssize_t n = mproc_pool_apply(p, task_square, &x, sizeof x, &r,
					     sizeof r);
		cr_assert_eq(n, (ssize_t)sizeof r, "apply: %zd (%s)", n,
			     n < 0 ? mproc_strerror((int)n) : "");
		cr_expect_eq(r, (uint64_t)x * x);
	}
	/* Argument bytes of many sizes come back intact, through a small
	 * ring (streamed in pieces). */
	mproc_pool_destroy(p);
	struct mproc_pool_attr a;
	mproc_pool_attr_init(&a);
	a.processes = 1;
	a.ring_capacity = 4096;
	cr_assert_eq(mproc_pool_create(&a, &p), 0);
	static unsigned char in[300000], out[300000];
	pt_pattern(in, sizeof in, 7);
	static const size_t sizes[] = { 1, 7, 64, 4095, 4096, 4097, 65536,
					300000 };
	for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
		memset(out, 0, sizes[i]);
		ssize_t n = mproc_pool_apply(p, task_echo, in, sizes[i], out,
					     sizeof out);
		cr_assert_eq(n, (ssize_t)sizes[i], "echo %zu: %zd", sizes[i], n);
		cr_expect_eq(memcmp(in, out, sizes[i]), 0, "echo %zu corrupt",
			     sizes[i]);
	}
	mproc_pool_destroy(p);
}

Test(apply, empty_arguments_and_results)
{
	mproc_pool *p = pool_new(NULL, 1);
	cr_expect_eq(mproc_pool_apply(p, task_nothing, NULL, 0, NULL, 0), 0);
	cr_expect_eq(mproc_pool_apply(p, task_echo, NULL, 0, NULL, 0), 0);
	char buf[4];
	cr_expect_eq(mproc_pool_apply(p, task_nothing, "abc", 3, buf,
				      sizeof buf), 0);
	mproc_pool_destroy(p);
}

Test(apply, apply_too_small_a_buffer_is_emsgsize_and_the_pool_goes_on)
{
	mproc_pool *p = pool_new(NULL, 1);
	uint32_t x = 9;
	uint64_t r;
	uint32_t small;
	cr_expect_eq(mproc_pool_apply(p, task_square, &x, sizeof x, &small,
				      sizeof small), -EMSGSIZE);
	cr_expect_eq(mproc_pool_apply(p, task_square, &x, sizeof x, NULL, 0),
		     -EMSGSIZE);
	cr_expect_eq(mproc_pool_apply(p, task_square, &x, sizeof x, &r,
				      sizeof r), (ssize_t)sizeof r);
	cr_expect_eq(r, 81u);
	mproc_pool_destroy(p);
}

Test(apply, apply_rejects_bad_arguments)
{
	mproc_pool *p = pool_new(NULL, 1);
	char buf[8];
	cr_expect_eq(mproc_pool_apply(NULL, task_echo, "a", 1, buf, 8), -EINVAL);
	cr_expect_eq(mproc_pool_apply(p, NULL, "a", 1, buf, 8), -EINVAL);
	cr_expect_eq(mproc_pool_apply(p, task_echo, NULL, 1, buf, 8), -EINVAL);
	/* Still serving afterwards. */
	cr_expect_eq(mproc_pool_apply(p, task_echo, "a", 1, buf, 8), 1);
	mproc_pool_destroy(p);
}

Test(apply, task_error_codes_and_messages_reach_the_caller)
{
	mproc_pool *p = pool_new(NULL, 2);
	static const int32_t codes[] = { EDOM, ERANGE, 1, 77, 4000 };
	for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
		cr_expect_eq(mproc_pool_apply(p, task_fail, &codes[i],
					      sizeof codes[i], NULL, 0),
			     -(ssize_t)codes[i], "code %d", (int)codes[i]);
	}
	/* The message, through an async result. */
	int32_t code = EDOM;
	mproc_async *a;
	cr_assert_eq(mproc_pool_apply_async(p, task_fail, &code, sizeof code,
					    NULL, NULL, NULL, &a), 0);
	const void *data = (void *)1;
	size_t len = 99;
	cr_expect_eq(mproc_async_get(a, 30 * MPROC_SEC, &data, &len), -EDOM);
	cr_expect_eq(mproc_async_successful(a), 0);
	cr_expect_str_eq(mproc_async_error_message(a), "failed on purpose: 33");
	cr_expect_eq(mproc_async_signal(a), 0);
	mproc_async_free(a);

	/* A message longer than 255 bytes is cut there. */
	cr_assert_eq(mproc_pool_apply_async(p, task_long_error, NULL, 0, NULL,
					    NULL, NULL, &a), 0);
	cr_expect_eq(mproc_async_get(a, 30 * MPROC_SEC, NULL, NULL), -EDOM);
	const char *m = mproc_async_error_message(a);
	cr_expect_eq(strlen(m), 255u, "message of %zu bytes", strlen(m));
	cr_expect_eq(m[0], 'A');
	cr_expect_eq(strspn(m + 1, "x"), 254u);
	mproc_async_free(a);
	mproc_pool_destroy(p);
}

Test(apply, task_side_calls_keep_their_contract)
{
	mproc_pool *p = pool_new(NULL, 1);
	char buf[32] = "";
	mproc_async *a;
	cr_assert_eq(mproc_pool_apply_async(p, task_selfcheck, NULL, 0, NULL,
					    NULL, NULL, &a), 0);
	const void *data;
	size_t len;
	int rc = mproc_async_get(a, 30 * MPROC_SEC, &data, &len);
	cr_expect_eq(rc, 0, "selfcheck: %s (%s)", mproc_strerror(rc),
		     mproc_async_error_message(a));
	if (rc == 0) {
		/* The second mproc_task_return replaced the first. */
		cr_expect_eq(len, 2u);
		cr_expect_eq(memcmp(data, "ok", 2), 0);
	}
	mproc_async_free(a);
	/* A successful task has no message and no signal. */
	cr_assert_eq(mproc_pool_apply(p, task_echo, "hi", 2, buf, sizeof buf), 2);
	cr_assert_eq(mproc_pool_apply_async(p, task_nothing, NULL, 0, NULL,
					    NULL, NULL, &a), 0);
	cr_expect_eq(mproc_async_get(a, 30 * MPROC_SEC, NULL, NULL), 0);
	cr_expect_str_eq(mproc_async_error_message(a), "");
	cr_expect_eq(mproc_async_signal(a), 0);
	mproc_async_free(a);
	mproc_pool_destroy(p);
}

/* A pointer that is no function of any loaded object cannot be named to
 * a worker: the task fails with -MPROC_ENOSYMBOL (and the pool goes on). */
static void check_unresolvable_task(const char *method)
{
	mproc_pool *p = pool_new(method, 1);
	void *heap = malloc(64);
	memset(heap, 0xc3, 64); /* ret, in case anything jumped there */
	mproc_task_fn bogus;
	memcpy(&bogus, &heap, sizeof bogus);
	cr_expect_eq(mproc_pool_apply(p, bogus, NULL, 0, NULL, 0),
		     -MPROC_ENOSYMBOL, "%s: heap pointer as a task", method);
	char buf[4];
	cr_expect_eq(mproc_pool_apply(p, task_echo, "abc", 3, buf, 4), 3,
		     "%s: pool unusable after ENOSYMBOL", method);
	struct mproc_pool_stats st;
	cr_assert_eq(mproc_pool_stats(p, &st), 0);
	cr_expect_eq(st.workers_lost, 0u, "%s", method);
	free(heap);
	mproc_pool_destroy(p);
}

Test(apply, a_task_that_does_not_resolve_fails_with_enosymbol)
{
	check_unresolvable_task("fork");
	check_unresolvable_task("spawn");
}

Test(apply, an_initializer_that_does_not_resolve_fails_create)
{
	void *heap = malloc(64);
	memset(heap, 0xc3, 64);
	struct mproc_pool_attr a;
	mproc_pool_attr_init(&a);
	a.ctx = ctx_of("spawn");
	a.processes = 1;
	memcpy(&a.initializer, &heap, sizeof a.initializer);
	mproc_pool *p = NULL;
	cr_expect_eq(mproc_pool_create(&a, &p), -MPROC_ENOSYMBOL);
	cr_expect_null(p);
	free(heap);
}

Test(apply, stats_count_tasks_and_workers)
{
	mproc_pool *p = pool_new(NULL, 2);
	struct mproc_pool_stats st;
	cr_assert_eq(mproc_pool_stats(p, &st), 0);
	cr_expect_eq(st.workers_started, 2u);
	cr_expect_eq(st.submitted, 0u);
	for (uint32_t x = 0; x < 10; x++) {
		uint64_t r;
		cr_assert_eq(mproc_pool_apply(p, task_square, &x, sizeof x,
					      &r, sizeof r), (ssize_t)sizeof r);
	}
	int32_t code = EDOM;
	for (int i = 0; i < 3; i++)
		cr_assert_eq(mproc_pool_apply(p, task_fail, &code, sizeof code,
					      NULL, 0), -EDOM);
	uint32_t items[5] = { 1, 2, 3, 4, 5 };
	uint64_t res[5];
	cr_assert_eq(mproc_pool_map(p, task_square, items, 5, sizeof items[0],
				    res, sizeof res[0], NULL, NULL), 0);
	cr_assert_eq(mproc_pool_stats(p, &st), 0);
	cr_expect_eq(st.submitted, 18u, "submitted %llu",
		     (unsigned long long)st.submitted);
	cr_expect_eq(st.completed, 18u);
	cr_expect_eq(st.failed, 3u, "failed %llu", (unsigned long long)st.failed);
	cr_expect_eq(st.workers_lost, 0u);
	cr_expect_eq(st.workers_retired, 0u);
	cr_expect_eq(st.workers_started, 2u);
	cr_expect_eq(mproc_pool_stats(NULL, &st), -EINVAL);
	cr_expect_eq(mproc_pool_stats(p, NULL), -EINVAL);
	mproc_pool_destroy(p);
}

Test(apply, a_forked_child_cannot_use_the_pool)
{
	mproc_pool *p = pool_new(NULL, 1);
	mproc_async *a = NULL;
	pid_t c = fork();
	cr_assert_geq(c, 0);
	if (c == 0) {
		int bad = 0;
		char buf[4];
		bad |= mproc_pool_apply(p, task_echo, "a", 1, buf, 4) != -ECHILD;
		bad |= (mproc_pool_apply_async(p, task_echo, "a", 1, NULL, NULL,
					       NULL, &a) != -ECHILD) << 1;
		uint32_t it = 1;
		uint64_t r;
		bad |= (mproc_pool_map(p, task_square, &it, 1, sizeof it, &r,
				       sizeof r, NULL, NULL) != -ECHILD) << 2;
		_exit(bad);
	}
	int st;
	cr_assert_eq(waitpid(c, &st, 0), c);
	cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 0,
		  "child saw other than -ECHILD: status %#x", st);
	/* The parent's pool is unharmed. */
	char buf[4];
	cr_expect_eq(mproc_pool_apply(p, task_echo, "abc", 3, buf, 4), 3);
	mproc_pool_destroy(p);
}

Test(apply, every_start_method_runs_tasks)
{
	for (int m = 0; m < N_METHODS; m++) {
		mproc_pool *p = pool_new(all_methods[m], 2);
		for (uint32_t x = 1; x < 20; x++) {
			uint64_t r = 0;
			cr_assert_eq(mproc_pool_apply(p, task_square, &x, sizeof x,
						      &r, sizeof r),
				     (ssize_t)sizeof r, "%s", all_methods[m]);
			cr_expect_eq(r, (uint64_t)x * x);
		}
		mproc_pool_destroy(p);
	}
}

Test(apply, destroy_null_is_a_no_op)
{
	mproc_pool_destroy(NULL);
	mproc_async_free(NULL);
	mproc_imap_free(NULL);
}
