/*
 * The zygote's socket: an end-of-file read before a queued message is
 * not the zygote's death.
 *
 * A non-blocking read of a SEQPACKET socket on Linux looks at the queue
 * and then, if it was empty, at the peer's close; a zygote that sends its
 * last message and closes in between makes that read say end of file with
 * the message queued (common/os.h).  The pool took any end of file for
 * the zygote's death and failed everything.  The window is a few
 * instructions wide, so this test builds the state instead: this binary
 * defines recv(2) (libmproc is linked statically, so its calls come here)
 * and makes the pool's first read after a worker's death report end of
 * file, as the kernel does in the race.  The pool reads the socket only
 * once the zygote counted a message (zygote_msgs, after the send), so the
 * report of the death is queued when that read says end of file.
 */
#include "pool_test.h"
#include "pool/internal.h"
#include "../common/common_recv_eof.h"

TestSuite(zygote_eof, .init = forget_worker_marker);

static uint64_t started(mproc_pool *p)
{
	struct mproc_pool_stats st;
	cr_assert_eq(mproc_pool_stats(p, &st), 0);
	return st.workers_started;
}

Test(zygote_eof, end_of_file_before_a_queued_message_is_not_a_death,
     .timeout = 60)
{
	mproc_pool *p = pool_new(NULL, 1);
	pid_t w;
	cr_assert_eq(mproc_pool_worker_pids(p, &w, 1), 1);
	cr_assert_eq(started(p), 1);
	/* The next read of the zygote's socket is the one after it reports
	 * the worker's end. */
	atomic_store(&eof_once_fd, p->local.sock);
	cr_assert_eq(kill(w, SIGKILL), 0);
	cr_expect(POLL_UNTIL(started(p) == 2, 30000),
		  "the worker was not replaced: the pool took the early "
		  "end of file for the zygote's death");
	cr_expect_eq(atomic_load(&eof_once_fd), -1,
		     "the end of file was never read: the test proves nothing");
	uint64_t r = 1;
	cr_expect_eq(mproc_pool_apply(p, task_index, NULL, 0, &r, sizeof(r)),
		     (ssize_t)sizeof(r));
	cr_expect_eq(r, 0);
	struct mproc_pool_stats st;
	cr_assert_eq(mproc_pool_stats(p, &st), 0);
	cr_expect_eq(st.workers_lost, 1);
	cr_expect_eq(mproc_pool_close(p), 0);
	cr_expect_eq(mproc_pool_join(p, 30 * MPROC_SEC), 0);
	mproc_pool_destroy(p);
}
