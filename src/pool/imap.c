/*
 * imap and imap_unordered: the iterator reads its source on the caller's
 * thread, submits the items in chunks, and hands the results from the
 * engine to mproc_imap_next.
 *
 * Reading ahead.  At most buffersize items are submitted and not yet
 * yielded.  The source is read in bursts: once refill items (a quarter of
 * the buffer, at least a chunk) have been yielded since the buffer was
 * last topped up, it is topped up again, and what was read goes to the
 * pool as one batch.  One hand-over, one doorbell and one dispatch round
 * then serve many items, where topping up after every yield paid them
 * per item.
 *
 * The result store.  Its producers are the engine's holders, in
 * pool_imap_push (the engine lock orders them); its consumer is the
 * thread in next() (one at a time, pool.h).  No lock:
 *
 *   unordered: a producer pushes each result onto arrived, a LIFO
 *     (I1: CAS, release); the consumer takes the whole list at once
 *     (exchange, acquire, pairing with I1: the node's contents are
 *     visible) and reverses it into its private ready list, so results
 *     come out in the order they arrived.
 *   ordered: slots[index % buffersize].  A producer stores the node
 *     (I2: release); the consumer loads slots[yielded % buffersize]
 *     (acquire, pairing with I2) and clears it.  The clear is relaxed: a
 *     producer stores into that slot again only for item yielded +
 *     buffersize, which the consumer submits after the clear, and the
 *     submission queue orders the two.
 *
 * Nodes.  A result of up to IMAP_SMALL bytes lives in a node that is
 * reused: next() releases the node it yielded on its following call and
 * hands such spares back in batches through returned, a LIFO (I3: CAS,
 * release); a producer whose own spares ran out takes the whole list
 * (exchange, acquire, pairing with I3: the consumer is done reading the
 * node before the producer writes it again) and allocates only when both
 * are empty.  Both LIFOs have a single taker that takes everything at
 * once, never one node, so a CAS can never act on a stale next pointer
 * (no ABA).  Larger results get a node of their own size, freed after
 * use.
 *
 * Wake-ups.  next() first helps the engine (internal.h), then spins, then
 * sleeps on arrived_ev; a producer signals it after each store (W1..W5 of
 * shm/futex.h, with the store above as W1).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "pool/internal.h"

/* Spares the consumer gathers before it hands them back. */
#define IMAP_GIVE_BACK 16

/* ---- the store: producer side (engine held) ------------------------------ */

static struct imap_node *node_get(struct mproc_imap *it, size_t len)
{
	struct imap_node *n;
	if (len > IMAP_SMALL) {
		n = malloc(sizeof(*n) + len);
		if (n)
			n->spare = false;
		return n;
	}
	if (!it->spares)
		/* Acquire: pairs with I3 (give_back). */
		it->spares = atomic_exchange_explicit(&it->returned, NULL,
						      memory_order_acquire);
	n = it->spares;
	if (n) {
		it->spares = n->next;
		return n;
	}
	n = malloc(sizeof(*n) + IMAP_SMALL);
	if (n)
		n->spare = true;
	return n;
}

void pool_imap_push(struct mproc_imap *it, size_t index, int status,
		    const void *data, size_t len)
{
	/* Relaxed: a result stored after the consumer let go is only
	 * wasted work; the last reference frees it with the rest. */
	if (atomic_load_explicit(&it->abandoned, memory_order_relaxed))
		return;
	if (status)
		len = 0;
	struct imap_node *n = node_get(it, len);
	if (!n)
		/* Without memory the result is lost and the consumer would
		 * wait for it for ever: nothing better can be done than to
		 * drop it; a later next() still times out normally. */
		return;
	n->index = index;
	n->status = status;
	n->len = len;
	if (len)
		memcpy(n->data, data, len);
	if (it->ordered) {
		/* I2: release, pairs with the acquire in imap_take. */
		atomic_store_explicit(&it->slots[index % it->buffersize], n,
				      memory_order_release);
	} else {
		n->next = atomic_load_explicit(&it->arrived,
					       memory_order_relaxed);
		/* I1: release, pairs with the exchange in imap_take. */
		while (!atomic_compare_exchange_weak_explicit(
			&it->arrived, &n->next, n, memory_order_release,
			memory_order_relaxed))
			;
	}
	/* W2..W5 of futex.h: wakes a sleeping next(). */
	mproc__event_signal(&it->arrived_ev);
}

static void free_list(struct imap_node *n)
{
	while (n) {
		struct imap_node *next = n->next;
		free(n);
		n = next;
	}
}

void pool_imap_unref(struct mproc_imap *it)
{
	/* AcqRel: the last one out frees what the others wrote. */
	if (atomic_fetch_sub_explicit(&it->refs, 1, memory_order_acq_rel) != 1)
		return;
	free_list(atomic_load_explicit(&it->arrived, memory_order_relaxed));
	free_list(atomic_load_explicit(&it->returned, memory_order_relaxed));
	free_list(it->ready);
	free_list(it->freed);
	free_list(it->spares);
	free(it->current);
	if (it->slots)
		for (size_t i = 0; i < it->buffersize; i++)
			free(atomic_load_explicit(&it->slots[i],
						  memory_order_relaxed));
	free(it->slots);
	free(it);
}

/* ---- the store: consumer side ---------------------------------------- */

/* Hand the gathered spares back to the producers. */
static void give_back(struct mproc_imap *it)
{
	struct imap_node *first = it->freed, *last = first;
	if (!first)
		return;
	while (last->next)
		last = last->next;
	last->next = atomic_load_explicit(&it->returned, memory_order_relaxed);
	/* I3: release, pairs with the exchange in node_get. */
	while (!atomic_compare_exchange_weak_explicit(
		&it->returned, &last->next, first, memory_order_release,
		memory_order_relaxed))
		;
	it->freed = NULL;
	it->nfreed = 0;
}

/* Release the node yielded last (its data was the caller's until now). */
static void release_current(struct mproc_imap *it)
{
	struct imap_node *n = it->current;
	if (!n)
		return;
	it->current = NULL;
	if (!n->spare) {
		free(n);
		return;
	}
	n->next = it->freed;
	it->freed = n;
	if (++it->nfreed >= IMAP_GIVE_BACK)
		give_back(it);
}

/* The next result if it is there. */
static struct imap_node *imap_take(struct mproc_imap *it)
{
	struct imap_node *n;
	if (it->ordered) {
		_Atomic(struct imap_node *) *s =
			&it->slots[it->yielded % it->buffersize];
		/* Acquire: pairs with I2 (pool_imap_push). */
		n = atomic_load_explicit(s, memory_order_acquire);
		if (!n || n->index != it->yielded)
			return NULL;
		/* Relaxed: see "ordered" at the top. */
		atomic_store_explicit(s, NULL, memory_order_relaxed);
		return n;
	}
	if (!it->ready) {
		/* Acquire: pairs with I1 (pool_imap_push). */
		struct imap_node *l = atomic_exchange_explicit(
			&it->arrived, NULL, memory_order_acquire);
		/* Newest first: reverse into arrival order. */
		while (l) {
			struct imap_node *next = l->next;
			l->next = it->ready;
			it->ready = l;
			l = next;
		}
	}
	n = it->ready;
	if (n)
		it->ready = n->next;
	return n;
}

/* A result is there for next() (the consumer's own view). */
static bool imap_ready(void *arg)
{
	struct mproc_imap *it = arg;
	if (it->ordered) {
		/* Acquire: as in imap_take. */
		const struct imap_node *n = atomic_load_explicit(
			&it->slots[it->yielded % it->buffersize],
			memory_order_acquire);
		return n && n->index == it->yielded;
	}
	return it->ready ||
	       atomic_load_explicit(&it->arrived, memory_order_acquire);
}

/* ---- reading the source ---------------------------------------------------- */

/* Queue chunk @c of @n items for imap_flush. */
static void imap_gather(struct mproc_imap *it, struct pool_chunk *c, size_t n)
{
	c->job = &it->job;
	c->first = it->submitted;
	c->n = n;
	c->imap = it;
	*it->batch_tail = c;
	it->batch_tail = &c->next;
	it->batch_items += n;
	it->submitted += n;
}

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
	struct pool_chunk *c;
	struct pool_own *own = pool_own_new(1, len, &c, NULL);
	if (!own) {
		it->src_ended = true;
		it->src_err = -ENOMEM;
		return -ENOMEM;
	}
	own->v[0].iov_base = &own->v[1];
	own->v[0].iov_len = len;
	if (len)
		memcpy(&own->v[1], item, len);
	imap_gather(it, c, 1);
	return 0;
}

/* Pull up to one chunk of items from the source. */
static int imap_pull(struct mproc_imap *it)
{
	size_t room = it->buffersize - (it->submitted - it->yielded);
	size_t want = it->chunksize < room ? it->chunksize : room;
	if (want == 1)
		return imap_pull_one(it);
	struct pool_own *own = NULL;
	struct pool_chunk *c = NULL;
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
		own = pool_own_new(n, bytes, &c, NULL);
		if (!own)
			rc = -ENOMEM;
	}
	if (rc || !n) {
		free(lens);
		free(data);
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
	imap_gather(it, c, n);
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

/* Top the buffer up, if refill items were yielded since it was full. */
static void imap_fill(struct mproc_imap *it)
{
	if (it->src_ended ||
	    it->buffersize - (it->submitted - it->yielded) < it->refill)
		return;
	while (!it->src_ended && it->submitted - it->yielded < it->buffersize)
		if (imap_pull(it) < 0)
			break;
	imap_flush(it);
}

/* ---- the API ----------------------------------------------------------------- */

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
	it->refill = it->buffersize / 4 > it->chunksize ? it->buffersize / 4
							: it->chunksize;
	pool_job_init(&it->job, pool, POOL_ITEMS_VAR, POOL_OUT_IMAP, id, 0);
	it->job.imap = it;
	atomic_init(&it->refs, 1);
	it->batch_tail = &it->batch;
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

MPROC_API int mproc_imap_next(mproc_imap *it, int64_t timeout_ns,
			      struct mproc_pool_result *res, size_t *index)
{
	if (!it || !res || timeout_ns < -1)
		return -EINVAL;
	release_current(it);
	imap_fill(it);
	if (it->yielded == it->submitted && it->src_ended) {
		int rc = it->src_err < 0 ? it->src_err : -MPROC_EEOF;
		it->src_err = 0; /* the error is reported once */
		return rc;
	}
	/* The clock is read only once next() has to wait. */
	struct mproc__lazy_deadline lazy;
	mproc__lazy_init(&lazy, timeout_ns);
	for (;;) {
		struct imap_node *n = imap_take(it);
		if (n) {
			it->yielded++;
			it->current = n;
			res->status = n->status;
			res->len = n->len;
			res->data = n->len ? n->data : NULL;
			if (index)
				*index = n->index;
			imap_fill(it);
			return 0;
		}
		if (pool_on_thread(it->pool))
			return -EDEADLK;
		if (mproc__lazy_nowait(&lazy))
			return -ETIMEDOUT;
		const struct mproc__deadline *d = mproc__lazy_get(&lazy);
		if (mproc__deadline_passed(d))
			return -ETIMEDOUT;
		/* About to wait: let the producers reuse what we hold. */
		give_back(it);
		/* Do the pool thread's work meanwhile if it is free. */
		pool_help(it->pool, imap_ready, it, d);
		if (pool_spin(imap_ready, it, POOL_SPIN_BUSY_NS / 8))
			continue;
		/* A1..A6 of futex.h, paired with the signal in
		 * pool_imap_push; a timeout is found at the loop's top. */
		mproc__event_wait(&it->arrived_ev, imap_ready, it, d, &it->spin,
				  NULL);
	}
}

MPROC_API void mproc_imap_free(mproc_imap *it)
{
	if (!it)
		return;
	/* Relaxed: producers only skip work when they see it. */
	atomic_store_explicit(&it->abandoned, true, memory_order_relaxed);
	pool_imap_unref(it);
}
