/*
 * The fileno protocol: an eventfd per receiving ring, readable exactly
 * while the ring has something for its receiver (a record, or the end of
 * the stream), maintained without system calls until a receiver asks for
 * the descriptor.
 *
 * Shared words per ring (struct pipe_notify): armed, set once by the
 * receiver's first fileno(); sig, the state of the eventfd counter:
 *
 *   SIG_IDLE  counter is 0        -> SIG_BUSY  by a signaller's CAS
 *   SIG_BUSY  a write(1) is due   -> SIG_SET   by that signaller, after it
 *   SIG_SET   counter is > 0      -> SIG_IDLE  by the receiver, after its
 *                                              read() drained the counter
 *
 * Only the CAS winner writes the eventfd, and only the receiver reads it,
 * only in state SET (when no write can be in flight); so the counter is
 * non-zero exactly in state SET, apart from the instants inside a write
 * or a read.
 *
 * Signallers: the sender after each publish or close (N1-N4), and the
 * receiver itself when it finds work it may have hidden (arm, clear) or a
 * dead peer.
 *
 *   sender                                 receiver (ring seen empty)
 *   N1 store head / closed (release)       C1 if sig == SET: read(efd),
 *   N2 load armed (after W2 of publish)       store sig = IDLE
 *   N3 fence(seq_cst)                      C2 fence(seq_cst)
 *   N4 if armed and sig == IDLE: raise     C3 if head moved or closed: raise
 *
 * No missed readiness: N3 and C2 are seq_cst fences, so of N4 and C3 at
 * least one sees the other side's store before its fence (N1 or C1).  If
 * N4 sees IDLE it raises; if it sees SET, C3 must see N1 (it cannot be
 * that both miss), so the receiver raises again.  When the receiver finds
 * sig already IDLE it has changed nothing, a later publish will see IDLE
 * and raise, and no fence is needed.
 *
 * Arming: the receiver stores armed, runs a heavy barrier, and looks at
 * the ring.  The sender's N2 sits after W2 of the futex event inside
 * publish (shm/futex.h), which is only a compiler barrier when the sender
 * registered for membarrier; the heavy barrier (membarrier, as A3 of the
 * event) pairs with either kind of W2, so either the sender's N2 sees
 * armed, or the receiver sees N1 and raises itself.  Once armed the
 * sender pays the real fence N3 per publish (skipped when W2 already was
 * one); unarmed it pays nothing beyond the event protocol.
 *
 * No lasting spurious readiness: a receive that leaves the ring empty
 * runs C1-C3.  If it finds sig BUSY (a signaller between its CAS and its
 * write) it waits for SET, so the counter it drains includes that write;
 * it gives up after ~10 ms (a stalled or dead signaller), which is the one
 * documented case of readiness with nothing to read, resolved by the next
 * poll or receive that finds the ring empty.
 */
#include <errno.h>
#include <sched.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "pipe/conn.h"

/* Longest time a receiver waits for a signaller to finish its write. */
#define BUSY_WAIT_NS (10 * 1000 * 1000LL)

bool mproc__rx_pending(mproc_conn *c)
{
	/* Acquire on head and closed (E1, E3 of ring/spsc.h). */
	return mproc__ring_pending(&c->rx);
}

void mproc__note_raise(struct pipe_ctl *ctl, int ring, int efd)
{
	struct pipe_notify *n = &ctl->note[ring];
	uint32_t idle = SIG_IDLE;
	/* Acquire on success: pairs with the receiver's release store of
	 * IDLE after its read(), so our write lands after that read and is
	 * never drained by it. */
	if (!atomic_compare_exchange_strong_explicit(&n->sig, &idle, SIG_BUSY,
						     memory_order_acquire,
						     memory_order_relaxed))
		return; /* already SET, or another signaller is writing */
	uint64_t one = 1;
	ssize_t w = write(efd, &one, sizeof(one));
	(void)w; /* cannot fail short of a 2^64 counter or a bad fd */
	/* Release: pairs with the acquire load of sig in mproc__note_clear;
	 * a receiver that sees SET reads a counter that holds our write. */
	atomic_store_explicit(&n->sig, SIG_SET, memory_order_release);
}

void mproc__note_signal(struct pipe_ctl *ctl, int ring, int efd)
{
	struct pipe_notify *n = &ctl->note[ring];
	/* N2.  Relaxed: the caller has just run mproc__ring_publish or
	 * mproc__ring_close, whose event signal ran W2 after the head or
	 * closed store (N1); W2 pairs with the heavy barrier of
	 * mproc__note_arm (see top). */
	if (!atomic_load_explicit(&n->armed, memory_order_relaxed))
		return;
	/* N3: pairs with C2 in mproc__note_clear.  W2 was this fence
	 * already unless it was only a compiler barrier. */
	if (mproc__waker_light)
		atomic_thread_fence(memory_order_seq_cst);
	/* N4.  Relaxed: ordered after N1 by the fence. */
	if (atomic_load_explicit(&n->sig, memory_order_relaxed) != SIG_IDLE)
		return;
	mproc__note_raise(ctl, ring, efd);
}

void mproc__note_force(struct pipe_ctl *ctl, int ring, int efd)
{
	struct pipe_notify *n = &ctl->note[ring];
	/* The peer died: it may have died between its CAS and its write,
	 * leaving sig BUSY for ever, so write regardless of the state. */
	if (atomic_load_explicit(&n->sig, memory_order_acquire) == SIG_SET)
		return;
	uint64_t one = 1;
	ssize_t w = write(efd, &one, sizeof(one));
	(void)w;
	/* Release: as in mproc__note_raise. */
	atomic_store_explicit(&n->sig, SIG_SET, memory_order_release);
}

/* Wait (bounded) for a signaller to move sig out of BUSY. */
static uint32_t wait_not_busy(struct pipe_notify *n)
{
	int64_t until = 0;
	for (uint32_t i = 0;; i++) {
		/* Acquire: as the load in mproc__note_clear. */
		uint32_t s = atomic_load_explicit(&n->sig, memory_order_acquire);
		if (s != SIG_BUSY)
			return s;
		if (i < 1024) {
			mproc__cpu_relax();
			continue;
		}
		int64_t now = mproc__now_ns();
		if (!until)
			until = now + BUSY_WAIT_NS;
		else if (now >= until)
			return SIG_BUSY;
		sched_yield();
	}
}

void mproc__note_clear(mproc_conn *c)
{
	struct pipe_notify *n = &c->ctl->note[c->end];
	int efd = c->res->efd[c->end];
	/* C1.  Acquire: pairs with the release store of SET in
	 * mproc__note_raise, so the counter we drain holds that write. */
	uint32_t s = atomic_load_explicit(&n->sig, memory_order_acquire);
	if (s == SIG_BUSY)
		s = wait_not_busy(n);
	if (s != SIG_SET)
		return; /* IDLE: nothing to undo; BUSY: gave up (see top) */
	uint64_t v;
	ssize_t r = read(efd, &v, sizeof(v));
	(void)r; /* EAGAIN only if someone else read it: still drained */
	/* Release: pairs with the acquire CAS in mproc__note_raise. */
	atomic_store_explicit(&n->sig, SIG_IDLE, memory_order_release);
	/* C2: pairs with the fence N3 of a sender (see top). */
	atomic_thread_fence(memory_order_seq_cst);
	/* C3 */
	if (mproc__rx_pending(c))
		mproc__note_raise(c->ctl, c->end, efd);
}

void mproc__note_arm(mproc_conn *c)
{
	struct pipe_notify *n = &c->ctl->note[c->end];
	/* Relaxed: the flag itself carries no data; the barrier below
	 * orders the store against our look at the ring. */
	if (atomic_load_explicit(&n->armed, memory_order_relaxed))
		return;
	atomic_store_explicit(&n->armed, 1, memory_order_relaxed);
	/* mproc__heavy_barrier (A3 of futex.h) pairs with W2 of a sender's
	 * publish (see top): either its N2 sees armed and it signals, or we
	 * see what it published (or its close) here.  When the barrier could
	 * not cover light senders, a message may be in flight unseen: raise
	 * anyway (a spurious readable, cleared by the next receive that finds
	 * the ring empty) rather than miss one. */
	if (!mproc__heavy_barrier() || mproc__rx_pending(c))
		mproc__note_raise(c->ctl, c->end, c->res->efd[c->end]);
}
