/*
 * Descriptor connections (mproc_conn_from_fd): Python's framing over a
 * socketpair or a pipe, checked byte for byte against a hand-written
 * stream and against the Python on the machine; every call and error as
 * on a shared-memory pipe (too long stays readable, timeouts, end of
 * stream, closed), a hostile length prefix, mproc_wait over both kinds,
 * and mproc_conn_closed.  Start methods: pipe_fdconn_methods.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "pipe_test.h"
#include "mproc/wait.h"
#include "common/clock.h"
#include "common/os.h"

extern char **environ;

/* A socketpair: *@c wraps sv[0], *@raw is sv[1] for hand-made bytes. */
static void pair(mproc_conn **c, int *raw)
{
	int sv[2];
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	int rc = mproc_conn_from_fd(sv[0], 0, c);
	cr_assert_eq(rc, 0, "from_fd: %s", mproc_strerror(rc));
	*raw = sv[1];
}

/* Two connections over one socketpair. */
static void conn_pair(mproc_conn **a, mproc_conn **b)
{
	int sv[2];
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	cr_assert_eq(mproc_conn_from_fd(sv[0], 0, a), 0);
	cr_assert_eq(mproc_conn_from_fd(sv[1], 0, b), 0);
}

static void put_raw(int fd, const void *p, size_t n)
{
	cr_assert_eq(mproc__write_all(fd, p, n), 0);
}

static void get_raw(int fd, void *p, size_t n)
{
	cr_assert_eq(mproc__read_all(fd, p, n), 0);
}

Test(fdconn, framing_matches_python_bytes)
{
	mproc_conn *c;
	int raw;
	pair(&c, &raw);
	/* Sent: 4-byte big-endian length, then the bytes. */
	cr_assert_eq(mproc_conn_send_bytes(c, "hello", 5), 5);
	cr_assert_eq(mproc_conn_send_bytes(c, NULL, 0), 0);
	unsigned char got[13];
	get_raw(raw, got, sizeof(got));
	cr_assert_arr_eq(got, "\0\0\0\5hello\0\0\0\0", 13);
	/* Received: the same, and the 8-byte form with a small length,
	 * which Python accepts as well. */
	put_raw(raw, "\0\0\0\3abc", 7);
	put_raw(raw, "\xff\xff\xff\xff\0\0\0\0\0\0\0\2xy", 14);
	char buf[16];
	cr_assert_eq(mproc_conn_recv_bytes_into(c, buf, sizeof(buf)), 3);
	cr_assert_arr_eq(buf, "abc", 3);
	cr_assert_eq(mproc_conn_recv_bytes_into(c, buf, sizeof(buf)), 2);
	cr_assert_arr_eq(buf, "xy", 2);
	cr_assert_eq(mproc_conn_fileno(c) >= 0, 1);
	mproc_conn_free(c);
	close(raw);
}

Test(fdconn, every_call_both_ways)
{
	mproc_conn *a, *b;
	conn_pair(&a, &b);
	cr_assert_eq(mproc_conn_readable(a), 1);
	cr_assert_eq(mproc_conn_writable(a), 1);
	cr_assert_eq(mproc_conn_closed(a), 0);
	cr_assert_eq(mproc_conn_set_busy_poll(a, true), 0);
	cr_assert_eq(mproc_conn_dropped(a), 0);
	/* Objects by value; the wrong size stays in place. */
	struct { int x; double y; } o = { 7, 2.5 }, p;
	cr_assert_eq(MPROC_CONN_SEND(a, o), (ssize_t)sizeof(o));
	cr_assert_eq(mproc_conn_next_size(b, MPROC_FOREVER), (ssize_t)sizeof(o));
	int small;
	cr_assert_eq(MPROC_CONN_RECV(b, small), -EBADMSG);
	cr_assert_eq(MPROC_CONN_RECV(b, p), (ssize_t)sizeof(p));
	cr_assert_eq(p.x, 7);
	/* Too long for the buffer: -EMSGSIZE, then readable whole. */
	cr_assert_eq(mproc_conn_send_bytes(b, "0123456789", 10), 10);
	char buf[32];
	cr_assert_eq(mproc_conn_recv_bytes_into(a, buf, 4), -EMSGSIZE);
	void *m;
	size_t len = 0;
	cr_assert_eq(mproc_conn_recv_bytes(a, 5, &m, &len), -EMSGSIZE);
	cr_assert_eq(len, 10);
	cr_assert_eq(mproc_conn_next_size(a, 0), 10);
	cr_assert_eq(mproc_conn_recv_bytes(a, MPROC_CONN_NOLIMIT, &m, &len), 10);
	cr_assert_arr_eq(m, "0123456789", 10);
	free(m);
	/* Empty messages, into a NULL buffer of capacity 0 too. */
	cr_assert_eq(mproc_conn_send_bytes(a, NULL, 0), 0);
	cr_assert_eq(mproc_conn_send_bytes(a, "", 0), 0);
	cr_assert_eq(mproc_conn_recv_bytes_into(b, NULL, 0), 0);
	cr_assert_eq(mproc_conn_recv_bytes(b, 0, &m, &len), 0);
	cr_assert_not_null(m);
	free(m);
	/* Bad arguments. */
	cr_assert_eq(mproc_conn_send_bytes(a, NULL, 3), -EINVAL);
	cr_assert_eq(mproc_conn_recv_bytes(a, 1, NULL, &len), -EINVAL);
	cr_assert_eq(mproc_conn_recv_bytes_into(a, NULL, 3), -EINVAL);
	cr_assert_eq(mproc_conn_poll(a, -2), -EINVAL);
	cr_assert_eq(mproc_conn_next_size(a, -2), -EINVAL);
	cr_assert_eq(mproc_conn_set_timeout(a, -2), -EINVAL);
	mproc_conn_free(a);
	mproc_conn_free(b);
}

Test(fdconn, poll_timeouts_and_fileno)
{
	mproc_conn *a, *b;
	conn_pair(&a, &b);
	char buf[8];
	cr_assert_eq(mproc_conn_poll(a, 0), 0);
	cr_assert_eq(mproc_conn_poll(a, 20 * MPROC_MSEC), 0);
	cr_assert_eq(mproc_conn_set_timeout(a, 0), 0);
	cr_assert_eq(mproc_conn_recv_bytes_into(a, buf, sizeof(buf)), -EAGAIN);
	cr_assert_eq(mproc_conn_next_size(a, 0), -EAGAIN);
	cr_assert_eq(mproc_conn_set_timeout(a, 30 * MPROC_MSEC), 0);
	int64_t t0 = mproc__now_ns();
	cr_assert_eq(mproc_conn_recv_bytes_into(a, buf, sizeof(buf)), -ETIMEDOUT);
	cr_assert_geq(mproc__now_ns() - t0, 25 * MPROC_MSEC);
	cr_assert_eq(mproc_conn_next_size(a, 10 * MPROC_MSEC), -ETIMEDOUT);
	int fd = mproc_conn_fileno(a);
	struct pollfd pf = { .fd = fd, .events = POLLIN };
	cr_assert_eq(poll(&pf, 1, 0), 0);
	cr_assert_eq(mproc_conn_send_bytes(b, "x", 1), 1);
	cr_assert_eq(poll(&pf, 1, 1000), 1);
	cr_assert_eq(mproc_conn_poll(a, 0), 1);
	cr_assert_eq(mproc_conn_recv_bytes_into(a, buf, sizeof(buf)), 1);
	cr_assert_eq(poll(&pf, 1, 0), 0, "read exactly: nothing left over");
	cr_assert_eq(mproc_conn_poll(a, 0), 0);
	mproc_conn_free(a);
	mproc_conn_free(b);
}

/* The peer's close: what it sent is received, then -MPROC_EEOF for good;
 * sends to a closed peer get -EPIPE (and no SIGPIPE kills us). */
Test(fdconn, end_of_stream_and_closed)
{
	mproc_conn *a, *b;
	conn_pair(&a, &b);
	cr_assert_eq(mproc_conn_send_bytes(b, "last", 4), 4);
	cr_assert_eq(mproc_conn_close(b), 0);
	cr_assert_eq(mproc_conn_closed(b), 1);
	cr_assert_eq(mproc_conn_close(b), -EBADF);
	cr_assert_eq(mproc_conn_send_bytes(b, "x", 1), -EBADF);
	cr_assert_eq(mproc_conn_fileno(b), -EBADF);
	cr_assert_eq(mproc_conn_poll(b, 0), -EBADF);
	char tok[MPROC_CONN_TOKEN_MAX];
	cr_assert_eq(mproc_conn_export(b, tok, sizeof(tok)), -EBADF);
	char buf[8];
	cr_assert_eq(mproc_conn_recv_bytes_into(a, buf, sizeof(buf)), 4);
	cr_assert_eq(mproc_conn_poll(a, 0), 1);
	cr_assert_eq(mproc_conn_recv_bytes_into(a, buf, sizeof(buf)), -MPROC_EEOF);
	cr_assert_eq(mproc_conn_next_size(a, 0), -MPROC_EEOF);
	cr_assert_eq(mproc_conn_closed(a), 0, "the peer's close is not ours");
	ssize_t n = -1;
	for (int i = 0; i < 4 && n != -EPIPE; i++)
		n = mproc_conn_send_bytes(a, "late", 4);
	cr_assert_eq(n, -EPIPE, "%s", mproc_strerror((int)n));
	mproc_conn_free(a);
	mproc_conn_free(b);
}

/* The peer ends mid-message: the part is dropped, then end of stream. */
Test(fdconn, peer_ends_mid_message)
{
	mproc_conn *c;
	int raw;
	pair(&c, &raw);
	put_raw(raw, "\0\0\0\x10only-half", 13);
	close(raw);
	void *m;
	size_t len;
	cr_assert_eq(mproc_conn_recv_bytes(c, MPROC_CONN_NOLIMIT, &m, &len),
		     -MPROC_EEOF);
	mproc_conn_free(c);
}

/* A message that arrives in pieces across calls that time out: the
 * parts wait in the handle, into the caller's buffer or a new one. */
Test(fdconn, resumed_across_timeouts)
{
	mproc_conn *c;
	int raw;
	pair(&c, &raw);
	cr_assert_eq(mproc_conn_set_timeout(c, 0), 0);
	char buf[16];
	for (int round = 0; round < 2; round++) {
		put_raw(raw, "\0\0", 2);
		cr_assert_eq(mproc_conn_recv_bytes_into(c, buf, sizeof(buf)), -EAGAIN);
		put_raw(raw, "\0\x0a" "01234", 7);
		void *m = NULL;
		size_t len;
		if (round == 0)
			cr_assert_eq(mproc_conn_recv_bytes_into(c, buf, sizeof(buf)), -EAGAIN);
		else
			cr_assert_eq(mproc_conn_recv_bytes(c, 100, &m, &len), -EAGAIN);
		cr_assert_eq(mproc_conn_next_size(c, 0), 10);
		/* Too small a buffer: refused, and the part is kept. */
		cr_assert_eq(mproc_conn_recv_bytes_into(c, buf, 4), -EMSGSIZE);
		put_raw(raw, "56789", 5);
		if (round == 0) {
			cr_assert_eq(mproc_conn_recv_bytes(c, 100, &m, &len), 10);
			cr_assert_arr_eq(m, "0123456789", 10);
			free(m);
		} else {
			cr_assert_eq(mproc_conn_recv_bytes_into(c, buf, sizeof(buf)), 10);
			cr_assert_arr_eq(buf, "0123456789", 10);
		}
	}
	mproc_conn_free(c);
	close(raw);
}

/* A length of 2^62 costs nothing until the bytes arrive (ASan would
 * report a 2^62 allocation; without it the call would be -ENOMEM), and a
 * malformed prefix breaks the stream for good. */
Test(fdconn, hostile_prefix)
{
	mproc_conn *c;
	int raw;
	pair(&c, &raw);
	cr_assert_eq(mproc_conn_set_timeout(c, 0), 0);
	put_raw(raw, "\xff\xff\xff\xff\x40\0\0\0\0\0\0\0", 12);
	put_raw(raw, "some bytes", 10);
	cr_assert_eq(mproc_conn_next_size(c, 0), (ssize_t)(UINT64_C(1) << 62));
	void *m;
	size_t len;
	cr_assert_eq(mproc_conn_recv_bytes(c, MPROC_CONN_NOLIMIT, &m, &len), -EAGAIN);
	cr_assert_eq(mproc_conn_recv_bytes(c, MPROC_CONN_NOLIMIT, &m, &len), -EAGAIN);
	mproc_conn_free(c);
	close(raw);

	/* An 8-byte length above SSIZE_MAX, and a negative 4-byte one. */
	const char *bad[] = { "\xff\xff\xff\xff\x80\0\0\0\0\0\0\0",
			      "\xff\xff\xff\xfe" };
	const size_t bad_len[] = { 12, 4 };
	for (int i = 0; i < 2; i++) {
		pair(&c, &raw);
		put_raw(raw, bad[i], bad_len[i]);
		char buf[4];
		cr_assert_eq(mproc_conn_recv_bytes_into(c, buf, 4), -EPROTO);
		cr_assert_eq(mproc_conn_recv_bytes_into(c, buf, 4), -EPROTO);
		cr_assert_eq(mproc_conn_poll(c, 0), 1);
		mproc_conn_free(c);
		close(raw);
	}
}

/* A send that times out part-way cannot recall its bytes: the handle
 * refuses later sends; one that wrote nothing may be retried. */
Test(fdconn, send_cut_part_way)
{
	mproc_conn *c;
	int raw;
	pair(&c, &raw);
	cr_assert_eq(mproc_conn_set_timeout(c, 0), 0);
	size_t big = 8 << 20;
	unsigned char *p = calloc(1, big);
	ssize_t n = mproc_conn_send_bytes(c, p, big);
	cr_assert_eq(n, -EAGAIN, "%s", mproc_strerror((int)n));
	cr_assert_eq(mproc_conn_send_bytes(c, "x", 1), -EPIPE);
	free(p);
	mproc_conn_free(c);
	close(raw);

	pair(&c, &raw);
	cr_assert_eq(mproc_conn_set_timeout(c, 0), 0);
	/* Fill the socket with small messages until one does not fit. */
	size_t sent = 0;
	char chunk[100];
	memset(chunk, 1, sizeof(chunk));
	while ((n = mproc_conn_send_bytes(c, chunk, sizeof(chunk))) > 0)
		sent++;
	cr_assert_eq(n, -EAGAIN);
	cr_assert_gt(sent, 0);
	/* Nothing of that one went out: once there is room, sends go on,
	 * and the stream holds whole messages only. */
	mproc_conn *rd;
	cr_assert_eq(mproc_conn_from_fd(raw, 0, &rd), 0);
	for (size_t i = 0; i < sent; i++)
		cr_assert_eq(mproc_conn_recv_bytes_into(rd, chunk, sizeof(chunk)), 100);
	cr_assert_eq(mproc_conn_send_bytes(c, "end", 3), 3);
	cr_assert_eq(mproc_conn_recv_bytes_into(rd, chunk, sizeof(chunk)), 3);
	mproc_conn_free(rd);
	mproc_conn_free(c);
}

/* Over pipe(2): one-way ends, direction checks, -EPIPE without SIGPIPE,
 * timeouts, and a message larger than the pipe's buffer. */
struct pipe_sender {
	mproc_conn *c;
	size_t len;
	ssize_t rc;
};

static void *pipe_send_thread(void *arg)
{
	struct pipe_sender *s = arg;
	unsigned char *p = malloc(s->len);
	fill(p, s->len, 99);
	s->rc = mproc_conn_send_bytes(s->c, p, s->len);
	free(p);
	return NULL;
}

Test(fdconn, over_a_pipe)
{
	int pf[2];
	cr_assert_eq(pipe2(pf, O_CLOEXEC), 0);
	mproc_conn *r, *w;
	cr_assert_eq(mproc_conn_from_fd(pf[0], MPROC_CONN_WRITABLE, &r), -EINVAL);
	cr_assert_eq(mproc_conn_from_fd(pf[1], 0, &w), -EINVAL);
	cr_assert_eq(mproc_conn_from_fd(pf[0], MPROC_CONN_READABLE, &r), 0);
	cr_assert_eq(mproc_conn_from_fd(pf[1], MPROC_CONN_WRITABLE, &w), 0);
	cr_assert_eq(mproc_conn_readable(w), 0);
	cr_assert_eq(mproc_conn_send_bytes(r, "x", 1), -EPERM);
	cr_assert_eq(mproc_conn_poll(w, 0), -EPERM);
	cr_assert_eq(mproc_conn_fileno(w), -EPERM);
	char buf[8];
	cr_assert_eq(mproc_conn_recv_bytes_into(w, buf, sizeof(buf)), -EPERM);
	/* Timeouts on both sides (the pipe has no MSG_DONTWAIT). */
	cr_assert_eq(mproc_conn_set_timeout(r, 20 * MPROC_MSEC), 0);
	cr_assert_eq(mproc_conn_recv_bytes_into(r, buf, sizeof(buf)), -ETIMEDOUT);
	cr_assert_eq(mproc_conn_set_timeout(r, 10 * MPROC_SEC), 0);
	for (int t = 0; t < 2; t++) {
		/* A message four times the pipe's buffer, finite and infinite
		 * timeout on the sender. */
		cr_assert_eq(mproc_conn_set_timeout(w, t ? MPROC_FOREVER
							 : 10 * MPROC_SEC), 0);
		struct pipe_sender s = { w, 256 << 10, 0 };
		pthread_t th;
		pthread_create(&th, NULL, pipe_send_thread, &s);
		void *m;
		size_t len;
		cr_assert_eq(mproc_conn_recv_bytes(r, MPROC_CONN_NOLIMIT, &m, &len),
			     256 << 10);
		pthread_join(th, NULL);
		cr_assert_eq(s.rc, 256 << 10);
		unsigned char *want = malloc(len);
		fill(want, len, 99);
		cr_assert(memcmp(m, want, len) == 0);
		free(want);
		free(m);
	}
	cr_assert_eq(mproc_conn_close(r), 0);
	/* SIGPIPE stays blocked and pending signals are left alone. */
	cr_assert_eq(mproc_conn_send_bytes(w, "x", 1), -EPIPE);
	cr_assert_eq(mproc_conn_set_timeout(w, 0), 0);
	cr_assert_eq(mproc_conn_send_bytes(w, "x", 1), -EPIPE);
	mproc_conn_free(r);
	mproc_conn_free(w);
}

Test(fdconn, from_fd_rejects)
{
	mproc_conn *c;
	cr_assert_eq(mproc_conn_from_fd(-1, 0, &c), -EINVAL);
	cr_assert_eq(mproc_conn_from_fd(0, 0, NULL), -EINVAL);
	cr_assert_eq(mproc_conn_from_fd(0, 4, &c), -EINVAL);
	int fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	cr_assert_eq(mproc_conn_from_fd(fd, 0, &c), -EINVAL);
	close(fd);
	cr_assert_eq(mproc_conn_from_fd(fd, 0, &c), -EBADF);
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	cr_assert_eq(mproc_conn_from_fd(fd, 0, &c), -EINVAL);
	cr_assert_eq(fcntl(fd, F_GETFD), FD_CLOEXEC, "left open and unchanged");
	close(fd);
	cr_assert_eq(mproc_conn_closed(NULL), -EINVAL);
}

/* mproc_wait over a descriptor connection, a pipe end and a plain fd. */
Test(fdconn, wait_mixed)
{
	mproc_conn *a, *b, *pa, *pb;
	conn_pair(&a, &b);
	make(&pa, &pb, true, 0);
	struct mproc_waitable w[2] = { { .type = MPROC_WAIT_CONN, .conn = a },
				       { .type = MPROC_WAIT_CONN, .conn = pa } };
	cr_assert_eq(mproc_wait(w, 2, 20 * MPROC_MSEC), 0);
	cr_assert_eq(mproc_conn_send_bytes(b, "m", 1), 1);
	cr_assert_eq(mproc_wait(w, 2, MPROC_SEC), 1);
	cr_assert_eq(w[0].ready, 1);
	cr_assert_eq(w[1].ready, 0);
	char buf[4];
	cr_assert_eq(mproc_conn_recv_bytes_into(a, buf, 4), 1);
	cr_assert_eq(mproc_conn_send_bytes(pb, "n", 1), 1);
	cr_assert_eq(mproc_wait(w, 2, MPROC_SEC), 1);
	cr_assert_eq(w[1].ready, 1);
	cr_assert_eq(mproc_conn_recv_bytes_into(pa, buf, 4), 1);
	/* A close of the socket's peer wakes the wait: end of stream. */
	mproc_conn_close(b);
	cr_assert_eq(mproc_wait(w, 2, MPROC_SEC), 1);
	cr_assert_eq(w[0].ready, 1);
	mproc_conn_free(a);
	mproc_conn_free(b);
	mproc_conn_free(pa);
	mproc_conn_free(pb);
}

/* mproc_conn_closed on pipe ends: closed for good by another process
 * that held the end counts; the peer's close does not. */
Test(fdconn, closed_on_pipe_ends)
{
	mproc_conn *a, *b;
	make(&a, &b, true, 0);
	cr_assert_eq(mproc_conn_closed(a), 0);
	pid_t pid = fork();
	if (pid == 0) {
		int ok = mproc_conn_send_bytes(b, "c", 1) == 1 &&
			 mproc_conn_close(b) == 0;
		_exit(ok ? 0 : 1);
	}
	cr_assert_eq(wait_child(pid), 0);
	cr_assert_eq(mproc_conn_closed(b), 1, "closed for good by the child");
	cr_assert_eq(mproc_conn_closed(a), 0);
	char buf[4];
	cr_assert_eq(mproc_conn_recv_bytes_into(a, buf, 4), 1);
	cr_assert_eq(mproc_conn_recv_bytes_into(a, buf, 4), -MPROC_EEOF);
	cr_assert_eq(mproc_conn_close(a), 0);
	cr_assert_eq(mproc_conn_closed(a), 1);
	mproc_conn_free(a);
	mproc_conn_free(b);
}

/* A message of just over 2^31 bytes takes the 8-byte length form.  The
 * buffer is untouched anonymous memory (zero pages, no RAM), and the
 * receiver checks the prefix and counts the bytes. */
struct huge_send {
	mproc_conn *c;
	const void *p;
	size_t len;
	ssize_t rc;
};

static void *huge_thread(void *arg)
{
	struct huge_send *s = arg;
	s->rc = mproc_conn_send_bytes(s->c, s->p, s->len);
	return NULL;
}

Test(fdconn, eight_byte_length_form, .timeout = 120)
{
	mproc_conn *c;
	int raw;
	pair(&c, &raw);
	size_t len = ((size_t)1 << 31) + 5;
	void *p = mmap(NULL, len, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	cr_assert_neq(p, MAP_FAILED);
	struct huge_send s = { c, p, len, 0 };
	pthread_t th;
	pthread_create(&th, NULL, huge_thread, &s);
	unsigned char hdr[12];
	get_raw(raw, hdr, 12);
	cr_assert_arr_eq(hdr, "\xff\xff\xff\xff\0\0\0\0\x80\0\0\x05", 12);
	size_t got = 0;
	static unsigned char sink[1 << 20];
	while (got < len) {
		ssize_t n = read(raw, sink, sizeof(sink));
		cr_assert_gt(n, 0);
		got += (size_t)n;
	}
	pthread_join(th, NULL);
	cr_assert_eq(s.rc, (ssize_t)len);
	munmap(p, len);
	mproc_conn_free(c);
	close(raw);
}

/* The Python on the machine (multiprocessing.connection.Connection over
 * an inherited socketpair end) echoes what it receives, then sends a
 * message of its own and closes. */
static const char py_echo[] =
	"import sys\n"
	"from multiprocessing.connection import Connection\n"
	"c = Connection(int(sys.argv[1]))\n"
	"while True:\n"
	"    m = c.recv_bytes()\n"
	"    if m == b'stop':\n"
	"        break\n"
	"    c.send_bytes(m)\n"
	"c.send_bytes(b'from python')\n"
	"c.close()\n";

Test(fdconn, python_connection_echo, .timeout = 120)
{
	int sv[2];
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, sv[1], 3);
	char *argv[] = { "python3", "-c", (char *)py_echo, "3", NULL };
	pid_t pid;
	int rc = posix_spawnp(&pid, "python3", &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	cr_assert_eq(rc, 0, "python3: %s", strerror(rc));
	close(sv[1]);
	mproc_conn *c;
	cr_assert_eq(mproc_conn_from_fd(sv[0], 0, &c), 0);
	cr_assert_eq(mproc_conn_set_timeout(c, 60 * MPROC_SEC), 0);
	const size_t sizes[] = { 0, 1, 16384, 16385, 65536, 3 << 20 };
	unsigned char *buf = malloc(3 << 20), *want = malloc(3 << 20);
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		size_t n = sizes[i];
		fill(want, n, i + 1);
		struct big_send s = { c, want, n, 0 };
		pthread_t th;
		pthread_create(&th, NULL, big_send_thread, &s);
		ssize_t got = mproc_conn_recv_bytes_into(c, buf, 3 << 20);
		pthread_join(th, NULL);
		cr_assert_eq(s.rc, (ssize_t)n);
		cr_assert_eq(got, (ssize_t)n, "size %zu: %s", n,
			     mproc_strerror((int)got));
		cr_assert(memcmp(buf, want, n) == 0, "size %zu", n);
	}
	cr_assert_eq(mproc_conn_send_bytes(c, "stop", 4), 4);
	void *m;
	size_t len;
	cr_assert_eq(mproc_conn_recv_bytes(c, MPROC_CONN_NOLIMIT, &m, &len), 11);
	cr_assert_arr_eq(m, "from python", 11);
	free(m);
	cr_assert_eq(mproc_conn_recv_bytes(c, MPROC_CONN_NOLIMIT, &m, &len),
		     -MPROC_EEOF);
	cr_assert_eq(wait_child(pid), 0);
	free(buf);
	free(want);
	mproc_conn_free(c);
}

/* A descriptor its owner made non-blocking: receives and sends without a
 * timeout still wait (the handle polls on EAGAIN). */
static void *late_send(void *arg)
{
	usleep(50000);
	mproc_conn_send_bytes(arg, "late", 4);
	return NULL;
}

Test(fdconn, forever_on_a_nonblocking_descriptor)
{
	int sv[2];
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK,
				0, sv), 0);
	mproc_conn *a, *b;
	cr_assert_eq(mproc_conn_from_fd(sv[0], 0, &a), 0);
	cr_assert_eq(mproc_conn_from_fd(sv[1], 0, &b), 0);
	pthread_t th;
	pthread_create(&th, NULL, late_send, b);
	char buf[8];
	cr_assert_eq(mproc_conn_recv_bytes_into(a, buf, sizeof(buf)), 4);
	pthread_join(th, NULL);
	/* A message far larger than the socket's buffer, from a thread. */
	size_t n = 8 << 20;
	unsigned char *m = malloc(n), *got = malloc(n);
	fill(m, n, 5);
	struct big_send s = { b, m, n, 0 };
	pthread_create(&th, NULL, big_send_thread, &s);
	cr_assert_eq(mproc_conn_recv_bytes_into(a, got, n), (ssize_t)n);
	pthread_join(th, NULL);
	cr_assert_eq(s.rc, (ssize_t)n);
	cr_assert(memcmp(m, got, n) == 0);
	free(m);
	free(got);
	mproc_conn_free(a);
	mproc_conn_free(b);
}
