/*
 * Internal: the ring layer's one interface.  A struct mproc__ring is a
 * process's private view of either ring in shared memory -- the SPSC
 * record ring (spsc.h: variable-length records, one producer, one
 * consumer) or the MPMC slot ring (mpmc.h: fixed-size slots, any number
 * of producers and consumers) -- and the verbs below work on both, so
 * their users (queue, pipe) are written once.  Each verb dispatches on
 * the view's kind in the one macro MPROC__RING_DISPATCH: a compare that
 * the CPU predicts perfectly (a view never changes kind), no function
 * pointer on the hot path.  The invariants and memory-ordering edges are
 * documented with each ring (I1-I6 and E1-E4 in spsc.h, M1-M3 and F1-F4
 * in mpmc.h); what differs between the kinds is listed there too.
 *
 * Layout.  A ring is a block of shared indices (mproc__ring_shared_size
 * bytes, cache-line aligned) and a buffer (mproc__ring_buf_size bytes);
 * its user places both in a segment and records the geometry
 * (struct mproc__ring_geom) in the segment header.  Nothing in shared
 * memory is a pointer.
 *
 * Tokens.  reserve and peek hand out a token that commit, release and
 * unpeek take back: for MPMC the claimed position (so threads may share a
 * view, each with its own token), for SPSC only informative (the view
 * holds its one reservation and its one peek).
 *
 * Concurrency.  Per view: an SPSC view is used by one producer thread and
 * one consumer thread at a time (the producer verbs and the consumer verbs
 * touch disjoint private state); an MPMC view may be shared by any number
 * of threads.  Across processes: SPSC allows one producer and one
 * consumer at a time (a role may move to another process when the user's
 * own synchronisation hands it over); MPMC any number.  count, full,
 * closed and close may be called by anyone at any time; pending by a
 * consumer.
 *
 * Errors are negative errno values or -MPROC_E*; nothing here sets errno.
 * Everything read from shared memory is validated before use: a hostile
 * segment gives -MPROC_ECORRUPT, never an out-of-bounds access.
 */
#ifndef MPROC_RING_RING_H
#define MPROC_RING_RING_H

#include <stdbool.h>
#include <stdint.h>

#include "mproc/common.h"
#include "ring/base.h"
#include "ring/mpmc.h"
#include "ring/spsc.h"

/* Ring kinds; the values are stored in segment geometry words. */
enum { MPROC__RING_SPSC = 1, MPROC__RING_MPMC = 2 };

struct mproc__ring {
	int kind; /* MPROC__RING_SPSC or MPROC__RING_MPMC */
	union {
		struct mproc__ring_spsc spsc;
		struct mproc__ring_mpmc mpmc;
	} u;
};

/* The one dispatch: call the SPSC or MPMC verb of that name on the view. */
#define MPROC__RING_DISPATCH(r, verb, ...)                                   \
	((r)->kind == MPROC__RING_SPSC                                       \
		 ? mproc__ring_spsc_##verb(&(r)->u.spsc, __VA_ARGS__)        \
		 : mproc__ring_mpmc_##verb(&(r)->u.mpmc, __VA_ARGS__))
#define MPROC__RING_DISPATCH0(r, verb)                                       \
	((r)->kind == MPROC__RING_SPSC                                       \
		 ? mproc__ring_spsc_##verb(&(r)->u.spsc)                     \
		 : mproc__ring_mpmc_##verb(&(r)->u.mpmc))
/* The same for the geometry helpers, which have a kind but no view. */
#define MPROC__RING_KIND_DISPATCH(kind, fn, ...)                             \
	((kind) == MPROC__RING_SPSC ? mproc__ring_spsc_##fn(__VA_ARGS__)      \
				    : mproc__ring_mpmc_##fn(__VA_ARGS__))

static inline bool mproc__ring_kind_valid(uint64_t kind)
{
	return kind == MPROC__RING_SPSC || kind == MPROC__RING_MPMC;
}

/* ------------------------------------------------------------------ */
/* Geometry and set-up (not on the hot path)                           */

/* Work out a ring's geometry.  @capacity: buffer bytes wanted (SPSC:
 * rounded up to a power of two, at least 64; MPMC: the slot count that
 * fits, rounded down to a power of two), 0 for "@dflt, or more if
 * @max_payload needs it"; @max_payload: largest message, 0 for the ring's
 * default (SPSC: half the ring less a header; MPMC: 1/64 of the buffer
 * less a slot header).  Returns 0, or -EINVAL when they do not fit
 * together (SPSC: @capacity above MPROC__RING_SPSC_MAX_CAP or
 * @max_payload above half the ring; MPMC: fewer than 2 slots of an
 * explicit @capacity, or @max_payload beyond a 32-bit slot length). */
static inline int mproc__ring_plan(int kind, uint64_t capacity,
				   uint64_t max_payload, uint64_t dflt,
				   struct mproc__ring_geom *g)
{
	return MPROC__RING_KIND_DISPATCH(kind, plan, capacity, max_payload,
					 dflt, g);
}

/* Check a geometry read from shared memory, with @avail bytes available
 * for the buffer.  Returns 0 or -MPROC_ECORRUPT. */
static inline int mproc__ring_check(int kind, const struct mproc__ring_geom *g,
				    uint64_t avail)
{
	if (!mproc__ring_kind_valid((uint64_t)kind))
		return -MPROC_ECORRUPT;
	return MPROC__RING_KIND_DISPATCH(kind, check, g, avail);
}

/* Bytes of the shared indices (a multiple of the cache line). */
static inline uint64_t mproc__ring_shared_size(int kind)
{
	return kind == MPROC__RING_SPSC
		       ? sizeof(struct mproc__ring_spsc_shared)
		       : sizeof(struct mproc__ring_mpmc_shared);
}

/* Bytes of the buffer (SPSC ring bytes, MPMC slots) of a geometry. */
static inline uint64_t mproc__ring_buf_size(int kind,
					    const struct mproc__ring_geom *g)
{
	return MPROC__RING_KIND_DISPATCH(kind, buf_size, g);
}

/* Initialise the shared indices @sh and the buffer @buf of a new ring
 * (creator only, before the segment is published; the release store of
 * the segment magic orders these plain stores, shm.h).  Both positions
 * start at @initial_index (tests start them near 2^32 and 2^64 to
 * exercise wrap-around). */
static inline void mproc__ring_init_shared(int kind, void *sh, void *buf,
					   const struct mproc__ring_geom *g,
					   uint64_t initial_index)
{
	MPROC__RING_KIND_DISPATCH(kind, init_shared, sh, buf, g,
				  initial_index);
}

/* Set up @r as a private view of the ring at @sh/@buf, whose geometry the
 * caller has validated (mproc__ring_check) or just planned.  The view
 * accepts messages of up to g->max_payload bytes (its user may promise
 * less than the ring could carry); @busy_poll: waits spin until their
 * deadline instead of sleeping.  Returns 0 or -MPROC_ECORRUPT (bad
 * geometry, or SPSC indices that break I2). */
static inline int mproc__ring_attach(struct mproc__ring *r, int kind,
				     void *sh, void *buf,
				     const struct mproc__ring_geom *g,
				     bool busy_poll)
{
	if (!mproc__ring_kind_valid((uint64_t)kind))
		return -MPROC_ECORRUPT;
	r->kind = kind;
	return MPROC__RING_DISPATCH(r, attach, sh, buf, g, busy_poll);
}

/* Switch busy-poll mode (see attach).  Not concurrently with a wait on
 * the same view. */
static inline void mproc__ring_set_busy_poll(struct mproc__ring *r, bool on)
{
	MPROC__RING_DISPATCH(r, set_busy_poll, on);
}

/* Largest message the view accepts. */
static inline uint64_t mproc__ring_max_payload(const struct mproc__ring *r)
{
	return MPROC__RING_DISPATCH0(r, max_payload);
}

/* ------------------------------------------------------------------ */
/* Producer                                                            */

/* Reserve room for a message of @len bytes, without blocking.  Returns 0
 * with *@token and the payload area in *@payload (write up to @len bytes
 * there, then commit); -EAGAIN when there is no room now; -EMSGSIZE when
 * @len > max_payload; -EPIPE when the ring is closed for writing (SPSC:
 * the consumer closed; MPMC: closed); -EBUSY (SPSC) when the view already
 * holds a reservation; -MPROC_ECORRUPT on bad shared indices. */
static inline int mproc__ring_reserve(struct mproc__ring *r, uint64_t len,
				      uint64_t *token, void **payload)
{
	return MPROC__RING_DISPATCH(r, reserve, len, token, payload);
}

/* Finish the reservation @token with the final @len (<= the reserved
 * length) and @flags (SPSC: 0 or MPROC__RING_REC_MORE; MPMC: 0).  The
 * message becomes visible to consumers now; @publish: also publish and
 * wake (as mproc__ring_publish), else leave that to one publish after a
 * batch.  Cannot fail. */
static inline void mproc__ring_commit(struct mproc__ring *r, uint64_t token,
				      uint64_t len, uint32_t flags,
				      bool publish)
{
	MPROC__RING_DISPATCH(r, commit, token, len, flags, publish);
}

/* Publish what was committed (SPSC: one head store and the message count
 * for qsize) and wake a sleeping consumer (a system call only when one
 * sleeps).  Batching is commit(publish=false) per message, then one
 * publish. */
static inline void mproc__ring_publish(struct mproc__ring *r)
{
	MPROC__RING_DISPATCH0(r, publish);
}

/* publish for a batch of @n messages: an MPMC ring wakes at most @n
 * sleeping consumers (futex.h, "Waking n"); SPSC as publish. */
static inline void mproc__ring_publish_n(struct mproc__ring *r, uint64_t n)
{
	if (r->kind == MPROC__RING_SPSC)
		mproc__ring_spsc_publish(&r->u.spsc);
	else
		mproc__ring_mpmc_publish_n(&r->u.mpmc, n);
}

/* SPSC only: one whole message copied in and published (reserve, copy,
 * commit, publish in one call); @count NULL or raised before the tag;
 * see mproc__ring_spsc_put. */
static inline int mproc__ring_put(struct mproc__ring *r, const void *buf,
				  uint64_t len, _Atomic uint64_t *count)
{
	return mproc__ring_spsc_put(&r->u.spsc, buf, len, count);
}

/* SPSC only: write up to @n messages and tag them, unpublished; see
 * mproc__ring_spsc_write_many. */
static inline int mproc__ring_write_many(struct mproc__ring *r,
					 const struct iovec *msgs, size_t n,
					 size_t *done, _Atomic uint64_t *count)
{
	return mproc__ring_spsc_write_many(&r->u.spsc, msgs, n, done, count);
}

/* SPSC only: copy out and release up to @n messages, unpublished; see
 * mproc__ring_spsc_read_many. */
static inline int mproc__ring_read_many(struct mproc__ring *r,
					const struct iovec *bufs, size_t *lens,
					size_t n, size_t *done)
{
	return mproc__ring_spsc_read_many(&r->u.spsc, bufs, lens, n, done);
}

/* MPMC only: claim up to @n free slots with one compare-and-swap; see
 * mproc__ring_mpmc_reserve_n.  Payloads: mproc__ring_payload. */
static inline int mproc__ring_reserve_n(struct mproc__ring *r, uint64_t n,
					uint64_t *first, uint64_t *got)
{
	return mproc__ring_mpmc_reserve_n(&r->u.mpmc, n, first, got);
}

/* MPMC only: the payload of the claimed position @pos. */
static inline void *mproc__ring_payload(const struct mproc__ring *r,
					uint64_t pos)
{
	return mproc__ring_mpmc_payload(&r->u.mpmc, pos);
}

/* Wait until a message of @len bytes may fit, the ring is closed for
 * writing, @d passes or @alive(@alive_arg) reports an error (checked
 * between sleep slices; NULL: none).  Returns 0 (then try reserve again:
 * it reports a close, or -EAGAIN when another producer was faster),
 * -ETIMEDOUT, -EMSGSIZE, or @alive's error. */
static inline int mproc__ring_wait_space(struct mproc__ring *r, uint64_t len,
					 const struct mproc__deadline *d,
					 mproc__alive_fn alive,
					 void *alive_arg)
{
	return MPROC__RING_DISPATCH(r, wait_space, len, d, alive, alive_arg);
}

/* ------------------------------------------------------------------ */
/* Consumer                                                            */

/* Look at the next message, without blocking.  Returns 0 with *@token,
 * the payload (valid until release), its length and flags; -EMSGSIZE with
 * *@len set when it is longer than @cap (nothing is claimed: the message
 * stays queued); -EAGAIN when empty; -MPROC_EEOF when empty and closed
 * for writing (MPMC: and every claimed slot consumed); -EBUSY (SPSC) when
 * the view already holds a peek; -MPROC_ECORRUPT.  MPMC: the message is
 * claimed by this call (no other consumer gets it). */
static inline int mproc__ring_peek(struct mproc__ring *r, uint64_t cap,
				   uint64_t *token, const void **payload,
				   uint64_t *len, uint32_t *flags)
{
	return MPROC__RING_DISPATCH(r, peek, cap, token, payload, len, flags);
}

/* Give back the peek @token unconsumed (SPSC only: an MPMC peek claimed
 * its slot for good, and unpeek there is a broken invariant that aborts;
 * use peek's @cap or next_len instead). */
static inline void mproc__ring_unpeek(struct mproc__ring *r, uint64_t token)
{
	MPROC__RING_DISPATCH(r, unpeek, token);
}

/* Consume the peeked message @token; @publish: also give the space back
 * and wake a sleeping producer now (as mproc__ring_release_publish), else
 * leave that to one release_publish after a batch.  Cannot fail. */
static inline void mproc__ring_release(struct mproc__ring *r, uint64_t token,
				       bool publish)
{
	MPROC__RING_DISPATCH(r, release, token, publish);
}

static inline void mproc__ring_release_publish(struct mproc__ring *r)
{
	MPROC__RING_DISPATCH0(r, release_publish);
}

/* release_publish for a batch of @n messages: an MPMC ring wakes at most
 * @n sleeping producers; SPSC as release_publish. */
static inline void mproc__ring_release_publish_n(struct mproc__ring *r,
						 uint64_t n)
{
	if (r->kind == MPROC__RING_SPSC)
		mproc__ring_spsc_release_publish(&r->u.spsc);
	else
		mproc__ring_mpmc_release_publish_n(&r->u.mpmc, n);
}

/* MPMC only: claim up to @n committed messages, message j fitting
 * @caps[j], with one compare-and-swap; see mproc__ring_mpmc_peek_n. */
static inline int mproc__ring_peek_n(struct mproc__ring *r, uint64_t n,
				     const uint64_t *caps, uint64_t *first,
				     uint64_t *got, uint64_t *lens)
{
	return mproc__ring_mpmc_peek_n(&r->u.mpmc, n, caps, first, got, lens);
}

/* A consumer that was woken and leaves the message it found queued
 * passes the wake on to another sleeping consumer (MPMC; an SPSC ring
 * has one consumer, so nothing to do). */
static inline void mproc__ring_pass_wake(struct mproc__ring *r)
{
	if (r->kind == MPROC__RING_MPMC)
		mproc__ring_mpmc_pass_wake(&r->u.mpmc);
}

/* Length of the next message, without consuming or claiming it.  Returns
 * 0 with *@len, or peek's errors (-EAGAIN, -MPROC_EEOF, -EBUSY,
 * -MPROC_ECORRUPT). */
static inline int mproc__ring_next_len(struct mproc__ring *r, uint64_t *len)
{
	return MPROC__RING_DISPATCH(r, next_len, len);
}

/* Wait until a message may be there, the ring is closed for writing, @d
 * passes or @alive reports an error (as in wait_space).  Returns 0 (then
 * peek: another consumer may have been faster), -ETIMEDOUT, or @alive's
 * error. */
static inline int mproc__ring_wait_data(struct mproc__ring *r,
					const struct mproc__deadline *d,
					mproc__alive_fn alive, void *alive_arg)
{
	return MPROC__RING_DISPATCH(r, wait_data, d, alive, alive_arg);
}

/* True when there is something for this consumer beyond its position:
 * published data, or the end of the stream (closed for writing).  With
 * acquire ordering (E1/E3, F1): what it reports is readable after it. */
static inline bool mproc__ring_pending(const struct mproc__ring *r)
{
	return MPROC__RING_DISPATCH0(r, pending);
}

/* ------------------------------------------------------------------ */
/* State                                                               */

/* Messages published and not yet consumed: a consistent snapshot (exact
 * when quiescent). */
static inline uint64_t mproc__ring_count(const struct mproc__ring *r)
{
	return MPROC__RING_DISPATCH0(r, count);
}

/* Producer side, SPSC only: the consumer has released everything this
 * view published (a relaxed look: a stale answer is "not yet").  The
 * pipe uses it to withdraw a readiness signal that came too late. */
static inline bool mproc__ring_all_taken(const struct mproc__ring *r)
{
	return r->kind == MPROC__RING_SPSC &&
	       mproc__ring_spsc_all_taken(&r->u.spsc);
}

/* True when a message of max_payload bytes might not fit now. */
static inline bool mproc__ring_full(const struct mproc__ring *r)
{
	return MPROC__RING_DISPATCH0(r, full);
}

/* Close (@how: MPROC__RING_WR_CLOSED and/or MPROC__RING_RD_CLOSED; MPMC
 * has one closed state) and wake every sleeper on both sides.  Producers
 * then get -EPIPE, consumers drain and then get -MPROC_EEOF.  Idempotent. */
static inline void mproc__ring_close(struct mproc__ring *r, uint32_t how)
{
	MPROC__RING_DISPATCH(r, close, how);
}

/* The close flags set so far (acquire: pairs with close). */
static inline uint32_t mproc__ring_closed(const struct mproc__ring *r)
{
	return MPROC__RING_DISPATCH0(r, closed);
}

#endif /* MPROC_RING_RING_H */
