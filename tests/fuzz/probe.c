/* Links only where clang has its libFuzzer runtime (meson.build and
 * build-and-run.sh try it before registering or building the targets). */
#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	(void)data;
	(void)size;
	return 0;
}
