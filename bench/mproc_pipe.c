/*
 * mproc_pipe.c - mproc's Pipe rows: throughput of checked messages over a
 * one-way pipe (send_bytes / recv_bytes_into, one message per call), and
 * 64-byte round trips over one duplex pipe, in busy-poll and in the
 * default (spin, then futex) mode.
 *
 * The parent creates the pipe and forks the workers, as a Python program
 * would; each worker then uses one end.  The parent keeps its handles
 * until the workers are gone: closing them earlier, while the parent still
 * owns the ends it warmed up, would close the stream for good (pipe.h,
 * "Who owns an end").
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mproc.h>

#include "bench.h"
#include "conn.h"
#include "stream.h"

/* Waits longer than this mean a lost peer, not a slow one: a safety net
 * behind the pipe's own dead-peer detection, which cannot see a worker
 * that died before it first used its end. */
#define GUARD_NS (30 * MPROC_SEC)

/* Ring bytes per direction: the 1 MiB default, or room for 8 messages, so
 * every message is one record and the sender runs ahead of the receiver. */
static size_t ring_bytes(size_t msg)
{
	size_t cap = BENCH_MIB;
	while (cap < 8 * msg)
		cap <<= 1;
	return cap;
}

static int make_pipe(mproc_conn **a, mproc_conn **b, bool duplex, size_t cap,
		     char *note, size_t note_len)
{
	struct mproc_pipe_attr attr;
	mproc_pipe_attr_init(&attr);
	attr.capacity = cap;
	int rc = mproc_pipe(duplex, &attr, a, b);
	if (rc == 0 && ((rc = mproc_conn_set_timeout(*a, GUARD_NS)) != 0 ||
			(rc = mproc_conn_set_timeout(*b, GUARD_NS)) != 0)) {
		mproc_conn_free(*a);
		mproc_conn_free(*b);
	}
	if (rc)
		snprintf(note, note_len, "mproc_pipe: %s", mproc_strerror(rc));
	return rc;
}

/* ---- throughput ---------------------------------------------------- */

struct tp {
	mproc_conn *rx, *tx; /* a (receive-only), b (send-only) */
};

static int producer(struct bench_worker *w, void *arg)
{
	struct tp *t = arg;
	int rc = bench_stream_produce(w, bench_conn_send, t->tx);
	if (rc < 0)
		return rc;
	/* This process used the end, so the close ends the stream for good:
	 * the consumer would read -MPROC_EEOF after the markers. */
	return mproc_conn_close(t->tx);
}

static int consumer(struct bench_worker *w, void *arg)
{
	struct tp *t = arg;
	return bench_stream_consume(w, bench_conn_recv, t->rx);
}

/* Pass twice the ring's size through it in the parent, so that every page
 * of the segment exists before the timed run (a kernel pipe's buffer is
 * warm as well).  The zero timeout turns a stuck ring into an error
 * instead of a hang. */
static int warm_up(struct tp *t, size_t n, size_t cap, char *note,
		   size_t note_len)
{
	unsigned char *buf = calloc(1, n);
	if (!buf)
		return -ENOMEM;
	ssize_t rc = mproc_conn_set_timeout(t->tx, MPROC_NOWAIT);
	if (rc == 0)
		rc = mproc_conn_set_timeout(t->rx, MPROC_NOWAIT);
	for (size_t moved = 0; rc >= 0 && moved < 2 * cap; moved += n + 8) {
		rc = mproc_conn_send_bytes(t->tx, buf, n);
		if (rc >= 0)
			rc = mproc_conn_recv_bytes_into(t->rx, buf, n);
	}
	free(buf);
	if (rc >= 0 && (rc = mproc_conn_set_timeout(t->tx, GUARD_NS)) == 0)
		rc = mproc_conn_set_timeout(t->rx, GUARD_NS);
	if (rc < 0)
		snprintf(note, note_len, "warm-up: %s", mproc_strerror((int)rc));
	return rc < 0 ? (int)rc : 0;
}

static int pipe_tp(struct bench_case *c, struct bench_sample *s)
{
	struct tp t;
	size_t cap = ring_bytes(c->msg_size);
	int rc = make_pipe(&t.rx, &t.tx, false, cap, s->note, sizeof s->note);
	if (rc)
		return rc;
	rc = warm_up(&t, c->msg_size, cap, s->note, sizeof s->note);
	if (rc == 0) {
		struct bench_team team = { .producer = producer,
					   .consumer = consumer, .arg = &t };
		rc = bench_team_throughput(c, &team, s);
	}
	/* The workers used the ends last: these closes only release the
	 * parent's handles. */
	mproc_conn_free(t.rx);
	mproc_conn_free(t.tx);
	return rc;
}

BENCH_REGISTER(mproc_pipe_tp) = {
	.suite = "throughput",
	.impl = "mproc_pipe",
	.descr = "mproc one-way Pipe, send_bytes/recv_bytes_into, ring "
		 "max(1 MiB, 8 x msg)",
	.sizes = BENCH_SIZES(64, 256, BENCH_KIB, 4 * BENCH_KIB,
			     64 * BENCH_KIB, BENCH_MIB),
	.baselines = BENCH_NAMES("socketpair"),
	.run = pipe_tp,
};

/* ---- latency ------------------------------------------------------- */

/* Round trips over one duplex pipe: the initiator sends on end a and
 * reads the echo on a; the echoer receives on b and answers on b. */
struct pp {
	mproc_conn *a, *b;
	uint64_t seq;
	unsigned char msg[64];
};

static int p_ping(void *arg)
{
	struct pp *p = arg;
	uint64_t seq = ++p->seq, back;
	memcpy(p->msg, &seq, sizeof seq);
	ssize_t rc = mproc_conn_send_bytes(p->a, p->msg, sizeof p->msg);
	if (rc >= 0)
		rc = mproc_conn_recv_bytes_into(p->a, p->msg, sizeof p->msg);
	if (rc < 0)
		return (int)rc;
	if (rc != sizeof p->msg)
		return -EBADMSG;
	memcpy(&back, p->msg, sizeof back);
	return back == seq ? 0 : -EBADMSG;
}

static int p_pong(void *arg)
{
	struct pp *p = arg;
	ssize_t rc = mproc_conn_recv_bytes_into(p->b, p->msg, sizeof p->msg);
	if (rc < 0)
		return (int)rc;
	if (rc != sizeof p->msg)
		return -EBADMSG;
	uint64_t seq;
	memcpy(&seq, p->msg, sizeof seq);
	if (seq == UINT64_MAX)
		return BENCH_PONG_STOP;
	rc = mproc_conn_send_bytes(p->b, p->msg, sizeof p->msg);
	return rc < 0 ? (int)rc : 0;
}

static int p_stop(void *arg)
{
	struct pp *p = arg;
	uint64_t seq = UINT64_MAX;
	memcpy(p->msg, &seq, sizeof seq);
	ssize_t rc = mproc_conn_send_bytes(p->a, p->msg, sizeof p->msg);
	return rc < 0 ? (int)rc : 0;
}

static int run_lat(struct bench_case *c, struct bench_sample *s, bool busy)
{
	struct pp p = { 0 };
	if (c->msg_size != sizeof p.msg) {
		snprintf(s->note, sizeof s->note, "ping-pong is 64 B only");
		return BENCH_SKIP;
	}
	memset(p.msg, 0x5a, sizeof p.msg);
	/* The smallest ring, as the queue latency rows use: a round trip
	 * touches the same few lines over and over. */
	int rc = make_pipe(&p.a, &p.b, true, MPROC_PIPE_MIN_CAPACITY, s->note,
			   sizeof s->note);
	if (rc)
		return rc;
	/* Per handle and per process: the forked workers inherit it. */
	if ((rc = mproc_conn_set_busy_poll(p.a, busy)) != 0 ||
	    (rc = mproc_conn_set_busy_poll(p.b, busy)) != 0) {
		snprintf(s->note, sizeof s->note, "set_busy_poll: %s",
			 mproc_strerror(rc));
	} else {
		struct bench_pingpong pg = { .ping = p_ping, .pong = p_pong,
					     .stop = p_stop, .arg = &p };
		rc = bench_pingpong_run(c, &pg, s);
	}
	mproc_conn_free(p.a);
	mproc_conn_free(p.b);
	return rc;
}

static int lat_busy(struct bench_case *c, struct bench_sample *s)
{
	return run_lat(c, s, true);
}
static int lat_default(struct bench_case *c, struct bench_sample *s)
{
	return run_lat(c, s, false);
}

BENCH_REGISTER(mproc_pipe_busy) = {
	.suite = "latency",
	.impl = "mproc_pipe_busy",
	.descr = "64 B round trip over one duplex Pipe (4 KiB rings), "
		 "busy-poll on both ends",
	.baselines = BENCH_NAMES("socketpair"),
	.run = lat_busy,
};

BENCH_REGISTER(mproc_pipe_lat) = {
	.suite = "latency",
	.impl = "mproc_pipe",
	.descr = "64 B round trip over one duplex Pipe (4 KiB rings), "
		 "default (spin, then futex)",
	.baselines = BENCH_NAMES("socketpair"),
	.run = lat_default,
};
