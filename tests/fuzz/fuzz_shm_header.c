/*
 * fuzz_shm_header: the input becomes a whole segment file (a memfd padded
 * with zeros or truncated to the size the input names), described by a
 * token as mproc_shm_export writes it ("mproc-shm:FD:SIZE"; the size may
 * lie, and the token may carry junk), and is then opened the way a child
 * would: mproc_shm_import for every kind, mproc_queue_import and
 * mproc_conn_import (with real eventfds, missing ones, or a descriptor
 * that is not an eventfd).  Whatever validates is then used a little with
 * non-blocking calls, with the bytes past the geometry's last ring
 * poisoned, so that a hostile geometry that slips through shows up.
 *
 * Input: mode (u8), file size (u16), connection token shape (u8), the
 * token's size field (u64, only when the mode says it lies), then the
 * file's bytes from offset 0.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/eventfd.h>

#include "fuzz_common.h"
#include "mproc/pipe.h"
#include "mproc/queue.h"
#include "mproc/shm.h"
#include "pipe/conn.h"
#include "ring/ring.h"

/* The queue geometry words (queue.c); the pipe's come from conn.h. */
enum { Q_RING, Q_SIZE, Q_MAX_MSG, Q_STRIDE, Q_FLAGS, Q_BUF_OFF };
enum { Q_SPSC = 1, Q_MPMC = 2 };

struct seg_file {
	int fd;
	size_t size;
	struct stat st;
	struct mproc_shm_header hdr; /* as written, for the poisoning */
	unsigned mode;
	uint64_t token_size;
};

/* The generic checks passed before this runs: the sizes must agree. */
static int check_geom(const uint64_t geom[MPROC_SHM_GEOM_WORDS],
		      uint64_t data_size, void *ctx)
{
	const struct seg_file *s = ctx;
	FZ_CHECK(data_size == s->size - MPROC_SHM_HEADER_SIZE,
		 "validate called with data_size %llu for a %zu-byte file",
		 (unsigned long long)data_size, s->size);
	fz_touch(geom, MPROC_SHM_GEOM_WORDS * sizeof(uint64_t));
	return 0;
}

/* A descriptor for one import attempt; the import takes it over on
 * success. */
static int dup_fd(const struct seg_file *s)
{
	int fd = fcntl(s->fd, F_DUPFD_CLOEXEC, 0);
	FZ_CHECK(fd >= 0, "dup");
	return fd;
}

/* After a failed import the token's descriptor is still ours, unchanged
 * (shm.h, queue.h, pipe.h: a failed import closes nothing): check that,
 * and close it. */
static void drop_fd(const struct seg_file *s, int fd)
{
	struct stat st;
	FZ_CHECK(fstat(fd, &st) == 0 && st.st_ino == s->st.st_ino &&
			 st.st_dev == s->st.st_dev,
		 "a failed import closed or replaced descriptor %d", fd);
	close(fd);
}

static void make_token(const struct seg_file *s, int fd, char *buf, size_t len)
{
	size_t size = s->size;
	switch (s->mode & 3) {
	case 0:
		snprintf(buf, len, "mproc-shm:%d:%zu", fd, size);
		break;
	case 1:
		snprintf(buf, len, "mproc-shm:%d:%llu", fd,
			 (unsigned long long)s->token_size);
		break;
	case 2:
		snprintf(buf, len, "mproc-shm:%d:%zu:", fd, size);
		break;
	default:
		snprintf(buf, len, "mproc-shm:%d:0%zu", fd, size);
		break;
	}
}

/* Poison what lies past @end (the last ring's end in the geometry that
 * validated) in the library's mapping of @fd, and the header. */
static void *poison_past(int fd, size_t end, size_t *map_len)
{
	void *lib = fz_find_mapping(fd, map_len);
	FZ_CHECK(lib, "no mapping of the imported segment");
	FZ_CHECK(end <= *map_len, "geometry ends at %zu past a mapping of %zu",
		 end, *map_len);
	fz_poison(lib, 0, MPROC_SHM_HEADER_SIZE);
	fz_poison(lib, end, *map_len - end);
	return lib;
}

static void try_shm(const struct seg_file *s)
{
	for (uint32_t kind = 1; kind <= MPROC_SHM_KIND_MAX; kind++) {
		int fd = dup_fd(s);
		char tok[64];
		make_token(s, fd, tok, sizeof(tok));
		mproc_shm *seg = NULL;
		int rc = mproc_shm_import(tok, kind, kind & 1 ? check_geom : NULL,
					  (void *)s, &seg);
		if (rc == 0) {
			FZ_CHECK(seg && mproc_shm_data_size(seg) ==
						s->size - MPROC_SHM_HEADER_SIZE,
				 "imported segment has the wrong size");
			fz_touch(mproc_shm_geom(seg),
				 MPROC_SHM_GEOM_WORDS * sizeof(uint64_t));
			mproc_shm_free(seg);
		} else {
			FZ_CHECK(rc < 0 && -rc <= MPROC_ERRNO_LAST && !seg,
				 "shm import: %d", rc);
			drop_fd(s, fd);
		}
	}
}

static void use_queue(mproc_queue *q)
{
	ssize_t max = mproc_queue_max_msg(q);
	FZ_CHECK(max >= 0, "max_msg %zd", max);
	size_t cap = (size_t)max < 65536 ? (size_t)max : 65536;
	unsigned char *b = malloc(cap ? cap : 1);
	ssize_t rc = mproc_queue_get_nowait(q, b, cap);
	FZ_RESULT(rc, cap, EMSGSIZE, EAGAIN, MPROC_EEOF, MPROC_ECORRUPT);
	if (rc > 0)
		fz_touch(b, (size_t)rc);
	rc = mproc_queue_next_size(q, MPROC_NOWAIT);
	FZ_RESULT(rc, max, EAGAIN, MPROC_EEOF, MPROC_ECORRUPT);
	const void *p;
	rc = mproc_queue_peek(q, &p, MPROC_NOWAIT);
	FZ_RESULT(rc, max, EAGAIN, MPROC_EEOF, MPROC_ECORRUPT);
	if (rc >= 0) {
		fz_touch(p, (size_t)rc);
		FZ_CHECK(mproc_queue_release(q) == 0, "release");
	}
	size_t len = cap < 100 ? cap : 100;
	memset(b, 0x42, len);
	rc = mproc_queue_put_nowait(q, b, len);
	FZ_RESULT(rc, len, EAGAIN, EPIPE, MPROC_ECORRUPT);
	rc = mproc_queue_get_nowait(q, b, cap);
	FZ_RESULT(rc, cap, EMSGSIZE, EAGAIN, MPROC_EEOF, MPROC_ECORRUPT);
	FZ_CHECK(mproc_queue_qsize(q) >= 0, "qsize");
	int full = mproc_queue_full(q);
	FZ_CHECK(full == 0 || full == 1, "full %d", full);
	free(b);
}

static void try_queue(const struct seg_file *s)
{
	int fd = dup_fd(s);
	char tok[64];
	make_token(s, fd, tok, sizeof(tok));
	mproc_queue *q = NULL;
	int rc = mproc_queue_import(tok, s->mode & 4 ? MPROC_QUEUE_BUSY_POLL : 0, &q);
	if (rc) {
		FZ_CHECK(rc < 0 && -rc <= MPROC_ERRNO_LAST && !q, "queue import: %d", rc);
		drop_fd(s, fd);
		return;
	}
	const uint64_t *g = s->hdr.geom;
	size_t end = MPROC_SHM_HEADER_SIZE + (size_t)g[Q_BUF_OFF] +
		     (size_t)(g[Q_RING] == Q_SPSC ? g[Q_SIZE] : g[Q_SIZE] * g[Q_STRIDE]);
	size_t map_len;
	void *lib = poison_past(s->fd, end, &map_len);
	use_queue(q);
	fz_unpoison(lib, map_len);
	mproc_queue_free(q);
}

static void use_conn(mproc_conn *c)
{
	FZ_CHECK(mproc_conn_set_timeout(c, MPROC_NOWAIT) == 0, "set_timeout");
	int p = mproc_conn_poll(c, MPROC_NOWAIT);
	FZ_RESULT(p, 1, EPERM, EBADF, MPROC_ECORRUPT, MPROC_EPEERDIED);
	ssize_t rc = mproc_conn_next_size(c, MPROC_NOWAIT);
	FZ_RESULT(rc, SSIZE_MAX, EAGAIN, MPROC_EEOF, EPERM, EBADF,
		  MPROC_ECORRUPT, MPROC_EPEERDIED);
	size_t cap = 65536;
	unsigned char *b = malloc(cap);
	rc = mproc_conn_recv_bytes_into(c, b, cap);
	FZ_RESULT(rc, cap, EMSGSIZE, EAGAIN, MPROC_EEOF, ENOMEM, EPERM, EBADF,
		  MPROC_ECORRUPT, MPROC_EPEERDIED);
	if (rc > 0)
		fz_touch(b, (size_t)rc);
	memset(b, 0x24, 64);
	rc = mproc_conn_send_bytes(c, b, 64);
	FZ_RESULT(rc, 64, EAGAIN, EPIPE, EPERM, EBADF, MPROC_ECORRUPT,
		  MPROC_EPEERDIED);
	void *got = NULL;
	size_t len;
	rc = mproc_conn_recv_bytes(c, cap, &got, &len);
	FZ_RESULT(rc, cap, EMSGSIZE, EAGAIN, MPROC_EEOF, ENOMEM, EPERM, EBADF,
		  MPROC_ECORRUPT, MPROC_EPEERDIED);
	if (rc >= 0)
		fz_touch(got, len);
	free(got);
	free(b);
}

/* A descriptor for the connection token: an eventfd, none, or one that is
 * not an eventfd (the segment's own). */
static int conn_fd(const struct seg_file *s, unsigned how)
{
	switch (how & 3) {
	case 1:
		return -1;
	case 2:
		return s->fd;
	default: {
		int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		FZ_CHECK(fd >= 0, "eventfd");
		return fd;
	}
	}
}

static void try_conn(const struct seg_file *s, unsigned shape)
{
	int end = shape & 1;
	int rx = conn_fd(s, shape >> 1), tx = conn_fd(s, shape >> 3);
	int fd = dup_fd(s);
	char tok[MPROC_CONN_TOKEN_MAX], shm_tok[64];
	make_token(s, fd, shm_tok, sizeof(shm_tok));
	snprintf(tok, sizeof(tok), "mproc-conn:%d:%d:%d:%s", end, rx, tx, shm_tok);
	mproc_conn *c = NULL;
	int rc = mproc_conn_import(tok, &c);
	if (rc == 0) {
		/* The connection owns the eventfds and the segment now. */
		const uint64_t *g = mproc_shm_geom(c->res->seg);
		size_t last = g[GEOM_RING1] ? (size_t)g[GEOM_RING1] : (size_t)g[GEOM_RING0];
		size_t stop = MPROC_SHM_HEADER_SIZE + last +
			      sizeof(struct mproc__ring_spsc_shared) + (size_t)g[GEOM_CAP];
		size_t map_len;
		void *lib = poison_past(s->fd, stop, &map_len);
		use_conn(c);
		fz_unpoison(lib, map_len);
		mproc_conn_free(c);
		return;
	}
	FZ_CHECK(rc < 0 && -rc <= MPROC_ERRNO_LAST && !c, "conn import: %d", rc);
	drop_fd(s, fd);
	if (rx >= 0 && rx != s->fd)
		close(rx);
	if (tx >= 0 && tx != s->fd)
		close(tx);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz_in in = { data, size };
	struct seg_file s;
	memset(&s, 0, sizeof(s));
	s.mode = fz_u8(&in);
	s.size = fz_u16(&in);
	unsigned shape = fz_u8(&in);
	if ((s.mode & 3) == 1)
		s.token_size = fz_u64(&in);

	s.fd = memfd_create("fuzz-seg", MFD_CLOEXEC);
	FZ_CHECK(s.fd >= 0, "memfd_create");
	FZ_CHECK(ftruncate(s.fd, (off_t)s.size) == 0, "ftruncate");
	size_t n = in.n < s.size ? in.n : s.size;
	FZ_CHECK(pwrite(s.fd, in.p, n, 0) == (ssize_t)n, "pwrite");
	memcpy(&s.hdr, in.p, n < sizeof(s.hdr) ? n : sizeof(s.hdr));
	FZ_CHECK(fstat(s.fd, &s.st) == 0, "fstat");

	try_shm(&s);
	try_queue(&s);
	try_conn(&s, shape);
	close(s.fd);
	return 0;
}
