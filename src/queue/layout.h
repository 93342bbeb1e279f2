/*
 * Internal: the layout of a queue segment, shared by the Queue API
 * (queue.c) and its read-only describer for mproc-stat (inspect.c), so
 * that the layout is written down once.
 *
 * Data area: a control block (struct queue_ctl: the JoinableQueue counter
 * and its event), the ring's shared indices at RING_SH_OFF, then the ring
 * bytes (SPSC) or slots (MPMC) at buf_off(kind), all cache-line aligned.
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
};
/* Queue flags kept in the segment (the rest are per handle). */
#define STORED_FLAGS MPROC_QUEUE_JOINABLE
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
