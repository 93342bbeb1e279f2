/*
 * queue_test - the C twin of the seed's Queue_test.py: one process puts
 * data into a Queue, another gets it out.  Here the parent puts and a
 * forked child gets and prints, showing qsize/empty/full along the way.
 *
 * Build: meson compiles it to build/examples/queue_test.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <mproc.h>

static int child(mproc_queue *q)
{
	char buf[64];
	for (;;) {
		ssize_t n = mproc_queue_get(q, buf, sizeof(buf) - 1, 10 * MPROC_SEC);
		if (n == -MPROC_EEOF)
			break;
		if (n < 0) {
			fprintf(stderr, "get: %s\n", mproc_strerror((int)n));
			return 1;
		}
		buf[n] = '\0';
		printf("(%d) child got: %s\n", (int)getpid(), buf);
		fflush(stdout);
	}
	printf("(%d) child: queue closed and drained\n", (int)getpid());
	fflush(stdout); /* the child leaves with _exit, which does not flush */
	return 0;
}

int main(void)
{
	mproc_queue *q;
	int rc = mproc_queue_create(NULL, &q);
	if (rc) {
		fprintf(stderr, "queue: %s\n", mproc_strerror(rc));
		return 1;
	}
	printf("empty=%d full=%d qsize=%zd\n", mproc_queue_empty(q),
	       mproc_queue_full(q), mproc_queue_qsize(q));
	static const char *const items[] = { "Python", "Kotlin", "Swift" };
	for (int i = 0; i < 3; i++) {
		printf("(%d) parent puts: %s\n", (int)getpid(), items[i]);
		mproc_queue_put(q, items[i], strlen(items[i]), MPROC_FOREVER);
	}
	printf("qsize=%zd empty=%d\n", mproc_queue_qsize(q), mproc_queue_empty(q));
	fflush(stdout);
	pid_t pid = fork();
	if (pid < 0)
		return 1;
	if (pid == 0)
		_exit(child(q));
	mproc_queue_close(q); /* no more data: the child stops after draining */
	int st;
	waitpid(pid, &st, 0);
	mproc_queue_free(q);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 1;
}
