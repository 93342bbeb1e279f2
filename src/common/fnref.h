/*
 * Function identity across images: a code address as (loaded object,
 * offset), valid in another image of the same program (see fnref.c).
 * Used by the process module's start data (process targets) and by the
 * pool (task functions and initializers).
 */
#ifndef MPROC_COMMON_FNREF_H
#define MPROC_COMMON_FNREF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct mproc__fnref {
	bool is_main;            /* the main executable */
	char *path;              /* shared object path (NULL for main) */
	uint64_t offset;         /* from the object's load base */
	uint32_t build_id_len;   /* 0: the object has no build id */
	uint8_t build_id[64];
	char *symbol;            /* dynamic symbol at that address, or NULL */
};

/* Translate @fn.  Returns 0, -MPROC_ENOSYMBOL (not in the code of a
 * loaded object, or in one that a new image cannot load), -ENOMEM. */
int mproc__fnref_encode(const void *fn, struct mproc__fnref *out);
/* Translate back in this image (loading the object if needed) and check
 * that the address is code of the same object (build id, symbol).
 * Returns 0 and *fn, or -MPROC_ENOSYMBOL.  @why gets a message. */
int mproc__fnref_resolve(const struct mproc__fnref *ref, void **fn,
			      char *why, size_t why_len);
void mproc__fnref_clear(struct mproc__fnref *ref);

#endif /* MPROC_COMMON_FNREF_H */
