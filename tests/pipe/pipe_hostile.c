/*
 * A peer that lies or dies at the wrong instant (issue 10): a forged
 * streamed-message header announcing 2^62 bytes costs the receiver
 * nothing until the bytes arrive.  These tests write the shared layout
 * directly (pipe/conn.h), as a hostile or dying peer would.
 */
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#include "pipe_test.h"
#include "pipe/conn.h"

/* Write one record of @len payload bytes into the ring @w sends on, as
 * its sender would, and publish it. */
static void forge(mproc_conn *w, const void *p, uint64_t len, uint32_t flags)
{
	uint64_t tok;
	void *dst;
	cr_assert_eq(mproc__ring_reserve(&w->tx, len, &tok, &dst), 0);
	memcpy(dst, p, len);
	mproc__ring_commit(&w->tx, tok, len, flags, true);
}

/* A first fragment that announces 2^62 bytes, followed by a little data
 * and then a short message: the receiver allocates as the bytes arrive,
 * so it neither fails with -ENOMEM nor asks malloc for 2^62 bytes (which
 * ASan reports as an error); then it drops the unfinished message. */
Test(pipe_hostile, announced_size_costs_nothing)
{
	mproc_conn *r, *w;
	make(&r, &w, false, 4096);
	cr_assert_eq(mproc_conn_set_timeout(r, 0), 0);
	unsigned char rec[512];
	memset(rec, 0x5a, sizeof(rec));
	struct frag_hdr h = { .id = FRAG_FIRST, .value = UINT64_C(1) << 62 };
	memcpy(rec, &h, sizeof(h));
	forge(w, rec, sizeof(rec), MPROC__RING_REC_MORE);
	void *p = NULL;
	size_t len = 0;
	cr_assert_eq(mproc_conn_next_size(r, 0), (ssize_t)(UINT64_C(1) << 62));
	ssize_t n = mproc_conn_recv_bytes(r, MPROC_CONN_NOLIMIT, &p, &len);
	cr_assert_eq(n, -EAGAIN, "%zd %s", n, mproc_strerror((int)n));
	/* The rest never comes; a whole message does. */
	cr_assert_eq(mproc_conn_send_bytes(w, "next", 4), 4);
	n = mproc_conn_recv_bytes(r, MPROC_CONN_NOLIMIT, &p, &len);
	cr_assert_eq(n, 4, "%zd %s", n, mproc_strerror((int)n));
	cr_assert_arr_eq(p, "next", 4);
	free(p);
	mproc_conn_free(r);
	mproc_conn_free(w);
}

struct big_send {
	mproc_conn *c;
	const unsigned char *m;
	size_t n;
	ssize_t rc;
};

static void *big_send(void *arg)
{
	struct big_send *s = arg;
	s->rc = mproc_conn_send_bytes(s->c, s->m, s->n);
	return NULL;
}

/* recv_bytes without a limit grows its buffer as the fragments arrive,
 * also across calls that time out part-way. */
Test(pipe_hostile, recv_bytes_grows_as_bytes_arrive)
{
	mproc_conn *r, *w;
	make(&r, &w, false, 65536);
	size_t n = (5u << 20) / 2;
	unsigned char *m = malloc(n);
	fill(m, n, 12);
	struct big_send s = { w, m, n, 0 };
	pthread_t t;
	cr_assert_eq(mproc_conn_set_timeout(r, 0), 0);
	cr_assert_eq(pthread_create(&t, NULL, big_send, &s), 0);
	void *p = NULL;
	size_t len = 0;
	ssize_t rc;
	while ((rc = mproc_conn_recv_bytes(r, MPROC_CONN_NOLIMIT, &p, &len)) ==
	       -EAGAIN)
		sched_yield();
	pthread_join(t, NULL);
	cr_assert_eq(rc, (ssize_t)n, "%zd %s", rc, mproc_strerror((int)rc));
	cr_assert_eq(s.rc, (ssize_t)n);
	cr_assert_eq(len, n);
	cr_assert(memcmp(p, m, n) == 0);
	free(p);
	free(m);
	mproc_conn_free(r);
	mproc_conn_free(w);
}
