/*
 * Internal: what an MPI launcher tells a rank through its environment,
 * read before MPI is initialised (an agent starts its local pool first,
 * and the head sizes its pool at create).  Open MPI sets OMPI_COMM_WORLD_*,
 * MPICH's Hydra PMI_RANK / PMI_SIZE and MPI_LOCALRANKID /
 * MPI_LOCALNRANKS, PMIx-based launchers PMIX_RANK.
 */
#ifndef MPROC_MPI_ENV_H
#define MPROC_MPI_ENV_H

/* This rank's number, or -1 when no launcher started us. */
int mproc__mpi_env_rank(void);
/* The job's rank count, or -1 when unknown. */
int mproc__mpi_env_size(void);
/* Agents running on this node (ranks on it, less the head when it shares
 * the node), at least 1. */
int mproc__mpi_env_local_agents(void);

#endif /* MPROC_MPI_ENV_H */
