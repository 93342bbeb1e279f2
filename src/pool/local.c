/*
 * The local transport (internal.h, "The transport seam"): worker processes
 * on this machine, forked by the pool's zygote (zygote.c), each fed through
 * one SPSC ring from the engine and answering through another, both in the
 * pool segment (proto.h).  The engine sleeps on the segment's doorbell,
 * which workers ring when they publish and nobody polls ("Helping" in
 * proto.h), and the zygote rings when it has news on its socket.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/fork.h"
#include "pool/internal.h"

#define ZYGOTE_JOIN_NS (5 * MPROC_SEC)

static struct pool_local_slot *lslot(mproc_pool *p, unsigned slot)
{
	return &p->local.slots[slot];
}

/* Attach the parent's ends of the slot's rings, after initialising them
 * (@init) for a new worker. */
static void slot_attach(mproc_pool *p, struct pool_local_slot *s, bool init)
{
	struct mproc__ring_geom g;
	pool_ring_geom(p->ring_cap, &g);
	if (init) {
		mproc__ring_init_shared(MPROC__RING_SPSC, s->task_sh,
					s->task_buf, &g, 0);
		mproc__ring_init_shared(MPROC__RING_SPSC, s->res_sh,
					s->res_buf, &g, 0);
		/* Relaxed: no worker uses the slot now; the next one is
		 * started after this (the zygote's fork orders it). */
		atomic_store_explicit(&s->cell->chunk, 0, memory_order_relaxed);
		atomic_store_explicit(&s->cell->pid, 0, memory_order_relaxed);
	}
	/* Fresh indices always pass the attach checks. */
	(void)mproc__ring_attach(&s->task, MPROC__RING_SPSC, s->task_sh,
				 s->task_buf, &g, false);
	(void)mproc__ring_attach(&s->result, MPROC__RING_SPSC, s->res_sh,
				 s->res_buf, &g, false);
}

static int make_segment(mproc_pool *p)
{
	struct pool_local *l = &p->local;
	uint64_t slot0 = (sizeof(struct pool_hdr) + MPROC_CACHELINE - 1) &
			 ~(uint64_t)(MPROC_CACHELINE - 1);
	uint64_t slot_size = pool_slot_size(p->ring_cap);
	uint64_t geom[MPROC_SHM_GEOM_WORDS] = { 0 };
	geom[POOL_GEOM_SLOTS] = p->nslots;
	geom[POOL_GEOM_RING_CAP] = p->ring_cap;
	geom[POOL_GEOM_SLOT_SIZE] = slot_size;
	geom[POOL_GEOM_SLOT0] = slot0;
	int rc = mproc_shm_create(NULL, MPROC_SHM_KIND_POOL, geom,
				  (size_t)(slot0 + p->nslots * slot_size), 0,
				  &l->seg);
	if (rc)
		return rc;
	l->hdr = mproc_shm_data(l->seg);
	atomic_init(&l->hdr->parent_pid, (uint32_t)mproc__self_pid());
	for (unsigned i = 0; i < p->nslots; i++) {
		struct pool_local_slot *s = lslot(p, i);
		struct pool_slot_layout sl;
		pool_slot_layout((unsigned char *)l->hdr + slot0 + i * slot_size,
				 p->ring_cap, &sl);
		s->cell = sl.cell;
		s->task_sh = sl.task_sh;
		s->task_buf = sl.task_buf;
		s->res_sh = sl.res_sh;
		s->res_buf = sl.res_buf;
		s->rx.limit = UINT64_MAX;
		slot_attach(p, s, true);
	}
	return mproc_shm_publish(l->seg);
}

static int local_open(mproc_pool *p, const struct mproc_pool_attr *a)
{
	p->local.sock = -1;
	p->local.slots = calloc(p->nslots, sizeof(*p->local.slots));
	if (!p->local.slots)
		return -ENOMEM;
	int rc = make_segment(p);
	if (rc == 0)
		rc = pool_zygote_start(p, a->ctx, a->initializer, a->initarg,
				       a->initarg_len);
	return rc;
}

static void local_stop(mproc_pool *p)
{
	struct pool_local *l = &p->local;
	/* The zygote exits when its socket closes, after its workers. */
	if (l->sock >= 0)
		shutdown(l->sock, SHUT_RDWR);
	if (l->zygote &&
	    mproc_process_join(l->zygote, ZYGOTE_JOIN_NS) == -ETIMEDOUT) {
		mproc_process_kill(l->zygote);
		mproc_process_join(l->zygote, -1);
	}
}

static void local_destroy(mproc_pool *p)
{
	struct pool_local *l = &p->local;
	if (l->zygote) {
		/* Still running only when create failed half-way. */
		if (mproc_process_is_alive(l->zygote) == 1) {
			mproc_process_kill(l->zygote);
			mproc_process_join(l->zygote, -1);
		}
		mproc_process_free(l->zygote);
	}
	if (l->sock >= 0)
		close(l->sock);
	for (unsigned i = 0; l->slots && i < p->nslots; i++)
		pool_rx_free(&l->slots[i].rx);
	free(l->slots);
	if (l->seg)
		mproc_shm_free(l->seg);
}

static int local_start(mproc_pool *p, unsigned slot)
{
	return pool_zygote_request_start(p, slot);
}

static int local_kill(mproc_pool *p, unsigned slot, pid_t pid)
{
	return pool_zygote_request_kill(p, slot, pid, SIGKILL);
}

static void local_end_tasks(mproc_pool *p, unsigned slot)
{
	mproc__ring_close(&lslot(p, slot)->task, MPROC__RING_WR_CLOSED);
}

static int local_next_event(mproc_pool *p, struct pool_tevent *ev)
{
	struct pool_local *l = &p->local;
	for (;;) {
		if (!l->draining) {
			/* Acquire: pairs with the zygote's release bump
			 * (zygote.c zsend): its messages up to the count are
			 * in the socket. */
			uint64_t n = atomic_load_explicit(&l->hdr->zygote_msgs,
							  memory_order_acquire);
			if (n == atomic_load_explicit(&l->zygote_seen,
						      memory_order_relaxed))
				return 0;
			atomic_store_explicit(&l->zygote_seen, n,
					      memory_order_relaxed);
			l->draining = true;
		}
		struct pool_zmsg m;
		int rc = pool_zygote_recv(p, &m);
		if (rc <= 0) {
			l->draining = false;
			return rc < 0 ? -EPIPE : 0;
		}
		if (m.slot >= p->nslots)
			continue;
		switch (m.op) {
		case POOL_Z_STARTED:
			ev->kind = POOL_TE_STARTED;
			break;
		case POOL_Z_START_FAILED:
			ev->kind = POOL_TE_START_FAILED;
			break;
		case POOL_Z_EXITED:
			ev->kind = POOL_TE_EXITED;
			break;
		default:
			continue;
		}
		ev->slot = m.slot;
		ev->pid = m.pid;
		ev->val = m.val;
		return 1;
	}
}

static void local_running(mproc_pool *p, unsigned slot, struct pool_running *r)
{
	struct pool_cell *cell = lslot(p, slot)->cell;
	/* Acquire: pairs with the worker's release of the chunk id
	 * (worker.c run_task), so the start time is of this chunk's item
	 * or a later one.  The rest relaxed: after a death the zygote's
	 * message came after the worker's last store (proto.h, "The
	 * cell"); for a timeout a stale value only means a later look. */
	r->chunk = atomic_load_explicit(&cell->chunk, memory_order_acquire);
	r->item = atomic_load_explicit(&cell->item, memory_order_relaxed);
	r->started_ns = atomic_load_explicit(&cell->started_ns,
					     memory_order_relaxed);
}

static void local_reset(mproc_pool *p, unsigned slot)
{
	struct pool_local_slot *s = lslot(p, slot);
	pool_rx_reset(&s->rx);
	slot_attach(p, s, true);
}

static int local_check(mproc_pool *p)
{
	struct pollfd pf = { .fd = mproc_process_sentinel(p->local.zygote),
			     .events = POLLIN };
	if (pf.fd < 0 || poll(&pf, 1, 0) == 0)
		return 0;
	/* Its last messages may still be queued: the next next_event
	 * reads the socket whatever the counter says. */
	atomic_fetch_sub_explicit(&p->local.zygote_seen, 1,
				  memory_order_relaxed);
	return -EPIPE;
}

static int local_send(mproc_pool *p, unsigned slot, struct pool_tx *tx)
{
	return pool_tx_push(&lslot(p, slot)->task, tx);
}

static void local_publish(mproc_pool *p, unsigned slot)
{
	mproc__ring_publish(&lslot(p, slot)->task);
}

static int local_collect(mproc_pool *p, unsigned slot)
{
	struct pool_local_slot *s = lslot(p, slot);
	/* Acquire: pairs with the worker's release of events (proto.h); its
	 * messages up to this count are in the ring. */
	uint64_t ev = atomic_load_explicit(&s->cell->events,
					   memory_order_acquire);
	int rc;
	for (;;) {
		const void *msg;
		uint64_t len;
		rc = pool_rx_next(&s->result, &s->rx, &msg, &len);
		if (rc == 0 || rc == -MPROC_EEOF) {
			rc = 0;
			break;
		}
		if (rc == 1) {
			rc = pool_on_message(p, slot, msg, len);
			pool_rx_done(&s->result, &s->rx);
			if (rc == 0)
				continue;
			break;
		}
		/* A message we could not hold: its items fail, the rest
		 * goes on. */
		if (rc == -ENOMEM &&
		    pool_on_lost_message(p, slot, s->rx.head,
					 sizeof(s->rx.head)) == 0)
			continue;
		break;
	}
	atomic_store_explicit(&s->events_seen, ev, memory_order_relaxed);
	return rc;
}

static bool local_has_news(const mproc_pool *p)
{
	const struct pool_local *l = &p->local;
	/* Acquire: as in next_event; relaxed for the rest, which only
	 * decides whether to look (the look itself acquires). */
	if (atomic_load_explicit(&l->hdr->zygote_msgs, memory_order_acquire) !=
	    atomic_load_explicit(&l->zygote_seen, memory_order_relaxed))
		return true;
	for (unsigned i = 0; i < p->nslots; i++) {
		const struct pool_local_slot *s = &l->slots[i];
		if (atomic_load_explicit(&s->cell->events,
					 memory_order_relaxed) !=
		    atomic_load_explicit(&s->events_seen, memory_order_relaxed))
			return true;
	}
	return false;
}

static void local_wake(mproc_pool *p)
{
	mproc__event_signal(&p->local.hdr->doorbell);
}

static void local_sleep(mproc_pool *p, bool (*ready)(void *), void *arg,
			const struct mproc__deadline *d)
{
	/* Workers must ring while we sleep.  Ordered before ready's last
	 * look by the wait's A3 (futex.h), as watch's clearing is
	 * (proto.h, "Helping"). */
	atomic_store_explicit(&p->local.hdr->helping, 0, memory_order_relaxed);
	mproc__event_wait(&p->local.hdr->doorbell, ready, arg, d,
			  &p->local.spin, NULL);
}

static void local_watch(mproc_pool *p, bool on)
{
	/* Relaxed: workers may skip the doorbell from now on; nobody has
	 * to see this in time, a worker that misses it only rings. */
	atomic_store_explicit(&p->local.hdr->helping, on ? 1 : 0,
			      memory_order_relaxed);
	if (!on)
		/* Pairs with the fence in the worker's notify (proto.h,
		 * "Helping"): after this, a worker either rings or its
		 * news is seen by the caller's next look. */
		atomic_thread_fence(memory_order_seq_cst);
}

const struct pool_transport_ops pool_local_transport = {
	.name = "local",
	.open = local_open,
	.stop = local_stop,
	.destroy = local_destroy,
	.start = local_start,
	.kill = local_kill,
	.end_tasks = local_end_tasks,
	.next_event = local_next_event,
	.running = local_running,
	.reset = local_reset,
	.check = local_check,
	.send = local_send,
	.publish = local_publish,
	.collect = local_collect,
	.has_news = local_has_news,
	.wake = local_wake,
	.sleep = local_sleep,
	.watch = local_watch,
};
