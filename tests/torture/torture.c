/*
 * Kill torture (suite `stress`; by hand: torture --trials N [--seed S]
 * [--only spsc|mpmc|pool]): SPEC section 5 and issue 10.  Each trial
 * starts the participants of one subject in their own processes, SIGKILLs
 * one of them at random after a random delay (so at any instruction: in
 * put, put_many, reserve/commit, get, get_many, peek/release, a wait, a
 * pool task), starts a replacement in its role, and then checks that
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
 * Subjects are rows of one table (struct subject).  The pipe engineer's
 * pipe participant (streamed messages included) is to be added as one
 * more row there; nothing else in this file needs to change for it.
 */
#include <errno.h>
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
	/* Pool trials: each task's worker pid. */
	_Atomic int task_pid[POOL_TASKS + 1];
};

static struct ledger *L;

struct totals {
	uint64_t trials, kills, checked, lost, duplicated, corrupted, hangs;
};

/* ----------------------------------------------------------------- util */

static uint64_t rng_next(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static uint64_t checksum(const unsigned char *p, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	for (size_t i = 0; i < n; i++)
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
	for (size_t i = 0; i < len - sizeof(h); i++)
		pl[i] = (unsigned char)(rng_next(&r) >> 24);
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
				return r == -ETIMEDOUT ? 3 : 4;
			for (ssize_t i = 0; i < r; i++)
				atomic_store(&L->committed[prod][seq + i], 1);
			seq += (uint64_t)r;
		} else if (how == 2) {
			void *p;
			size_t len = make_msg(bufs[0], prod, seq, max);
			atomic_store(&L->attempted[prod], seq + 1);
			int rc = mproc_queue_reserve(q, len, &p, CALL_TIMEOUT);
			if (rc)
				return rc == -ETIMEDOUT ? 3 : 4;
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
				return r == -ETIMEDOUT ? 3 : 4;
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
			return r == -ETIMEDOUT ? 3 : 4;
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
	if (!ok) {
		t->hangs++;
		for (int i = 0; i < n; i++)
			if (!roles[i].done) {
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
		if (WIFEXITED(st) && WEXITSTATUS(st) == 3) {
			t->hangs++;
		} else if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
			fprintf(stderr, "torture: %s %u ended with status 0x%x\n",
				roles[i].producer ? "producer" : "consumer",
				roles[i].id, st);
			t->corrupted++;
		}
	}

	/* The killed consumer's buffer: messages it received and did not
	 * count yet (see Accounting). */
	if (!victim->producer) {
		for (int b = 0; b < BATCH; b++) {
			unsigned char *m = L->inhand[victim->id][b];
			struct msg_hdr h;
			memcpy(&h, m, sizeof(h));
			if (h.len <= MSG_MAX && msg_valid(m, h.len, &h) &&
			    atomic_load(&L->received[h.producer][h.seq]) == 0)
				atomic_store(&L->received[h.producer][h.seq], 1);
		}
	}
	uint64_t lost = 0, dup = 0;
	for (uint32_t p = 0; p < next_prod; p++) {
		uint64_t att = atomic_load(&L->attempted[p]);
		for (uint64_t s = 0; s < att && s < MAX_SEQ; s++) {
			uint32_t got = atomic_load(&L->received[p][s]);
			if (atomic_load(&L->committed[p][s]) && got == 0)
				lost++;
			if (got > 1)
				dup += got - 1;
		}
	}
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

/* One row per subject; a pipe subject goes here too. */
struct subject {
	const char *name;
	unsigned share; /* per mille of the trials */
};

static const struct subject subjects[] = {
	{ "spsc", 400 },
	{ "mpmc", 450 },
	{ "pool", 150 },
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
				"[--only spsc|mpmc|pool]\n", argv[0]);
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
		} else {
			for (uint64_t i = 0; i < n; i++)
				queue_trial(!strcmp(sub->name, "spsc"), &rng, &t);
		}
	}
	printf("torture: trials %llu, kills %llu, messages checked %llu, "
	       "lost %llu, duplicated %llu, corrupted %llu, hangs %llu\n",
	       (unsigned long long)t.trials, (unsigned long long)t.kills,
	       (unsigned long long)t.checked, (unsigned long long)t.lost,
	       (unsigned long long)t.duplicated,
	       (unsigned long long)t.corrupted, (unsigned long long)t.hangs);
	return t.lost || t.duplicated || t.corrupted || t.hangs ? 1 : 0;
}
