/*
 * main.c - mproc-bench's driver: leave at once for the raw_spawn row, run
 * the early hooks, parse the options, then expand, run, summarise and
 * report (harness.h shows which file does what).  The exit status says
 * whether every measurement succeeded.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/clock.h"
#include "harness.h"

int main(int argc, char **argv)
{
	/* The raw_spawn row measures exec of this program: leave before
	 * anything else happens. */
	if (argc == 2 && strcmp(argv[1], BENCH_EXIT_ARG) == 0)
		_exit(0);
	bench__run_early_hooks(argc, argv);
	bench__set_self_exe(argv[0]);

	struct bench_opts opt;
	int rc = bench__parse_args(argc, argv, &opt);
	if (rc)
		return rc;
	if (opt.list) {
		bench__list_rows();
		return 0;
	}
	bench__progress_init(isatty(2));
	bench__cpus_setup(opt.pin);
	if (opt.pin && bench_ncpus() < 2)
		bench_note("only one CPU is allowed: workers are not pinned "
			   "and share it (spin loops yield)");

	struct bench_rows rows = {0};
	bench__expand_all(&opt, &rows);
	if (rows.n == 0) {
		fprintf(stderr, "mproc-bench: no row matches the selection\n");
		return 2;
	}
	int64_t t0 = mproc__now_ns();
	bench__run_all(&opt, &rows);
	bench__stats(&opt, &rows);

	int failed = 0, skipped = 0;
	for (int i = 0; i < rows.n; i++) {
		failed += rows.v[i].nfail > 0 || rows.v[i].state == ROW_FAILED;
		skipped += rows.v[i].state == ROW_SKIPPED;
	}
	bench__print_table(&opt, &rows);
	printf("\n%d case%s measured, %d skipped, in %.1f s%s\n",
	       rows.n - skipped, rows.n - skipped == 1 ? "" : "s", skipped,
	       (double)(mproc__now_ns() - t0) / 1e9,
	       failed ? "; SOME MEASUREMENTS FAILED (see above)" : "");
	fflush(stdout);

	if (opt.json && bench__write_json(&opt, &rows, opt.json) < 0)
		failed++;
	if (opt.plot && bench__write_plot(&opt, &rows, opt.plot) < 0)
		failed++;
	bench__rows_free(&rows);
	return failed ? 1 : 0;
}
