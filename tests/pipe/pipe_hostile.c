/*
 * A peer that lies or dies at the wrong instant (issue 10): a forged
 * streamed-message header announcing 2^62 bytes costs the receiver
 * nothing until the bytes arrive; a signaller that died inside its raise
 * of the fileno eventfd leaves no lasting damage.  These tests write the
 * shared layout directly (pipe/conn.h), as a hostile or dying peer would.
 */
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

#include "pipe_test.h"
#include "common/clock.h"
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

static bool fd_readable(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	return poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
}

/* A signaller that died between winning the right to write the eventfd
 * and writing it left the state BUSY for ever: the sender never signalled
 * again and every receive that emptied the ring waited 10 ms.  The next
 * sender or receiver that meets the dead signaller's BUSY takes over. */
static void busy_left_by_dead(uint32_t busy, bool by_child)
{
	mproc_conn *r, *w;
	make(&r, &w, false, 4096);
	int fd = mproc_conn_fileno(r);
	cr_assert_geq(fd, 0);
	_Atomic uint32_t *sig = &r->ctl->note[0].sig;
	if (by_child) {
		pid_t pid = fork();
		cr_assert_geq(pid, 0);
		if (pid == 0) {
			atomic_store(sig, busy | (uint32_t)getpid() << 2);
			_exit(0);
		}
		cr_assert_eq(wait_child(pid), 0);
	} else {
		atomic_store(sig, busy);
	}
	cr_assert_eq(mproc_conn_set_timeout(r, 0), 0);
	int64_t t0 = mproc__now_ns();
	for (int i = 0; i < 20; i++) {
		cr_assert_eq(mproc_conn_send_bytes(w, "x", 1), 1);
		cr_assert(fd_readable(fd), "round %d: readable with data", i);
		char c;
		cr_assert_eq(mproc_conn_recv_bytes_into(r, &c, 1), 1);
		cr_assert(!fd_readable(fd), "round %d: not readable when empty", i);
	}
	int64_t el = mproc__now_ns() - t0;
	cr_assert_lt(el, 100 * MPROC_MSEC, "20 rounds took %lld ms",
		     (long long)(el / MPROC_MSEC));
	mproc_conn_free(r);
	mproc_conn_free(w);
}

Test(pipe_hostile, signaller_dead_inside_raise)
{
	busy_left_by_dead(SIG_BUSY, true);
}

Test(pipe_hostile, signaller_unknown_inside_raise)
{
	busy_left_by_dead(SIG_BUSY, false);
}
