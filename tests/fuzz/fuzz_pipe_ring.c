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
 * headers and announced total may lie).
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
/* recv_bytes allocates the announced length up front (bounded by its
 * maxlength), so the harness keeps maxlength modest: an unbounded one
 * would only test malloc. */
#define MAX_RECV (1u << 20)
/* A pid that cannot exist (above the kernel's PID_MAX_LIMIT). */
#define NO_SUCH_PID 0x3ffffff0u

struct fuzz_pipe {
	mproc_conn *end[2];
	bool duplex;
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
		/* SIG_BUSY is left out: a receiver that finds it waits a
		 * documented, bounded 10 ms for the signaller, which would
		 * only slow the fuzzer down. */
		uint32_t v = fz_u8(in) & 3;
		atomic_store(&ctl->note[k].sig, v == SIG_BUSY ? SIG_IDLE : v);
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

/* A whole streamed message in ring @k, as a sender would write it but
 * with fuzzed fragment sizes and total: the first fragment (MORE, the
 * total, then data), middle ones (MORE), the last (flags 0).  Stops where
 * the ring has no room (the receiver then sees half a message). */
static void peer_stream(struct fuzz_pipe *f, struct fz_in *in)
{
	int k = pick_ring(f, in);
	struct mproc__ring_spsc_shared *sh = ring_sh(f, k);
	unsigned nfrag = 1 + fz_u8(in) % 6;
	uint64_t total = fz_u8(in) & 1 ? fz_u64(in) : fz_u16(in);
	for (unsigned i = 0; i < nfrag; i++) {
		uint32_t len = (uint32_t)(fz_u16(in) % (f->max_payload + 1));
		if (i == 0 && len < 8)
			len = 8;
		uint32_t flags = i + 1 < nfrag ? MPROC__RING_REC_MORE : 0;
		uint64_t head = atomic_load(&sh->head);
		uint64_t off = head & (f->cap - 1);
		uint64_t rec = mproc__ring_spsc_rec_size(len);
		if (off + rec > f->cap) {
			/* A pad to the end of the buffer, as I4 wants. */
			uint64_t pad = f->cap - off;
			put_record(f, k, (uint32_t)(pad - MPROC__RING_REC_HDR),
				   MPROC__RING_REC_PAD, NULL, pad);
			atomic_fetch_sub(&sh->msgs_in, 1);
			head += pad;
		}
		if (head + rec - atomic_load(&sh->tail) > f->cap)
			return;
		put_record(f, k, len, flags, i == 0 ? &total : NULL, rec);
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
	/* And maybe the total of a first fragment. */
	if ((h[1] & MPROC__RING_REC_MORE) && room >= MPROC__RING_REC_HDR + 8) {
		uint64_t total = fz_word(in, 0, h[0]);
		memcpy(ring_buf(f, k) + off + MPROC__RING_REC_HDR, &total, 8);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz_in in = { data, size };
	struct fuzz_pipe f;
	setup(&f, &in);
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
