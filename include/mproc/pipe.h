/*
 * mproc/pipe.h - Pipe and Connection: two connected ends that carry byte
 * messages between processes (the C twin of multiprocessing.Pipe and
 * multiprocessing.connection.Connection).  To wait on several connections
 * (and queues, descriptors) at once, see mproc/wait.h.
 *
 * A pipe is one shared-memory segment (a memfd) holding one SPSC record
 * ring per direction: two rings for a duplex pipe, one for a one-way pipe.
 * Sending copies the message into the ring; receiving copies it out.  A
 * message may have any size: one larger than the ring's largest record
 * streams through it in fragments and is reassembled on the other side,
 * so there is no 32 MiB limit as in Python.  A message is delivered whole
 * or not at all: a send that fails half-way (timeout, peer gone, the
 * sending process killed) makes the receiver drop the fragments it
 * already saw.
 *
 * Ends and processes.  Both ends work in the process that created the pipe
 * and in every child forked after it (fork(3) or mproc's process module);
 * each process then uses one end.  A child started by spawn or forkserver
 * gets an end through a token: mproc_conn_export in the parent,
 * mproc_conn_import in the child.  One process uses an end at a time.
 *
 * Who owns an end.  The segment records, for each end, the last process
 * that used it ("used" = created, imported, sent, received, polled or
 * asked for its fileno through it).  That owner is what the peer watches
 * for liveness, and it decides what mproc_conn_close does:
 *   - close is *for good* (the peer reads what is left, then gets
 *     -MPROC_EEOF; its sends get -EPIPE) when the calling process owns the
 *     end and either used it (since it last exported it), or created it
 *     and has neither forked nor exported it since;
 *   - otherwise close only releases this process's handle and the end
 *     lives on in the process that uses it.
 * So Python's idiom works: the parent creates the pipe, forks (or exports
 * the child's end and spawns), closes the child's end, and uses its own;
 * the child closes the parent's end (or not) and uses its own.  Whichever
 * of them closes its own end after using it ends the stream.
 *
 * A dead peer.  Blocking calls sleep at most 100 ms at a time, then check
 * the peer end's owner (pidfd, or kill(pid, 0) where pidfds are missing);
 * a non-blocking receive or poll checks it at most every 100 ms.  A peer
 * end's owner that has died is "noticed" by the first such check, in any
 * process that holds the other end, and that is final: the dead end is
 * marked dead and both directions are closed on its behalf.  From then on
 * the survivor receives what the dead process sent before it died (whole
 * messages only: a message it was part-way through sending is dropped),
 * then gets -MPROC_EPEERDIED from every receive, next_size and send (a
 * send may get it at once), and poll reports the end readable; any
 * process that uses the dead end afterwards gets -EBADF.
 * Not detected: a process that dies before it ever used an end that its
 * parent already handed over (closed without using it) -- until someone
 * uses that end there is no process to watch; wait on the child's
 * sentinel as well (mproc_wait with its pidfd), as Python advises.  A
 * dead owner's pid that the kernel has already given to an unrelated
 * process looks alive: the wait then ends only at its timeout.
 *
 * Taking an end over.  An end this process holds and has used itself is
 * never dead to this process, even if another process used it since and
 * died: its own checks (from either end) never notice that death, so it
 * may take the end up again -- the usual case being a parent that used
 * both ends, let a child use one, and carries on after the child was
 * killed.  (A survivor in a third process may notice the death first;
 * then the end is dead for good, as above.)  The process that takes an
 * end over starts at a message boundary:
 *   - as sender, its first message is a new one; a message the dead
 *     sender left unfinished is dropped by the receiver, never completed
 *     with the new sender's bytes, and never counted as dropped (its send
 *     did not return);
 *   - as receiver, it gets whole messages only.  A message whose first
 *     part the dead receiver had taken is skipped when its rest arrives,
 *     and counted once in mproc_conn_dropped of the handle that skipped
 *     it; one the dead receiver had not started is delivered whole.  A
 *     message the dead receiver had taken entirely is gone with it, as
 *     any message a process received before it died.
 * The same holds when two processes hand an end back and forth without
 * either dying: the handle's own half-received message (kept across a
 * timeout) is dropped when the end's stream has moved past it.
 *
 * Errors common to the calls below: -EINVAL (NULL handle or bad
 * argument), -EBADF (this handle was closed, or the end was closed for
 * good by another process that holds it, or its user's death was noticed
 * as above), -EPERM (wrong direction: a receive, poll or fileno on the
 * send-only end of a one-way pipe, or a send on its receive-only end),
 * -MPROC_ECORRUPT (the shared ring failed validation).
 *
 * Blocking: sends and receives wait for room or for a message up to the
 * handle's timeout (mproc_conn_set_timeout; default MPROC_FOREVER, as in
 * Python).  A zero timeout never blocks and reports -EAGAIN; a positive one
 * that expires reports -ETIMEDOUT.  Waits spin briefly, then sleep on a
 * futex; with nobody asleep and no fileno armed, a send or receive makes no
 * system call.
 *
 * Descriptor connections.  mproc_conn_from_fd wraps a stream socket or a
 * pipe that speaks Python's multiprocessing.connection framing (a 4-byte
 * big-endian signed length, or -1 and an 8-byte length for messages over
 * 2^31 - 1 bytes, then the bytes), so the other end may be a Python
 * Connection, or another mproc one; the Listener and Client
 * (mproc/listener.h) return such connections too.  Every call below works
 * on them with the same results, except where a call says otherwise:
 *   - the peer is another process holding the other end of the socket or
 *     pipe, whatever it does: its close, or its death, is -MPROC_EEOF
 *     after what it sent (a stream cannot tell the two apart), and sends
 *     to it get -EPIPE;
 *   - fileno is the descriptor itself, readable when the next message
 *     has bytes waiting (or at end of stream);
 *   - a send that times out or fails after writing part of a message
 *     cannot take those bytes back: every later send on the handle gets
 *     -EPIPE (one that wrote nothing may be retried);
 *   - a malformed length prefix from the peer (negative, not -1; or an
 *     8-byte length above SSIZE_MAX) makes every later receive -EPROTO;
 *   - the ownership rules above do not apply: each process closes only
 *     its own copy of the descriptor, and the peer sees the end of the
 *     stream when the last copy is closed, as with any socket.
 * A descriptor connection is not a shared-memory pipe: messages are
 * copied through the kernel, at socket speed.
 *
 * Concurrency: per handle, at most one thread may send and one thread may
 * receive (poll, next_size, fileno and mproc_wait count as receiving) at
 * any time; on a duplex end the sender and the receiver may be different
 * threads.  close, free and the set_ calls must not run concurrently with
 * any other call on the same handle.  Different handles are independent,
 * in one process or many.
 */
#ifndef MPROC_PIPE_H
#define MPROC_PIPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "mproc/common.h"

MPROC_BEGIN_DECLS

typedef struct mproc_conn mproc_conn;

/** Pipe flags (struct mproc_pipe_attr.flags). */
enum {
	/** Both connections busy-poll while they wait instead of sleeping
	 *  (lowest latency, burns a core).  Per handle: see
	 *  mproc_conn_set_busy_poll. */
	MPROC_PIPE_BUSY_POLL = 1 << 0,
};

/** Directions of a descriptor connection (mproc_conn_from_fd). */
enum {
	MPROC_CONN_READABLE = 1 << 0, /**< the handle may receive */
	MPROC_CONN_WRITABLE = 1 << 1, /**< the handle may send */
};

/** Longest token written by mproc_conn_export, NUL included. */
#define MPROC_CONN_TOKEN_MAX 128
/** maxlength for mproc_conn_recv_bytes meaning "no limit". */
#define MPROC_CONN_NOLIMIT SIZE_MAX
/** Smallest and largest ring per direction. */
#define MPROC_PIPE_MIN_CAPACITY ((size_t)4096)
#define MPROC_PIPE_MAX_CAPACITY ((size_t)1 << 32)

struct mproc_pipe_attr {
	/** Ring bytes per direction, rounded up to a power of two, at least
	 *  MPROC_PIPE_MIN_CAPACITY.  0 means 1 MiB.  Messages up to
	 *  capacity/2 - 16 bytes travel as one record; longer ones stream. */
	size_t capacity;
	/** MPROC_PIPE_* flags. */
	unsigned flags;
	/** For tests: the rings' indices start here (e.g. near 2^32 or
	 *  2^64) to exercise wrap-around.  0 for normal use. */
	uint64_t initial_index;
	/** The context the pipe is made for, as Python's ctx.Pipe(); NULL for
	 *  the default.  Connections work the same with children of every
	 *  start method (export/import for spawn and forkserver), so the
	 *  context changes nothing in the pipe itself. */
	const mproc_context *ctx;
};

/** mproc_pipe_attr_init - fill @attr with the defaults (all zero). */
MPROC_API void mproc_pipe_attr_init(struct mproc_pipe_attr *attr);

/**
 * mproc_pipe - create a pipe and return its two ends.
 * @duplex: true: both ends send and receive, each direction through its
 *        own ring.  false: as Python's Pipe(duplex=False), @a can only
 *        receive and @b can only send.
 * @attr: NULL for the defaults.
 * @a, @b: receive the connections (must be distinct pointers); output
 *        arguments come last, as in every mproc creating call.
 *
 * Each receiving end gets an eventfd (see mproc_conn_fileno), created
 * here.  The segment and the eventfds are close-on-exec but listed for the
 * process module, which hands them to spawn and forkserver children.
 *
 * Returns 0, or -EINVAL (NULL or equal @a/@b, unknown flags, capacity
 * above MPROC_PIPE_MAX_CAPACITY), -ENOMEM, -EMFILE, or an errno from the
 * segment layer or eventfd(2).  Does not block.  Thread-safe.
 */
MPROC_API int mproc_pipe(bool duplex, const struct mproc_pipe_attr *attr,
			 mproc_conn **a, mproc_conn **b);

/**
 * mproc_conn_from_fd - wrap the descriptor @fd, a stream socket (Unix or
 * TCP; a socketpair end) or a pipe or FIFO, as a connection that speaks
 * Python's length-prefixed framing (Python's Connection(handle, readable,
 * writable); see "Descriptor connections" above).
 * @flags: MPROC_CONN_READABLE and/or MPROC_CONN_WRITABLE; 0 means both,
 *        as Python's defaults.
 * @out: receives the connection, which owns @fd from then on:
 *        mproc_conn_close closes it.
 *
 * The descriptor's flags are left as they are (blocking or not, and
 * close-on-exec): the handle waits with poll(2) and, on a socket,
 * MSG_DONTWAIT.  It is not passed to spawn or forkserver children unless
 * exported (mproc_conn_export).
 * Returns 0, or -EINVAL (NULL @out, negative @fd, unknown @flags, a
 * descriptor that is neither a stream socket nor a pipe, or a pipe end
 * opened in the other direction than @flags asks), -EBADF (@fd is not
 * open), -ENOMEM.  On failure @fd is left open and unchanged.  Does not
 * block.  Thread-safe.
 */
MPROC_API int mproc_conn_from_fd(int fd, unsigned flags, mproc_conn **out);

/**
 * mproc_conn_send_bytes - send @len bytes from @buf as one message.
 * Python's send_bytes(buf, offset, size) is
 * mproc_conn_send_bytes(c, (char *)buf + offset, size) in C.  @buf may be
 * NULL when @len is 0.  Any length up to SSIZE_MAX is allowed; longer than
 * the ring's largest record, the message streams through in fragments and
 * the call returns once the last fragment is in the ring.
 *
 * Returns @len, or -EAGAIN (no room and timeout 0; nothing sent),
 * -ETIMEDOUT, -EPIPE (the peer closed its end), -MPROC_EPEERDIED (the
 * peer's process died), and the common errors.  A streamed message that
 * fails part-way is withdrawn: the receiver never sees any of it.
 * Blocks up to the handle's timeout while the ring is full.
 */
MPROC_API ssize_t mproc_conn_send_bytes(mproc_conn *c, const void *buf,
					size_t len);

/**
 * mproc_conn_recv_bytes - receive the next message into a new buffer.
 * @maxlength: longest message accepted (MPROC_CONN_NOLIMIT: any).
 * @buf: receives a malloc'd buffer holding the message (never NULL on
 *       success, also for an empty message); release it with free(3).
 * @len: receives the message's length; on -EMSGSIZE, the length of the
 *       message that was too long.
 *
 * Returns the length, or -EMSGSIZE (longer than @maxlength: unlike Python
 * the message stays in place, and a retry with a larger @maxlength
 * receives it), -EAGAIN (nothing there, timeout 0), -ETIMEDOUT,
 * -MPROC_EEOF (the peer closed its end and everything it sent has been
 * received), -MPROC_EPEERDIED (the peer died, everything it sent has been
 * received), -ENOMEM (the message, or the part of a streamed one not yet
 * taken, stays in place; a retry continues), and the common errors.
 * A timeout in the middle of a streamed message keeps what arrived in the
 * handle; the next receive continues it.  The buffer of a streamed
 * message grows as its fragments arrive (from at most 1 MiB, doubling),
 * so the length its first fragment announces costs nothing until the
 * bytes are there.  Blocks up to the handle's timeout.
 */
MPROC_API ssize_t mproc_conn_recv_bytes(mproc_conn *c, size_t maxlength,
					void **buf, size_t *len);

/**
 * mproc_conn_recv_bytes_into - receive the next message into @buf, which
 * holds @cap bytes.  Python's recv_bytes_into(buf, offset) is
 * mproc_conn_recv_bytes_into(c, (char *)buf + offset, size - offset).
 *
 * Returns the length, or -EMSGSIZE when @cap is too small: nothing is
 * consumed (the length of a streamed message travels in its first
 * fragment, so this is known before any of it is read);
 * mproc_conn_next_size tells the length and a retry with a big enough
 * buffer succeeds.  Other errors as mproc_conn_recv_bytes.  After an
 * error, the contents of @buf are unspecified.  Blocks up to the handle's
 * timeout.
 */
MPROC_API ssize_t mproc_conn_recv_bytes_into(mproc_conn *c, void *buf,
					     size_t cap);

/**
 * mproc_conn_send - send the C object at @obj, @size bytes, by value (the
 * twin of send(obj); MPROC_CONN_SEND(c, var) passes sizeof for you).  The
 * bytes are copied as they are: send only objects without pointers.
 * Returns @size or the errors of mproc_conn_send_bytes.
 */
MPROC_API ssize_t mproc_conn_send(mproc_conn *c, const void *obj, size_t size);

/**
 * mproc_conn_recv - receive an object of exactly @size bytes into @obj
 * (the twin of recv(); MPROC_CONN_RECV(c, var) passes sizeof for you).
 * Returns @size, or -EBADMSG when the next message has another size: it
 * stays in place (mproc_conn_next_size tells its size), and the errors of
 * mproc_conn_recv_bytes_into.
 */
MPROC_API ssize_t mproc_conn_recv(mproc_conn *c, void *obj, size_t size);

#define MPROC_CONN_SEND(c, obj) mproc_conn_send((c), &(obj), sizeof(obj))
#define MPROC_CONN_RECV(c, obj) mproc_conn_recv((c), &(obj), sizeof(obj))

/**
 * mproc_conn_next_size - the length of the next message, waiting up to
 * @timeout_ns for one (relative ns; MPROC_FOREVER, or 0 to look once).
 * Consumes no message (it does skip what no receive would deliver: the
 * rest of a dropped message, see "Taking an end over").  Returns the length, -EAGAIN (timeout 0), -ETIMEDOUT,
 * -MPROC_EEOF, -MPROC_EPEERDIED, and the common errors.
 */
MPROC_API ssize_t mproc_conn_next_size(mproc_conn *c, int64_t timeout_ns);

/**
 * mproc_conn_poll - whether a receive would find something, waiting up to
 * @timeout_ns (0: look once; MPROC_FOREVER: until it does).  Readable
 * means: a message (or the first fragment of a streamed one) is there, or
 * the peer closed or died and everything it sent has been received -- as
 * in Python, where recv would then raise EOFError.  Returns 1 (readable),
 * 0 (not, when the timeout expired), or a negative error: -EINVAL (NULL,
 * timeout < -1) and the common errors.
 */
MPROC_API int mproc_conn_poll(mproc_conn *c, int64_t timeout_ns);

/**
 * mproc_conn_fileno - a file descriptor that is readable exactly when
 * mproc_conn_poll(c, 0) would return 1, for poll(2), epoll and select
 * next to sockets.  It is an eventfd that belongs to the connection: do
 * not read, write or close it.  Valid until the handle is closed; the
 * same number in a forked child, and in a spawn or forkserver child that
 * imported the end.
 *
 * The first call arms the end: from then on the sending side signals the
 * eventfd when the ring goes from empty to non-empty (one write(2) per
 * such transition, none while it stays non-empty), and receives that
 * leave the ring empty drain it (one read(2)).  Unarmed connections make
 * no such calls.  Arming lasts as long as the pipe.
 *
 * Two limits: a peer that dies without closing makes the descriptor
 * readable only once a receive, poll or mproc_wait on this end has noticed
 * the death (add the peer's sentinel to your poll set to learn it at
 * once); and a sender that writes the eventfd after the receiver has
 * already drained the ring takes the write back at once, but a sender
 * killed between the two leaves the descriptor readable with nothing to
 * read until the next receive or poll finds the ring empty (a spurious
 * readiness that mproc_conn_poll(c, 0) resolves).  After an end
 * was taken over, the rest of a message its dead receiver had started
 * (see "Taking an end over") makes the descriptor readable until a
 * receive or poll skips it.
 *
 * On a descriptor connection (mproc_conn_from_fd) it is that descriptor:
 * readable when the next message has bytes waiting, or at end of stream;
 * there is nothing to arm.
 *
 * Returns the descriptor, or -EPERM (send-only end) and the common
 * errors.  Does not block.
 */
MPROC_API int mproc_conn_fileno(mproc_conn *c);

/**
 * mproc_conn_set_timeout - the timeout of this handle's sends and
 * receives: relative nanoseconds, MPROC_FOREVER (the default) or 0 (never
 * block).  Returns 0, -EINVAL (NULL or < -1), -EBADF.
 */
MPROC_API int mproc_conn_set_timeout(mproc_conn *c, int64_t timeout_ns);

/**
 * mproc_conn_set_busy_poll - make this handle's waits busy-poll (@on) or
 * spin briefly and sleep (the default).  Per handle and per process.  No
 * effect on a descriptor connection, which always waits in poll(2).
 * Returns 0, -EINVAL, -EBADF.
 */
MPROC_API int mproc_conn_set_busy_poll(mproc_conn *c, bool on);

/** mproc_conn_readable - 1 if this end may receive, 0 if not, or -EINVAL,
 *  -EBADF.  mproc_conn_writable - the same for sending. */
MPROC_API int mproc_conn_readable(const mproc_conn *c);
MPROC_API int mproc_conn_writable(const mproc_conn *c);

/**
 * mproc_conn_close - close this handle.  The end is closed for good or
 * only released by this process, as described at the top of this file.
 * Closed for good, the peer still receives everything already sent, then
 * -MPROC_EEOF; its sends fail with -EPIPE; sleepers and an armed fileno
 * are woken.  The handle stays allocated: every later call on it returns
 * -EBADF; release it with mproc_conn_free.
 * Returns 0, -EINVAL (NULL), -EBADF (already closed).  Does not block.
 */
MPROC_API int mproc_conn_close(mproc_conn *c);

/**
 * mproc_conn_closed - whether this end is closed (Python's
 * Connection.closed): 1 when this handle was closed, or when the end was
 * closed for good by another process that holds it, or was marked dead
 * (every call but free would then return -EBADF); 0 while it is open.
 * The peer's close does not count: this end stays open and reads
 * -MPROC_EEOF.  Returns 1, 0, or -EINVAL (NULL).  Does not block; may run
 * concurrently with the sending and receiving calls on the handle.
 */
MPROC_API int mproc_conn_closed(const mproc_conn *c);

/** mproc_conn_free - close the handle if still open (as mproc_conn_close),
 *  then release it.  NULL is a no-op.  The handle is invalid afterwards. */
MPROC_API void mproc_conn_free(mproc_conn *c);

/**
 * mproc_conn_export - describe this end in a token (at most
 * MPROC_CONN_TOKEN_MAX bytes with its NUL) for a child started by spawn
 * or forkserver, which passes it to mproc_conn_import.  The token names
 * the end (a or b), the segment and the eventfds; their descriptors lose
 * close-on-exec, as mproc_shm_export does.  Exporting hands the end over:
 * a later close of this handle that has not used it since only releases
 * it here.
 * A descriptor connection exports its descriptor instead: it loses
 * close-on-exec and is listed for the process module, which passes it to
 * spawn and forkserver children started afterwards at the same number
 * (fork children inherit it anyway).  The child's import wraps that
 * descriptor; each process then holds its own copy and closes only that
 * one (the peer sees the end of the stream once every copy is closed).
 * Returns the token's length, or -ENOSPC (@len too small), -EINVAL,
 * -EBADF, -ENOMEM.  Does not block.
 */
MPROC_API int mproc_conn_export(mproc_conn *c, char *buf, size_t len);

/**
 * mproc_conn_import - open the end described by @token (made by
 * mproc_conn_export in the parent) in this process, which becomes the
 * end's owner.  The inherited descriptors become owned by the new handle
 * and are set close-on-exec again.  Import a token once, in the process
 * it was made for: a second handle on the same descriptors (e.g. an import
 * in the exporting process itself) would close them under the first.
 * Returns 0, or -EINVAL (malformed token, a descriptor in it that is not
 * an eventfd, or descriptors that do not match the pipe's direction),
 * -EBADF (a descriptor not inherited), -EPROTOTYPE (not a pipe),
 * -MPROC_ECORRUPT (segment failed validation), -ENOMEM, -EMFILE.  A token
 * of a descriptor connection gives a descriptor connection over the
 * inherited descriptor (-EBADF when it is not open, -EINVAL when it is no
 * longer a stream socket or pipe).  On success the segment is mapped through a duplicate of its descriptor
 * (the token's one is closed).  On failure no descriptor named in the
 * token is closed or changed: the caller may retry, or close them.
 */
MPROC_API int mproc_conn_import(const char *token, mproc_conn **out);

/**
 * mproc_conn_dropped - how many messages this handle skipped because a
 * receiver of this end that died had taken their first part (see "Taking
 * an end over" above).  Each such message is counted once, by the
 * receive, next_size or poll that skipped its last fragment.  Messages a
 * sender withdrew (a failed or killed send) are not counted: they were
 * never sent.  Returns the count, or -EINVAL (NULL), -EBADF (closed).
 * Does not block.  Counts as receiving for the concurrency rules.
 */
MPROC_API ssize_t mproc_conn_dropped(const mproc_conn *c);

MPROC_END_DECLS

#endif /* MPROC_PIPE_H */
