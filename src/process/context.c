/*
 * Start methods and contexts.  This file is the registry of the methods:
 * one context per method, static and never freed, so a context pointer
 * can be stored anywhere, and every other file reaches the methods
 * through it or through a process's method pointer.  The default context
 * is not an object of its own: a NULL context means "the default method",
 * which is fixed the first time it is used or set, as Python's
 * DefaultContext fixes its actual context.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include "process/context.h"
#include "process/method.h"

struct mproc_context {
	const struct mproc__proc_method *method;
};

/* The default method first: mproc_get_all_start_methods lists them in
 * this order. */
static mproc_context contexts[] = {
	{ &mproc__proc_fork_method },
	{ &mproc__proc_spawn_method },
	{ &mproc__proc_forkserver_method },
};

#define NCONTEXTS (sizeof(contexts) / sizeof(contexts[0]))

/* The "mpi" context is not a start method: it marks a pool that runs over
 * MPI (src/mpi/).  Processes, queues and pipes created through it, and
 * the zygote of such a pool on the head rank, start by fork.  It exists
 * only in a library built with MPI. */
#ifdef MPROC_HAVE_MPI
static mproc_context mpi_context = { &mproc__proc_fork_method };
#endif

bool mproc__proc_context_is_mpi(const mproc_context *ctx)
{
#ifdef MPROC_HAVE_MPI
	return ctx == &mpi_context;
#else
	(void)ctx;
	return false;
#endif
}

#define DEFAULT_METHOD (&mproc__proc_fork_method)

/* NULL until fixed.  Only compare-and-swap and plain stores change it; it
 * points at constant data, and no other data hangs off it, so relaxed
 * ordering is enough. */
static _Atomic(const struct mproc__proc_method *) default_method;

const struct mproc__proc_method *mproc__proc_method_at(size_t i)
{
	return i < NCONTEXTS ? contexts[i].method : NULL;
}

static mproc_context *lookup(const char *name)
{
	for (size_t i = 0; i < NCONTEXTS; i++)
		if (!strcmp(contexts[i].method->name, name))
			return &contexts[i];
	return NULL;
}

static const struct mproc__proc_method *fix_default(void)
{
	const struct mproc__proc_method *m =
		atomic_load_explicit(&default_method, memory_order_relaxed);
	if (m)
		return m;
	const struct mproc__proc_method *expected = NULL;
	if (atomic_compare_exchange_strong_explicit(&default_method, &expected,
						    DEFAULT_METHOD,
						    memory_order_relaxed,
						    memory_order_relaxed))
		return DEFAULT_METHOD;
	return expected; /* another thread fixed it first */
}

const struct mproc__proc_method *
mproc__proc_context_method(const mproc_context *ctx)
{
	return ctx ? ctx->method : fix_default();
}

const struct mproc__proc_method *
mproc__proc_context_method_peek(const mproc_context *ctx)
{
	if (ctx)
		return ctx->method;
	return atomic_load_explicit(&default_method, memory_order_relaxed);
}

MPROC_API int mproc_set_start_method(const char *method, bool force)
{
	const struct mproc__proc_method *m = NULL;
	if (method) {
		mproc_context *c = lookup(method);
		if (!c)
			return -EINVAL;
		m = c->method;
	} else if (!force) {
		return -EINVAL;
	}
	if (force) {
		atomic_store_explicit(&default_method, m, memory_order_relaxed);
		return 0;
	}
	const struct mproc__proc_method *expected = NULL;
	if (!atomic_compare_exchange_strong_explicit(&default_method, &expected,
						     m, memory_order_relaxed,
						     memory_order_relaxed))
		return -EBUSY;
	return 0;
}

MPROC_API const char *mproc_get_start_method(bool allow_none)
{
	const struct mproc__proc_method *m =
		atomic_load_explicit(&default_method, memory_order_relaxed);
	if (!m) {
		if (allow_none)
			return NULL;
		m = fix_default();
	}
	return m->name;
}

MPROC_API int mproc_get_all_start_methods(const char **names, size_t max)
{
	if (max > 0 && !names)
		return -EINVAL;
	for (size_t i = 0; i < NCONTEXTS && i < max; i++)
		names[i] = contexts[i].method->name;
	return (int)NCONTEXTS;
}

MPROC_API int mproc_get_context(const char *method, mproc_context **out)
{
	if (!out)
		return -EINVAL;
	if (!method) {
		const struct mproc__proc_method *m = fix_default();
		for (size_t i = 0; i < NCONTEXTS; i++)
			if (contexts[i].method == m) {
				*out = &contexts[i];
				return 0;
			}
		return -EINVAL; /* unreachable: every method has a context */
	}
	if (!strcmp(method, "mpi")) {
#ifdef MPROC_HAVE_MPI
		*out = &mpi_context;
		return 0;
#else
		return -ENOTSUP;
#endif
	}
	mproc_context *c = lookup(method);
	if (!c)
		return -EINVAL;
	*out = c;
	return 0;
}

MPROC_API const char *mproc_context_get_start_method(const mproc_context *ctx)
{
	return ctx ? ctx->method->name : NULL;
}
