/*
 * How a process ends: its own exit handlers (mproc_atexit), which no child
 * inherits, and the one path by which a child's body returning, a call of
 * mproc_exit and a normal exit(3) all run them before the children clean-up.
 */
#ifndef MPROC_PROCESS_EXIT_H
#define MPROC_PROCESS_EXIT_H

#include <stdbool.h>

/* Install, once per program, the atexit(3) hook that runs this process's
 * mproc handlers and then the children clean-up at a normal exit. */
void mproc__proc_exit_init(void);
/* In a child, before its body runs: how it ends.  @use_exit selects
 * exit(3) (spawn, a fresh image: run its atexit(3) handlers) over
 * _exit(2) (fork and forkserver: do not run the parent's or the
 * server's). */
void mproc__proc_set_child_end(bool use_exit);
/* End the current process with @code: run its mproc handlers, flush
 * stdio, clean up its children, and leave as set above (exit(3) in a
 * process that is not an mproc child). */
_Noreturn void mproc__proc_end(int code);

#endif /* MPROC_PROCESS_EXIT_H */
