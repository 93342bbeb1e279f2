/*
 * Read-only descriptions of rings for mproc-stat (see inspect.h).  The
 * loads are relaxed: the inspector dereferences nothing through them (slot
 * addresses come from the validated geometry alone), and it needs no
 * ordering with the producers and consumers it watches, only values that
 * were true at some recent moment.  Checks follow each ring's invariants:
 * SPSC I2 (0 <= head - tail <= cap, both multiples of 16), MPMC M1/M2
 * (deq <= enq <= deq + nslots; a slot's seq tells free, claimed, full).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mproc/common.h"
#include "common/os.h"
#include "ring/inspect.h"
#include "ring/mpmc.h"
#include "ring/ring.h"
#include "ring/spsc.h"

#define LOAD(p) atomic_load_explicit((p), memory_order_relaxed)

/* Registrations in an event's waiters word (futex.h: the low 32 bits
 * count them, the high ones are an epoch).  Dead waiters may still be
 * counted until the next signal. */
static uint32_t waiter_count(uint64_t w)
{
	return (uint32_t)w;
}

static void bad(struct mproc__ring_info *o, const char *what)
{
	if (o->consistent) {
		o->consistent = false;
		o->problem = what;
	}
}

static void describe_spsc(const struct mproc__ring_spsc_shared *sh,
			  const struct mproc__ring_geom *g,
			  struct mproc__ring_info *o)
{
	uint64_t cap = g->size;
	/* Tail before head: both only grow, so head read second is at least
	 * the head that went with this tail. */
	uint64_t tail = LOAD(&sh->tail), head = LOAD(&sh->head);
	uint64_t out = LOAD(&sh->msgs_out), in = LOAD(&sh->msgs_in);
	o->capacity = cap;
	o->byte_totals = true;
	o->bytes_put_total = head;
	o->bytes_got_total = tail;
	o->put_total = in;
	o->got_total = out;
	if ((head | tail) & (MPROC__RING_REC_ALIGN - 1))
		bad(o, "head/tail alignment");
	/* A consumer may run briefly ahead of the published head (spsc.h,
	 * E1): that reads as empty, not as damage. */
	if ((int64_t)(head - tail) < 0)
		o->bytes_used = 0;
	else if (head - tail > cap) {
		bad(o, "head - tail > capacity");
		o->bytes_used = cap;
	} else
		o->bytes_used = head - tail;
	/* Every record takes at least a 16-byte header. */
	uint64_t most = o->bytes_used / MPROC__RING_REC_HDR;
	if ((int64_t)(in - out) < 0)
		o->msgs = 0;
	else if (in - out > cap / MPROC__RING_REC_HDR) {
		bad(o, "message counters");
		o->msgs = most;
	} else
		o->msgs = in - out;
	o->closed = LOAD(&sh->closed);
	if (o->closed & ~(MPROC__RING_WR_CLOSED | MPROC__RING_RD_CLOSED))
		bad(o, "closed flags");
	o->get_waiters = waiter_count(LOAD(&sh->data_ready.waiters));
	o->put_waiters = waiter_count(LOAD(&sh->space_ready.waiters));
}

static void describe_mpmc(const struct mproc__ring_mpmc_shared *sh,
			  const unsigned char *slots,
			  const struct mproc__ring_geom *g,
			  struct mproc__ring_info *o,
			  void (*owner)(void *arg, uint32_t pid), void *arg)
{
	uint64_t n = g->size, mask = n - 1;
	uint64_t deq = LOAD(&sh->deq_pos), enq = LOAD(&sh->enq_pos);
	o->capacity = n;
	o->put_total = enq;
	o->got_total = deq;
	if ((int64_t)(enq - deq) < 0)
		o->msgs = 0; /* deq moved between the two loads */
	else if (enq - deq > n) {
		bad(o, "enq_pos - deq_pos > slots");
		o->msgs = n;
	} else
		o->msgs = enq - deq;
	/* Walk the queued positions: a slot whose seq is pos + 1 holds a
	 * committed message; pos means a producer claimed it and is still
	 * writing.  Anything else there has been taken meanwhile. */
	uint64_t bytes = 0, ready = 0, claimed = 0;
	for (uint64_t i = 0; i < o->msgs; i++) {
		uint64_t pos = deq + i;
		const struct mproc__ring_mpmc_slot *s =
			(const void *)(slots + (pos & mask) * g->stride);
		uint64_t seq = LOAD(&s->seq);
		if (seq == pos + 1) {
			uint32_t len = LOAD(&s->len);
			if (len > g->max_payload)
				bad(o, "slot length");
			else
				bytes += len;
			ready++;
		} else if (seq == pos) {
			claimed++;
		}
	}
	o->bytes_used = bytes;
	o->in_progress = (uint32_t)claimed;
	(void)ready;
	if (owner) {
		/* Distinct owners, in slot order; a small table is enough
		 * for the usual handful of processes, and a repeat beyond it
		 * only costs a duplicate the caller drops. */
		uint32_t seen[64];
		unsigned nseen = 0;
		for (uint64_t i = 0; i < n; i++) {
			const struct mproc__ring_mpmc_slot *s =
				(const void *)(slots + i * g->stride);
			uint32_t pid = (uint32_t)mproc__proc_ident_pid(
				LOAD(&s->claimer));
			unsigned k = 0;
			while (k < nseen && seen[k] != pid)
				k++;
			if (pid == 0 || k < nseen)
				continue;
			if (nseen < 64)
				seen[nseen++] = pid;
			owner(arg, pid);
		}
	}
	o->closed = LOAD(&sh->closed);
	if (o->closed & ~(uint32_t)MPROC__RING_WR_CLOSED)
		bad(o, "closed flags");
	o->get_waiters = waiter_count(LOAD(&sh->data_ready.waiters));
	o->put_waiters = waiter_count(LOAD(&sh->space_ready.waiters));
}

void mproc__ring_describe(int kind, const void *sh, const void *buf,
			  const struct mproc__ring_geom *g,
			  struct mproc__ring_info *out,
			  void (*owner)(void *arg, uint32_t pid), void *arg)
{
	char name[sizeof out->name];
	memcpy(name, out->name, sizeof name);
	memset(out, 0, sizeof(*out));
	memcpy(out->name, name, sizeof name);
	out->kind = kind;
	out->max_msg = g->max_payload;
	out->consistent = true;
	if (kind == MPROC__RING_SPSC)
		describe_spsc(sh, g, out);
	else
		describe_mpmc(sh, buf, g, out, owner, arg);
}

int mproc__seg_info_add_pid(struct mproc__seg_info *info, uint32_t pid,
			    const char *role)
{
	if (pid == 0)
		return 0;
	for (unsigned i = 0; i < info->npids; i++)
		if (info->pids[i].pid == pid && !strcmp(info->pids[i].role, role))
			return 0;
	if (info->npids == info->cap_pids) {
		unsigned cap = info->cap_pids ? 2 * info->cap_pids : 8;
		void *p = realloc(info->pids, cap * sizeof(*info->pids));
		if (!p)
			return -ENOMEM;
		info->pids = p;
		info->cap_pids = cap;
	}
	struct mproc__seg_pid *e = &info->pids[info->npids++];
	e->pid = pid;
	snprintf(e->role, sizeof e->role, "%s", role);
	return 0;
}

void mproc__seg_info_free(struct mproc__seg_info *info)
{
	free(info->rings);
	free(info->pids);
	memset(info, 0, sizeof(*info));
}
