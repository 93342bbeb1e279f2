/*
 * The registry of start methods and the contexts over them: which method a
 * context (or the default) stands for, and every method in turn.
 */
#ifndef MPROC_PROCESS_CONTEXT_H
#define MPROC_PROCESS_CONTEXT_H

#include <stdbool.h>
#include <stddef.h>

#include "mproc/process.h"

struct mproc__proc_method;

/* The method of @ctx; NULL means the default, which this fixes. */
const struct mproc__proc_method *
mproc__proc_context_method(const mproc_context *ctx);
/* The method of @ctx without fixing the default (NULL if not fixed). */
const struct mproc__proc_method *
mproc__proc_context_method_peek(const mproc_context *ctx);
/* Whether @ctx is the "mpi" context (a pool over MPI, src/mpi/). */
bool mproc__proc_context_is_mpi(const mproc_context *ctx);
/* The @i-th start method, the default first; NULL past the last. */
const struct mproc__proc_method *mproc__proc_method_at(size_t i);

#endif /* MPROC_PROCESS_CONTEXT_H */
