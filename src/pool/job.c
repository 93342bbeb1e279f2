/*
 * Jobs and chunks, the layer under the engine (pool.c) and above async
 * results: how a chunk becomes a task message (the encoder), the imap
 * iterator's result store, how a result reaches its job (delivery, under
 * the engine), and the lifetime of chunks and the item blocks they carry.
 *
 * Items are copied into the rings straight from where the caller keeps
 * them: map's array, map_iov's iovecs, starmap's tuples.  Only apply_async
 * and imap copy their items at submission (pool_own), because the caller
 * may reuse the memory as soon as the call returns.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "pool/internal.h"

/* ---- the encoder: a chunk as a sequence of byte pieces ----------------- */

struct pool_encoder {
	struct pool_chunk *c;
	unsigned char head[sizeof(struct pool_msg) + sizeof(struct pool_task)];
	uint64_t word;       /* a length or count prefix being sent */
	const unsigned char *p;
	size_t plen, ppos;   /* the current piece */
	size_t item;         /* item of the chunk (0..n) */
	size_t arg;          /* STAR: argument of the item */
	int st;              /* step within the item */
};

static const unsigned char zeros[8];

/* The bytes of item @i (chunk-relative) in VAR layout. */
static struct iovec var_item(const struct pool_chunk *c, size_t i)
{
	if (c->own)
		return c->own->v[c->own_first + i];
	return c->job->iov[c->first + i];
}

static void piece(struct pool_encoder *e, const void *p, size_t len)
{
	e->p = p;
	e->plen = len;
	e->ppos = 0;
}

static void word_piece(struct pool_encoder *e, uint64_t v)
{
	e->word = v;
	piece(e, &e->word, sizeof(e->word));
}

/* Advance to the next piece; false at the end of the message. */
static bool next_piece(struct pool_encoder *e)
{
	const struct pool_chunk *c = e->c;
	const struct pool_job *j = c->job;
	for (;;) {
		if (e->item >= c->n)
			return false;
		size_t gi = c->first + e->item;
		switch (j->layout) {
		case POOL_ITEMS_FIXED:
			if (e->st == 0 && j->item_size % 8 == 0) {
				/* Whole run at once: no padding anywhere. */
				piece(e, j->items + gi * j->item_size,
				      (c->n - e->item) * j->item_size);
				e->item = c->n;
				return true;
			}
			if (e->st == 0) {
				piece(e, j->items + gi * j->item_size,
				      j->item_size);
				e->st = 1;
				return true;
			}
			piece(e, zeros,
			      (size_t)(pool_pad8(j->item_size) - j->item_size));
			e->st = 0;
			e->item++;
			return true;
		case POOL_ITEMS_VAR: {
			struct iovec v = var_item(c, e->item);
			if (e->st == 0) {
				word_piece(e, v.iov_len);
				e->st = 1;
			} else if (e->st == 1) {
				piece(e, v.iov_base, v.iov_len);
				e->st = 2;
			} else {
				piece(e, zeros, (size_t)(pool_pad8(v.iov_len) -
							 v.iov_len));
				e->st = 0;
				e->item++;
			}
			return true;
		}
		default: {
			size_t nargs = j->nargs[gi];
			const struct iovec *args = j->star[gi];
			if (e->st == 0) {
				word_piece(e, nargs);
				e->st = 1;
				e->arg = 0;
				return true;
			}
			if (e->arg == nargs) {
				e->st = 0;
				e->item++;
				continue;
			}
			const struct iovec *v = &args[e->arg];
			if (e->st == 1) {
				word_piece(e, v->iov_len);
				e->st = 2;
			} else if (e->st == 2) {
				piece(e, v->iov_base, v->iov_len);
				e->st = 3;
			} else {
				piece(e, zeros, (size_t)(pool_pad8(v->iov_len) -
							 v->iov_len));
				e->st = 1;
				e->arg++;
			}
			return true;
		}
		}
	}
}

static size_t enc_fill(void *ctx, uint64_t off, void *dst, size_t cap)
{
	(void)off; /* pool_tx_push asks for the bytes in order */
	struct pool_encoder *e = ctx;
	size_t done = 0;
	while (done < cap) {
		if (e->ppos == e->plen) {
			if (!next_piece(e))
				break;
			continue;
		}
		size_t n = e->plen - e->ppos;
		if (n > cap - done)
			n = cap - done;
		memcpy((unsigned char *)dst + done, e->p + e->ppos, n);
		e->ppos += n;
		done += n;
	}
	return done;
}

/* Bytes of the chunk's items in the message. */
static uint64_t items_size(const struct pool_chunk *c)
{
	const struct pool_job *j = c->job;
	uint64_t n = 0;
	if (j->layout == POOL_ITEMS_FIXED)
		return (uint64_t)c->n * pool_pad8(j->item_size);
	for (size_t i = 0; i < c->n; i++) {
		if (j->layout == POOL_ITEMS_VAR) {
			n += 8 + pool_pad8(var_item(c, i).iov_len);
			continue;
		}
		size_t gi = c->first + i;
		n += 8;
		for (size_t k = 0; k < j->nargs[gi]; k++)
			n += 8 + pool_pad8(j->star[gi][k].iov_len);
	}
	return n;
}

int pool_encode_task(struct pool_slot *s, struct pool_chunk *c)
{
	struct pool_encoder *e = s->enc;
	if (!e && !(e = s->enc = calloc(1, sizeof(*e))))
		return -ENOMEM;
	memset(e, 0, sizeof(*e));
	e->c = c;
	struct pool_msg m = { .type = POOL_MSG_TASK, .id = c->id };
	struct pool_task t = {
		.fn_id = c->job->fn_id,
		.layout = c->job->layout,
		.nitems = c->n,
		.first = c->job->index_base + c->first,
		.item_size = c->job->item_size,
	};
	memcpy(e->head, &m, sizeof(m));
	memcpy(e->head + sizeof(m), &t, sizeof(t));
	piece(e, e->head, sizeof(e->head));
	pool_tx_start(&s->tx, sizeof(e->head) + items_size(c), enc_fill, e);
	return 0;
}

void pool_encoder_free(struct pool_encoder *e)
{
	free(e);
}

/* ---- delivery (pool thread) ------------------------------------------------ */

/* Progress runs on the pool thread; a helper leaves a note for it. */
static void call_progress(struct pool_job *job, size_t done)
{
	struct pool_event *ev;
	if (pool_on_thread(job->pool)) {
		job->progress(done, job->count, job->userdata);
	} else if ((ev = calloc(1, sizeof(*ev))) != NULL) {
		ev->progress = job->progress;
		ev->userdata = job->userdata;
		ev->done = done;
		ev->total = job->count;
		pool_defer(job->pool, ev);
	}
}

void pool_defer(mproc_pool *p, struct pool_event *ev)
{
	ev->next = NULL;
	if (p->ev_tail)
		p->ev_tail->next = ev;
	else
		p->ev_head = ev;
	p->ev_tail = ev;
}

/* Finish the job's async result: publish it, then its callbacks on the
 * pool thread -- now, or queued when a helper delivered. */
static void job_complete(struct pool_job *job)
{
	mproc_async *a = job->async;
	mproc_pool *pool = job->pool;
	pool_stats_flush(pool);
	a->nfailed = job->failed;
	int status = job->failed ? job->first_err : 0;
	/* A job in an item block goes with the block, after its chunk's
	 * last delivery (internal.h, struct pool_own). */
	if (!job->in_block)
		free(job);
	pool_async_publish(a, status);
	if (pool_async_has_callback(a) && !pool_on_thread(pool)) {
		struct pool_event *ev = calloc(1, sizeof(*ev));
		if (ev) {
			/* The pool thread also drops the pool's reference. */
			ev->async = a;
			pool_defer(pool, ev);
			return;
		}
		/* No memory for the note: run it here rather than never. */
	}
	pool_async_run_callback(a);
}

void pool_deliver(struct pool_job *job, size_t index, int status,
		  const void *data, size_t len, const char *msg, int signo)
{
	mproc_pool *pool = job->pool;
	switch (job->out) {
	case POOL_OUT_IMAP:
		pool_imap_push(job->imap, index, status, data, len);
		pool->completed_local++;
		if (status)
			pool->failed_local++;
		return;
	case POOL_OUT_BYTES:
		if (status == 0 && len) {
			void *p = len <= sizeof(job->async->small)
					  ? job->async->small
					  : malloc(len);
			if (p) {
				memcpy(p, data, len);
				job->async->data = p;
				job->async->len = len;
			} else {
				status = -ENOMEM;
			}
		}
		job->async->signo = signo;
		break;
	case POOL_OUT_FIXED:
		if (status == 0 && len > job->result_size)
			status = -EMSGSIZE;
		if (status == 0 && job->result_size)
			pool_store_fixed(job, index, data, len);
		if (job->status)
			job->status[index] = status;
		break;
	case POOL_OUT_VRES: {
		struct mproc_pool_result *r = &job->vres[index];
		r->data = NULL;
		r->len = 0;
		if (status == 0 && len) {
			r->data = malloc(len);
			if (r->data) {
				memcpy(r->data, data, len);
				r->len = len;
			} else {
				status = -ENOMEM;
			}
		}
		r->status = status;
		break;
	}
	case POOL_OUT_SINK:
		job->sink->item(job->sink_arg, index, status, data, len, msg);
		break;
	}
	pool->completed_local++;
	if (status) {
		pool->failed_local++;
		job->failed++;
		if (index < job->first_err_index) {
			job->first_err_index = index;
			job->first_err = status;
			if (job->async && msg && *msg) {
				char *m = strdup(msg);
				if (m) {
					free(job->async->message);
					job->async->message = m;
				}
			}
			if (job->async && job->out != POOL_OUT_BYTES)
				job->async->signo = signo;
		}
	}
	job->done++;
	if (job->progress &&
	    (job->done >= job->progress_next || job->done == job->count)) {
		call_progress(job, job->done);
		job->progress_next = job->done + job->progress_step;
	}
	if (job->done == job->count)
		job_complete(job);
}

void pool_job_empty_done(struct pool_job *job)
{
	if (job->progress)
		call_progress(job, 0);
	job_complete(job);
}

void pool_own_put(struct pool_own *o)
{
	if (o && --o->refs == 0)
		free(o->block);
}

/* Free @c's memory unless it lives in its item block, then drop its
 * reference on the block (last: that may free @c). */
static void chunk_release(struct pool_chunk *c)
{
	struct pool_own *own = c->own;
	if (!c->in_block)
		free(c);
	pool_own_put(own);
}

void pool_chunk_free(struct pool_chunk *c)
{
	struct mproc_imap *it = c->imap;
	if (it && c->in_block && c->own->spare && c->own->refs == 1) {
		/* Back to the iterator, before our reference on it goes
		 * (the last one frees what it holds). */
		pool_imap_recycle(it, c);
		pool_imap_unref(it);
		return;
	}
	if (it)
		pool_imap_unref(it);
	chunk_release(c);
}

void pool_chunk_ref_imap(struct pool_chunk *c)
{
	if (c->imap)
		/* Relaxed: the caller already holds a reference; the last
		 * unref is acq_rel (pool_imap_unref). */
		atomic_fetch_add_explicit(&c->imap->refs, 1,
					  memory_order_relaxed);
}

/* Rounded up to keep what follows in a block aligned. */
#define BLOCK_PART(t) ((sizeof(t) + 15) & ~(size_t)15)

struct pool_own *pool_own_new(size_t n, size_t bytes, struct pool_chunk **chunk,
			      struct pool_job **job)
{
	size_t head = BLOCK_PART(struct pool_chunk) +
		      (job ? BLOCK_PART(struct pool_job) : 0);
	if (n > (SIZE_MAX - head - sizeof(struct pool_own) - bytes) /
			sizeof(struct iovec))
		return NULL;
	unsigned char *b = malloc(head + sizeof(struct pool_own) +
				  n * sizeof(struct iovec) + bytes);
	if (!b)
		return NULL;
	struct pool_own *o = (struct pool_own *)(b + head);
	o->refs = 1;
	o->n = n;
	o->block = b;
	o->spare = false;
	struct pool_chunk *c = (struct pool_chunk *)b;
	memset(c, 0, sizeof(*c));
	c->own = o;
	c->in_block = true;
	*chunk = c;
	if (job) {
		*job = (struct pool_job *)(b + BLOCK_PART(struct pool_chunk));
		memset(*job, 0, sizeof(**job));
		(*job)->in_block = true;
	}
	return o;
}

struct pool_own *pool_own_renew(struct pool_chunk *c)
{
	struct pool_own *o = c->own;
	memset(c, 0, sizeof(*c));
	c->own = o;
	c->in_block = true;
	o->refs = 1;
	o->n = 1;
	return o;
}

/* ---- submission ------------------------------------------------------------ */

void pool_job_init(struct pool_job *j, mproc_pool *pool, int layout, int out,
		   int fn_id, size_t count)
{
	j->pool = pool;
	j->layout = (uint32_t)layout;
	j->out = out;
	j->fn_id = (uint32_t)fn_id;
	j->count = count;
	j->first_err_index = SIZE_MAX;
}

struct pool_job *pool_job_new(mproc_pool *pool, int layout, int out,
				int fn_id, size_t count)
{
	struct pool_job *j = calloc(1, sizeof(*j));
	if (j)
		pool_job_init(j, pool, layout, out, fn_id, count);
	return j;
}

/* Cut items [0, count) of @job into chunks of @chunksize, linked through
 * ->next; NULL without memory (then nothing is left allocated). */
struct pool_chunk *pool_make_chunks(struct pool_job *job, size_t chunksize)
{
	struct pool_chunk *head = NULL, **tail = &head;
	size_t first = 0;
	do {
		struct pool_chunk *c = calloc(1, sizeof(*c));
		if (!c) {
			while (head) {
				struct pool_chunk *n = head->next;
				free(head);
				head = n;
			}
			return NULL;
		}
		c->job = job;
		c->first = first;
		c->n = job->count - first < chunksize ? job->count - first
						      : chunksize;
		*tail = c;
		tail = &c->next;
		first += c->n;
	} while (first < job->count);
	return head;
}

void pool_chunks_free(struct pool_chunk *c)
{
	while (c) {
		struct pool_chunk *n = c->next;
		chunk_release(c);
		c = n;
	}
}
