/*
 * bench_mpi.h - what the MPI rows of the "pool" suite share
 * (mproc_pool_mpi.c, base_python_mpi.c): starting a program under
 * mpiexec with a head and two agents on this machine, and reading its
 * "NAME=VALUE" lines back.
 */
#ifndef MPROC_BENCH_MPI_H
#define MPROC_BENCH_MPI_H

#include <stdbool.h>
#include <stddef.h>

#include "bench.h"

/* Ranks of every MPI row: the head and two agents (workers). */
#define BENCH_MPI_RANKS 3

/* The launcher's command prefix ("mpiexec [flags] -n 3") into @out, with
 * the environment Open MPI needs as root set in this process: $MPIEXEC,
 * else (@own) the launcher of the MPI mproc was built against
 * (BENCH_MPIEXEC, from meson), else the first of mpiexec, mpiexec.mpich,
 * mpiexec.openmpi in PATH.  Returns 0, or BENCH_SKIP with why in @why
 * (no launcher). */
int bench_mpi_launcher(bool own, char *out, size_t len, char *why,
		       size_t why_len);

/* Run the shell command @cmd (stderr joined to stdout), give up after
 * @timeout_s, and read its "NAME=VALUE" lines into @s as
 * bench_python_run does.  Returns 0 or a negative errno (with the last
 * line of the output in the note). */
int bench_mpi_run(const char *cmd, int timeout_s, struct bench_sample *s);

#endif /* MPROC_BENCH_MPI_H */
