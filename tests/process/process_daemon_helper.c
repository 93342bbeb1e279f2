/*
 * Helper for the exit tests: a parent that starts one child and then exits
 * normally (after a line on stdin) or is killed, so that the test, the
 * grandparent, can check what happens to the child.
 *
 *   process_daemon_helper METHOD MODE
 *   MODE daemon:    daemon child that sleeps forever
 *        stubborn:  daemon child that ignores SIGTERM
 *        nondaemon: ordinary child that sleeps a while, then exits
 *
 * The child prints "ready PID" when its signal handling is in place, and
 * the plain daemon prints "terminated" if SIGTERM reaches it (the atexit
 * handler's signal; the PR_SET_PDEATHSIG safety net sends SIGKILL).
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "mproc.h"

static void on_term(int sig)
{
	(void)sig;
	static const char msg[] = "terminated\n";
	ssize_t n = write(1, msg, sizeof(msg) - 1);
	(void)n;
	_exit(0);
}

static int child(void *arg, size_t len)
{
	int mode = len == sizeof(int) ? *(int *)arg : 0;
	if (mode == 1)
		signal(SIGTERM, SIG_IGN);
	else if (mode == 0)
		signal(SIGTERM, on_term);
	printf("ready %d\n", (int)getpid());
	fflush(stdout);
	if (mode == 2) {
		usleep(300 * 1000);
		return 0;
	}
	for (;;)
		pause();
	return 0; /* not reached */
}

int main(int argc, char **argv)
{
	mproc_main(argc, argv);
	if (argc != 3)
		return 2;
	int mode = !strcmp(argv[2], "stubborn") ? 1 : !strcmp(argv[2], "nondaemon") ? 2 : 0;
	mproc_context *ctx;
	mproc_process *p;
	if (mproc_get_context(argv[1], &ctx) ||
	    mproc_process_create(ctx, child, &mode, sizeof(mode), &p) ||
	    mproc_process_set_daemon(p, mode != 2) || mproc_process_start(p))
		return 3;
	char line[16];
	if (!fgets(line, sizeof(line), stdin))
		return 4;
	return 0; /* normal exit: the atexit handler deals with the child */
}
