/*
 * Internal: the pool's read-only describer for mproc-stat (inspect.c),
 * over the segment layout of proto.h and layout.c.
 */
#ifndef MPROC_POOL_INSPECT_H
#define MPROC_POOL_INSPECT_H

#include "ring/inspect.h"
#include "shm/inspect.h"

/* Describe the pool in the read-only view @v (ring/inspect.h): per worker
 * slot its cell (pid, the chunk it runs) and its task and result rings,
 * named "task N" and "result N"; the pool thread's doorbell.  Returns 0,
 * -EPROTOTYPE (not a pool), -MPROC_ECORRUPT or -ENOMEM. */
int mproc__pool_describe(const struct mproc__shm_view *v,
			 struct mproc__seg_info *out);

#endif /* MPROC_POOL_INSPECT_H */
