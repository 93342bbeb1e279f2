/*
 * Futex wait/wake on words in shared memory, and the "event" built on them:
 * the waiter-flag protocol every blocking mproc call uses.
 *
 * The futexes here are shared (no FUTEX_PRIVATE_FLAG): the words live in
 * MAP_SHARED segments that several processes map at different addresses;
 * the kernel keys them by (inode, offset).
 *
 * Timeouts: callers pass a relative timeout in nanoseconds; it is turned
 * into an absolute CLOCK_MONOTONIC deadline once (mproc__deadline_init), and
 * every wait, after EINTR or a spurious wake-up as well, sleeps until that
 * same deadline, so retries never stretch it.
 *
 * The event protocol (struct mproc__event, one per direction of a ring):
 *
 *   waker (after making the condition true)     waiter
 *   ---------------------------------------     ------------------------------
 *   W1 store the condition (e.g. head, release)  A1 s = load(seq, acquire)
 *   W2 barrier (see below)                       A2 fetch_add(waiters, 1)
 *   W3 if load(waiters, relaxed) != 0:           A3 heavy barrier (see below)
 *   W4     fetch_add(seq, 1, release)            A4 if condition true: leave
 *   W5     futex_wake(seq, all)                  A5 futex_wait(seq, s, deadline)
 *                                                A6 fetch_sub(waiters, 1)
 *
 * No lost wake-up: W2 and A3 together order each side's store before its
 * load, so of W3 and A4 at least one sees the other side's earlier store
 * (W1 or A2; the store-buffer litmus test).  If A4 sees W1 the waiter does
 * not sleep.  If W3 sees A2 the waker bumps seq after A2; either A1 read
 * the old seq, and then A5 returns at once (the kernel compares seq with s
 * atomically with queueing the waiter) or is woken by W5; or A1 read the
 * bumped seq, and then the acquire at A1 (pairing with the release at W4)
 * makes W1 visible to A4.
 *
 * The barriers are asymmetric, because wakers run on every message and
 * waiters only when they are about to sleep anyway.  When the kernel offers
 * membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED) and this process registered
 * for it (done once when the library loads; fork keeps the registration),
 * W2 is only a compiler barrier and A3 is that system call: it makes every
 * running thread of every registered process execute a full memory
 * barrier, which places one between W1 and W3 of any waker that is running
 * (a waker that is not running passed one when it was switched out).  This
 * is the scheme liburcu's "memb" flavour uses for its readers.  Without
 * membarrier both W2 and A3 are seq_cst fences.  A waiter always uses the
 * system call when the kernel has it, so a waker that could not register
 * (and so keeps its fence) is still covered.
 *
 * Fast path: when nobody sleeps, a waker pays one fence and one load of a
 * word that stays in its cache; no system call.  Waiters spin first, with a
 * budget that adapts (mproc__spin): it doubles when the condition turned
 * true while spinning and halves when the waiter had to sleep anyway.
 *
 * Dead peers: a wait sleeps at most MPROC__WAIT_SLICE_NS at a time and
 * then calls the caller's liveness check, so a peer that died (and so will
 * never wake us) is noticed without an infinite sleep.
 */
#ifndef MPROC_SHM_FUTEX_H
#define MPROC_SHM_FUTEX_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "common/clock.h"
#include "common/compiler.h"

/* Longest single futex sleep before the liveness check runs (default).
 * Tests that must see a lost wake-up as a hang rather than as a 100 ms
 * hiccup raise it with the environment variable MPROC_TEST_WAIT_SLICE_NS,
 * read once when the library loads (mproc__wait_slice_ns). */
#define MPROC__WAIT_SLICE_NS (100 * 1000 * 1000LL)
extern int64_t mproc__wait_slice_ns;


/* One direction's sleep/wake words.  Lives on its own cache line in shared
 * memory; both words are 32-bit because futexes are. */
struct mproc__event {
	_Atomic uint32_t seq;     /* bumped by wakers; the futex word */
	_Atomic uint32_t waiters; /* number of processes in A2..A6 */
	uint32_t pad_[MPROC_CACHELINE / 4 - 2];
};

/* Private, per-handle adaptive spin state (never in shared memory). */
struct mproc__spin {
	/* Iterations of the condition check before sleeping.  Atomic
	 * (relaxed) because threads sharing a handle share it; it is only a
	 * heuristic, so lost updates do not matter. */
	_Atomic uint32_t budget;
	bool busy;       /* busy-poll mode: spin until the deadline, never sleep */
};

#define MPROC__SPIN_MIN 64u
#define MPROC__SPIN_MAX 16384u
#define MPROC__SPIN_INIT 1024u

/* Sleep while *word == expected, until woken or @d passes.  Returns 0 when
 * woken (or spuriously), -EAGAIN when *word != expected on entry,
 * -ETIMEDOUT when the deadline passed.  EINTR is retried internally. */
int mproc__futex_wait(_Atomic uint32_t *word, uint32_t expected,
		      const struct mproc__deadline *d);
/* Wake up to @n sleepers on @word; returns the number woken or -errno. */
int mproc__futex_wake(_Atomic uint32_t *word, int n);

/* True when this process is registered for global expedited membarrier,
 * so wakers may use a compiler barrier for W2.  Set before main(). */
extern bool mproc__waker_light;

/* The waiter's barrier (A3): membarrier(GLOBAL_EXPEDITED) where the
 * kernel has it, else a seq_cst fence.  Returns false when the system call
 * failed (-ENOMEM, or a seccomp filter installed after load) although
 * wakers elsewhere may rely on it: then a waker may be missed, and the
 * caller must bound how long it trusts what it reads next (the event wait
 * sleeps 1 ms slices instead of MPROC__WAIT_SLICE_NS). */
bool mproc__heavy_barrier(void);

/* Waker half of the protocol (W2..W5): call after the condition store. */
static inline void mproc__event_signal(struct mproc__event *ev)
{
	/* W2: pairs with A3 in mproc__event_wait (membarrier or fence). */
	if (mproc__likely(mproc__waker_light))
		atomic_signal_fence(memory_order_seq_cst);
	else
		atomic_thread_fence(memory_order_seq_cst);
	/* W3: relaxed is enough; the fence above orders it after W1. */
	if (mproc__unlikely(atomic_load_explicit(&ev->waiters,
						 memory_order_relaxed) != 0)) {
		/* W4: release pairs with the acquire A1 of a waiter that
		 * reads the new value. */
		atomic_fetch_add_explicit(&ev->seq, 1, memory_order_release);
		mproc__futex_wake(&ev->seq, INT32_MAX);
	}
}

/* Condition callback: true when the waiter may proceed. */
typedef bool (*mproc__ready_fn)(void *arg);
/* Liveness callback, run between sleep slices: 0 to keep waiting, or a
 * negative error (e.g. -MPROC_EPEERDIED) to stop and return it.  NULL
 * means "no check". */
typedef int (*mproc__alive_fn)(void *arg);

/* Waiter half (A1..A6): spin, then sleep, until ready(arg) is true or the
 * deadline passes.  Returns 0 (ready), -ETIMEDOUT, or alive()'s error. */
int mproc__event_wait(struct mproc__event *ev, mproc__ready_fn ready,
		      void *arg, const struct mproc__deadline *d,
		      struct mproc__spin *spin, mproc__alive_fn alive);

#endif /* MPROC_SHM_FUTEX_H */
