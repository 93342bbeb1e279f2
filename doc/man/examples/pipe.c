/* A duplex pipe between a parent and a forked child. */
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>
#include <mproc.h>

struct point { double x, y; };

int main(void)
{
	mproc_conn *a, *b;
	int rc = mproc_pipe(true, NULL, &a, &b);
	if (rc) {
		fprintf(stderr, "pipe: %s\n", mproc_strerror(rc));
		return 1;
	}
	if (fork() == 0) {
		struct point p = { 1.5, 2.5 };
		mproc_conn_send(b, &p, sizeof p);
		_exit(0);
	}
	struct point p;
	ssize_t n = mproc_conn_recv(a, &p, sizeof p);
	if (n < 0)
		fprintf(stderr, "recv: %s\n", mproc_strerror((int)n));
	else
		printf("(%g, %g)\n", p.x, p.y);
	wait(NULL);
	mproc_conn_free(a);
	mproc_conn_free(b);
	return n < 0;
}
