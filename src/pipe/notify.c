/*
 * The fileno protocol: an eventfd per receiving ring, readable exactly
 * while the ring has something for its receiver (a record, or the end of
 * the stream), maintained without system calls until a receiver asks for
 * the descriptor.
 *
 * Shared words per ring (struct pipe_notify): armed, set once by the
 * receiver's first fileno(); sig, the state of the eventfd counter:
 *
 *   SIG_IDLE  counter is 0        -> BUSY(pid) by a signaller's CAS
 *   BUSY(pid) a write(1) is due   -> SIG_SET   by that signaller, after it
 *                                 -> SIG_IDLE  by that signaller, when the
 *                                              receiver took everything
 *   SIG_SET   counter is > 0      -> SIG_IDLE  by the receiver, after its
 *                                              read() drained the counter
 *
 * Only the CAS winner writes the eventfd, and only the receiver reads it,
 * only in state SET (when no write can be in flight); so the counter is
 * non-zero exactly in state SET, apart from the instants inside a write
 * or a read.
 *
 * Signallers: the sender after each publish or close (N1-N5), and the
 * receiver itself when it finds work it may have hidden (arm, clear) or a
 * dead peer.
 *
 *   sender                                 receiver (ring seen empty)
 *   N1 store head / closed (release)       D2 fence(seq_cst), after the
 *   N2 load armed (after W2 of publish)       tail store that emptied it
 *   N3 fence(seq_cst)                      C1 if sig == SET: read(efd),
 *   N4 if armed and sig == IDLE:              store sig = IDLE
 *      CAS sig IDLE -> BUSY(pid)           C2 fence(seq_cst)
 *   D1 fence(seq_cst)                      C3 if head moved or closed: raise
 *   N5 if tail == the head we published
 *      (not closing): sig = IDLE;
 *      else write(efd), then
 *   N6 fence(seq_cst); the test of N5
 *      again: read(efd), sig = IDLE;
 *      else sig = SET
 *
 * No missed readiness: N3 and C2 are seq_cst fences, so of N4 and C3 at
 * least one sees the other side's store before its fence (N1 or C1).  If
 * N4 sees IDLE it raises; if it sees SET, C3 must see N1 (it cannot be
 * that both miss), so the receiver raises again.  When the receiver finds
 * sig already IDLE it has changed nothing, and a later publish will see
 * IDLE and raise.  N5 withdraws a raise only when the receiver has
 * already taken every record the sender published: nothing is there to
 * announce (only the sender produces, and it is here).
 *
 * No stale readiness.  The receiver takes a record as soon as its tag is
 * visible, possibly before the sender's N1: it then sees no pending data,
 * finds sig IDLE and returns -- and the sender, at N4, still sees IDLE.
 * Without N5 it would raise for a record already gone and leave the
 * descriptor readable on an empty ring (an epoll loop that then blocks in
 * recv stalls).  D1 and D2 pair on (sig, tail): the sender stores BUSY
 * then loads tail, the receiver stores tail then loads sig, so either N5
 * sees the receiver's tail (and withdraws) or C1 sees BUSY and waits for
 * the signaller's SET, which it then drains.  A signaller that stalls
 * for more than ~10 ms between its CAS and its write makes the receiver
 * give up that wait; so after its write the signaller looks at tail once
 * more (N6) and, if the receiver took everything meanwhile, drains the
 * counter itself (it still holds BUSY: nobody else touches the counter)
 * and stores IDLE.  What remains is readiness with nothing to read for
 * the instant between that write and N6, or for good when the signaller
 * is killed in between: the next poll or receive that finds the ring
 * empty resolves it.
 *
 * A signaller that dies inside its raise.  BUSY carries its pid.  A
 * receiver (C1) or sender (N4) that meets BUSY of a process that has
 * exited takes its place: the receiver drains whatever it wrote and goes
 * on from SET, the sender raises as the new signaller.  So the state
 * heals at the next send or receive, and never stays BUSY for ever (a pid
 * of 0, which no signaller has, counts as exited).
 *
 * Arming: the receiver stores armed, runs a heavy barrier, and looks at
 * the ring.  The sender's N2 sits after W2 of the futex event inside
 * publish (shm/futex.h), which is only a compiler barrier when the sender
 * registered for membarrier; the heavy barrier (membarrier, as A3 of the
 * event) pairs with either kind of W2, so either the sender's N2 sees
 * armed, or the receiver sees N1 and raises itself.  Once armed the
 * sender pays the real fence N3 per publish (skipped when W2 already was
 * one) and the receiver D2 per empty ring; unarmed neither pays anything
 * beyond the event protocol.
 */
#include <errno.h>
#include <sched.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/os.h"
#include "common/fork.h"
#include "pipe/conn.h"

/* Longest time a receiver waits for a signaller to finish its write. */
#define BUSY_WAIT_NS (10 * 1000 * 1000LL)

bool mproc__rx_pending(mproc_conn *c)
{
	/* Acquire on head and closed (E1, E3 of ring/spsc.h). */
	return mproc__ring_pending(&c->rx);
}

static bool sig_busy(uint32_t s)
{
	return (s & SIG_STATE) == SIG_BUSY;
}

/* Whether the signaller that set BUSY value @s has exited (pid 0, which
 * no process has, counts as exited: a hostile or foreign value). */
static bool busy_owner_gone(uint32_t s)
{
	int pid = (int)(s >> 2);
	if (pid == mproc__self_pid())
		return false;
	return pid == 0 || mproc__pid_exited((pid_t)pid);
}

/* The write of a raise, by the holder of BUSY, who alone touches the
 * counter until it stores SET or IDLE. */
static void counter_write(int efd)
{
	uint64_t one = 1;
	ssize_t w = write(efd, &one, sizeof(one));
	(void)w; /* cannot fail short of a 2^64 counter or a bad fd */
}

static void raise_write(struct pipe_notify *n, int efd)
{
	counter_write(efd);
	/* Release: pairs with the acquire load of sig in mproc__note_clear;
	 * a receiver that sees SET reads a counter that holds our write. */
	atomic_store_explicit(&n->sig, SIG_SET, memory_order_release);
}

/* Claim BUSY from @expect (IDLE, or a dead signaller's BUSY). */
static bool raise_claim(struct pipe_notify *n, uint32_t expect)
{
	/* SeqCst: the receiver's release store of IDLE after its read()
	 * happens before (our write lands after that read and is never
	 * drained by it), and the sender's D1 needs BUSY stored before its
	 * load of tail. */
	return atomic_compare_exchange_strong_explicit(
		&n->sig, &expect, mproc__sig_busy(mproc__self_pid()),
		memory_order_seq_cst, memory_order_relaxed);
}

void mproc__note_raise(struct pipe_ctl *ctl, int ring, int efd)
{
	struct pipe_notify *n = &ctl->note[ring];
	if (!raise_claim(n, SIG_IDLE))
		return; /* already SET, or another signaller is writing */
	raise_write(n, efd);
}

/* Everything the sender published has been taken.  Relaxed: ordered by
 * D1; a stale tail only makes us raise, which C1 then sees (see top). */
static bool tx_all_taken(const mproc_conn *c)
{
	return mproc__ring_all_taken(&c->tx);
}

void mproc__note_signal(mproc_conn *c, bool closing)
{
	int ring = 1 - c->end;
	struct pipe_notify *n = &c->ctl->note[ring];
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
	uint32_t s = atomic_load_explicit(&n->sig, memory_order_relaxed);
	if (s == SIG_IDLE) {
		if (!raise_claim(n, SIG_IDLE))
			return;
	} else if (!sig_busy(s) || !busy_owner_gone(s) || !raise_claim(n, s)) {
		return; /* SET, or a live signaller is writing */
	}
	/* D1: pairs with D2 in mproc__note_clear (see top). */
	atomic_thread_fence(memory_order_seq_cst);
	if (!closing && tx_all_taken(c)) {
		/* N5: the receiver already took it all; raising now would
		 * leave the descriptor readable on an empty ring.  Release:
		 * as the store of SET. */
		atomic_store_explicit(&n->sig, SIG_IDLE, memory_order_release);
		return;
	}
	int efd = c->res->efd[ring];
	counter_write(efd);
	/* N6: the receiver may have taken everything since N5 and given up
	 * waiting for our SET (we stalled > BUSY_WAIT_NS before the write).
	 * We still hold BUSY, so the counter is ours alone: look once more
	 * and take the write back.  The fence orders our tail load after
	 * the write; the receiver stored its tail before its D2, long
	 * before it gave up. */
	atomic_thread_fence(memory_order_seq_cst);
	if (!closing && tx_all_taken(c)) {
		uint64_t v;
		ssize_t r = read(efd, &v, sizeof(v));
		(void)r; /* the eventfd is non-blocking; ours to drain */
		atomic_store_explicit(&n->sig, SIG_IDLE, memory_order_release);
		return;
	}
	/* Release: as in raise_write. */
	atomic_store_explicit(&n->sig, SIG_SET, memory_order_release);
}

void mproc__note_force(struct pipe_ctl *ctl, int ring, int efd)
{
	struct pipe_notify *n = &ctl->note[ring];
	/* The peer died: it may have died between its CAS and its write,
	 * leaving sig BUSY, so write regardless of the state. */
	if (atomic_load_explicit(&n->sig, memory_order_acquire) == SIG_SET)
		return;
	raise_write(n, efd);
}

/* Wait (bounded) for a signaller to move sig out of BUSY; take over from
 * one that has exited.  Returns the state seen last. */
static uint32_t wait_not_busy(struct pipe_notify *n, uint32_t s)
{
	int64_t until = 0;
	for (uint32_t i = 0;; i++) {
		if (!sig_busy(s))
			return s;
		if (i < 1024) {
			mproc__cpu_relax();
		} else if (i == 1024 && busy_owner_gone(s)) {
			/* Take its place as if it had written: C1 then
			 * drains whatever it did write.  Acquire on success:
			 * its write, if any, is in the counter we read. */
			uint32_t expect = s;
			if (atomic_compare_exchange_strong_explicit(
				    &n->sig, &expect, SIG_SET,
				    memory_order_acquire, memory_order_acquire))
				return SIG_SET;
			s = expect;
			continue;
		} else {
			int64_t now = mproc__now_ns();
			if (!until)
				until = now + BUSY_WAIT_NS;
			else if (now >= until)
				return s;
			sched_yield();
		}
		/* Acquire: as the load in mproc__note_clear. */
		s = atomic_load_explicit(&n->sig, memory_order_acquire);
	}
}

void mproc__note_clear(mproc_conn *c)
{
	struct pipe_notify *n = &c->ctl->note[c->end];
	int efd = c->res->efd[c->end];
	/* D2: pairs with D1 of a sender (see top): our tail store that
	 * emptied the ring is visible to its N5, or we see its BUSY. */
	atomic_thread_fence(memory_order_seq_cst);
	/* C1.  Acquire: pairs with the release store of SET in raise_write,
	 * so the counter we drain holds that write. */
	uint32_t s = atomic_load_explicit(&n->sig, memory_order_acquire);
	if (sig_busy(s))
		s = wait_not_busy(n, s);
	if (s == SIG_IDLE || sig_busy(s))
		return; /* IDLE: nothing to undo; BUSY: gave up (see top) */
	/* SET, or a value no signaller writes: drain, and heal the latter. */
	uint64_t v;
	ssize_t r = read(efd, &v, sizeof(v));
	(void)r; /* EAGAIN if the counter was 0: still drained */
	/* Release: pairs with the acquire CAS in raise_claim. */
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
