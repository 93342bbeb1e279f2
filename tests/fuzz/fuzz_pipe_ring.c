/*
 * fuzz_pipe_ring: a real pipe (duplex or one-way, small rings, indices
 * started at 0, near 2^32, near 2^64 or anywhere), both ends in this
 * process with timeout 0, whose shared state a hostile peer rewrites
 * between the calls of a bounded script.  The input is the configuration
 * byte, then a list of commands: a connection call (send_bytes, short or
 * streamed; recv_bytes_into, recv_bytes, recv, poll(0), next_size(0),
 * fileno, close of one end) or a write by the peer (a ring index, counter,
 * close flag or wait word; an end's owner or state; the fileno words; raw
 * ring bytes; a crafted record or a whole streamed message whose fragment
 * headers, stream ids, offsets and announced total may lie).
 *
 * With bit 7 of the configuration byte the peer is honest instead, and
 * the target checks stream reassembly across changing senders and
 * receivers (pipe.h, "Taking an end over"): end b sends numbered,
 * self-checking messages; the peer plays a sender that dies part-way
 * through a streamed message (well-formed fragments that never end, or
 * end with an ABORT) and a receiver that dies after taking some records;
 * end a receives.  Every message a receives must be one that b sent,
 * intact, in order; when no receiver died, exactly those b sent; and
 * mproc_conn_dropped never exceeds the receivers that died.
 *
 * Every call must return a documented error or a result within its
 * limits, and no access may touch the poisoned bytes of the library's
 * mapping (see fuzz_common.h).  libFuzzer's -timeout catches a call that
 * loops.
 */
#include <errno.h>
#include <limits.h>
#include <stdatomic.h>

#include "fuzz_common.h"
#include "mproc/pipe.h"
#include "mproc/shm.h"
#include "pipe/conn.h"

#define MAX_COMMANDS 64
/* recv_bytes grows its buffer as fragments arrive, so an unbounded
 * maxlength is safe even against an announced total of 2^62. */
#define MAX_RECV MPROC_CONN_NOLIMIT
/* A pid that cannot exist (above the kernel's PID_MAX_LIMIT). */
#define NO_SUCH_PID 0x3ffffff0u

struct fuzz_pipe {
	mproc_conn *end[2];
	bool duplex;
	bool honest; /* configuration bit 7: see the top of this file */
	bool closed[2];
	uint64_t cap, max_payload;
	unsigned char *lib, *view;
	size_t map_len, data;
	size_t ring[2]; /* offsets of the rings' shared indices, 0: none */
};

static struct mproc__ring_spsc_shared *ring_sh(struct fuzz_pipe *f, int k)
{
	return (struct mproc__ring_spsc_shared *)(f->view + f->ring[k]);
}

static unsigned char *ring_buf(struct fuzz_pipe *f, int k)
{
	return f->view + f->ring[k] + sizeof(struct mproc__ring_spsc_shared);
}

static struct pipe_ctl *view_ctl(struct fuzz_pipe *f)
{
	return (struct pipe_ctl *)(f->view + f->data);
}

static void poison(struct fuzz_pipe *f)
{
	fz_poison(f->lib, 0, MPROC_SHM_HEADER_SIZE);
	for (int e = 0; e < 2; e++) {
		size_t off = f->data + offsetof(struct pipe_ctl, end) +
			     (size_t)e * sizeof(struct pipe_end_ctl);
		FZ_POISON_GAP(f->lib, off, struct pipe_end_ctl, state,
			      sizeof(struct pipe_end_ctl));
		off = f->data + offsetof(struct pipe_ctl, note) +
		      (size_t)e * sizeof(struct pipe_notify);
		FZ_POISON_GAP(f->lib, off, struct pipe_notify, armed,
			      offsetof(struct pipe_notify, sig));
		FZ_POISON_GAP(f->lib, off, struct pipe_notify, sig,
			      sizeof(struct pipe_notify));
	}
	size_t end = f->data + sizeof(struct pipe_ctl);
	for (int k = 0; k < 2; k++) {
		if (!f->ring[k])
			continue;
		fz_poison(f->lib, end, f->ring[k] - end);
		fz_poison_spsc_shared(f->lib, f->ring[k]);
		end = f->ring[k] + sizeof(struct mproc__ring_spsc_shared) + f->cap;
	}
	fz_poison(f->lib, end, f->map_len - end);
}

static const size_t caps[4] = { 4096, 4096, 8192, 16384 };

/* Create the pipe the configuration byte describes, with both ends
 * non-blocking, and set up the peer's view and the poisoning. */
static void setup(struct fuzz_pipe *f, struct fz_in *in)
{
	memset(f, 0, sizeof(*f));
	uint8_t cfg = fz_u8(in);
	struct mproc_pipe_attr a;
	mproc_pipe_attr_init(&a);
	f->duplex = cfg & 1;
	f->honest = cfg & 0x80;
	a.capacity = caps[(cfg >> 1) & 3];
	switch ((cfg >> 3) & 3) {
	case 0: a.initial_index = 0; break;
	case 1: a.initial_index = (UINT64_C(1) << 32) - 1000; break;
	case 2: a.initial_index = UINT64_MAX - 1000; break;
	default: a.initial_index = fz_u64(in); break;
	}
	int rc = mproc_pipe(f->duplex, &a, &f->end[0], &f->end[1]);
	FZ_CHECK(rc == 0, "mproc_pipe: %s", mproc_strerror(rc));
	for (int e = 0; e < 2; e++)
		FZ_CHECK(mproc_conn_set_timeout(f->end[e], MPROC_NOWAIT) == 0,
			 "set_timeout");

	mproc_shm *seg = f->end[0]->res->seg;
	const uint64_t *g = mproc_shm_geom(seg);
	f->lib = (unsigned char *)mproc_shm_header(seg);
	f->map_len = mproc_shm_data_size(seg) + MPROC_SHM_HEADER_SIZE;
	f->view = fz_map_view(mproc_shm_fd(seg), f->map_len);
	f->data = (size_t)((unsigned char *)mproc_shm_data(seg) - f->lib);
	f->cap = g[GEOM_CAP];
	f->max_payload = f->cap / 2 - MPROC__RING_REC_HDR;
	f->ring[0] = f->data + (size_t)g[GEOM_RING0];
	f->ring[1] = f->duplex ? f->data + (size_t)g[GEOM_RING1] : 0;
	FZ_CHECK(f->cap == a.capacity &&
			 mproc__ring_max_payload(&f->end[0]->rx) ==
				 f->max_payload &&
			 (f->duplex ? 2 : 1) * (sizeof(struct mproc__ring_spsc_shared) +
						f->cap) + f->ring[0] <= f->map_len,
		 "pipe layout differs from what the harness assumes");
	poison(f);
	/* Optionally arm the filenos from the start, so that every call
	 * runs the eventfd protocol too. */
	for (int e = 0; e < 2; e++)
		if (cfg & (0x20 << e)) {
			rc = mproc_conn_fileno(f->end[e]);
			FZ_CHECK(rc >= 0 || rc == -EPERM, "fileno: %d", rc);
		}
}

static void teardown(struct fuzz_pipe *f)
{
	fz_unpoison(f->lib, f->map_len);
	munmap(f->view, f->map_len);
	mproc_conn_free(f->end[0]);
	mproc_conn_free(f->end[1]);
}

/* Which ring end @e receives from, or -1 for a send-only end. */
static int rx_ring(struct fuzz_pipe *f, int e)
{
	return f->duplex || e == 0 ? e : -1;
}

static int pick_ring(struct fuzz_pipe *f, struct fz_in *in)
{
	return f->duplex ? fz_u8(in) & 1 : 0;
}

/* The errors any call on an end may return besides its own: the end was
 * closed (by us, or its state word says so) or is the wrong direction. */
#define COMMON_ERRS EBADF, EPERM, MPROC_ECORRUPT, MPROC_EPEERDIED

static size_t pick_cap(struct fuzz_pipe *f, struct fz_in *in)
{
	switch (fz_u8(in) & 3) {
	case 0:
		return fz_u8(in);
	case 1:
		return (size_t)f->max_payload + (fz_u8(in) & 7);
	case 2:
		return fz_u16(in) % (4 * f->cap);
	default:
		return 0;
	}
}

/* ------------------------------------------------------------------ */
/* Connection calls                                                    */

static void do_send(struct fuzz_pipe *f, struct fz_in *in, int e)
{
	size_t len;
	switch (fz_u8(in) & 3) {
	case 0: case 1:
		len = fz_u16(in) % (f->max_payload + 1);
		break;
	case 2:
		/* Streamed: a few fragments, often more than fit. */
		len = (size_t)f->max_payload + 1 + fz_u16(in) % (3 * f->cap);
		break;
	default:
		len = 0;
		break;
	}
	unsigned char *b = malloc(len ? len : 1);
	memset(b, 0x77, len);
	ssize_t rc = mproc_conn_send_bytes(f->end[e], b, len);
	free(b);
	FZ_RESULT(rc, len, EAGAIN, EPIPE, COMMON_ERRS);
	FZ_CHECK(rc < 0 || (size_t)rc == len, "send of %zu returned %zd", len, rc);
}

static void do_recv_into(struct fuzz_pipe *f, struct fz_in *in, int e)
{
	size_t cap = pick_cap(f, in);
	unsigned char *b = cap || (fz_u8(in) & 1) ? malloc(cap ? cap : 1) : NULL;
	ssize_t rc = mproc_conn_recv_bytes_into(f->end[e], b, cap);
	if (rc > 0)
		fz_touch(b, (size_t)rc);
	free(b);
	FZ_RESULT(rc, cap, EMSGSIZE, EAGAIN, MPROC_EEOF, ENOMEM, COMMON_ERRS);
}

static void do_recv_bytes(struct fuzz_pipe *f, struct fz_in *in, int e)
{
	size_t max = fz_u8(in) & 1 ? MAX_RECV : pick_cap(f, in);
	void *b = NULL;
	size_t len = SIZE_MAX;
	ssize_t rc = mproc_conn_recv_bytes(f->end[e], max, &b, &len);
	FZ_RESULT(rc, max, EMSGSIZE, EAGAIN, MPROC_EEOF, ENOMEM, COMMON_ERRS);
	if (rc >= 0) {
		FZ_CHECK(b && len == (size_t)rc, "recv_bytes: %zd, len %zu, buf %p",
			 rc, len, b);
		fz_touch(b, len);
		free(b);
	} else {
		FZ_CHECK(rc != -EMSGSIZE || len > max,
			 "EMSGSIZE with length %zu <= %zu", len, max);
	}
}

static void do_recv_obj(struct fuzz_pipe *f, struct fz_in *in, int e)
{
	size_t size = pick_cap(f, in);
	unsigned char *b = malloc(size ? size : 1);
	ssize_t rc = mproc_conn_recv(f->end[e], b, size);
	free(b);
	FZ_RESULT(rc, size, EBADMSG, EMSGSIZE, EAGAIN, MPROC_EEOF, ENOMEM,
		  COMMON_ERRS);
	FZ_CHECK(rc < 0 || (size_t)rc == size, "recv(%zu): %zd", size, rc);
}

static void do_look(struct fuzz_pipe *f, int e)
{
	int p = mproc_conn_poll(f->end[e], MPROC_NOWAIT);
	FZ_RESULT(p, 1, COMMON_ERRS);
	ssize_t n = mproc_conn_next_size(f->end[e], MPROC_NOWAIT);
	FZ_RESULT(n, SSIZE_MAX, EAGAIN, MPROC_EEOF, COMMON_ERRS);
}

static void do_fileno(struct fuzz_pipe *f, int e)
{
	int fd = mproc_conn_fileno(f->end[e]);
	FZ_CHECK(fd >= 0 || fz_err_in(fd, FZ_ERRS(EBADF, EPERM)), "fileno: %d", fd);
	FZ_CHECK(fd != -EPERM || rx_ring(f, e) < 0, "fileno: EPERM on %d", e);
}

/* ------------------------------------------------------------------ */
/* The hostile peer                                                    */

static uint32_t pick_pid(struct fz_in *in)
{
	switch (fz_u8(in) & 3) {
	case 0: return 0;
	case 1: return (uint32_t)getpid();
	case 2: return NO_SUCH_PID;
	default: return fz_u32(in);
	}
}

static void peer_word(struct fuzz_pipe *f, struct fz_in *in)
{
	unsigned sel = fz_u8(in) % 11;
	int k = pick_ring(f, in);
	struct mproc__ring_spsc_shared *sh = ring_sh(f, k);
	struct pipe_ctl *ctl = view_ctl(f);
	_Atomic uint64_t *w64 = NULL, *ref = NULL;
	switch (sel) {
	case 0: w64 = &sh->head; ref = &sh->tail; break;
	case 1: w64 = &sh->tail; ref = &sh->head; break;
	case 2: w64 = &sh->msgs_in; ref = &sh->msgs_out; break;
	case 3: w64 = &sh->msgs_out; ref = &sh->msgs_in; break;
	case 4: atomic_store(&sh->closed, fz_u8(in) & 7); return;
	case 5: atomic_store(&sh->data_ready.waiters, fz_u8(in) & 1); return;
	case 6: atomic_store(&sh->space_ready.waiters, fz_u8(in) & 1); return;
	case 7: atomic_store(&ctl->end[fz_u8(in) & 1].owner, pick_pid(in)); return;
	case 8: atomic_store(&ctl->end[fz_u8(in) & 1].state, fz_u8(in) % 4); return;
	case 9: atomic_store(&ctl->note[k].armed, fz_u8(in) & 1); return;
	default: {
		/* BUSY only of a signaller that has exited (pid 0 or one
		 * that cannot exist), which the next call takes over: a live
		 * one's BUSY makes a receiver wait a documented, bounded
		 * 10 ms, which would only slow the fuzzer down. */
		uint32_t v = fz_u8(in);
		if ((v & SIG_STATE) == SIG_BUSY)
			v = v & 4 ? mproc__sig_busy((int)NO_SUCH_PID) : SIG_BUSY;
		else
			v &= SIG_STATE;
		atomic_store(&ctl->note[k].sig, v);
		return;
	}
	}
	atomic_store(w64, fz_word(in, atomic_load(w64), atomic_load(ref)));
}

static void peer_bytes(struct fuzz_pipe *f, struct fz_in *in)
{
	int k = pick_ring(f, in);
	unsigned char tmp[16];
	size_t n = fz_u8(in) % 17;
	fz_bytes(in, tmp, n);
	size_t off = fz_u16(in) % f->cap;
	size_t room = (size_t)f->cap - off;
	memcpy(ring_buf(f, k) + off, tmp, n < room ? n : room);
}

/* Write a record of ring @k at its head as a sender would (the header,
 * then as much payload as fits before the end of the buffer) and move
 * the head by @adv; returns the record's payload area. */
static unsigned char *put_record(struct fuzz_pipe *f, int k, uint32_t len,
				 uint32_t flags, const void *first8,
				 uint64_t adv)
{
	struct mproc__ring_spsc_shared *sh = ring_sh(f, k);
	uint64_t head = atomic_load(&sh->head);
	uint64_t off = head & (f->cap - 1);
	unsigned char *rec = ring_buf(f, k) + off;
	uint32_t h[2] = { len, flags };
	uint64_t room = f->cap - off;
	memcpy(rec, h, room < sizeof(h) ? (size_t)room : sizeof(h));
	if (room >= MPROC__RING_REC_HDR) {
		/* The tag that publishes it (spsc.h I6). */
		uint64_t tag = head ^ sh->secret;
		memcpy(rec + 8, &tag, sizeof(tag));
	}
	if (first8 && room >= MPROC__RING_REC_HDR + 8)
		memcpy(rec + MPROC__RING_REC_HDR, first8, 8);
	atomic_store(&sh->head, head + adv);
	if (!(flags & MPROC__RING_REC_MORE))
		atomic_fetch_add(&sh->msgs_in, 1);
	return rec;
}

static uint32_t pick_rec_len(struct fuzz_pipe *f, struct fz_in *in)
{
	switch (fz_u8(in) & 3) {
	case 0: return (uint32_t)(fz_u16(in) % (f->max_payload + 2));
	case 1: return (uint32_t)f->max_payload + (fz_u8(in) & 7);
	case 2: return fz_u32(in);
	default: return fz_u8(in);
	}
}

/* One record at the head of ring @k, possibly a broken one. */
static void peer_produce(struct fuzz_pipe *f, struct fz_in *in)
{
	int k = pick_ring(f, in);
	uint8_t how = fz_u8(in);
	uint32_t len = pick_rec_len(f, in);
	uint32_t flags;
	switch (how & 3) {
	case 0: flags = 0; break;
	case 1: flags = MPROC__RING_REC_MORE; break;
	case 2: flags = MPROC__RING_REC_PAD; break;
	default: flags = fz_u32(in); break;
	}
	uint64_t off = atomic_load(&ring_sh(f, k)->head) & (f->cap - 1);
	if (flags == MPROC__RING_REC_PAD && (how & 4))
		len = (uint32_t)(f->cap - off - MPROC__RING_REC_HDR);
	/* The announced total of a first fragment. */
	uint64_t total = how & 8 ? fz_u64(in) : (uint64_t)fz_u16(in);
	uint64_t adv;
	switch ((how >> 4) & 3) {
	case 0:
		adv = flags == MPROC__RING_REC_PAD ? f->cap - off
						   : mproc__ring_spsc_rec_size(len);
		break;
	case 1: adv = (uint64_t)fz_u8(in) * MPROC__RING_REC_ALIGN; break;
	case 2: adv = fz_u8(in); break;
	default: adv = 0; break;
	}
	put_record(f, k, len, flags,
		   flags & MPROC__RING_REC_MORE ? &total : NULL, adv);
}

/* Write a stream fragment at the head of ring @k: a pad first where the
 * record would cross the end of the buffer (I4).  Returns false, writing
 * nothing more, when the ring has no room for it. */
static bool put_frag(struct fuzz_pipe *f, int k, uint64_t id, uint64_t value,
		     uint32_t len)
{
	struct mproc__ring_spsc_shared *sh = ring_sh(f, k);
	uint64_t head = atomic_load(&sh->head);
	uint64_t off = head & (f->cap - 1);
	uint64_t rec = mproc__ring_spsc_rec_size(len);
	uint64_t pad = off + rec > f->cap ? f->cap - off : 0;
	if (head + pad + rec - atomic_load(&sh->tail) > f->cap)
		return false;
	if (pad) {
		put_record(f, k, (uint32_t)(pad - MPROC__RING_REC_HDR),
			   MPROC__RING_REC_PAD, NULL, pad);
		atomic_fetch_sub(&sh->msgs_in, 1);
	}
	unsigned char *rec_p = put_record(f, k, len, MPROC__RING_REC_MORE,
					  NULL, rec);
	struct frag_hdr h = { id, value };
	memcpy(rec_p + MPROC__RING_REC_HDR, &h, sizeof(h));
	return true;
}

/* A streamed message in ring @k, as a sender would write it (conn.h,
 * Messages) but with fuzzed fragment sizes, kinds, id, offsets and
 * total.  Stops where the ring has no room (the receiver then sees half
 * a message). */
static void peer_stream(struct fuzz_pipe *f, struct fz_in *in)
{
	int k = pick_ring(f, in);
	unsigned nfrag = 1 + fz_u8(in) % 6;
	uint64_t total = fz_u8(in) & 1 ? fz_u64(in) : fz_u16(in);
	uint8_t idsel = fz_u8(in);
	uint64_t id = idsel & 1 ? fz_u64(in)
				: atomic_load(&ring_sh(f, k)->head) & ~(uint64_t)FRAG_KIND;
	uint64_t offset = 0;
	for (unsigned i = 0; i < nfrag; i++) {
		uint32_t len = (uint32_t)(fz_u16(in) % (f->max_payload + 1));
		uint8_t lie = fz_u8(in);
		if (len < sizeof(struct frag_hdr))
			len = sizeof(struct frag_hdr);
		uint64_t kind = i == 0 ? FRAG_FIRST
				: i + 1 < nfrag ? FRAG_MIDDLE : FRAG_LAST;
		if (lie & 0x80)
			kind = lie & FRAG_KIND;
		uint64_t value = i == 0 ? total : offset;
		if (lie & 0x40)
			value = fz_word(in, value, total);
		if (!put_frag(f, k, (id & ~(uint64_t)FRAG_KIND) | kind, value, len))
			return;
		offset += len - sizeof(struct frag_hdr);
	}
}

/* Rewrite the header of the next record to be received in ring @k. */
static void peer_front(struct fuzz_pipe *f, struct fz_in *in)
{
	int k = pick_ring(f, in);
	uint64_t tail = atomic_load(&ring_sh(f, k)->tail);
	uint64_t off = tail & (f->cap - 1);
	uint32_t h[2] = { pick_rec_len(f, in), 0 };
	h[1] = fz_u8(in) & 1 ? fz_u32(in) : fz_u8(in) & 3;
	uint64_t room = f->cap - off;
	memcpy(ring_buf(f, k) + off, h, room < sizeof(h) ? (size_t)room : sizeof(h));
	if (room >= MPROC__RING_REC_HDR && (fz_u8(in) & 1)) {
		uint64_t tag = tail ^ ring_sh(f, k)->secret; /* publish it */
		memcpy(ring_buf(f, k) + off + 8, &tag, sizeof(tag));
	}
	/* And maybe the fragment header of a stream record. */
	if ((h[1] & MPROC__RING_REC_MORE) &&
	    room >= MPROC__RING_REC_HDR + sizeof(struct frag_hdr)) {
		struct frag_hdr fh;
		fh.id = fz_u8(in) & 1 ? fz_u64(in) : (tail & ~(uint64_t)FRAG_KIND) |
							 (fz_u8(in) & FRAG_KIND);
		fh.value = fz_word(in, 0, h[0]);
		memcpy(ring_buf(f, k) + off + MPROC__RING_REC_HDR, &fh, sizeof(fh));
	}
}

/* ------------------------------------------------------------------ */
/* Honest mode: reassembly across changing senders and receivers       */

struct honest {
	uint32_t next_seq;              /* seq of b's next message */
	uint32_t sent[MAX_COMMANDS];    /* seqs b sent, in order */
	unsigned nsent;
	unsigned nrecv;                 /* sent[] entries received or passed */
	unsigned receivers_died;
	unsigned char *buf;
	size_t buf_len;
};

/* b's messages: {seq, length}, then bytes that follow from both. */
static unsigned char honest_byte(uint32_t seq, size_t i)
{
	return (unsigned char)(seq * 131u + i * 7u + (i >> 8));
}

static void honest_send(struct fuzz_pipe *f, struct fz_in *in,
			struct honest *h)
{
	size_t n = fz_u8(in) & 1
			   ? 8 + fz_u16(in) % (f->max_payload - 7)
			   : (size_t)f->max_payload + 1 + fz_u16(in) % f->cap;
	unsigned char *m = malloc(n);
	uint32_t seq = h->next_seq++, len32 = (uint32_t)n;
	memcpy(m, &seq, 4);
	memcpy(m + 4, &len32, 4);
	for (size_t i = 8; i < n; i++)
		m[i] = honest_byte(seq, i);
	ssize_t rc = mproc_conn_send_bytes(f->end[1], m, n);
	free(m);
	FZ_RESULT(rc, n, EAGAIN);
	if (rc >= 0) {
		FZ_CHECK((size_t)rc == n, "send of %zu returned %zd", n, rc);
		h->sent[h->nsent++] = seq;
	}
}

/* A received message must be one of b's, intact, after the last one
 * received; b's messages in between may be missing only when a receiver
 * died. */
static void honest_got(struct honest *h, const unsigned char *m, size_t n)
{
	uint32_t seq, len32;
	FZ_CHECK(n >= 8, "received %zu bytes: not one of b's messages", n);
	memcpy(&seq, m, 4);
	memcpy(&len32, m + 4, 4);
	FZ_CHECK(len32 == n, "message %u: %zu bytes, sent %u", seq, n, len32);
	for (size_t i = 8; i < n; i++)
		FZ_CHECK(m[i] == honest_byte(seq, i),
			 "message %u torn or spliced at byte %zu", seq, i);
	unsigned j = h->nrecv;
	while (j < h->nsent && h->sent[j] != seq)
		j++;
	FZ_CHECK(j < h->nsent, "message %u: never sent, or out of order", seq);
	FZ_CHECK(j == h->nrecv || h->receivers_died,
		 "messages lost before %u with no receiver dead", seq);
	h->nrecv = j + 1;
}

/* One receive on a; returns its result. */
static ssize_t honest_recv(struct fuzz_pipe *f, struct fz_in *in,
			   struct honest *h)
{
	ssize_t rc;
	if (fz_u8(in) & 1) {
		rc = mproc_conn_recv_bytes_into(f->end[0], h->buf, h->buf_len);
		if (rc >= 0)
			honest_got(h, h->buf, (size_t)rc);
	} else {
		void *p = NULL;
		size_t len = 0;
		rc = mproc_conn_recv_bytes(f->end[0], MPROC_CONN_NOLIMIT, &p, &len);
		if (rc >= 0) {
			honest_got(h, p, len);
			free(p);
		}
	}
	FZ_RESULT(rc, h->buf_len, EAGAIN);
	ssize_t d = mproc_conn_dropped(f->end[0]);
	FZ_CHECK(d >= 0 && (size_t)d <= h->receivers_died,
		 "%zd dropped, %u receivers died", d, h->receivers_died);
	return rc;
}

/* A sender of ring 0 that dies part-way through a streamed message:
 * well-formed fragments that never reach their LAST, maybe an ABORT (a
 * timeout before it died). */
static void honest_dead_sender(struct fuzz_pipe *f, struct fz_in *in)
{
	uint64_t id = atomic_load(&ring_sh(f, 0)->head) & ~(uint64_t)FRAG_KIND;
	unsigned nfrag = 1 + fz_u8(in) % 4;
	uint32_t data[4];
	uint64_t total = 1 + fz_u8(in);
	for (unsigned i = 0; i < nfrag; i++) {
		data[i] = 1 + (uint32_t)(fz_u16(in) %
					 (f->max_payload - sizeof(struct frag_hdr)));
		total += data[i];
	}
	uint64_t offset = 0;
	for (unsigned i = 0; i < nfrag; i++) {
		if (!put_frag(f, 0, id | (i ? FRAG_MIDDLE : FRAG_FIRST),
			      i ? offset : total,
			      (uint32_t)sizeof(struct frag_hdr) + data[i]))
			return;
		offset += data[i];
	}
	if (fz_u8(in) & 1)
		put_frag(f, 0, id | FRAG_ABORT, offset, sizeof(struct frag_hdr));
}

/* A receiver of ring 0 that dies after taking up to 4 records (and the
 * pads between them) and publishing tail. */
static void honest_dead_receiver(struct fuzz_pipe *f, struct fz_in *in,
				 struct honest *h)
{
	struct mproc__ring_spsc_shared *sh = ring_sh(f, 0);
	unsigned n = 1 + fz_u8(in) % 4;
	uint64_t tail = atomic_load(&sh->tail), start = tail;
	while (n) {
		uint64_t off = tail & (f->cap - 1), tag;
		uint32_t hdr[2];
		memcpy(&tag, ring_buf(f, 0) + off + 8, sizeof(tag));
		if (tag != (tail ^ sh->secret))
			break; /* nothing published there */
		memcpy(hdr, ring_buf(f, 0) + off, sizeof(hdr));
		if (hdr[1] == MPROC__RING_REC_PAD) {
			tail += f->cap - off;
			continue;
		}
		tail += mproc__ring_spsc_rec_size(hdr[0]);
		n--;
	}
	if (tail != start) {
		atomic_store(&sh->tail, tail);
		h->receivers_died++;
	}
}

static void run_honest(struct fuzz_pipe *f, struct fz_in *in)
{
	struct honest h = { .buf_len = 4 * (size_t)f->cap };
	h.buf = malloc(h.buf_len);
	for (int i = 0; i < MAX_COMMANDS && fz_left(in); i++) {
		switch (fz_u8(in) % 8) {
		case 0: case 1: honest_send(f, in, &h); break;
		case 2: case 3: case 4: honest_recv(f, in, &h); break;
		case 5: {
			int p = mproc_conn_poll(f->end[0], MPROC_NOWAIT);
			FZ_RESULT(p, 1, EINVAL);
			ssize_t n = mproc_conn_next_size(f->end[0], MPROC_NOWAIT);
			FZ_RESULT(n, SSIZE_MAX, EAGAIN);
			break;
		}
		case 6: honest_dead_sender(f, in); break;
		default: honest_dead_receiver(f, in, &h); break;
		}
	}
	/* Drain: with no receiver dead, a got every message b sent. */
	struct fz_in none = { NULL, 0 };
	for (int i = 0; i < 4 * MAX_COMMANDS; i++)
		if (honest_recv(f, &none, &h) == -EAGAIN)
			break;
	FZ_CHECK(h.receivers_died || h.nrecv == h.nsent,
		 "%u of %u messages received", h.nrecv, h.nsent);
	free(h.buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz_in in = { data, size };
	struct fuzz_pipe f;
	setup(&f, &in);
	if (f.honest) {
		run_honest(&f, &in);
		teardown(&f);
		return 0;
	}
	for (int i = 0; i < MAX_COMMANDS && fz_left(&in); i++) {
		uint8_t op = fz_u8(&in);
		int e = (op >> 7) & 1;
		switch ((op & 0x7f) % 16) {
		case 0: case 1: do_send(&f, &in, e); break;
		case 2: case 3: do_recv_into(&f, &in, e); break;
		case 4: do_recv_bytes(&f, &in, e); break;
		case 5: do_recv_obj(&f, &in, e); break;
		case 6: do_look(&f, e); break;
		case 7: do_fileno(&f, e); break;
		case 8:
			/* Rarely, and one end only: the segment must stay
			 * mapped until teardown has unpoisoned it. */
			if (fz_u8(&in) == 0xc1 && !f.closed[!e]) {
				FZ_CHECK(mproc_conn_close(f.end[e]) == 0 ||
						 f.closed[e], "close");
				f.closed[e] = true;
			}
			break;
		case 9: case 10: peer_word(&f, &in); break;
		case 11: peer_bytes(&f, &in); break;
		case 12: peer_produce(&f, &in); break;
		case 13: peer_stream(&f, &in); break;
		default: peer_front(&f, &in); break;
		}
	}
	teardown(&f);
	return 0;
}
