/*
 * mproc_pool.c - mproc's Pool rows (suite "pool"), one case each:
 *
 *   apply_rtt       rtt_us: one blocking mproc_pool_apply of a trivial task
 *                   (8 bytes in, 8 out), median over batches
 *   apply_async     tasks_per_sec: apply_async in batches of 1000, each
 *                   batch waited for, until the time budget (at most 10^5)
 *   map_tiny        tasks_per_sec: mproc_pool_map of 10^6 eight-byte items
 *                   (10^5 with --quick), default chunksize
 *   imap_unordered  tasks_per_sec: imap_unordered, chunksize 1, from a
 *                   source that stops when the time budget is spent
 *
 * The Python rows of the same cases (python_pool: multiprocessing.Pool,
 * python_executor: concurrent.futures.ProcessPoolExecutor) are in
 * base_python_pool.c, with the same worker count (bench_pool_workers()) and the
 * same trivial work (x + 1), so the table's "x python" column is the
 * SPEC's ratio (and python_executor gets a column of its own).  apply_rtt
 * is also set against the queue_rtt row
 * (mproc_queue.c): mproc's own queue round trip, the SPEC's "<= 10x".
 *
 * The pool is created with the default (fork) start method in the
 * harness process, outside the timed part; every result is checked.
 * (Spawned children would enter through mproc_process.c's early hook.)
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mproc.h>

#include "bench.h"
#include "common/clock.h"

/* The trivial task of every case: x + 1 for a uint64 x. */
static int plus_one(mproc_task *t, const void *arg, size_t len)
{
	uint64_t x;
	if (len != sizeof x)
		return -EINVAL;
	memcpy(&x, arg, sizeof x);
	x++;
	return mproc_task_return(t, &x, sizeof x);
}

static int make_pool(mproc_pool **p, struct bench_sample *s)
{
	struct mproc_pool_attr a;
	mproc_pool_attr_init(&a);
	a.processes = (unsigned)bench_pool_workers();
	int rc = mproc_pool_create(&a, p);
	if (rc)
		snprintf(s->note, sizeof s->note, "mproc_pool_create: %s",
			 mproc_strerror(rc));
	return rc;
}

/* ---- apply_rtt ----------------------------------------------------------- */

struct rtt {
	mproc_pool *pool;
	uint64_t x;
};

static int apply_once(void *arg)
{
	struct rtt *r = arg;
	uint64_t y;
	ssize_t n = mproc_pool_apply(r->pool, plus_one, &r->x, sizeof r->x, &y,
				     sizeof y);
	if (n < 0)
		return (int)n;
	if (n != sizeof y || y != r->x + 1)
		return -EBADMSG;
	r->x++;
	return 0;
}

static int run_apply_rtt(struct bench_case *c, struct bench_sample *s)
{
	struct rtt r = { 0 };
	int rc = make_pool(&r.pool, s);
	if (rc)
		return rc;
	struct bench_op_stats st;
	rc = bench_op_loop(c, NULL, apply_once, &r, &st);
	mproc_pool_destroy(r.pool);
	if (rc < 0) {
		snprintf(s->note, sizeof s->note, "apply: %s", mproc_strerror(rc));
		return rc;
	}
	s->fig[BENCH_RTT_US] = st.median_ns / 1000.0;
	return 0;
}

/* ---- apply_async --------------------------------------------------------- */

#define ASYNC_BATCH 1000
#define ASYNC_MAX 100000

static int run_apply_async(struct bench_case *c, struct bench_sample *s)
{
	mproc_pool *pool;
	int rc = make_pool(&pool, s);
	if (rc)
		return rc;
	mproc_async **a = calloc(ASYNC_BATCH, sizeof *a);
	if (!a) {
		mproc_pool_destroy(pool);
		return -ENOMEM;
	}
	uint64_t done = 0;
	int64_t t0 = mproc__now_ns(), t1 = t0;
	while (done < ASYNC_MAX && t1 - t0 < c->duration_ns && !rc) {
		int k = 0;
		for (; k < ASYNC_BATCH && !rc; k++) {
			uint64_t x = done + (uint64_t)k;
			rc = mproc_pool_apply_async(pool, plus_one, &x, sizeof x,
						    NULL, NULL, NULL, &a[k]);
			if (rc)
				snprintf(s->note, sizeof s->note, "apply_async: %s",
					 mproc_strerror(rc));
		}
		if (rc)
			k--;
		for (int i = 0; i < k; i++) {
			const void *data;
			size_t len;
			int r = mproc_async_get(a[i], 60 * MPROC_SEC, &data, &len);
			uint64_t y = 0;
			if (!r && len == sizeof y)
				memcpy(&y, data, sizeof y);
			if (!rc && (r || y != done + (uint64_t)i + 1)) {
				rc = r ? r : -EBADMSG;
				snprintf(s->note, sizeof s->note, "task %llu: %s",
					 (unsigned long long)(done + (uint64_t)i),
					 r ? mproc_strerror(r) : "wrong result");
			}
			mproc_async_free(a[i]);
		}
		done += (uint64_t)k;
		t1 = mproc__now_ns();
	}
	free(a);
	mproc_pool_destroy(pool);
	if (rc)
		return rc;
	s->fig[BENCH_TASKS_PER_SEC] = (double)done * 1e9 / (double)(t1 - t0);
	return 0;
}

/* ---- map_tiny ------------------------------------------------------------ */

static int run_map_tiny(struct bench_case *c, struct bench_sample *s)
{
	size_t n = c->quick ? 100000 : 1000000;
	uint64_t *items = malloc(n * sizeof *items);
	uint64_t *res = malloc(n * sizeof *res);
	mproc_pool *pool = NULL;
	int rc = items && res ? make_pool(&pool, s) : -ENOMEM;
	if (rc) {
		free(items);
		free(res);
		return rc;
	}
	for (size_t i = 0; i < n; i++)
		items[i] = i;
	int64_t t0 = mproc__now_ns();
	ssize_t failed = mproc_pool_map(pool, plus_one, items, n, sizeof *items,
					res, sizeof *res, NULL, NULL);
	int64_t t1 = mproc__now_ns();
	mproc_pool_destroy(pool);
	if (failed < 0) {
		rc = (int)failed;
		snprintf(s->note, sizeof s->note, "map: %s", mproc_strerror(rc));
	} else if (failed > 0) {
		rc = -EIO;
		snprintf(s->note, sizeof s->note, "map: %zd items failed", failed);
	}
	for (size_t i = 0; i < n && !rc; i++)
		if (res[i] != i + 1) {
			rc = -EBADMSG;
			snprintf(s->note, sizeof s->note, "item %zu: wrong result", i);
		}
	free(items);
	free(res);
	if (rc)
		return rc;
	s->fig[BENCH_TASKS_PER_SEC] = (double)n * 1e9 / (double)(t1 - t0);
	return 0;
}

/* ---- imap_unordered ------------------------------------------------------ */

struct timed_src {
	uint64_t next, item;
	int64_t until;
};

static int timed_pull(void *arg, const void **item, size_t *len)
{
	struct timed_src *t = arg;
	/* The clock is read every 256 items: cheap next to a task. */
	if ((t->next & 255) == 0 && mproc__now_ns() >= t->until)
		return 0;
	t->item = t->next++;
	*item = &t->item;
	*len = sizeof t->item;
	return 1;
}

static int run_imap_unordered(struct bench_case *c, struct bench_sample *s)
{
	mproc_pool *pool;
	int rc = make_pool(&pool, s);
	if (rc)
		return rc;
	int64_t t0 = mproc__now_ns();
	struct timed_src src = { .until = t0 + c->duration_ns };
	struct mproc_map_opts o = { .chunksize = 1 };
	mproc_imap *it;
	rc = mproc_pool_imap_unordered(pool, plus_one, timed_pull, &src, &o, &it);
	if (rc) {
		snprintf(s->note, sizeof s->note, "imap_unordered: %s",
			 mproc_strerror(rc));
		mproc_pool_destroy(pool);
		return rc;
	}
	uint64_t got = 0, sum = 0;
	for (;;) {
		struct mproc_pool_result r;
		size_t index;
		rc = mproc_imap_next(it, 60 * MPROC_SEC, &r, &index);
		if (rc == -MPROC_EEOF) {
			rc = 0;
			break;
		}
		if (rc || r.status || r.len != sizeof(uint64_t)) {
			rc = rc ? rc : r.status ? r.status : -EBADMSG;
			snprintf(s->note, sizeof s->note, "imap next: %s",
				 mproc_strerror(rc));
			break;
		}
		uint64_t y;
		memcpy(&y, r.data, sizeof y);
		if (y != index + 1) {
			rc = -EBADMSG;
			snprintf(s->note, sizeof s->note, "item %zu: wrong result",
				 index);
			break;
		}
		sum += index;
		got++;
	}
	int64_t t1 = mproc__now_ns();
	mproc_imap_free(it);
	mproc_pool_destroy(pool);
	if (rc)
		return rc;
	/* Every index 0..got-1 exactly once: their sum says so together
	 * with the count (a duplicate would need a matching omission). */
	if (got != src.next || sum != got * (got - 1) / 2) {
		snprintf(s->note, sizeof s->note, "%llu results for %llu items",
			 (unsigned long long)got, (unsigned long long)src.next);
		return -EBADMSG;
	}
	s->fig[BENCH_TASKS_PER_SEC] = (double)got * 1e9 / (double)(t1 - t0);
	return 0;
}

/* ---- the row -------------------------------------------------------------- */

static int pool_run(struct bench_case *c, struct bench_sample *s)
{
	if (strcmp(c->case_name, "apply_rtt") == 0)
		return run_apply_rtt(c, s);
	if (strcmp(c->case_name, "apply_async") == 0)
		return run_apply_async(c, s);
	if (strcmp(c->case_name, "map_tiny") == 0)
		return run_map_tiny(c, s);
	return run_imap_unordered(c, s);
}

BENCH_REGISTER(mproc_pool) = {
	.suite = "pool",
	.impl = "mproc_pool",
	.descr = "mproc Pool: apply round trip, apply_async, map of 10^6 "
		 "8-byte items, imap_unordered chunksize 1",
	.cases = BENCH_NAMES("apply_rtt", "apply_async", "map_tiny",
			     "imap_unordered"),
	.baselines = BENCH_NAMES("queue_rtt", "python_executor"),
	.run = pool_run,
};
