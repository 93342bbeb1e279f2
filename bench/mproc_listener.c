/*
 * mproc_listener.c - the Listener row: throughput of checked messages over
 * a connection that two processes set up through mproc_listener_accept and
 * mproc_client on an abstract Unix name, with the authkey handshake.  Case
 * "shm": the connection upgraded to a shared-memory pipe (the default
 * between two mproc ends); case "socket": MPROC_LISTENER_NO_UPGRADE, so
 * the same messages travel in Python's framing over the socket.  Beside
 * the socketpair and mproc_pipe rows, it shows what the rendezvous costs
 * once it is made (nothing, for "shm") and what the upgrade gains.
 *
 * The parent makes the connection (client and accept in two threads),
 * then forks the workers: the producer sends on the client's end, the
 * consumer receives on the listener's.  As in mproc_pipe.c, the parent
 * keeps its handles until the workers are gone.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <mproc.h>

#include "bench.h"
#include "conn.h"
#include "stream.h"

#define GUARD_NS (30 * MPROC_SEC)
#define KEY "mproc-bench"

struct link {
	mproc_conn *rx, *tx; /* the listener's end, the client's end */
};

struct client_arg {
	const char *address;
	mproc_conn *conn;
	int rc;
};

static void *client_main(void *arg)
{
	struct client_arg *a = arg;
	a->rc = mproc_client(a->address, KEY, sizeof(KEY) - 1, GUARD_NS,
			     &a->conn);
	return NULL;
}

static int connect_link(struct link *k, bool upgrade, size_t cap, char *note,
			size_t note_len)
{
	char address[64];
	snprintf(address, sizeof address, "@mproc-bench-%d", (int)getpid());
	struct mproc_listener_attr attr;
	mproc_listener_attr_init(&attr);
	attr.authkey = KEY;
	attr.authkey_len = sizeof(KEY) - 1;
	attr.capacity = cap;
	attr.flags = upgrade ? 0 : MPROC_LISTENER_NO_UPGRADE;
	mproc_listener *l;
	int rc = mproc_listener_create(address, &attr, &l);
	if (rc) {
		snprintf(note, note_len, "listener_create: %s", mproc_strerror(rc));
		return rc;
	}
	struct client_arg ca = { .address = address };
	pthread_t th;
	if ((rc = -pthread_create(&th, NULL, client_main, &ca)) != 0) {
		mproc_listener_close(l);
		snprintf(note, note_len, "pthread_create: %s", strerror(-rc));
		return rc;
	}
	rc = mproc_listener_accept(l, GUARD_NS, &k->rx);
	pthread_join(th, NULL);
	mproc_listener_close(l);
	if (rc || ca.rc) {
		snprintf(note, note_len, "%s: %s", rc ? "accept" : "client",
			 mproc_strerror(rc ? rc : ca.rc));
		mproc_conn_free(rc ? NULL : k->rx);
		mproc_conn_free(ca.conn);
		return rc ? rc : ca.rc;
	}
	k->tx = ca.conn;
	if ((rc = mproc_conn_set_timeout(k->rx, GUARD_NS)) != 0 ||
	    (rc = mproc_conn_set_timeout(k->tx, GUARD_NS)) != 0) {
		snprintf(note, note_len, "set_timeout: %s", mproc_strerror(rc));
		mproc_conn_free(k->rx);
		mproc_conn_free(k->tx);
	}
	return rc;
}

static int producer(struct bench_worker *w, void *arg)
{
	struct link *k = arg;
	int rc = bench_stream_produce(w, bench_conn_send, k->tx);
	if (rc < 0)
		return rc;
	return mproc_conn_close(k->tx);
}

static int consumer(struct bench_worker *w, void *arg)
{
	struct link *k = arg;
	return bench_stream_consume(w, bench_conn_recv, k->rx);
}

static int listener_tp(struct bench_case *c, struct bench_sample *s)
{
	bool upgrade = strcmp(c->case_name, "shm") == 0;
	/* As the mproc_pipe row: room for 8 messages, at least 1 MiB. */
	size_t cap = BENCH_MIB;
	while (cap < 8 * c->msg_size)
		cap <<= 1;
	struct link k;
	int rc = connect_link(&k, upgrade, cap, s->note, sizeof s->note);
	if (rc)
		return rc;
	struct bench_team team = { .producer = producer, .consumer = consumer,
				   .arg = &k };
	rc = bench_team_throughput(c, &team, s);
	mproc_conn_free(k.rx);
	mproc_conn_free(k.tx);
	return rc;
}

BENCH_REGISTER(mproc_listener_tp) = {
	.suite = "throughput",
	.impl = "mproc_listener",
	.descr = "Listener/Client connection (abstract name, authkey), "
		 "send_bytes/recv_bytes_into; shm: upgraded to a pipe, "
		 "socket: Python's framing on the socket",
	.sizes = BENCH_SIZES(64, 256, BENCH_KIB, 4 * BENCH_KIB,
			     64 * BENCH_KIB, BENCH_MIB),
	.cases = BENCH_NAMES("shm", "socket"),
	.baselines = BENCH_NAMES("socketpair", "mproc_pipe"),
	.run = listener_tp,
};
