/*
 * Internal: single-producer single-consumer byte ring of variable-length
 * records in shared memory.  Used by mproc_queue (SPSC mode) and by every
 * mproc_conn (one ring per direction).
 *
 * Invariants (all indices are free-running uint64_t byte counters):
 *   I1  only the producer stores head and record tags; only the consumer
 *       stores tail;
 *   I2  0 <= tail' - tail and head - tail <= cap (tail' = the consumer's
 *       private position), all multiples of 16;
 *   I3  bytes [tail, head) (mod cap) hold complete, published records;
 *       bytes [head, tail + cap) belong to the producer;
 *   I4  a record is a 16-byte header {len, flags, tag} at a 16-aligned
 *       offset, followed by len payload bytes padded to 16; it never
 *       crosses the end of the buffer: where it would, the producer first
 *       writes a PAD record that fills the buffer to its end;
 *   I5  a data record's len <= max_payload = cap/2 - 16, so a record plus
 *       the largest pad in front of it (< record) always fits in an empty
 *       ring: a producer waiting for room is always satisfied once the
 *       consumer drains;
 *   I6  a record at position pos is published when its tag equals
 *       pos ^ secret (secret: a random odd 64-bit word chosen when the ring
 *       is created).  Positions never repeat (2^64 bytes), so a tag left
 *       over from an earlier lap never matches, and payload bytes that
 *       happen to lie where a header will go match only by a 2^-64 chance;
 *       the secret is odd and positions are multiples of 16, so the zeroed
 *       ring of a new segment never matches either.
 *
 * Why tags: the consumer learns that a record is there from the record's
 * own cache line, which it must fetch anyway, instead of from the head
 * index on another line; in streaming that halves the cache lines moving
 * from producer to consumer per small message.  A record is tagged when
 * it is committed, so the records of a batch become visible one by one;
 * head is still published once per batch (after the tags) for qsize, for
 * the pipe's readiness checks and for a consumer attaching later, and the
 * wake-up follows that publication.
 *
 * Memory-ordering edges:
 *   E1  producer: record bytes, then store(tag, release) at commit (for
 *       a PAD written by the reserve first), then at publish
 *       store(head, release)
 *       -> consumer: load(tag, acquire) == expected, then read the record
 *       (or load(head, acquire), then read records below it).
 *   E2  consumer: read the record, then store(tail, release)
 *       -> producer: load(tail, acquire), then overwrite those bytes.
 *       The consumer's tail update is the producer's licence to reuse the
 *       space: its reads are complete before the producer writes.
 *   E3  closed: store(closed, release) after the closer's last tag/head or
 *       tail store -> the other side's load(closed, acquire), after which
 *       it looks at the next tag again before deciding "drained" (so
 *       nothing sent before the close is missed).
 *   E4  sleep/wake: the event protocol of shm/futex.h, after the head
 *       store (data_ready) or tail store (space_ready).
 *
 * The producer keeps a private cached copy of tail and reloads the shared
 * one only when the cache says full; the consumer never reads head on its
 * fast path (tags, I6).  So in steady streaming the index lines are each
 * written by one side and read by the other only occasionally.
 *
 * Everything read from shared memory is checked before use: a head/tail
 * that breaks I2, or a record header that breaks I4/I5 or claims more bytes
 * than were published, gives -MPROC_ECORRUPT and never an out-of-bounds
 * access.  Header fields are copied to locals once and never re-read.
 */
#ifndef MPROC_RING_SPSC_H
#define MPROC_RING_SPSC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/compiler.h"
#include "ring/base.h"
#include "shm/futex.h"

#define MPROC__RING_REC_HDR 16u
#define MPROC__RING_REC_ALIGN 16u
/* Record flags. */
#define MPROC__RING_REC_PAD 1u  /* filler to the end of the buffer; no payload */
#define MPROC__RING_REC_MORE 2u /* fragment: more of the same message follows */
#define MPROC__RING_REC_FLAGS_KNOWN (MPROC__RING_REC_PAD | MPROC__RING_REC_MORE)


struct mproc__ring_spsc_shared {
	/* Producer-owned line. */
	_Atomic uint64_t head mproc__aligned_cl;
	_Atomic uint64_t msgs_in;  /* messages completed (for qsize) */
	_Atomic uint32_t producer_pid; /* last process to produce; liveness */
	/* Consumer-owned line. */
	_Atomic uint64_t tail mproc__aligned_cl;
	_Atomic uint64_t msgs_out;
	_Atomic uint32_t consumer_pid;
	/* Wait words: data_ready (consumer sleeps), space_ready (producer). */
	struct mproc__event data_ready mproc__aligned_cl;
	struct mproc__event space_ready mproc__aligned_cl;
	_Atomic uint32_t closed mproc__aligned_cl;
	uint64_t secret; /* I6; written once before the segment is published */
};

/* A process's private view of one ring. */
struct mproc__ring_spsc {
	struct mproc__ring_spsc_shared *sh;
	unsigned char *buf;
	uint64_t cap;          /* power of two, >= 64 */
	uint64_t mask;
	uint64_t max_payload;  /* cap/2 - 16 */
	uint64_t secret;       /* private copy of the tag secret (I6) */
	uint64_t cached_tail;  /* producer's copy of tail */
	uint64_t pend_head;    /* producer: written but not yet published */
	uint64_t pub_head;     /* producer: the head it last published */
	uint64_t pend_msgs;    /* producer: messages in pend */
	uint64_t res_off;      /* producer: where the reserved record starts */
	uint64_t res_len;      /* producer: reserved payload length */
	uint64_t res_pad_pos;  /* producer: where the reserve wrote a PAD */
	bool res_pad;          /* producer: ... if it wrote one */
	bool reserved;
	uint64_t rd_tail;      /* consumer: consumed but not yet published */
	uint64_t rd_msgs;      /* consumer: messages in rd_tail - tail */
	uint64_t pub_tail;     /* consumer: the tail it last published */
	uint64_t peek_rec;     /* consumer: size of the peeked record, or 0 */
	uint32_t peek_flags;   /* consumer: flags of the peeked record */
	struct mproc__spin spin_rd, spin_wr;
};

/* Bytes a record with @len payload bytes occupies. */
static inline uint64_t mproc__ring_spsc_rec_size(uint64_t len)
{
	return MPROC__RING_REC_HDR + ((len + MPROC__RING_REC_ALIGN - 1) &
				 ~(uint64_t)(MPROC__RING_REC_ALIGN - 1));
}

/* Initialise the shared part (creator only, before publication).  Both
 * indices start at @initial_index rounded down to 16 (tests start them
 * near 2^32 and 2^64 to exercise wrap-around); the tag secret is drawn
 * from getrandom(2). */
void mproc__ring_spsc_init_shared(struct mproc__ring_spsc_shared *sh,
			     uint64_t initial_index);
/* Largest ring: record lengths and pad lengths are 32-bit header fields. */
#define MPROC__RING_SPSC_MAX_CAP (UINT64_C(1) << 32)

/* Set up a private view; @cap must be a power of two, 64 ..
 * MPROC__RING_SPSC_MAX_CAP.  Validates the current head/tail (I2): returns 0 or
 * -MPROC_ECORRUPT. */
int mproc__ring_spsc_attach(struct mproc__ring_spsc *r, struct mproc__ring_spsc_shared *sh,
		       void *buf, uint64_t cap);

/* --- producer --- */
/* Reserve room for a record of @len payload bytes, without blocking.
 * Returns 0 and a pointer to the payload area, -EAGAIN when there is no
 * room now, -EMSGSIZE when @len > max_payload, -EPIPE when the consumer
 * closed, -MPROC_ECORRUPT on a bad tail. */
int mproc__ring_spsc_reserve(struct mproc__ring_spsc *r, uint64_t len, void **payload);
/* Finish the reserved record with the final @len (<= the reserved length)
 * and @flags; publish it now if @publish, else leave it for
 * mproc__ring_spsc_publish (batching: one head store, one wake-up). */
void mproc__ring_spsc_commit(struct mproc__ring_spsc *r, uint64_t len, uint32_t flags,
			bool publish);
/* Publish everything committed so far and wake a sleeping consumer. */
void mproc__ring_spsc_publish(struct mproc__ring_spsc *r);
/* Wait until a record of @len payload bytes fits, or the ring is closed
 * for writing (then returns 0 too: the next reserve reports it). */
int mproc__ring_spsc_wait_space(struct mproc__ring_spsc *r, uint64_t len,
			   const struct mproc__deadline *d,
			   mproc__alive_fn alive, void *alive_arg);

/* --- consumer --- */
/* Look at the next data record without consuming it (PAD records are
 * consumed on the way).  Returns 0 with pointer/len/flags, -EAGAIN when
 * empty, -MPROC_EEOF when empty and the producer closed, -MPROC_ECORRUPT.
 * The pointer stays valid until mproc__ring_spsc_release. */
int mproc__ring_spsc_peek(struct mproc__ring_spsc *r, const void **payload,
		     uint64_t *len, uint32_t *flags);
/* Consume the record returned by the last peek; publish the new tail now
 * if @publish (else with mproc__ring_spsc_release_publish). */
void mproc__ring_spsc_release(struct mproc__ring_spsc *r, bool publish);
void mproc__ring_spsc_release_publish(struct mproc__ring_spsc *r);
/* Forget the last peek without consuming (the record stays in place). */
static inline void mproc__ring_spsc_unpeek(struct mproc__ring_spsc *r)
{
	r->peek_rec = 0;
}
/* Wait until a record is readable or the producer closed. */
int mproc__ring_spsc_wait_data(struct mproc__ring_spsc *r,
			  const struct mproc__deadline *d,
			  mproc__alive_fn alive, void *alive_arg);

/* --- state --- */
/* Messages published and not yet consumed (exact when quiescent). */
uint64_t mproc__ring_spsc_count(const struct mproc__ring_spsc *r);
/* Bytes in use. */
uint64_t mproc__ring_spsc_used(const struct mproc__ring_spsc *r);
/* Set close flags and wake both sides. */
void mproc__ring_spsc_close(struct mproc__ring_spsc *r, uint32_t how);
uint32_t mproc__ring_spsc_closed(const struct mproc__ring_spsc *r);

#endif /* MPROC_RING_SPSC_H */
