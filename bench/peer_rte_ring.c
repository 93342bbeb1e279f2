/*
 * peer_rte_ring.c - DPDK's rte_ring as a peer of mproc's rings: 64-byte
 * elements, one per call SP/SC (rte_ring), bursts of 32 SP/SC
 * (rte_ring_burst), MP/MC in the producer/consumer configurations of
 * mproc_mpmc (rte_ring_mpmc, and rte_ring_mpmc_rts: see mpmc_prepare),
 * and a busy-polling round trip over two SP/SC rings (rte_ring_busy).  Every message is checked (bench_msg_*).
 *
 * Without EAL.  rte_ring_init() only fills in the ring's header, and the
 * enqueue/dequeue functions are static inline in rte_ring_elem.h, so
 * neither needs rte_eal_init(): the ring lives in MAP_SHARED anonymous
 * memory sized by rte_ring_get_memsize_elem() and mapped before the
 * workers are forked.  Its header holds indices, no pointers (the
 * elements follow it), so every forked process can use it as it is.
 * Linking librte_ring brings librte_eal in as a dependency; its
 * constructors only register log types and tail queues, and no EAL call
 * is ever made.
 */
#include "peer.h"

#if BENCH_PEER_FOUND

#include <stdlib.h>

#include <rte_ring.h>
#include <rte_ring_elem.h>

#include "stream.h"

#define BURST 32

struct rte_row {
	struct rte_ring *r;
	size_t bytes;
};

/* Map, fault in and initialise a ring of PEER_RING_SLOTS 64-byte
 * elements; @flags: RING_F_SP_ENQ | RING_F_SC_DEQ, or 0 for MP/MC. */
static int ring_make(struct rte_ring **out, size_t *bytes, unsigned flags,
		     char *note, size_t note_len)
{
	ssize_t sz = rte_ring_get_memsize_elem(PEER_ELEM, PEER_RING_SLOTS);
	if (sz < 0) {
		snprintf(note, note_len, "rte_ring_get_memsize_elem: %s",
			 strerror((int)-sz));
		return (int)sz;
	}
	struct rte_ring *r = bench_shared_alloc((size_t)sz);
	if (!r)
		return -ENOMEM;
	peer_prefault(r, (size_t)sz);
	int rc = rte_ring_init(r, "mproc-bench", PEER_RING_SLOTS, flags);
	if (rc < 0) {
		snprintf(note, note_len, "rte_ring_init: %s", strerror(-rc));
		bench_shared_free(r, (size_t)sz);
		return rc;
	}
	*out = r;
	*bytes = (size_t)sz;
	return 0;
}

/* ---- one element per call -------------------------------------------- */

static bool put_sp(void *r, void *e)
{
	return rte_ring_sp_enqueue_elem(r, e, PEER_ELEM) == 0;
}
static bool get_sc(void *r, void *e)
{
	return rte_ring_sc_dequeue_elem(r, e, PEER_ELEM) == 0;
}
/* Multi-producer/consumer calls that follow the ring's sync mode, the
 * classic MP/MC or RTS (see mpmc_prepare), chosen by its flags. */
static bool put_mp(void *r, void *e)
{
	return rte_ring_enqueue_elem(r, e, PEER_ELEM) == 0;
}
static bool get_mc(void *r, void *e)
{
	return rte_ring_dequeue_elem(r, e, PEER_ELEM) == 0;
}

/* stream.h's send/receive over one ring; the message is one element. */
static int send_sp(struct bench_worker *w, void *arg, const void *buf,
		   size_t len)
{
	(void)w;
	(void)len;
	return peer_spin(put_sp, ((struct rte_row *)arg)->r, (void *)buf);
}
static ssize_t recv_sc(struct bench_worker *w, void *arg, void *buf,
		       size_t len)
{
	(void)w;
	int rc = peer_spin(get_sc, ((struct rte_row *)arg)->r, buf);
	return rc < 0 ? rc : (ssize_t)len;
}
static int send_mp(struct bench_worker *w, void *arg, const void *buf,
		   size_t len)
{
	(void)w;
	(void)len;
	return peer_spin(put_mp, ((struct rte_row *)arg)->r, (void *)buf);
}
static ssize_t recv_mc(struct bench_worker *w, void *arg, void *buf,
		       size_t len)
{
	(void)w;
	int rc = peer_spin(get_mc, ((struct rte_row *)arg)->r, buf);
	return rc < 0 ? rc : (ssize_t)len;
}

static int producer_sp(struct bench_worker *w, void *arg)
{
	return bench_stream_produce(w, send_sp, arg);
}
static int consumer_sc(struct bench_worker *w, void *arg)
{
	return bench_stream_consume(w, recv_sc, arg);
}
static int producer_mp(struct bench_worker *w, void *arg)
{
	return bench_stream_produce(w, send_mp, arg);
}
static int consumer_mc(struct bench_worker *w, void *arg)
{
	return bench_stream_consume(w, recv_mc, arg);
}

/* ---- bursts of 32 ----------------------------------------------------- */

/* A burst in flight: @n elements at @e, @done of them moved so far. */
struct burst {
	unsigned char *e;
	unsigned n, done;
};

/* Enqueue what is left of the burst; true once all of it is in. */
static bool burst_put(void *r, void *arg)
{
	struct burst *b = arg;
	b->done += rte_ring_sp_enqueue_burst_elem(r, b->e + b->done * PEER_ELEM,
						  PEER_ELEM, b->n - b->done,
						  NULL);
	return b->done == b->n;
}

/* Dequeue up to BURST elements; true when at least one came. */
static bool burst_get(void *r, void *arg)
{
	struct burst *b = arg;
	b->n = rte_ring_sc_dequeue_burst_elem(r, b->e, PEER_ELEM, BURST, NULL);
	return b->n > 0;
}

static int burst_producer(struct bench_worker *w, void *arg)
{
	struct rte_ring *r = ((struct rte_row *)arg)->r;
	unsigned char *e = malloc(BURST * PEER_ELEM);
	if (!e)
		return -ENOMEM;
	for (int i = 0; i < BURST; i++)
		bench_msg_init(e + i * PEER_ELEM, PEER_ELEM);
	int rc = 0;
	while (rc == 0 && !bench_stop_requested(w)) {
		for (int i = 0; i < BURST; i++)
			bench_msg_stamp(w, e + i * PEER_ELEM, PEER_ELEM);
		struct burst b = {.e = e, .n = BURST};
		rc = peer_spin(burst_put, r, &b);
	}
	/* One end marker per consumer (see bench.h). */
	bench_msg_stamp_end(w, e, PEER_ELEM);
	for (int k = 0; rc == 0 && k < w->c->consumers; k++) {
		struct burst b = {.e = e, .n = 1};
		rc = peer_spin(burst_put, r, &b);
	}
	free(e);
	return rc;
}

static int burst_consumer(struct bench_worker *w, void *arg)
{
	struct rte_ring *r = ((struct rte_row *)arg)->r;
	unsigned char *e = malloc(BURST * PEER_ELEM);
	if (!e)
		return -ENOMEM;
	int rc = 0;
	while (rc == 0 && w->ends < w->c->producers) {
		struct burst b = {.e = e};
		rc = peer_spin(burst_get, r, &b);
		for (unsigned i = 0; rc == 0 && i < b.n; i++) {
			rc = bench_msg_check(w, e + i * PEER_ELEM, PEER_ELEM);
			if (rc == BENCH_MSG_END)
				rc = 0;
		}
	}
	free(e);
	return rc;
}

/* ---- the rows ---------------------------------------------------------- */

static int run_tp(struct bench_case *c, struct bench_sample *s, unsigned flags,
		  bench_worker_fn producer, bench_worker_fn consumer)
{
	struct rte_row a;
	int rc = ring_make(&a.r, &a.bytes, flags, s->note, sizeof s->note);
	if (rc < 0)
		return rc;
	struct bench_team t = {.producer = producer, .consumer = consumer,
			       .arg = &a};
	rc = bench_team_throughput(c, &t, s);
	bench_shared_free(a.r, a.bytes);
	return rc;
}

static int spsc_tp(struct bench_case *c, struct bench_sample *s)
{
	return run_tp(c, s, RING_F_SP_ENQ | RING_F_SC_DEQ, producer_sp,
		      consumer_sc);
}
static int burst_tp(struct bench_case *c, struct bench_sample *s)
{
	return run_tp(c, s, RING_F_SP_ENQ | RING_F_SC_DEQ, burst_producer,
		      burst_consumer);
}
/*
 * rte_ring's classic MP/MC sync is not preemptible (rte_ring.h says so,
 * and DPDK's guide advises against two users of one ring on one core): a
 * worker preempted between claiming its slots and publishing them makes
 * every later worker spin, in rte_wait_until_equal_32, until the
 * scheduler runs it again.  Here, with two consumers pinned to one CPU,
 * that costs a whole time slice per message: 1/2 drained about one
 * message per few milliseconds and the harness killed it 20 s after the
 * stop.  So rte_ring_mpmc runs only where every worker has a CPU of its
 * own, and rte_ring_mpmc_rts runs every configuration in RTS mode
 * ("relaxed tail sync"), DPDK's answer for preemptible threads.
 */
static bool workers_share_cpu(const struct bench_case *c)
{
	int cpus[2 * BENCH_MAX_WORKERS], n = 0;
	if (bench_cpu_for(0, 0) < 0)
		return c->producers + c->consumers > bench_ncpus();
	for (int i = 0; i < c->producers; i++)
		cpus[n++] = bench_cpu_for(0, i);
	for (int i = 0; i < c->consumers; i++)
		cpus[n++] = bench_cpu_for(1, i);
	for (int i = 0; i < n; i++)
		for (int k = i + 1; k < n; k++)
			if (cpus[i] == cpus[k])
				return true;
	return false;
}

static int mpmc_prepare(struct bench_case *c, char *why, size_t len)
{
	if (!workers_share_cpu(c))
		return 0;
	snprintf(why, len, "classic MP/MC rte_ring is not preemptible and "
		 "%d workers share %d CPUs (see rte_ring_mpmc_rts)",
		 c->producers + c->consumers, bench_ncpus());
	return BENCH_SKIP;
}

static int mpmc_tp(struct bench_case *c, struct bench_sample *s)
{
	return run_tp(c, s, 0, producer_mp, consumer_mc);
}
static int mpmc_rts_tp(struct bench_case *c, struct bench_sample *s)
{
	return run_tp(c, s, RING_F_MP_RTS_ENQ | RING_F_MC_RTS_DEQ, producer_mp,
		      consumer_mc);
}

static int ping(void *p)
{
	return peer_ping(p, put_sp, get_sc);
}
static int pong(void *p)
{
	return peer_pong(p, put_sp, get_sc);
}
static int stop(void *p)
{
	return peer_stop(p, put_sp);
}

static int busy_lat(struct bench_case *c, struct bench_sample *s)
{
	struct peer_pingpong p = {0};
	size_t fwd_bytes, back_bytes;
	unsigned flags = RING_F_SP_ENQ | RING_F_SC_DEQ;
	struct rte_ring *fwd, *back;
	int rc = ring_make(&fwd, &fwd_bytes, flags, s->note, sizeof s->note);
	if (rc < 0)
		return rc;
	rc = ring_make(&back, &back_bytes, flags, s->note, sizeof s->note);
	if (rc < 0) {
		bench_shared_free(fwd, fwd_bytes);
		return rc;
	}
	p.fwd = fwd;
	p.back = back;
	struct bench_pingpong pp = {.ping = ping, .pong = pong, .stop = stop,
				    .arg = &p};
	rc = bench_pingpong_run(c, &pp, s);
	bench_shared_free(fwd, fwd_bytes);
	bench_shared_free(back, back_bytes);
	return rc;
}

#endif /* BENCH_PEER_FOUND */

BENCH_REGISTER(rte_ring) = {
	.suite = "throughput",
	.impl = "rte_ring",
	.descr = "DPDK rte_ring without EAL, SP/SC, one 64 B element per "
		 "enqueue/dequeue",
	BENCH_PEER_ROW(BENCH_SIZES(64), NULL, spsc_tp),
};

BENCH_REGISTER(rte_ring_burst) = {
	.suite = "throughput",
	.impl = "rte_ring_burst",
	.descr = "DPDK rte_ring without EAL, SP/SC, bursts of 32 64 B elements",
	BENCH_PEER_ROW(BENCH_SIZES(64), NULL, burst_tp),
};

BENCH_REGISTER(rte_ring_mpmc) = {
	.suite = "throughput",
	.impl = "rte_ring_mpmc",
	.descr = "DPDK rte_ring without EAL, classic MP/MC, one 64 B element "
		 "per call (only where no two workers share a CPU)",
	BENCH_PEER_ROW(BENCH_SIZES(64),
		       BENCH_PCS({1, 1}, {2, 1}, {1, 2}, {2, 2}), mpmc_tp),
#if BENCH_PEER_FOUND
	.prepare = mpmc_prepare,
#endif
};

BENCH_REGISTER(rte_ring_mpmc_rts) = {
	.suite = "throughput",
	.impl = "rte_ring_mpmc_rts",
	.descr = "DPDK rte_ring without EAL, MP/MC in RTS mode (relaxed tail "
		 "sync, safe when workers are preempted), one 64 B element",
	BENCH_PEER_ROW(BENCH_SIZES(64),
		       BENCH_PCS({1, 1}, {2, 1}, {1, 2}, {2, 2}), mpmc_rts_tp),
};

BENCH_REGISTER(rte_ring_busy) = {
	.suite = "latency",
	.impl = "rte_ring_busy",
	.descr = "64 B round trip over two SP/SC rte_rings, busy-polling",
	BENCH_PEER_ROW(BENCH_SIZES(64), NULL, busy_lat),
};
