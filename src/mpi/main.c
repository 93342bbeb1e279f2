/*
 * mproc_pool_mpi_main: how a program declares that it runs a pool over
 * MPI, and how its agent ranks leave main() for the agent's loop.  A
 * program that calls plain mproc_main is never turned into an agent, so
 * an ordinary mproc program started under mpiexec (as several
 * independent copies) behaves as it always did.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "mpi/env.h"
#include "mproc/pool.h"
#include "mproc/process.h"
#ifdef MPROC_HAVE_MPI
#include "mpi/agent.h"
#endif

MPROC_API int mproc_pool_mpi_main(int argc, char **argv,
				  const struct mproc_pool_attr *agent_attr)
{
	/* Re-executed images (spawn children, the forkserver) never come
	 * back from here, whatever rank they inherited in the environment. */
	int rc = mproc_main(argc, argv);
	if (rc)
		return rc;
	int rank = mproc__mpi_env_rank();
#ifdef MPROC_HAVE_MPI
	if (rank > 0)
		mproc__mpi_agent_main(agent_attr);
	if (rank == 0 && atexit(mproc__mpi_head_exit) != 0)
		return -ENOMEM;
	return 0;
#else
	(void)agent_attr;
	if (rank > 0) {
		fprintf(stderr, "mproc: this library was built without MPI; "
				"rank %d cannot serve as a pool agent\n", rank);
		return -ENOTSUP;
	}
	return 0;
#endif
}
