/*
 * run.c - the schedule: expanding the registered rows into cases, and
 * running their repetitions in interleaved rounds.
 *
 * Scheduling: every selected case of a suite runs one repetition per
 * round, and the order of the cases is shuffled anew each round (round 1
 * keeps registration order).  The host moves virtual CPUs and changes the
 * cost of a cache-line transfer for tens of seconds at a time, so running
 * each case to completion would compare cases measured under different
 * conditions; interleaving spreads every case over the same conditions, and
 * medians over rounds keep one unlucky round from moving a row.
 */
#include <fnmatch.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "mproc/common.h"

/* ---- selection and cases -------------------------------------------- */

static bool impl_selected(const struct bench_opts *o,
			  const struct bench_impl *impl)
{
	if (o->nsuites > 0) {
		bool in = false;
		for (int i = 0; i < o->nsuites; i++)
			in |= strcmp(o->suites[i], impl->suite) == 0;
		if (!in)
			return false;
	}
	if (!o->impl_patterns)
		return true;
	char *copy = strdup(o->impl_patterns), *save = NULL;
	bool match = false;
	for (char *t = strtok_r(copy, ",", &save); t && !match;
	     t = strtok_r(NULL, ",", &save))
		match = fnmatch(t, impl->impl, 0) == 0;
	free(copy);
	return match;
}

static bool size_in(size_t s, const size_t *list)
{
	for (; *list; list++)
		if (*list == s)
			return true;
	return false;
}

static void add_row(const struct bench_opts *o, struct bench_rows *rows,
		    const struct bench_impl *impl, const char *case_name,
		    size_t size, struct bench_pc pc)
{
	if (rows->n == rows->cap) {
		rows->cap = rows->cap ? 2 * rows->cap : 64;
		rows->v = realloc(rows->v, (size_t)rows->cap * sizeof *rows->v);
		if (!rows->v) {
			perror("mproc-bench");
			exit(1);
		}
	}
	struct bench_row *r = &rows->v[rows->n++];
	memset(r, 0, sizeof *r);
	r->c.impl = impl;
	r->c.case_name = case_name;
	r->c.msg_size = size;
	r->c.producers = pc.producers;
	r->c.consumers = pc.consumers;
	r->c.duration_ns = o->duration_ns;
	r->c.reps = o->reps;
	r->c.quick = o->quick;
	r->vals = malloc((size_t)o->reps * BENCH_NFIGS * sizeof *r->vals);
	if (!r->vals) {
		perror("mproc-bench");
		exit(1);
	}
	for (int i = 0; i < o->reps * BENCH_NFIGS; i++)
		r->vals[i] = NAN;
}

/* Expand a row into its cases (sizes x configurations x named cases). */
static void expand(const struct bench_opts *o, struct bench_rows *rows,
		   const struct bench_impl *impl)
{
	const struct bench_suite *si = bench__suite(impl->suite);
	const size_t *sizes = impl->sizes ? impl->sizes : si->sizes;
	static const struct bench_pc one_one[] = {{1, 1}, {0, 0}};
	static const struct bench_pc none[] = {{0, 0}, {0, 0}};
	const struct bench_pc *pcs = impl->pcs ? impl->pcs
				   : si->has_pc ? one_one : none;
	/* --quick keeps the suite's quick sizes when the row has any. */
	bool quick_filter = false;
	if (o->quick && sizes[0] != 0)
		for (const size_t *s = sizes; *s; s++)
			quick_filter |= size_in(*s, si->quick_sizes);
	static const char *const no_case[] = {NULL};
	const char *const *cases = impl->cases ? impl->cases : no_case;
	size_t ncases = 1;
	if (impl->cases)
		for (ncases = 0; impl->cases[ncases]; ncases++)
			;

	/* A list {0} (or empty) means the row has no message size. */
	const size_t *sz = sizes;
	size_t zero_size[] = {0};
	size_t nsz = 0;
	while (sz[nsz])
		nsz++;
	if (nsz == 0) {
		sz = zero_size;
		nsz = 1;
	}
	for (size_t k = 0; k < ncases; k++)
		for (size_t i = 0; i < nsz; i++) {
			if (quick_filter && !size_in(sz[i], si->quick_sizes))
				continue;
			if (o->sizes[0] && sz[i] && !size_in(sz[i], o->sizes))
				continue;
			/* An empty pcs list still yields one {0, 0} case. */
			const struct bench_pc *p = pcs;
			do {
				add_row(o, rows, impl, cases[k], sz[i],
					*p);
			} while ((++p)->producers || p->consumers);
		}
}

/* ---- running -------------------------------------------------------- */

static uint64_t rng_state;

static uint64_t rng_next(void)
{
	/* xorshift64*: a fixed seed per round keeps runs reproducible. */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * UINT64_C(2685821657736338717);
}

static void prepare_row(struct bench_row *r)
{
	char why[200] = "";
	if (!r->c.impl->prepare)
		return;
	int rc = r->c.impl->prepare(&r->c, why, sizeof why);
	char what[160];
	bench__case_name(what, sizeof what, &r->c);
	if (rc == BENCH_SKIP) {
		r->state = ROW_SKIPPED;
		bench_note("skipped %s: %s", what, why);
	} else if (rc < 0) {
		r->state = ROW_FAILED;
		snprintf(r->err, sizeof r->err, "%s", why[0] ? why
				     : mproc_strerror(rc));
		bench_note("failed %s: %s", what, r->err);
	}
}

static void run_rep(struct bench_row *r, int rep)
{
	struct bench_sample s;
	for (int f = 0; f < BENCH_NFIGS; f++)
		s.fig[f] = NAN;
	s.note[0] = '\0';
	r->c.rep = rep;
	int rc = r->c.impl->run(&r->c, &s);
	char what[160];
	bench__case_name(what, sizeof what, &r->c);
	if (rc == BENCH_SKIP) {
		r->state = ROW_SKIPPED;
		bench_note("skipped %s: %s", what, s.note);
		return;
	}
	if (rc < 0) {
		r->nfail++;
		snprintf(r->err, sizeof r->err, "%s",
			 s.note[0] ? s.note : mproc_strerror(rc));
		bench__progress_clear();
		fprintf(stderr, "mproc-bench: %s, repetition %d failed: %s\n",
			what, rep + 1, r->err);
		return;
	}
	bool any = false;
	for (int f = 0; f < BENCH_NFIGS; f++) {
		r->vals[rep * BENCH_NFIGS + f] = s.fig[f];
		any |= !isnan(s.fig[f]);
	}
	if (!any) {
		r->nfail++;
		snprintf(r->err, sizeof r->err, "no figure reported");
		return;
	}
	r->nok++;
	if (s.note[0])
		bench_note("%s: %s", what, s.note);
}

static void run_suite(const struct bench_opts *o, const char *suite,
		      struct bench_row **list, int n)
{
	for (int i = 0; i < n; i++)
		prepare_row(list[i]);
	struct bench_row **order = malloc((size_t)n * sizeof *order);
	if (!order) {
		perror("mproc-bench");
		exit(1);
	}
	for (int round = 0; round < o->reps; round++) {
		int m = 0;
		for (int i = 0; i < n; i++)
			if (list[i]->state == ROW_OK)
				order[m++] = list[i];
		rng_state = UINT64_C(0x9e3779b97f4a7c15) * (uint64_t)(round + 1);
		for (int i = m - 1; round > 0 && i > 0; i--) {
			int j = (int)(rng_next() % (uint64_t)(i + 1));
			struct bench_row *t = order[i];
			order[i] = order[j];
			order[j] = t;
		}
		for (int i = 0; i < m; i++) {
			if (order[i]->state != ROW_OK)
				continue;
			bench__progress(suite, round, o->reps, i, m,
					&order[i]->c);
			run_rep(order[i], round);
		}
	}
	bench__progress_clear();
	free(order);
	for (int i = 0; i < n; i++)
		if (list[i]->c.impl->cleanup && list[i]->state != ROW_SKIPPED)
			list[i]->c.impl->cleanup(&list[i]->c);
}

void bench__expand_all(const struct bench_opts *o, struct bench_rows *rows)
{
	for (const struct bench_impl *impl = bench__registry(); impl;
	     impl = impl->next_)
		if (impl_selected(o, impl))
			expand(o, rows, impl);
}

void bench__run_all(const struct bench_opts *o, struct bench_rows *rows)
{
	/* Group by suite (stable in registration order within a suite). */
	struct bench_row **bysuite = malloc((size_t)rows->n * sizeof *bysuite);
	if (!bysuite) {
		perror("mproc-bench");
		exit(1);
	}
	const char *done_suites[64];
	int ndone = 0;
	for (int i = 0; i < rows->n; i++) {
		const char *suite = rows->v[i].c.impl->suite;
		bool seen = false;
		for (int k = 0; k < ndone; k++)
			seen |= strcmp(done_suites[k], suite) == 0;
		if (seen || ndone == 64)
			continue;
		done_suites[ndone++] = suite;
	}
	/* Run suites in table order. */
	for (int a = 0; a < ndone; a++)
		for (int b = a + 1; b < ndone; b++)
			if (bench__suite_cmp(done_suites[b], done_suites[a]) < 0) {
				const char *t = done_suites[a];
				done_suites[a] = done_suites[b];
				done_suites[b] = t;
			}
	for (int k = 0; k < ndone; k++) {
		int n = 0;
		for (int i = 0; i < rows->n; i++)
			if (strcmp(rows->v[i].c.impl->suite, done_suites[k]) == 0)
				bysuite[n++] = &rows->v[i];
		run_suite(o, done_suites[k], bysuite, n);
	}
	free(bysuite);
}

void bench__rows_free(struct bench_rows *rows)
{
	for (int i = 0; i < rows->n; i++)
		free(rows->v[i].vals);
	free(rows->v);
	*rows = (struct bench_rows){0};
}
