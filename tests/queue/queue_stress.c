/*
 * Queue stress tests (suite `stress`): producers and consumers in separate
 * processes, every message carrying its producer id, sequence number and a
 * checksum of its payload.  Consumers check the checksum (no corruption),
 * per-producer order (FIFO per producer, as every consumer sees it) and
 * mark each (producer, seq) in a shared bitmap with an atomic OR (no
 * duplicate); the parent finally checks that every bit is set (no loss).
 * Indices start near 2^32 or 2^64 so the free-running counters wrap.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mproc/queue.h"
#include "common/clock.h"

struct msg_hdr {
	uint32_t producer;
	uint32_t len;      /* total message length */
	uint64_t seq;
	uint64_t checksum; /* of the payload after this header */
};

struct shared {
	_Atomic uint64_t received;
	_Atomic uint64_t errors;
	_Atomic uint64_t bits[]; /* producer-major bitmap of seen messages */
};

struct cfg {
	unsigned flags;
	size_t capacity, max_msg;
	int producers, consumers;
	uint64_t per_producer;
	uint64_t initial_index;
	size_t min_len, max_len; /* message sizes (>= sizeof(struct msg_hdr)) */
	unsigned gap_us;         /* producers pause up to this between puts */
	int batch;               /* use put_many/get_many with this many */
};

/* In the sleeper tests every blocking call should finish within
 * milliseconds: the peer is never stalled for long.  The meson test stretches
 * the futex sleep slice (MPROC_TEST_WAIT_SLICE_NS), so a lost wake-up
 * leaves the sleeper asleep until its call's deadline; a call that takes
 * longer than this is reported as a lost wake-up. */
#define CALL_TIMEOUT (5 * MPROC_SEC)
#define LOST_WAKEUP_NS (4 * MPROC_SEC)

static uint64_t mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ULL;
	return x ^ (x >> 33);
}

static uint64_t checksum(const unsigned char *p, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 0x100000001b3ULL;
	return h;
}

static void pin(int cpu)
{
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(cpu % (int)sysconf(_SC_NPROCESSORS_ONLN), &set);
	sched_setaffinity(0, sizeof(set), &set); /* best effort */
}

static size_t fill(unsigned char *buf, const struct cfg *c, uint32_t prod,
		   uint64_t seq)
{
	uint64_t r = mix(seq * 31 + prod);
	size_t span = c->max_len - c->min_len + 1;
	size_t len = c->min_len + (size_t)(r % span);
	struct msg_hdr h = { prod, (uint32_t)len, seq, 0 };
	unsigned char *pl = buf + sizeof(h);
	size_t pn = len - sizeof(h);
	for (size_t i = 0; i < pn; i++)
		pl[i] = (unsigned char)(mix(r + i / 8) >> (8 * (i % 8)));
	h.checksum = checksum(pl, pn);
	memcpy(buf, &h, sizeof(h));
	return len;
}

static void producer(mproc_queue *q, const struct cfg *c, uint32_t id)
{
	pin((int)id);
	unsigned char *buf = malloc(c->max_len);
	uint64_t rnd = id + 1;
	int batch = c->batch > 0 ? c->batch : 1;
	unsigned char **bufs = calloc((size_t)batch, sizeof(*bufs));
	struct iovec *iov = calloc((size_t)batch, sizeof(*iov));
	for (int i = 0; i < batch; i++)
		bufs[i] = malloc(c->max_len);
	for (uint64_t s = 0; s < c->per_producer;) {
		if (c->batch > 0) {
			int n = 0;
			for (; n < batch && s + (uint64_t)n < c->per_producer; n++) {
				iov[n].iov_base = bufs[n];
				iov[n].iov_len = fill(bufs[n], c, id, s + (uint64_t)n);
			}
			ssize_t k = mproc_queue_put_many(q, iov, (size_t)n, 30 * MPROC_SEC);
			if (k <= 0)
				_exit(10);
			s += (uint64_t)k;
		} else {
			size_t len = fill(buf, c, id, s);
			int64_t t0 = mproc__now_ns();
			if (mproc_queue_put(q, buf, len, c->gap_us ? CALL_TIMEOUT
							  : 30 * MPROC_SEC) != (ssize_t)len)
				_exit(11);
			if (c->gap_us && mproc__now_ns() - t0 > LOST_WAKEUP_NS) {
				fprintf(stderr, "producer %u: lost wake-up\n", id);
				_exit(12);
			}
			s++;
		}
		if (c->gap_us) {
			rnd = mix(rnd);
			usleep((useconds_t)(rnd % c->gap_us));
		}
	}
	_exit(0);
}

static int check(struct shared *sh, const struct cfg *c, const unsigned char *buf,
		 ssize_t n, uint64_t *last)
{
	struct msg_hdr h;
	if (n < (ssize_t)sizeof(h))
		return 1;
	memcpy(&h, buf, sizeof(h));
	if (h.producer >= (uint32_t)c->producers || h.len != (uint32_t)n ||
	    h.seq >= c->per_producer)
		return 2;
	if (checksum(buf + sizeof(h), (size_t)n - sizeof(h)) != h.checksum)
		return 3;
	if (last[h.producer] != UINT64_MAX && h.seq <= last[h.producer])
		return 4; /* out of order for this consumer */
	last[h.producer] = h.seq;
	uint64_t bit = h.producer * c->per_producer + h.seq;
	uint64_t m = 1ULL << (bit % 64);
	if (atomic_fetch_or(&sh->bits[bit / 64], m) & m)
		return 5; /* duplicate */
	atomic_fetch_add(&sh->received, 1);
	return 0;
}

static void consumer(mproc_queue *q, const struct cfg *c, struct shared *sh,
		     int id)
{
	pin(c->producers + id);
	uint64_t *last = malloc(sizeof(uint64_t) * (size_t)c->producers);
	for (int i = 0; i < c->producers; i++)
		last[i] = UINT64_MAX;
	int batch = c->batch > 0 ? c->batch : 1;
	struct iovec *iov = calloc((size_t)batch, sizeof(*iov));
	size_t *lens = calloc((size_t)batch, sizeof(*lens));
	for (int i = 0; i < batch; i++) {
		iov[i].iov_base = malloc(c->max_len);
		iov[i].iov_len = c->max_len;
	}
	for (;;) {
		ssize_t k;
		if (c->batch > 0) {
			k = mproc_queue_get_many(q, iov, lens, (size_t)batch, 30 * MPROC_SEC);
		} else {
			int64_t t0 = mproc__now_ns();
			k = mproc_queue_get(q, iov[0].iov_base, c->max_len,
					    c->gap_us ? CALL_TIMEOUT : 30 * MPROC_SEC);
			if (c->gap_us && mproc__now_ns() - t0 > LOST_WAKEUP_NS) {
				fprintf(stderr, "consumer %d: lost wake-up\n", id);
				atomic_fetch_add(&sh->errors, 1);
				_exit(19);
			}
			if (k >= 0) {
				lens[0] = (size_t)k;
				k = 1;
			}
		}
		if (k == -MPROC_EEOF)
			_exit(0);
		if (k <= 0) {
			fprintf(stderr, "consumer %d: %s\n", id, mproc_strerror((int)k));
			atomic_fetch_add(&sh->errors, 1);
			_exit(20);
		}
		for (ssize_t i = 0; i < k; i++) {
			int e = check(sh, c, iov[i].iov_base, (ssize_t)lens[i], last);
			if (e) {
				fprintf(stderr, "consumer %d: check %d failed\n", id, e);
				atomic_fetch_add(&sh->errors, 1);
				_exit(20 + e);
			}
		}
	}
}

static void run(const struct cfg *c)
{
	struct mproc_queue_attr a;
	mproc_queue_attr_init(&a);
	a.flags = c->flags;
	a.capacity = c->capacity;
	a.max_msg = c->max_msg;
	a.initial_index = c->initial_index;
	mproc_queue *q;
	cr_assert_eq(mproc_queue_create(&a, &q), 0);
	uint64_t total = c->per_producer * (uint64_t)c->producers;
	size_t words = (size_t)(total + 63) / 64;
	size_t shsize = sizeof(struct shared) + words * 8;
	struct shared *sh = mmap(NULL, shsize, PROT_READ | PROT_WRITE,
				 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	cr_assert_neq(sh, MAP_FAILED);
	pid_t pids[64];
	int np = 0;
	for (int i = 0; i < c->consumers; i++) {
		pid_t p = fork();
		if (p == 0)
			consumer(q, c, sh, i);
		pids[np++] = p;
	}
	for (int i = 0; i < c->producers; i++) {
		pid_t p = fork();
		if (p == 0)
			producer(q, c, (uint32_t)i);
		pids[np++] = p;
	}
	int failed = 0;
	/* Producers first: once all are done, close so consumers drain and
	 * see end-of-stream. */
	for (int i = c->consumers; i < np; i++) {
		int st;
		waitpid(pids[i], &st, 0);
		if (!WIFEXITED(st) || WEXITSTATUS(st))
			failed++;
	}
	mproc_queue_close(q);
	for (int i = 0; i < c->consumers; i++) {
		int st;
		waitpid(pids[i], &st, 0);
		if (!WIFEXITED(st) || WEXITSTATUS(st)) {
			fprintf(stderr, "consumer exit status %d\n", st);
			failed++;
		}
	}
	cr_assert_eq(failed, 0, "%d processes failed", failed);
	cr_assert_eq(atomic_load(&sh->errors), 0);
	cr_assert_eq(atomic_load(&sh->received), total, "received %llu of %llu",
		     (unsigned long long)atomic_load(&sh->received),
		     (unsigned long long)total);
	for (uint64_t b = 0; b < total; b++)
		if (!(atomic_load(&sh->bits[b / 64]) & (1ULL << (b % 64))))
			cr_assert_fail("message %llu lost", (unsigned long long)b);
	munmap(sh, shsize);
	mproc_queue_free(q);
}

#define HDR sizeof(struct msg_hdr)

/* 10^7 messages in all across the tests below. */
Test(queue_stress, spsc_1x1_wrap64, .timeout = 300)
{
	struct cfg c = { .flags = MPROC_QUEUE_SPSC, .capacity = 1 << 16,
			 .max_msg = 256, .producers = 1, .consumers = 1,
			 .per_producer = 3300000,
			 .initial_index = UINT64_MAX - (1 << 20),
			 .min_len = HDR, .max_len = 96 };
	run(&c);
}

Test(queue_stress, spsc_1x1_batch_wrap32, .timeout = 300)
{
	struct cfg c = { .flags = MPROC_QUEUE_SPSC, .capacity = 1 << 16,
			 .max_msg = 256, .producers = 1, .consumers = 1,
			 .per_producer = 2000000,
			 .initial_index = (1ULL << 32) - (1 << 18),
			 .min_len = HDR, .max_len = 128, .batch = 16 };
	run(&c);
}

Test(queue_stress, spsc_mixed_sizes_padding, .timeout = 300)
{
	/* Every size from the header up to max_msg, through a ring only a
	 * few records long, so pad records at the wrap are constant. */
	struct cfg c = { .flags = MPROC_QUEUE_SPSC, .capacity = 8192,
			 .max_msg = 4080, .producers = 1, .consumers = 1,
			 .per_producer = 300000,
			 .initial_index = UINT64_MAX - 100000,
			 .min_len = HDR, .max_len = 4080 };
	run(&c);
}

Test(queue_stress, mpmc_1x1_wrap64, .timeout = 300)
{
	struct cfg c = { .max_msg = 128, .capacity = 1 << 16, .producers = 1,
			 .consumers = 1, .per_producer = 1500000,
			 .initial_index = UINT64_MAX - 5000,
			 .min_len = HDR, .max_len = 128 };
	run(&c);
}

Test(queue_stress, mpmc_2x1, .timeout = 300)
{
	struct cfg c = { .max_msg = 128, .capacity = 1 << 16, .producers = 2,
			 .consumers = 1, .per_producer = 500000,
			 .initial_index = (1ULL << 32) - 3000,
			 .min_len = HDR, .max_len = 128 };
	run(&c);
}

Test(queue_stress, mpmc_1x2, .timeout = 300)
{
	struct cfg c = { .max_msg = 128, .capacity = 1 << 16, .producers = 1,
			 .consumers = 2, .per_producer = 1000000,
			 .min_len = HDR, .max_len = 128 };
	run(&c);
}

Test(queue_stress, mpmc_3x3_batch, .timeout = 300)
{
	struct cfg c = { .max_msg = 200, .capacity = 1 << 14, .producers = 3,
			 .consumers = 3, .per_producer = 300000,
			 .initial_index = UINT64_MAX - 1000,
			 .min_len = HDR, .max_len = 200, .batch = 8 };
	run(&c);
}

/* Lost wake-ups: consumers keep going to sleep because producers pause at
 * random between messages; a call that sleeps past LOST_WAKEUP_NS is a
 * lost wake-up (see CALL_TIMEOUT). */
Test(queue_stress, sleepers_spsc, .timeout = 300)
{
	struct cfg c = { .flags = MPROC_QUEUE_SPSC, .capacity = 4096,
			 .max_msg = 64, .producers = 1, .consumers = 1,
			 .per_producer = 20000, .min_len = HDR, .max_len = 64,
			 .gap_us = 100 };
	run(&c);
}

Test(queue_stress, sleepers_mpmc_2x2, .timeout = 300)
{
	struct cfg c = { .capacity = 4096, .max_msg = 64, .producers = 2,
			 .consumers = 2, .per_producer = 10000, .min_len = HDR,
			 .max_len = 64, .gap_us = 100 };
	run(&c);
}

/* CPU time (user + system) of process @pid so far, in seconds. */
static double cpu_seconds(pid_t pid)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* Fields 14 and 15 (utime, stime) follow the ")" of the name. */
	char *p = strrchr(buf, ')');
	unsigned long ut = 0, st = 0;
	if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu",
			 &ut, &st) != 2)
		return -1;
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* A reader blocked on an empty queue must sleep, not spin: over two
 * seconds it may use only a small share of a core (the goal is under 1 %;
 * the bound here is loose so that a loaded machine cannot fail it, while a
 * reader that spins would use close to 100 %). */
static void idle_reader(unsigned flags)
{
	struct mproc_queue_attr a;
	mproc_queue_attr_init(&a);
	a.flags = flags;
	mproc_queue *q;
	cr_assert_eq(mproc_queue_create(&a, &q), 0);
	pid_t pid = fork();
	if (pid == 0) {
		char b[16];
		_exit(mproc_queue_get(q, b, sizeof(b), MPROC_FOREVER) == 2 ? 0 : 1);
	}
	usleep(200000); /* past the spin phase */
	double c0 = cpu_seconds(pid);
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	sleep(2);
	double c1 = cpu_seconds(pid);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double wall = (double)(t1.tv_sec - t0.tv_sec) +
		      (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	cr_assert_geq(c0, 0);
	double share = (c1 - c0) / wall;
	cr_log_info("idle blocked reader (%s): %.3f%% of a core",
		    flags ? "spsc" : "mpmc", 100 * share);
	cr_assert_lt(share, 0.10, "blocked reader used %.1f%% of a core",
		     100 * share);
	cr_assert_eq(mproc_queue_put(q, "ok", 2, MPROC_FOREVER), 2);
	int st;
	waitpid(pid, &st, 0);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	mproc_queue_free(q);
}

Test(queue_stress, idle_reader_sleeps_spsc, .timeout = 60)
{
	idle_reader(MPROC_QUEUE_SPSC);
}

Test(queue_stress, idle_reader_sleeps_mpmc, .timeout = 60)
{
	idle_reader(0);
}

/* A put into a full queue goes through as soon as one message is taken,
 * even when the consumer then stops: the producer's wait may spin for
 * more room (mpmc.c, SPACE_SLACK), never sleep for it.  A ring of many
 * slots, so that the MPMC slack applies.  Here, not in queue-unit: with
 * this suite's 120 s sleep slice a producer that slept for room it did
 * not need would miss the 5 s bound, where a 100 ms slice hides it. */
static void full_put_takes_one_slot(unsigned flags)
{
	struct mproc_queue_attr a;
	mproc_queue_attr_init(&a);
	a.flags = flags;
	a.capacity = 512 * 128;
	a.max_msg = 64;
	mproc_queue *q = NULL;
	cr_assert_eq(mproc_queue_create(&a, &q), 0);
	char buf[64] = { 0 };
	int n = 0;
	while (mproc_queue_put_nowait(q, buf, 64) == 64)
		n++;
	cr_assert_geq(n, 256, "only %d messages fit", n);
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		/* Take one message after the parent has started waiting,
		 * then nothing more. */
		struct timespec ts = { 0, 50 * 1000 * 1000 };
		nanosleep(&ts, NULL);
		_exit(mproc_queue_get_nowait(q, buf, sizeof(buf)) == 64 ? 0 : 1);
	}
	int64_t t0 = mproc__now_ns();
	cr_assert_eq(mproc_queue_put(q, buf, 64, 10 * MPROC_SEC), 64);
	cr_assert_lt(mproc__now_ns() - t0, 5 * MPROC_SEC);
	int st;
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	cr_assert_eq(mproc_queue_qsize(q), n);
	cr_assert_eq(mproc_queue_put_nowait(q, buf, 64), -EAGAIN);
	mproc_queue_free(q);
}
Test(queue_stress, full_put_takes_one_slot_spsc, .timeout = 30)
{
	full_put_takes_one_slot(MPROC_QUEUE_SPSC);
}
Test(queue_stress, full_put_takes_one_slot_mpmc, .timeout = 30)
{
	full_put_takes_one_slot(0);
}
