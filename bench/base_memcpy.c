/*
 * base_memcpy.c - the single-core copy ceiling: one pinned process copies
 * msg_size bytes between two buffers of that size for the whole
 * repetition.  Any API that copies a message in and out cannot beat it;
 * a zero-copy API is measured against it.  msgs_per_sec counts copies.
 * An example of a team with producers only (pcs {1, 0}).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

static int copier(struct bench_worker *w, void *arg)
{
	(void)arg;
	size_t n = w->c->msg_size;
	unsigned char *src = aligned_alloc(64, (n + 63) / 64 * 64);
	unsigned char *dst = aligned_alloc(64, (n + 63) / 64 * 64);
	if (!src || !dst) {
		free(src);
		free(dst);
		return -ENOMEM;
	}
	bench_msg_init(src, n);
	memset(dst, 0, n);
	/* Look at the stop flag about every 64 KiB copied, so the loop
	 * costs nothing next to the copies even for small messages. */
	size_t inner = n >= 65536 ? 1 : 65536 / n;
	uint64_t copies = 0;
	while (!bench_stop_requested(w)) {
		for (size_t i = 0; i < inner; i++) {
			memcpy(dst, src, n);
			/* The copy must happen every time: make the
			 * compiler assume dst is read. */
			__asm__ __volatile__("" : : "r"(dst) : "memory");
		}
		copies += inner;
	}
	w->msgs = copies;
	int rc = memcmp(dst, src, n) == 0 ? 0 : -EIO;
	free(src);
	free(dst);
	return rc;
}

static int memcpy_run(struct bench_case *c, struct bench_sample *s)
{
	struct bench_team t = {.producer = copier};
	return bench_team_throughput(c, &t, s);
}

BENCH_REGISTER(memcpy_row) = {
	.suite = "throughput",
	.impl = "memcpy",
	.descr = "single-core memcpy between two msg_size buffers (ceiling "
		 "for copying APIs)",
	.pcs = BENCH_PCS({1, 0}),
	.run = memcpy_run,
};
