/*
 * Internal: the layout of a queue segment, shared by the Queue API
 * (queue.c) and its read-only describer for mproc-stat (inspect.c), so
 * that the layout is written down once.
 *
 * Data area: a control block (struct queue_ctl: the JoinableQueue counter
 * and its event), the ring's shared indices at RING_SH_OFF, then the ring
 * bytes (SPSC) or slots (MPMC) at buf_off(kind), and with
 * MPROC_QUEUE_WATCH_PRODUCERS the producer table (struct queue_producers)
 * after them, all cache-line aligned.
 * The geometry words (GEOM_*) are validated on open against the data
 * area's size (mproc__queue_validate_geom), and every address either file
 * computes comes from that validated private copy.
 */
#ifndef MPROC_QUEUE_LAYOUT_H
#define MPROC_QUEUE_LAYOUT_H

#include <stdint.h>

#include "mproc/queue.h"
#include "mproc/shm.h"
#include "ring/inspect.h"
#include "ring/ring.h"
#include "shm/inspect.h"

enum {
	GEOM_RING = 0,    /* MPROC__RING_SPSC or MPROC__RING_MPMC */
	GEOM_SIZE = 1,    /* SPSC: ring bytes; MPMC: slot count */
	GEOM_MAX_MSG = 2, /* largest message */
	GEOM_STRIDE = 3,  /* MPMC slot stride; 0 for SPSC */
	GEOM_FLAGS = 4,   /* MPROC_QUEUE_JOINABLE */
	GEOM_BUF_OFF = 5, /* offset of the ring bytes / slots in the data area */
	GEOM_PRODUCERS = 6, /* offset of struct queue_producers, or 0 */
};
/* Queue flags kept in the segment (the rest are per handle). */
#define STORED_FLAGS (MPROC_QUEUE_JOINABLE | MPROC_QUEUE_WATCH_PRODUCERS)
#define MAX_CAPACITY (UINT64_C(1) << 40)

struct queue_ctl {
	_Atomic uint64_t unfinished mproc__aligned_cl; /* JoinableQueue */
	/* Set once by mproc_queue_shutdown(q, true), never cleared: what is
	 * queued counts as discarded.  Read (acquire) by every get, on a
	 * line that is written only then, so it stays in each reader's
	 * cache; pairs with the release store in shutdown. */
	_Atomic uint32_t discarded;
	struct mproc__event all_done mproc__aligned_cl;
};

/* The ring's shared indices start right after the control block; the
 * ring bytes after those, both cache-line aligned. */
#define RING_SH_OFF ((uint64_t)sizeof(struct queue_ctl))

static inline uint64_t buf_off(int kind)
{
	return RING_SH_OFF + mproc__ring_shared_size(kind);
}

/*
 * The producer table of a queue made with MPROC_QUEUE_WATCH_PRODUCERS
 * (producers.c): which processes ever put into the queue, so that a
 * consumer waiting on an empty queue can tell when all of them have died.
 *
 * Invariants:
 *   P1  ident[i] is 0 (free) or the identity (common/os.h: pid and start
 *       time) of a process that registered as a producer.  An entry is
 *       written only by a CAS from 0 or from the identity of a process
 *       that has ended, so a live producer's entry is never lost, and an
 *       entry is never a mix of two identities.
 *   P2  A process registers before its first reserve in this queue, so
 *       every message was put by a process named in the table, unless
 *       overflow is set.
 *   P3  ever and overflow only go from 0 to 1.  ever = 1 means some
 *       process registered; overflow = 1 means some producer could not
 *       be named (table full of live producers, or /proc could not tell
 *       its identity), so nobody can conclude that all producers died.
 *
 * Ordering (Q1, Q2):
 *   Q1  A producer's entry CAS happens before its store of ever (both
 *       seq_cst), and ever/overflow before its first reserve: a consumer
 *       that loads ever == 1 (acquire) sees that producer's entry or a
 *       later one.
 *   Q2  A consumer that found every entry dead looks at the ring once
 *       more before it reports -MPROC_EPEERDIED, so a message put before
 *       its producer died is delivered first.  A producer that registers
 *       after the consumer's scan is a late one: its messages go to the
 *       gets after it (queue.h).
 *
 * Everything read here comes from shared memory and may be hostile: an
 * entry is only ever passed to mproc__proc_ident_alive, which accepts any
 * value, and the table's size is this constant, never read from it.
 */
#define QUEUE_PRODUCERS 64

struct queue_producers {
	_Atomic uint32_t ever;
	_Atomic uint32_t overflow;
	_Atomic uint64_t ident[QUEUE_PRODUCERS];
} mproc__aligned_cl;

/* Where the producer table of a queue whose ring buffer holds @buf_size
 * bytes starts in the data area (cache-line aligned). */
static inline uint64_t producers_off(int kind, uint64_t buf_size)
{
	uint64_t end = buf_off(kind) + buf_size;
	return (end + MPROC_CACHELINE - 1) & ~(uint64_t)(MPROC_CACHELINE - 1);
}

/* producers.c: register this process as a producer (P2).  Cannot fail:
 * a producer that cannot be named sets overflow (P3).  Reads /proc: call
 * once per process and handle (mproc_queue keeps the pid it registered
 * as). */
void mproc__queue_producer_register(struct queue_producers *t);
/* producers.c: the consumer's liveness hook (ring.h's mproc__alive_fn):
 * 0 while some registered producer may live (or none ever registered, or
 * one could not be named), -MPROC_EPEERDIED once every one has ended. */
int mproc__queue_producers_alive(void *table);

static inline void geom_get(const uint64_t g[MPROC_SHM_GEOM_WORDS],
			    struct mproc__ring_geom *rg)
{
	rg->size = g[GEOM_SIZE];
	rg->max_payload = g[GEOM_MAX_MSG];
	rg->stride = g[GEOM_STRIDE];
}

/* The kind-specific check run by mproc_shm_open/import (shm.h): the
 * geometry words against @data_size.  Returns 0 or -MPROC_ECORRUPT. */
int mproc__queue_validate_geom(const uint64_t g[MPROC_SHM_GEOM_WORDS],
			       uint64_t data_size, void *ctx);

/* Describe the queue in the read-only view @v for mproc-stat
 * (ring/inspect.h).  Returns 0, -EPROTOTYPE (not a queue),
 * -MPROC_ECORRUPT (geometry rejected) or -ENOMEM. */
int mproc__queue_describe(const struct mproc__shm_view *v,
			  struct mproc__seg_info *out);

#endif /* MPROC_QUEUE_LAYOUT_H */
