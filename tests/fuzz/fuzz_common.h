/*
 * Helpers shared by the libFuzzer targets: a reader that turns the fuzzer's
 * bytes into choices (never failing: an exhausted input reads as zeros), a
 * second "hostile peer" view of a segment through which the targets
 * scribble on shared memory, ASan poisoning of the bytes of the library's
 * own mapping that no correct access may touch, and result checks that
 * abort (a crash for libFuzzer) when a call breaks its contract.
 *
 * Why poisoning: ASan only knows heap, stack and globals, so a read a few
 * bytes past a ring inside an mmap'd segment goes unnoticed.  The targets
 * therefore mark as unaddressable, in the library's mapping only, the
 * padding between shared fields, the slack after the last ring, and the
 * segment header (read once, on open, before the poisoning).  Hostile
 * writes go through a separate, unpoisoned mapping of the same memfd, the
 * way another process would make them.
 */
#ifndef MPROC_FUZZ_COMMON_H
#define MPROC_FUZZ_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <sanitizer/asan_interface.h>

#include "mproc/common.h"
#include "mproc/queue.h"
#include "ring/ring.h"

/* ------------------------------------------------------------------ */
/* Input reader                                                        */

struct fz_in {
	const uint8_t *p;
	size_t n;
};

static inline bool fz_left(const struct fz_in *in)
{
	return in->n > 0;
}

static inline uint8_t fz_u8(struct fz_in *in)
{
	if (!in->n)
		return 0;
	in->n--;
	return *in->p++;
}

/* Little-endian, so that seed files written by hand read naturally. */
static inline uint64_t fz_uint(struct fz_in *in, unsigned bytes)
{
	uint64_t v = 0;
	for (unsigned i = 0; i < bytes; i++)
		v |= (uint64_t)fz_u8(in) << (8 * i);
	return v;
}

static inline uint16_t fz_u16(struct fz_in *in) { return (uint16_t)fz_uint(in, 2); }
static inline uint32_t fz_u32(struct fz_in *in) { return (uint32_t)fz_uint(in, 4); }
static inline uint64_t fz_u64(struct fz_in *in) { return fz_uint(in, 8); }

/* Copy up to @len input bytes to @dst; the rest of @dst is zero-filled. */
static inline void fz_bytes(struct fz_in *in, void *dst, size_t len)
{
	size_t k = len < in->n ? len : in->n;
	memcpy(dst, in->p, k);
	memset((unsigned char *)dst + k, 0, len - k);
	in->p += k;
	in->n -= k;
}

/*
 * A new value for a shared 64-bit word, chosen so that both wild values
 * and the near misses that probe boundary checks are reachable:
 * a raw value, the old value or a reference value (the other index of the
 * ring) plus a small signed delta, or the old value with one bit flipped.
 */
static inline uint64_t fz_word(struct fz_in *in, uint64_t old, uint64_t ref)
{
	switch (fz_u8(in) & 3) {
	case 0:
		return fz_u64(in);
	case 1:
		return old + (uint64_t)(int64_t)(int16_t)fz_u16(in);
	case 2:
		return ref + (uint64_t)(int64_t)(int16_t)fz_u16(in);
	default:
		return old ^ ((uint64_t)1 << (fz_u8(in) & 63));
	}
}

/* ------------------------------------------------------------------ */
/* Contract checks                                                     */

#define FZ_CHECK(cond, ...)                                                   \
	do {                                                                  \
		if (!(cond)) {                                                \
			fprintf(stderr, "fuzz: %s:%d: check failed: %s: ",    \
				__FILE__, __LINE__, #cond);                   \
			fprintf(stderr, __VA_ARGS__);                         \
			fputc('\n', stderr);                                  \
			abort();                                              \
		}                                                             \
	} while (0)

/* True when @rc is one of the negative codes in the 0-terminated list. */
static inline bool fz_err_in(long rc, const int *errs)
{
	for (; *errs; errs++)
		if (rc == -*errs)
			return true;
	return false;
}

#define FZ_ERRS(...) ((const int[]){ __VA_ARGS__, 0 })

/* @rc must be a non-negative result no larger than @max, or one of the
 * listed errors. */
#define FZ_RESULT(rc, max, ...)                                               \
	FZ_CHECK(((rc) >= 0 && (uint64_t)(rc) <= (uint64_t)(max)) ||          \
			 fz_err_in((rc), FZ_ERRS(__VA_ARGS__)),               \
		 "%s returned %ld (%s), limit %llu", #rc, (long)(rc),         \
		 mproc_strerror((int)(rc)), (unsigned long long)(max))

/* ------------------------------------------------------------------ */
/* Segments                                                            */

/* Find this process's mapping of the file behind @fd (offset 0); returns
 * its address and length, or NULL.  Call it before making any other
 * mapping of the same file. */
static inline void *fz_find_mapping(int fd, size_t *len)
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		return NULL;
	FILE *f = fopen("/proc/self/maps", "r");
	if (!f)
		return NULL;
	char line[512];
	void *found = NULL;
	while (fgets(line, sizeof(line), f)) {
		unsigned long lo, hi, off, ino;
		unsigned maj, min;
		if (sscanf(line, "%lx-%lx %*s %lx %x:%x %lu", &lo, &hi, &off,
			   &maj, &min, &ino) != 6)
			continue;
		if (ino == st.st_ino && makedev(maj, min) == st.st_dev &&
		    off == 0) {
			found = (void *)lo;
			*len = hi - lo;
			break;
		}
	}
	fclose(f);
	return found;
}

/* The hostile peer's view: a second shared mapping of @fd. */
static inline unsigned char *fz_map_view(int fd, size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	FZ_CHECK(p != MAP_FAILED, "mmap of the peer view failed");
	return p;
}

/* Mark [base + off, base + off + len) unaddressable in the library's
 * mapping.  Everything is unpoisoned again before the library unmaps it:
 * ASan does not forget poison on munmap, and a later mapping at the same
 * address would inherit it. */
static inline void fz_poison(void *base, size_t off, size_t len)
{
	if (len)
		ASAN_POISON_MEMORY_REGION((unsigned char *)base + off, len);
}

/* Poison the gap between the end of one shared field and the next
 * (@next_off: the next field's offset, or the struct's size). */
#define FZ_POISON_GAP(lib, base_off, type, field, next_off)                   \
	fz_poison((lib), (base_off) + offsetof(type, field) +                 \
				 sizeof(((type *)0)->field),                  \
		  (next_off) - offsetof(type, field) -                        \
			  sizeof(((type *)0)->field))

/* An event's wait words are used; its padding is never read. */
static inline void fz_poison_event(void *lib, size_t off)
{
	size_t used = offsetof(struct mproc__event, pad_);
	fz_poison(lib, off + used, sizeof(struct mproc__event) - used);
}

/* The padding of an SPSC ring's shared indices at @off (queues and pipes
 * both use the ring). */
static inline void fz_poison_spsc_shared(void *lib, size_t off)
{
	typedef struct mproc__ring_spsc_shared T;
	FZ_POISON_GAP(lib, off, T, producer, offsetof(T, tail));
	FZ_POISON_GAP(lib, off, T, msgs_out, offsetof(T, data_ready));
	fz_poison_event(lib, off + offsetof(T, data_ready));
	fz_poison_event(lib, off + offsetof(T, space_ready));
	FZ_POISON_GAP(lib, off, T, closed, sizeof(T));
}

/* The padding of an MPMC ring's shared indices at @off, each slot's tail
 * past its largest payload, and the mapping after the last slot. */
static inline void fz_poison_mpmc(void *lib, size_t off, size_t buf,
				  uint64_t nslots, uint64_t stride,
				  uint64_t max_msg, size_t map_len)
{
	typedef struct mproc__ring_mpmc_shared T;
	FZ_POISON_GAP(lib, off, T, enq_pos, offsetof(T, deq_pos));
	FZ_POISON_GAP(lib, off, T, deq_pos, offsetof(T, data_ready));
	fz_poison_event(lib, off + offsetof(T, data_ready));
	fz_poison_event(lib, off + offsetof(T, space_ready));
	FZ_POISON_GAP(lib, off, T, closed, sizeof(T));
	size_t used = MPROC__RING_MPMC_SLOT_HDR + (size_t)max_msg;
	for (uint64_t i = 0; i < nslots; i++)
		fz_poison(lib, buf + i * stride + used, stride - used);
	size_t end = buf + nslots * stride;
	fz_poison(lib, end, map_len - end);
}

/* A queue's two mappings: the library's own (*@lib, found through the
 * descriptor of its export token) and a second one for the hostile peer
 * (*@view), both *@len bytes. */
static inline void fz_queue_maps(mproc_queue *q, unsigned char **lib,
				 unsigned char **view, size_t *len)
{
	char tok[MPROC_QUEUE_TOKEN_MAX];
	int fd;
	FZ_CHECK(mproc_queue_export(q, tok, sizeof(tok)) > 0, "export");
	FZ_CHECK(sscanf(tok, "mproc-shm:%d:", &fd) == 1, "token %s", tok);
	*lib = fz_find_mapping(fd, len);
	FZ_CHECK(*lib, "no mapping for fd %d", fd);
	*view = fz_map_view(fd, *len);
}

static inline void fz_unpoison(void *base, size_t len)
{
	ASAN_UNPOISON_MEMORY_REGION(base, len);
}

/* Touch every byte of [p, p + len) so that ASan checks that the library
 * handed out a pointer to addressable, in-bounds memory. */
static inline void fz_touch(const void *p, size_t len)
{
	const volatile unsigned char *b = p;
	unsigned sum = 0;
	for (size_t i = 0; i < len; i++)
		sum += b[i];
	(void)sum;
}

#endif /* MPROC_FUZZ_COMMON_H */
