/*
 * queue_test - the C twin of the seed's Queue_test.py: one process puts
 * data into a Queue, another gets it out.  Here the parent puts and a child
 * Process gets and prints, showing qsize/empty/full along the way.
 *
 * The queue reaches the child as a token in the argument bytes, which works
 * with every start method (with fork the parent's handle would do as well);
 * run it with the argument "spawn" or "forkserver" to try the others.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <mproc.h>

static int child(void *arg, size_t len)
{
	mproc_queue *q;
	if (!len || mproc_queue_import(arg, 0, &q))
		return 1;
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
	}
	printf("(%d) child: queue closed and drained\n", (int)getpid());
	mproc_queue_free(q);
	return 0;
}

int main(int argc, char **argv)
{
	mproc_main(argc, argv);
	setvbuf(stdout, NULL, _IOLBF, 0);
	mproc_context *ctx = NULL;
	if (argc > 1 && mproc_get_context(argv[1], &ctx)) {
		fprintf(stderr, "unknown start method %s\n", argv[1]);
		return 2;
	}

	mproc_queue *q;
	char token[MPROC_QUEUE_TOKEN_MAX];
	int rc = mproc_queue_create(NULL, &q);
	if (rc || (rc = mproc_queue_export(q, token, sizeof(token))) < 0) {
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
	/* No more data: the child stops after draining.  Closing before the
	 * child starts is fine; what is queued stays readable. */
	mproc_queue_close(q);

	mproc_process *p;
	if ((rc = mproc_process_create(ctx, child, token, strlen(token) + 1, &p)) ||
	    (rc = mproc_process_start(p))) {
		fprintf(stderr, "process: %s\n", mproc_strerror(rc));
		return 1;
	}
	mproc_process_join(p, MPROC_FOREVER);
	int code = -1;
	mproc_process_exitcode(p, &code);
	mproc_process_free(p);
	mproc_queue_free(q);
	return code;
}
