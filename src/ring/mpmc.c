/*
 * The MPMC slot ring: see mpmc.h for the algorithm, invariants (M1-M3) and
 * memory-ordering edges (F1-F4), and ring.h for the contract of each verb.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mproc/common.h"
#include "common/bits.h"
#include "ring/mpmc.h"

/* Slot lengths are 32-bit fields. */
#define MAX_PAYLOAD ((uint64_t)UINT32_MAX - 64)

static inline struct mproc__ring_mpmc_slot *
slot_at(const struct mproc__ring_mpmc *q, uint64_t pos)
{
	return (struct mproc__ring_mpmc_slot *)(q->slots +
						(pos & q->mask) * q->stride);
}

int mproc__ring_mpmc_plan(uint64_t capacity, uint64_t max_payload,
			  uint64_t dflt, struct mproc__ring_geom *g)
{
	uint64_t bytes = capacity ? capacity : dflt;
	/* By default, slots for 64 messages of the largest size. */
	uint64_t max = max_payload ? max_payload
				   : (bytes / 64 > 16 ? bytes / 64 - 16 : 0);
	if (max > MAX_PAYLOAD)
		return -EINVAL;
	uint64_t stride = mproc__ring_mpmc_stride(max);
	uint64_t nslots = bytes / stride;
	if (nslots < 2) {
		if (capacity)
			return -EINVAL;
		nslots = 2; /* default size too small for max_payload */
	}
	g->size = mproc__pow2_floor(nslots);
	g->max_payload = max;
	g->stride = stride;
	return 0;
}

int mproc__ring_mpmc_check(const struct mproc__ring_geom *g, uint64_t avail)
{
	uint64_t n = g->size, max = g->max_payload;
	if (!mproc__is_pow2(n) || n < 2 || max > MAX_PAYLOAD ||
	    g->stride != mproc__ring_mpmc_stride(max) || avail / g->stride < n)
		return -MPROC_ECORRUPT;
	return 0;
}

void mproc__ring_mpmc_init_shared(struct mproc__ring_mpmc_shared *sh,
				  void *slots, const struct mproc__ring_geom *g,
				  uint64_t initial_pos)
{
	uint64_t nslots = g->size, stride = g->stride;
	atomic_init(&sh->enq_pos, initial_pos);
	atomic_init(&sh->deq_pos, initial_pos);
	atomic_init(&sh->closed, 0);
	/* M2: slot of position p starts free for the producer of p, for
	 * the first lap p = initial_pos .. initial_pos + nslots - 1. */
	for (uint64_t i = 0; i < nslots; i++) {
		uint64_t p = initial_pos + i;
		struct mproc__ring_mpmc_slot *s = (struct mproc__ring_mpmc_slot *)(
			(unsigned char *)slots + (p & (nslots - 1)) * stride);
		atomic_init(&s->seq, p);
		atomic_init(&s->owner, 0);
	}
}

int mproc__ring_mpmc_attach(struct mproc__ring_mpmc *q,
			    struct mproc__ring_mpmc_shared *sh, void *slots,
			    const struct mproc__ring_geom *g, bool busy_poll)
{
	memset(q, 0, sizeof(*q));
	/* The caller validated the geometry it read from shared memory; the
	 * check is repeated because every slot address relies on it. */
	if (mproc__ring_mpmc_check(g, g->size * g->stride))
		return -MPROC_ECORRUPT;
	q->sh = sh;
	q->slots = slots;
	q->nslots = g->size;
	q->mask = g->size - 1;
	q->max_payload = g->max_payload;
	q->stride = g->stride;
	q->pid = (uint32_t)getpid();
	q->spin_rd.budget = q->spin_wr.budget = MPROC__SPIN_INIT;
	mproc__ring_mpmc_set_busy_poll(q, busy_poll);
	return 0;
}

int mproc__ring_mpmc_reserve(struct mproc__ring_mpmc *q, uint64_t len,
			     uint64_t *pos_out, void **payload)
{
	if (len > q->max_payload)
		return -EMSGSIZE;
	/* Relaxed: only a gate for new puts; a put that races with close is
	 * the documented case of mproc_queue_close. */
	if (atomic_load_explicit(&q->sh->closed, memory_order_relaxed))
		return -EPIPE;
	/* F3 */
	uint64_t pos = atomic_load_explicit(&q->sh->enq_pos,
					    memory_order_acquire);
	for (;;) {
		struct mproc__ring_mpmc_slot *s = slot_at(q, pos);
		/* F2: acquire pairs with the release by the consumer of the
		 * previous lap; its reads of this slot are complete. */
		uint64_t seq = atomic_load_explicit(&s->seq,
						    memory_order_acquire);
		int64_t dif = (int64_t)(seq - pos);
		if (dif == 0) {
			if (atomic_compare_exchange_weak_explicit(
				    &q->sh->enq_pos, &pos, pos + 1,
				    memory_order_acq_rel, memory_order_acquire))
				break; /* F3 */
			continue; /* pos was reloaded by the failed CAS */
		}
		if (dif < 0) {
			/* The consumer of the previous lap has not released
			 * it: full, unless seq is nonsense. */
			/* Legal: pos - seq is nslots (the last lap's
			 * producer has not committed) or nslots - 1 (its
			 * consumer has not released). */
			if (pos - seq > q->nslots)
				return -MPROC_ECORRUPT;
			return -EAGAIN;
		}
		/* Another producer took pos; move on.  If the position did
		 * not move, seq is ahead of every legal value. */
		uint64_t now = atomic_load_explicit(&q->sh->enq_pos,
						    memory_order_acquire);
		if (now == pos)
			return -MPROC_ECORRUPT;
		pos = now;
	}
	struct mproc__ring_mpmc_slot *s = slot_at(q, pos);
	/* M3: relaxed; for a post-mortem reader, not for synchronisation. */
	atomic_store_explicit(&s->owner, q->pid, memory_order_relaxed);
	*pos_out = pos;
	*payload = (unsigned char *)s + MPROC__RING_MPMC_SLOT_HDR;
	return 0;
}

void mproc__ring_mpmc_commit(struct mproc__ring_mpmc *q, uint64_t pos,
			     uint64_t len, uint32_t flags, bool publish)
{
	(void)flags; /* a slot has none (mpmc.h) */
	struct mproc__ring_mpmc_slot *s = slot_at(q, pos);
	/* Relaxed: ordered before the consumer's read by the release below. */
	atomic_store_explicit(&s->len, (uint32_t)len, memory_order_relaxed);
	/* F1: release publishes len and payload to the consumer. */
	atomic_store_explicit(&s->seq, pos + 1, memory_order_release);
	if (publish)
		mproc__ring_mpmc_publish(q);
}

/* Find the slot at the consumer position that holds a message.  Returns 0
 * with its position, slot and length (not yet claimed), or -EAGAIN or
 * -MPROC_ECORRUPT. */
static int find_full(const struct mproc__ring_mpmc *q, uint64_t *pos_out,
		     struct mproc__ring_mpmc_slot **slot_out, uint64_t *len_out)
{
	uint64_t pos = atomic_load_explicit(&q->sh->deq_pos,
					    memory_order_acquire); /* F3 */
	for (;;) {
		struct mproc__ring_mpmc_slot *s = slot_at(q, pos);
		/* F1: acquire pairs with the producer's release; len and
		 * payload are complete. */
		uint64_t seq = atomic_load_explicit(&s->seq,
						    memory_order_acquire);
		int64_t dif = (int64_t)(seq - (pos + 1));
		if (dif == 0) {
			/* Read once: the value validated is the value used. */
			uint64_t len = atomic_load_explicit(&s->len,
							    memory_order_relaxed);
			if (len > q->max_payload)
				return -MPROC_ECORRUPT;
			*pos_out = pos;
			*slot_out = s;
			*len_out = len;
			return 0;
		}
		if (dif < 0)
			return -EAGAIN; /* not yet committed: empty here */
		uint64_t now = atomic_load_explicit(&q->sh->deq_pos,
						    memory_order_acquire);
		if (now == pos)
			return -MPROC_ECORRUPT;
		pos = now;
	}
}

/* Closed, and every position handed to a producer handed to a consumer
 * too: nothing more can arrive (a put that passed its closed check before
 * the close and has not claimed a position yet is the documented race of
 * mproc_queue_close). */
static bool drained(const struct mproc__ring_mpmc *q)
{
	/* E3-style: acquire pairs with the closer's release. */
	if (!atomic_load_explicit(&q->sh->closed, memory_order_acquire))
		return false;
	uint64_t d = atomic_load_explicit(&q->sh->deq_pos, memory_order_acquire);
	uint64_t e = atomic_load_explicit(&q->sh->enq_pos, memory_order_acquire);
	return d == e;
}

static int empty_result(const struct mproc__ring_mpmc *q)
{
	/* Not drained while a claimed slot is still uncommitted: a slow
	 * producer's message, put before the close, must still arrive. */
	if (!drained(q))
		return -EAGAIN;
	uint64_t pos, len;
	struct mproc__ring_mpmc_slot *s;
	int rc = find_full(q, &pos, &s, &len);
	return rc == -EAGAIN ? -MPROC_EEOF : (rc ? rc : -EAGAIN);
}

int mproc__ring_mpmc_peek(struct mproc__ring_mpmc *q, uint64_t cap,
			  uint64_t *pos_out, const void **payload,
			  uint64_t *len, uint32_t *flags)
{
	for (;;) {
		uint64_t pos, l;
		struct mproc__ring_mpmc_slot *s;
		int rc = find_full(q, &pos, &s, &l);
		if (rc == -EAGAIN)
			return empty_result(q);
		if (rc)
			return rc;
		if (l > cap) {
			*len = l; /* too small: the message stays queued */
			return -EMSGSIZE;
		}
		if (!atomic_compare_exchange_weak_explicit(
			    &q->sh->deq_pos, &pos, pos + 1,
			    memory_order_acq_rel, memory_order_acquire))
			continue; /* another consumer took it (F3) */
		atomic_store_explicit(&s->owner, q->pid, memory_order_relaxed);
		*pos_out = pos;
		*payload = (unsigned char *)s + MPROC__RING_MPMC_SLOT_HDR;
		*len = l;
		*flags = 0;
		return 0;
	}
}

void mproc__ring_mpmc_unpeek(struct mproc__ring_mpmc *q, uint64_t pos)
{
	/* peek moved deq_pos past the slot (M1): there is no way back. */
	(void)q;
	(void)pos;
	abort();
}

void mproc__ring_mpmc_release(struct mproc__ring_mpmc *q, uint64_t pos,
			      bool publish)
{
	struct mproc__ring_mpmc_slot *s = slot_at(q, pos);
	/* F2: release; our reads of the payload happen before the next
	 * lap's producer writes it. */
	atomic_store_explicit(&s->seq, pos + q->nslots, memory_order_release);
	if (publish)
		mproc__ring_mpmc_release_publish(q);
}

int mproc__ring_mpmc_next_len(struct mproc__ring_mpmc *q, uint64_t *len)
{
	uint64_t pos;
	struct mproc__ring_mpmc_slot *s;
	int rc = find_full(q, &pos, &s, len);
	return rc == -EAGAIN ? empty_result(q) : rc;
}

/* Something for a consumer: a committed slot at deq_pos, or the end. */
static bool readable(const struct mproc__ring_mpmc *q)
{
	uint64_t pos = atomic_load_explicit(&q->sh->deq_pos,
					    memory_order_acquire);
	/* Acquire: F1, so a consumer that proceeds sees the payload.  Ready
	 * only when the slot is committed (seq == pos + 1; a larger value
	 * means deq_pos moved on and peek will look again): a slot still
	 * held by the previous lap's consumer (seq == pos + 1 - nslots) is
	 * not data, and reporting it would spin the waiter. */
	uint64_t seq = atomic_load_explicit(&slot_at(q, pos)->seq,
					    memory_order_acquire);
	return (int64_t)(seq - (pos + 1)) >= 0 || drained(q);
}

bool mproc__ring_mpmc_pending(const struct mproc__ring_mpmc *q)
{
	return readable(q);
}

/* A wait's state; the liveness hook first (mproc__ring_alive_check). */
struct wait {
	struct mproc__ring_alive alive;
	struct mproc__ring_mpmc *q;
};

static bool data_ready(void *arg)
{
	return readable(((struct wait *)arg)->q);
}

static bool space_ready(void *arg)
{
	const struct mproc__ring_mpmc *q = ((struct wait *)arg)->q;
	/* F3, then F2: acquire pairs with the releasing consumer, so a
	 * producer that proceeds may overwrite the slot.  The closed flag is
	 * only a reason to stop waiting (reserve then says -EPIPE): relaxed. */
	uint64_t pos = atomic_load_explicit(&q->sh->enq_pos,
					    memory_order_acquire);
	uint64_t seq = atomic_load_explicit(&slot_at(q, pos)->seq,
					    memory_order_acquire);
	return (int64_t)(seq - pos) >= 0 ||
	       atomic_load_explicit(&q->sh->closed, memory_order_relaxed);
}

int mproc__ring_mpmc_wait_space(struct mproc__ring_mpmc *q, uint64_t len,
				const struct mproc__deadline *d,
				mproc__alive_fn alive, void *alive_arg)
{
	if (len > q->max_payload)
		return -EMSGSIZE;
	struct wait w = { { alive, alive_arg }, q };
	return mproc__event_wait(&q->sh->space_ready, space_ready, &w, d,
				 &q->spin_wr, mproc__ring_alive_check);
}

int mproc__ring_mpmc_wait_data(struct mproc__ring_mpmc *q,
			       const struct mproc__deadline *d,
			       mproc__alive_fn alive, void *alive_arg)
{
	struct wait w = { { alive, alive_arg }, q };
	return mproc__event_wait(&q->sh->data_ready, data_ready, &w, d,
				 &q->spin_rd, mproc__ring_alive_check);
}

uint64_t mproc__ring_mpmc_count(const struct mproc__ring_mpmc *q)
{
	/* Consistent snapshot: deq before and after enq (both only grow). */
	for (int i = 0; i < 16; i++) {
		uint64_t d1 = atomic_load_explicit(&q->sh->deq_pos,
						   memory_order_acquire);
		uint64_t e = atomic_load_explicit(&q->sh->enq_pos,
						  memory_order_acquire);
		uint64_t d2 = atomic_load_explicit(&q->sh->deq_pos,
						   memory_order_acquire);
		if (d1 == d2)
			return e - d1 > q->nslots ? q->nslots : e - d1;
	}
	return 0;
}

bool mproc__ring_mpmc_full(const struct mproc__ring_mpmc *q)
{
	return mproc__ring_mpmc_count(q) >= q->nslots;
}

void mproc__ring_mpmc_close(struct mproc__ring_mpmc *q, uint32_t how)
{
	(void)how; /* one closed state (mpmc.h) */
	/* Release: pairs with the acquire in drained(); what this process
	 * committed before closing is seen by a consumer that sees the flag. */
	atomic_fetch_or_explicit(&q->sh->closed, MPROC__RING_WR_CLOSED,
				 memory_order_release);
	mproc__event_signal(&q->sh->data_ready);
	mproc__event_signal(&q->sh->space_ready);
}

uint32_t mproc__ring_mpmc_closed(const struct mproc__ring_mpmc *q)
{
	/* Acquire: pairs with the release in mproc__ring_mpmc_close. */
	return atomic_load_explicit(&q->sh->closed, memory_order_acquire);
}
