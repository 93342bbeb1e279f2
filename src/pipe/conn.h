/*
 * Internal: the layout of a pipe segment and the private connection
 * handle, shared by the files of src/pipe (life cycle in pipe.c, data
 * calls in io.c, the eventfd protocol in notify.c).
 *
 * Segment data area (offsets in the geometry words, all validated):
 *
 *   0        struct pipe_ctl: per end {owner pid, state}; per receiving
 *            ring {fileno armed, eventfd signal state}
 *   RING0    the shared indices of SPSC ring 0, then its cap bytes
 *   RING1    the same for ring 1 (duplex pipes only)
 *
 * Ring k delivers to end k: ring 0 carries b -> a, ring 1 carries a -> b.
 * A one-way pipe has ring 0 only (a receives, b sends).
 *
 * Messages.  A message of at most the ring's max_payload bytes is one
 * record with flags 0 and no header: the common case costs nothing
 * beyond the ring.  A longer one streams as fragments, every one of them
 * a record with MPROC__RING_REC_MORE whose payload starts with a struct
 * frag_hdr:
 *
 *   FIRST   {id | FRAG_FIRST, total length}, then data
 *   MIDDLE  {id | FRAG_MIDDLE, offset of its data in the message}, data
 *   LAST    {id | FRAG_LAST, offset}, data up to the total (not empty)
 *   ABORT   {id | FRAG_ABORT, offset}: the sender withdrew the message
 *
 * id is the ring position of the FIRST record: positions never repeat
 * (spsc.h I6), so it names one stream for the life of the pipe, whoever
 * sends it.  A flags-0 record is always a whole message and a fragment
 * is always part of a stream, so the receiver never mistakes one for the
 * other, and it takes a fragment as the continuation of the message it
 * is assembling only when id and offset both match.  Whatever else comes
 * next ends that message unfinished, and the receiver drops it: a new
 * message of a sender that took the end over from a dead one (no splice,
 * no swallowed message), an ABORT (a timeout or error mid-way), or the
 * fragments of another stream.  A MIDDLE or LAST that continues no message
 * of this handle is an orphan: its first part went to a receiver of this
 * end that died (or to a process that took the end from us); it is
 * skipped, and its LAST counts one message in rx_dropped.  So an end
 * taken over in either direction restarts at a message boundary with no
 * shared stream state, and a sender keeps no "withdrawn" state either:
 * its next message ends any stream it left unfinished.
 *
 * Both rings are SPSC views behind the ring layer's verbs (ring/ring.h).
 * An SPSC view holds its one reservation and its one peek itself, so the
 * pipe hands token 0 back to commit, release and unpeek.
 *
 * Two kinds of connection.  A connection is either an end of a pipe
 * segment (ops == NULL: the fast path, every call in io.c and pipe.c) or
 * a descriptor speaking Python's length-prefixed framing (ops points at
 * the table of fdconn.c, state in fdc).  Each public call that behaves
 * differently starts by handing a descriptor connection to its ops entry,
 * so that the shm code below that line never sees one; what both kinds
 * share (timeout, direction, closed, the dropped count) lives in the
 * common fields.
 */
#ifndef MPROC_PIPE_CONN_H
#define MPROC_PIPE_CONN_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/compiler.h"
#include "mproc/pipe.h"
#include "mproc/shm.h"
#include "ring/ring.h"

enum {
	GEOM_DUPLEX = 0, /* 1 duplex, 0 one-way */
	GEOM_CAP = 1,    /* ring bytes per direction */
	GEOM_RING0 = 2,  /* offset of ring 0's shared indices */
	GEOM_RING1 = 3,  /* offset of ring 1's, or 0 when one-way */
};

/* Values of pipe_end_ctl.state. */
enum {
	END_OPEN = 0,
	END_CLOSED = 1, /* closed for good by its owner */
	END_DIED = 2,   /* its owner died; set by the survivor */
};

/* Values of pipe_notify.sig (the eventfd protocol, notify.c).  BUSY
 * carries the signaller's pid above the two state bits, so that a
 * receiver can tell a signaller that died inside its raise from one that
 * is merely slow, and heal the state (notify.c). */
enum {
	SIG_IDLE = 0, /* the eventfd counter is 0 */
	SIG_BUSY = 1, /* a signaller won the right to write it: 1 | pid << 2 */
	SIG_SET = 2,  /* the counter is > 0 */
	SIG_STATE = 3, /* mask of the state bits */
};

static inline uint32_t mproc__sig_busy(int pid)
{
	return SIG_BUSY | (uint32_t)pid << 2;
}

/* Fragment header of a streamed message (see Messages above). */
struct frag_hdr {
	uint64_t id;    /* ring position of the FIRST record | FRAG_* */
	uint64_t value; /* FIRST: total length; others: offset of the data */
};

enum {
	FRAG_FIRST = 1,
	FRAG_MIDDLE = 2,
	FRAG_LAST = 3,
	FRAG_ABORT = 4,
	FRAG_KIND = 15, /* mask: positions are multiples of 16 */
};

/* One per end.  Read by the peer only in liveness checks, so the owner's
 * per-call check of its own line stays in its cache. */
struct pipe_end_ctl {
	_Atomic uint32_t owner; /* pid of the last user; 0 when handed over */
	_Atomic uint32_t state; /* END_* */
} mproc__aligned_cl;

/* One per receiving ring.  armed is read by the sender on every publish
 * and written once, so it does not share a line with sig, which flips
 * on every empty/non-empty transition of an armed ring. */
struct pipe_notify {
	_Atomic uint32_t armed mproc__aligned_cl;
	_Atomic uint32_t sig mproc__aligned_cl;
};

struct pipe_ctl {
	struct pipe_end_ctl end[2];
	struct pipe_notify note[2];
};

/* Per process: what the handles of one pipe share here (both ends after
 * mproc_pipe and in forked children; one after import). */
struct pipe_res {
	mproc_shm *seg;
	int efd[2];          /* eventfd of ring k, or -1 */
	_Atomic int refs;    /* handles of this process using it */
	/* Per end: this process's pid if it holds an open handle on the end
	 * and has used it (a forked child inherits the parent's pid here,
	 * which then means "no").  Such an end is not dead to this process
	 * even when another process used it last and died. */
	_Atomic int used_pid[2];
};

/* The calls a descriptor connection implements itself (fdconn.c).  The
 * public wrapper has checked nothing: each entry validates its own
 * arguments, with the same errors as the shm path. */
struct mproc__conn_ops {
	ssize_t (*send_bytes)(mproc_conn *c, const void *buf, size_t len);
	ssize_t (*recv_bytes)(mproc_conn *c, size_t maxlength, void **buf,
			      size_t *len);
	/* @exact: recv(obj), the length must equal @cap (-EBADMSG). */
	ssize_t (*recv_into)(mproc_conn *c, void *buf, size_t cap, bool exact);
	ssize_t (*next_size)(mproc_conn *c, int64_t timeout_ns);
	int (*poll)(mproc_conn *c, int64_t timeout_ns);
	int (*fileno)(mproc_conn *c);
	int (*export)(mproc_conn *c, char *buf, size_t len);
	int (*close)(mproc_conn *c);
};

struct fd_conn; /* fdconn.c */

struct mproc_conn {
	const struct mproc__conn_ops *ops; /* NULL: a pipe end (below) */
	struct fd_conn *fdc;     /* the descriptor connection's state */
	struct pipe_res *res;    /* NULL once closed */
	struct pipe_ctl *ctl;
	int end;                 /* 0 = a, 1 = b */
	bool can_rx, can_tx;
	bool closed;
	struct mproc__ring rx;   /* consumer view of ring[end] (SPSC) */
	struct mproc__ring tx;   /* producer view of ring[1 - end] (SPSC) */
	uint64_t frag;           /* payload bytes per streamed fragment */
	int64_t timeout_ns;

	/* Ownership (pipe.c).  used_by is written by the sending and the
	 * receiving thread, hence atomic; the rest only by create/close. */
	_Atomic int used_by;     /* pid that last used this handle */
	int created_by;          /* pid that created or imported it */
	uint64_t created_gen;    /* fork generation at creation */
	bool exported;

	/* A pipe end reached through a Listener's shared-memory upgrade
	 * (offer.c): the socket of the handshake, kept to notice the death
	 * of the process at its other end (sock_pid, from SO_PEERCRED) while
	 * that process owns the peer end; -1 otherwise. */
	int sock;
	int sock_pid;

	/* Receiver (io.c): the streamed message being assembled, whose
	 * bytes live in rx_stash between calls (a timeout part-way). */
	bool rx_active;          /* a streamed message is half received */
	uint64_t rx_id;          /* its stream id (frag_hdr.id & ~FRAG_KIND) */
	uint64_t rx_total;       /* its length */
	uint64_t rx_have;        /* bytes received so far */
	unsigned char *rx_stash; /* holds them (NULL while a call receives
				  * into the caller's buffer) */
	uint64_t rx_stash_cap;   /* bytes allocated at rx_stash */
	uint64_t rx_dropped;     /* orphaned messages skipped (pipe.h) */
	int64_t rx_next_check;   /* next non-blocking liveness check, ns */

	/* Sender (io.c). */
	int64_t tx_next_check;
};

/* fdconn.c: a token of mproc_conn_export made for a descriptor
 * connection starts with this; mproc_conn_import hands it over. */
#define MPROC__FDCONN_TOKEN_PREFIX "mproc-fdconn:"
int mproc__fdconn_import(const char *token, mproc_conn **out);

/* pipe.c */
/* Set or clear close-on-exec on @fd: 0 or -errno. */
int mproc__conn_set_cloexec(int fd, bool on);
void mproc__conn_claim(mproc_conn *c);
int mproc__conn_peer_alive(void *conn);
int mproc__conn_peer_check_rl(mproc_conn *c, int64_t *next_check);
int mproc__conn_begin(mproc_conn *c, bool rx);

/* notify.c */
void mproc__note_signal(mproc_conn *c, bool closing);
void mproc__note_raise(struct pipe_ctl *ctl, int ring, int efd);
void mproc__note_force(struct pipe_ctl *ctl, int ring, int efd);
void mproc__note_clear(mproc_conn *c);
void mproc__note_arm(mproc_conn *c);
bool mproc__rx_pending(mproc_conn *c);

static inline bool mproc__note_armed(const mproc_conn *c)
{
	/* Relaxed: only this end's receiver writes it (arm), and a stale 0
	 * merely skips a drain that the next empty observation does. */
	return atomic_load_explicit(&c->ctl->note[c->end].armed,
				    memory_order_relaxed);
}

#endif /* MPROC_PIPE_CONN_H */
