/*
 * start_method_test - the twin of the seed's start_method_test.py:
 * set_start_method('spawn') before anything else, then a child that puts
 * a message into a Queue for the parent.
 *
 * With spawn the child is a fresh run of this program: mproc_main() at the
 * top of main() takes it to foo() instead.  The queue reaches it as a
 * token in the argument bytes (the memfd behind it is handed over at the
 * same descriptor number), and mproc_queue_import opens it there.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "mproc.h"

static int foo(void *arg, size_t len)
{
	mproc_queue *q;
	if (!len || mproc_queue_import(arg, 0, &q))
		return 1;
	printf("Started a new process: (%d)\n", (int)getpid());
	/* q.put('Python') */
	ssize_t rc = mproc_queue_put(q, "Python", 6, MPROC_FOREVER);
	mproc_queue_free(q);
	return rc == 6 ? 0 : 1;
}

int main(int argc, char **argv)
{
	mproc_main(argc, argv);
	setvbuf(stdout, NULL, _IOLBF, 0);

	int rc = mproc_set_start_method("spawn", false);
	if (rc) {
		fprintf(stderr, "set_start_method: %s\n", mproc_strerror(rc));
		return 1;
	}
	mproc_queue *q;
	char token[MPROC_QUEUE_TOKEN_MAX];
	if (mproc_queue_create(NULL, &q) ||
	    mproc_queue_export(q, token, sizeof(token)) < 0)
		return 1;
	mproc_process *mp;
	if ((rc = mproc_process_create(NULL, foo, token, strlen(token) + 1, &mp)) ||
	    (rc = mproc_process_start(mp))) {
		fprintf(stderr, "start: %s\n", mproc_strerror(rc));
		return 1;
	}
	/* print(q.get()) */
	char msg[64];
	ssize_t n = mproc_queue_get(q, msg, sizeof(msg) - 1, 60 * MPROC_SEC);
	if (n >= 0) {
		msg[n] = '\0';
		printf("%s\n", msg);
	} else {
		printf("get: %s\n", mproc_strerror((int)n));
	}
	mproc_process_join(mp, MPROC_FOREVER);
	printf("started with: %s\n", mproc_process_start_method(mp));
	int code = -1;
	mproc_process_exitcode(mp, &code);
	mproc_process_free(mp);
	mproc_queue_free(q);
	return n >= 0 ? code : 1;
}
