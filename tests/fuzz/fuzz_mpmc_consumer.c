/*
 * fuzz_mpmc_consumer: the consumer path of an MPMC queue, dead-claimer
 * recovery included (src/ring/mpmc.h, R1-R3), against hostile slot
 * states.  The input is a configuration byte (slot count, message size,
 * start index), then commands: the hostile peer claims positions as a
 * producer or a consumer (naming a claimer that is alive, dead, recycled
 * or unknown), commits slots with any length (the skip mark included),
 * rewrites a slot's seq, claimer or len or a position; the library gets,
 * peeks and releases, takes batches, asks next_size and qsize, puts, and
 * closes.  Recovery is made immediate (mproc__ring_mpmc_recover_ns = 0)
 * so that every blocked call runs it.  Configuration bit 6 makes the
 * queue watch its producers (MPROC_QUEUE_WATCH_PRODUCERS): the peer then
 * also writes the producer table (ever, overflow, entries naming the same
 * live, dead, recycled or unknown claimers), and a get that waits 1 ms
 * runs the consumer's liveness hook over it.
 *
 * Every call must return a documented result, every pointer it hands out
 * must lie in a slot's payload, no access may touch the poisoned bytes of
 * the library's mapping, and nothing may loop (libFuzzer's -timeout).
 */
#include <errno.h>
#include <stdatomic.h>
#include <unistd.h>

#include "fuzz_common.h"
#include "common/os.h"
#include "mproc/queue.h"
#include "mproc/shm.h"
#include "queue/layout.h"
#include "ring/ring.h"

#define CTL_SIZE 128u /* struct queue_ctl, as queue.c lays it out */
#define MAX_COMMANDS 64

struct fz {
	mproc_queue *q;
	uint64_t max_msg, nslots, stride;
	unsigned char *lib, *view;
	size_t map_len, ring_sh, buf;
	bool peek_open;
	uint64_t idents[5]; /* claimers to name: see pick_claimer */
	struct queue_producers *table; /* the peer's view of it, or NULL */
};

static struct mproc__ring_mpmc_shared *sh(struct fz *f)
{
	return (struct mproc__ring_mpmc_shared *)(f->view + f->ring_sh);
}

static struct mproc__ring_mpmc_slot *slot(struct fz *f, uint64_t pos)
{
	return (struct mproc__ring_mpmc_slot *)(f->view + f->buf +
						(pos & (f->nslots - 1)) *
							f->stride);
}

static void setup(struct fz *f, struct fz_in *in)
{
	static const size_t caps[4] = { 2, 4, 8, 16 };
	static const size_t maxes[4] = { 0, 1, 16, 40 };
	memset(f, 0, sizeof(*f));
	mproc__ring_mpmc_recover_ns = 0;
	uint8_t cfg = fz_u8(in);
	struct mproc_queue_attr a;
	mproc_queue_attr_init(&a);
	a.max_msg = maxes[(cfg >> 2) & 3];
	if (cfg & 0x40)
		a.flags |= MPROC_QUEUE_WATCH_PRODUCERS;
	a.capacity = caps[cfg & 3] * mproc__ring_mpmc_stride(a.max_msg);
	switch ((cfg >> 4) & 3) {
	case 0: a.initial_index = 0; break;
	case 1: a.initial_index = (UINT64_C(1) << 32) - 5; break;
	case 2: a.initial_index = UINT64_MAX - 6; break;
	default: a.initial_index = fz_u64(in); break;
	}
	int rc = mproc_queue_create(&a, &f->q);
	FZ_CHECK(rc == 0, "create: %s", mproc_strerror(rc));
	fz_queue_maps(f->q, &f->lib, &f->view, &f->map_len);
	const struct mproc_shm_header *h = (const void *)f->view;
	size_t data = (size_t)h->data_offset;
	f->buf = data + (size_t)h->geom[GEOM_BUF_OFF];
	f->nslots = h->geom[GEOM_SIZE];
	f->stride = h->geom[GEOM_STRIDE];
	f->max_msg = h->geom[GEOM_MAX_MSG];
	f->ring_sh = f->buf - sizeof(struct mproc__ring_mpmc_shared);
	FZ_CHECK(h->geom[GEOM_RING] == 2 && f->ring_sh == data + CTL_SIZE &&
			 f->stride == mproc__ring_mpmc_stride(f->max_msg) &&
			 f->buf + f->nslots * f->stride <= f->map_len,
		 "queue layout differs from what the harness assumes");
	/* Poison what the library must never touch: the header, the gaps
	 * of the shared indices, each slot's tail past its payload, and the
	 * rest of the mapping. */
	fz_poison(f->lib, 0, MPROC_SHM_HEADER_SIZE);
	fz_poison_mpmc(f->lib, f->ring_sh, f->buf, f->nslots, f->stride,
		       f->max_msg, f->map_len);
	if (cfg & 0x40) {
		/* The producer table follows the slots (queue/layout.h). */
		size_t off = data + (size_t)h->geom[GEOM_PRODUCERS];
		FZ_CHECK(h->geom[GEOM_PRODUCERS] ==
					 producers_off(MPROC__RING_MPMC,
						       f->nslots * f->stride) &&
				 off + sizeof(struct queue_producers) <=
					 f->map_len,
			 "producer table not where the harness assumes");
		fz_unpoison(f->lib + off, sizeof(struct queue_producers));
		f->table = (struct queue_producers *)(f->view + off);
	}
	/* Claimers: unknown, this process (alive), init (alive), init
	 * with another start time (recycled pid: dead), a pid that cannot
	 * exist (dead). */
	f->idents[0] = 0;
	f->idents[1] = mproc__proc_ident(getpid());
	f->idents[2] = mproc__proc_ident(1);
	f->idents[3] = f->idents[2] + (UINT64_C(1) << 22);
	f->idents[4] = (UINT64_C(1) << 22) - 1;
}

static uint64_t pick_claimer(struct fz *f, struct fz_in *in)
{
	uint8_t k = fz_u8(in);
	return k < 250 ? f->idents[k % 5] : fz_u64(in);
}

static uint32_t pick_len(struct fz *f, struct fz_in *in)
{
	switch (fz_u8(in) & 3) {
	case 0: return (uint32_t)(fz_u8(in) % (f->max_msg + 1));
	case 1: return MPROC__RING_MPMC_SKIP;
	case 2: return fz_u32(in);
	default: return (uint32_t)f->max_msg + (fz_u8(in) & 3);
	}
}

static void check_in_slot(struct fz *f, const void *ptr, uint64_t len)
{
	const unsigned char *p = ptr, *ring = f->lib + f->buf;
	FZ_CHECK(p >= ring + MPROC__RING_MPMC_SLOT_HDR, "pointer before slots");
	uint64_t off = (uint64_t)(p - ring) - MPROC__RING_MPMC_SLOT_HDR;
	FZ_CHECK(off % f->stride == 0 && off / f->stride < f->nslots &&
			 len <= f->max_msg,
		 "payload at %llu (+%llu) is not a slot's",
		 (unsigned long long)off, (unsigned long long)len);
	fz_touch(ptr, len);
}

/* The peer claims the next producer position (and maybe commits it). */
static void peer_produce(struct fz *f, struct fz_in *in)
{
	uint8_t how = fz_u8(in);
	uint64_t pos = atomic_load(&sh(f)->enq_pos);
	struct mproc__ring_mpmc_slot *s = slot(f, pos);
	atomic_store(&s->claimer, pick_claimer(f, in));
	atomic_store(&sh(f)->enq_pos, pos + 1);
	if (how & 1) { /* committed; else it died after claiming (R1) */
		atomic_store(&s->len, pick_len(f, in));
		atomic_store(&s->seq, pos + 1);
	}
}

/* The peer claims the next consumer position (and maybe releases it). */
static void peer_consume(struct fz *f, struct fz_in *in)
{
	uint8_t how = fz_u8(in);
	uint64_t pos = atomic_load(&sh(f)->deq_pos);
	struct mproc__ring_mpmc_slot *s = slot(f, pos);
	atomic_store(&s->claimer, pick_claimer(f, in));
	atomic_store(&sh(f)->deq_pos, pos + 1);
	if (how & 1) /* released; else it died holding the message (R2) */
		atomic_store(&s->seq, pos + f->nslots);
}

static void peer_write(struct fz *f, struct fz_in *in)
{
	uint8_t what = fz_u8(in);
	struct mproc__ring_mpmc_slot *s = slot(f, fz_u8(in));
	uint64_t d = atomic_load(&sh(f)->deq_pos);
	switch (what >= 0xf0 ? 6 : what % 6) {
	case 0: atomic_store(&s->seq, fz_word(in, atomic_load(&s->seq), d)); break;
	case 1: atomic_store(&s->claimer, pick_claimer(f, in)); break;
	case 2: atomic_store(&s->len, pick_len(f, in)); break;
	case 3: atomic_store(&sh(f)->enq_pos,
			     fz_word(in, atomic_load(&sh(f)->enq_pos), d)); break;
	case 4: atomic_store(&sh(f)->deq_pos,
			     fz_word(in, d, atomic_load(&sh(f)->enq_pos))); break;
	case 6: /* the producer table, when the queue has one */
		if (f->table) {
			uint8_t k = fz_u8(in);
			if (k == 0xfe)
				atomic_store(&f->table->ever, fz_u8(in));
			else if (k == 0xff)
				atomic_store(&f->table->overflow, fz_u8(in));
			else
				atomic_store(&f->table->ident[k % QUEUE_PRODUCERS],
					     pick_claimer(f, in));
		}
		break;
	default: /* R3: a put-back claimed enq_pos for a slot and died */
	{
		uint64_t e = atomic_load(&sh(f)->enq_pos);
		struct mproc__ring_mpmc_slot *t = slot(f, e);
		atomic_store(&t->seq, e + 1 - f->nslots);
		atomic_store(&t->claimer, pick_claimer(f, in));
		atomic_store(&sh(f)->enq_pos, e + 1);
		break;
	}
	}
}

static void do_get(struct fz *f, struct fz_in *in)
{
	size_t cap = fz_u8(in) & 1 ? (size_t)f->max_msg : fz_u8(in);
	unsigned char *b = malloc(cap ? cap : 1);
	ssize_t rc = mproc_queue_get_nowait(f->q, b, cap);
	if (rc > 0)
		fz_touch(b, (size_t)rc);
	free(b);
	FZ_RESULT(rc, cap < f->max_msg ? cap : f->max_msg, EMSGSIZE, EAGAIN,
		  MPROC_EEOF, MPROC_ECORRUPT);
}

static void do_get_many(struct fz *f, struct fz_in *in)
{
	size_t n = 1 + fz_u8(in) % 4, lens[4];
	struct iovec iov[4];
	for (size_t i = 0; i < n; i++) {
		iov[i].iov_len = (size_t)f->max_msg;
		iov[i].iov_base = malloc(iov[i].iov_len ? iov[i].iov_len : 1);
	}
	ssize_t rc = mproc_queue_get_many(f->q, iov, lens, n, 0);
	FZ_RESULT(rc, n, EMSGSIZE, EAGAIN, MPROC_EEOF, MPROC_ECORRUPT);
	for (ssize_t i = 0; i < rc; i++) {
		FZ_CHECK(lens[i] <= f->max_msg, "get_many length %zu", lens[i]);
		fz_touch(iov[i].iov_base, lens[i]);
	}
	for (size_t i = 0; i < n; i++)
		free(iov[i].iov_base);
}

static void do_peek(struct fz *f)
{
	const void *p;
	ssize_t rc = mproc_queue_peek(f->q, &p, 0);
	FZ_RESULT(rc, f->max_msg, EAGAIN, MPROC_EEOF, EBUSY, MPROC_ECORRUPT);
	FZ_CHECK(rc != -EBUSY || f->peek_open, "EBUSY without a peek");
	if (rc >= 0) {
		check_in_slot(f, p, (uint64_t)rc);
		f->peek_open = true;
	}
}

static void do_release(struct fz *f)
{
	int rc = mproc_queue_release(f->q);
	FZ_CHECK(rc == (f->peek_open ? 0 : -EINVAL), "release: %d", rc);
	f->peek_open = false;
}

static void do_look(struct fz *f)
{
	ssize_t n = mproc_queue_next_size(f->q, 0);
	FZ_RESULT(n, f->max_msg, EAGAIN, MPROC_EEOF, MPROC_ECORRUPT);
	ssize_t qs = mproc_queue_qsize(f->q);
	FZ_CHECK(qs >= 0 && (uint64_t)qs <= f->nslots, "qsize %zd", qs);
	int full = mproc_queue_full(f->q);
	FZ_CHECK(full == 0 || full == 1, "full %d", full);
}

/* A get that waits 1 ms: the sleeping path, with its recovery and, on a
 * watching queue, its liveness hook over the (hostile) producer table. */
static void do_get_waiting(struct fz *f)
{
	unsigned char b[64];
	ssize_t rc = mproc_queue_get(f->q, b, sizeof(b), MPROC_MSEC);
	FZ_RESULT(rc, f->max_msg, EAGAIN, ETIMEDOUT, MPROC_EEOF,
		  MPROC_EPEERDIED, MPROC_ECORRUPT);
	FZ_CHECK(rc != -MPROC_EPEERDIED || f->table,
		 "-MPROC_EPEERDIED from a queue that does not watch");
}

static void do_put(struct fz *f, struct fz_in *in)
{
	size_t len = fz_u8(in) % (f->max_msg + 1);
	unsigned char b[64] = {0};
	ssize_t rc = mproc_queue_put_nowait(f->q, b, len);
	FZ_RESULT(rc, len, EAGAIN, EPIPE, MPROC_ECORRUPT);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz_in in = { data, size };
	struct fz f;
	setup(&f, &in);
	for (int i = 0; i < MAX_COMMANDS && fz_left(&in); i++) {
		switch (fz_u8(&in) % 12) {
		case 0: case 1: do_get(&f, &in); break;
		case 2: do_get_many(&f, &in); break;
		case 3: do_peek(&f); break;
		case 4: do_release(&f); break;
		case 5: do_look(&f); break;
		case 6: do_put(&f, &in); break;
		case 7: {
			uint8_t b = fz_u8(&in);
			if (b == 0xc1)
				FZ_CHECK(mproc_queue_close(f.q) == 0, "close");
			else if (b == 0xc2)
				do_get_waiting(&f);
			break;
		}
		case 8: peer_produce(&f, &in); break;
		case 9: peer_consume(&f, &in); break;
		default: peer_write(&f, &in); break;
		}
	}
	fz_unpoison(f.lib, f.map_len);
	munmap(f.view, f.map_len);
	mproc_queue_free(f.q);
	return 0;
}
