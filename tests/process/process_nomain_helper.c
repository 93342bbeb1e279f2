/*
 * Helper: a program that uses the spawn method but forgets mproc_main().
 * Its spawned child runs main() from the top and tries to start a process
 * of its own; that must fail with -EPROTO instead of recursing.
 */
#include <errno.h>
#include <stdio.h>

#include "mproc.h"

static int target(void *arg, size_t len)
{
	(void)arg;
	(void)len;
	return 0;
}

int main(void)
{
	mproc_process *p;
	mproc_set_start_method("spawn", false);
	if (mproc_process_create(NULL, target, NULL, 0, &p))
		return 5;
	int rc = mproc_process_start(p);
	if (rc) {
		printf("start failed: %s\n", mproc_strerror(rc));
		return rc == -EPROTO ? 3 : 4;
	}
	mproc_process_join(p, MPROC_FOREVER);
	int code = -1;
	mproc_process_exitcode(p, &code);
	printf("child exitcode %d\n", code);
	return code == 3 ? 0 : 1;
}
