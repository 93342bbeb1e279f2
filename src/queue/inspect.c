/*
 * The queue's describer for mproc-stat (ring/inspect.h): validate the
 * geometry as an opener does, then read the control block and the ring
 * through the read-only view.  Never writes to the segment.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "queue/layout.h"

/* An MPMC slot names the last process that claimed it (mpmc.h, M3). */
static void add_user(void *info, uint32_t pid)
{
	(void)mproc__seg_info_add_pid(info, pid, "ring user");
}

int mproc__queue_describe(const struct mproc__shm_view *v,
			  struct mproc__seg_info *out)
{
	const struct mproc_shm_header *h = &v->hdr;
	if (h->kind != MPROC_SHM_KIND_QUEUE)
		return -EPROTOTYPE;
	int rc = mproc__queue_validate_geom(h->geom, h->data_size, NULL);
	if (rc)
		return rc;
	const unsigned char *data = mproc__shm_view_data(v);
	const struct queue_ctl *ctl = (const struct queue_ctl *)data;
	int kind = (int)h->geom[GEOM_RING];
	struct mproc__ring_geom rg;
	geom_get(h->geom, &rg);

	out->kind = "queue";
	out->variant = kind == MPROC__RING_SPSC ? "spsc" : "mpmc";
	out->consistent = true;
	out->joinable = h->geom[GEOM_FLAGS] & MPROC_QUEUE_JOINABLE;
	if (out->joinable) {
		/* Relaxed: a snapshot for display (ring/inspect.h). */
		out->unfinished = atomic_load_explicit(&ctl->unfinished,
						       memory_order_relaxed);
		/* The low 32 bits of the waiters word count registrations. */
		out->join_waiters = (uint32_t)atomic_load_explicit(
			&ctl->all_done.waiters, memory_order_relaxed);
	}
	out->rings = calloc(1, sizeof(*out->rings));
	if (!out->rings)
		return -ENOMEM;
	out->nrings = 1;
	snprintf(out->rings[0].name, sizeof out->rings[0].name, "queue");
	mproc__ring_describe(kind, data + RING_SH_OFF, data + h->geom[GEOM_BUF_OFF],
			     &rg, &out->rings[0], add_user, out);
	if (!out->rings[0].consistent) {
		out->consistent = false;
		out->problem = out->rings[0].problem;
	}
	return mproc__seg_info_add_pid(out, h->creator_pid, "creator");
}
