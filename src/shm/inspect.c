/*
 * Read-only segment views for mproc-stat, and the header check shared with
 * segment.c (see inspect.h).  The order of the checks is the opener's:
 * the file size first, so that the header lies inside the file, then
 * magic, version, kind and the size fields against the file size.
 */
#include <errno.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "shm/inspect.h"

int mproc__shm_header_check(uint64_t magic, const struct mproc_shm_header *h,
			    uint64_t file_size, uint32_t kind)
{
	if (magic == 0)
		return -EAGAIN;
	if (magic != MPROC_SHM_MAGIC)
		return -MPROC_ECORRUPT;
	if (h->version != MPROC_SHM_VERSION)
		return -EPROTONOSUPPORT;
	if (h->kind == 0 || h->kind > MPROC_SHM_KIND_MAX)
		return -MPROC_ECORRUPT;
	if (kind && h->kind != kind)
		return -EPROTOTYPE;
	if (h->total_size != file_size ||
	    h->data_offset != MPROC_SHM_HEADER_SIZE ||
	    h->data_size != h->total_size - MPROC_SHM_HEADER_SIZE)
		return -MPROC_ECORRUPT;
	return 0;
}

int mproc__shm_view_fd(int fd, struct mproc__shm_view *v)
{
	memset(v, 0, sizeof(*v));
	struct stat st;
	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode))
		return -MPROC_ECORRUPT;
	if (st.st_size == 0)
		return -EAGAIN; /* created, not yet sized (segment.c) */
	if (st.st_size < (off_t)MPROC_SHM_HEADER_SIZE ||
	    (uint64_t)st.st_size > SIZE_MAX / 2)
		return -MPROC_ECORRUPT;
	size_t size = (size_t)st.st_size;
	void *p = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		return -errno;
	/* Acquire: pairs with the release store in mproc_shm_publish, as in
	 * an opener; the copy below is then the creator's initialisation. */
	uint64_t magic = atomic_load_explicit(
		(const _Atomic uint64_t *)p, memory_order_acquire);
	memcpy(&v->hdr, p, sizeof(v->hdr));
	int rc = mproc__shm_header_check(magic, &v->hdr, size, 0);
	if (rc) {
		munmap(p, size);
		memset(v, 0, sizeof(*v));
		return rc;
	}
	v->base = p;
	v->size = size;
	return 0;
}

void mproc__shm_view_release(struct mproc__shm_view *v)
{
	if (v->base)
		munmap((void *)v->base, v->size);
	v->base = NULL;
	v->size = 0;
}
