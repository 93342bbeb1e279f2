/*
 * Connection data calls: send (one record, or a stream of fragments for
 * a message longer than the ring's largest record), receive (into a
 * caller's buffer or a new one, refusing before consuming anything when
 * the message does not fit), next_size, poll and fileno.  The message
 * format is described in conn.h.
 *
 * Every call that finds the receive ring empty while fileno is armed runs
 * the drain of notify.c, and every publish runs its signal, so the
 * eventfd follows the ring.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "pipe/conn.h"


/* ------------------------------------------------------------------ */
/* Sending                                                             */

/* -EPIPE from the ring means the consumer side is closed: by its owner,
 * or by us on behalf of a dead one. */
static int tx_closed_error(mproc_conn *c)
{
	/* Acquire: pairs with the release in mark_dead (pipe.c). */
	return atomic_load_explicit(&c->ctl->end[1 - c->end].state,
				    memory_order_acquire) == END_DIED
		       ? -MPROC_EPEERDIED
		       : -EPIPE;
}

/* Reserve room for a record of @len bytes, waiting until @d. */
static int tx_reserve(mproc_conn *c, uint64_t len, void **p,
		      struct mproc__lazy_deadline *u)
{
	uint64_t tok; /* SPSC: the reservation lives in the view */
	for (;;) {
		int rc = mproc__ring_reserve(&c->tx, len, &tok, p);
		if (rc == -EPIPE)
			return tx_closed_error(c);
		if (rc != -EAGAIN)
			return rc;
		if (mproc__lazy_nowait(u)) {
			rc = mproc__conn_peer_check_rl(c, &c->tx_next_check);
			if (rc)
				return rc;
			return -EAGAIN;
		}
		rc = mproc__ring_wait_space(&c->tx, len, mproc__lazy_get(u),
					    mproc__conn_peer_alive, c);
		if (rc)
			return rc;
	}
}

/* Publish what was committed, wake a sleeping receiver and, if it armed
 * its fileno, signal the eventfd on an empty-to-non-empty transition. */
static void tx_publish(mproc_conn *c)
{
	mproc__ring_publish(&c->tx);
	mproc__note_signal(c->ctl, 1 - c->end, c->res->efd[1 - c->end]);
}

/* End a withdrawn stream with the flags-0 record that tells the receiver
 * to drop it (conn.h). */
static int tx_withdraw(mproc_conn *c, struct mproc__lazy_deadline *u)
{
	void *p;
	int rc = tx_reserve(c, 0, &p, u);
	if (rc == -EPIPE || rc == -MPROC_EPEERDIED)
		c->tx_abort = false; /* nobody left to tell */
	if (rc)
		return rc;
	mproc__ring_commit(&c->tx, 0, 0, 0, false);
	tx_publish(c);
	c->tx_abort = false;
	return 0;
}

static ssize_t send_stream(mproc_conn *c, const unsigned char *buf,
			   uint64_t len, struct mproc__lazy_deadline *u)
{
	uint64_t frag = c->frag;
	void *p;
	/* First fragment: the total length, then as much as fits. */
	int rc = tx_reserve(c, frag, &p, u);
	if (rc)
		return rc;
	uint64_t n = frag - sizeof(uint64_t);
	memcpy(p, &len, sizeof(len));
	memcpy((unsigned char *)p + sizeof(len), buf, n);
	mproc__ring_commit(&c->tx, 0, frag, MPROC__RING_REC_MORE, false);
	tx_publish(c);
	uint64_t sent = n;
	while (sent < len) {
		n = len - sent < frag ? len - sent : frag;
		rc = tx_reserve(c, n, &p, u);
		if (rc) {
			/* Withdraw the message; if even the closing record
			 * does not fit now, the next send or the close
			 * delivers it. */
			c->tx_abort = true;
			struct mproc__lazy_deadline now;
			mproc__lazy_init(&now, MPROC_NOWAIT);
			tx_withdraw(c, &now);
			return rc;
		}
		memcpy(p, buf + sent, n);
		sent += n;
		mproc__ring_commit(&c->tx, 0, n,
				   sent < len ? MPROC__RING_REC_MORE : 0, false);
		tx_publish(c);
	}
	return (ssize_t)len;
}

MPROC_API ssize_t mproc_conn_send_bytes(mproc_conn *c, const void *buf,
					size_t len)
{
	int rc = mproc__conn_begin(c, false);
	if (rc)
		return rc;
	if ((!buf && len) || len > SSIZE_MAX)
		return -EINVAL;
	struct mproc__lazy_deadline u;
	mproc__lazy_init(&u, c->timeout_ns);
	if (c->tx_abort && (rc = tx_withdraw(c, &u)) != 0)
		return rc;
	if (len > mproc__ring_max_payload(&c->tx))
		return send_stream(c, buf, len, &u);
	void *p;
	rc = tx_reserve(c, len, &p, &u);
	if (rc)
		return rc;
	if (len)
		memcpy(p, buf, len);
	mproc__ring_commit(&c->tx, 0, len, 0, false);
	tx_publish(c);
	return (ssize_t)len;
}

MPROC_API ssize_t mproc_conn_send(mproc_conn *c, const void *obj, size_t size)
{
	return mproc_conn_send_bytes(c, obj, size);
}

/* ------------------------------------------------------------------ */
/* Receiving                                                           */

static int rx_closed_error(mproc_conn *c)
{
	/* Acquire: pairs with the release in mark_dead (pipe.c). */
	return atomic_load_explicit(&c->ctl->end[1 - c->end].state,
				    memory_order_acquire) == END_DIED
		       ? -MPROC_EPEERDIED
		       : -MPROC_EEOF;
}

/* The ring is empty: keep an armed eventfd unreadable (notify.c). */
static void rx_empty(mproc_conn *c)
{
	if (mproc__note_armed(c))
		mproc__note_clear(c);
}

/* After consuming a record: if that emptied the ring, drain the eventfd. */
static void rx_consumed(mproc_conn *c)
{
	if (mproc__note_armed(c) && !mproc__rx_pending(c))
		mproc__note_clear(c);
}

/* Peek at the next record, waiting until @d.  Returns 0, -EAGAIN,
 * -ETIMEDOUT, -MPROC_EEOF, -MPROC_EPEERDIED, -MPROC_ECORRUPT. */
static int rx_peek(mproc_conn *c, struct mproc__lazy_deadline *u,
		   const void **p, uint64_t *len, uint32_t *flags)
{
	bool dead = false;
	uint64_t tok; /* SPSC: the peek lives in the view */
	for (;;) {
		int rc = mproc__ring_peek(&c->rx, UINT64_MAX, &tok, p, len,
					  flags);
		if (rc == 0)
			return 0;
		if (rc == -MPROC_EEOF)
			return rx_closed_error(c);
		if (rc != -EAGAIN)
			return rc;
		rx_empty(c);
		if (dead)
			return -MPROC_EPEERDIED;
		if (mproc__lazy_nowait(u)) {
			rc = mproc__conn_peer_check_rl(c, &c->rx_next_check);
			if (rc == 0)
				return -EAGAIN;
		} else {
			rc = mproc__ring_wait_data(&c->rx, mproc__lazy_get(u),
						   mproc__conn_peer_alive, c);
			if (rc && rc != -MPROC_EPEERDIED)
				return rc;
			if (rc == 0)
				continue;
		}
		/* The peer died: the rings are closed on its behalf now;
		 * look once more so that what it sent is still received. */
		dead = true;
	}
}

/* The length of the message starting with this record. */
static int msg_total(const void *p, uint64_t len, uint32_t flags,
		     uint64_t *total)
{
	if (!(flags & MPROC__RING_REC_MORE)) {
		*total = len;
		return 0;
	}
	uint64_t t;
	if (len < sizeof(t))
		return -MPROC_ECORRUPT;
	memcpy(&t, p, sizeof(t));
	if (t < len - sizeof(t) || t > SSIZE_MAX)
		return -MPROC_ECORRUPT;
	*total = t;
	return 0;
}

static void rx_reset(mproc_conn *c)
{
	free(c->rx_stash);
	c->rx_stash = NULL;
	c->rx_active = false;
	c->rx_total = c->rx_have = 0;
}

/* Continue a streamed message into @dst (rx_total bytes, rx_have of them
 * already there), or drop it when @dst is NULL.  Returns 0 when the last
 * fragment arrived, 1 when the sender withdrew the message (dropped), or
 * a negative error with the progress kept in rx_have. */
static int rx_stream(mproc_conn *c, unsigned char *dst,
		     struct mproc__lazy_deadline *u)
{
	for (;;) {
		const void *p;
		uint64_t len;
		uint32_t flags;
		int rc = rx_peek(c, u, &p, &len, &flags);
		if (rc)
			return rc;
		if (len > c->rx_total - c->rx_have) {
			mproc__ring_unpeek(&c->rx, 0);
			return -MPROC_ECORRUPT;
		}
		if (dst && len)
			memcpy(dst + c->rx_have, p, len);
		c->rx_have += len;
		mproc__ring_release(&c->rx, 0, true);
		if (!(flags & MPROC__RING_REC_MORE)) {
			rx_consumed(c);
			return c->rx_have == c->rx_total ? 0 : 1;
		}
	}
}

/* Finish or drop a streamed message that an earlier call left half
 * received, so that the ring's next record starts a message. */
static int rx_resume_drop(mproc_conn *c, struct mproc__lazy_deadline *u)
{
	int rc = rx_stream(c, NULL, u);
	if (rc < 0)
		return rc;
	rx_reset(c);
	return 0;
}

/* How the caller wants the message. */
struct rx_want {
	unsigned char *buf; /* caller's buffer, or NULL: allocate */
	uint64_t cap;       /* longest accepted */
	bool exact;         /* recv(obj): the length must equal cap */
	unsigned char *out; /* the allocated buffer */
};

/* Check a message of @total bytes against @w before anything is taken. */
static int rx_fits(const struct rx_want *w, uint64_t total)
{
	if (w->exact && total != w->cap)
		return -EBADMSG;
	return total > w->cap ? -EMSGSIZE : 0;
}

/* Receive one message per @w.  Returns its length or an error; on
 * -EMSGSIZE/-EBADMSG *@size holds the length of the message left in
 * place. */
static ssize_t rx_take(mproc_conn *c, struct rx_want *w, uint64_t *size)
{
	struct mproc__lazy_deadline u;
	mproc__lazy_init(&u, c->timeout_ns);
	int rc;
	if (c->rx_active && !c->rx_stash && (rc = rx_resume_drop(c, &u)) != 0)
		return rc;
	for (;;) {
		unsigned char *dst;
		if (c->rx_active) {
			/* An earlier call timed out half-way: its bytes are
			 * in rx_stash.  Continue there. */
			*size = c->rx_total;
			if ((rc = rx_fits(w, c->rx_total)) != 0)
				return rc;
			dst = c->rx_stash;
		} else {
			const void *p;
			uint64_t len, total;
			uint32_t flags;
			if ((rc = rx_peek(c, &u, &p, &len, &flags)) != 0)
				return rc;
			if ((rc = msg_total(p, len, flags, &total)) != 0) {
				mproc__ring_unpeek(&c->rx, 0);
				return rc;
			}
			*size = total;
			if ((rc = rx_fits(w, total)) != 0) {
				mproc__ring_unpeek(&c->rx, 0);
				return rc;
			}
			dst = w->buf;
			if (!dst && !(dst = malloc(total ? total : 1))) {
				mproc__ring_unpeek(&c->rx, 0);
				return -ENOMEM;
			}
			if (!(flags & MPROC__RING_REC_MORE)) {
				if (len)
					memcpy(dst, p, len);
				mproc__ring_release(&c->rx, 0, true);
				rx_consumed(c);
				w->out = dst;
				return (ssize_t)total;
			}
			uint64_t n = len - sizeof(uint64_t);
			memcpy(dst, (const unsigned char *)p + sizeof(uint64_t), n);
			mproc__ring_release(&c->rx, 0, true);
			c->rx_active = true;
			c->rx_total = total;
			c->rx_have = n;
		}
		rc = rx_stream(c, dst, &u);
		if (rc == 0) {
			if (dst == c->rx_stash) {
				if (w->buf) {
					memcpy(w->buf, dst, c->rx_total);
				} else {
					dst = c->rx_stash;
					c->rx_stash = NULL;
				}
			}
			ssize_t total = (ssize_t)c->rx_total;
			rx_reset(c);
			w->out = w->buf ? w->buf : dst;
			return total;
		}
		bool fresh = dst != w->buf && dst != c->rx_stash;
		if (rc == -EAGAIN || rc == -ETIMEDOUT) {
			/* Keep what arrived for the next call.  The caller's
			 * buffer is not ours to keep: copy it out.  Without
			 * memory, rx_stash stays NULL: the rest is dropped. */
			if (dst == w->buf) {
				c->rx_stash = malloc(c->rx_total);
				if (c->rx_stash)
					memcpy(c->rx_stash, dst, c->rx_have);
			} else if (fresh) {
				c->rx_stash = dst;
			}
			return rc;
		}
		if (fresh)
			free(dst);
		rx_reset(c);
		if (rc == 1)
			continue; /* withdrawn by the sender: next message */
		return rc; /* closed, dead or corrupt mid-message */
	}
}

MPROC_API ssize_t mproc_conn_recv_bytes(mproc_conn *c, size_t maxlength,
					void **buf, size_t *len)
{
	int rc = mproc__conn_begin(c, true);
	if (rc)
		return rc;
	if (!buf || !len)
		return -EINVAL;
	struct rx_want w = { .buf = NULL, .cap = maxlength };
	uint64_t size = 0;
	ssize_t n = rx_take(c, &w, &size);
	if (n >= 0) {
		*buf = w.out;
		*len = (size_t)n;
	} else if (n == -EMSGSIZE) {
		*len = (size_t)size;
	}
	return n;
}

MPROC_API ssize_t mproc_conn_recv_bytes_into(mproc_conn *c, void *buf,
					     size_t cap)
{
	int rc = mproc__conn_begin(c, true);
	if (rc)
		return rc;
	if (!buf && cap)
		return -EINVAL;
	/* A NULL buffer of capacity 0 still receives an empty message;
	 * rx_take allocates when buf is NULL, so point it somewhere. */
	static unsigned char none[1];
	struct rx_want w = { .buf = buf ? buf : none, .cap = cap };
	uint64_t size;
	return rx_take(c, &w, &size);
}

MPROC_API ssize_t mproc_conn_recv(mproc_conn *c, void *obj, size_t size)
{
	int rc = mproc__conn_begin(c, true);
	if (rc)
		return rc;
	if (!obj && size)
		return -EINVAL;
	static unsigned char none[1];
	struct rx_want w = { .buf = obj ? obj : none, .cap = size,
			     .exact = true };
	uint64_t got;
	return rx_take(c, &w, &got);
}

MPROC_API ssize_t mproc_conn_next_size(mproc_conn *c, int64_t timeout_ns)
{
	int rc = mproc__conn_begin(c, true);
	if (rc)
		return rc;
	if (timeout_ns < -1)
		return -EINVAL;
	struct mproc__lazy_deadline u;
	mproc__lazy_init(&u, timeout_ns);
	if (c->rx_active && !c->rx_stash && (rc = rx_resume_drop(c, &u)) != 0)
		return rc;
	if (c->rx_active)
		return (ssize_t)c->rx_total;
	const void *p;
	uint64_t len, total;
	uint32_t flags;
	rc = rx_peek(c, &u, &p, &len, &flags);
	if (rc)
		return rc;
	rc = msg_total(p, len, flags, &total);
	mproc__ring_unpeek(&c->rx, 0);
	return rc ? rc : (ssize_t)total;
}

/* ------------------------------------------------------------------ */
/* Readiness                                                           */

MPROC_API int mproc_conn_poll(mproc_conn *c, int64_t timeout_ns)
{
	int rc = mproc__conn_begin(c, true);
	if (rc)
		return rc;
	if (timeout_ns < -1)
		return -EINVAL;
	struct mproc__lazy_deadline u;
	mproc__lazy_init(&u, timeout_ns);
	const void *p;
	uint64_t len;
	uint32_t flags;
	rc = rx_peek(c, &u, &p, &len, &flags);
	if (rc == 0) {
		mproc__ring_unpeek(&c->rx, 0);
		return 1;
	}
	if (rc == -MPROC_EEOF || rc == -MPROC_EPEERDIED)
		return 1;
	if (rc == -EAGAIN || rc == -ETIMEDOUT)
		return 0;
	return rc;
}

MPROC_API int mproc_conn_fileno(mproc_conn *c)
{
	int rc = mproc__conn_begin(c, true);
	if (rc)
		return rc;
	mproc__note_arm(c);
	return c->res->efd[c->end];
}
