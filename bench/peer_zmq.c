/*
 * peer_zmq.c - ZeroMQ as a peer of mproc's queues: checked messages from
 * a PUSH socket to a PULL socket over ipc:// (a Unix socket), one message
 * per zmq_send/zmq_recv, at the throughput suite's standard sizes.
 *
 * A ZeroMQ context owns I/O threads and does not survive fork(), so each
 * worker makes its own in the team's setup hook: the consumer binds, the
 * producer connects and sends a hello the consumer waits for, so that the
 * connection is up before the timed run (a connect that races the bind
 * would wait out ZeroMQ's 100 ms reconnect interval inside it).  Queues
 * hold peer_queue_depth() messages each way (ZeroMQ's default high-water
 * mark of 1000 for small messages).  1/1 only: PUSH spreads messages
 * round-robin, so the end markers of bench.h would not reach every
 * consumer.
 */
#include "peer.h"

#if BENCH_PEER_FOUND

#include <zmq.h>

struct zmq_row {
	struct peer_sock_row sock_row; /* first: peer_sock_run's view */
	void *ctx, *sock;   /* each worker's own, from setup */
};

static int zmq_fail(struct bench_worker *w, const char *what)
{
	int e = errno;
	snprintf(w->res->note, sizeof w->res->note, "%s: %s", what,
		 zmq_strerror(e));
	return e == EAGAIN ? -ETIMEDOUT : -(e ? e : EIO);
}

static int setup(struct bench_worker *w, void *arg)
{
	struct zmq_row *a = arg;
	char url[128];
	snprintf(url, sizeof url, "ipc://%s", a->sock_row.path);
	int depth = peer_queue_depth(w->c->msg_size);
	int timeout_ms = (int)(PEER_SPIN_LIMIT_NS / 1000000);
	int reconnect_ms = 10;
	a->ctx = zmq_ctx_new();
	if (!a->ctx)
		return zmq_fail(w, "zmq_ctx_new");
	a->sock = zmq_socket(a->ctx, w->is_consumer ? ZMQ_PULL : ZMQ_PUSH);
	if (!a->sock)
		return zmq_fail(w, "zmq_socket");
	if (zmq_setsockopt(a->sock, ZMQ_SNDHWM, &depth, sizeof depth) ||
	    zmq_setsockopt(a->sock, ZMQ_RCVHWM, &depth, sizeof depth) ||
	    zmq_setsockopt(a->sock, ZMQ_SNDTIMEO, &timeout_ms,
			   sizeof timeout_ms) ||
	    zmq_setsockopt(a->sock, ZMQ_RCVTIMEO, &timeout_ms,
			   sizeof timeout_ms) ||
	    zmq_setsockopt(a->sock, ZMQ_RECONNECT_IVL, &reconnect_ms,
			   sizeof reconnect_ms))
		return zmq_fail(w, "zmq_setsockopt");
	if (w->is_consumer) {
		char hello[sizeof PEER_HELLO];
		if (zmq_bind(a->sock, url))
			return zmq_fail(w, "zmq_bind");
		if (zmq_recv(a->sock, hello, sizeof hello, 0) < 0)
			return zmq_fail(w, "zmq_recv of the hello");
		return 0;
	}
	if (zmq_connect(a->sock, url))
		return zmq_fail(w, "zmq_connect");
	if (zmq_send(a->sock, PEER_HELLO, sizeof PEER_HELLO, 0) < 0)
		return zmq_fail(w, "zmq_send of the hello");
	return 0;
}

static int send_one(struct bench_worker *w, void *arg, const void *buf,
		    size_t len)
{
	const struct zmq_row *a = arg;
	while (zmq_send(a->sock, buf, len, 0) < 0)
		if (errno != EINTR)
			return zmq_fail(w, "zmq_send");
	return 0;
}

static ssize_t recv_one(struct bench_worker *w, void *arg, void *buf,
			size_t len)
{
	const struct zmq_row *a = arg;
	for (;;) {
		int got = zmq_recv(a->sock, buf, len, 0);
		if (got >= 0)
			return got;
		if (errno != EINTR)
			return zmq_fail(w, "zmq_recv");
	}
}

static int producer(struct bench_worker *w, void *arg)
{
	struct zmq_row *a = arg;
	int rc = bench_stream_produce(w, send_one, arg);
	if (rc == 0)
		rc = peer_wait_consumers(w, &a->sock_row);
	/* Everything was delivered, or the run failed: either way nothing
	 * queued is worth waiting for. */
	int linger = 0;
	zmq_setsockopt(a->sock, ZMQ_LINGER, &linger, sizeof linger);
	zmq_close(a->sock);
	zmq_ctx_term(a->ctx);
	return rc;
}

static int consumer(struct bench_worker *w, void *arg)
{
	return peer_sock_consume(w, recv_one, arg);
}

static int zmq_tp(struct bench_case *c, struct bench_sample *s)
{
	struct zmq_row a = {0};
	struct bench_team t = {.producer = producer, .consumer = consumer,
			       .setup = setup, .arg = &a};
	return peer_sock_run(c, s, "zmq", &a.sock_row, &t);
}

#endif /* BENCH_PEER_FOUND */

BENCH_REGISTER(zmq) = {
	.suite = "throughput",
	.impl = "zmq",
	.descr = "ZeroMQ PUSH/PULL over ipc://, one zmq_send/zmq_recv per "
		 "message",
	BENCH_PEER_ROW(NULL, NULL, zmq_tp),
};
