/*
 * A user's first program, built against the installed mproc by
 * check-install.sh: it must compile with pkg-config's flags alone, link,
 * and run.  Prints "mproc VERSION" and exits 0 when the calls work.
 */
#include <stdio.h>
#include <string.h>

#include <mproc.h>

int main(void)
{
	mproc_shm *seg = NULL;
	int rc = mproc_shm_create(NULL, MPROC_SHM_KIND_RAW, NULL, 64, 0, &seg);
	if (rc) {
		fprintf(stderr, "mproc_shm_create: %s\n", mproc_strerror(rc));
		return 1;
	}
	strcpy(mproc_shm_data(seg), "installed");
	if (mproc_shm_publish(seg) || mproc_shm_close(seg))
		return 1;
	mproc_shm_free(seg);
	if (strcmp(mproc_strerror(-MPROC_EEOF), mproc_strerror(-MPROC_ECORRUPT)) == 0)
		return 1;
	printf("mproc %s\n", mproc_version());
	return 0;
}
