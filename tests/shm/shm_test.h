/*
 * Helpers shared by the shm tests: unique segment names that are removed
 * again when a test ends (also when it fails), and running a function in a
 * forked child.  Children report through their exit status only; Criterion
 * assertions belong to the test process itself.
 */
#ifndef MPROC_TESTS_SHM_TEST_H
#define MPROC_TESTS_SHM_TEST_H

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mproc/shm.h"

#define T_MAX_NAMES 16
static char t_names[T_MAX_NAMES][64];
static int t_nnames;

/* A name no other test (or concurrent test run) uses; unlinked at fini. */
static inline const char *t_name(void)
{
	cr_assert_lt(t_nnames, T_MAX_NAMES);
	char *n = t_names[t_nnames];
	snprintf(n, sizeof(t_names[0]), "/mproc-test-%ld-%d", (long)getpid(),
		 t_nnames);
	t_nnames++;
	shm_unlink(n); /* a leftover of a crashed earlier run with our pid */
	return n;
}

static inline void t_cleanup_names(void)
{
	for (int i = 0; i < t_nnames; i++)
		shm_unlink(t_names[i]);
	t_nnames = 0;
}

/* Run fn(arg) in a child; returns the child's wait status. */
static inline pid_t t_fork(int (*fn)(void *), void *arg)
{
	pid_t pid = fork();
	cr_assert_geq(pid, 0, "fork failed");
	if (pid == 0)
		_exit(fn(arg));
	return pid;
}

static inline int t_join(pid_t pid)
{
	int st;
	while (waitpid(pid, &st, 0) < 0)
		;
	return st;
}

static inline void t_assert_exit0(int st, const char *what)
{
	cr_assert(WIFEXITED(st), "%s: child did not exit normally (status %#x)",
		  what, st);
	cr_assert_eq(WEXITSTATUS(st), 0, "%s: child failed with code %d",
		     what, WEXITSTATUS(st));
}

#endif
