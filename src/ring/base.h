/*
 * Internal: what the SPSC and MPMC rings share, below ring.h (which
 * includes both): the close flags.  Only src/ring includes this directly.
 */
#ifndef MPROC_RING_BASE_H
#define MPROC_RING_BASE_H

/* Close flags (the closed word of either ring).  The MPMC ring has one
 * closed state, stored as MPROC__RING_WR_CLOSED (see mpmc.h). */
#define MPROC__RING_WR_CLOSED 1u /* producer side closed: EOF after drain */
#define MPROC__RING_RD_CLOSED 2u /* consumer side closed: puts get EPIPE */

#endif /* MPROC_RING_BASE_H */
