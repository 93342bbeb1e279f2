/*
 * The child side shared by every start method (see child.h): the daemon's
 * tie to its parent, and running the body to the exit.
 */
#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "process/child.h"
#include "process/exit.h"

void mproc__proc_die_with_parent(pid_t parent)
{
	/* If the parent is already gone the signal will never come: then
	 * getppid() is no longer the parent, and we leave at once. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(MPROC_EXIT_BOOTSTRAP);
}

_Noreturn void mproc__proc_child_run(mproc_process *self, bool use_exit)
{
	/* Set before the body, which may end through mproc_exit. */
	mproc__proc_set_child_end(use_exit);
	int code = self->run ? self->run(self, self->arg, self->len)
			     : self->target(self->arg, self->len);
	mproc__proc_end(code);
}
