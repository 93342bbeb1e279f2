/*
 * peer_boost_mq.c - Boost.Interprocess message_queue as a peer of mproc's
 * queues: checked messages through a named queue in /dev/shm (a mutex and
 * two condition variables, process-shared, around a ring of fixed-size
 * slots), one send/receive per message, at the throughput suite's
 * standard sizes, 1/1.
 *
 * Boost is C++; boost_mq.cpp wraps the few calls this row makes in C
 * functions (boost_mq.h).  The parent creates the queue, peer_queue_depth()
 * messages deep; each worker opens it in the team's setup hook.
 */
#include "peer.h"

#if BENCH_PEER_FOUND

#include "boost_mq.h"
#include "stream.h"

struct boost_row {
	char name[64]; /* the queue's name in /dev/shm */
	void *q;       /* each worker's own, from setup */
};

static int setup(struct bench_worker *w, void *arg)
{
	struct boost_row *a = arg;
	return bench_boost_mq_open(a->name, &a->q, w->res->note,
				   sizeof w->res->note);
}

static int send_one(struct bench_worker *w, void *arg, const void *buf,
		    size_t len)
{
	const struct boost_row *a = arg;
	return bench_boost_mq_send(a->q, buf, len, w->res->note,
				   sizeof w->res->note);
}

static ssize_t recv_one(struct bench_worker *w, void *arg, void *buf,
			size_t len)
{
	const struct boost_row *a = arg;
	return bench_boost_mq_receive(a->q, buf, len, w->res->note,
				      sizeof w->res->note);
}

/* A queue holds what was sent after the sender exits, so unlike the
 * socket peers neither side waits for the other at the end. */
static int producer(struct bench_worker *w, void *arg)
{
	return bench_stream_produce(w, send_one, arg);
}

static int consumer(struct bench_worker *w, void *arg)
{
	return bench_stream_consume(w, recv_one, arg);
}

static int boost_tp(struct bench_case *c, struct bench_sample *s)
{
	static unsigned counter;
	struct boost_row a = {0};
	snprintf(a.name, sizeof a.name, "mproc-bench-boost.%d.%u",
		 (int)getpid(), counter++);
	int rc = bench_boost_mq_create(a.name,
				       (size_t)peer_queue_depth(c->msg_size),
				       c->msg_size, s->note, sizeof s->note);
	if (rc < 0)
		return rc;
	struct bench_team t = {.producer = producer, .consumer = consumer,
			       .setup = setup, .arg = &a};
	rc = bench_team_throughput(c, &t, s);
	bench_boost_mq_remove(a.name);
	return rc;
}

#endif /* BENCH_PEER_FOUND */

BENCH_REGISTER(boost_mq) = {
	.suite = "throughput",
	.impl = "boost_mq",
	.descr = "Boost.Interprocess message_queue, one send/receive per "
		 "message",
	BENCH_PEER_ROW(NULL, NULL, boost_tp),
};
