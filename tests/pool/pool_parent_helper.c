/*
 * Helper for the parent-death test (pool_stress.c): a parent that creates
 * a pool of three workers by the start method in argv[1], keeps them busy
 * with work, prints "pids P1 P2 P3" and waits to be SIGKILLed by the test,
 * which then checks that the zygote and the workers do not outlive it.
 *
 *   pool_parent_helper METHOD
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "mproc.h"

static int spin_ms(mproc_task *t, const void *arg, size_t len)
{
	(void)t;
	(void)arg;
	(void)len;
	usleep(50 * 1000);
	return 0;
}

int main(int argc, char **argv)
{
	mproc_main(argc, argv);
	if (argc != 2)
		return 2;
	struct mproc_pool_attr a;
	mproc_pool_attr_init(&a);
	if (mproc_get_context(argv[1], &a.ctx))
		return 3;
	a.processes = 3;
	mproc_pool *p;
	int rc = mproc_pool_create(&a, &p);
	if (rc) {
		fprintf(stderr, "create: %s\n", mproc_strerror(rc));
		return 4;
	}
	/* Work in flight when the parent dies: busy workers must go too. */
	for (int i = 0; i < 1000; i++) {
		mproc_async *r;
		if (mproc_pool_apply_async(p, spin_ms, NULL, 0, NULL, NULL, NULL,
					   &r))
			return 5;
		mproc_async_free(r);
	}
	pid_t pids[3];
	if (mproc_pool_worker_pids(p, pids, 3) != 3)
		return 6;
	printf("pids %d %d %d\n", (int)pids[0], (int)pids[1], (int)pids[2]);
	fflush(stdout);
	for (;;)
		pause();
}
