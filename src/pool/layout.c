/* Where each slot's cell and rings sit in the pool segment (proto.h). */
#include <sched.h>

#include "common/clock.h"
#include "mproc/pool.h"
#include "pool/internal.h"

bool pool_spin(bool (*ready)(void *), void *arg, int64_t ns)
{
	/* The clock is first read after 64 turns: a wait that ends sooner
	 * (the common case) never pays for it.  The CPU is given up every
	 * 8 turns: a pause lasts some 75 ns on the machines we measured,
	 * and when the thread we wait for shares our CPU (two CPUs, a
	 * parent and its workers), every turn we keep it is a turn it
	 * cannot run. */
	int64_t end = 0;
	for (uint32_t i = 1;; i++) {
		if (ready(arg))
			return true;
		mproc__cpu_relax();
		if ((i & 7) == 0)
			sched_yield();
		if ((i & 63) == 0) {
			int64_t now = mproc__now_ns();
			if (!end)
				end = now + ns;
			else if (now >= end)
				return ready(arg);
		}
	}
}

void pool_ring_geom(uint64_t ring_cap, struct mproc__ring_geom *g)
{
	/* The capacity was checked when the pool was planned (a power of
	 * two within the SPSC ring's limits), so this cannot fail. */
	(void)mproc__ring_plan(MPROC__RING_SPSC, ring_cap, 0, ring_cap, g);
}

static uint64_t ring_bytes(uint64_t ring_cap)
{
	struct mproc__ring_geom g;
	pool_ring_geom(ring_cap, &g);
	return mproc__ring_shared_size(MPROC__RING_SPSC) +
	       mproc__ring_buf_size(MPROC__RING_SPSC, &g);
}

uint64_t pool_slot_size(uint64_t ring_cap)
{
	uint64_t n = sizeof(struct pool_cell) + 2 * ring_bytes(ring_cap);
	return (n + MPROC_CACHELINE - 1) & ~(uint64_t)(MPROC_CACHELINE - 1);
}

void pool_slot_layout(unsigned char *slot, uint64_t ring_cap,
		      struct pool_slot_layout *l)
{
	uint64_t sh = mproc__ring_shared_size(MPROC__RING_SPSC);
	uint64_t rb = ring_bytes(ring_cap);
	l->cell = (struct pool_cell *)slot;
	unsigned char *p = slot + sizeof(struct pool_cell);
	l->task_sh = p;
	l->task_buf = p + sh;
	p += rb;
	l->res_sh = p;
	l->res_buf = p + sh;
}

/* The pool segment's geometry words against @data_size: what the zygote
 * checks when it opens the segment, and mproc-stat before it reads one. */
int pool_validate_geom(const uint64_t g[MPROC_SHM_GEOM_WORDS],
		       uint64_t data_size, void *ctx)
{
	(void)ctx;
	uint64_t n = g[POOL_GEOM_SLOTS], cap = g[POOL_GEOM_RING_CAP];
	struct mproc__ring_geom rg = { 0 };
	if (n == 0 || n > MPROC_POOL_MAX_PROCESSES ||
	    mproc__ring_plan(MPROC__RING_SPSC, cap, 0, cap, &rg) < 0 ||
	    rg.size != cap || g[POOL_GEOM_SLOT_SIZE] != pool_slot_size(cap) ||
	    g[POOL_GEOM_SLOT0] < sizeof(struct pool_hdr) ||
	    g[POOL_GEOM_SLOT0] % MPROC_CACHELINE ||
	    g[POOL_GEOM_SLOT0] > data_size ||
	    (data_size - g[POOL_GEOM_SLOT0]) / g[POOL_GEOM_SLOT_SIZE] < n)
		return -MPROC_ECORRUPT;
	return 0;
}
