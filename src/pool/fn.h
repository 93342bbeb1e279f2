/*
 * Internal: task functions as bytes that name them in a worker's image --
 * the process module's (loaded object, offset) references, packed into a
 * message body (POOL_MSG_DEFINE) or the zygote's start data.
 */
#ifndef MPROC_POOL_FN_H
#define MPROC_POOL_FN_H

#include <stddef.h>
#include <stdint.h>

/* Pack a reference to @fn into a malloc'd buffer of *@len bytes (a whole
 * number of 8-byte words).  Returns 0, -MPROC_ENOSYMBOL (not code of a
 * loaded object), -ENOMEM. */
int pool_fn_pack(const void *fn, void **out, size_t *len);

/* Resolve packed bytes (untrusted: from shared memory) in this image.
 * Returns 0 and *@fn, -MPROC_ECORRUPT (malformed), -MPROC_ENOSYMBOL (does
 * not resolve here; @why says why), -ENOMEM. */
int pool_fn_unpack(const void *buf, size_t len, void **fn, char *why,
		   size_t why_len);

#endif /* MPROC_POOL_FN_H */
