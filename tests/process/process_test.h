/*
 * Shared helpers of the process tests: run a target under a named start
 * method and collect its exit code, and a few targets used by several
 * files.  Targets report through their exit code (0 = all checks passed),
 * never through Criterion asserts, which do not belong in a child.
 */
#ifndef MPROC_TEST_PROCESS_HELPERS_H
#define MPROC_TEST_PROCESS_HELPERS_H

#include <criterion/criterion.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "mproc.h"
#include "common/clock.h"

/* Suite .init: Criterion marks its test workers with BXFI_MAP, and its
 * runtime aborts any process that starts with that set; drop it so that
 * spawned children (which inherit the environment) start normally.  See
^ * process_main.c. */
static inline void forget_worker_marker(void)
{
	unsetenv("BXFI_MAP");
}

static const char *const all_methods[] = { "fork", "spawn", "forkserver" };
#define N_METHODS 3

static inline mproc_context *ctx_of(const char *method)
{
	mproc_context *ctx = NULL;
	cr_assert_eq(mproc_get_context(method, &ctx), 0, "context %s", method);
	return ctx;
}

/* Start target(arg) under @method, join without limit, return the exit
 * code (asserting that every step worked). */
static inline int run_target(const char *method, mproc_target_fn target,
			     const void *arg, size_t len)
{
	mproc_process *p;
	cr_assert_eq(mproc_process_create(ctx_of(method), target, arg, len, &p), 0);
	int rc = mproc_process_start(p);
	cr_assert_eq(rc, 0, "%s: start: %s", method, mproc_strerror(rc));
	cr_assert_eq(mproc_process_join(p, MPROC_FOREVER), 0);
	cr_assert_eq(mproc_process_is_alive(p), 0);
	int code = -1000;
	rc = mproc_process_exitcode(p, &code);
	cr_assert_eq(rc, 0, "%s: exitcode: %s", method, mproc_strerror(rc));
	mproc_process_free(p);
	return code;
}

/* Inside a child (no Criterion asserts there): start fn(arg) under the
 * method numbered @method in all_methods, join it, and return its exit
 * code, or 90 + the step that failed. */
static inline int run_in_child(int method, mproc_target_fn fn,
			       const void *arg, size_t len)
{
	mproc_context *ctx;
	mproc_process *p;
	if (mproc_get_context(all_methods[method], &ctx) ||
	    mproc_process_create(ctx, fn, arg, len, &p))
		return 91;
	int code = -1;
	if (mproc_process_start(p))
		code = 92;
	else if (mproc_process_join(p, MPROC_FOREVER) ||
		 mproc_process_exitcode(p, &code))
		code = 93;
	mproc_process_free(p);
	return code;
}

/* A target that runs until a signal ends it. */
static inline int sleep_forever(void *arg, size_t len)
{
	(void)arg;
	(void)len;
	for (;;)
		pause();
	return 0; /* not reached */
}

/* FNV-1a, to check argument bytes arrived intact. */
static inline uint32_t fnv1a(const void *buf, size_t len)
{
	const uint8_t *p = buf;
	uint32_t h = 2166136261u;
	for (size_t i = 0; i < len; i++)
		h = (h ^ p[i]) * 16777619u;
	return h;
}

#endif
