/*
 * Internal: the entries of the MPI transport that mproc_pool_mpi_main
 * (main.c) reaches -- an agent rank's loop, and the head's exit handler.
 */
#ifndef MPROC_MPI_AGENT_H
#define MPROC_MPI_AGENT_H

#include "mproc/pool.h"

/* Run this rank as an agent: start a local pool with @attr (NULL: the
 * defaults; processes 0: this node's CPUs shared among its agents), then
 * initialise MPI, serve the head's pool, and exit when it ends. */
_Noreturn void mproc__mpi_agent_main(const struct mproc_pool_attr *attr);

/* atexit on the head rank (head.c). */
void mproc__mpi_head_exit(void);

#endif /* MPROC_MPI_AGENT_H */
