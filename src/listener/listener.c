/*
 * Listener and Client (mproc/listener.h): sockets, the order of the two
 * challenges, and the shared-memory upgrade between two mproc ends.
 *
 * Order, as Python's Listener.accept and Client: the listener delivers its
 * challenge first and then answers the client's; the client answers, then
 * delivers.  So the listener's last message is its response to the
 * client's challenge: that is where the offer of a pipe end rides
 * (SCM_RIGHTS), and the client's verdict, the last message of all, says
 * whether it took it up.  By then the listener has authenticated the
 * client (first challenge), and the client takes the offer only after
 * the response proved the listener's key.
 *
 * The listening socket is non-blocking, so that several threads may wait
 * in accept at once: each polls, and the one whose accept4 gets the
 * client handles it while the others poll again.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "listener/internal.h"
#include "common/os.h"
#include "pipe/fdconn.h"

#define DEFAULT_BACKLOG 128
#define DEFAULT_HANDSHAKE_NS (10 * MPROC_SEC)

struct mproc_listener {
	int fd;
	struct lst_addr addr;
	struct lst_key key;
	unsigned char *key_copy; /* the caller's key, copied */
	unsigned flags;
	size_t capacity;
	int64_t handshake_ns;
	pid_t creator; /* removes the socket file (not a forked copy) */
	bool unlink_path;
};

MPROC_API void mproc_listener_attr_init(struct mproc_listener_attr *attr)
{
	if (attr)
		memset(attr, 0, sizeof(*attr));
}

/* ------------------------------------------------------------------ */
/* Create and close                                                    */

static int bind_listen(mproc_listener *l, int backlog, unsigned mode)
{
	int fd = socket(l->addr.family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK,
			0);
	if (fd < 0)
		return -errno;
	int rc = 0;
	bool file = l->addr.family == AF_UNIX && !l->addr.abstract;
	if (l->addr.family != AF_UNIX) {
		int one = 1;
		if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)))
			rc = -errno;
	} else if (file && fchmod(fd, mode) < 0) {
		/* The file bind creates takes the socket's mode less the
		 * umask: never more than asked. */
		rc = -errno;
	}
	if (!rc && bind(fd, (struct sockaddr *)&l->addr.sa, l->addr.len) < 0)
		rc = -errno;
	if (!rc && file) {
		l->unlink_path = true;
		/* Put back what the umask took: exactly the mode asked. */
		if (chmod(l->addr.path, mode) < 0)
			rc = -errno;
	}
	if (!rc && listen(fd, backlog) < 0)
		rc = -errno;
	if (rc) {
		if (l->unlink_path)
			unlink(l->addr.path);
		l->unlink_path = false;
		close(fd);
		return rc;
	}
	l->fd = fd;
	return 0;
}

MPROC_API int mproc_listener_create(const char *address,
				    const struct mproc_listener_attr *attr,
				    mproc_listener **out)
{
	if (!out)
		return -EINVAL;
	*out = NULL;
	struct mproc_listener_attr defaults;
	if (!attr) {
		mproc_listener_attr_init(&defaults);
		attr = &defaults;
	}
	if (!address || (attr->flags & ~(unsigned)MPROC_LISTENER_NO_UPGRADE) ||
	    attr->backlog < 0 || attr->handshake_timeout_ns < -1 ||
	    (attr->mode & ~07777u) || (attr->authkey_len && !attr->authkey) ||
	    attr->authkey_len > INT_MAX ||
	    attr->capacity > MPROC_PIPE_MAX_CAPACITY)
		return -EINVAL;
	mproc_listener *l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	int rc = mproc__lst_parse(address, true, &l->addr);
	if (rc)
		goto fail;
	if (attr->authkey && attr->authkey_len) {
		/* Our own copy: the caller's buffer may go away. */
		if (!(l->key_copy = malloc(attr->authkey_len))) {
			rc = -ENOMEM;
			goto fail;
		}
		memcpy(l->key_copy, attr->authkey, attr->authkey_len);
		rc = mproc__lst_key(&l->key, l->key_copy, attr->authkey_len);
	} else {
		rc = mproc__lst_key(&l->key, attr->authkey, 0);
	}
	if (rc)
		goto fail;
	l->flags = attr->flags;
	l->capacity = attr->capacity;
	l->handshake_ns = attr->handshake_timeout_ns ? attr->handshake_timeout_ns
						     : DEFAULT_HANDSHAKE_NS;
	l->creator = getpid();
	rc = bind_listen(l, attr->backlog ? attr->backlog : DEFAULT_BACKLOG,
			 attr->mode ? attr->mode : 0600);
	if (rc)
		goto fail;
	*out = l;
	return 0;
fail:
	free(l->key_copy);
	free(l);
	return rc;
}

MPROC_API int mproc_listener_fileno(const mproc_listener *l)
{
	return l ? l->fd : -EINVAL;
}

MPROC_API int mproc_listener_address(const mproc_listener *l, char *buf,
				     size_t len)
{
	if (!l || !buf)
		return -EINVAL;
	struct sockaddr_storage sa;
	socklen_t sl = sizeof(sa);
	if (getsockname(l->fd, (struct sockaddr *)&sa, &sl) < 0)
		return -errno;
	return mproc__lst_format(&sa, sl, buf, len);
}

MPROC_API int mproc_listener_close(mproc_listener *l)
{
	if (!l)
		return -EINVAL;
	if (l->unlink_path && l->creator == getpid())
		unlink(l->addr.path);
	close(l->fd);
	if (l->key_copy) {
		OPENSSL_cleanse(l->key_copy, l->key.len);
		free(l->key_copy);
	}
	OPENSSL_cleanse(l->key.own, sizeof(l->key.own));
	free(l);
	return 0;
}

/* ------------------------------------------------------------------ */
/* The handshake of both sides                                         */

/* The end of the handshake: @limit_ns from now, or the caller's deadline
 * @d when that comes first.  A zero timeout only means "take a client
 * that is already waiting": its handshake still gets @limit_ns. */
static void handshake_deadline(struct mproc__deadline *hd,
			       const struct mproc__deadline *d, int64_t limit_ns)
{
	mproc__deadline_init(hd, limit_ns);
	if (!d->forever && !d->nowait &&
	    (hd->forever || mproc__deadline_left(d) < mproc__deadline_left(hd)))
		*hd = *d;
}

static pid_t peer_pid(int sock)
{
	struct ucred uc;
	socklen_t len = sizeof(uc);
	return getsockopt(sock, SOL_SOCKET, SO_PEERCRED, &uc, &len) == 0 ? uc.pid
									 : 0;
}

/* The descriptor connection @c upgraded to the pipe end @end: the socket
 * moves into @end, @c is freed. */
static mproc_conn *upgrade(mproc_conn *c, mproc_conn *end)
{
	int sock = mproc__fdconn_release(c);
	mproc__offer_keep_socket(end, sock, peer_pid(sock));
	return end;
}

/* The listener's side of the handshake over @c (a fresh connection). */
static int serve(mproc_listener *l, mproc_conn *c,
		 const struct mproc__deadline *hd, mproc_conn **out)
{
	*out = c;
	if (!l->key.len)
		return 0;
	int rc = mproc__lst_deliver(c, &l->key, hd, NULL);
	if (rc)
		return rc;
	mproc_conn *a = NULL, *b = NULL;
	int fds[OFFER_NFDS];
	bool offer = l->addr.family == AF_UNIX &&
		     !(l->flags & MPROC_LISTENER_NO_UPGRADE);
	if (offer) {
		struct mproc_pipe_attr pa;
		mproc_pipe_attr_init(&pa);
		pa.capacity = l->capacity;
		/* No resources for a pipe: the connection stays on the
		 * socket, which works just as well, only slower. */
		if (mproc_pipe(true, &pa, &a, &b) != 0 ||
		    mproc__offer_fds(b, fds) != 0) {
			mproc_conn_free(a);
			mproc_conn_free(b);
			a = b = NULL;
			offer = false;
		}
	}
	bool taken = false;
	rc = mproc__lst_answer(c, &l->key, hd, offer ? fds : NULL, &taken);
	/* Handed over (or declined): our handle on b only releases it. */
	mproc_conn_free(b);
	if (rc || !taken) {
		mproc_conn_free(a);
		return rc;
	}
	*out = upgrade(c, a);
	return 0;
}

MPROC_API int mproc_listener_accept(mproc_listener *l, int64_t timeout_ns,
				    mproc_conn **out)
{
	if (!l || !out)
		return -EINVAL;
	*out = NULL;
	struct mproc__deadline d;
	if (mproc__deadline_init(&d, timeout_ns))
		return -EINVAL;
	int fd;
	for (;;) {
		fd = accept4(l->fd, NULL, NULL, SOCK_CLOEXEC);
		if (fd >= 0)
			break;
		int err = errno;
		/* A client that gave up before we took it, or a signal:
		 * wait for the next one. */
		if (err == ECONNABORTED || err == EINTR)
			continue;
		if (err != EAGAIN)
			return -err;
		if (d.nowait)
			return -EAGAIN;
		int rc = mproc__wait_readable(l->fd, &d);
		if (rc < 0)
			return rc;
		if (rc == 0)
			return -ETIMEDOUT;
	}
	mproc_conn *c;
	int rc = mproc_conn_from_fd(fd, 0, &c);
	if (rc) {
		close(fd);
		return rc;
	}
	struct mproc__deadline hd;
	handshake_deadline(&hd, &d, l->handshake_ns);
	mproc_conn *res;
	rc = serve(l, c, &hd, &res);
	if (rc) {
		mproc_conn_free(c);
		return rc;
	}
	/* A descriptor connection's handle starts with no timeout, as one
	 * from mproc_conn_from_fd; an upgraded end is a fresh pipe end. */
	if (res == c)
		mproc_conn_set_timeout(c, MPROC_FOREVER);
	*out = res;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Client                                                              */

/* Connect @fd (non-blocking) to @a by the deadline. */
static int connect_by(int fd, const struct lst_addr *a,
		      const struct mproc__deadline *d)
{
	for (;;) {
		if (connect(fd, (const struct sockaddr *)&a->sa, a->len) == 0)
			return 0;
		int err = errno;
		if (err == EINTR)
			continue;
		if (err == EAGAIN && a->family == AF_UNIX) {
			/* The listener's backlog is full: try again soon. */
			if (d->nowait || mproc__deadline_passed(d))
				return -ETIMEDOUT;
			struct timespec ts = { 0, 1000000 };
			nanosleep(&ts, NULL);
			continue;
		}
		if (err != EINPROGRESS)
			return -err;
		struct pollfd p = { .fd = fd, .events = POLLOUT };
		int n;
		for (;;) {
			int64_t left = d->forever ? -1
						  : mproc__deadline_left(d) / MPROC_MSEC;
			n = poll(&p, 1, d->forever ? -1 : (int)(left > 0 ? left + 1 : 0));
			if (n >= 0 || errno != EINTR)
				break;
		}
		if (n < 0)
			return -errno;
		if (n == 0)
			return -ETIMEDOUT;
		int so = 0;
		socklen_t sl = sizeof(so);
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &so, &sl) < 0)
			return -errno;
		return -so;
	}
}

MPROC_API int mproc_client(const char *address, const void *authkey,
			   size_t authkey_len, int64_t timeout_ns,
			   mproc_conn **out)
{
	if (!out)
		return -EINVAL;
	*out = NULL;
	struct mproc__deadline d;
	if (!address || (authkey && authkey_len > INT_MAX) ||
	    mproc__deadline_init(&d, timeout_ns))
		return -EINVAL;
	struct lst_addr a;
	int rc = mproc__lst_parse(address, false, &a);
	if (rc)
		return rc;
	struct lst_key key;
	if ((rc = mproc__lst_key(&key, authkey, authkey_len)) != 0)
		return rc;
	int fd = socket(a.family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	rc = connect_by(fd, &a, &d);
	/* The connection itself waits with poll and MSG_DONTWAIT; give the
	 * descriptor back its blocking mode, as a user expects of a
	 * socket from connect(2). */
	int fl = fcntl(fd, F_GETFL);
	if (!rc && (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0))
		rc = -errno;
	mproc_conn *c = NULL;
	if (!rc && (rc = mproc_conn_from_fd(fd, 0, &c)) != 0)
		c = NULL;
	if (rc) {
		close(fd);
		OPENSSL_cleanse(key.own, sizeof(key.own));
		return rc;
	}
	struct lst_offer_in in = { .want = a.family == AF_UNIX };
	if (key.len) {
		rc = mproc__lst_answer(c, &key, &d, NULL, NULL);
		if (!rc)
			rc = mproc__lst_deliver(c, &key, &d, &in);
	}
	OPENSSL_cleanse(key.own, sizeof(key.own));
	if (rc) {
		mproc_conn_free(c);
		return rc;
	}
	if (in.conn) {
		*out = upgrade(c, in.conn);
		return 0;
	}
	mproc_conn_set_timeout(c, MPROC_FOREVER);
	*out = c;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Peer credentials                                                    */

MPROC_API int mproc_listener_peer_cred(const mproc_conn *c,
				       struct mproc_peer_cred *out)
{
	if (!c || !out)
		return -EINVAL;
	int sock = mproc__conn_socket(c);
	if (sock < 0)
		return sock;
	struct ucred uc;
	socklen_t len = sizeof(uc);
	if (getsockopt(sock, SOL_SOCKET, SO_PEERCRED, &uc, &len) < 0)
		return errno == ENOTSOCK ? -ENOTSOCK : -errno;
	struct sockaddr_storage sa;
	socklen_t sl = sizeof(sa);
	if (getsockname(sock, (struct sockaddr *)&sa, &sl) == 0 &&
	    sa.ss_family != AF_UNIX)
		return -ENOPROTOOPT;
	out->pid = uc.pid;
	out->uid = uc.uid;
	out->gid = uc.gid;
	return 0;
}
