/*
 * A separate program that shm_segment.c execs to check that an exported
 * anonymous segment reaches a fresh process image (what spawn relies on).
 *
 *   shm-import-helper TOKEN expect-ok     import, check the data the parent
 *                                         wrote, answer in the data area
 *   shm-import-helper TOKEN expect-ERRNO  import must fail with -ERRNO
 *
 * Exit status 0 means every check passed; other codes say which failed.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mproc/shm.h"

#define GEOM_TAG UINT64_C(0xfeedf00d)

static int check_geom(const uint64_t geom[MPROC_SHM_GEOM_WORDS],
		      uint64_t data_size, void *ctx)
{
	(void)ctx;
	return geom[0] == GEOM_TAG && geom[1] == data_size ? 0
							   : -MPROC_ECORRUPT;
}

int main(int argc, char **argv)
{
	if (argc != 3)
		return 2;
	mproc_shm *seg = NULL;
	int rc = mproc_shm_import(argv[1], MPROC_SHM_KIND_RAW, check_geom,
				  NULL, &seg);
	if (strncmp(argv[2], "expect-", 7) != 0)
		return 2;
	if (strcmp(argv[2], "expect-ok") != 0) {
		int want = atoi(argv[2] + 7);
		if (rc != -want) {
			fprintf(stderr, "import: got %d, want %d\n", rc, -want);
			return 3;
		}
		return 0;
	}
	if (rc != 0) {
		fprintf(stderr, "import: %s\n", mproc_strerror(rc));
		return 4;
	}
	/* The descriptor is close-on-exec again now that we own it. */
	int fl = fcntl(mproc_shm_fd(seg), F_GETFD);
	if (fl < 0 || !(fl & FD_CLOEXEC))
		return 5;
	unsigned char *d = mproc_shm_data(seg);
	size_t n = mproc_shm_data_size(seg);
	for (size_t i = 0; i + 1 < n; i++)
		if (d[i] != (unsigned char)(i * 7 + 1))
			return 6;
	/* The last byte is the answer the parent waits for. */
	d[n - 1] = 0xa5;
	if (mproc_shm_close(seg) != 0)
		return 7;
	mproc_shm_free(seg);
	return 0;
}
