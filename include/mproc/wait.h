/*
 * mproc/wait.h - wait on several objects at once: connections, queues and
 * plain descriptors (the C twin of multiprocessing.connection.wait).
 *
 * It sits above the modules whose objects it watches, so it names their
 * handle types without including their headers; include mproc/pipe.h or
 * mproc/queue.h as well to create the objects.
 */
#ifndef MPROC_WAIT_H
#define MPROC_WAIT_H

#include <stddef.h>
#include <stdint.h>

#include "mproc/common.h"

MPROC_BEGIN_DECLS

/* The handle types watched (defined in mproc/pipe.h and mproc/queue.h;
 * repeating a typedef of the same type is valid C11 and C++). */
typedef struct mproc_conn mproc_conn;
typedef struct mproc_queue mproc_queue;

/** What a struct mproc_waitable holds. */
enum mproc_wait_type {
	MPROC_WAIT_CONN = 1,  /**< .conn: readable as mproc_conn_poll */
	MPROC_WAIT_QUEUE = 2, /**< .queue: a message is there, or closed and
			       *   drained (mproc_queue_next_size(q, 0) is not
			       *   -EAGAIN) */
	MPROC_WAIT_FD = 3,    /**< .fd: readable for poll(2) (POLLIN, or
			       *   POLLHUP/POLLERR); e.g. a process sentinel
			       *   (pidfd), a socket */
};

/** One object for mproc_wait: set type and the matching member; mproc_wait
 *  sets ready. */
struct mproc_waitable {
	int type; /**< enum mproc_wait_type */
	union {
		mproc_conn *conn;
		mproc_queue *queue;
		int fd;
	};
	int ready; /**< out: 1 if ready, else 0 */
};

/**
 * mproc_wait - wait until at least one of @n objects is ready, or
 * @timeout_ns passes (the twin of multiprocessing.connection.wait).
 *
 * Connections are watched through their eventfds (arming them, see
 * mproc_conn_fileno; a descriptor connection through its own descriptor)
 * and plain descriptors directly, all in one poll(2).
 * Queues have no descriptor, so when any is present the poll(2) sleeps in
 * slices of 1 ms growing to 10 ms and the queues are checked between
 * slices: a queue becomes ready up to 10 ms late, at the cost of a few
 * hundred wake-ups a second while waiting.  Without queues the slices are
 * 100 ms (to check the connections' peers for liveness).  Readiness is
 * confirmed on the objects themselves before it is reported.
 *
 * Returns the number of ready objects (their ready fields are 1), 0 when
 * the timeout expired first, or -EINVAL (NULL @objs with @n > 0, unknown
 * type, NULL conn or queue, negative fd, timeout < -1), or the first error
 * a connection reports (-EBADF closed, -EPERM send-only, ...).  Blocks up
 * to @timeout_ns.  Each connection watched counts as being received
 * from (see the concurrency rules at the top); queues and descriptors may
 * be watched by several threads at once.
 */
MPROC_API int mproc_wait(struct mproc_waitable *objs, size_t n,
			 int64_t timeout_ns);

MPROC_END_DECLS

#endif /* MPROC_WAIT_H */
