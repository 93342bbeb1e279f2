/*
 * What a started child does, whatever started it: tie its life to its
 * parent's if it is a daemon, run the body, and exit after the same
 * clean-up as a normal exit.  Every start method ends its child side here.
 */
#ifndef MPROC_PROCESS_CHILD_H
#define MPROC_PROCESS_CHILD_H

#include <stdbool.h>
#include <sys/types.h>

#include "process/core.h"

/* Run the body of @self (the current process) and end with its result
 * (exit.h: its mproc exit handlers, then the children clean-up).
 * @use_exit selects exit(3) (spawn, a fresh image: run its atexit(3)
 * handlers) over _exit(2) (fork and forkserver: do not run the parent's
 * or the server's). */
_Noreturn void mproc__proc_child_run(mproc_process *self, bool use_exit);
/* In a new child: die with SIGKILL when @parent dies (PR_SET_PDEATHSIG),
 * and leave at once if it is already gone. */
void mproc__proc_die_with_parent(pid_t parent);

#endif /* MPROC_PROCESS_CHILD_H */
