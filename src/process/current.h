/*
 * The current process's identity: its handle ("MainProcess", or in a
 * child the child's view of the process object that started it), its
 * parent, and the numbering of its children.  Below the start methods:
 * a child becomes itself here before its body runs.
 */
#ifndef MPROC_PROCESS_CURRENT_H
#define MPROC_PROCESS_CURRENT_H

#include <stdint.h>
#include <sys/types.h>

#include "process/core.h"

/* The current process's handle (never NULL). */
mproc_process *mproc__proc_current(void);
/* Make @self the current process and @parent (whose name and pidfd it
 * takes over) its parent: called in a child before the body. */
void mproc__proc_become(mproc_process *self, struct mproc__proc_parent *parent);
/* The next child identity of the current process. */
void mproc__proc_next_identity(uint32_t *ids, uint32_t *len);
/* 0, or the getrandom error that left the main process without a key. */
int mproc__proc_current_key_error(void);

#endif /* MPROC_PROCESS_CURRENT_H */
