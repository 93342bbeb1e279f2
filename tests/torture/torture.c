/*
 * Kill torture (suite `stress`; by hand: torture --trials N [--seed S]
 * [--only spsc|mpmc|pipe|pool]): SPEC section 5 and issue 10.  Each trial
 * starts the participants of one subject in their own processes, SIGKILLs
 * one of them at random after a random delay (so at any instruction: in
 * put, put_many, reserve/commit, get, get_many, peek/release, a streamed
 * send, a receive, a wait, a pool task), starts a replacement in its
 * role, and then checks that
 *   - every survivor finishes within its timeouts (else: a hang);
 *   - every message whose put returned arrives exactly once (else: lost,
 *     duplicated) and intact (producer id, sequence number and a checksum
 *     of the payload; else: corrupted);
 *   - in the pool, the killed worker's task fails with -MPROC_EWORKERLOST
 *     and every other task completes with its right result.
 * It prints one closing line,
 *   torture: trials N, kills N, messages checked N, lost 0, duplicated 0,
 *   corrupted 0, hangs 0
 * and exits 1 on any failure.
 *
 * Accounting.  A producer records the highest sequence number it is about
 * to put before the call and marks each message committed after the call
 * returned; a message that arrives without the mark (its producer died
 * after the put, before marking) is fine, one that was never attempted is
 * corrupt.  A consumer receives into its own buffer in shared memory and
 * then counts each message in the ledger.  A consumer killed between the
 * two has the messages in that buffer: the checker counts a valid one
 * there once if no one else counted it, so a message delivered to a
 * process that died right after its get returned is not taken for lost.
 *
 * Pipes (pipe_trial) follow pipe.h's rules for "Taking an end over": a
 * sender and a receiver process on one pipe (one-way, or duplex in a
 * random direction; a ring of 4 or 16 KiB), half of the messages up to
 * three times the smaller ring so that they stream in fragments.  Each of
 * the two first uses the other's end once (a poll, or on a one-way pipe
 * the receiver's greeting sent on the sending end), so that neither takes
 * the other's death as final and a replacement process can take the dead
 * one's end over.  The victim is killed by a timer it arms at a random
 * point of its stream (arm_kill).  The accounting follows the pipe's
 * semantics:
 *   - a sender killed part-way through a message: that message is never
 *     delivered (a spliced or partial one fails its checksum: corrupted)
 *     and never counted in mproc_conn_dropped;
 *   - the receiver receives into its buffer in shared memory, as above,
 *     so a message the dead receiver had taken entirely is still counted;
 *   - a message whose first fragments the dead receiver had taken is
 *     skipped by the replacement and counted in its mproc_conn_dropped:
 *     at most one per dead receiver.  So "lost" is a committed message
 *     that no receiver got, beyond what the drop counts explain;
 *   - messages of one sender arrive in order, and those of a replacement
 *     sender after all of its predecessor's (else: corrupted).
 *
 * Subjects are rows of one table (struct subject).
 */
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mproc.h"

#define MAX_PROD 8      /* producer ids per trial, replacements included */
#define MAX_CONS 8      /* consumer ids per trial */
#define MAX_SEQ 1024    /* messages per producer id */
#define MSG_MAX 192     /* largest message */
#define BATCH 8         /* put_many / get_many size */
#define CALL_TIMEOUT (5 * MPROC_SEC) /* a survivor's call: longer = hang */
#define TRIAL_TIMEOUT (20 * MPROC_SEC)
#define POOL_TASKS 6
#define PIPE_MSG_MAX (3 * 4096) /* 3x the smallest ring: streamed */
#define PIPE_SMALL 256            /* small messages: one record */

struct msg_hdr {
	uint32_t producer;
	uint32_t len; /* whole message */
	uint64_t seq;
	uint64_t checksum; /* of the payload after the header */
};

struct ledger {
	_Atomic uint64_t attempted[MAX_PROD]; /* seqs below were tried */
	_Atomic uint8_t committed[MAX_PROD][MAX_SEQ];
	_Atomic uint32_t received[MAX_PROD][MAX_SEQ];
	_Atomic uint64_t corrupted;
	_Atomic uint64_t checked;
	/* Each consumer's receive buffer (see Accounting above). */
	unsigned char inhand[MAX_CONS][BATCH][MSG_MAX];
	/* Pipe trials (pipe_trial): each receiver's receive buffer, the
	 * setup stage, the last message recorded (for the order check),
	 * whether the greeting arrived, each receiver's dropped count, what
	 * each role was doing, and whether the sender closed its end. */
	unsigned char pipe_inhand[MAX_CONS][PIPE_MSG_MAX];
	_Atomic int stage;
	_Atomic int64_t order_prod, order_seq;
	_Atomic int greeted;
	_Atomic int64_t dropped[MAX_CONS];
	_Atomic int doing[2]; /* [0] sender, [1] receiver: enum doing */
	_Atomic int sender_closing;
	_Atomic int64_t error[2]; /* [0] producer, [1] consumer: last error
				   * (the pipe roles set it) */
	_Atomic int victim;       /* 0 sender, 1 receiver (arm_kill) */
	_Atomic int64_t kill_at, kill_after;
	/* Pool trials: each task's worker pid. */
	_Atomic int task_pid[POOL_TASKS + 1];
};

/* What a pipe participant is doing (L->doing), for the kill statistics. */
enum doing { DO_IDLE, DO_SEND, DO_STREAM, DO_RECV };

static struct ledger *L;

struct totals {
	uint64_t trials, kills, checked, lost, duplicated, corrupted, hangs;
	/* Pipe kills by what the victim was doing (enum doing), and the
	 * messages replacement receivers skipped (mproc_conn_dropped). */
	uint64_t pipe_kills[4], pipe_dropped;
};

/* ----------------------------------------------------------------- util */

static uint64_t rng_next(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* FNV-1a over 8-byte words (then the tail bytes): cheap enough that
 * building and checking messages of several KiB does not dominate a
 * trial, and any changed byte changes it. */
static uint64_t checksum(const unsigned char *p, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	size_t i = 0;
	for (; i + 8 <= n; i += 8) {
		uint64_t w;
		memcpy(&w, p + i, 8);
		h = (h ^ w) * 0x100000001b3ULL;
		h ^= h >> 29;
	}
	for (; i < n; i++)
		h = (h ^ p[i]) * 0x100000001b3ULL;
	return h;
}

static void sleep_ns(int64_t ns)
{
	struct timespec ts = { ns / 1000000000, ns % 1000000000 };
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Build message @seq of producer @prod in @buf; returns its length. */
static size_t make_msg(unsigned char *buf, uint32_t prod, uint64_t seq,
		       size_t max)
{
	uint64_t r = (seq + 1) * 0x9e3779b97f4a7c15ULL ^ prod;
	size_t len = sizeof(struct msg_hdr) +
		     rng_next(&r) % (max - sizeof(struct msg_hdr) + 1);
	struct msg_hdr h = { prod, (uint32_t)len, seq, 0 };
	unsigned char *pl = buf + sizeof(h);
	for (size_t i = 0; i < len - sizeof(h); i += 8) {
		uint64_t w = rng_next(&r);
		size_t k = len - sizeof(h) - i < 8 ? len - sizeof(h) - i : 8;
		memcpy(pl + i, &w, k);
	}
	h.checksum = checksum(pl, len - sizeof(h));
	memcpy(buf, &h, sizeof(h));
	return len;
}

/* Is @buf (@len bytes) an intact message that was attempted? */
static bool msg_valid(const unsigned char *buf, size_t len, struct msg_hdr *h)
{
	if (len < sizeof(*h))
		return false;
	memcpy(h, buf, sizeof(*h));
	return h->producer < MAX_PROD && h->seq < MAX_SEQ && h->len == len &&
	       h->seq < atomic_load(&L->attempted[h->producer]) &&
	       h->checksum == checksum(buf + sizeof(*h), len - sizeof(*h));
}

static void count_received(const unsigned char *buf, size_t len)
{
	struct msg_hdr h;
	atomic_fetch_add(&L->checked, 1);
	if (!msg_valid(buf, len, &h)) {
		atomic_fetch_add(&L->corrupted, 1);
		return;
	}
	atomic_fetch_add(&L->received[h.producer][h.seq], 1);
}

/* ----------------------------------------------------- queue participants */

/* A role's call failed with @err: record it (L->error[@role], 0 for a
 * producer or sender, 1 for a consumer or receiver) and return the exit
 * status, 3 for a timeout (a hang) and 4 for anything else. */
static int failed(int role, ssize_t err)
{
	atomic_store(&L->error[role], err);
	return err == -ETIMEDOUT ? 3 : 4;
}

/* Producer @prod puts @n messages with a random mix of put, put_many and
 * reserve/commit.  Exit status 0, or 3 on a call that timed out. */
static int producer(mproc_queue *q, uint32_t prod, uint64_t n, uint64_t seed)
{
	uint64_t rng = seed | 1;
	size_t max = (size_t)mproc_queue_max_msg(q);
	if (max > MSG_MAX)
		max = MSG_MAX;
	static unsigned char bufs[BATCH][MSG_MAX];
	uint64_t seq = 0;
	while (seq < n) {
		unsigned how = (unsigned)(rng_next(&rng) % 3);
		if (how == 1) {
			struct iovec iov[BATCH];
			size_t k = 2 + rng_next(&rng) % (BATCH - 1);
			if (k > n - seq)
				k = n - seq;
			for (size_t i = 0; i < k; i++) {
				iov[i].iov_base = bufs[i];
				iov[i].iov_len = make_msg(bufs[i], prod,
							  seq + i, max);
			}
			atomic_store(&L->attempted[prod], seq + k);
			ssize_t r = mproc_queue_put_many(q, iov, k, CALL_TIMEOUT);
			if (r < 0)
				return failed(0, r);
			for (ssize_t i = 0; i < r; i++)
				atomic_store(&L->committed[prod][seq + i], 1);
			seq += (uint64_t)r;
		} else if (how == 2) {
			void *p;
			size_t len = make_msg(bufs[0], prod, seq, max);
			atomic_store(&L->attempted[prod], seq + 1);
			int rc = mproc_queue_reserve(q, len, &p, CALL_TIMEOUT);
			if (rc)
				return failed(0, rc);
			memcpy(p, bufs[0], len);
			if (mproc_queue_commit(q, len))
				return 4;
			atomic_store(&L->committed[prod][seq], 1);
			seq++;
		} else {
			size_t len = make_msg(bufs[0], prod, seq, max);
			atomic_store(&L->attempted[prod], seq + 1);
			ssize_t r = mproc_queue_put(q, bufs[0], len, CALL_TIMEOUT);
			if (r < 0)
				return failed(0, r);
			atomic_store(&L->committed[prod][seq], 1);
			seq++;
		}
	}
	return 0;
}

/* Consumer @cons takes messages with a random mix of get, get_many and
 * peek/release until the queue is closed and drained. */
static int consumer(mproc_queue *q, uint32_t cons, uint64_t seed)
{
	uint64_t rng = seed | 1;
	unsigned char(*in)[MSG_MAX] = L->inhand[cons];
	for (;;) {
		unsigned how = (unsigned)(rng_next(&rng) % 3);
		ssize_t r;
		size_t lens[BATCH];
		if (how == 1) {
			struct iovec iov[BATCH];
			size_t k = 2 + rng_next(&rng) % (BATCH - 1);
			for (size_t i = 0; i < k; i++) {
				iov[i].iov_base = in[i];
				iov[i].iov_len = MSG_MAX;
			}
			r = mproc_queue_get_many(q, iov, lens, k, CALL_TIMEOUT);
		} else if (how == 2) {
			const void *p;
			r = mproc_queue_peek(q, &p, CALL_TIMEOUT);
			if (r >= 0) {
				lens[0] = (size_t)r;
				memcpy(in[0], p, r > MSG_MAX ? MSG_MAX : (size_t)r);
				if (mproc_queue_release(q))
					return 4;
				r = 1;
			}
		} else {
			r = mproc_queue_get(q, in[0], MSG_MAX, CALL_TIMEOUT);
			if (r >= 0) {
				lens[0] = (size_t)r;
				r = 1;
			}
		}
		if (r == -MPROC_EEOF)
			return 0;
		if (r < 0)
			return failed(1, r);
		for (ssize_t i = 0; i < r; i++)
			count_received(in[i], lens[i]);
	}
}

struct role {
	pid_t pid;
	bool producer;
	uint32_t id;
	bool done;
	int status;
};

static pid_t start_role(mproc_queue *q, struct role *ro, uint64_t n,
			uint64_t seed)
{
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		int rc = ro->producer ? producer(q, ro->id, n, seed)
				      : consumer(q, ro->id, seed);
		_exit(rc);
	}
	ro->pid = pid;
	ro->done = false;
	return pid;
}

/* Reap whatever of @roles has ended, until every role for which @want
 * says so has, or @deadline passes.  Returns false on the deadline. */
static bool reap(struct role *roles, int n, bool producers_only,
		 int64_t deadline)
{
	for (;;) {
		bool all = true;
		for (int i = 0; i < n; i++) {
			struct role *ro = &roles[i];
			if (ro->done || (producers_only && !ro->producer))
				continue;
			int st;
			pid_t r = waitpid(ro->pid, &st, WNOHANG);
			if (r == ro->pid) {
				ro->done = true;
				ro->status = st;
			} else {
				all = false;
			}
		}
		if (all)
			return true;
		if (now_ns() > deadline)
			return false;
		sleep_ns(200 * 1000);
	}
}

/* After a trial's reap: if it ran out of time (@ok false), kill what is
 * left and count a hang; then judge each role but the killed victim by
 * its exit status: 0 fine, 3 a call that timed out (a hang), anything
 * else a failure (counted as corrupted, with L->error when set). */
static void judge_roles(struct role *roles, int n, const struct role *victim,
			bool ok, const char *subject, struct totals *t)
{
	if (!ok) {
		t->hangs++;
		for (int i = 0; i < n; i++)
			if (!roles[i].done) {
				fprintf(stderr, "torture: %s trial %llu: %s %u "
					"still running at the deadline\n",
					subject, (unsigned long long)t->trials,
					roles[i].producer ? "producer"
							  : "consumer",
					roles[i].id);
				kill(roles[i].pid, SIGKILL);
				waitpid(roles[i].pid, NULL, 0);
				roles[i].done = true;
				roles[i].status = 0;
			}
	}
	for (int i = 0; i < n; i++) {
		int st = roles[i].status;
		if (&roles[i] == victim && WIFSIGNALED(st))
			continue;
		if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
			continue;
		bool hang = WIFEXITED(st) && WEXITSTATUS(st) == 3;
		int64_t e = atomic_load(&L->error[roles[i].producer ? 0 : 1]);
		fprintf(stderr, "torture: %s trial %llu: %s %u %s (status "
			"0x%x%s%s)\n", subject, (unsigned long long)t->trials,
			roles[i].producer ? "producer" : "consumer",
			roles[i].id, hang ? "timed out" : "failed", st,
			e ? ", " : "", e ? mproc_strerror((int)e) : "");
		if (hang)
			t->hangs++;
		else
			t->corrupted++;
	}
}

/* A dead consumer's receive buffer @m (at most @max bytes): a message in
 * it that is valid and counted by nobody was received whole just before
 * the death (see Accounting); count it. */
static void count_inhand(const unsigned char *m, size_t max)
{
	struct msg_hdr h;
	memcpy(&h, m, sizeof(h));
	if (h.len <= max && msg_valid(m, h.len, &h) &&
	    atomic_load(&L->received[h.producer][h.seq]) == 0)
		atomic_store(&L->received[h.producer][h.seq], 1);
}

/* Over producer ids below @nprod: committed messages nobody received
 * (*@missing) and extra deliveries (*@dup). */
static void tally(uint32_t nprod, uint64_t *missing, uint64_t *dup)
{
	*missing = *dup = 0;
	for (uint32_t p = 0; p < nprod; p++) {
		uint64_t att = atomic_load(&L->attempted[p]);
		for (uint64_t s = 0; s < att && s < MAX_SEQ; s++) {
			uint32_t got = atomic_load(&L->received[p][s]);
			if (atomic_load(&L->committed[p][s]) && got == 0)
				(*missing)++;
			if (got > 1)
				*dup += got - 1;
		}
	}
}

/* One queue trial; adds to @t.  @spsc: one producer and one consumer,
 * else two of each. */
static void queue_trial(bool spsc, uint64_t *rng, struct totals *t)
{
	memset(L, 0, offsetof(struct ledger, task_pid));
	struct mproc_queue_attr a;
	mproc_queue_attr_init(&a);
	a.flags = spsc ? MPROC_QUEUE_SPSC : 0;
	a.capacity = spsc ? 2048 : 16 * (32 + MSG_MAX);
	a.max_msg = spsc ? 0 : MSG_MAX;
	/* Half the SPSC trials in a 64 KiB ring, above the slip's minimum
	 * (spsc.h, "Slip"), so that some consumers are killed inside one;
	 * with the 2 KiB ring's message sizes. */
	if (spsc && rng_next(rng) % 2) {
		a.capacity = 64 * 1024;
		a.max_msg = 2048 / 2 - 16;
	}
	/* Now and then start near the wrap of the indices. */
	if (rng_next(rng) % 4 == 0)
		a.initial_index = UINT64_MAX - 4096 * 4;
	mproc_queue *q;
	if (mproc_queue_create(&a, &q)) {
		fprintf(stderr, "torture: queue create failed\n");
		exit(2);
	}
	int np = spsc ? 1 : 2, nc = spsc ? 1 : 2;
	struct role roles[MAX_PROD + MAX_CONS];
	int n = 0;
	uint32_t next_prod = 0, next_cons = 0;
	uint64_t per = 100 + rng_next(rng) % 300;
	for (int i = 0; i < np; i++)
		roles[n++] = (struct role){ .producer = true, .id = next_prod++ };
	for (int i = 0; i < nc; i++)
		roles[n++] = (struct role){ .producer = false, .id = next_cons++ };
	for (int i = 0; i < n; i++)
		start_role(q, &roles[i], per, rng_next(rng));

	/* The kill: a random participant after a random delay. */
	sleep_ns((int64_t)(rng_next(rng) % 1500) * 1000);
	int v = (int)(rng_next(rng) % (uint64_t)n);
	struct role *victim = &roles[v];
	if (!victim->done && kill(victim->pid, SIGKILL) == 0) {
		int st;
		waitpid(victim->pid, &st, 0);
		victim->done = true;
		victim->status = st;
		if (WIFSIGNALED(st))
			t->kills++;
		/* The replacement takes over the role under a new id. */
		struct role *rep = &roles[n++];
		*rep = (struct role){ .producer = victim->producer,
				      .id = victim->producer ? next_prod++
							     : next_cons++ };
		start_role(q, rep, per / 2, rng_next(rng));
	}

	int64_t deadline = now_ns() + TRIAL_TIMEOUT;
	bool ok = reap(roles, n, true, deadline);
	mproc_queue_close(q);
	ok = reap(roles, n, false, deadline) && ok;
	judge_roles(roles, n, victim, ok, spsc ? "spsc" : "mpmc", t);

	/* The killed consumer's buffer: messages it received and did not
	 * count yet (see Accounting). */
	if (!victim->producer)
		for (int b = 0; b < BATCH; b++)
			count_inhand(L->inhand[victim->id][b], MSG_MAX);
	uint64_t lost, dup;
	tally(next_prod, &lost, &dup);
	if (lost || dup || atomic_load(&L->corrupted))
		fprintf(stderr, "torture: %s trial %llu: lost %llu, duplicated "
			"%llu, corrupted %llu (victim: %s)\n",
			spsc ? "spsc" : "mpmc", (unsigned long long)t->trials,
			(unsigned long long)lost, (unsigned long long)dup,
			(unsigned long long)atomic_load(&L->corrupted),
			victim->producer ? "producer" : "consumer");
	t->lost += lost;
	t->duplicated += dup;
	t->corrupted += atomic_load(&L->corrupted);
	t->checked += atomic_load(&L->checked);
	t->trials++;
	mproc_queue_free(q);
}

/* ------------------------------------------------------------------ pipe */

#define GREETING "mproc torture: hello"
#define GREETING_LEN (sizeof(GREETING) - 1)

/* Message @seq of producer @prod on a pipe: small (one record) or up to
 * PIPE_MSG_MAX (streamed through the smaller rings), half and half. */
static size_t make_pipe_msg(unsigned char *buf, uint32_t prod, uint64_t seq)
{
	uint64_t r = (seq + 7) * 0xbf58476d1ce4e5b9ULL ^ prod;
	return make_msg(buf, prod, seq,
			rng_next(&r) % 2 ? PIPE_SMALL : PIPE_MSG_MAX);
}

static void wait_stage(int want)
{
	int64_t deadline = now_ns() + TRIAL_TIMEOUT;
	while (atomic_load(&L->stage) < want) {
		if (now_ns() > deadline)
			_exit(3);
		sleep_ns(20 * 1000);
	}
}

/* The kill (pipe trials): the victim arms a one-shot timer that sends it
 * SIGKILL L->kill_after ns later, when it reaches message L->kill_at of
 * the stream (the sender as it starts that message, the receiver once it
 * has received that many).  The signal then lands at whatever instruction
 * the process is at.  A kill from the harness at a random time often came
 * too late on a busy machine (a harness descheduled for a few ms finds
 * the stream finished); the timer is armed by the victim itself at a
 * random point of its own progress and fires on time whoever runs. */
static void arm_kill(void)
{
	timer_t tm;
	struct sigevent ev;
	memset(&ev, 0, sizeof(ev));
	ev.sigev_notify = SIGEV_SIGNAL;
	ev.sigev_signo = SIGKILL;
	int64_t ns = atomic_load(&L->kill_after);
	struct itimerspec its = { .it_value = { 0, ns > 0 ? ns : 1 } };
	if (timer_create(CLOCK_MONOTONIC, &ev, &tm) ||
	    timer_settime(tm, 0, &its, NULL))
		kill(getpid(), SIGKILL); /* no timer: die here instead */
}

/* Sender @prod: @n messages on @w, then close @w for good.  @other is the
 * receiving end, used once first (see the file's head) unless this is a
 * replacement.  Exit status 0, 3 on a call that timed out, 4 on another
 * failure. */
static int pipe_sender(mproc_conn *w, mproc_conn *other, uint32_t prod,
		       uint64_t n, bool replacement)
{
	static unsigned char buf[PIPE_MSG_MAX];
	if (mproc_conn_set_timeout(w, CALL_TIMEOUT))
		return 4;
	if (!replacement) {
		wait_stage(1);
		if (mproc_conn_poll(other, 0) < 0)
			return 4;
		atomic_store(&L->stage, 2);
	}
	for (uint64_t seq = 0; seq < n; seq++) {
		if (!replacement && atomic_load(&L->victim) == 0 &&
		    (int64_t)seq == atomic_load(&L->kill_at))
			arm_kill();
		size_t len = make_pipe_msg(buf, prod, seq);
		atomic_store(&L->attempted[prod], seq + 1);
		atomic_store(&L->doing[0], len > PIPE_SMALL ? DO_STREAM : DO_SEND);
		ssize_t r = mproc_conn_send_bytes(w, buf, len);
		atomic_store(&L->doing[0], DO_IDLE);
		if (r == -EBADF && seq == 0 && replacement &&
		    atomic_load(&L->sender_closing))
			return 0; /* the dead sender had closed the end */
		if (r < 0)
			return failed(0, r);
		if ((size_t)r != len)
			return 4;
		atomic_store(&L->committed[prod][seq], 1);
	}
	atomic_store(&L->sender_closing, 1);
	int rc = mproc_conn_close(w);
	return rc ? failed(0, rc) : 0;
}

/* Record message (@buf, @len) received by a pipe receiver: the greeting,
 * or a message for the ledger (as count_received, checking it once) and
 * the order check. */
static void pipe_count(const unsigned char *buf, size_t len)
{
	atomic_fetch_add(&L->checked, 1);
	if (len == GREETING_LEN && !memcmp(buf, GREETING, len)) {
		/* At most once, before any data message (the receiver sent
		 * it before the sender started). */
		if (atomic_fetch_add(&L->greeted, 1) != 0 ||
		    atomic_load(&L->order_prod) != -1)
			atomic_fetch_add(&L->corrupted, 1);
		return;
	}
	struct msg_hdr h;
	if (!msg_valid(buf, len, &h)) {
		atomic_fetch_add(&L->corrupted, 1);
		return;
	}
	int64_t op = atomic_load(&L->order_prod);
	int64_t os = atomic_load(&L->order_seq);
	bool behind = (int64_t)h.producer < op ||
		      ((int64_t)h.producer == op && (int64_t)h.seq <= os);
	/* A message received twice is a duplicate (the ledger counts it);
	 * one received once but late is out of order. */
	if (atomic_fetch_add(&L->received[h.producer][h.seq], 1) == 0 &&
	    behind) {
		fprintf(stderr, "torture: pipe: message %u/%llu after "
			"%lld/%lld\n", h.producer, (unsigned long long)h.seq,
			(long long)op, (long long)os);
		atomic_fetch_add(&L->corrupted, 1);
	}
	atomic_store(&L->order_prod, h.producer);
	atomic_store(&L->order_seq, (int64_t)h.seq);
}

/* Receiver @cons: receive from @r into its buffer in shared memory until
 * the end of the stream, then record its dropped count.  @other is the
 * sending end, used once first unless this is a replacement: on a one-way
 * pipe by sending the greeting, on a duplex one by a poll. */
static int pipe_receiver(mproc_conn *r, mproc_conn *other, bool duplex,
			 uint32_t cons, bool replacement, uint64_t seed)
{
	uint64_t rng = seed | 1;
	int64_t got = 0;
	unsigned char *in = L->pipe_inhand[cons];
	if (mproc_conn_set_timeout(r, CALL_TIMEOUT) ||
	    mproc_conn_set_busy_poll(r, rng_next(&rng) % 4 == 0))
		return 4;
	if (!replacement) {
		if (duplex ? mproc_conn_poll(other, 0) < 0
			   : mproc_conn_send_bytes(other, GREETING,
						   GREETING_LEN) !=
				     (ssize_t)GREETING_LEN)
			return 4;
		atomic_store(&L->stage, 1);
		wait_stage(2);
	}
	for (;;) {
		atomic_store(&L->doing[1], DO_RECV);
		/* Now and then look first: poll and next_size skip what no
		 * receive delivers, so they run under the kills too. */
		unsigned how = (unsigned)(rng_next(&rng) % 4);
		ssize_t n = 0;
		if (how == 1)
			n = mproc_conn_poll(r, CALL_TIMEOUT) == 1 ? 0 : -ETIMEDOUT;
		else if (how == 2)
			n = mproc_conn_next_size(r, CALL_TIMEOUT);
		if (n >= 0 || n == -MPROC_EEOF)
			n = mproc_conn_recv_bytes_into(r, in, PIPE_MSG_MAX);
		atomic_store(&L->doing[1], DO_IDLE);
		if (n == -MPROC_EEOF) {
			ssize_t d = mproc_conn_dropped(r);
			if (d < 0)
				return 4;
			atomic_store(&L->dropped[cons], d);
			return 0;
		}
		if (n < 0)
			return failed(1, n);
		pipe_count(in, (size_t)n);
		if (!replacement && atomic_load(&L->victim) == 1 &&
		    ++got == atomic_load(&L->kill_at))
			arm_kill();
	}
}

/* True once child @pid has ended (it stays to be reaped). */
static bool ended(pid_t pid)
{
	siginfo_t si;
	memset(&si, 0, sizeof(si));
	return waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) < 0 ||
	       si.si_pid != 0;
}

/* Start pipe role @ro: a sender on end @s, or a receiver on end @rc. */
static pid_t start_pipe_role(mproc_conn *s, mproc_conn *rc, bool duplex,
			     struct role *ro, uint64_t n, bool replacement,
			     uint64_t seed)
{
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		int st = ro->producer
				 ? pipe_sender(s, rc, ro->id, n, replacement)
				 : pipe_receiver(rc, s, duplex, ro->id,
						 replacement, seed);
		_exit(st);
	}
	ro->pid = pid;
	ro->done = false;
	return pid;
}

/* One pipe trial; adds to @t. */
static void pipe_trial(uint64_t *rng, struct totals *t)
{
	memset(L, 0, offsetof(struct ledger, task_pid));
	atomic_store(&L->order_prod, -1);
	atomic_store(&L->order_seq, -1);
	bool duplex = rng_next(rng) % 2;
	struct mproc_pipe_attr a;
	mproc_pipe_attr_init(&a);
	a.capacity = rng_next(rng) % 2 ? 4096 : 16384;
	if (rng_next(rng) % 4 == 0)
		a.initial_index = UINT64_MAX - 4096 * 8;
	mproc_conn *ea, *eb;
	if (mproc_pipe(duplex, &a, &ea, &eb)) {
		fprintf(stderr, "torture: pipe create failed\n");
		exit(2);
	}
	/* One-way: b sends, a receives.  Duplex: either way. */
	bool b_sends = !duplex || rng_next(rng) % 2;
	mproc_conn *s = b_sends ? eb : ea, *rc = b_sends ? ea : eb;
	uint64_t per = 16 + rng_next(rng) % 64;
	struct role roles[4];
	roles[0] = (struct role){ .producer = false, .id = 0 };
	roles[1] = (struct role){ .producer = true, .id = 0 };
	int n = 2;
	atomic_store(&L->victim, (int)(rng_next(rng) % 2));
	atomic_store(&L->kill_at, (int64_t)(rng_next(rng) % (per - per / 4)));
	atomic_store(&L->kill_after, (int64_t)(rng_next(rng) % 50000));
	/* The receiver greets first, then the sender looks at the receiving
	 * end (stage 1 -> 2): one at a time on each ring. */
	start_pipe_role(s, rc, duplex, &roles[0], per, false, rng_next(rng));
	start_pipe_role(s, rc, duplex, &roles[1], per, false, rng_next(rng));
	int64_t deadline = now_ns() + TRIAL_TIMEOUT;
	while (atomic_load(&L->stage) < 2 && now_ns() < deadline)
		sleep_ns(20 * 1000);

	/* The victim kills itself at a random point (arm_kill); then a
	 * replacement takes its end over. */
	struct role *victim = &roles[atomic_load(&L->victim) == 0 ? 1 : 0];
	while (!ended(victim->pid) && now_ns() < deadline)
		sleep_ns(50 * 1000);
	int st;
	if (waitpid(victim->pid, &st, WNOHANG) == victim->pid) {
		victim->done = true;
		victim->status = st;
		if (WIFSIGNALED(st)) {
			t->kills++;
			t->pipe_kills[atomic_load(
				&L->doing[victim->producer ? 0 : 1]) & 3]++;
			struct role *rep = &roles[n++];
			*rep = (struct role){ .producer = victim->producer,
					      .id = 1 };
			start_pipe_role(s, rc, duplex, rep, per / 2, true,
					rng_next(rng));
		}
	}

	bool ok = reap(roles, n, false, deadline);
	uint64_t hangs = t->hangs;
	judge_roles(roles, n, victim, ok, "pipe", t);
	if (t->hangs != hangs && victim->producer && victim->done &&
	    WIFSIGNALED(victim->status) && atomic_load(&L->sender_closing))
		fprintf(stderr, "torture: pipe trial %llu: the sender was "
			"killed inside or after mproc_conn_close\n",
			(unsigned long long)t->trials);
	bool receiver_died = !victim->producer && victim->done &&
			     WIFSIGNALED(victim->status);

	/* The dead receiver's buffer: a message it had received whole and
	 * not counted yet (see Accounting). */
	if (receiver_died)
		count_inhand(L->pipe_inhand[victim->id], PIPE_MSG_MAX);
	uint64_t missing, dup;
	tally(2, &missing, &dup);
	/* Drops: the replacement's skips of a message the dead receiver had
	 * started (at most one); no receiver may drop anything otherwise. */
	uint64_t dropped = 0;
	for (int c = 0; c < 2; c++)
		dropped += (uint64_t)atomic_load(&L->dropped[c]);
	uint64_t allowed = receiver_died ? 1 : 0;
	if (dropped > allowed) {
		fprintf(stderr, "torture: pipe trial %llu: %llu dropped with "
			"%llu receiver deaths\n", (unsigned long long)t->trials,
			(unsigned long long)dropped,
			(unsigned long long)allowed);
		t->corrupted++;
		dropped = allowed;
	}
	t->pipe_dropped += dropped;
	uint64_t lost = missing > dropped ? missing - dropped : 0;
	if (lost || dup || atomic_load(&L->corrupted))
		fprintf(stderr, "torture: pipe trial %llu: lost %llu, "
			"duplicated %llu, corrupted %llu (victim: %s, %s, "
			"capacity %zu)\n", (unsigned long long)t->trials,
			(unsigned long long)lost, (unsigned long long)dup,
			(unsigned long long)atomic_load(&L->corrupted),
			victim->producer ? "sender" : "receiver",
			duplex ? "duplex" : "one-way", a.capacity);
	t->lost += lost;
	t->duplicated += dup;
	t->corrupted += atomic_load(&L->corrupted);
	t->checked += atomic_load(&L->checked);
	t->trials++;
	mproc_conn_free(ea);
	mproc_conn_free(eb);
}

/* ------------------------------------------------------------------ pool */

static int task_value(mproc_task *t, const void *arg, size_t len)
{
	uint32_t i;
	if (len != sizeof(i))
		return -EINVAL;
	memcpy(&i, arg, sizeof(i));
	atomic_store(&L->task_pid[i], (int)getpid());
	uint64_t v = (uint64_t)i * 1000003u + 17;
	sleep_ns((int64_t)(v % 7) * 100 * 1000);
	return mproc_task_return(t, &v, sizeof(v));
}

static int task_victim(mproc_task *t, const void *arg, size_t len)
{
	(void)t;
	(void)arg;
	(void)len;
	atomic_store(&L->task_pid[POOL_TASKS], (int)getpid());
	for (;;)
		pause(); /* until the harness kills this worker */
	return 0;
}

static void pool_trial(mproc_pool *pool, uint64_t *rng, struct totals *t)
{
	for (int i = 0; i <= POOL_TASKS; i++)
		atomic_store(&L->task_pid[i], 0);
	mproc_async *victim, *a[POOL_TASKS];
	/* The victim goes in at a random place among the others. */
	int at = (int)(rng_next(rng) % (POOL_TASKS + 1));
	for (int i = 0; i <= POOL_TASKS; i++) {
		if (i == at &&
		    mproc_pool_apply_async(pool, task_victim, NULL, 0, NULL,
					   NULL, NULL, &victim))
			goto broken;
		if (i < POOL_TASKS) {
			uint32_t x = (uint32_t)i;
			if (mproc_pool_apply_async(pool, task_value, &x,
						   sizeof(x), NULL, NULL,
						   NULL, &a[i]))
				goto broken;
		}
	}
	int64_t deadline = now_ns() + TRIAL_TIMEOUT;
	int pid;
	while ((pid = atomic_load(&L->task_pid[POOL_TASKS])) == 0) {
		if (now_ns() > deadline) {
			t->hangs++;
			goto broken;
		}
		sleep_ns(100 * 1000);
	}
	sleep_ns((int64_t)(rng_next(rng) % 500) * 1000);
	if (kill(pid, SIGKILL) == 0)
		t->kills++;
	int rc = mproc_async_get(victim, TRIAL_TIMEOUT, NULL, NULL);
	t->checked++;
	if (rc == -ETIMEDOUT)
		t->hangs++;
	else if (rc != -MPROC_EWORKERLOST) {
		fprintf(stderr, "torture: pool: the killed task gave %s\n",
			mproc_strerror(rc));
		t->corrupted++;
	}
	mproc_async_free(victim);
	for (int i = 0; i < POOL_TASKS; i++) {
		const void *data;
		size_t len;
		rc = mproc_async_get(a[i], TRIAL_TIMEOUT, &data, &len);
		t->checked++;
		uint64_t v, want = (uint64_t)i * 1000003u + 17;
		if (rc == -ETIMEDOUT) {
			t->hangs++;
		} else if (rc) {
			fprintf(stderr, "torture: pool: task %d: %s\n", i,
				mproc_strerror(rc));
			t->lost++;
		} else if (len != sizeof(v) || (memcpy(&v, data, 8), v != want)) {
			t->corrupted++;
		}
		mproc_async_free(a[i]);
	}
	t->trials++;
	return;
broken:
	fprintf(stderr, "torture: pool trial could not run\n");
	exit(2);
}

/* ------------------------------------------------------------------ main */

/* One row per subject. */
struct subject {
	const char *name;
	unsigned share; /* per mille of the trials */
};

static const struct subject subjects[] = {
	{ "spsc", 330 },
	{ "mpmc", 370 },
	{ "pipe", 200 },
	{ "pool", 100 },
};
#define NSUBJECTS (sizeof(subjects) / sizeof(subjects[0]))

int main(int argc, char **argv)
{
	mproc_main(argc, argv);
	uint64_t trials = 1000, seed = (uint64_t)now_ns();
	const char *only = NULL;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--trials") && i + 1 < argc)
			trials = strtoull(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--seed") && i + 1 < argc)
			seed = strtoull(argv[++i], NULL, 0);
		else if (!strcmp(argv[i], "--only") && i + 1 < argc)
			only = argv[++i];
		else {
			fprintf(stderr, "usage: %s [--trials N] [--seed S] "
				"[--only spsc|mpmc|pipe|pool]\n", argv[0]);
			return 2;
		}
	}
	fprintf(stderr, "torture: seed %llu\n", (unsigned long long)seed);
	L = mmap(NULL, sizeof(*L), PROT_READ | PROT_WRITE,
		 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (L == MAP_FAILED)
		return 2;
	memset(L, 0, sizeof(*L));

	struct totals t = {0};
	uint64_t rng = seed | 1;
	unsigned total_share = 0;
	for (size_t s = 0; s < NSUBJECTS; s++)
		if (!only || !strcmp(only, subjects[s].name))
			total_share += subjects[s].share;
	if (!total_share)
		return 2;
	for (size_t s = 0; s < NSUBJECTS; s++) {
		const struct subject *sub = &subjects[s];
		if (only && strcmp(only, sub->name))
			continue;
		uint64_t n = trials * sub->share / total_share;
		if (!strcmp(sub->name, "pool")) {
			struct mproc_pool_attr pa;
			mproc_pool_attr_init(&pa);
			pa.processes = 2;
			mproc_pool *pool;
			if (mproc_pool_create(&pa, &pool)) {
				fprintf(stderr, "torture: pool create failed\n");
				return 2;
			}
			for (uint64_t i = 0; i < n; i++)
				pool_trial(pool, &rng, &t);
			mproc_pool_close(pool);
			mproc_pool_join(pool, TRIAL_TIMEOUT);
			mproc_pool_destroy(pool);
		} else if (!strcmp(sub->name, "pipe")) {
			for (uint64_t i = 0; i < n; i++)
				pipe_trial(&rng, &t);
		} else {
			for (uint64_t i = 0; i < n; i++)
				queue_trial(!strcmp(sub->name, "spsc"), &rng, &t);
		}
	}
	if (t.pipe_kills[DO_STREAM] + t.pipe_kills[DO_SEND] +
	    t.pipe_kills[DO_RECV] + t.pipe_kills[DO_IDLE])
		fprintf(stderr, "torture: pipe kills: %llu inside a streamed "
			"send, %llu inside a one-record send, %llu inside a "
			"receive, %llu between calls; %llu cut messages "
			"dropped by replacement receivers\n",
			(unsigned long long)t.pipe_kills[DO_STREAM],
			(unsigned long long)t.pipe_kills[DO_SEND],
			(unsigned long long)t.pipe_kills[DO_RECV],
			(unsigned long long)t.pipe_kills[DO_IDLE],
			(unsigned long long)t.pipe_dropped);
	printf("torture: trials %llu, kills %llu, messages checked %llu, "
	       "lost %llu, duplicated %llu, corrupted %llu, hangs %llu\n",
	       (unsigned long long)t.trials, (unsigned long long)t.kills,
	       (unsigned long long)t.checked, (unsigned long long)t.lost,
	       (unsigned long long)t.duplicated,
	       (unsigned long long)t.corrupted, (unsigned long long)t.hangs);
	return t.lost || t.duplicated || t.corrupted || t.hangs ? 1 : 0;
}
