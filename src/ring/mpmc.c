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
#include "common/clock.h"
#include "common/fork.h"
#include "common/os.h"
#include "ring/mpmc.h"

int64_t mproc__ring_mpmc_recover_ns = MPROC__RING_MPMC_RECOVER_NS;

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
				   : (bytes / 64 > MPROC__RING_MPMC_SLOT_HDR
					  ? bytes / 64 - MPROC__RING_MPMC_SLOT_HDR
					  : 0);
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
		atomic_init(&s->claimer, 0);
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
	atomic_init(&q->pid, 0); /* the first claim computes the identity */
	q->spin_rd.budget = q->spin_wr.budget = MPROC__SPIN_INIT;
	mproc__ring_mpmc_set_busy_poll(q, busy_poll);
	return 0;
}

/* This process as claimer (M3).  The pid check is a load of a global
 * and a compare per claim; the identity is read from /proc once per
 * process (and again in a forked child, whose pid differs). */
static inline uint64_t self_ident(struct mproc__ring_mpmc *q)
{
	int me = mproc__self_pid();
	if (mproc__likely(atomic_load_explicit(&q->pid, memory_order_relaxed) ==
			  me))
		return atomic_load_explicit(&q->ident, memory_order_relaxed);
	uint64_t id = mproc__proc_ident(me);
	atomic_store_explicit(&q->ident, id, memory_order_relaxed);
	atomic_store_explicit(&q->pid, me, memory_order_relaxed);
	return id;
}

static void set_claimer(struct mproc__ring_mpmc_slot *s, uint64_t id)
{
	/* M3: relaxed; the claiming CAS releases it (F3). */
	atomic_store_explicit(&s->claimer, id, memory_order_relaxed);
}

static bool recover_wr(struct mproc__ring_mpmc *q, uint64_t pos, bool waited);

int mproc__ring_mpmc_reserve(struct mproc__ring_mpmc *q, uint64_t len,
			     uint64_t *pos_out, void **payload)
{
	if (len > q->max_payload)
		return -EMSGSIZE;
	/* Relaxed: only a gate for new puts; a put that races with close is
	 * the documented case of mproc_queue_close. */
	if (atomic_load_explicit(&q->sh->closed, memory_order_relaxed))
		return -EPIPE;
	uint64_t id = self_ident(q);
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
			set_claimer(s, id); /* M3: before the claim */
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
			/* Slow path: blocked by a dead claimer? */
			if (recover_wr(q, pos, false))
				continue;
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
	set_claimer(s, id); /* M3: after the claim */
	*pos_out = pos;
	*payload = (unsigned char *)s + MPROC__RING_MPMC_SLOT_HDR;
	return 0;
}

int mproc__ring_mpmc_reserve_n(struct mproc__ring_mpmc *q, uint64_t n,
			       uint64_t *first, uint64_t *got)
{
	/* Relaxed: as in reserve. */
	if (n > 1 && !atomic_load_explicit(&q->sh->closed,
					   memory_order_relaxed)) {
		uint64_t id = self_ident(q);
		/* F3 */
		uint64_t pos = atomic_load_explicit(&q->sh->enq_pos,
						    memory_order_acquire);
		for (;;) {
			/* Count the free slots from pos (M2: seq == the
			 * position).  F2: each acquire pairs with the release
			 * of the previous lap's consumer of that slot. */
			uint64_t c = 0;
			while (c < n &&
			       atomic_load_explicit(&slot_at(q, pos + c)->seq,
						    memory_order_acquire) ==
				       pos + c)
				c++;
			if (c < 2)
				break; /* one or none: reserve's path below */
			/* M3: name every slot before the claim, so a producer
			 * killed right after the CAS is named in each. */
			for (uint64_t i = 0; i < c; i++)
				set_claimer(slot_at(q, pos + i), id);
			/* F3: one acq_rel CAS claims all c (M1); it releases
			 * the claimer stores above. */
			if (atomic_compare_exchange_weak_explicit(
				    &q->sh->enq_pos, &pos, pos + c,
				    memory_order_acq_rel, memory_order_acquire)) {
				/* M3: after the claim, over any loser's. */
				for (uint64_t i = 0; i < c; i++)
					set_claimer(slot_at(q, pos + i), id);
				*first = pos;
				*got = c;
				return 0;
			}
			/* pos was reloaded by the failed CAS: count again. */
		}
	}
	/* One slot, or the first is not free: reserve reports and recovers
	 * exactly as for a single put. */
	void *payload;
	int rc = mproc__ring_mpmc_reserve(q, 0, first, &payload);
	if (rc == 0)
		*got = 1;
	return rc;
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
 * with its position, slot and length (not yet claimed; the length may be
 * the skip mark, M4), or -MPROC_ECORRUPT, or -EAGAIN with *@pos_out the
 * position that is not committed yet. */
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
			if (len > q->max_payload && len != MPROC__RING_MPMC_SKIP)
				return -MPROC_ECORRUPT;
			*pos_out = pos;
			*slot_out = s;
			*len_out = len;
			return 0;
		}
		if (dif < 0) {
			*pos_out = pos;
			return -EAGAIN; /* not yet committed: empty here */
		}
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

static bool recover_rd(struct mproc__ring_mpmc *q, uint64_t pos, bool waited);
static bool scan_orphans(struct mproc__ring_mpmc *q, bool force);

/* Claim the skip record (M4) at @pos as a consumer and free its slot.
 * Returns false when another consumer was faster (it frees it then). */
static bool pass_skip(struct mproc__ring_mpmc *q, uint64_t pos,
		      struct mproc__ring_mpmc_slot *s)
{
	if (!atomic_compare_exchange_strong_explicit(
		    &q->sh->deq_pos, &pos, pos + 1, memory_order_acq_rel,
		    memory_order_acquire))
		return false;
	/* F2 */
	atomic_store_explicit(&s->seq, pos + q->nslots, memory_order_release);
	mproc__ring_mpmc_release_publish_n(q, 1);
	return true;
}

static int empty_result(struct mproc__ring_mpmc *q)
{
	/* Not drained while a claimed slot is still uncommitted: a slow
	 * producer's message, put before the close, must still arrive. */
	if (!drained(q))
		return -EAGAIN;
	uint64_t pos, len;
	struct mproc__ring_mpmc_slot *s;
	int rc = find_full(q, &pos, &s, &len);
	if (rc != -EAGAIN)
		return rc ? rc : -EAGAIN;
	/* Drained, unless a consumer died holding a message (R2): put it
	 * back before anyone is told the stream ended. */
	return scan_orphans(q, true) ? -EAGAIN : -MPROC_EEOF;
}

int mproc__ring_mpmc_peek(struct mproc__ring_mpmc *q, uint64_t cap,
			  uint64_t *pos_out, const void **payload,
			  uint64_t *len, uint32_t *flags)
{
	uint64_t id = self_ident(q);
	for (;;) {
		uint64_t pos, l;
		struct mproc__ring_mpmc_slot *s;
		int rc = find_full(q, &pos, &s, &l);
		if (rc == -EAGAIN) {
			rc = empty_result(q);
			/* Slow path: blocked by a dead claimer? */
			if (rc == -EAGAIN && recover_rd(q, pos, false))
				continue;
			return rc;
		}
		if (rc)
			return rc;
		bool skip = l == MPROC__RING_MPMC_SKIP;
		if (!skip && l > cap) {
			*len = l; /* too small: the message stays queued */
			return -EMSGSIZE;
		}
		set_claimer(s, id); /* M3: before the claim */
		if (!atomic_compare_exchange_weak_explicit(
			    &q->sh->deq_pos, &pos, pos + 1,
			    memory_order_acq_rel, memory_order_acquire))
			continue; /* another consumer took it (F3) */
		if (mproc__unlikely(skip)) {
			/* M4: nothing to report; free the slot (F2). */
			atomic_store_explicit(&s->seq, pos + q->nslots,
					      memory_order_release);
			mproc__ring_mpmc_release_publish_n(q, 1);
			continue;
		}
		set_claimer(s, id); /* M3: after the claim */
		*pos_out = pos;
		*payload = (unsigned char *)s + MPROC__RING_MPMC_SLOT_HDR;
		*len = l;
		*flags = 0;
		return 0;
	}
}

int mproc__ring_mpmc_peek_n(struct mproc__ring_mpmc *q, uint64_t n,
			    const uint64_t *caps, uint64_t *first,
			    uint64_t *got, uint64_t *lens)
{
	if (n > 1) {
		uint64_t id = self_ident(q);
		/* F3 */
		uint64_t pos = atomic_load_explicit(&q->sh->deq_pos,
						    memory_order_acquire);
		for (;;) {
			/* Count the committed messages from pos that fit
			 * their buffers.  F1: each acquire pairs with the
			 * producer's release of that slot; its len, read once
			 * here, is the value validated and reported. */
			uint64_t c = 0;
			while (c < n) {
				struct mproc__ring_mpmc_slot *s =
					slot_at(q, pos + c);
				if (atomic_load_explicit(&s->seq,
							 memory_order_acquire) !=
				    pos + c + 1)
					break;
				uint64_t l = atomic_load_explicit(
					&s->len, memory_order_relaxed);
				/* Skip records and anything odd (a corrupt
				 * length included) end the batch: peek below
				 * passes or reports them one by one. */
				if (l > q->max_payload || l > caps[c])
					break;
				lens[c++] = l;
			}
			if (c < 2)
				break;
			/* M3: named before the claim, as in reserve_n. */
			for (uint64_t i = 0; i < c; i++)
				set_claimer(slot_at(q, pos + i), id);
			/* F3: one acq_rel CAS claims all c (M1). */
			if (atomic_compare_exchange_weak_explicit(
				    &q->sh->deq_pos, &pos, pos + c,
				    memory_order_acq_rel, memory_order_acquire)) {
				for (uint64_t i = 0; i < c; i++)
					set_claimer(slot_at(q, pos + i), id);
				*first = pos;
				*got = c;
				return 0;
			}
			/* pos was reloaded by the failed CAS: count again;
			 * the lengths are read anew with it. */
		}
	}
	const void *payload;
	uint32_t flags;
	int rc = mproc__ring_mpmc_peek(q, caps[0], first, &payload, &lens[0],
				       &flags);
	if (rc == 0)
		*got = 1;
	return rc;
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
	 * lap's producer writes it.  claimer is left as it is: the next
	 * producer names itself before claiming (M3). */
	atomic_store_explicit(&s->seq, pos + q->nslots, memory_order_release);
	if (publish)
		mproc__ring_mpmc_release_publish(q);
}

int mproc__ring_mpmc_next_len(struct mproc__ring_mpmc *q, uint64_t *len)
{
	for (;;) {
		uint64_t pos;
		struct mproc__ring_mpmc_slot *s;
		int rc = find_full(q, &pos, &s, len);
		if (rc == -EAGAIN)
			return empty_result(q);
		if (rc || *len != MPROC__RING_MPMC_SKIP)
			return rc;
		/* A skip record (M4) at the front: pass it, as peek would
		 * (it carries nothing, so passing it changes no answer). */
		pass_skip(q, pos, s);
	}
}

/* ------------------------------------------------------------------ */
/* Dead-claimer recovery (mpmc.h, R1-R3).  Slow paths only.            */

/* Has this view been blocked at @pos for the recovery bound?  @waited:
 * the caller slept a whole wait slice (longer than the bound) blocked,
 * so the answer is yes once the position is known.  Otherwise only every
 * 64th blocked call reads the clock, so that a tight polling loop on a
 * full or empty queue stays cheap. */
static bool blocked_long(struct mproc__ring_mpmc_stall *st, uint64_t pos,
			 bool waited)
{
	int64_t bound = mproc__ring_mpmc_recover_ns;
	if (!waited && bound > 0) {
		uint32_t n = atomic_load_explicit(&st->polls,
						  memory_order_relaxed) + 1;
		atomic_store_explicit(&st->polls, n, memory_order_relaxed);
		if (n & 63)
			return false;
	}
	int64_t now = mproc__now_ns();
	int64_t since = atomic_load_explicit(&st->since, memory_order_relaxed);
	if (atomic_load_explicit(&st->pos, memory_order_relaxed) != pos ||
	    since == 0) {
		atomic_store_explicit(&st->pos, pos, memory_order_relaxed);
		atomic_store_explicit(&st->since, now, memory_order_relaxed);
		return waited || bound <= 0;
	}
	return waited || now - since >= bound;
}

static bool claimer_dead(struct mproc__ring_mpmc *q, uint64_t c)
{
	return c != 0 && c != self_ident(q) && !mproc__proc_ident_alive(c);
}

/* R1 and R3 at the consumer position @pos, whose slot is not committed
 * for it.  Returns true when the position moved on or the slot became
 * readable (look again). */
static bool repair_front(struct mproc__ring_mpmc *q, uint64_t pos)
{
	struct mproc__ring_mpmc_slot *s = slot_at(q, pos);
	/* F3: a position past @pos was claimed, and with it (F3, M3) the
	 * claimer store that preceded the claim is visible. */
	uint64_t e = atomic_load_explicit(&q->sh->enq_pos, memory_order_acquire);
	if ((int64_t)(e - pos) <= 0)
		return false; /* nobody claimed pos: just empty */
	if (e - pos > q->nslots)
		return false; /* not a state producers make (M2): leave it */
	uint64_t seq = atomic_load_explicit(&s->seq, memory_order_acquire);
	uint64_t c = atomic_load_explicit(&s->claimer, memory_order_relaxed);
	if (seq == pos) {
		/* R1: claimed by a producer that never committed. */
		if (!claimer_dead(q, c))
			return false;
		if (!atomic_compare_exchange_strong_explicit(
			    &q->sh->deq_pos, &pos, pos + 1,
			    memory_order_acq_rel, memory_order_acquire))
			return true; /* someone else moved on */
		/* Ours alone now: its producer is dead and every consumer
		 * looks past pos.  Free it for the next lap (F2, F5), naming
		 * no claimer until the next one names itself (M3). */
		atomic_store_explicit(&s->len, 0, memory_order_relaxed);
		atomic_store_explicit(&s->claimer, 0, memory_order_relaxed);
		atomic_store_explicit(&s->seq, pos + q->nslots,
				      memory_order_release);
		mproc__event_signal(&q->sh->space_ready);
		return true;
	}
	if (seq == pos + 1 - q->nslots) {
		/* R3: a put-back (R2) claimed pos for this slot's message
		 * and died before committing it.  The message is whole:
		 * commit it (F1/F5; of several repairers one CAS wins, and
		 * every outcome is the same). */
		if (!claimer_dead(q, c))
			return false;
		atomic_compare_exchange_strong_explicit(
			&s->seq, &seq, pos + 1, memory_order_release,
			memory_order_relaxed);
		mproc__event_signal(&q->sh->data_ready);
		return true;
	}
	return false;
}

/* R2 for the message of position @p (seq == p + 1, deq_pos > p): move it
 * to the back of the queue.  Returns true when it was moved. */
static bool put_back(struct mproc__ring_mpmc *q, uint64_t p)
{
	struct mproc__ring_mpmc_slot *s = slot_at(q, p);
	if (atomic_load_explicit(&s->seq, memory_order_acquire) != p + 1)
		return false;
	uint64_t d = atomic_load_explicit(&q->sh->deq_pos, memory_order_acquire);
	if ((int64_t)(d - p) <= 0)
		return false; /* not claimed: simply queued */
	uint64_t c = atomic_load_explicit(&s->claimer, memory_order_relaxed);
	if (!claimer_dead(q, c))
		return false;
	uint64_t me = self_ident(q);
	/* F5: lock the slot against other recoverers. */
	if (!atomic_compare_exchange_strong_explicit(&s->claimer, &c, me,
						     memory_order_acq_rel,
						     memory_order_relaxed))
		return false;
	/* Still the dead consumer's message of lap p?  seq values never
	 * repeat, so this also rules out a slot recycled meanwhile. */
	if (atomic_load_explicit(&s->seq, memory_order_acquire) != p + 1)
		goto unlock;
	uint64_t target = p + q->nslots;
	for (;;) {
		uint64_t e = atomic_load_explicit(&q->sh->enq_pos,
						  memory_order_acquire);
		if (e == target) {
			/* The producers' next position is this very slot:
			 * claim it and commit the message in place. */
			if (!atomic_compare_exchange_strong_explicit(
				    &q->sh->enq_pos, &e, e + 1,
				    memory_order_acq_rel, memory_order_acquire))
				continue;
			/* F1: release publishes the (untouched) message as
			 * the one of position target. */
			atomic_store_explicit(&s->seq, target + 1,
					      memory_order_release);
			mproc__event_signal(&q->sh->data_ready);
			return true;
		}
		if ((int64_t)(target - e) < 0)
			goto unlock; /* cannot be: someone else moved it */
		/* Fill position e with a skip record (M4), if it is free. */
		struct mproc__ring_mpmc_slot *f = slot_at(q, e);
		if (atomic_load_explicit(&f->seq, memory_order_acquire) != e)
			goto unlock; /* a live message sits there: later */
		set_claimer(f, me);
		if (!atomic_compare_exchange_strong_explicit(
			    &q->sh->enq_pos, &e, e + 1, memory_order_acq_rel,
			    memory_order_acquire))
			continue;
		atomic_store_explicit(&f->len, MPROC__RING_MPMC_SKIP,
				      memory_order_relaxed);
		atomic_store_explicit(&f->seq, e + 1, memory_order_release);
	}
unlock:
	/* Hand the lock back so that the move is retried later. */
	atomic_compare_exchange_strong_explicit(&s->claimer, &me, c,
						memory_order_release,
						memory_order_relaxed);
	return false;
}

/* R2 anywhere in the last lap before deq_pos: messages claimed by
 * consumers that died before releasing them.  At most once per bound
 * unless @force.  Returns true when one was put back. */
static bool scan_orphans(struct mproc__ring_mpmc *q, bool force)
{
	int64_t now = mproc__now_ns();
	int64_t last = atomic_load_explicit(&q->last_scan, memory_order_relaxed);
	if (!force && last && now - last < mproc__ring_mpmc_recover_ns)
		return false;
	atomic_store_explicit(&q->last_scan, now, memory_order_relaxed);
	uint64_t d = atomic_load_explicit(&q->sh->deq_pos, memory_order_acquire);
	bool moved = false;
	for (uint64_t k = 1; k <= q->nslots; k++) {
		uint64_t p = d - k;
		/* Relaxed first look; put_back re-reads with acquire. */
		if (atomic_load_explicit(&slot_at(q, p)->seq,
					 memory_order_relaxed) == p + 1)
			moved |= put_back(q, p);
	}
	return moved;
}

/* A consumer found nothing at @pos.  Returns true when it should look
 * again because recovery moved something. */
static bool recover_rd(struct mproc__ring_mpmc *q, uint64_t pos, bool waited)
{
	if (!blocked_long(&q->stall_rd, pos, waited))
		return false;
	if (repair_front(q, pos))
		return true;
	return scan_orphans(q, false);
}

/* A producer found the slot of @pos not free.  Returns true when it
 * should try again because recovery freed it. */
static bool recover_wr(struct mproc__ring_mpmc *q, uint64_t pos, bool waited)
{
	uint64_t prev = pos - q->nslots;
	uint64_t seq = atomic_load_explicit(&slot_at(q, prev)->seq,
					    memory_order_acquire);
	if (seq != prev + 1 && seq != prev)
		return false;
	if (!blocked_long(&q->stall_wr, pos, waited))
		return false;
	if (seq == prev + 1)
		return put_back(q, prev); /* R2 */
	/* R1 at the consumers' position, if they are stuck there too. */
	uint64_t d = atomic_load_explicit(&q->sh->deq_pos, memory_order_acquire);
	return d == prev && repair_front(q, prev);
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
	bool for_data; /* a consumer's wait (else a producer's) */
	uint32_t looks; /* space_ready calls so far in this wait */
};

static bool data_ready(void *arg)
{
	return readable(((struct wait *)arg)->q);
}

/* A producer that found the ring full waits, for its first
 * SPACE_SLACK_LOOKS looks, until the slot SPACE_SLACK positions past its
 * own is free too.  The slot at enq_pos is the one a consumer is reading
 * and releasing right now: a producer polling its line takes it away
 * between the consumer's claim, claimer stores and release, which slows
 * the consumer, which keeps the ring full -- a state that held whole
 * repetitions of the 1/1 throughput row at a third of their speed.
 * Polling a slot SPACE_SLACK further on touches a line the consumer
 * reaches SPACE_SLACK messages later, and the producer then fills the
 * room in one run.  The looks stay below MPROC__SPIN_MIN, so this only
 * shapes the spin: a wait never sleeps for more room than it needs (a
 * consumer that takes one message and stops still lets a put through),
 * and rings of fewer than 4 x SPACE_SLACK slots wait for one as before. */
#define SPACE_SLACK 32u
#define SPACE_SLACK_LOOKS 32u
_Static_assert(SPACE_SLACK_LOOKS < MPROC__SPIN_MIN,
	       "the slack is for the spin, never for a sleep");

static bool space_ready(void *arg)
{
	struct wait *w = arg;
	const struct mproc__ring_mpmc *q = w->q;
	/* F3, then F2: acquire pairs with the releasing consumer, so a
	 * producer that proceeds may overwrite the slot.  The closed flag is
	 * only a reason to stop waiting (reserve then says -EPIPE): relaxed. */
	uint64_t pos = atomic_load_explicit(&q->sh->enq_pos,
					    memory_order_acquire);
	if (w->looks < SPACE_SLACK_LOOKS && q->nslots >= 4u * SPACE_SLACK) {
		w->looks++;
		/* Relaxed: only a reason to keep spinning; the slot at pos
		 * is checked below with F2 before anyone proceeds. */
		uint64_t ahead = pos + SPACE_SLACK;
		uint64_t seq = atomic_load_explicit(&slot_at(q, ahead)->seq,
						    memory_order_relaxed);
		if ((int64_t)(seq - ahead) < 0)
			return atomic_load_explicit(&q->sh->closed,
						    memory_order_relaxed);
	}
	uint64_t seq = atomic_load_explicit(&slot_at(q, pos)->seq,
					    memory_order_acquire);
	return (int64_t)(seq - pos) >= 0 ||
	       atomic_load_explicit(&q->sh->closed, memory_order_relaxed);
}

/* Run after each sleep slice of a wait (a slice is longer than the
 * recovery bound): recovery first, then the caller's liveness hook.  A
 * recovery that moved something ends the wait with 1 (the callers turn
 * it into 0: look again). */
static int slice_check(void *arg)
{
	struct wait *w = arg;
	struct mproc__ring_mpmc *q = w->q;
	/* F3 */
	uint64_t pos = atomic_load_explicit(w->for_data ? &q->sh->deq_pos
							: &q->sh->enq_pos,
					    memory_order_acquire);
	if (w->for_data ? recover_rd(q, pos, true) : recover_wr(q, pos, true))
		return 1;
	return mproc__ring_alive_check(w);
}

int mproc__ring_mpmc_wait_space(struct mproc__ring_mpmc *q, uint64_t len,
				const struct mproc__deadline *d,
				mproc__alive_fn alive, void *alive_arg)
{
	if (len > q->max_payload)
		return -EMSGSIZE;
	struct wait w = { { alive, alive_arg }, q, false, 0 };
	int rc = mproc__event_wait(&q->sh->space_ready, space_ready, &w, d,
				   &q->spin_wr, slice_check);
	return rc == 1 ? 0 : rc;
}

int mproc__ring_mpmc_wait_data(struct mproc__ring_mpmc *q,
			       const struct mproc__deadline *d,
			       mproc__alive_fn alive, void *alive_arg)
{
	struct wait w = { { alive, alive_arg }, q, true, 0 };
	int rc = mproc__event_wait(&q->sh->data_ready, data_ready, &w, d,
				   &q->spin_rd, slice_check);
	return rc == 1 ? 0 : rc;
}

uint64_t mproc__ring_mpmc_count(const struct mproc__ring_mpmc *q)
{
	/* Consistent snapshot: deq before and after enq (both only grow). */
	uint64_t n = 0;
	for (int i = 0; i < 16; i++) {
		uint64_t d1 = atomic_load_explicit(&q->sh->deq_pos,
						   memory_order_acquire);
		uint64_t e = atomic_load_explicit(&q->sh->enq_pos,
						  memory_order_acquire);
		uint64_t d2 = atomic_load_explicit(&q->sh->deq_pos,
						   memory_order_acquire);
		n = e - d1 > q->nslots ? q->nslots : e - d1;
		if (d1 == d2)
			return n;
	}
	/* No stable snapshot: deq_pos was read before enq_pos, so this is
	 * at least what the queue held when enq_pos was read; never 0 for
	 * a queue that was not empty. */
	return n;
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
