/*
 * fdstream.c - throughput and ping-pong over byte-stream descriptors, the
 * common code of the pipe and socketpair baselines (base_pipe.c,
 * base_socket.c).  A message is one write() of msg_size bytes; the reader
 * reads exactly msg_size bytes, as an application framing fixed-size
 * messages on a stream would.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"
#include "common/os.h"
#include "stream.h"

void bench_fd_close(struct bench_fd_link *l)
{
	int *fds[] = {&l->fwd_tx, &l->fwd_rx, &l->back_tx, &l->back_rx};
	for (int i = 0; i < 4; i++) {
		if (*fds[i] < 0)
			continue;
		/* The same descriptor may serve two roles (a socket). */
		for (int j = i + 1; j < 4; j++)
			if (*fds[j] == *fds[i])
				*fds[j] = -1;
		close(*fds[i]);
		*fds[i] = -1;
	}
}

static void after_fork(void *arg)
{
	bench_fd_close(arg);
}

/* One message = one write of msg_size bytes; the reader reads exactly
 * msg_size bytes back. */
static int fd_send(struct bench_worker *w, void *arg, const void *buf,
		   size_t len)
{
	(void)w;
	return mproc__write_all(((const struct bench_fd_link *)arg)->fwd_tx,
				buf, len);
}

static ssize_t fd_recv(struct bench_worker *w, void *arg, void *buf,
		       size_t len)
{
	(void)w;
	int rc = mproc__read_all(((const struct bench_fd_link *)arg)->fwd_rx,
				 buf, len);
	return rc < 0 ? rc : (ssize_t)len;
}

static int producer(struct bench_worker *w, void *arg)
{
	return bench_stream_produce(w, fd_send, arg);
}

static int consumer(struct bench_worker *w, void *arg)
{
	return bench_stream_consume(w, fd_recv, arg);
}

int bench_fd_throughput(struct bench_case *c, struct bench_fd_link *l,
			struct bench_sample *s)
{
	if (c->producers != 1 || c->consumers != 1) {
		/* Writes to one stream from several processes interleave. */
		snprintf(s->note, sizeof s->note, "only 1/1 on a stream");
		return BENCH_SKIP;
	}
	struct bench_team t = {
		.producer = producer,
		.consumer = consumer,
		.arg = l,
		.parent_after_fork = after_fork,
	};
	int rc = bench_team_throughput(c, &t, s);
	bench_fd_close(l);
	return rc;
}

/* The initiator's ping: a 64-byte message carrying a sequence number,
 * which must come back unchanged. */
static int ping(void *arg)
{
	struct bench_fd_link *l = arg;
	uint64_t seq = ++l->seq, back;
	memcpy(l->msg, &seq, sizeof seq);
	int rc = mproc__write_all(l->fwd_tx, l->msg, sizeof l->msg);
	if (rc == 0)
		rc = mproc__read_all(l->back_rx, l->msg, sizeof l->msg);
	if (rc < 0)
		return rc;
	memcpy(&back, l->msg, sizeof back);
	return back == seq ? 0 : -EBADMSG;
}

static int pong(void *arg)
{
	struct bench_fd_link *l = arg;
	uint64_t seq;
	int rc = mproc__read_all(l->fwd_rx, l->msg, sizeof l->msg);
	if (rc < 0)
		return rc;
	memcpy(&seq, l->msg, sizeof seq);
	if (seq == UINT64_MAX)
		return BENCH_PONG_STOP;
	return mproc__write_all(l->back_tx, l->msg, sizeof l->msg);
}

static int stop(void *arg)
{
	struct bench_fd_link *l = arg;
	uint64_t seq = UINT64_MAX;
	memcpy(l->msg, &seq, sizeof seq);
	return mproc__write_all(l->fwd_tx, l->msg, sizeof l->msg);
}

int bench_fd_pingpong(struct bench_case *c, struct bench_fd_link *l,
		      struct bench_sample *s)
{
	if (c->msg_size != sizeof l->msg) {
		snprintf(s->note, sizeof s->note, "ping-pong is 64 B only");
		return BENCH_SKIP;
	}
	memset(l->msg, 0x5a, sizeof l->msg);
	l->seq = 0;
	struct bench_pingpong pp = {
		.ping = ping,
		.pong = pong,
		.stop = stop,
		.arg = l,
		.parent_after_fork = after_fork,
	};
	int rc = bench_pingpong_run(c, &pp, s);
	bench_fd_close(l);
	return rc;
}
