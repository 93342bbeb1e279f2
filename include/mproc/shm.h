/*
 * mproc/shm.h - shared-memory segments.
 *
 * A segment is a mapping of a memfd (anonymous: no name, freed when the last
 * descriptor closes, inherited across fork) or of a POSIX shared-memory
 * object (named: created with O_CREAT|O_EXCL, mode 0600 by default).  Every
 * segment starts with a fixed header (struct mproc_shm_header) describing
 * what it holds; the magic number is written last, with release ordering,
 * and marks the segment initialised.  Opening a segment validates every
 * header field against the real file size before anything in it is
 * trusted, and copies the geometry into the private handle: later code never
 * re-reads the header, so a peer that scribbles on it afterwards cannot
 * steer this process out of bounds.
 *
 * Queues and pipes are built on segments; the calls here are public so that
 * tools (mproc-stat) and applications can use raw segments too.
 *
 * Truncation.  A process that may write a segment's file can also resize
 * it, and every other process that touches a page past the new end of
 * its mapping gets SIGBUS, which no validation can catch.  Anonymous
 * segments are memfds sealed with F_SEAL_SHRINK | F_SEAL_GROW (and
 * F_SEAL_SEAL) before anyone else can see them, so nobody can resize them
 * at all.  Named segments (shm_open) cannot be sealed: any process with
 * write permission on the name -- the owner by default (mode 0600), or
 * whoever a wider mode lets in -- can ftruncate(2) the object and crash
 * every process that has it mapped.  Use names only between processes
 * that trust each other.  Unrelated processes that do not should meet
 * through the authenticated rendezvous of mproc/listener.h
 * (mproc_listener_create on one side, mproc_client on the other): it
 * checks a shared key and hands over the ends of a pipe in a sealed memfd
 * (mproc_listener_peer_cred tells who the peer is).
 *
 * Concurrency: a handle may be used from several threads for the read-only
 * calls (data, size, fd, kind, geometry).  close/free/unmap must not run
 * concurrently with any other call on the same handle.  Distinct handles are
 * independent, in one process or many.
 */
#ifndef MPROC_SHM_H
#define MPROC_SHM_H

#include <stddef.h>
#include <stdint.h>

#include "mproc/common.h"

MPROC_BEGIN_DECLS

/** "MPROCSEG" as a little-endian 64-bit word. */
#define MPROC_SHM_MAGIC UINT64_C(0x474553434f52504d)
/** Layout version of the segment: the header and the layouts of the
 *  kinds behind it.  2: MPMC slot headers carry a claimer identity (32
 *  bytes), event waiter words are 64-bit, the SPSC indices name their
 *  producer, a pipe's streamed fragments carry a stream header; a
 *  process of another version refuses the segment. */
#define MPROC_SHM_VERSION 2u
/** Bytes reserved for the header at the start of every segment. */
#define MPROC_SHM_HEADER_SIZE 256u
/** Number of kind-specific geometry words in the header. */
#define MPROC_SHM_GEOM_WORDS 8
/** Longest token written by mproc_shm_export, with its terminating NUL. */
#define MPROC_SHM_TOKEN_MAX 64

/** What a segment holds. */
enum mproc_shm_kind {
	MPROC_SHM_KIND_RAW = 1,   /**< application data */
	MPROC_SHM_KIND_QUEUE = 2, /**< mproc_queue */
	MPROC_SHM_KIND_PIPE = 3,  /**< mproc_conn pair */
	MPROC_SHM_KIND_POOL = 4,  /**< mproc_pool control block */
	MPROC_SHM_KIND_MAX = 4,
};

/**
 * Header at offset 0 of every segment.  All fields are fixed-width; nothing
 * in shared memory is a pointer.  The data area starts at data_offset
 * (MPROC_SHM_HEADER_SIZE) and holds data_size bytes.
 */
struct mproc_shm_header {
	uint64_t magic;        /**< MPROC_SHM_MAGIC, stored last (release) */
	uint32_t version;      /**< MPROC_SHM_VERSION */
	uint32_t kind;         /**< enum mproc_shm_kind */
	uint64_t total_size;   /**< size of the whole file, header included */
	uint64_t data_offset;  /**< where the data area starts */
	uint64_t data_size;    /**< bytes in the data area */
	uint32_t creator_pid;  /**< informational only */
	uint32_t creator_uid;  /**< informational only */
	uint64_t geom[MPROC_SHM_GEOM_WORDS]; /**< kind-specific geometry */
};

/** Flags for mproc_shm_open / mproc_shm_import. */
enum {
	/** Accept a named segment owned by another user (default: -EACCES). */
	MPROC_SHM_ALLOW_FOREIGN_OWNER = 1 << 0,
};

/**
 * Kind-specific check of a header's geometry, called by open and import
 * after the generic checks passed.  @geom is the private copy.  Return 0 if
 * the geometry is consistent with @data_size, a negative errno (normally
 * -MPROC_ECORRUPT) if not.
 */
typedef int (*mproc_shm_validate_fn)(const uint64_t geom[MPROC_SHM_GEOM_WORDS],
				     uint64_t data_size, void *ctx);

typedef struct mproc_shm mproc_shm;

/**
 * mproc_shm_create - create and map a new segment.
 * @name: NULL for an anonymous (memfd) segment; otherwise a POSIX name: one
 *        leading '/', no other '/', 1..NAME_MAX characters after it, not
 *        "/." or "/..".
 * @kind: enum mproc_shm_kind.
 * @geom: MPROC_SHM_GEOM_WORDS kind-specific words, or NULL for zeros.
 * @data_size: bytes of data area wanted (> 0); the file is rounded up to
 *        whole pages and data_size records the rounded-up area.
 * @mode: permission bits for a named segment (0 means 0600); ignored for
 *        anonymous ones.
 * @out: receives the handle; set to NULL on every error (this holds for
 *        mproc_shm_open and mproc_shm_import too).
 *
 * The data area is zero-filled.  The segment is not yet valid for
 * mproc_shm_open: initialise the data area, then call mproc_shm_publish.
 * Anonymous segments are sealed against growing and shrinking.
 *
 * Returns 0, or -EINVAL (bad name, kind, size or NULL out), -EEXIST (name
 * taken), -ENAMETOOLONG, -ENOMEM, -EMFILE, or another errno from
 * memfd_create/shm_open/ftruncate/mmap.  On error nothing is left behind
 * (a named object that was created is unlinked again).
 * Does not block.  Thread-safe.
 */
MPROC_API int mproc_shm_create(const char *name, uint32_t kind,
			       const uint64_t *geom, size_t data_size,
			       unsigned mode, mproc_shm **out);

/**
 * mproc_shm_publish - mark a created segment initialised by storing its
 * magic with release ordering: everything written before this call is
 * visible to a process whose open sees the magic.
 * Returns 0, -EINVAL (NULL), -EBADF (closed handle).  Does not block.
 */
MPROC_API int mproc_shm_publish(mproc_shm *seg);

/**
 * mproc_shm_open - open and validate an existing named segment.
 * @name: as for mproc_shm_create.
 * @kind: the kind expected; a different kind is -EPROTOTYPE.
 * @flags: MPROC_SHM_ALLOW_FOREIGN_OWNER or 0.
 * @validate: kind-specific geometry check, or NULL.
 * @ctx: passed to @validate.
 *
 * Returns 0, or -EINVAL (bad arguments), -ENOENT, -EACCES (owned by another
 * user and not allowed, or permission denied), -EAGAIN (the creator has not
 * published it yet: retry), -EPROTONOSUPPORT (other layout version),
 * -EPROTOTYPE (other kind), -MPROC_ECORRUPT (bad magic, sizes inconsistent
 * with the file, truncated file, geometry rejected), or an errno from
 * shm_open/fstat/mmap.  Does not block.  Thread-safe.
 */
MPROC_API int mproc_shm_open(const char *name, uint32_t kind, int flags,
			     mproc_shm_validate_fn validate, void *ctx,
			     mproc_shm **out);

/**
 * mproc_shm_export - make a segment's descriptor survive exec and describe
 * it in a short token ("mproc-shm:FD:SIZE") that a child started by exec
 * passes to mproc_shm_import.
 * @buf/@len: receives the NUL-terminated token; MPROC_SHM_TOKEN_MAX bytes
 *        always suffice.
 *
 * This clears FD_CLOEXEC on the handle's descriptor: every program this
 * process execs afterwards inherits it, until mproc_shm_close.
 * Returns the token's length, or -EINVAL, -EBADF (closed), -ENOSPC (buffer
 * too small).  Does not block.
 */
MPROC_API int mproc_shm_export(mproc_shm *seg, char *buf, size_t len);

/**
 * mproc_shm_import - open a segment from a token made by mproc_shm_export
 * in the parent.  The inherited descriptor becomes owned by the new handle
 * and is set close-on-exec again.  Validation, @kind, @validate and the
 * errors are as for mproc_shm_open, plus -EINVAL for a malformed token and
 * -EBADF when the token's descriptor is not open.  On failure the
 * descriptor is not closed: it stays the caller's, to retry or to close.
 */
MPROC_API int mproc_shm_import(const char *token, uint32_t kind,
			       mproc_shm_validate_fn validate, void *ctx,
			       mproc_shm **out);

/** mproc_shm_data - start of the data area, or NULL if unmapped/closed. */
MPROC_API void *mproc_shm_data(const mproc_shm *seg);
/** mproc_shm_data_size - bytes in the data area (0 if closed). */
MPROC_API size_t mproc_shm_data_size(const mproc_shm *seg);
/** mproc_shm_header - the mapped header (read-only view), or NULL. */
MPROC_API const struct mproc_shm_header *mproc_shm_header(const mproc_shm *seg);
/** mproc_shm_geom - the validated private copy of the geometry words. */
MPROC_API const uint64_t *mproc_shm_geom(const mproc_shm *seg);
/** mproc_shm_fd - the segment's descriptor, or -EBADF if closed. */
MPROC_API int mproc_shm_fd(const mproc_shm *seg);
/** mproc_shm_name - the POSIX name, or NULL for an anonymous segment. */
MPROC_API const char *mproc_shm_name(const mproc_shm *seg);

/**
 * mproc_shm_unmap - remove the mapping but keep the descriptor (the data
 * pointer becomes NULL).  Returns 0, -EINVAL (NULL), -EBADF (already
 * unmapped or closed).
 */
MPROC_API int mproc_shm_unmap(mproc_shm *seg);

/**
 * mproc_shm_close - unmap (if still mapped) and close the descriptor.  The
 * handle stays allocated so that a second close is a clean -EBADF rather
 * than a use-after-free; release it with mproc_shm_free.
 * Returns 0, -EINVAL (NULL), -EBADF (already closed).
 */
MPROC_API int mproc_shm_close(mproc_shm *seg);

/** mproc_shm_free - close if still open, then release the handle.  NULL is
 *  a no-op.  The handle must not be used afterwards. */
MPROC_API void mproc_shm_free(mproc_shm *seg);

/**
 * mproc_shm_unlink - remove a segment's name (processes that have it open
 * keep using it).  Returns 0, -EINVAL (bad name), -ENOENT, -EACCES.
 */
MPROC_API int mproc_shm_unlink(const char *name);

/**
 * mproc_shm_check_name - 0 if @name is a valid POSIX shared-memory name as
 * described at mproc_shm_create, -EINVAL or -ENAMETOOLONG otherwise.
 */
MPROC_API int mproc_shm_check_name(const char *name);

MPROC_END_DECLS

#endif /* MPROC_SHM_H */
