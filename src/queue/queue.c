/*
 * The Queue API over the two rings.  A queue segment's data area holds a
 * control block (JoinableQueue counter and its event), the ring's shared
 * indices, then the ring bytes (SPSC) or slots (MPMC).  Its geometry words
 * (see GEOM_* below) are validated on open against the data area size, and
 * every address this file computes comes from that validated private copy.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/fork.h"
#include "common/parse.h"
#include "mproc/queue.h"
#include "mproc/shm.h"
#include "queue/layout.h"
#include "ring/ring.h"

#define KNOWN_FLAGS (MPROC_QUEUE_SPSC | MPROC_QUEUE_JOINABLE | \
		     MPROC_QUEUE_BUSY_POLL | MPROC_QUEUE_ALLOW_FOREIGN_OWNER | \
		     MPROC_QUEUE_WATCH_PRODUCERS)
#define DEFAULT_CAPACITY (UINT64_C(1) << 20)
/* Most messages one MPMC get_many takes (see mproc_queue_get_many). */
#define GET_MANY_MPMC 64

struct mproc_queue {
	mproc_shm *seg;
	struct queue_ctl *ctl;
	unsigned flags;
	uint64_t max_msg;
	/* Zero-copy state: one reservation and one peek per handle. */
	bool res_open, peek_open;
	uint64_t res_pos, res_len, peek_pos;
	struct mproc__spin spin_join;
	/* MPROC_QUEUE_WATCH_PRODUCERS: the producer table (layout.h), and
	 * the pid this handle last registered as (0: not yet; a forked
	 * child's copy names the parent, so it registers again).  Atomic
	 * because threads may share a handle. */
	struct queue_producers *producers;
	_Atomic int registered_pid;
	struct mproc__ring ring;
};

MPROC_API void mproc_queue_attr_init(struct mproc_queue_attr *attr)
{
	if (attr)
		memset(attr, 0, sizeof(*attr));
}

/* Work out the geometry from the attributes.  Returns 0 or -EINVAL. */
static int plan(const struct mproc_queue_attr *a, uint64_t geom[MPROC_SHM_GEOM_WORDS],
		uint64_t *data_size)
{
	if (a->flags & ~KNOWN_FLAGS)
		return -EINVAL;
	if (a->capacity > MAX_CAPACITY || a->max_msg > MAX_CAPACITY / 4 ||
	    a->max_msg > UINT32_MAX - 64)
		return -EINVAL;
	int kind = a->flags & MPROC_QUEUE_SPSC ? MPROC__RING_SPSC
					       : MPROC__RING_MPMC;
	struct mproc__ring_geom rg;
	int rc = mproc__ring_plan(kind, a->capacity, a->max_msg,
				  DEFAULT_CAPACITY, &rg);
	if (rc)
		return rc;
	memset(geom, 0, MPROC_SHM_GEOM_WORDS * sizeof(uint64_t));
	geom[GEOM_RING] = (uint64_t)kind;
	geom[GEOM_SIZE] = rg.size;
	geom[GEOM_MAX_MSG] = rg.max_payload;
	geom[GEOM_STRIDE] = rg.stride;
	geom[GEOM_FLAGS] = a->flags & STORED_FLAGS;
	geom[GEOM_BUF_OFF] = buf_off(kind);
	*data_size = buf_off(kind) + mproc__ring_buf_size(kind, &rg);
	if (a->flags & MPROC_QUEUE_WATCH_PRODUCERS) {
		geom[GEOM_PRODUCERS] =
			producers_off(kind, mproc__ring_buf_size(kind, &rg));
		*data_size = geom[GEOM_PRODUCERS] +
			     sizeof(struct queue_producers);
	}
	return 0;
}

/* The kind-specific check run by mproc_shm_open/import (shm.h). */
int mproc__queue_validate_geom(const uint64_t g[MPROC_SHM_GEOM_WORDS],
			       uint64_t data_size, void *ctx)
{
	(void)ctx;
	if (g[GEOM_FLAGS] & ~(uint64_t)STORED_FLAGS ||
	    !mproc__ring_kind_valid(g[GEOM_RING]))
		return -MPROC_ECORRUPT;
	int kind = (int)g[GEOM_RING];
	struct mproc__ring_geom rg;
	geom_get(g, &rg);
	if (rg.size > MAX_CAPACITY || rg.max_payload > MAX_CAPACITY / 4 ||
	    g[GEOM_BUF_OFF] != buf_off(kind) || data_size < buf_off(kind))
		return -MPROC_ECORRUPT;
	int rc = mproc__ring_check(kind, &rg, data_size - buf_off(kind));
	if (rc)
		return rc;
	/* The producer table: present exactly with its flag, right after
	 * the ring buffer (whose size the check above bounded). */
	if (!(g[GEOM_FLAGS] & MPROC_QUEUE_WATCH_PRODUCERS))
		return g[GEOM_PRODUCERS] ? -MPROC_ECORRUPT : 0;
	uint64_t off = producers_off(kind, mproc__ring_buf_size(kind, &rg));
	if (g[GEOM_PRODUCERS] != off || data_size < off ||
	    data_size - off < sizeof(struct queue_producers))
		return -MPROC_ECORRUPT;
	return 0;
}

/* Build the private view over a validated (or freshly created) segment. */
static int attach(mproc_queue *q, mproc_shm *seg, unsigned handle_flags)
{
	const uint64_t *g = mproc_shm_geom(seg);
	unsigned char *data = mproc_shm_data(seg);
	int kind = (int)g[GEOM_RING];
	struct mproc__ring_geom rg;
	geom_get(g, &rg);
	q->seg = seg;
	q->ctl = (struct queue_ctl *)data;
	q->producers = g[GEOM_FLAGS] & MPROC_QUEUE_WATCH_PRODUCERS
			       ? (struct queue_producers *)(data +
							    g[GEOM_PRODUCERS])
			       : NULL;
	atomic_init(&q->registered_pid, 0);
	q->flags = (unsigned)g[GEOM_FLAGS] | (handle_flags & MPROC_QUEUE_BUSY_POLL);
	if (kind == MPROC__RING_SPSC)
		q->flags |= MPROC_QUEUE_SPSC;
	q->max_msg = rg.max_payload;
	bool busy = handle_flags & MPROC_QUEUE_BUSY_POLL;
	q->spin_join.budget = MPROC__SPIN_INIT;
	q->spin_join.busy = busy;
	return mproc__ring_attach(&q->ring, kind, data + RING_SH_OFF,
				  data + g[GEOM_BUF_OFF], &rg, busy);
}

static int create(const char *name, const struct mproc_queue_attr *attr,
		  mproc_queue **out)
{
	if (!out)
		return -EINVAL;
	*out = NULL;
	struct mproc_queue_attr defaults;
	if (!attr) {
		mproc_queue_attr_init(&defaults);
		attr = &defaults;
	}
	uint64_t geom[MPROC_SHM_GEOM_WORDS], data_size;
	int rc = plan(attr, geom, &data_size);
	if (rc)
		return rc;
	mproc_queue *q = calloc(1, sizeof(*q));
	if (!q)
		return -ENOMEM;
	mproc_shm *seg;
	rc = mproc_shm_create(name, MPROC_SHM_KIND_QUEUE, geom, data_size,
			      attr->mode, &seg);
	if (rc) {
		free(q);
		return rc;
	}
	unsigned char *data = mproc_shm_data(seg);
	struct queue_ctl *ctl = (struct queue_ctl *)data;
	atomic_init(&ctl->unfinished, 0);
	struct mproc__ring_geom rg;
	geom_get(geom, &rg);
	mproc__ring_init_shared((int)geom[GEOM_RING], data + RING_SH_OFF,
				data + geom[GEOM_BUF_OFF], &rg,
				attr->initial_index);
	rc = attach(q, seg, attr->flags);
	if (!rc)
		rc = mproc_shm_publish(seg);
	if (rc) {
		if (name)
			mproc_shm_unlink(name);
		mproc_shm_free(seg);
		free(q);
		return rc;
	}
	*out = q;
	return 0;
}

MPROC_API int mproc_queue_create(const struct mproc_queue_attr *attr,
				 mproc_queue **out)
{
	return create(NULL, attr, out);
}

MPROC_API int mproc_queue_create_named(const char *name,
				       const struct mproc_queue_attr *attr,
				       mproc_queue **out)
{
	if (!name)
		return -EINVAL;
	return create(name, attr, out);
}

static int adopt(mproc_queue **out, mproc_shm *seg, unsigned flags)
{
	mproc_queue *q = calloc(1, sizeof(*q));
	if (!q) {
		mproc_shm_free(seg);
		return -ENOMEM;
	}
	int rc = attach(q, seg, flags);
	if (rc) {
		mproc_shm_free(seg);
		free(q);
		return rc;
	}
	*out = q;
	return 0;
}

MPROC_API int mproc_queue_open(const char *name, unsigned flags,
			       mproc_queue **out)
{
	if (!out || (flags & ~(MPROC_QUEUE_BUSY_POLL |
			       MPROC_QUEUE_ALLOW_FOREIGN_OWNER)))
		return -EINVAL;
	*out = NULL;
	mproc_shm *seg;
	int rc = mproc_shm_open(name, MPROC_SHM_KIND_QUEUE,
				(flags & MPROC_QUEUE_ALLOW_FOREIGN_OWNER)
					? MPROC_SHM_ALLOW_FOREIGN_OWNER : 0,
				mproc__queue_validate_geom, NULL, &seg);
	return rc ? rc : adopt(out, seg, flags);
}

MPROC_API int mproc_queue_export(mproc_queue *q, char *buf, size_t len)
{
	if (!q)
		return -EINVAL;
	return mproc_shm_export(q->seg, buf, len);
}

MPROC_API int mproc_queue_import(const char *token, unsigned flags,
				 mproc_queue **out)
{
	if (!out || (flags & ~MPROC_QUEUE_BUSY_POLL))
		return -EINVAL;
	*out = NULL;
	int fd;
	const char *size_part;
	if (mproc__parse_shm_token_fd(token, &fd, &size_part))
		return -EINVAL;
	/* Map the segment through a duplicate of the token's descriptor:
	 * a failure at any step below (the segment's validation, the ring's
	 * indices, memory) closes only the duplicate, and the token's
	 * descriptor is closed only once nothing can fail (queue.h). */
	if (fcntl(fd, F_GETFD) < 0)
		return -EBADF;
	int dfd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	if (dfd < 0)
		return -errno;
	char dup_token[MPROC_SHM_TOKEN_MAX];
	int n = snprintf(dup_token, sizeof(dup_token), "mproc-shm:%d%s", dfd,
			 size_part);
	mproc_shm *seg;
	int rc = n < 0 || (size_t)n >= sizeof(dup_token)
			 ? -EINVAL
			 : mproc_shm_import(dup_token, MPROC_SHM_KIND_QUEUE,
					    mproc__queue_validate_geom, NULL,
					    &seg);
	if (rc) {
		close(dfd);
		return rc;
	}
	rc = adopt(out, seg, flags); /* frees seg, so closes dfd, on error */
	if (rc == 0)
		close(fd);
	return rc;
}

/* ------------------------------------------------------------------ */
/* put                                                                 */

static void count_put(mproc_queue *q, uint64_t n)
{
	/* Relaxed is enough for the increment: task_done's decrement and
	 * join's check order themselves (see mproc_queue_task_done); the
	 * increment happens before the message is published (release), so
	 * a consumer that calls task_done for it sees it counted. */
	if (q->flags & MPROC_QUEUE_JOINABLE)
		atomic_fetch_add_explicit(&q->ctl->unfinished, n,
					  memory_order_relaxed);
}

/* MPROC_QUEUE_WATCH_PRODUCERS: name this process in the producer table
 * before its first reserve (P2 of layout.h).  Otherwise one branch. */
static inline void register_producer(mproc_queue *q)
{
	if (mproc__likely(!q->producers))
		return;
	int me = mproc__self_pid();
	/* Relaxed: private to this process; two threads that both register
	 * only name it twice. */
	if (mproc__likely(atomic_load_explicit(&q->registered_pid,
					       memory_order_relaxed) == me))
		return;
	mproc__queue_producer_register(q->producers);
	atomic_store_explicit(&q->registered_pid, me, memory_order_relaxed);
}

/* Try once to reserve room for @len bytes.  The token (the MPMC
 * position) is kept by the caller, so threads can share a handle. */
static int reserve_now(mproc_queue *q, size_t len, uint64_t *tok, void **p)
{
	register_producer(q);
	return mproc__ring_reserve(&q->ring, len, tok, p);
}

/* Reserve room for @len bytes, waiting up to @l's timeout. */
static int reserve_wait(mproc_queue *q, size_t len, uint64_t *tok, void **p,
			struct mproc__lazy_deadline *l)
{
	for (;;) {
		int rc = reserve_now(q, len, tok, p);
		if (rc != -EAGAIN)
			return rc;
		if (mproc__lazy_nowait(l))
			return -EAGAIN;
		rc = mproc__ring_wait_space(&q->ring, len, mproc__lazy_get(l),
					    NULL, NULL);
		if (rc)
			return rc;
	}
}

/* Commit a reserved message; publish it (and wake a consumer) unless
 * @batch. */
static void commit_one(mproc_queue *q, uint64_t tok, size_t len, bool batch)
{
	count_put(q, 1);
	mproc__ring_commit(&q->ring, tok, len, 0, !batch);
}

/* The count the SPSC ring raises before each tag (mproc__ring_put,
 * mproc__ring_write_many): a joinable queue's unfinished, else NULL. */
static _Atomic uint64_t *put_count(mproc_queue *q)
{
	return (q->flags & MPROC_QUEUE_JOINABLE) ? &q->ctl->unfinished : NULL;
}

/* put on the SPSC ring (@timeout_ns as for mproc_queue_put): the ring
 * reserves, copies, commits and publishes in one call (mproc__ring_put),
 * one call instead of three on the path of every message.  Joinable: the
 * ring counts the message just before its tag makes it visible, as
 * commit_one does, so a producer killed in the call leaves the count
 * exact. */
static __attribute__((noinline)) ssize_t
put_spsc(mproc_queue *q, const void *buf, size_t len, int64_t timeout_ns)
{
	struct mproc__lazy_deadline l;
	mproc__lazy_init(&l, timeout_ns);
	register_producer(q);
	for (;;) {
		int rc = mproc__ring_put(&q->ring, buf, len, put_count(q));
		if (mproc__likely(rc == 0))
			return (ssize_t)len;
		if (rc != -EAGAIN || mproc__lazy_nowait(&l))
			return rc;
		rc = mproc__ring_wait_space(&q->ring, len, mproc__lazy_get(&l),
					    NULL, NULL);
		if (rc)
			return rc;
	}
}

/* put on the MPMC ring: reserve, copy, commit. */
static __attribute__((noinline)) ssize_t
put_mpmc(mproc_queue *q, const void *buf, size_t len, int64_t timeout_ns)
{
	struct mproc__lazy_deadline l;
	mproc__lazy_init(&l, timeout_ns);
	void *p;
	uint64_t pos = 0;
	int rc = reserve_wait(q, len, &pos, &p, &l);
	if (rc)
		return rc;
	if (len)
		memcpy(p, buf, len);
	commit_one(q, pos, len, false);
	return (ssize_t)len;
}

MPROC_API ssize_t mproc_queue_put(mproc_queue *q, const void *buf, size_t len,
				  int64_t timeout_ns)
{
	if (!q || (!buf && len))
		return -EINVAL;
	if (len > q->max_msg)
		return -EMSGSIZE;
	if (timeout_ns < -1)
		return -EINVAL;
	/* Each ring's put has its own frame (noinline), so that this stays
	 * a check and a jump. */
	if (q->ring.kind == MPROC__RING_SPSC)
		return put_spsc(q, buf, len, timeout_ns);
	return put_mpmc(q, buf, len, timeout_ns);
}

MPROC_API ssize_t mproc_queue_put_nowait(mproc_queue *q, const void *buf,
					 size_t len)
{
	return mproc_queue_put(q, buf, len, MPROC_NOWAIT);
}

/* The messages of @msgs from the first that put_many may take: how many
 * lead before the first invalid one (0: *@err says why). */
static size_t valid_lead(const struct iovec *msgs,
			 size_t n, uint64_t limit, int *err)
{
	size_t k = 0;
	while (k < n && (msgs[k].iov_base || !msgs[k].iov_len) &&
	       msgs[k].iov_len <= limit)
		k++;
	if (k == 0 && n)
		*err = msgs[0].iov_len > limit ? -EMSGSIZE : -EINVAL;
	return k;
}

/* put_many on the MPMC ring: the slots of up to n messages are claimed
 * with one compare-and-swap (mproc__ring_reserve_n) instead of one per
 * message, and the batch wakes at most as many consumers as it carries. */
static ssize_t put_many_mpmc(mproc_queue *q, const struct iovec *msgs,
			     size_t n, struct mproc__lazy_deadline *l)
{
	size_t done = 0;
	while (done < n) {
		uint64_t first, got;
		int rc = mproc__ring_reserve_n(&q->ring, n - done, &first, &got);
		if (rc == -EAGAIN && done == 0 && !mproc__lazy_nowait(l)) {
			rc = mproc__ring_wait_space(&q->ring, msgs[0].iov_len,
						    mproc__lazy_get(l), NULL,
						    NULL);
			if (rc == 0)
				continue;
		}
		if (rc) {
			if (done)
				break;
			return rc;
		}
		/* Each message counted just before its commit (commit_one),
		 * so a producer killed among the copies leaves no count for
		 * a slot it never committed. */
		for (uint64_t i = 0; i < got; i++) {
			const struct iovec *m = &msgs[done + i];
			if (m->iov_len)
				memcpy(mproc__ring_payload(&q->ring, first + i),
				       m->iov_base, m->iov_len);
			commit_one(q, first + i, m->iov_len, true);
		}
		done += got;
	}
	if (done)
		mproc__ring_publish_n(&q->ring, done);
	return (ssize_t)done;
}

/* put_many on the SPSC ring: the ring writes the whole batch in one call
 * (mproc__ring_write_many: one set of producer checks, then a header,
 * the copy and a tag per message), and it is published once.  Joinable:
 * the ring counts each message just before its tag makes it visible, so
 * the count is never ahead of the ring by more than the one message
 * being tagged, and a producer killed in the call leaves it exact. */
static ssize_t put_many_spsc(mproc_queue *q, const struct iovec *msgs,
			     size_t n, struct mproc__lazy_deadline *l)
{
	for (;;) {
		size_t done = 0;
		int rc = mproc__ring_write_many(&q->ring, msgs, n, &done,
						put_count(q));
		if (rc == -EAGAIN && !mproc__lazy_nowait(l)) {
			rc = mproc__ring_wait_space(&q->ring, msgs[0].iov_len,
						    mproc__lazy_get(l), NULL,
						    NULL);
			if (rc == 0)
				continue;
		}
		if (rc)
			return rc;
		mproc__ring_publish(&q->ring);
		return (ssize_t)done;
	}
}

MPROC_API ssize_t mproc_queue_put_many(mproc_queue *q, const struct iovec *msgs,
				       size_t n, int64_t timeout_ns)
{
	if (!q || (!msgs && n))
		return -EINVAL;
	if (timeout_ns < -1)
		return -EINVAL;
	struct mproc__lazy_deadline l;
	mproc__lazy_init(&l, timeout_ns);
	int err = 0;
	size_t k = valid_lead(msgs, n, q->max_msg, &err);
	if (!k)
		return n ? err : 0;
	return q->ring.kind == MPROC__RING_MPMC ? put_many_mpmc(q, msgs, k, &l)
					       : put_many_spsc(q, msgs, k, &l);
}

MPROC_API int mproc_queue_reserve(mproc_queue *q, size_t len, void **ptr,
				  int64_t timeout_ns)
{
	if (!q || !ptr)
		return -EINVAL;
	if (len > q->max_msg)
		return -EMSGSIZE;
	if (timeout_ns < -1)
		return -EINVAL;
	if (q->res_open)
		return -EBUSY;
	struct mproc__lazy_deadline l;
	mproc__lazy_init(&l, timeout_ns);
	int rc = reserve_wait(q, len, &q->res_pos, ptr, &l);
	if (rc == 0) {
		q->res_open = true;
		q->res_len = len;
	}
	return rc;
}

MPROC_API int mproc_queue_commit(mproc_queue *q, size_t len)
{
	if (!q || !q->res_open || len > q->res_len)
		return -EINVAL;
	q->res_open = false;
	commit_one(q, q->res_pos, len, false);
	return 0;
}

/* ------------------------------------------------------------------ */
/* get                                                                 */

/* Look at the front message, waiting up to the lazy deadline.  @cap: a
 * message longer than this is not consumed (-EMSGSIZE, *len set).  The
 * token (the MPMC position) goes back to release. */
/* True once the queue was shut down with immediate (its messages are
 * discarded for every consumer). */
static bool discarded(const mproc_queue *q)
{
	return atomic_load_explicit(&q->ctl->discarded, memory_order_acquire);
}

/* The liveness hook of a consumer's wait: with
 * MPROC_QUEUE_WATCH_PRODUCERS, whether any producer may still live. */
static inline mproc__alive_fn producers_hook(const mproc_queue *q)
{
	return q->producers ? mproc__queue_producers_alive : NULL;
}

/* Wait for a message, watching the producers when the queue does (Q2,
 * layout.h).  A death ends the wait but stands only if one more look
 * still finds the ring empty: it sets *dead and returns 0 (look again),
 * and the caller reports -MPROC_EPEERDIED when that look finds nothing.
 * Otherwise returns the wait's result. */
static int wait_data(mproc_queue *q, const struct mproc__deadline *d,
		     bool *dead)
{
	int rc = mproc__ring_wait_data(&q->ring, d, producers_hook(q),
				       q->producers);
	if (rc != -MPROC_EPEERDIED)
		return rc;
	*dead = true;
	return 0;
}

static int peek_wait(mproc_queue *q, uint64_t cap, uint64_t *tok,
		     const void **p, uint64_t *len, struct mproc__lazy_deadline *l)
{
	bool dead = false;
	for (;;) {
		if (mproc__unlikely(discarded(q)))
			return -MPROC_EEOF;
		uint32_t flags;
		int rc = mproc__ring_peek(&q->ring, cap, tok, p, len, &flags);
		if (rc == -EMSGSIZE)
			mproc__ring_pass_wake(&q->ring); /* it stays queued */
		/* A wait ended with -MPROC_EPEERDIED: that stands only if
		 * this last look still finds the ring empty (Q2, layout.h). */
		if (rc == -EAGAIN && dead)
			return -MPROC_EPEERDIED;
		if (rc != -EAGAIN)
			return rc;
		if (mproc__lazy_nowait(l))
			return -EAGAIN;
		rc = wait_data(q, mproc__lazy_get(l), &dead);
		if (rc)
			return rc;
	}
}

MPROC_API ssize_t mproc_queue_get(mproc_queue *q, void *buf, size_t cap,
				  int64_t timeout_ns)
{
	if (!q || (!buf && cap))
		return -EINVAL;
	/* SPSC: with a zero-copy peek open, the ring's peek says -EBUSY. */
	if (timeout_ns < -1)
		return -EINVAL;
	struct mproc__lazy_deadline l;
	mproc__lazy_init(&l, timeout_ns);
	const void *p;
	uint64_t len, pos = 0;
	int rc = peek_wait(q, cap, &pos, &p, &len, &l);
	if (rc)
		return rc;
	if (len)
		memcpy(buf, p, len);
	mproc__ring_release(&q->ring, pos, true);
	return (ssize_t)len;
}

MPROC_API ssize_t mproc_queue_get_nowait(mproc_queue *q, void *buf, size_t cap)
{
	return mproc_queue_get(q, buf, cap, MPROC_NOWAIT);
}

/* get_many on the MPMC ring (n <= GET_MANY_MPMC): the messages are
 * claimed up to a whole batch per compare-and-swap
 * (mproc__ring_peek_n), copied, and released together at the end (see
 * mproc_queue_get_many). */
static ssize_t get_many_mpmc(mproc_queue *q, const struct iovec *bufs,
			     size_t *lens, size_t n,
			     struct mproc__lazy_deadline *l)
{
	uint64_t caps[GET_MANY_MPMC], got_len[GET_MANY_MPMC];
	uint64_t held[GET_MANY_MPMC];
	size_t k = 0;
	while (k < n && (bufs[k].iov_base || !bufs[k].iov_len)) {
		caps[k] = bufs[k].iov_len;
		k++;
	}
	if (n && !k)
		return -EINVAL;
	bool dead = false;
	size_t done = 0;
	while (done < k) {
		if (mproc__unlikely(discarded(q))) {
			if (done)
				break;
			return -MPROC_EEOF;
		}
		uint64_t first, got;
		int rc = mproc__ring_peek_n(&q->ring, k - done, caps + done,
					    &first, &got, got_len + done);
		/* A wait ended with -MPROC_EPEERDIED: that stands only if
		 * this last look still finds the ring empty (Q2, layout.h). */
		if (rc == -EAGAIN && dead && done == 0)
			return -MPROC_EPEERDIED;
		if (rc == -EAGAIN && done == 0 && !mproc__lazy_nowait(l)) {
			rc = wait_data(q, mproc__lazy_get(l), &dead);
			if (rc == 0)
				continue;
		}
		if (rc) {
			if (rc == -EMSGSIZE)
				mproc__ring_pass_wake(&q->ring);
			if (done)
				break;
			return rc;
		}
		for (uint64_t i = 0; i < got; i++) {
			size_t j = done + i;
			if (got_len[j])
				memcpy(bufs[j].iov_base,
				       mproc__ring_payload(&q->ring, first + i),
				       got_len[j]);
			lens[j] = got_len[j];
			held[j] = first + i;
		}
		done += got;
	}
	for (size_t i = 0; i < done; i++)
		mproc__ring_release(&q->ring, held[i], false);
	if (done)
		mproc__ring_release_publish_n(&q->ring, done);
	return (ssize_t)done;
}

/* get_many on the SPSC ring: the ring copies the batch out in one call
 * (mproc__ring_read_many), and the releases are published once. */
static ssize_t get_many_spsc(mproc_queue *q, const struct iovec *bufs,
			     size_t *lens, size_t n,
			     struct mproc__lazy_deadline *l)
{
	size_t k = 0;
	while (k < n && (bufs[k].iov_base || !bufs[k].iov_len))
		k++;
	if (n && !k)
		return -EINVAL;
	if (!k)
		return 0;
	bool dead = false;
	for (;;) {
		if (mproc__unlikely(discarded(q)))
			return -MPROC_EEOF;
		size_t done = 0;
		int rc = mproc__ring_read_many(&q->ring, bufs, lens, k, &done);
		/* As in get_many_mpmc: a death stands after one more look. */
		if (rc == -EAGAIN && dead)
			return -MPROC_EPEERDIED;
		if (rc == -EAGAIN && !mproc__lazy_nowait(l)) {
			rc = wait_data(q, mproc__lazy_get(l), &dead);
			if (rc == 0)
				continue;
		}
		if (rc)
			return rc;
		mproc__ring_release_publish(&q->ring);
		return (ssize_t)done;
	}
}

MPROC_API ssize_t mproc_queue_get_many(mproc_queue *q, const struct iovec *bufs,
				       size_t *lens, size_t n,
				       int64_t timeout_ns)
{
	if (!q || ((!bufs || !lens) && n))
		return -EINVAL;
	if (timeout_ns < -1)
		return -EINVAL;
	struct mproc__lazy_deadline l;
	mproc__lazy_init(&l, timeout_ns);
	/* MPMC: a release frees the slot for good, so the batch's slots stay
	 * claimed until every message is copied and are released just
	 * before returning; a consumer killed inside the call so leaves
	 * them claimed, and the survivors put them back (queue.h).  That
	 * bounds an MPMC batch at GET_MANY_MPMC messages.  SPSC releases
	 * stay private until the one publication at the end. */
	if (q->ring.kind == MPROC__RING_MPMC)
		return get_many_mpmc(q, bufs, lens,
				     n > GET_MANY_MPMC ? GET_MANY_MPMC : n, &l);
	return get_many_spsc(q, bufs, lens, n, &l);
}

MPROC_API ssize_t mproc_queue_next_size(mproc_queue *q, int64_t timeout_ns)
{
	if (!q)
		return -EINVAL;
	struct mproc__deadline d;
	if (mproc__deadline_init(&d, timeout_ns))
		return -EINVAL;
	bool dead = false;
	bool waited = false;
	for (;;) {
		if (discarded(q))
			return -MPROC_EEOF;
		uint64_t len;
		/* SPSC: with a zero-copy peek open, this says -EBUSY. */
		int rc = mproc__ring_next_len(&q->ring, &len);
		if (rc == 0) {
			/* Woken for a message that we only look at: a
			 * consumer may sleep on it (futex.h, "Waking n"). */
			if (waited)
				mproc__ring_pass_wake(&q->ring);
			return (ssize_t)len;
		}
		/* A wait ended with -MPROC_EPEERDIED: that stands only if
		 * this last look still finds the ring empty (Q2, layout.h). */
		if (rc == -EAGAIN && dead)
			return -MPROC_EPEERDIED;
		if (rc != -EAGAIN)
			return rc;
		if (d.nowait)
			return -EAGAIN;
		rc = wait_data(q, &d, &dead);
		if (rc)
			return rc;
		waited = true;
	}
}

MPROC_API ssize_t mproc_queue_peek(mproc_queue *q, const void **ptr,
				   int64_t timeout_ns)
{
	if (!q || !ptr)
		return -EINVAL;
	if (q->peek_open)
		return -EBUSY;
	if (timeout_ns < -1)
		return -EINVAL;
	struct mproc__lazy_deadline l;
	mproc__lazy_init(&l, timeout_ns);
	uint64_t len;
	int rc = peek_wait(q, UINT64_MAX, &q->peek_pos, ptr, &len, &l);
	if (rc)
		return rc;
	q->peek_open = true;
	return (ssize_t)len;
}

MPROC_API int mproc_queue_release(mproc_queue *q)
{
	if (!q || !q->peek_open)
		return -EINVAL;
	q->peek_open = false;
	mproc__ring_release(&q->ring, q->peek_pos, true);
	return 0;
}

/* ------------------------------------------------------------------ */
/* state, close, joinable                                              */

MPROC_API ssize_t mproc_queue_qsize(mproc_queue *q)
{
	if (!q)
		return -EINVAL;
	if (discarded(q))
		return 0;
	return (ssize_t)mproc__ring_count(&q->ring);
}

MPROC_API int mproc_queue_empty(mproc_queue *q)
{
	ssize_t n = mproc_queue_qsize(q);
	return n < 0 ? (int)n : n == 0;
}

MPROC_API int mproc_queue_full(mproc_queue *q)
{
	if (!q)
		return -EINVAL;
	return mproc__ring_full(&q->ring);
}

MPROC_API ssize_t mproc_queue_max_msg(mproc_queue *q)
{
	return q ? (ssize_t)q->max_msg : -EINVAL;
}

MPROC_API int mproc_queue_close(mproc_queue *q)
{
	if (!q)
		return -EINVAL;
	mproc__ring_close(&q->ring, MPROC__RING_WR_CLOSED | MPROC__RING_RD_CLOSED);
	return 0;
}

MPROC_API int mproc_queue_shutdown(mproc_queue *q, bool immediate)
{
	if (!q)
		return -EINVAL;
	if (immediate) {
		/* Release: pairs with the acquire in discarded(); the close
		 * below then wakes every sleeper, who looks again. */
		atomic_store_explicit(&q->ctl->discarded, 1,
				      memory_order_release);
		/* The discarded items will never be marked done: release
		 * the joiners (join reports the shutdown). */
		atomic_store_explicit(&q->ctl->unfinished, 0,
				      memory_order_release);
		mproc__event_signal(&q->ctl->all_done);
	}
	return mproc_queue_close(q);
}

MPROC_API int mproc_queue_task_done(mproc_queue *q)
{
	if (!q || !(q->flags & MPROC_QUEUE_JOINABLE))
		return -EINVAL;
	if (discarded(q))
		return 0; /* items taken before the shutdown: nothing to count */
	uint64_t u = atomic_load_explicit(&q->ctl->unfinished,
					  memory_order_relaxed);
	do {
		if (u == 0)
			return -EOVERFLOW;
		/* Release: the consumer's work on the item happens before a
		 * joiner that sees the count reach zero (acquire in
		 * join_ready). */
	} while (!atomic_compare_exchange_weak_explicit(
		&q->ctl->unfinished, &u, u - 1, memory_order_release,
		memory_order_relaxed));
	if (u == 1)
		mproc__event_signal(&q->ctl->all_done);
	return 0;
}

static bool join_ready(void *arg)
{
	mproc_queue *q = arg;
	return atomic_load_explicit(&q->ctl->unfinished,
				    memory_order_acquire) == 0 ||
	       discarded(q);
}

MPROC_API int mproc_queue_join(mproc_queue *q, int64_t timeout_ns)
{
	if (!q || !(q->flags & MPROC_QUEUE_JOINABLE))
		return -EINVAL;
	struct mproc__deadline d;
	if (mproc__deadline_init(&d, timeout_ns))
		return -EINVAL;
	int rc = mproc__event_wait(&q->ctl->all_done, join_ready, q, &d,
				   &q->spin_join, NULL);
	if (rc == -ETIMEDOUT && d.nowait)
		return -EAGAIN;
	if (rc == 0 && discarded(q))
		return -MPROC_EEOF;
	return rc;
}

MPROC_API int mproc_queue_unlink(const char *name)
{
	return mproc_shm_unlink(name);
}

MPROC_API void mproc_queue_free(mproc_queue *q)
{
	if (!q)
		return;
	mproc_shm_free(q->seg);
	free(q);
}
