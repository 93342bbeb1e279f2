/*
 * SPSC ring: a consumer that has caught up with its producer reads the tag
 * slot of the next position before anything is written there (spsc.h,
 * I6 and I8).  These tests leave in that slot what a stream leaves by
 * chance once in a while -- a payload that ended two bytes into an old
 * tag, the two bytes being the low bytes of the tag due two laps later --
 * and check that the consumer still sees an empty ring.  Without I8 it
 * took the word for a tag and read payload bytes as a header: a false
 * -MPROC_ECORRUPT (seen in queue_stress's sleepers_spsc), or a message
 * nobody sent.
 *
 * The consumer's slip (spsc.h) reads the tag slot after the record it is
 * taking, and head, and may wait on them: the last tests check that it
 * hands out every record as it should and that no head, however it
 * moves, keeps it waiting without bound.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>

#include "mproc/common.h"
#include "ring/ring.h"

#define CAP 256u

/* Whether put_at writes through reserve/commit or through the batch
 * path (write_many), which tags its records itself and must keep I8 as
 * commit does. */
static bool use_batch;

struct ring_pair {
	struct mproc__ring prod, cons;
	void *mem;
	size_t size;
};

static void ring_pair_new_cap(struct ring_pair *rp, uint64_t cap)
{
	struct mproc__ring_geom g;
	cr_assert_eq(mproc__ring_plan(MPROC__RING_SPSC, cap, 0, cap, &g), 0);
	size_t shsz = mproc__ring_shared_size(MPROC__RING_SPSC);
	rp->size = shsz + mproc__ring_buf_size(MPROC__RING_SPSC, &g);
	unsigned char *m = mmap(NULL, rp->size, PROT_READ | PROT_WRITE,
				MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	cr_assert_neq(m, MAP_FAILED);
	rp->mem = m;
	/* Positions start at 0, so the ones below are buffer offsets plus
	 * whole laps. */
	mproc__ring_init_shared(MPROC__RING_SPSC, m, m + shsz, &g, 0);
	cr_assert_eq(mproc__ring_attach(&rp->prod, MPROC__RING_SPSC, m,
					m + shsz, &g, false), 0);
	cr_assert_eq(mproc__ring_attach(&rp->cons, MPROC__RING_SPSC, m,
					m + shsz, &g, false), 0);
}

static void ring_pair_new(struct ring_pair *rp)
{
	ring_pair_new_cap(rp, CAP);
}

/* Put one record of @len bytes at the producer's next position, which
 * must be @pos; its payload is @bytes, or 0x5a bytes when NULL. */
static void put_at(struct ring_pair *rp, uint64_t pos, const void *bytes,
		   uint64_t len)
{
	if (use_batch) {
		unsigned char tmp[64];
		cr_assert_leq(len, sizeof(tmp));
		if (bytes)
			memcpy(tmp, bytes, len);
		else
			memset(tmp, 0x5a, len);
		struct iovec v = { tmp, len };
		size_t done = 0;
		cr_assert_eq(rp->prod.u.spsc.pend_head, pos);
		int rc = mproc__ring_write_many(&rp->prod, &v, 1, &done, NULL);
		cr_assert_eq(rc, 0, "write_many: %s", mproc_strerror(rc));
		cr_assert_eq(done, 1);
		mproc__ring_publish(&rp->prod);
		return;
	}
	uint64_t tok;
	void *p;
	int rc = mproc__ring_reserve(&rp->prod, len, &tok, &p);
	cr_assert_eq(rc, 0, "reserve: %s", mproc_strerror(rc));
	cr_assert_eq(tok, pos, "record at %llu, not %llu",
		     (unsigned long long)tok, (unsigned long long)pos);
	if (bytes)
		memcpy(p, bytes, len);
	else
		memset(p, 0x5a, len);
	mproc__ring_commit(&rp->prod, tok, len, 0, true);
}

/* Take the next record, which must be at @pos and @len bytes long. */
static void get_at(struct ring_pair *rp, uint64_t pos, uint64_t len)
{
	uint64_t tok, n;
	const void *p;
	uint32_t flags;
	int rc = mproc__ring_peek(&rp->cons, UINT64_MAX, &tok, &p, &n, &flags);
	cr_assert_eq(rc, 0, "peek at %llu: %s", (unsigned long long)pos,
		     mproc_strerror(rc));
	cr_assert_eq(tok, pos);
	cr_assert_eq(n, len);
	mproc__ring_release(&rp->cons, tok, true);
}

static void put_get(struct ring_pair *rp, uint64_t pos, uint64_t len)
{
	put_at(rp, pos, NULL, len);
	get_at(rp, pos, len);
}

/* @hdr: the 8 payload bytes that land on the header of position 64 (the
 * low 4 bytes are read as a length, the high 4 as flags). */
static void stale_slot_at_the_frontier(uint64_t hdr)
{
	struct ring_pair rp;
	ring_pair_new(&rp);
	const uint64_t target = 64 + 2 * CAP; /* the frontier, lap 2 */
	uint64_t secret = rp.prod.u.spsc.secret;

	/* Lap 0: a record at offset 64, whose tag (64 ^ secret) fills the
	 * slot at offset 72. */
	put_get(&rp, 0, 48);
	put_get(&rp, 64, 48);
	put_get(&rp, 128, 48);
	put_get(&rp, 192, 48);

	/* Lap 1: a record at offset 48 with a 10-byte payload, offsets 64 to
	 * 73: its first 8 bytes cover the header of offset 64, its last 2 the
	 * low bytes of the tag slot at 72.  They are the low bytes of the tag
	 * of the target; its high bytes equal the old tag's, which stay
	 * (64 and 64 + 2 * CAP differ below bit 16 only). */
	unsigned char pl[10];
	uint64_t want = target ^ secret;
	memcpy(pl, &hdr, 8);
	pl[8] = (unsigned char)want;
	pl[9] = (unsigned char)(want >> 8);
	put_get(&rp, CAP + 0, 32);
	put_at(&rp, CAP + 48, pl, sizeof(pl));
	get_at(&rp, CAP + 48, sizeof(pl));
	put_get(&rp, CAP + 80, 48);
	put_get(&rp, CAP + 144, 48);
	put_get(&rp, CAP + 208, 32);
	const unsigned char *slot =
		(const unsigned char *)rp.cons.u.spsc.buf + 64 + 8;
	cr_assert_eq(memcmp(slot, &want, 8), 0,
		     "the test's premise: the slot reads as the target's tag");

	/* Lap 2: one record that ends at the target; the consumer takes it
	 * and so has caught up. */
	put_get(&rp, 2 * CAP, 48);

	uint64_t tok, n;
	const void *p;
	uint32_t flags;
	int rc = mproc__ring_peek(&rp.cons, UINT64_MAX, &tok, &p, &n, &flags);
	cr_assert_eq(rc, -EAGAIN,
		     "an empty ring read as %s (len %llu)", mproc_strerror(rc),
		     (unsigned long long)(rc == 0 ? n : 0));
	uint64_t len;
	rc = mproc__ring_next_len(&rp.cons, &len);
	cr_assert_eq(rc, -EAGAIN, "next_len: %s", mproc_strerror(rc));

	/* The producer's next record is delivered as usual. */
	put_get(&rp, target, 24);
	munmap(rp.mem, rp.size);
}

TestSuite(spsc_tags, .timeout = 30);

/* A header no record has: without I8, -MPROC_ECORRUPT. */
Test(spsc_tags, stale_bytes_with_a_bad_header_are_no_record)
{
	stale_slot_at_the_frontier(UINT64_C(0xb6c5a1f3e9d20874));
}

/* A valid header {len 4, flags 0}: without I8, a message never sent. */
Test(spsc_tags, stale_bytes_with_a_valid_header_are_no_record)
{
	stale_slot_at_the_frontier(4);
}

/* The same two through the batch path (put_many). */
Test(spsc_tags, batch_stale_bytes_with_a_bad_header_are_no_record)
{
	use_batch = true;
	stale_slot_at_the_frontier(UINT64_C(0xb6c5a1f3e9d20874));
}

Test(spsc_tags, batch_stale_bytes_with_a_valid_header_are_no_record)
{
	use_batch = true;
	stale_slot_at_the_frontier(4);
}

/* The slip's decision, one look at a time (spsc.h, "Slip"): look again
 * while head moves by SLIP_STRIDE or more and stays less than SLIP_FAR
 * ahead; differences are unsigned. */
Test(spsc_tags, slip_looks_again_only_while_head_streams_within_reach)
{
	const uint64_t S = MPROC__SPSC_SLIP_STRIDE, F = MPROC__SPSC_SLIP_FAR;
	const uint64_t pos = 4096;
	cr_assert(mproc__spsc_slip_more(pos, pos + 64, pos + 64 + S));
	cr_assert_not(mproc__spsc_slip_more(pos, pos + 64, pos + 64 + S - 1));
	cr_assert_not(mproc__spsc_slip_more(pos, pos + 64, pos + 64),
		      "a head that stopped is not waited for");
	cr_assert(mproc__spsc_slip_more(pos, pos, pos + F - 1));
	cr_assert_not(mproc__spsc_slip_more(pos, pos, pos + F),
		      "far enough ahead");
	cr_assert_not(mproc__spsc_slip_more(pos, pos, pos - 16),
		      "a head behind the consumer reads as far ahead");
	/* Across the 2^64 wrap of the free-running positions. */
	const uint64_t w = UINT64_MAX - 63;
	cr_assert(mproc__spsc_slip_more(w, w + 16, w + 16 + S));
	cr_assert_not(mproc__spsc_slip_more(w, w + 16, w + F));
}

#define SLIP_CAP MPROC__SPSC_SLIP_MIN_CAP

/* Records of 48 payload bytes (64 in the ring) while the ring holds two
 * or three: each time the slip runs, the next record is there and head is
 * near, so it looks at head once, finds that the producer stopped, and
 * goes on.  Every record comes out in order, at its position. */
static void slip_behind_a_stopped_producer(uint64_t cap, int want_looks)
{
	struct ring_pair rp;
	ring_pair_new_cap(&rp, cap);
	put_at(&rp, 0, NULL, 48);
	put_at(&rp, 64, NULL, 48);
	uint64_t pos = 0;
	for (int i = 0; i < 4 * MPROC__SPSC_SLIP_EVERY; i++, pos += 64) {
		put_at(&rp, pos + 128, NULL, 48);
		rp.cons.u.spsc.slip_looks = -1;
		get_at(&rp, pos, 48);
		if (rp.cons.u.spsc.slip_count == 0)
			cr_assert_eq(rp.cons.u.spsc.slip_looks, want_looks,
				     "record %d: %d looks", i,
				     rp.cons.u.spsc.slip_looks);
		else
			cr_assert_eq(rp.cons.u.spsc.slip_looks, -1,
				     "no slip between looks");
	}
	get_at(&rp, pos, 48);
	get_at(&rp, pos + 64, 48);
	munmap(rp.mem, rp.size);
}

Test(spsc_tags, slip_behind_a_stopped_producer_looks_once)
{
	slip_behind_a_stopped_producer(SLIP_CAP, 1);
}

/* A ring smaller than SLIP_MIN_CAP: no look at all. */
Test(spsc_tags, slip_never_looks_in_a_small_ring)
{
	slip_behind_a_stopped_producer(CAP, 0);
}

struct mover {
	_Atomic uint64_t *head;
	uint64_t base;
	atomic_bool stop;
};

/* A head that keeps jumping, by SLIP_STRIDE or more most of the time,
 * and stays nearer than SLIP_NEAR. */
static void *move_head(void *arg)
{
	struct mover *m = arg;
	uint64_t k = 0;
	while (!atomic_load(&m->stop)) {
		k++;
		uint64_t at = m->base + 64 +
			      (k % 6) * (MPROC__SPSC_SLIP_STRIDE + 44);
		atomic_store_explicit(m->head, at, memory_order_relaxed);
	}
	return NULL;
}

/* A smoke test with a second thread: whatever head does, the slip looks
 * at most SLIP_LOOKS times and the consumer gets its record.  (The bound
 * itself is the loop's; the decision is tested above.) */
Test(spsc_tags, slip_under_a_hostile_head_looks_a_bounded_number_of_times)
{
	struct ring_pair rp;
	ring_pair_new_cap(&rp, SLIP_CAP);
	put_at(&rp, 0, NULL, 48);
	put_at(&rp, 64, NULL, 48);
	_Atomic uint64_t *head = &rp.cons.u.spsc.sh->head;
	uint64_t true_head = atomic_load(head);
	cr_assert_eq(true_head, 128);
	/* The next record handed out brings slip_count to SLIP_EVERY. */
	rp.cons.u.spsc.slip_count = MPROC__SPSC_SLIP_EVERY - 1;
	struct mover m = { .head = head, .base = 0 };
	atomic_init(&m.stop, false);
	pthread_t t;
	cr_assert_eq(pthread_create(&t, NULL, move_head, &m), 0);
	get_at(&rp, 0, 48);
	atomic_store(&m.stop, true);
	pthread_join(t, NULL);
	int looks = rp.cons.u.spsc.slip_looks;
	cr_assert(looks >= 1 && looks <= MPROC__SPSC_SLIP_LOOKS,
		  "%d looks", looks);
	atomic_store(head, true_head);
	get_at(&rp, 64, 48);
	put_get(&rp, 128, 48);
	munmap(rp.mem, rp.size);
}
