/* A raw anonymous segment shared with a forked child. */
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <mproc.h>

int main(void)
{
	mproc_shm *seg;
	int rc = mproc_shm_create(NULL, MPROC_SHM_KIND_RAW, NULL, 4096, 0, &seg);
	if (rc) {
		fprintf(stderr, "shm: %s\n", mproc_strerror(rc));
		return 1;
	}
	mproc_shm_publish(seg);
	if (fork() == 0) {
		strcpy(mproc_shm_data(seg), "written by the child");
		_exit(0);
	}
	wait(NULL);
	printf("%s\n", (char *)mproc_shm_data(seg));
	mproc_shm_free(seg);
	return 0;
}
