/*
 * What the forkserver method shows beyond its entry in the method table:
 * only the server's pid, so that tests can find and kill the server.
 */
#ifndef MPROC_PROCESS_FORKSERVER_H
#define MPROC_PROCESS_FORKSERVER_H

#include <sys/types.h>

/* The server's pid, or 0 if none is running. */
pid_t mproc__proc_forkserver_pid(void);

#endif /* MPROC_PROCESS_FORKSERVER_H */
