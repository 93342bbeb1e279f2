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
 *       is created).  Positions never repeat (2^64 bytes), so a whole tag
 *       left over from an earlier lap never matches, and eight payload
 *       bytes that happen to lie where a tag will go match only by a 2^-64
 *       chance; the secret is odd and positions are multiples of 16, so
 *       zero never matches, nor does the zeroed ring of a new segment.  A
 *       word made of both does not have that 2^-64 guarantee: a payload
 *       that ends a few bytes into an old tag (its record's padding keeps
 *       the rest) leaves that tag's high bytes, and the tag of the same
 *       offset a lap or two later differs from the old one only in its low
 *       bits (positions cap apart), so two payload bytes can make a match
 *       with a 2^-16 chance.  Only the slot at the producer's next position is
 *       ever read before it is tagged (the consumer has caught up; or it
 *       follows a PAD to the record after it), and I8 keeps it clean;
 *   I7  the records are the truth, head a summary of it: every record
 *       whose tag matches is committed, whether or not head covers it.
 *       A producer stores head after tagging (a batch: after all its
 *       tags), so head may lag the tags, and a consumer following tags
 *       may run ahead of head, by up to cap bytes -- briefly while the
 *       producer lives, for good when it died in between.  So attach
 *       accepts tail up to cap ahead of head, and a view taking over the
 *       producer role (its first reserve, or the shared head moved, or the
 *       producer word on head's line names another view or process) first
 *       walks the tags from head to their end, publishes what it found,
 *       names itself, and continues there: nothing committed is
 *       overwritten or lost;
 *   I8  before a record's tag is stored, the tag slot of the position
 *       right after it holds zero or a whole tag (E5): zero when the
 *       producer owns that position, else the whole tag the slot got a lap
 *       earlier, from the unconsumed record at position - cap.
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
 *   E5  producer: store(0) into the tag slot of the position after a
 *       record (I8; relaxed), then that record's store(tag, release)
 *       -> consumer: load(tag, acquire) sees the record, so its next look
 *       at the following slot reads the zero or a later value (the true
 *       tag), never the stale bytes under it.
 *
 * The producer keeps a private cached copy of tail and reloads the shared
 * one only when the cache says full; the consumer never reads head on its
 * fast path (tags, I6) but for the slip's look (below), once in 64
 * records at most.  So in steady streaming the index lines are each
 * written by one side and read by the other only occasionally.
 *
 * Slip (consumer, a speed rule with no part in correctness).  A consumer
 * that streams right behind the producer reads lines the producer is
 * still writing (a 64-byte message is an 80-byte record, so neighbours
 * share lines, and the hardware prefetcher runs ahead of the reads):
 * those lines cross between the cores more than once, and both sides
 * slow down.  On this project's 2-CPU VM a consumer 2-6 messages behind
 * streamed 42-46 M msg/s, 50-100 behind 51-57 M/s, and about 10,000
 * (800 KiB) behind 66 M/s; and since the consumer is the faster side once
 * it lags, it catches up, so the slow state is the stable one.  So, as
 * FastForward's "temporal slipping" does, every SLIP_EVERY peeks (each
 * single get, and the first record of each read_many; the
 * MPROC__SPSC_SLIP_* constants below) the consumer looks how far behind
 * head it is, but only when the record after the one it is taking is
 * there too (the producer is ahead; never in a request/response exchange
 * of single-record messages, where the ring holds one record) and the
 * ring holds at least SLIP_MIN_CAP bytes (in a smaller one, letting the
 * producer run ahead would fill it).  Nearer than SLIP_NEAR bytes, it
 * lets the producer run until it is SLIP_FAR behind, for as long as head
 * moves by SLIP_STRIDE bytes or more from one look to the next (a
 * producer that slows or stops costs one look), and for SLIP_LOOKS looks
 * at most (slip_more decides each look).  Relaxed loads of head and of
 * the next tag: hints only, nothing is read on their strength, and a
 * wrong (or hostile) head costs at most the bounded wait.
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
#define MPROC__RING_REC_PAD 1u  /* filler to the buffer's end; no payload */
#define MPROC__RING_REC_MORE 2u /* fragment: more of the message follows */
#define MPROC__RING_REC_FLAGS_KNOWN \
	(MPROC__RING_REC_PAD | MPROC__RING_REC_MORE)

struct mproc__ring_spsc_shared {
	/* Producer-owned line. */
	_Atomic uint64_t head mproc__aligned_cl;
	_Atomic uint64_t msgs_in;  /* messages completed (for qsize) */
	/* The view (and process) that produced last: a view that finds
	 * another one named here takes over producing (I7). */
	_Atomic uint64_t producer;
	/* Consumer-owned line. */
	_Atomic uint64_t tail mproc__aligned_cl;
	_Atomic uint64_t msgs_out;
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
	uint64_t max_payload;  /* <= cap/2 - 16 (I5); a queue may promise less */
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
	bool prod_resync;      /* producer: find the true end first (I7) */
	uint64_t token;        /* producer: names this view (xor its pid) */
	uint64_t rd_tail;      /* consumer: consumed but not yet published */
	uint64_t rd_msgs;      /* consumer: messages in rd_tail - tail */
	uint64_t pub_tail;     /* consumer: the tail it last published */
	uint64_t peek_rec;     /* consumer: size of the peeked record, or 0 */
	uint32_t peek_flags;   /* consumer: flags of the peeked record */
	uint32_t slip_count;   /* consumer: peeks since the last look (a
				* read_many counts once, for its first) */
	int slip_looks;        /* consumer: looks the last slip made (tests) */
	struct mproc__spin spin_rd, spin_wr;
};

/* Slip (above): how often the consumer looks (records), how near is too
 * near, how far to let the producer run ahead, the least progress per
 * look worth waiting for (bytes), the bound on the looks, and the spin
 * hints between two looks. */
#define MPROC__SPSC_SLIP_EVERY 64
#define MPROC__SPSC_SLIP_NEAR 2048
#define MPROC__SPSC_SLIP_FAR 8192
#define MPROC__SPSC_SLIP_STRIDE 256
#define MPROC__SPSC_SLIP_LOOKS 64
#define MPROC__SPSC_SLIP_PAUSES 16
#define MPROC__SPSC_SLIP_MIN_CAP (4 * MPROC__SPSC_SLIP_FAR)

/* One look of the slip: head read @now, @prev at the look before (or at
 * the first, when it is the first look), the consumer at @pos.  True when
 * the consumer should look again: head moved by SLIP_STRIDE or more and
 * is still less than SLIP_FAR ahead.  Unsigned differences, so a head
 * behind @pos, or one that moved back, reads as far ahead or as a long
 * move: a far head ends the wait at once, a head that jumps back and
 * forth only within the SLIP_LOOKS bound. */
static inline bool mproc__spsc_slip_more(uint64_t pos, uint64_t prev,
					 uint64_t now)
{
	return now - prev >= MPROC__SPSC_SLIP_STRIDE &&
	       now - pos < MPROC__SPSC_SLIP_FAR;
}

/* Bytes a record with @len payload bytes occupies. */
static inline uint64_t mproc__ring_spsc_rec_size(uint64_t len)
{
	return MPROC__RING_REC_HDR + ((len + MPROC__RING_REC_ALIGN - 1) &
				      ~(uint64_t)(MPROC__RING_REC_ALIGN - 1));
}

/* Largest ring: record lengths and pad lengths are 32-bit header fields. */
#define MPROC__RING_SPSC_MAX_CAP (UINT64_C(1) << 32)

/*
 * The verbs.  Their contract (returns, errors, who may call them
 * concurrently) is written once, in ring.h, which dispatches to these and
 * to the MPMC ring's namesakes with the same signatures.  SPSC specifics:
 *   - the token is only informative (the record's position): the one
 *     reservation and the one peek a view may hold live in the view, so a
 *     second reserve or peek before commit/release (or unpeek) is -EBUSY;
 *   - a record carries flags (MPROC__RING_REC_MORE); PAD records are
 *     consumed inside peek and never reported;
 *   - init_shared starts both indices at @initial_index rounded down to 16
 *     (tests start them near 2^32 and 2^64 to exercise wrap-around) and
 *     draws the tag secret (I6) from getrandom(2);
 *   - attach checks the geometry and the current head/tail (I2, I7);
 *   - next_len is read-only: it reads the shared tail and the records,
 *     never the view, so a watcher thread may call it beside the
 *     consumer thread (mproc_wait does);
 *   - geometry: size = ring bytes (power of two, 64 .. MAX_CAP),
 *     max_payload <= size/2 - 16 (I5), stride 0.
 */
int mproc__ring_spsc_plan(uint64_t capacity, uint64_t max_payload,
			  uint64_t dflt, struct mproc__ring_geom *g);
int mproc__ring_spsc_check(const struct mproc__ring_geom *g, uint64_t avail);
static inline uint64_t
mproc__ring_spsc_buf_size(const struct mproc__ring_geom *g)
{
	return g->size;
}
void mproc__ring_spsc_init_shared(struct mproc__ring_spsc_shared *sh,
				  void *buf, const struct mproc__ring_geom *g,
				  uint64_t initial_index);
int mproc__ring_spsc_attach(struct mproc__ring_spsc *r,
			    struct mproc__ring_spsc_shared *sh, void *buf,
			    const struct mproc__ring_geom *g, bool busy_poll);
static inline void mproc__ring_spsc_set_busy_poll(struct mproc__ring_spsc *r,
						  bool on)
{
	r->spin_rd.busy = r->spin_wr.busy = on;
}
static inline uint64_t
mproc__ring_spsc_max_payload(const struct mproc__ring_spsc *r)
{
	return r->max_payload;
}

/* --- producer --- */
int mproc__ring_spsc_reserve(struct mproc__ring_spsc *r, uint64_t len,
			     uint64_t *token, void **payload);
void mproc__ring_spsc_commit(struct mproc__ring_spsc *r, uint64_t token,
			     uint64_t len, uint32_t flags, bool publish);
void mproc__ring_spsc_publish(struct mproc__ring_spsc *r);
int mproc__ring_spsc_wait_space(struct mproc__ring_spsc *r, uint64_t len,
				const struct mproc__deadline *d,
				mproc__alive_fn alive, void *alive_arg);
/* Put of one whole message: reserve, copy @len bytes from @buf, commit
 * and publish (E1, E4) in one call, with reserve's checks and errors
 * (-EAGAIN, -EMSGSIZE, -EPIPE, -EBUSY, -MPROC_ECORRUPT); the record is
 * the same as reserve+commit(publish=true) would write.  @count, when
 * not NULL, is raised by one (relaxed) just before the record's tag, so
 * it counts exactly the messages made visible, even when the producer
 * dies mid-call (a joinable queue's unfinished count). */
int mproc__ring_spsc_put(struct mproc__ring_spsc *r, const void *buf,
			 uint64_t len, _Atomic uint64_t *count);
/* Batch put: copy up to @n messages into records, each tagged (visible)
 * as it is written, none published: the caller publishes once (E1 as
 * for commit(publish=false)).  *@done is how many were written; stops
 * at the first that does not fit now or is longer than max_payload.
 * Returns 0 with *@done >= 1, or the first message's error as reserve
 * (-EAGAIN, -EMSGSIZE, -EPIPE, -EBUSY, -MPROC_ECORRUPT).  @count as for
 * mproc__ring_spsc_put, once per message before its tag. */
struct iovec;
int mproc__ring_spsc_write_many(struct mproc__ring_spsc *r,
				const struct iovec *msgs, size_t n,
				size_t *done, _Atomic uint64_t *count);

/* --- consumer --- */
int mproc__ring_spsc_peek(struct mproc__ring_spsc *r, uint64_t cap,
			  uint64_t *token, const void **payload,
			  uint64_t *len, uint32_t *flags);
static inline void mproc__ring_spsc_unpeek(struct mproc__ring_spsc *r,
					   uint64_t token)
{
	(void)token;
	r->peek_rec = 0;
}
void mproc__ring_spsc_release(struct mproc__ring_spsc *r, uint64_t token,
			      bool publish);
void mproc__ring_spsc_release_publish(struct mproc__ring_spsc *r);
/* Batch get: copy up to @n messages out, message i into @bufs[i]
 * (@lens[i] its length), each released privately: the caller publishes
 * once (release_publish; E2).  Stops before a message that is not there
 * yet or does not fit its buffer.  Returns 0 with *@done >= 1, or the
 * first message's error as peek (-EMSGSIZE with @lens[0] set, -EAGAIN,
 * -MPROC_EEOF, -EBUSY, -MPROC_ECORRUPT). */
int mproc__ring_spsc_read_many(struct mproc__ring_spsc *r,
			       const struct iovec *bufs, size_t *lens,
			       size_t n, size_t *done);
int mproc__ring_spsc_next_len(struct mproc__ring_spsc *r, uint64_t *len);
int mproc__ring_spsc_wait_data(struct mproc__ring_spsc *r,
			       const struct mproc__deadline *d,
			       mproc__alive_fn alive, void *alive_arg);
bool mproc__ring_spsc_pending(const struct mproc__ring_spsc *r);

/* --- state --- */
uint64_t mproc__ring_spsc_count(const struct mproc__ring_spsc *r);
/* Producer: the consumer has released everything this view published.
 * Relaxed load of tail: a stale value only answers "not yet". */
static inline bool
mproc__ring_spsc_all_taken(const struct mproc__ring_spsc *r)
{
	return atomic_load_explicit(&r->sh->tail, memory_order_relaxed) ==
	       r->pub_head;
}
bool mproc__ring_spsc_full(const struct mproc__ring_spsc *r);
void mproc__ring_spsc_close(struct mproc__ring_spsc *r, uint32_t how);
uint32_t mproc__ring_spsc_closed(const struct mproc__ring_spsc *r);

#endif /* MPROC_RING_SPSC_H */
