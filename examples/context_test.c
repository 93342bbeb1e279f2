/*
 * context_test - the twin of the seed's Context_test.py: instead of
 * setting the start method for the whole program, get a context for one
 * ("fork" here) and create processes through it.  The default method
 * stays free for other code.
 *
 * mproc's process create call takes the context; queue, pipe and pool
 * creation will take it too (the seed's ctx.Queue()), and until then a
 * plain queue works with every method.
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
	ssize_t rc = mproc_queue_put(q, "Python", 6, MPROC_FOREVER);
	mproc_queue_free(q);
	return rc == 6 ? 0 : 1;
}

int main(int argc, char **argv)
{
	mproc_main(argc, argv);
	setvbuf(stdout, NULL, _IOLBF, 0);

	/* ctx = multiprocessing.get_context('fork') */
	mproc_context *ctx;
	if (mproc_get_context("fork", &ctx))
		return 1;
	mproc_queue *q;
	char token[MPROC_QUEUE_TOKEN_MAX];
	if (mproc_queue_create(NULL, &q) ||
	    mproc_queue_export(q, token, sizeof(token)) < 0)
		return 1;
	/* mp = ctx.Process(target=foo, args=(q,)) */
	mproc_process *mp;
	if (mproc_process_create(ctx, foo, token, strlen(token) + 1, &mp) ||
	    mproc_process_start(mp))
		return 1;
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
	printf("context: %s, default start method still free: %s\n",
	       mproc_context_get_start_method(ctx),
	       mproc_get_start_method(true) ? "no" : "yes");
	int code = -1;
	mproc_process_exitcode(mp, &code);
	mproc_process_free(mp);
	mproc_queue_free(q);
	return n >= 0 ? code : 1;
}
