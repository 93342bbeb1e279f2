/* Strict decimal parsing (parse.h). */
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <string.h>

#include "common/parse.h"

int mproc__parse_u64(const char **p, uint64_t max, uint64_t *out)
{
	const char *s = *p;
	uint64_t v = 0;
	if (*s < '0' || *s > '9')
		return -EINVAL;
	for (; *s >= '0' && *s <= '9'; s++) {
		unsigned d = (unsigned)(*s - '0');
		if (v > (max - d) / 10)
			return -EINVAL;
		v = v * 10 + d;
	}
	*p = s;
	*out = v;
	return 0;
}

int mproc__parse_fd(const char *s)
{
	uint64_t v;
	if (!s || mproc__parse_u64(&s, INT_MAX, &v) || *s)
		return -EINVAL;
	return (int)v;
}

int mproc__parse_shm_token_fd(const char *tok, int *fd, const char **rest)
{
	static const char prefix[] = "mproc-shm:";
	uint64_t v;
	if (!tok || strncmp(tok, prefix, sizeof(prefix) - 1) != 0)
		return -EINVAL;
	tok += sizeof(prefix) - 1;
	if (mproc__parse_u64(&tok, INT_MAX, &v) || *tok != ':')
		return -EINVAL;
	*fd = (int)v;
	*rest = tok;
	return 0;
}
