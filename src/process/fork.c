/*
 * The fork start method: fork(2), and the child runs the body in the copy
 * of the parent's image.  Nothing crosses by translation: every function
 * pointer and every mproc object made before start is valid in the child
 * as it was in the parent.  The child is ours, so it is reaped through its
 * pidfd like a spawn child.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/fork.h"
#include "process/child.h"
#include "process/current.h"
#include "process/method.h"
#include "process/pidfd.h"

static int fork_start(mproc_process *p)
{
	pid_t parent = mproc__self_pid();
	/* Data buffered but not yet written would otherwise be written
	 * twice, once by each process. */
	fflush(stdout);
	fflush(stderr);
	pid_t pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		/* The parent's thread held this lock at fork time. */
		pthread_mutex_init(&p->lock, NULL);
		/* Still the parent's view of itself until become. */
		struct mproc__proc_parent par = {
			.pid = parent,
			.name = strdup(mproc_current_process_name()),
			.pidfd = p->starter_pidfd,
		};
		mproc__proc_become(p, &par);
		if (p->daemon)
			mproc__proc_die_with_parent(parent);
		mproc__proc_child_run(p, false);
	}
	return mproc__proc_pidfd_adopt(p, pid);
}

const struct mproc__proc_method mproc__proc_fork_method = {
	.name = "fork",
	.id = 1,
	.exec_marker = NULL,
	.start = fork_start,
	.poll_status = mproc__proc_reap_own_child,
	.exec_main = NULL,
};
