/*
 * Taking an end over from a process that died in the middle of a
 * streamed message (pipe.h, "Taking an end over"): the process that takes
 * over starts at a message boundary in both directions.  A new sender's
 * message is never spliced onto the dead sender's fragments nor swallowed
 * by them (issue 10, defect 4); a new receiver skips the rest of the
 * message whose first part the dead receiver took, and counts it in
 * mproc_conn_dropped (issue 16).  Deterministic: the child is killed at a
 * point the test controls.
 */
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include "pipe_test.h"

/* A child that streams a @n-byte message on @w, which nobody reads: it
 * fills the ring and blocks.  The parent kills it there, so the ring
 * holds the first fragments of a message that will never end. */
static void child_dies_mid_send(mproc_conn *w, size_t n)
{
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		unsigned char *m = malloc(n);
		fill(m, n, 1);
		mproc_conn_send_bytes(w, m, n);
		_exit(1);
	}
	usleep(100 * 1000); /* plenty to fill a small ring */
	cr_assert_eq(kill(pid, SIGKILL), 0);
	cr_assert_eq(wait_child(pid), 128 + SIGKILL);
}

/* Use both ends once in the parent, so that they are its own: its checks
 * never declare them dead when a child that used them later dies. */
static void use_both(mproc_conn *r, mproc_conn *w)
{
	char buf[8];
	cr_assert_eq(mproc_conn_send_bytes(w, "hi", 2), 2);
	cr_assert_eq(mproc_conn_recv_bytes_into(r, buf, sizeof(buf)), 2);
}

/* Issue 10 defect 4, first reproduction: the parent's next short message
 * was swallowed as the dead sender's "withdrawn" marker. */
Test(pipe_takeover, new_sender_short_message_not_swallowed)
{
	mproc_conn *r, *w;
	make(&r, &w, false, 4096);
	use_both(r, w);
	child_dies_mid_send(w, 20000);
	/* Take what the child left (the message cannot finish). */
	cr_assert_eq(mproc_conn_set_timeout(r, 0), 0);
	char buf[64];
	ssize_t n = mproc_conn_recv_bytes_into(r, buf, sizeof(buf));
	cr_assert(n == -EMSGSIZE || n == -EAGAIN, "%zd", n);
	void *p;
	size_t len;
	n = mproc_conn_recv_bytes(r, MPROC_CONN_NOLIMIT, &p, &len);
	cr_assert_eq(n, -EAGAIN, "%zd %s", n, mproc_strerror((int)n));
	/* The parent takes the sending end up again. */
	cr_assert_eq(mproc_conn_send_bytes(w, "hello", 5), 5);
	cr_assert_eq(mproc_conn_set_timeout(r, MPROC_SEC), 0);
	n = mproc_conn_recv_bytes_into(r, buf, sizeof(buf));
	cr_assert_eq(n, 5, "%zd %s", n, mproc_strerror((int)n));
	cr_assert_arr_eq(buf, "hello", 5);
	cr_assert_eq(mproc_conn_dropped(r), 0, "an unfinished send is no drop");
	mproc_conn_free(r);
	mproc_conn_free(w);
}

struct recv_job {
	mproc_conn *c;
	ssize_t n;
	void *buf;
	size_t len;
};

static void *recv_job(void *arg)
{
	struct recv_job *j = arg;
	j->n = mproc_conn_recv_bytes(j->c, MPROC_CONN_NOLIMIT, &j->buf, &j->len);
	return NULL;
}

/* Issue 10 defect 4, second reproduction: a streamed message of the
 * parent came out spliced onto the dead child's fragments. */
Test(pipe_takeover, new_sender_stream_not_spliced, .timeout = 60)
{
	mproc_conn *r, *w;
	make(&r, &w, false, 16384);
	use_both(r, w);
	size_t n = 100000;
	child_dies_mid_send(w, n);
	cr_assert_eq(mproc_conn_set_timeout(r, 10 * MPROC_SEC), 0);
	cr_assert_eq(mproc_conn_set_timeout(w, 10 * MPROC_SEC), 0);
	struct recv_job j = { .c = r };
	pthread_t t;
	cr_assert_eq(pthread_create(&t, NULL, recv_job, &j), 0);
	unsigned char *m = malloc(n);
	fill(m, n, 2);
	ssize_t sent = mproc_conn_send_bytes(w, m, n);
	pthread_join(t, NULL);
	cr_assert_eq(j.n, (ssize_t)n, "%zd %s", j.n, mproc_strerror((int)j.n));
	cr_assert_eq(j.len, n);
	cr_assert(memcmp(j.buf, m, n) == 0, "the parent's message, unspliced");
	cr_assert_eq(sent, (ssize_t)n);
	free(j.buf);
	free(m);
	mproc_conn_free(r);
	mproc_conn_free(w);
}

struct send_job {
	mproc_conn *c;
	size_t ring;
	ssize_t rc;
};

#define AFTER_SEED 4242

/* The parent's sender: a 3x-ring message (the one cut by the receiver's
 * death), a 2.5x-ring one and a short one, which the end's new receiver
 * must get whole. */
static void *send_three(void *arg)
{
	struct send_job *j = arg;
	size_t big = 3 * j->ring, mid = 5 * j->ring / 2;
	unsigned char *m = malloc(big);
	fill(m, big, 7);
	j->rc = mproc_conn_send_bytes(j->c, m, big);
	fill(m, mid, AFTER_SEED);
	if (j->rc == (ssize_t)big)
		j->rc = mproc_conn_send_bytes(j->c, m, mid);
	if (j->rc == (ssize_t)mid)
		j->rc = mproc_conn_send_bytes(j->c, "end", 3);
	free(m);
	return NULL;
}

/* A child receiving on @b stops part-way through a streamed message:
 * returns its pid once it has, or -1 when it happened to get the whole
 * message (the caller retries). */
static pid_t child_stops_mid_receive(mproc_conn *b, size_t ring,
				     pthread_t *t, struct send_job *j,
				     mproc_conn *a)
{
	int rep[2];
	cr_assert_eq(pipe(rep), 0);
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		close(rep[0]);
		size_t cap = 3 * ring;
		unsigned char *buf = malloc(cap);
		if (mproc_conn_poll(b, MPROC_FOREVER) != 1)
			_exit(1);
		/* Take what is there and stop when the ring runs dry. */
		mproc_conn_set_timeout(b, 0);
		ssize_t n = mproc_conn_recv_bytes_into(b, buf, cap);
		char c = n == -EAGAIN ? 'P' : 'W';
		if (write(rep[1], &c, 1) != 1)
			_exit(2);
		pause();
		_exit(3);
	}
	close(rep[1]);
	j->c = a;
	j->ring = ring;
	cr_assert_eq(pthread_create(t, NULL, send_three, j), 0);
	char c = 0;
	cr_assert_eq(read(rep[0], &c, 1), 1);
	close(rep[0]);
	cr_assert_eq(kill(pid, SIGKILL), 0);
	cr_assert_eq(wait_child(pid), 128 + SIGKILL);
	return c == 'P' ? pid : -1;
}

/* Issue 16: a child receives a streamed message from a duplex pipe and is
 * killed half-way; the parent takes the child's end up again.  Its first
 * receive got the leftover fragments: -EMSGSIZE with an impossible
 * length, -MPROC_ECORRUPT or an 8-byte "message". */
Test(pipe_takeover, new_receiver_skips_cut_message, .timeout = 60)
{
	size_t ring = 16384;
	for (int attempt = 0; attempt < 50; attempt++) {
		mproc_conn *a, *b;
		make(&a, &b, true, ring);
		/* The parent used b (the child's end) itself. */
		cr_assert_eq(mproc_conn_poll(b, 0), 0);
		pthread_t t;
		struct send_job j;
		pid_t pid = child_stops_mid_receive(b, ring, &t, &j, a);
		if (pid < 0) {
			/* The child got it all: the parent receives the
			 * rest; try again for a cut. */
			cr_assert_eq(mproc_conn_set_timeout(b, 10 * MPROC_SEC), 0);
			void *p;
			size_t len;
			for (int k = 0; k < 2; k++) {
				ssize_t n = mproc_conn_recv_bytes(
					b, MPROC_CONN_NOLIMIT, &p, &len);
				cr_assert_gt(n, 0, "%s", mproc_strerror((int)n));
				free(p);
			}
			pthread_join(t, NULL);
			mproc_conn_free(a);
			mproc_conn_free(b);
			continue;
		}
		cr_assert_eq(mproc_conn_set_timeout(b, 10 * MPROC_SEC), 0);
		size_t mid = 5 * ring / 2;
		unsigned char *ref = malloc(mid);
		fill(ref, mid, AFTER_SEED);
		void *p;
		size_t len;
		ssize_t n = mproc_conn_recv_bytes(b, MPROC_CONN_NOLIMIT, &p, &len);
		cr_assert_eq(n, (ssize_t)mid, "%zd %s", n, mproc_strerror((int)n));
		cr_assert(memcmp(p, ref, mid) == 0, "the next message, intact");
		free(p);
		cr_assert_eq(mproc_conn_dropped(b), 1, "the cut message is reported");
		char buf[8];
		n = mproc_conn_recv_bytes_into(b, buf, sizeof(buf));
		cr_assert_eq(n, 3, "%zd %s", n, mproc_strerror((int)n));
		pthread_join(t, NULL);
		cr_assert_eq(j.rc, 3, "the sender: %s", mproc_strerror((int)j.rc));
		cr_assert_eq(mproc_conn_dropped(b), 1, "reported once");
		cr_assert_eq(mproc_conn_dropped(a), 0);
		free(ref);
		mproc_conn_free(a);
		mproc_conn_free(b);
		return;
	}
	cr_skip_test("the child never stopped part-way through a message");
}
