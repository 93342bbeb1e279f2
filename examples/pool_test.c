/*
 * pool_test - the C twin of the seed's pool_test.py: a Pool of 4 worker
 * processes, three tasks handed to it with apply_async, then close() and
 * join() to wait for them.
 *
 * Python passes the task's argument as args=(...) or kwds={...}; a C task
 * gets argument bytes, here a string (none for the default).  The callback
 * (apply_async's callback=) runs in the parent on the pool's own thread
 * as each task finishes.  mproc_main() at the top of main() is the C form
 * of "if __name__ == '__main__'": run with the argument "spawn" or
 * "forkserver" to start the workers that way.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mproc.h"

/* The task, run in a worker. */
static int action(mproc_task *t, const void *arg, size_t len)
{
	char name[64] = "default";
	if (len) {
		size_t n = len < sizeof(name) - 1 ? len : sizeof(name) - 1;
		memcpy(name, arg, n);
		name[n] = '\0';
	}
	printf("(%d) process executing, argument: %s\n", (int)getpid(), name);
	fflush(stdout); /* a worker's stdout may be a pipe: show it now */
	struct timespec pause = { 0, 300 * 1000 * 1000 }; /* Python: 3 s */
	nanosleep(&pause, NULL);
	int pid = getpid();
	return mproc_task_return(t, &pid, sizeof(pid));
}

/* apply_async's callback: in the parent, on the pool thread. */
static void done(mproc_async *a, void *userdata)
{
	const void *data;
	size_t len;
	int pid = 0;
	if (mproc_async_get(a, MPROC_NOWAIT, &data, &len) == 0 &&
	    len == sizeof(pid))
		memcpy(&pid, data, sizeof(pid));
	printf("callback: task \"%s\" finished in worker %d\n",
	       (const char *)userdata, pid);
}

int main(int argc, char **argv)
{
	mproc_main(argc, argv);
	setvbuf(stdout, NULL, _IOLBF, 0);

	struct mproc_pool_attr attr;
	mproc_pool_attr_init(&attr);
	if (argc > 1 && mproc_get_context(argv[1], &attr.ctx)) {
		fprintf(stderr, "unknown start method %s\n", argv[1]);
		return 2;
	}
	attr.processes = 4; /* Pool(processes=4) */
	mproc_pool *pool;
	int rc = mproc_pool_create(&attr, &pool);
	if (rc) {
		fprintf(stderr, "pool: %s\n", mproc_strerror(rc));
		return 1;
	}
	/* pool.apply_async(action), (action, args=('positional argument',)),
	 * (action, kwds={'name': 'keyword argument'}) */
	static const char *const names[] = { NULL, "positional argument",
					     "keyword argument" };
	mproc_async *results[3];
	for (int i = 0; i < 3; i++) {
		const char *arg = names[i];
		rc = mproc_pool_apply_async(pool, action, arg,
					    arg ? strlen(arg) : 0, done, NULL,
					    (void *)(arg ? arg : "default"),
					    &results[i]);
		if (rc) {
			fprintf(stderr, "apply_async: %s\n", mproc_strerror(rc));
			return 1;
		}
	}
	mproc_pool_close(pool);
	rc = mproc_pool_join(pool, MPROC_FOREVER);
	int failed = rc != 0;
	for (int i = 0; i < 3; i++) {
		failed |= mproc_async_successful(results[i]) != 1;
		mproc_async_free(results[i]);
	}
	mproc_pool_destroy(pool);
	printf(failed ? "some tasks failed\n" : "all tasks done\n");
	return failed;
}
