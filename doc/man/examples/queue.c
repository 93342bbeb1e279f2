/* A parent and a forked child share an anonymous queue. */
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>
#include <mproc.h>

int main(void)
{
	mproc_queue *q;
	int rc = mproc_queue_create(NULL, &q);	/* MPMC, 1 MiB */
	if (rc) {
		fprintf(stderr, "queue: %s\n", mproc_strerror(rc));
		return 1;
	}
	if (fork() == 0) {
		mproc_queue_put(q, "hello", 6, MPROC_FOREVER);
		_exit(0);
	}
	char buf[64];
	ssize_t n = mproc_queue_get(q, buf, sizeof buf, 5 * MPROC_SEC);
	if (n < 0)
		fprintf(stderr, "get: %s\n", mproc_strerror((int)n));
	else
		printf("got %zd bytes: %s\n", n, buf);
	wait(NULL);
	mproc_queue_free(q);
	return n < 0;
}
