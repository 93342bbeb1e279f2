/*
 * imap and imap_unordered: results in item order / every index exactly
 * once, bounded read-ahead of the source (buffersize), next() with a
 * timeout, a source that fails (the iteration ends with its error after
 * the earlier results), -MPROC_EEOF at the end, freeing mid-way; no
 * progress or callbacks (imap's total is not known in advance).
 */
#include <pthread.h>
#include <string.h>
#include <unistd.h>

#include "pool_test.h"

TestSuite(imap, .init = forget_worker_marker, .timeout = 180);

/* A source of uint32 items 0..count-1 that records how far ahead of the
 * consumer it was read and from which threads. */
struct src {
	uint32_t count;
	uint32_t next;       /* items handed out */
	uint32_t fail_at;    /* return -EIO instead of this item (or never) */
	uint32_t item;       /* storage of the item last handed out */
	uint32_t yielded;    /* results the test has taken (set by the test) */
	uint32_t max_ahead;  /* most of next - yielded seen at a pull */
	pthread_t owner;
	int wrong_thread;
	int calls_after_end;
	bool ended;
	struct pt_file_arg *gate; /* when set, items are gate arguments */
};

static void src_init(struct src *s, uint32_t count)
{
	memset(s, 0, sizeof *s);
	s->count = count;
	s->fail_at = UINT32_MAX;
	s->owner = pthread_self();
}

static int src_pull(void *arg, const void **item, size_t *len)
{
	struct src *s = arg;
	if (!pthread_equal(pthread_self(), s->owner))
		s->wrong_thread++;
	if (s->ended)
		s->calls_after_end++;
	if (s->next == s->fail_at) {
		s->ended = true;
		return -EIO;
	}
	if (s->next == s->count) {
		s->ended = true;
		return 0;
	}
	s->item = s->next++;
	if (s->next - s->yielded > s->max_ahead)
		s->max_ahead = s->next - s->yielded;
	if (s->gate) {
		s->gate->n = s->item;
		*item = s->gate;
		*len = sizeof *s->gate;
	} else {
		*item = &s->item;
		*len = sizeof s->item;
	}
	return 1;
}

Test(imap, imap_yields_results_in_item_order)
{
	mproc_pool *p = pool_new(NULL, 3);
	static const size_t chunks[] = { 0, 1, 3, 50 };
	for (size_t k = 0; k < 4; k++) {
		struct src s;
		src_init(&s, 500);
		struct mproc_map_opts o = { .chunksize = chunks[k] };
		mproc_imap *it;
		cr_assert_eq(mproc_pool_imap(p, task_square, src_pull, &s, &o,
					     &it), 0);
		for (uint32_t i = 0; i < 500; i++) {
			struct mproc_pool_result r;
			size_t index = SIZE_MAX;
			int rc = mproc_imap_next(it, 30 * MPROC_SEC, &r, &index);
			cr_assert_eq(rc, 0, "chunksize %zu, item %u: %s",
				     chunks[k], i, mproc_strerror(rc));
			s.yielded++;
			cr_assert_eq(index, i);
			cr_assert_eq(r.status, 0);
			cr_assert_eq(r.len, 8u);
			uint64_t v;
			memcpy(&v, r.data, 8);
			cr_assert_eq(v, (uint64_t)i * i, "item %u", i);
		}
		struct mproc_pool_result r;
		cr_expect_eq(mproc_imap_next(it, 30 * MPROC_SEC, &r, NULL),
			     -MPROC_EEOF);
		cr_expect_eq(mproc_imap_next(it, MPROC_NOWAIT, &r, NULL),
			     -MPROC_EEOF, "end of iteration is sticky");
		cr_expect_eq(s.wrong_thread, 0, "source called off the caller's thread");
		cr_expect_eq(s.calls_after_end, 0, "source called after its end");
		mproc_imap_free(it);
	}
	mproc_pool_destroy(p);
}

Test(imap, imap_unordered_yields_every_index_once)
{
	mproc_pool *p = pool_new(NULL, 3);
	enum { N = 700 };
	static const size_t chunks[] = { 1, 4, 0 };
	for (size_t k = 0; k < 3; k++) {
		struct src s;
		src_init(&s, N);
		struct mproc_map_opts o = { .chunksize = chunks[k] };
		mproc_imap *it;
		cr_assert_eq(mproc_pool_imap_unordered(p, task_square, src_pull,
						       &s, &o, &it), 0);
		static uint8_t seen[N];
		memset(seen, 0, sizeof seen);
		for (uint32_t i = 0; i < N; i++) {
			struct mproc_pool_result r;
			size_t index = SIZE_MAX;
			int rc = mproc_imap_next(it, 30 * MPROC_SEC, &r, &index);
			cr_assert_eq(rc, 0, "result %u: %s", i, mproc_strerror(rc));
			s.yielded++;
			cr_assert_lt(index, (size_t)N);
			cr_assert_eq(seen[index]++, 0, "index %zu twice", index);
			cr_assert_eq(r.status, 0);
			uint64_t v;
			cr_assert_eq(r.len, 8u);
			memcpy(&v, r.data, 8);
			cr_assert_eq(v, (uint64_t)index * index);
		}
		struct mproc_pool_result r;
		cr_expect_eq(mproc_imap_next(it, 30 * MPROC_SEC, &r, NULL),
			     -MPROC_EEOF);
		mproc_imap_free(it);
	}
	mproc_pool_destroy(p);
}

Test(imap, buffersize_bounds_how_far_the_source_is_read)
{
	mproc_pool *p = pool_new(NULL, 2);
	static const size_t bufs[] = { 1, 3, 10 };
	for (int unordered = 0; unordered < 2; unordered++)
		for (size_t k = 0; k < 3; k++) {
			struct src s;
			src_init(&s, 200);
			struct mproc_map_opts o = { .chunksize = 1,
						    .buffersize = bufs[k] };
			mproc_imap *it;
			int rc = unordered
				? mproc_pool_imap_unordered(p, task_square, src_pull,
							    &s, &o, &it)
				: mproc_pool_imap(p, task_square, src_pull, &s, &o,
						  &it);
			cr_assert_eq(rc, 0);
			cr_expect_leq(s.next, bufs[k], "read %u ahead at the start",
				      s.next);
			for (uint32_t i = 0; i < 200; i++) {
				struct mproc_pool_result r;
				cr_assert_eq(mproc_imap_next(it, 30 * MPROC_SEC, &r,
							     NULL), 0);
				s.yielded++;
				/* The consumer took i + 1; at most buffersize
				 * more may have been read. */
				cr_assert_leq(s.next, s.yielded + bufs[k],
					      "%s buffersize %zu: read %u with %u taken",
					      unordered ? "unordered" : "ordered",
					      bufs[k], s.next, s.yielded);
			}
			cr_expect_leq(s.max_ahead, bufs[k] + 1);
			/* The bound is not a trickle: the source was read
			 * ahead by the full buffer at some point. */
			cr_expect_geq(s.max_ahead, bufs[k], "%s buffersize %zu: "
				      "never read ahead more than %u",
				      unordered ? "unordered" : "ordered", bufs[k],
				      s.max_ahead);
			mproc_imap_free(it);
		}
	mproc_pool_destroy(p);
}

Test(imap, next_times_out_while_the_item_runs)
{
	mproc_pool *p = pool_new(NULL, 1);
	struct pt_tmpdir d;
	pt_tmpdir_new(&d);
	struct pt_file_arg g;
	pt_file_arg(&g, &d, "gate", 0);
	struct src s;
	src_init(&s, 3);
	s.gate = &g;
	mproc_imap *it;
	cr_assert_eq(mproc_pool_imap(p, task_gate, src_pull, &s, NULL, &it), 0);
	struct mproc_pool_result r;
	int64_t t0 = mproc__now_ns();
	cr_expect_eq(mproc_imap_next(it, 10 * MPROC_MSEC, &r, NULL), -ETIMEDOUT);
	cr_expect_geq(mproc__now_ns() - t0, 10 * MPROC_MSEC);
	cr_expect_eq(mproc_imap_next(it, MPROC_NOWAIT, &r, NULL), -ETIMEDOUT);
	pt_open_gate(&g);
	for (int64_t i = 0; i < 3; i++) {
		size_t index;
		cr_assert_eq(mproc_imap_next(it, 30 * MPROC_SEC, &r, &index), 0);
		cr_expect_eq(index, (size_t)i);
		int64_t v;
		cr_assert_eq(r.len, sizeof v);
		memcpy(&v, r.data, sizeof v);
		cr_expect_eq(v, i);
	}
	cr_expect_eq(mproc_imap_next(it, 30 * MPROC_SEC, &r, NULL), -MPROC_EEOF);
	mproc_imap_free(it);
	mproc_pool_destroy(p);
	pt_tmpdir_free(&d);
}

Test(imap, a_failing_source_ends_the_iteration_after_earlier_results)
{
	mproc_pool *p = pool_new(NULL, 2);
	for (int unordered = 0; unordered < 2; unordered++) {
		struct src s;
		src_init(&s, 100);
		s.fail_at = 7;
		mproc_imap *it;
		int rc = unordered
			? mproc_pool_imap_unordered(p, task_square, src_pull, &s,
						    NULL, &it)
			: mproc_pool_imap(p, task_square, src_pull, &s, NULL, &it);
		/* The source may already fail inside imap; either way the
		 * error comes after the 7 results. */
		cr_assert_eq(rc, 0);
		uint8_t seen[7] = { 0 };
		for (int i = 0; i < 7; i++) {
			struct mproc_pool_result r;
			size_t index;
			rc = mproc_imap_next(it, 30 * MPROC_SEC, &r, &index);
			cr_assert_eq(rc, 0, "%s result %d: %s",
				     unordered ? "unordered" : "ordered", i,
				     mproc_strerror(rc));
			cr_assert_lt(index, 7u);
			cr_expect_eq(seen[index]++, 0);
			if (!unordered)
				cr_expect_eq(index, (size_t)i);
		}
		struct mproc_pool_result r;
		cr_expect_eq(mproc_imap_next(it, 30 * MPROC_SEC, &r, NULL), -EIO);
		cr_expect_eq(s.calls_after_end, 0, "source read after its error");
		mproc_imap_free(it);
	}
	mproc_pool_destroy(p);
}

/* A source of items of every size from 0 to 199 bytes, each filled from
 * its index, so that a result can be checked against its item. */
struct sized_src {
	uint32_t count, next;
	unsigned char buf[256];
};

static void sized_fill(unsigned char *b, uint32_t i)
{
	for (uint32_t k = 0; k < i % 200; k++)
		b[k] = (unsigned char)(i * 31 + k);
}

static int sized_pull(void *arg, const void **item, size_t *len)
{
	struct sized_src *s = arg;
	if (s->next == s->count)
		return 0;
	sized_fill(s->buf, s->next);
	*item = s->buf;
	*len = s->next % 200;
	s->next++;
	return 1;
}

/* Small items and results travel in blocks and nodes that are reused
 * (imap.c), larger ones in their own: every size, both orders, chunks of
 * one item and of several, and every result intact. */
Test(imap, items_and_results_of_every_size_come_back_intact)
{
	mproc_pool *p = pool_new(NULL, 2);
	enum { N = 3000 };
	static const size_t chunks[] = { 1, 7 };
	for (int unordered = 0; unordered < 2; unordered++)
		for (size_t k = 0; k < 2; k++) {
			struct sized_src s = { .count = N };
			struct mproc_map_opts o = { .chunksize = chunks[k],
						    .buffersize = 40 };
			mproc_imap *it;
			int rc = unordered
				? mproc_pool_imap_unordered(p, task_echo, sized_pull,
							    &s, &o, &it)
				: mproc_pool_imap(p, task_echo, sized_pull, &s, &o,
						  &it);
			cr_assert_eq(rc, 0);
			static uint8_t seen[N];
			memset(seen, 0, sizeof seen);
			for (uint32_t i = 0; i < N; i++) {
				struct mproc_pool_result r;
				size_t index = SIZE_MAX;
				rc = mproc_imap_next(it, 30 * MPROC_SEC, &r, &index);
				cr_assert_eq(rc, 0, "result %u: %s", i,
					     mproc_strerror(rc));
				cr_assert_lt(index, (size_t)N);
				if (!unordered)
					cr_assert_eq(index, i);
				cr_assert_eq(seen[index]++, 0, "index %zu twice",
					     index);
				cr_assert_eq(r.status, 0);
				cr_assert_eq(r.len, index % 200, "index %zu", index);
				unsigned char want[256];
				sized_fill(want, (uint32_t)index);
				cr_assert(r.len == 0 || memcmp(r.data, want, r.len) == 0,
					  "index %zu: wrong bytes", index);
			}
			struct mproc_pool_result r;
			cr_expect_eq(mproc_imap_next(it, 30 * MPROC_SEC, &r, NULL),
				     -MPROC_EEOF);
			mproc_imap_free(it);
		}
	mproc_pool_destroy(p);
}

Test(imap, failed_items_are_results_with_a_status)
{
	mproc_pool *p = pool_new(NULL, 2);
	struct src s;
	src_init(&s, 10);
	mproc_imap *it;
	cr_assert_eq(mproc_pool_imap(p, task_fail, src_pull, &s, NULL, &it), 0);
	for (int i = 0; i < 10; i++) {
		struct mproc_pool_result r;
		cr_assert_eq(mproc_imap_next(it, 30 * MPROC_SEC, &r, NULL), 0);
		cr_expect_eq(r.status, -i, "item %d: status %d", i, r.status);
	}
	struct mproc_pool_result r;
	cr_expect_eq(mproc_imap_next(it, 30 * MPROC_SEC, &r, NULL), -MPROC_EEOF);
	mproc_imap_free(it);
	mproc_pool_destroy(p);
}

static void no_progress(size_t done, size_t total, void *ud)
{
	(void)done;
	(void)total;
	(void)ud;
}

static void no_callback(mproc_async *a, void *ud)
{
	(void)a;
	(void)ud;
}

Test(imap, imap_refuses_progress_and_callbacks)
{
	/* imap's total is not known in advance: progress and the map_async
	 * callbacks must be NULL (the caller counts what next yields). */
	mproc_pool *p = pool_new(NULL, 1);
	struct src s;
	src_init(&s, 5);
	mproc_imap *it;
	struct mproc_map_opts o = { .progress = no_progress };
	cr_expect_eq(mproc_pool_imap(p, task_square, src_pull, &s, &o, &it),
		     -EINVAL);
	cr_expect_eq(mproc_pool_imap_unordered(p, task_square, src_pull, &s, &o,
					       &it), -EINVAL);
	o = (struct mproc_map_opts){ .callback = no_callback };
	cr_expect_eq(mproc_pool_imap(p, task_square, src_pull, &s, &o, &it),
		     -EINVAL);
	o = (struct mproc_map_opts){ .error_callback = no_callback };
	cr_expect_eq(mproc_pool_imap_unordered(p, task_square, src_pull, &s, &o,
					       &it), -EINVAL);
	mproc_pool_destroy(p);
}

Test(imap, a_source_failing_on_its_first_item)
{
	/* Either imap itself or the first next reports the error. */
	mproc_pool *p = pool_new(NULL, 1);
	struct src s;
	src_init(&s, 5);
	s.fail_at = 0;
	mproc_imap *it = NULL;
	int rc = mproc_pool_imap(p, task_square, src_pull, &s, NULL, &it);
	if (rc == 0) {
		struct mproc_pool_result r;
		cr_expect_eq(mproc_imap_next(it, 30 * MPROC_SEC, &r, NULL), -EIO);
		mproc_imap_free(it);
	} else {
		cr_expect_eq(rc, -EIO, "imap: %s", mproc_strerror(rc));
	}
	cr_expect_eq(s.calls_after_end, 0);
	mproc_pool_destroy(p);
}

Test(imap, free_in_the_middle_and_bad_arguments)
{
	mproc_pool *p = pool_new(NULL, 2);
	struct src s;
	src_init(&s, 1000);
	mproc_imap *it;
	cr_assert_eq(mproc_pool_imap(p, task_square, src_pull, &s, NULL, &it), 0);
	struct mproc_pool_result r;
	cr_assert_eq(mproc_imap_next(it, 30 * MPROC_SEC, &r, NULL), 0);
	mproc_imap_free(it);
	uint32_t read = s.next;
	/* The pool is fine and the freed iterator's source is left alone. */
	uint32_t x = 12;
	uint64_t v;
	cr_expect_eq(mproc_pool_apply(p, task_square, &x, 4, &v, 8), 8);
	cr_expect_eq(s.next, read);

	cr_expect_eq(mproc_pool_imap(NULL, task_square, src_pull, &s, NULL, &it),
		     -EINVAL);
	cr_expect_eq(mproc_pool_imap(p, NULL, src_pull, &s, NULL, &it), -EINVAL);
	cr_expect_eq(mproc_pool_imap(p, task_square, NULL, &s, NULL, &it),
		     -EINVAL);
	cr_expect_eq(mproc_pool_imap(p, task_square, src_pull, &s, NULL, NULL),
		     -EINVAL);
	cr_expect_eq(mproc_pool_imap_unordered(p, task_square, NULL, &s, NULL,
					       &it), -EINVAL);
	cr_expect_eq(mproc_imap_next(NULL, 0, &r, NULL), -EINVAL);
	cr_assert_eq(mproc_pool_close(p), 0);
	src_init(&s, 3);
	cr_expect_eq(mproc_pool_imap(p, task_square, src_pull, &s, NULL, &it),
		     -EPIPE);
	cr_expect_eq(mproc_pool_imap_unordered(p, task_square, src_pull, &s, NULL,
					       &it), -EPIPE);
	mproc_pool_destroy(p);
}
