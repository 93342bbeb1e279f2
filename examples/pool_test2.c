/*
 * pool_test2 - the C twin of the seed's pool_test2.py: map() over a Pool
 * used as a context manager ("with multiprocessing.Pool(processes=4) as
 * pool:").  C has no `with`; the scope is a block that ends with
 * mproc_pool_destroy, which does what leaving the `with` block does
 * (terminate, join, release).
 *
 * action(max) prints each step and returns the sum 0 + 1 + ... + max-1;
 * map runs it over (50, 100, 150), three items, and returns the results
 * in item order.  Items and results are fixed-size C values, passed as
 * base/count/size like qsort's.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "mproc.h"

static int action(mproc_task *t, const void *arg, size_t len)
{
	int32_t max;
	if (len != sizeof(max))
		return -22; /* -EINVAL */
	memcpy(&max, arg, sizeof(max));
	int64_t sum = 0;
	for (int32_t i = 0; i < max; i++) {
		printf("(%d) process executing: %d\n", (int)getpid(), (int)i);
		fflush(stdout);
		sum += i;
	}
	return mproc_task_return(t, &sum, sizeof(sum));
}

int main(int argc, char **argv)
{
	mproc_main(argc, argv);
	setvbuf(stdout, NULL, _IOLBF, 0);

	static const int32_t items[] = { 50, 100, 150 };
	int64_t results[3];
	ssize_t failed;
	{ /* with multiprocessing.Pool(processes=4) as pool: */
		struct mproc_pool_attr attr;
		mproc_pool_attr_init(&attr);
		attr.processes = 4;
		mproc_pool *pool;
		int rc = mproc_pool_create(&attr, &pool);
		if (rc) {
			fprintf(stderr, "pool: %s\n", mproc_strerror(rc));
			return 1;
		}
		failed = mproc_pool_map(pool, action, items, 3, sizeof(items[0]),
					results, sizeof(results[0]), NULL, NULL);
		mproc_pool_destroy(pool); /* leaving the with block */
	}
	if (failed) {
		fprintf(stderr, "map: %s\n", failed < 0 ?
			mproc_strerror((int)failed) : "an item failed");
		return 1;
	}
	printf("--------------\n");
	for (int i = 0; i < 3; i++)
		printf("%lld\n", (long long)results[i]);
	return 0;
}
