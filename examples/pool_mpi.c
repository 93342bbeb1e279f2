/*
 * pool_mpi - pool_test2's map over MPI: the same three items (50, 100,
 * 150), the same action, but the pool's workers live in the agent ranks
 * of an MPI job, possibly on other hosts.  Launch it with
 *
 *     mpiexec -n 3 ./pool_mpi
 *
 * (as root with Open MPI, add --oversubscribe and set
 * OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1).  Rank 0 runs
 * main() past mproc_pool_mpi_main and is the head; ranks 1 and 2 never
 * return from it: each runs a local pool and serves the head's.  The
 * head's map sends the items to the agents and gathers the results in
 * item order, as a local pool's map does.
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
	/* Agents stay in here; the head (rank 0) goes on. */
	if (mproc_pool_mpi_main(argc, argv, NULL) < 0)
		return 1;
	setvbuf(stdout, NULL, _IOLBF, 0);

	static const int32_t items[] = { 50, 100, 150 };
	int64_t results[3];
	ssize_t failed;
	{ /* with Pool(context=mpi) as pool: */
		mproc_context *mpi;
		struct mproc_pool_attr attr;
		mproc_pool_attr_init(&attr);
		int rc = mproc_get_context("mpi", &mpi);
		mproc_pool *pool = NULL;
		if (rc == 0) {
			attr.ctx = mpi;
			rc = mproc_pool_create(&attr, &pool);
		}
		if (rc) {
			fprintf(stderr, "pool over MPI: %s\n", mproc_strerror(rc));
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
	return results[0] == 1225 && results[1] == 4950 && results[2] == 11175
		       ? 0 : 1;
}
