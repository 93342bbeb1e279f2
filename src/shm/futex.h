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
 *   W2 barrier (see below)                       A2 e = fetch_add(waiters, 1)
 *   W3 w = load(waiters, relaxed)                A3 heavy barrier (see below)
 *      if count(w) != 0:                         A4 if condition true: leave
 *   W3'    reset: CAS waiters to (epoch+1, 0)    A5 futex_wait(seq, s, deadline)
 *   W4     fetch_add(seq, 1, release)            A6 leave: decrement waiters
 *   W5     futex_wake(seq, all)                     only if its epoch is
 *                                                   still e, then loop to A1
 *
 * waiters is a 64-bit word: the low 32 bits count registrations, the high
 * 32 bits are an epoch that every waker with something to wake starts
 * anew (W3').  A waker so takes every registration it answers off the
 * count, and a waiter re-registers on every turn of its loop (A1..A6).
 * That makes the count self-healing: a waiter killed between A2 and A6
 * leaves one registration behind, and the next signal clears it with one
 * wake-up; without the reset every later signal would pay an atomic RMW
 * and a FUTEX_WAKE for ever.  A waiter that leaves on its own (A4 true,
 * a timeout, its liveness check) takes its registration back at A6 unless
 * a waker already did (the epoch moved on), so a live count only ever
 * holds registrations of waiters between A2 and A6 plus those of dead
 * ones not yet cleared.
 *
 * No lost wake-up: W2 and A3 together order each side's store before its
 * load, so of W3 and A4 at least one sees the other side's earlier store
 * (W1, or A2 or a later value of waiters; the store-buffer litmus test).
 * If A4 sees W1 the waiter does not sleep.  If W3 sees A2 (or a later
 * value with a non-zero count: the count cannot drop to zero while a
 * waiter sits between A2 and A6 of the same epoch, because each A6 takes
 * away only its own registration) the waker bumps seq after A2; either A1
 * read the old seq, and then A5 returns at once (the kernel compares seq
 * with s atomically with queueing the waiter) or is woken by W5; or A1
 * read the bumped seq, and then the acquire at A1 (pairing with the
 * release at W4) makes W1 visible to A4.
 *
 * The reset cannot hide a waiter from a later waker either.  Suppose
 * waker X's reset W3' erased the registration A2 of a waiter that then
 * sleeps, so a later waker Y, reading a count of 0, skips the wake.  A1 of
 * that waiter cannot have read X's bump W4 or a later one: W3' is
 * sequenced before W4, so such an A1 would make W3' happen before A2,
 * and A2 would come after W3' in the modification order of waiters, not
 * be erased by it.  So A1 read seq before W4, and A5 either finds seq
 * changed or is queued before W5 wakes it; the waiter loops to A1 and
 * registers again in the new epoch, where the argument above covers it.
 * A waker wakes all sleepers (W5), so every waiter it erased wakes.
 *
 * Waking n.  A waker whose condition can satisfy only n waiters (an MPMC
 * put of n messages: n consumers; a release of n slots: n producers), and
 * that finds more than n registered, wakes n and leaves the count alone:
 * W4 bumps seq, W5 wakes n sleepers, no reset W3'.  Every registration
 * stays until its own waiter takes it back at A6, so the sleepers left
 * asleep stay counted, and the next waker sees them.  The argument above
 * then holds per message: each waiter that W5 did not wake is still
 * registered for the next waker, and each of the n woken ones looks at
 * the condition again (A4 on its next turn, or its caller's try); a
 * waiter between A1 and A5 finds seq moved and looks again too.  What the
 * partial wake adds is one duty: a woken waiter that leaves without
 * taking what it was woken for (mproc_queue_next_size only looks; a get
 * whose buffer is too small) passes the wake on (mproc__ring_pass_wake),
 * else the message waits for the next sleeper's slice (dead waiters, which
 * cannot pass anything on, are covered by that slice as before).  With n
 * at least the count, the waker resets and wakes all, as described above;
 * so dead registrations are still cleared by the first waker that can.
 * Before this, an MPMC put woke every sleeping consumer for one message:
 * with k consumers asleep, k - 1 of them woke, found nothing and slept
 * again (a futex wait, a membarrier and a wake-up each).
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
 * Fast path: when nobody sleeps, a waker pays one fence (or none, see
 * above) and one load of a word that stays in its cache; no system call.
 * With a registration it pays one CAS (W3'), one fetch_add (W4) and the
 * system call.  Waiters spin first, with a
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
	uint32_t seq_pad_;
	/* Low 32 bits: registrations (waiters in A2..A6, and dead ones not
	 * yet cleared); high 32 bits: the epoch, moved on by each reset W3'. */
	_Atomic uint64_t waiters;
	uint32_t pad_[MPROC_CACHELINE / 4 - 4];
};

_Static_assert(sizeof(struct mproc__event) == MPROC_CACHELINE,
	       "an event fills its cache line");
/* Atomicity across processes needs lock-free atomics: where a 64-bit
 * atomic falls back to libatomic's locks, the lock lives in each
 * process's private memory and guards nothing between them. */
_Static_assert(__atomic_always_lock_free(sizeof(uint64_t), 0) &&
		       __atomic_always_lock_free(sizeof(uint32_t), 0),
	       "mproc needs lock-free 32- and 64-bit atomics in shared memory");

#define MPROC__EVENT_COUNT(w) ((uint32_t)(w))
#define MPROC__EVENT_EPOCH(w) ((uint32_t)((w) >> 32))

/* Registrations counted now (a snapshot, for tests and inspection). */
static inline uint32_t mproc__event_registered(struct mproc__event *ev)
{
	return MPROC__EVENT_COUNT(
		atomic_load_explicit(&ev->waiters, memory_order_relaxed));
}

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

/* The waker's slow path (W3'..W5), taken only when @w, its W3 load,
 * counts a registration: wake @n sleepers (see "Waking n" above). */
void mproc__event_wake(struct mproc__event *ev, uint64_t w, uint32_t n);

/* Waker half of the protocol (W2..W5): call after the condition store,
 * @n: how many waiters the new condition can satisfy (messages made
 * visible, slots freed); UINT32_MAX (mproc__event_signal): all of them. */
static inline void mproc__event_signal_n(struct mproc__event *ev, uint32_t n)
{
	/* W2: pairs with A3 in mproc__event_wait (membarrier or fence). */
	if (mproc__likely(mproc__waker_light))
		atomic_signal_fence(memory_order_seq_cst);
	else
		atomic_thread_fence(memory_order_seq_cst);
	/* W3: relaxed is enough; the fence above orders it after W1. */
	uint64_t w = atomic_load_explicit(&ev->waiters, memory_order_relaxed);
	if (mproc__unlikely(MPROC__EVENT_COUNT(w) != 0))
		mproc__event_wake(ev, w, n);
}

static inline void mproc__event_signal(struct mproc__event *ev)
{
	mproc__event_signal_n(ev, UINT32_MAX);
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
