/*
 * first_process - the twin of the seed's first_process.py: a Process
 * created with a target function and its arguments.
 *
 * The main process counts to 100; at 20 it starts two processes running
 * action(100) and waits for the second.  The first is not joined
 * explicitly: as in Python, a non-daemon child is joined when the main
 * process exits.  mproc_main() at the top of main() is the C form of
 * "if __name__ == '__main__'": with the spawn or forkserver start method
 * the child runs action() from there and never reaches the rest of main.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "mproc.h"

static int action(void *arg, size_t len)
{
	int max = 0;
	if (len == sizeof(max))
		memcpy(&max, arg, sizeof(max));
	for (int i = 0; i < max; i++)
		printf("(%d) child process (parent: %d): %d\n", (int)getpid(),
		       (int)getppid(), i);
	return 0;
}

int main(int argc, char **argv)
{
	mproc_main(argc, argv);
	setvbuf(stdout, NULL, _IOLBF, 0);

	for (int i = 0; i < 100; i++) {
		printf("(%d) main process: %d\n", (int)getpid(), i);
		if (i == 20) {
			int max = 100;
			mproc_process *mp1, *mp2;
			if (mproc_process_create(NULL, action, &max, sizeof(max), &mp1) ||
			    mproc_process_start(mp1) ||
			    mproc_process_create(NULL, action, &max, sizeof(max), &mp2) ||
			    mproc_process_start(mp2)) {
				fprintf(stderr, "cannot start the processes\n");
				return 1;
			}
			mproc_process_join(mp2, MPROC_FOREVER);
			/* Freeing a running process does not stop it: mproc
			 * still joins it before this program exits. */
			mproc_process_free(mp1);
			mproc_process_free(mp2);
		}
	}
	printf("Main process finished!\n");
	return 0;
}
