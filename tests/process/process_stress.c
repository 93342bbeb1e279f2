/*
 * Process stress: many starts in a row, starts from several threads at
 * once, and many children alive at the same time, under every method;
 * every child's exit code is checked against what it was asked to return.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#include "process_test.h"

TestSuite(stress, .init = forget_worker_marker);

static int return_arg(void *arg, size_t len)
{
	int v;
	if (len != sizeof(v))
		return 255;
	memcpy(&v, arg, sizeof(v));
	return v & 0xff;
}

Test(stress, many_starts_in_a_row, .timeout = 600)
{
	for (int m = 0; m < N_METHODS; m++)
		for (int i = 0; i < 200; i++) {
			int code = run_target(all_methods[m], return_arg, &i, sizeof(i));
			cr_assert_eq(code, i & 0xff, "%s #%d: %d", all_methods[m], i, code);
		}
}

struct thread_job {
	const char *method;
	int base;
	int failures;
};

static void *starter(void *arg)
{
	struct thread_job *job = arg;
	mproc_context *ctx;
	if (mproc_get_context(job->method, &ctx)) {
		job->failures++;
		return NULL;
	}
	for (int i = 0; i < 30; i++) {
		int v = job->base + i;
		mproc_process *p;
		int code = -1;
		if (mproc_process_create(ctx, return_arg, &v, sizeof(v), &p) ||
		    mproc_process_start(p) ||
		    mproc_process_join(p, MPROC_FOREVER) ||
		    mproc_process_exitcode(p, &code) || code != (v & 0xff))
			job->failures++;
		mproc_process_free(p);
	}
	return NULL;
}

Test(stress, concurrent_starts_from_threads, .timeout = 600)
{
	for (int m = 0; m < N_METHODS; m++) {
		pthread_t t[4];
		struct thread_job jobs[4];
		for (int i = 0; i < 4; i++) {
			jobs[i] = (struct thread_job){ all_methods[m], i * 50, 0 };
			cr_assert_eq(pthread_create(&t[i], NULL, starter, &jobs[i]), 0);
		}
		for (int i = 0; i < 4; i++) {
			pthread_join(t[i], NULL);
			cr_expect_eq(jobs[i].failures, 0, "%s thread %d: %d failures",
				     all_methods[m], i, jobs[i].failures);
		}
	}
}

/* Children wait on a word in a shared segment until the parent releases
 * them all, so that they are all alive at once. */
struct gate_arg {
	char token[MPROC_SHM_TOKEN_MAX];
	int code;
};

static int wait_at_gate(void *arg, size_t len)
{
	struct gate_arg a;
	if (len != sizeof(a))
		return 255;
	memcpy(&a, arg, sizeof(a));
	mproc_shm *seg;
	if (mproc_shm_import(a.token, MPROC_SHM_KIND_RAW, NULL, NULL, &seg))
		return 254;
	_Atomic int *gate = mproc_shm_data(seg);
	/* Acquire pairs with the parent's release store of 1. */
	while (!atomic_load_explicit(gate, memory_order_acquire))
		usleep(1000);
	mproc_shm_free(seg);
	return a.code;
}

Test(stress, many_children_alive_at_once, .timeout = 600)
{
	enum { N = 40 };
	for (int m = 0; m < N_METHODS; m++) {
		mproc_shm *seg;
		cr_assert_eq(mproc_shm_create(NULL, MPROC_SHM_KIND_RAW, NULL, 4096, 0, &seg), 0);
		cr_assert_eq(mproc_shm_publish(seg), 0);
		struct gate_arg a;
		cr_assert_gt(mproc_shm_export(seg, a.token, sizeof(a.token)), 0);
		mproc_process *p[N];
		for (int i = 0; i < N; i++) {
			a.code = i;
			cr_assert_eq(mproc_process_create(ctx_of(all_methods[m]), wait_at_gate,
							  &a, sizeof(a), &p[i]), 0);
			cr_assert_eq(mproc_process_start(p[i]), 0, "%s #%d", all_methods[m], i);
		}
		for (int i = 0; i < N; i++)
			cr_expect_eq(mproc_process_is_alive(p[i]), 1);
		/* Release pairs with the children's acquire loads. */
		atomic_store_explicit((_Atomic int *)mproc_shm_data(seg), 1,
				      memory_order_release);
		/* Join in reverse order of start to exercise any order. */
		for (int i = N - 1; i >= 0; i--) {
			cr_expect_eq(mproc_process_join(p[i], MPROC_FOREVER), 0);
			int code;
			cr_expect_eq(mproc_process_exitcode(p[i], &code), 0);
			cr_expect_eq(code, i, "%s #%d: %d", all_methods[m], i, code);
			mproc_process_free(p[i]);
		}
		mproc_shm_free(seg);
	}
}
