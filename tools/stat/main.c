/*
 * mproc-stat: list mproc's shared-memory segments -- queues, pipes and
 * pools -- with how full they are, who sleeps on them and which processes
 * hold them (stat.h).  The command line and the --watch loop.
 */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mproc/common.h"
#include "stat.h"

static void usage(FILE *f)
{
	fputs(
"Usage: mproc-stat [--json] [--watch [SECONDS]] [--iterations N] [NAME|PID]\n"
"List the mproc segments this user can see: named ones in /dev/shm and\n"
"anonymous ones (memfds) held by processes.  For each: kind (SPSC or MPMC\n"
"queue, pipe, pool), capacity, bytes and messages queued, totals put and\n"
"got, closed state, processes asleep on it, and the processes attached or\n"
"named in it, with their command and whether they are alive.\n"
"\n"
"  NAME             only the segment NAME (\"/jobs\", \"jobs\", or \"memfd:INODE\")\n"
"  PID              only the segments process PID holds or is named in\n"
"  --json           one JSON object per snapshot, on one line\n"
"  --watch [SECONDS] refresh every SECONDS (default 1) with rates; in place\n"
"                   on a terminal, one report after another otherwise\n"
"  --iterations N   with --watch: stop after N snapshots\n"
"  --version, --help\n"
"\n"
"Segments are mapped read-only and validated; mproc-stat never changes one\n"
"and never waits on one.  Exit status: 0, 1 when NAME or PID matched\n"
"nothing, 2 on a usage error.\n", f);
}

static bool parse_seconds(const char *s, double *out)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || end == s || *end || !(v > 0) || v > 86400)
		return false;
	*out = v;
	return true;
}

static bool parse_pid(const char *s, pid_t *out)
{
	if (!*s || strspn(s, "0123456789") != strlen(s) || strlen(s) > 9)
		return false;
	*out = (pid_t)atol(s);
	return *out > 0;
}

int main(int argc, char **argv)
{
	enum { O_JSON = 256, O_WATCH, O_ITER, O_VERSION, O_HELP };
	static const struct option opts[] = {
		{ "json", no_argument, NULL, O_JSON },
		{ "watch", optional_argument, NULL, O_WATCH },
		{ "iterations", required_argument, NULL, O_ITER },
		{ "version", no_argument, NULL, O_VERSION },
		{ "help", no_argument, NULL, O_HELP },
		{ NULL, 0, NULL, 0 },
	};
	bool json = false, watch = false;
	double interval = 1;
	long iterations = 0;
	int c;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case O_JSON:
			json = true;
			break;
		case O_WATCH:
			watch = true;
			/* "--watch 2" as well as "--watch=2": a number right
			 * after --watch is its interval. */
			if (optarg) {
				if (!parse_seconds(optarg, &interval)) {
					fprintf(stderr, "mproc-stat: bad interval "
							"'%s'\n", optarg);
					return 2;
				}
			} else if (optind < argc &&
				   parse_seconds(argv[optind], &interval)) {
				optind++;
			}
			break;
		case O_ITER: {
			char *end;
			iterations = strtol(optarg, &end, 10);
			if (*end || iterations <= 0) {
				fprintf(stderr, "mproc-stat: bad count '%s'\n",
					optarg);
				return 2;
			}
			break;
		}
		case O_VERSION:
			printf("mproc-stat %s\n", mproc_version());
			return 0;
		case 'h':
		case O_HELP:
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (argc - optind > 1) {
		usage(stderr);
		return 2;
	}
	const char *name = optind < argc ? argv[optind] : NULL;
	pid_t pid = 0;
	if (name && parse_pid(name, &pid))
		name = NULL;

	bool tty = isatty(STDOUT_FILENO);
	struct stat_snap prev = { 0 }, cur;
	bool have_prev = false;
	int status = 0;
	for (long n = 1;; n++) {
		stat_scan(&cur);
		if (name || pid) {
			if (!stat_filter(&cur, name ? name : "", pid) && !watch) {
				fprintf(stderr, "mproc-stat: no segment %s %s\n",
					name ? "named" : "of process",
					name ? name : argv[optind]);
				status = 1;
			}
		}
		if (watch && !json) {
			char when[32];
			time_t t = (time_t)cur.wall;
			strftime(when, sizeof when, "%H:%M:%S", localtime(&t));
			if (tty)
				fputs("\033[H\033[2J", stdout);
			else if (n > 1)
				fputc('\n', stdout);
			printf("--- mproc-stat %s, every %g s\n", when, interval);
		}
		if (json)
			stat_print_json(stdout, &cur, have_prev ? &prev : NULL);
		else
			stat_print_text(stdout, &cur, have_prev ? &prev : NULL);
		fflush(stdout);
		if (have_prev)
			stat_snap_free(&prev);
		prev = cur;
		have_prev = true;
		if (!watch || (iterations && n >= iterations))
			break;
		struct timespec ts = { (time_t)interval,
				       (long)((interval - (double)(time_t)interval) * 1e9) };
		while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
			;
	}
	stat_snap_free(&prev);
	return status;
}
