/*
 * The inherited-descriptor registry (fdreg.h).  The lock is taken around
 * fork() by pthread_atfork handlers, so a child never inherits it held by
 * a thread that does not exist there.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

#include "common/fdreg.h"

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static int *reg_fds;
static size_t reg_len, reg_cap;
static pthread_once_t reg_once = PTHREAD_ONCE_INIT;

static void reg_prepare(void) { pthread_mutex_lock(&reg_lock); }
static void reg_release(void) { pthread_mutex_unlock(&reg_lock); }
static void reg_init(void)
{
	pthread_atfork(reg_prepare, reg_release, reg_release);
}

int mproc__fdreg_add(int fd)
{
	if (fd < 0)
		return -EBADF;
	pthread_once(&reg_once, reg_init);
	pthread_mutex_lock(&reg_lock);
	int rc = 0;
	if (reg_len == reg_cap) {
		size_t cap = reg_cap ? reg_cap * 2 : 16;
		int *p = realloc(reg_fds, cap * sizeof(*p));
		if (!p)
			rc = -ENOMEM;
		else {
			reg_fds = p;
			reg_cap = cap;
		}
	}
	if (!rc)
		reg_fds[reg_len++] = fd;
	pthread_mutex_unlock(&reg_lock);
	return rc;
}

void mproc__fdreg_remove(int fd)
{
	pthread_mutex_lock(&reg_lock);
	for (size_t i = 0; i < reg_len; i++) {
		if (reg_fds[i] == fd) {
			reg_fds[i] = reg_fds[--reg_len];
			break;
		}
	}
	pthread_mutex_unlock(&reg_lock);
}

size_t mproc__fdreg_list(int *fds, size_t max)
{
	pthread_mutex_lock(&reg_lock);
	size_t n = reg_len;
	for (size_t i = 0; i < n && i < max; i++)
		fds[i] = reg_fds[i];
	pthread_mutex_unlock(&reg_lock);
	return n;
}
