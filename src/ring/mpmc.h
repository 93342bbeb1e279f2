/*
 * Internal: multi-producer multi-consumer ring of slots in shared memory,
 * each slot carrying one message of 0..max_payload bytes.
 *
 * Algorithm: per-slot sequence numbers (Vyukov's bounded MPMC queue),
 * chosen over DPDK-style reserve/commit on shared head/tail because there
 * producers must publish in order (a producer preempted between reserve and
 * commit stalls every later producer's commit).  With per-slot sequences
 * each message is committed on its own.  That does not make a stalled or
 * dead claimer harmless: consumers share one FIFO position, so a producer
 * that claimed a slot and never commits stops every consumer at that slot,
 * and a consumer that claimed a message and never releases it stops every
 * producer one lap later.  Hence dead-claimer recovery (below).  The price
 * of slots is their fixed size (stride = 32 + max_payload, rounded to 16
 * bytes): pick max_msg to suit the traffic, or use the SPSC ring, which
 * packs variable-length records.
 *
 * Invariants (positions are free-running uint64_t message counters):
 *   M1  enq_pos and deq_pos only grow, by compare-and-swap: by 1, or by k
 *       for a batch (reserve_n, peek_n), which claims k consecutive slots
 *       that were all free (committed) when read, each named first (M3);
 *   M2  slot i = pos & mask.  Its seq is pos when free for the producer of
 *       pos, pos + 1 when that producer committed (full for the consumer
 *       of pos), and pos + nslots once that consumer released it (free for
 *       the producer of pos + nslots);
 *   M3  claimer names the process that claimed the slot last, as
 *       mproc__proc_ident (pid and start time, so a reused pid is never
 *       taken for the claimer); 0 is "unknown" and never taken for dead.
 *       A claimer stores it twice, before its claiming CAS (so a process
 *       killed right after the CAS is already named) and after it (so a
 *       loser of the same race, which stored before its failed CAS, is
 *       overwritten);
 *   M4  a committed slot whose len is MPROC__RING_MPMC_SKIP carries no
 *       message: consumers claim and release it without reporting it.
 *
 * Dead-claimer recovery runs only on slow paths: a view that keeps being
 * blocked at one position (every 64th -EAGAIN of peek or reserve, and
 * every sleep slice of a wait) reads the clock, and once it has been
 * blocked there for MPROC__RING_MPMC_RECOVER_NS it asks /proc whether the
 * claimer lives.  If not:
 *   R1  a producer's slot, claimed and never committed (seq == pos, and
 *       enq_pos > pos), at deq_pos: the recoverer claims pos as a
 *       consumer would (CAS deq_pos) and releases the slot at once; the
 *       consumers pass it as if it were a skip record;
 *   R2  a consumer's message, claimed and never released (seq == p + 1
 *       and deq_pos > p): the recoverer locks the slot by moving claimer
 *       from the dead process to itself (CAS), then moves the message, in
 *       place, to the back of the queue: it claims each enq position up to
 *       p + nslots, filling the free ones with skip records (M4), and when
 *       enq_pos reaches p + nslots (the position whose producer waits for
 *       this very slot) it claims that one too and commits the slot as the
 *       message of p + nslots, its bytes untouched (seq = p + nslots + 1).
 *       So nothing is lost and nothing copied; the message does not keep
 *       its place in the order (it goes to the back).  When a slot on the
 *       way is not free, the lock is handed back and the move is retried
 *       later;
 *   R3  a recoverer that dies inside R2 after claiming p + nslots leaves
 *       seq == p + 1 with enq_pos past p + nslots: whoever finds that at
 *       deq_pos with a dead claimer commits it (CAS seq to p + nslots + 1).
 *       One that dies inside R1, or while claiming skip slots, leaves
 *       states that R1 and R2 repair in turn.
 * Producers look for R2 (and R1 at the slot they wait for), consumers for
 * R1, R3 and, when the queue looks empty or closed, for R2 anywhere in the
 * last lap (a scan of nslots slot headers, at most once per bound).  A
 * process killed inside the two instructions between a loser's early
 * claimer store and the winner's late one (M3) can leave a live claimer
 * named; such a slot is recovered once that process ends.
 *
 * Memory-ordering edges:
 *   F1  producer: write len and payload, then store(seq = pos+1, release)
 *       -> consumer: load(seq, acquire) == pos+1, then read len/payload.
 *   F2  consumer: read payload, then store(seq = pos+nslots, release)
 *       -> producer of the next lap: load(seq, acquire) == its pos, then
 *       write: the consumer's reads are done before the overwrite.
 *   F3  enq_pos/deq_pos are loaded with acquire and moved by acq_rel CAS
 *       (a batch's one CAS releases the claimer stores of all its slots).
 *       The data itself is ordered by F1/F2 on the slot; the stronger
 *       orders make the position a process reads at least as new as the
 *       slot states it was derived from, so a legal race is never taken
 *       for corruption on weakly ordered CPUs (free on x86).  The early
 *       claimer store (M3) is released by the claiming CAS, so a
 *       recoverer that acquires the moved position reads that claimer.
 *   F4  closed and the events as in spsc.h (E3, E4): the closed store
 *       is a release after this process's last commit; a waker signals
 *       after its seq stores (publish, release_publish, or the @publish
 *       flag of commit and release).
 *   F5  recovery: the recoverer's seq stores are releases like F1/F2, and
 *       its claimer CAS (R2) is acq_rel, so of two recoverers one wins
 *       and the winner reads the slot as the dead claimer left it.
 *
 * Validation: a seq that is neither of the expected values and does not
 * explain itself by another process's progress (the position moved on) is
 * -MPROC_ECORRUPT, as is a len > max_payload other than the skip mark;
 * slot addresses come from the private copy of the geometry, so a hostile
 * value can never index out of the mapping.
 */
#ifndef MPROC_RING_MPMC_H
#define MPROC_RING_MPMC_H

#include <stdbool.h>
#include <stdint.h>

#include "common/compiler.h"
#include "ring/base.h"
#include "shm/futex.h"

#define MPROC__RING_MPMC_SLOT_HDR 32u
/* len of a skip record (M4): above every legal max_payload. */
#define MPROC__RING_MPMC_SKIP UINT32_MAX
/* How long a view must be blocked at one position by a claimed slot
 * before it asks whether the claimer lives (include/mproc/queue.h
 * documents the resulting bound). */
#define MPROC__RING_MPMC_RECOVER_NS (20 * 1000 * 1000LL)
/* The bound in force: MPROC__RING_MPMC_RECOVER_NS, except in tests and
 * fuzzers, which set 0 to reach recovery at once (then every blocked
 * call checks, not every 64th). */
extern int64_t mproc__ring_mpmc_recover_ns;

struct mproc__ring_mpmc_shared {
	_Atomic uint64_t enq_pos mproc__aligned_cl;
	_Atomic uint64_t deq_pos mproc__aligned_cl;
	struct mproc__event data_ready mproc__aligned_cl;
	struct mproc__event space_ready mproc__aligned_cl;
	_Atomic uint32_t closed mproc__aligned_cl;
};

struct mproc__ring_mpmc_slot {
	_Atomic uint64_t seq;
	_Atomic uint64_t claimer; /* M3; relaxed, ordered by F3/F5 */
	_Atomic uint32_t len;     /* relaxed; ordered by seq (F1) */
	uint32_t pad_[3];
	/* payload follows */
};

/* Where a view was last blocked, and since when (recovery's clock). */
struct mproc__ring_mpmc_stall {
	_Atomic uint32_t polls;  /* blocked -EAGAINs so far (gate: 1 in 64) */
	_Atomic uint64_t pos;    /* the position it was blocked at */
	_Atomic int64_t since;   /* first seen blocked there (ns), 0: never */
};

struct mproc__ring_mpmc {
	struct mproc__ring_mpmc_shared *sh;
	unsigned char *slots;
	uint64_t nslots, mask, stride, max_payload;
	/* This process as claimer (M3), and the pid it was computed for:
	 * a forked child finds the pid changed and computes its own.
	 * Atomic (relaxed): threads sharing the view may refresh it. */
	_Atomic int pid;
	_Atomic uint64_t ident;
	struct mproc__ring_mpmc_stall stall_rd, stall_wr;
	_Atomic int64_t last_scan; /* last R2 scan by a consumer (ns) */
	struct mproc__spin spin_rd, spin_wr;
};

static inline uint64_t mproc__ring_mpmc_stride(uint64_t max_payload)
{
	return (MPROC__RING_MPMC_SLOT_HDR + max_payload + 15) & ~(uint64_t)15;
}

/*
 * The verbs.  Their contract is written once, in ring.h, which dispatches
 * to these and to the SPSC ring's namesakes with the same signatures.
 * MPMC specifics:
 *   - the token is the claimed position: reserve and peek claim one
 *     (M1), commit and release take it back, so one view may serve any
 *     number of threads at once;
 *   - a slot has no flags: commit takes 0 and peek reports 0;
 *   - peek claims the slot, so it cannot be undone: unpeek is a broken
 *     internal invariant (it aborts).  A caller that only looks uses
 *     next_len, and peek's @cap refuses a message too long for it before
 *     claiming anything;
 *   - publish and release_publish only wake sleepers: each commit and
 *     release is visible on its own (F1, F2);
 *   - close sets the one closed state whatever @how says (producers get
 *     -EPIPE, consumers drain, then -MPROC_EEOF);
 *   - geometry: size = slot count (power of two, >= 2), stride =
 *     mproc__ring_mpmc_stride(max_payload).
 */
int mproc__ring_mpmc_plan(uint64_t capacity, uint64_t max_payload,
			  uint64_t dflt, struct mproc__ring_geom *g);
int mproc__ring_mpmc_check(const struct mproc__ring_geom *g, uint64_t avail);
static inline uint64_t
mproc__ring_mpmc_buf_size(const struct mproc__ring_geom *g)
{
	return g->size * g->stride;
}
void mproc__ring_mpmc_init_shared(struct mproc__ring_mpmc_shared *sh,
				  void *slots, const struct mproc__ring_geom *g,
				  uint64_t initial_index);
int mproc__ring_mpmc_attach(struct mproc__ring_mpmc *q,
			    struct mproc__ring_mpmc_shared *sh, void *slots,
			    const struct mproc__ring_geom *g, bool busy_poll);
static inline void mproc__ring_mpmc_set_busy_poll(struct mproc__ring_mpmc *q,
						  bool on)
{
	q->spin_rd.busy = q->spin_wr.busy = on;
}
static inline uint64_t
mproc__ring_mpmc_max_payload(const struct mproc__ring_mpmc *q)
{
	return q->max_payload;
}

/* --- producers --- */
int mproc__ring_mpmc_reserve(struct mproc__ring_mpmc *q, uint64_t len,
			     uint64_t *token, void **payload);
void mproc__ring_mpmc_commit(struct mproc__ring_mpmc *q, uint64_t token,
			     uint64_t len, uint32_t flags, bool publish);
/* Wake as many sleeping consumers as @n messages can satisfy (futex.h,
 * "Waking n"); publish is publish_n(1), as a commit carries one message. */
static inline void mproc__ring_mpmc_publish_n(struct mproc__ring_mpmc *q,
					      uint64_t n)
{
	/* F4/E4: the commits' seq stores came first. */
	mproc__event_signal_n(&q->sh->data_ready,
			      n > UINT32_MAX ? UINT32_MAX : (uint32_t)n);
}
static inline void mproc__ring_mpmc_publish(struct mproc__ring_mpmc *q)
{
	mproc__ring_mpmc_publish_n(q, 1);
}
/* Claim up to @n consecutive free slots with one compare-and-swap of
 * enq_pos.  Returns 0 with the first position in *@first and the count
 * (1..@n) in *@got; each slot's payload is at mproc__ring_mpmc_payload,
 * each is committed on its own (any order).  Otherwise reserve's errors
 * (the first slot's).  Every slot is named (M3) before the claim, so a
 * producer killed with some uncommitted leaves each to R1. */
int mproc__ring_mpmc_reserve_n(struct mproc__ring_mpmc *q, uint64_t n,
			       uint64_t *first, uint64_t *got);
/* The payload of the slot of position @pos (claimed by the caller). */
static inline void *mproc__ring_mpmc_payload(const struct mproc__ring_mpmc *q,
					     uint64_t pos)
{
	return q->slots + (pos & q->mask) * q->stride +
	       MPROC__RING_MPMC_SLOT_HDR;
}
int mproc__ring_mpmc_wait_space(struct mproc__ring_mpmc *q, uint64_t len,
				const struct mproc__deadline *d,
				mproc__alive_fn alive, void *alive_arg);

/* --- consumers --- */
int mproc__ring_mpmc_peek(struct mproc__ring_mpmc *q, uint64_t cap,
			  uint64_t *token, const void **payload,
			  uint64_t *len, uint32_t *flags);
void mproc__ring_mpmc_unpeek(struct mproc__ring_mpmc *q, uint64_t token);
void mproc__ring_mpmc_release(struct mproc__ring_mpmc *q, uint64_t token,
			      bool publish);
/* Wake as many sleeping producers as @n freed slots can satisfy. */
static inline void
mproc__ring_mpmc_release_publish_n(struct mproc__ring_mpmc *q, uint64_t n)
{
	/* F4/E4: the releases' seq stores came first. */
	mproc__event_signal_n(&q->sh->space_ready,
			      n > UINT32_MAX ? UINT32_MAX : (uint32_t)n);
}
static inline void mproc__ring_mpmc_release_publish(struct mproc__ring_mpmc *q)
{
	mproc__ring_mpmc_release_publish_n(q, 1);
}
/* Claim up to @n consecutive committed messages with one compare-and-swap
 * of deq_pos; message j must fit @caps[j].  Returns 0 with the first
 * position in *@first, the count (1..@n) in *@got and each length in
 * @lens (read once, validated); the payloads are at
 * mproc__ring_mpmc_payload until each is released.  Otherwise peek's
 * errors for the first message.  A skip record (M4) ends the batch
 * before it (peek passes it).  Every slot is named (M3) before the claim,
 * so a consumer killed before releasing leaves each to R2. */
int mproc__ring_mpmc_peek_n(struct mproc__ring_mpmc *q, uint64_t n,
			    const uint64_t *caps, uint64_t *first,
			    uint64_t *got, uint64_t *lens);
/* A consumer woken for a message that it leaves queued (it only looked,
 * or its buffer was too small) hands the wake to another sleeper
 * (futex.h, "Waking n"). */
static inline void mproc__ring_mpmc_pass_wake(struct mproc__ring_mpmc *q)
{
	mproc__event_signal_n(&q->sh->data_ready, 1);
}
int mproc__ring_mpmc_next_len(struct mproc__ring_mpmc *q, uint64_t *len);
int mproc__ring_mpmc_wait_data(struct mproc__ring_mpmc *q,
			       const struct mproc__deadline *d,
			       mproc__alive_fn alive, void *alive_arg);
bool mproc__ring_mpmc_pending(const struct mproc__ring_mpmc *q);

/* --- state --- */
uint64_t mproc__ring_mpmc_count(const struct mproc__ring_mpmc *q);
bool mproc__ring_mpmc_full(const struct mproc__ring_mpmc *q);
void mproc__ring_mpmc_close(struct mproc__ring_mpmc *q, uint32_t how);
uint32_t mproc__ring_mpmc_closed(const struct mproc__ring_mpmc *q);

#endif /* MPROC_RING_MPMC_H */
