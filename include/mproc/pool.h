/*
 * mproc/pool.h - a pool of pre-started worker processes (the C twin of
 * multiprocessing.Pool).
 *
 * A pool starts its workers once and feeds them tasks: a task is a
 * function of the program (or of a loaded shared library) and a buffer of
 * argument bytes; it runs in a worker and produces result bytes, or fails
 * with an error code and a message.  apply runs one task and waits;
 * apply_async returns an async result to wait on later; the map family
 * runs one function over many items.
 *
 * How it works.  Each worker has its own pair of single-producer rings in
 * one shared-memory segment of the pool: a task ring that only the pool's
 * dispatcher writes, and a result ring that only that worker writes.  A
 * thread of the pool in the parent (the pool thread) hands tasks out, a
 * bounded window per worker, collects results, runs callbacks and watches
 * the workers.  Arguments and results of any size stream through the
 * rings in pieces.  Task functions are identified in the workers by
 * (loaded object, offset), as process targets are, so they work under
 * every start method without registration.
 *
 * Workers are not forked from the parent once it runs threads (forking a
 * threaded process can leave locks held for ever in the child).  Instead,
 * at create, the pool starts one small single-threaded process by the
 * context's start method, the zygote, and every worker, first or
 * replacement, is forked from it.  Under "fork" the zygote is a copy of the
 * parent at create, so workers see the parent's memory as it was then.
 *
 * A worker that dies.  Each worker records in shared memory which task it
 * is running.  When a worker dies (a signal, a crash, exit from a task):
 *   - the task it was running fails with -MPROC_EWORKERLOST, and
 *     mproc_async_signal() names the signal that ended the worker;
 *   - the tasks it had been sent but had not started go to other workers;
 *   - a replacement worker starts (running the initializer again);
 *   - every other task completes as if nothing happened.
 * Results the worker published before it died are delivered.  A worker
 * that ends because of maxtasksperchild announces it first and never
 * counts as a death.  A task that overruns the pool's task timeout has its
 * worker killed and replaced, and fails with -ETIMEDOUT.
 *
 * When the parent dies, the zygote and every worker exit (within about a
 * second): no orphans keep running.
 *
 * Task functions.  A task function runs in a worker with the argument
 * bytes (read-only, valid until it returns) and a task handle through
 * which it returns result bytes (mproc_task_return, or
 * mproc_task_result_buffer to write them in place) or a message with its
 * error.  It returns 0 for success or a negative error code, which
 * becomes the task's result.  The worker reuses its buffers: a task costs
 * no malloc in the worker unless a result outgrows them.
 *
 * Callbacks (apply_async's callback and error_callback, map progress)
 * run on the pool thread, one at a time, in completion order, never in a
 * signal handler.  While one runs, the pool collects no result and hands
 * out no task, so keep them short (as Python advises).  A callback may
 * submit work, read and free async results, and close or terminate the
 * pool; it must not wait on the pool: mproc_pool_join, apply, map, and a
 * blocking get/wait of a result that is not ready yet are refused there
 * with -EDEADLK.
 *
 * Errors of a task (what get() and the status arrays report): the task
 * function's own negative code, -MPROC_EWORKERLOST (its worker died),
 * -ETIMEDOUT (it overran the task timeout), -ECANCELED (the pool was
 * terminated before it finished), -MPROC_ENOSYMBOL (its function does not
 * resolve in the worker), -ENOMEM (its result could not be delivered),
 * -MPROC_EINIT (the workers' initializer fails, so nothing can run).
 *
 * CONCURRENCY.  Any number of threads of the creating process may submit
 * work to one pool at once (apply, apply_async, the map family), and wait
 * on different async results.  close and terminate may run concurrently
 * with submissions (a submission that loses the race gets -EPIPE).
 * mproc_pool_destroy must not run concurrently with any other call on the
 * pool.  A pool is usable only in the process that created it; a forked
 * child that inherited a handle must not use it.
 */
#ifndef MPROC_POOL_H
#define MPROC_POOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "mproc/common.h"

MPROC_BEGIN_DECLS

/** A pool of worker processes. */
typedef struct mproc_pool mproc_pool;
/** The result of apply_async or map_async (Python's AsyncResult). */
typedef struct mproc_async mproc_async;
/** An imap / imap_unordered iterator. */
typedef struct mproc_imap mproc_imap;
/** The running task, as seen from the task function in a worker. */
typedef struct mproc_task mproc_task;

/**
 * A task function, run in a worker.  @arg / @len: the argument bytes
 * (NULL when @len is 0), aligned for any type, valid until return.
 * Returns 0 (success: the result is what mproc_task_return or
 * mproc_task_result_buffer set, or empty) or a negative error code, which
 * the task then fails with (any value; -MPROC_EWORKERLOST and the other
 * pool codes are best avoided).
 */
typedef int (*mproc_task_fn)(mproc_task *t, const void *arg, size_t len);

/**
 * A starmap task function: @args holds the @nargs argument buffers of one
 * item (a tuple), valid until return.
 */
typedef int (*mproc_star_fn)(mproc_task *t, const struct iovec *args,
			     size_t nargs);

/** The workers' initializer: run once in each worker (and in each
 *  replacement) before its first task.  Returns 0, or a negative error:
 *  see struct mproc_pool_attr. */
typedef int (*mproc_pool_init_fn)(const void *arg, size_t len);

/** Attributes of a pool; mproc_pool_attr_init sets the defaults. */
struct mproc_pool_attr {
	/** Start method of the zygote (see above); NULL: the current one. */
	mproc_context *ctx;
	/** Worker count; 0: the CPUs this process may run on
	 *  (mproc_cpu_count).  At most MPROC_POOL_MAX_PROCESSES. */
	unsigned processes;
	/** Run once in each worker before its first task; NULL for none.
	 *  If it fails (returns non-zero) in the first workers, create fails
	 *  with -MPROC_EINIT; if it fails in a replacement later, the pool
	 *  stops starting workers and every task not yet finished, and every
	 *  later one, fails with -MPROC_EINIT: never an endless restart. */
	mproc_pool_init_fn initializer;
	/** Argument bytes of the initializer, copied at create. */
	const void *initarg;
	size_t initarg_len;
	/** Tasks a worker runs before it is replaced; 0: no limit. */
	unsigned maxtasksperchild;
	/** Longest a task may run; its worker is killed and replaced and
	 *  the task fails with -ETIMEDOUT.  MPROC_FOREVER (the default): no
	 *  limit.  Checked by the pool thread, about every 10 ms. */
	int64_t task_timeout_ns;
	/** Bytes of each ring (one per direction per worker), rounded up to
	 *  a power of two; 0: 256 KiB.  Larger messages stream through. */
	size_t ring_capacity;
	/** Tasks (or chunks) sent ahead to one worker.  0: 16 to start
	 *  with, doubling up to 256 while a worker finishes everything it
	 *  was sent before the pool comes back to it (tasks that short
	 *  gain from larger batches and lose little balance), and back to
	 *  16 when the pool goes idle.  Any other value is kept as is. */
	unsigned window;
};

/** Largest worker count. */
#define MPROC_POOL_MAX_PROCESSES 1024

/** mproc_pool_attr_init - fill @attr with the defaults. */
MPROC_API void mproc_pool_attr_init(struct mproc_pool_attr *attr);

/**
 * mproc_pool_create - start a pool.
 * @attr: NULL for the defaults.
 * @out: receives the pool.
 *
 * Starts the zygote and the workers, waits until every worker has run the
 * initializer, then starts the pool thread.  Returns 0, or -EINVAL (NULL
 * @out, processes or window out of range, task timeout below -1, an
 * initializer with initarg_len but no initarg), -MPROC_EINIT (the
 * initializer failed in a worker; nothing is left running),
 * -MPROC_ENOSYMBOL (the initializer does not resolve in the zygote's
 * image), -ENOMEM, -EAGAIN (no processes left), or an error of the
 * process or segment layers.  Blocks while the workers start.
 * Thread-safe.
 */
MPROC_API int mproc_pool_create(const struct mproc_pool_attr *attr,
				mproc_pool **out);

/** mproc_pool_processes - the pool's worker count, or -EINVAL. */
MPROC_API int mproc_pool_processes(const mproc_pool *pool);

/**
 * mproc_pool_worker_pids - the pids of the live workers, into @pids up to
 * @max of them.  Returns how many workers there are (which may exceed
 * @max), or -EINVAL.  A snapshot: a worker may be replaced at any time.
 */
MPROC_API int mproc_pool_worker_pids(mproc_pool *pool, pid_t *pids,
				     size_t max);

/** Counters of a pool's life (mproc_pool_stats). */
struct mproc_pool_stats {
	uint64_t submitted;      /**< tasks (items) accepted */
	uint64_t completed;      /**< tasks (items) finished, either way */
	uint64_t failed;         /**< of those, the ones that failed */
	uint64_t workers_lost;   /**< workers that died unannounced */
	uint64_t workers_retired;/**< replaced after maxtasksperchild */
	uint64_t workers_started;/**< including the first ones */
};

/** mproc_pool_stats - copy the counters.  Returns 0 or -EINVAL. */
MPROC_API int mproc_pool_stats(mproc_pool *pool, struct mproc_pool_stats *st);

/* ---- the task side (called from task functions, in a worker) ----------- */

/**
 * mproc_task_return - set the task's result to a copy of @len bytes at
 * @buf (replacing any earlier one).  Returns 0, -EINVAL (NULL @t, or NULL
 * @buf with @len > 0), -ENOMEM.  Never blocks.
 */
MPROC_API int mproc_task_return(mproc_task *t, const void *buf, size_t len);

/**
 * mproc_task_result_buffer - a buffer of @len bytes that becomes the
 * task's result, to fill in place (no copy); valid until the task
 * function returns.  Returns NULL for a NULL @t or when memory runs out.
 */
MPROC_API void *mproc_task_result_buffer(mproc_task *t, size_t len);

/**
 * mproc_task_set_error - attach a message to the task's failure (shown by
 * mproc_async_error_message); the task function still returns the
 * negative code.  The text is copied, cut at 255 bytes.  Returns 0 or
 * -EINVAL.
 */
MPROC_API int mproc_task_set_error(mproc_task *t, const char *message);

/** mproc_task_index - index of the item being run within its map, imap
 *  or starmap call (0 for apply). */
MPROC_API size_t mproc_task_index(const mproc_task *t);

/* ---- apply ------------------------------------------------------------- */

/**
 * mproc_pool_apply - run @fn(@arg, @len) in a worker and wait for it.
 * @res, @cap: where the result goes (@res may be NULL when @cap is 0).
 *
 * Returns the result's length (copied to @res), or the task's error (see
 * the top of this file), or -EMSGSIZE (the result is longer than @cap; it
 * is lost: use apply_async and mproc_async_get for results of unknown
 * size), -EINVAL (NULL @pool or @fn, NULL @arg with @len > 0), -EPIPE
 * (the pool is closed or terminated), -EDEADLK (called from a callback of
 * this pool), -ENOMEM, -ECHILD (not the creating process).  Blocks until
 * the task finishes.
 */
MPROC_API ssize_t mproc_pool_apply(mproc_pool *pool, mproc_task_fn fn,
				   const void *arg, size_t len, void *res,
				   size_t cap);

/** Callbacks of apply_async / map_async: run on the pool thread, see the
 *  top of this file.  @a is the finished async result (still owned by the
 *  caller, who may free it from the callback). */
typedef void (*mproc_async_cb)(mproc_async *a, void *userdata);

/**
 * mproc_pool_apply_async - submit @fn(@arg, @len) and return at once.
 * @callback: run when the task succeeds, NULL for none.
 * @error_callback: run when it fails, NULL for none.
 * @userdata: passed to the callbacks.
 * @out: receives the async result, which the caller frees with
 *        mproc_async_free (before or after it finishes).
 *
 * The argument bytes are copied.  Returns 0, or -EINVAL, -EPIPE (closed),
 * -ENOMEM, -ECHILD.  Never blocks (submissions queue without limit in
 * the parent; the workers' windows bound what is in flight).
 */
MPROC_API int mproc_pool_apply_async(mproc_pool *pool, mproc_task_fn fn,
				     const void *arg, size_t len,
				     mproc_async_cb callback,
				     mproc_async_cb error_callback,
				     void *userdata, mproc_async **out);

/* ---- async results ----------------------------------------------------- */

/**
 * mproc_async_wait - wait until @a is finished or @timeout_ns passes.
 * Returns 0 (finished), -ETIMEDOUT, -EINVAL, -EDEADLK (from a callback of
 * its pool, while @a is not finished and @timeout_ns is not 0: a wait
 * there could never end).  Any thread may wait; several may at once.
 */
MPROC_API int mproc_async_wait(mproc_async *a, int64_t timeout_ns);

/**
 * mproc_async_get - wait for @a, then give its result.
 * @data, @len: receive a pointer to the result bytes, owned by @a and
 *        valid until mproc_async_free (either may be NULL).  For a
 *        map_async result there are no bytes: the results are in the
 *        caller's arrays, and *len is 0.
 * Returns 0 when the task succeeded (for map_async: every item did), the
 * task's error (map_async: the first failing item's, by index), or
 * -ETIMEDOUT, -EINVAL, -EDEADLK as mproc_async_wait.
 */
MPROC_API int mproc_async_get(mproc_async *a, int64_t timeout_ns,
			      const void **data, size_t *len);

/** mproc_async_ready - true once @a is finished (false for NULL). */
MPROC_API bool mproc_async_ready(const mproc_async *a);

/** mproc_async_successful - 1 if @a finished successfully, 0 if it
 *  failed, -EAGAIN if not finished yet (Python raises ValueError), or
 *  -EINVAL. */
MPROC_API int mproc_async_successful(const mproc_async *a);

/** mproc_async_error_message - the failed task's message (from
 *  mproc_task_set_error, or one mproc wrote, e.g. "worker 1234 killed by
 *  signal 9"), or "" if none or not finished.  Owned by @a. */
MPROC_API const char *mproc_async_error_message(const mproc_async *a);

/** mproc_async_signal - the signal that killed the worker of a task that
 *  failed with -MPROC_EWORKERLOST (0 if it exited otherwise, or for any
 *  other result). */
MPROC_API int mproc_async_signal(const mproc_async *a);

/**
 * mproc_async_fileno - a descriptor (an eventfd) that polls readable once
 * @a is finished, for poll/epoll and mproc_wait (MPROC_WAIT_FD).  Created
 * on first call, owned by @a.  Returns it, or -EINVAL, -EMFILE, -ENOMEM.
 */
MPROC_API int mproc_async_fileno(mproc_async *a);

/**
 * mproc_async_free - release @a.  If the work is not finished it still
 * runs (its callbacks too); its result is then dropped.  NULL is a no-op.
 * Must not run concurrently with other calls on @a.
 */
MPROC_API void mproc_async_free(mproc_async *a);

/* ---- map, starmap ------------------------------------------------------ */

/** Progress of a map-family call: @done of @total items finished. */
typedef void (*mproc_progress_fn)(size_t done, size_t total, void *userdata);

/** Options of the map family; zero-initialise (all fields optional). */
struct mproc_map_opts {
	/** Items sent to a worker at once; 0: Python's default,
	 *  ceil(count / (4 * processes)) for map, 1 for imap. */
	size_t chunksize;
	/** Called on the pool thread as items finish (at most about every
	 *  chunk), and once with done == total. */
	mproc_progress_fn progress;
	/** map_async only: run when every item succeeded / when any failed. */
	mproc_async_cb callback;
	mproc_async_cb error_callback;
	void *userdata;
	/** imap only: most items submitted and not yet yielded; 0:
	 *  64 * processes * chunksize.  Bounds the iterator's memory. */
	size_t buffersize;
};

/** One item's result, for calls whose results vary in size. */
struct mproc_pool_result {
	int status;   /**< 0, or the item's error */
	size_t len;   /**< result bytes */
	void *data;   /**< malloc'd (NULL when len is 0); the caller frees it */
};

/**
 * mproc_pool_map - run @fn over @count items of @item_size bytes at
 * @items (qsort style) and store each result, of at most @result_size
 * bytes, at @results + i * @result_size (zero-filled past a shorter
 * result).
 * @status: NULL, or an array of @count that receives each item's status:
 *        0 or its error (-EMSGSIZE for a result longer than
 *        @result_size).
 * @opts: NULL for the defaults.
 *
 * Returns the number of items that failed (0: all succeeded), or -EINVAL
 * (NULL @pool/@fn, NULL @items or @results with a non-zero size, a
 * chunksize larger than SIZE_MAX / item_size), -EPIPE, -EDEADLK, -ENOMEM,
 * -ECHILD.  Blocks until every item has finished.
 */
MPROC_API ssize_t mproc_pool_map(mproc_pool *pool, mproc_task_fn fn,
				 const void *items, size_t count,
				 size_t item_size, void *results,
				 size_t result_size, int *status,
				 const struct mproc_map_opts *opts);

/**
 * mproc_pool_map_async - mproc_pool_map without waiting.  @items is
 * copied into the tasks as they are sent, so it must stay valid and
 * unchanged, and @results and @status writable, until @out is finished.
 * Returns 0 and the async result in @out, or the errors of
 * mproc_pool_map other than the item results.
 */
MPROC_API int mproc_pool_map_async(mproc_pool *pool, mproc_task_fn fn,
				   const void *items, size_t count,
				   size_t item_size, void *results,
				   size_t result_size, int *status,
				   const struct mproc_map_opts *opts,
				   mproc_async **out);

/**
 * mproc_pool_map_iov - run @fn over @count items of any size (@items[i])
 * and store each result in @results[i] (malloc'd data the caller frees).
 * Returns the number of failed items, or the call errors of
 * mproc_pool_map.  Blocks.
 */
MPROC_API ssize_t mproc_pool_map_iov(mproc_pool *pool, mproc_task_fn fn,
				     const struct iovec *items, size_t count,
				     struct mproc_pool_result *results,
				     const struct mproc_map_opts *opts);

/**
 * mproc_pool_starmap - run @fn over @count tuples: item i is the
 * @nargs[i] argument buffers starting at @args[i] (an array of iovecs
 * per item).  Results as mproc_pool_map_iov.  Returns the number of
 * failed items or a call error.  Blocks.
 */
MPROC_API ssize_t mproc_pool_starmap(mproc_pool *pool, mproc_star_fn fn,
				     const struct iovec *const *args,
				     const size_t *nargs, size_t count,
				     struct mproc_pool_result *results,
				     const struct mproc_map_opts *opts);

/* ---- imap, imap_unordered ---------------------------------------------- */

/**
 * Source of imap items.  It is called only from mproc_pool_imap and
 * mproc_imap_next, on the caller's thread, to keep up to buffersize items
 * submitted and not yet yielded (never from the pool thread).  Sets
 * *@item / *@len to the next item (copied before the next call) and
 * returns 1, returns 0 at the end, or a negative error (the iterator then
 * ends with it, after the results of the items before it).
 */
typedef int (*mproc_imap_source)(void *source_arg, const void **item,
				  size_t *len);

/**
 * mproc_pool_imap - start an ordered iteration of @fn over the items that
 * @source gives; mproc_imap_next yields the results in item order.
 * @opts: chunksize (default 1) and buffersize bound how far the pool
 *        reads ahead of the consumer; progress, callback and
 *        error_callback must be NULL (the total is not known in advance:
 *        count the results as mproc_imap_next yields them).
 * Returns 0 and the iterator, or -EINVAL (also for a NULL @source),
 * -EPIPE, -ENOMEM, -ECHILD, or the source's error on its first item.
 */
MPROC_API int mproc_pool_imap(mproc_pool *pool, mproc_task_fn fn,
			      mproc_imap_source source, void *source_arg,
			      const struct mproc_map_opts *opts,
			      mproc_imap **out);

/** mproc_pool_imap_unordered - as mproc_pool_imap, results in the order
 *  they finish; each comes with its item's index. */
MPROC_API int mproc_pool_imap_unordered(mproc_pool *pool, mproc_task_fn fn,
					mproc_imap_source source,
					void *source_arg,
					const struct mproc_map_opts *opts,
					mproc_imap **out);

/**
 * mproc_imap_next - the next result (Python's next(timeout)).
 * @res: receives status, len and data; data is owned by the iterator and
 *        valid until the next call or mproc_imap_free.
 * @index: NULL, or receives the item's index.
 * Returns 0 with a result (which may be a failed item: see res->status),
 * -MPROC_EEOF when every item has been yielded, -ETIMEDOUT, the source's
 * error once the results before it are yielded, -EINVAL, -EDEADLK.
 * Blocks up to @timeout_ns.  One thread at a time per iterator.
 */
MPROC_API int mproc_imap_next(mproc_imap *it, int64_t timeout_ns,
			      struct mproc_pool_result *res, size_t *index);

/** mproc_imap_free - stop reading the source and release @it (items in
 *  flight still finish, their results are dropped).  NULL is a no-op. */
MPROC_API void mproc_imap_free(mproc_imap *it);

/* ---- shutdown ---------------------------------------------------------- */

/**
 * mproc_pool_close - accept no more work; work already submitted
 * finishes, then the workers exit.  Returns 0, -EINVAL.  Idempotent.
 * Never blocks.
 */
MPROC_API int mproc_pool_close(mproc_pool *pool);

/**
 * mproc_pool_terminate - stop now: the workers are killed, every
 * unfinished task fails with -ECANCELED (callbacks still run), and new
 * work is refused with -EPIPE.  Returns 0 or -EINVAL.  Blocks until the
 * workers are gone (milliseconds).
 */
MPROC_API int mproc_pool_terminate(mproc_pool *pool);

/**
 * mproc_pool_join - wait until the workers have exited after close (all
 * work done) or terminate.  Returns 0, -EINVAL (NULL, or the pool is
 * neither closed nor terminated: Python raises ValueError), -ETIMEDOUT,
 * -EDEADLK (from a callback of this pool).
 */
MPROC_API int mproc_pool_join(mproc_pool *pool, int64_t timeout_ns);

/**
 * mproc_pool_destroy - what leaving Python's `with Pool() as p:` block
 * does, then free: terminate, join, release every resource (threads,
 * processes, the segment).  Async results and iterators stay valid to
 * read and free.  NULL is a no-op.  Must not run concurrently with other
 * calls on the pool, nor from one of its callbacks.
 */
MPROC_API void mproc_pool_destroy(mproc_pool *pool);

/* ---- pools over MPI ---------------------------------------------------- */

/*
 * The same Pool across hosts.  Launch the program with an MPI launcher,
 * `mpiexec -n K+1 ./app` (or srun): rank 0 runs main() and is the head;
 * every other rank is an agent, which runs an ordinary local pool and
 * never returns from mproc_pool_mpi_main.  On the head,
 * mproc_get_context("mpi", &ctx) and a pool created with attr.ctx = ctx
 * spread the pool's work over the agents, with the whole API: apply,
 * apply_async, the map family, imap, close / terminate / join,
 * callbacks and progress.  Task functions travel as in a local pool,
 * by (loaded object, offset) with a build-id check: every rank runs the
 * same binary.  The library must have been built with MPI (meson option
 * mpi); otherwise mproc_get_context("mpi") returns -ENOTSUP.
 *
 * How it runs.  Each agent is one slot of the head's pool with a window
 * of two chunks per agent worker to start with, which grows (up to 256)
 * while the agent drains it faster than chunks arrive.  The head's pool
 * thread is the only thread of the head that calls MPI (it initialises
 * MPI at create, with MPI_THREAD_FUNNELED, and finalises it when the pool
 * has stopped), so the program must not initialise MPI itself.  An agent starts its
 * local pool before it initialises MPI; local workers never call MPI.
 *
 * What differs from a local pool:
 *   - attributes: processes, initializer, maxtasksperchild and
 *     task_timeout_ns are the agents' (mproc_pool_mpi_main's @agent_attr);
 *     set on the head they make create fail with -ENOTSUP.  window,
 *     ring_capacity apply to the head's slot of each agent.
 *   - mproc_pool_processes counts agents (slots), and the default map
 *     chunksize is ceil(count / (4 * agents)); each agent splits its
 *     chunks again over its local workers the same way.  worker_pids
 *     gives the agents' process ids, each on its own host.
 *   - callers never do the pool thread's work themselves (as they may in
 *     a local pool): only the pool thread calls MPI.
 *   - a local worker that dies inside an agent fails only its task, with
 *     -MPROC_EWORKERLOST, as in a local pool; the failure's message names
 *     the signal, but mproc_async_signal() gives 0, and of the failing
 *     items of one piece of a chunk (an agent cuts each chunk into
 *     ceil(n / (4 * its workers)) items per piece) only the first keeps
 *     its message.
 *   - the death of a whole rank ends the MPI job (MPI does not survive
 *     it), and so does a frame between ranks that breaks the protocol
 *     (the rank that reads it calls MPI_Abort).
 *   - mproc_pool_stats: workers_started counts the agents' workers at
 *     create; deaths and replacements inside an agent are its local
 *     pool's business and are not counted.
 *   - one MPI pool per program run (MPI cannot be initialised twice): a
 *     second create returns -EALREADY.  Destroy (or terminate and join)
 *     it before main returns; if the program does not, an exit handler
 *     terminates it, and one that never made a pool still lets the agents
 *     go, so that the job ends.
 * Errors of create with the mpi context, besides those of a local pool:
 * -ENOTSUP (an attribute above), -ESRCH (not started by an MPI launcher
 * with at least one agent rank), -EPROTO (called on an agent rank: main()
 * does not call mproc_pool_mpi_main), -EALREADY, -EBUSY (the program
 * initialised MPI itself), -ETIMEDOUT (an agent did not report within two
 * minutes), -EIO (MPI failed), or an agent's error starting its local
 * pool.
 */

/**
 * mproc_pool_mpi_main - call first in main(), with main's arguments, in a
 * program that runs a pool over MPI (instead of mproc_main, which it
 * calls).
 * @agent_attr: the local pool of each agent rank; NULL for the defaults.
 *     Its processes 0 means this node's usable CPUs divided by the agents
 *     on the node.  Its ctx, initializer, maxtasksperchild,
 *     task_timeout_ns, ring_capacity and window are those of a local pool.
 *
 * On an agent rank (an MPI launcher's environment names a rank above 0)
 * it never returns: it runs the agent until the head's pool ends, then
 * exits.  On the head or outside MPI it returns 0; on the head it also
 * registers an exit handler that terminates an MPI pool still running at
 * exit, or lets the agents go when the program made none, so that the job
 * ends (see "pools over MPI" in <mproc/pool.h>).  Returns -ENOTSUP on an
 * agent rank when the library was built without MPI (the program should
 * then exit), -ENOMEM.  A program that calls plain mproc_main is never
 * turned into an agent, so that mproc programs run under mpiexec as
 * independent copies behave as they always did.
 */
MPROC_API int mproc_pool_mpi_main(int argc, char **argv,
				  const struct mproc_pool_attr *agent_attr);

MPROC_END_DECLS

#endif /* MPROC_POOL_H */
