/*
 * Internal compiler and CPU helpers used by every module.  Atomics are C11
 * <stdatomic.h> throughout mproc (the one atomics vocabulary); this file
 * only adds what C11 lacks: a spin-loop hint, cache-line alignment and
 * branch hints.
 */
#ifndef MPROC_COMPILER_H
#define MPROC_COMPILER_H

#include <stdatomic.h>
#include <stdint.h>

#define MPROC_CACHELINE 64
#define mproc__aligned_cl __attribute__((aligned(MPROC_CACHELINE)))
#define mproc__likely(x) __builtin_expect(!!(x), 1)
#define mproc__unlikely(x) __builtin_expect(!!(x), 0)

/* Tell the CPU we are spinning (frees the sibling hyper-thread, saves
 * power, avoids a memory-order machine clear when the loop exits). */
static inline void mproc__cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield" ::: "memory");
#else
	__asm__ __volatile__("" ::: "memory");
#endif
}

/* ThreadSanitizer cannot see synchronisation done inside libraries it
 * did not instrument (liburcu's wait-free queue): these mark the edge
 * by hand, as a release on the producer's side and an acquire on the
 * consumer's, on the address of the object handed over.  No code at all
 * in other builds. */
#if defined(__SANITIZE_THREAD__)
#define MPROC__TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define MPROC__TSAN 1
#endif
#endif
#ifdef MPROC__TSAN
void __tsan_acquire(void *addr);
void __tsan_release(void *addr);
#define mproc__tsan_acquire(p) __tsan_acquire((void *)(p))
#define mproc__tsan_release(p) __tsan_release((void *)(p))
#else
#define mproc__tsan_acquire(p) ((void)(p))
#define mproc__tsan_release(p) ((void)(p))
#endif

#endif /* MPROC_COMPILER_H */
