/*
 * Starting a fresh image of this program, as the spawn method does for
 * each child and the forkserver method does for its server: the
 * descriptors such an image must get, and the posix_spawn that gives it
 * those and nothing else.
 */
#ifndef MPROC_PROCESS_EXEC_H
#define MPROC_PROCESS_EXEC_H

#include <stddef.h>
#include <sys/types.h>

/* The descriptors every child must get at their numbers (the registered
 * ones of common/fdreg.h), as a malloc'd array.  Returns 0 or -ENOMEM. */
int mproc__proc_inheritable_fds(int **fds, size_t *n);
/* posix_spawn /proc/self/exe with argv {exe path, @marker, "<passfd>"};
 * the child keeps stdin/out/err, @passfd and @keep[] at their numbers and
 * nothing else.  Returns 0 and *pid, or a negative errno. */
int mproc__proc_exec_self(const char *marker, int passfd, const int *keep,
			  size_t nkeep, pid_t *pid);

#endif /* MPROC_PROCESS_EXEC_H */
