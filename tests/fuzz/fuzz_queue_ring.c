/*
 * fuzz_queue_ring: a real queue (SPSC or MPMC, small capacity, indices
 * started at 0, near 2^32, near 2^64 or anywhere) whose shared state a
 * hostile peer rewrites between the calls of a bounded script of
 * non-blocking operations.  The input is the configuration byte, then a
 * list of commands: a queue call (put/get/peek/release/next_size/
 * get_many/put_many/reserve/commit/qsize/full/close/task_done/join, all
 * with timeout 0) or a write by the peer (an index, a counter, the close
 * flag, a wait word, raw ring bytes, a crafted record or slot).
 *
 * Every call must return a documented error or a result within the
 * queue's limits, every pointer it hands out must lie inside the ring, and
 * no access may touch the poisoned bytes of the library's mapping (see
 * fuzz_common.h).  libFuzzer's -timeout catches a call that loops.
 */
#include <errno.h>
#include <stdatomic.h>

#include "fuzz_common.h"
#include "mproc/queue.h"
#include "mproc/shm.h"
#include "ring/ring.h"

/* The queue segment's geometry words and control block, as queue.c lays
 * them out (the harness is the hostile peer: it has to know the format).
 * setup() checks them against the segment it made, so a change of format
 * shows up as a loud failure here rather than as fuzzing the wrong
 * bytes. */
enum { GEOM_RING, GEOM_SIZE, GEOM_MAX_MSG, GEOM_STRIDE, GEOM_FLAGS, GEOM_BUF_OFF };
enum { RING_SPSC = 1, RING_MPMC = 2 };
#define CTL_SIZE 128u   /* struct queue_ctl: two cache lines */
#define CTL_UNFINISHED 0u
#define CTL_DISCARDED 8u /* uint32: set by an immediate shutdown */
#define CTL_ALL_DONE 64u

#define MAX_COMMANDS 64

struct fuzz_queue {
	mproc_queue *q;
	bool spsc, joinable;
	uint64_t max_msg;
	uint64_t size;   /* SPSC: ring bytes; MPMC: slots */
	uint64_t stride; /* MPMC */
	unsigned char *lib;  /* the library's mapping (poisoned in places) */
	unsigned char *view; /* the peer's mapping */
	size_t map_len;
	size_t data, ring_sh, buf; /* offsets from the start of the segment */
	/* What the harness knows of the handle's zero-copy state. */
	bool peek_open, reserved;
	uint64_t res_len;
};

static struct mproc__ring_spsc_shared *spsc_sh(struct fuzz_queue *f)
{
	return (struct mproc__ring_spsc_shared *)(f->view + f->ring_sh);
}

static struct mproc__ring_mpmc_shared *mpmc_sh(struct fuzz_queue *f)
{
	return (struct mproc__ring_mpmc_shared *)(f->view + f->ring_sh);
}

static struct mproc__ring_mpmc_slot *view_slot(struct fuzz_queue *f,
					       uint64_t pos)
{
	return (struct mproc__ring_mpmc_slot *)(f->view + f->buf +
					   (pos & (f->size - 1)) * f->stride);
}

static void poison(struct fuzz_queue *f)
{
	fz_poison(f->lib, 0, MPROC_SHM_HEADER_SIZE);
	fz_poison(f->lib, f->data + CTL_DISCARDED + 4,
		  CTL_ALL_DONE - CTL_DISCARDED - 4);
	fz_poison_event(f->lib, f->data + CTL_ALL_DONE);
	size_t s = f->ring_sh;
	if (f->spsc) {
		fz_poison_spsc_shared(f->lib, s);
		fz_poison(f->lib, f->buf + f->size,
			  f->map_len - f->buf - f->size);
	} else {
		fz_poison_mpmc(f->lib, s, f->buf, f->size, f->stride,
			       f->max_msg, f->map_len);
	}
}

static const size_t spsc_caps[4] = { 128, 256, 512, 4096 };
/* The smallest holds two slots of the largest message (32 + 40 bytes,
 * rounded to 80). */
static const size_t mpmc_caps[4] = { 160, 256, 1024, 4096 };
static const size_t mpmc_max[4] = { 0, 1, 13, 40 };

static uint64_t start_index(struct fz_in *in, unsigned sel)
{
	switch (sel) {
	case 0:
		return 0;
	case 1:
		return (UINT64_C(1) << 32) - 24;
	case 2:
		return UINT64_MAX - 39;
	default:
		return fz_u64(in);
	}
}

/* Create the queue the configuration byte describes (every combination
 * is a valid queue) and set up the peer's view and the poisoning. */
static void setup(struct fuzz_queue *f, struct fz_in *in)
{
	memset(f, 0, sizeof(*f));
	uint8_t cfg = fz_u8(in);
	struct mproc_queue_attr a;
	mproc_queue_attr_init(&a);
	f->spsc = cfg & 1;
	f->joinable = cfg & 0x80;
	unsigned ci = (cfg >> 1) & 3, mi = (cfg >> 3) & 3;
	if (f->spsc) {
		a.flags = MPROC_QUEUE_SPSC;
		a.capacity = spsc_caps[ci];
		/* 0 = the ring's own limit, cap/2 - 16. */
		size_t max[4] = { 0, 8, 24, a.capacity / 4 };
		a.max_msg = max[mi];
	} else {
		a.capacity = mpmc_caps[ci];
		a.max_msg = mpmc_max[mi];
	}
	if (f->joinable)
		a.flags |= MPROC_QUEUE_JOINABLE;
	a.initial_index = start_index(in, (cfg >> 5) & 3);
	int rc = mproc_queue_create(&a, &f->q);
	FZ_CHECK(rc == 0, "create: %s", mproc_strerror(rc));

	fz_queue_maps(f->q, &f->lib, &f->view, &f->map_len);

	/* Check the layout assumptions against what was made. */
	const struct mproc_shm_header *h = (const void *)f->view;
	f->max_msg = (uint64_t)mproc_queue_max_msg(f->q);
	f->data = (size_t)h->data_offset;
	f->buf = f->data + (size_t)h->geom[GEOM_BUF_OFF];
	f->size = h->geom[GEOM_SIZE];
	f->stride = h->geom[GEOM_STRIDE];
	size_t sh_size = f->spsc ? sizeof(struct mproc__ring_spsc_shared)
				 : sizeof(struct mproc__ring_mpmc_shared);
	f->ring_sh = f->buf - sh_size;
	FZ_CHECK(h->magic == MPROC_SHM_MAGIC && h->kind == MPROC_SHM_KIND_QUEUE &&
			 h->geom[GEOM_RING] == (f->spsc ? RING_SPSC : RING_MPMC) &&
			 h->geom[GEOM_MAX_MSG] == f->max_msg &&
			 f->ring_sh == f->data + CTL_SIZE &&
			 (f->spsc ? f->stride == 0
				  : f->stride ==
					    mproc__ring_mpmc_stride(f->max_msg)) &&
			 f->buf + (f->spsc ? f->size : f->size * f->stride) <=
				 f->map_len,
		 "queue layout differs from what the harness assumes");
	poison(f);
}

static void teardown(struct fuzz_queue *f)
{
	fz_unpoison(f->lib, f->map_len);
	munmap(f->view, f->map_len);
	mproc_queue_free(f->q);
}

/* ------------------------------------------------------------------ */
/* Checks of what the library hands out                                */

/* A message pointer (peek) or reserved room (reserve) of @len bytes must
 * lie inside the ring: within the byte ring after a record header, or at
 * the payload of one slot. */
static void check_in_ring(struct fuzz_queue *f, const void *ptr, uint64_t len)
{
	const unsigned char *p = ptr, *ring = f->lib + f->buf;
	FZ_CHECK(p >= ring, "pointer %p before the ring %p", ptr, (void *)ring);
	uint64_t off = (uint64_t)(p - ring);
	if (f->spsc) {
		FZ_CHECK(off >= MPROC__RING_REC_HDR && off <= f->size &&
				 len <= f->size - off,
			 "record [%llu, +%llu) outside a ring of %llu",
			 (unsigned long long)off, (unsigned long long)len,
			 (unsigned long long)f->size);
	} else {
		uint64_t slot = (off - MPROC__RING_MPMC_SLOT_HDR) / f->stride;
		FZ_CHECK(off >= MPROC__RING_MPMC_SLOT_HDR &&
				 (off - MPROC__RING_MPMC_SLOT_HDR) % f->stride == 0 &&
				 slot < f->size && len <= f->max_msg,
			 "slot payload at %llu (+%llu) is not a slot's",
			 (unsigned long long)off, (unsigned long long)len);
	}
}

/* A caller's buffer of exactly @cap bytes on the heap, so that ASan sees
 * a copy that overruns it.  NULL for 0 half of the time (allowed). */
static unsigned char *user_buf(size_t cap, bool null_ok)
{
	if (cap == 0 && null_ok)
		return NULL;
	return malloc(cap ? cap : 1);
}

static size_t pick_cap(struct fuzz_queue *f, struct fz_in *in)
{
	switch (fz_u8(in) & 3) {
	case 0:
		return (size_t)f->max_msg;
	case 1:
		return fz_u8(in);
	case 2:
		return 0;
	default:
		return (size_t)f->max_msg + 1;
	}
}

static size_t pick_len(struct fuzz_queue *f, struct fz_in *in)
{
	return (size_t)(fz_u16(in) % (f->max_msg + 2));
}

/* ------------------------------------------------------------------ */
/* Queue calls                                                         */

static void do_put(struct fuzz_queue *f, struct fz_in *in)
{
	size_t len = pick_len(f, in);
	unsigned char *b = user_buf(len, true);
	if (b)
		memset(b, 0x5a, len);
	ssize_t rc = mproc_queue_put_nowait(f->q, b, len);
	free(b);
	FZ_RESULT(rc, len, EMSGSIZE, EAGAIN, EPIPE, EBUSY, MPROC_ECORRUPT);
	FZ_CHECK(rc < 0 || (size_t)rc == len, "put of %zu returned %zd", len, rc);
	FZ_CHECK((rc == -EMSGSIZE) == (len > f->max_msg), "put(%zu): %zd", len, rc);
	FZ_CHECK(rc != -EBUSY || f->reserved, "EBUSY without a reservation");
}

static void do_get(struct fuzz_queue *f, struct fz_in *in)
{
	size_t cap = pick_cap(f, in);
	unsigned char *b = user_buf(cap, fz_u8(in) & 1);
	ssize_t rc = mproc_queue_get_nowait(f->q, b, cap);
	if (rc > 0)
		fz_touch(b, (size_t)rc);
	free(b);
	FZ_RESULT(rc, cap < f->max_msg ? cap : f->max_msg, EMSGSIZE, EAGAIN,
		  MPROC_EEOF, EBUSY, MPROC_ECORRUPT);
	FZ_CHECK(rc != -EBUSY || f->peek_open, "EBUSY without a peek");
}

static void do_peek(struct fuzz_queue *f, struct fz_in *in)
{
	(void)in;
	const void *p = NULL;
	ssize_t rc = mproc_queue_peek(f->q, &p, MPROC_NOWAIT);
	FZ_RESULT(rc, f->max_msg, EAGAIN, MPROC_EEOF, EBUSY, MPROC_ECORRUPT);
	FZ_CHECK((rc == -EBUSY) == f->peek_open, "peek: %zd with peek %d", rc,
		 f->peek_open);
	if (rc >= 0) {
		check_in_ring(f, p, (uint64_t)rc);
		fz_touch(p, (size_t)rc);
		f->peek_open = true;
	}
}

static void do_release(struct fuzz_queue *f)
{
	int rc = mproc_queue_release(f->q);
	FZ_CHECK(rc == (f->peek_open ? 0 : -EINVAL), "release: %d with peek %d",
		 rc, f->peek_open);
	f->peek_open = false;
}

static void do_next_size(struct fuzz_queue *f)
{
	ssize_t rc = mproc_queue_next_size(f->q, MPROC_NOWAIT);
	FZ_RESULT(rc, f->max_msg, EAGAIN, MPROC_EEOF, EBUSY, MPROC_ECORRUPT);
}

static void do_state(struct fuzz_queue *f)
{
	ssize_t n = mproc_queue_qsize(f->q);
	FZ_CHECK(n >= 0, "qsize %zd", n);
	int e = mproc_queue_empty(f->q);
	FZ_CHECK(e == 0 || e == 1, "empty %d", e);
	int full = mproc_queue_full(f->q);
	FZ_CHECK(full == 0 || full == 1, "full %d", full);
	FZ_CHECK(mproc_queue_max_msg(f->q) == (ssize_t)f->max_msg, "max_msg");
}

#define MANY 4

static void do_get_many(struct fuzz_queue *f, struct fz_in *in)
{
	size_t n = 1 + fz_u8(in) % MANY, lens[MANY];
	struct iovec v[MANY];
	for (size_t i = 0; i < n; i++) {
		v[i].iov_len = pick_cap(f, in);
		v[i].iov_base = user_buf(v[i].iov_len, false);
		lens[i] = SIZE_MAX;
	}
	ssize_t rc = mproc_queue_get_many(f->q, v, lens, n, MPROC_NOWAIT);
	FZ_RESULT(rc, n, EMSGSIZE, EAGAIN, MPROC_EEOF, EBUSY, MPROC_ECORRUPT);
	FZ_CHECK(rc != 0, "get_many of %zu returned 0", n);
	for (ssize_t i = 0; i < rc; i++) {
		FZ_CHECK(lens[i] <= v[i].iov_len && lens[i] <= f->max_msg,
			 "get_many: message %zd of %zu bytes, buffer %zu", i,
			 lens[i], v[i].iov_len);
		fz_touch(v[i].iov_base, lens[i]);
	}
	for (size_t i = 0; i < n; i++)
		free(v[i].iov_base);
}

static void do_put_many(struct fuzz_queue *f, struct fz_in *in)
{
	size_t n = 1 + fz_u8(in) % MANY;
	struct iovec v[MANY];
	for (size_t i = 0; i < n; i++) {
		v[i].iov_len = pick_len(f, in);
		v[i].iov_base = user_buf(v[i].iov_len, true);
		if (v[i].iov_base)
			memset(v[i].iov_base, 0x33, v[i].iov_len);
	}
	ssize_t rc = mproc_queue_put_many(f->q, v, n, MPROC_NOWAIT);
	FZ_RESULT(rc, n, EMSGSIZE, EAGAIN, EPIPE, EBUSY, MPROC_ECORRUPT);
	FZ_CHECK(rc != 0, "put_many of %zu returned 0", n);
	for (size_t i = 0; i < n; i++)
		free(v[i].iov_base);
}

static void do_reserve(struct fuzz_queue *f, struct fz_in *in)
{
	size_t len = pick_len(f, in);
	void *p = NULL;
	int rc = mproc_queue_reserve(f->q, len, &p, MPROC_NOWAIT);
	FZ_RESULT(rc, 0, EMSGSIZE, EAGAIN, EPIPE, EBUSY, MPROC_ECORRUPT);
	if (rc == 0) {
		FZ_CHECK(!f->reserved, "second reservation granted");
		check_in_ring(f, p, len);
		memset(p, 0xc3, len);
		f->reserved = true;
		f->res_len = len;
	}
}

static void do_commit(struct fuzz_queue *f, struct fz_in *in)
{
	size_t len = fz_u8(in) & 1 ? (size_t)f->res_len : pick_len(f, in);
	int rc = mproc_queue_commit(f->q, len);
	bool ok = f->reserved && len <= f->res_len;
	FZ_CHECK(rc == (ok ? 0 : -EINVAL), "commit(%zu): %d, reserved %d of %llu",
		 len, rc, f->reserved, (unsigned long long)f->res_len);
	if (ok)
		f->reserved = false;
}

static void do_joinable(struct fuzz_queue *f, struct fz_in *in)
{
	int rc;
	if (fz_u8(in) & 1) {
		rc = mproc_queue_task_done(f->q);
		FZ_CHECK(f->joinable ? rc == 0 || rc == -EOVERFLOW : rc == -EINVAL,
			 "task_done: %d", rc);
	} else {
		rc = mproc_queue_join(f->q, MPROC_NOWAIT);
		FZ_CHECK(f->joinable ? rc == 0 || rc == -EAGAIN : rc == -EINVAL,
			 "join(0): %d", rc);
	}
}

/* ------------------------------------------------------------------ */
/* The hostile peer                                                    */

/* Rewrite one shared word: an index, a counter, the close flag, a wait
 * word or the JoinableQueue counter. */
static void peer_word(struct fuzz_queue *f, struct fz_in *in)
{
	unsigned sel = fz_u8(in) % 8;
	_Atomic uint32_t *w32 = NULL;
	_Atomic uint64_t *w64 = NULL, *ref = NULL;
	_Atomic uint64_t *unfinished =
		(_Atomic uint64_t *)(f->view + f->data + CTL_UNFINISHED);
	if (f->spsc) {
		struct mproc__ring_spsc_shared *sh = spsc_sh(f);
		switch (sel) {
		case 0: w64 = &sh->head; ref = &sh->tail; break;
		case 1: w64 = &sh->tail; ref = &sh->head; break;
		case 2: w64 = &sh->msgs_in; ref = &sh->msgs_out; break;
		case 3: w64 = &sh->msgs_out; ref = &sh->msgs_in; break;
		case 4: w32 = &sh->closed; break;
		case 5: w64 = &sh->data_ready.waiters; ref = w64; break;
		case 6: w64 = &sh->space_ready.waiters; ref = w64; break;
		default: w64 = unfinished; ref = unfinished; break;
		}
	} else {
		struct mproc__ring_mpmc_shared *sh = mpmc_sh(f);
		switch (sel) {
		case 0: case 1: w64 = &sh->enq_pos; ref = &sh->deq_pos; break;
		case 2: case 3: w64 = &sh->deq_pos; ref = &sh->enq_pos; break;
		case 4: w32 = &sh->closed; break;
		case 5: w64 = &sh->data_ready.waiters; ref = w64; break;
		case 6: w64 = &sh->space_ready.waiters; ref = w64; break;
		default: w64 = unfinished; ref = unfinished; break;
		}
	}
	if (w64) {
		uint64_t v = fz_word(in, atomic_load(w64), atomic_load(ref));
		atomic_store(w64, v);
	} else {
		atomic_store(w32, fz_u8(in) & 1 ? fz_u32(in) : fz_u8(in) & 3);
	}
}

/* Overwrite up to 16 raw bytes of the ring (SPSC bytes, or a slot's
 * header and payload). */
static void peer_bytes(struct fuzz_queue *f, struct fz_in *in)
{
	unsigned char tmp[16];
	size_t n = fz_u8(in) % 17;
	fz_bytes(in, tmp, n);
	unsigned char *dst;
	size_t room;
	if (f->spsc) {
		size_t off = fz_u16(in) % f->size;
		dst = f->view + f->buf + off;
		room = f->size - off;
	} else {
		size_t used = MPROC__RING_MPMC_SLOT_HDR + (size_t)f->max_msg;
		size_t off = fz_u16(in) % used;
		dst = (unsigned char *)view_slot(f, fz_u8(in)) + off;
		room = used - off;
	}
	memcpy(dst, tmp, n < room ? n : room);
}

/* Write a record header at byte position @pos of the SPSC ring (the
 * harness, unlike the library, keeps it inside the ring), with the tag
 * that publishes it (spsc.h I6), as a peer that knows the ring's secret
 * would; the consumer must survive whatever the header then says. */
static void spsc_put_header(struct fuzz_queue *f, uint64_t pos, uint32_t len,
			    uint32_t flags)
{
	uint64_t off = pos & (f->size - 1);
	uint32_t h[2] = { len, flags };
	size_t n = f->size - off < sizeof(h) ? (size_t)(f->size - off) : sizeof(h);
	memcpy(f->view + f->buf + off, h, n);
	if (f->size - off >= MPROC__RING_REC_HDR) {
		uint64_t tag = pos ^ spsc_sh(f)->secret;
		memcpy(f->view + f->buf + off + 8, &tag, sizeof(tag));
	}
}

static uint32_t pick_rec_len(struct fuzz_queue *f, struct fz_in *in)
{
	switch (fz_u8(in) & 3) {
	case 0:
		return (uint32_t)(fz_u16(in) % (f->max_msg + 2));
	case 1:
		return (uint32_t)f->max_msg + (fz_u8(in) & 7);
	case 2:
		return fz_u32(in);
	default:
		return fz_u8(in);
	}
}

/* Produce a record (or slot) as a peer would, possibly a broken one: the
 * header at the producer's position, payload bytes, and a head/enq_pos
 * that moves by the record's size or by a fuzzed amount. */
static void peer_produce(struct fuzz_queue *f, struct fz_in *in)
{
	uint8_t how = fz_u8(in);
	uint32_t len = pick_rec_len(f, in);
	if (f->spsc) {
		struct mproc__ring_spsc_shared *sh = spsc_sh(f);
		uint64_t head = atomic_load(&sh->head);
		uint64_t off = head & (f->size - 1);
		uint32_t flags = how & 4 ? fz_u32(in) : how & 8 ? MPROC__RING_REC_PAD : 0;
		if (flags == MPROC__RING_REC_PAD && (how & 16))
			len = (uint32_t)(f->size - off - MPROC__RING_REC_HDR);
		spsc_put_header(f, head, len, flags);
		uint64_t adv;
		switch (how & 3) {
		case 0:
			adv = flags == MPROC__RING_REC_PAD
				      ? f->size - off
				      : mproc__ring_spsc_rec_size(len);
			break;
		case 1:
			adv = (uint64_t)fz_u8(in) * MPROC__RING_REC_ALIGN;
			break;
		case 2:
			adv = fz_u8(in);
			break;
		default:
			adv = 0;
			break;
		}
		atomic_store(&sh->head, head + adv);
		if (how & 32)
			atomic_fetch_add(&sh->msgs_in, 1);
	} else {
		struct mproc__ring_mpmc_shared *sh = mpmc_sh(f);
		uint64_t pos = atomic_load(&sh->enq_pos);
		struct mproc__ring_mpmc_slot *s = view_slot(f, pos);
		s->len = len;
		uint64_t seq = pos + 1;
		if (how & 4)
			seq += (uint64_t)(int64_t)(int8_t)fz_u8(in);
		atomic_store(&s->seq, seq);
		if (!(how & 8))
			atomic_store(&sh->enq_pos, pos + 1);
	}
}

/* Rewrite the header of the next record to be consumed: the record at the
 * tail, or the slot at deq_pos. */
static void peer_front(struct fuzz_queue *f, struct fz_in *in)
{
	uint32_t len = pick_rec_len(f, in);
	if (f->spsc) {
		uint32_t flags = fz_u8(in) & 1 ? fz_u32(in) : fz_u8(in) & 3;
		spsc_put_header(f, atomic_load(&spsc_sh(f)->tail), len, flags);
	} else {
		struct mproc__ring_mpmc_slot *s =
			view_slot(f, atomic_load(&mpmc_sh(f)->deq_pos));
		s->len = len;
		if (fz_u8(in) & 1)
			atomic_store(&s->seq, fz_word(in, atomic_load(&s->seq),
						      atomic_load(&mpmc_sh(f)->deq_pos)));
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz_in in = { data, size };
	struct fuzz_queue f;
	setup(&f, &in);
	for (int i = 0; i < MAX_COMMANDS && fz_left(&in); i++) {
		switch (fz_u8(&in) % 18) {
		case 0: case 1: do_put(&f, &in); break;
		case 2: case 3: do_get(&f, &in); break;
		case 4: do_peek(&f, &in); break;
		case 5: do_release(&f); break;
		case 6: do_next_size(&f); break;
		case 7: do_state(&f); break;
		case 8: do_get_many(&f, &in); break;
		case 9: do_put_many(&f, &in); break;
		case 10: do_reserve(&f, &in); break;
		case 11: do_commit(&f, &in); break;
		case 12:
			/* Rarely: closing ends most of the interesting paths. */
			if (fz_u8(&in) == 0xc1)
				FZ_CHECK(mproc_queue_close(f.q) == 0, "close");
			break;
		case 13: do_joinable(&f, &in); break;
		case 14: peer_word(&f, &in); break;
		case 15: peer_bytes(&f, &in); break;
		case 16: peer_produce(&f, &in); break;
		default: peer_front(&f, &in); break;
		}
	}
	/* A reservation left open is fine to drop: the handle goes away. */
	teardown(&f);
	return 0;
}
