/*
 * mproc_wait (mproc/wait.h): wait on connections, queues and plain descriptors at once
 * (multiprocessing.connection.wait).
 *
 * Connections and descriptors go into one ppoll(2): a connection through
 * its eventfd (which mproc_conn_fileno arms).  Queues have no descriptor,
 * so with queues present the ppoll sleeps in slices of 1 ms, doubling to
 * 10 ms, and the queues are looked at between slices.  Without queues the
 * slices are 100 ms, so that mproc_conn_poll's rate-limited liveness check
 * sees a peer that died without closing (its eventfd would never fire).
 * After every wake-up each object is asked directly, so a readiness that
 * the descriptors suggest is confirmed before it is reported.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <time.h>

#include "mproc/pipe.h"
#include "mproc/queue.h"
#include "mproc/wait.h"
#include "common/clock.h"

#define SLICE_MIN_NS (1 * MPROC_MSEC)
#define SLICE_MAX_NS (10 * MPROC_MSEC)
#define SLICE_NOQUEUE_NS (100 * MPROC_MSEC)
#define STACK_FDS 16

/* Ask every object whether it is ready now.  @fds holds the plain
 * descriptors (in object order) for one poll(2) call.  Returns the number
 * ready or a negative error. */
static int check_all(struct mproc_waitable *objs, size_t n,
		     struct pollfd *fds, size_t nfds)
{
	int ready = 0;
	if (nfds) {
		for (size_t i = 0; i < nfds; i++)
			fds[i].revents = 0;
		if (poll(fds, nfds, 0) < 0 && errno != EINTR)
			return -errno;
	}
	size_t f = 0;
	for (size_t i = 0; i < n; i++) {
		struct mproc_waitable *o = &objs[i];
		int r = 0;
		switch (o->type) {
		case MPROC_WAIT_CONN:
			r = mproc_conn_poll(o->conn, MPROC_NOWAIT);
			if (r < 0)
				return r;
			break;
		case MPROC_WAIT_QUEUE: {
			ssize_t s = mproc_queue_next_size(o->queue, MPROC_NOWAIT);
			/* Anything but "empty" (or "busy with a peek") is
			 * something a get would report: ready. */
			r = s != -EAGAIN && s != -EBUSY;
			break;
		}
		case MPROC_WAIT_FD:
			if (fds[f].revents & POLLNVAL)
				return -EBADF;
			r = (fds[f].revents & (POLLIN | POLLHUP | POLLERR)) != 0;
			f++;
			break;
		}
		o->ready = r;
		ready += r;
	}
	return ready;
}

MPROC_API int mproc_wait(struct mproc_waitable *objs, size_t n,
			 int64_t timeout_ns)
{
	if (!objs && n)
		return -EINVAL;
	struct mproc__deadline d;
	if (mproc__deadline_init(&d, timeout_ns))
		return -EINVAL;
	size_t nfds = 0, nconns = 0;
	bool queues = false;
	for (size_t i = 0; i < n; i++) {
		struct mproc_waitable *o = &objs[i];
		o->ready = 0;
		switch (o->type) {
		case MPROC_WAIT_CONN:
			if (!o->conn)
				return -EINVAL;
			nconns++;
			break;
		case MPROC_WAIT_QUEUE:
			if (!o->queue)
				return -EINVAL;
			queues = true;
			break;
		case MPROC_WAIT_FD:
			if (o->fd < 0)
				return -EINVAL;
			nfds++;
			break;
		default:
			return -EINVAL;
		}
	}
	/* Plain descriptors first (check_all polls them on their own), then
	 * the connections' eventfds. */
	struct pollfd stack[STACK_FDS], *fds = stack;
	if (nfds + nconns > STACK_FDS) {
		fds = calloc(nfds + nconns, sizeof(*fds));
		if (!fds)
			return -ENOMEM;
	}
	size_t f = 0;
	for (size_t i = 0; i < n; i++)
		if (objs[i].type == MPROC_WAIT_FD)
			fds[f++] = (struct pollfd){ .fd = objs[i].fd,
						    .events = POLLIN };

	int rc = check_all(objs, n, fds, nfds);
	if (rc != 0 || d.nowait)
		goto out;
	/* Arm the connections only when we are going to sleep on them. */
	for (size_t i = 0; i < n; i++) {
		if (objs[i].type != MPROC_WAIT_CONN)
			continue;
		int fd = mproc_conn_fileno(objs[i].conn);
		if (fd < 0) {
			rc = fd;
			goto out;
		}
		fds[f++] = (struct pollfd){ .fd = fd, .events = POLLIN };
	}
	int64_t slice = queues ? SLICE_MIN_NS : SLICE_NOQUEUE_NS;
	for (;;) {
		/* Arming may have found data already; so may the last slice. */
		rc = check_all(objs, n, fds, nfds);
		if (rc != 0 || mproc__deadline_passed(&d))
			goto out;
		int64_t left = mproc__deadline_left(&d);
		int64_t ns = slice < left ? slice : left;
		struct timespec ts = { .tv_sec = ns / 1000000000LL,
				       .tv_nsec = ns % 1000000000LL };
		if (ppoll(fds, f, &ts, NULL) < 0 && errno != EINTR) {
			rc = -errno;
			goto out;
		}
		if (queues && slice < SLICE_MAX_NS)
			slice = slice * 2 < SLICE_MAX_NS ? slice * 2 : SLICE_MAX_NS;
	}
out:
	if (fds != stack)
		free(fds);
	return rc;
}
