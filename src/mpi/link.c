/* Frames over MPI between two ranks (link.h). */
/* Only with MPI: meson compiles this file then alone, but tools that
 * compile every source of the library (the fuzz build) see it too. */
#ifdef MPROC_HAVE_MPI

#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/compiler.h"
#include "mpi/link.h"

_Static_assert(MPI_BUFS_WARM_BYTES <= MPI_PIECE, "warm bytes fit a slab");

int mpi_bufs_warm(struct mpi_bufs *b)
{
	const char *check = getenv("MPROC_TEST_MPI_BUFS");
	b->check = check && !strcmp(check, "check");
	while (b->n < MPI_BUFS_WARM) {
		unsigned char *p = malloc(MPI_PIECE);
		if (!p)
			return -ENOMEM;
		memset(p, 0, MPI_BUFS_WARM_BYTES);
		b->slab[b->n].buf = p;
		b->slab[b->n++].cap = MPI_PIECE;
	}
	return 0;
}

void mpi_bufs_free(struct mpi_bufs *b)
{
	while (b->n)
		free(b->slab[--b->n].buf);
	if (b->check && b->largest > MPI_PIECE) {
		fprintf(stderr,
			"mproc: MPI buffer cache held %llu bytes in one buffer, "
			"over a slab's %u\n",
			(unsigned long long)b->largest, MPI_PIECE);
		abort();
	}
}

int mpi_link_init(struct mpi_link *l, int peer, MPI_Request *rreq,
		  struct mpi_bufs *b)
{
	memset(l, 0, sizeof(*l));
	l->peer = peer;
	l->rreq = rreq;
	l->bufs = b;
	*rreq = MPI_REQUEST_NULL;
	l->piece = mpi_link_buf(l, MPI_PIECE, &l->piece_cap);
	return l->piece ? 0 : -ENOMEM;
}

unsigned char *mpi_link_buf(struct mpi_link *l, uint64_t want, uint64_t *cap)
{
	struct mpi_bufs *b = l->bufs;
	/* The most recently cached slab: the likeliest to be warm, in the
	 * cache and in memory.  A small buffer is plain memory, which malloc
	 * recycles well; a buffer over a slab is its own (mpi_link_keep
	 * frees it). */
	if (want > MPI_SMALL_FRAME && want <= MPI_PIECE && b->n) {
		/* Every cached slab is MPI_PIECE bytes: the last one. */
		b->n--;
		*cap = b->slab[b->n].cap;
		return b->slab[b->n].buf;
	}
	uint64_t size = want <= MPI_SMALL_FRAME ? want
		      : want < MPI_PIECE  ? MPI_PIECE
					  : want;
	unsigned char *p = malloc(size ? size : 1);
	*cap = p ? size : 0;
	return p;
}

void mpi_link_keep(struct mpi_link *l, unsigned char *buf, uint64_t cap)
{
	struct mpi_bufs *b = l->bufs;
	if (!buf)
		return;
	if (!b || cap != MPI_PIECE || b->n == MPI_BUFS_MAX) {
		/* Not a slab (a small message, a frame of several pieces, a
		 * buffer grown past a slab), or enough of them. */
		free(buf);
		return;
	}
	b->slab[b->n].buf = buf;
	b->slab[b->n++].cap = cap;
	if (cap > b->largest)
		b->largest = cap;
}

int mpi_link_post(struct mpi_link *l)
{
	if (*l->rreq != MPI_REQUEST_NULL)
		return 0;
	if (!l->piece &&
	    !(l->piece = mpi_link_buf(l, MPI_PIECE, &l->piece_cap)))
		return -ENOMEM;
	return MPI_Irecv(l->piece, MPI_PIECE, MPI_BYTE, l->peer, MPI_TAG_MPROC,
			 MPI_COMM_WORLD, l->rreq) == MPI_SUCCESS ? 0 : -EIO;
}

static int broken(struct mpi_link *l)
{
	l->broken = true;
	free(l->msg);
	l->msg = NULL;
	return -EPROTO;
}

int mpi_link_absorb(struct mpi_link *l, const MPI_Status *st,
		    struct mpi_frame *frame, struct mpi_body *body)
{
	int count;
	if (l->broken)
		return -EPROTO;
	if (MPI_Get_count(st, MPI_BYTE, &count) != MPI_SUCCESS || count < 0)
		return broken(l);
	uint64_t n = (uint64_t)count;
	const unsigned char *p = l->piece;
	if (!l->msg && l->msg_got == 0 && l->frame.kind == 0) {
		/* The first piece of a frame: header, then body bytes. */
		if (n < sizeof(struct mpi_frame))
			return broken(l);
		memcpy(&l->frame, p, sizeof(l->frame));
		p += sizeof(l->frame);
		n -= sizeof(l->frame);
		uint64_t first = MPI_PIECE - sizeof(struct mpi_frame);
		if (l->frame.kind < MPI_FRAME_POOL ||
		    l->frame.kind > MPI_FRAME_GONE ||
		    l->frame.len > MPI_FRAME_MAX ||
		    n != (l->frame.len < first ? l->frame.len : first))
			return broken(l);
		if (n && n == l->frame.len && n > MPI_SMALL_FRAME) {
			/* Whole in one piece: hand the piece buffer over (a
			 * small frame is copied instead: a slab held per
			 * small frame would soon be a new one per frame). */
			*frame = l->frame;
			body->own = l->piece;
			body->cap = l->piece_cap;
			body->p = l->piece + sizeof(struct mpi_frame);
			l->piece = NULL;
			l->frame.kind = 0;
			return mpi_link_post(l) < 0 ? -EIO : 1;
		}
		if (l->frame.len && !(l->msg = malloc(l->frame.len))) {
			l->frame.kind = 0;
			return -ENOMEM;
		}
	} else {
		/* A continuation: exactly the next MPI_PIECE bytes, or the
		 * rest. */
		uint64_t left = l->frame.len - l->msg_got;
		if (n != (left < MPI_PIECE ? left : MPI_PIECE))
			return broken(l);
	}
	if (n)
		memcpy(l->msg + l->msg_got, p, n);
	l->msg_got += n;
	if (mpi_link_post(l) < 0)
		return -EIO;
	if (l->msg_got < l->frame.len)
		return 0;
	*frame = l->frame;
	body->own = body->p = l->msg;
	body->cap = l->frame.len;
	l->msg = NULL;
	l->msg_got = 0;
	l->frame.kind = 0;
	return 1;
}

/* MPI_Waitall and MPI_Testall without statuses, one request at a time:
 * MPICH's MPI_STATUSES_IGNORE is (MPI_Status *)1, which GCC 12 reads as
 * an empty array where the calls write (-Wstringop-overflow).  A
 * completed request becomes MPI_REQUEST_NULL, which tests complete. */
static void wait_all(MPI_Request *req, int n)
{
	for (int i = 0; i < n; i++)
		MPI_Wait(&req[i], MPI_STATUS_IGNORE);
}

static bool test_all(MPI_Request *req, int n)
{
	for (int i = 0; i < n; i++) {
		int done = 0;
		if (MPI_Test(&req[i], &done, MPI_STATUS_IGNORE) !=
			    MPI_SUCCESS ||
		    !done)
			return false;
	}
	return true;
}

int mpi_link_send_owned(struct mpi_link *l, uint32_t kind, uint32_t aux,
			unsigned char *buf, uint64_t cap, uint64_t total)
{
	struct mpi_frame f = { .len = total - sizeof(f), .kind = kind,
			       .aux = aux };
	uint64_t np = (total + MPI_PIECE - 1) / MPI_PIECE;
	struct mpi_send *s = malloc(sizeof(*s) + np * sizeof(MPI_Request));
	if (!s) {
		free(buf);
		return -ENOMEM;
	}
	memcpy(buf, &f, sizeof(f));
	s->next = NULL;
	s->buf = buf;
	s->cap = cap;
	s->npieces = (int)np;
	for (uint64_t i = 0; i < np; i++) {
		uint64_t off = i * MPI_PIECE;
		uint64_t len = total - off < MPI_PIECE ? total - off : MPI_PIECE;
		if (MPI_Isend(buf + off, (int)len, MPI_BYTE, l->peer,
			      MPI_TAG_MPROC, MPI_COMM_WORLD,
			      &s->req[i]) != MPI_SUCCESS) {
			/* Pieces already out must complete before the buffer
			 * goes; the frame is cut short, which the peer sees
			 * as a broken link. */
			wait_all(s->req, (int)i);
			free(buf);
			free(s);
			return -EIO;
		}
	}
	if (l->sq_tail)
		l->sq_tail->next = s;
	else
		l->sq_head = s;
	l->sq_tail = s;
	return 0;
}

int mpi_link_send(struct mpi_link *l, uint32_t kind, uint32_t aux,
		  const void *a, uint64_t alen, const void *b, uint64_t blen)
{
	uint64_t total = sizeof(struct mpi_frame) + alen + blen, cap;
	if (alen + blen > MPI_FRAME_MAX)
		return -EMSGSIZE;
	unsigned char *buf = mpi_link_buf(l, total, &cap);
	if (!buf)
		return -ENOMEM;
	if (alen)
		memcpy(buf + sizeof(struct mpi_frame), a, alen);
	if (blen)
		memcpy(buf + sizeof(struct mpi_frame) + alen, b, blen);
	return mpi_link_send_owned(l, kind, aux, buf, cap, total);
}

bool mpi_link_sends_done(struct mpi_link *l)
{
	while (l->sq_head) {
		struct mpi_send *s = l->sq_head;
		if (!test_all(s->req, s->npieces))
			return false;
		l->sq_head = s->next;
		if (!l->sq_head)
			l->sq_tail = NULL;
		mpi_link_keep(l, s->buf, s->cap);
		free(s);
	}
	return true;
}

void mpi_link_shut(struct mpi_link *l)
{
	while (l->sq_head) {
		struct mpi_send *s = l->sq_head;
		wait_all(s->req, s->npieces);
		l->sq_head = s->next;
		free(s->buf);
		free(s);
	}
	l->sq_tail = NULL;
	if (l->rreq && *l->rreq != MPI_REQUEST_NULL) {
		MPI_Cancel(l->rreq);
		MPI_Wait(l->rreq, MPI_STATUS_IGNORE);
	}
	mpi_link_free(l);
}

void mpi_link_free(struct mpi_link *l)
{
	while (l->sq_head) {
		struct mpi_send *s = l->sq_head;
		l->sq_head = s->next;
		free(s->buf);
		free(s);
	}
	l->sq_tail = NULL;
	free(l->piece);
	free(l->msg);
	l->piece = l->msg = NULL;
}

void mpi_backoff(int64_t idle_ns)
{
	if (idle_ns < 20 * 1000) {
		for (int i = 0; i < 16; i++)
			mproc__cpu_relax();
	} else if (idle_ns < 1000 * 1000) {
		sched_yield();
	} else {
		int64_t ns = idle_ns / 16;
		if (ns > 1000 * 1000)
			ns = 1000 * 1000;
		struct timespec ts = { 0, (long)ns };
		nanosleep(&ts, NULL);
	}
}

#else
typedef int mproc__mpi_absent; /* no empty translation unit */
#endif /* MPROC_HAVE_MPI */
