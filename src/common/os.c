/* System-call wrappers shared by the modules (os.h). */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/wait.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/os.h"

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef P_PIDFD
#define P_PIDFD 3
#endif

int mproc__pidfd_open(pid_t pid)
{
	/* pidfd_open(2) descriptors are always close-on-exec. */
	long fd = syscall(SYS_pidfd_open, pid, 0);
	return fd < 0 ? -errno : (int)fd;
}

bool mproc__pid_exited(pid_t pid)
{
	int fd = mproc__pidfd_open(pid);
	if (fd < 0) {
		if (fd == -ESRCH)
			return true;
		return kill(pid, 0) < 0 && errno == ESRCH;
	}
	/* A pidfd polls readable once the process has exited. */
	struct pollfd p = { .fd = fd, .events = POLLIN };
	int r = poll(&p, 1, 0);
	close(fd);
	return r > 0;
}

int mproc__pidfd_signal(int pidfd, int sig)
{
	if (syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0) < 0)
		return errno == ESRCH ? 0 : -errno; /* ESRCH: already ended */
	return 0;
}

int mproc__pidfd_reap(int pidfd, bool block, int *exitcode)
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

int mproc__wait_readable(int fd, const struct mproc__deadline *d)
{
	for (;;) {
		struct timespec ts, *tsp = NULL;
		if (!d->forever) {
			int64_t left = mproc__deadline_left(d);
			ts.tv_sec = (time_t)(left / MPROC__NSEC_PER_SEC);
			ts.tv_nsec = (long)(left % MPROC__NSEC_PER_SEC);
			tsp = &ts;
		}
		struct pollfd p = { .fd = fd, .events = POLLIN };
		int n = ppoll(&p, 1, tsp, NULL);
		if (n >= 0)
			return n > 0;
		if (errno != EINTR)
			return -errno;
	}
}

int mproc__write_all(int fd, const void *buf, size_t n)
{
	const uint8_t *p = buf;
	while (n) {
		ssize_t k = write(fd, p, n);
		if (k < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += k;
		n -= (size_t)k;
	}
	return 0;
}

int mproc__read_all(int fd, void *buf, size_t n)
{
	uint8_t *p = buf;
	while (n) {
		ssize_t k = read(fd, p, n);
		if (k < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (k == 0)
			return -EPIPE;
		p += k;
		n -= (size_t)k;
	}
	return 0;
}
