/*
 * Crash-safety unit tests of the rings under the Queue (issue 10): the
 * states a process killed at the wrong instant leaves behind, built
 * deterministically with the ring verbs (a view that stops half-way is a
 * process that died there), then the Queue calls a survivor or a
 * replacement makes.  The dead-claimer tests of the MPMC ring kill real
 * processes, because recovery asks /proc whether the claimer lives.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mproc/queue.h"
#include "common/clock.h"
#include "ring/ring.h"

TestSuite(spsc_crash, .timeout = 30);
TestSuite(mpmc_crash, .timeout = 60);

/* A ring in anonymous shared memory: shared indices, then the buffer. */
struct test_ring {
	int kind;
	struct mproc__ring_geom g;
	void *sh, *buf;
};

static struct test_ring ring_new(int kind, uint64_t cap, uint64_t max)
{
	struct test_ring t = {.kind = kind};
	cr_assert_eq(mproc__ring_plan(kind, cap, max, cap, &t.g), 0);
	size_t shsz = mproc__ring_shared_size(kind);
	size_t total = shsz + mproc__ring_buf_size(kind, &t.g);
	unsigned char *m = mmap(NULL, total, PROT_READ | PROT_WRITE,
				MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	cr_assert_neq(m, MAP_FAILED);
	t.sh = m;
	t.buf = m + shsz;
	mproc__ring_init_shared(kind, t.sh, t.buf, &t.g, 0);
	return t;
}

static int view(struct test_ring *t, struct mproc__ring *r)
{
	return mproc__ring_attach(r, t->kind, t->sh, t->buf, &t->g, false);
}

static void put_one(struct mproc__ring *r, uint32_t v, bool publish)
{
	uint64_t tok;
	void *p;
	int rc = mproc__ring_reserve(r, sizeof(v), &tok, &p);
	cr_assert_eq(rc, 0, "reserve: %s", mproc_strerror(rc));
	memcpy(p, &v, sizeof(v));
	mproc__ring_commit(r, tok, sizeof(v), 0, publish);
}

static int get_one(struct mproc__ring *r, uint32_t *v)
{
	uint64_t tok, len;
	const void *p;
	uint32_t flags;
	int rc = mproc__ring_peek(r, UINT64_MAX, &tok, &p, &len, &flags);
	if (rc)
		return rc;
	cr_assert_eq(len, sizeof(*v));
	memcpy(v, p, sizeof(*v));
	mproc__ring_release(r, tok, true);
	return 0;
}

/* Defects 2 and 3: a producer tagged a batch and died before storing
 * head; the consumer took part of the batch (so tail is ahead of head).
 * A new view must attach, and a replacement producer must continue after
 * the last committed record: nothing lost, nothing overwritten. */
Test(spsc_crash, producer_dead_before_head_store_is_taken_over)
{
	struct test_ring t = ring_new(MPROC__RING_SPSC, 1024, 0);
	struct mproc__ring p1, c;
	cr_assert_eq(view(&t, &p1), 0);
	cr_assert_eq(view(&t, &c), 0);
	for (uint32_t i = 0; i < 5; i++)
		put_one(&p1, i, false); /* tagged; head never stored */
	uint32_t v;
	for (uint32_t i = 0; i < 3; i++) {
		cr_assert_eq(get_one(&c, &v), 0);
		cr_assert_eq(v, i);
	}
	struct mproc__ring p2;
	int rc = view(&t, &p2);
	cr_assert_eq(rc, 0, "attach beside a tail ahead of head: %s",
		     mproc_strerror(rc));
	put_one(&p2, 100, true);
	put_one(&p2, 101, true);
	cr_assert_eq(mproc__ring_count(&c), 4, "qsize %llu",
		     (unsigned long long)mproc__ring_count(&c));
	uint32_t want[] = {3, 4, 100, 101};
	for (int i = 0; i < 4; i++) {
		rc = get_one(&c, &v);
		cr_assert_eq(rc, 0, "get %d: %s", i, mproc_strerror(rc));
		cr_assert_eq(v, want[i], "get %d: %u", i, v);
	}
	cr_assert_eq(get_one(&c, &v), -EAGAIN);
	cr_assert_eq(mproc__ring_count(&c), 0);
}

/* Defect 2, second half: the replacement attached before the producer
 * that died (so its idea of head is old and equal to the shared head),
 * and the dead producer's records were not consumed yet. */
Test(spsc_crash, early_replacement_does_not_overwrite_dead_producers_tags)
{
	struct test_ring t = ring_new(MPROC__RING_SPSC, 1024, 0);
	struct mproc__ring p1, p2, c;
	cr_assert_eq(view(&t, &p2), 0);
	cr_assert_eq(view(&t, &c), 0);
	put_one(&p2, 7, true); /* p2 produced before and is up to date */
	cr_assert_eq(view(&t, &p1), 0);
	for (uint32_t i = 0; i < 3; i++)
		put_one(&p1, i, false);
	put_one(&p2, 100, true);
	uint32_t want[] = {7, 0, 1, 2, 100}, v;
	for (int i = 0; i < 5; i++) {
		int rc = get_one(&c, &v);
		cr_assert_eq(rc, 0, "get %d: %s", i, mproc_strerror(rc));
		cr_assert_eq(v, want[i], "get %d: %u", i, v);
	}
	cr_assert_eq(get_one(&c, &v), -EAGAIN);
}

/* Defect 5: next_len (and so mproc_wait's readiness) must not touch the
 * consumer's state: a peek stays open and valid, and PAD records are not
 * consumed by a look. */
Test(spsc_crash, next_len_is_read_only)
{
	struct test_ring t = ring_new(MPROC__RING_SPSC, 256, 0);
	struct mproc__ring p, c;
	cr_assert_eq(view(&t, &p), 0);
	cr_assert_eq(view(&t, &c), 0);
	uint32_t v;
	/* Move both sides near the end so the next record needs a PAD. */
	for (uint32_t i = 0; i < 7; i++) {
		put_one(&p, i, true);
		cr_assert_eq(get_one(&c, &v), 0);
	}
	put_one(&p, 42, true); /* 32-byte record at 224: fits */
	put_one(&p, 43, true); /* wraps: PAD then the record at 0 */
	cr_assert_eq(get_one(&c, &v), 0);
	cr_assert_eq(v, 42);
	struct mproc__ring_spsc before = c.u.spsc;
	uint64_t tail0 = atomic_load(&((struct mproc__ring_spsc_shared *)t.sh)->tail);
	uint64_t len = 0;
	cr_assert_eq(mproc__ring_next_len(&c, &len), 0);
	cr_assert_eq(len, sizeof(uint32_t));
	cr_assert_eq(memcmp(&before, &c.u.spsc, sizeof(before)), 0,
		     "next_len changed the consumer's view");
	cr_assert_eq(atomic_load(&((struct mproc__ring_spsc_shared *)t.sh)->tail),
		     tail0, "next_len published the tail");
	/* With a peek open, a look from another thread still works and
	 * leaves the peek alone. */
	uint64_t tok;
	const void *pp;
	uint32_t flags;
	cr_assert_eq(mproc__ring_peek(&c, UINT64_MAX, &tok, &pp, &len, &flags), 0);
	cr_assert_eq(mproc__ring_next_len(&c, &len), 0);
	mproc__ring_release(&c, tok, true);
	cr_assert_eq(get_one(&c, &v), -EAGAIN);
}

/* A consumer killed inside get_many after passing a PAD record: the PAD
 * used to publish the tail at once, and with it the batch's earlier
 * records, which its replacement then never saw although the get_many
 * never returned. */
Test(spsc_crash, batch_across_a_pad_is_redelivered_to_a_replacement)
{
	struct test_ring t = ring_new(MPROC__RING_SPSC, 256, 0);
	struct mproc__ring p, c;
	cr_assert_eq(view(&t, &p), 0);
	cr_assert_eq(view(&t, &c), 0);
	uint32_t v;
	for (uint32_t i = 0; i < 6; i++) { /* both sides to 192 */
		put_one(&p, i, true);
		cr_assert_eq(get_one(&c, &v), 0);
	}
	uint64_t tok;
	void *w;
	cr_assert_eq(mproc__ring_reserve(&p, 20, &tok, &w), 0); /* 192..240 */
	memset(w, 'A', 20);
	mproc__ring_commit(&p, tok, 20, 0, true);
	put_one(&p, 7, true); /* PAD at 240, then the record at 256 */
	/* get_many's first two steps: take A, then B across the PAD, and
	 * die before the one publication at the end. */
	const void *rp;
	uint64_t len;
	uint32_t flags;
	cr_assert_eq(mproc__ring_peek(&c, UINT64_MAX, &tok, &rp, &len, &flags), 0);
	cr_assert_eq(len, 20);
	mproc__ring_release(&c, tok, false);
	cr_assert_eq(mproc__ring_peek(&c, UINT64_MAX, &tok, &rp, &len, &flags), 0);
	cr_assert_eq(len, 4);
	mproc__ring_release(&c, tok, false);
	struct mproc__ring c2;
	cr_assert_eq(view(&t, &c2), 0);
	cr_assert_eq(mproc__ring_peek(&c2, UINT64_MAX, &tok, &rp, &len, &flags), 0);
	cr_assert_eq(len, 20, "the replacement missed the batch's first message");
	mproc__ring_release(&c2, tok, true);
	cr_assert_eq(get_one(&c2, &v), 0);
	cr_assert_eq(v, 7);
}

/* Defect 8: full() is exact: one small message in a big ring is not full. */
Test(spsc_crash, full_is_exact)
{
	struct mproc_queue_attr a;
	mproc_queue_attr_init(&a);
	a.flags = MPROC_QUEUE_SPSC;
	a.capacity = 4096;
	mproc_queue *q;
	cr_assert_eq(mproc_queue_create(&a, &q), 0);
	ssize_t max = mproc_queue_max_msg(q);
	cr_assert_eq(mproc_queue_put_nowait(q, "x", 1), 1);
	cr_assert_eq(mproc_queue_full(q), 0, "one 1-byte message reads full");
	char *big = calloc(1, (size_t)max);
	cr_assert_eq(mproc_queue_put_nowait(q, big, (size_t)max), max);
	cr_assert_eq(mproc_queue_full(q), 1);
	cr_assert_eq(mproc_queue_put_nowait(q, big, (size_t)max), -EAGAIN);
	free(big);
	mproc_queue_free(q);
}

/* --------------------------------------------------------------- MPMC */

static mproc_queue *mpmc(size_t cap, size_t max)
{
	struct mproc_queue_attr a;
	mproc_queue_attr_init(&a);
	a.capacity = cap;
	a.max_msg = max;
	mproc_queue *q = NULL;
	cr_assert_eq(mproc_queue_create(&a, &q), 0);
	return q;
}

enum { CLAIM_PUT, CLAIM_GET };

/* Fork a child that claims a slot (a reserve, or a peek) and is then
 * SIGKILLed by the parent while it holds the claim; reap it. */
static void child_dies_holding_a_claim(mproc_queue *q, int what)
{
	int fds[2];
	cr_assert_eq(pipe(fds), 0);
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		void *p;
		const void *cp;
		int rc = what == CLAIM_PUT
				 ? mproc_queue_reserve(q, 8, &p, 0)
				 : (int)mproc_queue_peek(q, &cp, 0);
		if (what == CLAIM_PUT && rc == 0)
			memcpy(p, "half-put", 8);
		char c = rc >= 0 ? 'y' : 'n';
		if (write(fds[1], &c, 1) != 1)
			_exit(2);
		for (;;)
			pause();
	}
	char c = 0;
	cr_assert_eq(read(fds[0], &c, 1), 1);
	cr_assert_eq(c, 'y', "the child could not claim");
	kill(pid, SIGKILL);
	int st;
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	close(fds[0]);
	close(fds[1]);
}

static void get_expect(mproc_queue *q, const char *want, int64_t timeout)
{
	char buf[64];
	int64_t t0 = mproc__now_ns();
	ssize_t n = mproc_queue_get(q, buf, sizeof(buf), timeout);
	cr_assert_eq(n, (ssize_t)strlen(want), "get: %s after %lld ms",
		     n < 0 ? mproc_strerror((int)n) : "wrong length",
		     (long long)((mproc__now_ns() - t0) / MPROC_MSEC));
	cr_assert_arr_eq(buf, want, (size_t)n);
}

/* Defect 1: a producer killed between claim and commit wedged every
 * consumer for ever (and close never drained).  The slot is skipped. */
Test(mpmc_crash, producer_killed_between_claim_and_commit)
{
	mproc_queue *q = mpmc(16 * 96, 64);
	child_dies_holding_a_claim(q, CLAIM_PUT);
	cr_assert_eq(mproc_queue_put(q, "after", 5, 0), 5);
	get_expect(q, "after", 2 * MPROC_SEC);
	/* Polling callers recover too, not only sleepers. */
	child_dies_holding_a_claim(q, CLAIM_PUT);
	cr_assert_eq(mproc_queue_put(q, "again", 5, 0), 5);
	char buf[64];
	ssize_t n = -EAGAIN;
	int64_t t0 = mproc__now_ns();
	while (n == -EAGAIN && mproc__now_ns() - t0 < 2 * MPROC_SEC)
		n = mproc_queue_get_nowait(q, buf, sizeof(buf));
	cr_assert_eq(n, 5, "get_nowait: %s", mproc_strerror((int)n));
	child_dies_holding_a_claim(q, CLAIM_PUT);
	cr_assert_eq(mproc_queue_close(q), 0);
	cr_assert_eq(mproc_queue_get(q, buf, sizeof(buf), 2 * MPROC_SEC),
		     -MPROC_EEOF, "close never drains past a dead claim");
	mproc_queue_free(q);
}

/* Defect 1: a consumer killed between claim and release lost its message
 * and, one lap later, blocked every producer.  The message is put back
 * (at the back of the queue). */
Test(mpmc_crash, consumer_killed_between_claim_and_release)
{
	mproc_queue *q = mpmc(8 * 96, 64);
	cr_assert_eq(mproc_queue_put(q, "m1", 2, 0), 2);
	cr_assert_eq(mproc_queue_put(q, "m2", 2, 0), 2);
	child_dies_holding_a_claim(q, CLAIM_GET);
	get_expect(q, "m2", 0);
	get_expect(q, "m1", 2 * MPROC_SEC);
	char buf[64];
	cr_assert_eq(mproc_queue_get_nowait(q, buf, sizeof(buf)), -EAGAIN);
	cr_assert_eq(mproc_queue_qsize(q), 0);
	mproc_queue_free(q);
}

/* The same with the ring full: the producer waiting for the dead
 * consumer's slot moves the message in place. */
Test(mpmc_crash, consumer_killed_with_the_ring_full)
{
	mproc_queue *q = mpmc(2 * 96, 64); /* two slots */
	cr_assert_eq(mproc_queue_put(q, "a", 1, 0), 1);
	cr_assert_eq(mproc_queue_put(q, "b", 1, 0), 1);
	child_dies_holding_a_claim(q, CLAIM_GET); /* holds "a" */
	get_expect(q, "b", 0);
	int64_t t0 = mproc__now_ns();
	ssize_t n = mproc_queue_put(q, "c", 1, 2 * MPROC_SEC);
	cr_assert_eq(n, 1, "put behind a dead consumer: %s after %lld ms",
		     mproc_strerror((int)n),
		     (long long)((mproc__now_ns() - t0) / MPROC_MSEC));
	get_expect(q, "a", 0);
	get_expect(q, "c", 0);
	mproc_queue_free(q);
}

/* ---------------------------------------------------- live processes */

/* Defect 3: attach loaded head before tail, and during put_many the
 * consumer may legitimately run ahead of the published head, so opening
 * a busy SPSC queue failed with -MPROC_ECORRUPT (628 of 30,978 opens
 * while another process ran put_many(16) and get_many).  Every open of a
 * busy queue succeeds. */
Test(spsc_crash, opens_of_a_busy_queue_never_fail, .timeout = 120)
{
	char name[64];
	snprintf(name, sizeof(name), "/mproc-test-busy-%d", (int)getpid());
	mproc_queue_unlink(name);
	struct mproc_queue_attr a;
	mproc_queue_attr_init(&a);
	/* Busy-polling children: the consumer runs inside the producer's
	 * batches instead of waking after them. */
	a.flags = MPROC_QUEUE_SPSC | MPROC_QUEUE_BUSY_POLL;
	a.capacity = 4096;
	mproc_queue *q;
	cr_assert_eq(mproc_queue_create_named(name, &a, &q), 0);
	_Atomic uint64_t *calls = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
				       MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	cr_assert_neq(calls, MAP_FAILED);
	pid_t kids[2];
	for (int k = 0; k < 2; k++) {
		kids[k] = fork();
		cr_assert_geq(kids[k], 0);
		if (kids[k] != 0)
			continue;
		/* k 0: put_many(16) until closed; k 1: get_many until EOF. */
		char m[16][24];
		struct iovec iov[16];
		size_t lens[16];
		for (int i = 0; i < 16; i++)
			iov[i] = (struct iovec){ m[i], sizeof(m[i]) };
		for (;;) {
			ssize_t n = k == 0 ? mproc_queue_put_many(q, iov, 16,
								  MPROC_SEC)
					   : mproc_queue_get_many(q, iov, lens,
								  16, MPROC_SEC);
			if (n == -EPIPE || n == -MPROC_EEOF)
				_exit(0);
			if (n < 0 && n != -ETIMEDOUT)
				_exit(1);
			atomic_fetch_add(&calls[k], 1);
		}
	}
	/* Open while both children are busy: at least 20,000 opens, and at
	 * least a second of their traffic. */
	while (!atomic_load(&calls[0]) || !atomic_load(&calls[1]))
		usleep(1000);
	int failed = 0, first = 0, opens = 0;
	int64_t until = mproc__now_ns() + MPROC_SEC;
	for (; opens < 20000 || mproc__now_ns() < until; opens++) {
		mproc_queue *o;
		int rc = mproc_queue_open(name, 0, &o);
		if (rc) {
			failed++;
			first = first ? first : rc;
			continue;
		}
		mproc_queue_free(o);
	}
	mproc_queue_close(q);
	for (int k = 0; k < 2; k++) {
		int st;
		cr_assert_eq(waitpid(kids[k], &st, 0), kids[k]);
		cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0,
			  "child %d: 0x%x", k, st);
	}
	mproc_queue_unlink(name);
	mproc_queue_free(q);
	cr_log_info("%d opens beside %llu put_many and %llu get_many", opens,
		    (unsigned long long)calls[0], (unsigned long long)calls[1]);
	munmap(calls, 4096);
	cr_assert_eq(failed, 0, "%d of %d opens failed, first: %s", failed,
		     opens, mproc_strerror(first));
}

/* Defect 8: MPMC qsize returned 0 after 16 unstable snapshots, so
 * empty() could be true on a busy queue that was never empty.  Here a
 * thread moves both positions as fast as it can while five messages stay
 * in: every answer must count at least five. */
struct bumper {
	struct mproc__ring_mpmc_shared *sh;
	atomic_bool stop;
};

static void *bump(void *arg)
{
	struct bumper *b = arg;
	while (!atomic_load_explicit(&b->stop, memory_order_relaxed)) {
		atomic_fetch_add(&b->sh->enq_pos, 1);
		atomic_fetch_add(&b->sh->deq_pos, 1);
	}
	return NULL;
}

Test(mpmc_crash, qsize_of_a_busy_queue_is_never_zero)
{
	struct test_ring t = ring_new(MPROC__RING_MPMC, 16 * 96, 64);
	struct mproc__ring v;
	cr_assert_eq(view(&t, &v), 0);
	struct bumper b = { .sh = t.sh };
	atomic_init(&b.stop, false);
	atomic_store(&b.sh->enq_pos, 5);
	pthread_t th;
	cr_assert_eq(pthread_create(&th, NULL, bump, &b), 0);
	while (atomic_load(&b.sh->deq_pos) < 1000)
		; /* the bumper runs */
	uint64_t low = UINT64_MAX, calls = 0;
	int64_t until = mproc__now_ns() + 300 * MPROC_MSEC;
	while (mproc__now_ns() < until) {
		for (int i = 0; i < 1000; i++) {
			uint64_t n = mproc__ring_count(&v);
			if (n < low)
				low = n;
		}
		calls += 1000;
	}
	atomic_store(&b.stop, true);
	pthread_join(th, NULL);
	cr_assert_geq(low, 5, "qsize said %llu of at least 5 (%llu calls)",
		      (unsigned long long)low, (unsigned long long)calls);
}

/* ---- a joinable queue's count when a producer dies inside put ---- */

enum put_call { PUT_ONE, PUT_MANY };

/* A producer that dies inside the copy of a put (its source runs into
 * an unmapped page, so it takes SIGSEGV there) leaves no message, and so
 * no count: join returns at once, and the queue keeps working.  The
 * one-call SPSC put once counted the message before its copy, and a
 * producer killed in that window left join waiting for ever. */
static void producer_dies_in_copy(unsigned flags, enum put_call call)
{
	const size_t half = 128 << 10;
	struct mproc_queue_attr a;
	mproc_queue_attr_init(&a);
	a.flags = flags | MPROC_QUEUE_JOINABLE;
	a.max_msg = 2 * half;
	a.capacity = 8 * (2 * half + 64);
	mproc_queue *q;
	cr_assert_eq(mproc_queue_create(&a, &q), 0);
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		unsigned char *src = mmap(NULL, 2 * half, PROT_READ | PROT_WRITE,
					  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (src == MAP_FAILED || munmap(src + half, half))
			_exit(90);
		memset(src, 'x', half);
		struct iovec v[2] = {
			{.iov_base = "ok", .iov_len = 2},
			{.iov_base = src, .iov_len = 2 * half},
		};
		if (call == PUT_ONE)
			mproc_queue_put(q, src, 2 * half, 0);
		else
			mproc_queue_put_many(q, v + 1, 1, 0);
		_exit(91); /* the copy did not fault */
	}
	int st;
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	/* SIGSEGV, or SIGABRT where AddressSanitizer reports the fault
	 * and aborts (abort_on_error=1 in the tests' environment). */
	cr_assert(WIFSIGNALED(st) &&
			  (WTERMSIG(st) == SIGSEGV || WTERMSIG(st) == SIGABRT),
		  "the producer should die in the copy (status %#x)", st);
	cr_assert_eq(mproc_queue_join(q, 200 * MPROC_MSEC), 0,
		     "a message never made visible must not be waited for");
	/* Still usable: a message now is counted, delivered and joined. */
	cr_assert_eq(mproc_queue_put(q, "after", 5, 0), 5);
	cr_assert_eq(mproc_queue_join(q, 0), -EAGAIN);
	get_expect(q, "after", 2 * MPROC_SEC);
	cr_assert_eq(mproc_queue_task_done(q), 0);
	cr_assert_eq(mproc_queue_join(q, 200 * MPROC_MSEC), 0);
	mproc_queue_free(q);
}

Test(spsc_crash, joinable_put_killed_in_its_copy_leaves_no_count)
{
	producer_dies_in_copy(MPROC_QUEUE_SPSC, PUT_ONE);
}

Test(spsc_crash, joinable_put_many_killed_in_its_copy_leaves_no_count)
{
	producer_dies_in_copy(MPROC_QUEUE_SPSC, PUT_MANY);
}

Test(mpmc_crash, joinable_put_killed_in_its_copy_leaves_no_count)
{
	producer_dies_in_copy(0, PUT_ONE);
}

Test(mpmc_crash, joinable_put_many_killed_in_its_copy_leaves_no_count)
{
	producer_dies_in_copy(0, PUT_MANY);
}
