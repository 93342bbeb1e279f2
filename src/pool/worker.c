/*
 * The worker: runs in each worker process (a fork of the zygote), reads
 * task messages from its slot's task ring, runs them and writes result
 * messages to its result ring.  Also the task API (mproc_task_*), which a
 * task function calls from inside the worker.
 *
 * No malloc per task: the reassembly buffer for large tasks, the result
 * message under construction and the argument vector of star items are
 * reused from task to task and grow only when a larger one comes.  A
 * result is written straight into the result message being built (after
 * its item header), so mproc_task_result_buffer hands out that space and
 * mproc_task_return copies into it once.
 *
 * Results of a chunk go out in messages of about FLUSH_BYTES, and at the
 * end of the chunk: the parent sees progress on long chunks, and a worker
 * that dies loses at most one message worth of finished items (the parent
 * runs those again elsewhere, see pool.c).
 *
 * Publishing (the ring's head store and the doorbell) is batched: a worker
 * publishes when it has no task queued, or when a result has waited
 * PUBLISH_NS for it, or after a task that itself took that long.  Short
 * tasks so cost the parent one wake-up per batch, and a long task's result
 * does not wait for the tasks queued behind it.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/os.h"
#include "pool/fn.h"
#include "pool/internal.h"

#define FLUSH_BYTES (64 * 1024)
/* ... or of this many items: runs of empty results take no bytes. */
#define FLUSH_ITEMS 65536
#define PUBLISH_NS (50 * 1000)
#define CHECK_EVERY 16
#define SHORT_TASK_NS 2000
/* Exit status of a worker that cannot go on (corrupt ring, no memory):
 * the parent sees an unplanned death and recovers as for any other. */
#define WORKER_EXIT_BROKEN 3

struct fn_entry {
	void *fn;    /* NULL: did not resolve */
	int status;  /* 0, or why it did not resolve */
};

struct worker;

struct mproc_task {
	struct worker *w;
	uint64_t index;
	uint64_t res_len;   /* result bytes set so far */
	size_t res_off;     /* where they are in the output, 0: none yet */
	uint32_t msg_len;
	char msg[POOL_MSG_MAX + 1];
};

struct worker {
	const struct pool_worker_args *a;
	struct pool_cell *cell;
	struct mproc__ring task, result;
	struct pool_rx rx;
	struct fn_entry *fns;
	uint32_t nfns;
	/* The result message being built: pool_msg, uint64 first index,
	 * then items. */
	unsigned char *out;
	size_t out_len, out_cap;
	uint32_t out_items;
	size_t item_off;      /* where the current item's header starts */
	size_t run_off;       /* header of the run items may join, or 0 */
	uint64_t run_len;     /* the result length of that run */
	uint32_t run_n;       /* its items; written to it by run_close */
	struct iovec *args;   /* star items */
	size_t args_cap;
	struct mproc_task t;
	pid_t parent;
	bool unpublished;     /* results committed but not yet published */
	int64_t oldest_ns;    /* about when the oldest of them was done, or 0 */
	int64_t last_check_ns; /* the clock at the last publish_due look */
	unsigned since_check;  /* task messages done since */
	unsigned check_every;  /* look at the clock after this many */
};

/* Between sleep slices: stop waiting once the pool's parent is gone (the
 * zygote kills us then too; this covers a zygote that died first). */
static int parent_alive(void *arg)
{
	struct worker *w = arg;
	return mproc__pid_exited(w->parent) ? -MPROC_EPEERDIED : 0;
}

static bool task_pending(void *arg)
{
	struct worker *w = arg;
	return mproc__ring_pending(&w->task);
}

static int out_reserve(struct worker *w, size_t need)
{
	if (need <= w->out_cap)
		return 0;
	size_t cap = w->out_cap ? w->out_cap : FLUSH_BYTES * 2;
	while (cap < need)
		cap *= 2;
	void *p = realloc(w->out, cap);
	if (!p)
		return -ENOMEM;
	w->out = p;
	w->out_cap = cap;
	return 0;
}

static void out_begin(struct worker *w, uint64_t chunk, uint64_t first)
{
	struct pool_msg m = { .type = POOL_MSG_RESULT, .id = chunk };
	memcpy(w->out, &m, sizeof(m));
	memcpy(w->out + sizeof(m), &first, sizeof(first));
	w->out_len = sizeof(m) + sizeof(first);
	w->out_items = 0;
	w->run_off = 0;
}

static _Noreturn void worker_exit(int code)
{
	/* _exit: a fork of the zygote must not run its exit handlers. */
	_exit(code);
}

/* Tell the parent there is news in this slot (proto.h, "Helping"). */
static void notify(struct worker *w)
{
	mproc__ring_publish(&w->result);
	w->unpublished = false;
	w->oldest_ns = 0;
	/* Release: what we published before is visible to a parent that
	 * sees the count move.  Single writer: load + store. */
	uint64_t n = atomic_load_explicit(&w->cell->events,
					  memory_order_relaxed);
	atomic_store_explicit(&w->cell->events, n + 1, memory_order_release);
	/* A full fence between the store above and the load below, even
	 * where futex.h's W2 could be light: it pairs with the plain fence
	 * of a helper that stops polling (proto.h, "Helping"), and with the
	 * pool thread's A3 before it sleeps. */
	atomic_thread_fence(memory_order_seq_cst);
	if (!atomic_load_explicit(&w->a->hdr->helping, memory_order_relaxed))
		mproc__event_signal(&w->a->hdr->doorbell);
}

/* Whether to publish now, after a task message (results unpublished). */
static bool publish_due(struct worker *w)
{
	if (!mproc__ring_pending(&w->task))
		return true;
	/* While tasks are short the clock is read every CHECK_EVERY of
	 * them only (a clock read costs about as much as a tiny task's
	 * bookkeeping); after a long one, at every task again. */
	if (++w->since_check < w->check_every)
		return false;
	int64_t now = mproc__now_ns();
	int64_t span = now - w->last_check_ns;
	w->check_every = span / w->since_check < SHORT_TASK_NS ? CHECK_EVERY : 1;
	w->since_check = 0;
	w->last_check_ns = now;
	bool due = span >= PUBLISH_NS ||
		   (w->oldest_ns && now - w->oldest_ns >= PUBLISH_NS);
	if (!w->oldest_ns)
		w->oldest_ns = now;
	return due;
}

static void notify_cb(void *arg)
{
	notify(arg);
}

/* Send one message; it is published with the next notify (at once when
 * @now, else when the worker runs out of queued tasks). */
static int send_flat(struct worker *w, const void *msg, size_t len, bool now)
{
	struct pool_tx tx;
	pool_tx_start(&tx, len, pool_fill_flat, (void *)msg);
	int rc = pool_tx_send(&w->result, &tx, parent_alive, w, notify_cb, w);
	if (rc == 0) {
		w->unpublished = true;
		if (now)
			notify(w);
	}
	return rc;
}

/* Send the results gathered so far; @now: publish them at once (in the
 * middle of a long chunk, so that the parent sees progress). */
/* Write the open run's item count into its header; it takes no more. */
static void run_close(struct worker *w)
{
	if (!w->run_off)
		return;
	struct pool_item_res h;
	memcpy(&h, w->out + w->run_off, sizeof(h));
	h.n = w->run_n;
	memcpy(w->out + w->run_off, &h, sizeof(h));
	w->run_off = 0;
}

static void flush(struct worker *w, bool now)
{
	if (!w->out_items)
		return;
	run_close(w);
	struct pool_msg m;
	memcpy(&m, w->out, sizeof(m));
	m.aux = w->out_items;
	memcpy(w->out, &m, sizeof(m));
	if (send_flat(w, w->out, w->out_len, now) < 0)
		worker_exit(0); /* the parent is gone: nobody to report to */
	w->out_len = sizeof(m) + sizeof(uint64_t);
	w->out_items = 0;
	w->run_off = 0;
}

/* ---- the task API -------------------------------------------------------- */

/* Where an item's result of @len bytes goes: right at the item's start
 * when it can join the open run (proto.h), else after its own header. */
static size_t result_place(const struct worker *w, uint64_t len)
{
	if (w->run_off && len == w->run_len)
		return w->item_off;
	return w->item_off + sizeof(struct pool_item_res);
}

/* Copy @n bytes; inline for the small results of tiny tasks. */
static inline void copy_bytes(unsigned char *d, const unsigned char *s,
			      size_t n)
{
	if (n > 16) {
		memcpy(d, s, n);
	} else if (n >= 8) {
		uint64_t a, b;
		memcpy(&a, s, 8);
		memcpy(&b, s + n - 8, 8);
		memcpy(d, &a, 8);
		memcpy(d + n - 8, &b, 8);
	} else {
		for (size_t i = 0; i < n; i++)
			d[i] = s[i];
	}
}

/* Room for a result of @len bytes at @data (the slow path: the buffer
 * grows, or the task asked before with another length). */
static void *result_buffer_slow(struct worker *w, mproc_task *t, size_t len,
				size_t data)
{
	if (len > SIZE_MAX - data - 8 ||
	    out_reserve(w, data + (size_t)pool_pad8(len)) < 0)
		return NULL;
	/* An earlier buffer of another length sat elsewhere: keep what the
	 * task wrote there. */
	if (t->res_off && t->res_off != data && t->res_len)
		memmove(w->out + data, w->out + t->res_off,
			(size_t)(t->res_len < len ? t->res_len : len));
	t->res_off = data;
	t->res_len = len;
	return w->out + data;
}

/* The common case inline: the first result of the item, and room for it
 * (out_cap >= data: item_begin reserved the item's header). */
static inline void *result_buffer(struct worker *w, mproc_task *t, size_t len)
{
	size_t data = result_place(w, len);
	if (mproc__unlikely(t->res_off || len > w->out_cap - data ||
			    pool_pad8(len) > w->out_cap - data))
		return result_buffer_slow(w, t, len, data);
	t->res_off = data;
	t->res_len = len;
	return w->out + data;
}

MPROC_API void *mproc_task_result_buffer(mproc_task *t, size_t len)
{
	if (!t)
		return NULL;
	return result_buffer(t->w, t, len);
}

MPROC_API int mproc_task_return(mproc_task *t, const void *buf, size_t len)
{
	if (!t || (!buf && len))
		return -EINVAL;
	void *p = result_buffer(t->w, t, len);
	if (!p)
		return -ENOMEM;
	copy_bytes(p, buf, len);
	return 0;
}

MPROC_API int mproc_task_set_error(mproc_task *t, const char *message)
{
	if (!t || !message)
		return -EINVAL;
	size_t n = strnlen(message, POOL_MSG_MAX);
	memcpy(t->msg, message, n);
	t->msg[n] = '\0';
	t->msg_len = (uint32_t)n;
	return 0;
}

MPROC_API size_t mproc_task_index(const mproc_task *t)
{
	return t ? (size_t)t->index : 0;
}

/* ---- running items --------------------------------------------------------- */

/* Start item @i of the chunk: its header's place in the output. */
static void item_begin(struct worker *w, uint64_t i, uint64_t index)
{
	if (out_reserve(w, w->out_len + sizeof(struct pool_item_res)) < 0)
		worker_exit(WORKER_EXIT_BROKEN);
	w->item_off = w->out_len;
	w->t.index = index;
	w->t.res_len = 0;
	w->t.res_off = 0;
	w->t.msg_len = 0;
	/* Relaxed: read by the pool thread only after our death, which the
	 * kernel orders after these stores, or as a hint for timeouts. */
	atomic_store_explicit(&w->cell->item, i, memory_order_relaxed);
	if (w->a->timeouts)
		atomic_store_explicit(&w->cell->started_ns, mproc__now_ns(),
				      memory_order_relaxed);
	/* The chunk id stays from run_task's start to its end. */
}

/* Finish the current item with @status: header, data, message; or, for
 * a success that joins the open run (its data already sits in place,
 * result_place), one more item in the run's header. */
static void item_end(struct worker *w, int status)
{
	struct mproc_task *t = &w->t;
	uint64_t len = status == 0 ? t->res_len : 0;
	if (status == 0)
		t->msg_len = 0; /* a message only goes with a failure */
	size_t data = w->item_off + sizeof(struct pool_item_res);
	if (status == 0 && w->run_off && len == w->run_len) {
		size_t pl = (size_t)pool_pad8(len);
		/* A task that asked for no buffer has nothing reserved. */
		if (out_reserve(w, w->item_off + pl) < 0)
			worker_exit(WORKER_EXIT_BROKEN);
		if (pl > len)
			memset(w->out + w->item_off + len, 0, pl - (size_t)len);
		w->run_n++;
		w->out_len = w->item_off + pl;
		w->out_items++;
		return;
	}
	run_close(w);
	size_t end = data + (size_t)pool_pad8(len);
	size_t total = end + (size_t)pool_pad8(t->msg_len);
	if (out_reserve(w, total) < 0) {
		/* No room for the result: fail the item instead. */
		status = -ENOMEM;
		len = 0;
		t->msg_len = 0;
		end = total = data;
	}
	/* Zero the padding so no stale bytes leave the process. */
	if (end > data + len)
		memset(w->out + data + len, 0, end - data - (size_t)len);
	if (t->msg_len) {
		memset(w->out + end, 0, (size_t)pool_pad8(t->msg_len));
		memcpy(w->out + end, t->msg, t->msg_len);
	}
	struct pool_item_res h = { .status = status,
				   .n = status == 0 ? 1 : t->msg_len,
				   .len = len };
	memcpy(w->out + w->item_off, &h, sizeof(h));
	/* A run of one item that later ones of the same small length may
	 * join. */
	w->run_off = status == 0 && len <= POOL_RUN_MAX_LEN ? w->item_off : 0;
	w->run_len = len;
	w->run_n = 1;
	w->out_len = total;
	w->out_items++;
}

static int define_fn(struct worker *w, uint32_t id, const void *body,
		     uint64_t len)
{
	if (id >= POOL_MAX_FNS || id > w->nfns)
		return -MPROC_ECORRUPT;
	if (id == w->nfns) {
		struct fn_entry *f = realloc(w->fns, (id + 1) * sizeof(*f));
		if (!f)
			return -ENOMEM;
		w->fns = f;
		w->nfns = id + 1;
	}
	char why[128];
	void *fn = NULL;
	int rc = pool_fn_unpack(body, (size_t)len, &fn, why, sizeof(why));
	if (rc == -MPROC_ECORRUPT)
		return rc;
	w->fns[id].fn = rc ? NULL : fn;
	w->fns[id].status = rc;
	return 0;
}

/* A cursor over the items of a task body. */
struct items {
	const unsigned char *p, *end;
};

static int take_u64(struct items *it, uint64_t *v)
{
	if ((size_t)(it->end - it->p) < sizeof(*v))
		return -MPROC_ECORRUPT;
	memcpy(v, it->p, sizeof(*v));
	it->p += sizeof(*v);
	return 0;
}

static int take_bytes(struct items *it, uint64_t len, const void **out)
{
	uint64_t padded = pool_pad8(len);
	if (len > padded || padded > (uint64_t)(it->end - it->p))
		return -MPROC_ECORRUPT;
	*out = it->p;
	it->p += padded;
	return 0;
}

static int run_task(struct worker *w, uint64_t chunk, const void *body,
		    uint64_t len)
{
	struct pool_task tk;
	if (len < sizeof(tk))
		return -MPROC_ECORRUPT;
	memcpy(&tk, body, sizeof(tk));
	if (tk.nitems == 0 || tk.nitems > POOL_MAX_ITEMS ||
	    tk.layout < POOL_ITEMS_FIXED || tk.layout > POOL_ITEMS_STAR)
		return -MPROC_ECORRUPT;
	struct items it = { (const unsigned char *)body + sizeof(tk),
			    (const unsigned char *)body + len };
	if (tk.layout == POOL_ITEMS_FIXED && tk.item_size &&
	    (tk.item_size > len ||
	     tk.nitems > (len - sizeof(tk)) / pool_pad8(tk.item_size)))
		return -MPROC_ECORRUPT;
	const struct fn_entry *f =
		tk.fn_id < w->nfns ? &w->fns[tk.fn_id] : NULL;
	if (!f)
		return -MPROC_ECORRUPT;
	out_begin(w, chunk, 0);
	/* The chunk id is stored once per task, last: release, pairing
	 * with the acquire of a timeout check (pool.c check_timeouts), so a
	 * check that sees this chunk reads this start time or a later one,
	 * never one of an earlier chunk's items.  The item index is read
	 * only after our death (relaxed, as item_begin's stores). */
	atomic_store_explicit(&w->cell->item, 0, memory_order_relaxed);
	if (w->a->timeouts)
		atomic_store_explicit(&w->cell->started_ns, mproc__now_ns(),
				      memory_order_relaxed);
	atomic_store_explicit(&w->cell->chunk, chunk, memory_order_release);
	for (uint64_t i = 0; i < tk.nitems; i++) {
		const void *arg = NULL;
		uint64_t alen = 0, nargs = 0;
		int rc;
		switch (tk.layout) {
		case POOL_ITEMS_FIXED:
			alen = tk.item_size;
			rc = take_bytes(&it, alen, &arg);
			break;
		case POOL_ITEMS_VAR:
			rc = take_u64(&it, &alen);
			if (!rc)
				rc = take_bytes(&it, alen, &arg);
			break;
		default:
			rc = take_u64(&it, &nargs);
			if (!rc && nargs > POOL_MAX_ARGS)
				rc = -MPROC_ECORRUPT;
			if (!rc && nargs > w->args_cap) {
				struct iovec *v = realloc(w->args,
							  nargs * sizeof(*v));
				if (!v)
					return -ENOMEM;
				w->args = v;
				w->args_cap = nargs;
			}
			for (uint64_t k = 0; !rc && k < nargs; k++) {
				uint64_t l;
				const void *b;
				rc = take_u64(&it, &l);
				if (!rc)
					rc = take_bytes(&it, l, &b);
				if (!rc) {
					w->args[k].iov_base = (void *)b;
					w->args[k].iov_len = (size_t)l;
				}
			}
			break;
		}
		if (rc)
			return rc;
		item_begin(w, i, tk.first + i);
		int status;
		if (!f->fn)
			status = f->status;
		else if (tk.layout == POOL_ITEMS_STAR)
			status = ((mproc_star_fn)f->fn)(&w->t, w->args,
							(size_t)nargs);
		else
			status = ((mproc_task_fn)f->fn)(&w->t,
							alen ? arg : NULL,
							(size_t)alen);
		if (status > 0)
			status = 0;
		item_end(w, status);
		if (w->out_len >= FLUSH_BYTES || w->out_items >= FLUSH_ITEMS) {
			flush(w, true);
			out_begin(w, chunk, i + 1);
		}
	}
	flush(w, false);
	/* Relaxed: as item_begin's stores. */
	atomic_store_explicit(&w->cell->chunk, 0, memory_order_relaxed);
	return 0;
}

_Noreturn void pool_worker_main(const struct pool_worker_args *a)
{
	static struct worker w;
	w.a = a;
	/* Relaxed: written before the segment was published, which the
	 * segment's magic (release/acquire) ordered for the zygote. */
	w.parent = (pid_t)atomic_load_explicit(&a->hdr->parent_pid,
					       memory_order_relaxed);
	struct pool_slot_layout l;
	pool_slot_layout(a->slot, a->ring_cap, &l);
	w.cell = l.cell;
	/* Relaxed: informational (mproc-stat). */
	atomic_store_explicit(&w.cell->pid, (uint32_t)getpid(),
			      memory_order_relaxed);
	struct mproc__ring_geom g;
	pool_ring_geom(a->ring_cap, &g);
	if (mproc__ring_attach(&w.task, MPROC__RING_SPSC, l.task_sh,
			       l.task_buf, &g, false) < 0 ||
	    mproc__ring_attach(&w.result, MPROC__RING_SPSC, l.res_sh,
			       l.res_buf, &g, false) < 0 ||
	    out_reserve(&w, FLUSH_BYTES * 2) < 0)
		worker_exit(WORKER_EXIT_BROKEN);
	w.rx.limit = UINT64_MAX;
	w.t.w = &w;

	int status = a->init ? a->init(a->initarg, a->initarg_len) : 0;
	/* Any failure of the initializer is -MPROC_EINIT to the parent
	 * (pool.h); its own code goes to stderr for the operator. */
	if (status)
		fprintf(stderr, "mproc: pool worker %d: initializer failed: %s\n",
			(int)getpid(), mproc_strerror(status));
	struct pool_msg ready = { .type = POOL_MSG_READY,
				  .aux = (uint32_t)(status ? -MPROC_EINIT : 0) };
	if (send_flat(&w, &ready, sizeof(ready), true) < 0 || status)
		worker_exit(status ? 1 : 0);

	struct mproc__deadline forever;
	mproc__deadline_init(&forever, -1);
	for (;;) {
		const void *msg;
		uint64_t len;
		int rc = pool_rx_next(&w.task, &w.rx, &msg, &len);
		if (w.rx.fragments)
			/* We made room for the rest of a long task: the pool
			 * thread may be waiting to send it. */
			notify(&w);
		if (rc == 0) {
			if (w.unpublished)
				notify(&w);
			if (pool_spin(task_pending, &w, POOL_SPIN_BUSY_NS))
				continue;
			rc = mproc__ring_wait_data(&w.task, &forever,
						   parent_alive, &w);
			if (rc < 0)
				worker_exit(0);
			continue;
		}
		if (rc == -MPROC_EEOF)
			worker_exit(0); /* the pool closed our ring */
		if (rc < 0 || len < sizeof(struct pool_msg))
			worker_exit(WORKER_EXIT_BROKEN);
		struct pool_msg m;
		memcpy(&m, msg, sizeof(m));
		const void *body = (const unsigned char *)msg + sizeof(m);
		uint64_t blen = len - sizeof(m);
		switch (m.type) {
		case POOL_MSG_DEFINE:
			rc = define_fn(&w, m.aux, body, blen);
			break;
		case POOL_MSG_TASK:
			rc = run_task(&w, m.id, body, blen);
			break;
		case POOL_MSG_RETIRE: {
			pool_rx_done(&w.task, &w.rx);
			struct pool_msg bye = { .type = POOL_MSG_BYE };
			send_flat(&w, &bye, sizeof(bye), true);
			worker_exit(0);
		}
		default:
			rc = -MPROC_ECORRUPT;
			break;
		}
		if (rc < 0)
			worker_exit(WORKER_EXIT_BROKEN);
		pool_rx_done(&w.task, &w.rx);
		/* Batch: publish and ring once we have no queued task left
		 * (the parent sends a window of tasks at a time), or when
		 * results waited long enough (see the top). */
		if (w.unpublished && publish_due(&w))
			notify(&w);
	}
}
