/*
 * A fresh exec of the same program (/proc/self/exe, so a program that was
 * moved or deleted since it started still works), entered through
 * mproc_main: how the spawn method starts each child and the forkserver
 * method its server.
 *
 * What the new image inherits is chosen, not accidental: stdin, stdout and
 * stderr; the descriptor carrying the start data; and the anonymous
 * shared-memory segments, each at the number it has in the parent, so that
 * a token made by mproc_shm_export (which names the descriptor number) is
 * valid in the child.  Every other descriptor is closed on the way in, as
 * Python closes all but the needed ones.  posix_spawn's file actions do
 * this in the child between its clone and exec, so no other thread of the
 * parent can see a descriptor with its close-on-exec flag cleared.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/fdreg.h"
#include "process/exec.h"

extern char **environ;

/* Upper bound on explicit close actions for the gaps between kept
 * descriptors; beyond it the gaps are left alone (only descriptors without
 * close-on-exec would leak through them). */
#define MAX_GAP_CLOSES 16384

int mproc__proc_inheritable_fds(int **out, size_t *n)
{
	size_t cap = 16;
	for (;;) {
		int *fds = malloc(cap * sizeof(*fds));
		if (!fds)
			return -ENOMEM;
		size_t total = mproc__fdreg_list(fds, cap);
		if (total <= cap) {
			*out = fds;
			*n = total;
			return 0;
		}
		/* Segments were created since we sized the array. */
		free(fds);
		cap = total + 16;
	}
}

static int cmp_int(const void *a, const void *b)
{
	int x = *(const int *)a, y = *(const int *)b;
	return (x > y) - (x < y);
}

int mproc__proc_exec_self(const char *marker, int passfd, const int *keep,
			  size_t nkeep, pid_t *pid)
{
	int *k = malloc((nkeep + 1) * sizeof(*k));
	if (!k)
		return -ENOMEM;
	k[0] = passfd;
	if (nkeep)
		memcpy(k + 1, keep, nkeep * sizeof(*k));
	qsort(k, nkeep + 1, sizeof(*k), cmp_int);

	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	int rc = posix_spawn_file_actions_init(&fa);
	if (rc) {
		free(k);
		return -rc;
	}
	rc = posix_spawnattr_init(&attr);
	if (rc) {
		posix_spawn_file_actions_destroy(&fa);
		free(k);
		return -rc;
	}
	int prev = 2;
	size_t gap_closes = 0;
	for (size_t i = 0; i <= nkeep && !rc; i++) {
		int fd = k[i];
		if (fd <= prev)
			continue; /* stdio, or a duplicate */
		if (gap_closes + (size_t)(fd - prev - 1) <= MAX_GAP_CLOSES) {
			for (int g = prev + 1; g < fd && !rc; g++)
				rc = posix_spawn_file_actions_addclose(&fa, g);
			gap_closes += (size_t)(fd - prev - 1);
		}
		/* dup2 onto itself clears close-on-exec in the child only. */
		if (!rc)
			rc = posix_spawn_file_actions_adddup2(&fa, fd, fd);
		prev = fd;
	}
#if defined(__GLIBC__) && __GLIBC_PREREQ(2, 34)
	if (!rc)
		rc = posix_spawn_file_actions_addclosefrom_np(&fa, prev + 1);
#endif
	/* A fresh program expects an empty signal mask, whatever the
	 * calling thread blocks (services often block signals to read them
	 * from a signalfd). */
	sigset_t none;
	sigemptyset(&none);
	if (!rc)
		rc = posix_spawnattr_setsigmask(&attr, &none);
	if (!rc)
		rc = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK);
	if (!rc) {
		char fdbuf[16];
		snprintf(fdbuf, sizeof(fdbuf), "%d", passfd);
		/* argv[0] is the executable's path, as Python passes
		 * sys.executable, not the parent's argv[0]: a program may
		 * recognise a role of its own by argv[0] (Criterion's
		 * workers are "boxfort-worker"), which the child must not
		 * inherit. */
		char exe[PATH_MAX];
		ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
		if (n <= 0)
			snprintf(exe, sizeof(exe), "/proc/self/exe");
		else
			exe[n] = '\0';
		char *argv[] = { exe, (char *)marker, fdbuf, NULL };
		rc = posix_spawn(pid, "/proc/self/exe", &fa, &attr, argv, environ);
	}
	posix_spawnattr_destroy(&attr);
	posix_spawn_file_actions_destroy(&fa);
	free(k);
	return -rc;
}
