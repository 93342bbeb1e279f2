/*
 * Start methods and contexts.  There are three contexts, one per method,
 * static and never freed, so a context pointer can be stored anywhere.
 * The default context is not an object of its own: a NULL context means
 * "the default method", which is fixed the first time it is used or set,
 * as Python's DefaultContext fixes its actual context.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stddef.h>
#include <string.h>

#include "process/internal.h"

static mproc_context contexts[] = {
	{ MPROC__METHOD_FORK, "fork" },
	{ MPROC__METHOD_SPAWN, "spawn" },
	{ MPROC__METHOD_FORKSERVER, "forkserver" },
};

#define DEFAULT_METHOD MPROC__METHOD_FORK

/* MPROC__METHOD_NONE until fixed.  Only compare-and-swap and plain stores
 * change it; no other data hangs off it, so relaxed ordering is enough. */
static _Atomic int default_method = MPROC__METHOD_NONE;

const char *mproc__method_name(int method)
{
	for (size_t i = 0; i < sizeof(contexts) / sizeof(contexts[0]); i++)
		if (contexts[i].method == method)
			return contexts[i].name;
	return NULL;
}

static mproc_context *lookup(const char *name)
{
	for (size_t i = 0; i < sizeof(contexts) / sizeof(contexts[0]); i++)
		if (!strcmp(contexts[i].name, name))
			return &contexts[i];
	return NULL;
}

static int fix_default(void)
{
	int m = atomic_load_explicit(&default_method, memory_order_relaxed);
	if (m != MPROC__METHOD_NONE)
		return m;
	int expected = MPROC__METHOD_NONE;
	if (atomic_compare_exchange_strong_explicit(&default_method, &expected,
						    DEFAULT_METHOD,
						    memory_order_relaxed,
						    memory_order_relaxed))
		return DEFAULT_METHOD;
	return expected; /* another thread fixed it first */
}

int mproc__context_method(const mproc_context *ctx)
{
	return ctx ? ctx->method : fix_default();
}

int mproc__context_method_peek(const mproc_context *ctx)
{
	if (ctx)
		return ctx->method;
	return atomic_load_explicit(&default_method, memory_order_relaxed);
}

MPROC_API int mproc_set_start_method(const char *method, int force)
{
	int m = MPROC__METHOD_NONE;
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
	int expected = MPROC__METHOD_NONE;
	if (!atomic_compare_exchange_strong_explicit(&default_method, &expected,
						     m, memory_order_relaxed,
						     memory_order_relaxed))
		return -EBUSY;
	return 0;
}

MPROC_API const char *mproc_get_start_method(int allow_none)
{
	int m = atomic_load_explicit(&default_method, memory_order_relaxed);
	if (m == MPROC__METHOD_NONE) {
		if (allow_none)
			return NULL;
		m = fix_default();
	}
	return mproc__method_name(m);
}

MPROC_API int mproc_get_all_start_methods(const char **names, size_t max)
{
	static const int order[] = { MPROC__METHOD_FORK, MPROC__METHOD_SPAWN,
				     MPROC__METHOD_FORKSERVER };
	size_t n = sizeof(order) / sizeof(order[0]);
	if (max > 0 && !names)
		return -EINVAL;
	for (size_t i = 0; i < n && i < max; i++)
		names[i] = mproc__method_name(order[i]);
	return (int)n;
}

MPROC_API int mproc_get_context(const char *method, mproc_context **out)
{
	if (!out)
		return -EINVAL;
	if (!method) {
		int m = fix_default();
		for (size_t i = 0; i < sizeof(contexts) / sizeof(contexts[0]); i++)
			if (contexts[i].method == m) {
				*out = &contexts[i];
				return 0;
			}
		return -EINVAL; /* unreachable: every method has a context */
	}
	mproc_context *c = lookup(method);
	if (!c)
		return -EINVAL;
	*out = c;
	return 0;
}

MPROC_API const char *mproc_context_get_start_method(const mproc_context *ctx)
{
	return ctx ? ctx->name : NULL;
}
