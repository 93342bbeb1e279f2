/*
 * Start data: what a fresh image needs to become the child that a process
 * object describes, written by the parent into a memfd and read by the
 * child (spawn children and forkserver children alike).
 */
#ifndef MPROC_PROCESS_BOOT_H
#define MPROC_PROCESS_BOOT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "process/core.h"

struct mproc__proc_method;

/* Write the start data of @p (p->method set, p->starter_pidfd open) into
 * a new memfd (close-on-exec), with the numbers of the descriptors the
 * child must have (@fds).  Returns the memfd, -MPROC_ENOSYMBOL, -ENOMEM
 * or an errno. */
int mproc__proc_boot_write(const mproc_process *p, const int *fds,
			   size_t nfds);
/* The same start data as a malloc'd buffer (*@out, *@out_len bytes), for
 * a method that carries it itself.  Returns 0, -MPROC_ENOSYMBOL, -ENOMEM
 * or an errno. */
int mproc__proc_boot_encode(const mproc_process *p, const int *fds,
			    size_t nfds, uint8_t **out, size_t *out_len);
/* A new memfd (close-on-exec) holding the @len bytes at @buf, as
 * mproc__proc_boot_write makes it.  Returns it or a negative errno. */
int mproc__proc_boot_memfd(const uint8_t *buf, size_t len);
/* Read start data written for a child of @method from @fd: a new handle
 * for the child's self, its parent (pid, name, and the number at which
 * the parent's pidfd was to be installed, not checked), and the
 * descriptor numbers (malloc'd).  Returns 0, -EPROTO (malformed, or
 * written for another method), -MPROC_ENOSYMBOL (the body does not
 * resolve; @why says why), -ENOMEM. */
int mproc__proc_boot_read(int fd, const struct mproc__proc_method *method,
			  mproc_process **self,
			  struct mproc__proc_parent *parent, int **fds,
			  size_t *nfds, char *why, size_t why_len);
/* The same from @len bytes at @buf (untrusted: every length is checked);
 * same results. */
int mproc__proc_boot_decode(const uint8_t *buf, size_t len,
			    const struct mproc__proc_method *method,
			    mproc_process **self, struct mproc__proc_parent *parent,
			    int **fds, size_t *nfds, char *why, size_t why_len);

#endif /* MPROC_PROCESS_BOOT_H */
