/* Start a child with the spawn method and wait for it. */
#include <stdio.h>
#include <mproc.h>

static int greet(void *arg, size_t len)
{
	printf("hello, %.*s\n", (int)len, (const char *)arg);
	return 0;
}

int main(int argc, char **argv)
{
	mproc_main(argc, argv);	/* first: the spawned child runs greet here */
	mproc_context *ctx;
	mproc_process *p;
	int rc = mproc_get_context("spawn", &ctx);
	if (!rc)
		rc = mproc_process_create(ctx, greet, "bob", 3, &p);
	if (!rc)
		rc = mproc_process_start(p);
	if (!rc)
		rc = mproc_process_join(p, MPROC_FOREVER);
	if (rc) {
		fprintf(stderr, "process: %s\n", mproc_strerror(rc));
		return 1;
	}
	int code;
	if (mproc_process_exitcode(p, &code) == 0)
		printf("exit code %d\n", code);
	mproc_process_free(p);
	return 0;
}
