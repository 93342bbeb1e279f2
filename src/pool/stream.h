/*
 * Internal: messages of any size over one SPSC ring of the pool, as a run
 * of records in which every record but the last carries
 * MPROC__RING_REC_MORE (proto.h).
 *
 * Sending is a resumable copy: pool_tx_push moves as much of the message
 * as fits now and returns, so the pool thread never blocks on one worker;
 * a worker that wants to block calls pool_tx_send.  The bytes come from a
 * fill callback, so a task's items go straight from the caller's arrays
 * into the ring without an intermediate buffer.
 *
 * Receiving: pool_rx_next returns a whole message, pointing into the ring
 * when it fits one record (no copy; pool_rx_done then releases it) or
 * into the receiver's reassembly buffer, which is reused from message to
 * message and grows only when a larger one comes.
 */
#ifndef MPROC_POOL_STREAM_H
#define MPROC_POOL_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ring/ring.h"

/* Copy up to @cap bytes of the message, starting at byte @off, to @dst;
 * return how many (at least 1 while @off < total). */
typedef size_t (*pool_fill_fn)(void *ctx, uint64_t off, void *dst, size_t cap);

struct pool_tx {
	uint64_t total; /* message bytes */
	uint64_t sent;  /* bytes already in the ring */
	pool_fill_fn fill;
	void *ctx;
};

/* Start a message of @total bytes (> 0). */
static inline void pool_tx_start(struct pool_tx *tx, uint64_t total,
				 pool_fill_fn fill, void *ctx)
{
	tx->total = total;
	tx->sent = 0;
	tx->fill = fill;
	tx->ctx = ctx;
}

/* Push what fits now, without blocking.  Returns 1 when the whole message
 * is in the ring, 0 when the ring is full (call again after the consumer
 * made room), or -EPIPE / -MPROC_ECORRUPT from the ring.  The records are
 * committed, not published: the caller publishes (mproc__ring_publish)
 * once for a batch of messages. */
int pool_tx_push(struct mproc__ring *r, struct pool_tx *tx);

/* Send the whole message, waiting for room as long as @alive allows;
 * before each wait it publishes and calls @blocked(@blocked_arg) (to tell
 * the consumer).  Returns 0, -EPIPE, -MPROC_ECORRUPT or @alive's error.
 * The end of the message is committed, not published. */
int pool_tx_send(struct mproc__ring *r, struct pool_tx *tx,
		 mproc__alive_fn alive, void *alive_arg,
		 void (*blocked)(void *), void *blocked_arg);

/* A fill callback for a message that is one contiguous buffer (ctx). */
size_t pool_fill_flat(void *ctx, uint64_t off, void *dst, size_t cap);

struct pool_rx {
	unsigned char *buf; /* reassembly buffer (malloc'd) */
	uint64_t len;       /* bytes of the message gathered so far */
	uint64_t cap;
	uint64_t limit;     /* largest message accepted */
	bool zero_copy;     /* the message returned points into the ring */
	uint64_t token;
	uint64_t fragments; /* MORE fragments released since the last call */
	int skip_err;       /* why the message being skipped is skipped */
	unsigned char head[64]; /* first bytes of the last message started,
				 * readable after a skip error */
};

/* Next whole message, without blocking.  Returns 1 with *@msg / *@len
 * (8-byte aligned; valid until pool_rx_done), 0 when no whole message is
 * there yet, -MPROC_EEOF when the ring is closed and drained, -ENOMEM
 * (the reassembly buffer could not grow: the message is skipped and the
 * next call goes on after it), -EMSGSIZE (longer than rx->limit: skipped
 * likewise), or -MPROC_ECORRUPT. */
int pool_rx_next(struct mproc__ring *r, struct pool_rx *rx, const void **msg,
		 uint64_t *len);

/* Release the message returned by pool_rx_next. */
void pool_rx_done(struct mproc__ring *r, struct pool_rx *rx);

/* Drop a half-gathered message (the sender died) and free the buffer. */
void pool_rx_reset(struct pool_rx *rx);
void pool_rx_free(struct pool_rx *rx);

#endif /* MPROC_POOL_STREAM_H */
