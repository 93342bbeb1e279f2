/*
 * Error names.  mproc returns negative errno values; this file gives them
 * text, including mproc's own codes above the kernel's errno range.  It does
 * not use strerror(3) for errno values because that may return a buffer
 * shared between threads; strerrordesc_np (glibc >= 2.32) returns a static
 * string.
 */
#include <errno.h>
#include <limits.h>
#include <string.h>

#include "mproc/common.h"

static const char *const own_names[] = {
	[MPROC_EEOF - MPROC_ERRNO_BASE] = "end of stream",
	[MPROC_ECORRUPT - MPROC_ERRNO_BASE] = "shared segment failed validation",
	[MPROC_EPEERDIED - MPROC_ERRNO_BASE] = "peer process died",
	[MPROC_EWORKERLOST - MPROC_ERRNO_BASE] = "pool worker died while running the task",
	[MPROC_ENOSYMBOL - MPROC_ERRNO_BASE] = "function pointer does not resolve in a fresh process image",
	[MPROC_EINIT - MPROC_ERRNO_BASE] = "pool worker initializer failed",
	[MPROC_EAUTH - MPROC_ERRNO_BASE] = "authentication failed (wrong authkey)",
};

MPROC_API const char *mproc_strerror(int err)
{
	/* -INT_MIN does not fit in an int; no errno is that large anyway. */
	if (err == INT_MIN)
		return "unknown error";
	if (err < 0)
		err = -err;
	if (err == 0)
		return "success";
	if (err > MPROC_ERRNO_BASE && err <= MPROC_ERRNO_LAST) {
		const char *s = own_names[err - MPROC_ERRNO_BASE];
		return s ? s : "unknown mproc error";
	}
	if (err < MPROC_ERRNO_BASE) {
		const char *s = strerrordesc_np(err);
		if (s)
			return s;
	}
	return "unknown error";
}

MPROC_API const char *mproc_version(void)
{
	return MPROC_VERSION_STRING;
}
