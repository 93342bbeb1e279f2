/*
 * pool_progress - a text progress bar drawn from a map's progress
 * callback (beyond the seed: Python's Pool has no progress hook, people
 * reach for tqdm around imap).
 *
 * The callback runs in the parent on the pool thread, as items finish,
 * never with less done than before, and a last time with done == total.
 * It redraws one line with a carriage return; the final newline comes
 * after the map returns.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "mproc.h"

#define ITEMS 200
#define WIDTH 40

/* Square an int32 after a little work (1 ms). */
static int slow_square(mproc_task *t, const void *arg, size_t len)
{
	int32_t x;
	if (len != sizeof(x))
		return -22; /* -EINVAL */
	memcpy(&x, arg, sizeof(x));
	struct timespec ms = { 0, 1000 * 1000 };
	nanosleep(&ms, NULL);
	int64_t r = (int64_t)x * x;
	return mproc_task_return(t, &r, sizeof(r));
}

static void draw(size_t done, size_t total, void *userdata)
{
	(void)userdata;
	char bar[WIDTH + 1];
	size_t full = total ? done * WIDTH / total : WIDTH;
	memset(bar, '#', full);
	memset(bar + full, ' ', WIDTH - full);
	bar[WIDTH] = '\0';
	printf("\r[%s] %zu/%zu", bar, done, total);
	fflush(stdout);
}

int main(int argc, char **argv)
{
	mproc_main(argc, argv);

	int32_t items[ITEMS];
	int64_t results[ITEMS];
	for (int i = 0; i < ITEMS; i++)
		items[i] = i;
	struct mproc_pool_attr attr;
	mproc_pool_attr_init(&attr);
	attr.processes = 2;
	mproc_pool *pool;
	int rc = mproc_pool_create(&attr, &pool);
	if (rc) {
		fprintf(stderr, "pool: %s\n", mproc_strerror(rc));
		return 1;
	}
	/* Chunks of 5: the bar moves every few items. */
	struct mproc_map_opts opts = { .chunksize = 5, .progress = draw };
	ssize_t failed = mproc_pool_map(pool, slow_square, items, ITEMS,
					sizeof(items[0]), results,
					sizeof(results[0]), NULL, &opts);
	/* The last redraw runs on the pool thread; destroy waits for it. */
	mproc_pool_destroy(pool);
	printf("\n");
	if (failed) {
		fprintf(stderr, "map: %s\n", failed < 0 ?
			mproc_strerror((int)failed) : "an item failed");
		return 1;
	}
	int64_t sum = 0;
	for (int i = 0; i < ITEMS; i++)
		sum += results[i];
	printf("sum of squares 0..%d = %lld\n", ITEMS - 1, (long long)sum);
	return 0;
}
