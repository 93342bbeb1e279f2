/*
 * context_test - the twin of the seed's Context_test.py: instead of
 * setting the start method for the whole program, get a context for one
 * ("fork" here) and create processes (and, as mproc grows, queues, pipes
 * and pools) through it.  The default method stays free for other code.
 *
 * As in start_method_test, an anonymous shared segment stands in for the
 * seed's Queue until mproc's queue is in.
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
	strcpy(mproc_shm_data(q), "Python");
	mproc_shm_free(q);
	return 0;
}

int main(int argc, char **argv)
{
	mproc_main(argc, argv);
	setvbuf(stdout, NULL, _IOLBF, 0);

	/* ctx = multiprocessing.get_context('fork') */
	mproc_context *ctx;
	if (mproc_get_context("fork", &ctx))
		return 1;
	mproc_shm *q;
	char token[MPROC_SHM_TOKEN_MAX];
	if (mproc_shm_create(NULL, MPROC_SHM_KIND_RAW, NULL, 4096, 0, &q) ||
	    mproc_shm_publish(q) || mproc_shm_export(q, token, sizeof(token)) < 0)
		return 1;
	/* mp = ctx.Process(target=foo, args=(q,)) */
	mproc_process *mp;
	int rc;
	if (mproc_process_create(ctx, foo, token, strlen(token) + 1, &mp) ||
	    (rc = mproc_process_start(mp)) != 0)
		return 1;
	mproc_process_join(mp, MPROC_FOREVER);
	int code = -1;
	mproc_process_exitcode(mp, &code);
	printf("%s\n", code == 0 ? (const char *)mproc_shm_data(q) : "(no message)");
	printf("context: %s, default start method still free: %s\n",
	       mproc_context_get_start_method(ctx),
	       mproc_get_start_method(1) ? "no" : "yes");
	mproc_process_free(mp);
	mproc_shm_free(q);
	return code;
}
