/*
 * The pool's describer for mproc-stat (pool/inspect.h): validate the
 * geometry as the zygote does, then read the header, each slot's cell and
 * its two rings (proto.h) through the read-only view.  Never writes to
 * the segment.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "pool/inspect.h"
#include "pool/internal.h"

/* Relaxed: a snapshot for display (ring/inspect.h). */
#define LOAD(p) atomic_load_explicit((p), memory_order_relaxed)

int mproc__pool_describe(const struct mproc__shm_view *v,
			 struct mproc__seg_info *out)
{
	const struct mproc_shm_header *h = &v->hdr;
	if (h->kind != MPROC_SHM_KIND_POOL)
		return -EPROTOTYPE;
	int rc = pool_validate_geom(h->geom, h->data_size, NULL);
	if (rc)
		return rc;
	const unsigned char *data = mproc__shm_view_data(v);
	const struct pool_hdr *ph = (const struct pool_hdr *)data;
	uint64_t n = h->geom[POOL_GEOM_SLOTS], cap = h->geom[POOL_GEOM_RING_CAP];
	uint64_t slot_size = h->geom[POOL_GEOM_SLOT_SIZE];
	struct mproc__ring_geom rg;
	pool_ring_geom(cap, &rg);

	out->kind = "pool";
	out->consistent = true;
	out->nworkers = (uint32_t)n;
	out->parent_pid = LOAD(&ph->parent_pid);
	/* The low 32 bits of the waiters word count registrations. */
	out->doorbell_waiters = (uint32_t)LOAD(&ph->doorbell.waiters);
	out->zygote_msgs = LOAD(&ph->zygote_msgs);
	if ((rc = mproc__seg_info_add_pid(out, out->parent_pid, "pool parent")))
		return rc;
	out->rings = calloc(2 * n, sizeof(*out->rings));
	if (!out->rings)
		return -ENOMEM;
	out->nrings = (unsigned)(2 * n);
	for (uint64_t i = 0; i < n; i++) {
		struct pool_slot_layout l;
		/* The layout helper takes the parent's writable pointer; here
		 * the addresses are only read through. */
		pool_slot_layout((unsigned char *)data + h->geom[POOL_GEOM_SLOT0] +
					 i * slot_size, cap, &l);
		uint32_t pid = LOAD(&l.cell->pid);
		char role[24];
		snprintf(role, sizeof role, "worker %u", (unsigned)i);
		if ((rc = mproc__seg_info_add_pid(out, pid, role)))
			return rc;
		if (LOAD(&l.cell->chunk))
			out->busy_workers++;
		struct mproc__ring_info *task = &out->rings[2 * i];
		struct mproc__ring_info *res = &out->rings[2 * i + 1];
		snprintf(task->name, sizeof task->name, "task %u", (unsigned)i);
		snprintf(res->name, sizeof res->name, "result %u", (unsigned)i);
		mproc__ring_describe(MPROC__RING_SPSC, l.task_sh, l.task_buf, &rg,
				     task, NULL, NULL);
		mproc__ring_describe(MPROC__RING_SPSC, l.res_sh, l.res_buf, &rg,
				     res, NULL, NULL);
		for (int k = 0; k < 2; k++) {
			const struct mproc__ring_info *ri = k ? res : task;
			if (!ri->consistent && out->consistent) {
				out->consistent = false;
				out->problem = ri->problem;
			}
		}
	}
	return mproc__seg_info_add_pid(out, h->creator_pid, "creator");
}
