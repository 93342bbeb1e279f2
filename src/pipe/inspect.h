/*
 * Internal: what mproc-stat needs from the pipe module: the geometry check
 * that mproc_conn_import runs (pipe.c), and a read-only describer of a
 * pipe segment (inspect.c) over the layout in conn.h.
 */
#ifndef MPROC_PIPE_INSPECT_H
#define MPROC_PIPE_INSPECT_H

#include <stdint.h>

#include "mproc/shm.h"
#include "ring/inspect.h"
#include "shm/inspect.h"

/* The kind-specific check of a pipe segment's geometry words against
 * @data_size.  Returns 0 or -MPROC_ECORRUPT. */
int mproc__pipe_validate_geom(const uint64_t g[MPROC_SHM_GEOM_WORDS],
			      uint64_t data_size, void *ctx);

/* Describe the pipe in the read-only view @v (ring/inspect.h): one ring
 * per direction, named "a<-b" (ring 0) and "b<-a" (ring 1), the state of
 * each end and its owner.  Returns 0, -EPROTOTYPE (not a pipe),
 * -MPROC_ECORRUPT or -ENOMEM. */
int mproc__pipe_describe(const struct mproc__shm_view *v,
			 struct mproc__seg_info *out);

#endif /* MPROC_PIPE_INSPECT_H */
