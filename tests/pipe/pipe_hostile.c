/*
 * A peer that lies or dies at the wrong instant (issue 10): a forged
 * streamed-message header announcing 2^62 bytes costs the receiver
 * nothing until the bytes arrive; a failed import leaves the inherited
 * descriptors as they were; a signaller that died inside its raise of the
 * fileno eventfd leaves no lasting damage.  These tests write the shared
 * layout directly (pipe/conn.h), as a hostile or dying peer would.
 */
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
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
	/* The rest never comes; a whole message does, and ends it. */
	cr_assert_eq(mproc_conn_send_bytes(w, "next", 4), 4);
	cr_assert_eq(mproc_conn_next_size(r, 0), 4);
	uint32_t next;
	cr_assert_eq(MPROC_CONN_RECV(r, next), 4);
	cr_assert(memcmp(&next, "next", 4) == 0);
	mproc_conn_free(r);
	mproc_conn_free(w);
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
	cr_assert_eq(pthread_create(&t, NULL, big_send_thread, &s), 0);
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

static bool fd_open(int fd)
{
	return fcntl(fd, F_GETFD) >= 0;
}

static bool fd_cloexec(int fd)
{
	return fcntl(fd, F_GETFD) & FD_CLOEXEC;
}

/* An import that fails closes none of the inherited descriptors and
 * leaves their close-on-exec flag as the exporter set it (pipe.h), also
 * when it fails after the segment was mapped. */
Test(pipe_hostile, failed_import_leaves_descriptors)
{
	mproc_conn *a, *b, *c = NULL;
	make(&a, &b, false, 4096);
	struct exported e;
	export_and_map(a, &e);
	char *tok = e.tok;
	int efd = e.efd, sfd = e.sfd;
	size_t size = e.size;
	unsigned char *base = e.base;
	const struct mproc_shm_header *h = (const void *)base;
	struct mproc__ring_spsc_shared *sh =
		(void *)(base + MPROC_SHM_HEADER_SIZE + h->geom[GEOM_RING0]);

	/* Indices that break the ring's invariants: refused on attach,
	 * after the segment itself validated. */
	uint64_t head = atomic_load(&sh->head);
	atomic_store(&sh->head, head + 3 * 4096);
	cr_assert_eq(mproc_conn_import(tok, &c), -MPROC_ECORRUPT);
	cr_assert_null(c);
	cr_assert(fd_open(sfd) && fd_open(efd), "descriptors stay open");
	cr_assert(!fd_cloexec(sfd) && !fd_cloexec(efd), "and inheritable");
	atomic_store(&sh->head, head);

	/* A token for the sending end of a one-way pipe that names only a
	 * receiving eventfd: refused once the segment says one-way. */
	char bad[MPROC_CONN_TOKEN_MAX];
	snprintf(bad, sizeof(bad), "mproc-conn:1:%d:-1:mproc-shm:%d:%zu", efd,
		 sfd, size);
	cr_assert_eq(mproc_conn_import(bad, &c), -EINVAL);
	cr_assert(fd_open(sfd) && fd_open(efd));
	cr_assert(!fd_cloexec(sfd) && !fd_cloexec(efd));

	/* The exporter's own handle still works: nothing was closed
	 * under it. */
	cr_assert_eq(mproc_conn_send_bytes(b, "ok", 2), 2);
	char buf[4];
	cr_assert_eq(mproc_conn_recv_bytes_into(a, buf, sizeof(buf)), 2);
	munmap(base, size);
	mproc_conn_free(a);
	mproc_conn_free(b);
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

/* A sender killed inside mproc_conn_close, after close_for_good stored
 * END_CLOSED and before it closed the ring, left the receiver waiting for
 * ever: the liveness check took "closed" to mean that the ring carried
 * the close.  The child dies at exactly that point here (it stores the
 * state as the close does, then stops until killed).  The receiver must
 * get the message sent before, then the end of the stream. */
Test(pipe_hostile, sender_killed_inside_close)
{
	mproc_conn *r, *w;
	make(&r, &w, false, 4096);
	_Atomic uint32_t *state = &w->ctl->end[w->end].state;
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		if (mproc_conn_send_bytes(w, "last", 4) != 4)
			_exit(1);
		atomic_store(state, END_CLOSED);
		for (;;)
			pause();
	}
	while (atomic_load(state) != END_CLOSED)
		usleep(100);
	cr_assert_eq(kill(pid, SIGKILL), 0);
	cr_assert_eq(wait_child(pid), 128 + SIGKILL);
	cr_assert_eq(mproc_conn_set_timeout(r, 5 * MPROC_SEC), 0);
	char buf[16];
	cr_assert_eq(mproc_conn_recv_bytes_into(r, buf, sizeof(buf)), 4);
	cr_assert_eq(memcmp(buf, "last", 4), 0);
	ssize_t n = mproc_conn_recv_bytes_into(r, buf, sizeof(buf));
	cr_assert_eq(n, -MPROC_EEOF, "got %zd (%s)", n, mproc_strerror((int)n));
	mproc_conn_free(r);
	mproc_conn_free(w);
}
