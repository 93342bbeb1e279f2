/*
 * The pool: creation and shutdown, and the pool thread, which hands chunks
 * to workers, collects their results, notices deaths and timeouts, and
 * takes the pool down on close or terminate.  It reaches the workers
 * through a transport (internal.h, "The transport seam"); what follows
 * says how the local one (local.c) behaves where it matters.
 *
 * The pool thread (or a helper holding the engine) is the only thread that
 * touches the slots, the transport's parent ends, the pending list and the
 * in-flight lists, so none of them needs a lock.  It sleeps in the
 * transport (local: on the segment's doorbell, proto.h) and wakes for: a
 * submission, a result from any worker, room for the rest of a long task,
 * a worker that started or ended, or a request (close, terminate) from
 * another thread; and every 10 ms when tasks have a timeout, else every
 * 100 ms to check that the transport (local: the zygote) is alive.
 *
 * A worker that dies (proto.h explains what the parent learns and when):
 *   1. what it sent is collected: results sent before the death count;
 *   2. the item the transport names as running fails, with
 *      -MPROC_EWORKERLOST and the signal that ended it (-ETIMEDOUT if the
 *      pool killed it for overrunning the task timeout);
 *   3. every other item it had been given and had not reported goes back
 *      to the front of the pending list, in order (items it finished but
 *      had not yet reported run again: at most one result message worth);
 *   4. the transport resets the slot (local: both rings re-initialised)
 *      and is asked for a replacement.
 * A worker that ends after announcing it (maxtasksperchild: BYE; or after
 * close, when its task channel was closed) goes through the same steps
 * with nothing in flight and is not counted as lost.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/bits.h"
#include "common/clock.h"
#include "common/fork.h"
#include "mpi/hooks.h"
#include "pool/fn.h"
#include "pool/internal.h"
#include "process/context.h"

#define DEFAULT_RING_CAP (256 * 1024)
#define MIN_RING_CAP 4096
#define MAX_RING_CAP (UINT64_C(1) << 30)
#define DEFAULT_WINDOW 16
#define MAX_WINDOW 1024
/* How far the default window may grow for short tasks (see collect). */
#define WINDOW_GROWTH 16
#define TICK_TIMEOUT_NS (10 * MPROC_MSEC)
#define TICK_IDLE_NS (100 * MPROC_MSEC)

MPROC_API void mproc_pool_attr_init(struct mproc_pool_attr *attr)
{
	if (!attr)
		return;
	memset(attr, 0, sizeof(*attr));
	attr->task_timeout_ns = MPROC_FOREVER;
}

/* ---- small helpers ------------------------------------------------------- */

void pool_kick(mproc_pool *pool)
{
	/* Release: the request (a state store) is visible to a pool thread
	 * that sees the count move. */
	atomic_fetch_add_explicit(&pool->kicks, 1, memory_order_release);
	pool->tp->wake(pool);
}

/* seq_cst: the state is one side of the submitters handshake (see
 * pool_submit_ex) and of close/terminate's CAS below. */
static int get_state(const mproc_pool *pool)
{
	return atomic_load_explicit(&pool->state, memory_order_seq_cst);
}

int pool_fn_id(mproc_pool *pool, const void *fn)
{
	/* Acquire: entries below the count are complete (release below). */
	uint32_t n = atomic_load_explicit(&pool->fn_count, memory_order_acquire);
	for (uint32_t i = n; i-- > 0;)
		if (pool->fns[i].fn == fn)
			return (int)i;
	pthread_mutex_lock(&pool->fn_lock);
	/* Relaxed: only this lock's holders store the count. */
	n = atomic_load_explicit(&pool->fn_count, memory_order_relaxed);
	for (uint32_t i = 0; i < n; i++)
		if (pool->fns[i].fn == fn) {
			pthread_mutex_unlock(&pool->fn_lock);
			return (int)i;
		}
	int rc = n < POOL_MAX_FNS ? 0 : -ENOSPC;
	void *packed = NULL;
	size_t len = 0;
	if (!rc)
		rc = pool_fn_pack(fn, &packed, &len);
	unsigned char *msg = NULL;
	if (!rc && !(msg = malloc(sizeof(struct pool_msg) + len)))
		rc = -ENOMEM;
	if (!rc) {
		struct pool_msg m = { .type = POOL_MSG_DEFINE, .aux = n };
		memcpy(msg, &m, sizeof(m));
		memcpy(msg + sizeof(m), packed, len);
		pool->fns[n] = (struct pool_fn){ fn, msg, sizeof(m) + len };
		atomic_store_explicit(&pool->fn_count, n + 1,
				      memory_order_release);
		rc = (int)n;
	}
	pthread_mutex_unlock(&pool->fn_lock);
	free(packed);
	return rc;
}

int pool_check_open(const mproc_pool *pool)
{
	if (pool->owner_pid != mproc__self_pid())
		return -ECHILD;
	if (pool->broken_init)
		return -MPROC_EINIT;
	return get_state(pool) == POOL_RUNNING ? 0 : -EPIPE;
}

int pool_submit(mproc_pool *pool, struct pool_chunk *chunks, size_t nitems)
{
	return pool_submit_ex(pool, chunks, nitems, true);
}

int pool_submit_ex(mproc_pool *pool, struct pool_chunk *chunks,
		   size_t nitems, bool ring)
{
	if (pool->owner_pid != mproc__self_pid())
		return -ECHILD;
	/* seq_cst with the state store of close/terminate and the pool
	 * thread's check of submitters: either we see the pool closed, or
	 * it sees us in progress and drains the queue after us. */
	atomic_fetch_add_explicit(&pool->submitters, 1, memory_order_seq_cst);
	int st = get_state(pool);
	if (st != POOL_RUNNING || pool->broken_init) {
		atomic_fetch_sub_explicit(&pool->submitters, 1,
					  memory_order_seq_cst);
		return pool->broken_init ? -MPROC_EINIT : -EPIPE;
	}
	for (struct pool_chunk *c = chunks, *next; c; c = next) {
		next = c->next;
		c->next = NULL;
		cds_wfcq_node_init(&c->node);
		/* The enqueue publishes the chunk (and its job) to the pool
		 * thread; the edge is inside liburcu (see compiler.h). */
		mproc__tsan_release(c);
		cds_wfcq_enqueue(&pool->q_head, &pool->q_tail, &c->node);
	}
	atomic_fetch_add_explicit(&pool->st_submitted, nitems,
				  memory_order_relaxed);
	atomic_fetch_sub_explicit(&pool->submitters, 1, memory_order_seq_cst);
	if (ring)
		pool->tp->wake(pool);
	return 0;
}

/* ---- pool thread: chunks ------------------------------------------------ */

/* Append @c to the list @head/@tail (pending or a slot's in-flight). */
static void list_append(struct pool_chunk **head, struct pool_chunk **tail,
			struct pool_chunk *c)
{
	c->next = NULL;
	if (*tail)
		(*tail)->next = c;
	else
		*head = c;
	*tail = c;
}

static void pending_push_back(mproc_pool *p, struct pool_chunk *c)
{
	list_append(&p->pending, &p->pending_tail, c);
}

/* Take the head chunk off the slot's in-flight list (all its items are
 * accounted for). */
static void inflight_pop(struct pool_slot *s)
{
	struct pool_chunk *c = s->inflight;
	s->inflight = c->next;
	if (!s->inflight)
		s->inflight_tail = NULL;
	s->ninflight--;
}

/* Forget the message being sent to @s.  A task message reads its chunk
 * as it goes (job.c, the encoder), so whoever frees or hands away the
 * slot's in-flight chunks calls this first: the rest of a half-sent task
 * is never asked for, and the worker, killed or gone, never sees its end
 * (a transport starting the slot anew resets the ring, tp->reset). */
static void forget_send(struct pool_slot *s)
{
	s->tx_kind = 0;
}

/* Fail the items of @c not yet reported, then free it. */
static void fail_chunk(struct pool_chunk *c, int status, const char *msg,
		       int signo)
{
	/* Deliver first: the chunk holds a reference on an imap iterator,
	 * which owns the job.  A plain job may be freed by the last
	 * delivery, and freeing the chunk then does not touch it. */
	for (size_t i = c->reported; i < c->n; i++)
		pool_deliver(c->job, c->first + i, status, NULL, 0, msg, signo);
	pool_chunk_free(c);
}

/* Fail every chunk in flight at @s, and the send that may read one. */
static void fail_inflight(struct pool_slot *s, int status, const char *msg)
{
	forget_send(s);
	for (struct pool_chunk *c = s->inflight, *next; c; c = next) {
		next = c->next;
		fail_chunk(c, status, msg, 0);
	}
	s->inflight = s->inflight_tail = NULL;
	s->ninflight = 0;
}

/* A new chunk for items [a, b) (chunk-relative) of @c. */
static struct pool_chunk *split(const struct pool_chunk *c, size_t a, size_t b)
{
	struct pool_chunk *nc = calloc(1, sizeof(*nc));
	if (!nc)
		return NULL;
	nc->job = c->job;
	nc->first = c->first + a;
	nc->n = b - a;
	nc->own = c->own;
	nc->own_first = c->own_first + a;
	if (nc->own)
		nc->own->refs++;
	nc->imap = c->imap;
	nc->requeued = c->requeued + 1;
	pool_chunk_ref_imap(nc);
	return nc;
}

static void take_submissions(mproc_pool *p)
{
	struct cds_wfcq_node *n;
	while ((n = __cds_wfcq_dequeue_blocking(&p->q_head, &p->q_tail))) {
		struct pool_chunk *c = caa_container_of(n, struct pool_chunk,
							node);
		mproc__tsan_acquire(c);
		c->id = ++p->next_chunk_id;
		if (c->n == 0) {
			struct pool_job *job = c->job;
			pool_chunk_free(c);
			pool_job_empty_done(job);
			continue;
		}
		int st = get_state(p);
		if (st == POOL_TERMINATED)
			fail_chunk(c, -ECANCELED, NULL, 0);
		else if (st == POOL_BROKEN)
			fail_chunk(c, -MPROC_EWORKERLOST,
				   "the pool's zygote process died", 0);
		else if (p->broken_init)
			fail_chunk(c, -MPROC_EINIT, NULL, 0);
		else
			pending_push_back(p, c);
	}
}

/* ---- pool thread: slots ------------------------------------------------- */

static void set_slot_pid(mproc_pool *p, struct pool_slot *s, pid_t pid)
{
	pthread_mutex_lock(&p->lock);
	s->pid = pid;
	pthread_mutex_unlock(&p->lock);
}

static void kill_worker(mproc_pool *p, struct pool_slot *s)
{
	if (s->kill_sent || s->pid <= 0)
		return;
	s->kill_sent = true;
	p->tp->kill(p, (unsigned)(s - p->slots), s->pid);
}

static void start_slot(mproc_pool *p, struct pool_slot *s)
{
	if (p->tp->start(p, (unsigned)(s - p->slots)) == 0)
		s->state = SLOT_STARTING;
	else
		s->state = SLOT_EMPTY;
}

static void notify_waiters(mproc_pool *p)
{
	pthread_mutex_lock(&p->lock);
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
}

/* One whole message from the worker of @slot (internal.h). */
int pool_on_message(mproc_pool *p, unsigned slot, const void *msg,
		    uint64_t len)
{
	struct pool_slot *s = &p->slots[slot];
	struct pool_msg m;
	if (len < sizeof(m))
		return -MPROC_ECORRUPT;
	memcpy(&m, msg, sizeof(m));
	const unsigned char *b = (const unsigned char *)msg + sizeof(m);
	const unsigned char *end = (const unsigned char *)msg + len;
	switch (m.type) {
	case POOL_MSG_READY:
		if (s->state != SLOT_INIT)
			return -MPROC_ECORRUPT;
		s->init_status = (int32_t)m.aux;
		if (s->init_status == 0) {
			s->state = SLOT_READY;
			pthread_mutex_lock(&p->lock);
			p->nready++;
			pthread_cond_broadcast(&p->cond);
			pthread_mutex_unlock(&p->lock);
		} else {
			s->state = SLOT_STOPPING;
			pthread_mutex_lock(&p->lock);
			if (!p->init_error)
				p->init_error = -MPROC_EINIT;
			if (p->created)
				p->broken_init = true;
			pthread_cond_broadcast(&p->cond);
			pthread_mutex_unlock(&p->lock);
		}
		return 0;
	case POOL_MSG_BYE:
		s->bye = true;
		return 0;
	case POOL_MSG_RESULT:
		break;
	default:
		return -MPROC_ECORRUPT;
	}
	struct pool_chunk *c = s->inflight;
	uint64_t first;
	if (!c || c->id != m.id || (size_t)(end - b) < sizeof(first))
		return -MPROC_ECORRUPT;
	memcpy(&first, b, sizeof(first));
	b += sizeof(first);
	if (first != c->reported || m.aux > c->n - c->reported)
		return -MPROC_ECORRUPT;
	/* m.aux <= items left in c: every record below stays within c. */
	for (uint32_t k = 0; k < m.aux;) {
		struct pool_item_res h;
		if ((size_t)(end - b) < sizeof(h))
			return -MPROC_ECORRUPT;
		memcpy(&h, b, sizeof(h));
		b += sizeof(h);
		uint32_t count = h.status == 0 ? h.n : 1;
		uint32_t msg_len = h.status == 0 ? 0 : h.n;
		uint64_t dl = pool_pad8(h.len), ml = pool_pad8(msg_len);
		if (count == 0 || count > m.aux - k || h.status > 0 ||
		    msg_len > POOL_MSG_MAX || dl < h.len ||
		    (count > 1 && h.len > POOL_RUN_MAX_LEN) ||
		    (h.status != 0 && h.len) ||
		    dl * count > (uint64_t)(end - b) ||
		    ml > (uint64_t)(end - b) - dl * count)
			return -MPROC_ECORRUPT;
		k += count;
		while (count) {
			size_t index = c->first + c->reported;
			bool last = c->reported + 1 == c->n;
			if (!last && h.status == 0) {
				/* Not the chunk's last item: as many as the job
				 * takes on its fast path. */
				size_t run = c->n - c->reported - 1;
				if (run > count)
					run = count;
				size_t d = pool_deliver_fast(c->job, index, run, b,
							     (size_t)h.len,
							     (size_t)dl);
				if (d) {
					c->reported += d;
					b += d * dl;
					count -= (uint32_t)d;
					continue;
				}
			}
			char text[POOL_MSG_MAX + 1];
			memcpy(text, b + dl, msg_len);
			text[msg_len] = '\0';
			c->reported++;
			if (last)
				inflight_pop(s);
			/* Deliver, then free (see fail_chunk). */
			pool_deliver(c->job, index, h.status, b, (size_t)h.len,
				     text, 0);
			b += dl;
			count--;
			if (last) {
				pool_chunk_free(c);
				/* Nothing may follow the chunk's last item. */
				return count || k < m.aux ? -MPROC_ECORRUPT : 0;
			}
		}
		b += ml;
	}
	return 0;
}

/* A message the transport could not hold (internal.h): its items fail,
 * the rest goes on. */
int pool_on_lost_message(mproc_pool *p, unsigned slot, const void *head,
			 size_t len)
{
	struct pool_slot *s = &p->slots[slot];
	struct pool_msg m;
	uint64_t first;
	struct pool_chunk *c = s->inflight;
	if (!c || len < sizeof(m) + sizeof(first))
		return -MPROC_ECORRUPT;
	memcpy(&m, head, sizeof(m));
	memcpy(&first, (const unsigned char *)head + sizeof(m), sizeof(first));
	if (m.type != POOL_MSG_RESULT || c->id != m.id ||
	    first != c->reported || m.aux > c->n - c->reported)
		return -MPROC_ECORRUPT;
	for (uint32_t k = 0; k < m.aux; k++) {
		size_t index = c->first + c->reported++;
		bool last = c->reported == c->n;
		if (last)
			inflight_pop(s);
		pool_deliver(c->job, index, -ENOMEM, NULL, 0, NULL, 0);
		if (last)
			pool_chunk_free(c);
	}
	return 0;
}

/* Take in every whole message the worker of @s sent. */
static void collect(mproc_pool *p, struct pool_slot *s)
{
	unsigned before = s->ninflight;
	if (p->tp->collect(p, (unsigned)(s - p->slots)) < 0)
		/* A protocol error: the worker cannot be trusted; kill it
		 * and recover as from any death. */
		kill_worker(p, s);
	pool_stats_flush(p);
	/* The worker went through everything it was given while more was
	 * waiting: its window, not the worker, held the work back.  That
	 * happens only with tasks short next to the time the engine takes
	 * to come back (a worker publishes at once a result that took long,
	 * worker.c), so a larger window costs little balance: work queued
	 * at one worker while another idles is work of a few tens of
	 * microseconds.  Reset when the pool goes idle (pool_thread). */
	if (before && !s->ninflight && p->pending && s->window < p->window_max)
		s->window = s->window * 2 < p->window_max ? s->window * 2
							  : p->window_max;
}

/* The worker of @s is gone with @code (exit code, or -signal). */
static void slot_died(mproc_pool *p, struct pool_slot *s, int code)
{
	unsigned slot = (unsigned)(s - p->slots);
	collect(p, s);
	int st = get_state(p);
	bool planned = s->bye || (s->state == SLOT_STOPPING && !s->kill_sent) ||
		       s->state == SLOT_INIT || s->init_status != 0;
	bool lost = !planned && st != POOL_TERMINATED;
	/* Counters: relaxed (internal.h). */
	if (lost)
		atomic_fetch_add_explicit(&p->st_lost, 1, memory_order_relaxed);
	else if (s->bye)
		atomic_fetch_add_explicit(&p->st_retired, 1,
					  memory_order_relaxed);
	struct pool_running run;
	p->tp->running(p, slot, &run);
	uint64_t run_chunk = run.chunk, run_item = run.item;
	int status = s->killed_for_timeout ? -ETIMEDOUT : -MPROC_EWORKERLOST;
	int signo = code < 0 ? -code : 0;
	char text[96];
	if (s->killed_for_timeout)
		snprintf(text, sizeof(text),
			 "task overran the pool's task timeout");
	else if (signo)
		snprintf(text, sizeof(text), "worker %d killed by signal %d",
			 (int)s->pid, signo);
	else
		snprintf(text, sizeof(text), "worker %d exited with status %d",
			 (int)s->pid, code);

	/* Requeue in order: build the list, then put it in front. */
	forget_send(s);
	struct pool_chunk *rq = NULL, **rq_tail = &rq;
	for (struct pool_chunk *c = s->inflight, *next; c; c = next) {
		next = c->next;
		size_t r = c->reported;
		size_t ri = SIZE_MAX;
		if (c->id == run_chunk && run_item >= r && run_item < c->n &&
		    (lost || s->killed_for_timeout))
			ri = (size_t)run_item;
		if (st == POOL_TERMINATED) {
			fail_chunk(c, -ECANCELED, NULL, 0);
			continue;
		}
		size_t ranges[2][2] = { { r, ri == SIZE_MAX ? c->n : ri },
					{ ri == SIZE_MAX ? c->n : ri + 1, c->n } };
		for (int k = 0; k < 2; k++) {
			if (ranges[k][0] >= ranges[k][1])
				continue;
			bool again = c->requeued < POOL_MAX_REQUEUE;
			struct pool_chunk *nc =
				again ? split(c, ranges[k][0], ranges[k][1])
				      : NULL;
			if (!nc) {
				/* Without memory, or after too many deaths:
				 * these items fail instead of going back. */
				for (size_t i = ranges[k][0]; i < ranges[k][1];
				     i++)
					pool_deliver(c->job, c->first + i,
						     again ? -ENOMEM
							   : -MPROC_EWORKERLOST,
						     NULL, 0,
						     again ? NULL
							   : "every worker it was sent to died",
						     0);
				continue;
			}
			nc->id = ++p->next_chunk_id;
			*rq_tail = nc;
			rq_tail = &nc->next;
		}
		if (ri != SIZE_MAX)
			pool_deliver(c->job, c->first + ri, status, NULL, 0,
				     text, signo);
		pool_chunk_free(c);
	}
	s->inflight = s->inflight_tail = NULL;
	s->ninflight = 0;
	if (rq) {
		struct pool_chunk *last = rq;
		while (last->next)
			last = last->next;
		last->next = p->pending;
		p->pending = rq;
		if (!p->pending_tail)
			p->pending_tail = last;
	}

	/* A fresh slot. */
	p->tp->reset(p, slot);
	set_slot_pid(p, s, 0);
	s->unpublished = false;
	s->fns_defined = 0;
	s->tasks_sent = 0;
	s->bye = false;
	s->killed_for_timeout = false;
	s->kill_sent = false;
	bool init_failed = s->init_status != 0;
	s->init_status = 0;
	s->state = SLOT_EMPTY;
	bool want = !init_failed && !p->broken_init &&
		    (st == POOL_RUNNING || (st == POOL_CLOSED && p->pending));
	if (want)
		start_slot(p, s);
}

/* The transport lost the means to run anything (the zygote died). */
static void transport_lost(mproc_pool *p)
{
	if (get_state(p) == POOL_BROKEN)
		return;
	int expect = get_state(p);
	/* seq_cst: as get_state; submitters see it and refuse. */
	atomic_store_explicit(&p->state, POOL_BROKEN, memory_order_seq_cst);
	const char *why = "the pool's zygote process died";
	for (unsigned i = 0; i < p->nslots; i++) {
		struct pool_slot *s = &p->slots[i];
		fail_inflight(s, expect == POOL_TERMINATED ? -ECANCELED
							   : -MPROC_EWORKERLOST,
			      why);
		s->state = SLOT_EMPTY;
		set_slot_pid(p, s, 0);
	}
	while (p->pending) {
		struct pool_chunk *c = p->pending;
		p->pending = c->next;
		fail_chunk(c, expect == POOL_TERMINATED ? -ECANCELED
							: -MPROC_EWORKERLOST,
			   why, 0);
	}
	p->pending_tail = NULL;
	notify_waiters(p);
}

/* Take in the transport's lifecycle events. */
static void handle_events(mproc_pool *p)
{
	for (;;) {
		struct pool_tevent ev;
		int rc = p->tp->next_event(p, &ev);
		if (rc == 0)
			return;
		if (rc < 0) {
			transport_lost(p);
			return;
		}
		struct pool_slot *s = &p->slots[ev.slot];
		switch (ev.kind) {
		case POOL_TE_STARTED:
			if (s->state != SLOT_STARTING)
				break;
			set_slot_pid(p, s, ev.pid);
			s->state = SLOT_INIT;
			/* Counter: relaxed (internal.h). */
			atomic_fetch_add_explicit(&p->st_started, 1,
						  memory_order_relaxed);
			if (get_state(p) == POOL_TERMINATED)
				kill_worker(p, s);
			break;
		case POOL_TE_START_FAILED:
			if (s->state != SLOT_STARTING)
				break;
			s->state = SLOT_EMPTY;
			pthread_mutex_lock(&p->lock);
			if (!p->created && !p->init_error)
				p->init_error = ev.val < 0 ? ev.val : -EAGAIN;
			pthread_cond_broadcast(&p->cond);
			pthread_mutex_unlock(&p->lock);
			break;
		case POOL_TE_EXITED:
			if (s->pid == ev.pid && s->state != SLOT_EMPTY &&
			    s->state != SLOT_STARTING)
				slot_died(p, s, ev.val);
			break;
		default:
			break;
		}
	}
}

/* ---- pool thread: sending ------------------------------------------------ */

static void tx_done(struct pool_slot *s)
{
	if (s->tx_kind == POOL_MSG_DEFINE)
		s->fns_defined++;
	s->tx_kind = 0;
}

/* Push the slot's message on; true when the slot's sender is idle. */
static bool tx_continue(mproc_pool *p, struct pool_slot *s)
{
	if (!s->tx_kind)
		return true;
	int rc = p->tp->send(p, (unsigned)(s - p->slots), &s->tx);
	s->unpublished = true;
	if (rc == 1) {
		tx_done(s);
		return true;
	}
	if (rc < 0)
		kill_worker(p, s);
	return false;
}

static void tx_flat(mproc_pool *p, struct pool_slot *s, int kind,
		    const void *msg, size_t len)
{
	s->tx_kind = kind;
	pool_tx_start(&s->tx, len, pool_fill_flat, (void *)msg);
	tx_continue(p, s);
}

/* Give @s the next pending chunk (or the function definition it needs
 * first).  Returns false when nothing could be started. */
static bool feed(mproc_pool *p, struct pool_slot *s)
{
	struct pool_chunk *c = p->pending;
	if (c->job->fn_id >= s->fns_defined) {
		const struct pool_fn *f = &p->fns[s->fns_defined];
		tx_flat(p, s, POOL_MSG_DEFINE, f->define_msg, f->define_len);
		return true;
	}
	if (pool_encode_task(s, c) < 0)
		return false;
	p->pending = c->next;
	if (!p->pending)
		p->pending_tail = NULL;
	list_append(&s->inflight, &s->inflight_tail, c);
	s->ninflight++;
	s->tasks_sent++;
	s->tx_kind = POOL_MSG_TASK;
	tx_continue(p, s);
	return true;
}

static const struct pool_msg retire_msg = { .type = POOL_MSG_RETIRE };

/* Publish (and wake the worker) once per slot per dispatch round. */
static void publish_all(mproc_pool *p)
{
	for (unsigned i = 0; i < p->nslots; i++) {
		struct pool_slot *s = &p->slots[i];
		if (s->unpublished) {
			s->unpublished = false;
			p->tp->publish(p, i);
		}
	}
}

static void dispatch(mproc_pool *p)
{
	for (unsigned i = 0; i < p->nslots; i++)
		tx_continue(p, &p->slots[i]);
	while (p->pending) {
		/* The least loaded ready worker whose sender is idle. */
		struct pool_slot *best = NULL;
		for (unsigned i = 0; i < p->nslots; i++) {
			struct pool_slot *s = &p->slots[i];
			if (s->state != SLOT_READY || s->tx_kind ||
			    s->ninflight >= s->window ||
			    (p->maxtasks && s->tasks_sent >= p->maxtasks))
				continue;
			if (!best || s->ninflight < best->ninflight)
				best = s;
		}
		if (!best || !feed(p, best))
			break;
	}
	if (!p->maxtasks) {
		publish_all(p);
		return;
	}
	for (unsigned i = 0; i < p->nslots; i++) {
		struct pool_slot *s = &p->slots[i];
		if (s->state == SLOT_READY && !s->tx_kind &&
		    s->tasks_sent >= p->maxtasks) {
			s->state = SLOT_RETIRING;
			tx_flat(p, s, POOL_MSG_RETIRE, &retire_msg,
				sizeof(retire_msg));
		}
	}
	publish_all(p);
}

static void check_timeouts(mproc_pool *p, int64_t now)
{
	for (unsigned i = 0; i < p->nslots; i++) {
		struct pool_slot *s = &p->slots[i];
		if ((s->state != SLOT_READY && s->state != SLOT_RETIRING) ||
		    s->kill_sent || !s->inflight)
			continue;
		/* Possibly stale: that only delays the kill to a later
		 * tick (internal.h, running). */
		struct pool_running run;
		p->tp->running(p, i, &run);
		if (!run.chunk)
			continue;
		if (now - run.started_ns > p->task_timeout_ns) {
			s->killed_for_timeout = true;
			kill_worker(p, s);
		}
	}
}

/* ---- pool thread: shutdown ------------------------------------------------ */

static bool all_empty(const mproc_pool *p)
{
	for (unsigned i = 0; i < p->nslots; i++)
		if (p->slots[i].state != SLOT_EMPTY)
			return false;
	return true;
}

static bool nothing_in_flight(const mproc_pool *p)
{
	for (unsigned i = 0; i < p->nslots; i++)
		if (p->slots[i].ninflight)
			return false;
	return true;
}

/* Drive close/terminate on; true once everything is down. */
static bool shutdown_step(mproc_pool *p)
{
	int st = get_state(p);
	if (st == POOL_RUNNING)
		return false;
	/* seq_cst: the other side of pool_submit_ex's handshake. */
	bool quiet = atomic_load_explicit(&p->submitters,
					  memory_order_seq_cst) == 0 &&
		     cds_wfcq_empty(&p->q_head, &p->q_tail);
	if (st == POOL_TERMINATED) {
		while (p->pending) {
			struct pool_chunk *c = p->pending;
			p->pending = c->next;
			fail_chunk(c, -ECANCELED, NULL, 0);
		}
		p->pending_tail = NULL;
		for (unsigned i = 0; i < p->nslots; i++) {
			struct pool_slot *s = &p->slots[i];
			if (s->state == SLOT_EMPTY || s->state == SLOT_STARTING)
				continue;
			fail_inflight(s, -ECANCELED, NULL);
			if (s->state != SLOT_STOPPING) {
				s->state = SLOT_STOPPING;
				kill_worker(p, s);
			}
		}
	} else if (st == POOL_CLOSED && quiet && !p->pending &&
		   nothing_in_flight(p)) {
		for (unsigned i = 0; i < p->nslots; i++) {
			struct pool_slot *s = &p->slots[i];
			if (s->state == SLOT_INIT || s->state == SLOT_READY) {
				s->state = SLOT_STOPPING;
				p->tp->end_tasks(p, i);
			}
		}
	}
	bool starting = false;
	for (unsigned i = 0; i < p->nslots; i++)
		starting |= p->slots[i].state == SLOT_STARTING;
	return quiet && !p->pending && all_empty(p) && !starting;
}

/* ---- pool thread: main loop ------------------------------------------------ */

/* Anything for the engine?  Reads only atomics: a helper may hold the
 * engine and change the slots meanwhile. */
static bool has_work(void *arg)
{
	mproc_pool *p = arg;
	return !cds_wfcq_empty(&p->q_head, &p->q_tail) ||
	       /* Acquire: pairs with pool_kick's release. */
	       atomic_load_explicit(&p->kicks, memory_order_acquire) !=
		       p->kicks_seen ||
	       p->tp->has_news(p);
}

/* Run the callbacks helpers queued (pool thread, engine held). */
static void run_deferred(mproc_pool *p)
{
	while (p->ev_head) {
		struct pool_event *ev = p->ev_head;
		p->ev_head = ev->next;
		if (!p->ev_head)
			p->ev_tail = NULL;
		pool_run_event(ev);
	}
}

/* Take in what arrived: submissions, zygote messages, results. */
static void engine_gather(mproc_pool *p)
{
	take_submissions(p);
	handle_events(p);
	for (unsigned i = 0; i < p->nslots; i++) {
		struct pool_slot *s = &p->slots[i];
		if (s->state != SLOT_EMPTY && s->state != SLOT_STARTING)
			collect(p, s);
	}
}

/* What a helper does per round: the data path of the pool thread. */
static void engine_pass(mproc_pool *p)
{
	engine_gather(p);
	dispatch(p);
}

/* Whether some worker may still publish something the engine must see:
 * work in flight, a long task being sent, a worker starting up. */
static bool expecting_news(const mproc_pool *p)
{
	for (unsigned i = 0; i < p->nslots; i++) {
		const struct pool_slot *s = &p->slots[i];
		if (s->ninflight || s->tx_kind || s->state == SLOT_INIT ||
		    s->state == SLOT_STARTING || s->state == SLOT_RETIRING ||
		    s->state == SLOT_STOPPING)
			return true;
	}
	return false;
}

struct help_wait {
	mproc_pool *p;
	bool (*done)(void *);
	void *arg;
};

static bool help_ready(void *arg)
{
	struct help_wait *h = arg;
	return h->done(h->arg) || has_work(h->p);
}

/* How long a helper polls without news before it leaves the work to the
 * pool thread again. */
#define HELP_IDLE_NS (20 * 1000)

void pool_help(mproc_pool *p, bool (*done)(void *), void *arg,
	       const struct mproc__deadline *d)
{
	if (pool_engine_try(p))
		pool_help_locked(p, done, arg, d);
}

bool pool_engine_try(mproc_pool *p)
{
	if (p->tp->pool_thread_only)
		return false;
	if (pthread_mutex_trylock(&p->engine) != 0)
		return false;
	if (p->stopped) {
		pthread_mutex_unlock(&p->engine);
		return false;
	}
	return true;
}

void pool_engine_drop(mproc_pool *p)
{
	pthread_mutex_unlock(&p->engine);
}

void pool_help_locked(mproc_pool *p, bool (*done)(void *), void *arg,
		      const struct mproc__deadline *d)
{
	struct help_wait h = { p, done, arg };
	/* We poll: workers need not wake the pool thread meanwhile. */
	p->tp->watch(p, true);
	for (;;) {
		engine_pass(p);
		/* A terminated pool's work ends in shutdown_step, the pool
		 * thread's alone: give the engine back to it.  (Its kick
		 * stays unseen until then, so help_ready would hold us here,
		 * and the pool thread out, until our deadline.) */
		if (done(arg) || mproc__deadline_passed(d) ||
		    get_state(p) == POOL_TERMINATED ||
		    !pool_spin(help_ready, &h, HELP_IDLE_NS))
			break;
	}
	if (expecting_news(p)) {
		/* Work is in flight and the pool thread may be asleep: the
		 * workers must wake it again.  After watch(false), news
		 * either wakes it or is seen by the pass below (for the
		 * local transport: proto.h, "Helping"). */
		p->tp->watch(p, false);
		engine_pass(p);
	}
	/* Otherwise we leave the watch on: nothing is in flight, so the
	 * only news still to come is late notice of what we already took,
	 * which needs no wake-up.  The pool thread's sleep turns it off
	 * (internal.h, sleep). */
	if (p->ev_head)
		pool_kick(p); /* callbacks for the pool thread to run */
	pthread_mutex_unlock(&p->engine);
}

static void *pool_thread(void *arg)
{
	mproc_pool *p = arg;
	int64_t next_tick = 0;
	for (;;) {
		pthread_mutex_lock(&p->engine);
		run_deferred(p);
		/* Acquire: pairs with pool_kick's release. */
		p->kicks_seen = atomic_load_explicit(&p->kicks,
						     memory_order_acquire);
		engine_gather(p);
		if (get_state(p) == POOL_BROKEN) {
			take_submissions(p);
			/* seq_cst: as in shutdown_step. */
			if (atomic_load_explicit(&p->submitters,
						 memory_order_seq_cst) == 0 &&
			    cds_wfcq_empty(&p->q_head, &p->q_tail))
				break;
		} else if (shutdown_step(p)) {
			break;
		}
		dispatch(p);
		int64_t tick = p->task_timeout_ns > 0 ? TICK_TIMEOUT_NS
						      : TICK_IDLE_NS;
		int64_t now = mproc__now_ns();
		if (now >= next_tick) {
			if (p->task_timeout_ns > 0)
				check_timeouts(p, now);
			if (get_state(p) != POOL_BROKEN &&
			    p->tp->check(p) < 0) {
				/* Its last events may still be queued. */
				handle_events(p);
				transport_lost(p);
			}
			next_tick = now + tick;
		}
		bool busy = p->pending || !nothing_in_flight(p);
		if (!busy)
			/* Idle: the next burst of work learns its own
			 * windows (collect). */
			for (unsigned i = 0; i < p->nslots; i++)
				p->slots[i].window = p->window;
		run_deferred(p);
		pthread_mutex_unlock(&p->engine);
		struct mproc__deadline d;
		mproc__deadline_init(&d, next_tick - now > 0 ? next_tick - now
							       : 0);
		if (!d.nowait && busy &&
		    pool_spin(has_work, p, POOL_SPIN_BUSY_NS))
			continue;
		if (!d.nowait)
			p->tp->sleep(p, has_work, p, &d);
	}
	run_deferred(p);
	p->stopped = true;
	pthread_mutex_unlock(&p->engine);
	/* Everything is down: let the transport go, then wake join. */
	p->tp->stop(p);
	pthread_mutex_lock(&p->lock);
	p->finished = true;
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

/* ---- creation ------------------------------------------------------------ */

static void pool_free(mproc_pool *p)
{
	if (p->tp)
		p->tp->destroy(p);
	for (unsigned i = 0; p->slots && i < p->nslots; i++)
		pool_encoder_free(p->slots[i].enc);
	free(p->slots);
	for (uint32_t i = 0; p->fns && i < p->fn_count; i++)
		free(p->fns[i].define_msg);
	free(p->fns);
	cds_wfcq_destroy(&p->q_head, &p->q_tail);
	pthread_mutex_destroy(&p->fn_lock);
	pthread_mutex_destroy(&p->engine);
	pthread_mutex_destroy(&p->lock);
	pthread_cond_destroy(&p->cond);
	free(p);
}

static int plan(const struct mproc_pool_attr *a, mproc_pool *p)
{
	int cpus = mproc_cpu_count();
	p->nslots = a->processes ? a->processes : (unsigned)(cpus > 0 ? cpus : 1);
	p->window = a->window ? a->window : DEFAULT_WINDOW;
	/* A window the caller chose is kept as it is. */
	p->window_max = a->window ? a->window : DEFAULT_WINDOW * WINDOW_GROWTH;
	p->maxtasks = a->maxtasksperchild;
	p->task_timeout_ns = a->task_timeout_ns;
	uint64_t cap = a->ring_capacity ? a->ring_capacity : DEFAULT_RING_CAP;
	if (p->nslots > MPROC_POOL_MAX_PROCESSES || p->window > MAX_WINDOW ||
	    a->task_timeout_ns < -1 || (a->initarg_len && !a->initarg) ||
	    cap > MAX_RING_CAP)
		return -EINVAL;
	if (p->task_timeout_ns == 0)
		p->task_timeout_ns = -1; /* 0 would kill every task at once */
	p->ring_cap = cap < MIN_RING_CAP ? MIN_RING_CAP : mproc__pow2_ceil(cap);
	return 0;
}

/* Stop the pool thread after a failed start and free everything. */
static void abort_create(mproc_pool *p)
{
	atomic_store_explicit(&p->state, POOL_TERMINATED, memory_order_seq_cst);
	pool_kick(p);
	pthread_join(p->thread, NULL);
	pool_free(p);
}

MPROC_API int mproc_pool_create(const struct mproc_pool_attr *attr,
				mproc_pool **out)
{
	if (!out)
		return -EINVAL;
	*out = NULL;
	struct mproc_pool_attr defaults;
	if (!attr) {
		mproc_pool_attr_init(&defaults);
		attr = &defaults;
	}
	mproc_pool *p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	pthread_mutex_init(&p->fn_lock, NULL);
	pthread_mutex_init(&p->engine, NULL);
	pthread_mutex_init(&p->lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&p->cond, &ca);
	pthread_condattr_destroy(&ca);
	cds_wfcq_init(&p->q_head, &p->q_tail);
	p->owner_pid = mproc__self_pid();
	int rc = plan(attr, p);
	if (!rc && mproc__proc_context_is_mpi(attr->ctx))
		rc = mproc__mpi_plan(p, attr); /* its transport, its slots */
	if (rc) {
		pool_free(p);
		return rc;
	}
	p->slots = calloc(p->nslots, sizeof(*p->slots));
	p->fns = calloc(POOL_MAX_FNS, sizeof(*p->fns));
	if (!p->slots || !p->fns) {
		pool_free(p);
		return -ENOMEM;
	}
	for (unsigned i = 0; i < p->nslots; i++)
		p->slots[i].window = p->window;
	if (!p->tp)
		p->tp = &pool_local_transport;
	if ((rc = p->tp->open(p, attr)) != 0) {
		pool_free(p);
		return rc;
	}
	for (unsigned i = 0; i < p->nslots; i++)
		start_slot(p, &p->slots[i]);
	if ((rc = pthread_create(&p->thread, NULL, pool_thread, p)) != 0) {
		p->tp->stop(p);
		pool_free(p);
		return -rc;
	}
	p->thread_started = true;
	/* Wait until every worker ran its initializer, or one failed. */
	pthread_mutex_lock(&p->lock);
	while (p->nready < p->nslots && !p->init_error && !p->finished)
		pthread_cond_wait(&p->cond, &p->lock);
	rc = p->init_error;
	if (!rc && p->finished)
		rc = -EAGAIN;
	p->created = rc == 0;
	pthread_mutex_unlock(&p->lock);
	if (rc) {
		abort_create(p);
		return rc;
	}
	*out = p;
	return 0;
}

/* ---- the rest of the API ------------------------------------------------- */

MPROC_API int mproc_pool_processes(const mproc_pool *pool)
{
	return pool ? (int)pool->nslots : -EINVAL;
}

MPROC_API int mproc_pool_worker_pids(mproc_pool *pool, pid_t *pids,
				     size_t max)
{
	if (!pool || (!pids && max))
		return -EINVAL;
	int n = 0;
	pthread_mutex_lock(&pool->lock);
	for (unsigned i = 0; i < pool->nslots; i++) {
		pid_t pid = pool->slots[i].pid;
		if (pid <= 0)
			continue;
		if ((size_t)n < max)
			pids[n] = pid;
		n++;
	}
	pthread_mutex_unlock(&pool->lock);
	return n;
}

MPROC_API int mproc_pool_stats(mproc_pool *pool, struct mproc_pool_stats *st)
{
	if (!pool || !st)
		return -EINVAL;
	/* Relaxed: a snapshot of independent counters (internal.h). */
	st->submitted = atomic_load_explicit(&pool->st_submitted,
					     memory_order_relaxed);
	st->completed = atomic_load_explicit(&pool->st_completed,
					     memory_order_relaxed);
	st->failed = atomic_load_explicit(&pool->st_failed,
					  memory_order_relaxed);
	st->workers_lost = atomic_load_explicit(&pool->st_lost,
						memory_order_relaxed);
	st->workers_retired = atomic_load_explicit(&pool->st_retired,
						   memory_order_relaxed);
	st->workers_started = atomic_load_explicit(&pool->st_started,
						   memory_order_relaxed);
	return 0;
}

MPROC_API int mproc_pool_close(mproc_pool *pool)
{
	if (!pool)
		return -EINVAL;
	int expect = POOL_RUNNING;
	/* seq_cst: as get_state (the submitters handshake). */
	atomic_compare_exchange_strong_explicit(&pool->state, &expect,
						POOL_CLOSED,
						memory_order_seq_cst,
						memory_order_seq_cst);
	pool_kick(pool);
	return 0;
}

static void wait_finished(mproc_pool *pool)
{
	pthread_mutex_lock(&pool->lock);
	while (!pool->finished)
		pthread_cond_wait(&pool->cond, &pool->lock);
	pthread_mutex_unlock(&pool->lock);
}

MPROC_API int mproc_pool_terminate(mproc_pool *pool)
{
	if (!pool)
		return -EINVAL;
	int st = get_state(pool);
	while (st == POOL_RUNNING || st == POOL_CLOSED) {
		/* seq_cst: as get_state. */
		if (atomic_compare_exchange_strong_explicit(
			    &pool->state, &st, POOL_TERMINATED,
			    memory_order_seq_cst, memory_order_seq_cst))
			break;
	}
	pool_kick(pool);
	/* From a callback the pool thread itself is the caller: it goes on
	 * with the shutdown when the callback returns. */
	if (!pool_on_thread(pool))
		wait_finished(pool);
	return 0;
}

MPROC_API int mproc_pool_join(mproc_pool *pool, int64_t timeout_ns)
{
	if (!pool || timeout_ns < -1 || get_state(pool) == POOL_RUNNING)
		return -EINVAL;
	if (pool_on_thread(pool))
		return -EDEADLK;
	struct mproc__deadline d;
	mproc__deadline_init(&d, timeout_ns);
	int rc = 0;
	pthread_mutex_lock(&pool->lock);
	while (!pool->finished && rc == 0) {
		if (d.forever)
			pthread_cond_wait(&pool->cond, &pool->lock);
		else if (pthread_cond_timedwait(&pool->cond, &pool->lock,
						&d.at) == ETIMEDOUT)
			rc = pool->finished ? 0 : -ETIMEDOUT;
	}
	pthread_mutex_unlock(&pool->lock);
	return rc;
}

MPROC_API void mproc_pool_destroy(mproc_pool *pool)
{
	if (!pool)
		return;
	if (pool->owner_pid != mproc__self_pid())
		return; /* a forked copy: the pool is not ours to stop */
	mproc_pool_terminate(pool);
	pthread_join(pool->thread, NULL);
	pool_free(pool);
}
