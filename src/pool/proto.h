/*
 * Internal: what the pool's parent, its zygote and its workers share -- the
 * layout of the pool segment and the messages on its rings.
 *
 * Segment (kind MPROC_SHM_KIND_POOL).  The data area starts with a header
 * (struct pool_hdr), then one slot per worker:
 *
 *     slot i:  struct pool_cell          (one cache line)
 *              task ring:   shared indices, then ring_cap bytes
 *              result ring: shared indices, then ring_cap bytes
 *
 * Geometry words (validated by the zygote before use): slot count, ring
 * capacity, the size of one slot, the offset of slot 0.
 *
 * Roles.  The task ring of a slot has one producer, the parent's pool
 * thread, and one consumer, the worker of that slot.  The result ring has
 * one producer, the worker, and one consumer, the pool thread.  When a
 * worker dies, the pool thread drains its result ring and then
 * re-initialises both rings before it asks for a replacement: nobody else
 * touches them in between (the dead worker was the only other user), so
 * no ring ever has two producers or two consumers.
 *
 * The cell.  A worker stores the chunk id when it starts a chunk (after
 * the first item's index and start time), the item index and start time
 * before it runs each item, and clears the chunk id when the chunk is
 * done.  The pool thread reads the cell only after the worker died (to
 * know which item was running) and for task timeouts.  Ordering: the
 * worker's cell stores are relaxed except the chunk id's (release, paired
 * with the acquire of a timeout check, so the start time it reads is not
 * one of an earlier chunk); the pool thread reads them after it learnt of
 * the death from the zygote (a socket message: the kernel orders
 * everything the worker did before its exit before the zygote's wait
 * returns), or, for a timeout, treats a stale value only as a reason to
 * look again on the next tick.
 *
 * The doorbell.  The pool thread waits on one event in the header for
 * everything it serves: a result published by any worker, a fragment of a
 * large task consumed (room for the rest), a message of the zygote, a
 * submission or a shutdown request from a thread of the parent.  Each of
 * them first makes its condition visible (ring publish, counter bump),
 * then signals the doorbell (the W/A protocol of shm/futex.h).  A worker
 * counts what it publishes in its cell (events) before it rings, so the
 * parent can tell that a slot has news from one word, without touching
 * the ring's private state.
 *
 * Helping.  A thread of the parent that waits for a result may, instead
 * of waiting for the pool thread, do the pool thread's work itself (it
 * takes the engine lock, internal.h).  While it polls, it sets helping in
 * the header, and workers then skip the doorbell: nobody needs waking.
 * Edge: worker: store(events, release), seq_cst fence, load(helping) --
 * parent, whenever work is in flight and no thread of it is about to
 * look: store(helping = 0), seq_cst fence (or the heavy barrier A3 of
 * futex.h, which includes one), then one more look at every cell's
 * events.  Of the worker's load and the parent's last look, at least one
 * sees the other's store (the store-buffer pattern of futex.h): either
 * the worker rings, or the parent sees the news.  The worker's fence is a
 * real one, not the light W2 of futex.h, so that the parent's side can be
 * a plain fence too: a helper leaves the engine once per result it waited
 * for, and a membarrier system call there (an interrupt to every CPU)
 * cost more than all the rest of an imap item; a worker notifies once per
 * batch of results.  The parent clears the flag in two places: a helper
 * leaving with work still in flight, and the pool thread before it
 * sleeps (its wait's A3 is the barrier).  A helper leaving with nothing
 * in flight keeps the flag set, so that a late notify for news it has
 * already taken does not wake the pool thread for nothing.
 *
 * Messages.  Each is a pool_msg header and a body, sent as one ring
 * record, or as several with MPROC__RING_REC_MORE on all but the last when
 * it is larger than a record may be.  All fields are little-endian host
 * integers (parent and workers run on one machine), and every body is a
 * whole number of 8-byte words, so that items and results inside it stay
 * 8-byte aligned.  Everything a worker reads from the task ring, and
 * everything the parent reads from a result ring, is validated: a bad
 * message is -MPROC_ECORRUPT for that peer, never an out-of-bounds access.
 */
#ifndef MPROC_POOL_PROTO_H
#define MPROC_POOL_PROTO_H

#include <stdint.h>

#include "common/compiler.h"
#include "shm/futex.h"

/* Geometry words of the pool segment. */
enum {
	POOL_GEOM_SLOTS = 0,
	POOL_GEOM_RING_CAP = 1,
	POOL_GEOM_SLOT_SIZE = 2,
	POOL_GEOM_SLOT0 = 3,
};

struct pool_hdr {
	struct mproc__event doorbell;            /* the pool thread sleeps here */
	_Atomic uint64_t zygote_msgs mproc__aligned_cl; /* bumped per message */
	_Atomic uint32_t parent_pid;
	_Atomic uint32_t helping mproc__aligned_cl; /* a parent thread polls */
};

struct pool_cell {
	_Atomic uint64_t chunk;      /* chunk being run, 0 when idle */
	_Atomic uint64_t item;       /* its item being run */
	_Atomic int64_t started_ns;  /* CLOCK_MONOTONIC when that item began */
	_Atomic uint32_t pid;        /* the worker's pid (informational) */
	_Atomic uint64_t events;     /* messages published, fragments taken */
} mproc__aligned_cl;

/* Message types. */
enum {
	/* task ring: parent -> worker */
	POOL_MSG_DEFINE = 1, /* aux: function id; body: packed fnref */
	POOL_MSG_TASK = 2,   /* id: chunk id; body: pool_task + items */
	POOL_MSG_RETIRE = 3, /* finish what is queued, say BYE, exit */
	/* result ring: worker -> parent */
	POOL_MSG_READY = 16,  /* aux: initializer status (int32) */
	POOL_MSG_RESULT = 17, /* id: chunk id; aux: item count; body below */
	POOL_MSG_BYE = 18,    /* planned exit (maxtasksperchild) */
};

struct pool_msg {
	uint32_t type;
	uint32_t aux;
	uint64_t id;
};

/* Item layouts of a task. */
enum {
	POOL_ITEMS_FIXED = 1, /* nitems items of item_size bytes, each padded
			       * to 8 */
	POOL_ITEMS_VAR = 2,   /* per item: uint64 length, bytes padded to 8 */
	POOL_ITEMS_STAR = 3,  /* per item: uint64 nargs, then nargs times
			       * (uint64 length, bytes padded to 8) */
};

/* Body of POOL_MSG_TASK, followed by the items. */
struct pool_task {
	uint32_t fn_id;
	uint32_t layout;     /* POOL_ITEMS_* */
	uint64_t nitems;
	uint64_t first;      /* index of item 0 within its call */
	uint64_t item_size;  /* POOL_ITEMS_FIXED */
};

/* Body of POOL_MSG_RESULT: a uint64 index (within the chunk) of the first
 * item reported, then records, each a pool_item_res and then:
 *   status 0: n items (a run, n >= 1) of len bytes each, every one padded
 *     to 8 -- consecutive successes of one small length (at most
 *     POOL_RUN_MAX_LEN) share one header, so that a map of tiny results
 *     carries 8 bytes per item instead of 24, and the parent copies a run
 *     into a fixed-size result array with one memcpy;
 *   status < 0: one failed item; len is 0 and n is the length of its
 *     message, which follows padded to 8.
 * The message header's aux is the total of the items of its records. */
struct pool_item_res {
	int32_t status;
	uint32_t n;     /* status 0: items; else: message bytes */
	uint64_t len;
};

/* Longest result a run of several items may have. */
#define POOL_RUN_MAX_LEN 64

/* Longest error message a task may attach (pool.h). */
#define POOL_MSG_MAX 255u
/* Largest function table, and largest packed function reference. */
#define POOL_MAX_FNS 4096u
#define POOL_FNREF_MAX 8192u
/* Largest item count of one chunk, and of arguments of one star item. */
#define POOL_MAX_ITEMS (UINT64_C(1) << 40)
#define POOL_MAX_ARGS 65536u

static inline uint64_t pool_pad8(uint64_t n)
{
	return (n + 7) & ~(uint64_t)7;
}

#endif /* MPROC_POOL_PROTO_H */
