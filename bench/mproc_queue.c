/*
 * mproc_queue.c - mproc's Queue rows: throughput of the SPSC ring (one
 * message per call, batches, zero-copy) and of the MPMC ring (1/1, 2/1,
 * 1/2, 2/2), and 64-byte round trips over two SPSC queues in busy-poll and
 * in the default blocking mode.  Every message is checked (bench_msg_*).
 *
 * Producers that finish bump a shared counter; the last one closes the
 * queue, so every consumer drains what is left and ends on end-of-stream.
 */
#include <errno.h>
#include <sched.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <mproc.h>

#include "bench.h"

#define BATCH 32

/* Messages per batch: 32, but no more than 256 KiB in one batch, so the
 * batch buffers of 1 MiB messages do not turn the row into a page-fault
 * benchmark. */
static int batch_of(size_t msg)
{
	size_t k = ((size_t)256 << 10) / (msg ? msg : 1);
	return k < 1 ? 1 : k > BATCH ? BATCH : (int)k;
}

/* Every byte of a zero-copy message is written in place by the producer
 * (copied from a template, as if it were produced there) and read in place
 * by the consumer, so the row is comparable with memcpy and with the
 * copying rows, not a count of headers.
 *
 * The read must be as fast as the copying rows' reads (glibc's memcpy),
 * or the row measures this loop instead of the queue.  Two things held it
 * back at 1 MiB on the development VM (doc/design.md, "1 MiB messages"):
 *   - one 8-byte XOR chain reads 8 bytes a cycle at best: 31 us per MiB
 *     even from the reader's own cache, where memcpy takes 18 us, and
 *     the row sat at exactly that rate (0.54x memcpy).  Eight independent
 *     16-byte lanes (plain SSE2/NEON width, no target flags) read at
 *     memcpy's rate there;
 *   - the bytes arrive from the producer's core, and plain loads with
 *     the hardware prefetcher alone keep too few lines in flight for
 *     that distance: 0.71x the copying row in the same rounds, where
 *     memcpy's string copy reaches 1.00x.  Prefetching 32 KiB ahead
 *     (within the message; 4 and 16 KiB were not enough) brings the
 *     in-place read to 1.00x. */
typedef uint64_t touch_lane __attribute__((vector_size(16)));

#define TOUCH_AHEAD (32u << 10)

static inline touch_lane lane_at(const unsigned char *b)
{
	touch_lane v;
	memcpy(&v, b, sizeof v);
	return v;
}

static uint64_t touch_all(const void *p, size_t n)
{
	/* Named lanes, not arrays: GCC 12 keeps arrays of vectors in
	 * memory, which adds a store per load. */
	touch_lane l0 = { 0 }, l1 = l0, l2 = l0, l3 = l0, l4 = l0, l5 = l0,
		   l6 = l0, l7 = l0;
	const unsigned char *b = p;
	const size_t step = 8 * sizeof(touch_lane); /* two cache lines */
	size_t i = 0;
	for (; i + step <= n; i += step) {
		if (n - i > TOUCH_AHEAD + step) {
			__builtin_prefetch(b + i + TOUCH_AHEAD);
			__builtin_prefetch(b + i + TOUCH_AHEAD + step / 2);
		}
		l0 ^= lane_at(b + i);
		l1 ^= lane_at(b + i + 16);
		l2 ^= lane_at(b + i + 32);
		l3 ^= lane_at(b + i + 48);
		l4 ^= lane_at(b + i + 64);
		l5 ^= lane_at(b + i + 80);
		l6 ^= lane_at(b + i + 96);
		l7 ^= lane_at(b + i + 112);
	}
	l0 ^= l1 ^ l2 ^ l3 ^ l4 ^ l5 ^ l6 ^ l7;
	uint64_t x = l0[0] ^ l0[1], w;
	for (; i + 8 <= n; i += 8) {
		memcpy(&w, b + i, 8);
		x ^= w;
	}
	return x;
}

static volatile uint64_t touch_sink;

enum mode { ONE, BATCHED, ZEROCOPY };

struct qrow {
	mproc_queue *q;
	enum mode mode;
	_Atomic int *producers_left; /* shared */
};

/* Ring bytes: the 1 MiB default, or room for 8 messages' payloads, as the
 * mproc_pipe rows have (bench/mproc_pipe.c), so that the 1 MiB rows of
 * both compare like with like (an SPSC record is 16 bytes more: 7 fit). */
static size_t ring_bytes(size_t msg)
{
	size_t cap = (size_t)1 << 20;
	while (cap < 8 * msg)
		cap <<= 1;
	return cap;
}

static int make_queue(const struct bench_case *c, unsigned flags,
		      mproc_queue **q, char *note, size_t note_len)
{
	struct mproc_queue_attr a;
	mproc_queue_attr_init(&a);
	a.flags = flags;
	a.max_msg = c->msg_size;
	a.capacity = ring_bytes(c->msg_size);
	if (!(flags & MPROC_QUEUE_SPSC) && a.capacity < 64 * (c->msg_size + 16))
		a.capacity = 64 * (c->msg_size + 16);
	int rc = mproc_queue_create(&a, q);
	if (rc)
		snprintf(note, note_len, "mproc_queue_create: %s",
			 mproc_strerror(rc));
	return rc;
}

static int producer_done(struct qrow *r, int rc)
{
	if (atomic_fetch_sub(r->producers_left, 1) == 1)
		mproc_queue_close(r->q);
	return rc;
}

static int producer(struct bench_worker *w, void *arg)
{
	struct qrow *r = arg;
	size_t n = w->c->msg_size;
	int rc = 0;
	if (r->mode == ZEROCOPY) {
		unsigned char *tmpl = malloc(n);
		if (!tmpl)
			return producer_done(r, -ENOMEM);
		bench_msg_init(tmpl, n);
		while (!bench_stop_requested(w)) {
			void *p;
			rc = mproc_queue_reserve(r->q, n, &p, MPROC_FOREVER);
			if (rc)
				break;
			memcpy(p, tmpl, n);
			bench_msg_stamp(w, p, n);
			mproc_queue_commit(r->q, n);
		}
		free(tmpl);
		return producer_done(r, rc);
	}
	int k = r->mode == BATCHED ? batch_of(n) : 1;
	unsigned char *bufs = malloc(n * (size_t)k);
	struct iovec iov[BATCH];
	if (!bufs)
		return producer_done(r, -ENOMEM);
	for (int i = 0; i < k; i++) {
		iov[i].iov_base = bufs + n * (size_t)i;
		iov[i].iov_len = n;
		bench_msg_init(iov[i].iov_base, n);
	}
	while (!bench_stop_requested(w)) {
		if (k == 1) {
			bench_msg_stamp(w, bufs, n);
			ssize_t put = mproc_queue_put(r->q, bufs, n, MPROC_FOREVER);
			if (put < 0) {
				rc = (int)put;
				break;
			}
			continue;
		}
		for (int i = 0; i < k; i++)
			bench_msg_stamp(w, iov[i].iov_base, n);
		/* Re-send what did not fit, so the sequence has no gap. */
		size_t off = 0;
		while (off < (size_t)k) {
			ssize_t put = mproc_queue_put_many(r->q, iov + off,
							   (size_t)k - off,
							   MPROC_FOREVER);
			if (put < 0) {
				rc = (int)put;
				break;
			}
			off += (size_t)put;
		}
		if (rc)
			break;
	}
	if (rc)
		snprintf(w->res->note, sizeof w->res->note, "put: %s",
			 mproc_strerror(rc));
	free(bufs);
	return producer_done(r, rc);
}

static int consume(struct bench_worker *w, const void *p, size_t len)
{
	if (len != w->c->msg_size) {
		snprintf(w->res->note, sizeof w->res->note, "length %zu", len);
		return -EBADMSG;
	}
	int rc = bench_msg_check(w, p, len);
	return rc < 0 ? rc : 0;
}

static int consumer(struct bench_worker *w, void *arg)
{
	struct qrow *r = arg;
	size_t n = w->c->msg_size;
	int k = r->mode == BATCHED ? batch_of(n) : 1;
	unsigned char *bufs = malloc(n * (size_t)k);
	struct iovec iov[BATCH];
	size_t lens[BATCH];
	if (!bufs)
		return -ENOMEM;
	for (int i = 0; i < k; i++) {
		iov[i].iov_base = bufs + n * (size_t)i;
		iov[i].iov_len = n;
	}
	int rc = 0;
	for (;;) {
		ssize_t got;
		if (r->mode == ZEROCOPY) {
			const void *p;
			got = mproc_queue_peek(r->q, &p, MPROC_FOREVER);
			if (got >= 0) {
				touch_sink = touch_all(p, (size_t)got);
				rc = consume(w, p, (size_t)got);
				mproc_queue_release(r->q);
				if (rc)
					break;
				continue;
			}
		} else if (k == 1) {
			got = mproc_queue_get(r->q, bufs, n, MPROC_FOREVER);
			if (got >= 0) {
				if ((rc = consume(w, bufs, (size_t)got)) != 0)
					break;
				continue;
			}
		} else {
			got = mproc_queue_get_many(r->q, iov, lens, (size_t)k,
						   MPROC_FOREVER);
			for (ssize_t i = 0; i < got && !rc; i++)
				rc = consume(w, iov[i].iov_base, lens[i]);
			if (rc)
				break;
			if (got > 0)
				continue;
		}
		if (got != -MPROC_EEOF) {
			rc = (int)got;
			snprintf(w->res->note, sizeof w->res->note, "get: %s",
				 mproc_strerror(rc));
		}
		break;
	}
	free(bufs);
	return rc;
}

/* Pass messages through the whole ring once in the parent, so that its
 * pages exist before the timed run (a pipe's buffer is warm as well). */
static int warm_up(mproc_queue *q, size_t n, char *note, size_t note_len)
{
	unsigned char *buf = calloc(1, n ? n : 1);
	if (!buf)
		return -ENOMEM;
	ssize_t rc = 0;
	for (size_t moved = 0; moved < ring_bytes(n) * 4 && rc >= 0;
	     moved += n + 64) {
		rc = mproc_queue_put(q, buf, n, MPROC_NOWAIT);
		if (rc >= 0)
			rc = mproc_queue_get(q, buf, n, MPROC_NOWAIT);
	}
	free(buf);
	if (rc < 0)
		snprintf(note, note_len, "warm-up: %s", mproc_strerror((int)rc));
	return rc < 0 ? (int)rc : 0;
}

static int run_tp(struct bench_case *c, struct bench_sample *s, unsigned flags,
		  enum mode mode)
{
	struct qrow r = { .mode = mode };
	r.producers_left = bench_shared_alloc(sizeof(*r.producers_left));
	if (!r.producers_left)
		return -ENOMEM;
	atomic_store(r.producers_left, c->producers);
	int rc = make_queue(c, flags, &r.q, s->note, sizeof s->note);
	if (rc == 0)
		rc = warm_up(r.q, c->msg_size, s->note, sizeof s->note);
	if (rc == 0) {
		struct bench_team t = { .producer = producer,
					.consumer = consumer, .arg = &r };
		rc = bench_team_throughput(c, &t, s);
		mproc_queue_free(r.q);
	}
	bench_shared_free(r.producers_left, sizeof(*r.producers_left));
	return rc;
}

static int spsc_tp(struct bench_case *c, struct bench_sample *s)
{
	return run_tp(c, s, MPROC_QUEUE_SPSC, ONE);
}
static int spsc_batch_tp(struct bench_case *c, struct bench_sample *s)
{
	return run_tp(c, s, MPROC_QUEUE_SPSC, BATCHED);
}
static int spsc_zc_tp(struct bench_case *c, struct bench_sample *s)
{
	return run_tp(c, s, MPROC_QUEUE_SPSC, ZEROCOPY);
}
static int mpmc_tp(struct bench_case *c, struct bench_sample *s)
{
	return run_tp(c, s, 0, ONE);
}
static int mpmc_batch_tp(struct bench_case *c, struct bench_sample *s)
{
	return run_tp(c, s, 0, BATCHED);
}

#define QSIZES BENCH_SIZES(8, 64, 256, BENCH_KIB, 4 * BENCH_KIB, \
			   64 * BENCH_KIB, BENCH_MIB)

BENCH_REGISTER(mproc_spsc) = {
	.suite = "throughput",
	.impl = "mproc_spsc",
	.descr = "mproc SPSC queue, mproc_queue_put/get, one message per call",
	.sizes = QSIZES,
	.run = spsc_tp,
};

BENCH_REGISTER(mproc_spsc_batch) = {
	.suite = "throughput",
	.impl = "mproc_spsc_batch",
	.descr = "mproc SPSC queue, put_many/get_many in batches of 32",
	.sizes = QSIZES,
	.run = spsc_batch_tp,
};

BENCH_REGISTER(mproc_spsc_zerocopy) = {
	.suite = "throughput",
	.impl = "mproc_spsc_zerocopy",
	.descr = "mproc SPSC queue, reserve/commit and peek/release in place",
	.sizes = QSIZES,
	.run = spsc_zc_tp,
};

BENCH_REGISTER(mproc_mpmc) = {
	.suite = "throughput",
	.impl = "mproc_mpmc",
	.descr = "mproc MPMC queue (slots of msg_size), put/get",
	.sizes = QSIZES,
	.pcs = BENCH_PCS({1, 1}, {2, 1}, {1, 2}, {2, 2}),
	.run = mpmc_tp,
};

BENCH_REGISTER(mproc_mpmc_batch) = {
	.suite = "throughput",
	.impl = "mproc_mpmc_batch",
	.descr = "mproc MPMC queue, put_many/get_many in batches of 32 "
		 "(one claim per batch)",
	.sizes = BENCH_SIZES(64, 4 * BENCH_KIB),
	.pcs = BENCH_PCS({1, 1}, {2, 2}),
	.run = mpmc_batch_tp,
};

/* Round trips: ping over one SPSC queue, pong back over another. */
struct qpp {
	mproc_queue *fwd, *back;
	uint64_t seq;
	unsigned char msg[64];
};

static int q_ping(void *arg)
{
	struct qpp *p = arg;
	uint64_t seq = ++p->seq, back;
	memcpy(p->msg, &seq, sizeof seq);
	ssize_t rc = mproc_queue_put(p->fwd, p->msg, sizeof p->msg, MPROC_FOREVER);
	if (rc >= 0)
		rc = mproc_queue_get(p->back, p->msg, sizeof p->msg, 10 * MPROC_SEC);
	if (rc < 0)
		return (int)rc;
	memcpy(&back, p->msg, sizeof back);
	return back == seq ? 0 : -EBADMSG;
}

static int q_pong(void *arg)
{
	struct qpp *p = arg;
	ssize_t rc = mproc_queue_get(p->fwd, p->msg, sizeof p->msg, 60 * MPROC_SEC);
	if (rc < 0)
		return (int)rc;
	uint64_t seq;
	memcpy(&seq, p->msg, sizeof seq);
	if (seq == UINT64_MAX)
		return BENCH_PONG_STOP;
	rc = mproc_queue_put(p->back, p->msg, sizeof p->msg, MPROC_FOREVER);
	return rc < 0 ? (int)rc : 0;
}

static int q_stop(void *arg)
{
	struct qpp *p = arg;
	uint64_t seq = UINT64_MAX;
	memcpy(p->msg, &seq, sizeof seq);
	ssize_t rc = mproc_queue_put(p->fwd, p->msg, sizeof p->msg, MPROC_FOREVER);
	return rc < 0 ? (int)rc : 0;
}

static int run_lat_think(struct bench_case *c, struct bench_sample *s,
			 unsigned flags, int64_t think_ns)
{
	struct qpp p = { 0 };
	struct mproc_queue_attr a;
	mproc_queue_attr_init(&a);
	a.flags = MPROC_QUEUE_SPSC | flags;
	a.capacity = 4096;
	a.max_msg = 64;
	int rc = mproc_queue_create(&a, &p.fwd);
	if (!rc && (rc = mproc_queue_create(&a, &p.back)) != 0)
		mproc_queue_free(p.fwd);
	if (rc) {
		snprintf(s->note, sizeof s->note, "create: %s", mproc_strerror(rc));
		return rc;
	}
	struct bench_pingpong pp = { .ping = q_ping, .pong = q_pong,
				     .stop = q_stop, .arg = &p,
				     .think_ns = think_ns };
	rc = bench_pingpong_run(c, &pp, s);
	mproc_queue_free(p.fwd);
	mproc_queue_free(p.back);
	return rc;
}

static int run_lat(struct bench_case *c, struct bench_sample *s, unsigned flags)
{
	return run_lat_think(c, s, flags, 0);
}

/* The sleeping path: the initiator thinks 1 ms before each ping, far
 * longer than the echoer's adaptive spin (at most MPROC__SPIN_MAX pauses,
 * and it shrinks when spinning fails), so the echoer is asleep in
 * FUTEX_WAIT when the ping comes: the round trip holds one futex wake-up
 * and the echoer's return from it, to compare with futex_floor (which
 * holds two). */
static int lat_sleep(struct bench_case *c, struct bench_sample *s)
{
	return run_lat_think(c, s, 0, 1000 * 1000);
}

static int lat_busy(struct bench_case *c, struct bench_sample *s)
{
	return run_lat(c, s, MPROC_QUEUE_BUSY_POLL);
}
static int lat_default(struct bench_case *c, struct bench_sample *s)
{
	return run_lat(c, s, 0);
}

BENCH_REGISTER(mproc_queue_busy) = {
	.suite = "latency",
	.impl = "mproc_queue_busy",
	.descr = "64 B round trip over two SPSC queues, busy-poll waits",
	.run = lat_busy,
};

BENCH_REGISTER(mproc_queue) = {
	.suite = "latency",
	.impl = "mproc_queue",
	.descr = "64 B round trip over two SPSC queues, default (spin, then futex)",
	.run = lat_default,
};

/* The same with a third process of this program spinning on the
 * initiator's CPU, where the initiator idles while the echoer goes to
 * sleep: the echoer's membarrier (futex.h, A3) must interrupt it, which
 * on this kind of VM is the expensive case.  Compare with
 * MPROC_TEST_BARRIER=fence in the environment (doc/design.md). */
static int lat_sleep_busy3(struct bench_case *c, struct bench_sample *s)
{
	_Atomic int *stop = bench_shared_alloc(sizeof(*stop));
	if (!stop)
		return -ENOMEM;
	atomic_store(stop, 0);
	cpu_set_t all, one;
	CPU_ZERO(&one);
	if (sched_getaffinity(0, sizeof(all), &all) == 0)
		for (int i = 0; i < CPU_SETSIZE; i++)
			if (CPU_ISSET(i, &all)) {
				CPU_SET(i, &one); /* the producers' first CPU */
				break;
			}
	pid_t pid = fork();
	if (pid < 0) {
		int e = -errno;
		bench_shared_free(stop, sizeof(*stop));
		return e;
	}
	if (pid == 0) {
		sched_setaffinity(0, sizeof(one), &one);
		while (!atomic_load_explicit(stop, memory_order_relaxed))
			for (int i = 0; i < 1024; i++)
				bench_pause();
		_exit(0);
	}
	int rc = run_lat_think(c, s, 0, 1000 * 1000);
	atomic_store(stop, 1);
	waitpid(pid, NULL, 0);
	bench_shared_free(stop, sizeof(*stop));
	return rc;
}

BENCH_REGISTER(mproc_queue_sleep_busy3) = {
	.suite = "latency",
	.impl = "mproc_queue_sleep_busy3",
	.descr = "mproc_queue_sleep with a third process spinning on the "
		 "initiator's CPU (the echoer's membarrier interrupts it)",
	.baselines = BENCH_NAMES("futex_floor"),
	.run = lat_sleep_busy3,
};

BENCH_REGISTER(mproc_queue_sleep) = {
	.suite = "latency",
	.impl = "mproc_queue_sleep",
	.descr = "64 B round trip over two SPSC queues, default mode, the "
		 "echoer asleep (1 ms think time before each ping, not counted)",
	.baselines = BENCH_NAMES("futex_floor"),
	.run = lat_sleep,
};

/* The pool suite's yardstick for Pool.apply (SPEC: an apply round trip
 * within 10x of mproc's own queue round trip): the default-mode round
 * trip above, reported in microseconds under the pool's case name so
 * that mproc_pool's apply_rtt row finds it (.baselines there). */
static int pool_yardstick(struct bench_case *c, struct bench_sample *s)
{
	int rc = lat_default(c, s);
	if (rc == 0) {
		s->fig[BENCH_RTT_US] = s->fig[BENCH_RTT_NS] / 1000.0;
		s->fig[BENCH_RTT_NS] = NAN;
	}
	return rc;
}

BENCH_REGISTER(queue_rtt) = {
	.suite = "pool",
	.impl = "queue_rtt",
	.descr = "64 B round trip over two SPSC mproc queues, for apply_rtt",
	.cases = BENCH_NAMES("apply_rtt"),
	.run = pool_yardstick,
};
