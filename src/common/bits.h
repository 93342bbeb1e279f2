/* Internal: power-of-two arithmetic on ring geometry. */
#ifndef MPROC_COMMON_BITS_H
#define MPROC_COMMON_BITS_H

#include <stdbool.h>
#include <stdint.h>

static inline bool mproc__is_pow2(uint64_t x)
{
	return x && !(x & (x - 1));
}

/* Smallest power of two >= @x (1 for 0), or 0 when @x > 2^63 (none
 * fits in 64 bits): callers bound-check the result. */
static inline uint64_t mproc__pow2_ceil(uint64_t x)
{
	if (x <= 1)
		return 1;
	if (x > (UINT64_C(1) << 63))
		return 0;
	return UINT64_C(1) << (64 - __builtin_clzll(x - 1));
}

/* Largest power of two <= @x; @x must be > 0. */
static inline uint64_t mproc__pow2_floor(uint64_t x)
{
	return UINT64_C(1) << (63 - __builtin_clzll(x));
}

#endif /* MPROC_COMMON_BITS_H */
