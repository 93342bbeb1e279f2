/*
 * Internal: read-only access to a segment for inspection (mproc-stat), and
 * the generic header check that mproc_shm_open/import use too.
 *
 * An inspector must never change a segment or block a process that uses
 * it: it opens the file O_RDONLY, maps it PROT_READ, and validates the
 * header exactly as an opener does (segment.c), on a private copy.  Unlike
 * an opener it accepts any valid kind, and it leaves the kind's geometry
 * check to the module that owns the layout (queue/inspect.c,
 * pipe/inspect.c, pool/inspect.c).
 */
#ifndef MPROC_SHM_INSPECT_H
#define MPROC_SHM_INSPECT_H

#include <stddef.h>
#include <stdint.h>

#include "mproc/shm.h"

/*
 * Check a private copy of a header, read after an acquire load of the
 * magic (@magic, the value that load returned), against @file_size, the
 * size fstat reported.  @kind: the kind expected, or 0 for any valid kind.
 * Returns 0, -EAGAIN (magic 0: not published yet), -MPROC_ECORRUPT (bad
 * magic, kind out of range, sizes inconsistent with the file),
 * -EPROTONOSUPPORT (other layout version) or -EPROTOTYPE (another kind).
 */
int mproc__shm_header_check(uint64_t magic, const struct mproc_shm_header *h,
			    uint64_t file_size, uint32_t kind);

/* A read-only mapping of a whole segment and the validated private copy
 * of its header. */
struct mproc__shm_view {
	const unsigned char *base; /* PROT_READ mapping; NULL when none */
	size_t size;               /* bytes mapped: the file's size */
	struct mproc_shm_header hdr;
};

/* The data area of a view. */
static inline const unsigned char *
mproc__shm_view_data(const struct mproc__shm_view *v)
{
	return v->base + MPROC_SHM_HEADER_SIZE;
}

/*
 * Map the segment behind @fd (any descriptor open for reading; it is not
 * kept) read-only and validate its header as mproc__shm_header_check
 * does, for any kind.  Returns 0 with @v filled, or a negative errno:
 * -MPROC_ECORRUPT also for a file too short for a header or one that is
 * not a regular file, -EAGAIN for an empty or unpublished one.  Never
 * writes to the file.  Release the view with mproc__shm_view_release.
 */
int mproc__shm_view_fd(int fd, struct mproc__shm_view *v);
void mproc__shm_view_release(struct mproc__shm_view *v);

#endif /* MPROC_SHM_INSPECT_H */
