/*
 * conn.h - "send one message" and "receive one message" over an mproc
 * connection for the loops of stream.h, shared by the rows that stream
 * through connections (mproc_pipe.c, mproc_listener.c).
 */
#ifndef MPROC_BENCH_CONN_H
#define MPROC_BENCH_CONN_H

#include <stdio.h>

#include <mproc.h>

#include "stream.h"

static inline int bench_conn_send(struct bench_worker *w, void *arg,
				  const void *buf, size_t len)
{
	ssize_t rc = mproc_conn_send_bytes(arg, buf, len);
	if (rc >= 0)
		return 0;
	snprintf(w->res->note, sizeof w->res->note, "send_bytes: %s",
		 mproc_strerror((int)rc));
	return (int)rc;
}

static inline ssize_t bench_conn_recv(struct bench_worker *w, void *arg,
				      void *buf, size_t len)
{
	ssize_t got = mproc_conn_recv_bytes_into(arg, buf, len);
	if (got < 0)
		snprintf(w->res->note, sizeof w->res->note,
			 "recv_bytes_into after %llu messages: %s",
			 (unsigned long long)w->msgs, mproc_strerror((int)got));
	return got;
}

#endif /* MPROC_BENCH_CONN_H */
