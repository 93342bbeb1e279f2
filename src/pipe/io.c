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

/* Reserve room for a record of @len bytes, waiting until @u. */
static int tx_reserve(mproc_conn *c, uint64_t len, void **p,
		      struct mproc__lazy_deadline *u, uint64_t *tok)
{
	for (;;) {
		/* SPSC: the token is the record's position (spsc.h). */
		int rc = mproc__ring_reserve(&c->tx, len, tok, p);
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
	mproc__note_signal(c, false);
}

/* Write one fragment of stream @id: its header, then @n bytes of @data. */
static void tx_frag(mproc_conn *c, void *p, uint64_t id, uint64_t value,
		    const unsigned char *data, uint64_t n)
{
	struct frag_hdr h = { id, value };
	memcpy(p, &h, sizeof(h));
	if (n)
		memcpy((unsigned char *)p + sizeof(h), data, n);
	mproc__ring_commit(&c->tx, 0, sizeof(h) + n, MPROC__RING_REC_MORE,
			   false);
	tx_publish(c);
}

/* Stream a message longer than the largest record (conn.h, Messages). */
static ssize_t send_stream(mproc_conn *c, const unsigned char *buf,
			   uint64_t len, struct mproc__lazy_deadline *u)
{
	uint64_t chunk = c->frag - sizeof(struct frag_hdr);
	uint64_t tok;
	void *p;
	int rc = tx_reserve(c, c->frag, &p, u, &tok);
	if (rc)
		return rc;
	/* The FIRST record's position names the stream (16-aligned, so the
	 * low bits are free for the kind). */
	uint64_t id = tok & ~(uint64_t)FRAG_KIND;
	tx_frag(c, p, id | FRAG_FIRST, len, buf, chunk);
	uint64_t sent = chunk;
	while (sent < len) {
		uint64_t n = len - sent < chunk ? len - sent : chunk;
		rc = tx_reserve(c, sizeof(struct frag_hdr) + n, &p, u, &tok);
		if (rc) {
			/* Withdraw the message.  If even the ABORT does not
			 * fit now, nothing is lost: whatever this end sends
			 * next ends the stream just as well. */
			struct mproc__lazy_deadline now;
			mproc__lazy_init(&now, MPROC_NOWAIT);
			if (tx_reserve(c, sizeof(struct frag_hdr), &p, &now,
				       &tok) == 0)
				tx_frag(c, p, id | FRAG_ABORT, sent, NULL, 0);
			return rc;
		}
		tx_frag(c, p, id | (sent + n < len ? FRAG_MIDDLE : FRAG_LAST),
			sent, buf + sent, n);
		sent += n;
	}
	return (ssize_t)len;
}

MPROC_API ssize_t mproc_conn_send_bytes(mproc_conn *c, const void *buf,
					size_t len)
{
	if (c && c->ops)
		return c->ops->send_bytes(c, buf, len);
	int rc = mproc__conn_begin(c, false);
	if (rc)
		return rc;
	if ((!buf && len) || len > SSIZE_MAX)
		return -EINVAL;
	struct mproc__lazy_deadline u;
	mproc__lazy_init(&u, c->timeout_ns);
	if (len > mproc__ring_max_payload(&c->tx))
		return send_stream(c, buf, len, &u);
	/* The common case in one ring call (reserve, copy, commit, publish);
	 * a full or closed ring takes the waiting path below. */
	rc = mproc__ring_put(&c->tx, buf, len, NULL);
	if (mproc__likely(rc == 0)) {
		mproc__note_signal(c, false);
		return (ssize_t)len;
	}
	if (rc != -EAGAIN && rc != -EPIPE)
		return rc;
	void *p;
	uint64_t tok;
	rc = tx_reserve(c, len, &p, &u, &tok);
	if (rc)
		return rc;
	if (len)
		memcpy(p, buf, len);
	mproc__ring_commit(&c->tx, tok, len, 0, false);
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

/* A message received into a new buffer (recv_bytes) starts with at most
 * this many bytes allocated, and the buffer doubles as the fragments
 * arrive: the length a first fragment announces is only a claim, and a
 * hostile one of 2^62 bytes must cost nothing until the bytes are here. */
#define RX_ALLOC_FIRST ((uint64_t)1 << 20)

/* Forget the message being assembled (dropped, or delivered). */
static void rx_reset(mproc_conn *c)
{
	free(c->rx_stash);
	c->rx_stash = NULL;
	c->rx_stash_cap = 0;
	c->rx_active = false;
	c->rx_id = c->rx_total = c->rx_have = 0;
}

/* Make room for @need bytes (at most rx_total) in rx_stash. */
static int rx_grow(mproc_conn *c, uint64_t need)
{
	if (need <= c->rx_stash_cap)
		return 0;
	uint64_t cap = c->rx_stash_cap * 2;
	if (cap < RX_ALLOC_FIRST)
		cap = RX_ALLOC_FIRST;
	if (cap < need)
		cap = need;
	if (cap > c->rx_total)
		cap = c->rx_total; /* >= need: need <= rx_total */
	unsigned char *p = realloc(c->rx_stash, cap ? (size_t)cap : 1);
	if (!p)
		return -ENOMEM;
	c->rx_stash = p;
	c->rx_stash_cap = cap;
	return 0;
}

/* What rx_front found at the front of the ring. */
enum { FRONT_SOLO, FRONT_FIRST, FRONT_NEXT };

struct rx_rec {
	int kind;
	const unsigned char *data; /* payload, after any fragment header */
	uint64_t n;                /* its length */
	uint64_t total;            /* the message's length */
	uint64_t id;               /* FIRST: the stream id */
	bool last;                 /* NEXT: the message's last fragment */
};

/* Peek at the next record a receive delivers from -- a whole message
 * (SOLO), the FIRST fragment of a streamed one, or the NEXT fragment of
 * the one this handle is assembling -- waiting until @u.  On the way,
 * apply the stream rules of conn.h: drop the message being assembled when
 * something else follows it, and consume ABORTs and orphaned fragments
 * (counting in rx_dropped each message whose LAST is skipped).  Returns 0
 * with the record peeked, or rx_peek's errors (after which a message cut
 * by the peer's close or death is dropped), or -MPROC_ECORRUPT. */
static int rx_front(mproc_conn *c, struct mproc__lazy_deadline *u,
		    struct rx_rec *r)
{
	for (;;) {
		const void *p;
		uint64_t len;
		uint32_t flags;
		int rc = rx_peek(c, u, &p, &len, &flags);
		if (rc) {
			if (rc == -MPROC_EEOF || rc == -MPROC_EPEERDIED)
				rx_reset(c);
			return rc;
		}
		if (!(flags & MPROC__RING_REC_MORE)) {
			if (c->rx_active)
				rx_reset(c); /* cut: its sender moved on */
			*r = (struct rx_rec){ FRONT_SOLO, p, len, len, 0, false };
			return 0;
		}
		struct frag_hdr h;
		if (len < sizeof(h)) {
			mproc__ring_unpeek(&c->rx, 0);
			return -MPROC_ECORRUPT;
		}
		memcpy(&h, p, sizeof(h));
		const unsigned char *data = (const unsigned char *)p + sizeof(h);
		uint64_t n = len - sizeof(h);
		uint64_t id = h.id & ~(uint64_t)FRAG_KIND;
		unsigned kind = (unsigned)(h.id & FRAG_KIND);
		if (kind == FRAG_FIRST) {
			/* A stream always ends with a LAST that is not
			 * empty, so its FIRST never holds all of it. */
			if (h.value > SSIZE_MAX || n >= h.value) {
				mproc__ring_unpeek(&c->rx, 0);
				return -MPROC_ECORRUPT;
			}
			if (c->rx_active)
				rx_reset(c);
			*r = (struct rx_rec){ FRONT_FIRST, data, n, h.value, id,
					      false };
			return 0;
		}
		if (kind != FRAG_MIDDLE && kind != FRAG_LAST &&
		    kind != FRAG_ABORT) {
			mproc__ring_unpeek(&c->rx, 0);
			return -MPROC_ECORRUPT;
		}
		if (kind != FRAG_ABORT && c->rx_active && id == c->rx_id &&
		    h.value == c->rx_have) {
			uint64_t left = c->rx_total - c->rx_have;
			if (kind == FRAG_LAST ? n != left : n >= left) {
				mproc__ring_unpeek(&c->rx, 0);
				return -MPROC_ECORRUPT;
			}
			*r = (struct rx_rec){ FRONT_NEXT, data, n, c->rx_total,
					      id, kind == FRAG_LAST };
			return 0;
		}
		/* An ABORT, or an orphan: no receive delivers it. */
		if (c->rx_active)
			rx_reset(c);
		mproc__ring_release(&c->rx, 0, true);
		if (kind == FRAG_LAST)
			c->rx_dropped++;
		rx_consumed(c);
	}
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

/* A call that received part of a message into the caller's buffer stops
 * early: keep those bytes for the next call.  Without the memory, the
 * message is dropped (its remaining fragments become orphans). */
static void rx_keep(mproc_conn *c, const unsigned char *buf)
{
	if (rx_grow(c, c->rx_have) == 0) {
		if (c->rx_have)
			memcpy(c->rx_stash, buf, c->rx_have);
	}
	else
		rx_reset(c);
}

/* The last fragment is in: hand the message over. */
static ssize_t rx_done(mproc_conn *c, struct rx_want *w, bool in_caller)
{
	uint64_t total = c->rx_total;
	if (in_caller) {
		w->out = w->buf;
	} else if (w->buf) {
		memcpy(w->buf, c->rx_stash, total);
		w->out = w->buf;
	} else {
		/* rx_grow never allocates beyond rx_total: exact size. */
		w->out = c->rx_stash;
		c->rx_stash = NULL;
	}
	rx_reset(c);
	return (ssize_t)total;
}

/* Receive one message per @w.  Returns its length or an error; on
 * -EMSGSIZE/-EBADMSG *@size holds the length of the message left in
 * place. */
static ssize_t rx_take(mproc_conn *c, struct rx_want *w, uint64_t *size)
{
	struct mproc__lazy_deadline u;
	mproc__lazy_init(&u, c->timeout_ns);
	/* Where the message being assembled lives: rx_stash, or the
	 * caller's buffer when this call started it there. */
	bool in_caller = false;
	for (;;) {
		struct rx_rec r;
		int rc = rx_front(c, &u, &r);
		if (rc) {
			if (c->rx_active && in_caller)
				rx_keep(c, w->buf);
			return rc;
		}
		*size = r.total;
		if (r.kind == FRONT_NEXT) {
			/* Resumed from an earlier call: the bytes are in
			 * rx_stash, which grows as they arrive. */
			if (!in_caller &&
			    ((rc = rx_fits(w, r.total)) != 0 ||
			     (rc = rx_grow(c, c->rx_have + r.n)) != 0)) {
				mproc__ring_unpeek(&c->rx, 0);
				return rc;
			}
			unsigned char *dst = in_caller ? w->buf : c->rx_stash;
			if (r.n)
				memcpy(dst + c->rx_have, r.data, r.n);
			c->rx_have += r.n;
			mproc__ring_release(&c->rx, 0, true);
			if (!r.last)
				continue;
			rx_consumed(c);
			return rx_done(c, w, in_caller);
		}
		/* rx_front dropped whatever was being assembled. */
		in_caller = false;
		if ((rc = rx_fits(w, r.total)) != 0) {
			mproc__ring_unpeek(&c->rx, 0);
			return rc;
		}
		if (r.kind == FRONT_SOLO) {
			unsigned char *dst = w->buf;
			if (!dst && !(dst = malloc(r.n ? (size_t)r.n : 1))) {
				mproc__ring_unpeek(&c->rx, 0);
				return -ENOMEM;
			}
			if (r.n)
				memcpy(dst, r.data, r.n);
			mproc__ring_release(&c->rx, 0, true);
			rx_consumed(c);
			w->out = dst;
			return (ssize_t)r.n;
		}
		c->rx_active = true;
		c->rx_id = r.id;
		c->rx_total = r.total;
		c->rx_have = 0;
		if (w->buf) {
			in_caller = true;
		} else if ((rc = rx_grow(c, r.n)) != 0) {
			rx_reset(c);
			mproc__ring_unpeek(&c->rx, 0);
			return rc;
		}
		if (r.n) /* a hostile FIRST may carry no data */
			memcpy(in_caller ? w->buf : c->rx_stash, r.data, r.n);
		c->rx_have = r.n;
		mproc__ring_release(&c->rx, 0, true);
	}
}

MPROC_API ssize_t mproc_conn_recv_bytes(mproc_conn *c, size_t maxlength,
					void **buf, size_t *len)
{
	if (c && c->ops)
		return c->ops->recv_bytes(c, maxlength, buf, len);
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
	if (c && c->ops)
		return c->ops->recv_into(c, buf, cap, false);
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
	if (c && c->ops)
		return c->ops->recv_into(c, obj, size, true);
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
	if (c && c->ops)
		return c->ops->next_size(c, timeout_ns);
	int rc = mproc__conn_begin(c, true);
	if (rc)
		return rc;
	if (timeout_ns < -1)
		return -EINVAL;
	struct mproc__lazy_deadline u;
	struct rx_rec r;
	if (c->rx_active) {
		/* Part of a message is here already: it is the next one,
		 * unless what follows in the ring ends it. */
		mproc__lazy_init(&u, MPROC_NOWAIT);
		rc = rx_front(c, &u, &r);
		if (rc == -EAGAIN && c->rx_active)
			return (ssize_t)c->rx_total;
		if (rc == 0) {
			mproc__ring_unpeek(&c->rx, 0);
			return (ssize_t)r.total;
		}
		if (rc != -EAGAIN)
			return rc;
	}
	mproc__lazy_init(&u, timeout_ns);
	rc = rx_front(c, &u, &r);
	if (rc)
		return rc;
	mproc__ring_unpeek(&c->rx, 0);
	return (ssize_t)r.total;
}

MPROC_API ssize_t mproc_conn_dropped(const mproc_conn *c)
{
	if (!c)
		return -EINVAL;
	if (c->closed)
		return -EBADF;
	return (ssize_t)c->rx_dropped;
}

/* ------------------------------------------------------------------ */
/* Readiness                                                           */

MPROC_API int mproc_conn_poll(mproc_conn *c, int64_t timeout_ns)
{
	if (c && c->ops)
		return c->ops->poll(c, timeout_ns);
	int rc = mproc__conn_begin(c, true);
	if (rc)
		return rc;
	if (timeout_ns < -1)
		return -EINVAL;
	struct mproc__lazy_deadline u;
	mproc__lazy_init(&u, timeout_ns);
	struct rx_rec r;
	rc = rx_front(c, &u, &r);
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
	if (c && c->ops)
		return c->ops->fileno(c);
	int rc = mproc__conn_begin(c, true);
	if (rc)
		return rc;
	mproc__note_arm(c);
	return c->res->efd[c->end];
}
