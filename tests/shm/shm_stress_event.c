/*
 * Lost-wakeup stress test of the event protocol (suite `stress`).
 *
 * Two processes play ping-pong through two events in a shared mapping:
 * the parent publishes round i in `ping` and signals, the child waits for
 * it, publishes i in `pong` and signals back.  Random gaps before each
 * store (none, a short spin, a yield, a short sleep) move the store around
 * the waiter's spin and sleep phases, and half of the waits start with the
 * smallest spin budget so that they really go to sleep.
 *
 * What a lost wake-up looks like: mproc__event_wait sleeps at most one
 * slice (MPROC__WAIT_SLICE_NS) and re-checks the condition afterwards, so
 * a missed wake does not hang; it shows as a waiter that noticed its
 * condition about a slice after it became true.  The test therefore
 * records, per round, when the condition was made true, whether the
 * signal found a registered waiter (it bumped the sequence word), whether
 * the waiter's last look that found the condition false was made while it
 * was registered (A4, just before sleeping) rather than while spinning,
 * and when the waiter returned.  A round that took LATE_NS or more (a
 * healthy wake takes microseconds) although the waiter had registered and
 * the signal found no waiter is a lost wake-up and fails the test.  Slow
 * rounds whose signal did wake someone, or whose waiter was still
 * spinning (descheduled, e.g. by a CPU quota or a busy host, not asleep),
 * are the scheduler's doing and are only reported.  Any -ETIMEDOUT of the
 * generous per-wait timeout is a failure too.
 *
 * The sequence words start just below UINT32_MAX so that they wrap during
 * the run, and so do the round numbers carried in ping/pong.
 */
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <string.h>
#include <time.h>

#include "shm_test.h"
#include "shm/futex.h"
#include "common/clock.h"

#define ROUNDS 20000
#define LATE_NS (MPROC__WAIT_SLICE_NS * 8 / 10)
#define WAIT_TIMEOUT_NS (5 * MPROC_SEC)
#define BASE (UINT32_MAX - ROUNDS / 2)

struct arena {
	struct mproc__event ping_ev;
	struct mproc__event pong_ev;
	_Atomic uint32_t ping mproc__aligned_cl;
	_Atomic uint32_t pong mproc__aligned_cl;
	int child_error mproc__aligned_cl;
	int64_t ping_set[ROUNDS], ping_seen[ROUNDS];
	int64_t pong_set[ROUNDS], pong_seen[ROUNDS];
	bool ping_woke[ROUNDS], pong_woke[ROUNDS];
	bool ping_slept[ROUNDS], pong_slept[ROUNDS];
};

struct cond {
	_Atomic uint32_t *word;
	uint32_t want;
	struct mproc__event *ev;
	bool registered; /* at the last look that found the condition false */
};

static bool cond_ready(void *arg)
{
	struct cond *c = arg;
	/* Acquire pairs with the release store in publish(). */
	if (atomic_load_explicit(c->word, memory_order_acquire) == c->want)
		return true;
	/* Each event has one waiter (this process), so the count is
	 * non-zero only between our own A2 and A6: this look is A4, the
	 * last one before a futex sleep.  Looks while spinning and the one
	 * after A6 see 0. */
	c->registered = mproc__event_registered(c->ev) != 0;
	return false;
}

static uint64_t next_rand(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void random_gap(uint64_t *rng)
{
	uint64_t r = next_rand(rng);
	switch (r % 8) {
	case 0:
	case 1:
	case 2:
		break; /* store at once: races the waiter's first checks */
	case 3:
	case 4:
	case 5:
		for (uint64_t i = (r >> 8) % 4096; i > 0; i--)
			mproc__cpu_relax(); /* lands inside the spin phase */
		break;
	case 6:
		sched_yield();
		break;
	default:
		usleep((useconds_t)(1 + (r >> 8) % 40)); /* waiter asleep */
		break;
	}
}

/* W1 then the waker half of the protocol. */
static void publish(_Atomic uint32_t *word, uint32_t value,
		    struct mproc__event *ev, int64_t *set_at, bool *woke)
{
	*set_at = mproc__now_ns();
	/* Only this process bumps ev->seq, so a change across the signal
	 * says whether the signal found a registered waiter. */
	uint32_t before = atomic_load_explicit(&ev->seq, memory_order_relaxed);
	atomic_store_explicit(word, value, memory_order_release);
	mproc__event_signal(ev);
	*woke = atomic_load_explicit(&ev->seq, memory_order_relaxed) != before;
}

static int await(struct mproc__event *ev, _Atomic uint32_t *word,
		 uint32_t want, struct mproc__spin *spin, uint64_t *rng,
		 int64_t *seen_at, bool *slept)
{
	struct cond c = {word, want, ev, false};
	struct mproc__deadline d;
	mproc__deadline_init(&d, WAIT_TIMEOUT_NS);
	if (next_rand(rng) & 1)
		spin->budget = MPROC__SPIN_MIN;
	int rc = mproc__event_wait(ev, cond_ready, &c, &d, spin, NULL);
	*seen_at = mproc__now_ns();
	*slept = c.registered;
	return rc;
}

static int ponger(void *arg)
{
	struct arena *a = arg;
	struct mproc__spin spin = {0};
	uint64_t rng = 0x2545f4914f6cdd1dull;
	for (uint32_t i = 0; i < ROUNDS; i++) {
		int rc = await(&a->ping_ev, &a->ping, BASE + i, &spin, &rng,
			       &a->ping_seen[i], &a->ping_slept[i]);
		if (rc) {
			a->child_error = rc;
			return 1;
		}
		random_gap(&rng);
		publish(&a->pong, BASE + i, &a->pong_ev, &a->pong_set[i],
			&a->pong_woke[i]);
	}
	return 0;
}

struct tally {
	int slow;     /* wake-ups over 1 ms: scheduling noise, reported */
	int stalled;  /* late, but the waiter was not about to sleep */
	int lost;     /* late, the waiter slept, the signal found no waiter */
	int64_t worst;
};

static void tally(struct tally *t, const char *dir, const int64_t *set,
		  const int64_t *seen, const bool *woke, const bool *slept)
{
	for (int i = 0; i < ROUNDS; i++) {
		int64_t lat = seen[i] - set[i];
		if (lat > t->worst)
			t->worst = lat;
		if (lat >= MPROC_MSEC)
			t->slow++;
		/* A signal that finds a waiter registered bumps the
		 * sequence word, and a futex sleep cannot miss that bump
		 * (the kernel compares the word as it queues the sleeper).
		 * So a late round whose signal did bump is the scheduler's
		 * doing.  So is one whose waiter never registered before
		 * its last failed look: it was spinning (or between calls)
		 * and was descheduled, e.g. by a CPU quota throttling the
		 * whole test for tens of ms.  One whose waiter registered,
		 * looked, and went to sleep while the signal found nobody
		 * is the protocol's (the store-buffer race of futex.h). */
		if (lat >= LATE_NS && !woke[i] && !slept[i])
			t->stalled++;
		if (lat >= LATE_NS && !woke[i] && slept[i]) {
			if (t->lost++ < 5)
				cr_log_error("%s round %d: condition noticed "
					     "%.1f ms after it became true, "
					     "and the signal saw no waiter",
					     dir, i, (double)lat / 1e6);
		}
	}
}

Test(event_stress, no_lost_wakeups_in_ping_pong, .timeout = 240)
{
	struct arena *a = mmap(NULL, sizeof(*a), PROT_READ | PROT_WRITE,
			       MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	cr_assert_neq(a, MAP_FAILED);
	atomic_store(&a->ping_ev.seq, UINT32_MAX - 3000);
	atomic_store(&a->pong_ev.seq, UINT32_MAX - 3000);
	atomic_store(&a->ping, BASE - 1);
	atomic_store(&a->pong, BASE - 1);

	pid_t pid = t_fork(ponger, a);
	struct mproc__spin spin = {0};
	uint64_t rng = 0x9e3779b97f4a7c15ull;
	int rc = 0;
	uint32_t i;
	for (i = 0; i < ROUNDS; i++) {
		random_gap(&rng);
		publish(&a->ping, BASE + i, &a->ping_ev, &a->ping_set[i],
			&a->ping_woke[i]);
		rc = await(&a->pong_ev, &a->pong, BASE + i, &spin, &rng,
			   &a->pong_seen[i], &a->pong_slept[i]);
		if (rc)
			break;
	}
	if (rc)
		kill(pid, SIGKILL);
	int st = t_join(pid);
	cr_assert_eq(rc, 0, "round %u: parent's wait failed: %s", i,
		     mproc_strerror(rc));
	cr_assert_eq(a->child_error, 0, "child's wait failed: %s",
		     mproc_strerror(a->child_error));
	t_assert_exit0(st, "ponger");
	cr_assert_eq(mproc__event_registered(&a->ping_ev), 0);
	cr_assert_eq(mproc__event_registered(&a->pong_ev), 0);

	struct tally t = {0};
	tally(&t, "ping", a->ping_set, a->ping_seen, a->ping_woke, a->ping_slept);
	tally(&t, "pong", a->pong_set, a->pong_seen, a->pong_woke, a->pong_slept);
	/* The sequence words started 3000 below the wrap: what they read
	 * now, plus 3000, is how many signals found a waiter registered. */
	cr_log_info("%d rounds each way; %d wake-ups over 1 ms, slowest "
		    "%.3f ms, %d late while not asleep; signals that found a "
		    "waiter: %u + %u", ROUNDS, t.slow, (double)t.worst / 1e6,
		    t.stalled,
		    atomic_load(&a->ping_ev.seq) + 3000u,
		    atomic_load(&a->pong_ev.seq) + 3000u);
	cr_assert_eq(t.lost, 0, "%d lost wake-ups (recovered only by the "
		     "%lld ms wait slice)", t.lost,
		     (long long)(MPROC__WAIT_SLICE_NS / MPROC_MSEC));
	munmap(a, sizeof(*a));
}
