/*
 * The spawn start method: each child is a fresh exec of the program
 * (exec.c), entered through mproc_main, which hands it to spawn_exec_main
 * below.  The parent writes the start data (boot.c) into a memfd that the
 * child inherits and names in argv; the child reads it, becomes the
 * process object it describes and runs the body.  The child is the
 * parent's own, so it is reaped through its pidfd like a fork child.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "common/parse.h"
#include "process/boot.h"
#include "process/child.h"
#include "process/current.h"
#include "process/exec.h"
#include "process/method.h"
#include "process/pidfd.h"

static int spawn_start(mproc_process *p)
{
	int *fds;
	size_t n;
	int rc = mproc__proc_inheritable_fds(&fds, &n);
	if (rc)
		return rc;
	int boot = mproc__proc_boot_write(p, fds, n);
	if (boot < 0) {
		free(fds);
		return boot;
	}
	/* The child keeps our pidfd too, at its number, as its sentinel on
	 * us (the start data names it). */
	int *keep = realloc(fds, (n + 1) * sizeof(*fds));
	if (!keep) {
		close(boot);
		free(fds);
		return -ENOMEM;
	}
	fds = keep;
	fds[n] = p->starter_pidfd;
	/* As for fork: what we printed so far comes before the child's. */
	fflush(stdout);
	fflush(stderr);
	pid_t pid;
	rc = mproc__proc_exec_self(mproc__proc_spawn_method.exec_marker, boot,
				   fds, n + 1, &pid);
	close(boot);
	free(fds);
	return rc ? rc : mproc__proc_pidfd_adopt(p, pid);
}

static _Noreturn void spawn_exec_main(const char *fdstr)
{
	char why[512] = "bad start descriptor";
	int fd = mproc__parse_fd(fdstr);
	mproc_process *self = NULL;
	struct mproc__proc_parent parent = { 0, NULL, -1 };
	int *fds = NULL;
	size_t n = 0;
	int rc = fd < 0 ? -EBADF
			: mproc__proc_boot_read(fd, &mproc__proc_spawn_method,
						&self, &parent, &fds, &n, why,
						sizeof(why));
	if (fd >= 0)
		close(fd);
	if (rc) {
		fprintf(stderr, "mproc: spawned child %d cannot start: %s\n",
			(int)getpid(), why);
		_exit(MPROC_EXIT_BOOTSTRAP);
	}
	/* The segments came without close-on-exec (that is how they got
	 * here); put it back so they do not leak into programs the child
	 * runs, just as segments are in any process. */
	for (size_t i = 0; i < n; i++) {
		int fl = fds[i] > 2 ? fcntl(fds[i], F_GETFD) : -1;
		if (fl >= 0)
			fcntl(fds[i], F_SETFD, fl | FD_CLOEXEC);
	}
	free(fds);
	int fl = parent.pidfd > 2 ? fcntl(parent.pidfd, F_GETFD) : -1;
	if (fl >= 0)
		fcntl(parent.pidfd, F_SETFD, fl | FD_CLOEXEC);
	else
		parent.pidfd = -1;
	if (self->daemon)
		mproc__proc_die_with_parent(parent.pid);
	mproc__proc_become(self, &parent);
	mproc__proc_child_run(self, true);
}

const struct mproc__proc_method mproc__proc_spawn_method = {
	.name = "spawn",
	.id = 2,
	.exec_marker = "--mproc-spawn",
	.start = spawn_start,
	.poll_status = mproc__proc_reap_own_child,
	.exec_main = spawn_exec_main,
};
