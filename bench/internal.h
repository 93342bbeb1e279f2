/*
 * internal.h - declarations shared by the harness's own files (harness.c,
 * util.c, team.c, python.c, plot.c).  Rows include bench.h only.
 */
#ifndef MPROC_BENCH_INTERNAL_H
#define MPROC_BENCH_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include "bench.h"

/* Set up the CPU map; @pin false for --no-pin. */
void bench__cpus_setup(bool pin);
/* Notes collected so far (for the table's footer). */
int bench__notes(const char *const **out);
/* Erase the progress line on stderr, if one is showing. */
void bench__progress_clear(void);

/* One series of the throughput plot: a label and points sorted by size. */
struct bench_plot_point {
	double size, median, min, max;
};
struct bench_plot_series {
	char label[96];
	int npoints;
	struct bench_plot_point pts[32];
};
/* Write an SVG of bytes/s against message size; with gnuplot when it is
 * installed and @builtin is false, else with the built-in writer.
 * Returns 0 or a negative errno (why on stderr). */
int bench__plot(const char *path, const struct bench_plot_series *series,
		int nseries, const char *title, bool builtin);

#endif /* MPROC_BENCH_INTERNAL_H */
