/*
 * peer_ck_ring.c - Concurrency Kit's ck_ring as a peer of mproc's SPSC
 * ring: 64-byte elements typed into the ring's buffer
 * (CK_RING_PROTOTYPE), one per enqueue/dequeue (ck_ring), and a
 * busy-polling round trip over two rings (ck_ring_busy).  Every message
 * is checked (bench_msg_*).
 *
 * ck_ring is header-only and keeps its buffer apart from its indices, so
 * both go into one MAP_SHARED anonymous mapping made before the workers
 * are forked: the ring header on its own page, then PEER_RING_SLOTS
 * elements.  The buffer's address is passed on every call and is the
 * same in every forked process.
 */
#include "peer.h"

#if BENCH_PEER_FOUND

#include <ck_ring.h>

#include "stream.h"

struct peer_elem {
	unsigned char b[PEER_ELEM];
};
CK_RING_PROTOTYPE(peer_elem, peer_elem)

#define HEADER_BYTES 4096
#define RING_BYTES (HEADER_BYTES + PEER_RING_SLOTS * sizeof(struct peer_elem))

struct ck_row {
	struct ck_ring *ring;
	struct peer_elem *buf;
};

static int ring_make(struct ck_row *a)
{
	void *m = bench_shared_alloc(RING_BYTES);
	if (!m)
		return -ENOMEM;
	peer_prefault(m, RING_BYTES);
	a->ring = m;
	a->buf = (struct peer_elem *)((char *)m + HEADER_BYTES);
	ck_ring_init(a->ring, PEER_RING_SLOTS);
	return 0;
}

static void ring_free(struct ck_row *a)
{
	bench_shared_free(a->ring, RING_BYTES);
}

/* The ring argument of peer_try_fn is the whole row: ck_ring wants its
 * buffer beside the indices on every call. */
static bool put(void *row, void *e)
{
	struct ck_row *a = row;
	return ck_ring_enqueue_spsc_peer_elem(a->ring, a->buf, e);
}
static bool get(void *row, void *e)
{
	struct ck_row *a = row;
	return ck_ring_dequeue_spsc_peer_elem(a->ring, a->buf, e);
}

static int send_one(struct bench_worker *w, void *arg, const void *buf,
		    size_t len)
{
	(void)w;
	(void)len;
	return peer_spin(put, arg, (void *)buf);
}
static ssize_t recv_one(struct bench_worker *w, void *arg, void *buf,
			size_t len)
{
	(void)w;
	int rc = peer_spin(get, arg, buf);
	return rc < 0 ? rc : (ssize_t)len;
}

static int producer(struct bench_worker *w, void *arg)
{
	return bench_stream_produce(w, send_one, arg);
}
static int consumer(struct bench_worker *w, void *arg)
{
	return bench_stream_consume(w, recv_one, arg);
}

static int spsc_tp(struct bench_case *c, struct bench_sample *s)
{
	struct ck_row a;
	int rc = ring_make(&a);
	if (rc < 0)
		return rc;
	struct bench_team t = {.producer = producer, .consumer = consumer,
			       .arg = &a};
	rc = bench_team_throughput(c, &t, s);
	ring_free(&a);
	return rc;
}

static int ping(void *p)
{
	return peer_ping(p, put, get);
}
static int pong(void *p)
{
	return peer_pong(p, put, get);
}
static int stop(void *p)
{
	return peer_stop(p, put);
}

static int busy_lat(struct bench_case *c, struct bench_sample *s)
{
	struct ck_row fwd, back;
	int rc = ring_make(&fwd);
	if (rc < 0)
		return rc;
	if ((rc = ring_make(&back)) < 0) {
		ring_free(&fwd);
		return rc;
	}
	struct peer_pingpong p = {.fwd = &fwd, .back = &back};
	struct bench_pingpong pp = {.ping = ping, .pong = pong, .stop = stop,
				    .arg = &p};
	rc = bench_pingpong_run(c, &pp, s);
	ring_free(&fwd);
	ring_free(&back);
	return rc;
}

#endif /* BENCH_PEER_FOUND */

BENCH_REGISTER(ck_ring) = {
	.suite = "throughput",
	.impl = "ck_ring",
	.descr = "Concurrency Kit ck_ring SPSC, 64 B typed elements, one per "
		 "enqueue/dequeue",
	BENCH_PEER_ROW(BENCH_SIZES(64), NULL, spsc_tp),
};

BENCH_REGISTER(ck_ring_busy) = {
	.suite = "latency",
	.impl = "ck_ring_busy",
	.descr = "64 B round trip over two ck_ring SPSC rings, busy-polling",
	BENCH_PEER_ROW(BENCH_SIZES(64), NULL, busy_lat),
};
