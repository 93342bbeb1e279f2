/*
 * mproc__copy (common/bits.h), the inline copy of the SPSC batch calls:
 * every length from 0 to past its inline limit copies exactly its bytes,
 * at every alignment, and writes nothing outside the destination.
 */
#include <criterion/criterion.h>
#include <stdint.h>
#include <string.h>

#include "common/bits.h"

#define GUARD 32
#define MAXLEN 160

Test(copy, every_length_and_alignment_copies_exactly_its_bytes)
{
	unsigned char src[MAXLEN + 16], dst[MAXLEN + 16 + 2 * GUARD];
	for (size_t i = 0; i < sizeof(src); i++)
		src[i] = (unsigned char)(i * 37 + 11);
	for (size_t n = 0; n <= MAXLEN; n++)
		for (size_t so = 0; so < 8; so++)
			for (size_t d_o = 0; d_o < 8; d_o++) {
				memset(dst, 0xee, sizeof(dst));
				unsigned char *d = dst + GUARD + d_o;
				mproc__copy(d, src + so, n);
				cr_assert_eq(memcmp(d, src + so, n), 0,
					     "n %zu, offsets %zu/%zu", n, so,
					     d_o);
				for (unsigned char *p = dst; p < d; p++)
					cr_assert_eq(*p, 0xee, "before, n %zu", n);
				for (unsigned char *p = d + n;
				     p < dst + sizeof(dst); p++)
					cr_assert_eq(*p, 0xee, "after, n %zu", n);
			}
}
