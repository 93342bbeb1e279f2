/*
 * Internal: strict decimal parsing for tokens that cross exec (descriptor
 * numbers, sizes).  Stricter than strtol or sscanf on purpose: no sign, no
 * spaces, no base prefix, and overflow is an error rather than undefined,
 * so a hostile token cannot turn into some other open descriptor.
 */
#ifndef MPROC_COMMON_PARSE_H
#define MPROC_COMMON_PARSE_H

#include <stdint.h>

/* Read an unsigned decimal of at most @max at *@p and advance *@p past
 * it.  Returns 0, or -EINVAL when no digit starts there or the value
 * exceeds @max (then *@p and *@out are left alone). */
int mproc__parse_u64(const char **p, uint64_t max, uint64_t *out);

/* A whole string that is one decimal descriptor number 0..INT_MAX:
 * returns it, or -EINVAL. */
int mproc__parse_fd(const char *s);

/* The descriptor of a segment token ("mproc-shm:FD:SIZE", made by
 * mproc_shm_export) without importing it: stores FD in *@fd and points
 * *@rest at the ":SIZE" part, so that a caller can import the segment
 * through a duplicate ("mproc-shm:" dup, then @rest) and leave the
 * token's own descriptor alone until nothing can fail.  Returns 0 or
 * -EINVAL; mproc_shm_import checks the rest. */
int mproc__parse_shm_token_fd(const char *tok, int *fd, const char **rest);

#endif /* MPROC_COMMON_PARSE_H */
