/*
 * base_python_mpi.c - the row python_mpi4py of suite "pool", the baseline
 * of mproc_mpi (mproc_pool_mpi.c): mpi4py.futures.MPIPoolExecutor
 * started the same way, `mpiexec -n 3 python3 -m mpi4py.futures
 * SCRIPT`, so rank 0 runs the script and the two other ranks are its
 * workers, as many as mproc_mpi's agents have workers here.  Same work
 * (x + 1), every result checked, the executor warmed up outside the timed
 * part:
 *
 *   apply_rtt    submit(...).result(): median round trip over batches
 *   apply_async  submit in batches of 1000, each waited for, until the
 *                time budget (at most 10^5)
 *   map_tiny     map of 10^6 ints (10^5 with --quick).  The executor's
 *                default chunksize is 1, which would take minutes; the
 *                row uses mproc's default rule instead, ceil(n / (4 x
 *                workers)) with workers = 2, mproc_mpi's chunksize too
 *                (the note says so).
 *
 * The interpreter: python3 in PATH when it has mpi4py, else
 * /usr/bin/python3 (Debian's python3-mpi4py); without one, or without an
 * MPI launcher, the row is skipped with a note.  The script goes to a
 * temporary file: mpi4py's workers import the functions from it.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"
#include "bench_mpi.h"
#include "harness.h"

static const char script[] =
"import sys, time\n"
"from mpi4py.futures import MPIPoolExecutor\n"
"\n"
"def plus_one(x):\n"
"    return x + 1\n"
"\n"
"def check(x, y):\n"
"    if y != x + 1:\n"
"        sys.exit('wrong result %r for %r' % (y, x))\n"
"\n"
"def median(v):\n"
"    v = sorted(v)\n"
"    n = len(v)\n"
"    return v[n // 2] if n % 2 else (v[n // 2 - 1] + v[n // 2]) / 2\n"
"\n"
"def main(case, duration, quick):\n"
"    with MPIPoolExecutor() as ex:\n"
"        workers = ex._max_workers or 2\n"
"        list(ex.map(plus_one, range(workers * 4)))\n"
"        if case == 'apply_rtt':\n"
"            per_op, batch, x = [], 1, 0\n"
"            deadline = time.monotonic() + duration\n"
"            while len(per_op) < 3 or time.monotonic() < deadline:\n"
"                t = time.perf_counter_ns()\n"
"                for _ in range(batch):\n"
"                    check(x, ex.submit(plus_one, x).result())\n"
"                    x += 1\n"
"                dt = time.perf_counter_ns() - t\n"
"                per_op.append(dt / batch)\n"
"                if dt < 20000:\n"
"                    batch *= 2\n"
"            print('rtt_us=%.3f' % (median(per_op) / 1000))\n"
"        elif case == 'apply_async':\n"
"            done = 0\n"
"            t0 = time.perf_counter()\n"
"            deadline = time.monotonic() + duration\n"
"            while done < 100000 and time.monotonic() < deadline:\n"
"                fs = [ex.submit(plus_one, done + i) for i in range(1000)]\n"
"                for i, f in enumerate(fs):\n"
"                    check(done + i, f.result())\n"
"                done += 1000\n"
"            print('tasks_per_sec=%.1f' % (done / (time.perf_counter() - t0)))\n"
"        else:\n"
"            n = 100000 if quick else 1000000\n"
"            per = 4 * workers\n"
"            cs = -(-n // per)\n"
"            t = time.perf_counter()\n"
"            out = list(ex.map(plus_one, range(n), chunksize=cs))\n"
"            dt = time.perf_counter() - t\n"
"            if out != list(range(1, n + 1)):\n"
"                sys.exit('map: wrong results')\n"
"            print('tasks_per_sec=%.1f' % (n / dt))\n"
"            print('note=chunksize %d = ceil(n / (4 x %d workers)), mproc\\'s '\n"
"                  'default rule' % (cs, workers))\n"
"\n"
"if __name__ == '__main__':\n"
"    main(sys.argv[1], float(sys.argv[2]), sys.argv[3] == '1')\n";

static char interp[PATH_MAX];
static int interp_state; /* 0 unknown, 1 found, -1 none */

/* An interpreter that imports mpi4py.futures. */
static bool find_interp(void)
{
	if (interp_state)
		return interp_state > 0;
	char cand[2][PATH_MAX];
	int n = 0;
	if (bench__find_in_path("python3", cand[n], sizeof cand[n]))
		n++;
	snprintf(cand[n++], sizeof cand[0], "/usr/bin/python3");
	interp_state = -1;
	for (int i = 0; i < n; i++) {
		char cmd[PATH_MAX + 80];
		snprintf(cmd, sizeof cmd,
			 "'%.3900s' -c 'import mpi4py.futures' >/dev/null 2>&1",
			 cand[i]);
		if (access(cand[i], X_OK) == 0 && system(cmd) == 0) {
			snprintf(interp, sizeof interp, "%.3900s", cand[i]);
			interp_state = 1;
			bench_note("python_mpi4py uses %s", interp);
			break;
		}
	}
	return interp_state > 0;
}

static int mpi4py_prepare(struct bench_case *c, char *why, size_t why_len)
{
	(void)c;
	char launcher[PATH_MAX + 64];
	if (!find_interp()) {
		snprintf(why, why_len, "no python3 with mpi4py (python3-mpi4py; "
				       "scripts/bootstrap.sh --mpi)");
		return BENCH_SKIP;
	}
	/* mpi4py runs on the MPI it was built against: Debian's default,
	 * whose launcher is plain mpiexec. */
	return bench_mpi_launcher(false, launcher, sizeof launcher, why,
				  why_len);
}

static int mpi4py_run(struct bench_case *c, struct bench_sample *s)
{
	char launcher[PATH_MAX + 64];
	if (!find_interp() ||
	    bench_mpi_launcher(false, launcher, sizeof launcher, s->note,
			       sizeof s->note) != 0)
		return BENCH_SKIP;
	char path[] = "/tmp/mproc-bench-mpi4py-XXXXXX.py";
	int fd = mkstemps(path, 3);
	if (fd < 0) {
		snprintf(s->note, sizeof s->note, "mkstemps: %s", strerror(errno));
		return -errno;
	}
	size_t len = strlen(script);
	ssize_t w = write(fd, script, len);
	close(fd);
	if (w != (ssize_t)len) {
		unlink(path);
		snprintf(s->note, sizeof s->note, "writing the script failed");
		return -EIO;
	}
	char cmd[3 * PATH_MAX];
	snprintf(cmd, sizeof cmd, "%s '%s' -m mpi4py.futures '%s' %s %.3f %d",
		 launcher, interp, path, c->case_name,
		 (double)c->duration_ns / 1e9, c->quick ? 1 : 0);
	int rc = bench_mpi_run(cmd, (int)(c->duration_ns / 1000000000) + 180,
			       s);
	unlink(path);
	return rc;
}

BENCH_REGISTER(python_mpi4py) = {
	.suite = "pool",
	.impl = "python_mpi4py",
	.descr = "mpi4py.futures.MPIPoolExecutor (head + 2 workers, mpiexec): "
		 "submit round trip, submit batches, map",
	.cases = BENCH_NAMES("apply_rtt", "apply_async", "map_tiny"),
	.prepare = mpi4py_prepare,
	.run = mpi4py_run,
};
