/*
 * util.c - small helpers shared by every benchmark row: the CPU map and
 * pinning, the spin-loop pause, shared memory, the checked-message
 * format described in bench.h, medians and the PATH look-up.  The clock, the CPU relax hint and full
 * reads and writes are mproc's own (src/common), not copies here.  A
 * leaf: it calls no other file of the benchmark (notes live in
 * progress.c).
 */
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bench.h"
#include "common/compiler.h"
#include "harness.h"

/* ---- CPUs ---------------------------------------------------------- */

static int cpu_list[CPU_SETSIZE];
static int cpu_count = -1;
static bool pin_enabled = true;

static void cpus_init(void)
{
	if (cpu_count >= 0)
		return;
	cpu_set_t set;
	cpu_count = 0;
	if (sched_getaffinity(0, sizeof set, &set) == 0) {
		for (int i = 0; i < CPU_SETSIZE; i++)
			if (CPU_ISSET(i, &set))
				cpu_list[cpu_count++] = i;
	}
	if (cpu_count == 0) {
		/* Affinity unknown: behave as if one CPU, i.e. do not pin. */
		cpu_list[0] = -1;
		cpu_count = 1;
	}
}

void bench__cpus_setup(bool pin)
{
	cpus_init();
	pin_enabled = pin;
}

int bench_ncpus(void)
{
	cpus_init();
	return cpu_count;
}

int bench_pool_workers(void)
{
	int n = bench_ncpus();
	return n < 1 ? 1 : n > 8 ? 8 : n;
}

int bench_cpu_for(int is_consumer, int index)
{
	cpus_init();
	if (!pin_enabled || cpu_count < 2)
		return -1;
	int half = cpu_count / 2;
	if (is_consumer)
		return cpu_list[half + index % (cpu_count - half)];
	return cpu_list[index % half];
}

int bench_pin(int cpu)
{
	if (cpu < 0)
		return 0;
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return sched_setaffinity(0, sizeof set, &set) == 0 ? 0 : -errno;
}

void bench_pause(void)
{
	if (bench_cpu_for(0, 0) < 0) {
		/* The peer may be waiting for this very CPU. */
		sched_yield();
		return;
	}
	mproc__cpu_relax();
}

/* ---- shared memory ------------------------------------------------- */

void *bench_shared_alloc(size_t size)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	return p == MAP_FAILED ? NULL : p;
}

void bench_shared_free(void *p, size_t size)
{
	if (p)
		munmap(p, size);
}

/* ---- samples ------------------------------------------------------- */

void bench_sample_rate(struct bench_sample *s, uint64_t msgs, size_t msg_size,
		       int64_t elapsed_ns)
{
	if (elapsed_ns <= 0)
		elapsed_ns = 1;
	double sec = (double)elapsed_ns / 1e9;
	s->fig[BENCH_MSGS_PER_SEC] = (double)msgs / sec;
	s->fig[BENCH_BYTES_PER_SEC] = (double)msgs * (double)msg_size / sec;
}

/* ---- checked messages ---------------------------------------------- */

#define SEQ_BITS 48
#define SEQ_MASK ((UINT64_C(1) << SEQ_BITS) - 1)
#define SEQ_END SEQ_MASK /* the end marker's sequence number */

/* The tail word: a cheap bijective mix of the head word, so a message
 * whose head and tail come from different messages is caught. */
static uint64_t tail_of(uint64_t head)
{
	uint64_t x = head ^ UINT64_C(0x6d70726f632d626e);
	x *= UINT64_C(0x9e3779b97f4a7c15);
	return x ^ (x >> 29);
}

void bench_msg_init(void *buf, size_t size)
{
	unsigned char *p = buf;
	for (size_t i = 0; i < size; i++)
		p[i] = (unsigned char)(i * 31u + 7u);
}

static void stamp(void *buf, size_t size, uint64_t head)
{
	memcpy(buf, &head, sizeof head);
	if (size >= 16) {
		uint64_t t = tail_of(head);
		memcpy((char *)buf + size - 8, &t, sizeof t);
	}
}

void bench_msg_stamp(struct bench_worker *w, void *buf, size_t size)
{
	uint64_t seq = w->msgs;
	stamp(buf, size, (uint64_t)w->index << SEQ_BITS | seq);
	w->msgs++;
	w->seq_sum += seq;
}

void bench_msg_stamp_end(struct bench_worker *w, void *buf, size_t size)
{
	stamp(buf, size, (uint64_t)w->index << SEQ_BITS | SEQ_END);
}

int bench_msg_check(struct bench_worker *w, const void *buf, size_t size)
{
	uint64_t head;
	if (size < 8) {
		snprintf(w->res->note, sizeof w->res->note,
			 "message of %zu bytes is too short to check", size);
		return -EINVAL;
	}
	memcpy(&head, buf, sizeof head);
	if (size >= 16) {
		uint64_t t;
		memcpy(&t, (const char *)buf + size - 8, sizeof t);
		if (t != tail_of(head)) {
			snprintf(w->res->note, sizeof w->res->note,
				 "torn or corrupt message after %llu good ones "
				 "(head %#llx)",
				 (unsigned long long)w->msgs,
				 (unsigned long long)head);
			return -EBADMSG;
		}
	}
	unsigned prod = (unsigned)(head >> SEQ_BITS);
	uint64_t seq = head & SEQ_MASK;
	int nprod = w->c->producers > 0 ? w->c->producers : 1;
	if (prod >= (unsigned)nprod || prod >= BENCH_MAX_WORKERS) {
		snprintf(w->res->note, sizeof w->res->note,
			 "message from unknown producer %u", prod);
		return -EBADMSG;
	}
	if (seq == SEQ_END) {
		w->ends++;
		return BENCH_MSG_END;
	}
	/* A single consumer sees every message of a producer, in order; one
	 * of several consumers sees an increasing subsequence. */
	bool ok = w->c->consumers <= 1 ? seq == w->next_seq[prod]
				       : seq >= w->next_seq[prod];
	if (!ok) {
		snprintf(w->res->note, sizeof w->res->note,
			 "producer %u: got message %llu, expected %s%llu "
			 "(lost, duplicated or reordered)",
			 prod, (unsigned long long)seq,
			 w->c->consumers <= 1 ? "" : ">= ",
			 (unsigned long long)w->next_seq[prod]);
		return -EBADMSG;
	}
	w->next_seq[prod] = seq + 1;
	w->msgs++;
	w->seq_sum += seq;
	return 0;
}

/* ---- medians and PATH ------------------------------------------------ */

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

double bench__median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof *v, cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

bool bench__find_in_path(const char *name, char *out, size_t len)
{
	const char *path = getenv("PATH");
	if (!path || !*path)
		path = "/usr/local/bin:/usr/bin:/bin";
	while (*path) {
		const char *end = strchr(path, ':');
		size_t dl = end ? (size_t)(end - path) : strlen(path);
		if (dl > 0 && (size_t)snprintf(out, len, "%.*s/%s", (int)dl,
					       path, name) < len) {
			struct stat st;
			if (stat(out, &st) == 0 && S_ISREG(st.st_mode) &&
			    access(out, X_OK) == 0)
				return true;
		}
		path += dl;
		if (*path == ':')
			path++;
	}
	return false;
}
