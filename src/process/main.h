/*
 * The __main__ guard (mproc_main): how a re-executed image of the program
 * reaches its start method's entry before main()'s own code runs, and how
 * start notices an image that was re-executed but never called it.
 */
#ifndef MPROC_PROCESS_MAIN_H
#define MPROC_PROCESS_MAIN_H

#include <stdbool.h>

/* True if this image was started as a re-executed one (a spawn child or
 * the forkserver) but main() has not called mproc_main (so start must
 * refuse). */
bool mproc__proc_spawned_without_main(void);

#endif /* MPROC_PROCESS_MAIN_H */
