/*
 * base_python_pool.c - the Python rows of the "pool" suite, the baselines
 * of mproc_pool.c's cases, measured by Python itself (python3 -c):
 *
 *   python_pool      multiprocessing.Pool (fork context)
 *   python_executor  concurrent.futures.ProcessPoolExecutor (fork context)
 *
 * Same worker count as the mproc row (bench_pool_workers), same trivial
 * work (x + 1), every result checked, the pool started outside the timed
 * part.  Cases:
 *   apply_rtt       Pool.apply / submit(...).result(): median round trip
 *   apply_async     apply_async / submit in batches of 1000, each batch
 *                   waited for, until the time budget (at most 10^5)
 *   map_tiny        Pool.map of 10^6 ints (10^5 with --quick), default
 *                   chunksize.  The executor's map has chunksize 1 by
 *                   default and would take minutes for 10^6, so it maps
 *                   blocks of 10^4 until the time budget is spent.
 *   imap_unordered  Pool.imap_unordered, chunksize 1, over a generator
 *                   that stops at the time budget; the executor, which has
 *                   no imap, submits and drains as_completed in batches of
 *                   1000 (its closest equivalent).
 * Absent Python, the rows are skipped with a note.
 */
#include <stdio.h>
#include <string.h>

#include "bench.h"

/* argv: KIND CASE DURATION_S WORKERS QUICK */
static const char script[] =
"import multiprocessing as mp, sys, time\n"
"import concurrent.futures as cf\n"
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
"def apply_rtt(call, duration):\n"
"    # Batches doubling until one takes 20 us, as bench_op_loop does.\n"
"    per_op, batch, x = [], 1, 0\n"
"    deadline = time.monotonic() + duration\n"
"    while len(per_op) < 3 or time.monotonic() < deadline:\n"
"        t = time.perf_counter_ns()\n"
"        for _ in range(batch):\n"
"            check(x, call(x))\n"
"            x += 1\n"
"        dt = time.perf_counter_ns() - t\n"
"        per_op.append(dt / batch)\n"
"        if dt < 20000:\n"
"            batch *= 2\n"
"    print('rtt_us=%.3f' % (median(per_op) / 1000))\n"
"\n"
"def batches(submit, wait, duration, limit):\n"
"    done = 0\n"
"    t0 = time.perf_counter()\n"
"    deadline = time.monotonic() + duration\n"
"    while done < limit and time.monotonic() < deadline:\n"
"        rs = [submit(done + i) for i in range(1000)]\n"
"        for i, r in enumerate(rs):\n"
"            check(done + i, wait(r))\n"
"        done += 1000\n"
"    print('tasks_per_sec=%.1f' % (done / (time.perf_counter() - t0)))\n"
"\n"
"def timed_items(deadline):\n"
"    i = 0\n"
"    while True:\n"
"        if i & 255 == 0 and time.monotonic() >= deadline:\n"
"            return\n"
"        yield i\n"
"        i += 1\n"
"\n"
"def run_pool(case, duration, workers, quick):\n"
"    with mp.get_context('fork').Pool(workers) as p:\n"
"        p.map(plus_one, range(workers * 4))  # warm up every worker\n"
"        if case == 'apply_rtt':\n"
"            apply_rtt(lambda x: p.apply(plus_one, (x,)), duration)\n"
"        elif case == 'apply_async':\n"
"            batches(lambda x: p.apply_async(plus_one, (x,)),\n"
"                    lambda r: r.get(), duration, 100000)\n"
"        elif case == 'map_tiny':\n"
"            n = 100000 if quick else 1000000\n"
"            t = time.perf_counter()\n"
"            out = p.map(plus_one, range(n))\n"
"            dt = time.perf_counter() - t\n"
"            if out != list(range(1, n + 1)):\n"
"                sys.exit('map: wrong results')\n"
"            print('tasks_per_sec=%.1f' % (n / dt))\n"
"        else:\n"
"            t = time.perf_counter()\n"
"            seen = 0\n"
"            total = 0\n"
"            for y in p.imap_unordered(plus_one,\n"
"                                      timed_items(time.monotonic() + duration), 1):\n"
"                seen += 1\n"
"                total += y\n"
"            dt = time.perf_counter() - t\n"
"            if total != seen * (seen + 1) // 2:\n"
"                sys.exit('imap_unordered: wrong results')\n"
"            print('tasks_per_sec=%.1f' % (seen / dt))\n"
"\n"
"def run_executor(case, duration, workers, quick):\n"
"    with cf.ProcessPoolExecutor(workers, mp_context=mp.get_context('fork')) as ex:\n"
"        list(ex.map(plus_one, range(workers * 4)))\n"
"        if case == 'apply_rtt':\n"
"            apply_rtt(lambda x: ex.submit(plus_one, x).result(), duration)\n"
"        elif case == 'apply_async':\n"
"            batches(lambda x: ex.submit(plus_one, x), lambda f: f.result(),\n"
"                    duration, 100000)\n"
"        elif case == 'map_tiny':\n"
"            done = 0\n"
"            t = time.perf_counter()\n"
"            deadline = time.monotonic() + duration\n"
"            while done == 0 or time.monotonic() < deadline:\n"
"                out = list(ex.map(plus_one, range(done, done + 10000)))\n"
"                if out != list(range(done + 1, done + 10001)):\n"
"                    sys.exit('map: wrong results')\n"
"                done += 10000\n"
"            print('tasks_per_sec=%.1f' % (done / (time.perf_counter() - t)))\n"
"        else:\n"
"            done = 0\n"
"            t = time.perf_counter()\n"
"            deadline = time.monotonic() + duration\n"
"            while done == 0 or time.monotonic() < deadline:\n"
"                fs = {ex.submit(plus_one, done + i): done + i for i in range(1000)}\n"
"                for f in cf.as_completed(fs):\n"
"                    check(fs[f], f.result())\n"
"                done += 1000\n"
"            print('tasks_per_sec=%.1f' % (done / (time.perf_counter() - t)))\n"
"\n"
"if __name__ == '__main__':\n"
"    kind, case, duration = sys.argv[1], sys.argv[2], float(sys.argv[3])\n"
"    workers, quick = int(sys.argv[4]), sys.argv[5] == '1'\n"
"    (run_pool if kind == 'pool' else run_executor)(case, duration, workers, quick)\n";

static int py_prepare(struct bench_case *c, char *why, size_t len)
{
	(void)c;
	return bench_python_available(why, len) ? 0 : BENCH_SKIP;
}

/* The kind is the impl name without "python_". */
static int py_run(struct bench_case *c, struct bench_sample *s)
{
	char dur[32], workers[16];
	snprintf(dur, sizeof dur, "%.3f", (double)c->duration_ns / 1e9);
	snprintf(workers, sizeof workers, "%d", bench_pool_workers());
	const char *args[] = { c->impl->impl + strlen("python_"), c->case_name,
			       dur, workers, c->quick ? "1" : "0", NULL };
	return bench_python_run(c, script, args, s);
}

BENCH_REGISTER(python_pool) = {
	.suite = "pool",
	.impl = "python_pool",
	.descr = "Python multiprocessing.Pool: apply, apply_async, map, "
		 "imap_unordered",
	.cases = BENCH_NAMES("apply_rtt", "apply_async", "map_tiny",
			     "imap_unordered"),
	.prepare = py_prepare,
	.run = py_run,
};

BENCH_REGISTER(python_executor) = {
	.suite = "pool",
	.impl = "python_executor",
	.descr = "Python concurrent.futures.ProcessPoolExecutor: submit, map, "
		 "as_completed",
	.cases = BENCH_NAMES("apply_rtt", "apply_async", "map_tiny",
			     "imap_unordered"),
	.prepare = py_prepare,
	.run = py_run,
};
