/*
 * An agent rank of a pool over MPI.  It runs an ordinary local pool --
 * started before MPI is initialised, so that its zygote and workers are
 * forked from a process that has not touched MPI, and never call MPI --
 * and serves the head (head.c) over one link (link.h):
 *
 *   DEFINE   resolves the function in this image (the build-id check of
 *            the function reference guards it) and notes it under the
 *            head's id;
 *   TASK     is cut into pieces for the local workers (Python's size,
 *            ceil(n / (4 * workers)), at most PIECE_ITEMS_MAX), each a
 *            job of the local pool over items read in place from the
 *            received frame; a piece's index base makes mproc_task_index
 *            give the item's index in the head's call;
 *   RESULT   goes back piece by piece, in the order the chunks came (what
 *            the head's engine expects of a slot), in the encoding a
 *            worker uses (proto.h), each item's status carried through
 *            -- -MPROC_EWORKERLOST for the task of a local worker that
 *            died.  A piece's job is a sink job (pool/internal.h): the
 *            local engine hands its results, as they come from the
 *            worker, to the piece, which encodes them at once into the
 *            buffer that goes to the head -- a worker's run of results
 *            in one copy, no allocation per result.  A large piece's
 *            buffer is sent as a frame of its own; small ones are
 *            gathered into one frame;
 *   CLOSE    once every chunk is answered: close and join the local pool,
 *            say GONE, finalise MPI, exit;
 *   TERMINATE  terminate the local pool at once, say GONE, and exit.
 *
 * One thread (main's) calls MPI; the local pool's own thread never does.
 * The loop polls -- MPI has nothing to sleep on -- with the link's backoff.
 */
/* Only with MPI: meson compiles this file then alone, but tools that
 * compile every source of the library (the fuzz build) see it too. */
#ifdef MPROC_HAVE_MPI

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/clock.h"
#include "mpi/agent.h"
#include "mpi/env.h"
#include "mpi/link.h"
#include "pool/fn.h"
#include "pool/internal.h"

/* Largest piece: its RESULT message counts its items in 32 bits, and so
 * does a run of results (proto.h). */
#define PIECE_ITEMS_MAX (1u << 20)
/* A piece's answer of at most this many bytes is copied into the frame
 * being gathered; a larger one is sent from its own buffer. */
#define ANSWER_COPY_MAX (16u << 10)
/* Where the records of a piece's answer start in its buffer: the
 * frame's header, the count of chunks it ends, the message's length
 * word, the RESULT message's header and its first index. */
enum {
	ANSWER_DONE = sizeof(struct mpi_frame),
	ANSWER_MLEN = ANSWER_DONE + 8,
	ANSWER_MSG = ANSWER_MLEN + 8,
	ANSWER_AT = ANSWER_MSG + sizeof(struct pool_msg),
	ANSWER_HDR = ANSWER_AT + 8,
};

/* A function the head defined. */
struct agent_fn {
	int local_id;  /* in the local pool, or the error of resolving it */
	char why[128];
};

/* A received frame, shared by the chunks whose items point into it. */
struct agent_frame {
	unsigned refs;
	struct mpi_body body;
};

/* A result that came ahead of its turn (a dead worker's item fails
 * before the items requeued ahead of it run): kept aside until the
 * items before it are encoded. */
struct parked {
	struct parked *next;   /* by index */
	uint64_t index;        /* within the piece */
	int status;
	size_t len;            /* the result's bytes, or the message's */
	unsigned char bytes[];
};

/* The item arrays of one TASK, shared by its pieces. */
struct agent_items {
	unsigned refs;
	struct iovec *iov;       /* VAR (or padded FIXED) items; STAR args */
	const struct iovec **star;
	size_t *nargs;
};

/* A piece of one chunk of the head's, in flight here: a chunk is cut
 * into pieces for the local workers, each a job of the local pool, and
 * answered piece by piece, so that results flow back while later pieces
 * still run.
 *
 * The answer (buf .. parked) is written by whoever holds the local
 * pool's engine, through the sink, until the piece's async result is
 * ready, and read by the loop only after that (mproc_async_ready's
 * acquire pairs with the publication that follows the last delivery);
 * the loop's own fields (next) are never touched by the sink.  Invariant:
 * items [0, encoded) are in buf, in order, but for the lost ones; parked
 * holds results of later items, sorted by index; lost (a bit per item,
 * nlost of them set) marks the items whose result could not be kept for
 * want of memory, which have no record in buf and fail alone with -ENOMEM
 * when the piece is answered; a run in buf never spans a lost item (the
 * open run is closed where one is passed). */
struct agent_chunk {
	struct agent_chunk *next;
	uint64_t id;             /* the head's chunk id */
	uint64_t off;            /* first item of the piece in the chunk */
	uint64_t n;              /* items of the piece */
	bool last;               /* the chunk's last piece */
	struct agent_frame *frame; /* holds the TASK message: items point
				    * into it */
	struct agent_items *items; /* NULL for FIXED items read in place */
	mproc_async *a;          /* NULL: failed without running */
	unsigned char *buf;      /* ANSWER_HDR bytes, then the records */
	uint64_t cap, len;
	uint64_t run_at;         /* the open run's header in buf, 0: none */
	uint64_t encoded;
	struct parked *parked;
	uint64_t *lost;
	uint64_t nlost;
};

struct agent {
	mproc_pool *pool;
	unsigned workers;
	struct mpi_link link;
	struct mpi_bufs bufs;
	MPI_Request rreq;
	bool rdone;         /* rreq completed with rst, not yet absorbed */
	MPI_Status rst;
	bool kick;          /* work submitted without ringing the pool */
	struct agent_fn *fns;
	uint32_t nfns;
	struct agent_chunk *head, *tail;
	bool closing;
	unsigned char *out; /* the frame of RESULT messages being built */
	size_t out_len, out_cap;
	uint32_t out_msgs;
	uint64_t out_done;  /* chunks whose last message is in it */
};

static void items_put(struct agent_items *it)
{
	if (it && --it->refs == 0) {
		free(it->iov);
		free(it->star);
		free(it->nargs);
		free(it);
	}
}

static void frame_put(struct agent *ag, struct agent_frame *f)
{
	if (f && --f->refs == 0) {
		mpi_link_keep(&ag->link, f->body.own, f->body.cap);
		free(f);
	}
}

/* MPROC_TEST_MPI_NOMEM_OVER=N (tests only): the agent finds no memory
 * to encode a result of more than N bytes, nor to park any result (a
 * result that came ahead of its turn); 0: off. */
static uint64_t nomem_over;

static _Noreturn void fatal(const char *what, int rc)
{
	fprintf(stderr, "mproc: MPI pool agent %d: %s: %s\n",
		mproc__mpi_env_rank(), what, mproc_strerror(rc));
	MPI_Abort(MPI_COMM_WORLD, 70);
	abort();
}

/* ---- DEFINE ------------------------------------------------------------------ */

static int define_fn(struct agent *ag, uint32_t id, const void *body,
		     uint64_t len)
{
	if (id >= POOL_MAX_FNS || id > ag->nfns)
		return -EPROTO;
	if (id == ag->nfns) {
		struct agent_fn *f = realloc(ag->fns, (id + 1) * sizeof(*f));
		if (!f)
			return -ENOMEM;
		ag->fns = f;
		ag->nfns = id + 1;
	}
	struct agent_fn *f = &ag->fns[id];
	void *fn = NULL;
	f->why[0] = '\0';
	int rc = pool_fn_unpack(body, (size_t)len, &fn, f->why, sizeof(f->why));
	if (rc == -MPROC_ECORRUPT)
		return -EPROTO;
	if (rc == 0)
		rc = pool_fn_id(ag->pool, fn);
	f->local_id = rc;
	return 0;
}

/* ---- TASK ---------------------------------------------------------------------- */

struct cursor {
	const unsigned char *p, *end;
};

static int take_u64(struct cursor *c, uint64_t *v)
{
	if ((size_t)(c->end - c->p) < sizeof(*v))
		return -EPROTO;
	memcpy(v, c->p, sizeof(*v));
	c->p += sizeof(*v);
	return 0;
}

static int take_bytes(struct cursor *c, uint64_t len, struct iovec *v)
{
	uint64_t padded = pool_pad8(len);
	if (len > padded || padded > (uint64_t)(c->end - c->p))
		return -EPROTO;
	v->iov_base = (void *)(uintptr_t)c->p;
	v->iov_len = (size_t)len;
	c->p += padded;
	return 0;
}

/* Point the chunk's item arrays into its frame.  -EPROTO for a body that
 * does not hold what it announces, -ENOMEM. */
static int decode_items(struct agent_items *ch, const struct pool_task *tk,
			struct cursor *c, int *layout)
{
	uint64_t n = tk->nitems;
	if (tk->layout == POOL_ITEMS_FIXED) {
		uint64_t stride = pool_pad8(tk->item_size);
		if (tk->item_size > stride ||
		    (stride && n > (uint64_t)(c->end - c->p) / stride))
			return -EPROTO;
		if (tk->item_size % 8 == 0) {
			*layout = POOL_ITEMS_FIXED; /* read in place */
			return 0;
		}
		if (!(ch->iov = calloc((size_t)n, sizeof(*ch->iov))))
			return -ENOMEM;
		for (uint64_t i = 0; i < n; i++) {
			ch->iov[i].iov_base = (void *)(uintptr_t)(c->p + i * stride);
			ch->iov[i].iov_len = (size_t)tk->item_size;
		}
		*layout = POOL_ITEMS_VAR;
		return 0;
	}
	if (n > (uint64_t)(c->end - c->p) / 8)
		return -EPROTO; /* every item takes at least a word */
	if (tk->layout == POOL_ITEMS_VAR) {
		if (!(ch->iov = calloc((size_t)n, sizeof(*ch->iov))))
			return -ENOMEM;
		for (uint64_t i = 0; i < n; i++) {
			uint64_t len;
			int rc = take_u64(c, &len);
			if (!rc)
				rc = take_bytes(c, len, &ch->iov[i]);
			if (rc)
				return rc;
		}
		*layout = POOL_ITEMS_VAR;
		return 0;
	}
	/* STAR: first count the arguments, then point at them. */
	struct cursor scan = *c;
	uint64_t total = 0;
	for (uint64_t i = 0; i < n; i++) {
		uint64_t nargs;
		if (take_u64(&scan, &nargs) || nargs > POOL_MAX_ARGS)
			return -EPROTO;
		for (uint64_t k = 0; k < nargs; k++) {
			uint64_t len;
			struct iovec v;
			if (take_u64(&scan, &len) || take_bytes(&scan, len, &v))
				return -EPROTO;
		}
		total += nargs;
	}
	ch->star = calloc((size_t)n, sizeof(*ch->star));
	ch->nargs = calloc((size_t)n, sizeof(*ch->nargs));
	ch->iov = calloc(total ? (size_t)total : 1, sizeof(*ch->iov));
	if (!ch->star || !ch->nargs || !ch->iov)
		return -ENOMEM;
	struct iovec *v = ch->iov;
	/* The scan above checked every read below. */
	for (uint64_t i = 0; i < n; i++) {
		uint64_t nargs = 0, len = 0;
		take_u64(c, &nargs);
		ch->star[i] = v;
		ch->nargs[i] = (size_t)nargs;
		for (uint64_t k = 0; k < nargs; k++, v++) {
			take_u64(c, &len);
			take_bytes(c, len, v);
		}
	}
	*layout = POOL_ITEMS_STAR;
	return 0;
}

/* ---- a piece's answer ------------------------------------------------------- */

/* Room for @more bytes in the piece's answer; false without memory. */
static bool answer_room(struct agent_chunk *ch, uint64_t more)
{
	if (ch->len + more <= ch->cap)
		return true;
	uint64_t cap = ch->cap ? ch->cap : 4096;
	while (cap < ch->len + more)
		cap *= 2;
	unsigned char *b = realloc(ch->buf, cap);
	if (!b)
		return false;
	ch->buf = b;
	ch->cap = cap;
	return true;
}

static bool is_lost(const struct agent_chunk *ch, uint64_t index)
{
	return ch->lost[index / 64] >> (index % 64) & 1;
}

/* Item @index's result could not be kept: it fails alone with -ENOMEM. */
static void mark_lost(struct agent_chunk *ch, uint64_t index)
{
	ch->lost[index / 64] |= UINT64_C(1) << (index % 64);
	ch->nlost++;
}

/* Item ch->encoded, next in turn, is lost: pass it. */
static void pass_lost(struct agent_chunk *ch)
{
	mark_lost(ch, ch->encoded);
	ch->run_at = 0;
	ch->encoded++;
}

/* Append @n successes of @len bytes, every @stride bytes at @data, items
 * ch->encoded on (which it advances); a stride of pool_pad8(len) means
 * the padding is there too (a worker's run, proto.h) and the run goes in
 * one copy.  Runs of one small length grow the open run (at most
 * PIECE_ITEMS_MAX items: its count fits).  Without memory for a run it
 * goes item by item; an item without room is lost. */
static void put_ok(struct agent_chunk *ch, size_t n,
		   const unsigned char *data, size_t len, size_t stride)
{
	uint64_t dl = pool_pad8(len);
	bool small = len <= POOL_RUN_MAX_LEN;
	struct pool_item_res h;
	if (ch->run_at) {
		memcpy(&h, ch->buf + ch->run_at, sizeof(h));
		if (!small || h.len != len)
			ch->run_at = 0;
	}
	bool one = !small || (nomem_over && len > nomem_over);
	for (size_t i = 0; i < n;) {
		/* A larger result is a record of its own. */
		size_t k = one ? 1 : n - i;
		if ((nomem_over && len > nomem_over) ||
		    !answer_room(ch, sizeof(h) + k * dl)) {
			if (k > 1) {
				one = true; /* try the items one by one */
				continue;
			}
			pass_lost(ch);
			i++;
			continue;
		}
		if (!ch->run_at) {
			h = (struct pool_item_res){ .n = small ? 0 : 1,
						    .len = len };
			if (small)
				ch->run_at = ch->len;
			memcpy(ch->buf + ch->len, &h, sizeof(h));
			ch->len += sizeof(h);
		}
		unsigned char *dst = ch->buf + ch->len;
		if (!dl) {
			/* Empty results: the header says it all. */
		} else if (stride == dl) {
			memcpy(dst, data + i * stride, k * dl);
		} else {
			for (size_t j = 0; j < k; j++) {
				memcpy(dst + j * dl, data + (i + j) * stride,
				       len);
				memset(dst + j * dl + len, 0, dl - len);
			}
		}
		ch->len += k * dl;
		if (ch->run_at) {
			memcpy(&h, ch->buf + ch->run_at, sizeof(h));
			h.n += (uint32_t)k;
			memcpy(ch->buf + ch->run_at, &h, sizeof(h));
		}
		i += k;
		ch->encoded += k;
	}
}

/* Append item ch->encoded (which it advances), failed, with its message
 * (@msg, may be NULL); lost without room. */
static void put_fail(struct agent_chunk *ch, int status, const char *msg)
{
	size_t mlen = msg ? strnlen(msg, POOL_MSG_MAX) : 0;
	struct pool_item_res h = { .status = status, .n = (uint32_t)mlen };
	ch->run_at = 0;
	if (!answer_room(ch, sizeof(h) + pool_pad8(mlen))) {
		pass_lost(ch);
		return;
	}
	memcpy(ch->buf + ch->len, &h, sizeof(h));
	ch->len += sizeof(h);
	memcpy(ch->buf + ch->len, msg ? msg : "", mlen);
	memset(ch->buf + ch->len + mlen, 0, pool_pad8(mlen) - mlen);
	ch->len += pool_pad8(mlen);
	ch->encoded++;
}

/* Encode the parked results whose turn came, and pass the lost items. */
static void unpark(struct agent_chunk *ch)
{
	while (ch->encoded < ch->n) {
		if (is_lost(ch, ch->encoded)) {
			/* Lost while parking: no record; the open run
			 * ends here. */
			ch->run_at = 0;
			ch->encoded++;
			continue;
		}
		struct parked *pk = ch->parked;
		if (!pk || pk->index != ch->encoded)
			break;
		ch->parked = pk->next;
		/* Marked lost here, if it is, by put_ok or put_fail. */
		if (pk->status == 0)
			put_ok(ch, 1, pk->bytes, pk->len, pk->len);
		else
			put_fail(ch, pk->status, (const char *)pk->bytes);
		free(pk);
	}
}

static void park(struct agent_chunk *ch, uint64_t index, int status,
		 const void *data, size_t len, const char *msg)
{
	if (status)
		len = msg ? strnlen(msg, POOL_MSG_MAX) : 0;
	struct parked *pk = nomem_over ? NULL
				       : malloc(sizeof(*pk) + len + 1);
	if (!pk) {
		mark_lost(ch, index); /* passed when its turn comes */
		return;
	}
	pk->index = index;
	pk->status = status;
	pk->len = len;
	if (len)
		memcpy(pk->bytes, status ? (const void *)msg : data, len);
	pk->bytes[len] = '\0';
	struct parked **at = &ch->parked;
	while (*at && (*at)->index < index)
		at = &(*at)->next;
	pk->next = *at;
	*at = pk;
}

static void sink_item(void *arg, size_t index, int status, const void *data,
		      size_t len, const char *msg)
{
	struct agent_chunk *ch = arg;
	if (index != ch->encoded) {
		park(ch, index, status, data, len, msg);
		return;
	}
	if (status == 0)
		put_ok(ch, 1, data, len, len);
	else
		put_fail(ch, status, msg);
	unpark(ch);
}

static void sink_run(void *arg, size_t index, size_t n,
		     const unsigned char *data, size_t len, size_t stride)
{
	struct agent_chunk *ch = arg;
	if (index != ch->encoded) {
		for (size_t i = 0; i < n; i++)
			park(ch, index + i, 0, data + i * stride, len, NULL);
		return;
	}
	put_ok(ch, n, data, len, stride);
	unpark(ch);
}

static const struct pool_sink answer_sink = { .item = sink_item,
					      .run = sink_run };

/* ---- TASK, continued --------------------------------------------------------- */

/* Submit the items of piece @ch (at @items / @arr, offset ch->off) to
 * the local pool as one job of one chunk, its results going to the
 * piece.  Returns 0 or the error every item of the piece then fails
 * with. */
static int submit_local(struct agent *ag, struct agent_chunk *ch,
			const struct pool_task *tk, const unsigned char *items,
			int layout, int fn_id)
{
	size_t n = (size_t)ch->n, off = (size_t)ch->off;
	struct agent_items *arr = ch->items;
	struct pool_job *job = pool_job_new(ag->pool, layout, POOL_OUT_SINK,
					    fn_id, n);
	mproc_async *a = pool_async_new(ag->pool, NULL, NULL, NULL);
	if (!job || !a) {
		free(job);
		if (a) {
			pool_async_unref(a);
			pool_async_unref(a);
		}
		return -ENOMEM;
	}
	job->index_base = tk->first + off;
	job->item_size = (size_t)tk->item_size;
	if (layout == POOL_ITEMS_FIXED)
		job->items = items + off * job->item_size;
	else if (layout == POOL_ITEMS_VAR)
		job->iov = arr->iov + off;
	else {
		job->star = arr->star + off;
		job->nargs = arr->nargs + off;
	}
	job->sink = &answer_sink;
	job->sink_arg = ch;
	job->async = a;
	struct pool_chunk *c = pool_make_chunks(job, n);
	/* Without the doorbell: the loop helps the local pool right after
	 * (or kicks its thread when it cannot). */
	int rc = c ? pool_submit_ex(ag->pool, c, n, false) : -ENOMEM;
	ag->kick |= rc == 0;
	if (rc) {
		pool_chunks_free(c);
		free(job);
		pool_async_unref(a);
		pool_async_unref(a);
		return rc;
	}
	ch->a = a;
	return 0;
}

static void chunk_free(struct agent *ag, struct agent_chunk *ch)
{
	if (ch->a)
		mproc_async_free(ch->a);
	while (ch->parked) {
		struct parked *pk = ch->parked;
		ch->parked = pk->next;
		free(pk);
	}
	mpi_link_keep(&ag->link, ch->buf, ch->cap);
	free(ch->lost);
	items_put(ch->items);
	frame_put(ag, ch->frame);
	free(ch);
}

static void queue_piece(struct agent *ag, struct agent_chunk *ch)
{
	if (ag->tail)
		ag->tail->next = ch;
	else
		ag->head = ch;
	ag->tail = ch;
}

/* A TASK message (@msg, @len) of frame @fr: its chunk, cut into pieces
 * of Python's size over the local workers, ceil(n / (4 * workers)). */
static int take_task(struct agent *ag, struct agent_frame *fr,
		     const unsigned char *msg, uint64_t len)
{
	struct pool_msg m;
	struct pool_task tk;
	if (!ag->pool || len < sizeof(m) + sizeof(tk))
		return -EPROTO;
	memcpy(&m, msg, sizeof(m));
	memcpy(&tk, msg + sizeof(m), sizeof(tk));
	if (tk.nitems == 0 || tk.nitems > POOL_MAX_ITEMS ||
	    tk.layout < POOL_ITEMS_FIXED || tk.layout > POOL_ITEMS_STAR ||
	    tk.fn_id >= ag->nfns)
		return -EPROTO;
	struct agent_items *arr = calloc(1, sizeof(*arr));
	if (!arr)
		return -ENOMEM;
	arr->refs = 1;
	struct cursor c = { msg + sizeof(m) + sizeof(tk), msg + len };
	int layout = 0;
	int rc = decode_items(arr, &tk, &c, &layout);
	if (rc == -EPROTO) {
		items_put(arr);
		return rc;
	}
	const struct agent_fn *f = &ag->fns[tk.fn_id];
	const char *why = NULL;
	if (rc == 0 && f->local_id < 0) {
		rc = f->local_id;
		why = f->why;
	}
	uint64_t n = tk.nitems, per = 4 * (uint64_t)ag->workers;
	uint64_t size = n / per + (n % per != 0);
	if (size > PIECE_ITEMS_MAX)
		size = PIECE_ITEMS_MAX;
	for (uint64_t off = 0; off < n; off += size) {
		struct agent_chunk *ch = calloc(1, sizeof(*ch));
		if (!ch)
			fatal("a chunk", -ENOMEM);
		fr->refs++;
		ch->frame = fr;
		arr->refs++;
		ch->items = arr;
		ch->id = m.id;
		ch->off = off;
		ch->n = n - off < size ? n - off : size;
		ch->last = off + ch->n == n;
		/* Room for 8-byte results, in a spare buffer if one is
		 * large enough (the sink grows it if need be). */
		uint64_t want = ANSWER_HDR + sizeof(struct pool_item_res) +
				8 * ch->n;
		ch->buf = mpi_link_buf(&ag->link, want, &ch->cap);
		ch->lost = calloc((size_t)(ch->n + 63) / 64,
				  sizeof(*ch->lost));
		if (!ch->buf || !ch->lost)
			fatal("a chunk", -ENOMEM);
		ch->len = ANSWER_HDR;
		int prc = rc;
		if (prc == 0)
			prc = submit_local(ag, ch, &tk, c.p, layout,
					   f->local_id);
		if (prc) {
			/* Every item of the piece fails with it; the first
			 * carries the reason. */
			for (uint64_t i = 0; i < ch->n; i++)
				put_fail(ch, prc, i == 0 ? why : NULL);
		}
		queue_piece(ag, ch);
	}
	items_put(arr);
	return 0;
}

/* ---- RESULT ------------------------------------------------------------------- */

static int out_reserve(struct agent *ag, size_t more)
{
	if (!ag->out) {
		uint64_t cap;
		ag->out = mpi_link_buf(&ag->link, more < 4096 ? 4096 : more,
				       &cap);
		if (!ag->out)
			return -ENOMEM;
		ag->out_cap = (size_t)cap;
	}
	if (ag->out_len + more <= ag->out_cap)
		return 0;
	size_t cap = ag->out_cap;
	while (cap < ag->out_len + more)
		cap *= 2;
	unsigned char *p = realloc(ag->out, cap);
	if (!p)
		return -ENOMEM;
	ag->out = p;
	ag->out_cap = cap;
	return 0;
}

/* Send the frame of RESULT messages gathered so far. */
static void flush_out(struct agent *ag)
{
	if (!ag->out_msgs)
		return;
	memcpy(ag->out + sizeof(struct mpi_frame), &ag->out_done,
	       sizeof(ag->out_done));
	ag->out_done = 0;
	int rc = mpi_link_send_owned(&ag->link, MPI_FRAME_POOL, ag->out_msgs,
				     ag->out, ag->out_cap, ag->out_len);
	ag->out = NULL;
	ag->out_len = ag->out_cap = 0;
	ag->out_msgs = 0;
	if (rc)
		fatal("MPI_Isend", rc);
}

/* Start the frame of RESULT messages if none is being gathered: its
 * header, then the count of chunks it ends. */
static void out_open(struct agent *ag)
{
	if (ag->out_len)
		return;
	if (out_reserve(ag, sizeof(struct mpi_frame) + 8))
		fatal("a result message", -ENOMEM);
	ag->out_len = sizeof(struct mpi_frame) + 8;
}

/* Append to the frame being gathered a RESULT message of chunk @id for
 * @aux items from @at: @rlen bytes of records at @rec, or (@rec NULL)
 * one item failed with -ENOMEM. */
static void out_result(struct agent *ag, uint64_t id, uint64_t at,
		       uint64_t aux, const unsigned char *rec, uint64_t rlen)
{
	struct pool_item_res fail = { .status = -ENOMEM };
	if (!rec) {
		rec = (const unsigned char *)&fail;
		rlen = sizeof(fail);
	}
	struct pool_msg m = { .type = POOL_MSG_RESULT, .aux = (uint32_t)aux,
			      .id = id };
	uint64_t mlen = sizeof(m) + 8 + rlen;
	out_open(ag);
	if (out_reserve(ag, 8 + mlen))
		fatal("a result message", -ENOMEM);
	unsigned char *o = ag->out + ag->out_len;
	memcpy(o, &mlen, 8);
	memcpy(o + 8, &m, sizeof(m));
	memcpy(o + 8 + sizeof(m), &at, 8);
	memcpy(o + 16 + sizeof(m), rec, rlen);
	ag->out_len += 8 + mlen;
	ag->out_msgs++;
}

/* Answer a piece with lost items: its records cut where an item is lost,
 * each lost item a message of its own that fails it with -ENOMEM, all
 * copied into the frame being gathered.  The records are the agent's
 * own, written in order (put_ok, put_fail), a run never spanning a lost
 * item. */
static void answer_lost(struct agent *ag, struct agent_chunk *ch)
{
	const unsigned char *r = ch->buf + ANSWER_HDR,
			    *end = ch->buf + ch->len;
	uint64_t i = 0;
	while (i < ch->n) {
		if (is_lost(ch, i)) {
			out_result(ag, ch->id, ch->off + i, 1, NULL, 0);
			i++;
			continue;
		}
		const unsigned char *from = r;
		uint64_t first = i;
		while (i < ch->n && !is_lost(ch, i)) {
			struct pool_item_res h;
			if (r > end || (size_t)(end - r) < sizeof(h))
				fatal("a result message", -EPROTO);
			memcpy(&h, r, sizeof(h));
			r += sizeof(h);
			if (h.status) {
				r += pool_pad8(h.n);
				i++;
			} else {
				r += h.n * pool_pad8(h.len);
				i += h.n;
			}
		}
		if (r > end || i > ch->n)
			fatal("a result message", -EPROTO);
		out_result(ag, ch->id, ch->off + first, i - first, from,
			   (uint64_t)(r - from));
	}
	ag->out_done += ch->last;
	if (ag->out_len >= MPI_PIECE / 2)
		flush_out(ag);
}

/* Answer a finished piece: its RESULT message, from the piece's buffer
 * (a frame of its own) or copied into the frame being gathered. */
static void answer(struct agent *ag, struct agent_chunk *ch)
{
	if (ch->encoded != ch->n)
		fatal("a result message", -EPROTO);
	if (ch->nlost) {
		answer_lost(ag, ch);
		return;
	}
	uint64_t done = ch->last, mlen = ch->len - ANSWER_MSG, at = ch->off;
	uint64_t whole = ch->len - ANSWER_MLEN; /* the message with its word */
	struct pool_msg m = { .type = POOL_MSG_RESULT, .aux = (uint32_t)ch->n,
			      .id = ch->id };
	memcpy(ch->buf + ANSWER_DONE, &done, 8);
	memcpy(ch->buf + ANSWER_MLEN, &mlen, 8);
	memcpy(ch->buf + ANSWER_MSG, &m, sizeof(m));
	memcpy(ch->buf + ANSWER_AT, &at, 8);
	if (whole <= ANSWER_COPY_MAX) {
		out_open(ag);
		if (out_reserve(ag, whole))
			fatal("a result message", -ENOMEM);
		memcpy(ag->out + ag->out_len, ch->buf + ANSWER_MLEN, whole);
		ag->out_len += whole;
		ag->out_msgs++;
		ag->out_done += done;
		if (ag->out_len >= MPI_PIECE / 2)
			flush_out(ag);
		return;
	}
	/* Large: what was gathered goes first, then this frame. */
	flush_out(ag);
	int rc = mpi_link_send_owned(&ag->link, MPI_FRAME_POOL, 1, ch->buf,
				     ch->cap, ch->len);
	ch->buf = NULL;
	ch->cap = 0;
	if (rc)
		fatal("MPI_Isend", rc);
}

/* Answer the chunks at the front that are finished.  True if any. */
static bool answer_ready(struct agent *ag)
{
	bool moved = false;
	while (ag->head && (!ag->head->a || mproc_async_ready(ag->head->a))) {
		struct agent_chunk *ch = ag->head;
		ag->head = ch->next;
		if (!ag->head)
			ag->tail = NULL;
		answer(ag, ch);
		chunk_free(ag, ch);
		moved = true;
	}
	flush_out(ag);
	return moved;
}

/* ---- the loop -------------------------------------------------------------------- */

/* Whether the head's receive completed (kept until absorbed: a completed
 * request reads as complete again, without a status). */
static bool poll_recv(struct agent *ag)
{
	if (!ag->rdone) {
		int done = 0;
		if (MPI_Test(&ag->rreq, &done, &ag->rst) != MPI_SUCCESS)
			fatal("MPI_Test", -EIO);
		ag->rdone = done;
	}
	return ag->rdone;
}

/* Something for the loop: the oldest chunk finished, or a frame came. */
static bool agent_news(void *arg)
{
	struct agent *ag = arg;
	if (ag->head && (!ag->head->a || mproc_async_ready(ag->head->a)))
		return true;
	return poll_recv(ag);
}

/* How long the loop works as its local pool's engine at a time (pool.h's
 * helping: it hands the tasks to the workers and collects their results
 * itself, instead of waking the local pool thread for each). */
#define HELP_SLICE_NS (200 * 1000)

static _Noreturn void leave(struct agent *ag, bool terminate, int code)
{
	if (ag->pool) {
		if (terminate)
			mproc_pool_terminate(ag->pool);
		else
			mproc_pool_close(ag->pool);
		mproc_pool_join(ag->pool, -1);
	}
	while (ag->head) {
		struct agent_chunk *ch = ag->head;
		ag->head = ch->next;
		chunk_free(ag, ch);
	}
	if (mpi_link_send(&ag->link, MPI_FRAME_GONE, 0, NULL, 0, NULL, 0))
		fatal("MPI_Isend", -EIO);
	mpi_link_shut(&ag->link);
	mpi_bufs_free(&ag->bufs);
	MPI_Finalize();
	mproc_pool_destroy(ag->pool);
	free(ag->fns);
	free(ag->out);
	exit(code);
}

/* A whole frame from the head.  Returns 0, or the frame's error. */
static int take_frame(struct agent *ag, const struct mpi_frame *f,
		      const struct mpi_body *body)
{
	switch (f->kind) {
	case MPI_FRAME_POOL: {
		struct agent_frame *fr = malloc(sizeof(*fr));
		if (!fr) {
			mpi_link_keep(&ag->link, body->own, body->cap);
			return -ENOMEM;
		}
		fr->refs = 1;
		fr->body = *body;
		const unsigned char *p = body->p, *end = body->p + f->len;
		int rc = f->aux ? 0 : -EPROTO;
		for (uint32_t k = 0; k < f->aux && !rc; k++) {
			uint64_t len;
			struct pool_msg m;
			if ((size_t)(end - p) < sizeof(len)) {
				rc = -EPROTO;
				break;
			}
			memcpy(&len, p, sizeof(len));
			p += sizeof(len);
			if (len < sizeof(m) || len % 8 ||
			    len > (uint64_t)(end - p)) {
				rc = -EPROTO;
				break;
			}
			memcpy(&m, p, sizeof(m));
			if (m.type == POOL_MSG_TASK)
				rc = take_task(ag, fr, p, len);
			else if (m.type == POOL_MSG_DEFINE)
				rc = define_fn(ag, m.aux, p + sizeof(m),
					       len - sizeof(m));
			else
				rc = -EPROTO;
			p += len;
		}
		frame_put(ag, fr);
		return rc;
	}
	case MPI_FRAME_CLOSE:
		mpi_link_keep(&ag->link, body->own, body->cap);
		ag->closing = true;
		return 0;
	case MPI_FRAME_TERMINATE:
		mpi_link_keep(&ag->link, body->own, body->cap);
		leave(ag, true, 0);
	default:
		mpi_link_keep(&ag->link, body->own, body->cap);
		return -EPROTO;
	}
}

_Noreturn void mproc__mpi_agent_main(const struct mproc_pool_attr *attr)
{
	static struct agent ag;
	struct mproc_pool_attr a;
	if (attr)
		a = *attr;
	else
		mproc_pool_attr_init(&a);
	if (!a.processes) {
		int cpus = mproc_cpu_count();
		int share = (cpus > 0 ? cpus : 1) / mproc__mpi_env_local_agents();
		a.processes = share > 0 ? (unsigned)share : 1;
	}
	/* The local pool first: its zygote forks from a process that has not
	 * initialised MPI. */
	const char *over = getenv("MPROC_TEST_MPI_NOMEM_OVER");
	nomem_over = over ? strtoull(over, NULL, 10) : 0;
	int status = mproc_pool_create(&a, &ag.pool);
	if (status)
		ag.pool = NULL;
	ag.workers = status ? 0 : a.processes;
	int provided;
	if (MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided) !=
	    MPI_SUCCESS) {
		fprintf(stderr, "mproc: MPI pool agent: MPI_Init failed\n");
		exit(70);
	}
	MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
	if (mpi_bufs_warm(&ag.bufs) ||
	    mpi_link_init(&ag.link, 0, &ag.rreq, &ag.bufs) ||
	    mpi_link_post(&ag.link))
		fatal("the link to the head", -ENOMEM);
	struct mpi_hello hello = { .magic = MPI_HELLO_MAGIC,
				   .version = MPI_HELLO_VERSION,
				   .status = status,
				   .workers = ag.workers,
				   .pid = (int32_t)getpid() };
	if (status)
		fprintf(stderr, "mproc: MPI pool agent %d: local pool: %s\n",
			mproc__mpi_env_rank(), mproc_strerror(status));
	if (mpi_link_send(&ag.link, MPI_FRAME_HELLO, 0, &hello, sizeof(hello),
			  NULL, 0))
		fatal("MPI_Isend", -EIO);
	int64_t idle_from = mproc__now_ns();
	for (;;) {
		bool moved = false;
		if (poll_recv(&ag)) {
			struct mpi_frame f;
			struct mpi_body body;
			ag.rdone = false;
			int rc = mpi_link_absorb(&ag.link, &ag.rst, &f, &body);
			if (rc == 1)
				rc = take_frame(&ag, &f, &body);
			if (rc < 0)
				fatal("a frame from the head", rc);
			moved = true;
		}
		bool helped = false;
		if (ag.pool && ag.head && !agent_news(&ag) &&
		    pool_engine_try(ag.pool)) {
			/* The helper takes the submissions in. */
			struct mproc__deadline d;
			mproc__deadline_init(&d, HELP_SLICE_NS);
			pool_help_locked(ag.pool, agent_news, &ag, &d);
			helped = true;
		}
		if (ag.kick && !helped)
			pool_kick(ag.pool);
		ag.kick = false;
		if (ag.pool)
			moved |= answer_ready(&ag);
		mpi_link_sends_done(&ag.link);
		if (ag.closing && !ag.head)
			leave(&ag, false, 0);
		int64_t now = mproc__now_ns();
		if (moved)
			idle_from = now;
		mpi_backoff(now - idle_from);
	}
}

#else
typedef int mproc__mpi_absent; /* no empty translation unit */
#endif /* MPROC_HAVE_MPI */
