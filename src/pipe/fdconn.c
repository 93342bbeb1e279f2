/*
 * A Connection over an existing descriptor (Python's Connection(handle)):
 * a stream socket or a pipe that carries messages in Python's
 * multiprocessing.connection framing, so either end may be a Python
 * program.  Reached through the ops table of conn.h from every public
 * connection call; the Listener and Client (src/listener) build on it.
 *
 * Framing.  A message is a 4-byte big-endian signed length and then that
 * many bytes; a message longer than 2^31 - 1 bytes carries -1 instead,
 * then an 8-byte big-endian length.  Any other negative length, or an
 * 8-byte one above SSIZE_MAX, is a malformed stream (-EPROTO, for good).
 *
 * Receiving.  The descriptor is read exactly: first the length (4 bytes,
 * then 8 more when it says -1), then the message, never a byte beyond it,
 * so the descriptor is readable exactly when a message has bytes waiting
 * and poll(2) on it tells the truth.  The length of the message at the
 * front is kept in the handle once read, so a message too long for the
 * caller's buffer stays in place (-EMSGSIZE) and a later call with a
 * larger one receives it.  Bytes of a message that a call could not
 * finish (timeout) wait in the handle's stash for the next call.  The
 * length is only a claim of the peer: the stash grows with the bytes that
 * arrived (from 1 MiB, doubling), never with the claim, so a hostile
 * 2^62 costs nothing until the bytes are there.
 *
 * Sending.  One writev(2)/sendmsg(2) for the length and the message.
 * Bytes on a stream cannot be taken back: a send that timed out or failed
 * after writing part of a message leaves the stream mid-message, so the
 * handle refuses every later send (-EPIPE); a send that wrote nothing may
 * simply be retried.
 *
 * Waiting.  With MPROC_FOREVER the handle reads and writes directly (one
 * system call when it has to wait).  With a finite timeout, sockets are
 * read and written with MSG_DONTWAIT and polled on EAGAIN, whatever the
 * descriptor's own O_NONBLOCK flag (which the handle never changes: a
 * forked copy shares it); a pipe has no such flag, so the handle polls
 * before each read, and writes at most PIPE_BUF bytes after each POLLOUT
 * (a write that fits never blocks).  A descriptor made non-blocking by its
 * owner gets EAGAIN even without MSG_DONTWAIT: then the handle polls too.  SIGPIPE from a pipe
 * whose reader is gone is blocked for the write and consumed: the caller
 * sees -EPIPE as on a socket.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "pipe/conn.h"
#include "pipe/fdconn.h"
#include "common/clock.h"
#include "common/fdreg.h"
#include "common/os.h"
#include "common/parse.h"

/* The first allocation of a message received into the stash. */
#define STASH_FIRST ((uint64_t)1 << 20)
/* One read(2) asks for at most this much (the count is a size_t, the
 * result an ssize_t). */
#define READ_MAX ((size_t)1 << 30)

struct fd_conn {
	int fd;
	bool sock;     /* a socket: MSG_DONTWAIT and MSG_NOSIGNAL work */
	bool exported; /* listed in fdreg by mproc_conn_export */

	/* Receiver: the message at the front of the stream. */
	unsigned char hdr[12]; /* its length prefix, as read so far */
	unsigned hdr_have;
	bool have_len;         /* hdr is complete: len is its length */
	uint64_t len;
	uint64_t have;         /* message bytes read (in stash between calls) */
	unsigned char *stash;
	uint64_t stash_cap;
	int rx_err;            /* sticky: -MPROC_EEOF or -EPROTO */

	/* Sender. */
	bool tx_broken;        /* a message was cut part-way: no more sends */

	/* Descriptors that came with SCM_RIGHTS while take_fds was set
	 * (fdconn.h); others are closed by the kernel on arrival. */
	bool take_fds;
	int fds[MPROC__FDCONN_MAX_FDS];
	int nfds;
};

/* ------------------------------------------------------------------ */
/* Waiting and raw I/O                                                 */

/* Wait until @fd is ready for @events or the deadline passes.  Returns 0
 * when ready, -EAGAIN (timeout 0), -ETIMEDOUT, or -errno. */
static int wait_fd(int fd, short events, struct mproc__lazy_deadline *u)
{
	if (mproc__lazy_nowait(u))
		return -EAGAIN;
	/* Hang-up and error count as ready: the read or write that follows
	 * reports them. */
	short rev;
	int rc = mproc__wait_events(fd, events, mproc__lazy_get(u), &rev);
	if (rc < 0)
		return rc;
	if (rc == 0)
		return -ETIMEDOUT;
	return (rev & POLLNVAL) ? -EBADF : 0;
}

/* Keep the descriptors of one control message when the handle takes
 * them and there is room; close the others. */
static void keep_fds(struct fd_conn *f, struct msghdr *mh)
{
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(mh); cm;
	     cm = CMSG_NXTHDR(mh, cm)) {
		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		size_t n = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < n; i++) {
			int fd;
			memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof(fd));
			if (f->take_fds && f->nfds < MPROC__FDCONN_MAX_FDS)
				f->fds[f->nfds++] = fd;
			else
				close(fd);
		}
	}
}

/* One read of at most @n bytes, without blocking unless @block (a
 * socket; a pipe blocks unless its caller polled).  Returns the count, 0
 * at end of stream, or -errno (-EAGAIN: nothing there). */
static ssize_t read_once(struct fd_conn *f, void *p, size_t n, bool block)
{
	int dontwait = block ? 0 : MSG_DONTWAIT;
	if (n > READ_MAX)
		n = READ_MAX;
	ssize_t k;
	if (f->sock && f->take_fds) {
		union {
			char buf[CMSG_SPACE(MPROC__FDCONN_MAX_FDS * sizeof(int))];
			struct cmsghdr align;
		} cbuf;
		struct iovec iov = { p, n };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1,
				     .msg_control = cbuf.buf,
				     .msg_controllen = sizeof(cbuf.buf) };
		k = recvmsg(f->fd, &mh, dontwait | MSG_CMSG_CLOEXEC);
		if (k >= 0)
			keep_fds(f, &mh);
	} else if (f->sock) {
		k = recv(f->fd, p, n, dontwait);
	} else {
		/* A pipe: the caller polled, or may block. */
		k = read(f->fd, p, n);
	}
	if (k >= 0)
		return k;
	/* A peer that vanished with unread data resets the stream: to the
	 * reader that is the end of it, as Python's EOFError. */
	return errno == ECONNRESET ? 0 : -errno;
}

/* Read between 1 and @n bytes, waiting until @u.  Returns the count, 0 at
 * end of stream, -EAGAIN, -ETIMEDOUT or -errno. */
static ssize_t read_some(struct fd_conn *f, void *p, size_t n,
			 struct mproc__lazy_deadline *u)
{
	/* A pipe with a finite timeout is polled first: its read blocks. */
	bool forever = u->timeout_ns == MPROC_FOREVER;
	bool poll_first = !f->sock && !forever;
	for (;;) {
		if (poll_first) {
			int rc = wait_fd(f->fd, POLLIN, u);
			if (rc == -EAGAIN) {
				/* Timeout 0: look once. */
				struct pollfd pf = { .fd = f->fd,
						     .events = POLLIN };
				if (poll(&pf, 1, 0) <= 0)
					return -EAGAIN;
			} else if (rc) {
				return rc;
			}
		}
		ssize_t k = read_once(f, p, n, forever);
		if (k != -EINTR && k != -EAGAIN)
			return k;
		if (k == -EAGAIN && !poll_first) {
			int rc = wait_fd(f->fd, POLLIN, u);
			if (rc)
				return rc;
		}
	}
}

/* Write what is left of @iov (@cnt entries) after @done bytes, at most
 * @limit, once, without SIGPIPE; a socket waits for room only if @block.
 * Returns the count written or -errno. */
static ssize_t write_once(struct fd_conn *f, const struct iovec *iov,
			  int cnt, size_t done, size_t limit, bool block)
{
	struct iovec v[2];
	int k = 0;
	for (int i = 0; i < cnt; i++) {
		if (done >= iov[i].iov_len) {
			done -= iov[i].iov_len;
			continue;
		}
		v[k].iov_base = (char *)iov[i].iov_base + done;
		v[k].iov_len = iov[i].iov_len - done;
		done = 0;
		k++;
	}
	size_t total = 0;
	for (int i = 0; i < k; i++) {
		if (total + v[i].iov_len > limit) {
			v[i].iov_len = limit - total;
			k = i + 1;
			total = limit;
			break;
		}
		total += v[i].iov_len;
	}
	if (f->sock) {
		struct msghdr mh = { .msg_iov = v, .msg_iovlen = (size_t)k };
		ssize_t n = sendmsg(f->fd, &mh,
				    (block ? 0 : MSG_DONTWAIT) | MSG_NOSIGNAL);
		return n >= 0 ? n : -errno;
	}
	/* A pipe: block SIGPIPE in this thread for the write, and take back
	 * the one it raised unless one was already pending. */
	sigset_t pipe_set, old, pending;
	sigemptyset(&pipe_set);
	sigaddset(&pipe_set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
	sigpending(&pending);
	bool was_pending = sigismember(&pending, SIGPIPE);
	ssize_t n = writev(f->fd, v, k);
	int err = errno;
	if (n < 0 && err == EPIPE && !was_pending) {
		struct timespec zero = { 0, 0 };
		while (sigtimedwait(&pipe_set, NULL, &zero) < 0 &&
		       errno == EINTR)
			;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return n >= 0 ? n : -err;
}

/* ------------------------------------------------------------------ */
/* Creating                                                            */

static const struct mproc__conn_ops fd_ops;

/* Wrap @fd; the caller has validated it. */
static int wrap(int fd, bool sock, bool rx, bool tx, mproc_conn **out)
{
	mproc_conn *c = calloc(1, sizeof(*c));
	struct fd_conn *f = calloc(1, sizeof(*f));
	if (!c || !f) {
		free(c);
		free(f);
		return -ENOMEM;
	}
	f->fd = fd;
	f->sock = sock;
	c->ops = &fd_ops;
	c->fdc = f;
	c->can_rx = rx;
	c->can_tx = tx;
	c->timeout_ns = MPROC_FOREVER;
	*out = c;
	return 0;
}

/* Is @fd something the framing can run over, in the directions asked?
 * Sets *@sock.  Returns 0, -EBADF or -EINVAL. */
static int check_fd(int fd, bool rx, bool tx, bool *sock)
{
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0)
		return -EBADF;
	struct stat st;
	if (fstat(fd, &st) < 0)
		return -errno;
	if (S_ISSOCK(st.st_mode)) {
		int type;
		socklen_t len = sizeof(type);
		if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0)
			return -errno;
		/* Datagrams would cut the length from its message. */
		if (type != SOCK_STREAM)
			return -EINVAL;
		*sock = true;
		return 0;
	}
	if (!S_ISFIFO(st.st_mode))
		return -EINVAL;
	int acc = fl & O_ACCMODE;
	if ((rx && acc == O_WRONLY) || (tx && acc == O_RDONLY))
		return -EINVAL;
	*sock = false;
	return 0;
}

static int directions(unsigned flags, bool *rx, bool *tx)
{
	if (flags & ~(unsigned)(MPROC_CONN_READABLE | MPROC_CONN_WRITABLE))
		return -EINVAL;
	if (!flags)
		flags = MPROC_CONN_READABLE | MPROC_CONN_WRITABLE;
	*rx = flags & MPROC_CONN_READABLE;
	*tx = flags & MPROC_CONN_WRITABLE;
	return 0;
}

MPROC_API int mproc_conn_from_fd(int fd, unsigned flags, mproc_conn **out)
{
	if (!out || fd < 0)
		return -EINVAL;
	*out = NULL;
	bool rx, tx, sock;
	int rc = directions(flags, &rx, &tx);
	if (rc)
		return rc;
	if ((rc = check_fd(fd, rx, tx, &sock)) != 0)
		return rc;
	return wrap(fd, sock, rx, tx, out);
}

/* ------------------------------------------------------------------ */
/* Receiving                                                           */

static int begin(mproc_conn *c, bool rx)
{
	if (!c)
		return -EINVAL;
	if (c->closed)
		return -EBADF;
	return (rx ? c->can_rx : c->can_tx) ? 0 : -EPERM;
}

static uint64_t be_load(const unsigned char *p, int n)
{
	uint64_t v = 0;
	for (int i = 0; i < n; i++)
		v = v << 8 | p[i];
	return v;
}

static void be_store(unsigned char *p, uint64_t v, int n)
{
	for (int i = n - 1; i >= 0; i--, v >>= 8)
		p[i] = (unsigned char)v;
}

/* Forget the message at the front (delivered, or cut by the end). */
static void rx_reset(struct fd_conn *f)
{
	free(f->stash);
	f->stash = NULL;
	f->stash_cap = 0;
	f->hdr_have = 0;
	f->have_len = false;
	f->len = f->have = 0;
}

/* The stream ended (0 from read) or broke: sticky from now on. */
static int rx_fail(struct fd_conn *f, int err)
{
	rx_reset(f);
	f->rx_err = err;
	return err;
}

/* Read the length of the message at the front, waiting until @u. */
static int rx_header(struct fd_conn *f, struct mproc__lazy_deadline *u)
{
	if (f->rx_err)
		return f->rx_err;
	while (!f->have_len) {
		/* Never read past the prefix: 4 bytes, then 8 more for -1. */
		unsigned want = f->hdr_have < 4 ? 4 : 12;
		ssize_t n = read_some(f, f->hdr + f->hdr_have,
				      want - f->hdr_have, u);
		if (n == 0)
			return rx_fail(f, -MPROC_EEOF);
		if (n < 0)
			return (int)n;
		f->hdr_have += (unsigned)n;
		if (f->hdr_have == 4) {
			int32_t v = (int32_t)(uint32_t)be_load(f->hdr, 4);
			if (v >= 0) {
				f->len = (uint64_t)v;
				f->have_len = true;
			} else if (v != -1) {
				return rx_fail(f, -EPROTO);
			}
		} else if (f->hdr_have == 12) {
			uint64_t v = be_load(f->hdr + 4, 8);
			if (v > SSIZE_MAX)
				return rx_fail(f, -EPROTO);
			f->len = v;
			f->have_len = true;
		}
	}
	return 0;
}

/* Make room for at least one more byte of the message in the stash,
 * growing with what arrived, never with the announced length. */
static int stash_grow(struct fd_conn *f)
{
	if (f->have < f->stash_cap)
		return 0;
	uint64_t cap = f->stash_cap * 2;
	if (cap < STASH_FIRST)
		cap = STASH_FIRST;
	if (cap > f->len)
		cap = f->len;
	unsigned char *p = realloc(f->stash, cap ? (size_t)cap : 1);
	if (!p)
		return -ENOMEM;
	f->stash = p;
	f->stash_cap = cap;
	return 0;
}

/* A call that read part of the message into the caller's @buf stops:
 * keep those bytes in the stash for the next call (without memory, the
 * stream cannot continue: it is broken for good). */
static void rx_keep(struct fd_conn *f, const unsigned char *buf)
{
	unsigned char *p = malloc(f->have ? (size_t)f->have : 1);
	if (!p) {
		rx_fail(f, -ENOMEM);
		return;
	}
	memcpy(p, buf, f->have);
	f->stash = p;
	f->stash_cap = f->have;
}

/* Receive the message at the front: into @buf (@cap bytes; @exact: the
 * length must be @cap), or into a new buffer when @buf is NULL (@cap is
 * the longest accepted), returned in *@out.  On -EMSGSIZE/-EBADMSG
 * *@size holds the length of the message left in place. */
static ssize_t rx_take(mproc_conn *c, unsigned char *buf, uint64_t cap,
		       bool exact, unsigned char **out, uint64_t *size)
{
	struct fd_conn *f = c->fdc;
	struct mproc__lazy_deadline u;
	mproc__lazy_init(&u, c->timeout_ns);
	int rc = rx_header(f, &u);
	if (rc)
		return rc;
	*size = f->len;
	if (exact && f->len != cap)
		return -EBADMSG;
	if (f->len > cap)
		return -EMSGSIZE;
	/* A fresh message for a caller's buffer goes straight there; one
	 * resumed, or received into a new buffer, collects in the stash. */
	bool direct = buf && f->have == 0;
	while (f->have < f->len) {
		unsigned char *dst;
		uint64_t room;
		if (direct) {
			dst = buf + f->have;
			room = f->len - f->have;
		} else {
			if ((rc = stash_grow(f)) != 0)
				return rc;
			dst = f->stash + f->have;
			room = f->stash_cap - f->have;
		}
		ssize_t n = read_some(f, dst, (size_t)room, &u);
		if (n <= 0) {
			if (n == 0) /* the peer ended mid-message */
				return rx_fail(f, -MPROC_EEOF);
			if (direct && f->have)
				rx_keep(f, buf);
			return f->rx_err ? f->rx_err : n;
		}
		f->have += (uint64_t)n;
	}
	ssize_t len = (ssize_t)f->len;
	if (!direct) {
		if (buf) {
			if (len)
				memcpy(buf, f->stash, (size_t)len);
		} else if (f->stash) {
			/* The stash never grows past the length: hand it on. */
			*out = f->stash;
			f->stash = NULL;
		} else if (!(*out = malloc(1))) {
			return -ENOMEM; /* an empty message stays in place */
		}
	}
	rx_reset(f);
	return len;
}

static ssize_t fd_recv_bytes(mproc_conn *c, size_t maxlength, void **buf,
			     size_t *len)
{
	int rc = begin(c, true);
	if (rc)
		return rc;
	if (!buf || !len)
		return -EINVAL;
	unsigned char *out = NULL;
	uint64_t size = 0;
	ssize_t n = rx_take(c, NULL, maxlength, false, &out, &size);
	if (n >= 0) {
		*buf = out;
		*len = (size_t)n;
	} else if (n == -EMSGSIZE) {
		*len = (size_t)size;
	}
	return n;
}

static ssize_t fd_recv_into(mproc_conn *c, void *buf, size_t cap, bool exact)
{
	int rc = begin(c, true);
	if (rc)
		return rc;
	if (!buf && cap)
		return -EINVAL;
	/* A NULL buffer of capacity 0 still takes an empty message. */
	static unsigned char none[1];
	uint64_t size;
	return rx_take(c, buf ? buf : none, cap, exact, NULL, &size);
}

static ssize_t fd_next_size(mproc_conn *c, int64_t timeout_ns)
{
	int rc = begin(c, true);
	if (rc)
		return rc;
	if (timeout_ns < -1)
		return -EINVAL;
	struct mproc__lazy_deadline u;
	mproc__lazy_init(&u, timeout_ns);
	rc = rx_header(c->fdc, &u);
	return rc ? rc : (ssize_t)c->fdc->len;
}

static int fd_poll(mproc_conn *c, int64_t timeout_ns)
{
	int rc = begin(c, true);
	if (rc)
		return rc;
	if (timeout_ns < -1)
		return -EINVAL;
	struct fd_conn *f = c->fdc;
	/* A receive would report the end or the broken stream at once. */
	if (f->rx_err)
		return 1;
	struct pollfd p = { .fd = f->fd, .events = POLLIN };
	int n;
	while ((n = poll(&p, 1, 0)) < 0 && errno == EINTR)
		;
	if (n == 0 && timeout_ns != 0) {
		struct mproc__lazy_deadline u;
		mproc__lazy_init(&u, timeout_ns);
		rc = wait_fd(f->fd, POLLIN, &u);
		if (rc == -ETIMEDOUT)
			return 0;
		if (rc)
			return rc;
		return 1;
	}
	if (n < 0)
		return -errno;
	if (n && (p.revents & POLLNVAL))
		return -EBADF;
	return n > 0;
}

static int fd_fileno(mproc_conn *c)
{
	int rc = begin(c, true);
	return rc ? rc : c->fdc->fd;
}

/* ------------------------------------------------------------------ */
/* Sending                                                             */

/* Write one frame (length prefix, @buf) and, on a socket, @fds with
 * SCM_RIGHTS alongside its first byte. */
static ssize_t send_frame(mproc_conn *c, const void *buf, size_t len,
			  const int *fds, int nfds)
{
	struct fd_conn *f = c->fdc;
	if (f->tx_broken)
		return -EPIPE;
	unsigned char hdr[12];
	size_t hl;
	if (len > INT32_MAX) {
		be_store(hdr, UINT32_MAX, 4); /* -1 */
		be_store(hdr + 4, len, 8);
		hl = 12;
	} else {
		be_store(hdr, len, 4);
		hl = 4;
	}
	struct iovec iov[2] = { { hdr, hl }, { (void *)buf, len } };
	size_t total = hl + len, done = 0;
	struct mproc__lazy_deadline u;
	mproc__lazy_init(&u, c->timeout_ns);
	bool finite = c->timeout_ns != MPROC_FOREVER;
	if (nfds) {
		/* The descriptors travel with the prefix (the peer's first
		 * read of this frame), sent in one call. */
		union {
			char buf[CMSG_SPACE(MPROC__FDCONN_MAX_FDS * sizeof(int))];
			struct cmsghdr align;
		} cbuf;
		memset(&cbuf, 0, sizeof(cbuf));
		struct msghdr mh = { .msg_iov = iov, .msg_iovlen = 1,
				     .msg_control = cbuf.buf,
				     .msg_controllen = CMSG_SPACE(nfds * sizeof(int)) };
		struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(nfds * sizeof(int));
		memcpy(CMSG_DATA(cm), fds, nfds * sizeof(int));
		for (;;) {
			ssize_t n = sendmsg(f->fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
			if (n >= 0) {
				done = (size_t)n;
				break;
			}
			if (errno == EINTR)
				continue;
			int rc = errno == EAGAIN ? wait_fd(f->fd, POLLOUT, &u)
						 : -errno;
			if (rc)
				return rc == -ECONNRESET ? -EPIPE : rc;
		}
	}
	while (done < total) {
		/* A pipe with a finite timeout takes PIPE_BUF at a time
		 * after POLLOUT: a write of that size never blocks. */
		size_t limit = SIZE_MAX;
		if (!f->sock && finite) {
			int rc = wait_fd(f->fd, POLLOUT, &u);
			if (rc == -EAGAIN) {
				struct pollfd pf = { .fd = f->fd,
						     .events = POLLOUT };
				rc = poll(&pf, 1, 0) > 0 ? 0 : -EAGAIN;
			}
			if (rc) {
				f->tx_broken = done > 0;
				return rc;
			}
			limit = PIPE_BUF;
		}
		ssize_t n = write_once(f, iov, 2, done, limit, !finite);
		if (n >= 0) {
			done += (size_t)n;
			continue;
		}
		int rc = (int)n;
		if (rc == -EINTR)
			continue;
		if (rc == -EAGAIN && (f->sock || !finite) &&
		    (rc = wait_fd(f->fd, POLLOUT, &u)) == 0)
			continue;
		if (rc == -ECONNRESET)
			rc = -EPIPE;
		/* Bytes already out cannot be recalled (top of file). */
		f->tx_broken = done > 0;
		return rc;
	}
	return (ssize_t)len;
}

static ssize_t fd_send_bytes(mproc_conn *c, const void *buf, size_t len)
{
	int rc = begin(c, false);
	if (rc)
		return rc;
	if ((!buf && len) || len > SSIZE_MAX)
		return -EINVAL;
	return send_frame(c, buf, len, NULL, 0);
}

/* ------------------------------------------------------------------ */
/* Export, import, close                                               */

static int fd_export(mproc_conn *c, char *buf, size_t len)
{
	if (!c || !buf)
		return -EINVAL;
	if (c->closed)
		return -EBADF;
	struct fd_conn *f = c->fdc;
	unsigned flags = (c->can_rx ? MPROC_CONN_READABLE : 0) |
			 (c->can_tx ? MPROC_CONN_WRITABLE : 0);
	char tmp[MPROC_CONN_TOKEN_MAX];
	int n = snprintf(tmp, sizeof(tmp), MPROC__FDCONN_TOKEN_PREFIX "%d:%u",
			 f->fd, flags);
	if (n < 0 || (size_t)n >= len)
		return -ENOSPC;
	/* Listed for the process module, which passes listed descriptors
	 * to spawn and forkserver children at the same number. */
	int rc;
	if (!f->exported && (rc = mproc__fdreg_add(f->fd)) != 0)
		return rc;
	if ((rc = mproc__conn_set_cloexec(f->fd, false)) != 0) {
		if (!f->exported)
			mproc__fdreg_remove(f->fd);
		return rc;
	}
	f->exported = true;
	memcpy(buf, tmp, (size_t)n + 1);
	return n;
}

int mproc__fdconn_import(const char *token, mproc_conn **out)
{
	const char *p = token + strlen(MPROC__FDCONN_TOKEN_PREFIX);
	uint64_t fd, flags;
	if (mproc__parse_u64(&p, INT_MAX, &fd) || *p++ != ':' ||
	    mproc__parse_u64(&p, MPROC_CONN_READABLE | MPROC_CONN_WRITABLE,
			     &flags) || *p || !flags)
		return -EINVAL;
	bool rx, tx, sock;
	int rc = directions((unsigned)flags, &rx, &tx);
	if (rc || (rc = check_fd((int)fd, rx, tx, &sock)) != 0)
		return rc;
	if ((rc = wrap((int)fd, sock, rx, tx, out)) != 0)
		return rc;
	mproc__conn_set_cloexec((int)fd, true);
	return 0;
}

static void drop_fds(struct fd_conn *f)
{
	for (int i = 0; i < f->nfds; i++)
		close(f->fds[i]);
	f->nfds = 0;
}

static int fd_close(mproc_conn *c)
{
	if (!c)
		return -EINVAL;
	if (c->closed)
		return -EBADF;
	struct fd_conn *f = c->fdc;
	if (f->exported)
		mproc__fdreg_remove(f->fd);
	/* close(2) releases the descriptor even when it reports an error. */
	close(f->fd);
	drop_fds(f);
	free(f->stash);
	free(f);
	c->fdc = NULL;
	c->closed = true;
	return 0;
}

static const struct mproc__conn_ops fd_ops = {
	.send_bytes = fd_send_bytes,
	.recv_bytes = fd_recv_bytes,
	.recv_into = fd_recv_into,
	.next_size = fd_next_size,
	.poll = fd_poll,
	.fileno = fd_fileno,
	.export = fd_export,
	.close = fd_close,
};

/* ------------------------------------------------------------------ */
/* For the Listener and Client (fdconn.h)                              */

bool mproc__fdconn_is(const mproc_conn *c)
{
	return c && c->ops == &fd_ops;
}

int mproc__fdconn_fd(const mproc_conn *c)
{
	return c->fdc->fd;
}

ssize_t mproc__fdconn_send_fds(mproc_conn *c, const void *buf, size_t len,
			       const int *fds, int nfds)
{
	int rc = begin(c, false);
	if (rc)
		return rc;
	if (nfds < 0 || nfds > MPROC__FDCONN_MAX_FDS || (nfds && !c->fdc->sock))
		return -EINVAL;
	return send_frame(c, buf, len, fds, nfds);
}

void mproc__fdconn_take_fds(mproc_conn *c, bool on)
{
	c->fdc->take_fds = on;
	if (!on)
		drop_fds(c->fdc);
}

int mproc__fdconn_taken_fds(mproc_conn *c, int *fds)
{
	struct fd_conn *f = c->fdc;
	int n = f->nfds;
	memcpy(fds, f->fds, (size_t)n * sizeof(int));
	f->nfds = 0;
	return n;
}

int mproc__fdconn_release(mproc_conn *c)
{
	struct fd_conn *f = c->fdc;
	int fd = f->fd;
	if (f->exported)
		mproc__fdreg_remove(fd);
	drop_fds(f);
	free(f->stash);
	free(f);
	free(c);
	return fd;
}
