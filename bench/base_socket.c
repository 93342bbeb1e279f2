/*
 * base_socket.c - baseline rows over an AF_UNIX SOCK_STREAM socketpair:
 * throughput of checked messages and a 64-byte ping-pong, both through
 * fdstream.c.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "bench.h"

static int make_link(struct bench_fd_link *l, struct bench_sample *s)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0) {
		snprintf(s->note, sizeof s->note, "socketpair: %s",
			 strerror(errno));
		return -errno;
	}
	/* Side 0 is the producer/initiator, side 1 the consumer/echoer. */
	*l = (struct bench_fd_link){.fwd_tx = sv[0], .back_rx = sv[0],
				    .fwd_rx = sv[1], .back_tx = sv[1]};
	return 0;
}

static int socket_throughput(struct bench_case *c, struct bench_sample *s)
{
	struct bench_fd_link l;
	int rc = make_link(&l, s);
	return rc < 0 ? rc : bench_fd_throughput(c, &l, s);
}

BENCH_REGISTER(socket_tp) = {
	.suite = "throughput",
	.impl = "socketpair",
	.descr = "AF_UNIX SOCK_STREAM socketpair, one write/read per message",
	.run = socket_throughput,
};

static int socket_latency(struct bench_case *c, struct bench_sample *s)
{
	struct bench_fd_link l;
	int rc = make_link(&l, s);
	return rc < 0 ? rc : bench_fd_pingpong(c, &l, s);
}

BENCH_REGISTER(socket_lat) = {
	.suite = "latency",
	.impl = "socketpair",
	.descr = "64 B ping-pong over an AF_UNIX SOCK_STREAM socketpair",
	.run = socket_latency,
};
