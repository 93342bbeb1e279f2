/*
 * peer_nng.c - nng (nanomsg-next-gen) as a peer of mproc's queues:
 * checked messages from a push0 socket to a pull0 socket over ipc://,
 * one nng_send/nng_recv per message, at the throughput suite's standard
 * sizes.
 *
 * As for ZeroMQ (peer_zmq.c): each worker opens its socket in the team's
 * setup hook, the consumer listens, the producer dials and sends a hello
 * the consumer waits for, so the connection is up before the timed run.
 * nng's push socket sends through an unbuffered pipe by default; both
 * sides get buffers of peer_queue_depth() messages, like ZeroMQ's
 * high-water marks, and the size limit on received messages (1 MiB by
 * default) is lifted.  1/1 only, as for ZeroMQ.
 */
#include "peer.h"

#if BENCH_PEER_FOUND

#include <nng/nng.h>
#include <nng/protocol/pipeline0/pull.h>
#include <nng/protocol/pipeline0/push.h>

struct nng_row {
	struct peer_sock_row sock_row; /* first: peer_sock_run's view */
	nng_socket sock;    /* each worker's own, from setup */
};

static int nng_fail(struct bench_worker *w, const char *what, int err)
{
	snprintf(w->res->note, sizeof w->res->note, "%s: %s", what,
		 nng_strerror(err));
	return err == NNG_ETIMEDOUT ? -ETIMEDOUT : -EIO;
}

static int setup(struct bench_worker *w, void *arg)
{
	struct nng_row *a = arg;
	char url[128];
	snprintf(url, sizeof url, "ipc://%s", a->sock_row.path);
	int depth = peer_queue_depth(w->c->msg_size);
	nng_duration timeout = (nng_duration)(PEER_SPIN_LIMIT_NS / 1000000);
	int rc = w->is_consumer ? nng_pull0_open(&a->sock)
				: nng_push0_open(&a->sock);
	if (rc)
		return nng_fail(w, "nng_open", rc);
	if ((rc = nng_socket_set_int(a->sock, NNG_OPT_SENDBUF, depth)) ||
	    (rc = nng_socket_set_int(a->sock, NNG_OPT_RECVBUF, depth)) ||
	    (rc = nng_socket_set_ms(a->sock, NNG_OPT_SENDTIMEO, timeout)) ||
	    (rc = nng_socket_set_ms(a->sock, NNG_OPT_RECVTIMEO, timeout)) ||
	    (rc = nng_socket_set_ms(a->sock, NNG_OPT_RECONNMINT, 10)) ||
	    (rc = nng_socket_set_size(a->sock, NNG_OPT_RECVMAXSZ, 0)))
		return nng_fail(w, "nng_socket_set", rc);
	if (w->is_consumer) {
		char hello[sizeof PEER_HELLO];
		size_t len = sizeof hello;
		if ((rc = nng_listen(a->sock, url, NULL, 0)))
			return nng_fail(w, "nng_listen", rc);
		if ((rc = nng_recv(a->sock, hello, &len, 0)))
			return nng_fail(w, "nng_recv of the hello", rc);
		return 0;
	}
	/* Non-blocking: the dialer retries in the background until the
	 * consumer listens. */
	if ((rc = nng_dial(a->sock, url, NULL, NNG_FLAG_NONBLOCK)))
		return nng_fail(w, "nng_dial", rc);
	if ((rc = nng_send(a->sock, PEER_HELLO, sizeof PEER_HELLO, 0)))
		return nng_fail(w, "nng_send of the hello", rc);
	return 0;
}

static int send_one(struct bench_worker *w, void *arg, const void *buf,
		    size_t len)
{
	const struct nng_row *a = arg;
	int rc = nng_send(a->sock, (void *)buf, len, 0);
	return rc ? nng_fail(w, "nng_send", rc) : 0;
}

static ssize_t recv_one(struct bench_worker *w, void *arg, void *buf,
			size_t len)
{
	const struct nng_row *a = arg;
	int rc = nng_recv(a->sock, buf, &len, 0);
	return rc ? nng_fail(w, "nng_recv", rc) : (ssize_t)len;
}

static int producer(struct bench_worker *w, void *arg)
{
	struct nng_row *a = arg;
	int rc = bench_stream_produce(w, send_one, arg);
	/* nng_close drops what is still queued: wait for the consumers. */
	if (rc == 0)
		rc = peer_wait_consumers(w, &a->sock_row);
	nng_close(a->sock);
	return rc;
}

static int consumer(struct bench_worker *w, void *arg)
{
	return peer_sock_consume(w, recv_one, arg);
}

static int nng_tp(struct bench_case *c, struct bench_sample *s)
{
	struct nng_row a = {0};
	struct bench_team t = {.producer = producer, .consumer = consumer,
			       .setup = setup, .arg = &a};
	return peer_sock_run(c, s, "nng", &a.sock_row, &t);
}

#endif /* BENCH_PEER_FOUND */

BENCH_REGISTER(nng) = {
	.suite = "throughput",
	.impl = "nng",
	.descr = "nng push0/pull0 over ipc://, one nng_send/nng_recv per "
		 "message",
	BENCH_PEER_ROW(NULL, NULL, nng_tp),
};
