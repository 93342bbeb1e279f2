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

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

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

int mproc__proc_pidfd_signal(int pidfd, int sig)
{
	if (syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0) < 0)
		return errno == ESRCH ? 0 : -errno; /* ESRCH: already ended */
	return 0;
}

int mproc__proc_pidfd_reap(int pidfd, bool block, int *exitcode)
{
	for (;;) {
		siginfo_t si;
		memset(&si, 0, sizeof(si));
		if (waitid((idtype_t)P_PIDFD, (id_t)pidfd, &si,
			   WEXITED | (block ? 0 : WNOHANG)) < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (si.si_pid == 0)
			return 0;
		*exitcode = si.si_code == CLD_EXITED ? si.si_status
						     : -si.si_status;
		return 1;
	}
}

int mproc__proc_reap_own_child(mproc_process *p)
{
	int rc = mproc__proc_pidfd_reap(p->pidfd, false, &p->exitcode);
	if (rc == -ECHILD) {
		/* Someone else reaped it: it is over, the status is lost. */
		p->exit_err = -ECHILD;
		rc = 1;
	}
	if (rc == 1)
		p->done = true;
	return rc;
}
