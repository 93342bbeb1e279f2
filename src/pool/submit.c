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
	struct pool_job *job = pool_job_new(pool, POOL_ITEMS_VAR, POOL_OUT_BYTES,
				       id, 1);
	struct pool_chunk *c = calloc(1, sizeof(*c));
	struct pool_own *own = pool_own_new(1, len);
	mproc_async *a = pool_async_new(pool, callback, error_callback,
					userdata);
	if (!job || !c || !own || !a) {
		free(job);
		free(c);
		free(own);
		if (a) {
			pool_async_unref(a);
			pool_async_unref(a);
		}
		return -ENOMEM;
	}
	own->v[0].iov_base = &own->v[1];
	own->v[0].iov_len = len;
	if (len)
		memcpy(&own->v[1], arg, len);
	c->job = job;
	c->n = 1;
	c->own = own;
	job->async = a;
	int rc = pool_submit_ex(pool, c, 1, !engine_held);
	if (rc) {
		free(own);
		free(c);
		free(job);
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

/* ---- imap ------------------------------------------------------------------ */

static int imap_submit(struct mproc_imap *it, struct pool_own *own, size_t n);

/* Pull one item into its own block (chunksize 1: no gathering). */
static int imap_pull_one(struct mproc_imap *it)
{
	const void *item = NULL;
	size_t len = 0;
	int rc = it->source(it->source_arg, &item, &len);
	if (rc <= 0 || (!item && len)) {
		it->src_ended = true;
		it->src_err = rc < 0 ? rc : (rc > 0 ? -EINVAL : 0);
		return 0;
	}
	struct pool_own *own = pool_own_new(1, len);
	if (!own) {
		it->src_ended = true;
		it->src_err = -ENOMEM;
		return -ENOMEM;
	}
	own->v[0].iov_base = &own->v[1];
	own->v[0].iov_len = len;
	if (len)
		memcpy(&own->v[1], item, len);
	return imap_submit(it, own, 1);
}

/* Pull up to one chunk of items from the source and submit it. */
static int imap_pull(struct mproc_imap *it)
{
	size_t room = it->buffersize - (it->submitted - it->yielded);
	size_t want = it->chunksize < room ? it->chunksize : room;
	if (want == 1)
		return imap_pull_one(it);
	struct pool_own *own = NULL;
	size_t n = 0, bytes = 0, cap = 0;
	unsigned char *data = NULL;
	/* Items are gathered into one block: iovecs first, then bytes;
	 * pointers are fixed up once the block stops moving. */
	size_t *lens = calloc(want, sizeof(*lens));
	if (!lens)
		return -ENOMEM;
	int rc = 0;
	while (n < want) {
		const void *item = NULL;
		size_t len = 0;
		rc = it->source(it->source_arg, &item, &len);
		if (rc <= 0) {
			it->src_ended = true;
			it->src_err = rc;
			rc = 0;
			break;
		}
		rc = 0;
		if (!item && len) {
			it->src_ended = true;
			it->src_err = -EINVAL;
			break;
		}
		if (bytes + len > cap) {
			size_t ncap = cap ? cap * 2 : 256;
			while (ncap < bytes + len)
				ncap *= 2;
			unsigned char *d = realloc(data, ncap);
			if (!d) {
				rc = -ENOMEM;
				break;
			}
			data = d;
			cap = ncap;
		}
		if (len)
			memcpy(data + bytes, item, len);
		lens[n++] = len;
		bytes += len;
	}
	if (!rc && n) {
		own = pool_own_new(n, bytes);
		if (!own)
			rc = -ENOMEM;
	}
	if (rc || !n) {
		free(lens);
		free(data);
		free(own);
		if (rc) {
			it->src_ended = true;
			it->src_err = rc;
		}
		return rc;
	}
	unsigned char *base = (unsigned char *)&own->v[n];
	if (bytes)
		memcpy(base, data, bytes);
	for (size_t i = 0, off = 0; i < n; i++) {
		own->v[i].iov_base = base + off;
		own->v[i].iov_len = lens[i];
		off += lens[i];
	}
	free(lens);
	free(data);
	return imap_submit(it, own, n);
}

/* Submit @n items held in @own as one chunk (consumes @own). */
static int imap_submit(struct mproc_imap *it, struct pool_own *own, size_t n)
{
	struct pool_chunk *c = calloc(1, sizeof(*c));
	if (!c) {
		free(own);
		it->src_ended = true;
		it->src_err = -ENOMEM;
		return -ENOMEM;
	}
	c->job = &it->job;
	c->first = it->submitted;
	c->n = n;
	c->own = own;
	c->imap = it;
	/* Gathered, submitted together by imap_fill (one hand-over). */
	*it->batch_tail = c;
	it->batch_tail = &c->next;
	it->batch_items += n;
	it->submitted += n;
	return 0;
}

/* Submit what imap_fill gathered. */
static void imap_flush(struct mproc_imap *it)
{
	struct pool_chunk *batch = it->batch;
	size_t n = it->batch_items;
	it->batch = NULL;
	it->batch_tail = &it->batch;
	it->batch_items = 0;
	if (!batch)
		return;
	size_t chunks = 0;
	for (struct pool_chunk *c = batch; c; c = c->next)
		chunks++;
	/* Relaxed: the caller holds a reference meanwhile (see job.c). */
	atomic_fetch_add_explicit(&it->refs, (int)chunks, memory_order_relaxed);
	int rc = pool_submit(it->pool, batch, n);
	if (rc) {
		atomic_fetch_sub_explicit(&it->refs, (int)chunks,
					  memory_order_relaxed);
		pool_chunks_free(batch);
		it->submitted -= n;
		it->src_ended = true;
		it->src_err = rc;
	}
}

static void imap_fill(struct mproc_imap *it)
{
	while (!it->src_ended && it->submitted - it->yielded < it->buffersize)
		if (imap_pull(it) < 0)
			break;
	imap_flush(it);
}

static int imap_start(mproc_pool *pool, mproc_task_fn fn,
		      mproc_imap_source source, void *source_arg,
		      const struct mproc_map_opts *o, bool ordered,
		      mproc_imap **out)
{
	if (!pool || !fn || !source || !out ||
	    (o && (o->progress || o->callback || o->error_callback)))
		return -EINVAL;
	/* Refuse a closed pool before reading the source, so that even an
	 * empty source gets the error. */
	int id = pool_check_open(pool);
	if (id == 0)
		id = pool_fn_id(pool, (const void *)(uintptr_t)fn);
	if (id < 0)
		return id;
	struct mproc_imap *it = calloc(1, sizeof(*it));
	if (!it)
		return -ENOMEM;
	it->pool = pool;
	it->ordered = ordered;
	it->source = source;
	it->source_arg = source_arg;
	it->chunksize = o && o->chunksize ? o->chunksize : 1;
	it->buffersize = o && o->buffersize
				 ? o->buffersize
				 : 64 * (size_t)pool->nslots * it->chunksize;
	if (it->buffersize < it->chunksize)
		it->buffersize = it->chunksize;
	it->job.pool = pool;
	it->job.layout = POOL_ITEMS_VAR;
	it->job.out = POOL_OUT_IMAP;
	it->job.fn_id = (uint32_t)id;
	it->job.imap = it;
	it->job.first_err_index = SIZE_MAX;
	atomic_init(&it->refs, 1);
	it->batch_tail = &it->batch;
	pthread_mutex_init(&it->lock, NULL);
	if (ordered &&
	    !(it->slots = calloc(it->buffersize, sizeof(*it->slots)))) {
		pool_imap_unref(it);
		return -ENOMEM;
	}
	imap_fill(it);
	if (it->submitted == 0 && it->src_ended && it->src_err < 0) {
		int rc = it->src_err;
		pool_imap_unref(it);
		return rc;
	}
	*out = it;
	return 0;
}

MPROC_API int mproc_pool_imap(mproc_pool *pool, mproc_task_fn fn,
			      mproc_imap_source source, void *source_arg,
			      const struct mproc_map_opts *opts,
			      mproc_imap **out)
{
	return imap_start(pool, fn, source, source_arg, opts, true, out);
}

MPROC_API int mproc_pool_imap_unordered(mproc_pool *pool, mproc_task_fn fn,
					mproc_imap_source source,
					void *source_arg,
					const struct mproc_map_opts *opts,
					mproc_imap **out)
{
	return imap_start(pool, fn, source, source_arg, opts, false, out);
}

struct imap_wait {
	struct mproc_imap *it;
	uint32_t seq;
};

/* A result arrived since @seq was read. */
static bool imap_moved(void *arg)
{
	struct imap_wait *w = arg;
	return atomic_load_explicit(&w->it->seq, memory_order_acquire) !=
	       w->seq;
}

/* The next node if it is there (lock held). */
static struct imap_node *imap_take(struct mproc_imap *it)
{
	struct imap_node *n;
	if (it->ordered) {
		struct imap_node **s = &it->slots[it->yielded % it->buffersize];
		n = *s;
		if (n && n->index == it->yielded)
			*s = NULL;
		else
			n = NULL;
	} else {
		n = it->head;
		if (n) {
			it->head = n->next;
			if (!it->head)
				it->tail = NULL;
		}
	}
	return n;
}

MPROC_API int mproc_imap_next(mproc_imap *it, int64_t timeout_ns,
			      struct mproc_pool_result *res, size_t *index)
{
	if (!it || !res || timeout_ns < -1)
		return -EINVAL;
	free(it->current);
	it->current = NULL;
	imap_fill(it);
	if (it->yielded == it->submitted && it->src_ended) {
		int rc = it->src_err < 0 ? it->src_err : -MPROC_EEOF;
		it->src_err = 0; /* the error is reported once */
		return rc;
	}
	struct mproc__deadline d;
	mproc__deadline_init(&d, timeout_ns);
	for (;;) {
		/* Acquire: pairs with the release in pool_imap_push. */
		uint32_t seq = atomic_load_explicit(&it->seq,
						    memory_order_acquire);
		pthread_mutex_lock(&it->lock);
		struct imap_node *n = imap_take(it);
		pthread_mutex_unlock(&it->lock);
		if (n) {
			it->yielded++;
			it->current = n;
			res->status = n->status;
			res->len = n->len;
			res->data = n->data;
			if (index)
				*index = n->index;
			imap_fill(it);
			return 0;
		}
		if (pool_on_thread(it->pool))
			return -EDEADLK;
		if (mproc__deadline_passed(&d) || d.nowait)
			return -ETIMEDOUT;
		/* Do the pool thread's work meanwhile if it is free. */
		struct imap_wait w = { it, seq };
		pool_help(it->pool, imap_moved, &w, &d);
		if (pool_spin(imap_moved, &w, POOL_SPIN_BUSY_NS / 8))
			continue;
		/* A1..A6 of futex.h, paired with the signal in
		 * pool_imap_push; a timeout is found at the loop's top. */
		mproc__event_wait(&it->arrived, imap_moved, &w, &d, &it->spin,
				  NULL);
	}
}

MPROC_API void mproc_imap_free(mproc_imap *it)
{
	if (!it)
		return;
	pthread_mutex_lock(&it->lock);
	it->abandoned = true;
	pthread_mutex_unlock(&it->lock);
	pool_imap_unref(it);
}
