/*
 * Queue unit tests: every call and every error a user relies on, for both
 * ring kinds (the SPSC and MPMC variants of each test share one body).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mproc/queue.h"
#include "common/clock.h"
#include "queue/layout.h"

static mproc_queue *make(unsigned flags, size_t cap, size_t max)
{
	struct mproc_queue_attr a;
	mproc_queue_attr_init(&a);
	a.flags = flags;
	a.capacity = cap;
	a.max_msg = max;
	mproc_queue *q = NULL;
	int rc = mproc_queue_create(&a, &q);
	cr_assert_eq(rc, 0, "create: %s", mproc_strerror(rc));
	return q;
}

static void put_get_roundtrip(unsigned flags)
{
	mproc_queue *q = make(flags, 4096, 100);
	char buf[128];
	cr_assert_eq(mproc_queue_empty(q), 1);
	cr_assert_eq(mproc_queue_put(q, "hello", 5, MPROC_FOREVER), 5);
	cr_assert_eq(mproc_queue_put_nowait(q, "", 0), 0);
	cr_assert_eq(mproc_queue_put(q, NULL, 0, 0), 0, "zero-length, NULL buffer");
	cr_assert_eq(mproc_queue_qsize(q), 3);
	cr_assert_eq(mproc_queue_empty(q), 0);
	cr_assert_eq(mproc_queue_get(q, buf, sizeof(buf), MPROC_FOREVER), 5);
	cr_assert_arr_eq(buf, "hello", 5);
	cr_assert_eq(mproc_queue_get_nowait(q, buf, sizeof(buf)), 0);
	cr_assert_eq(mproc_queue_get(q, NULL, 0, 0), 0);
	cr_assert_eq(mproc_queue_get_nowait(q, buf, sizeof(buf)), -EAGAIN);
	cr_assert_eq(mproc_queue_qsize(q), 0);
	mproc_queue_free(q);
}
Test(queue, put_get_spsc) { put_get_roundtrip(MPROC_QUEUE_SPSC); }
Test(queue, put_get_mpmc) { put_get_roundtrip(0); }

static void oversize(unsigned flags)
{
	mproc_queue *q = make(flags, 4096, 100);
	char big[200] = { 0 };
	cr_assert_eq(mproc_queue_max_msg(q), 100);
	cr_assert_eq(mproc_queue_put(q, big, 101, 0), -EMSGSIZE);
	cr_assert_eq(mproc_queue_qsize(q), 0, "nothing enqueued");
	cr_assert_eq(mproc_queue_put(q, big, 100, 0), 100);
	mproc_queue_free(q);
}
Test(queue, oversize_spsc) { oversize(MPROC_QUEUE_SPSC); }
Test(queue, oversize_mpmc) { oversize(0); }

static void small_buffer(unsigned flags)
{
	mproc_queue *q = make(flags, 4096, 100);
	char msg[50], buf[64];
	memset(msg, 'x', sizeof(msg));
	cr_assert_eq(mproc_queue_put(q, msg, 50, 0), 50);
	cr_assert_eq(mproc_queue_get(q, buf, 10, 0), -EMSGSIZE);
	cr_assert_eq(mproc_queue_qsize(q), 1, "message left in place");
	cr_assert_eq(mproc_queue_next_size(q, 0), 50);
	cr_assert_eq(mproc_queue_get(q, buf, 50, 0), 50);
	cr_assert_arr_eq(buf, msg, 50);
	cr_assert_eq(mproc_queue_next_size(q, 0), -EAGAIN);
	mproc_queue_free(q);
}
Test(queue, small_buffer_spsc) { small_buffer(MPROC_QUEUE_SPSC); }
Test(queue, small_buffer_mpmc) { small_buffer(0); }

static void timeouts(unsigned flags)
{
	mproc_queue *q = make(flags, 4096, 64);
	char buf[64] = { 0 };
	int64_t t0 = mproc__now_ns();
	cr_assert_eq(mproc_queue_get(q, buf, sizeof(buf), 50 * MPROC_MSEC), -ETIMEDOUT);
	int64_t el = mproc__now_ns() - t0;
	cr_assert_geq(el, 50 * MPROC_MSEC, "returned after %lld ns", (long long)el);
	cr_assert_lt(el, 5 * MPROC_SEC);
	cr_assert_eq(mproc_queue_get(q, buf, sizeof(buf), -2), -EINVAL);
	/* fill, then a timed put times out */
	int n = 0;
	while (mproc_queue_put_nowait(q, buf, 64) == 64)
		n++;
	cr_assert_gt(n, 1);
	cr_assert_eq(mproc_queue_full(q), 1);
	cr_assert_eq(mproc_queue_put_nowait(q, buf, 64), -EAGAIN);
	t0 = mproc__now_ns();
	cr_assert_eq(mproc_queue_put(q, buf, 64, 50 * MPROC_MSEC), -ETIMEDOUT);
	cr_assert_geq(mproc__now_ns() - t0, 50 * MPROC_MSEC);
	cr_assert_eq(mproc_queue_qsize(q), n);
	mproc_queue_free(q);
}
Test(queue, timeouts_spsc) { timeouts(MPROC_QUEUE_SPSC); }
Test(queue, timeouts_mpmc) { timeouts(0); }

static void close_drain(unsigned flags)
{
	mproc_queue *q = make(flags, 4096, 64);
	char buf[64];
	cr_assert_eq(mproc_queue_put(q, "a", 1, 0), 1);
	cr_assert_eq(mproc_queue_put(q, "b", 1, 0), 1);
	cr_assert_eq(mproc_queue_close(q), 0);
	cr_assert_eq(mproc_queue_close(q), 0, "idempotent");
	cr_assert_eq(mproc_queue_put(q, "c", 1, 0), -EPIPE);
	cr_assert_eq(mproc_queue_get(q, buf, 64, 0), 1);
	cr_assert_eq(buf[0], 'a');
	cr_assert_eq(mproc_queue_get(q, buf, 64, 0), 1);
	cr_assert_eq(buf[0], 'b');
	cr_assert_eq(mproc_queue_get(q, buf, 64, 0), -MPROC_EEOF);
	cr_assert_eq(mproc_queue_get(q, buf, 64, MPROC_FOREVER), -MPROC_EEOF);
	cr_assert_neq(-MPROC_EEOF, -EAGAIN);
	mproc_queue_free(q);
}
Test(queue, close_drain_spsc) { close_drain(MPROC_QUEUE_SPSC); }
Test(queue, close_drain_mpmc) { close_drain(0); }

/* A reader blocked forever is woken by close from another process. */
static void close_wakes_reader(unsigned flags)
{
	mproc_queue *q = make(flags, 4096, 64);
	pid_t pid = fork();
	if (pid == 0) {
		usleep(100000);
		mproc_queue_close(q);
		_exit(0);
	}
	char buf[64];
	cr_assert_eq(mproc_queue_get(q, buf, 64, MPROC_FOREVER), -MPROC_EEOF);
	int st;
	waitpid(pid, &st, 0);
	mproc_queue_free(q);
}
Test(queue, close_wakes_reader_spsc) { close_wakes_reader(MPROC_QUEUE_SPSC); }
Test(queue, close_wakes_reader_mpmc) { close_wakes_reader(0); }

static void batches(unsigned flags)
{
	mproc_queue *q = make(flags, 1 << 16, 64);
	struct iovec in[8];
	char data[8][16];
	for (int i = 0; i < 8; i++) {
		snprintf(data[i], 16, "msg-%d", i);
		in[i].iov_base = data[i];
		in[i].iov_len = strlen(data[i]);
	}
	cr_assert_eq(mproc_queue_put_many(q, in, 8, 0), 8);
	cr_assert_eq(mproc_queue_qsize(q), 8);
	char out[8][16];
	struct iovec ov[8];
	size_t lens[8];
	for (int i = 0; i < 8; i++) {
		ov[i].iov_base = out[i];
		ov[i].iov_len = 16;
	}
	ov[5].iov_len = 2; /* too small: get_many stops before it */
	cr_assert_eq(mproc_queue_get_many(q, ov, lens, 8, 0), 5);
	for (int i = 0; i < 5; i++) {
		cr_assert_eq(lens[i], strlen(data[i]));
		cr_assert_arr_eq(out[i], data[i], lens[i]);
	}
	cr_assert_eq(mproc_queue_get_many(q, &ov[5], lens, 1, 0), -EMSGSIZE);
	ov[5].iov_len = 16;
	cr_assert_eq(mproc_queue_get_many(q, &ov[5], lens, 3, 0), 3);
	cr_assert_arr_eq(out[7], "msg-7", 5);
	cr_assert_eq(mproc_queue_get_many(q, ov, lens, 8, 0), -EAGAIN);
	cr_assert_eq(mproc_queue_put_many(q, in, 0, 0), 0);
	mproc_queue_free(q);
}
Test(queue, batches_spsc) { batches(MPROC_QUEUE_SPSC); }
Test(queue, batches_mpmc) { batches(0); }

/* MPMC batches claim several slots with one compare-and-swap: a batch
 * larger than the free slots takes what is free, in order, across the
 * ring's end, and a get_many takes what is there. */
Test(queue, batches_mpmc_partial_and_wrapping)
{
	/* 4 slots of 32 + 64 bytes. */
	mproc_queue *q = make(0, 4 * 96, 64);
	struct iovec in[8], ov[8];
	uint64_t v[8], out[8];
	size_t lens[8];
	uint64_t next = 0, want = 0;
	for (int round = 0; round < 5; round++) {
		for (int i = 0; i < 8; i++) {
			v[i] = next + (uint64_t)i;
			in[i].iov_base = &v[i];
			in[i].iov_len = sizeof(v[i]);
			ov[i].iov_base = &out[i];
			ov[i].iov_len = sizeof(out[i]);
		}
		/* Round 1 leaves one message, so later rounds start inside
		 * the ring and their slots wrap around its end. */
		cr_assert_eq(mproc_queue_put_many(q, in, 8, 0),
			     round == 0 ? 4 : 3);
		next += round == 0 ? 4 : 3;
		cr_assert_eq(mproc_queue_put_many(q, in, 1, 0), -EAGAIN);
		ssize_t got = mproc_queue_get_many(q, ov, lens, 3, 0);
		cr_assert_eq(got, 3);
		for (int i = 0; i < 3; i++) {
			cr_assert_eq(lens[i], sizeof(uint64_t));
			cr_assert_eq(out[i], want++, "message %d of round %d",
				     i, round);
		}
		cr_assert_eq(mproc_queue_qsize(q), 1);
	}
	size_t len;
	cr_assert_eq(mproc_queue_get_many(q, ov, &len, 8, 0), 1);
	cr_assert_eq(out[0], want);
	cr_assert_eq(mproc_queue_get_many(q, ov, lens, 8, 0), -EAGAIN);
	mproc_queue_free(q);
}

static void zero_copy(unsigned flags)
{
	mproc_queue *q = make(flags, 4096, 64);
	void *p;
	cr_assert_eq(mproc_queue_commit(q, 1), -EINVAL, "no reservation");
	cr_assert_eq(mproc_queue_reserve(q, 65, &p, 0), -EMSGSIZE);
	cr_assert_eq(mproc_queue_reserve(q, 32, &p, 0), 0);
	void *p2;
	cr_assert_eq(mproc_queue_reserve(q, 8, &p2, 0), -EBUSY);
	memcpy(p, "zero-copy", 9);
	cr_assert_eq(mproc_queue_commit(q, 33), -EINVAL, "longer than reserved");
	cr_assert_eq(mproc_queue_commit(q, 9), 0);
	const void *r;
	cr_assert_eq(mproc_queue_release(q), -EINVAL, "no peek");
	cr_assert_eq(mproc_queue_peek(q, &r, 0), 9);
	cr_assert_arr_eq(r, "zero-copy", 9);
	char buf[64];
	/* SPSC: the one consumer is busy with its peek.  MPMC: the peeked
	 * message is claimed, so another get (say, from another thread
	 * sharing the handle) finds the queue empty. */
	cr_assert_eq(mproc_queue_get(q, buf, 64, 0),
		     (flags & MPROC_QUEUE_SPSC) ? -EBUSY : -EAGAIN);
	cr_assert_eq(mproc_queue_release(q), 0);
	cr_assert_eq(mproc_queue_peek(q, &r, 0), -EAGAIN);
	mproc_queue_free(q);
}
Test(queue, zero_copy_spsc) { zero_copy(MPROC_QUEUE_SPSC); }
Test(queue, zero_copy_mpmc) { zero_copy(0); }

static void joinable(unsigned flags)
{
	mproc_queue *q = make(flags | MPROC_QUEUE_JOINABLE, 4096, 64);
	cr_assert_eq(mproc_queue_join(q, 0), 0, "nothing put yet");
	cr_assert_eq(mproc_queue_task_done(q), -EOVERFLOW);
	cr_assert_eq(mproc_queue_put(q, "x", 1, 0), 1);
	cr_assert_eq(mproc_queue_put(q, "y", 1, 0), 1);
	cr_assert_eq(mproc_queue_join(q, 0), -EAGAIN);
	cr_assert_eq(mproc_queue_join(q, 20 * MPROC_MSEC), -ETIMEDOUT);
	pid_t pid = fork();
	if (pid == 0) {
		char b[8];
		for (int i = 0; i < 2; i++) {
			if (mproc_queue_get(q, b, 8, 5 * MPROC_SEC) != 1)
				_exit(1);
			usleep(20000);
			if (mproc_queue_task_done(q))
				_exit(2);
		}
		_exit(0);
	}
	cr_assert_eq(mproc_queue_join(q, 10 * MPROC_SEC), 0);
	int st;
	waitpid(pid, &st, 0);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	cr_assert_eq(mproc_queue_task_done(q), -EOVERFLOW, "more done than put");
	mproc_queue_free(q);
	mproc_queue *plain = make(flags, 4096, 64);
	cr_assert_eq(mproc_queue_task_done(plain), -EINVAL);
	cr_assert_eq(mproc_queue_join(plain, 0), -EINVAL);
	mproc_queue_free(plain);
}
Test(queue, joinable_spsc) { joinable(MPROC_QUEUE_SPSC); }
Test(queue, joinable_mpmc) { joinable(0); }

/* Python 3.13's Queue.shutdown: without immediate it is close (the queue
 * drains); with immediate what is queued is discarded for every process
 * at once, and blocked getters, putters and joiners are released. */
static void shutdown_plain(unsigned flags)
{
	mproc_queue *q = make(flags, 4096, 64);
	char buf[64];
	cr_assert_eq(mproc_queue_put(q, "a", 1, 0), 1);
	cr_assert_eq(mproc_queue_shutdown(q, false), 0);
	cr_assert_eq(mproc_queue_put(q, "b", 1, 0), -EPIPE);
	cr_assert_eq(mproc_queue_qsize(q), 1);
	cr_assert_eq(mproc_queue_get(q, buf, 64, 0), 1, "drains first");
	cr_assert_eq(mproc_queue_get(q, buf, 64, 0), -MPROC_EEOF);
	cr_assert_eq(mproc_queue_shutdown(q, false), 0, "idempotent");
	cr_assert_eq(mproc_queue_shutdown(NULL, true), -EINVAL);
	mproc_queue_free(q);
}
Test(queue, shutdown_plain_spsc) { shutdown_plain(MPROC_QUEUE_SPSC); }
Test(queue, shutdown_plain_mpmc) { shutdown_plain(0); }

static void shutdown_immediate(unsigned flags)
{
	mproc_queue *q = make(flags | MPROC_QUEUE_JOINABLE, 4096, 64);
	char buf[64];
	for (int i = 0; i < 3; i++)
		cr_assert_eq(mproc_queue_put(q, "m", 1, 0), 1);
	/* Another process takes one item and is inside its work when the
	 * shutdown comes; the parent's join is blocked meanwhile. */
	pid_t pid = fork();
	if (pid == 0) {
		if (mproc_queue_get(q, buf, 64, 5 * MPROC_SEC) != 1)
			_exit(1);
		usleep(100000);
		if (mproc_queue_shutdown(q, true))
			_exit(2);
		/* Items taken before the shutdown count for nothing now. */
		if (mproc_queue_task_done(q))
			_exit(3);
		_exit(0);
	}
	cr_assert_eq(mproc_queue_join(q, 10 * MPROC_SEC), -MPROC_EEOF,
		     "join released by the shutdown");
	int st;
	waitpid(pid, &st, 0);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status %d", st);
	cr_assert_eq(mproc_queue_qsize(q), 0, "the rest is discarded");
	cr_assert_eq(mproc_queue_empty(q), 1);
	cr_assert_eq(mproc_queue_get(q, buf, 64, MPROC_FOREVER), -MPROC_EEOF,
		     "two messages remain in the ring, yet none is delivered");
	cr_assert_eq(mproc_queue_next_size(q, 0), -MPROC_EEOF);
	const void *p;
	cr_assert_eq(mproc_queue_peek(q, &p, 0), -MPROC_EEOF);
	size_t len;
	struct iovec v = { buf, sizeof(buf) };
	cr_assert_eq(mproc_queue_get_many(q, &v, &len, 1, 0), -MPROC_EEOF);
	cr_assert_eq(mproc_queue_put(q, "x", 1, 0), -EPIPE);
	mproc_queue_free(q);
}
Test(queue, shutdown_immediate_spsc) { shutdown_immediate(MPROC_QUEUE_SPSC); }
Test(queue, shutdown_immediate_mpmc) { shutdown_immediate(0); }

/* A getter blocked without limit in another process is released. */
static void shutdown_wakes_getter(unsigned flags)
{
	mproc_queue *q = make(flags, 4096, 64);
	pid_t pid = fork();
	if (pid == 0) {
		char b[64];
		_exit(mproc_queue_get(q, b, 64, MPROC_FOREVER) == -MPROC_EEOF
			      ? 0 : 1);
	}
	usleep(100000);
	cr_assert_eq(mproc_queue_shutdown(q, true), 0);
	int st;
	waitpid(pid, &st, 0);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	mproc_queue_free(q);
}
Test(queue, shutdown_wakes_getter_spsc) { shutdown_wakes_getter(MPROC_QUEUE_SPSC); }
Test(queue, shutdown_wakes_getter_mpmc) { shutdown_wakes_getter(0); }

Test(queue, bad_arguments)
{
	mproc_queue *q;
	struct mproc_queue_attr a;
	mproc_queue_attr_init(&a);
	cr_assert_eq(mproc_queue_create(NULL, NULL), -EINVAL);
	a.flags = 1u << 20;
	cr_assert_eq(mproc_queue_create(&a, &q), -EINVAL, "unknown flag");
	mproc_queue_attr_init(&a);
	a.flags = MPROC_QUEUE_SPSC;
	a.capacity = 4096;
	a.max_msg = 4096;
	cr_assert_eq(mproc_queue_create(&a, &q), -EINVAL, "max_msg > cap/2");
	a.flags = 0;
	a.capacity = 100;
	a.max_msg = 100;
	cr_assert_eq(mproc_queue_create(&a, &q), -EINVAL, "not two slots");
	cr_assert_eq(mproc_queue_put(NULL, "x", 1, 0), -EINVAL);
	cr_assert_eq(mproc_queue_get(NULL, NULL, 0, 0), -EINVAL);
	cr_assert_eq(mproc_queue_qsize(NULL), -EINVAL);
	cr_assert_eq(mproc_queue_close(NULL), -EINVAL);
	q = make(0, 0, 0);
	cr_assert_eq(mproc_queue_put(q, NULL, 5, 0), -EINVAL);
	cr_assert_eq(mproc_queue_get(q, NULL, 5, 0), -EINVAL);
	mproc_queue_free(q);
	mproc_queue_free(NULL);
}

Test(queue, defaults)
{
	mproc_queue *q = NULL;
	cr_assert_eq(mproc_queue_create(NULL, &q), 0);
	cr_assert_gt(mproc_queue_max_msg(q), 0);
	mproc_queue_free(q);
	struct mproc_queue_attr a;
	mproc_queue_attr_init(&a);
	a.flags = MPROC_QUEUE_SPSC;
	a.max_msg = 4 << 20; /* capacity grows to fit when not given */
	cr_assert_eq(mproc_queue_create(&a, &q), 0);
	cr_assert_eq(mproc_queue_max_msg(q), 4 << 20);
	mproc_queue_free(q);
}

static void named(unsigned flags)
{
	char name[64];
	snprintf(name, sizeof(name), "/mproc-test-q-%d-%u", (int)getpid(), flags);
	mproc_queue_unlink(name);
	struct mproc_queue_attr a;
	mproc_queue_attr_init(&a);
	a.flags = flags;
	a.capacity = 8192;
	mproc_queue *q, *q2, *q3;
	cr_assert_eq(mproc_queue_create_named(name, &a, &q), 0);
	cr_assert_eq(mproc_queue_create_named(name, &a, &q2), -EEXIST);
	cr_assert_eq(mproc_queue_create_named("bad", &a, &q2), -EINVAL);
	cr_assert_eq(mproc_queue_open(name, 0, &q2), 0);
	cr_assert_eq(mproc_queue_put(q, "named", 5, 0), 5);
	char buf[16];
	cr_assert_eq(mproc_queue_get(q2, buf, 16, 0), 5);
	cr_assert_arr_eq(buf, "named", 5);
	cr_assert_eq(mproc_queue_unlink(name), 0);
	cr_assert_eq(mproc_queue_open(name, 0, &q3), -ENOENT);
	mproc_queue_free(q2);
	mproc_queue_free(q);
}
Test(queue, named_spsc) { named(MPROC_QUEUE_SPSC); }
Test(queue, named_mpmc) { named(0); }

/* The messages of Python's Queue_test: parent puts, child gets. */
static void across_fork(unsigned flags)
{
	mproc_queue *q = make(flags, 1 << 16, 256);
	pid_t pid = fork();
	if (pid == 0) {
		char buf[256];
		for (int i = 0; i < 1000; i++) {
			ssize_t n = mproc_queue_get(q, buf, sizeof(buf), 10 * MPROC_SEC);
			int v;
			if (n <= 0 || sscanf(buf, "item %d", &v) != 1 || v != i)
				_exit(1);
		}
		_exit(mproc_queue_get(q, buf, sizeof(buf), 10 * MPROC_SEC) == -MPROC_EEOF ? 0 : 3);
	}
	for (int i = 0; i < 1000; i++) {
		char m[32];
		int n = snprintf(m, sizeof(m), "item %d", i) + 1;
		cr_assert_eq(mproc_queue_put(q, m, (size_t)n, 10 * MPROC_SEC), n);
	}
	mproc_queue_close(q);
	int st;
	waitpid(pid, &st, 0);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status %d", st);
	mproc_queue_free(q);
}
Test(queue, across_fork_spsc) { across_fork(MPROC_QUEUE_SPSC); }
Test(queue, across_fork_mpmc) { across_fork(0); }

/* A consumer whose next slot is still held by the previous lap's
 * consumer (here: an open peek) must sleep and time out, not spin
 * forever (regression). */
Test(queue, mpmc_get_times_out_behind_held_slot, .timeout = 30)
{
	mproc_queue *q = make(0, 2 * 96, 64); /* two slots of 32 + 64 */
	char buf[64];
	const void *p;
	cr_assert_eq(mproc_queue_put(q, "a", 1, 0), 1);
	cr_assert_eq(mproc_queue_put(q, "b", 1, 0), 1);
	cr_assert_eq(mproc_queue_peek(q, &p, 0), 1);           /* holds slot 0 */
	cr_assert_eq(mproc_queue_get(q, buf, sizeof(buf), 0), 1); /* slot 1 */
	int64_t t0 = mproc__now_ns();
	cr_assert_eq(mproc_queue_get(q, buf, sizeof(buf), 100 * MPROC_MSEC),
		     -ETIMEDOUT);
	cr_assert_geq(mproc__now_ns() - t0, 100 * MPROC_MSEC);
	cr_assert_eq(mproc_queue_release(q), 0);
	mproc_queue_free(q);
}

/* Closing does not cut off a message committed before the close while an
 * earlier slot is still being written by a slow producer: gets wait for
 * it, then drain both, then report end-of-stream (regression). */
Test(queue, mpmc_close_waits_for_claimed_slots)
{
	/* Three handles in one process: a named queue opened twice (a token
	 * is imported once, in the process it was made for). */
	char name[64];
	snprintf(name, sizeof(name), "/mproc-test-slow-%d", (int)getpid());
	mproc_queue_unlink(name);
	struct mproc_queue_attr a;
	mproc_queue_attr_init(&a);
	a.capacity = 4096;
	a.max_msg = 64;
	mproc_queue *slow, *fast, *cons;
	cr_assert_eq(mproc_queue_create_named(name, &a, &slow), 0);
	cr_assert_eq(mproc_queue_open(name, 0, &fast), 0);
	cr_assert_eq(mproc_queue_open(name, 0, &cons), 0);
	cr_assert_eq(mproc_queue_unlink(name), 0);
	void *p;
	cr_assert_eq(mproc_queue_reserve(slow, 8, &p, 0), 0);
	cr_assert_eq(mproc_queue_put(fast, "hello", 5, 0), 5);
	cr_assert_eq(mproc_queue_close(fast), 0);
	char buf[64];
	cr_assert_eq(mproc_queue_get(cons, buf, sizeof(buf), 0), -EAGAIN,
		     "a claimed slot is pending: not end-of-stream yet");
	memcpy(p, "slowpoke", 8);
	cr_assert_eq(mproc_queue_commit(slow, 8), 0);
	cr_assert_eq(mproc_queue_get(cons, buf, sizeof(buf), 0), 8);
	cr_assert_arr_eq(buf, "slowpoke", 8);
	cr_assert_eq(mproc_queue_get(cons, buf, sizeof(buf), 0), 5);
	cr_assert_arr_eq(buf, "hello", 5);
	cr_assert_eq(mproc_queue_get(cons, buf, sizeof(buf), 0), -MPROC_EEOF);
	mproc_queue_free(cons);
	mproc_queue_free(fast);
	mproc_queue_free(slow);
}

/* A failed import closes nothing (queue.h): the token's descriptor stays
 * open for a retry, whether the segment was refused before it was
 * mapped (another kind) or after (ring indices that break the ring's
 * invariants).  A successful import closes it and keeps a duplicate. */
Test(queue, failed_import_leaves_the_descriptor)
{
	mproc_queue *q = make(MPROC_QUEUE_SPSC, 4096, 0);
	char tok[MPROC_QUEUE_TOKEN_MAX];
	cr_assert_gt(mproc_queue_export(q, tok, sizeof(tok)), 0);
	int qfd = atoi(strchr(tok, ':') + 1);
	/* A token of our own, on a duplicate, as a child would inherit. */
	int fd = dup(qfd);
	cr_assert_geq(fd, 0);
	char mine[MPROC_QUEUE_TOKEN_MAX];
	snprintf(mine, sizeof(mine), "mproc-shm:%d%s", fd,
		 strchr(strchr(tok, ':') + 1, ':'));
	struct stat st;
	cr_assert_eq(fstat(fd, &st), 0);
	unsigned char *m = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE,
				MAP_SHARED, fd, 0);
	cr_assert_neq(m, MAP_FAILED);
	/* The ring's head off its 8-byte grid: refused by the ring's attach,
	 * after the segment validated and was mapped. */
	_Atomic uint64_t *head = (_Atomic uint64_t *)(m + MPROC_SHM_HEADER_SIZE +
						     RING_SH_OFF);
	uint64_t good = atomic_load(head);
	atomic_store(head, good + 3);
	mproc_queue *imp = (mproc_queue *)1;
	cr_assert_eq(mproc_queue_import(mine, 0, &imp), -MPROC_ECORRUPT);
	cr_assert_null(imp);
	cr_assert_eq(fcntl(fd, F_GETFD), 0, "the descriptor is open, unchanged");
	/* Another kind: refused before anything is mapped. */
	struct mproc_shm_header *h = (struct mproc_shm_header *)m;
	h->kind = MPROC_SHM_KIND_PIPE;
	cr_assert_eq(mproc_queue_import(mine, 0, &imp), -EPROTOTYPE);
	cr_assert_eq(fcntl(fd, F_GETFD), 0);
	h->kind = MPROC_SHM_KIND_QUEUE;
	atomic_store(head, good);
	/* Repaired: the retry succeeds, the token's descriptor is closed and
	 * the handle works through its duplicate. */
	cr_assert_eq(mproc_queue_import(mine, 0, &imp), 0);
	cr_assert_eq(fcntl(fd, F_GETFD), -1);
	cr_assert_eq(mproc_queue_put_nowait(imp, "x", 1), 1);
	char c;
	cr_assert_eq(mproc_queue_get_nowait(q, &c, 1), 1);
	munmap(m, (size_t)st.st_size);
	mproc_queue_free(imp);
	mproc_queue_free(q);
}
