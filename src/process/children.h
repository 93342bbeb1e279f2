/*
 * The children this process started: the list that the exit clean-up
 * walks, reaping and waiting through each child's start method, and that
 * clean-up itself (daemons terminated, everyone else joined), which
 * exit.c runs when the process ends.
 */
#ifndef MPROC_PROCESS_CHILDREN_H
#define MPROC_PROCESS_CHILDREN_H

#include <stdbool.h>

#include "common/clock.h"
#include "process/core.h"

/* Install, once per program, the atfork handlers of the list. */
void mproc__proc_children_init(void);
/* Put a started child on the list. */
void mproc__proc_track(mproc_process *p);
/* Take @p off the list, unless @running and it is on it: then it stays,
 * marked as an orphan to be reaped and freed by a later sweep or at exit,
 * and true is returned (the caller must not free it). */
bool mproc__proc_untrack_or_orphan(mproc_process *p, bool running);
/* Reap and free the orphans that have ended. */
void mproc__proc_sweep_orphans(void);
/* Terminate daemon children, then join all children (the work of the
 * end of a process, exit.c). */
void mproc__proc_exit_cleanup(void);
/* p->lock held.  Returns 1 if the child is done (reaped now or before), 0
 * if it still runs, or a negative errno. */
int mproc__proc_reap_locked(mproc_process *p);
/* Wait for the started child @p until @d; takes p->lock.  Returns 0 (also
 * when the deadline passed first), -ECHILD (its status was lost to
 * someone else's reaping), or a negative errno. */
int mproc__proc_join_until(mproc_process *p, const struct mproc__deadline *d);

#endif /* MPROC_PROCESS_CHILDREN_H */
