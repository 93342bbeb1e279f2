/*
 * Children watched through pidfds (see pidfd.h): the one place that opens,
 * signals and reaps them, and that turns a wait status into an exit code.
 */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/os.h"
#include "process/pidfd.h"

int mproc__proc_pidfd_for_child(pid_t pid)
{
	int fd = mproc__pidfd_open(pid);
	if (fd < 0) {
		kill(pid, SIGKILL);
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
			;
	}
	return fd;
}

int mproc__proc_pidfd_adopt(mproc_process *p, pid_t pid)
{
	int fd = mproc__proc_pidfd_for_child(pid);
	if (fd < 0)
		return fd;
	p->pid = pid;
	p->pidfd = fd;
	return 0;
}

int mproc__proc_reap_own_child(mproc_process *p)
{
	int rc = mproc__pidfd_reap(p->pidfd, false, &p->exitcode);
	if (rc == -ECHILD) {
		/* Someone else reaped it: it is over, the status is lost. */
		p->exit_err = -ECHILD;
		rc = 1;
	}
	if (rc == 1)
		p->done = true;
	return rc;
}
