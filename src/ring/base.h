/*
 * Internal: what the SPSC and MPMC rings share, below ring.h (which
 * includes both): the close flags, the geometry of a ring, and the
 * adapter that runs a caller's liveness hook inside a ring's wait.  Only
 * src/ring includes this file directly.
 */
#ifndef MPROC_RING_BASE_H
#define MPROC_RING_BASE_H

#include <stdint.h>

#include "shm/futex.h"

/* Close flags (the closed word of either ring).  The MPMC ring has one
 * closed state, stored as MPROC__RING_WR_CLOSED (see mpmc.h). */
#define MPROC__RING_WR_CLOSED 1u /* producer side closed: EOF after drain */
#define MPROC__RING_RD_CLOSED 2u /* consumer side closed: puts get EPIPE */

/* The shape of one ring, as its user stores it in a segment's geometry
 * words (and validates it with mproc__ring_check before trusting it). */
struct mproc__ring_geom {
	uint64_t size;        /* SPSC: ring bytes; MPMC: slot count */
	uint64_t max_payload; /* largest message a view accepts */
	uint64_t stride;      /* MPMC: bytes per slot; SPSC: 0 */
};

/* A wait's liveness hook.  Each ring's wait state starts with one, so the
 * same callback serves every wait of both rings (mproc__event_wait hands
 * it the wait state). */
struct mproc__ring_alive {
	mproc__alive_fn fn; /* NULL: no check */
	void *arg;
};

static inline int mproc__ring_alive_check(void *wait_state)
{
	const struct mproc__ring_alive *a = wait_state;
	return a->fn ? a->fn(a->arg) : 0;
}

#endif /* MPROC_RING_BASE_H */
