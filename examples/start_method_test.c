/*
 * start_method_test - the twin of the seed's start_method_test.py:
 * set_start_method('spawn') before anything else, then a child that puts
 * a message for the parent.
 *
 * The seed passes the message through a multiprocessing.Queue.  Until
 * mproc's queue is in, this example carries it in an anonymous shared
 * segment: the child gets the segment's token in its argument bytes and
 * opens it with mproc_shm_import, which works under spawn because mproc
 * hands anonymous segments to a spawned child at the same descriptor
 * numbers.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "mproc.h"

static int foo(void *arg, size_t len)
{
	mproc_shm *q;
	if (!len || mproc_shm_import(arg, MPROC_SHM_KIND_RAW, NULL, NULL, &q))
		return 1;
	printf("Started a new process: (%d)\n", (int)getpid());
	/* q.put('Python') */
	strcpy(mproc_shm_data(q), "Python");
	mproc_shm_free(q);
	return 0;
}

int main(int argc, char **argv)
{
	mproc_main(argc, argv);
	setvbuf(stdout, NULL, _IOLBF, 0);

	int rc = mproc_set_start_method("spawn", 0);
	if (rc) {
		fprintf(stderr, "set_start_method: %s\n", mproc_strerror(rc));
		return 1;
	}
	mproc_shm *q;
	char token[MPROC_SHM_TOKEN_MAX];
	if (mproc_shm_create(NULL, MPROC_SHM_KIND_RAW, NULL, 4096, 0, &q) ||
	    mproc_shm_publish(q) || mproc_shm_export(q, token, sizeof(token)) < 0)
		return 1;
	mproc_process *mp;
	if (mproc_process_create(NULL, foo, token, strlen(token) + 1, &mp) ||
	    (rc = mproc_process_start(mp)) != 0) {
		fprintf(stderr, "start: %s\n", mproc_strerror(rc));
		return 1;
	}
	mproc_process_join(mp, MPROC_FOREVER);
	int code = -1;
	mproc_process_exitcode(mp, &code);
	/* print(q.get()) */
	printf("%s\n", code == 0 ? (const char *)mproc_shm_data(q) : "(no message)");
	printf("started with: %s\n", mproc_process_start_method(mp));
	mproc_process_free(mp);
	mproc_shm_free(q);
	return code;
}
