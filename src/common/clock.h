/*
 * Internal: the monotonic clock and deadlines, for every module.
 *
 * Public timeouts are relative nanoseconds (-1 forever, 0 never block);
 * inside mproc they become absolute CLOCK_MONOTONIC deadlines once, so a
 * call that sleeps several times (spin, futex slice, liveness check,
 * retry after EINTR) never stretches the caller's timeout.
 */
#ifndef MPROC_COMMON_CLOCK_H
#define MPROC_COMMON_CLOCK_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#define MPROC__NSEC_PER_SEC 1000000000LL

static inline int64_t mproc__ts_to_ns(const struct timespec *t)
{
	return (int64_t)t->tv_sec * MPROC__NSEC_PER_SEC + t->tv_nsec;
}

/* CLOCK_MONOTONIC in nanoseconds. */
int64_t mproc__now_ns(void);
/* CLOCK_MONOTONIC_COARSE in nanoseconds: a tick-resolution clock read
 * without leaving user space, for rate limits that run on hot paths. */
int64_t mproc__coarse_now_ns(void);

struct mproc__deadline {
	bool forever;
	bool nowait;        /* timeout was 0: look once, never spin or sleep */
	struct timespec at; /* CLOCK_MONOTONIC; unset (zero) when forever */
};

/* Turn a relative timeout (ns; -1 forever; 0 already expired) into an
 * absolute deadline.  Returns 0, or -EINVAL for a timeout below -1.
 * Absurdly long timeouts are clamped (about 292 years), never wrapped. */
int mproc__deadline_init(struct mproc__deadline *d, int64_t timeout_ns);
/* True once the deadline has passed (never for "forever"). */
bool mproc__deadline_passed(const struct mproc__deadline *d);
/* Nanoseconds left (INT64_MAX for forever; 0 when passed). */
int64_t mproc__deadline_left(const struct mproc__deadline *d);

/* A deadline that reads the clock only when a call first has to wait, so
 * the fast path (data already there) makes no clock call. */
struct mproc__lazy_deadline {
	int64_t timeout_ns;
	bool started;
	struct mproc__deadline d;
};

/* @timeout_ns must already be checked (>= -1). */
static inline void mproc__lazy_init(struct mproc__lazy_deadline *l,
				    int64_t timeout_ns)
{
	l->timeout_ns = timeout_ns;
	l->started = false;
}

static inline bool mproc__lazy_nowait(const struct mproc__lazy_deadline *l)
{
	return l->timeout_ns == 0;
}

static inline const struct mproc__deadline *
mproc__lazy_get(struct mproc__lazy_deadline *l)
{
	if (!l->started) {
		mproc__deadline_init(&l->d, l->timeout_ns);
		l->started = true;
	}
	return &l->d;
}

#endif /* MPROC_COMMON_CLOCK_H */
