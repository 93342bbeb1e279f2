/*
 * Criterion entry point for the pool tests.  The pool starts its zygote
 * by the context's start method, and the spawn and forkserver methods
 * re-execute this binary, so main() must begin with mproc_main(), exactly
 * as an application's would; only then does Criterion take over.
 *
 * Criterion runs each test in a BoxFort worker, re-executed with argv[0]
 * "boxfort-worker" and BXFI_MAP in the environment.  A process that mproc
 * spawns from a worker must not look like one: mproc gives it the
 * executable's path as argv[0], and every suite's .init
 * (forget_worker_marker in pool_test.h) removes BXFI_MAP after BoxFort
 * has read it, so the spawned zygote is an ordinary start of this binary
 * and mproc_main() takes it.
 */
#include <criterion/criterion.h>

#include "mproc.h"

int main(int argc, char *argv[])
{
	mproc_main(argc, argv);
	struct criterion_test_set *tests = criterion_initialize();
	int result = 0;
	if (criterion_handle_args(argc, argv, true))
		result = !criterion_run_all_tests(tests);
	criterion_finalize(tests);
	return result;
}
