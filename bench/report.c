/*
 * report.c - everything mproc-bench prints about its rows: --list, the
 * text table (one table per suite, median [min..max] and ratio columns,
 * then the notes), the JSON file, and the series handed to plot.c for
 * --plot.  It reads the rows after bench__stats; it measures nothing.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "json.h"
#include "mproc/common.h"

/* ---- formatting ------------------------------------------------------- */

static void fmt_num(char *buf, size_t len, double v, const char *unit)
{
	static const char *const si[] = {"", "k", "M", "G", "T", "P"};
	int k = 0;
	while (fabs(v) >= 1000 && k < 5) {
		v /= 1000;
		k++;
	}
	const char *f = fabs(v) >= 100 ? "%.0f%s%s"
			: fabs(v) >= 10 ? "%.1f%s%s" : "%.2f%s%s";
	snprintf(buf, len, f, v, si[k], unit);
}

static void fmt_time_ns(char *buf, size_t len, double ns)
{
	if (ns < 1000)
		snprintf(buf, len, ns >= 100 ? "%.0fns" : "%.1fns", ns);
	else if (ns < 1e6)
		snprintf(buf, len, ns >= 1e5 ? "%.0fus" : "%.1fus", ns / 1e3);
	else if (ns < 1e9)
		snprintf(buf, len, ns >= 1e8 ? "%.0fms" : "%.1fms", ns / 1e6);
	else
		snprintf(buf, len, "%.2fs", ns / 1e9);
}

static void fmt_fig(char *buf, size_t len, int f, double v)
{
	switch (f) {
	case BENCH_BYTES_PER_SEC:
		fmt_num(buf, len, v, "B/s");
		break;
	case BENCH_RTT_NS:
		fmt_time_ns(buf, len, v);
		break;
	case BENCH_START_JOIN_US:
	case BENCH_RTT_US:
		fmt_time_ns(buf, len, v * 1000);
		break;
	default:
		fmt_num(buf, len, v, "");
	}
}

static void fmt_size(char *buf, size_t len, size_t s)
{
	if (s == 0)
		snprintf(buf, len, "-");
	else if (s % BENCH_MIB == 0)
		snprintf(buf, len, "%zuM", s / BENCH_MIB);
	else if (s % BENCH_KIB == 0)
		snprintf(buf, len, "%zuK", s / BENCH_KIB);
	else
		snprintf(buf, len, "%zu", s);
}

/* ---- table ------------------------------------------------------------ */

/* A table is built as cells first so that every column gets the width of
 * its widest cell. */
#define MAX_COLS (4 + BENCH_NFIGS + 16)
#define CELL 80

struct table {
	int ncols, nlines;
	bool right[MAX_COLS];  /* right-aligned column */
	char (*cells)[MAX_COLS][CELL];
	char (*tails)[220];    /* free text after the last column */
	int *short_cols;       /* > 0: this line stops after that many */
};

static void print_cells(const struct table *t)
{
	int w[MAX_COLS] = {0};
	for (int l = 0; l < t->nlines; l++)
		for (int k = 0; k < t->ncols; k++) {
			int n = (int)strlen(t->cells[l][k]);
			if (n > w[k])
				w[k] = n;
		}
	for (int l = 0; l < t->nlines; l++) {
		char line[MAX_COLS * (CELL + 2) + 256];
		int n = 0, ncols = t->ncols;
		if (t->short_cols[l] > 0)
			ncols = t->short_cols[l];
		for (int k = 0; k < ncols; k++)
			n += snprintf(line + n, sizeof line - (size_t)n,
				      t->right[k] ? "%s%*s" : "%s%-*s",
				      k ? "  " : "", w[k], t->cells[l][k]);
		snprintf(line + n, sizeof line - (size_t)n, "%s",
			 t->tails[l]);
		/* No trailing blanks. */
		size_t len = strlen(line);
		while (len > 0 && line[len - 1] == ' ')
			line[--len] = '\0';
		puts(line);
	}
}

static void print_suite_table(const struct bench_rows *rows, const char *suite,
			      int from, int to)
{
	bool figs[BENCH_NFIGS] = {false};
	const char *labels[16];
	int nlabels = 0;
	bool any_case = false;
	for (int i = from; i < to; i++) {
		struct bench_row *r = &rows->v[i];
		any_case |= r->c.case_name != NULL;
		for (int f = 0; f < BENCH_NFIGS; f++)
			figs[f] |= r->has[f];
		struct bench_ratio rt[BENCH_MAX_RATIOS];
		int n = bench__ratios(rows, r, rt);
		for (int k = 0; k < n; k++) {
			bool seen = false;
			for (int j = 0; j < nlabels; j++)
				seen |= strcmp(labels[j], rt[k].label) == 0;
			if (!seen && nlabels < 16)
				labels[nlabels++] = rt[k].label;
		}
	}

	struct table t = {0};
	t.cells = calloc((size_t)(to - from + 1), sizeof *t.cells);
	t.tails = calloc((size_t)(to - from + 1), sizeof *t.tails);
	t.short_cols = calloc((size_t)(to - from + 1), sizeof *t.short_cols);
	if (!t.cells || !t.tails || !t.short_cols) {
		free(t.cells);
		free(t.tails);
		free(t.short_cols);
		return;
	}
	/* Heading line. */
	int k = 0;
	snprintf(t.cells[0][k++], CELL, "impl");
	if (any_case)
		snprintf(t.cells[0][k++], CELL, "case");
	t.right[k] = true;
	snprintf(t.cells[0][k++], CELL, "size");
	t.right[k] = true;
	snprintf(t.cells[0][k++], CELL, "p/c");
	for (int f = 0; f < BENCH_NFIGS; f++)
		if (figs[f])
			snprintf(t.cells[0][k++], CELL, "%s [min..max]",
				 bench__fig_head(f));
	for (int j = 0; j < nlabels; j++) {
		t.right[k] = true;
		snprintf(t.cells[0][k++], CELL, "x %s", labels[j]);
	}
	t.ncols = k;
	t.nlines = 1;

	for (int i = from; i < to; i++) {
		struct bench_row *r = &rows->v[i];
		if (r->state == ROW_SKIPPED)
			continue;
		char (*c)[CELL] = t.cells[t.nlines];
		char *tail = t.tails[t.nlines];
		t.nlines++;
		k = 0;
		snprintf(c[k++], CELL, "%s", r->c.impl->impl);
		if (any_case)
			snprintf(c[k++], CELL, "%s",
				 r->c.case_name ? r->c.case_name : "-");
		fmt_size(c[k++], CELL, r->c.msg_size);
		if (r->c.producers || r->c.consumers)
			snprintf(c[k++], CELL, "%d/%d", r->c.producers,
				 r->c.consumers);
		else
			snprintf(c[k++], CELL, "-");
		if (r->nok == 0) {
			snprintf(tail, sizeof *t.tails, "  FAILED: %.200s",
				 r->err);
			t.short_cols[t.nlines - 1] = k;
			continue;
		}
		for (int f = 0; f < BENCH_NFIGS; f++) {
			if (!figs[f])
				continue;
			char *cell = c[k++];
			snprintf(cell, CELL, "-");
			if (r->has[f]) {
				char m[24], lo[24], hi[24];
				fmt_fig(m, sizeof m, f, r->med[f]);
				fmt_fig(lo, sizeof lo, f, r->lo[f]);
				fmt_fig(hi, sizeof hi, f, r->hi[f]);
				snprintf(cell, CELL, "%s [%s..%s]", m, lo, hi);
			}
		}
		struct bench_ratio rt[BENCH_MAX_RATIOS];
		int n = bench__ratios(rows, r, rt);
		for (int j = 0; j < nlabels; j++) {
			char *cell = c[k++];
			for (int q = 0; q < n; q++)
				if (strcmp(rt[q].label, labels[j]) == 0)
					snprintf(cell, CELL, "%.3g",
						 rt[q].value);
		}
		if (r->nfail)
			snprintf(tail, sizeof *t.tails,
				 "  (%d of %d repetitions failed: %.150s)",
				 r->nfail, r->nfail + r->nok, r->err);
	}

	const struct bench_suite *si = bench__suite(suite);
	printf("\n== %s%s%s ==\n", suite, si->what[0] ? ": " : "", si->what);
	print_cells(&t);
	free(t.cells);
	free(t.tails);
	free(t.short_cols);
}

static void print_header(const struct bench_opts *o)
{
	char cpus[256] = "";
	int n = bench_ncpus();
	int p = bench_cpu_for(0, 0), q = bench_cpu_for(1, 0);
	if (p >= 0)
		snprintf(cpus, sizeof cpus, "producers pinned from CPU %d, "
			 "consumers from CPU %d", p, q);
	else
		snprintf(cpus, sizeof cpus, "workers not pinned");
	printf("mproc-bench %s (libmproc %s): %d CPU%s allowed, %s; "
	       "median of %d repetitions of %lld ms [min..max]%s\n",
	       MPROC_VERSION_STRING, mproc_version(), n, n == 1 ? "" : "s",
	       cpus, o->reps, (long long)(o->duration_ns / 1000000),
	       o->quick ? ", quick" : "");
}

void bench__print_table(const struct bench_opts *o,
			const struct bench_rows *rows)
{
	print_header(o);
	int i = 0;
	while (i < rows->n) {
		int j = i;
		while (j < rows->n &&
		       strcmp(rows->v[j].c.impl->suite, rows->v[i].c.impl->suite) == 0)
			j++;
		bool any = false;
		for (int k = i; k < j; k++)
			any |= rows->v[k].state != ROW_SKIPPED;
		if (any)
			print_suite_table(rows, rows->v[i].c.impl->suite, i, j);
		i = j;
	}
	const char *const *notes;
	int nn = bench__notes(&notes);
	if (nn) {
		printf("\nNotes:\n");
		for (int k = 0; k < nn; k++)
			printf("  - %s\n", notes[k]);
	}
}

/* ---- JSON ------------------------------------------------------------- */

int bench__write_json(const struct bench_opts *o,
		      const struct bench_rows *rows, const char *path)
{
	FILE *f = fopen(path, "w");
	if (!f) {
		fprintf(stderr, "mproc-bench: %s: %s\n", path, strerror(errno));
		return -1;
	}
	fputs("[", f);
	bool first = true;
	for (int i = 0; i < rows->n; i++) {
		const struct bench_row *r = &rows->v[i];
		if (r->state == ROW_SKIPPED)
			continue;
		fputs(first ? "\n  {" : ",\n  {", f);
		first = false;
		fputs("\"suite\": ", f);
		mproc_tool_json_str(f, r->c.impl->suite);
		fputs(", \"impl\": ", f);
		mproc_tool_json_str(f, r->c.impl->impl);
		if (r->c.case_name) {
			fputs(", \"case\": ", f);
			mproc_tool_json_str(f, r->c.case_name);
		}
		fprintf(f, ", \"msg_size\": %zu, \"producers\": %d, "
			   "\"consumers\": %d, \"reps\": %d, "
			   "\"reps_failed\": %d, \"duration_ms\": %lld",
			r->c.msg_size, r->c.producers, r->c.consumers, r->nok,
			r->nfail, (long long)(o->duration_ns / 1000000));
		/* The primary figure also gets plain min/max/samples. */
		int prim = bench__suite(r->c.impl->suite)->primary;
		if (!r->has[prim])
			for (prim = 0; prim < BENCH_NFIGS && !r->has[prim];
			     prim++)
				;
		for (int fg = 0; fg < BENCH_NFIGS; fg++) {
			if (!r->has[fg])
				continue;
			fprintf(f, ", \"%s\": ", bench_fig_name(fg));
			mproc_tool_json_num(f, r->med[fg]);
			fprintf(f, ", \"%s_min\": ", bench_fig_name(fg));
			mproc_tool_json_num(f, r->lo[fg]);
			fprintf(f, ", \"%s_max\": ", bench_fig_name(fg));
			mproc_tool_json_num(f, r->hi[fg]);
		}
		if (prim < BENCH_NFIGS) {
			fprintf(f, ", \"figure\": \"%s\", \"min\": ",
				bench_fig_name(prim));
			mproc_tool_json_num(f, r->lo[prim]);
			fputs(", \"max\": ", f);
			mproc_tool_json_num(f, r->hi[prim]);
			fputs(", \"samples\": [", f);
			bool sfirst = true;
			for (int k = 0; k < o->reps; k++) {
				double v = r->vals[k * BENCH_NFIGS + prim];
				if (isnan(v))
					continue;
				if (!sfirst)
					fputs(", ", f);
				sfirst = false;
				mproc_tool_json_num(f, v);
			}
			fputs("]", f);
		}
		struct bench_ratio rt[BENCH_MAX_RATIOS];
		int n = bench__ratios(rows, r, rt);
		if (n) {
			fputs(", \"ratio\": {", f);
			for (int k = 0; k < n; k++) {
				if (k)
					fputs(", ", f);
				mproc_tool_json_str(f, rt[k].baseline);
				fputs(": ", f);
				mproc_tool_json_num(f, rt[k].value);
			}
			fputs("}", f);
		}
		if (r->nfail || r->nok == 0) {
			fputs(", \"error\": ", f);
			mproc_tool_json_str(f, r->err);
		}
		fputs("}", f);
	}
	fputs(first ? "]\n" : "\n]\n", f);
	if (fclose(f) != 0) {
		fprintf(stderr, "mproc-bench: %s: %s\n", path, strerror(errno));
		return -1;
	}
	return 0;
}

/* ---- plot ------------------------------------------------------------- */

int bench__write_plot(const struct bench_opts *o,
		      const struct bench_rows *rows, const char *path)
{
	struct bench_plot_series *series = NULL;
	int ns = 0;
	for (int i = 0; i < rows->n; i++) {
		const struct bench_row *r = &rows->v[i];
		if (strcmp(r->c.impl->suite, "throughput") != 0 ||
		    r->state != ROW_OK || !r->has[BENCH_BYTES_PER_SEC] ||
		    r->c.msg_size == 0)
			continue;
		char label[96];
		int l = snprintf(label, sizeof label, "%s", r->c.impl->impl);
		if (r->c.case_name)
			l += snprintf(label + l, sizeof label - (size_t)l,
				      "/%s", r->c.case_name);
		if ((r->c.producers != 1 || r->c.consumers != 1) &&
		    r->c.consumers != 0)
			snprintf(label + l, sizeof label - (size_t)l, " %d/%d",
				 r->c.producers, r->c.consumers);
		int k;
		for (k = 0; k < ns; k++)
			if (strcmp(series[k].label, label) == 0)
				break;
		if (k == ns) {
			struct bench_plot_series *g =
				realloc(series, (size_t)(ns + 1) * sizeof *g);
			if (!g) {
				free(series);
				return -1;
			}
			series = g;
			memset(&series[ns], 0, sizeof series[ns]);
			snprintf(series[ns].label, sizeof series[ns].label,
				 "%s", label);
			ns++;
		}
		struct bench_plot_series *s = &series[k];
		if (s->npoints < 32)
			s->pts[s->npoints++] = (struct bench_plot_point){
				(double)r->c.msg_size,
				r->med[BENCH_BYTES_PER_SEC],
				r->lo[BENCH_BYTES_PER_SEC],
				r->hi[BENCH_BYTES_PER_SEC]};
	}
	/* Rows are sorted by size already, so points are in order. */
	int rc = 0;
	if (ns == 0) {
		fprintf(stderr, "mproc-bench: --plot: no throughput rows to "
				"plot\n");
		rc = -1;
	} else {
		char title[200];
		snprintf(title, sizeof title,
			 "mproc-bench throughput (median of %d x %lld ms)",
			 o->reps, (long long)(o->duration_ns / 1000000));
		rc = bench__plot(path, series, ns, title, o->plot_builtin);
	}
	free(series);
	return rc;
}

/* ---- --list ----------------------------------------------------------- */

void bench__list_rows(void)
{
	printf("%-12s %-18s %s\n", "suite", "impl", "description");
	for (const struct bench_impl *r = bench__registry(); r;
	     r = r->next_) {
		printf("%-12s %-18s %s\n", r->suite, r->impl,
		       r->descr ? r->descr : "");
		if (r->sizes && r->sizes[0]) {
			printf("%31s sizes:", "");
			for (const size_t *s = r->sizes; *s; s++) {
				char b[24];
				fmt_size(b, sizeof b, *s);
				printf(" %s", b);
			}
			printf("\n");
		}
		if (r->pcs) {
			printf("%31s producers/consumers:", "");
			for (const struct bench_pc *p = r->pcs;
			     p->producers || p->consumers; p++)
				printf(" %d/%d", p->producers, p->consumers);
			printf("\n");
		}
		if (r->cases) {
			printf("%31s cases:", "");
			for (const char *const *c = r->cases; *c; c++)
				printf(" %s", *c);
			printf("\n");
		}
	}
}
