/*
 * A target that lives in an object the test loads with dlopen, so that a
 * spawned or forkserver child has to load it too.
 */
#include <stddef.h>
#include <string.h>

int plugin_target(void *arg, size_t len);

int plugin_target(void *arg, size_t len)
{
	int v;
	if (len != sizeof(v))
		return 1;
	memcpy(&v, arg, sizeof(v));
	return v * 11;
}
