/*
 * The forkserver's status socket: an end-of-file read before the exit
 * code was queued is not a death.
 *
 * A non-blocking read of a SEQPACKET socket on Linux looks at the queue
 * and then, if it was empty, at the peer's close; a server that sends the
 * exit code and closes in between makes that read say end-of-file with the
 * exit code queued.  The owner took that for a dead server, and a child
 * that ended with 0 gave "peer process died" (seen once in a few thousand
 * start+joins under perf record).  The window is a few instructions wide,
 * so this test builds the state instead of waiting for it: this binary
 * defines recv(2) (libmproc is linked statically, so its calls come here)
 * and makes one chosen read report end-of-file, as the kernel does in
 * the race, after the server has sent the exit code and closed.
 */
#include <errno.h>
#include <poll.h>
#include <time.h>

#include "process_test.h"
#include "../common/common_recv_eof.h"

TestSuite(status_eof, .init = forget_worker_marker);

static int exit_7(void *arg, size_t len)
{
	(void)arg;
	(void)len;
	return 7;
}

Test(status_eof, end_of_file_before_the_queued_status_is_not_a_death,
     .timeout = 60)
{
	mproc_process *p;
	cr_assert_eq(mproc_process_create(ctx_of("forkserver"), exit_7, NULL, 0,
					  &p), 0);
	cr_assert_eq(mproc_process_start(p), 0);
	/* Wait until the server has sent the exit code and closed its end:
	 * the state in which the kernel's read can race. */
	int fd = mproc_process_sentinel(p);
	cr_assert_geq(fd, 0);
	for (;;) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN | POLLRDHUP };
		int n = poll(&pfd, 1, 30000);
		cr_assert(n > 0 || (n < 0 && errno == EINTR), "no status in 30 s");
		if (n > 0 && (pfd.revents & POLLIN) &&
		    (pfd.revents & (POLLHUP | POLLRDHUP)))
			break;
		if (n > 0) {
			/* Readable, not yet closed: the server is on its way. */
			struct timespec nap = { 0, 1000 * 1000 };
			nanosleep(&nap, NULL);
		}
	}
	atomic_store(&eof_once_fd, fd);
	cr_expect_eq(mproc_process_join(p, MPROC_FOREVER), 0);
	int code = -1;
	cr_expect_eq(mproc_process_exitcode(p, &code), 0,
		     "an early end-of-file read as the server's death");
	cr_expect_eq(code, 7);
	cr_expect_eq(atomic_load(&eof_once_fd), -1,
		     "the end-of-file was never read: the test proves nothing");
	mproc_process_free(p);
}
