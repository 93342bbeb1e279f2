/* Square eight numbers in a pool of workers. */
#include <stdio.h>
#include <mproc.h>

static int square(mproc_task *t, const void *arg, size_t len)
{
	int v = *(const int *)arg;
	(void)len;
	v *= v;
	return mproc_task_return(t, &v, sizeof v);
}

int main(int argc, char **argv)
{
	mproc_main(argc, argv);	/* first: spawned children start here */
	mproc_pool *pool;
	int rc = mproc_pool_create(NULL, &pool);
	if (rc) {
		fprintf(stderr, "pool: %s\n", mproc_strerror(rc));
		return 1;
	}
	int in[8] = { 1, 2, 3, 4, 5, 6, 7, 8 }, out[8], status[8];
	ssize_t n = mproc_pool_map(pool, square, in, 8, sizeof in[0], out,
				   sizeof out[0], status, NULL);
	for (int i = 0; n >= 0 && i < 8; i++)
		printf("%d ", out[i]);
	printf("\n");
	mproc_pool_destroy(pool);
	return n < 0;
}
