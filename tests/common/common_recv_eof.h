/*
 * A recv(2) that says end of file once, on a chosen descriptor: for the
 * tests of readers of SOCK_SEQPACKET sockets that must not take an early
 * end of file for the peer's close (common/os.h, mproc__recv_seqpacket).
 *
 * Include it in exactly one file of a test executable: it defines recv
 * itself, and libmproc, linked statically, calls this one.  Set
 * eof_once_fd to a descriptor; its next non-blocking read returns 0 and
 * eof_once_fd goes back to -1 (so a test can tell that it happened).
 */
#ifndef MPROC_TEST_COMMON_RECV_EOF_H
#define MPROC_TEST_COMMON_RECV_EOF_H

#include <stdatomic.h>
#include <sys/socket.h>
#include <sys/types.h>

/* Sequentially consistent (the defaults): a one-shot flag between the
 * test's thread and the reader's; no data rides on it. */
static _Atomic int eof_once_fd = -1;

ssize_t recv(int fd, void *buf, size_t len, int flags)
{
	int want = atomic_load(&eof_once_fd);
	if (want >= 0 && fd == want && (flags & MSG_DONTWAIT) &&
	    atomic_compare_exchange_strong(&eof_once_fd, &want, -1))
		return 0;
	return recvfrom(fd, buf, len, flags, NULL, NULL);
}

#endif
