/*
 * Internal: what the Listener and Client (src/listener) need from a
 * descriptor connection (fdconn.c) beyond the public calls: its socket,
 * and descriptors passed with SCM_RIGHTS beside a message, for the
 * shared-memory upgrade between two mproc ends.
 */
#ifndef MPROC_PIPE_FDCONN_H
#define MPROC_PIPE_FDCONN_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "mproc/pipe.h"

/* Most descriptors one message carries or one handle keeps. */
#define MPROC__FDCONN_MAX_FDS 4

/* True when @c is a descriptor connection. */
bool mproc__fdconn_is(const mproc_conn *c);
/* Its descriptor (open handle). */
int mproc__fdconn_fd(const mproc_conn *c);

/* Send one message of @len bytes with @nfds descriptors (at most
 * MPROC__FDCONN_MAX_FDS; a socket only) attached to its first byte, as
 * mproc_conn_send_bytes does otherwise.  The descriptors stay open
 * here. */
ssize_t mproc__fdconn_send_fds(mproc_conn *c, const void *buf, size_t len,
			       const int *fds, int nfds);

/* While @on, the receives of @c keep up to MPROC__FDCONN_MAX_FDS
 * descriptors that arrive with SCM_RIGHTS (close-on-exec); otherwise the
 * kernel closes them on arrival, as for any reader.  Turning it off
 * closes the ones kept and not taken. */
void mproc__fdconn_take_fds(mproc_conn *c, bool on);
/* Move the descriptors kept so far into @fds (room for
 * MPROC__FDCONN_MAX_FDS); returns how many.  They are the caller's. */
int mproc__fdconn_taken_fds(mproc_conn *c, int *fds);

/* Free the handle but keep its descriptor open; returns the descriptor. */
int mproc__fdconn_release(mproc_conn *c);

#endif /* MPROC_PIPE_FDCONN_H */
