/*
 * Packing of function references for the pool (fn.h).  Layout, all
 * fields native-endian: uint32 is_main, uint32 build-id length, uint64
 * offset, uint32 path length, uint32 symbol length, then the build id,
 * the path and the symbol (no terminators), padded to 8 bytes.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "mproc/common.h"
#include "pool/fn.h"
#include "pool/proto.h"
#include "common/fnref.h"

struct packed_head {
	uint32_t is_main;
	uint32_t build_id_len;
	uint64_t offset;
	uint32_t path_len;
	uint32_t symbol_len;
};

int pool_fn_pack(const void *fn, void **out, size_t *len)
{
	struct mproc__fnref ref;
	int rc = mproc__fnref_encode(fn, &ref);
	if (rc)
		return rc;
	struct packed_head h = {
		.is_main = ref.is_main,
		.build_id_len = ref.build_id_len,
		.offset = ref.offset,
		.path_len = ref.path ? (uint32_t)strlen(ref.path) : 0,
		.symbol_len = ref.symbol ? (uint32_t)strlen(ref.symbol) : 0,
	};
	size_t n = sizeof(h) + h.build_id_len + h.path_len + h.symbol_len;
	size_t total = (size_t)pool_pad8(n);
	unsigned char *p = calloc(1, total);
	if (!p) {
		mproc__fnref_clear(&ref);
		return -ENOMEM;
	}
	size_t off = 0;
	memcpy(p, &h, sizeof(h));
	off += sizeof(h);
	memcpy(p + off, ref.build_id, h.build_id_len);
	off += h.build_id_len;
	if (h.path_len)
		memcpy(p + off, ref.path, h.path_len);
	off += h.path_len;
	if (h.symbol_len)
		memcpy(p + off, ref.symbol, h.symbol_len);
	mproc__fnref_clear(&ref);
	*out = p;
	*len = total;
	return 0;
}

/* A malloc'd NUL-terminated copy of @n bytes, or NULL. */
static char *dup_bytes(const unsigned char *p, size_t n)
{
	char *s = malloc(n + 1);
	if (s) {
		memcpy(s, p, n);
		s[n] = '\0';
	}
	return s;
}

int pool_fn_unpack(const void *buf, size_t len, void **fn, char *why,
		   size_t why_len)
{
	struct packed_head h;
	if (len < sizeof(h) || len > POOL_FNREF_MAX)
		return -MPROC_ECORRUPT;
	memcpy(&h, buf, sizeof(h));
	struct mproc__fnref ref;
	memset(&ref, 0, sizeof(ref));
	if (h.is_main > 1 || h.build_id_len > sizeof(ref.build_id) ||
	    (uint64_t)h.build_id_len + h.path_len + h.symbol_len >
		    len - sizeof(h) ||
	    memchr((const unsigned char *)buf + sizeof(h) + h.build_id_len,
		   '\0', (size_t)h.path_len + h.symbol_len))
		return -MPROC_ECORRUPT;
	const unsigned char *p = (const unsigned char *)buf + sizeof(h);
	ref.is_main = h.is_main;
	ref.offset = h.offset;
	ref.build_id_len = h.build_id_len;
	memcpy(ref.build_id, p, h.build_id_len);
	p += h.build_id_len;
	int rc = 0;
	if (h.path_len && !(ref.path = dup_bytes(p, h.path_len)))
		rc = -ENOMEM;
	p += h.path_len;
	if (!rc && h.symbol_len && !(ref.symbol = dup_bytes(p, h.symbol_len)))
		rc = -ENOMEM;
	if (!rc)
		rc = mproc__fnref_resolve(&ref, fn, why, why_len);
	mproc__fnref_clear(&ref);
	return rc;
}
