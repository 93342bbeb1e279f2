/*
 * The current process: its handle ("MainProcess" in the main process, the
 * child's view of its process object in a child), its parent, and the
 * counter that numbers its children.  How a re-executed image reaches
 * mproc before main()'s own code is main.c's business.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "common/fork.h"
#include "process/current.h"

static mproc_process main_proc;
static pthread_once_t main_once = PTHREAD_ONCE_INIT;
static int main_key_err;

/* Set once in a child before any application code runs there, read
 * afterwards; the process is single-threaded when they are written. */
static mproc_process *current_proc;
/* The child's handle of its parent (mproc_parent_process), valid when
 * current_proc is set.  Static, so that having one can never fail. */
static mproc_process parent_proc;

/* Numbers this process's children: Process-1, Process-2, ... */
static _Atomic uint32_t child_counter;

static int fill_random(uint8_t *buf, size_t len)
{
	size_t got = 0;
	while (got < len) {
		ssize_t n = getrandom(buf + got, len - got, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		got += (size_t)n;
	}
	return 0;
}

static void init_main(void)
{
	pthread_mutex_init(&main_proc.lock, NULL);
	main_proc.state = MPROC__PROC_STARTED;
	main_proc.is_self = true;
	main_proc.name = strdup("MainProcess");
	main_proc.pidfd = -1;
	main_proc.status_fd = -1;
	main_key_err = fill_random(main_proc.authkey, sizeof(main_proc.authkey));
}

mproc_process *mproc__proc_current(void)
{
	if (current_proc)
		return current_proc;
	pthread_once(&main_once, init_main);
	return &main_proc;
}

/* A fork child of a child inherits its parent's handle of the
 * grandparent: drop it (the pidfd is this process's copy) and describe
 * the new parent instead. */
static void set_parent(struct mproc__proc_parent *parent)
{
	if (current_proc) {
		if (parent_proc.pidfd >= 0)
			close(parent_proc.pidfd);
		free(parent_proc.name);
		pthread_mutex_destroy(&parent_proc.lock);
	}
	memset(&parent_proc, 0, sizeof(parent_proc));
	pthread_mutex_init(&parent_proc.lock, NULL);
	parent_proc.is_parent = true;
	parent_proc.state = MPROC__PROC_STARTED;
	parent_proc.pid = parent->pid;
	parent_proc.name = parent->name;
	parent_proc.pidfd = parent->pidfd;
	parent_proc.starter_pidfd = -1;
	parent_proc.status_fd = -1;
	parent->name = NULL;
	parent->pidfd = -1;
}

void mproc__proc_become(mproc_process *self, struct mproc__proc_parent *parent)
{
	set_parent(parent);
	self->is_self = true;
	self->state = MPROC__PROC_STARTED;
	self->pid = mproc__self_pid();
	self->pidfd = -1;
	self->status_fd = -1;
	self->tracked = false;
	self->orphan = false;
	self->next = self->prev = NULL;
	self->starter_pidfd = -1;
	current_proc = self;
	atomic_store_explicit(&child_counter, 0, memory_order_relaxed);
}

void mproc__proc_next_identity(uint32_t *ids, uint32_t *len)
{
	const mproc_process *cur = mproc__proc_current();
	uint32_t n = cur->identity_len;
	memcpy(ids, cur->identity, n * sizeof(*ids));
	/* Relaxed: the counter only has to hand out distinct numbers. */
	uint32_t next = atomic_fetch_add_explicit(&child_counter, 1,
						  memory_order_relaxed) + 1;
	if (n < MPROC__PROC_IDENTITY_MAX)
		ids[n++] = next;
	*len = n;
}

MPROC_API mproc_process *mproc_current_process(void)
{
	return mproc__proc_current();
}

MPROC_API int mproc_parent_pid(void)
{
	return current_proc ? (int)parent_proc.pid : 0;
}

MPROC_API mproc_process *mproc_parent_process(void)
{
	return current_proc ? &parent_proc : NULL;
}

int mproc__proc_current_key_error(void)
{
	mproc__proc_current();
	return current_proc ? 0 : main_key_err;
}

MPROC_API int mproc_cpu_count(void)
{
	/* The affinity mask may be larger than cpu_set_t on big machines:
	 * grow until the kernel accepts the size. */
	for (int ncpu = 1024; ncpu <= (1 << 22); ncpu *= 2) {
		cpu_set_t *set = CPU_ALLOC((size_t)ncpu);
		if (!set)
			return -ENOMEM;
		size_t sz = CPU_ALLOC_SIZE((size_t)ncpu);
		if (sched_getaffinity(0, sz, set) == 0) {
			int n = CPU_COUNT_S(sz, set);
			CPU_FREE(set);
			return n;
		}
		int err = errno;
		CPU_FREE(set);
		if (err != EINVAL)
			return -err;
	}
	return -EINVAL;
}
