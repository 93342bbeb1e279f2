/*
 * Internal: how a pool comes to run over MPI.  mproc_pool_create, given
 * the "mpi" context, asks mproc__mpi_plan for the pool's shape and its
 * transport (head.c: one slot per agent rank, "The transport seam" of
 * pool/internal.h); everything after that goes through the transport's
 * ops.  Without MPI support the plan fails with -ENOTSUP (and the "mpi"
 * context does not exist, so it is never asked).
 */
#ifndef MPROC_MPI_HOOKS_H
#define MPROC_MPI_HOOKS_H

#include <errno.h>

#include "mproc/pool.h"

#ifdef MPROC_HAVE_MPI
/* After the pool's own plan: check @a for what the transport honours,
 * size the pool (a slot per agent) and set its transport.  Returns 0,
 * -ENOTSUP (an attribute the transport cannot honour), -ESRCH (not
 * started by an MPI launcher with an agent rank), -EPROTO (called on an
 * agent rank), -EALREADY (this program already had its MPI pool),
 * -EINVAL (too many agents), -ENOMEM. */
int mproc__mpi_plan(mproc_pool *p, const struct mproc_pool_attr *a);
#else
static inline int mproc__mpi_plan(mproc_pool *p,
				  const struct mproc_pool_attr *a)
{
	(void)p;
	(void)a;
	return -ENOTSUP;
}
#endif

#endif /* MPROC_MPI_HOOKS_H */
