/*
 * peer.h - what the peer rows share: rows that measure other libraries a
 * reader would pick instead of mproc (DPDK's rte_ring, Concurrency Kit's
 * ck_ring, Boost.Interprocess message_queue, ZeroMQ, nng), so that the
 * table can show mproc's rows against their closest peer (stats.c).
 *
 * Each peer row lives in bench/peer_<name>.c, which bench/meson.build
 * compiles on its own with that library's flags only, and with
 * BENCH_PEER_FOUND set to 1 when meson found the library (the `peers`
 * option), 0 when not.  Without the library the file registers the same
 * rows through BENCH_PEER_ROW, as one 64-byte case each that is skipped
 * with a note naming the package (BENCH_PEER_PACKAGE): `--impl rte_ring`
 * then says why there is nothing instead of matching no row.
 *
 * The ring peers carry fixed 64-byte elements between two processes
 * forked over MAP_SHARED anonymous memory; the helpers below turn their
 * "try once" calls into the blocking send/receive of stream.h and into a
 * busy-polling ping-pong.  The socket peers share the end-of-run
 * handshake and the ipc:// path.
 */
#ifndef MPROC_BENCH_PEER_H
#define MPROC_BENCH_PEER_H

#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "common/clock.h"
#include "stream.h"

#ifndef BENCH_PEER_FOUND
#error "bench/meson.build defines BENCH_PEER_FOUND for every peer file"
#endif

#if BENCH_PEER_FOUND
/* The row as written: its sizes, configurations and run function. */
#define BENCH_PEER_ROW(sizes_, pcs_, run_)                                \
	.sizes = (sizes_), .pcs = (pcs_), .run = (run_)
#else
static int bench_peer_absent(struct bench_case *c, char *why, size_t len)
{
	(void)c;
	snprintf(why, len, "not built: %s was missing or -Dpeers=disabled; "
		 "scripts/bootstrap.sh --peers installs it, then meson setup "
		 "--reconfigure", BENCH_PEER_PACKAGE);
	return BENCH_SKIP;
}
/* One 64-byte case that is skipped with a note. */
#define BENCH_PEER_ROW(sizes_, pcs_, run_)                                \
	.sizes = BENCH_SIZES(64), .prepare = bench_peer_absent
#endif

#if BENCH_PEER_FOUND

/* ---- ring peers: fixed 64-byte elements ------------------------------ */

/* One ring element: a cache line, the size of the throughput suite's
 * smallest standard message. */
#define PEER_ELEM 64
/* Slots per ring: 16384 x 64 B = 1 MiB of elements, the data size of the
 * ring the mproc_spsc rows use for 64-byte messages (ring_bytes() in
 * mproc_queue.c). */
#define PEER_RING_SLOTS 16384u
/* A side that waits this long for its peer gives up instead of hanging:
 * the peer died or is stuck. */
#define PEER_SPIN_LIMIT_NS (10 * 1000000000LL)

/* Try once to put @elem into @ring or take one element from it into
 * @elem.  True on success; false when full or empty. */
typedef bool (*peer_try_fn)(void *ring, void *elem);

/* Retry @try until it succeeds, with a pause between tries; -ETIMEDOUT
 * after PEER_SPIN_LIMIT_NS.  The clock is read once per 4096 tries, so
 * the common case costs nothing.  Always inlined, so that with @try a
 * constant the library's inline call lands in the timed loop, as it
 * would in a program using the library. */
static inline __attribute__((always_inline)) int
peer_spin(peer_try_fn try, void *ring, void *elem)
{
	int64_t since = 0;
	for (uint32_t n = 1;; n++) {
		if (try(ring, elem))
			return 0;
		if ((n & 4095) == 0) {
			int64_t now = mproc__now_ns();
			if (since == 0)
				since = now;
			else if (now - since > PEER_SPIN_LIMIT_NS)
				return -ETIMEDOUT;
		}
		bench_pause();
	}
}

/* Fault in every page of a ring before the run, as the mproc rows warm
 * their rings: a first touch inside the timed window would measure the
 * kernel, not the ring. */
static inline void peer_prefault(void *p, size_t size)
{
	memset(p, 0, size);
}

/* A busy-polling 64-byte ping-pong over two rings in shared memory,
 * shaped like mproc_queue.c's q_ping/q_pong: the initiator sends a
 * sequence number on @fwd and waits for it back on @back; UINT64_MAX
 * asks the echoer to stop. */
struct peer_pingpong {
	void *fwd, *back;
	uint64_t seq;                  /* private to each side after fork */
	unsigned char msg[PEER_ELEM];  /* likewise */
};

static inline __attribute__((always_inline)) int
peer_ping(struct peer_pingpong *p, peer_try_fn put, peer_try_fn get)
{
	uint64_t seq = ++p->seq, back;
	memcpy(p->msg, &seq, sizeof seq);
	int rc = peer_spin(put, p->fwd, p->msg);
	if (rc == 0)
		rc = peer_spin(get, p->back, p->msg);
	if (rc < 0)
		return rc;
	memcpy(&back, p->msg, sizeof back);
	return back == seq ? 0 : -EBADMSG;
}

static inline __attribute__((always_inline)) int
peer_pong(struct peer_pingpong *p, peer_try_fn put, peer_try_fn get)
{
	uint64_t seq;
	int rc = peer_spin(get, p->fwd, p->msg);
	if (rc < 0)
		return rc;
	memcpy(&seq, p->msg, sizeof seq);
	if (seq == UINT64_MAX)
		return BENCH_PONG_STOP;
	return peer_spin(put, p->back, p->msg);
}

static inline int peer_stop(struct peer_pingpong *p, peer_try_fn put)
{
	uint64_t seq = UINT64_MAX;
	memcpy(p->msg, &seq, sizeof seq);
	return peer_spin(put, p->fwd, p->msg);
}

/* ---- queueing peers: sockets and Boost's message_queue --------------- */

/* How many messages a queueing peer may hold: 1000, ZeroMQ's default
 * high-water mark, but no more than 4 MiB of messages, so that 1 MiB
 * messages do not queue a gigabyte. */
static inline int peer_queue_depth(size_t msg_size)
{
	size_t k = ((size_t)4 << 20) / (msg_size ? msg_size : 1);
	return k < 4 ? 4 : k > 1000 ? 1000 : (int)k;
}

/* The first message over a fresh connection, sent in the team's setup
 * hook so that the connection is up before the timed run; not counted. */
#define PEER_HELLO "hello"

/*
 * A socket library queues messages in its own threads and drops what is
 * still queued when the sending process exits, so a producer that has
 * sent its end markers waits until every consumer has counted its last
 * message.  What a socket row shares with its workers starts with this.
 */
struct peer_sock_row {
	char path[96];     /* the socket file, unlinked after the run */
	_Atomic int *done; /* shared: consumers that saw every end marker */
};

/* Producer, after its end markers: wait until every consumer is done.
 * 0, or -ETIMEDOUT after PEER_SPIN_LIMIT_NS (a consumer died; its own
 * error is the one that will be reported). */
static inline int peer_wait_consumers(const struct bench_worker *w,
				      const struct peer_sock_row *row)
{
	int64_t until = mproc__now_ns() + PEER_SPIN_LIMIT_NS;
	/* Relaxed: the count carries no data, it only tells the producer
	 * that nothing of its own is still in flight. */
	while (atomic_load_explicit(row->done, memory_order_relaxed) <
	       w->c->consumers) {
		if (mproc__now_ns() > until)
			return -ETIMEDOUT;
		struct timespec ms = {0, 1000000};
		nanosleep(&ms, NULL);
	}
	return 0;
}

/* Consumer: receive and check until every end marker came (stream.h),
 * then count itself done.  The socket goes with the process: closing it
 * here would add its teardown to the consumer's timed end. */
static inline __attribute__((always_inline)) int
peer_sock_consume(struct bench_worker *w, bench_recv_fn recv,
		  struct peer_sock_row *row)
{
	int rc = bench_stream_consume(w, recv, row);
	/* Relaxed, as in peer_wait_consumers: no data rides on it. */
	if (rc == 0)
		atomic_fetch_add_explicit(row->done, 1, memory_order_relaxed);
	return rc;
}

/* One repetition of a socket row whose struct starts with @row: a fresh
 * socket path /tmp/mproc-bench-TAG.PID.N, the shared count, the team. */
static inline int peer_sock_run(struct bench_case *c, struct bench_sample *s,
				const char *tag, struct peer_sock_row *row,
				const struct bench_team *t)
{
	static unsigned counter;
	snprintf(row->path, sizeof row->path, "/tmp/mproc-bench-%s.%d.%u", tag,
		 (int)getpid(), counter++);
	row->done = bench_shared_alloc(sizeof *row->done);
	if (!row->done)
		return -ENOMEM;
	int rc = bench_team_throughput(c, t, s);
	unlink(row->path);
	bench_shared_free(row->done, sizeof *row->done);
	return rc;
}

#endif /* BENCH_PEER_FOUND */

#endif /* MPROC_BENCH_PEER_H */
