/*
 * Shared helpers of the pool tests: start methods and pools, scratch
 * directories with "gate" and "pid" files through which a test and its
 * tasks talk (plain files work the same under every start method, with no
 * assumption about which descriptors a worker inherits), polling with a
 * deadline instead of fixed sleeps, and the task functions that several
 * files use (pool_tasks.c).
 *
 * Task functions report through their result or their error code, never
 * through Criterion asserts, which do not belong in a worker.
 */
#ifndef MPROC_TEST_POOL_H
#define MPROC_TEST_POOL_H

#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/types.h>

#include "mproc.h"
#include "common/clock.h"

/* Suite .init: Criterion marks its test workers with BXFI_MAP, and its
 * runtime aborts any process that starts with that set; drop it so that
 * the pool's spawned zygote (which inherits the environment) starts as an
 * ordinary run of this binary and mproc_main() takes it.  See
 * pool_main.c. */
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

/* A pool of @processes workers under @method (NULL: the current one),
 * asserting that create worked. */
static inline mproc_pool *pool_new(const char *method, unsigned processes)
{
	struct mproc_pool_attr a;
	mproc_pool_attr_init(&a);
	a.ctx = method ? ctx_of(method) : NULL;
	a.processes = processes;
	mproc_pool *p = NULL;
	int rc = mproc_pool_create(&a, &p);
	cr_assert_eq(rc, 0, "pool create (%s, %u): %s", method ? method : "-",
		     processes, mproc_strerror(rc));
	cr_assert_not_null(p);
	return p;
}

/* Poll @cond every millisecond until it holds or @ms pass; evaluates to
 * whether it held.  For waiting on things that happen in other processes
 * or on the pool thread, never as a fixed sleep. */
#define POLL_UNTIL(cond, ms)                                                \
	({                                                                  \
		int64_t until_ = mproc__now_ns() + (int64_t)(ms) * MPROC_MSEC;  \
		bool ok_;                                                   \
		while (!(ok_ = (cond)) && mproc__now_ns() < until_)         \
			pt_sleep_ms(1);                                     \
		ok_;                                                        \
	})

void pt_sleep_ms(int ms);

/* ---- scratch files ------------------------------------------------------ */

/* A private directory under /tmp, removed (with its files) by
 * pt_tmpdir_free. */
struct pt_tmpdir {
	char path[64];
};
void pt_tmpdir_new(struct pt_tmpdir *d);
void pt_tmpdir_free(struct pt_tmpdir *d);

/* Argument of the file tasks: a path (NUL-terminated, inside the task's
 * argument bytes) and a number whose meaning depends on the task. */
struct pt_file_arg {
	int64_t n;
	char path[128];
};
/* Fill @a with @dir/@name and @n. */
void pt_file_arg(struct pt_file_arg *a, const struct pt_tmpdir *d,
		 const char *name, int64_t n);
/* Create the (empty) file @a->path: opens a gate. */
void pt_open_gate(const struct pt_file_arg *a);
/* The pid written by task_pidfile_block to @a->path, or 0 while there is
 * none yet. */
pid_t pt_read_pid(const struct pt_file_arg *a);
/* The pids, one per line, appended to @path (the initializer's log):
 * how many, up to @max. */
size_t pt_read_pids(const char *path, pid_t *pids, size_t max);

/* ---- processes ---------------------------------------------------------- */

/* True while @pid exists and is not a zombie (a zombie has stopped
 * running; only its exit status waits to be collected). */
bool pt_pid_running(pid_t pid);
/* True if @pid is among the pool's current workers. */
bool pt_is_worker(mproc_pool *pool, pid_t pid);
/* Every descendant of @pid (children, their children, ...), up to @max;
 * returns how many were found. */
size_t pt_descendants(pid_t pid, pid_t *out, size_t max);

/* ---- task functions (pool_tasks.c) -------------------------------------- */

/* Returns the uint64 square of a uint32 argument (-EINVAL for other
 * sizes). */
int task_square(mproc_task *t, const void *arg, size_t len);
/* Returns its argument bytes unchanged. */
int task_echo(mproc_task *t, const void *arg, size_t len);
/* Returns mproc_task_index as a uint64. */
int task_index(mproc_task *t, const void *arg, size_t len);
/* Fails with the negated int32 of its argument, with the message
 * "failed on purpose: N" (set through mproc_task_set_error). */
int task_fail(mproc_task *t, const void *arg, size_t len);
/* Succeeds with an empty result. */
int task_nothing(mproc_task *t, const void *arg, size_t len);

/* What task_whoami returns about the worker that runs it. */
struct pt_whoami {
	int32_t pid;
	int32_t init_calls; /* initializer runs in this process */
	int32_t init_pid;   /* getpid() the initializer saw */
	int32_t init_value; /* the int32 initarg it was given */
	int32_t tasks_here; /* task_whoami runs in this process, this one
			     * included */
	int32_t index;      /* mproc_task_index */
};
int task_whoami(mproc_task *t, const void *arg, size_t len);

/* The initializer of the initializer tests: arg is a pt_init_arg; it
 * appends "PID\n" to log (when set), remembers value, and fails with
 * -EPERM when value is negative. */
struct pt_init_arg {
	int32_t value;
	char log[128];
};
int init_record(const void *arg, size_t len);

/* pt_file_arg tasks: waits until the file exists (polling every
 * millisecond, at most 60 s, then -ETIMEDOUT), then returns n as an
 * int64. */
int task_gate(mproc_task *t, const void *arg, size_t len);
/* Writes its pid to the file, then sleeps in pause() until killed (or
 * for n milliseconds when n > 0, then returns 0). */
int task_pidfile_block(mproc_task *t, const void *arg, size_t len);
/* Sleeps n milliseconds, then returns n as an int64 (for timeouts only,
 * never as synchronisation). */
int task_sleep_ms(mproc_task *t, const void *arg, size_t len);

/* Ends its worker: SIGSEGV by a write through NULL, abort(), _exit(3),
 * raise(SIGKILL). */
int task_segfault(mproc_task *t, const void *arg, size_t len);
int task_abort(mproc_task *t, const void *arg, size_t len);
int task_exit(mproc_task *t, const void *arg, size_t len);

/* Argument: a uint64 length and a uint64 seed; returns that many bytes of
 * pt_pattern(seed), written in place (mproc_task_result_buffer). */
int task_pattern(mproc_task *t, const void *arg, size_t len);
/* The bytes task_pattern produces, and their checksum. */
void pt_pattern(void *buf, size_t len, uint64_t seed);
uint64_t pt_checksum(const void *buf, size_t len);

/* Returns a result of the uint32 length in its argument, filled with
 * 0xab: for short results (zero-fill) and over-long ones (-EMSGSIZE). */
int task_len(mproc_task *t, const void *arg, size_t len);

/* Exercises the task-side calls' errors and replacement rules: a result
 * set twice (the second wins), mproc_task_return's -EINVAL cases, a
 * message cut at 255 bytes.  Returns "ok" or the name of the first check
 * that failed (as an error, -EPROTO). */
int task_selfcheck(mproc_task *t, const void *arg, size_t len);

/* Fails with -EDOM and a 399-byte message "Axxx...x" (cut to 255). */
int task_long_error(mproc_task *t, const void *arg, size_t len);

/* starmap: returns the concatenation of its argument buffers, then a
 * uint32 nargs. */
int star_concat(mproc_task *t, const struct iovec *args, size_t nargs);

#endif
