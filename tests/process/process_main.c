/*
 * Criterion entry point for the process tests.  The spawn and forkserver
 * start methods re-execute this binary, so its main() must begin with
 * mproc_main(), exactly as an application's would; only then does
 * Criterion take over.
 *
 * How this meets Criterion's own process model: Criterion runs each test in
 * a worker that BoxFort forks and re-executes with argv[0] set to
 * "boxfort-worker" and BXFI_MAP in the environment; BoxFort's constructor
 * recognises a worker by those two and runs the test instead of main().
 * A process that mproc spawns from a worker must not look like a worker:
 * mproc gives it the executable's path as argv[0], and every suite's .init
 * (forget_worker_marker in process_test.h) removes BXFI_MAP from the worker's
 * environment, after BoxFort has read it, so the spawned child is an
 * ordinary start of this binary and mproc_main() takes it.
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
