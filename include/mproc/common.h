/*
 * mproc/common.h - conventions shared by every mproc module.
 *
 * Return values: control calls return 0 or a negative errno; data calls
 * return a non-negative count or size, or a negative errno.  mproc never
 * reports results through the global errno.  Besides the kernel's errno
 * values, mproc defines a few codes of its own above the kernel's range
 * (MAX_ERRNO is 4095), so they can never collide with a real errno.
 *
 * Timeouts are relative, in nanoseconds, as int64_t: MPROC_FOREVER (-1)
 * waits without limit, MPROC_NOWAIT (0) never blocks.  Any other negative
 * value is -EINVAL.
 */
#ifndef MPROC_COMMON_H
#define MPROC_COMMON_H

#include <stddef.h>
#include <stdint.h>

#if defined(MPROC_BUILDING)
#define MPROC_API __attribute__((visibility("default")))
#else
#define MPROC_API
#endif

#ifdef __cplusplus
#define MPROC_BEGIN_DECLS extern "C" {
#define MPROC_END_DECLS }
#else
#define MPROC_BEGIN_DECLS
#define MPROC_END_DECLS
#endif

MPROC_BEGIN_DECLS

/** A start-method context (Python's get_context()); see mproc/process.h.
 *  Declared here because every creating call can take one. */
typedef struct mproc_context mproc_context;

/** Timeout value meaning "wait without limit". */
#define MPROC_FOREVER ((int64_t)-1)
/** Timeout value meaning "never block". */
#define MPROC_NOWAIT ((int64_t)0)

/** Nanoseconds per millisecond / second, for building timeouts. */
#define MPROC_MSEC ((int64_t)1000000)
#define MPROC_SEC ((int64_t)1000000000)

/* mproc's own error codes, returned negated like errno values. */
#define MPROC_ERRNO_BASE 4096
/** End of stream: the peer closed, or the queue was closed and drained.
 *  Distinct from -EAGAIN (empty right now) and -ETIMEDOUT. */
#define MPROC_EEOF 4097
/** A shared segment failed validation (bad magic, size, geometry, or an
 *  index or record length that cannot be right). */
#define MPROC_ECORRUPT 4098
/** The peer process died (detected by a liveness check). */
#define MPROC_EPEERDIED 4099
/** A pool worker died while it ran the task. */
#define MPROC_EWORKERLOST 4100
/** A function pointer could not be translated for a fresh process image. */
#define MPROC_ENOSYMBOL 4101
/** A pool worker's initializer failed, so the pool cannot run tasks. */
#define MPROC_EINIT 4102
/** Authentication failed: the peer of a Listener or Client answered a
 *  challenge with the wrong key, or rejected our answer. */
#define MPROC_EAUTH 4103
#define MPROC_ERRNO_LAST 4103

/**
 * mproc_strerror - name an error code.
 * @err: an error as returned by any mproc call (negative) or its absolute
 *       value; 0 gives "success".
 *
 * Returns a static string that is never NULL, also for unknown codes.
 * Thread-safe; never blocks.
 */
MPROC_API const char *mproc_strerror(int err);

/**
 * mproc_version - the library's version string, e.g. "0.1.0".
 * Thread-safe; never blocks.
 */
MPROC_API const char *mproc_version(void);

MPROC_END_DECLS

#endif /* MPROC_COMMON_H */
