/* Messages of any size over one SPSC ring of the pool (stream.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "pool/stream.h"

int pool_tx_push(struct mproc__ring *r, struct pool_tx *tx)
{
	uint64_t max = mproc__ring_max_payload(r);
	while (tx->sent < tx->total) {
		uint64_t left = tx->total - tx->sent;
		uint64_t n = left < max ? left : max;
		uint64_t token;
		void *p;
		int rc = mproc__ring_reserve(r, n, &token, &p);
		if (rc == -EAGAIN)
			break;
		if (rc < 0)
			return rc;
		uint64_t done = 0;
		while (done < n)
			done += tx->fill(tx->ctx, tx->sent + done,
					 (unsigned char *)p + done,
					 (size_t)(n - done));
		tx->sent += n;
		/* Committed records are visible to the consumer at once (the
		 * SPSC record tags, ring/spsc.h); the publish -- head store
		 * and wake-up -- is the caller's, once per batch. */
		mproc__ring_commit(r, token, n,
				   tx->sent < tx->total ? MPROC__RING_REC_MORE
							: 0,
				   false);
	}
	return tx->sent == tx->total ? 1 : 0;
}

int pool_tx_send(struct mproc__ring *r, struct pool_tx *tx,
		 mproc__alive_fn alive, void *alive_arg,
		 void (*blocked)(void *), void *blocked_arg)
{
	struct mproc__deadline forever;
	mproc__deadline_init(&forever, -1);
	uint64_t max = mproc__ring_max_payload(r);
	for (;;) {
		int rc = pool_tx_push(r, tx);
		if (rc != 0)
			return rc < 0 ? rc : 0;
		/* Full: what is committed must reach the consumer before we
		 * wait for it to make room. */
		mproc__ring_publish(r);
		blocked(blocked_arg);
		uint64_t left = tx->total - tx->sent;
		rc = mproc__ring_wait_space(r, left < max ? left : max,
					    &forever, alive, alive_arg);
		if (rc < 0)
			return rc;
	}
}

size_t pool_fill_flat(void *ctx, uint64_t off, void *dst, size_t cap)
{
	memcpy(dst, (const unsigned char *)ctx + off, cap);
	return cap;
}

/* Make room for @need bytes in the reassembly buffer. */
static int rx_grow(struct pool_rx *rx, uint64_t need)
{
	if (need <= rx->cap)
		return 0;
	uint64_t cap = rx->cap ? rx->cap : 4096;
	while (cap < need)
		cap *= 2;
	void *p = realloc(rx->buf, (size_t)cap);
	if (!p)
		return -ENOMEM;
	rx->buf = p;
	rx->cap = cap;
	return 0;
}

/* rx->len == UINT64_MAX marks a message being skipped to its end. */
#define RX_SKIPPING UINT64_MAX

int pool_rx_next(struct mproc__ring *r, struct pool_rx *rx, const void **msg,
		 uint64_t *len)
{
	rx->fragments = 0;
	for (;;) {
		uint64_t token, n;
		const void *p;
		uint32_t flags;
		int rc = mproc__ring_peek(r, UINT64_MAX, &token, &p, &n, &flags);
		if (rc == -EAGAIN)
			return 0;
		if (rc < 0)
			return rc;
		bool more = flags & MPROC__RING_REC_MORE;
		if (rx->len == 0) {
			size_t h = n < sizeof(rx->head) ? (size_t)n
							 : sizeof(rx->head);
			memset(rx->head, 0, sizeof(rx->head));
			memcpy(rx->head, p, h);
		}
		if (rx->len == 0 && !more) {
			/* The whole message in one record: hand it out in
			 * place.  Ring payloads are 16-byte aligned. */
			if (n > rx->limit) {
				mproc__ring_release(r, token, true);
				return -EMSGSIZE;
			}
			rx->zero_copy = true;
			rx->token = token;
			*msg = p;
			*len = n;
			return 1;
		}
		if (rx->len != RX_SKIPPING) {
			int err = rx->len + n > rx->limit ? -EMSGSIZE
							  : rx_grow(rx, rx->len + n);
			if (err) {
				rx->len = RX_SKIPPING;
				rx->skip_err = err;
			} else {
				memcpy(rx->buf + rx->len, p, (size_t)n);
				rx->len += n;
			}
		}
		mproc__ring_release(r, token, true);
		if (more) {
			rx->fragments++;
			continue;
		}
		if (rx->len == RX_SKIPPING) {
			rx->len = 0;
			return rx->skip_err;
		}
		rx->zero_copy = false;
		*msg = rx->buf;
		*len = rx->len;
		return 1;
	}
}

void pool_rx_done(struct mproc__ring *r, struct pool_rx *rx)
{
	if (rx->zero_copy) {
		rx->zero_copy = false;
		mproc__ring_release(r, rx->token, true);
	} else {
		rx->len = 0;
	}
}

void pool_rx_reset(struct pool_rx *rx)
{
	rx->len = 0;
	rx->zero_copy = false;
}

void pool_rx_free(struct pool_rx *rx)
{
	free(rx->buf);
	rx->buf = NULL;
	rx->cap = rx->len = 0;
	rx->zero_copy = false;
}
