/*
 * Pipe and Connection unit tests: every call and every error a user
 * relies on (direction, close, too-small buffers, objects, timeouts,
 * fileno in epoll, mproc_wait over mixed objects, fork and spawn).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "pipe_test.h"
#include "mproc/queue.h"
#include "mproc/shm.h"
#include "mproc/wait.h"
#include "common/clock.h"

extern char **environ;

/* Is @fd readable right now? */
static int fd_readable(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	return poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
}

Test(pipe, duplex_both_ways)
{
	mproc_conn *a, *b;
	make(&a, &b, true, 0);
	char buf[64];
	cr_assert_eq(mproc_conn_readable(a), 1);
	cr_assert_eq(mproc_conn_writable(a), 1);
	cr_assert_eq(mproc_conn_send_bytes(a, "to b", 4), 4);
	cr_assert_eq(mproc_conn_send_bytes(b, "to a!", 5), 5);
	cr_assert_eq(mproc_conn_recv_bytes_into(b, buf, sizeof(buf)), 4);
	cr_assert_arr_eq(buf, "to b", 4);
	cr_assert_eq(mproc_conn_recv_bytes_into(a, buf, sizeof(buf)), 5);
	cr_assert_arr_eq(buf, "to a!", 5);
	mproc_conn_free(a);
	mproc_conn_free(b);
}

Test(pipe, bad_arguments)
{
	mproc_conn *a, *b;
	struct mproc_pipe_attr attr;
	mproc_pipe_attr_init(&attr);
	cr_assert_eq(mproc_pipe(true, NULL, NULL, &b), -EINVAL);
	cr_assert_eq(mproc_pipe(true, NULL, &a, &a), -EINVAL);
	attr.flags = 1u << 7;
	cr_assert_eq(mproc_pipe(true, &attr, &a, &b), -EINVAL);
	attr.flags = 0;
	attr.capacity = MPROC_PIPE_MAX_CAPACITY + 1;
	cr_assert_eq(mproc_pipe(true, &attr, &a, &b), -EINVAL);
	cr_assert_eq(mproc_conn_send_bytes(NULL, "x", 1), -EINVAL);
	cr_assert_eq(mproc_conn_poll(NULL, 0), -EINVAL);
	cr_assert_eq(mproc_conn_close(NULL), -EINVAL);
	mproc_conn_free(NULL);

	make(&a, &b, true, 0);
	void *p;
	size_t len;
	cr_assert_eq(mproc_conn_send_bytes(a, NULL, 3), -EINVAL);
	cr_assert_eq(mproc_conn_recv_bytes(a, 10, NULL, &len), -EINVAL);
	cr_assert_eq(mproc_conn_recv_bytes(a, 10, &p, NULL), -EINVAL);
	cr_assert_eq(mproc_conn_recv_bytes_into(a, NULL, 4), -EINVAL);
	cr_assert_eq(mproc_conn_poll(a, -2), -EINVAL);
	cr_assert_eq(mproc_conn_next_size(a, -5), -EINVAL);
	cr_assert_eq(mproc_conn_set_timeout(a, -2), -EINVAL);
	mproc_conn_free(a);
	mproc_conn_free(b);
}

Test(pipe, one_way_direction)
{
	mproc_conn *r, *w;
	make(&r, &w, false, 0);
	char buf[16];
	cr_assert_eq(mproc_conn_readable(r), 1);
	cr_assert_eq(mproc_conn_writable(r), 0);
	cr_assert_eq(mproc_conn_readable(w), 0);
	cr_assert_eq(mproc_conn_writable(w), 1);
	cr_assert_eq(mproc_conn_send_bytes(r, "x", 1), -EPERM);
	cr_assert_eq(mproc_conn_send(r, buf, 4), -EPERM);
	cr_assert_eq(mproc_conn_recv_bytes_into(w, buf, sizeof(buf)), -EPERM);
	cr_assert_eq(mproc_conn_recv(w, buf, 4), -EPERM);
	cr_assert_eq(mproc_conn_poll(w, 0), -EPERM);
	cr_assert_eq(mproc_conn_fileno(w), -EPERM);
	cr_assert_eq(mproc_conn_next_size(w, 0), -EPERM);
	/* The allowed direction still works after the refusals. */
	cr_assert_eq(mproc_conn_send_bytes(w, "ok", 2), 2);
	cr_assert_eq(mproc_conn_recv_bytes_into(r, buf, sizeof(buf)), 2);
	cr_assert_arr_eq(buf, "ok", 2);
	mproc_conn_free(r);
	mproc_conn_free(w);
}

Test(pipe, zero_length_messages)
{
	mproc_conn *a, *b;
	make(&a, &b, true, 0);
	char buf[8];
	void *p = NULL;
	size_t len = 99;
	cr_assert_eq(mproc_conn_send_bytes(a, NULL, 0), 0);
	cr_assert_eq(mproc_conn_send_bytes(a, "", 0), 0);
	cr_assert_eq(mproc_conn_send_bytes(a, "", 0), 0);
	cr_assert_eq(mproc_conn_poll(b, 0), 1);
	cr_assert_eq(mproc_conn_next_size(b, 0), 0);
	cr_assert_eq(mproc_conn_recv_bytes_into(b, buf, sizeof(buf)), 0);
	cr_assert_eq(mproc_conn_recv_bytes_into(b, NULL, 0), 0);
	cr_assert_eq(mproc_conn_recv_bytes(b, 0, &p, &len), 0);
	cr_assert_not_null(p, "an empty message still gets a buffer to free");
	cr_assert_eq(len, 0);
	free(p);
	cr_assert_eq(mproc_conn_poll(b, 0), 0);
	mproc_conn_free(a);
	mproc_conn_free(b);
}

Test(pipe, small_buffer_then_retry)
{
	mproc_conn *a, *b;
	make(&a, &b, true, 0);
	unsigned char msg[300], buf[300];
	fill(msg, sizeof(msg), 1);
	cr_assert_eq(mproc_conn_send_bytes(a, msg, 300), 300);
	cr_assert_eq(mproc_conn_send_bytes(a, "next", 4), 4);
	cr_assert_eq(mproc_conn_recv_bytes_into(b, buf, 299), -EMSGSIZE);
	cr_assert_eq(mproc_conn_next_size(b, 0), 300, "left in place");
	void *p = NULL;
	size_t len = 0;
	cr_assert_eq(mproc_conn_recv_bytes(b, 100, &p, &len), -EMSGSIZE);
	cr_assert_eq(len, 300, "the size comes back with the refusal");
	cr_assert_null(p);
	cr_assert_eq(mproc_conn_recv_bytes(b, 300, &p, &len), 300);
	cr_assert_eq(len, 300);
	cr_assert_arr_eq(p, msg, 300);
	free(p);
	cr_assert_eq(mproc_conn_recv_bytes_into(b, buf, 3), -EMSGSIZE);
	cr_assert_eq(mproc_conn_recv_bytes_into(b, buf, 4), 4);
	cr_assert_arr_eq(buf, "next", 4);
	mproc_conn_free(a);
	mproc_conn_free(b);
}

/* A message many times the ring streams through it; a too-small buffer is
 * refused before a byte of it is consumed (the sender is stuck until the
 * receiver takes it, so nothing can have been taken). */
Test(pipe, streamed_message_small_buffer)
{
	mproc_conn *a, *b;
	make(&a, &b, false, 4096);
	size_t n = 1000 * 1000 + 7;
	unsigned char *msg = malloc(n), *buf = malloc(n);
	fill(msg, n, 7);
	struct big_send s = { b, msg, n, 0 };
	pthread_t t;
	pthread_create(&t, NULL, big_send_thread, &s);
	cr_assert_eq(mproc_conn_next_size(a, 5 * MPROC_SEC), (ssize_t)n);
	cr_assert_eq(mproc_conn_recv_bytes_into(a, buf, n - 1), -EMSGSIZE);
	cr_assert_eq(mproc_conn_recv(a, buf, 16), -EBADMSG);
	cr_assert_eq(mproc_conn_next_size(a, 0), (ssize_t)n);
	cr_assert_eq(mproc_conn_recv_bytes_into(a, buf, n), (ssize_t)n);
	pthread_join(t, NULL);
	cr_assert_eq(s.rc, (ssize_t)n);
	cr_assert(memcmp(buf, msg, n) == 0);
	/* And once more through recv_bytes. */
	pthread_create(&t, NULL, big_send_thread, &s);
	void *p;
	size_t len;
	cr_assert_eq(mproc_conn_recv_bytes(a, n - 1, &p, &len), -EMSGSIZE);
	cr_assert_eq(len, n);
	cr_assert_eq(mproc_conn_recv_bytes(a, MPROC_CONN_NOLIMIT, &p, &len),
		     (ssize_t)n);
	pthread_join(t, NULL);
	cr_assert(memcmp(p, msg, n) == 0);
	free(p);
	free(msg);
	free(buf);
	mproc_conn_free(a);
	mproc_conn_free(b);
}

struct point {
	double x, y;
	int id;
};

Test(pipe, objects_by_value)
{
	mproc_conn *a, *b;
	make(&a, &b, true, 0);
	struct point p = { 1.5, -2.25, 42 }, q = { 0, 0, 0 };
	long wrong = 0;
	cr_assert_eq(MPROC_CONN_SEND(a, p), (ssize_t)sizeof(p));
	cr_assert_eq(MPROC_CONN_RECV(b, wrong), -EBADMSG, "size mismatch");
	cr_assert_eq(mproc_conn_next_size(b, 0), (ssize_t)sizeof(p), "kept");
	char big[64];
	cr_assert_eq(mproc_conn_recv(b, big, sizeof(big)), -EBADMSG);
	cr_assert_eq(MPROC_CONN_RECV(b, q), (ssize_t)sizeof(q));
	cr_assert_eq(q.id, 42);
	cr_assert_eq(q.x, 1.5);
	cr_assert_eq(q.y, -2.25);
	/* An object is just a message: recv_bytes takes it as well. */
	cr_assert_eq(mproc_conn_send(b, &p, sizeof(p)), (ssize_t)sizeof(p));
	cr_assert_eq(mproc_conn_recv_bytes_into(a, &q, sizeof(q)),
		     (ssize_t)sizeof(q));
	mproc_conn_free(a);
	mproc_conn_free(b);
}

Test(pipe, close_and_end_of_stream)
{
	mproc_conn *a, *b;
	make(&a, &b, true, 0);
	char buf[16];
	cr_assert_eq(mproc_conn_send_bytes(b, "one", 3), 3);
	cr_assert_eq(mproc_conn_send_bytes(b, "two", 3), 3);
	cr_assert_eq(mproc_conn_close(b), 0);
	cr_assert_eq(mproc_conn_close(b), -EBADF, "double close");
	/* use after close */
	cr_assert_eq(mproc_conn_send_bytes(b, "x", 1), -EBADF);
	cr_assert_eq(mproc_conn_recv_bytes_into(b, buf, sizeof(buf)), -EBADF);
	cr_assert_eq(mproc_conn_poll(b, 0), -EBADF);
	cr_assert_eq(mproc_conn_fileno(b), -EBADF);
	cr_assert_eq(mproc_conn_next_size(b, 0), -EBADF);
	cr_assert_eq(mproc_conn_set_timeout(b, 0), -EBADF);
	cr_assert_eq(mproc_conn_readable(b), -EBADF);
	char tok[MPROC_CONN_TOKEN_MAX];
	cr_assert_eq(mproc_conn_export(b, tok, sizeof(tok)), -EBADF);
	/* the peer drains, then sees the end */
	cr_assert_eq(mproc_conn_poll(a, 0), 1);
	cr_assert_eq(mproc_conn_recv_bytes_into(a, buf, sizeof(buf)), 3);
	cr_assert_arr_eq(buf, "one", 3);
	cr_assert_eq(mproc_conn_recv_bytes_into(a, buf, sizeof(buf)), 3);
	cr_assert_arr_eq(buf, "two", 3);
	cr_assert_eq(mproc_conn_poll(a, 0), 1, "closed and drained is readable");
	cr_assert_eq(mproc_conn_poll(a, MPROC_FOREVER), 1);
	cr_assert_eq(mproc_conn_recv_bytes_into(a, buf, sizeof(buf)), -MPROC_EEOF);
	cr_assert_eq(mproc_conn_next_size(a, MPROC_FOREVER), -MPROC_EEOF);
	cr_assert_eq(mproc_conn_send_bytes(a, "x", 1), -EPIPE);
	cr_assert_eq(mproc_conn_close(a), 0);
	mproc_conn_free(a);
	mproc_conn_free(b);
}

Test(pipe, poll_and_timeouts)
{
	mproc_conn *a, *b;
	make(&a, &b, true, 4096);
	char buf[64] = { 0 };
	cr_assert_eq(mproc_conn_poll(a, 0), 0);
	int64_t t0 = mproc__now_ns();
	cr_assert_eq(mproc_conn_poll(a, 50 * MPROC_MSEC), 0);
	int64_t el = mproc__now_ns() - t0;
	cr_assert_geq(el, 50 * MPROC_MSEC, "returned after %lld ns", (long long)el);
	cr_assert_lt(el, 5 * MPROC_SEC);

	cr_assert_eq(mproc_conn_set_timeout(a, 0), 0);
	cr_assert_eq(mproc_conn_recv_bytes_into(a, buf, sizeof(buf)), -EAGAIN);
	cr_assert_eq(mproc_conn_next_size(a, 0), -EAGAIN);
	cr_assert_eq(mproc_conn_set_timeout(a, 50 * MPROC_MSEC), 0);
	t0 = mproc__now_ns();
	cr_assert_eq(mproc_conn_recv_bytes_into(a, buf, sizeof(buf)), -ETIMEDOUT);
	cr_assert_geq(mproc__now_ns() - t0, 50 * MPROC_MSEC);
	t0 = mproc__now_ns();
	cr_assert_eq(mproc_conn_next_size(a, 50 * MPROC_MSEC), -ETIMEDOUT);
	cr_assert_geq(mproc__now_ns() - t0, 50 * MPROC_MSEC);

	/* Fill b -> a, then sends wait and time out. */
	cr_assert_eq(mproc_conn_set_timeout(b, 0), 0);
	int n = 0;
	while (mproc_conn_send_bytes(b, buf, 64) == 64)
		n++;
	cr_assert_gt(n, 10);
	cr_assert_eq(mproc_conn_send_bytes(b, buf, 64), -EAGAIN);
	cr_assert_eq(mproc_conn_set_timeout(b, 50 * MPROC_MSEC), 0);
	t0 = mproc__now_ns();
	cr_assert_eq(mproc_conn_send_bytes(b, buf, 64), -ETIMEDOUT);
	cr_assert_geq(mproc__now_ns() - t0, 50 * MPROC_MSEC);
	cr_assert_eq(mproc_conn_poll(a, 0), 1);
	cr_assert_eq(mproc_conn_poll(a, MPROC_FOREVER), 1);
	for (int i = 0; i < n; i++)
		cr_assert_eq(mproc_conn_recv_bytes_into(a, buf, sizeof(buf)), 64);
	cr_assert_eq(mproc_conn_poll(a, 0), 0);
	mproc_conn_free(a);
	mproc_conn_free(b);
}

/* A streamed send that cannot finish is withdrawn: the receiver never
 * sees a torn message, and the next message arrives intact. */
Test(pipe, withdrawn_stream)
{
	mproc_conn *a, *b;
	make(&a, &b, false, 4096);
	size_t n = 20000;
	unsigned char *msg = malloc(n), buf[64];
	fill(msg, n, 3);
	cr_assert_eq(mproc_conn_set_timeout(b, 20 * MPROC_MSEC), 0);
	cr_assert_eq(mproc_conn_send_bytes(b, msg, n), -ETIMEDOUT);
	cr_assert_eq(mproc_conn_poll(a, 0), 1, "fragments are there");
	cr_assert_eq(mproc_conn_next_size(a, 0), (ssize_t)n);
	cr_assert_eq(mproc_conn_set_timeout(a, 20 * MPROC_MSEC), 0);
	/* Takes the fragments, then finds the withdrawal mark (or runs out
	 * of time waiting for it, when it did not fit: then the next send
	 * delivers it). */
	ssize_t r = mproc_conn_recv_bytes_into(a, buf, sizeof(buf));
	cr_assert(r == -EMSGSIZE, "refused before consuming: %zd", r);
	void *p;
	size_t len;
	r = mproc_conn_recv_bytes(a, MPROC_CONN_NOLIMIT, &p, &len);
	cr_assert(r == -ETIMEDOUT || r == -EAGAIN, "got %zd", r);
	cr_assert_eq(mproc_conn_send_bytes(b, "after", 5), 5);
	r = mproc_conn_recv_bytes_into(a, buf, sizeof(buf));
	cr_assert_eq(r, 5, "got %zd (%s)", r, mproc_strerror((int)r));
	cr_assert_arr_eq(buf, "after", 5);
	free(msg);
	mproc_conn_free(a);
	mproc_conn_free(b);
}

/* A receive that times out half-way through a streamed message keeps
 * what it got; the next receive finishes it. */
Test(pipe, resumed_stream)
{
	mproc_conn *a, *b;
	make(&a, &b, false, 4096);
	size_t n = 50000;
	unsigned char *msg = malloc(n), *buf = malloc(n);
	fill(msg, n, 5);
	struct big_send s = { b, msg, n, 0 };
	pthread_t t;
	/* The receiver times out immediately once the ring is drained; the
	 * sender (a thread) refills it; repeat until the message is done.
	 * Both threads share one CPU (Criterion runs each test in its own
	 * process), so the receiver always drains the ring while the sender
	 * is not running and meets it empty part-way: the resume path runs
	 * every time, not only when the timing happens to allow it. */
	cpu_set_t one;
	CPU_ZERO(&one);
	CPU_SET(sched_getcpu() >= 0 ? sched_getcpu() : 0, &one);
	cr_assert_eq(sched_setaffinity(0, sizeof(one), &one), 0);
	cr_assert_eq(mproc_conn_set_timeout(a, 0), 0);
	pthread_create(&t, NULL, big_send_thread, &s);
	ssize_t r;
	int tries = 0;
	while ((r = mproc_conn_recv_bytes_into(a, buf, n)) == -EAGAIN) {
		tries++;
		usleep(100);
	}
	pthread_join(t, NULL);
	cr_assert_eq(r, (ssize_t)n, "%zd %s", r, mproc_strerror((int)r));
	cr_assert(memcmp(buf, msg, n) == 0);
	cr_assert_gt(tries, 1);
	/* The same through recv_bytes (the stash is the result buffer). */
	pthread_create(&t, NULL, big_send_thread, &s);
	void *p = NULL;
	size_t len;
	while ((r = mproc_conn_recv_bytes(a, n, &p, &len)) == -EAGAIN)
		usleep(100);
	pthread_join(t, NULL);
	cr_assert_eq(r, (ssize_t)n);
	cr_assert(memcmp(p, msg, n) == 0);
	free(p);
	free(msg);
	free(buf);
	mproc_conn_free(a);
	mproc_conn_free(b);
}

Test(pipe, wraparound_indices)
{
	uint64_t starts[] = { UINT64_C(0xfffffff0) - 4096,
			      UINT64_MAX - 3000 };
	for (int k = 0; k < 2; k++) {
		struct mproc_pipe_attr attr;
		mproc_pipe_attr_init(&attr);
		attr.capacity = 4096;
		attr.initial_index = starts[k];
		mproc_conn *a, *b;
		cr_assert_eq(mproc_pipe(true, &attr, &a, &b), 0);
		unsigned char msg[1500], buf[1500];
		for (int i = 0; i < 200; i++) {
			size_t len = (size_t)(i * 37) % sizeof(msg);
			fill(msg, len, (uint32_t)i);
			cr_assert_eq(mproc_conn_send_bytes(a, msg, len), (ssize_t)len);
			cr_assert_eq(mproc_conn_recv_bytes_into(b, buf, sizeof(buf)),
				     (ssize_t)len);
			cr_assert(memcmp(msg, buf, len) == 0);
		}
		mproc_conn_free(a);
		mproc_conn_free(b);
	}
}

Test(pipe, fileno_in_epoll)
{
	mproc_conn *a, *b;
	make(&a, &b, true, 4096);
	int fd = mproc_conn_fileno(a);
	cr_assert_geq(fd, 0);
	cr_assert_eq(mproc_conn_fileno(a), fd, "stable");
	int ep = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event ev = { .events = EPOLLIN, .data.u32 = 7 }, out;
	cr_assert_eq(epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev), 0);
	cr_assert_eq(epoll_wait(ep, &out, 1, 0), 0, "empty: not readable");
	cr_assert_eq(mproc_conn_send_bytes(b, "x", 1), 1);
	cr_assert_eq(epoll_wait(ep, &out, 1, 1000), 1, "data: readable");
	cr_assert_eq(out.data.u32, 7);
	cr_assert_eq(mproc_conn_send_bytes(b, "yy", 2), 2);
	cr_assert(fd_readable(fd));
	char buf[8];
	cr_assert_eq(mproc_conn_recv_bytes_into(a, buf, sizeof(buf)), 1);
	cr_assert(fd_readable(fd), "one message left");
	cr_assert_eq(mproc_conn_poll(a, 0), 1);
	cr_assert_eq(mproc_conn_recv_bytes_into(a, buf, sizeof(buf)), 2);
	cr_assert_eq(epoll_wait(ep, &out, 1, 0), 0, "drained: not readable");
	cr_assert_eq(mproc_conn_poll(a, 0), 0);
	/* Data sent before the arming counts too. */
	mproc_conn *c, *d;
	make(&c, &d, false, 4096);
	cr_assert_eq(mproc_conn_send_bytes(d, "z", 1), 1);
	int fd2 = mproc_conn_fileno(c);
	cr_assert(fd_readable(fd2), "armed after the send");
	/* The peer's close makes it readable (end of stream). */
	cr_assert_eq(mproc_conn_close(b), 0);
	cr_assert_eq(epoll_wait(ep, &out, 1, 1000), 1, "closed: readable");
	cr_assert_eq(mproc_conn_poll(a, 0), 1);
	cr_assert_eq(mproc_conn_recv_bytes_into(a, buf, sizeof(buf)), -MPROC_EEOF);
	cr_assert(fd_readable(fd), "still readable: recv would say EOF");
	close(ep);
	mproc_conn_free(a);
	mproc_conn_free(b);
	mproc_conn_free(c);
	mproc_conn_free(d);
}

static int pidfd_of(pid_t pid)
{
	return (int)syscall(SYS_pidfd_open, pid, 0);
}

Test(pipe, wait_mixed_objects)
{
	mproc_conn *a1, *b1, *a2, *b2;
	make(&a1, &b1, true, 0);
	make(&a2, &b2, false, 0);
	mproc_queue *q;
	cr_assert_eq(mproc_queue_create(NULL, &q), 0);
	int go[2];
	cr_assert_eq(pipe(go), 0);
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		char x;
		/* exit when the test says so */
		_exit(read(go[0], &x, 1) == 1 ? 0 : 1);
	}
	int pfd = pidfd_of(pid);
	cr_assert_geq(pfd, 0);
	struct mproc_waitable w[4] = {
		{ .type = MPROC_WAIT_CONN, .conn = a1 },
		{ .type = MPROC_WAIT_CONN, .conn = a2 },
		{ .type = MPROC_WAIT_QUEUE, .queue = q },
		{ .type = MPROC_WAIT_FD, .fd = pfd },
	};
	cr_assert_eq(mproc_wait(w, 4, 0), 0);
	int64_t t0 = mproc__now_ns();
	cr_assert_eq(mproc_wait(w, 4, 50 * MPROC_MSEC), 0);
	cr_assert_geq(mproc__now_ns() - t0, 50 * MPROC_MSEC);
	cr_assert_lt(mproc__now_ns() - t0, 5 * MPROC_SEC);

	cr_assert_eq(mproc_conn_send_bytes(b2, "m", 1), 1);
	cr_assert_eq(mproc_wait(w, 4, MPROC_FOREVER), 1);
	cr_assert(!w[0].ready && w[1].ready && !w[2].ready && !w[3].ready);
	char buf[8];
	cr_assert_eq(mproc_conn_recv_bytes_into(a2, buf, sizeof(buf)), 1);

	cr_assert_eq(mproc_queue_put(q, "q", 1, 0), 1);
	cr_assert_eq(mproc_wait(w, 4, 5 * MPROC_SEC), 1);
	cr_assert(!w[0].ready && !w[1].ready && w[2].ready && !w[3].ready);
	cr_assert_eq(mproc_queue_get(q, buf, sizeof(buf), 0), 1);

	/* The child exits while we wait: its pidfd wakes us. */
	cr_assert_eq(write(go[1], "x", 1), 1);
	cr_assert_eq(mproc_wait(w, 4, 5 * MPROC_SEC), 1);
	cr_assert(w[3].ready);
	waitpid(pid, NULL, 0);
	w[3].type = MPROC_WAIT_FD;
	w[3].fd = go[0]; /* not readable: nothing more written */

	/* Two ready at once. */
	cr_assert_eq(mproc_conn_send_bytes(b1, "c", 1), 1);
	cr_assert_eq(mproc_queue_put(q, "q", 1, 0), 1);
	cr_assert_eq(mproc_wait(w, 4, 5 * MPROC_SEC), 2);
	cr_assert(w[0].ready && !w[1].ready && w[2].ready && !w[3].ready);

	/* Errors. */
	struct mproc_waitable bad = { .type = 99 };
	cr_assert_eq(mproc_wait(&bad, 1, 0), -EINVAL);
	cr_assert_eq(mproc_wait(NULL, 1, 0), -EINVAL);
	cr_assert_eq(mproc_wait(w, 4, -3), -EINVAL);
	struct mproc_waitable wr = { .type = MPROC_WAIT_CONN, .conn = b2 };
	cr_assert_eq(mproc_wait(&wr, 1, 0), -EPERM, "send-only end");
	close(pfd);
	close(go[0]);
	close(go[1]);
	mproc_queue_free(q);
	mproc_conn_free(a1);
	mproc_conn_free(b1);
	mproc_conn_free(a2);
	mproc_conn_free(b2);
}

/* Python's idiom: the child uses b, the parent closes b and uses a. */
Test(pipe, fork_parent_closes_child_end)
{
	mproc_conn *a, *b;
	make(&a, &b, true, 0);
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		mproc_conn_close(a); /* inherited, never used: only released */
		char buf[32];
		ssize_t n = mproc_conn_recv_bytes_into(b, buf, sizeof(buf));
		if (n != 4 || memcmp(buf, "ping", 4))
			_exit(2);
		if (mproc_conn_send_bytes(b, "pong", 4) != 4)
			_exit(3);
		mproc_conn_close(b); /* used here: closed for good */
		_exit(0);
	}
	/* Closing the child's end (unused here since the fork) must not
	 * end the stream for the child. */
	cr_assert_eq(mproc_conn_close(b), 0);
	cr_assert_eq(mproc_conn_send_bytes(a, "ping", 4), 4);
	char buf[32];
	cr_assert_eq(mproc_conn_set_timeout(a, 10 * MPROC_SEC), 0);
	cr_assert_eq(mproc_conn_recv_bytes_into(a, buf, sizeof(buf)), 4);
	cr_assert_arr_eq(buf, "pong", 4);
	cr_assert_eq(mproc_conn_recv_bytes_into(a, buf, sizeof(buf)), -MPROC_EEOF);
	int st;
	waitpid(pid, &st, 0);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status %d", st);
	mproc_conn_free(a);
	mproc_conn_free(b);
}

/* A child that exits without closing is seen as gone (after the data it
 * sent), never as a hang. */
Test(pipe, child_exits_without_close)
{
	mproc_conn *r, *w;
	make(&r, &w, false, 0);
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		mproc_conn_send_bytes(w, "last words", 10);
		_exit(0);
	}
	mproc_conn_close(w);
	char buf[32];
	cr_assert_eq(mproc_conn_set_timeout(r, 10 * MPROC_SEC), 0);
	cr_assert_eq(mproc_conn_recv_bytes_into(r, buf, sizeof(buf)), 10);
	int64_t t0 = mproc__now_ns();
	ssize_t n = mproc_conn_recv_bytes_into(r, buf, sizeof(buf));
	cr_assert_eq(n, -MPROC_EPEERDIED, "%s", mproc_strerror((int)n));
	cr_assert_lt(mproc__now_ns() - t0, 5 * MPROC_SEC);
	cr_assert_eq(mproc_conn_poll(r, 0), 1);
	waitpid(pid, NULL, 0);
	mproc_conn_free(r);
	mproc_conn_free(w);
}

/* Spawn: export b, exec a helper that imports it, talk, see its close. */
Test(pipe, export_import_spawn)
{
	mproc_conn *a, *b;
	make(&a, &b, true, 0);
	char tok[MPROC_CONN_TOKEN_MAX];
	int n = mproc_conn_export(b, tok, sizeof(tok));
	cr_assert_gt(n, 0, "%s", mproc_strerror(n));
	cr_assert_eq(mproc_conn_export(b, tok, 8), -ENOSPC);
	char self[PATH_MAX], helper[PATH_MAX + 32];
	ssize_t l = readlink("/proc/self/exe", self, sizeof(self) - 1);
	cr_assert_gt(l, 0);
	self[l] = '\0';
	*strrchr(self, '/') = '\0';
	snprintf(helper, sizeof(helper), "%s/pipe_child_helper", self);
	char *argv[] = { helper, tok, NULL };
	pid_t pid;
	cr_assert_eq(posix_spawn(&pid, helper, NULL, NULL, argv, environ), 0);
	/* Exported, then closed unused: only released here. */
	cr_assert_eq(mproc_conn_close(b), 0);
	cr_assert_eq(mproc_conn_set_timeout(a, 10 * MPROC_SEC), 0);
	cr_assert_eq(mproc_conn_send_bytes(a, "hello", 5), 5);
	char buf[64];
	ssize_t r = mproc_conn_recv_bytes_into(a, buf, sizeof(buf));
	cr_assert_eq(r, 11, "%zd %s", r, mproc_strerror((int)r));
	cr_assert_arr_eq(buf, "child:hello", 11);
	r = mproc_conn_recv_bytes_into(a, buf, sizeof(buf));
	cr_assert_eq(r, -MPROC_EEOF, "%s", mproc_strerror((int)r));
	int st;
	waitpid(pid, &st, 0);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "helper status %d", st);
	mproc_conn_free(a);
	mproc_conn_free(b);
}

Test(pipe, import_rejects_bad_tokens)
{
	mproc_conn *c = NULL;
	cr_assert_eq(mproc_conn_import(NULL, &c), -EINVAL);
	cr_assert_eq(mproc_conn_import("", &c), -EINVAL);
	cr_assert_eq(mproc_conn_import("mproc-conn:", &c), -EINVAL);
	cr_assert_eq(mproc_conn_import("mproc-conn:2:3:4:mproc-shm:5:4096", &c),
		     -EINVAL);
	cr_assert_eq(mproc_conn_import("mproc-conn:0:-1:-1:mproc-shm:5:4096", &c),
		     -EINVAL);
	/* Numbers that overflow an int must not wrap into a real descriptor
	 * (4294967299 would be 3), nor may signs or spaces slip through. */
	cr_assert_eq(mproc_conn_import("mproc-conn:0:4294967299:-1:mproc-shm:5:4096", &c),
		     -EINVAL);
	cr_assert_eq(mproc_conn_import("mproc-conn:0:+3:-1:mproc-shm:5:4096", &c),
		     -EINVAL);
	cr_assert_eq(mproc_conn_import("mproc-conn:0: 3:-1:mproc-shm:5:4096", &c),
		     -EINVAL);
	cr_assert_eq(mproc_conn_import("mproc-conn:0:-2:-1:mproc-shm:5:4096", &c),
		     -EINVAL);
	/* A descriptor that is not an eventfd. */
	int fd = open("/dev/null", O_RDONLY);
	char tok[128];
	snprintf(tok, sizeof(tok), "mproc-conn:0:%d:-1:mproc-shm:%d:8192", fd, fd);
	cr_assert_eq(mproc_conn_import(tok, &c), -EINVAL);
	close(fd);
	cr_assert_eq(mproc_conn_import("mproc-conn:0:900:-1:mproc-shm:5:4096", &c),
		     -EBADF);
	cr_assert_null(c);
}

/* A corrupted geometry is refused on import, never trusted. */
Test(pipe, import_rejects_corrupt_segment)
{
	mproc_conn *a, *b, *c = NULL;
	make(&a, &b, false, 4096);
	struct exported e;
	export_and_map(a, &e);
	const char *tok = e.tok;
	size_t size = e.size;
	struct mproc_shm_header *h = (struct mproc_shm_header *)e.base;
	uint64_t saved = h->geom[1];
	h->geom[1] = 1u << 20; /* claims a ring bigger than the file */
	cr_assert_eq(mproc_conn_import(tok, &c), -MPROC_ECORRUPT);
	h->geom[1] = saved;
	h->geom[2] += 8; /* ring offset moved */
	cr_assert_eq(mproc_conn_import(tok, &c), -MPROC_ECORRUPT);
	h->geom[2] -= 8;
	munmap(h, size);
	cr_assert_null(c);
	mproc_conn_free(a);
	mproc_conn_free(b);
}

Test(pipe, busy_poll_mode)
{
	struct mproc_pipe_attr attr;
	mproc_pipe_attr_init(&attr);
	attr.flags = MPROC_PIPE_BUSY_POLL;
	mproc_conn *a, *b;
	cr_assert_eq(mproc_pipe(true, &attr, &a, &b), 0);
	cr_assert_eq(mproc_conn_set_busy_poll(a, true), 0);
	int64_t t0 = mproc__now_ns();
	cr_assert_eq(mproc_conn_poll(a, 20 * MPROC_MSEC), 0);
	cr_assert_geq(mproc__now_ns() - t0, 20 * MPROC_MSEC);
	cr_assert_eq(mproc_conn_send_bytes(b, "b", 1), 1);
	cr_assert_eq(mproc_conn_poll(a, MPROC_FOREVER), 1);
	mproc_conn_free(a);
	mproc_conn_free(b);
}

/* An end handed back and forth between processes: after a forked child
 * has used it, the parent's stale private view of the ring must not be
 * trusted (the child moved the other side's index past it).  Messages
 * carry a sequence number; the parent fills the ring and drains it and
 * must see every number once, in order.  The child, the last user of
 * both ends, has exited by then: the parent, which used them before, may
 * take them up again rather than see them as dead. */
static ssize_t send_seq(mproc_conn *c, uint32_t seq)
{
	uint32_t m[250];
	for (int i = 0; i < 250; i++)
		m[i] = seq;
	return mproc_conn_send_bytes(c, m, sizeof(m));
}

static int64_t recv_seq(mproc_conn *c)
{
	uint32_t m[250];
	ssize_t n = mproc_conn_recv_bytes_into(c, m, sizeof(m));
	if (n < 0)
		return n;
	for (int i = 1; i < 250; i++)
		if (n != sizeof(m) || m[i] != m[0])
			return -1000; /* torn or overwritten */
	return m[0];
}

Test(pipe, end_used_by_child_then_parent)
{
	mproc_conn *a, *b;
	make(&a, &b, false, 4096);
	cr_assert_eq(mproc_conn_set_timeout(a, 0), 0);
	cr_assert_eq(mproc_conn_set_timeout(b, 0), 0);
	/* The parent sends and receives once: both views cache indices. */
	cr_assert_eq(send_seq(b, 0), 1000);
	cr_assert_eq(send_seq(b, 1), 1000);
	cr_assert_eq(recv_seq(a), 0);
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		/* Consume and produce well past what the parent saw, and
		 * leave two messages in the ring. */
		uint32_t next = 2;
		for (uint32_t want = 1; want < 12; want++) {
			if (recv_seq(a) != want)
				_exit(1);
			if (send_seq(b, next++) != 1000)
				_exit(2);
		}
		_exit(0);
	}
	int st;
	waitpid(pid, &st, 0);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status %d", st);
	/* Fill what room there is; a stale producer view would never see
	 * the ring full and would overwrite the child's messages. */
	uint32_t next = 13;
	while (next < 30 && send_seq(b, next) == 1000)
		next++;
	cr_assert_lt(next, 30, "the producer view must reload the tail");
	for (uint32_t want = 12; want < next; want++) {
		int64_t got = recv_seq(a);
		cr_assert_eq(got, want, "want %u got %lld", want, (long long)got);
	}
	cr_assert_eq(recv_seq(a), -EAGAIN,
		     "the consumer view must reload the head");
	mproc_conn_free(a);
	mproc_conn_free(b);
}

/* The parent used b and closes it: that is for good, also for the copy
 * of b the child inherited; the child's a sees the end of the stream. */
Test(pipe, close_for_good_reaches_inherited_copy)
{
	mproc_conn *a, *b;
	make(&a, &b, false, 0);
	cr_assert_eq(mproc_conn_send_bytes(b, "x", 1), 1);
	int go[2];
	cr_assert_eq(pipe(go), 0);
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		char c, buf[8];
		if (read(go[0], &c, 1) != 1)
			_exit(1);
		if (mproc_conn_send_bytes(b, "y", 1) != -EBADF)
			_exit(2);
		if (mproc_conn_recv_bytes_into(a, buf, sizeof(buf)) != 1)
			_exit(3);
		if (mproc_conn_recv_bytes_into(a, buf, sizeof(buf)) != -MPROC_EEOF)
			_exit(4);
		_exit(0);
	}
	cr_assert_eq(mproc_conn_close(b), 0);
	cr_assert_eq(write(go[1], "g", 1), 1);
	int st;
	waitpid(pid, &st, 0);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status %d", st);
	close(go[0]);
	close(go[1]);
	mproc_conn_free(a);
	mproc_conn_free(b);
}

/* An end used here, then exported: the export hands it over, so closing
 * this handle afterwards only releases it, and the importing child goes
 * on sending; its close ends the stream. */
Test(pipe, used_then_exported_then_closed_releases)
{
	mproc_conn *a, *b;
	make(&a, &b, true, 0);
	cr_assert_eq(mproc_conn_send_bytes(b, "parent", 6), 6);
	char tok[MPROC_CONN_TOKEN_MAX];
	cr_assert_gt(mproc_conn_export(b, tok, sizeof(tok)), 0);
	int go[2];
	cr_assert_eq(pipe(go), 0);
	pid_t pid = fork();
	if (pid == 0) {
		char x;
		mproc_conn *c;
		int ok = read(go[0], &x, 1) == 1 && mproc_conn_import(tok, &c) == 0 &&
			 mproc_conn_send_bytes(c, "child", 5) == 5 &&
			 mproc_conn_close(c) == 0;
		_exit(ok ? 0 : 1);
	}
	cr_assert_eq(mproc_conn_close(b), 0);
	cr_assert_eq(mproc_conn_closed(b), 1);
	cr_assert_eq(write(go[1], "g", 1), 1);
	char buf[16];
	cr_assert_eq(mproc_conn_set_timeout(a, 10 * MPROC_SEC), 0);
	cr_assert_eq(mproc_conn_recv_bytes_into(a, buf, sizeof(buf)), 6);
	ssize_t n = mproc_conn_recv_bytes_into(a, buf, sizeof(buf));
	cr_assert_eq(n, 5, "%s", mproc_strerror((int)n));
	cr_assert_arr_eq(buf, "child", 5);
	cr_assert_eq(mproc_conn_recv_bytes_into(a, buf, sizeof(buf)), -MPROC_EEOF);
	cr_assert_eq(wait_child(pid), 0);
	close(go[0]);
	close(go[1]);
	mproc_conn_free(a);
	mproc_conn_free(b);
}
