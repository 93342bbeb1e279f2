/*
 * Internal: one rank's conversation with another over MPI -- the head's
 * with each agent, an agent's with the head.  Both directions carry
 * frames: a struct mpi_frame and @len bytes of body.  A frame travels as
 * one or more MPI messages ("pieces") of at most MPI_PIECE bytes, all
 * with one tag on MPI_COMM_WORLD, so MPI's non-overtaking rule (messages
 * between two ranks with one tag and communicator match in send order)
 * keeps the pieces of a frame, and the frames, in order.  The piece size
 * keeps every count far below the MPI count limit (INT_MAX elements),
 * whatever the size of the frame.
 *
 * Receiving: one MPI_Irecv is kept posted per link into its piece buffer
 * (the head tests all of its links' receives with one MPI_Testsome); a
 * completed piece is absorbed and the receive is posted again at once.
 * A large frame that came whole in one piece -- nearly all of them, a
 * piece being large -- is handed over in its piece buffer, without a
 * copy, and the next receive goes into another buffer; a small frame is
 * copied out, and a frame of several pieces is copied together.
 * Everything received is checked: a piece that breaks the framing makes
 * the link broken, never an out-of-bounds access.
 *
 * Sending: a frame is built in one buffer with room for its header and
 * sent as MPI_Isend pieces; the buffer lives on the link's send list
 * until every piece completed.
 *
 * Buffers.  A large frame's buffer is a slab of MPI_PIECE bytes (or, for
 * a larger frame, its own size); a small one's is plain memory.  Slabs
 * given back (sent, or received and consumed) are kept for the next frame
 * built or the next receive, in a cache that all links of a rank share
 * (struct mpi_bufs), bounded in count and size -- a larger buffer is
 * freed when given back --, and a few are
 * touched at start: a fresh buffer is new memory, and the page faults of
 * touching it cost more than the frame's copies -- a map's first chunks
 * would pay them on every layer (the head's staging, the agent's
 * receive, the agent's answer, the head's receive).
 *
 * Invariants.  A link has at most one receive posted, into piece (NULL
 * only between a hand-over and the next post); msg/msg_got describe the
 * frame being reassembled from several pieces (msg NULL otherwise); the
 * send list is in send order, and a send's buffer is reused or freed
 * only after all its requests completed; a cached slab is referenced by
 * nothing else.  A link is used by one thread only (the one that initialised
 * MPI), so none of this needs atomics.
 */
#ifndef MPROC_MPI_LINK_H
#define MPROC_MPI_LINK_H

#include <mpi.h>
#include <stdbool.h>
#include <stdint.h>

/* The one tag of mproc's traffic. */
#define MPI_TAG_MPROC 0x6d70
/* Largest MPI message (a piece of a frame), and the size of a slab. */
#define MPI_PIECE (4u << 20)
/* Slabs a rank keeps for reuse; slabs touched at start, and how much of
 * each (a map's chunk of 10^5 8-byte items and its headers). */
#define MPI_BUFS_MAX 16
/* Frames up to this size live in plain malloc'd buffers, not slabs. */
#define MPI_SMALL_FRAME (64u << 10)
#define MPI_BUFS_WARM 8
#define MPI_BUFS_WARM_BYTES ((1u << 20) + (8u << 10))
/* Largest frame body accepted (a pool message: items or results). */
#define MPI_FRAME_MAX (UINT64_C(1) << 40)

/* Frame kinds. */
enum {
	MPI_FRAME_POOL = 1,      /* pool ring messages (proto.h), aux of them,
				  * each a uint64 length and the message
				  * padded to 8 bytes; from an agent, after
				  * a uint64 count of the chunks whose last
				  * results the frame carries */
	MPI_FRAME_HELLO = 2,     /* agent -> head: body struct mpi_hello */
	MPI_FRAME_CLOSE = 3,     /* head -> agent: finish, then go */
	MPI_FRAME_TERMINATE = 4, /* head -> agent: stop now, then go */
	MPI_FRAME_GONE = 5,      /* agent -> head: its pool is down */
};

struct mpi_frame {
	uint64_t len;  /* body bytes that follow */
	uint32_t kind; /* MPI_FRAME_* */
	uint32_t aux;
};

#define MPI_HELLO_MAGIC 0x6d70726fu /* "mpro" */
#define MPI_HELLO_VERSION 1u

struct mpi_hello {
	uint32_t magic;
	uint32_t version;
	int32_t status;  /* 0, or why the agent's local pool did not start */
	uint32_t workers; /* the agent's local workers */
	int32_t pid;     /* the agent's process, on its host */
	uint32_t reserved;
};

struct mpi_send {
	struct mpi_send *next;
	unsigned char *buf;
	uint64_t cap;      /* its size, for reuse */
	int npieces;
	MPI_Request req[]; /* one per piece */
};

/* The cache of slabs of one rank (its MPI thread only).  It keeps only
 * slabs of exactly MPI_PIECE bytes, so it never holds more than
 * MPI_BUFS_MAX * MPI_PIECE bytes, and any of them serves any request of
 * up to MPI_PIECE bytes: a larger buffer (a frame of several pieces, an
 * answer or staging buffer grown past a slab) is freed when given back,
 * never kept to be handed to a small frame.  largest is a statistic for
 * the tests: the largest buffer the cache ever held; with the environment
 * variable MPROC_TEST_MPI_BUFS=check, mpi_bufs_free aborts the rank if it
 * was not a slab (check is read by mpi_bufs_warm). */
struct mpi_bufs {
	struct {
		unsigned char *buf;
		uint64_t cap;
	} slab[MPI_BUFS_MAX];
	unsigned n;
	uint64_t largest;
	bool check;
};

struct mpi_link {
	int peer;
	struct mpi_bufs *bufs; /* the rank's */
	MPI_Request *rreq;     /* the posted receive (the owner's storage) */
	unsigned char *piece;  /* its buffer, at least MPI_PIECE bytes */
	uint64_t piece_cap;
	/* The frame being reassembled. */
	struct mpi_frame frame;
	unsigned char *msg;
	uint64_t msg_got;
	bool broken;           /* the peer broke the framing */
	struct mpi_send *sq_head, *sq_tail;
};

/* A received frame's body: @len bytes at @p, inside @own (@cap bytes),
 * which goes back with mpi_link_keep (own NULL when len is 0). */
struct mpi_body {
	unsigned char *own;
	uint64_t cap;
	unsigned char *p;
};

/* Fill @b with slabs, the first bytes of each touched; 0 or -ENOMEM. */
int mpi_bufs_warm(struct mpi_bufs *b);
/* Free the cached slabs (and, under MPROC_TEST_MPI_BUFS=check, abort if
 * the cache ever held a buffer that was not a slab). */
void mpi_bufs_free(struct mpi_bufs *b);

/* Set up @l towards @peer with its receive request at @rreq and its
 * buffers from @b; 0 or -ENOMEM. */
int mpi_link_init(struct mpi_link *l, int peer, MPI_Request *rreq,
		  struct mpi_bufs *b);
/* Post the receive (if none is); 0, or -EIO. */
int mpi_link_post(struct mpi_link *l);
/* The receive of @l completed with @st: take the piece in and post the
 * receive again.  Returns 1 with a whole frame (*@frame, and its body in
 * *@body, the caller's until it gives body->own back), 0 when the frame
 * is not whole yet, -EPROTO (the link is broken), -ENOMEM, -EIO. */
int mpi_link_absorb(struct mpi_link *l, const MPI_Status *st,
		    struct mpi_frame *frame, struct mpi_body *body);
/* A buffer of at least @want bytes for a frame: a cached slab (for a
 * @want over MPI_SMALL_FRAME and up to MPI_PIECE), or new memory; its
 * size in *@cap.  NULL without memory. */
unsigned char *mpi_link_buf(struct mpi_link *l, uint64_t want,
			    uint64_t *cap);
/* Give back @buf of @cap bytes (NULL: nothing): cached if it is a slab
 * of MPI_PIECE bytes and the cache has room, else freed. */
void mpi_link_keep(struct mpi_link *l, unsigned char *buf, uint64_t cap);
/* Send a frame of @kind, @aux whose body is @a then @b.  Returns 0,
 * -ENOMEM, -EIO.  Never blocks. */
int mpi_link_send(struct mpi_link *l, uint32_t kind, uint32_t aux,
		  const void *a, uint64_t alen, const void *b, uint64_t blen);
/* Send a frame whose @total bytes are at @buf (of @cap bytes): the
 * header's room (sizeof(struct mpi_frame)), then the body; the link fills
 * the header and owns @buf from now on, also on failure.  Returns 0,
 * -ENOMEM, -EIO. */
int mpi_link_send_owned(struct mpi_link *l, uint32_t kind, uint32_t aux,
			unsigned char *buf, uint64_t cap, uint64_t total);
/* Take back the buffers of the sends that completed; true when none is
 * left. */
bool mpi_link_sends_done(struct mpi_link *l);
/* Wait for every send, cancel the posted receive, free everything. */
void mpi_link_shut(struct mpi_link *l);
/* Free the link's memory without calling MPI (MPI is gone, or never came
 * up); nothing may be in flight. */
void mpi_link_free(struct mpi_link *l);

/* Pause after @idle_ns without progress: spin a little, then yield the
 * CPU, then sleep up to a millisecond (MPI offers nothing to block on
 * that would not spin itself). */
void mpi_backoff(int64_t idle_ns);

#endif /* MPROC_MPI_LINK_H */
