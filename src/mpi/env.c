/* The launcher's environment (env.h). */
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>

#include "common/parse.h"
#include "mpi/env.h"

/* The first of @names set to a number in [0, INT_MAX], or -1. */
static int env_int(const char *const *names)
{
	for (; *names; names++) {
		const char *v = getenv(*names);
		uint64_t n;
		if (v && mproc__parse_u64(&v, INT_MAX, &n) == 0 && *v == '\0')
			return (int)n;
	}
	return -1;
}

int mproc__mpi_env_rank(void)
{
	static const char *const names[] = { "OMPI_COMM_WORLD_RANK", "PMI_RANK",
					     "PMIX_RANK", NULL };
	return env_int(names);
}

int mproc__mpi_env_size(void)
{
	static const char *const names[] = { "OMPI_COMM_WORLD_SIZE", "PMI_SIZE",
					     NULL };
	return env_int(names);
}

int mproc__mpi_env_local_agents(void)
{
	static const char *const lsize[] = { "OMPI_COMM_WORLD_LOCAL_SIZE",
					     "MPI_LOCALNRANKS", NULL };
	static const char *const lrank[] = { "OMPI_COMM_WORLD_LOCAL_RANK",
					     "MPI_LOCALRANKID", NULL };
	int size = env_int(lsize), local = env_int(lrank);
	int rank = mproc__mpi_env_rank();
	if (size <= 0)
		return 1;
	/* Launchers place ranks on a node in a run by default, so the node
	 * whose first rank is 0 holds the head. */
	if (local >= 0 && rank >= local && rank - local == 0)
		size--;
	return size > 0 ? size : 1;
}
