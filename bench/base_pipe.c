/*
 * base_pipe.c - baseline rows over an anonymous pipe (default 64 KiB
 * kernel buffer): throughput of checked messages, and a 64-byte ping-pong
 * over two pipes.  The transport code is shared with socketpair in
 * fdstream.c; this file shows the smallest complete row.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"

static int pipe_throughput(struct bench_case *c, struct bench_sample *s)
{
	int p[2];
	if (pipe(p) < 0) {
		snprintf(s->note, sizeof s->note, "pipe: %s", strerror(errno));
		return -errno;
	}
	struct bench_fd_link l = {.fwd_tx = p[1], .fwd_rx = p[0],
				  .back_tx = -1, .back_rx = -1};
	return bench_fd_throughput(c, &l, s);
}

BENCH_REGISTER(pipe_tp) = {
	.suite = "throughput",
	.impl = "pipe",
	.descr = "pipe(2), one write/read of msg_size bytes per message",
	.run = pipe_throughput,
};

static int pipe_latency(struct bench_case *c, struct bench_sample *s)
{
	int a[2], b[2];
	if (pipe(a) < 0)
		return -errno;
	if (pipe(b) < 0) {
		int e = -errno;
		close(a[0]);
		close(a[1]);
		return e;
	}
	struct bench_fd_link l = {.fwd_tx = a[1], .fwd_rx = a[0],
				  .back_tx = b[1], .back_rx = b[0]};
	return bench_fd_pingpong(c, &l, s);
}

BENCH_REGISTER(pipe_lat) = {
	.suite = "latency",
	.impl = "pipe",
	.descr = "64 B ping-pong over two pipes (blocking read/write)",
	.run = pipe_latency,
};
