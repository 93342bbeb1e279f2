/*
 * base_process.c - the cost of starting and joining a process that does
 * nothing, by the system's own means: the baselines of mproc's start
 * methods.
 *
 *   raw_fork   fork(); the child calls _exit(0); the parent waitpid()s.
 *   raw_spawn  posix_spawn() of this very executable with --exit-at-once
 *              (main() leaves before anything else), then waitpid().
 *
 * An example of a row timed in the harness process with
 * bench_op_run_start_join.
 */
#include <errno.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"

extern char **environ;

static int reap(pid_t pid)
{
	int st;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -errno;
	return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -ECHILD;
}

static int fork_once(void *arg)
{
	(void)arg;
	pid_t pid = fork();
	if (pid == 0)
		_exit(0);
	if (pid < 0)
		return -errno;
	return reap(pid);
}

static int raw_fork_run(struct bench_case *c, struct bench_sample *s)
{
	fflush(NULL);
	return bench_op_run_start_join(c, fork_once, NULL, s);
}

BENCH_REGISTER(raw_fork) = {
	.suite = "process",
	.impl = "raw_fork",
	.descr = "fork + _exit(0) + waitpid",
	.run = raw_fork_run,
};

static int spawn_once(void *arg)
{
	(void)arg;
	char *argv[] = {(char *)bench_self_exe(), BENCH_EXIT_ARG, NULL};
	pid_t pid;
	int rc = posix_spawn(&pid, argv[0], NULL, NULL, argv, environ);
	if (rc != 0)
		return -rc;
	return reap(pid);
}

static int raw_spawn_run(struct bench_case *c, struct bench_sample *s)
{
	int rc = bench_op_run_start_join(c, spawn_once, NULL, s);
	if (rc < 0)
		snprintf(s->note, sizeof s->note, "posix_spawn %s: %s",
			 bench_self_exe(), strerror(-rc));
	return rc;
}

BENCH_REGISTER(raw_spawn) = {
	.suite = "process",
	.impl = "raw_spawn",
	.descr = "posix_spawn of this executable (" BENCH_EXIT_ARG
		 ") + waitpid",
	.run = raw_spawn_run,
};
