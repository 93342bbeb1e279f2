/*
 * Internal: the parent side of a pool -- its objects and how the files of
 * src/pool/ divide the work:
 *
 *   pool.c    the engine: the pool thread (dispatch, collection, deaths,
 *             timeouts, shutdown), helping, create / close / terminate /
 *             join / destroy;
 *   submit.c  the submitting API -- apply, apply_async, the map family
 *             -- and the waits on results (which help the engine);
 *   job.c     jobs and chunks: the task encoder, delivery of results to
 *             jobs, chunk and item-block lifetime;
 *   imap.c    imap iterators: reading the source, the result store
 *             between the engine and next(), next() itself;
 *   async.c   async result objects (publish, callbacks, fileno, free);
 *   local.c   the local transport: the pool segment's rings, the
 *             doorbell, the zygote's messages (see "The transport seam");
 *   zygote.c  the zygote process and the parent's side of its socket;
 *   worker.c  the worker loop and the task API (runs in workers only);
 *   stream.c  messages over the rings;  fn.c  packed function references;
 *   layout.c  where things sit in the segment, and the spin helper.
 * Calls point one way: submit.c, imap.c -> pool.c -> job.c -> async.c
 * -> the rest (job.c stores imap results through imap.c's push), and
 * pool.c <-> its transport through the ops of "The transport seam" (the
 * transport hands messages back through pool_on_message).
 *
 * Work flows as jobs and chunks.  A job is one user call (one apply, one
 * map over N items, one imap); a chunk is a run of consecutive items of
 * one job that travels to one worker as one task message.  Submitting
 * threads push chunks into a wait-free queue (liburcu's cds_wfcq: any
 * number of enqueuers never block each other or the pool thread, which is
 * the one dequeuer).  From then on a chunk belongs to the pool thread
 * alone: on its pending list, then in one slot's in-flight list until
 * every item of it has a result, or back on the pending list when its
 * worker died before finishing it.
 *
 * The engine lock.  The pool thread holds it while it works and drops it
 * while it sleeps.  A thread that waits for a result (apply, map, get)
 * may take it when it is free and do the pool thread's work itself --
 * hand out tasks, collect results -- instead of waiting for the pool
 * thread to wake: a round trip then crosses two parties (the caller and
 * the worker) instead of three.  Everything the pool thread owns is owned
 * by whoever holds the engine.  User callbacks still run only on the pool
 * thread: a helper queues them (struct pool_event), in completion order,
 * and the pool thread runs the queue first thing when it next holds the
 * engine.
 *
 * Why no hash table of pending results (cds_lfht): a worker runs its
 * chunks in the order it received them and reports each chunk's items in
 * order, so the result that comes next from a slot always belongs to the
 * head of that slot's in-flight list.  A FIFO per slot finds it in O(1)
 * without hashing or RCU reclamation.
 */
#ifndef MPROC_POOL_INTERNAL_H
#define MPROC_POOL_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/uio.h>
#include <urcu/wfcqueue.h>

#include "mproc/pool.h"
#include "mproc/process.h"
#include "mproc/shm.h"
#include "pool/proto.h"
#include "pool/stream.h"
#include "ring/ring.h"

/* ---- jobs and chunks ---------------------------------------------------- */

enum pool_out {
	POOL_OUT_BYTES = 1, /* one item; the result bytes go to job->async */
	POOL_OUT_FIXED,     /* results[i * result_size], status[i] */
	POOL_OUT_VRES,      /* vres[i] (malloc'd data) */
	POOL_OUT_IMAP,      /* to the iterator */
	POOL_OUT_SINK,      /* to job->sink (an MPI agent's result encoder) */
};

/* Where a POOL_OUT_SINK job's results go: called by whoever holds the
 * engine, before the job's accounting of the same items, so everything
 * they store is published with the job's async result.  item takes one
 * item (status 0: @data, @len; else the message @msg, may be NULL); run
 * takes @n successes from @index on, @len bytes each every @stride bytes
 * at @data.  Items may come out of index order (a dead worker's running
 * item fails before the items requeued ahead of it).  A sink that cannot
 * store keeps that to itself: the engine's accounting goes on. */
struct pool_sink {
	void (*item)(void *arg, size_t index, int status, const void *data,
		     size_t len, const char *msg);
	void (*run)(void *arg, size_t index, size_t n,
		    const unsigned char *data, size_t len, size_t stride);
};

struct pool_job {
	mproc_pool *pool;
	uint32_t layout;  /* POOL_ITEMS_* */
	uint32_t fn_id;
	/* Input (chunks may carry their own copy instead: pool_chunk.own). */
	const unsigned char *items;         /* FIXED */
	size_t item_size;
	const struct iovec *iov;            /* VAR */
	const struct iovec *const *star;    /* STAR: star[i][0..nargs[i]) */
	const size_t *nargs;
	size_t count;
	/* Output. */
	int out;          /* enum pool_out */
	unsigned char *results;
	size_t result_size;
	int *status;
	struct mproc_pool_result *vres;
	struct mproc_imap *imap;
	const struct pool_sink *sink;
	void *sink_arg;
	/* Progress, touched by the pool thread only. */
	size_t done;
	size_t failed;
	size_t first_err_index;  /* lowest failing index, SIZE_MAX if none */
	int first_err;
	mproc_progress_fn progress;
	void *userdata;
	size_t progress_step, progress_next;
	/* Completion (NULL for imap). */
	mproc_async *async;
	bool in_block;  /* lives in its chunk's item block (pool_own_new) */
	/* Added to item indices in task messages (mproc_task_index): an MPI
	 * agent runs a chunk of a larger call as a job of its own. */
	uint64_t index_base;
};

/* Items copied at submission (apply_async, imap), shared by the chunks
 * split from one another after a worker died; pool thread only once
 * submitted.  The block that holds them also holds the chunk first cut
 * for them, and for apply_async the job: one allocation per call instead
 * of three.  That chunk and job then live as long as the items do (the
 * last reference frees @block, which a chunk split off after a death may
 * hold after the first chunk is gone); both are done with by then: a job
 * completes with its last item's delivery, and a chunk is freed after its
 * last delivery. */
struct pool_own {
	unsigned refs;
	size_t n;
	void *block;      /* what the last reference frees */
	bool spare;       /* one imap item of up to IMAP_ITEM_SMALL bytes:
			   * the block goes back to its iterator (imap.c) */
	struct iovec v[]; /* the bytes follow */
};

struct pool_chunk {
	struct cds_wfcq_node node; /* in the submission queue */
	struct pool_chunk *next;   /* pending or in-flight list */
	struct pool_job *job;
	uint64_t id;
	size_t first;     /* first item (index within the job) */
	size_t n;         /* items */
	size_t reported;  /* items whose results arrived */
	unsigned requeued; /* times its items went back after a death */
	/* Items carried by the chunk (VAR layout): item i of the chunk is
	 * own->v[own_first + i]; NULL when the job's arrays hold them. */
	struct pool_own *own;
	size_t own_first;
	struct mproc_imap *imap; /* the iterator, for imap chunks */
	bool in_block;           /* lives in own's block (pool_own_new) */
};

/* ---- the transport seam ------------------------------------------------- */

/*
 * How the engine reaches its workers.  The engine (pool.c) owns the work:
 * the chunks, each slot's window and what it holds, deaths, requeues and
 * timeouts.  A transport owns the way there: starting and stopping the
 * worker behind a slot, carrying task messages to it and result messages
 * back, telling the engine when a slot's worker started, could not start
 * or ended, and what it was running then.  The messages are those of
 * proto.h on every transport, so the task encoder (job.c) and the result
 * parser (pool_on_message) are shared.
 *
 * Two transports: "local" (local.c with zygote.c): worker processes on
 * this machine, forked by the pool's zygote, fed through an SPSC ring per
 * slot and direction in the pool segment; and "mpi" (src/mpi/head.c),
 * where each slot is an agent rank that runs a local pool of its own:
 * start is the rank's hello, send stages the task bytes into a frame that
 * publish sends with MPI_Isend, collect tests the receives posted per
 * agent, sleep polls them with a backoff, the slot's window starts at
 * twice the agent's workers, a lost worker inside an agent comes back as
 * a failed item in a result message, and EXITED comes only when the
 * agent's pool was closed or terminated (a dead rank ends the whole MPI
 * job).
 *
 * Threads.  wake may be called from any thread of the parent; has_news
 * from the pool thread without the engine (it may only read what may be
 * read concurrently); sleep from the pool thread without the engine; every
 * other op with the engine held (pool thread or a helper, internal.h), so
 * a transport's slot state needs no lock of its own.  Slots are numbered
 * 0..nslots-1, the engine's index into p->slots.
 *
 * Cost.  The hot path makes one indirect call per task message pushed
 * (send), per slot and dispatch round (publish) and per slot and pass
 * (collect); result messages go from the transport to pool_on_message
 * directly.
 */

/* A slot's worker changed (next_event). */
enum {
	POOL_TE_STARTED = 1,  /* pid: the new worker; it reports READY next */
	POOL_TE_START_FAILED, /* val: -errno */
	POOL_TE_EXITED,       /* pid; val: exit code, or -signal */
};

struct pool_tevent {
	int kind;
	unsigned slot;
	pid_t pid;
	int val;
};

/* What a slot's worker was running (running): chunk 0 when idle. */
struct pool_running {
	uint64_t chunk;
	uint64_t item;       /* index within the chunk */
	int64_t started_ns;  /* CLOCK_MONOTONIC; only with task timeouts */
};

struct pool_transport_ops {
	const char *name;
	/* Every op that needs the engine runs on the pool thread: callers
	 * never help (MPI's THREAD_FUNNELED: only that thread calls MPI). */
	bool pool_thread_only;
	/* Set up for p->nslots slots (create, before the pool thread runs)
	 * with the initializer of @attr run once in every worker.  It may
	 * set the windows (p->window, p->window_max and each slot's window)
	 * to what its workers take (an MPI agent: twice its own workers).
	 * 0 or -errno; destroy releases everything, after a failure too. */
	int (*open)(mproc_pool *p, const struct mproc_pool_attr *attr);
	/* The engine has stopped every slot: let the rest go (the zygote
	 * exits).  Blocks until it did, or kills it. */
	void (*stop)(mproc_pool *p);
	void (*destroy)(mproc_pool *p);

	/* Ask for a worker in @slot; STARTED or START_FAILED follows.  0, or
	 * -errno when the transport can start nothing any more. */
	int (*start)(mproc_pool *p, unsigned slot);
	/* Kill the worker @pid of @slot; EXITED follows.  0 or -errno. */
	int (*kill)(mproc_pool *p, unsigned slot, pid_t pid);
	/* No more tasks for @slot: its worker runs what it holds, then
	 * exits (EXITED follows). */
	void (*end_tasks)(mproc_pool *p, unsigned slot);
	/* The next lifecycle event: 1 and *@ev, 0 none now, or -EPIPE: the
	 * transport lost the means to run anything (every worker is gone or
	 * going; the engine fails what is left). */
	int (*next_event)(mproc_pool *p, struct pool_tevent *ev);
	/* What the worker of @slot runs now, or ran when it ended (after
	 * EXITED: exact; while it runs, for task timeouts: possibly stale,
	 * the engine looks again on its next tick). */
	void (*running)(mproc_pool *p, unsigned slot, struct pool_running *r);
	/* After EXITED, once collect took what the worker sent before it
	 * ended: fresh channels for the next worker of @slot. */
	void (*reset)(mproc_pool *p, unsigned slot);
	/* Every tick of the pool thread: 0, or -EPIPE as next_event (then
	 * next_event still hands out the events that came before). */
	int (*check)(mproc_pool *p);

	/* Push what fits of @tx to @slot without blocking: 1 the whole
	 * message, 0 the channel is full (again after news from @slot), or
	 * -errno: the channel is broken (the engine kills the worker).
	 * Pushed bytes need publish to reach the worker. */
	int (*send)(mproc_pool *p, unsigned slot, struct pool_tx *tx);
	/* Make what send pushed to @slot visible to its worker, waking it:
	 * once per slot and dispatch round, however many messages. */
	void (*publish)(mproc_pool *p, unsigned slot);
	/* Hand every whole message the worker of @slot sent to
	 * pool_on_message, in order (a message it could not hold: to
	 * pool_on_lost_message).  0, or the first error (the worker broke
	 * the protocol: the engine kills it). */
	int (*collect)(mproc_pool *p, unsigned slot);
	/* Whether anything may be new: a message in any slot, an event. */
	bool (*has_news)(const mproc_pool *p);

	/* End the pool thread's sleep (a submission, a request). */
	void (*wake)(mproc_pool *p);
	/* Sleep until @ready(@arg) or @d passes; news from any slot or an
	 * event also ends it, as far as @ready says so (has_news). */
	void (*sleep)(mproc_pool *p, bool (*ready)(void *), void *arg,
		      const struct mproc__deadline *d);
	/* A thread of the parent polls every slot from now on (@on: the
	 * transport may stop waking the sleep for news), or stops (!@on:
	 * from now on news wakes the sleep again; a look at every slot
	 * after this call sees whatever did not). */
	void (*watch)(mproc_pool *p, bool on);
};

/* The engine's side, for transports (pool.c): one whole message from the
 * worker of @slot, 0 or -MPROC_ECORRUPT; and one it could not hold, of
 * which the first @len bytes are at @head: its items fail with -ENOMEM
 * (0), or -MPROC_ECORRUPT when the bytes do not say which they are. */
int pool_on_message(mproc_pool *p, unsigned slot, const void *msg,
		    uint64_t len);
int pool_on_lost_message(mproc_pool *p, unsigned slot, const void *head,
			 size_t len);

/* The local transport's state (local.c; zygote.c for the zygote). */
struct pool_local_slot {
	struct pool_cell *cell;
	void *task_sh, *task_buf, *res_sh, *res_buf;
	struct mproc__ring task, result;
	struct pool_rx rx;
	_Atomic uint64_t events_seen; /* cell->events already collected */
};

struct pool_local {
	mproc_shm *seg;
	struct pool_hdr *hdr;
	struct pool_local_slot *slots;
	mproc_process *zygote;
	int sock;                /* our end of the zygote's socket */
	/* hdr->zygote_msgs already handled; written by the engine's holder,
	 * read by has_news without the engine (relaxed). */
	_Atomic uint64_t zygote_seen;
	bool draining;           /* next_event is reading the socket */
	struct mproc__spin spin; /* the pool thread's sleep */
};

extern const struct pool_transport_ops pool_local_transport;

/* ---- the pool ----------------------------------------------------------- */

enum pool_state {
	POOL_RUNNING = 0,
	POOL_CLOSED,      /* no new work; finishing what is queued */
	POOL_TERMINATED,  /* stopping now */
	POOL_BROKEN,      /* the zygote died: nothing can run */
};

enum slot_state {
	SLOT_EMPTY = 0, /* no worker */
	SLOT_STARTING,  /* the zygote was asked for one */
	SLOT_INIT,      /* running, its initializer not yet reported */
	SLOT_READY,     /* takes work */
	SLOT_RETIRING,  /* sent RETIRE: finishes its queue, then exits */
	SLOT_STOPPING,  /* its task ring is closed, or it is being killed */
};

/* The parent's view of one worker slot (pool thread only, except pid,
 * read by mproc_pool_worker_pids under pool->lock). */
struct pool_slot {
	int state;
	pid_t pid;
	struct pool_chunk *inflight, *inflight_tail;
	unsigned ninflight;
	unsigned window;          /* chunks it may hold now (pool.c collect) */
	/* The message being sent; kind says which.  A TASK reads the last
	 * chunk in flight as it goes, so whoever fails or requeues the
	 * chunks in flight clears tx_kind first (pool.c, forget_send). */
	struct pool_tx tx;
	int tx_kind;              /* 0 idle, else POOL_MSG_* */
	bool unpublished;         /* task records committed, not published */
	struct pool_encoder *enc;
	uint32_t fns_defined;     /* functions 0..fns_defined-1 are known */
	unsigned tasks_sent;      /* for maxtasksperchild */
	bool bye;                 /* announced a planned exit */
	bool killed_for_timeout;
	bool kill_sent;
	int init_status;
};

/* A callback a helper could not run itself (engine-protected FIFO). */
struct pool_event {
	struct pool_event *next;
	mproc_async *async;        /* callbacks of a finished result, or */
	mproc_progress_fn progress; /* a progress call */
	void *userdata;
	size_t done, total;
};

struct pool_fn {
	const void *fn;
	void *define_msg; /* POOL_MSG_DEFINE header + packed reference */
	size_t define_len;
};

struct mproc_pool {
	pid_t owner_pid;
	unsigned nslots;
	unsigned window;          /* per worker, to start with */
	unsigned window_max;      /* what a worker's window may grow to */
	unsigned maxtasks;
	int64_t task_timeout_ns;
	uint64_t ring_cap;

	struct pool_slot *slots;

	/* The transport and its state (see "The transport seam"). */
	const struct pool_transport_ops *tp;
	struct pool_local local;
	struct mproc__mpi_head *mpi; /* the MPI transport's (src/mpi/) */

	/* Submission: wait-free queue, and the state it is gated by. */
	struct cds_wfcq_head q_head;
	struct cds_wfcq_tail q_tail;
	_Atomic int state;            /* enum pool_state */
	_Atomic unsigned submitters;  /* threads between state check and enqueue */
	_Atomic uint64_t kicks;       /* requests to the pool thread */
	uint64_t kicks_seen;
	_Atomic uint64_t next_chunk_id;

	/* The engine (see the top of this file) and what it guards. */
	pthread_mutex_t engine;
	bool stopped;             /* the pool thread left its loop */
	struct pool_chunk *pending, *pending_tail;
	struct pool_event *ev_head, *ev_tail;

	pthread_t thread;
	bool thread_started;

	/* Function table: append-only, guarded by fn_lock; the pool thread
	 * reads entries below fn_count, which only grows. */
	pthread_mutex_t fn_lock;
	struct pool_fn *fns;
	_Atomic uint32_t fn_count;
	uint32_t fn_cap;

	/* lock guards: slot pids for worker_pids, finished, and the join
	 * condition. */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool finished;            /* the pool thread has stopped everything */
	bool created;             /* create returned it */
	unsigned nready;          /* workers that reported READY (create) */
	int init_error;           /* first failure while starting */
	bool broken_init;         /* a replacement's initializer failed */

	/* Item counts not yet added to the counters below (engine held);
	 * pool_stats_flush adds them, after each collect and before a job
	 * completes, so that a finished call sees its own items counted. */
	uint64_t completed_local, failed_local;
	/* Counters (struct mproc_pool_stats), relaxed atomics. */
	_Atomic uint64_t st_submitted, st_completed, st_failed, st_lost,
		st_retired, st_started;
};

/* Whether the calling thread is @pool's pool thread. */
static inline bool pool_on_thread(const mproc_pool *pool)
{
	return pool && pool->thread_started &&
	       pthread_equal(pthread_self(), pool->thread);
}

/* Spin (cpu_relax) until @ready(@arg) or @ns nanoseconds pass; true if
 * ready.  The pool's waits spin for longer than the ring's adaptive
 * budget before they sleep: a task's round trip crosses three parties
 * (caller, pool thread, worker), and a budget that adapts to "the other
 * side was slow" decays to nothing as soon as one of them sleeps, after
 * which every hop pays a futex wake-up. */
bool pool_spin(bool (*ready)(void *), void *arg, int64_t ns);
/* How long the pool thread spins while work is in flight, and a worker
 * after it finished a task, before they sleep. */
#define POOL_SPIN_BUSY_NS (50 * 1000)
/* Deaths of workers holding an item before it fails without having run:
 * an item that kills every worker it reaches (a task message a worker
 * cannot even read) must not be passed round for ever. */
#define POOL_MAX_REQUEUE 4

/* Do the pool thread's work while waiting for @done(@arg) to become true,
 * if the engine is free (not from the pool thread). */
void pool_help(mproc_pool *pool, bool (*done)(void *), void *arg,
	       const struct mproc__deadline *d);
/* The same in two steps: take the engine if it is free (false if not, or
 * if the pool thread has stopped), then help until @a is done or news
 * dries up, and give the engine back (pool_help_locked always drops it;
 * pool_engine_drop gives it back unused). */
bool pool_engine_try(mproc_pool *pool);
void pool_help_locked(mproc_pool *pool, bool (*done)(void *), void *arg,
		      const struct mproc__deadline *d);
void pool_engine_drop(mproc_pool *pool);
/* pool_submit, ringing the doorbell or not (@ring false: the caller holds
 * the engine and is about to do the work itself). */
int pool_submit_ex(mproc_pool *pool, struct pool_chunk *chunks,
		   size_t nitems, bool ring);
/* Queue a callback for the pool thread (engine held, not on it). */
void pool_defer(mproc_pool *pool, struct pool_event *ev);

/* Wake the pool thread (after making the reason visible). */
void pool_kick(mproc_pool *pool);
/* 0 if @pool takes new work now, else what a submission would get
 * (-EPIPE closed, -ECHILD not the creating process, -MPROC_EINIT). */
int pool_check_open(const mproc_pool *pool);
/* Accept the chunks of one job (linked through ->next), or refuse them
 * all with -EPIPE (closed) / -ECHILD (not the creating process). */
int pool_submit(mproc_pool *pool, struct pool_chunk *chunks, size_t nitems);
/* The id of @fn in the pool's function table, adding it if new.  Returns
 * the id, or -MPROC_ENOSYMBOL, -ENOMEM, -ENOSPC (table full). */
int pool_fn_id(mproc_pool *pool, const void *fn);

/* ---- async results (async.c) -------------------------------------------- */

#define POOL_ASYNC_SMALL 32

struct mproc_async {
	/* 0 running, 1 finished (release, once); threads waiting for it
	 * sleep on @finished, the event protocol of shm/futex.h. */
	_Atomic uint32_t done;
	struct mproc__event finished;
	struct mproc__spin spin;
	_Atomic int refs;          /* the caller's, and the pool's until done */
	const mproc_pool *pool;    /* for -EDEADLK; not used once done */
	int status;
	int signo;
	char *message;
	void *data;                /* small, or malloc'd when larger */
	size_t len;
	size_t nfailed;            /* map jobs: items that failed */
	mproc_async_cb callback, error_callback;
	void *userdata;
	pthread_mutex_t fd_lock;
	int efd;
	/* A result this small needs no allocation of its own. */
	_Alignas(16) unsigned char small[POOL_ASYNC_SMALL];
};

mproc_async *pool_async_new(const mproc_pool *pool, mproc_async_cb cb,
			    mproc_async_cb ecb, void *userdata);
/* Finish @a with @status (data/message already set) and wake waiters;
 * the callbacks are the caller's to run (pool_async_run_callback, which
 * also drops the pool's reference). */
void pool_async_publish(mproc_async *a, int status);
/* Whether a finished @a has a callback to run for its outcome. */
bool pool_async_has_callback(const mproc_async *a);
/* Run the callback for @a's outcome, if any, and drop the pool's
 * reference (pool thread). */
void pool_async_run_callback(mproc_async *a);
/* Sleep on @a's futex until it is finished or @d passes: 0 or
 * -ETIMEDOUT. */
int pool_async_sleep(mproc_async *a, const struct mproc__deadline *d);
void pool_async_unref(mproc_async *a);
/* True once @arg (an mproc_async) is finished. */
bool pool_async_done(void *arg);
/* Run a queued callback and free the note (pool thread, engine held). */
void pool_run_event(struct pool_event *ev);
/* Wait (for blocking calls, which hold their own reference). */
int pool_async_wait_internal(mproc_async *a, int64_t timeout_ns);

/* ---- delivery (submit.c), called by the pool thread --------------------- */

/* Item @index of @job finished with @status and result bytes (@data,
 * @len; NULL/0 on failure) and message (@msg, may be NULL), @signo for a
 * lost worker. */
void pool_deliver(struct pool_job *job, size_t index, int status,
		  const void *data, size_t len, const char *msg, int signo);
/* Add the engine's item counts to the public counters. */
static inline void pool_stats_flush(mproc_pool *p)
{
	if (p->completed_local) {
		atomic_fetch_add_explicit(&p->st_completed, p->completed_local,
					  memory_order_relaxed);
		p->completed_local = 0;
	}
	if (p->failed_local) {
		atomic_fetch_add_explicit(&p->st_failed, p->failed_local,
					  memory_order_relaxed);
		p->failed_local = 0;
	}
}

/* Copy a fixed-size result (@len <= result_size) to its place, zero the
 * rest of the place. */
static inline void pool_store_fixed(struct pool_job *job, size_t index,
				    const void *data, size_t len)
{
	unsigned char *dst = job->results + index * job->result_size;
	if (len)
		memcpy(dst, data, len);
	if (job->result_size > len)
		memset(dst + len, 0, job->result_size - len);
}

/* The common case of pool_deliver, inline: up to @n successful items
 * from @index on, each @len bytes every @stride in @data, into a fixed
 * result array or a sink, as long as they neither complete the job nor
 * are due a progress call (pool_deliver handles those).  Returns how
 * many it took (0: none, pool_deliver must handle the next). */
static inline size_t pool_deliver_fast(struct pool_job *job, size_t index,
				       size_t n, const unsigned char *data,
				       size_t len, size_t stride)
{
	bool sink = job->out == POOL_OUT_SINK;
	if (!sink && (job->out != POOL_OUT_FIXED || len > job->result_size))
		return 0;
	/* done < count while items are out, and done < progress_next. */
	size_t room = job->count - job->done - 1;
	if (job->progress) {
		size_t to_progress = job->progress_next > job->done
					     ? job->progress_next - job->done - 1
					     : 0;
		if (room > to_progress)
			room = to_progress;
	}
	if (n > room)
		n = room;
	if (!n)
		return 0;
	if (sink) {
		job->sink->run(job->sink_arg, index, n, data, len, stride);
	} else if (len == job->result_size && len == stride) {
		if (len)
			memcpy(job->results + index * len, data, n * len);
	} else {
		for (size_t i = 0; i < n; i++)
			pool_store_fixed(job, index + i, data + i * stride, len);
	}
	if (job->status)
		memset(job->status + index, 0, n * sizeof(*job->status));
	job->done += n;
	job->pool->completed_local += n;
	return n;
}

/* Free a chunk whose items are all accounted for (or handed on). */
void pool_chunk_free(struct pool_chunk *c);
/* A split chunk holds the iterator too. */
void pool_chunk_ref_imap(struct pool_chunk *c);
/* Finish a job of no items (map over an empty array). */
void pool_job_empty_done(struct pool_job *job);

/* Sizes and contents of task messages (submit.c). */
struct pool_encoder;
/* Start encoding @c as a POOL_MSG_TASK into @tx.  Returns 0, -ENOMEM. */
int pool_encode_task(struct pool_slot *s, struct pool_chunk *c);
void pool_encoder_free(struct pool_encoder *e);

/* ---- imap iterators (imap.c) ------------------------------------------- */

/* Results up to this size are kept in the node itself, and the node is
 * reused: no allocation per result in the steady state. */
#define IMAP_SMALL 64
/* Items up to this size travel in blocks that are reused likewise. */
#define IMAP_ITEM_SMALL 64

/* One result waiting for next(), or yielded and not yet released. */
struct imap_node {
	struct imap_node *next;
	size_t index;
	size_t len;
	int status;
	bool spare;  /* IMAP_SMALL bytes of room: goes back for reuse */
	_Alignas(16) unsigned char data[]; /* IMAP_SMALL, or len if larger */
};

struct mproc_imap {
	mproc_pool *pool;
	struct pool_job job;
	bool ordered;
	mproc_imap_source source;
	void *source_arg;
	size_t chunksize, buffersize;
	size_t refill;  /* pull again once this many items are yielded */
	/* Consumer side (the thread calling next), no lock needed. */
	size_t submitted, yielded;
	struct pool_chunk *batch, **batch_tail; /* gathered by imap_fill */
	size_t batch_items;
	bool src_ended;
	int src_err;
	struct imap_node *ready;    /* unordered: taken, in arrival order */
	struct imap_node *current;  /* yielded, released by the next call */
	struct imap_node *freed;    /* released spares not yet handed back */
	unsigned nfreed;
	/* The store, shared by the consumer and the engine's holder (imap.c
	 * explains the edges). */
	struct imap_node *_Atomic arrived;  /* unordered: LIFO of results */
	struct imap_node *_Atomic *slots;   /* ordered: by index % nslots */
	size_t nslots;
	struct imap_node *_Atomic returned; /* spares for the engine */
	struct imap_node *spares;           /* engine side: nodes to reuse */
	/* Item blocks (chunks in them, linked through ->next) the engine is
	 * done with, for the consumer to reuse, and the consumer's own. */
	struct pool_chunk *_Atomic blocks_back;
	struct pool_chunk *blocks;
	_Atomic bool abandoned;
	struct mproc__event arrived_ev; /* next() sleeps here (shm/futex.h) */
	struct mproc__spin spin;
	_Atomic int refs;               /* the caller's + one per chunk */
};

/* Drop a reference (the caller's, or a chunk's); the last frees. */
void pool_imap_unref(struct mproc_imap *it);
/* Give the block of @c (own->spare, last reference) back for reuse
 * (engine held). */
void pool_imap_recycle(struct mproc_imap *it, struct pool_chunk *c);
/* Store item @index's result for next() (engine held). */
void pool_imap_push(struct mproc_imap *it, size_t index, int status,
		    const void *data, size_t len);

/* ---- jobs and chunks (job.c) --------------------------------------------- */

struct pool_job *pool_job_new(mproc_pool *pool, int layout, int out,
			      int fn_id, size_t count);
/* Cut items [0, count) of @job into chunks of @chunksize, linked through
 * ->next; NULL without memory (nothing left allocated). */
struct pool_chunk *pool_make_chunks(struct pool_job *job, size_t chunksize);
/* Free chunks never submitted. */
void pool_chunks_free(struct pool_chunk *c);
/* A block for @n items of @bytes in all (refs 1), holding also a zeroed
 * chunk that owns it (*@chunk: own and in_block set), and a zeroed job
 * (in_block set) when @job is not NULL.  v[] and the bytes are the
 * caller's to fill.  NULL without memory. */
struct pool_own *pool_own_new(size_t n, size_t bytes, struct pool_chunk **chunk,
			      struct pool_job **job);
void pool_own_put(struct pool_own *o);
/* Make the block of @c (from pool_own_new(1, ..., &c, NULL)) new again,
 * for one item: a zeroed chunk owning it, refs 1. */
struct pool_own *pool_own_renew(struct pool_chunk *c);
/* Set up a job (zeroed memory) of @count items. */
void pool_job_init(struct pool_job *j, mproc_pool *pool, int layout, int out,
		   int fn_id, size_t count);

/* ---- the zygote (zygote.c) ---------------------------------------------- */

/* Start the zygote for @pool (creates pool->zygote and pool->sock).
 * @init / @initarg: the initializer.  Waits for the zygote's hello.
 * Returns 0, -MPROC_ENOSYMBOL (initializer does not resolve there), or an
 * error of the process layer. */
int pool_zygote_start(mproc_pool *pool, const mproc_context *ctx,
		      mproc_pool_init_fn init, const void *initarg,
		      size_t initarg_len);
/* Ask for a worker in @slot; for a signal to the worker of @slot whose
 * pid is @pid.  Return 0 or -errno (the zygote is gone). */
int pool_zygote_request_start(mproc_pool *pool, unsigned slot);
int pool_zygote_request_kill(mproc_pool *pool, unsigned slot, pid_t pid,
			     int sig);

struct pool_zmsg {
	uint32_t op;
	uint32_t slot;
	int32_t pid;
	int32_t val;
};
enum {
	POOL_Z_HELLO = 1,    /* val: 0 or the initializer's resolve error */
	POOL_Z_START,        /* slot */
	POOL_Z_STARTED,      /* slot, pid */
	POOL_Z_START_FAILED, /* slot, val: -errno */
	POOL_Z_KILL,         /* slot, pid, val: signal */
	POOL_Z_EXITED,       /* slot, pid, val: exit code, or -signal */
};
/* Receive one zygote message without blocking: 1 and *@m, 0 none, or
 * -EPIPE (the zygote is gone). */
int pool_zygote_recv(mproc_pool *pool, struct pool_zmsg *m);

/* ---- the worker (worker.c) ------------------------------------------- */

struct pool_worker_args {
	struct pool_hdr *hdr;
	unsigned char *slot;    /* the slot's bytes in the segment */
	uint64_t ring_cap;
	bool timeouts;          /* record start times for task timeouts */
	mproc_pool_init_fn init;
	const void *initarg;
	size_t initarg_len;
};

/* Lay out slot @i of a pool segment; used by parent and worker alike. */
struct pool_slot_layout {
	struct pool_cell *cell;
	void *task_sh, *task_buf, *res_sh, *res_buf;
};
uint64_t pool_slot_size(uint64_t ring_cap);
void pool_slot_layout(unsigned char *slot, uint64_t ring_cap,
		      struct pool_slot_layout *l);
/* The geometry of a pool ring (SPSC, @ring_cap bytes). */
void pool_ring_geom(uint64_t ring_cap, struct mproc__ring_geom *g);
/* Check a pool segment's geometry words against @data_size (the
 * mproc_shm_validate_fn of the zygote's open).  0 or -MPROC_ECORRUPT. */
int pool_validate_geom(const uint64_t g[MPROC_SHM_GEOM_WORDS],
		       uint64_t data_size, void *ctx);

_Noreturn void pool_worker_main(const struct pool_worker_args *a);

#endif /* MPROC_POOL_INTERNAL_H */
