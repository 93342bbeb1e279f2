/*
 * base_floor.c - the physical floors of a round trip between two
 * processes on different CPUs:
 *
 *   spin_floor   both processes busy-poll one 64-bit word in MAP_SHARED
 *                anonymous memory; each round trip moves that one cache
 *                line to the other CPU and back.  Nothing that crosses
 *                processes can answer faster.
 *   futex_floor  the same word (32 bits), but each side sleeps in
 *                FUTEX_WAIT and is woken with FUTEX_WAKE (shared futexes,
 *                no FUTEX_PRIVATE_FLAG, as mproc's must be): the cost of a
 *                cross-CPU wake-up, the floor of any blocking API.
 *
 *   record_floor a 64-byte message each way through a ring laid out as
 *                mproc's SPSC ring is (src/ring/spsc.h: a 16-byte header
 *                {len, flags | tag} before the payload, so an 80-byte
 *                record on two lines; the tag slot after the record
 *                cleared before the tag is stored), with the copy in and
 *                out and the length check, and nothing else: no queue
 *                layer, no head, tail or counters, no wake-up.  What
 *                mproc_queue_busy costs above it is the library's path.
 *
 *   membarrier_idle, membarrier_busy, fence_seq_cst
 *                not round trips but the price of the two ways to order a
 *                waker's condition store before its look at the waiter
 *                count (src/shm/futex.h): one membarrier(GLOBAL_EXPEDITED)
 *                call, as a waiter pays it each time it goes to sleep,
 *                with the other CPU idle or running a busy process of
 *                this program (registered, so the call interrupts it);
 *                and one seq_cst fence, as every waker would pay it on
 *                every message without membarrier.
 *
 * The protocol: the initiator stores an odd number 2k+1, the echoer
 * answers 2k+2; a stop is the odd value the counter never reaches.  Both
 * rows are listed at 64 B, a cache line, so they line up with the 64 B
 * rows of the latency suite.  An example of a ping-pong over shared
 * memory (bench_shared_alloc + bench_pingpong_run).
 */
#include <errno.h>
#include <linux/futex.h>
#include <linux/membarrier.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "bench.h"

/* ---- spin ------------------------------------------------------------ */

#define SPIN_STOP UINT64_MAX

struct spin_arg {
	_Atomic uint64_t *word; /* in shared memory, alone on its line */
	uint64_t k;             /* private to each side after the fork */
};

static int spin_ping(void *p)
{
	struct spin_arg *a = p;
	uint64_t ask = 2 * a->k + 1;
	a->k++;
	/* Release/acquire pair with the echoer's load/store, so that the
	 * answer is ordered after the question (it carries no data). */
	atomic_store_explicit(a->word, ask, memory_order_release);
	while (atomic_load_explicit(a->word, memory_order_acquire) != ask + 1)
		bench_pause();
	return 0;
}

static int spin_pong(void *p)
{
	struct spin_arg *a = p;
	uint64_t want = 2 * a->k + 1, v;
	while ((v = atomic_load_explicit(a->word, memory_order_acquire)) !=
	       want) {
		if (v == SPIN_STOP)
			return BENCH_PONG_STOP;
		bench_pause();
	}
	a->k++;
	atomic_store_explicit(a->word, want + 1, memory_order_release);
	return 0;
}

static int spin_stop(void *p)
{
	struct spin_arg *a = p;
	atomic_store_explicit(a->word, SPIN_STOP, memory_order_release);
	return 0;
}

static int spin_run(struct bench_case *c, struct bench_sample *s)
{
	struct spin_arg a = {.word = bench_shared_alloc(4096)};
	if (!a.word)
		return -ENOMEM;
	struct bench_pingpong pp = {
		.ping = spin_ping, .pong = spin_pong, .stop = spin_stop,
		.arg = &a,
	};
	int rc = bench_pingpong_run(c, &pp, s);
	bench_shared_free((void *)a.word, 4096);
	return rc;
}

BENCH_REGISTER(spin_floor) = {
	.suite = "latency",
	.impl = "spin_floor",
	.descr = "two processes bouncing one shared cache line, busy-polling "
		 "(the physical floor)",
	.run = spin_run,
};

/* ---- record ---------------------------------------------------------- */

#define REC_RING 4096u /* as the mproc latency rows' queues */
#define REC_MSG 64u
#define REC_SIZE (16u + REC_MSG)

struct rec_ring {
	_Alignas(64) unsigned char buf[REC_RING];
};

struct rec_arg {
	struct rec_ring *fwd, *back; /* in shared memory */
	uint64_t fwd_pos, back_pos;  /* private to each side after the fork */
	uint64_t seq;
	unsigned char msg[REC_MSG];
};

static _Atomic uint64_t *rec_word(struct rec_ring *r, uint64_t off)
{
	return (_Atomic uint64_t *)(r->buf + off);
}

/* The offset of the record at *@pos; a record that would cross the end
 * starts the next lap instead (both sides skip alike: records are all
 * REC_SIZE, so mproc's PAD record is not needed). */
static uint64_t rec_place(uint64_t *pos)
{
	uint64_t off = *pos % REC_RING;
	if (off + REC_SIZE > REC_RING) {
		*pos += REC_RING - off;
		off = 0;
	}
	return off;
}

static void rec_put(struct rec_ring *r, uint64_t *pos, const void *msg)
{
	uint64_t off = rec_place(pos);
	memcpy(r->buf + off + 16, msg, REC_MSG);
	/* Relaxed, the length and the clearing of the next tag slot: the
	 * release store of the tag below orders them, as in spsc.c (E1, E5). */
	atomic_store_explicit(rec_word(r, off), REC_MSG, memory_order_relaxed);
	uint64_t next = *pos + REC_SIZE, noff = next % REC_RING;
	if (noff + 16 <= REC_RING)
		atomic_store_explicit(rec_word(r, noff + 8), 0,
				      memory_order_relaxed);
	/* Release: pairs with rec_get's acquire load of the tag, which then
	 * sees the payload and the length.  Odd, so never the zero of a
	 * cleared or fresh slot. */
	atomic_store_explicit(rec_word(r, off + 8), *pos | 1,
			      memory_order_release);
	*pos = next;
}

static int rec_get(struct rec_ring *r, uint64_t *pos, void *msg)
{
	uint64_t off = rec_place(pos);
	/* Acquire: pairs with rec_put's release store of the tag. */
	while (atomic_load_explicit(rec_word(r, off + 8),
				    memory_order_acquire) != (*pos | 1))
		bench_pause();
	/* Relaxed: ordered by the acquire above. */
	if (atomic_load_explicit(rec_word(r, off), memory_order_relaxed) !=
	    REC_MSG)
		return -EBADMSG;
	memcpy(msg, r->buf + off + 16, REC_MSG);
	*pos += REC_SIZE;
	return 0;
}

static int rec_ping(void *p)
{
	struct rec_arg *a = p;
	uint64_t seq = ++a->seq, back;
	memcpy(a->msg, &seq, sizeof seq);
	rec_put(a->fwd, &a->fwd_pos, a->msg);
	int rc = rec_get(a->back, &a->back_pos, a->msg);
	if (rc)
		return rc;
	memcpy(&back, a->msg, sizeof back);
	return back == seq ? 0 : -EBADMSG;
}

static int rec_pong(void *p)
{
	struct rec_arg *a = p;
	int rc = rec_get(a->fwd, &a->fwd_pos, a->msg);
	if (rc)
		return rc;
	uint64_t seq;
	memcpy(&seq, a->msg, sizeof seq);
	if (seq == UINT64_MAX)
		return BENCH_PONG_STOP;
	rec_put(a->back, &a->back_pos, a->msg);
	return 0;
}

static int rec_stop(void *p)
{
	struct rec_arg *a = p;
	uint64_t seq = UINT64_MAX;
	memcpy(a->msg, &seq, sizeof seq);
	rec_put(a->fwd, &a->fwd_pos, a->msg);
	return 0;
}

static int rec_run(struct bench_case *c, struct bench_sample *s)
{
	struct rec_ring *rings = bench_shared_alloc(2 * sizeof(*rings));
	if (!rings)
		return -ENOMEM;
	struct rec_arg a = { .fwd = &rings[0], .back = &rings[1] };
	struct bench_pingpong pp = {
		.ping = rec_ping, .pong = rec_pong, .stop = rec_stop,
		.arg = &a,
	};
	int rc = bench_pingpong_run(c, &pp, s);
	bench_shared_free(rings, 2 * sizeof(*rings));
	return rc;
}

BENCH_REGISTER(record_floor) = {
	.suite = "latency",
	.impl = "record_floor",
	.descr = "a 64-byte message each way in mproc's SPSC record layout "
		 "(header, tag, cleared next slot), copied in and out, nothing "
		 "else (the floor of the ring format)",
	.run = rec_run,
};

/* ---- futex ----------------------------------------------------------- */

#define FUTEX_STOP UINT32_MAX

struct futex_arg {
	_Atomic uint32_t *word;
	uint32_t k;
};

static int futex_wait(_Atomic uint32_t *w, uint32_t v)
{
	if (syscall(SYS_futex, (uint32_t *)w, FUTEX_WAIT, v, NULL, NULL, 0) < 0
	    && errno != EAGAIN && errno != EINTR)
		return -errno;
	return 0;
}

static void futex_wake(_Atomic uint32_t *w)
{
	syscall(SYS_futex, (uint32_t *)w, FUTEX_WAKE, 1, NULL, NULL, 0);
}

static int futex_ping(void *p)
{
	struct futex_arg *a = p;
	uint32_t ask = 2 * a->k + 1;
	a->k++;
	/* Release/acquire as in spin_ping; the kernel re-reads the word
	 * under its own lock, so no wake-up is lost. */
	atomic_store_explicit(a->word, ask, memory_order_release);
	futex_wake(a->word);
	while (atomic_load_explicit(a->word, memory_order_acquire) == ask) {
		int rc = futex_wait(a->word, ask);
		if (rc < 0)
			return rc;
	}
	return atomic_load_explicit(a->word, memory_order_relaxed) == ask + 1
		       ? 0 : -EBADMSG;
}

static int futex_pong(void *p)
{
	struct futex_arg *a = p;
	uint32_t want = 2 * a->k + 1, v;
	while ((v = atomic_load_explicit(a->word, memory_order_acquire)) !=
	       want) {
		if (v == FUTEX_STOP)
			return BENCH_PONG_STOP;
		int rc = futex_wait(a->word, v);
		if (rc < 0)
			return rc;
	}
	a->k++;
	atomic_store_explicit(a->word, want + 1, memory_order_release);
	futex_wake(a->word);
	return 0;
}

static int futex_stop(void *p)
{
	struct futex_arg *a = p;
	atomic_store_explicit(a->word, FUTEX_STOP, memory_order_release);
	futex_wake(a->word);
	return 0;
}

static int futex_run(struct bench_case *c, struct bench_sample *s)
{
	struct futex_arg a = {.word = bench_shared_alloc(4096)};
	if (!a.word)
		return -ENOMEM;
	struct bench_pingpong pp = {
		.ping = futex_ping, .pong = futex_pong, .stop = futex_stop,
		.arg = &a,
	};
	int rc = bench_pingpong_run(c, &pp, s);
	bench_shared_free((void *)a.word, 4096);
	return rc;
}

BENCH_REGISTER(futex_floor) = {
	.suite = "latency",
	.impl = "futex_floor",
	.descr = "two processes bouncing a shared futex word with "
		 "FUTEX_WAIT/FUTEX_WAKE (the floor of a blocking wake-up)",
	.run = futex_run,
};

/* ---- barriers ---------------------------------------------------------- */

static int membarrier_op(void *arg)
{
	(void)arg;
	if (syscall(SYS_membarrier, MEMBARRIER_CMD_GLOBAL_EXPEDITED, 0, 0) < 0)
		return -errno;
	return 0;
}

static int fence_op(void *arg)
{
	(void)arg;
	atomic_thread_fence(memory_order_seq_cst);
	return 0;
}

struct barrier_row {
	bench_op_fn op;
	bool busy_peer; /* the other CPU spins (else it sleeps) */
};

static int barrier_timer(struct bench_worker *w, void *arg)
{
	const struct barrier_row *b = arg;
	struct bench_op_stats st;
	int rc = bench_op_loop(w->c, w, b->op, NULL, &st);
	if (rc < 0) {
		snprintf(w->res->note, sizeof w->res->note, "%s",
			 strerror(-rc));
		return rc;
	}
	w->res->value = st.median_ns;
	w->msgs = st.ops;
	return 0;
}

/* The process on the other CPU: a busy mproc process (spinning, as a
 * busy-polling consumer or a compute worker would), or an idle one. */
static int barrier_peer(struct bench_worker *w, void *arg)
{
	const struct barrier_row *b = arg;
	while (!bench_stop_requested(w)) {
		if (b->busy_peer) {
			for (int i = 0; i < 1024; i++)
				bench_pause();
		} else {
			usleep(1000);
		}
	}
	return 0;
}

static int barrier_run(struct bench_case *c, struct bench_sample *s,
		       bench_op_fn op, bool busy_peer)
{
	struct barrier_row b = { op, busy_peer };
	struct bench_case one = *c;
	one.producers = 1;
	one.consumers = 1;
	struct bench_team t = { .producer = barrier_timer,
				.consumer = barrier_peer, .arg = &b };
	struct bench_team_result r;
	int rc = bench_team_run(&one, &t, &r, s->note, sizeof s->note);
	if (rc == 0)
		s->fig[BENCH_RTT_NS] = r.prod[0].value;
	return rc;
}

static int membarrier_idle_run(struct bench_case *c, struct bench_sample *s)
{
	return barrier_run(c, s, membarrier_op, false);
}

static int membarrier_busy_run(struct bench_case *c, struct bench_sample *s)
{
	return barrier_run(c, s, membarrier_op, true);
}

static int fence_run(struct bench_case *c, struct bench_sample *s)
{
	return barrier_run(c, s, fence_op, true);
}

BENCH_REGISTER(membarrier_idle) = {
	.suite = "latency",
	.impl = "membarrier_idle",
	.descr = "one membarrier(GLOBAL_EXPEDITED) call, the other CPU idle "
		 "(a waiter's barrier before it sleeps; not a round trip)",
	.run = membarrier_idle_run,
};

BENCH_REGISTER(membarrier_busy) = {
	.suite = "latency",
	.impl = "membarrier_busy",
	.descr = "one membarrier(GLOBAL_EXPEDITED) call, the other CPU running "
		 "a busy process of this program (not a round trip)",
	.run = membarrier_busy_run,
};

BENCH_REGISTER(fence_seq_cst) = {
	.suite = "latency",
	.impl = "fence_seq_cst",
	.descr = "one seq_cst fence (what each waker would pay per message "
		 "without membarrier; not a round trip)",
	.run = fence_run,
};
