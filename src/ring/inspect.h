/*
 * Internal: what an inspector (mproc-stat) reads from a ring, and from the
 * segments built of rings (queue, pipe, pool), through a read-only
 * mapping.  Each module that owns a segment layout describes its own
 * segments (queue/inspect.c, pipe/inspect.c, pool/inspect.c) with the
 * ring-level helper below, so a change of layout stays in the owner's
 * folder.
 *
 * A description is a snapshot of words that other processes keep moving:
 * every value is loaded once (relaxed: nothing is dereferenced through it,
 * and a stale value is as good as a slightly earlier snapshot), checked
 * against the validated geometry, and clamped.  A value that cannot be
 * right (a hostile segment, or a word caught between two related stores)
 * clears `consistent` and names the field in `problem`; it is never used to
 * index the mapping.  Nothing here writes to the segment or waits.
 */
#ifndef MPROC_RING_INSPECT_H
#define MPROC_RING_INSPECT_H

#include <stdbool.h>
#include <stdint.h>

#include "ring/base.h"
#include "shm/inspect.h"

struct mproc__ring_info {
	char name[24];          /* "ring", "a<-b", "task 3", "result 3" */
	int kind;               /* MPROC__RING_SPSC or MPROC__RING_MPMC */
	uint64_t capacity;      /* SPSC: ring bytes; MPMC: slots */
	uint64_t max_msg;       /* largest message the geometry allows */
	uint64_t bytes_used;    /* SPSC: head - tail (records with their
				 * headers and padding); MPMC: payload
				 * bytes of the committed slots */
	uint64_t msgs;          /* messages queued */
	uint64_t put_total;     /* messages put so far (SPSC: counter; MPMC:
				 * the enqueue position) */
	uint64_t got_total;     /* messages taken so far */
	bool byte_totals;       /* the ring keeps byte positions (SPSC) */
	uint64_t bytes_put_total, bytes_got_total; /* SPSC head and tail */
	uint32_t closed;        /* MPROC__RING_WR_CLOSED | _RD_CLOSED */
	uint32_t get_waiters;   /* processes asleep waiting for data */
	uint32_t put_waiters;   /* processes asleep waiting for room */
	uint32_t in_progress;   /* MPMC: slots claimed but not committed */
	bool consistent;
	const char *problem;    /* the first field that failed, or NULL */
};

/*
 * Describe the ring whose shared indices are at @sh and buffer at @buf
 * inside a read-only mapping, with the geometry @g that the caller has
 * validated against the mapping (mproc__ring_check).  Fills @out (its name
 * is left to the caller).  MPMC: the owners of the slots (the last process
 * to claim each) are reported through @owner(@arg, pid) once per distinct
 * pid, when @owner is not NULL.
 */
void mproc__ring_describe(int kind, const void *sh, const void *buf,
			  const struct mproc__ring_geom *g,
			  struct mproc__ring_info *out,
			  void (*owner)(void *arg, uint32_t pid), void *arg);

/* Processes a segment names in its own words (creator, pipe end owners,
 * pool parent and workers, ring users).  Only hints: such a process may
 * have died or handed its role on. */
struct mproc__seg_pid {
	uint32_t pid;
	char role[24];
};

/* One segment: its kind and rings, kind-specific state, and the pids it
 * records.  Filled by the describer of the module that owns the layout
 * (mproc__queue_describe in queue/layout.h, mproc__pipe_describe in
 * pipe/inspect.h, mproc__pool_describe in pool/inspect.h); each checks
 * the geometry words with its module's own validation first and returns
 * 0, -MPROC_ECORRUPT (geometry rejected), -EPROTOTYPE (another kind) or
 * -ENOMEM. */
struct mproc__seg_info {
	const char *kind;        /* "queue", "pipe", "pool" */
	const char *variant;     /* "spsc", "mpmc", "duplex", "one-way", NULL */
	/* queue */
	bool joinable;
	uint64_t unfinished;     /* JoinableQueue: put but not task_done */
	uint32_t join_waiters;
	/* pipe: per end, pipe_end_ctl.state as a word ("open", "closed",
	 * "died") */
	const char *end_state[2];
	/* pool */
	uint32_t parent_pid;
	uint32_t nworkers;
	uint32_t busy_workers;   /* cells that hold a chunk */
	uint32_t doorbell_waiters;
	uint64_t zygote_msgs;
	/* rings (malloc'd) and recorded pids (malloc'd) */
	unsigned nrings;
	struct mproc__ring_info *rings;
	unsigned npids, cap_pids;
	struct mproc__seg_pid *pids;
	bool consistent;
	const char *problem;
};

/* Record @pid in @info with @role (skips 0 and repeats of pid+role).
 * Returns 0 or -ENOMEM. */
int mproc__seg_info_add_pid(struct mproc__seg_info *info, uint32_t pid,
			    const char *role);
/* Free what a describer allocated in @info. */
void mproc__seg_info_free(struct mproc__seg_info *info);

#endif /* MPROC_RING_INSPECT_H */
