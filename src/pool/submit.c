/*
 * The submitting side of the Pool's API: apply, apply_async, the map
 * family and imap, and the waits on their results.  A thread that waits
 * does the pool thread's work meanwhile when the engine is free
 * (internal.h, "The engine lock").
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "pool/internal.h"

/* ---- waiting ---------------------------------------------------------------- */

int pool_async_wait_internal(mproc_async *a, int64_t timeout_ns)
{
	if (pool_async_done(a))
		return 0;
	struct mproc__deadline d;
	if (mproc__deadline_init(&d, timeout_ns))
		return -EINVAL;
	if (d.nowait)
		return -ETIMEDOUT;
	/* Do the pool thread's work meanwhile when it is free (internal.h,
	 * "The engine lock"), else spin a little: a quick task's result is
	 * often there within microseconds, and a futex sleep costs more. */
	mproc_pool *pool = (mproc_pool *)a->pool;
	for (int round = 0; round < 8; round++) {
		if (pool && !pool_on_thread(pool))
			pool_help(pool, pool_async_done, a, &d);
		if (pool_spin(pool_async_done, a, POOL_SPIN_BUSY_NS / 8))
			return 0;
		if (mproc__deadline_passed(&d))
			return -ETIMEDOUT;
	}
	return pool_async_sleep(a, &d);
}

MPROC_API int mproc_async_wait(mproc_async *a, int64_t timeout_ns)
{
	if (!a || timeout_ns < -1)
		return -EINVAL;
	if (pool_async_done(a))
		return 0;
	if (timeout_ns == 0)
		return -ETIMEDOUT;
	if (pool_on_thread(a->pool))
		return -EDEADLK;
	return pool_async_wait_internal(a, timeout_ns);
}

MPROC_API int mproc_async_get(mproc_async *a, int64_t timeout_ns,
			      const void **data, size_t *len)
{
	int rc = mproc_async_wait(a, timeout_ns);
	if (rc)
		return rc;
	if (data)
		*data = a->data;
	if (len)
		*len = a->len;
	return a->status;
}

/* ---- submission -------------------------------------------------------------- */

static int submit_job(mproc_pool *pool, struct pool_job *job, size_t chunksize)
{
	struct pool_chunk *chunks = pool_make_chunks(job, chunksize ? chunksize : 1);
	if (!chunks)
		return -ENOMEM;
	int rc = pool_submit(pool, chunks, job->count);
	if (rc)
		pool_chunks_free(chunks);
	return rc;
}

static int check_caller(const mproc_pool *pool)
{
	if (pool_on_thread(pool))
		return -EDEADLK;
	return 0;
}

/* apply_async; with @engine_held the caller holds the engine and the
 * doorbell is not rung (it does the work itself next). */
static int apply_submit(mproc_pool *pool, mproc_task_fn fn, const void *arg,
			size_t len, mproc_async_cb callback,
			mproc_async_cb error_callback, void *userdata,
			mproc_async **out, bool engine_held)
{
	if (!pool || !fn || (!arg && len) || !out)
		return -EINVAL;
	int id = pool_fn_id(pool, (const void *)(uintptr_t)fn);
	if (id < 0)
		return id;
	/* Job, chunk and argument in one block (internal.h, pool_own). */
	struct pool_job *job;
	struct pool_chunk *c;
	struct pool_own *own = pool_own_new(1, len, &c, &job);
	mproc_async *a = pool_async_new(pool, callback, error_callback,
					userdata);
	if (!own || !a) {
		pool_own_put(own);
		if (a) {
			pool_async_unref(a);
			pool_async_unref(a);
		}
		return -ENOMEM;
	}
	pool_job_init(job, pool, POOL_ITEMS_VAR, POOL_OUT_BYTES, id, 1);
	own->v[0].iov_base = &own->v[1];
	own->v[0].iov_len = len;
	if (len)
		memcpy(&own->v[1], arg, len);
	c->job = job;
	c->n = 1;
	job->async = a;
	int rc = pool_submit_ex(pool, c, 1, !engine_held);
	if (rc) {
		pool_own_put(own);
		pool_async_unref(a);
		pool_async_unref(a);
		return rc;
	}
	*out = a;
	return 0;
}

MPROC_API int mproc_pool_apply_async(mproc_pool *pool, mproc_task_fn fn,
				     const void *arg, size_t len,
				     mproc_async_cb callback,
				     mproc_async_cb error_callback,
				     void *userdata, mproc_async **out)
{
	return apply_submit(pool, fn, arg, len, callback, error_callback,
			    userdata, out, false);
}

MPROC_API ssize_t mproc_pool_apply(mproc_pool *pool, mproc_task_fn fn,
				   const void *arg, size_t len, void *res,
				   size_t cap)
{
	if (!pool || (!res && cap))
		return -EINVAL;
	int rc = check_caller(pool);
	if (rc)
		return rc;
	mproc_async *a;
	/* With the engine free, hand the task out ourselves: the round trip
	 * then involves only us and the worker (internal.h). */
	bool held = pool_engine_try(pool);
	rc = apply_submit(pool, fn, arg, len, NULL, NULL, NULL, &a, held);
	if (rc) {
		if (held)
			pool_engine_drop(pool);
		if (held && rc == -EPIPE)
			pool_kick(pool);
		return rc;
	}
	if (held) {
		struct mproc__deadline forever;
		mproc__deadline_init(&forever, -1);
		pool_help_locked(pool, pool_async_done, a, &forever);
	}
	pool_async_wait_internal(a, -1);
	ssize_t r = a->status;
	if (r == 0) {
		if (a->len > cap)
			r = -EMSGSIZE;
		else {
			if (a->len)
				memcpy(res, a->data, a->len);
			r = (ssize_t)a->len;
		}
	}
	mproc_async_free(a);
	return r;
}

/* Python's default chunksize for map: ceil(count / (4 * workers)). */
static size_t map_chunksize(const mproc_pool *pool, size_t count,
			    const struct mproc_map_opts *o)
{
	if (o && o->chunksize)
		return o->chunksize;
	size_t per = 4 * (size_t)pool->nslots;
	size_t c = count / per + (count % per != 0);
	return c ? c : 1;
}

static int map_common(mproc_pool *pool, struct pool_job *job, size_t chunksize,
		      const struct mproc_map_opts *o, mproc_async **out)
{
	mproc_async *a = pool_async_new(pool, o ? o->callback : NULL,
					o ? o->error_callback : NULL,
					o ? o->userdata : NULL);
	if (!a) {
		free(job);
		return -ENOMEM;
	}
	job->async = a;
	if (o && o->progress) {
		job->progress = o->progress;
		job->userdata = o->userdata;
		job->progress_step = chunksize;
		job->progress_next = chunksize;
	}
	int rc = submit_job(pool, job, chunksize);
	if (rc) {
		free(job);
		pool_async_unref(a);
		pool_async_unref(a);
		return rc;
	}
	*out = a;
	return 0;
}

/* Wait for a map's async result and turn it into map's return value. */
static ssize_t map_wait(mproc_async *a)
{
	pool_async_wait_internal(a, -1);
	ssize_t r = (ssize_t)a->nfailed;
	mproc_async_free(a);
	return r;
}

MPROC_API int mproc_pool_map_async(mproc_pool *pool, mproc_task_fn fn,
				   const void *items, size_t count,
				   size_t item_size, void *results,
				   size_t result_size, int *status,
				   const struct mproc_map_opts *opts,
				   mproc_async **out)
{
	if (!pool || !fn || !out || (count && item_size && !items) ||
	    (count && result_size && !results) ||
	    (opts && opts->chunksize && item_size &&
	     opts->chunksize > SIZE_MAX / item_size) ||
	    (count && result_size > SIZE_MAX / count) ||
	    (count && item_size > SIZE_MAX / count))
		return -EINVAL;
	int id = pool_fn_id(pool, (const void *)(uintptr_t)fn);
	if (id < 0)
		return id;
	struct pool_job *job = pool_job_new(pool, POOL_ITEMS_FIXED, POOL_OUT_FIXED,
				       id, count);
	if (!job)
		return -ENOMEM;
	job->items = items;
	job->item_size = item_size;
	job->results = results;
	job->result_size = result_size;
	job->status = status;
	return map_common(pool, job, map_chunksize(pool, count, opts), opts,
			  out);
}

MPROC_API ssize_t mproc_pool_map(mproc_pool *pool, mproc_task_fn fn,
				 const void *items, size_t count,
				 size_t item_size, void *results,
				 size_t result_size, int *status,
				 const struct mproc_map_opts *opts)
{
	if (!pool)
		return -EINVAL;
	int rc = check_caller(pool);
	if (rc)
		return rc;
	mproc_async *a;
	rc = mproc_pool_map_async(pool, fn, items, count, item_size, results,
				  result_size, status, opts, &a);
	return rc ? rc : map_wait(a);
}

MPROC_API ssize_t mproc_pool_map_iov(mproc_pool *pool, mproc_task_fn fn,
				     const struct iovec *items, size_t count,
				     struct mproc_pool_result *results,
				     const struct mproc_map_opts *opts)
{
	if (!pool || !fn || (count && (!items || !results)))
		return -EINVAL;
	int rc = check_caller(pool);
	if (rc)
		return rc;
	for (size_t i = 0; i < count; i++)
		if (!items[i].iov_base && items[i].iov_len)
			return -EINVAL;
	int id = pool_fn_id(pool, (const void *)(uintptr_t)fn);
	if (id < 0)
		return id;
	struct pool_job *job = pool_job_new(pool, POOL_ITEMS_VAR, POOL_OUT_VRES, id,
				       count);
	if (!job)
		return -ENOMEM;
	job->iov = items;
	job->vres = results;
	mproc_async *a;
	rc = map_common(pool, job, map_chunksize(pool, count, opts), opts, &a);
	return rc ? rc : map_wait(a);
}

MPROC_API ssize_t mproc_pool_starmap(mproc_pool *pool, mproc_star_fn fn,
				     const struct iovec *const *args,
				     const size_t *nargs, size_t count,
				     struct mproc_pool_result *results,
				     const struct mproc_map_opts *opts)
{
	if (!pool || !fn || (count && (!args || !nargs || !results)))
		return -EINVAL;
	int rc = check_caller(pool);
	if (rc)
		return rc;
	for (size_t i = 0; i < count; i++) {
		if (nargs[i] > POOL_MAX_ARGS || (nargs[i] && !args[i]))
			return -EINVAL;
		for (size_t k = 0; k < nargs[i]; k++)
			if (!args[i][k].iov_base && args[i][k].iov_len)
				return -EINVAL;
	}
	int id = pool_fn_id(pool, (const void *)(uintptr_t)fn);
	if (id < 0)
		return id;
	struct pool_job *job = pool_job_new(pool, POOL_ITEMS_STAR, POOL_OUT_VRES,
				       id, count);
	if (!job)
		return -ENOMEM;
	job->star = args;
	job->nargs = nargs;
	job->vres = results;
	mproc_async *a;
	rc = map_common(pool, job, map_chunksize(pool, count, opts), opts, &a);
	return rc ? rc : map_wait(a);
}
