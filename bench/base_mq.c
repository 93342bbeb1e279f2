/*
 * base_mq.c - baseline throughput over a POSIX message queue (mq_send /
 * mq_receive, 10 messages deep).
 *
 * The kernel limits a message to fs.mqueue.msgsize_max bytes (8 KiB by
 * default; more needs CAP_SYS_RESOURCE in the initial user namespace) and
 * the memory of all of a user's queues to RLIMIT_MSGQUEUE (800 KiB by
 * default).  prepare() works out, per size, what can run: the queue is 10
 * messages deep (the default fs.mqueue.msg_max, allowed to anyone) or less
 * when RLIMIT_MSGQUEUE cannot hold 10; when root may write the sysctl, it
 * raises msgsize_max for the run (restored at exit) and says so in a note;
 * sizes that still cannot run are skipped with a note.  This is the
 * example of a row whose transport limits the cases it can measure.
 */
#include <errno.h>
#include <fcntl.h>
#include <mqueue.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "bench.h"
#include "stream.h"

#define MQ_DEPTH 10 /* the default fs.mqueue.msg_max */
#define MSGSIZE_MAX_PATH "/proc/sys/fs/mqueue/msgsize_max"
/* The kernel's bookkeeping per queue and per message, generously. */
#define MQ_OVERHEAD 4096
#define MQ_MSG_OVERHEAD 128

static long read_sysctl(const char *path)
{
	FILE *f = fopen(path, "r");
	long v = -1;
	if (f) {
		if (fscanf(f, "%ld", &v) != 1)
			v = -1;
		fclose(f);
	}
	return v;
}

static int write_sysctl(const char *path, long v)
{
	FILE *f = fopen(path, "w");
	if (!f)
		return -errno;
	fprintf(f, "%ld\n", v);
	return fclose(f) == 0 ? 0 : -errno;
}

/* msgsize_max as found at start, when this process raised it. */
static long saved_msgsize_max = -1;

static void restore_msgsize_max(void)
{
	if (saved_msgsize_max > 0 &&
	    write_sysctl(MSGSIZE_MAX_PATH, saved_msgsize_max) == 0)
		saved_msgsize_max = -1;
}

/* How deep a queue of @size-byte messages RLIMIT_MSGQUEUE allows (after
 * raising the soft limit to the hard one if that helps), at most
 * MQ_DEPTH. */
static long depth_for(size_t size)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_MSGQUEUE, &rl) != 0)
		return MQ_DEPTH;
	unsigned long long need = MQ_OVERHEAD +
		(unsigned long long)MQ_DEPTH * (size + MQ_MSG_OVERHEAD);
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < need &&
	    rl.rlim_max != rl.rlim_cur) {
		rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > need
				      ? need : rl.rlim_max;
		if (setrlimit(RLIMIT_MSGQUEUE, &rl) != 0)
			getrlimit(RLIMIT_MSGQUEUE, &rl);
	}
	if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= need)
		return MQ_DEPTH;
	if (rl.rlim_cur < MQ_OVERHEAD)
		return 0;
	return (long)((rl.rlim_cur - MQ_OVERHEAD) / (size + MQ_MSG_OVERHEAD));
}

static mqd_t open_queue(size_t size, long depth, int *err)
{
	static unsigned counter;
	char name[64];
	snprintf(name, sizeof name, "/mproc-bench.%d.%u", (int)getpid(),
		 counter++);
	struct mq_attr attr = {.mq_maxmsg = depth, .mq_msgsize = (long)size};
	mqd_t q = mq_open(name, O_RDWR | O_CREAT | O_EXCL, 0600, &attr);
	*err = q == (mqd_t)-1 ? errno : 0;
	if (q != (mqd_t)-1)
		mq_unlink(name); /* the descriptor lives on; no name left */
	return q;
}

static int mq_prepare(struct bench_case *c, char *why, size_t len)
{
	long depth = depth_for(c->msg_size);
	struct rlimit rl;
	getrlimit(RLIMIT_MSGQUEUE, &rl);
	if (depth < 2) {
		snprintf(why, len, "RLIMIT_MSGQUEUE (%llu B, cannot be raised) "
			 "holds fewer than two %zu B messages",
			 (unsigned long long)rl.rlim_cur, c->msg_size);
		return BENCH_SKIP;
	}
	long max = read_sysctl(MSGSIZE_MAX_PATH);
	int err;
	mqd_t q = open_queue(c->msg_size, depth, &err);
	if (q == (mqd_t)-1 && err == EINVAL && max > 0 &&
	    (long)c->msg_size > max) {
		/* Raise the system-wide limit for this run, if allowed. */
		long orig = saved_msgsize_max > 0 ? saved_msgsize_max : max;
		if (write_sysctl(MSGSIZE_MAX_PATH, (long)c->msg_size) == 0) {
			if (saved_msgsize_max < 0) {
				saved_msgsize_max = orig;
				atexit(restore_msgsize_max);
			}
			bench_note("posix_mq: raised fs.mqueue.msgsize_max from "
				   "%ld for this run (restored at exit)", orig);
			q = open_queue(c->msg_size, depth, &err);
		}
	}
	if (q == (mqd_t)-1) {
		if (err == EINVAL && max > 0 && (long)c->msg_size > max)
			snprintf(why, len, "message size above "
				 "fs.mqueue.msgsize_max (%ld), which this "
				 "process cannot raise", max);
		else if (err == EMFILE || err == ENOMEM)
			snprintf(why, len, "RLIMIT_MSGQUEUE (%llu B) too small "
				 "for %ld x %zu B", (unsigned long long)
				 rl.rlim_cur, depth, c->msg_size);
		else
			snprintf(why, len, "mq_open: %s", strerror(err));
		return BENCH_SKIP;
	}
	mq_close(q);
	if (depth < MQ_DEPTH)
		bench_note("posix_mq: %zu B messages in a queue %ld deep "
			   "(RLIMIT_MSGQUEUE %llu B)", c->msg_size, depth,
			   (unsigned long long)rl.rlim_cur);
	c->state = (void *)(intptr_t)depth;
	return 0;
}

static void mq_cleanup(struct bench_case *c)
{
	(void)c;
	restore_msgsize_max();
}

struct mq_arg {
	mqd_t q;
};

static void after_fork(void *arg)
{
	struct mq_arg *a = arg;
	mq_close(a->q);
	a->q = (mqd_t)-1;
}

static int mq_send_one(struct bench_worker *w, void *arg, const void *buf,
		       size_t len)
{
	(void)w;
	const struct mq_arg *a = arg;
	while (mq_send(a->q, buf, len, 0) < 0)
		if (errno != EINTR)
			return -errno;
	return 0;
}

static ssize_t mq_recv_one(struct bench_worker *w, void *arg, void *buf,
			   size_t len)
{
	(void)w;
	const struct mq_arg *a = arg;
	for (;;) {
		ssize_t got = mq_receive(a->q, buf, len, NULL);
		if (got >= 0)
			return got;
		if (errno != EINTR)
			return -errno;
	}
}

static int producer(struct bench_worker *w, void *arg)
{
	return bench_stream_produce(w, mq_send_one, arg);
}

static int consumer(struct bench_worker *w, void *arg)
{
	return bench_stream_consume(w, mq_recv_one, arg);
}

static int mq_throughput(struct bench_case *c, struct bench_sample *s)
{
	int err;
	struct mq_arg a = {
		.q = open_queue(c->msg_size, (long)(intptr_t)c->state, &err)};
	if (a.q == (mqd_t)-1) {
		snprintf(s->note, sizeof s->note, "mq_open: %s", strerror(err));
		return -err;
	}
	struct bench_team t = {
		.producer = producer,
		.consumer = consumer,
		.arg = &a,
		.parent_after_fork = after_fork,
	};
	int rc = bench_team_throughput(c, &t, s);
	if (a.q != (mqd_t)-1)
		mq_close(a.q);
	return rc;
}

BENCH_REGISTER(posix_mq) = {
	.suite = "throughput",
	.impl = "posix_mq",
	.descr = "POSIX message queue, 10 deep (less if RLIMIT_MSGQUEUE "
		 "is short), mq_send/mq_receive",
	/* A POSIX queue is multi-producer, multi-consumer: the kernel's
	 * counterpart of mproc's MPMC configurations. */
	.pcs = BENCH_PCS({1, 1}, {2, 1}, {1, 2}, {2, 2}),
	.prepare = mq_prepare,
	.run = mq_throughput,
	.cleanup = mq_cleanup,
};
