/*
 * harness.h - declarations private to mproc-bench's own files; rows include
 * bench.h only.
 *
 * The harness's files and the one direction their calls take:
 *
 *   main.c      the driver: early hooks, options, run, report, exit status
 *     cli.c       options and --help
 *     run.c       expanding rows into cases; the interleaved rounds
 *       stats.c     medians, table order, ratios against baselines
 *       report.c    --list, the text table, JSON, the series for --plot
 *         plot.c      the SVG writer
 *   registry.c  rows, early hooks, suites and figures (data, no calls out)
 *   progress.c  stderr while running: the progress line and notes
 *   util.c      helpers for rows: CPUs, shared memory, checked messages,
 *               medians, PATH look-up
 *
 * A file calls only files below it or the leaves (registry, progress,
 * util), and nothing calls back into main.c.  The row helpers (team.c,
 * fdstream.c, python.c) implement bench.h on top of the leaves alone.
 */
#ifndef MPROC_BENCH_HARNESS_H
#define MPROC_BENCH_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bench.h"

/* ---- registry.c: rows, hooks, suites, figures ----------------------- */

/* The registered rows, in registration order (follow ->next_). */
const struct bench_impl *bench__registry(void);
/* Run the early hooks (BENCH_EARLY_HOOK) in registration order. */
void bench__run_early_hooks(int argc, char **argv);
/* Remember the executable's path for bench_self_exe(). */
void bench__set_self_exe(const char *argv0);

/* Column heading of a figure in the table. */
const char *bench__fig_head(enum bench_fig f);

/* What the harness knows of a suite; unknown suites get a default. */
struct bench_suite {
	const char *name;
	const char *what;
	const size_t *sizes;       /* default sizes, 0-terminated */
	const size_t *quick_sizes; /* kept by --quick */
	enum bench_fig primary;    /* ratios use this figure first */
	bool has_pc;               /* producers/consumers default to 1/1 */
};
const struct bench_suite *bench__suite(const char *name);
/* Known suites first, in table order, then others alphabetically. */
int bench__suite_cmp(const char *a, const char *b);

/* ---- cli.c: options ------------------------------------------------- */

struct bench_opts {
	bool quick;
	const char *json;
	const char *plot;
	bool plot_builtin;
	int reps;
	int64_t duration_ns;
	char *impl_patterns; /* comma-separated fnmatch patterns */
	size_t sizes[32];    /* --sizes filter, 0-terminated; empty = all */
	bool pin;
	bool list;
	char **suites;
	int nsuites;
};

/* Parse the command line into @o.  Returns 0, or the exit status (2) after
 * saying what is wrong on stderr; --help prints the help and exits 0. */
int bench__parse_args(int argc, char **argv, struct bench_opts *o);

/* ---- run.c: cases and the interleaved schedule ---------------------- */

enum bench_row_state { ROW_OK, ROW_SKIPPED, ROW_FAILED };

/* One case of a row and what its repetitions measured. */
struct bench_row {
	struct bench_case c;
	enum bench_row_state state;
	double *vals; /* reps x BENCH_NFIGS, NAN where not measured */
	int nok, nfail;
	char err[200];
	/* Filled by bench__stats after the run. */
	double med[BENCH_NFIGS], lo[BENCH_NFIGS], hi[BENCH_NFIGS];
	bool has[BENCH_NFIGS];
};

/* Every case selected for this run. */
struct bench_rows {
	struct bench_row *v;
	int n, cap;
};

/* Add the cases of every registered row the options select.  Exits on
 * out-of-memory. */
void bench__expand_all(const struct bench_opts *o, struct bench_rows *rows);
/* Run every case: suite by suite in table order, @o->reps interleaved
 * rounds each (see run.c). */
void bench__run_all(const struct bench_opts *o, struct bench_rows *rows);
void bench__rows_free(struct bench_rows *rows);

/* ---- stats.c: medians, order, ratios -------------------------------- */

/* Median, min and max of every figure of every row; sort the rows into
 * table order. */
void bench__stats(const struct bench_opts *o, struct bench_rows *rows);

struct bench_ratio {
	const char *label;    /* column heading after "x " */
	const char *baseline; /* the baseline row's impl */
	double value;
};
#define BENCH_MAX_RATIOS 8
/* The ratios of row @r against its baselines among @rows; returns how
 * many were written to @out (at most BENCH_MAX_RATIOS). */
int bench__ratios(const struct bench_rows *rows, const struct bench_row *r,
		  struct bench_ratio *out);

/* ---- report.c: --list, table, JSON, plot series --------------------- */

void bench__list_rows(void);
void bench__print_table(const struct bench_opts *o,
			const struct bench_rows *rows);
/* 0, or -1 after saying why on stderr. */
int bench__write_json(const struct bench_opts *o,
		      const struct bench_rows *rows, const char *path);
int bench__write_plot(const struct bench_opts *o,
		      const struct bench_rows *rows, const char *path);

/* ---- plot.c: the SVG ------------------------------------------------ */

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

/* ---- progress.c: the progress line and notes ------------------------ */

/* Show a progress line when stderr is a terminal (@tty), else one line
 * per round. */
void bench__progress_init(bool tty);
/* Where the run is: case @done of @total in round @round of @rounds. */
void bench__progress(const char *suite, int round, int rounds, int done,
		     int total, const struct bench_case *c);
/* Erase the progress line on stderr, if one is showing. */
void bench__progress_clear(void);
/* "suite impl/case size p/c", for messages about a case. */
void bench__case_name(char *buf, size_t len, const struct bench_case *c);
/* Notes collected so far (for the table's footer). */
int bench__notes(const char *const **out);

/* ---- util.c --------------------------------------------------------- */

/* Set up the CPU map; @pin false for --no-pin. */
void bench__cpus_setup(bool pin);
/* Sort @v (@n > 0 values) in ascending order and return its median. */
double bench__median(double *v, int n);
/* Find an executable regular file @name in $PATH (or a default path) and
 * write its path to @out.  False when there is none. */
bool bench__find_in_path(const char *name, char *out, size_t len);

#endif /* MPROC_BENCH_HARNESS_H */
