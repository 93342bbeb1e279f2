/*
 * Threads of one process sharing queue handles, checked without Criterion
 * so that it also runs under ThreadSanitizer (Criterion's runner cannot
 * start under TSan).  .ci/run builds it with -fsanitize=thread.
 *
 * Case 1, MPMC: two threads put and two get, all through one mproc_queue
 * pointer (the header allows it).  Every message must arrive exactly once
 * and in order per producer as each consumer sees it (regression: the
 * handle once kept the claimed slot position, so two threads could commit
 * the same slot and leave another uncommitted for ever).
 * Case 2, SPSC: one producer thread and one consumer thread on one handle,
 * with batches, through a small ring (many wraps and pad records).
 *
 * Prints "N passed, N failed" and exits non-zero on any failure.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mproc/queue.h"

#define MSGS 100000

struct arg {
	mproc_queue *q;
	int id;
	int batch;
	_Atomic uint8_t *seen; /* 2 * MSGS counters */
	int errors;
};

static void *producer(void *p)
{
	struct arg *a = p;
	for (uint64_t s = 0; s < MSGS;) {
		uint64_t m[8][2];
		struct iovec iov[8];
		int n = a->batch ? a->batch : 1;
		for (int i = 0; i < n; i++) {
			m[i][0] = (uint64_t)a->id;
			m[i][1] = s + (uint64_t)i;
			iov[i].iov_base = m[i];
			iov[i].iov_len = s + (uint64_t)i < MSGS ? sizeof(m[i]) : 0;
		}
		if (s + (uint64_t)n > MSGS)
			n = (int)(MSGS - s);
		ssize_t k = mproc_queue_put_many(a->q, iov, (size_t)n, 30 * MPROC_SEC);
		if (k <= 0) {
			a->errors++;
			return NULL;
		}
		s += (uint64_t)k;
	}
	return NULL;
}

static void *consumer(void *p)
{
	struct arg *a = p;
	uint64_t last[2] = { UINT64_MAX, UINT64_MAX };
	for (;;) {
		uint64_t m[2];
		ssize_t n = mproc_queue_get(a->q, m, sizeof(m), 30 * MPROC_SEC);
		if (n == -MPROC_EEOF)
			return NULL;
		if (n != sizeof(m) || m[0] > 1 || m[1] >= MSGS) {
			fprintf(stderr, "consumer: got %zd (%s)\n", n,
				n < 0 ? mproc_strerror((int)n) : "bad message");
			a->errors++;
			return NULL;
		}
		if (last[m[0]] != UINT64_MAX && m[1] <= last[m[0]])
			a->errors++;
		last[m[0]] = m[1];
		if (atomic_fetch_add(&a->seen[m[0] * MSGS + m[1]], 1) != 0)
			a->errors++;
	}
}

/* Run @np producers and @nc consumers on one handle; 0 when all is well. */
static int run(const char *name, unsigned flags, size_t capacity, int np,
	       int nc, int batch)
{
	struct mproc_queue_attr at;
	mproc_queue_attr_init(&at);
	at.flags = flags;
	at.capacity = capacity;
	at.max_msg = 16;
	mproc_queue *q;
	int rc = mproc_queue_create(&at, &q);
	if (rc) {
		fprintf(stderr, "%s: create: %s\n", name, mproc_strerror(rc));
		return 1;
	}
	_Atomic uint8_t *seen = calloc(2 * MSGS, sizeof(*seen));
	struct arg args[4];
	pthread_t th[4];
	for (int i = 0; i < np + nc; i++) {
		args[i] = (struct arg){ .q = q, .id = i < np ? i : 0,
					.batch = batch, .seen = seen };
		pthread_create(&th[i], NULL, i < np ? producer : consumer, &args[i]);
	}
	for (int i = 0; i < np; i++)
		pthread_join(th[i], NULL);
	mproc_queue_close(q);
	for (int i = np; i < np + nc; i++)
		pthread_join(th[i], NULL);
	int errors = 0;
	for (int i = 0; i < np + nc; i++)
		errors += args[i].errors;
	for (uint64_t i = 0; i < (uint64_t)np * MSGS; i++)
		if (atomic_load(&seen[i]) != 1)
			errors++;
	free(seen);
	mproc_queue_free(q);
	printf("%s: %s\n", name, errors ? "FAILED" : "ok");
	return errors != 0;
}

int main(void)
{
	int failed = 0, total = 0;
	total++, failed += run("mpmc 2x2 threads, one handle", 0, 64 * 32, 2, 2, 0);
	total++, failed += run("mpmc 2x2 threads, batches", 0, 64 * 32, 2, 2, 8);
	total++, failed += run("spsc 1x1 threads, batches", MPROC_QUEUE_SPSC,
			       256, 1, 1, 8);
	printf("%d passed, %d failed\n", total - failed, failed);
	return failed ? 1 : 0;
}
