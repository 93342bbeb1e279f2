/*
 * Ends taken over after a SIGKILL at a random point of a stream of
 * messages of 1x, 2.5x and 3x the ring (and short ones), every message
 * checksummed (issue 16).  The receiver killed: the parent takes its end
 * and must get only whole, intact messages, in order; the one message the
 * death cut is either delivered whole or counted by mproc_conn_dropped,
 * never delivered in part.  The sender killed: the parent takes its end
 * and sends its own messages; the receiver gets the dead sender's whole
 * messages, then the parent's, none spliced, none swallowed.
 */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "pipe_test.h"

#define RING (16 * 1024)
#define MAXMSG (3 * RING)
#define TRIALS 150
#define NMSG 40

/* Message @seq of source @tag: its size and contents follow from both.
 * Bytes 0..3 hold seq, byte 4 the tag, the rest is filled from a seed. */
static size_t msg_len(uint32_t seq)
{
	switch (seq % 4) {
	case 0: return RING;
	case 1: return 5 * RING / 2;
	case 2: return 3 * RING;
	default: return 8 + (seq * 37) % 200;
	}
}

static uint64_t msg_seed(char tag, uint32_t seq)
{
	return (uint64_t)(unsigned char)tag << 32 | seq;
}

static void msg_make(unsigned char *m, char tag, uint32_t seq)
{
	size_t n = msg_len(seq);
	fill(m, n, msg_seed(tag, seq));
	memcpy(m, &seq, 4);
	m[4] = (unsigned char)tag;
}

/* Check a received message; returns its seq, or -1 when it is not a
 * whole, intact message of @tag. */
static int64_t msg_check(const unsigned char *m, size_t n, char tag,
			 unsigned char *ref)
{
	uint32_t seq;
	if (n < 8 || m[4] != (unsigned char)tag)
		return -1;
	memcpy(&seq, m, 4);
	if (msg_len(seq) != n)
		return -1;
	msg_make(ref, tag, seq);
	if (checksum(m, n) != checksum(ref, n) || memcmp(m, ref, n) != 0)
		return -1;
	return seq;
}

static useconds_t rand_delay(uint64_t *s, useconds_t max)
{
	return (useconds_t)(rnd(s) % max);
}

/* ------------------------------------------------------------------ */
/* The receiver dies                                                   */

struct sender {
	mproc_conn *w;
	ssize_t rc;
};

/* The parent's sender: NMSG messages with short pauses (so that the kill
 * lands anywhere in the stream), then END (seq NMSG). */
static void *send_all(void *arg)
{
	struct sender *s = arg;
	unsigned char *m = malloc(MAXMSG);
	s->rc = 0;
	for (uint32_t seq = 0; seq <= NMSG && s->rc >= 0; seq++) {
		msg_make(m, 'M', seq);
		s->rc = mproc_conn_send_bytes(s->w, m, msg_len(seq));
		usleep(50);
	}
	free(m);
	return NULL;
}

Test(pipe_stress_takeover, receiver_killed_at_random, .timeout = 300)
{
	_Atomic int64_t *done = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
				     MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	cr_assert_neq(done, MAP_FAILED);
	unsigned char *buf = malloc(MAXMSG), *ref = malloc(MAXMSG);
	uint64_t s = 1234;
	int cut = 0, whole = 0, ambiguous = 0, late = 0;
	for (int trial = 0; trial < TRIALS; trial++) {
		mproc_conn *r, *w;
		make(&r, &w, false, RING);
		cr_assert_eq(mproc_conn_poll(r, 0), 0); /* r is the parent's too */
		atomic_store(done, -1);
		pid_t pid = fork();
		cr_assert_geq(pid, 0);
		if (pid == 0) {
			mproc_conn_set_timeout(r, 10 * MPROC_SEC);
			for (;;) {
				ssize_t n = mproc_conn_recv_bytes_into(r, buf, MAXMSG);
				if (n < 0)
					_exit(1);
				int64_t seq = msg_check(buf, (size_t)n, 'M', ref);
				if (seq != atomic_load(done) + 1)
					_exit(2);
				atomic_store(done, seq);
			}
		}
		struct sender snd = { w, 0 };
		pthread_t t;
		cr_assert_eq(pthread_create(&t, NULL, send_all, &snd), 0);
		usleep(rand_delay(&s, 4000));
		cr_assert_eq(kill(pid, SIGKILL), 0);
		int st = wait_child(pid);
		cr_assert_eq(st, 128 + SIGKILL, "the receiver failed: %d", st);
		int64_t last = atomic_load(done);
		/* The parent takes the receiving end over. */
		cr_assert_eq(mproc_conn_set_timeout(r, 10 * MPROC_SEC), 0);
		int64_t want = last + 1, first = -1;
		while (want <= NMSG) {
			ssize_t n = mproc_conn_recv_bytes_into(r, buf, MAXMSG);
			cr_assert_geq(n, 0, "trial %d: %s", trial,
				      mproc_strerror((int)n));
			int64_t seq = msg_check(buf, (size_t)n, 'M', ref);
			cr_assert_geq(seq, 0, "trial %d: a torn message", trial);
			if (first < 0) {
				first = seq;
				cr_assert(seq == want || seq == want + 1,
					  "trial %d: the child had %lld, next %lld",
					  trial, (long long)last, (long long)seq);
			} else {
				cr_assert_eq(seq, want, "trial %d: out of order",
					     trial);
			}
			want = seq + 1;
		}
		pthread_join(t, NULL);
		cr_assert_geq(snd.rc, 0, "sender: %s", mproc_strerror((int)snd.rc));
		ssize_t dropped = mproc_conn_dropped(r);
		int64_t missing = first < 0 ? 0 : first - (last + 1);
		cr_assert(dropped == 0 || dropped == 1, "%zd", dropped);
		cr_assert(dropped <= missing,
			  "trial %d: dropped %zd, missing %lld", trial, dropped,
			  (long long)missing);
		if (first < 0)
			late++;
		else if (dropped)
			cut++;
		else if (missing)
			ambiguous++; /* the child had taken all of it */
		else
			whole++;
		mproc_conn_free(r);
		mproc_conn_free(w);
	}
	cr_log_info("receiver killed: %d cut and dropped, %d resumed whole, "
		    "%d taken whole by the child, %d after the end",
		    cut, whole, ambiguous, late);
	free(buf);
	free(ref);
	munmap(done, 4096);
}

/* ------------------------------------------------------------------ */
/* The sender dies                                                     */

#define PMSG 12

struct receiver {
	mproc_conn *r;
	int64_t next_s, next_p;
	const char *error;
};

/* Everything from the dead sender ('S', in order from 0), then the
 * parent's ('P', in order from 0, all of them), then END ('E'). */
static void *recv_all(void *arg)
{
	struct receiver *v = arg;
	unsigned char *buf = malloc(MAXMSG), *ref = malloc(MAXMSG);
	v->next_s = v->next_p = 0;
	v->error = NULL;
	for (;;) {
		ssize_t n = mproc_conn_recv_bytes_into(v->r, buf, MAXMSG);
		if (n < 0) {
			v->error = "receive failed";
			break;
		}
		if (n >= 5 && buf[4] == 'E')
			break;
		int64_t seq = msg_check(buf, (size_t)n, (char)(n >= 5 ? buf[4] : 0),
					ref);
		if (seq < 0) {
			v->error = "a torn or spliced message";
			break;
		}
		if (buf[4] == 'S' && v->next_p == 0 && seq == v->next_s) {
			v->next_s++;
		} else if (buf[4] == 'P' && seq == v->next_p) {
			v->next_p++;
		} else {
			v->error = "a message out of order";
			break;
		}
	}
	free(buf);
	free(ref);
	return NULL;
}

Test(pipe_stress_takeover, sender_killed_at_random, .timeout = 300)
{
	unsigned char *m = malloc(MAXMSG);
	uint64_t s = 99;
	for (int trial = 0; trial < TRIALS; trial++) {
		mproc_conn *r, *w;
		make(&r, &w, false, RING);
		/* The parent uses the sending end first: it is its own. */
		char hi[4];
		cr_assert_eq(mproc_conn_send_bytes(w, "hi", 2), 2);
		cr_assert_eq(mproc_conn_recv_bytes_into(r, hi, sizeof(hi)), 2);
		pid_t pid = fork();
		cr_assert_geq(pid, 0);
		if (pid == 0) {
			for (uint32_t seq = 0;; seq++) {
				msg_make(m, 'S', seq);
				if (mproc_conn_send_bytes(w, m, msg_len(seq)) < 0)
					_exit(1);
			}
		}
		cr_assert_eq(mproc_conn_set_timeout(r, 10 * MPROC_SEC), 0);
		struct receiver v = { .r = r };
		pthread_t t;
		cr_assert_eq(pthread_create(&t, NULL, recv_all, &v), 0);
		usleep(rand_delay(&s, 3000));
		cr_assert_eq(kill(pid, SIGKILL), 0);
		cr_assert_eq(wait_child(pid), 128 + SIGKILL);
		/* The parent takes the sending end over. */
		cr_assert_eq(mproc_conn_set_timeout(w, 10 * MPROC_SEC), 0);
		for (uint32_t seq = 0; seq < PMSG; seq++) {
			msg_make(m, 'P', seq);
			ssize_t n = mproc_conn_send_bytes(w, m, msg_len(seq));
			cr_assert_eq(n, (ssize_t)msg_len(seq), "%s",
				     mproc_strerror((int)n));
		}
		unsigned char end[8] = { 0, 0, 0, 0, 'E' };
		cr_assert_eq(mproc_conn_send_bytes(w, end, sizeof(end)), 8);
		pthread_join(t, NULL);
		cr_assert_null(v.error, "trial %d: %s (after %lld S, %lld P)",
			       trial, v.error, (long long)v.next_s,
			       (long long)v.next_p);
		cr_assert_eq(v.next_p, PMSG);
		cr_assert_eq(mproc_conn_dropped(r), 0);
		mproc_conn_free(r);
		mproc_conn_free(w);
	}
	free(m);
}
