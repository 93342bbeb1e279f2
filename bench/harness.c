/*
 * harness.c - mproc-bench's main program: the registry of rows, option
 * parsing, the interleaved schedule of repetitions, statistics, and the
 * table and JSON output.
 *
 * Scheduling: every selected case of a suite runs one repetition per
 * round, and the order of the cases is shuffled anew each round (round 1
 * keeps registration order).  The host moves virtual CPUs and changes the
 * cost of a cache-line transfer for tens of seconds at a time, so running
 * each case to completion would compare cases measured under different
 * conditions; interleaving spreads every case over the same conditions, and
 * medians over rounds keep one unlucky round from moving a row.
 */
#include <errno.h>
#include <fnmatch.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "internal.h"
#include "mproc/common.h"

/* ---- registry -------------------------------------------------------- */

static struct bench_impl *registry_head, **registry_tail = &registry_head;

void bench_register(struct bench_impl *impl)
{
	impl->next_ = NULL;
	*registry_tail = impl;
	registry_tail = &impl->next_;
}

#define MAX_HOOKS 16
static bench_early_hook_fn hooks[MAX_HOOKS];
static int nhooks;

void bench_register_early_hook(bench_early_hook_fn fn)
{
	if (nhooks < MAX_HOOKS)
		hooks[nhooks++] = fn;
}

static char self_exe[PATH_MAX];

const char *bench_self_exe(void)
{
	return self_exe;
}

/* ---- figures and suites ---------------------------------------------- */

static const char *const fig_names[BENCH_NFIGS] = {
	[BENCH_MSGS_PER_SEC] = "msgs_per_sec",
	[BENCH_BYTES_PER_SEC] = "bytes_per_sec",
	[BENCH_RTT_NS] = "rtt_ns",
	[BENCH_START_JOIN_US] = "start_join_us",
	[BENCH_TASKS_PER_SEC] = "tasks_per_sec",
	[BENCH_RTT_US] = "rtt_us",
};

/* Column headings in the table. */
static const char *const fig_heads[BENCH_NFIGS] = {
	[BENCH_MSGS_PER_SEC] = "msgs/s",
	[BENCH_BYTES_PER_SEC] = "bytes/s",
	[BENCH_RTT_NS] = "round trip",
	[BENCH_START_JOIN_US] = "start+join",
	[BENCH_TASKS_PER_SEC] = "tasks/s",
	[BENCH_RTT_US] = "round trip",
};

const char *bench_fig_name(enum bench_fig f)
{
	return (unsigned)f < BENCH_NFIGS ? fig_names[f] : "?";
}

bool bench_fig_lower_is_better(enum bench_fig f)
{
	return f == BENCH_RTT_NS || f == BENCH_START_JOIN_US ||
	       f == BENCH_RTT_US;
}

struct suite_info {
	const char *name;
	const char *what;
	const size_t *sizes;       /* default sizes, 0-terminated */
	const size_t *quick_sizes; /* kept by --quick */
	enum bench_fig primary;    /* ratios use this figure first */
	bool has_pc;               /* producers/consumers default to 1/1 */
};

static const size_t no_sizes[] = {0, 0};

static const struct suite_info known_suites[] = {
	{"throughput", "messages streamed from producers to consumers",
	 BENCH_SIZES(64, 256, BENCH_KIB, 4 * BENCH_KIB, 64 * BENCH_KIB,
		     BENCH_MIB),
	 BENCH_SIZES(64, 4 * BENCH_KIB, BENCH_MIB), BENCH_MSGS_PER_SEC, true},
	{"latency", "round trip of one message between two processes",
	 BENCH_SIZES(64), BENCH_SIZES(64), BENCH_RTT_NS, true},
	{"process", "start and join a process that does nothing", no_sizes,
	 no_sizes, BENCH_START_JOIN_US, false},
	{"pool", "tasks through a pool of worker processes", no_sizes,
	 no_sizes, BENCH_TASKS_PER_SEC, false},
};
#define NKNOWN (sizeof known_suites / sizeof known_suites[0])

static const struct suite_info *suite_info(const char *name)
{
	static const struct suite_info other = {
		NULL, "", no_sizes, no_sizes, BENCH_MSGS_PER_SEC, false};
	for (size_t i = 0; i < NKNOWN; i++)
		if (strcmp(known_suites[i].name, name) == 0)
			return &known_suites[i];
	return &other;
}

/* Known suites first, in the order above, then others alphabetically. */
static int suite_cmp(const char *a, const char *b)
{
	size_t ra = NKNOWN, rb = NKNOWN;
	for (size_t i = 0; i < NKNOWN; i++) {
		if (strcmp(known_suites[i].name, a) == 0)
			ra = i;
		if (strcmp(known_suites[i].name, b) == 0)
			rb = i;
	}
	if (ra != rb)
		return ra < rb ? -1 : 1;
	return strcmp(a, b);
}

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
	{"process", "mproc_fork", "raw_fork"},
	{"process", "mproc_spawn", "raw_spawn"},
	{"process", "mproc_forkserver", "raw_fork"},
};
#define NRULES (sizeof baseline_map / sizeof baseline_map[0])

/* ---- options ---------------------------------------------------------- */

static struct {
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
} opt = {.pin = true};

static void usage(FILE *f)
{
	fprintf(f,
"Usage: mproc-bench [OPTION]... [SUITE]...\n"
"Measure mproc's queues, pipes, processes and pools side by side with the\n"
"operating system's own mechanisms (pipe, socketpair, POSIX message queues,\n"
"fork, posix_spawn), their physical floors (memcpy, cache-line and futex\n"
"ping-pong) and Python's multiprocessing, in one run on one machine.\n"
"\n"
"SUITE selects suites (default: all): throughput, latency, process, and\n"
"any suite added by a row (see --list).\n"
"\n"
"Options:\n"
"  --quick          fewer sizes (64 B, 4 KiB, 1 MiB), 5 repetitions of 60 ms;\n"
"                   finishes in well under a minute on 2 cores\n"
"  --json FILE      write a JSON array, one object per measurement\n"
"  --plot FILE.svg  plot throughput (bytes/s, log scale) against message size\n"
"                   for every throughput row (gnuplot if installed, else a\n"
"                   built-in SVG writer)\n"
"  --plot-builtin   use the built-in SVG writer even if gnuplot is installed\n"
"  --reps N         repetitions per case (default 9, quick 5)\n"
"  --duration MS    time budget of one repetition (default 150, quick 60)\n"
"  --impl LIST      only rows whose impl matches one of the comma-separated\n"
"                   shell patterns, e.g. --impl 'mproc_*,pipe'\n"
"  --sizes LIST     only these message sizes, e.g. --sizes 64,4K,1M\n"
"  --no-pin         do not pin workers to CPUs\n"
"  --list           list the registered rows and exit\n"
"  --help           show this help and exit\n"
"  " BENCH_EXIT_ARG "   (internal) exit at once with status 0; the raw_spawn\n"
"                   row starts the executable this way\n"
"\n"
"Method:\n"
"  Each row (suite, impl) is measured for every message size and\n"
"  producer/consumer configuration it supports.  Repetitions are time-bounded\n"
"  and interleaved: round 1 runs every case of a suite once, then round 2,\n"
"  and so on, in a new shuffled order each round, because this kind of\n"
"  machine drifts for tens of seconds at a time.  The table shows the median\n"
"  over repetitions with [min..max]; ratios between rows of one run are the\n"
"  meaningful figures, absolute ones move from run to run.\n"
"  Producers and consumers are separate processes (fork) pinned to different\n"
"  CPUs: producers to the first half of the allowed CPUs, consumers to the\n"
"  second half (no pinning when only one CPU is allowed).\n"
"\n"
"Figures (JSON field names):\n"
"  msgs_per_sec, bytes_per_sec  throughput: messages received by the\n"
"      consumers over the time from the start barrier to the last one\n"
"      received.  Every message is checked by the consumer (sequence number\n"
"      in the first 8 bytes, a mix of it in the last 8), so a lost,\n"
"      duplicated, reordered or torn message fails the row.  memcpy is one\n"
"      pinned process copying between two buffers of the message size: the\n"
"      single-core ceiling for any API that copies.\n"
"  rtt_ns  latency: round trip of a 64 B message (pipe, socketpair) or of\n"
"      one shared word (spin_floor: two processes bouncing a cache line of\n"
"      MAP_SHARED memory, busy-polling; futex_floor: the same word with\n"
"      FUTEX_WAIT/FUTEX_WAKE, shared futexes).  Round trips are timed in\n"
"      batches grown until a batch takes 20 us; a repetition's value is the\n"
"      median over its batches of the mean round trip within the batch.\n"
"  start_join_us  process: start a process running a trivial target and\n"
"      wait for it; raw_fork is fork + _exit + waitpid, raw_spawn is\n"
"      posix_spawn of this executable with " BENCH_EXIT_ARG " + waitpid;\n"
"      a repetition's value is the median over its start+joins.\n"
"  tasks_per_sec, rtt_us  pool rows.\n"
"  python_* rows run python3 (or $MPROC_BENCH_PYTHON) with an embedded\n"
"  script: Queue put/get and Pipe send_bytes/recv_bytes of 64 B between two\n"
"  processes, Process start+join with the fork, spawn and forkserver start\n"
"  methods.  Without Python they are skipped with a note.\n"
"\n"
"  Ratio columns (\"x pipe\") divide an mproc_* row's median by the median of\n"
"  its baseline row of the same size in the same run.\n"
"\n"
"JSON: one object per measured case with suite, impl, case (named cases\n"
"  only), msg_size (0: none), producers, consumers (0/0: not applicable),\n"
"  reps (successful repetitions), reps_failed, duration_ms; for each figure\n"
"  measured its median under the figure's name and <name>_min, <name>_max;\n"
"  figure (the main figure's name) with its min, max and per-repetition\n"
"  samples; ratio ({baseline impl: ratio}) for mproc_* rows; error.\n"
"\n"
"Exit status: 0 if every measurement succeeded, 1 if one failed (e.g. a\n"
"message was lost), 2 on bad usage.\n");
}

static bool parse_size(const char *s, size_t *out)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || end == s)
		return false;
	if (*end == 'k' || *end == 'K')
		v *= 1024, end++;
	else if (*end == 'm' || *end == 'M')
		v *= 1024 * 1024, end++;
	if (*end == 'B' || *end == 'b')
		end++;
	if (*end || v == 0)
		return false;
	*out = (size_t)v;
	return true;
}

static bool parse_int(const char *s, long lo, long hi, long *out)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < lo || v > hi)
		return false;
	*out = v;
	return true;
}

static int parse_args(int argc, char **argv)
{
	enum { O_JSON = 256, O_PLOT, O_PLOT_BUILTIN, O_REPS, O_DURATION,
	       O_IMPL, O_SIZES, O_NO_PIN, O_LIST, O_QUICK, O_HELP };
	static const struct option longopts[] = {
		{"quick", no_argument, NULL, O_QUICK},
		{"json", required_argument, NULL, O_JSON},
		{"plot", required_argument, NULL, O_PLOT},
		{"plot-builtin", no_argument, NULL, O_PLOT_BUILTIN},
		{"reps", required_argument, NULL, O_REPS},
		{"duration", required_argument, NULL, O_DURATION},
		{"impl", required_argument, NULL, O_IMPL},
		{"sizes", required_argument, NULL, O_SIZES},
		{"no-pin", no_argument, NULL, O_NO_PIN},
		{"list", no_argument, NULL, O_LIST},
		{"help", no_argument, NULL, O_HELP},
		{NULL, 0, NULL, 0},
	};
	long reps = 0, dur_ms = 0;
	int c;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case O_QUICK:
			opt.quick = true;
			break;
		case O_JSON:
			opt.json = optarg;
			break;
		case O_PLOT:
			opt.plot = optarg;
			break;
		case O_PLOT_BUILTIN:
			opt.plot_builtin = true;
			break;
		case O_REPS:
			if (!parse_int(optarg, 1, 1000, &reps)) {
				fprintf(stderr, "mproc-bench: --reps wants "
						"1..1000\n");
				return 2;
			}
			break;
		case O_DURATION:
			if (!parse_int(optarg, 1, 600000, &dur_ms)) {
				fprintf(stderr, "mproc-bench: --duration wants "
						"1..600000 ms\n");
				return 2;
			}
			break;
		case O_IMPL:
			opt.impl_patterns = optarg;
			break;
		case O_SIZES: {
			char *copy = strdup(optarg), *save = NULL;
			int n = 0;
			for (char *t = strtok_r(copy, ",", &save); t;
			     t = strtok_r(NULL, ",", &save)) {
				if (n == 31 || !parse_size(t, &opt.sizes[n])) {
					fprintf(stderr, "mproc-bench: bad size "
							"'%s'\n", t);
					free(copy);
					return 2;
				}
				n++;
			}
			opt.sizes[n] = 0;
			free(copy);
			break;
		}
		case O_NO_PIN:
			opt.pin = false;
			break;
		case O_LIST:
			opt.list = true;
			break;
		case 'h':
		case O_HELP:
			usage(stdout);
			exit(0);
		default:
			fprintf(stderr, "Try 'mproc-bench --help'.\n");
			return 2;
		}
	}
	opt.reps = reps ? (int)reps : opt.quick ? 5 : 9;
	opt.duration_ns = (dur_ms ? dur_ms : opt.quick ? 60 : 150) * 1000000LL;
	opt.suites = argv + optind;
	opt.nsuites = argc - optind;
	for (int i = 0; i < opt.nsuites; i++) {
		bool found = false;
		for (struct bench_impl *r = registry_head; r; r = r->next_)
			found |= strcmp(r->suite, opt.suites[i]) == 0;
		if (!found) {
			fprintf(stderr, "mproc-bench: unknown suite '%s' "
					"(see --list)\n", opt.suites[i]);
			return 2;
		}
	}
	return 0;
}

static bool impl_selected(const struct bench_impl *impl)
{
	if (opt.nsuites > 0) {
		bool in = false;
		for (int i = 0; i < opt.nsuites; i++)
			in |= strcmp(opt.suites[i], impl->suite) == 0;
		if (!in)
			return false;
	}
	if (!opt.impl_patterns)
		return true;
	char *copy = strdup(opt.impl_patterns), *save = NULL;
	bool match = false;
	for (char *t = strtok_r(copy, ",", &save); t && !match;
	     t = strtok_r(NULL, ",", &save))
		match = fnmatch(t, impl->impl, 0) == 0;
	free(copy);
	return match;
}

/* ---- cases ------------------------------------------------------------ */

enum row_state { ROW_OK, ROW_SKIPPED, ROW_FAILED };

struct row {
	struct bench_case c;
	enum row_state state;
	double *vals; /* reps x BENCH_NFIGS, NAN where not measured */
	int nok, nfail;
	char err[200];
	/* Filled after the run. */
	double med[BENCH_NFIGS], lo[BENCH_NFIGS], hi[BENCH_NFIGS];
	bool has[BENCH_NFIGS];
};

static struct row *rows;
static int nrows, rows_cap;

static bool size_in(size_t s, const size_t *list)
{
	for (; *list; list++)
		if (*list == s)
			return true;
	return false;
}

static void add_row(const struct bench_impl *impl, const char *case_name,
		    size_t size, struct bench_pc pc)
{
	if (nrows == rows_cap) {
		rows_cap = rows_cap ? 2 * rows_cap : 64;
		rows = realloc(rows, (size_t)rows_cap * sizeof *rows);
		if (!rows) {
			perror("mproc-bench");
			exit(1);
		}
	}
	struct row *r = &rows[nrows++];
	memset(r, 0, sizeof *r);
	r->c.impl = impl;
	r->c.case_name = case_name;
	r->c.msg_size = size;
	r->c.producers = pc.producers;
	r->c.consumers = pc.consumers;
	r->c.duration_ns = opt.duration_ns;
	r->c.reps = opt.reps;
	r->c.quick = opt.quick;
	r->vals = malloc((size_t)opt.reps * BENCH_NFIGS * sizeof *r->vals);
	if (!r->vals) {
		perror("mproc-bench");
		exit(1);
	}
	for (int i = 0; i < opt.reps * BENCH_NFIGS; i++)
		r->vals[i] = NAN;
}

/* Expand a row into its cases (sizes x configurations x named cases). */
static void expand(const struct bench_impl *impl)
{
	const struct suite_info *si = suite_info(impl->suite);
	const size_t *sizes = impl->sizes ? impl->sizes : si->sizes;
	static const struct bench_pc one_one[] = {{1, 1}, {0, 0}};
	static const struct bench_pc none[] = {{0, 0}, {0, 0}};
	const struct bench_pc *pcs = impl->pcs ? impl->pcs
				   : si->has_pc ? one_one : none;
	/* --quick keeps the suite's quick sizes when the row has any. */
	bool quick_filter = false;
	if (opt.quick && sizes[0] != 0)
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
			if (opt.sizes[0] && sz[i] && !size_in(sz[i], opt.sizes))
				continue;
			/* An empty pcs list still yields one {0, 0} case. */
			const struct bench_pc *p = pcs;
			do {
				add_row(impl, cases[k], sz[i], *p);
			} while ((++p)->producers || p->consumers);
		}
}

/* ---- progress --------------------------------------------------------- */

static bool progress_tty;
static bool progress_shown;

void bench__progress_clear(void)
{
	if (progress_shown) {
		fputs("\r\033[K", stderr);
		progress_shown = false;
	}
}

static void fmt_case(char *buf, size_t len, const struct bench_case *c)
{
	int n = snprintf(buf, len, "%s %s", c->impl->suite, c->impl->impl);
	if (c->case_name && n >= 0 && (size_t)n < len)
		n += snprintf(buf + n, len - (size_t)n, "/%s", c->case_name);
	if (c->msg_size && n >= 0 && (size_t)n < len) {
		size_t z = c->msg_size;
		if (z % BENCH_MIB == 0)
			n += snprintf(buf + n, len - (size_t)n, " %zu MiB",
				      z / BENCH_MIB);
		else if (z % BENCH_KIB == 0)
			n += snprintf(buf + n, len - (size_t)n, " %zu KiB",
				      z / BENCH_KIB);
		else
			n += snprintf(buf + n, len - (size_t)n, " %zu B", z);
	}
	if ((c->producers || c->consumers) && n >= 0 && (size_t)n < len)
		snprintf(buf + n, len - (size_t)n, " %d/%d", c->producers,
			 c->consumers);
}

static void progress(const char *suite, int round, int done, int total,
		     const struct bench_case *c)
{
	char what[160];
	fmt_case(what, sizeof what, c);
	if (progress_tty) {
		fprintf(stderr, "\r\033[K[%s round %d/%d, %d/%d] %s", suite,
			round + 1, opt.reps, done + 1, total, what);
		progress_shown = true;
	} else if (done == 0) {
		fprintf(stderr, "mproc-bench: %s round %d/%d (%d cases)\n",
			suite, round + 1, opt.reps, total);
	}
	fflush(stderr);
}

/* ---- running ---------------------------------------------------------- */

static uint64_t rng_state;

static uint64_t rng_next(void)
{
	/* xorshift64*: a fixed seed per round keeps runs reproducible. */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * UINT64_C(2685821657736338717);
}

static void prepare_row(struct row *r)
{
	char why[200] = "";
	if (!r->c.impl->prepare)
		return;
	int rc = r->c.impl->prepare(&r->c, why, sizeof why);
	char what[160];
	fmt_case(what, sizeof what, &r->c);
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

static void run_rep(struct row *r, int rep)
{
	struct bench_sample s;
	for (int f = 0; f < BENCH_NFIGS; f++)
		s.fig[f] = NAN;
	s.note[0] = '\0';
	r->c.rep = rep;
	int rc = r->c.impl->run(&r->c, &s);
	char what[160];
	fmt_case(what, sizeof what, &r->c);
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

static void run_suite(const char *suite, struct row **list, int n)
{
	for (int i = 0; i < n; i++)
		prepare_row(list[i]);
	struct row **order = malloc((size_t)n * sizeof *order);
	if (!order) {
		perror("mproc-bench");
		exit(1);
	}
	for (int round = 0; round < opt.reps; round++) {
		int m = 0;
		for (int i = 0; i < n; i++)
			if (list[i]->state == ROW_OK)
				order[m++] = list[i];
		rng_state = UINT64_C(0x9e3779b97f4a7c15) * (uint64_t)(round + 1);
		for (int i = m - 1; round > 0 && i > 0; i--) {
			int j = (int)(rng_next() % (uint64_t)(i + 1));
			struct row *t = order[i];
			order[i] = order[j];
			order[j] = t;
		}
		for (int i = 0; i < m; i++) {
			if (order[i]->state != ROW_OK)
				continue;
			progress(suite, round, i, m, &order[i]->c);
			run_rep(order[i], round);
		}
	}
	bench__progress_clear();
	free(order);
	for (int i = 0; i < n; i++)
		if (list[i]->c.impl->cleanup && list[i]->state != ROW_SKIPPED)
			list[i]->c.impl->cleanup(&list[i]->c);
}

/* ---- statistics ------------------------------------------------------- */

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static void compute_stats(struct row *r)
{
	double *v = malloc((size_t)opt.reps * sizeof *v);
	if (!v)
		return;
	for (int f = 0; f < BENCH_NFIGS; f++) {
		int n = 0;
		for (int k = 0; k < opt.reps; k++) {
			double x = r->vals[k * BENCH_NFIGS + f];
			if (!isnan(x))
				v[n++] = x;
		}
		r->has[f] = n > 0;
		if (!n)
			continue;
		qsort(v, (size_t)n, sizeof *v, cmp_double);
		r->med[f] = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
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
	const struct bench_case *x = &((const struct row *)a)->c;
	const struct bench_case *y = &((const struct row *)b)->c;
	int d = suite_cmp(x->impl->suite, y->impl->suite);
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

/* ---- ratios ----------------------------------------------------------- */

struct ratio {
	const char *label;    /* column heading after "x " */
	const char *baseline; /* the baseline row's impl */
	double value;
};
#define MAX_RATIOS 8

/* The baseline row for @r: same suite and message size; among those, the
 * same producer/consumer configuration and case name are preferred (e.g.
 * an mproc_mpmc 2/2 row meets posix_mq 2/2 if that exists, else 1/1). */
static const struct row *find_row(const struct row *r, const char *impl)
{
	const struct row *best = NULL;
	int best_score = -1;
	for (int i = 0; i < nrows; i++) {
		const struct row *b = &rows[i];
		if (b->state != ROW_OK || b->nok == 0 ||
		    strcmp(b->c.impl->suite, r->c.impl->suite) != 0 ||
		    strcmp(b->c.impl->impl, impl) != 0 ||
		    b->c.msg_size != r->c.msg_size)
			continue;
		int score = 0;
		if (b->c.producers == r->c.producers &&
		    b->c.consumers == r->c.consumers)
			score += 2;
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

static bool impl_exists(const char *suite, const char *impl)
{
	for (int i = 0; i < nrows; i++)
		if (strcmp(rows[i].c.impl->suite, suite) == 0 &&
		    strcmp(rows[i].c.impl->impl, impl) == 0)
			return true;
	return false;
}

static int add_ratio(struct ratio *out, int n, const struct row *r,
		     const char *label, const char *baseline)
{
	if (n == MAX_RATIOS || strcmp(baseline, r->c.impl->impl) == 0)
		return n;
	for (int i = 0; i < n; i++)
		if (strcmp(out[i].label, label) == 0)
			return n;
	const struct row *b = find_row(r, baseline);
	if (!b)
		return n;
	/* Compare the suite's primary figure when both rows have it, else
	 * the first figure they share. */
	int fig = suite_info(r->c.impl->suite)->primary;
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

/* The ratios of row r against its baselines. */
static int row_ratios(const struct row *r, struct ratio *out)
{
	int n = 0;
	const char *suite = r->c.impl->suite, *impl = r->c.impl->impl;
	if (r->state != ROW_OK || r->nok == 0)
		return 0;
	for (size_t i = 0; i < NRULES; i++)
		if (strcmp(baseline_map[i].suite, suite) == 0 &&
		    strncmp(impl, baseline_map[i].prefix,
			    strlen(baseline_map[i].prefix)) == 0)
			n = add_ratio(out, n, r, baseline_map[i].baseline,
				      baseline_map[i].baseline);
	if (r->c.impl->baselines)
		for (const char *const *b = r->c.impl->baselines; *b; b++)
			n = add_ratio(out, n, r, *b, *b);
	if (strncmp(impl, "mproc_", 6) == 0) {
		/* mproc_queue_busy -> python_queue_busy, python_queue. */
		char name[128];
		snprintf(name, sizeof name, "python_%s", impl + 6);
		while (strlen(name) > 7) {
			if (impl_exists(suite, name)) {
				/* One "x python" column serves every pair. */
				n = add_ratio(out, n, r, "python", name);
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

static void print_suite_table(const char *suite, int from, int to)
{
	bool figs[BENCH_NFIGS] = {false};
	const char *labels[16];
	int nlabels = 0;
	bool any_case = false;
	for (int i = from; i < to; i++) {
		struct row *r = &rows[i];
		any_case |= r->c.case_name != NULL;
		for (int f = 0; f < BENCH_NFIGS; f++)
			figs[f] |= r->has[f];
		struct ratio rt[MAX_RATIOS];
		int n = row_ratios(r, rt);
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
				 fig_heads[f]);
	for (int j = 0; j < nlabels; j++) {
		t.right[k] = true;
		snprintf(t.cells[0][k++], CELL, "x %s", labels[j]);
	}
	t.ncols = k;
	t.nlines = 1;

	for (int i = from; i < to; i++) {
		struct row *r = &rows[i];
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
		struct ratio rt[MAX_RATIOS];
		int n = row_ratios(r, rt);
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

	const struct suite_info *si = suite_info(suite);
	printf("\n== %s%s%s ==\n", suite, si->what[0] ? ": " : "", si->what);
	print_cells(&t);
	free(t.cells);
	free(t.tails);
	free(t.short_cols);
}

static void print_header(void)
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
	       cpus, opt.reps, (long long)(opt.duration_ns / 1000000),
	       opt.quick ? ", quick" : "");
}

static void print_table(void)
{
	print_header();
	int i = 0;
	while (i < nrows) {
		int j = i;
		while (j < nrows &&
		       strcmp(rows[j].c.impl->suite, rows[i].c.impl->suite) == 0)
			j++;
		bool any = false;
		for (int k = i; k < j; k++)
			any |= rows[k].state != ROW_SKIPPED;
		if (any)
			print_suite_table(rows[i].c.impl->suite, i, j);
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

static void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;
		if (ch == '"' || ch == '\\')
			fprintf(f, "\\%c", ch);
		else if (ch < 0x20)
			fprintf(f, "\\u%04x", ch);
		else
			fputc(ch, f);
	}
	fputc('"', f);
}

static void json_num(FILE *f, double v)
{
	if (isfinite(v))
		fprintf(f, "%.10g", v);
	else
		fputs("null", f);
}

static int write_json(const char *path)
{
	FILE *f = fopen(path, "w");
	if (!f) {
		fprintf(stderr, "mproc-bench: %s: %s\n", path, strerror(errno));
		return -1;
	}
	fputs("[", f);
	bool first = true;
	for (int i = 0; i < nrows; i++) {
		const struct row *r = &rows[i];
		if (r->state == ROW_SKIPPED)
			continue;
		fputs(first ? "\n  {" : ",\n  {", f);
		first = false;
		fputs("\"suite\": ", f);
		json_str(f, r->c.impl->suite);
		fputs(", \"impl\": ", f);
		json_str(f, r->c.impl->impl);
		if (r->c.case_name) {
			fputs(", \"case\": ", f);
			json_str(f, r->c.case_name);
		}
		fprintf(f, ", \"msg_size\": %zu, \"producers\": %d, "
			   "\"consumers\": %d, \"reps\": %d, "
			   "\"reps_failed\": %d, \"duration_ms\": %lld",
			r->c.msg_size, r->c.producers, r->c.consumers, r->nok,
			r->nfail, (long long)(opt.duration_ns / 1000000));
		/* The primary figure also gets plain min/max/samples. */
		int prim = suite_info(r->c.impl->suite)->primary;
		if (!r->has[prim])
			for (prim = 0; prim < BENCH_NFIGS && !r->has[prim];
			     prim++)
				;
		for (int fg = 0; fg < BENCH_NFIGS; fg++) {
			if (!r->has[fg])
				continue;
			fprintf(f, ", \"%s\": ", fig_names[fg]);
			json_num(f, r->med[fg]);
			fprintf(f, ", \"%s_min\": ", fig_names[fg]);
			json_num(f, r->lo[fg]);
			fprintf(f, ", \"%s_max\": ", fig_names[fg]);
			json_num(f, r->hi[fg]);
		}
		if (prim < BENCH_NFIGS) {
			fprintf(f, ", \"figure\": \"%s\", \"min\": ",
				fig_names[prim]);
			json_num(f, r->lo[prim]);
			fputs(", \"max\": ", f);
			json_num(f, r->hi[prim]);
			fputs(", \"samples\": [", f);
			bool sfirst = true;
			for (int k = 0; k < opt.reps; k++) {
				double v = r->vals[k * BENCH_NFIGS + prim];
				if (isnan(v))
					continue;
				if (!sfirst)
					fputs(", ", f);
				sfirst = false;
				json_num(f, v);
			}
			fputs("]", f);
		}
		struct ratio rt[MAX_RATIOS];
		int n = row_ratios(r, rt);
		if (n) {
			fputs(", \"ratio\": {", f);
			for (int k = 0; k < n; k++) {
				if (k)
					fputs(", ", f);
				json_str(f, rt[k].baseline);
				fputs(": ", f);
				json_num(f, rt[k].value);
			}
			fputs("}", f);
		}
		if (r->nfail || r->nok == 0) {
			fputs(", \"error\": ", f);
			json_str(f, r->err);
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

static int write_plot(const char *path)
{
	struct bench_plot_series *series = NULL;
	int ns = 0;
	for (int i = 0; i < nrows; i++) {
		const struct row *r = &rows[i];
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
			 opt.reps, (long long)(opt.duration_ns / 1000000));
		rc = bench__plot(path, series, ns, title, opt.plot_builtin);
	}
	free(series);
	return rc;
}

/* ---- main ------------------------------------------------------------- */

static void list_rows(void)
{
	printf("%-12s %-18s %s\n", "suite", "impl", "description");
	for (struct bench_impl *r = registry_head; r; r = r->next_) {
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

int main(int argc, char **argv)
{
	/* The raw_spawn row measures exec of this program: leave before
	 * anything else happens. */
	if (argc == 2 && strcmp(argv[1], BENCH_EXIT_ARG) == 0)
		_exit(0);
	for (int i = 0; i < nhooks; i++)
		hooks[i](argc, argv);

	ssize_t l = readlink("/proc/self/exe", self_exe, sizeof self_exe - 1);
	if (l > 0)
		self_exe[l] = '\0';
	else
		snprintf(self_exe, sizeof self_exe, "%s", argv[0]);

	int rc = parse_args(argc, argv);
	if (rc)
		return rc;
	if (opt.list) {
		list_rows();
		return 0;
	}
	progress_tty = isatty(2);
	bench__cpus_setup(opt.pin);

	for (struct bench_impl *impl = registry_head; impl; impl = impl->next_)
		if (impl_selected(impl))
			expand(impl);
	if (nrows == 0) {
		fprintf(stderr, "mproc-bench: no row matches the selection\n");
		return 2;
	}
	/* Group by suite (stable in registration order within a suite). */
	struct row **bysuite = malloc((size_t)nrows * sizeof *bysuite);
	if (!bysuite)
		return 1;
	int64_t t0 = bench_now_ns();
	const char *done_suites[64];
	int ndone = 0;
	for (int i = 0; i < nrows; i++) {
		const char *suite = rows[i].c.impl->suite;
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
			if (suite_cmp(done_suites[b], done_suites[a]) < 0) {
				const char *t = done_suites[a];
				done_suites[a] = done_suites[b];
				done_suites[b] = t;
			}
	for (int k = 0; k < ndone; k++) {
		int n = 0;
		for (int i = 0; i < nrows; i++)
			if (strcmp(rows[i].c.impl->suite, done_suites[k]) == 0)
				bysuite[n++] = &rows[i];
		run_suite(done_suites[k], bysuite, n);
	}
	free(bysuite);

	int failed = 0, skipped = 0;
	for (int i = 0; i < nrows; i++) {
		compute_stats(&rows[i]);
		failed += rows[i].nfail > 0 || rows[i].state == ROW_FAILED;
		skipped += rows[i].state == ROW_SKIPPED;
	}
	qsort(rows, (size_t)nrows, sizeof *rows, row_cmp);
	print_table();
	printf("\n%d case%s measured, %d skipped, in %.1f s%s\n",
	       nrows - skipped, nrows - skipped == 1 ? "" : "s", skipped,
	       (double)(bench_now_ns() - t0) / 1e9,
	       failed ? "; SOME MEASUREMENTS FAILED (see above)" : "");
	fflush(stdout);

	if (opt.json && write_json(opt.json) < 0)
		failed++;
	if (opt.plot && write_plot(opt.plot) < 0)
		failed++;
	for (int i = 0; i < nrows; i++)
		free(rows[i].vals);
	free(rows);
	return failed ? 1 : 0;
}
