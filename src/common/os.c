/* System-call wrappers shared by the modules (os.h). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
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

#define IDENT_PID_BITS 22

uint64_t mproc__proc_ident(pid_t pid)
{
	if (pid <= 0 || (uint64_t)pid >= (UINT64_C(1) << IDENT_PID_BITS))
		return 0;
	char path[40], buf[1024];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = 0;
	/* The command name (field 2) may hold spaces and parentheses: the
	 * fields after it start after its last ')'. */
	char *p = strrchr(buf, ')');
	if (!p || p[1] != ' ')
		return 0;
	p += 2;
	if (*p == 'Z' || *p == 'X') /* field 3: state; dead or zombie */
		return 0;
	/* Fields 3..21 precede the start time (field 22). */
	for (int field = 3; field < 22; field++) {
		p = strchr(p, ' ');
		if (!p)
			return 0;
		p++;
	}
	uint64_t start = strtoull(p, NULL, 10);
	return (uint64_t)pid | start << IDENT_PID_BITS;
}

bool mproc__proc_ident_alive(uint64_t ident)
{
	if (ident == 0)
		return true;
	pid_t pid = (pid_t)(ident & ((UINT64_C(1) << IDENT_PID_BITS) - 1));
	return mproc__proc_ident(pid) == ident;
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
	return mproc__wait_events(fd, POLLIN, d, NULL);
}

int mproc__wait_events(int fd, short events, const struct mproc__deadline *d,
		       short *revents)
{
	for (;;) {
		struct timespec ts, *tsp = NULL;
		if (!d->forever) {
			int64_t left = mproc__deadline_left(d);
			ts.tv_sec = (time_t)(left / MPROC__NSEC_PER_SEC);
			ts.tv_nsec = (long)(left % MPROC__NSEC_PER_SEC);
			tsp = &ts;
		}
		struct pollfd p = { .fd = fd, .events = events };
		int n = ppoll(&p, 1, tsp, NULL);
		if (revents)
			*revents = n > 0 ? p.revents : 0;
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

/* One read: the length, 0 at end of file, or -errno. */
static ssize_t recv_once(int fd, void *buf, size_t len)
{
	for (;;) {
		ssize_t k = recv(fd, buf, len, MSG_DONTWAIT);
		if (k >= 0)
			return k;
		if (errno != EINTR)
			return -errno;
	}
}

ssize_t mproc__recv_seqpacket(int fd, void *buf, size_t len)
{
	ssize_t k = recv_once(fd, buf, len);
	/* An end of file may have been seen before the last message was
	 * (os.h): the second read is the one to believe. */
	if (k == 0)
		k = recv_once(fd, buf, len);
	return k;
}
