/*
 * The pipe's describer for mproc-stat (pipe/inspect.h): validate the
 * geometry as mproc_conn_import does, then read the end states and both
 * rings (conn.h) through the read-only view.  Never writes to the segment.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "pipe/conn.h"
#include "pipe/inspect.h"

static const char *end_state(uint32_t st)
{
	switch (st) {
	case END_OPEN:
		return "open";
	case END_CLOSED:
		return "closed";
	case END_DIED:
		return "died";
	default:
		return NULL;
	}
}

int mproc__pipe_describe(const struct mproc__shm_view *v,
			 struct mproc__seg_info *out)
{
	const struct mproc_shm_header *h = &v->hdr;
	if (h->kind != MPROC_SHM_KIND_PIPE)
		return -EPROTOTYPE;
	int rc = mproc__pipe_validate_geom(h->geom, h->data_size, NULL);
	if (rc)
		return rc;
	const unsigned char *data = mproc__shm_view_data(v);
	const struct pipe_ctl *ctl = (const struct pipe_ctl *)data;
	bool duplex = h->geom[GEOM_DUPLEX];
	struct mproc__ring_geom rg;
	/* As pipe.c's ring_geom: the ring's default geometry for its size. */
	if (mproc__ring_plan(MPROC__RING_SPSC, h->geom[GEOM_CAP], 0, 0, &rg))
		return -MPROC_ECORRUPT;

	out->kind = "pipe";
	out->variant = duplex ? "duplex" : "one-way";
	out->consistent = true;
	static const char *const owner_role[2] = { "end a owner", "end b owner" };
	for (int e = 0; e < 2; e++) {
		/* Relaxed: a snapshot for display (ring/inspect.h). */
		uint32_t st = atomic_load_explicit(&ctl->end[e].state,
						   memory_order_relaxed);
		uint32_t owner = atomic_load_explicit(&ctl->end[e].owner,
						      memory_order_relaxed);
		out->end_state[e] = end_state(st);
		if (!out->end_state[e]) {
			out->end_state[e] = "?";
			out->consistent = false;
			out->problem = "end state";
		}
		if ((rc = mproc__seg_info_add_pid(out, owner, owner_role[e])))
			return rc;
	}
	unsigned n = duplex ? 2 : 1;
	out->rings = calloc(n, sizeof(*out->rings));
	if (!out->rings)
		return -ENOMEM;
	out->nrings = n;
	static const char *const ring_name[2] = { "a<-b", "b<-a" };
	for (unsigned k = 0; k < n; k++) {
		struct mproc__ring_info *ri = &out->rings[k];
		const unsigned char *sh = data + h->geom[GEOM_RING0 + k];
		snprintf(ri->name, sizeof ri->name, "%s", ring_name[k]);
		mproc__ring_describe(MPROC__RING_SPSC, sh,
				     sh + mproc__ring_shared_size(MPROC__RING_SPSC),
				     &rg, ri, NULL, NULL);
		if (!ri->consistent && out->consistent) {
			out->consistent = false;
			out->problem = ri->problem;
		}
	}
	return mproc__seg_info_add_pid(out, h->creator_pid, "creator");
}
