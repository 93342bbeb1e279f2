/*
 * Shared-memory segments: creation (memfd or shm_open), the header protocol
 * (magic stored last with release, validated with acquire on open), export
 * of anonymous segments to exec'd children, and the handle's life cycle.
 *
 * Validation order on open: file size first (so the header itself is
 * inside the file), then magic, version, kind, the size fields against the
 * real file size, then the kind's own geometry check on a private copy.
 * Nothing is read from the mapping before the size check, and nothing in the
 * header is read again after validation.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mproc/shm.h"
#include "common/fdreg.h"
#include "common/parse.h"
#include "shm/inspect.h"

struct mproc_shm {
	int fd;                 /* -1 once closed */
	void *base;             /* NULL once unmapped */
	size_t total_size;
	uint32_t kind;
	uint64_t geom[MPROC_SHM_GEOM_WORDS];
	char *name;             /* NULL for anonymous segments */
};

MPROC_API int mproc_shm_check_name(const char *name)
{
	if (!name || name[0] != '/')
		return -EINVAL;
	size_t len = strlen(name + 1);
	if (len == 0)
		return -EINVAL;
	if (len > NAME_MAX)
		return -ENAMETOOLONG;
	if (strchr(name + 1, '/'))
		return -EINVAL;
	if (!strcmp(name, "/.") || !strcmp(name, "/.."))
		return -EINVAL;
	return 0;
}

static size_t page_size(void)
{
	long p = sysconf(_SC_PAGESIZE);
	return p > 0 ? (size_t)p : 4096;
}

static struct mproc_shm_header *hdr_of(const mproc_shm *seg)
{
	return (struct mproc_shm_header *)seg->base;
}

static int map_fd(int fd, size_t size, void **out)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		return -errno;
	*out = p;
	return 0;
}

MPROC_API int mproc_shm_create(const char *name, uint32_t kind,
			       const uint64_t *geom, size_t data_size,
			       unsigned mode, mproc_shm **out)
{
	if (out)
		*out = NULL; /* on every error path, argument errors included */
	if (!out || data_size == 0 || kind == 0 || kind > MPROC_SHM_KIND_MAX)
		return -EINVAL;
	if (name) {
		int rc = mproc_shm_check_name(name);
		if (rc)
			return rc;
	}
	size_t pg = page_size();
	if (data_size > (SIZE_MAX / 2) - MPROC_SHM_HEADER_SIZE - pg)
		return -EINVAL;
	size_t total = (MPROC_SHM_HEADER_SIZE + data_size + pg - 1) & ~(pg - 1);

	mproc_shm *seg = calloc(1, sizeof(*seg));
	if (!seg)
		return -ENOMEM;
	seg->fd = -1;
	int rc;
	if (name) {
		seg->name = strdup(name);
		if (!seg->name) {
			rc = -ENOMEM;
			goto fail;
		}
		seg->fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC,
				   mode ? (mode_t)mode : 0600);
		if (seg->fd < 0) {
			rc = -errno;
			free(seg->name);
			seg->name = NULL; /* not ours: do not unlink on failure */
			goto fail;
		}
		/* shm_open's mode is filtered by the umask; make the asked
		 * mode exact (0600 stays 0600 either way). */
		if (fchmod(seg->fd, mode ? (mode_t)mode : 0600) < 0) {
			rc = -errno;
			goto fail;
		}
	} else {
		seg->fd = memfd_create("mproc", MFD_CLOEXEC | MFD_ALLOW_SEALING);
		if (seg->fd < 0) {
			rc = -errno;
			goto fail;
		}
	}
	if (ftruncate(seg->fd, (off_t)total) < 0) {
		rc = -errno;
		goto fail;
	}
	if (!name && fcntl(seg->fd, F_ADD_SEALS,
			   F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL) < 0) {
		rc = -errno;
		goto fail;
	}
	rc = map_fd(seg->fd, total, &seg->base);
	if (rc)
		goto fail;
	seg->total_size = total;
	seg->kind = kind;
	if (geom)
		memcpy(seg->geom, geom, sizeof(seg->geom));

	if (!name && (rc = mproc__fdreg_add(seg->fd)) != 0) {
		munmap(seg->base, total);
		goto fail;
	}
	struct mproc_shm_header *h = hdr_of(seg);
	h->version = MPROC_SHM_VERSION;
	h->kind = kind;
	h->total_size = total;
	h->data_offset = MPROC_SHM_HEADER_SIZE;
	h->data_size = total - MPROC_SHM_HEADER_SIZE;
	h->creator_pid = (uint32_t)getpid();
	h->creator_uid = (uint32_t)geteuid();
	memcpy(h->geom, seg->geom, sizeof(h->geom));
	*out = seg;
	return 0;

fail:
	if (seg->fd >= 0)
		close(seg->fd);
	if (seg->name) {
		shm_unlink(seg->name);
		free(seg->name);
	}
	free(seg);
	return rc;
}

MPROC_API int mproc_shm_publish(mproc_shm *seg)
{
	if (!seg)
		return -EINVAL;
	if (!seg->base)
		return -EBADF;
	/* Release: pairs with the acquire load of the magic in validate();
	 * every store to the header and data area made by the creator before
	 * this point is visible to an opener that sees the magic. */
	atomic_store_explicit((_Atomic uint64_t *)&hdr_of(seg)->magic,
			      MPROC_SHM_MAGIC, memory_order_release);
	return 0;
}

/* Validate the segment behind @fd and map it into @seg.  On failure the
 * mapping is undone; the descriptor is left to the caller. */
static int validate_and_map(mproc_shm *seg, uint32_t kind,
			    mproc_shm_validate_fn validate, void *ctx)
{
	struct stat st;
	if (fstat(seg->fd, &st) < 0)
		return -errno;
	if (st.st_size < (off_t)MPROC_SHM_HEADER_SIZE)
		return -MPROC_ECORRUPT; /* truncated: no room for a header */
	if ((uint64_t)st.st_size > SIZE_MAX / 2)
		return -MPROC_ECORRUPT;
	size_t fsize = (size_t)st.st_size;
	void *base;
	int rc = map_fd(seg->fd, fsize, &base);
	if (rc)
		return rc;
	const struct mproc_shm_header *h = base;

	/* Acquire: pairs with the release store in mproc_shm_publish, so the
	 * fields read below are the creator's finished initialisation. */
	uint64_t magic = atomic_load_explicit(
		(_Atomic uint64_t *)&((struct mproc_shm_header *)base)->magic,
		memory_order_acquire);
	struct mproc_shm_header copy;
	memcpy(&copy, h, sizeof(copy));

	rc = mproc__shm_header_check(magic, &copy, fsize, kind);
	if (!rc && validate)
		rc = validate(copy.geom, copy.data_size, ctx);
	if (rc) {
		munmap(base, fsize);
		return rc;
	}
	seg->base = base;
	seg->total_size = fsize;
	seg->kind = kind;
	memcpy(seg->geom, copy.geom, sizeof(seg->geom));
	return 0;
}

MPROC_API int mproc_shm_open(const char *name, uint32_t kind, int flags,
			     mproc_shm_validate_fn validate, void *ctx,
			     mproc_shm **out)
{
	if (out)
		*out = NULL;
	if (!out || kind == 0 || kind > MPROC_SHM_KIND_MAX ||
	    (flags & ~MPROC_SHM_ALLOW_FOREIGN_OWNER))
		return -EINVAL;
	int rc = mproc_shm_check_name(name);
	if (rc)
		return rc;
	mproc_shm *seg = calloc(1, sizeof(*seg));
	if (!seg)
		return -ENOMEM;
	seg->name = strdup(name);
	if (!seg->name) {
		free(seg);
		return -ENOMEM;
	}
	seg->fd = shm_open(name, O_RDWR | O_CLOEXEC, 0);
	if (seg->fd < 0) {
		rc = -errno;
		goto fail;
	}
	struct stat st;
	if (fstat(seg->fd, &st) < 0) {
		rc = -errno;
		goto fail;
	}
	if (st.st_uid != geteuid() && !(flags & MPROC_SHM_ALLOW_FOREIGN_OWNER)) {
		rc = -EACCES;
		goto fail;
	}
	/* mproc_shm_create makes the object with shm_open and only then
	 * sizes it: an empty object is one whose creator is not done yet,
	 * the same "retry" as a zero magic, not a corrupt segment. */
	if (st.st_size == 0) {
		rc = -EAGAIN;
		goto fail;
	}
	rc = validate_and_map(seg, kind, validate, ctx);
	if (rc)
		goto fail;
	*out = seg;
	return 0;
fail:
	if (seg->fd >= 0)
		close(seg->fd);
	free(seg->name);
	free(seg);
	return rc;
}

#define TOKEN_PREFIX "mproc-shm:"

MPROC_API int mproc_shm_export(mproc_shm *seg, char *buf, size_t len)
{
	if (!seg || !buf)
		return -EINVAL;
	if (seg->fd < 0)
		return -EBADF;
	char tmp[MPROC_SHM_TOKEN_MAX];
	int n = snprintf(tmp, sizeof(tmp), TOKEN_PREFIX "%d:%zu", seg->fd,
			 seg->total_size);
	if (n < 0 || (size_t)n >= len)
		return -ENOSPC;
	int fl = fcntl(seg->fd, F_GETFD);
	if (fl < 0 || fcntl(seg->fd, F_SETFD, fl & ~FD_CLOEXEC) < 0)
		return -errno;
	memcpy(buf, tmp, (size_t)n + 1);
	return n;
}

MPROC_API int mproc_shm_import(const char *token, uint32_t kind,
			       mproc_shm_validate_fn validate, void *ctx,
			       mproc_shm **out)
{
	if (out)
		*out = NULL;
	if (!token || !out || kind == 0 || kind > MPROC_SHM_KIND_MAX)
		return -EINVAL;
	uint64_t fd_num, size_num;
	const char *p = token;
	if (strncmp(p, TOKEN_PREFIX, strlen(TOKEN_PREFIX)) != 0)
		return -EINVAL;
	p += strlen(TOKEN_PREFIX);
	if (mproc__parse_u64(&p, INT_MAX, &fd_num) || *p++ != ':' ||
	    mproc__parse_u64(&p, SIZE_MAX, &size_num) || *p != '\0')
		return -EINVAL;
	int fd = (int)fd_num;
	size_t size = (size_t)size_num;
	int fl = fcntl(fd, F_GETFD);
	if (fl < 0)
		return -EBADF;
	mproc_shm *seg = calloc(1, sizeof(*seg));
	if (!seg)
		return -ENOMEM;
	seg->fd = fd;
	int rc = validate_and_map(seg, kind, validate, ctx);
	if (!rc && seg->total_size != size) {
		munmap(seg->base, seg->total_size);
		rc = -MPROC_ECORRUPT;
	}
	if (rc) {
		free(seg);
		return rc;
	}
	/* The descriptor is ours now; do not leak it into later execs, but
	 * do pass it on to our own spawned children, as the parent did. */
	fcntl(fd, F_SETFD, fl | FD_CLOEXEC);
	if ((rc = mproc__fdreg_add(fd)) != 0) {
		munmap(seg->base, seg->total_size);
		free(seg);
		return rc;
	}
	*out = seg;
	return 0;
}

MPROC_API void *mproc_shm_data(const mproc_shm *seg)
{
	if (!seg || !seg->base)
		return NULL;
	return (char *)seg->base + MPROC_SHM_HEADER_SIZE;
}

MPROC_API size_t mproc_shm_data_size(const mproc_shm *seg)
{
	if (!seg || !seg->base)
		return 0;
	return seg->total_size - MPROC_SHM_HEADER_SIZE;
}

MPROC_API const struct mproc_shm_header *mproc_shm_header(const mproc_shm *seg)
{
	return seg ? (const struct mproc_shm_header *)seg->base : NULL;
}

MPROC_API const uint64_t *mproc_shm_geom(const mproc_shm *seg)
{
	return seg ? seg->geom : NULL;
}

MPROC_API int mproc_shm_fd(const mproc_shm *seg)
{
	if (!seg)
		return -EINVAL;
	return seg->fd >= 0 ? seg->fd : -EBADF;
}

MPROC_API const char *mproc_shm_name(const mproc_shm *seg)
{
	return seg ? seg->name : NULL;
}

MPROC_API int mproc_shm_unmap(mproc_shm *seg)
{
	if (!seg)
		return -EINVAL;
	if (!seg->base)
		return -EBADF;
	munmap(seg->base, seg->total_size);
	seg->base = NULL;
	return 0;
}

MPROC_API int mproc_shm_close(mproc_shm *seg)
{
	if (!seg)
		return -EINVAL;
	if (seg->fd < 0)
		return -EBADF;
	if (seg->base)
		mproc_shm_unmap(seg);
	if (!seg->name)
		mproc__fdreg_remove(seg->fd);
	close(seg->fd);
	seg->fd = -1;
	return 0;
}

MPROC_API void mproc_shm_free(mproc_shm *seg)
{
	if (!seg)
		return;
	if (seg->fd >= 0)
		mproc_shm_close(seg);
	else if (seg->base)
		mproc_shm_unmap(seg);
	free(seg->name);
	free(seg);
}

MPROC_API int mproc_shm_unlink(const char *name)
{
	int rc = mproc_shm_check_name(name);
	if (rc)
		return rc;
	if (shm_unlink(name) < 0)
		return -errno;
	return 0;
}
