/*
 * The map family: map over fixed-size items (results in place, status
 * array, zero-fill, -EMSGSIZE per item), map_async (callbacks, get),
 * map_iov and starmap over items of any size; item order and
 * mproc_task_index under every chunksize, count 0, the -EINVAL cases, and
 * progress callbacks (never decreasing, done == total exactly once, at the
 * end).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#include "pool_test.h"

TestSuite(map, .init = forget_worker_marker, .timeout = 180);

/* ---- progress ----------------------------------------------------------- */

struct progress {
	pthread_mutex_t lock;
	size_t calls, last_done, total;
	size_t finals;      /* calls with done == total */
	size_t after_final; /* calls after one with done == total */
	size_t decreased;   /* calls whose done was below the previous */
	size_t over;        /* done > total */
	size_t other_total; /* total changed */
};

static void progress_init(struct progress *p)
{
	memset(p, 0, sizeof *p);
	pthread_mutex_init(&p->lock, NULL);
	p->total = SIZE_MAX;
}

static void on_progress(size_t done, size_t total, void *ud)
{
	struct progress *p = ud;
	pthread_mutex_lock(&p->lock);
	if (p->finals)
		p->after_final++;
	if (p->calls && done < p->last_done)
		p->decreased++;
	if (p->total != SIZE_MAX && total != p->total)
		p->other_total++;
	if (done > total)
		p->over++;
	if (done == total)
		p->finals++;
	p->total = total;
	p->last_done = done;
	p->calls++;
	pthread_mutex_unlock(&p->lock);
}

static size_t progress_finals(struct progress *p)
{
	pthread_mutex_lock(&p->lock);
	size_t f = p->finals;
	pthread_mutex_unlock(&p->lock);
	return f;
}

/* Check a finished call's progress record: @count items.  The final call
 * runs on the pool thread and may come just after the call's end, so it
 * is waited for first (briefly: it is due). */
static void expect_progress(struct progress *p, size_t count, const char *what)
{
	cr_expect(POLL_UNTIL(progress_finals(p) > 0, 10000),
		  "%s: no progress call with done == total", what);
	pthread_mutex_lock(&p->lock);
	cr_expect_geq(p->calls, 1u, "%s: no progress call", what);
	cr_expect_eq(p->total, count, "%s: total %zu", what, p->total);
	cr_expect_eq(p->finals, 1u, "%s: done == total %zu times", what,
		     p->finals);
	cr_expect_eq(p->after_final, 0u, "%s: calls after the final one", what);
	cr_expect_eq(p->decreased, 0u, "%s: done went down", what);
	cr_expect_eq(p->over, 0u, "%s: done above total", what);
	cr_expect_eq(p->other_total, 0u, "%s: total changed", what);
	cr_expect_eq(p->last_done, count, "%s: last done %zu", what,
		     p->last_done);
	pthread_mutex_unlock(&p->lock);
}

/* ---- map ---------------------------------------------------------------- */

static void check_squares(mproc_pool *pool, size_t count, size_t chunksize)
{
	uint32_t *items = malloc(count * sizeof *items + 1);
	uint64_t *res = malloc(count * sizeof *res + 1);
	int *status = malloc(count * sizeof *status + 1);
	for (size_t i = 0; i < count; i++) {
		items[i] = (uint32_t)(i * 7 + 1);
		res[i] = UINT64_MAX;
		status[i] = 12345;
	}
	struct progress pr;
	progress_init(&pr);
	struct mproc_map_opts o = { .chunksize = chunksize,
				    .progress = on_progress, .userdata = &pr };
	ssize_t n = mproc_pool_map(pool, task_square, items, count,
				   sizeof *items, res, sizeof *res, status, &o);
	cr_assert_eq(n, 0, "map of %zu, chunksize %zu: %zd (%s)", count,
		     chunksize, n, n < 0 ? mproc_strerror((int)n) : "");
	for (size_t i = 0; i < count; i++) {
		cr_assert_eq(res[i], (uint64_t)items[i] * items[i],
			     "item %zu of %zu (chunksize %zu)", i, count,
			     chunksize);
		cr_assert_eq(status[i], 0);
	}
	if (count) {
		char what[64];
		snprintf(what, sizeof what, "map %zu/%zu", count, chunksize);
		expect_progress(&pr, count, what);
	}
	free(items);
	free(res);
	free(status);
}

Test(map, map_keeps_item_order_under_every_chunksize)
{
	mproc_pool *p = pool_new(NULL, 3);
	static const size_t counts[] = { 1, 2, 5, 97, 1000 };
	static const size_t chunks[] = { 0, 1, 2, 3, 7, 64, 5000 };
	for (size_t c = 0; c < sizeof counts / sizeof counts[0]; c++)
		for (size_t k = 0; k < sizeof chunks / sizeof chunks[0]; k++)
			check_squares(p, counts[c], chunks[k]);
	mproc_pool_destroy(p);
}

Test(map, task_index_is_the_item_index)
{
	mproc_pool *p = pool_new(NULL, 2);
	enum { N = 300 };
	static const size_t chunks[] = { 0, 1, 4, 1000 };
	for (size_t k = 0; k < 4; k++) {
		uint64_t res[N];
		uint8_t items[N];
		memset(items, 0, sizeof items);
		struct mproc_map_opts o = { .chunksize = chunks[k] };
		cr_assert_eq(mproc_pool_map(p, task_index, items, N, 1, res,
					    sizeof res[0], NULL, &o), 0);
		for (size_t i = 0; i < N; i++)
			cr_assert_eq(res[i], i, "chunksize %zu: item %zu says %llu",
				     chunks[k], i, (unsigned long long)res[i]);
	}
	mproc_pool_destroy(p);
}

Test(map, count_zero_does_nothing)
{
	mproc_pool *p = pool_new(NULL, 1);
	uint32_t it = 1;
	uint64_t r = 77;
	cr_expect_eq(mproc_pool_map(p, task_square, &it, 0, sizeof it, &r,
				    sizeof r, NULL, NULL), 0);
	cr_expect_eq(r, 77u);
	struct mproc_map_opts o = { .chunksize = 5 };
	cr_expect_eq(mproc_pool_map(p, task_square, &it, 0, sizeof it, &r,
				    sizeof r, NULL, &o), 0);
	struct mproc_pool_result pr;
	cr_expect_eq(mproc_pool_map_iov(p, task_echo, NULL, 0, &pr, NULL), 0);
	mproc_async *a;
	cr_assert_eq(mproc_pool_map_async(p, task_square, &it, 0, sizeof it, &r,
					  sizeof r, NULL, NULL, &a), 0);
	cr_expect_eq(mproc_async_get(a, 30 * MPROC_SEC, NULL, NULL), 0);
	mproc_async_free(a);
	mproc_pool_destroy(p);
}

Test(map, items_of_size_zero_are_empty_arguments)
{
	mproc_pool *p = pool_new(NULL, 2);
	uint64_t res[10];
	/* Through map_async first, so that a hang shows as a failure in
	 * seconds rather than as the suite's timeout. */
	mproc_async *a;
	cr_assert_eq(mproc_pool_map_async(p, task_index, NULL, 10, 0, res,
					  sizeof res[0], NULL, NULL, &a), 0);
	int rc = mproc_async_get(a, 20 * MPROC_SEC, NULL, NULL);
	struct mproc_pool_stats st;
	mproc_pool_stats(p, &st);
	cr_expect_eq(rc, 0, "map_async of empty items: %s (workers lost: %llu)",
		     mproc_strerror(rc), (unsigned long long)st.workers_lost);
	if (rc == 0) {
		for (size_t i = 0; i < 10; i++)
			cr_expect_eq(res[i], i);
		cr_expect_eq(mproc_pool_map(p, task_index, NULL, 10, 0, res,
					    sizeof res[0], NULL, NULL), 0);
	}
	mproc_async_free(a);
	mproc_pool_destroy(p);
}

Test(map, map_rejects_bad_arguments)
{
	mproc_pool *p = pool_new(NULL, 1);
	uint32_t items[4] = { 1, 2, 3, 4 };
	uint64_t res[4];
	cr_expect_eq(mproc_pool_map(NULL, task_square, items, 4, 4, res, 8,
				    NULL, NULL), -EINVAL);
	cr_expect_eq(mproc_pool_map(p, NULL, items, 4, 4, res, 8, NULL, NULL),
		     -EINVAL);
	cr_expect_eq(mproc_pool_map(p, task_square, NULL, 4, 4, res, 8, NULL,
				    NULL), -EINVAL);
	cr_expect_eq(mproc_pool_map(p, task_square, items, 4, 4, NULL, 8, NULL,
				    NULL), -EINVAL);
	struct mproc_map_opts o = { .chunksize = SIZE_MAX / 4 + 1 };
	cr_expect_eq(mproc_pool_map(p, task_square, items, 4, 4, res, 8, NULL,
				    &o), -EINVAL, "chunksize * item_size overflows");
	mproc_async *a = NULL;
	cr_expect_eq(mproc_pool_map_async(p, task_square, NULL, 4, 4, res, 8,
					  NULL, NULL, &a), -EINVAL);
	cr_expect_eq(mproc_pool_map_async(p, task_square, items, 4, 4, res, 8,
					  NULL, NULL, NULL), -EINVAL);
	cr_expect_eq(mproc_pool_map_async(p, task_square, items, 4, 4, res, 8,
					  NULL, &o, &a), -EINVAL);
	struct mproc_pool_result pr[4];
	cr_expect_eq(mproc_pool_map_iov(p, task_echo, NULL, 4, pr, NULL), -EINVAL);
	cr_expect_eq(mproc_pool_map_iov(NULL, task_echo, NULL, 0, pr, NULL),
		     -EINVAL);
	cr_expect_eq(mproc_pool_starmap(p, NULL, NULL, NULL, 0, pr, NULL),
		     -EINVAL);
	/* The pool still works. */
	cr_expect_eq(mproc_pool_map(p, task_square, items, 4, 4, res, 8, NULL,
				    NULL), 0);
	cr_expect_eq(res[3], 16u);
	mproc_pool_destroy(p);
}

Test(map, per_item_failures_short_and_long_results)
{
	mproc_pool *p = pool_new(NULL, 2);
	enum { N = 12 };
	/* Item i asks task_len for a result of lens[i] bytes; results are
	 * 8 bytes wide. */
	static const uint32_t lens[N] = { 8, 4, 0, 9, 8, 1, 16, 8, 7, 8, 100, 8 };
	unsigned char res[N][8];
	int status[N];
	memset(res, 0x11, sizeof res);
	struct mproc_map_opts o = { .chunksize = 5 };
	ssize_t n = mproc_pool_map(p, task_len, lens, N, sizeof lens[0], res, 8,
				   status, &o);
	cr_expect_eq(n, 3, "failed items: %zd", n);
	for (int i = 0; i < N; i++) {
		if (lens[i] > 8) {
			cr_expect_eq(status[i], -EMSGSIZE, "item %d status %d", i,
				     status[i]);
			continue;
		}
		cr_expect_eq(status[i], 0, "item %d status %d", i, status[i]);
		for (uint32_t b = 0; b < 8; b++)
			cr_expect_eq(res[i][b], b < lens[i] ? 0xab : 0,
				     "item %d byte %u: %#x", i, b, res[i][b]);
	}
	mproc_pool_destroy(p);
}

/* Workers send runs of equal small results under one header (proto.h):
 * runs of every small length, broken by other lengths and by failures,
 * across chunk and message boundaries, each item still lands in its own
 * place with its own status. */
Test(map, runs_of_equal_results_broken_by_others_and_failures)
{
	mproc_pool *p = pool_new(NULL, 2);
	enum { N = 5000, W = 16 };
	static const uint32_t pattern[] = { 0, 8, 3, 100, 16, 8, 1 };
	static uint32_t lens[N];
	static unsigned char res[N][W];
	static int status[N];
	size_t failed = 0;
	for (int i = 0; i < N; i++) {
		/* Runs of 1 to 13 items of one length. */
		lens[i] = pattern[(i / (1 + i % 13)) % 7];
		failed += lens[i] > W;
	}
	memset(res, 0x11, sizeof res);
	struct mproc_map_opts o = { .chunksize = 1000 };
	ssize_t n = mproc_pool_map(p, task_len, lens, N, sizeof lens[0], res, W,
				   status, &o);
	cr_expect_eq(n, (ssize_t)failed, "failed items: %zd", n);
	for (int i = 0; i < N; i++) {
		if (lens[i] > W) {
			cr_assert_eq(status[i], -EMSGSIZE, "item %d", i);
			continue;
		}
		cr_assert_eq(status[i], 0, "item %d status %d", i, status[i]);
		for (uint32_t b = 0; b < W; b++)
			cr_assert_eq(res[i][b], b < lens[i] ? 0xab : 0,
				     "item %d byte %u: %#x", i, b, res[i][b]);
	}
	/* Empty results take no bytes in a run; the worker still cuts its
	 * messages (an item count limit), and the count adds up. */
	enum { E = 200000 };
	static uint32_t zeros[E];
	static int est[E];
	memset(est, 0x7f, sizeof est);
	struct mproc_map_opts one = { .chunksize = E };
	cr_expect_eq(mproc_pool_map(p, task_len, zeros, E, sizeof zeros[0], NULL,
				    0, est, &one), 0);
	for (int i = 0; i < E; i++)
		cr_assert_eq(est[i], 0, "item %d", i);
	struct mproc_pool_stats st;
	cr_assert_eq(mproc_pool_stats(p, &st), 0);
	cr_expect_eq(st.completed, (uint64_t)N + E);
	mproc_pool_destroy(p);
}

/* Item i fails with -(i + 1) when i is a multiple of 4, else squares. */
static int fail_some(mproc_task *t, const void *arg, size_t len)
{
	size_t i = mproc_task_index(t);
	if (i % 4 == 0) {
		mproc_task_set_error(t, "every fourth");
		return -(int)(i + 1);
	}
	return task_square(t, arg, len);
}

Test(map, task_errors_land_in_the_status_array)
{
	mproc_pool *p = pool_new(NULL, 2);
	enum { N = 23 };
	uint32_t items[N];
	uint64_t res[N];
	int status[N];
	for (int i = 0; i < N; i++)
		items[i] = (uint32_t)i;
	ssize_t n = mproc_pool_map(p, fail_some, items, N, 4, res, 8, status,
				   NULL);
	cr_expect_eq(n, 6);
	for (int i = 0; i < N; i++) {
		if (i % 4 == 0)
			cr_expect_eq(status[i], -(i + 1), "item %d", i);
		else {
			cr_expect_eq(status[i], 0, "item %d", i);
			cr_expect_eq(res[i], (uint64_t)i * i);
		}
	}
	/* Without a status array the count still says how many failed. */
	cr_expect_eq(mproc_pool_map(p, fail_some, items, N, 4, res, 8, NULL,
				    NULL), 6);
	mproc_pool_destroy(p);
}

/* ---- map_async ---------------------------------------------------------- */

struct mapcb {
	atomic_int ok, err;
	atomic_int wrong_thread;
	pthread_t submitter;
	int rc;
};

static void map_ok(mproc_async *a, void *ud)
{
	struct mapcb *m = ud;
	if (pthread_equal(pthread_self(), m->submitter))
		atomic_fetch_add(&m->wrong_thread, 1);
	m->rc = mproc_async_get(a, MPROC_NOWAIT, NULL, NULL);
	atomic_fetch_add(&m->ok, 1);
}

static void map_err(mproc_async *a, void *ud)
{
	struct mapcb *m = ud;
	if (pthread_equal(pthread_self(), m->submitter))
		atomic_fetch_add(&m->wrong_thread, 1);
	m->rc = mproc_async_get(a, MPROC_NOWAIT, NULL, NULL);
	atomic_fetch_add(&m->err, 1);
}

Test(map, map_async_fills_the_arrays_and_calls_back_once)
{
	mproc_pool *p = pool_new(NULL, 2);
	enum { N = 500 };
	uint32_t items[N];
	uint64_t res[N];
	int status[N];
	for (int i = 0; i < N; i++)
		items[i] = (uint32_t)i + 3;
	struct mapcb m = { .submitter = pthread_self(), .rc = 1 };
	struct mproc_map_opts o = { .chunksize = 7, .callback = map_ok,
				    .error_callback = map_err, .userdata = &m };
	mproc_async *a;
	cr_assert_eq(mproc_pool_map_async(p, task_square, items, N, 4, res, 8,
					  status, &o, &a), 0);
	const void *data = (void *)1;
	size_t len = 99;
	cr_assert_eq(mproc_async_get(a, 60 * MPROC_SEC, &data, &len), 0);
	cr_expect_eq(len, 0u, "map_async has no result bytes");
	cr_expect_eq(mproc_async_successful(a), 1);
	for (int i = 0; i < N; i++) {
		cr_assert_eq(status[i], 0);
		cr_assert_eq(res[i], (uint64_t)items[i] * items[i], "item %d", i);
	}
	cr_expect(POLL_UNTIL(atomic_load(&m.ok) == 1, 10000));
	cr_expect_eq(atomic_load(&m.err), 0);
	cr_expect_eq(m.rc, 0);
	cr_expect_eq(atomic_load(&m.wrong_thread), 0);
	mproc_async_free(a);

	/* With failures: error_callback, and get gives the first failing
	 * item's error (by index, whatever finished first). */
	struct mapcb e = { .submitter = pthread_self(), .rc = 1 };
	o = (struct mproc_map_opts){ .chunksize = 3, .callback = map_ok,
				     .error_callback = map_err, .userdata = &e };
	cr_assert_eq(mproc_pool_map_async(p, fail_some, items, N, 4, res, 8,
					  status, &o, &a), 0);
	cr_expect_eq(mproc_async_get(a, 60 * MPROC_SEC, NULL, NULL), -1);
	cr_expect_eq(mproc_async_successful(a), 0);
	cr_expect(POLL_UNTIL(atomic_load(&e.err) == 1, 10000));
	cr_expect_eq(atomic_load(&e.ok), 0);
	cr_expect_eq(e.rc, -1);
	for (int i = 0; i < N; i++)
		cr_expect_eq(status[i], i % 4 == 0 ? -(i + 1) : 0, "item %d", i);
	mproc_async_free(a);
	mproc_pool_destroy(p);
}

Test(map, map_async_progress_reaches_the_total_once)
{
	mproc_pool *p = pool_new(NULL, 2);
	enum { N = 2000 };
	static uint32_t items[N];
	static uint64_t res[N];
	for (int i = 0; i < N; i++)
		items[i] = (uint32_t)i;
	struct progress pr;
	progress_init(&pr);
	struct mproc_map_opts o = { .chunksize = 10, .progress = on_progress,
				    .userdata = &pr };
	mproc_async *a;
	cr_assert_eq(mproc_pool_map_async(p, task_square, items, N, 4, res, 8,
					  NULL, &o, &a), 0);
	cr_assert_eq(mproc_async_get(a, 60 * MPROC_SEC, NULL, NULL), 0);
	expect_progress(&pr, N, "map_async");
	mproc_async_free(a);
	mproc_pool_destroy(p);
}

/* ---- map_iov, starmap --------------------------------------------------- */

/* Reverses its argument bytes. */
static int reverse(mproc_task *t, const void *arg, size_t len)
{
	unsigned char *out = mproc_task_result_buffer(t, len);
	if (!out && len)
		return -ENOMEM;
	for (size_t i = 0; i < len; i++)
		out[i] = ((const unsigned char *)arg)[len - 1 - i];
	return 0;
}

Test(map, map_iov_handles_items_of_any_size)
{
	mproc_pool *p = pool_new(NULL, 2);
	enum { N = 40 };
	struct iovec items[N];
	struct mproc_pool_result res[N];
	for (int i = 0; i < N; i++) {
		size_t len = i == 0 ? 0 : (size_t)i * i * 37; /* up to 56 KiB */
		items[i].iov_base = len ? malloc(len) : NULL;
		items[i].iov_len = len;
		pt_pattern(items[i].iov_base, len, (uint64_t)i);
	}
	struct progress pr;
	progress_init(&pr);
	struct mproc_map_opts o = { .chunksize = 3, .progress = on_progress,
				    .userdata = &pr };
	cr_assert_eq(mproc_pool_map_iov(p, reverse, items, N, res, &o), 0);
	for (int i = 0; i < N; i++) {
		size_t len = items[i].iov_len;
		cr_assert_eq(res[i].status, 0);
		cr_assert_eq(res[i].len, len, "item %d: %zu bytes", i, res[i].len);
		if (!len) {
			cr_expect_null(res[i].data);
			continue;
		}
		const unsigned char *in = items[i].iov_base, *out = res[i].data;
		for (size_t b = 0; b < len; b++)
			cr_assert_eq(out[b], in[len - 1 - b], "item %d byte %zu", i, b);
		free(res[i].data);
		free(items[i].iov_base);
	}
	expect_progress(&pr, N, "map_iov");

	/* Failed items: status set, no data. */
	int32_t code = ENOSPC;
	struct iovec fi[3] = { { &code, sizeof code }, { &code, sizeof code },
			       { &code, sizeof code } };
	cr_expect_eq(mproc_pool_map_iov(p, task_fail, fi, 3, res, NULL), 3);
	for (int i = 0; i < 3; i++) {
		cr_expect_eq(res[i].status, -ENOSPC);
		cr_expect_eq(res[i].len, 0u);
		free(res[i].data);
	}
	mproc_pool_destroy(p);
}

Test(map, starmap_passes_each_tuple)
{
	mproc_pool *p = pool_new(NULL, 2);
	enum { N = 30 };
	struct iovec *args[N];
	size_t nargs[N];
	struct mproc_pool_result res[N];
	static char words[][8] = { "a", "bc", "def", "ghij", "" };
	for (int i = 0; i < N; i++) {
		nargs[i] = (size_t)(i % 5); /* 0 to 4 arguments */
		args[i] = calloc(nargs[i] + 1, sizeof(struct iovec));
		for (size_t k = 0; k < nargs[i]; k++) {
			args[i][k].iov_base = words[(i + (int)k) % 5];
			args[i][k].iov_len = strlen(words[(i + (int)k) % 5]);
		}
	}
	struct mproc_map_opts o = { .chunksize = 4 };
	cr_assert_eq(mproc_pool_starmap(p, star_concat,
					(const struct iovec *const *)args, nargs,
					N, res, &o), 0);
	for (int i = 0; i < N; i++) {
		char want[64] = "";
		for (size_t k = 0; k < nargs[i]; k++)
			strcat(want, words[(i + (int)k) % 5]);
		size_t wl = strlen(want);
		cr_assert_eq(res[i].status, 0);
		cr_assert_eq(res[i].len, wl + 4, "tuple %d: %zu bytes", i,
			     res[i].len);
		cr_expect_eq(memcmp(res[i].data, want, wl), 0, "tuple %d", i);
		uint32_t k;
		memcpy(&k, (char *)res[i].data + wl, 4);
		cr_expect_eq(k, nargs[i], "tuple %d: %u arguments", i, k);
		free(res[i].data);
		free(args[i]);
	}
	mproc_pool_destroy(p);
}

Test(map, map_after_close_is_epipe)
{
	mproc_pool *p = pool_new(NULL, 1);
	cr_assert_eq(mproc_pool_close(p), 0);
	uint32_t it = 2;
	uint64_t r;
	mproc_async *a;
	struct mproc_pool_result pr;
	struct iovec iv = { &it, sizeof it };
	const struct iovec *tuple = &iv;
	size_t one = 1;
	cr_expect_eq(mproc_pool_map(p, task_square, &it, 1, 4, &r, 8, NULL,
				    NULL), -EPIPE);
	cr_expect_eq(mproc_pool_map_async(p, task_square, &it, 1, 4, &r, 8, NULL,
					  NULL, &a), -EPIPE);
	cr_expect_eq(mproc_pool_map_iov(p, task_square, &iv, 1, &pr, NULL),
		     -EPIPE);
	cr_expect_eq(mproc_pool_starmap(p, star_concat, &tuple, &one, 1, &pr,
					NULL), -EPIPE);
	cr_expect_eq(mproc_pool_join(p, 30 * MPROC_SEC), 0);
	mproc_pool_destroy(p);
}
