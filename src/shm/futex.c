/*
 * Futex system calls and the waiter side of the event protocol described
 * in futex.h.
 */
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <linux/membarrier.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "shm/futex.h"
#include "mproc/common.h"

bool mproc__waker_light;
/* Could some process on this kernel be a light waker?  True unless the
 * kernel answered that it has no global expedited membarrier at all. */
static bool light_wakers_possible = true;
int64_t mproc__wait_slice_ns = MPROC__WAIT_SLICE_NS;
static bool waiter_membarrier;

/* Register this process for global expedited membarrier (see futex.h).
 * Runs when the library loads.  The registration belongs to the address
 * space: fork copies it (seen with MEMBARRIER_CMD_GET_REGISTRATIONS on
 * Linux 6.18) and exec drops it, and an exec'd program registers again
 * when it loads the library, so no fork handler is needed. */
static void membarrier_setup(void)
{
	/* For measurements (bench/base_floor.c, doc/design.md): with
	 * MPROC_TEST_BARRIER=fence every process of the run keeps seq_cst
	 * fences on both sides, as on a kernel without membarrier.  All the
	 * processes of one run must agree, so it comes from the environment
	 * they inherit. */
	const char *mode = getenv("MPROC_TEST_BARRIER");
	if (mode && strcmp(mode, "fence") == 0) {
		waiter_membarrier = false;
		light_wakers_possible = false;
		mproc__waker_light = false;
		return;
	}
	long cmds = syscall(SYS_membarrier, MEMBARRIER_CMD_QUERY, 0, 0);
	waiter_membarrier = cmds > 0 && (cmds & MEMBARRIER_CMD_GLOBAL_EXPEDITED);
	/* A kernel that answers the query without the command has no light
	 * wakers anywhere; a failed query (seccomp, say) proves nothing. */
	light_wakers_possible = cmds < 0 || waiter_membarrier;
	mproc__waker_light = waiter_membarrier &&
		(cmds & MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED) &&
		syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED,
			0, 0) == 0;
}

__attribute__((constructor)) static void membarrier_init(void)
{
	const char *slice = getenv("MPROC_TEST_WAIT_SLICE_NS");
	if (slice && atoll(slice) > 0)
		mproc__wait_slice_ns = atoll(slice);
	membarrier_setup();
}

bool mproc__heavy_barrier(void)
{
	if (waiter_membarrier &&
	    syscall(SYS_membarrier, MEMBARRIER_CMD_GLOBAL_EXPEDITED, 0, 0) == 0)
		return true;
	/* A3 as a fence: pairs with the fence W2 of wakers that could not
	 * use the light barrier. */
	atomic_thread_fence(memory_order_seq_cst);
	return !light_wakers_possible;
}

int mproc__futex_wait(_Atomic uint32_t *word, uint32_t expected,
		      const struct mproc__deadline *d)
{
	for (;;) {
		/* FUTEX_WAIT_BITSET takes an absolute CLOCK_MONOTONIC time,
		 * so a retry after EINTR sleeps to the same deadline. */
		long r = syscall(SYS_futex, (uint32_t *)word, FUTEX_WAIT_BITSET,
				 expected, d->forever ? NULL : &d->at, NULL,
				 FUTEX_BITSET_MATCH_ANY);
		if (r == 0)
			return 0;
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN)
			return -EAGAIN;
		if (errno == ETIMEDOUT)
			return -ETIMEDOUT;
		return -errno;
	}
}

int mproc__futex_wake(_Atomic uint32_t *word, int n)
{
	long r = syscall(SYS_futex, (uint32_t *)word, FUTEX_WAKE, n, NULL,
			 NULL, 0);
	return r < 0 ? -errno : (int)r;
}

void mproc__event_wake(struct mproc__event *ev, uint64_t w, uint32_t n)
{
	for (;;) {
		if (MPROC__EVENT_COUNT(w) > n) {
			/* Waking n: more registered than the condition can
			 * satisfy.  No reset: the registrations stay, each
			 * taken back by its own waiter at A6 (futex.h). */
			atomic_fetch_add_explicit(&ev->seq, 1,
						  memory_order_release); /* W4 */
			mproc__futex_wake(&ev->seq, n > INT32_MAX ? INT32_MAX
							   : (int)n); /* W5 */
			return;
		}
		/* W3': take every registration off the count and start a
		 * new epoch; the waiters it answers register again if they
		 * must sleep on.  Relaxed: W4's release orders it for the
		 * waiters (see "The reset cannot hide a waiter"). */
		if (atomic_compare_exchange_weak_explicit(
			    &ev->waiters, &w,
			    (uint64_t)(MPROC__EVENT_EPOCH(w) + 1u) << 32,
			    memory_order_relaxed, memory_order_relaxed))
			break;
	}
	/* W4: release pairs with the acquire A1 of a waiter that reads the
	 * new value.  W5: every waiter the reset erased must wake. */
	atomic_fetch_add_explicit(&ev->seq, 1, memory_order_release);
	mproc__futex_wake(&ev->seq, INT32_MAX);
}

static void spin_grow(struct mproc__spin *s)
{
	uint32_t b = atomic_load_explicit(&s->budget, memory_order_relaxed);
	if (b < MPROC__SPIN_MAX)
		atomic_store_explicit(&s->budget, b * 2, memory_order_relaxed);
}

static void spin_shrink(struct mproc__spin *s)
{
	uint32_t b = atomic_load_explicit(&s->budget, memory_order_relaxed);
	if (b > MPROC__SPIN_MIN)
		atomic_store_explicit(&s->budget, b / 2, memory_order_relaxed);
}

/* A6: take back this waiter's registration of @epoch, unless a waker
 * already took it (the epoch moved on: W3' reset the count).  Relaxed:
 * the count only decides whether wakers call the kernel, and each waiter
 * checks its condition again after this before it returns or sleeps. */
static void unregister(struct mproc__event *ev, uint32_t epoch)
{
	uint64_t w = atomic_load_explicit(&ev->waiters, memory_order_relaxed);
	while (MPROC__EVENT_EPOCH(w) == epoch && MPROC__EVENT_COUNT(w) != 0 &&
	       !atomic_compare_exchange_weak_explicit(&ev->waiters, &w, w - 1,
						      memory_order_relaxed,
						      memory_order_relaxed))
		;
}

int mproc__event_wait(struct mproc__event *ev, mproc__ready_fn ready,
		      void *arg, const struct mproc__deadline *d,
		      struct mproc__spin *spin, mproc__alive_fn alive)
{
	if (ready(arg))
		return 0;
	uint32_t budget = atomic_load_explicit(&spin->budget,
					       memory_order_relaxed);
	if (budget < MPROC__SPIN_MIN || budget > MPROC__SPIN_MAX) {
		budget = MPROC__SPIN_INIT;
		atomic_store_explicit(&spin->budget, budget, memory_order_relaxed);
	}
	/* A zero timeout is a poll: one look, no spinning, no sleep. */
	if (d->nowait)
		return -ETIMEDOUT;
	if (spin->busy) {
		/* Busy-poll: trade a core for the lowest latency.  Look at the
		 * clock every 1024 iterations and at the peer's liveness every
		 * 2^20 (a few milliseconds). */
		for (uint32_t i = 1;; i++) {
			if (ready(arg))
				return 0;
			mproc__cpu_relax();
			if ((i & 1023) == 0 && mproc__deadline_passed(d))
				return ready(arg) ? 0 : -ETIMEDOUT;
			if ((i & 0xfffff) == 0 && alive) {
				int a = alive(arg);
				if (a)
					return a;
			}
		}
	}
	for (uint32_t i = 0; i < budget; i++) {
		mproc__cpu_relax();
		if (ready(arg)) {
			spin_grow(spin);
			return 0;
		}
		/* The spin honours the deadline too: a grown budget lasts
		 * hundreds of microseconds, longer than a short timeout.  A
		 * clock read every 64 turns costs little against them. */
		if ((i & 63) == 63 && !d->forever && mproc__deadline_passed(d))
			return -ETIMEDOUT;
	}
	spin_shrink(spin);

	for (;;) {
		if (mproc__deadline_passed(d))
			return ready(arg) ? 0 : -ETIMEDOUT;
		/* A1: acquire pairs with the release bump W4 in
		 * mproc__event_signal. */
		uint32_t s = atomic_load_explicit(&ev->seq, memory_order_acquire);
		/* A2: register in the current epoch (futex.h). */
		uint32_t epoch = MPROC__EVENT_EPOCH(atomic_fetch_add_explicit(
			&ev->waiters, 1, memory_order_relaxed));
		/* A3: pairs with W2 of mproc__event_signal. */
		bool covered = mproc__heavy_barrier();
		/* A4 */
		if (ready(arg)) {
			unregister(ev, epoch);
			return 0;
		}
		/* A5: sleep one slice at most, so alive() gets to run. */
		struct mproc__deadline slice;
		int64_t slice_ns = covered ? mproc__wait_slice_ns : 1000000;
		mproc__deadline_init(&slice, slice_ns);
		const struct mproc__deadline *until = d;
		if (d->forever || mproc__deadline_left(d) > slice_ns)
			until = &slice;
		int r = mproc__futex_wait(&ev->seq, s, until);
		/* A6 */
		unregister(ev, epoch);
		if (ready(arg))
			return 0;
		if (r == -ETIMEDOUT && alive) {
			int a = alive(arg);
			if (a)
				return a;
		}
	}
}
