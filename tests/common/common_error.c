/*
 * Unit tests for src/common: error names and the version string.  Callers
 * print mproc_strerror() of whatever a call returned, so every code must
 * have a name of its own, whatever its sign, and unknown codes must still
 * give a usable string rather than NULL or a crash.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "mproc/common.h"

static const int own_codes[] = {
	MPROC_EEOF, MPROC_ECORRUPT, MPROC_EPEERDIED, MPROC_EWORKERLOST,
	MPROC_ENOSYMBOL,
	MPROC_EINIT, MPROC_EAUTH,
};
#define N_OWN (sizeof(own_codes) / sizeof(own_codes[0]))

Test(strerror, own_codes_cover_the_whole_range)
{
	/* A new code added to common.h must be added here (and named). */
	cr_assert_eq(N_OWN, MPROC_ERRNO_LAST - MPROC_ERRNO_BASE);
	for (int c = MPROC_ERRNO_BASE + 1; c <= MPROC_ERRNO_LAST; c++) {
		const char *s = mproc_strerror(-c);
		cr_assert_not_null(s);
		cr_assert(strstr(s, "unknown") == NULL,
			  "code %d has no name: \"%s\"", c, s);
	}
}

Test(strerror, own_codes_have_distinct_names)
{
	for (size_t i = 0; i < N_OWN; i++)
		for (size_t j = i + 1; j < N_OWN; j++)
			cr_assert_str_neq(mproc_strerror(-own_codes[i]),
					  mproc_strerror(-own_codes[j]),
					  "codes %d and %d share a name",
					  own_codes[i], own_codes[j]);
}

Test(strerror, sign_does_not_matter)
{
	for (size_t i = 0; i < N_OWN; i++)
		cr_assert_str_eq(mproc_strerror(own_codes[i]),
				 mproc_strerror(-own_codes[i]));
	cr_assert_str_eq(mproc_strerror(ENOENT), mproc_strerror(-ENOENT));
}

Test(strerror, zero_is_success)
{
	cr_assert_str_eq(mproc_strerror(0), "success");
}

Test(strerror, end_of_stream_differs_from_empty_and_timeout)
{
	const char *eof = mproc_strerror(-MPROC_EEOF);
	cr_assert_str_neq(eof, mproc_strerror(-EAGAIN));
	cr_assert_str_neq(eof, mproc_strerror(-ETIMEDOUT));
	cr_assert_str_neq(mproc_strerror(-EAGAIN), mproc_strerror(-ETIMEDOUT));
	cr_assert_neq(MPROC_EEOF, EAGAIN);
	cr_assert_neq(MPROC_EEOF, ETIMEDOUT);
}

Test(strerror, own_codes_differ_from_every_errno_name)
{
	/* mproc's codes sit above the kernel's errno range; their names must
	 * not be mistaken for a kernel error either. */
	for (int e = 1; e < 200; e++)
		for (size_t i = 0; i < N_OWN; i++)
			cr_assert_str_neq(mproc_strerror(-e),
					  mproc_strerror(-own_codes[i]));
}

Test(strerror, kernel_errno_uses_the_system_text)
{
	cr_assert_str_eq(mproc_strerror(-ENOENT), strerror(ENOENT));
	cr_assert_str_eq(mproc_strerror(-EAGAIN), strerror(EAGAIN));
	cr_assert_str_eq(mproc_strerror(-EPROTOTYPE), strerror(EPROTOTYPE));
}

Test(strerror, unknown_codes_give_a_string)
{
	const int odd[] = {
		MPROC_ERRNO_BASE, MPROC_ERRNO_LAST + 1, 3999, 100000,
		INT_MAX, -INT_MAX, INT_MIN,
	};
	for (size_t i = 0; i < sizeof(odd) / sizeof(odd[0]); i++) {
		const char *s = mproc_strerror(odd[i]);
		cr_assert_not_null(s, "NULL for %d", odd[i]);
		cr_assert_gt(strlen(s), 0, "empty name for %d", odd[i]);
		for (size_t j = 0; j < N_OWN; j++)
			cr_assert_str_neq(s, mproc_strerror(own_codes[j]));
	}
}

Test(version, is_the_project_version)
{
	const char *v = mproc_version();
	cr_assert_not_null(v);
	unsigned a, b, c;
	int used = 0;
	cr_assert_eq(sscanf(v, "%u.%u.%u%n", &a, &b, &c, &used), 3,
		     "not MAJOR.MINOR.PATCH: \"%s\"", v);
	cr_assert_eq(v[used], '\0');
#ifdef MPROC_VERSION_STRING
	cr_assert_str_eq(v, MPROC_VERSION_STRING);
#endif
	cr_assert_eq(mproc_version(), v, "not a static string");
}
