/*
 * base_python.c - the rows mproc is modelled on: Python's multiprocessing,
 * measured by Python itself with the script below, run as `python3 -c`
 * so that it works the same from the build directory and installed.
 *
 *   throughput python_queue   Queue.put / Queue.get of 64 B bytes objects
 *   throughput python_pipe    Connection.send_bytes / recv_bytes, 64 B,
 *                             Pipe(duplex=False)
 *   process    python_fork, python_spawn, python_forkserver
 *                             Process(target=os.getpid) start + join with
 *                             that start method (after one warm-up start,
 *                             which also launches the fork server)
 *
 * Producer and consumer are separate processes (the fork context), pinned
 * like the C rows; every message carries a sequence number the consumer
 * checks.  Absent Python, prepare() skips the rows with a note.  An
 * example of rows measured by an external program (bench_python_run).
 */
#include <stdio.h>
#include <string.h>

#include "bench.h"

/* argv: MODE DURATION_S SIZE CPU_PRODUCER CPU_CONSUMER */
static const char script[] =
"import multiprocessing as mp, os, sys, time\n"
"\n"
"def pin(cpu):\n"
"    if cpu >= 0 and hasattr(os, 'sched_setaffinity'):\n"
"        try:\n"
"            os.sched_setaffinity(0, {cpu})\n"
"        except OSError:\n"
"            pass\n"
"\n"
"def produce(kind, end, size, duration, cpu):\n"
"    pin(cpu)\n"
"    send = end.put if kind == 'queue' else end.send_bytes\n"
"    pad = bytes(size - 8)\n"
"    deadline = time.monotonic() + duration\n"
"    seq = 0\n"
"    while True:\n"
"        for _ in range(64):\n"
"            send(seq.to_bytes(8, 'little') + pad)\n"
"            seq += 1\n"
"        if time.monotonic() >= deadline:\n"
"            break\n"
"    send(b'')\n"
"    if kind == 'queue':\n"
"        end.close()\n"
"        end.join_thread()\n"
"\n"
"def stream(kind, duration, size, cpu_p, cpu_c):\n"
"    ctx = mp.get_context('fork')\n"
"    if kind == 'queue':\n"
"        tx = rx = ctx.Queue()\n"
"        recv = rx.get\n"
"    else:\n"
"        rx, tx = ctx.Pipe(duplex=False)\n"
"        recv = rx.recv_bytes\n"
"    pin(cpu_c)\n"
"    p = ctx.Process(target=produce, args=(kind, tx, size, duration, cpu_p))\n"
"    p.start()\n"
"    expect = 0\n"
"    t0 = None\n"
"    while True:\n"
"        m = recv()\n"
"        if not m:\n"
"            break\n"
"        if len(m) != size or int.from_bytes(m[:8], 'little') != expect:\n"
"            sys.exit('message %d lost, duplicated or corrupt' % expect)\n"
"        if expect == 0:\n"
"            t0 = time.perf_counter()\n"
"        expect += 1\n"
"    t1 = time.perf_counter()\n"
"    p.join()\n"
"    if p.exitcode != 0 or expect < 2:\n"
"        sys.exit('producer failed (exit code %s)' % p.exitcode)\n"
"    rate = (expect - 1) / (t1 - t0)\n"
"    print('msgs_per_sec=%.1f' % rate)\n"
"    print('bytes_per_sec=%.1f' % (rate * size))\n"
"\n"
"def start_join(method, duration):\n"
"    ctx = mp.get_context(method)\n"
"    def once():\n"
"        p = ctx.Process(target=os.getpid)\n"
"        p.start()\n"
"        p.join()\n"
"        if p.exitcode != 0:\n"
"            sys.exit('child exit code %s' % p.exitcode)\n"
"    once()\n"
"    times = []\n"
"    deadline = time.monotonic() + duration\n"
"    while len(times) < 3 or time.monotonic() < deadline:\n"
"        t = time.perf_counter_ns()\n"
"        once()\n"
"        times.append(time.perf_counter_ns() - t)\n"
"    times.sort()\n"
"    n = len(times)\n"
"    med = times[n // 2] if n % 2 else (times[n // 2 - 1] + times[n // 2]) / 2\n"
"    print('start_join_us=%.3f' % (med / 1000))\n"
"\n"
"if __name__ == '__main__':\n"
"    mode, duration = sys.argv[1], float(sys.argv[2])\n"
"    size, cpu_p, cpu_c = int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])\n"
"    if mode in ('queue', 'pipe'):\n"
"        stream(mode, duration, size, cpu_p, cpu_c)\n"
"    else:\n"
"        start_join(mode, duration)\n";

static int py_prepare(struct bench_case *c, char *why, size_t len)
{
	(void)c;
	return bench_python_available(why, len) ? 0 : BENCH_SKIP;
}

/* The row's mode is the impl name without "python_". */
static int py_run(struct bench_case *c, struct bench_sample *s)
{
	char dur[32], size[32], cp[16], cc[16];
	snprintf(dur, sizeof dur, "%.3f", (double)c->duration_ns / 1e9);
	snprintf(size, sizeof size, "%zu", c->msg_size);
	snprintf(cp, sizeof cp, "%d", bench_cpu_for(0, 0));
	snprintf(cc, sizeof cc, "%d", bench_cpu_for(1, 0));
	const char *args[] = {c->impl->impl + strlen("python_"), dur, size,
			      cp, cc, NULL};
	return bench_python_run(c, script, args, s);
}

BENCH_REGISTER(python_queue) = {
	.suite = "throughput",
	.impl = "python_queue",
	.descr = "Python multiprocessing.Queue put/get, 64 B",
	.sizes = BENCH_SIZES(64),
	.prepare = py_prepare,
	.run = py_run,
};

BENCH_REGISTER(python_pipe) = {
	.suite = "throughput",
	.impl = "python_pipe",
	.descr = "Python multiprocessing.Pipe send_bytes/recv_bytes, 64 B",
	.sizes = BENCH_SIZES(64),
	.prepare = py_prepare,
	.run = py_run,
};

BENCH_REGISTER(python_fork) = {
	.suite = "process",
	.impl = "python_fork",
	.descr = "Python Process start+join, fork start method",
	.prepare = py_prepare,
	.run = py_run,
};

BENCH_REGISTER(python_spawn) = {
	.suite = "process",
	.impl = "python_spawn",
	.descr = "Python Process start+join, spawn start method",
	.prepare = py_prepare,
	.run = py_run,
};

BENCH_REGISTER(python_forkserver) = {
	.suite = "process",
	.impl = "python_forkserver",
	.descr = "Python Process start+join, forkserver start method",
	.prepare = py_prepare,
	.run = py_run,
};
