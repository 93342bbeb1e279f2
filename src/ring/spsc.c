/*
 * The SPSC record ring: see spsc.h for the invariants (I1-I8) and the
 * memory-ordering edges (E1-E5) that the comments below refer to, and
 * ring.h for the contract of each verb.
 */
#include <errno.h>
#include <string.h>
#include <sys/random.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "mproc/common.h"
#include "common/bits.h"
#include "common/clock.h"
#include "common/fork.h"
#include "ring/spsc.h"

/* Ring bytes for a requested size: a power of two, at least 64 (0 when
 * nothing in 64 bits fits; the limit checks then refuse it). */
static uint64_t ceil_cap(uint64_t x)
{
	return x < 64 ? 64 : mproc__pow2_ceil(x);
}

int mproc__ring_spsc_plan(uint64_t capacity, uint64_t max_payload,
			  uint64_t dflt, struct mproc__ring_geom *g)
{
	uint64_t cap;
	if (capacity > MPROC__RING_SPSC_MAX_CAP)
		return -EINVAL;
	if (capacity) {
		cap = ceil_cap(capacity);
	} else {
		/* Room for two of the largest records (I5), and no less
		 * than the default. */
		cap = ceil_cap(max_payload ? 2 * (max_payload +
						  MPROC__RING_REC_HDR)
					   : dflt);
		if (cap < dflt)
			cap = dflt;
	}
	uint64_t limit = cap / 2 - MPROC__RING_REC_HDR;
	uint64_t max = max_payload ? max_payload : limit;
	if (max > limit)
		return -EINVAL;
	g->size = cap;
	g->max_payload = max;
	g->stride = 0;
	return 0;
}

int mproc__ring_spsc_check(const struct mproc__ring_geom *g, uint64_t avail)
{
	uint64_t cap = g->size;
	if (!mproc__is_pow2(cap) || cap < 64 || cap > MPROC__RING_SPSC_MAX_CAP ||
	    g->max_payload > cap / 2 - MPROC__RING_REC_HDR || g->stride != 0 ||
	    avail < cap)
		return -MPROC_ECORRUPT;
	return 0;
}

void mproc__ring_spsc_init_shared(struct mproc__ring_spsc_shared *sh,
				  void *buf, const struct mproc__ring_geom *g,
				  uint64_t initial_index)
{
	(void)buf; /* a new segment is zeroed, and no zero tag matches (I6) */
	(void)g;
	uint64_t start = initial_index & ~(uint64_t)(MPROC__RING_REC_ALIGN - 1);
	uint64_t secret = 0;
	if (getrandom(&secret, sizeof(secret), GRND_NONBLOCK) !=
	    (ssize_t)sizeof(secret)) {
		/* No entropy yet (early boot): the secret only guards against
		 * accidental matches (I6), so clock and pid will do. */
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		secret = ((uint64_t)ts.tv_nsec << 32) ^ (uint64_t)ts.tv_sec ^
			 ((uint64_t)getpid() << 16) ^ (uintptr_t)sh;
	}
	sh->secret = secret | 1; /* odd: never equal to a position (I6) */
	/* Plain initialisation: the segment is not published yet; the
	 * release store of the segment magic orders these (shm.h). */
	atomic_init(&sh->head, start);
	atomic_init(&sh->tail, start);
	atomic_init(&sh->msgs_in, 0);
	atomic_init(&sh->msgs_out, 0);
	atomic_init(&sh->closed, 0);
}

/* I2 and I7: head at most cap ahead of tail, or tail at most cap ahead
 * of head (a consumer that took tagged records whose head store has not
 * landed, or never will because their producer died). */
static bool skew_ok(uint64_t head, uint64_t tail, uint64_t cap)
{
	return head - tail <= cap || tail - head <= cap;
}

int mproc__ring_spsc_attach(struct mproc__ring_spsc *r,
			    struct mproc__ring_spsc_shared *sh, void *buf,
			    const struct mproc__ring_geom *g, bool busy_poll)
{
	memset(r, 0, sizeof(*r));
	uint64_t cap = g->size;
	/* The caller validated the geometry it read from shared memory; the
	 * check is repeated because everything below relies on it. */
	if (mproc__ring_spsc_check(g, cap))
		return -MPROC_ECORRUPT;
	r->sh = sh;
	r->buf = buf;
	r->cap = cap;
	r->mask = cap - 1;
	r->max_payload = g->max_payload;
	/* Acquire: this view may be made long after the segment was
	 * published, by a process that never synchronised with the current
	 * producer/consumer; pairs with their release stores (E1, E2).
	 * I2 and I7 bound head and tail as they stand at one instant; two
	 * loads of a busy ring are two instants, and the consumer may move
	 * tail more than cap past the head loaded first (it already runs up
	 * to cap ahead of head inside a batch).  So take the pair only when
	 * head did not move around the tail load: then it was head's value
	 * when tail was read.  Bounded: a ring whose head moves on every
	 * look is judged on the last pair. */
	uint64_t head = atomic_load_explicit(&sh->head, memory_order_acquire);
	uint64_t tail;
	for (int tries = 0;; tries++) {
		tail = atomic_load_explicit(&sh->tail, memory_order_acquire);
		uint64_t again = atomic_load_explicit(&sh->head,
						      memory_order_acquire);
		if (again == head || tries == 64)
			break;
		head = again;
	}
	/* I2 with the skews a live or dead producer leaves (I7): head may
	 * lag the tagged records, so tail may lie up to cap ahead of it. */
	if (!skew_ok(head, tail, cap) ||
	    (head | tail) & (MPROC__RING_REC_ALIGN - 1) || !(sh->secret & 1))
		return -MPROC_ECORRUPT;
	r->secret = sh->secret;
	/* Distinct per view; xor-ed with the pid at use, so a forked copy
	 * of this view is another producer too. */
	if (getrandom(&r->token, sizeof(r->token), GRND_NONBLOCK) !=
	    (ssize_t)sizeof(r->token))
		r->token = (uint64_t)(uintptr_t)r ^
			   (uint64_t)mproc__now_ns() << 20;
	r->cached_tail = tail;
	r->pend_head = r->pub_head = head;
	r->rd_tail = r->pub_tail = tail;
	/* Head may be stale (I7): the first reserve finds the true end. */
	r->prod_resync = true;
	r->spin_rd.budget = r->spin_wr.budget = MPROC__SPIN_INIT;
	mproc__ring_spsc_set_busy_poll(r, busy_poll);
	return 0;
}

/* The first 8 bytes of a record header, {len, flags}, as one 64-bit word.
 * Relaxed atomics rather than memcpy: the consumer must validate and use
 * the same value, and a compiler may not re-read an atomic behind our
 * back (a hostile producer could change the bytes in between).  The
 * ordering comes from the tag (E1). */
static inline void hdr_store(const struct mproc__ring_spsc *r, uint64_t off,
			     uint32_t len, uint32_t flags)
{
	atomic_store_explicit((_Atomic uint64_t *)(r->buf + off),
			      (uint64_t)len | (uint64_t)flags << 32,
			      memory_order_relaxed);
}

static inline void hdr_load(const struct mproc__ring_spsc *r, uint64_t off,
			    uint32_t *len, uint32_t *flags)
{
	uint64_t w = atomic_load_explicit((_Atomic uint64_t *)(r->buf + off),
					  memory_order_relaxed);
	*len = (uint32_t)w;
	*flags = (uint32_t)(w >> 32);
}

static inline _Atomic uint64_t *tag_at(const struct mproc__ring_spsc *r,
				       uint64_t off)
{
	return (_Atomic uint64_t *)(r->buf + off + 8);
}

/* E1: release publishes the bytes of the record at @pos to a consumer
 * whose acquire load of the tag sees it (I6). */
static inline void tag_store(const struct mproc__ring_spsc *r, uint64_t pos)
{
	atomic_store_explicit(tag_at(r, pos & r->mask), pos ^ r->secret,
			      memory_order_release);
}

/* I8, E5: clear the tag slot of @pos, the position after the record about
 * to be tagged, so that a consumer reaching @pos before its record is
 * committed does not read stale bytes there as a tag.  Zero never matches
 * (I6).  Relaxed: the release store of that record's tag orders it. */
static inline void tag_clear(const struct mproc__ring_spsc *r, uint64_t pos)
{
	atomic_store_explicit(tag_at(r, pos & r->mask), 0,
			      memory_order_relaxed);
}

/* ------------------------------------------------------------------ */
/* Producer                                                            */

/* Refresh cached_tail (E2) and check it against I2.  @pos is where the
 * producer will write next. */
static int load_tail(struct mproc__ring_spsc *r, uint64_t pos)
{
	/* Acquire: pairs with the consumer's release store of tail (E2);
	 * its reads of the bytes we are about to reuse are complete. */
	uint64_t t = atomic_load_explicit(&r->sh->tail, memory_order_acquire);
	if (pos - t > r->cap || (t & (MPROC__RING_REC_ALIGN - 1)))
		return -MPROC_ECORRUPT;
	r->cached_tail = t;
	return 0;
}

/* Bytes needed at @pos for a record of @rec bytes, pad included. */
static uint64_t need_at(const struct mproc__ring_spsc *r, uint64_t pos,
			uint64_t rec)
{
	uint64_t off = pos & r->mask;
	return off + rec > r->cap ? (r->cap - off) + rec : rec;
}

/* Validate the header of the tagged record at @pos.  Returns its size in
 * the ring (pad included), or 0 when the header breaks I4/I5. */
static inline __attribute__((always_inline)) uint64_t
rec_at(const struct mproc__ring_spsc *r, uint64_t pos, uint32_t *len,
       uint32_t *flags)
{
	uint64_t off = pos & r->mask;
	hdr_load(r, off, len, flags);
	if (*flags == MPROC__RING_REC_PAD)
		return *len == r->cap - off - MPROC__RING_REC_HDR ? r->cap - off
								  : 0;
	uint64_t rec = mproc__ring_spsc_rec_size(*len);
	if ((*flags & ~MPROC__RING_REC_FLAGS_KNOWN) ||
	    (*flags & MPROC__RING_REC_PAD) || *len > r->max_payload ||
	    off + rec > r->cap)
		return 0;
	return rec;
}

/* Take over the producer role (I7): find the end of what was committed
 * from the records themselves, starting at the shared head @h and
 * following tags while they match.  Records past the published head were
 * committed by a producer that did not (or not yet, if the hand-over is
 * the user's) store head: they count as published, so publish them now,
 * with their message count (the consumer may have taken some of them
 * already, counted in msgs_out: that is why the walk starts at head, not
 * at the tail), and continue after the last one.  Only the producer
 * writes tags and record bytes (I1), and the consumer only reads them, so
 * the walk reads stable bytes.
 *
 * One window is left: a producer killed between its msgs_in store and its
 * head store in publish had counted the records this walk counts again,
 * so qsize reads that many too high until the queue drains (it clamps).
 * Nothing is lost or delivered twice. */
static int prod_resync(struct mproc__ring_spsc *r, uint64_t h)
{
	/* Acquire: E2, as in load_tail. */
	uint64_t t = atomic_load_explicit(&r->sh->tail, memory_order_acquire);
	if (!skew_ok(h, t, r->cap) || ((h | t) & (MPROC__RING_REC_ALIGN - 1)))
		return -MPROC_ECORRUPT;
	uint64_t pos = h, msgs = 0;
	/* Bounded: each step moves at least 16 bytes, and committed records
	 * end at most cap past the tail (I2) and start at most cap before it
	 * (I7). */
	while ((int64_t)(pos - t) < (int64_t)r->cap) {
		/* E1: acquire pairs with the dead (or previous) producer's
		 * release store of the tag. */
		if (atomic_load_explicit(tag_at(r, pos & r->mask),
					 memory_order_acquire) !=
		    (pos ^ r->secret))
			break;
		uint32_t len, flags;
		uint64_t rec = rec_at(r, pos, &len, &flags);
		if (!rec)
			return -MPROC_ECORRUPT;
		if (!(flags & (MPROC__RING_REC_PAD | MPROC__RING_REC_MORE)))
			msgs++;
		pos += rec;
	}
	/* The consumer cannot have consumed past the committed records. */
	if ((int64_t)(pos - t) < 0 || pos - t > r->cap)
		return -MPROC_ECORRUPT;
	r->prod_resync = false;
	r->cached_tail = t;
	r->pub_head = h;
	r->pend_head = pos;
	r->pend_msgs = msgs;
	if (pos != h)
		mproc__ring_spsc_publish(r);
	return 0;
}

/* What every put checks first: no reservation open, the consumer still
 * there, and this view still the ring's producer (else take over, I7).
 * Returns 0 or reserve's errors. */
static inline int prod_enter(struct mproc__ring_spsc *r)
{
	if (r->reserved)
		return -EBUSY;
	/* Relaxed: only a hint; the consumer closing while we write is
	 * harmless (the record is simply never read). */
	if (atomic_load_explicit(&r->sh->closed, memory_order_relaxed) &
	    MPROC__RING_RD_CLOSED)
		return -EPIPE;
	if (r->pend_head == r->pub_head) {
		/* Nothing pending: is this view still where the ring's
		 * producer is?  Not when another view or process produced
		 * since (the user's own synchronisation handed the producer
		 * role over, I1; or its producer died): then the shared head
		 * moved, or the producer word names someone else, whose tags
		 * may run past head (I7).  Relaxed: only producers store
		 * head and the producer word, which share the producer's
		 * line; the walk orders itself by the tags. */
		uint64_t h = atomic_load_explicit(&r->sh->head,
						  memory_order_relaxed);
		uint64_t me = r->token ^ (uint64_t)mproc__self_pid();
		if (mproc__unlikely(
			    h != r->pend_head || r->prod_resync ||
			    atomic_load_explicit(&r->sh->producer,
						 memory_order_relaxed) != me)) {
			int rc = prod_resync(r, h);
			if (rc)
				return rc;
			atomic_store_explicit(&r->sh->producer, me,
					      memory_order_relaxed);
		}
	}
	return 0;
}

/* Room for @need bytes at @pos: 0, -EAGAIN, or -MPROC_ECORRUPT (a tail
 * that breaks I2).  The cached tail first; the shared one only when the
 * cache says full. */
static inline __attribute__((always_inline)) int
room_at(struct mproc__ring_spsc *r, uint64_t pos, uint64_t need)
{
	if (mproc__likely(r->cap - (pos - r->cached_tail) >= need))
		return 0;
	int rc = load_tail(r, pos);
	if (rc)
		return rc;
	return r->cap - (pos - r->cached_tail) < need ? -EAGAIN : 0;
}

/* The start of every producer call that writes one record of @len
 * bytes: the length, the producer's checks (prod_enter), then room at
 * pend_head.  On 0, *@pos is where the record goes and *@rec its size. */
static inline __attribute__((always_inline)) int
prod_room(struct mproc__ring_spsc *r, uint64_t len, uint64_t *pos,
	  uint64_t *rec)
{
	if (len > r->max_payload)
		return -EMSGSIZE;
	int rc = prod_enter(r);
	if (rc)
		return rc;
	*pos = r->pend_head;
	*rec = mproc__ring_spsc_rec_size(len);
	return room_at(r, *pos, need_at(r, *pos, *rec));
}

int mproc__ring_spsc_reserve(struct mproc__ring_spsc *r, uint64_t len,
			     uint64_t *token, void **payload)
{
	uint64_t pos, rec;
	int rc = prod_room(r, len, &pos, &rec);
	if (rc)
		return rc;
	uint64_t off = pos & r->mask;
	r->res_pad = false;
	if (off + rec > r->cap) {
		/* I4: fill to the end with a PAD record, tagged together with
		 * the record that follows it. */
		hdr_store(r, off, (uint32_t)(r->cap - off - MPROC__RING_REC_HDR),
			  MPROC__RING_REC_PAD);
		r->res_pad = true;
		r->res_pad_pos = pos;
		pos += r->cap - off;
		r->pend_head = pos;
		off = 0;
	}
	r->res_off = pos;
	r->res_len = len;
	r->reserved = true;
	*token = pos;
	*payload = r->buf + off + MPROC__RING_REC_HDR;
	return 0;
}

void mproc__ring_spsc_commit(struct mproc__ring_spsc *r, uint64_t token,
			     uint64_t len, uint32_t flags, bool publish)
{
	(void)token; /* the reservation lives in the view */
	if (len > r->res_len)
		len = r->res_len;
	hdr_store(r, r->res_off & r->mask, (uint32_t)len, flags);
	uint64_t end = r->res_off + mproc__ring_spsc_rec_size(len);
	/* Tag the pad (if any) and then the record, now: the positions come
	 * from private state, never from the ring, which another process may
	 * have scribbled on since.  A batch's records so become visible one
	 * by one; head and the wake-up still wait for publish.  Each tag
	 * follows the clearing of the slot after its record (I8, E5): the
	 * record's own slot behind a pad (reserved, so ours), and the slot at
	 * the new end when we own it (it lies below cached_tail + cap; at
	 * exactly that bound it is the slot of the record at cached_tail,
	 * still whole: nothing was written there since). */
	if (r->res_pad) {
		tag_clear(r, r->res_off);
		tag_store(r, r->res_pad_pos);
	}
	if (end - r->cached_tail < r->cap)
		tag_clear(r, end);
	tag_store(r, r->res_off);
	r->pend_head = end;
	if (!(flags & MPROC__RING_REC_MORE))
		r->pend_msgs++;
	r->reserved = false;
	if (publish)
		mproc__ring_spsc_publish(r);
}

/* publish's body, inlined into put (see ring.h). */
static inline __attribute__((always_inline)) void
publish_head(struct mproc__ring_spsc *r)
{
	struct mproc__ring_spsc_shared *sh = r->sh;
	if (r->pend_msgs) {
		/* Relaxed: a statistic for qsize; only we write it. */
		uint64_t m = atomic_load_explicit(&sh->msgs_in,
						  memory_order_relaxed);
		atomic_store_explicit(&sh->msgs_in, m + r->pend_msgs,
				      memory_order_relaxed);
		r->pend_msgs = 0;
	}
	/* E1: release publishes every record byte written before it. */
	atomic_store_explicit(&sh->head, r->pend_head, memory_order_release);
	r->pub_head = r->pend_head;
	/* E4: wake a consumer that sleeps (syscall only if one does). */
	mproc__event_signal(&sh->data_ready);
}

void mproc__ring_spsc_publish(struct mproc__ring_spsc *r)
{
	publish_head(r);
}

/* Write a whole record of @len bytes from @src at @pos, where room_at
 * found room for it: a PAD first where it would cross the end (I4), the
 * payload, the header, then the tags (E1), each after clearing the slot
 * after its record (I8, E5), exactly as reserve and commit do.  Positions
 * come from private state only.  Returns the position after it; the
 * caller stores it in pend_head and publishes when it likes.
 *
 * @count (a joinable queue's unfinished count, or NULL) is raised by one
 * after the header and before the tags, where commit's caller raises it:
 * nothing can fail after that point, so the count is never taken back,
 * and a producer that dies before it leaves no message and no count.
 * Relaxed: the release of the record's tag orders it before any
 * consumer's task_done for the message.
 *
 * @batch: copy with mproc__copy (write_many) rather than memcpy (put).
 * Measured both ways in mproc-bench (64-byte messages, alternating runs):
 * in the batch calls the inline copy raised mproc_spsc_batch from
 * 126-129 M to 166-172 M msg/s; on the one-message path (put, and get's
 * copy out) it did 3 instructions fewer per put+get and was slower,
 * mproc_spsc 64-75 M against 89-93 M and mproc_queue_busy 125 ns
 * against 117-132 ns, so put and get keep memcpy. */
static inline __attribute__((always_inline)) uint64_t
write_rec(struct mproc__ring_spsc *r, uint64_t pos, uint64_t rec,
	  const void *src, uint64_t len, _Atomic uint64_t *count, bool batch)
{
	uint64_t off = pos & r->mask, pad_pos = pos;
	bool pad = off + rec > r->cap;
	if (mproc__unlikely(pad)) {
		hdr_store(r, off, (uint32_t)(r->cap - off - MPROC__RING_REC_HDR),
			  MPROC__RING_REC_PAD);
		pos += r->cap - off;
		off = 0;
	}
	unsigned char *dst = r->buf + off + MPROC__RING_REC_HDR;
	if (batch)
		mproc__copy(dst, src, len);
	else if (len)
		memcpy(dst, src, len);
	hdr_store(r, off, (uint32_t)len, 0);
	uint64_t end = pos + rec;
	if (count)
		atomic_fetch_add_explicit(count, 1, memory_order_relaxed);
	if (mproc__unlikely(pad)) {
		tag_clear(r, pos);
		tag_store(r, pad_pos);
	}
	if (end - r->cached_tail < r->cap)
		tag_clear(r, end);
	tag_store(r, pos);
	return end;
}

int mproc__ring_spsc_put(struct mproc__ring_spsc *r, const void *buf,
			 uint64_t len, _Atomic uint64_t *count)
{
	uint64_t pos, rec;
	int rc = prod_room(r, len, &pos, &rec);
	if (rc)
		return rc;
	r->pend_head = write_rec(r, pos, rec, buf, len, count, false);
	r->pend_msgs++;
	publish_head(r);
	return 0;
}

int mproc__ring_spsc_write_many(struct mproc__ring_spsc *r,
				const struct iovec *msgs, size_t n,
				size_t *done, _Atomic uint64_t *count)
{
	*done = 0;
	int rc = prod_enter(r);
	if (rc)
		return rc;
	uint64_t pos = r->pend_head;
	size_t i = 0;
	for (; i < n; i++) {
		uint64_t len = msgs[i].iov_len;
		if (len > r->max_payload)
			break;
		uint64_t rec = mproc__ring_spsc_rec_size(len);
		rc = room_at(r, pos, need_at(r, pos, rec));
		if (rc == -MPROC_ECORRUPT && !i)
			return rc;
		if (rc)
			break; /* full, or corrupt: the next call reports it */
		pos = write_rec(r, pos, rec, msgs[i].iov_base, len, count,
				true);
		/* Private until publish, as for commit(publish=false). */
		r->pend_head = pos;
		r->pend_msgs++;
	}
	*done = i;
	return i ? 0 : (n && msgs[0].iov_len > r->max_payload ? -EMSGSIZE
							       : -EAGAIN);
}

struct space_wait {
	struct mproc__ring_alive alive; /* first: mproc__ring_alive_check */
	struct mproc__ring_spsc *r;
	uint64_t rec;
};

static bool space_ready(void *arg)
{
	struct space_wait *w = arg;
	struct mproc__ring_spsc *r = w->r;
	/* Relaxed: a closed consumer only ends the wait; reserve reports it
	 * and nothing is read on the strength of it. */
	if (atomic_load_explicit(&r->sh->closed, memory_order_relaxed) &
	    MPROC__RING_RD_CLOSED)
		return true;
	uint64_t pos = r->pend_head;
	if (load_tail(r, pos))
		return true; /* corrupt: let reserve report it */
	return r->cap - (pos - r->cached_tail) >= need_at(r, pos, w->rec);
}

int mproc__ring_spsc_wait_space(struct mproc__ring_spsc *r, uint64_t len,
			   const struct mproc__deadline *d,
			   mproc__alive_fn alive, void *alive_arg)
{
	if (len > r->max_payload)
		return -EMSGSIZE;
	struct space_wait w = { { alive, alive_arg }, r,
				mproc__ring_spsc_rec_size(len) };
	return mproc__event_wait(&r->sh->space_ready, space_ready, &w, d,
				 &r->spin_wr, mproc__ring_alive_check);
}

/* ------------------------------------------------------------------ */
/* Consumer                                                            */

static void publish_tail(struct mproc__ring_spsc *r)
{
	struct mproc__ring_spsc_shared *sh = r->sh;
	if (r->rd_msgs) {
		/* Relaxed: a statistic for qsize; only we write it. */
		uint64_t m = atomic_load_explicit(&sh->msgs_out,
						  memory_order_relaxed);
		atomic_store_explicit(&sh->msgs_out, m + r->rd_msgs,
				      memory_order_relaxed);
		r->rd_msgs = 0;
	}
	/* E2: release; our reads of the consumed bytes happen before the
	 * producer may overwrite them. */
	atomic_store_explicit(&sh->tail, r->rd_tail, memory_order_release);
	r->pub_tail = r->rd_tail;
	mproc__event_signal(&sh->space_ready);
}

/* Slip (spsc.h): the consumer is about to take the record at @pos, of
 * @rec bytes.  When the next record is there too and head is less than
 * SLIP_NEAR ahead, let the producer get SLIP_FAR ahead while it streams.
 * Returns the number of looks at head after the first (for the tests). */
static __attribute__((noinline)) int slip(struct mproc__ring_spsc *r,
					  uint64_t pos, uint64_t rec)
{
	uint64_t next = pos + rec;
	/* Every load here is relaxed: hints that pair with nothing; no
	 * byte is read on their strength (spsc.h, "Slip"). */
	if (r->cap < MPROC__SPSC_SLIP_MIN_CAP ||
	    atomic_load_explicit(tag_at(r, next & r->mask),
				 memory_order_relaxed) != (next ^ r->secret))
		return 0;
	uint64_t h = atomic_load_explicit(&r->sh->head, memory_order_relaxed);
	/* Unsigned: a head behind pos (I7) reads as far ahead. */
	if (h - pos >= MPROC__SPSC_SLIP_NEAR)
		return 0;
	int looks = 0;
	while (looks < MPROC__SPSC_SLIP_LOOKS) {
		for (int i = 0; i < MPROC__SPSC_SLIP_PAUSES; i++)
			mproc__cpu_relax();
		uint64_t now = atomic_load_explicit(&r->sh->head,
						    memory_order_relaxed);
		looks++;
		if (!mproc__spsc_slip_more(pos, h, now))
			break;
		h = now;
	}
	return looks;
}

int mproc__ring_spsc_peek(struct mproc__ring_spsc *r, uint64_t cap,
			  uint64_t *token, const void **payload,
			  uint64_t *len, uint32_t *flags)
{
	/* The view holds one peek: a second one would hand out the same
	 * record again, and releasing both would consume two. */
	if (r->peek_rec)
		return -EBUSY;
	if (r->rd_tail == r->pub_tail) {
		/* Nothing pending: resynchronise with the shared tail in
		 * case another process consumed before us (the user handed
		 * the consumer role over; I1).  Relaxed: only consumers
		 * store tail. */
		uint64_t t = atomic_load_explicit(&r->sh->tail,
						  memory_order_relaxed);
		if (t != r->rd_tail) {
			/* Tags are 16-aligned 64-bit words (I4). */
			if (t & (MPROC__RING_REC_ALIGN - 1))
				return -MPROC_ECORRUPT;
			r->rd_tail = r->pub_tail = t;
		}
	}
	for (;;) {
		uint64_t pos = r->rd_tail;
		uint64_t off = pos & r->mask;
		/* E1: acquire pairs with the producer's release store of the
		 * tag; the header and payload below are complete. */
		uint64_t tag = atomic_load_explicit(tag_at(r, off),
						    memory_order_acquire);
		if (tag != (pos ^ r->secret)) {
			/* E3: acquire pairs with the closer's release; look
			 * at the tag again so that records published before
			 * the close are seen. */
			uint32_t c = atomic_load_explicit(&r->sh->closed,
							  memory_order_acquire);
			if (!(c & MPROC__RING_WR_CLOSED))
				return -EAGAIN;
			tag = atomic_load_explicit(tag_at(r, off),
						   memory_order_acquire);
			if (tag != (pos ^ r->secret))
				return -MPROC_EEOF;
		}
		uint32_t h[2];
		uint64_t rec = rec_at(r, pos, &h[0], &h[1]);
		if (!rec)
			return -MPROC_ECORRUPT;
		if (h[1] == MPROC__RING_REC_PAD) {
			/* Give the space back at once, as the producer may be
			 * waiting for exactly this room, unless a batch holds
			 * released records not yet published: those must stay
			 * unpublished until the batch returns, so that a
			 * consumer killed before then leaves them to its
			 * replacement (I7). */
			bool batch = r->rd_tail != r->pub_tail;
			r->rd_tail = pos + rec;
			if (!batch)
				publish_tail(r);
			continue;
		}
		*len = h[0];
		if (h[0] > cap)
			return -EMSGSIZE; /* too long for the caller: stays */
		if (mproc__unlikely(++r->slip_count >= MPROC__SPSC_SLIP_EVERY)) {
			r->slip_count = 0;
			r->slip_looks = slip(r, pos, rec);
		}
		r->peek_rec = rec;
		r->peek_flags = h[1];
		*token = pos;
		*payload = r->buf + off + MPROC__RING_REC_HDR;
		*flags = h[1];
		return 0;
	}
}

void mproc__ring_spsc_release(struct mproc__ring_spsc *r, uint64_t token,
			      bool publish)
{
	(void)token; /* the peek lives in the view */
	r->rd_tail += r->peek_rec;
	r->peek_rec = 0;
	if (!(r->peek_flags & MPROC__RING_REC_MORE))
		r->rd_msgs++;
	if (publish)
		publish_tail(r);
}

void mproc__ring_spsc_release_publish(struct mproc__ring_spsc *r)
{
	publish_tail(r);
}

int mproc__ring_spsc_read_many(struct mproc__ring_spsc *r,
			       const struct iovec *bufs, size_t *lens,
			       size_t n, size_t *done)
{
	*done = 0;
	if (n == 0)
		return 0;
	/* The first message through peek, which does every check (a peek
	 * already open, a role hand-over, close and end of stream). */
	uint64_t tok, len;
	const void *p;
	uint32_t flags;
	int rc = mproc__ring_spsc_peek(r, bufs[0].iov_len, &tok, &p, &len,
				       &flags);
	if (rc) {
		if (rc == -EMSGSIZE)
			lens[0] = len;
		return rc;
	}
	if (len)
		mproc__copy(bufs[0].iov_base, p, len);
	lens[0] = len;
	mproc__ring_spsc_release(r, tok, false);
	/* The rest while their tags say they are there (E1), with the same
	 * validation as peek (I4, I5).  Releases stay private (E2) until the
	 * caller's release_publish, so a consumer killed inside the batch
	 * leaves all of it to its replacement (I7); for that reason a PAD
	 * met on the way is not published either (see peek). */
	size_t i = 1;
	while (i < n) {
		uint64_t pos = r->rd_tail;
		uint64_t off = pos & r->mask;
		if (atomic_load_explicit(tag_at(r, off), memory_order_acquire) !=
		    (pos ^ r->secret))
			break; /* not there yet; the next call looks again */
		uint32_t l, f;
		uint64_t rec = rec_at(r, pos, &l, &f);
		if (!rec)
			break; /* corrupt: the next call's peek reports it */
		if (f == MPROC__RING_REC_PAD) {
			r->rd_tail = pos + rec;
			continue;
		}
		if (l > bufs[i].iov_len)
			break; /* stays queued for a larger buffer */
		if (l)
			mproc__copy(bufs[i].iov_base,
				    r->buf + off + MPROC__RING_REC_HDR, l);
		lens[i] = l;
		r->rd_tail = pos + rec;
		if (!(f & MPROC__RING_REC_MORE))
			r->rd_msgs++;
		i++;
	}
	*done = i;
	return 0;
}

int mproc__ring_spsc_next_len(struct mproc__ring_spsc *r, uint64_t *len)
{
	/* Read-only (a watcher thread may call this beside the consumer
	 * thread of the same view, e.g. through mproc_wait): nothing of the
	 * view is read or written, only the shared tail and the records.
	 * Acquire: E2's tail, so the records from it on are the consumer's
	 * to read.  A consumer with a batch in hand may be ahead of that
	 * tail; then this reports the message it holds (still "there"). */
	uint64_t pos = atomic_load_explicit(&r->sh->tail, memory_order_acquire);
	if (pos & (MPROC__RING_REC_ALIGN - 1))
		return -MPROC_ECORRUPT;
	/* At most one PAD before a data record (I4, I5). */
	for (int step = 0; step < 2; step++) {
		_Atomic uint64_t *tag = tag_at(r, pos & r->mask);
		/* E1: acquire pairs with the producer's release of the tag. */
		if (atomic_load_explicit(tag, memory_order_acquire) !=
		    (pos ^ r->secret)) {
			/* E3, then the tag again, as in peek. */
			if (!(atomic_load_explicit(&r->sh->closed,
						   memory_order_acquire) &
			      MPROC__RING_WR_CLOSED))
				return -EAGAIN;
			if (atomic_load_explicit(tag, memory_order_acquire) !=
			    (pos ^ r->secret))
				return -MPROC_EEOF;
		}
		uint32_t l, flags;
		uint64_t rec = rec_at(r, pos, &l, &flags);
		/* The consumer may have released the record and the
		 * producer reused its bytes while we read the header: if the
		 * tag changed, what we read is not this record's (the
		 * acquire fence orders the header load before the re-check,
		 * seqlock style). */
		atomic_thread_fence(memory_order_acquire);
		if (atomic_load_explicit(tag, memory_order_relaxed) !=
		    (pos ^ r->secret))
			return -EAGAIN;
		if (!rec)
			return -MPROC_ECORRUPT;
		if (flags != MPROC__RING_REC_PAD) {
			*len = l;
			return 0;
		}
		pos += rec;
	}
	return -MPROC_ECORRUPT;
}

struct data_wait {
	struct mproc__ring_alive alive; /* first: mproc__ring_alive_check */
	struct mproc__ring_spsc *r;
};

static bool data_ready(void *arg)
{
	struct data_wait *w = arg;
	struct mproc__ring_spsc *r = w->r;
	/* Acquire: E1 for the tag, E3 for the close flag.  After a role
	 * hand-over rd_tail may be stale; peek resynchronises, and a stale
	 * tag only makes this report "ready" early, never late. */
	uint64_t pos = r->rd_tail;
	if (atomic_load_explicit(tag_at(r, pos & r->mask),
				 memory_order_acquire) == (pos ^ r->secret))
		return true;
	return atomic_load_explicit(&r->sh->closed, memory_order_acquire) &
	       MPROC__RING_WR_CLOSED;
}

int mproc__ring_spsc_wait_data(struct mproc__ring_spsc *r,
			  const struct mproc__deadline *d,
			  mproc__alive_fn alive, void *alive_arg)
{
	struct data_wait w = { { alive, alive_arg }, r };
	return mproc__event_wait(&r->sh->data_ready, data_ready, &w, d,
				 &r->spin_rd, mproc__ring_alive_check);
}

/* ------------------------------------------------------------------ */
/* State                                                               */

uint64_t mproc__ring_spsc_count(const struct mproc__ring_spsc *r)
{
	/* Consistent snapshot: msgs_out before and after msgs_in; if it did
	 * not move, the difference was the true count when msgs_in was
	 * read.  Both counters only grow. */
	uint64_t n = 0;
	for (int i = 0; i < 16; i++) {
		uint64_t o1 = atomic_load_explicit(&r->sh->msgs_out,
						   memory_order_acquire);
		uint64_t in = atomic_load_explicit(&r->sh->msgs_in,
						   memory_order_acquire);
		uint64_t o2 = atomic_load_explicit(&r->sh->msgs_out,
						   memory_order_acquire);
		/* Negative (a consumer took records before their count was
		 * published, E1) counts as empty. */
		n = in - o1 > r->cap ? 0 : in - o1;
		if (o1 == o2)
			return n;
	}
	/* No stable snapshot: msgs_out was read before msgs_in, so this is
	 * at least what the queue held when msgs_in was read, never a 0
	 * for a queue that was not empty. */
	return n;
}

/* Bytes in use. */
static uint64_t used(const struct mproc__ring_spsc *r)
{
	uint64_t t = atomic_load_explicit(&r->sh->tail, memory_order_acquire);
	uint64_t h = atomic_load_explicit(&r->sh->head, memory_order_acquire);
	/* A consumer may take tagged records before their head store lands
	 * (E1), so tail can run briefly ahead of head: count that as empty. */
	if ((int64_t)(h - t) < 0)
		return 0;
	return h - t > r->cap ? r->cap : h - t;
}

bool mproc__ring_spsc_full(const struct mproc__ring_spsc *r)
{
	/* Exactly what reserve would need at the published head: the
	 * record, plus the pad in front of it when it would cross the end
	 * (I4).  Acquire: pairs with the producer's release of head (E1). */
	uint64_t h = atomic_load_explicit(&r->sh->head, memory_order_acquire);
	return r->cap - used(r) <
	       need_at(r, h, mproc__ring_spsc_rec_size(r->max_payload));
}

bool mproc__ring_spsc_pending(const struct mproc__ring_spsc *r)
{
	/* E1: a tagged record at our position is data, whether or not its
	 * head store landed (I7: it never will if its producer died). */
	uint64_t pos = r->rd_tail;
	if (atomic_load_explicit(tag_at(r, pos & r->mask),
				 memory_order_acquire) == (pos ^ r->secret))
		return true;
	/* Acquire: pairs with the producer's release store of head (E1);
	 * only whether it moved matters here.  Signed: the consumer may have
	 * taken tagged records before their head store landed, leaving head
	 * briefly behind rd_tail (E1). */
	if ((int64_t)(atomic_load_explicit(&r->sh->head,
					   memory_order_acquire) -
		      r->rd_tail) > 0)
		return true;
	/* Acquire: pairs with the release in mproc__ring_spsc_close (E3). */
	return atomic_load_explicit(&r->sh->closed, memory_order_acquire) &
	       MPROC__RING_WR_CLOSED;
}

void mproc__ring_spsc_close(struct mproc__ring_spsc *r, uint32_t how)
{
	/* E3: release, after this side's last head/tail store. */
	atomic_fetch_or_explicit(&r->sh->closed, how, memory_order_release);
	mproc__event_signal(&r->sh->data_ready);
	mproc__event_signal(&r->sh->space_ready);
}

uint32_t mproc__ring_spsc_closed(const struct mproc__ring_spsc *r)
{
	/* Acquire: pairs with the release in mproc__ring_spsc_close (E3). */
	return atomic_load_explicit(&r->sh->closed, memory_order_acquire);
}
