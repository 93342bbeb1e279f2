/*
 * stream.h - the producer and consumer loops of a row that moves checked
 * messages one call at a time (pipe, socketpair, POSIX mq, mproc Pipe):
 * the row supplies "send one message" and "receive one message", the
 * loops here do the stamping, end markers and checking of bench.h.
 *
 * The loops are always inlined into the row's worker function, whose
 * send/recv arguments are constants there, so the compiler calls the
 * row's functions directly (and usually inlines them): sharing the loop
 * adds no indirect call to the timed path.
 */
#ifndef MPROC_BENCH_STREAM_H
#define MPROC_BENCH_STREAM_H

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/types.h>

#include "bench.h"

/* Send one message of @len bytes from @buf.  Returns 0 or a negative
 * errno (and may explain it in w->res->note). */
typedef int (*bench_send_fn)(struct bench_worker *w, void *arg,
			     const void *buf, size_t len);
/* Receive one message of at most @len bytes into @buf.  Returns its
 * length or a negative errno (and may explain it in w->res->note). */
typedef ssize_t (*bench_recv_fn)(struct bench_worker *w, void *arg,
				 void *buf, size_t len);

/* Producer: send checked messages of c->msg_size bytes until the stop
 * flag, then one end marker per consumer.  0 or the first error. */
static inline __attribute__((always_inline)) int
bench_stream_produce(struct bench_worker *w, bench_send_fn send, void *arg)
{
	size_t n = w->c->msg_size;
	unsigned char *buf = malloc(n);
	if (!buf)
		return -ENOMEM;
	bench_msg_init(buf, n);
	int rc = 0;
	while (rc == 0 && !bench_stop_requested(w)) {
		bench_msg_stamp(w, buf, n);
		rc = send(w, arg, buf, n);
	}
	/* One end marker per consumer (see bench.h). */
	bench_msg_stamp_end(w, buf, n);
	for (int k = 0; rc == 0 && k < w->c->consumers; k++)
		rc = send(w, arg, buf, n);
	free(buf);
	return rc;
}

/* Consumer: receive and check messages of c->msg_size bytes until every
 * producer's end marker came.  0 or the first error; a message of another
 * length is -EBADMSG. */
static inline __attribute__((always_inline)) int
bench_stream_consume(struct bench_worker *w, bench_recv_fn recv, void *arg)
{
	size_t n = w->c->msg_size;
	unsigned char *buf = malloc(n);
	if (!buf)
		return -ENOMEM;
	int rc;
	for (;;) {
		ssize_t got = recv(w, arg, buf, n);
		if (got < 0) {
			rc = (int)got;
			break;
		}
		if ((size_t)got != n) {
			snprintf(w->res->note, sizeof w->res->note,
				 "message of %zd bytes, expected %zu", got, n);
			rc = -EBADMSG;
			break;
		}
		rc = bench_msg_check(w, buf, n);
		if (rc == BENCH_MSG_END) {
			rc = 0;
			if (w->ends == w->c->producers)
				break;
		} else if (rc < 0) {
			break;
		}
	}
	free(buf);
	return rc;
}

#endif /* MPROC_BENCH_STREAM_H */
