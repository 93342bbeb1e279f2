/*
 * fork_test - the twin of the seed's fork_test.py: os.fork() runs the code
 * after it in two processes, and its return value (0 in the child, the
 * child's pid in the parent) tells them apart.
 *
 * In C the same is plain fork(2); every mproc object created before it
 * (queues, pipes, shared segments) is usable in both processes.
 */
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mproc.h"

int main(int argc, char **argv)
{
	mproc_main(argc, argv);
	/* Line-buffered, so that each process writes whole lines even when
	 * the output is a pipe. */
	setvbuf(stdout, NULL, _IOLBF, 0);

	printf("Parent process (%d) starts\n", (int)getpid());
	/* Unlike Python, C's stdio buffers live in the process: anything
	 * not yet written would be written twice, once by each process. */
	fflush(stdout);
	pid_t pid = fork();
	if (pid < 0) {
		perror("fork");
		return 1;
	}
	printf("Process entered: %d\n", (int)getpid());
	if (pid == 0)
		printf("Child process, its ID is (%d), its parent's ID is (%d)\n",
		       (int)getpid(), (int)getppid());
	else
		printf("I (%d) created a child process with ID (%d).\n",
		       (int)getpid(), (int)pid);
	printf("Process ends: %d\n", (int)getpid());
	/* Python leaves the child to init; here the parent reaps it. */
	if (pid > 0)
		waitpid(pid, NULL, 0);
	return 0;
}
