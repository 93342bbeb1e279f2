/*
 * mproc/listener.h - Listener and Client: authenticated rendezvous between
 * unrelated processes (the C twin of multiprocessing.connection's
 * Listener and Client), speaking Python's wire protocol byte for byte.
 *
 * A listener binds a socket address; a client connects to it; after an
 * authkey challenge in both directions each side holds an ordinary
 * mproc_conn (mproc/pipe.h): send_bytes, recv_bytes, recv_bytes_into,
 * poll, fileno and mproc_wait all work on it.  Either side may be a
 * Python program using multiprocessing.connection.
 *
 * Addresses (strings):
 *   "/path/sock", "./rel", "unix:path"   a Unix socket file, created with
 *                                        mode 0600 unless the attributes
 *                                        say otherwise
 *   "@name"                              a Linux abstract Unix name
 *                                        (Python's "\0name")
 *   "host:port", "tcp:host:port",        TCP, IPv4 or IPv6 ("[::1]:80");
 *   "[v6addr]:port"                      port 0 picks a free one (see
 *                                        mproc_listener_address)
 *
 * Authentication.  Python's challenge, in both directions: the listener
 * sends "#CHALLENGE#" + "{sha256}" + 40 random bytes, the client answers
 * "{sha256}" + HMAC-SHA256(authkey, "{sha256}" + those bytes), the
 * listener replies "#WELCOME#" or "#FAILURE#"; then the client challenges
 * the listener the same way.  As Python 3.12 does, a peer that answers
 * with a bare 16-byte HMAC-MD5 (Python 3.11 and older) is accepted, a
 * response tagged with another digest Python allows (md5, sha384,
 * sha3_256, sha3_384) is checked with that digest, and a challenge without
 * a digest tag (20 random bytes: an old Python listener) is answered with
 * a bare HMAC-MD5.  HMAC and the random bytes come from OpenSSL's
 * libcrypto.  An empty authkey (length 0) means no authentication at all,
 * on both sides, as Python's Listener(authkey=None).
 *
 * Shared-memory upgrade.  When both ends are mproc on a Unix socket and
 * authenticated, the listener's last handshake message also carries, with
 * SCM_RIGHTS, a fresh duplex pipe (a sealed memfd and its eventfds), and
 * the client confirms it took it with a final message no Python client
 * sends ("#WELCOME#" followed by a marker).  Both sides then hold the two
 * ends of an ordinary mproc pipe (mproc_pipe): messages go through the
 * shared-memory rings, fileno is the pipe's eventfd, and the socket is
 * kept only to notice the death of the process at the other end (a dead
 * peer is -MPROC_EPEERDIED, as on any pipe).  A Python peer never sees
 * the offer (the kernel discards descriptors a plain read does not take)
 * and stays on the socket; so do TCP connections, connections without
 * authentication, and listeners with MPROC_LISTENER_NO_UPGRADE.
 *
 * Errors of the handshake (accept and client): -MPROC_EAUTH (the peer
 * answered a challenge wrongly, or rejected ours: a wrong authkey on
 * either side), -EPROTO (the peer sent something that is not Python's
 * handshake: garbage in place of a challenge, a response of an unknown
 * digest, a message longer than 256 bytes), -ECONNABORTED (the peer
 * closed, or stalled past the handshake timeout, mid-handshake).  Nothing
 * is delivered on a connection that failed its handshake, and it is
 * closed.
 *
 * Concurrency: mproc_listener_accept may run in several threads at once
 * on one listener (each gets its own connection); close must not run
 * concurrently with any other call on the listener.  Clients are
 * independent.  Connections follow the rules of mproc/pipe.h.
 */
#ifndef MPROC_LISTENER_H
#define MPROC_LISTENER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "mproc/common.h"
#include "mproc/pipe.h"

MPROC_BEGIN_DECLS

typedef struct mproc_listener mproc_listener;

/** Listener flags (struct mproc_listener_attr.flags). */
enum {
	/** Never offer the shared-memory upgrade: mproc clients stay on the
	 *  socket too (e.g. to measure it). */
	MPROC_LISTENER_NO_UPGRADE = 1 << 0,
};

/** Longest address string, NUL included (mproc_listener_address). */
#define MPROC_LISTENER_ADDRESS_MAX 128

struct mproc_listener_attr {
	/** The authkey, @authkey_len bytes.  NULL: the current process's
	 *  authkey (mproc_process_authkey of mproc_current_process(), the
	 *  key every mproc child inherits).  Non-NULL with length 0: no
	 *  authentication. */
	const void *authkey;
	size_t authkey_len;
	/** listen(2) backlog; 0 means 128. */
	int backlog;
	/** Mode of a Unix socket file; 0 means 0600. */
	unsigned mode;
	/** MPROC_LISTENER_* flags. */
	unsigned flags;
	/** Ring bytes per direction of an upgraded connection (as
	 *  mproc_pipe_attr.capacity); 0: the pipe default. */
	size_t capacity;
	/** Longest time a connected peer may take over the handshake, in
	 *  ns (it also ends at accept's own timeout); 0 means 10 s,
	 *  MPROC_FOREVER no limit. */
	int64_t handshake_timeout_ns;
};

/** The credentials of a Unix socket peer (SO_PEERCRED), as the kernel
 *  recorded them when the peer connected. */
struct mproc_peer_cred {
	pid_t pid;
	uid_t uid;
	gid_t gid;
};

/** mproc_listener_attr_init - fill @attr with the defaults (all zero). */
MPROC_API void mproc_listener_attr_init(struct mproc_listener_attr *attr);

/**
 * mproc_listener_create - bind and listen on @address (see the top of this
 * file).  @attr: NULL for the defaults.  @out: receives the listener.
 *
 * A Unix socket file is created with the mode asked (the umask does not
 * apply) and removed by mproc_listener_close in the process that created
 * it; an existing file at the path is an error (-EADDRINUSE), as Python's
 * bind.  TCP listeners set SO_REUSEADDR, as Python does.  The socket is
 * close-on-exec.
 * Returns 0, or -EINVAL (NULL, malformed address, a path longer than a
 * Unix socket address holds, unknown flags, negative backlog, a timeout
 * below -1, an authkey longer than INT_MAX), -EADDRINUSE, -EADDRNOTAVAIL, -EACCES, -ENOENT (no such
 * directory, or a host name that does not resolve), -ENOMEM, -EMFILE, or
 * another errno of socket(2), bind(2) or listen(2).  Does not block
 * (host names are resolved with getaddrinfo, which may).  Thread-safe.
 */
MPROC_API int mproc_listener_create(const char *address,
				    const struct mproc_listener_attr *attr,
				    mproc_listener **out);

/**
 * mproc_listener_accept - wait for a client, authenticate it in both
 * directions, and return the connection in @out.  @timeout_ns bounds the
 * whole call (MPROC_FOREVER, or 0 to take only a client already waiting,
 * whose handshake then has the handshake timeout alone); the handshake is
 * also bounded by the listener's handshake timeout, so a client that
 * connects and never speaks costs at most that.
 *
 * Returns 0, or -EAGAIN (timeout 0 and nobody waiting), -ETIMEDOUT (nobody
 * connected in time), the handshake errors at the top of this file for a
 * client that failed it (the listener stays usable: call accept again),
 * -EINVAL (NULL or timeout < -1), -EMFILE/-ENFILE (no descriptor for the
 * client, which stays queued), -ENOMEM (the client is dropped), or another
 * errno of accept4(2).  A shared-memory upgrade that cannot get its
 * resources is not an error: the connection stays on the socket.  Blocks up to @timeout_ns.  May run in several
 * threads at once.
 */
MPROC_API int mproc_listener_accept(mproc_listener *l, int64_t timeout_ns,
				    mproc_conn **out);

/**
 * mproc_listener_fileno - the listening socket, readable when a client is
 * waiting to be accepted (for poll(2), epoll, mproc_wait's MPROC_WAIT_FD).
 * Do not close it.  Returns the descriptor, or -EINVAL (NULL).
 */
MPROC_API int mproc_listener_fileno(const mproc_listener *l);

/**
 * mproc_listener_address - write the address the listener is bound to into
 * @buf (@len bytes), in the form create accepts: the path, "@name", or
 * "host:port" with the port actually bound (useful after port 0).
 * Returns the string's length, or -EINVAL, -ENOSPC (@len too small).
 */
MPROC_API int mproc_listener_address(const mproc_listener *l, char *buf,
				     size_t len);

/**
 * mproc_listener_close - stop listening and free the listener: the socket
 * is closed and a Unix socket file this process created is removed (a
 * forked child that closes its copy closes only its descriptor).
 * Connections already accepted are not affected.
 * Returns 0, or -EINVAL (NULL).  Does not block.
 */
MPROC_API int mproc_listener_close(mproc_listener *l);

/**
 * mproc_client - connect to the listener at @address, authenticate in both
 * directions, and return the connection in @out (the twin of Python's
 * Client(address, authkey=...)).
 * @authkey, @authkey_len: the key; NULL means the current process's
 *        authkey (as for the listener); a length of 0 means no
 *        authentication.
 * @timeout_ns: bounds connecting and the handshake (MPROC_FOREVER, or
 *        relative ns).  A handshake always waits for the listener, so 0
 *        fails (-ETIMEDOUT or -ECONNABORTED) unless the connection needs
 *        no authentication.
 *
 * Returns 0, or -EINVAL (NULL, malformed address, an authkey longer than
 * INT_MAX, a timeout below -1), -ECONNREFUSED and
 * -ENOENT (nobody listens there), -ETIMEDOUT (connecting took too long),
 * the handshake errors at the top of this file, -ENOMEM, -EMFILE, or
 * another errno of socket(2) and connect(2).  Blocks up to @timeout_ns.
 * Thread-safe.
 */
MPROC_API int mproc_client(const char *address, const void *authkey,
			   size_t authkey_len, int64_t timeout_ns,
			   mproc_conn **out);

/**
 * mproc_listener_peer_cred - the credentials of the process at the other
 * end of @c, a connection from mproc_listener_accept or mproc_client (or
 * mproc_conn_from_fd over a Unix socket): pid, uid and gid as the kernel
 * recorded them at connect time (SO_PEERCRED).  Works on upgraded
 * connections too (their socket is kept).
 * Returns 0, or -EINVAL (NULL), -EBADF (closed), -ENOTSOCK (not a socket
 * connection: a pipe end that was never upgraded, a pipe), -ENOPROTOOPT
 * (a TCP connection).  Does not block.
 */
MPROC_API int mproc_listener_peer_cred(const mproc_conn *c,
				       struct mproc_peer_cred *out);

MPROC_END_DECLS

#endif /* MPROC_LISTENER_H */
