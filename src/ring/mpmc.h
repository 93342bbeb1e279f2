/*
 * Internal: multi-producer multi-consumer ring of slots in shared memory,
 * each slot carrying one message of 0..max_payload bytes.
 *
 * Algorithm: per-slot sequence numbers (Vyukov's bounded MPMC queue),
 * chosen over DPDK-style reserve/commit on shared head/tail because there
 * producers must publish in order (a producer preempted between reserve and
 * commit stalls every later producer's commit) and a producer that dies
 * there blocks the ring for good.  With per-slot sequences each message is
 * committed on its own: a stalled or dead producer holds back only the
 * consumer that reaches its slot, and the slot records who claimed it
 * (owner pid) so a later recovery pass can find and repair it.  The price
 * is fixed-size slots (stride = 16 + max_payload, rounded to 16 bytes):
 * pick max_msg to suit the traffic, or use the SPSC ring, which packs
 * variable-length records.
 *
 * Invariants (positions are free-running uint64_t message counters):
 *   M1  enq_pos and deq_pos only grow, by compare-and-swap;
 *   M2  slot i = pos & mask.  Its seq is pos when free for the producer of
 *       pos, pos + 1 when that producer committed (full for the consumer
 *       of pos), and pos + nslots once that consumer released it (free for
 *       the producer of pos + nslots);
 *   M3  the owner field names the process that last claimed the slot.
 *
 * Memory-ordering edges:
 *   F1  producer: write len and payload, then store(seq = pos+1, release)
 *       -> consumer: load(seq, acquire) == pos+1, then read len/payload.
 *   F2  consumer: read payload, then store(seq = pos+nslots, release)
 *       -> producer of the next lap: load(seq, acquire) == its pos, then
 *       write: the consumer's reads are done before the overwrite.
 *   F3  enq_pos/deq_pos are loaded with acquire and moved by acq_rel CAS.
 *       The data itself is ordered by F1/F2 on the slot; the stronger
 *       orders make the position a process reads at least as new as the
 *       slot states it was derived from, so a legal race is never taken
 *       for corruption on weakly ordered CPUs (free on x86).
 *   F4  closed and the events as in spsc.h (E3, E4).
 *
 * Validation: a seq that is neither of the expected values and does not
 * explain itself by another process's progress (the position moved on) is
 * -MPROC_ECORRUPT, as is a len > max_payload; slot addresses come from the
 * private copy of the geometry, so a hostile value can never index out of
 * the mapping.
 */
#ifndef MPROC_RING_MPMC_H
#define MPROC_RING_MPMC_H

#include <stdbool.h>
#include <stdint.h>

#include "common/compiler.h"
#include "ring/base.h"
#include "shm/futex.h"

#define MPROC__RING_MPMC_SLOT_HDR 16u

struct mproc__ring_mpmc_shared {
	_Atomic uint64_t enq_pos mproc__aligned_cl;
	_Atomic uint64_t deq_pos mproc__aligned_cl;
	struct mproc__event data_ready mproc__aligned_cl;
	struct mproc__event space_ready mproc__aligned_cl;
	_Atomic uint32_t closed mproc__aligned_cl;
};

struct mproc__ring_mpmc_slot {
	_Atomic uint64_t seq;
	_Atomic uint32_t owner;
	_Atomic uint32_t len; /* relaxed; ordered by seq (F1) */
	/* payload follows */
};

struct mproc__ring_mpmc {
	struct mproc__ring_mpmc_shared *sh;
	unsigned char *slots;
	uint64_t nslots, mask, stride, max_payload;
	uint32_t pid;
	struct mproc__spin spin_rd, spin_wr;
};

static inline uint64_t mproc__ring_mpmc_stride(uint64_t max_payload)
{
	return (MPROC__RING_MPMC_SLOT_HDR + max_payload + 15) & ~(uint64_t)15;
}

void mproc__ring_mpmc_init(struct mproc__ring_mpmc_shared *sh, void *slots,
		      uint64_t nslots, uint64_t stride, uint64_t initial_pos);
void mproc__ring_mpmc_attach(struct mproc__ring_mpmc *q, struct mproc__ring_mpmc_shared *sh,
			void *slots, uint64_t nslots, uint64_t max_payload);

/* Non-blocking.  The claimed position goes to *pos and comes back to
 * commit/release, so one view may serve any number of threads at once.
 * reserve: 0, -EMSGSIZE, -EAGAIN (full), -EPIPE (closed), -MPROC_ECORRUPT.
 * peek: 0, -EAGAIN, -MPROC_EEOF (closed and every claimed slot consumed),
 * -MPROC_ECORRUPT, -EMSGSIZE with *len set when @cap is smaller than the
 * message (the message stays queued). */
int mproc__ring_mpmc_reserve(struct mproc__ring_mpmc *q, uint64_t len, uint64_t *pos,
			void **payload);
void mproc__ring_mpmc_commit(struct mproc__ring_mpmc *q, uint64_t pos, uint64_t len);
int mproc__ring_mpmc_peek(struct mproc__ring_mpmc *q, uint64_t cap, uint64_t *pos,
		     const void **payload, uint64_t *len);
void mproc__ring_mpmc_release(struct mproc__ring_mpmc *q, uint64_t pos);
/* Length of the next message without claiming it; -EAGAIN/-MPROC_EEOF. */
int mproc__ring_mpmc_next_len(struct mproc__ring_mpmc *q, uint64_t *len);

int mproc__ring_mpmc_wait_space(struct mproc__ring_mpmc *q,
			   const struct mproc__deadline *d);
int mproc__ring_mpmc_wait_data(struct mproc__ring_mpmc *q,
			  const struct mproc__deadline *d);
/* Wake sleepers after a batch of commits/releases. */
void mproc__ring_mpmc_signal_data(struct mproc__ring_mpmc *q);
void mproc__ring_mpmc_signal_space(struct mproc__ring_mpmc *q);

uint64_t mproc__ring_mpmc_count(const struct mproc__ring_mpmc *q);
void mproc__ring_mpmc_close(struct mproc__ring_mpmc *q);
bool mproc__ring_mpmc_closed(const struct mproc__ring_mpmc *q);

#endif /* MPROC_RING_MPMC_H */
