/*
 * cli.c - mproc-bench's command line: the --help text and the parsing of
 * options into struct bench_opts.  Unknown suites are refused here, against
 * the registry, so that a typo does not silently select nothing.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

static void usage(FILE *f)
{
	fprintf(f,
"Usage: mproc-bench [OPTION]... [SUITE]...\n"
"Measure mproc's queues, pipes, processes and pools side by side with the\n"
"operating system's own mechanisms (pipe, socketpair, POSIX message queues,\n"
"fork, posix_spawn), their physical floors (memcpy, cache-line and futex\n"
"ping-pong), Python's multiprocessing and, when built with them, other\n"
"libraries' queues (DPDK rte_ring, Concurrency Kit ck_ring, Boost\n"
"message_queue, ZeroMQ, nng), in one run on one machine.\n"
"\n"
"SUITE selects suites (default: all): throughput, latency, process, and\n"
"any suite added by a row (see --list).\n"
"\n"
"Options:\n"
"  --quick          fewer sizes (64 B, 4 KiB, 1 MiB), 5 repetitions of 60 ms;\n"
"                   finishes in about a minute on 2 cores\n"
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
"      FUTEX_WAIT/FUTEX_WAKE, shared futexes; record_floor: a 64 B message\n"
"      each way in mproc's SPSC record layout, busy-polling, no library\n"
"      code).  Round trips are timed in\n"
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

int bench__parse_args(int argc, char **argv, struct bench_opts *o)
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
	*o = (struct bench_opts){.pin = true};
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case O_QUICK:
			o->quick = true;
			break;
		case O_JSON:
			o->json = optarg;
			break;
		case O_PLOT:
			o->plot = optarg;
			break;
		case O_PLOT_BUILTIN:
			o->plot_builtin = true;
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
			o->impl_patterns = optarg;
			break;
		case O_SIZES: {
			char *copy = strdup(optarg), *save = NULL;
			int n = 0;
			for (char *t = strtok_r(copy, ",", &save); t;
			     t = strtok_r(NULL, ",", &save)) {
				if (n == 31 || !parse_size(t, &o->sizes[n])) {
					fprintf(stderr, "mproc-bench: bad size "
							"'%s'\n", t);
					free(copy);
					return 2;
				}
				n++;
			}
			o->sizes[n] = 0;
			free(copy);
			break;
		}
		case O_NO_PIN:
			o->pin = false;
			break;
		case O_LIST:
			o->list = true;
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
	o->reps = reps ? (int)reps : o->quick ? 5 : 9;
	o->duration_ns = (dur_ms ? dur_ms : o->quick ? 60 : 150) * 1000000LL;
	o->suites = argv + optind;
	o->nsuites = argc - optind;
	for (int i = 0; i < o->nsuites; i++) {
		bool found = false;
		for (const struct bench_impl *r = bench__registry(); r;
		     r = r->next_)
			found |= strcmp(r->suite, o->suites[i]) == 0;
		if (!found) {
			fprintf(stderr, "mproc-bench: unknown suite '%s' "
					"(see --list)\n", o->suites[i]);
			return 2;
		}
	}
	return 0;
}
