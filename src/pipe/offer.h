/*
 * Internal: the pipe side of the Listener's shared-memory upgrade
 * (src/listener): handing an end of a fresh pipe to another process as
 * descriptors (the sealed memfd and the end's two eventfds, which the
 * listener passes with SCM_RIGHTS), taking such an end up on the other
 * side through the ordinary import of pipe.c, and the handshake socket
 * that an upgraded end keeps to notice its peer's death.
 */
#ifndef MPROC_PIPE_OFFER_H
#define MPROC_PIPE_OFFER_H

#include <stdbool.h>
#include <sys/types.h>

#include "mproc/pipe.h"

/* Descriptors of an offer, in this order. */
enum { OFFER_SEG, OFFER_RX, OFFER_TX, OFFER_NFDS };

/* The descriptors of end @b of a duplex pipe made by this process, for
 * another process (they stay this process's: the caller sends copies).
 * Marks @b handed over, so that freeing it only releases it here.
 * Returns 0, -EINVAL (not a duplex pipe end), -EBADF (closed). */
int mproc__offer_fds(mproc_conn *b, int fds[OFFER_NFDS]);

/* Open the end offered in @fds (received from another process).  Checks
 * that the segment is a memfd sealed against growing and shrinking, then
 * imports it as mproc_conn_import does.  Returns 0 with every descriptor
 * owned by *@out (the segment's one closed after mapping a duplicate), or
 * an error of mproc_conn_import, -EINVAL (not sealed), with no descriptor
 * closed. */
int mproc__offer_take(const int fds[OFFER_NFDS], mproc_conn **out);

/* Give the upgraded end @c the handshake socket @sock (owned by @c from
 * then on) and the pid of the process at its other end. */
void mproc__offer_keep_socket(mproc_conn *c, int sock, pid_t peer);

/* The socket under @c: a descriptor connection's descriptor, the kept
 * socket of an upgraded end, or -ENOTSOCK; -EINVAL (NULL), -EBADF
 * (closed). */
int mproc__conn_socket(const mproc_conn *c);

/* pipe.c's liveness check: the kept socket has hung up. */
bool mproc__offer_sock_gone(const mproc_conn *c);

#endif /* MPROC_PIPE_OFFER_H */
