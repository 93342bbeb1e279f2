/*
 * mproc/queue.h - Queue: byte messages between any processes, through a
 * lock-free ring in shared memory (the C twin of multiprocessing.Queue).
 *
 * A queue is either SPSC (the user promises one producing and one
 * consuming process at a time; variable-length records packed into a byte
 * ring; the fastest) or MPMC (any number of producers and consumers in any
 * processes; fixed slots of max_msg bytes; the default, as Python's Queue).
 * Messages are byte strings of 0..max_msg bytes.  put is synchronous: when
 * it returns the message is in shared memory (there is no feeder thread,
 * so there is nothing to flush and no join-before-get deadlock).
 *
 * Anonymous queues live in a memfd: they are inherited across fork and
 * passed to spawn/forkserver children (export a token with
 * mproc_queue_export and import it there).  Named queues (a POSIX name like
 * "/jobs") are opened by unrelated processes with mproc_queue_open.
 *
 * Blocking calls spin briefly, then sleep on a futex; the fast path makes
 * no system call when nobody sleeps.  Timeouts are relative nanoseconds:
 * MPROC_FOREVER, MPROC_NOWAIT (0), or a positive value.
 *
 * Results: -EAGAIN means "empty/full right now" (timeout 0), -ETIMEDOUT
 * means a positive timeout expired, -MPROC_EEOF means the queue was closed
 * and is drained, -EPIPE means put on a closed queue, -MPROC_ECORRUPT means
 * the shared ring failed validation (another process scribbled on it).
 *
 * Crash safety: a process may be killed (SIGKILL, a crash) at any point of
 * any call, and the queue stays usable for the others:
 *   - SPSC: a replacement producer or consumer (opened or imported anew,
 *     or a handle inherited earlier) carries on from the last committed
 *     record; a message whose put (or put_many) tagged it before the
 *     producer died is delivered, one a consumer was taking when it died
 *     is delivered again to the next consumer (its get never returned).
 *   - MPMC: a slot claimed by a process that died before finishing its
 *     call is recovered by the survivors it blocks, once they have been
 *     blocked by it for 20 ms (a blocking call notices within one 100 ms
 *     wait slice more; a polling caller on one of its calls that return
 *     -EAGAIN): a producer's half-written slot is skipped (its put never
 *     returned, so nothing committed is lost), and a message taken by a
 *     consumer whose get (or peek, get_many) never returned is put back,
 *     at the back of the queue: nothing is lost or delivered twice, but
 *     that message does not keep its place in the order.  The dead
 *     process is recognised by its pid and start time (/proc), so a
 *     recycled pid does not pass for it.  qsize may count skipped slots
 *     until consumers pass them.
 *   Python's Queue has no such guarantee (a killed process can leave its
 *   lock held).
 *
 * Watching the producers (MPROC_QUEUE_WATCH_PRODUCERS).  Without the flag
 * a get with MPROC_FOREVER on an empty queue waits for ever when its
 * producers have died, as in Python.  With it, every process names itself
 * in a table in the queue before its first put, put_many or reserve (its
 * pid and start time from /proc, read once per process and handle, so a
 * recycled pid does not pass for it; a forked child names itself at its
 * own first put).  A consumer that waits on an empty queue looks at the
 * table after each sleep slice (at most 100 ms; in busy-poll mode about
 * as often), and when some process registered and every registered one
 * has ended, it looks at the ring once more and then returns
 * -MPROC_EPEERDIED.  A process counts as a producer from its first put
 * until it ends, whether it is killed, crashes or exits normally, with or
 * without closing or freeing its handle.  Rules:
 *   - no producer yet: gets wait (a consumer may start before them);
 *   - messages put before the producers died are all delivered first;
 *   - a producer that attaches after a get returned -MPROC_EPEERDIED is a
 *     new producer: its messages go to the gets after it;
 *   - the table names up to 64 producer processes at once (entries of
 *     ended ones are reused); a producer that finds it full of live ones,
 *     or whose identity /proc cannot tell, turns the watching off for the
 *     life of the queue, and gets wait as without the flag;
 *   - calls with timeout 0 and mproc_wait never read /proc: they keep
 *     reporting -EAGAIN / not ready;
 *   - a process that can write the segment can forge the table: it
 *     decides only when this error is reported.
 * The cost: one branch per put on a queue without the flag; with it, a
 * /proc read at a producer's first put and, per sleep slice of a waiting
 * consumer, one per entry until a live producer is found.
 *
 * Concurrency: an MPMC handle's put/get calls may run from any number of
 * threads and processes at once, each with its own handle or sharing one
 * (a shared handle's zero-copy reserve/peek state is one per handle, so
 * zero-copy needs one handle per thread).  An SPSC queue allows one thread
 * in one process producing and one consuming at any time.  close may be
 * called at any time from anyone.  free must not race with other calls on
 * the same handle.
 */
#ifndef MPROC_QUEUE_H
#define MPROC_QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "mproc/common.h"

MPROC_BEGIN_DECLS

typedef struct mproc_queue mproc_queue;

/** Queue flags (struct mproc_queue_attr.flags). */
enum {
	/** One producer and one consumer: the packed byte ring. */
	MPROC_QUEUE_SPSC = 1 << 0,
	/** JoinableQueue: task_done and join. */
	MPROC_QUEUE_JOINABLE = 1 << 1,
	/** Blocking calls busy-poll instead of sleeping (lowest latency,
	 *  burns a core while waiting).  Per handle: not stored in the
	 *  segment, so each process chooses for itself. */
	MPROC_QUEUE_BUSY_POLL = 1 << 2,
	/** mproc_queue_open: accept a queue owned by another user. */
	MPROC_QUEUE_ALLOW_FOREIGN_OWNER = 1 << 3,
	/** Watch the producers (beyond Python; off by default, as there):
	 *  a get, get_many, peek or next_size that waits (timeout other than
	 *  0) on an empty queue returns -MPROC_EPEERDIED once every process
	 *  that ever put into the queue has ended, instead of waiting for
	 *  ever.  See "Watching the producers" above.  Stored in the queue:
	 *  every process that opens or imports it watches. */
	MPROC_QUEUE_WATCH_PRODUCERS = 1 << 4,
};

/** Longest token written by mproc_queue_export, NUL included. */
#define MPROC_QUEUE_TOKEN_MAX 64

struct mproc_queue_attr {
	/** Ring bytes (SPSC: rounded up to a power of two, at most 4 GiB; MPMC: the slots
	 *  get as much as fits, rounded down to a power-of-two count of at
	 *  least 2).  0 means 1 MiB. */
	size_t capacity;
	/** Largest message in bytes.  0 means: SPSC capacity/2 - 16, MPMC
	 *  capacity/64 - 32 (so at least 64 slots of 32 header bytes plus
	 *  the message).  SPSC allows at most capacity/2 - 16. */
	size_t max_msg;
	/** MPROC_QUEUE_* flags (create: SPSC, JOINABLE, BUSY_POLL,
	 *  WATCH_PRODUCERS). */
	unsigned flags;
	/** Permission bits of a named queue (0 means 0600). */
	unsigned mode;
	/** For tests: the indices start here, e.g. near 2^32 or 2^64, to
	 *  exercise wrap-around.  0 for normal use. */
	uint64_t initial_index;
	/** The context the queue is made for, as Python's ctx.Queue(); NULL
	 *  for the default.  A queue lives in shared memory and works the
	 *  same with children of every start method, so the context changes
	 *  nothing in the queue itself; it is accepted so that code written
	 *  against contexts keeps one shape. */
	const mproc_context *ctx;
};

/** mproc_queue_attr_init - fill @attr with the defaults (all zero). */
MPROC_API void mproc_queue_attr_init(struct mproc_queue_attr *attr);

/**
 * mproc_queue_create - create an anonymous queue (memfd-backed).
 * @attr: NULL for the defaults (MPMC, 1 MiB).
 * @out: receives the handle (output arguments come last, as in every
 *       mproc creating call).
 * Returns 0, or -EINVAL (NULL @out, unknown flags, max_msg too large for
 * the capacity, capacity > 2^40), -ENOMEM, -EMFILE, or an errno from the
 * segment layer.  Does not block.  Thread-safe.
 */
MPROC_API int mproc_queue_create(const struct mproc_queue_attr *attr,
				 mproc_queue **out);

/**
 * mproc_queue_create_named - create a queue with a POSIX name (one leading
 * '/', no other), O_EXCL, mode 0600 unless attr->mode says otherwise.
 * Returns as mproc_queue_create, plus -EEXIST, -ENAMETOOLONG, -EACCES.
 */
MPROC_API int mproc_queue_create_named(const char *name,
				       const struct mproc_queue_attr *attr,
				       mproc_queue **out);

/**
 * mproc_queue_open - open a named queue created by another process and
 * validate it.  @flags: MPROC_QUEUE_BUSY_POLL and/or
 * MPROC_QUEUE_ALLOW_FOREIGN_OWNER (otherwise a queue owned by another user
 * is -EACCES).  Returns 0, -EINVAL, -ENOENT, -EACCES, -EAGAIN (not initialised
 * yet), -EPROTOTYPE (not a queue), -EPROTONOSUPPORT, -MPROC_ECORRUPT.
 */
MPROC_API int mproc_queue_open(const char *name, unsigned flags,
			       mproc_queue **out);

/**
 * mproc_queue_export - describe an anonymous queue in a token (at most
 * MPROC_QUEUE_TOKEN_MAX bytes with its NUL) for a child started by spawn
 * or forkserver (put it in the argument buffer).  Returns the token
 * length, -EINVAL, -ENOSPC, -EBADF (freed queue).
 */
MPROC_API int mproc_queue_export(mproc_queue *q, char *buf, size_t len);

/**
 * mproc_queue_import - open the queue behind a token in a child.  @flags:
 * MPROC_QUEUE_BUSY_POLL or 0.  Import a token once, in the process it was
 * made for.  On success the queue is mapped through a duplicate of the
 * token's descriptor, which the handle owns (close-on-exec, and listed
 * for the process module, which passes it to spawn and forkserver
 * children), and the token's descriptor is closed.  On failure no
 * descriptor is closed or changed: the caller may retry, or close it.
 * Returns 0, -EINVAL (malformed token, unknown flags), -EBADF (descriptor
 * not inherited), -EPROTOTYPE (not a queue), -EPROTONOSUPPORT (another
 * layout version), -MPROC_ECORRUPT (segment or ring failed validation),
 * -ENOMEM, -EMFILE.
 */
MPROC_API int mproc_queue_import(const char *token, unsigned flags,
				 mproc_queue **out);

/**
 * mproc_queue_put - copy one message of @len bytes into the queue,
 * waiting up to @timeout_ns for room.  @buf may be NULL when @len is 0.
 * Returns @len, or -EMSGSIZE (len > max_msg; nothing queued), -EAGAIN
 * (full, timeout 0), -ETIMEDOUT, -EPIPE (queue closed), -EINVAL, -EBUSY
 * (SPSC only: a zero-copy reservation is open on this handle),
 * -MPROC_ECORRUPT.
 * Blocks unless the timeout is 0.
 */
MPROC_API ssize_t mproc_queue_put(mproc_queue *q, const void *buf, size_t len,
				  int64_t timeout_ns);
/** mproc_queue_put_nowait - mproc_queue_put with timeout 0. */
MPROC_API ssize_t mproc_queue_put_nowait(mproc_queue *q, const void *buf,
					 size_t len);

/**
 * mproc_queue_get - take the next message into @buf (@cap bytes), waiting
 * up to @timeout_ns for one.  Returns the message length, or -EMSGSIZE
 * when @cap is too small: the message stays at the front of the queue and
 * mproc_queue_next_size tells its length; -EAGAIN (empty, timeout 0),
 * -ETIMEDOUT, -MPROC_EEOF (closed and drained), -MPROC_EPEERDIED (only
 * with MPROC_QUEUE_WATCH_PRODUCERS: empty, and every producer has ended),
 * -EINVAL, -EBUSY (SPSC only: a peek is open on this handle),
 * -MPROC_ECORRUPT.  Blocks unless the timeout is 0.
 */
MPROC_API ssize_t mproc_queue_get(mproc_queue *q, void *buf, size_t cap,
				  int64_t timeout_ns);
/** mproc_queue_get_nowait - mproc_queue_get with timeout 0. */
MPROC_API ssize_t mproc_queue_get_nowait(mproc_queue *q, void *buf, size_t cap);

/**
 * mproc_queue_next_size - length of the message at the front, waiting up to
 * @timeout_ns for one.  With several consumers another one may take it
 * first.  It only looks (SPSC: it reads shared state and never the
 * handle's consumer state), so a watcher thread may call it, or mproc_wait,
 * while another thread gets from the same handle.  Returns the length,
 * -EAGAIN, -ETIMEDOUT, -MPROC_EEOF, -MPROC_EPEERDIED (as
 * mproc_queue_get), -EINVAL, -MPROC_ECORRUPT.
 */
MPROC_API ssize_t mproc_queue_next_size(mproc_queue *q, int64_t timeout_ns);

/**
 * mproc_queue_put_many - put up to @n messages (@msgs[i] is one message)
 * with one index publication and at most one wake-up call (MPMC: the
 * slots of the messages are claimed together, and as many sleeping
 * consumers are woken as messages were put).  Waits up to
 * @timeout_ns until at least one fits, then puts as many as fit without
 * waiting.  Returns the number put (>= 1), or the error of the first
 * message as mproc_queue_put (then none was put).  @n == 0 returns 0.
 */
MPROC_API ssize_t mproc_queue_put_many(mproc_queue *q, const struct iovec *msgs,
				       size_t n, int64_t timeout_ns);

/**
 * mproc_queue_get_many - take up to @n messages, message i into
 * @bufs[i] (capacity bufs[i].iov_len), its length stored in @lens[i];
 * one index publication and at most one wake-up call (MPMC: as many
 * sleeping producers as slots freed).  Waits up to @timeout_ns
 * for the first, then takes what is there without waiting, stopping before
 * a message that does not fit its buffer.  MPMC: at most 64 per call (the
 * batch's slots stay claimed until it returns, so that a consumer killed
 * inside the call loses none of them).  Returns the number taken (>= 1)
 * or the error for the first message as mproc_queue_get.
 */
MPROC_API ssize_t mproc_queue_get_many(mproc_queue *q, const struct iovec *bufs,
				       size_t *lens, size_t n,
				       int64_t timeout_ns);

/**
 * mproc_queue_reserve - zero-copy put, step 1: reserve room for a message
 * of up to @len bytes and return a pointer into the ring in *@ptr; write
 * the message there, then call mproc_queue_commit.  Waits up to
 * @timeout_ns for room.  One reservation per handle at a time.  In an MPMC
 * queue, consumers reaching the reserved slot wait for the commit: do not
 * hold a reservation long.  Returns 0 or the errors of mproc_queue_put
 * (-EBUSY when a reservation is already open).
 */
MPROC_API int mproc_queue_reserve(mproc_queue *q, size_t len, void **ptr,
				  int64_t timeout_ns);
/**
 * mproc_queue_commit - zero-copy put, step 2: publish the reserved message
 * with its final length @len (<= the reserved length).  Returns 0, -EINVAL
 * (no reservation open, or @len too long).
 */
MPROC_API int mproc_queue_commit(mproc_queue *q, size_t len);

/**
 * mproc_queue_peek - zero-copy get, step 1: wait up to @timeout_ns for a
 * message and return a pointer to it in the ring (*@ptr) and its length
 * (the return value).  The message is claimed by this handle; read it,
 * then call mproc_queue_release.  Returns the length, or the errors of
 * mproc_queue_get (-EBUSY when a peek is already open).  The bytes come
 * from the producer's CPU: a loop that reads a large message in place
 * with plain loads may run well below memcpy's speed unless it prefetches
 * some tens of KiB ahead (measured with 1 MiB messages: 0.71x the rate
 * of copying them out with memcpy, 1.00x when prefetching 32 KiB ahead;
 * doc/design.md, "1 MiB messages").
 */
MPROC_API ssize_t mproc_queue_peek(mproc_queue *q, const void **ptr,
				   int64_t timeout_ns);
/** mproc_queue_release - zero-copy get, step 2: give the peeked message's
 *  room back.  Returns 0 or -EINVAL (no peek open). */
MPROC_API int mproc_queue_release(mproc_queue *q);

/**
 * mproc_queue_qsize - messages in the queue.  Exact for SPSC when no put or
 * get is in flight; for MPMC a consistent snapshot that counts claimed but
 * unfinished puts.  Under concurrency every answer is approximate by
 * nature.  Returns the count or -EINVAL.  Never blocks.
 */
MPROC_API ssize_t mproc_queue_qsize(mproc_queue *q);
/** mproc_queue_empty - 1 if qsize is 0, 0 if not, -EINVAL. */
MPROC_API int mproc_queue_empty(mproc_queue *q);
/** mproc_queue_full - 1 if a put of max_msg bytes would have to wait now
 *  (MPMC: every slot taken), 0 if not, -EINVAL. */
MPROC_API int mproc_queue_full(mproc_queue *q);
/** mproc_queue_max_msg - the largest message the queue takes, or -EINVAL. */
MPROC_API ssize_t mproc_queue_max_msg(mproc_queue *q);

/**
 * mproc_queue_close - close the queue for everyone: later puts from any
 * process fail with -EPIPE; gets drain what is queued, then return
 * -MPROC_EEOF.  Sleepers are woken.  Messages whose put returned before
 * the close are always delivered (for MPMC, also those still being written
 * into a slot claimed before the close).  A put racing with close, past its
 * closed check but not yet in the ring, may still land after a consumer
 * has seen -MPROC_EEOF; it then stays queued for a later get (and counts
 * as unfinished for a JoinableQueue).  So close a queue once its producers
 * are done, as Python's Queue.close() is meant for a finished producer.
 * Returns 0, -EINVAL.  Closing a closed queue returns 0.
 */
MPROC_API int mproc_queue_close(mproc_queue *q);

/**
 * mproc_queue_shutdown - Python 3.13's Queue.shutdown(immediate), for
 * every process using the queue.
 * @immediate: false: the same as mproc_queue_close (puts fail at once
 *        with -EPIPE; gets drain what is queued, then -MPROC_EEOF).
 *        true: also discard what is queued: from now on every get, peek,
 *        next_size and get_many, in any process, returns -MPROC_EEOF at
 *        once although messages may remain in the ring; qsize is 0; every
 *        process blocked in get, put or join is released (get:
 *        -MPROC_EEOF, put: -EPIPE, join: -MPROC_EEOF); a JoinableQueue's
 *        unfinished count drops to 0 and later task_done calls return 0.
 *        A message already being read by a get when the shutdown lands
 *        may still be returned to that get.
 * Returns 0, -EINVAL.  Never blocks.  Idempotent; an immediate shutdown
 * after a plain one (or a close) discards too.  May run concurrently with
 * any call on the queue from any process.
 */
MPROC_API int mproc_queue_shutdown(mproc_queue *q, bool immediate);

/**
 * mproc_queue_task_done - JoinableQueue: a consumer finished one item.
 * Returns 0, -EINVAL (not joinable), -EOVERFLOW (more task_done calls than
 * items put: Python's ValueError).  After an immediate shutdown it counts
 * nothing and returns 0.
 */
MPROC_API int mproc_queue_task_done(mproc_queue *q);
/**
 * mproc_queue_join - JoinableQueue: wait up to @timeout_ns until every item
 * put has been marked done.  Returns 0, -EAGAIN/-ETIMEDOUT, -EINVAL, or
 * -MPROC_EEOF when an immediate shutdown released it (the items left
 * were discarded, not done).
 */
MPROC_API int mproc_queue_join(mproc_queue *q, int64_t timeout_ns);

/** mproc_queue_unlink - remove a named queue's name.  Returns 0, -EINVAL,
 *  -ENOENT, -EACCES. */
MPROC_API int mproc_queue_unlink(const char *name);

/** mproc_queue_free - release this process's handle (the queue lives on in
 *  other processes).  NULL is a no-op. */
MPROC_API void mproc_queue_free(mproc_queue *q);

MPROC_END_DECLS

#endif /* MPROC_QUEUE_H */
