/*
 * Helpers shared by the pipe test programs: deterministic message
 * contents that a receiver can check on its own (xorshift from a seed,
 * FNV-1a checksum), pipe creation that asserts, and child status.
 */
#ifndef MPROC_TESTS_PIPE_TEST_H
#define MPROC_TESTS_PIPE_TEST_H

#include <criterion/criterion.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include "mproc/pipe.h"

/* xorshift64*: both processes derive sizes and contents from a seed. */
static inline uint64_t rnd(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * UINT64_C(2685821657736338717);
}

static inline void fill(unsigned char *p, size_t n, uint64_t seed)
{
	uint64_t s = seed | 1;
	size_t i = 0;
	for (; i + 8 <= n; i += 8) {
		uint64_t v = rnd(&s);
		memcpy(p + i, &v, 8);
	}
	if (i < n) {
		uint64_t v = rnd(&s);
		memcpy(p + i, &v, n - i);
	}
}

/* FNV-1a, 64-bit. */
static inline uint64_t checksum(const unsigned char *p, size_t n)
{
	uint64_t h = UINT64_C(0xcbf29ce484222325);
	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * UINT64_C(0x100000001b3);
	return h;
}

static inline void make(mproc_conn **a, mproc_conn **b, bool duplex,
			size_t cap)
{
	struct mproc_pipe_attr attr;
	mproc_pipe_attr_init(&attr);
	attr.capacity = cap;
	int rc = mproc_pipe(duplex, &attr, a, b);
	cr_assert_eq(rc, 0, "mproc_pipe: %s", mproc_strerror(rc));
}

/* A send in a thread (pthread_create(&t, NULL, big_send_thread, &s)):
 * for messages longer than the ring, which need a receiver meanwhile. */
struct big_send {
	mproc_conn *c;
	const unsigned char *buf;
	size_t len;
	ssize_t rc;
};

static inline void *big_send_thread(void *arg)
{
	struct big_send *s = arg;
	s->rc = mproc_conn_send_bytes(s->c, s->buf, s->len);
	return NULL;
}

/* End a of a one-way pipe exported, and its segment mapped through the
 * token's descriptor, the way a hostile holder of the token reaches it. */
struct exported {
	char tok[MPROC_CONN_TOKEN_MAX];
	int efd, sfd; /* the eventfd and the segment in the token */
	size_t size;
	unsigned char *base; /* the mapping, from the segment header on */
};

static inline void export_and_map(mproc_conn *a, struct exported *e)
{
	cr_assert_gt(mproc_conn_export(a, e->tok, sizeof(e->tok)), 0);
	int xfd;
	cr_assert_eq(sscanf(e->tok, "mproc-conn:0:%d:%d:mproc-shm:%d:%zu",
			    &e->efd, &xfd, &e->sfd, &e->size), 4);
	e->base = mmap(NULL, e->size, PROT_READ | PROT_WRITE, MAP_SHARED,
		       e->sfd, 0);
	cr_assert_neq(e->base, MAP_FAILED);
}

/* Exit status of @pid, or 128 + the signal that killed it. */
static inline int wait_child(pid_t pid)
{
	int st;
	if (waitpid(pid, &st, 0) != pid)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

#endif /* MPROC_TESTS_PIPE_TEST_H */
