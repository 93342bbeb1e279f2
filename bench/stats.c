/*
 * stats.c - from repetitions to the figures that are printed: the median,
 * min and max of each figure of each case, the order of the table, and the
 * ratios of mproc_* rows against their baselines of the same run.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

/*
 * Baselines for the ratio columns: in @suite, a row whose impl starts with
 * @prefix is divided by the row @baseline of the same message size.  Add a
 * line here when a new family of rows needs a new comparison; a single row
 * can also name extra baselines in its .baselines.  Besides this table an
 * mproc_X row is compared with python_X (or python_Y for the longest Y that
 * X starts with at a '_') when such a row exists.
 */
static const struct baseline_rule {
	const char *suite, *prefix, *baseline;
} baseline_map[] = {
	{"throughput", "mproc_", "pipe"},
	{"throughput", "mproc_", "memcpy"},
	{"latency", "mproc_", "pipe"},
	{"latency", "mproc_", "spin_floor"},
	{"latency", "mproc_", "record_floor"},
	{"process", "mproc_fork", "raw_fork"},
	{"process", "mproc_spawn", "raw_spawn"},
	{"process", "mproc_forkserver", "raw_fork"},
};
#define NRULES (sizeof baseline_map / sizeof baseline_map[0])

/*
 * Peers (bench/peer.h): besides its baselines, an mproc row is divided by
 * its closest outside library.  The rule of the row's suite with the
 * longest prefix the impl starts with names up to two peer rows, so that
 * mproc_spsc_batch meets rte_ring_burst and not rte_ring.  Unlike a
 * baseline, a peer counts only with the same producer/consumer
 * configuration: mproc_mpmc 2/2 against rte_ring's 1/1 would compare two
 * different contentions.  Peer rows exist only at the sizes a peer carries
 * (the rings: 64 B), and only when mproc-bench was built with the peer,
 * so elsewhere the columns stay empty.
 */
static const struct peer_rule {
	const char *suite, *prefix, *peers[2];
} peer_map[] = {
	{"throughput", "mproc_spsc", {"rte_ring", "ck_ring"}},
	{"throughput", "mproc_spsc_batch", {"rte_ring_burst", NULL}},
	{"throughput", "mproc_pipe", {"rte_ring", "ck_ring"}},
	{"throughput", "mproc_mpmc", {"rte_ring_mpmc", "rte_ring_mpmc_rts"}},
	{"latency", "mproc_", {"rte_ring_busy", "ck_ring_busy"}},
};
#define NPEERS (sizeof peer_map / sizeof peer_map[0])

static void compute_stats(const struct bench_opts *o, struct bench_row *r)
{
	double *v = malloc((size_t)o->reps * sizeof *v);
	if (!v)
		return;
	for (int f = 0; f < BENCH_NFIGS; f++) {
		int n = 0;
		for (int k = 0; k < o->reps; k++) {
			double x = r->vals[k * BENCH_NFIGS + f];
			if (!isnan(x))
				v[n++] = x;
		}
		r->has[f] = n > 0;
		if (!n)
			continue;
		r->med[f] = bench__median(v, n); /* sorts v */
		r->lo[f] = v[0];
		r->hi[f] = v[n - 1];
	}
	free(v);
}

/* Table order: suite, message size, then baselines, python, mproc, and
 * other rows, then impl, case and configuration. */
static int impl_group(const char *impl)
{
	if (strncmp(impl, "mproc_", 6) == 0)
		return 2;
	if (strncmp(impl, "python_", 7) == 0)
		return 1;
	return 0;
}

static int row_cmp(const void *a, const void *b)
{
	const struct bench_case *x = &((const struct bench_row *)a)->c;
	const struct bench_case *y = &((const struct bench_row *)b)->c;
	int d = bench__suite_cmp(x->impl->suite, y->impl->suite);
	if (d)
		return d;
	if (x->msg_size != y->msg_size)
		return x->msg_size < y->msg_size ? -1 : 1;
	d = impl_group(x->impl->impl) - impl_group(y->impl->impl);
	if (d)
		return d;
	d = strcmp(x->impl->impl, y->impl->impl);
	if (d)
		return d;
	d = strcmp(x->case_name ? x->case_name : "",
		   y->case_name ? y->case_name : "");
	if (d)
		return d;
	if (x->producers != y->producers)
		return x->producers - y->producers;
	return x->consumers - y->consumers;
}

void bench__stats(const struct bench_opts *o, struct bench_rows *rows)
{
	for (int i = 0; i < rows->n; i++)
		compute_stats(o, &rows->v[i]);
	qsort(rows->v, (size_t)rows->n, sizeof *rows->v, row_cmp);
}

/* ---- ratios ---------------------------------------------------------- */

/* The baseline row for @r: same suite and message size; among those, the
 * same producer/consumer configuration and case name are preferred (e.g.
 * an mproc_mpmc 2/2 row meets posix_mq 2/2 if that exists, else 1/1).
 * With @same_pc, only the same configuration will do. */
static const struct bench_row *find_row(const struct bench_rows *rows,
					const struct bench_row *r,
					const char *impl, bool same_pc)
{
	const struct bench_row *best = NULL;
	int best_score = -1;
	for (int i = 0; i < rows->n; i++) {
		const struct bench_row *b = &rows->v[i];
		if (b->state != ROW_OK || b->nok == 0 ||
		    strcmp(b->c.impl->suite, r->c.impl->suite) != 0 ||
		    strcmp(b->c.impl->impl, impl) != 0 ||
		    b->c.msg_size != r->c.msg_size)
			continue;
		int score = 0;
		if (b->c.producers == r->c.producers &&
		    b->c.consumers == r->c.consumers)
			score += 2;
		else if (same_pc)
			continue;
		if (r->c.case_name && b->c.case_name &&
		    strcmp(r->c.case_name, b->c.case_name) == 0)
			score += 1;
		if (score > best_score) {
			best = b;
			best_score = score;
		}
	}
	return best;
}

static bool impl_exists(const struct bench_rows *rows, const char *suite,
			const char *impl)
{
	for (int i = 0; i < rows->n; i++)
		if (strcmp(rows->v[i].c.impl->suite, suite) == 0 &&
		    strcmp(rows->v[i].c.impl->impl, impl) == 0)
			return true;
	return false;
}

static int add_ratio(const struct bench_rows *rows, struct bench_ratio *out,
		     int n, const struct bench_row *r, const char *label,
		     const char *baseline, bool same_pc)
{
	if (n == BENCH_MAX_RATIOS || strcmp(baseline, r->c.impl->impl) == 0)
		return n;
	for (int i = 0; i < n; i++)
		if (strcmp(out[i].label, label) == 0)
			return n;
	const struct bench_row *b = find_row(rows, r, baseline, same_pc);
	if (!b)
		return n;
	/* Compare the suite's primary figure when both rows have it, else
	 * the first figure they share. */
	int fig = bench__suite(r->c.impl->suite)->primary;
	if (!(r->has[fig] && b->has[fig])) {
		fig = -1;
		for (int f = 0; f < BENCH_NFIGS && fig < 0; f++)
			if (r->has[f] && b->has[f])
				fig = f;
	}
	if (fig < 0 || b->med[fig] == 0)
		return n;
	out[n].label = label;
	out[n].baseline = b->c.impl->impl;
	out[n].value = r->med[fig] / b->med[fig];
	return n + 1;
}

int bench__ratios(const struct bench_rows *rows, const struct bench_row *r,
		  struct bench_ratio *out)
{
	int n = 0;
	const char *suite = r->c.impl->suite, *impl = r->c.impl->impl;
	if (r->state != ROW_OK || r->nok == 0)
		return 0;
	for (size_t i = 0; i < NRULES; i++)
		if (strcmp(baseline_map[i].suite, suite) == 0 &&
		    strncmp(impl, baseline_map[i].prefix,
			    strlen(baseline_map[i].prefix)) == 0)
			n = add_ratio(rows, out, n, r, baseline_map[i].baseline,
				      baseline_map[i].baseline, false);
	if (r->c.impl->baselines)
		for (const char *const *b = r->c.impl->baselines; *b; b++)
			n = add_ratio(rows, out, n, r, *b, *b, false);
	const struct peer_rule *peer = NULL;
	for (size_t i = 0; i < NPEERS; i++)
		if (strcmp(peer_map[i].suite, suite) == 0 &&
		    strncmp(impl, peer_map[i].prefix,
			    strlen(peer_map[i].prefix)) == 0 &&
		    (!peer || strlen(peer_map[i].prefix) > strlen(peer->prefix)))
			peer = &peer_map[i];
	for (int k = 0; peer && k < 2 && peer->peers[k]; k++)
		n = add_ratio(rows, out, n, r, peer->peers[k], peer->peers[k],
			      true);
	if (strncmp(impl, "mproc_", 6) == 0) {
		/* mproc_queue_busy -> python_queue_busy, python_queue. */
		char name[128];
		snprintf(name, sizeof name, "python_%s", impl + 6);
		while (strlen(name) > 7) {
			if (impl_exists(rows, suite, name)) {
				/* One "x python" column serves every pair. */
				n = add_ratio(rows, out, n, r, "python", name,
					      false);
				break;
			}
			char *us = strrchr(name, '_');
			if (!us || us - name < 7)
				break;
			*us = '\0';
		}
	}
	return n;
}
