/*
 * Allocation and release of process objects.  A handle is made here for a
 * new child in the parent (process.c) and for a child's view of itself in
 * a fresh image (boot.c); both release it here.
 */
#include <stdlib.h>
#include <unistd.h>

#include "process/core.h"

mproc_process *mproc__proc_alloc(void)
{
	mproc_process *p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	pthread_mutex_init(&p->lock, NULL);
	p->pidfd = -1;
	p->starter_pidfd = -1;
	p->status_fd = -1;
	return p;
}

void mproc__proc_release(mproc_process *p)
{
	if (!p)
		return;
	if (p->pidfd >= 0)
		close(p->pidfd);
	if (p->status_fd >= 0)
		close(p->status_fd);
	free(p->name);
	free(p->type_name);
	free(p->arg);
	pthread_mutex_destroy(&p->lock);
	free(p);
}
