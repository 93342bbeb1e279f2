/*
 * Threads of one process sharing one pool, checked without Criterion so
 * that it also runs under ThreadSanitizer (Criterion's runner cannot start
 * under TSan).
 *
 * Case 1: 8 threads submit apply_async at once, each with a callback;
 * every result is checked by its submitter and every callback counted.
 * Case 2: threads mixing blocking apply, map and imap on one pool.
 * Case 3: 4 threads waiting on one async result.
 * Case 4: close racing with submitting threads: each submission is
 * accepted (and then completes) or refused with -EPIPE, nothing else.
 *
 * Prints "N passed, N failed" and exits non-zero on any failure.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mproc.h"

#define THREADS 8
#define PER_THREAD 5000

static int square(mproc_task *t, const void *arg, size_t len)
{
	uint64_t x;
	if (len != sizeof x)
		return -EINVAL;
	memcpy(&x, arg, sizeof x);
	x *= x;
	return mproc_task_return(t, &x, sizeof x);
}

static atomic_ulong callbacks, callback_errors;

static void on_done(mproc_async *a, void *ud)
{
	uint64_t want = (uint64_t)(uintptr_t)ud;
	const void *data;
	size_t len;
	uint64_t v = 0;
	if (mproc_async_get(a, MPROC_NOWAIT, &data, &len) == 0 && len == 8)
		memcpy(&v, data, 8);
	if (v != want * want)
		atomic_fetch_add(&callback_errors, 1);
	atomic_fetch_add(&callbacks, 1);
}

struct worker {
	mproc_pool *pool;
	int id;
	int errors;
	unsigned long accepted, refused;
	const atomic_int *closing;
};

static void *submit_many(void *arg)
{
	struct worker *w = arg;
	mproc_async **r = calloc(PER_THREAD, sizeof *r);
	for (uint64_t i = 0; i < PER_THREAD; i++) {
		uint64_t x = (uint64_t)w->id * PER_THREAD + i;
		if (mproc_pool_apply_async(w->pool, square, &x, sizeof x, on_done,
					   on_done, (void *)(uintptr_t)x, &r[i])) {
			w->errors++;
			r[i] = NULL;
		}
	}
	for (uint64_t i = 0; i < PER_THREAD; i++) {
		if (!r[i])
			continue;
		uint64_t x = (uint64_t)w->id * PER_THREAD + i, v = 0;
		const void *data;
		size_t len;
		if (mproc_async_get(r[i], 60 * MPROC_SEC, &data, &len) || len != 8)
			w->errors++;
		else {
			memcpy(&v, data, 8);
			w->errors += v != x * x;
		}
		mproc_async_free(r[i]);
	}
	free(r);
	return NULL;
}

static int new_pool(mproc_pool **p, const char *name)
{
	struct mproc_pool_attr a;
	mproc_pool_attr_init(&a);
	a.processes = 2;
	int rc = mproc_pool_create(&a, p);
	if (rc)
		fprintf(stderr, "%s: create: %s\n", name, mproc_strerror(rc));
	return rc;
}

static int case_submitters(void)
{
	mproc_pool *p;
	if (new_pool(&p, "submitters"))
		return 1;
	pthread_t th[THREADS];
	struct worker w[THREADS];
	for (int i = 0; i < THREADS; i++) {
		w[i] = (struct worker){ .pool = p, .id = i };
		pthread_create(&th[i], NULL, submit_many, &w[i]);
	}
	int errors = 0;
	for (int i = 0; i < THREADS; i++) {
		pthread_join(th[i], NULL);
		errors += w[i].errors;
	}
	/* Callbacks may trail the results a little. */
	for (int i = 0; i < 10000 && atomic_load(&callbacks) <
				       (unsigned long)THREADS * PER_THREAD; i++)
		usleep(1000);
	if (atomic_load(&callbacks) != (unsigned long)THREADS * PER_THREAD) {
		fprintf(stderr, "submitters: %lu callbacks of %d\n",
			atomic_load(&callbacks), THREADS * PER_THREAD);
		errors++;
	}
	errors += (int)atomic_load(&callback_errors);
	struct mproc_pool_stats st;
	if (mproc_pool_stats(p, &st) || st.submitted != (uint64_t)THREADS * PER_THREAD ||
	    st.completed != st.submitted || st.failed) {
		fprintf(stderr, "submitters: stats %llu/%llu/%llu\n",
			(unsigned long long)st.submitted,
			(unsigned long long)st.completed,
			(unsigned long long)st.failed);
		errors++;
	}
	mproc_pool_destroy(p);
	printf("%d threads x %d apply_async: %s\n", THREADS, PER_THREAD,
	       errors ? "FAILED" : "ok");
	return errors != 0;
}

/* imap source over 0..n-1. */
struct seq {
	uint64_t next, n, item;
};
static int seq_pull(void *arg, const void **item, size_t *len)
{
	struct seq *s = arg;
	if (s->next == s->n)
		return 0;
	s->item = s->next++;
	*item = &s->item;
	*len = sizeof s->item;
	return 1;
}

static void *mixed(void *arg)
{
	struct worker *w = arg;
	for (int round = 0; round < 20; round++) {
		uint64_t x = (uint64_t)round + (uint64_t)w->id * 100, v = 0;
		switch ((w->id + round) % 3) {
		case 0:
			if (mproc_pool_apply(w->pool, square, &x, 8, &v, 8) != 8 ||
			    v != x * x)
				w->errors++;
			break;
		case 1: {
			uint64_t items[50], res[50];
			for (int i = 0; i < 50; i++)
				items[i] = x + (uint64_t)i;
			if (mproc_pool_map(w->pool, square, items, 50, 8, res, 8,
					   NULL, NULL) != 0)
				w->errors++;
			for (int i = 0; i < 50; i++)
				w->errors += res[i] != items[i] * items[i];
			break;
		}
		default: {
			struct seq s = { .n = 30 };
			mproc_imap *it;
			if (mproc_pool_imap(w->pool, square, seq_pull, &s, NULL,
					    &it)) {
				w->errors++;
				break;
			}
			for (uint64_t i = 0; i < 30; i++) {
				struct mproc_pool_result r;
				if (mproc_imap_next(it, 60 * MPROC_SEC, &r, NULL) ||
				    r.status || r.len != 8) {
					w->errors++;
					break;
				}
				memcpy(&v, r.data, 8);
				w->errors += v != i * i;
			}
			mproc_imap_free(it);
		}
		}
	}
	return NULL;
}

static int case_mixed(void)
{
	mproc_pool *p;
	if (new_pool(&p, "mixed"))
		return 1;
	pthread_t th[6];
	struct worker w[6];
	for (int i = 0; i < 6; i++) {
		w[i] = (struct worker){ .pool = p, .id = i };
		pthread_create(&th[i], NULL, mixed, &w[i]);
	}
	int errors = 0;
	for (int i = 0; i < 6; i++) {
		pthread_join(th[i], NULL);
		errors += w[i].errors;
	}
	mproc_pool_destroy(p);
	printf("6 threads mixing apply, map and imap: %s\n",
	       errors ? "FAILED" : "ok");
	return errors != 0;
}

struct waiter {
	mproc_async *a;
	int rc;
	uint64_t v;
};

static void *wait_one(void *arg)
{
	struct waiter *w = arg;
	const void *data;
	size_t len;
	w->rc = mproc_async_get(w->a, 60 * MPROC_SEC, &data, &len);
	if (!w->rc && len == 8)
		memcpy(&w->v, data, 8);
	return NULL;
}

static int sleepy(mproc_task *t, const void *arg, size_t len)
{
	usleep(20 * 1000);
	return square(t, arg, len);
}

static int case_waiters(void)
{
	mproc_pool *p;
	if (new_pool(&p, "waiters"))
		return 1;
	int errors = 0;
	for (int round = 0; round < 20; round++) {
		uint64_t x = (uint64_t)round + 5;
		mproc_async *a;
		if (mproc_pool_apply_async(p, sleepy, &x, 8, NULL, NULL, NULL, &a)) {
			errors++;
			break;
		}
		pthread_t th[4];
		struct waiter w[4];
		for (int i = 0; i < 4; i++) {
			w[i] = (struct waiter){ .a = a, .rc = 1 };
			pthread_create(&th[i], NULL, wait_one, &w[i]);
		}
		for (int i = 0; i < 4; i++) {
			pthread_join(th[i], NULL);
			errors += w[i].rc != 0 || w[i].v != x * x;
		}
		mproc_async_free(a);
	}
	mproc_pool_destroy(p);
	printf("4 threads waiting on one result: %s\n", errors ? "FAILED" : "ok");
	return errors != 0;
}

static void *submit_until_closed(void *arg)
{
	struct worker *w = arg;
	for (uint64_t i = 0; i < 100000; i++) {
		mproc_async *a;
		uint64_t x = i;
		int rc = mproc_pool_apply_async(w->pool, square, &x, 8, NULL, NULL,
						NULL, &a);
		if (rc == -EPIPE) {
			w->refused++;
			break;
		}
		if (rc) {
			w->errors++;
			break;
		}
		w->accepted++;
		const void *data;
		size_t len;
		uint64_t v = 0;
		if (i % 16 == 0) {
			if (mproc_async_get(a, 60 * MPROC_SEC, &data, &len) || len != 8)
				w->errors++;
			else {
				memcpy(&v, data, 8);
				w->errors += v != x * x;
			}
		}
		mproc_async_free(a);
	}
	return NULL;
}

static int case_close_race(void)
{
	mproc_pool *p;
	if (new_pool(&p, "close race"))
		return 1;
	pthread_t th[4];
	struct worker w[4];
	for (int i = 0; i < 4; i++) {
		w[i] = (struct worker){ .pool = p, .id = i };
		pthread_create(&th[i], NULL, submit_until_closed, &w[i]);
	}
	usleep(50 * 1000); /* let submissions get going; not synchronisation */
	int errors = mproc_pool_close(p) != 0;
	unsigned long accepted = 0;
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		errors += w[i].errors;
		accepted += w[i].accepted;
	}
	if (mproc_pool_join(p, 120 * MPROC_SEC)) {
		fprintf(stderr, "close race: join failed\n");
		errors++;
	}
	struct mproc_pool_stats st;
	if (mproc_pool_stats(p, &st) || st.submitted != accepted ||
	    st.completed != accepted || st.failed) {
		fprintf(stderr, "close race: accepted %lu, stats %llu/%llu/%llu\n",
			accepted, (unsigned long long)st.submitted,
			(unsigned long long)st.completed,
			(unsigned long long)st.failed);
		errors++;
	}
	mproc_pool_destroy(p);
	printf("close racing 4 submitting threads: %s\n", errors ? "FAILED" : "ok");
	return errors != 0;
}

int main(int argc, char **argv)
{
	mproc_main(argc, argv);
	int failed = 0, total = 0;
	total++, failed += case_submitters();
	total++, failed += case_mixed();
	total++, failed += case_waiters();
	total++, failed += case_close_race();
	printf("%d passed, %d failed\n", total - failed, failed);
	return failed ? 1 : 0;
}
