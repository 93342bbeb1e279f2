/* The monotonic clock and deadlines (clock.h). */
#include <errno.h>

#include "common/clock.h"

int64_t mproc__now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return mproc__ts_to_ns(&ts);
}

int64_t mproc__coarse_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return mproc__ts_to_ns(&ts);
}

int mproc__deadline_init(struct mproc__deadline *d, int64_t timeout_ns)
{
	if (timeout_ns < -1)
		return -EINVAL;
	d->forever = timeout_ns == -1;
	d->nowait = timeout_ns == 0;
	/* Forever needs no clock: nothing reads at then.  (A process that
	 * ends joins its children with such a deadline, and in a fresh fork
	 * the clock read faults in the vDSO's pages.) */
	d->at = (struct timespec){ 0, 0 };
	if (!d->forever) {
		clock_gettime(CLOCK_MONOTONIC, &d->at);
		int64_t now = mproc__ts_to_ns(&d->at);
		int64_t end = timeout_ns > INT64_MAX - now ? INT64_MAX
							   : now + timeout_ns;
		d->at.tv_sec = end / MPROC__NSEC_PER_SEC;
		d->at.tv_nsec = end % MPROC__NSEC_PER_SEC;
	}
	return 0;
}

int64_t mproc__deadline_left(const struct mproc__deadline *d)
{
	if (d->forever)
		return INT64_MAX;
	int64_t left = mproc__ts_to_ns(&d->at) - mproc__now_ns();
	return left > 0 ? left : 0;
}

bool mproc__deadline_passed(const struct mproc__deadline *d)
{
	return !d->forever && mproc__deadline_left(d) == 0;
}
