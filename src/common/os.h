/*
 * Internal: thin wrappers over system calls that several modules need,
 * each returning 0 (or a result) or a negative errno, never through errno.
 */
#ifndef MPROC_COMMON_OS_H
#define MPROC_COMMON_OS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* pidfd_open(2), close-on-exec: the descriptor, or -errno. */
int mproc__pidfd_open(pid_t pid);

/* True once @pid has exited.  A zombie counts as exited: kill(pid, 0)
 * still succeeds on it, and the survivor asking is often the very parent
 * that has not reaped it yet.  Falls back to kill(pid, 0) where pidfds
 * cannot be had (old kernel, descriptor limit). */
bool mproc__pid_exited(pid_t pid);

/* A process's identity that pid reuse cannot fake: its pid in the low 22
 * bits (Linux pids are below 2^22) and its start time (clock ticks after
 * boot, /proc/PID/stat field 22) above them.  Returns 0 when the process
 * does not exist, is a zombie or /proc cannot tell; 0 is never a valid
 * identity. */
uint64_t mproc__proc_ident(pid_t pid);
/* The pid part of an identity (0 for the unknown identity 0). */
static inline pid_t mproc__proc_ident_pid(uint64_t ident)
{
	return (pid_t)(ident & ((UINT64_C(1) << 22) - 1));
}
/* True unless the process @ident names has ended (it is gone, a zombie,
 * or its pid now belongs to a process started at another time).  An
 * @ident of 0 (unknown) counts as alive: nothing is ever taken from a
 * process that cannot be named.  Reads /proc: a few microseconds, for
 * slow paths only. */
bool mproc__proc_ident_alive(uint64_t ident);

/* pidfd_send_signal(2): 0 (also when the process already ended), or
 * -errno. */
int mproc__pidfd_signal(int pidfd, int sig);

/* Reap the child behind @pidfd (waitid P_PIDFD); @block waits for it to
 * end.  Returns 1 and *@exitcode (the exit status, or -N when signal N
 * ended it), 0 when it still runs (only without @block), or -errno
 * (-ECHILD: not our child, or already reaped). */
int mproc__pidfd_reap(int pidfd, bool block, int *exitcode);

struct mproc__deadline;
/* Wait until @fd polls readable (POLLIN, or hang-up or error) or @d
 * passes, retrying EINTR.  Returns 1 when readable, 0 when the deadline
 * passed first, or -errno. */
int mproc__wait_readable(int fd, const struct mproc__deadline *d);
/* The same for any poll(2) @events (POLLOUT, say); *@revents (may be
 * NULL) receives what poll reported. */
int mproc__wait_events(int fd, short events, const struct mproc__deadline *d,
		       short *revents);

/* write(2) all @n bytes, retrying short writes and EINTR: 0 or -errno. */
int mproc__write_all(int fd, const void *buf, size_t n);
/* read(2) exactly @n bytes, retrying short reads and EINTR: 0, -errno, or
 * -EPIPE when end of file comes first. */
int mproc__read_all(int fd, void *buf, size_t n);

/* One non-blocking recv(2) of a message from a SOCK_SEQPACKET socket,
 * retrying EINTR: its length, 0 at end of file (the peer closed and
 * nothing is queued), or -errno (-EAGAIN: nothing yet).
 *
 * Linux's non-blocking read of such a socket looks at the queue and
 * only then, if it was empty, at the peer's close, without a lock that
 * holds the two together: a peer that sends its last message and closes
 * between the two makes that read say end of file with the message
 * queued.  The close seen came after the send, so one more read finds
 * the message if there is one; a peer that really closed gives end of
 * file twice.  (A stream socket checks both under one lock: not
 * affected.) */
ssize_t mproc__recv_seqpacket(int fd, void *buf, size_t len);

#endif /* MPROC_COMMON_OS_H */
