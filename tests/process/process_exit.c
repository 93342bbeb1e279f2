/*
 * What happens to children when their parent ends, checked from a
 * grandparent: the test runs a helper program (process_daemon_helper.c) that
 * starts one child, and watches that child through a pidfd after the
 * helper has gone.  Also: a program that forgot mproc_main.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "process_test.h"

TestSuite(exit, .init = forget_worker_marker);

extern char **environ;

struct helper {
	pid_t pid;
	int to;   /* its stdin */
	FILE *from; /* its stdout */
};

static void helper_start(struct helper *h, char *const argv[])
{
	int in[2], out[2];
	cr_assert_eq(pipe2(in, O_CLOEXEC), 0);
	cr_assert_eq(pipe2(out, O_CLOEXEC), 0);
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, in[0], 0);
	posix_spawn_file_actions_adddup2(&fa, out[1], 1);
	/* Nothing of Criterion's (its worker's sockets may lack
	 * close-on-exec) must outlive this test in the helper's children. */
	posix_spawn_file_actions_addclosefrom_np(&fa, 3);
	int rc = posix_spawn(&h->pid, argv[0], &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	cr_assert_eq(rc, 0, "spawn %s: %s", argv[0], strerror(rc));
	close(in[0]);
	close(out[1]);
	h->to = in[1];
	h->from = fdopen(out[0], "r");
	cr_assert_not_null(h->from);
}

static int helper_wait(struct helper *h)
{
	int status;
	while (waitpid(h->pid, &status, 0) < 0)
		cr_assert_eq(errno, EINTR);
	close(h->to);
	fclose(h->from);
	return status;
}

/* Read lines until "ready PID"; returns a pidfd for PID. */
static int wait_ready(struct helper *h, pid_t *pid)
{
	char line[128];
	while (fgets(line, sizeof(line), h->from)) {
		int v;
		if (sscanf(line, "ready %d", &v) == 1) {
			*pid = v;
			int fd = (int)syscall(SYS_pidfd_open, v, 0);
			cr_assert_geq(fd, 0, "pidfd_open(%d): %s", v, strerror(errno));
			return fd;
		}
	}
	cr_assert_fail("helper never reported its child");
	return -1;
}

static bool gone_within(int pidfd, int ms)
{
	struct pollfd pfd = { .fd = pidfd, .events = POLLIN };
	int n;
	while ((n = poll(&pfd, 1, ms)) < 0 && errno == EINTR)
		;
	return n == 1;
}

/* Everything the helper's side still writes, until all writers are gone
 * (the helper, its child, and its forkserver if any). */
static void read_rest(struct helper *h, char *buf, size_t len)
{
	size_t n = fread(buf, 1, len - 1, h->from);
	buf[n] = '\0';
}

static void daemon_case(const char *method, const char *mode, bool kill_parent)
{
	struct helper h;
	char *argv[] = { (char *)MPROC_TEST_DAEMON_HELPER, (char *)method,
			 (char *)mode, NULL };
	helper_start(&h, argv);
	pid_t child;
	int pidfd = wait_ready(&h, &child);
	cr_expect_not(gone_within(pidfd, 0), "%s/%s: child died early", method, mode);
	int64_t t0 = mproc__now_ns();
	if (kill_parent) {
		kill(h.pid, SIGKILL);
	} else {
		cr_assert_eq(write(h.to, "go\n", 3), 3);
	}
	int status;
	while (waitpid(h.pid, &status, 0) < 0)
		cr_assert_eq(errno, EINTR);
	int64_t exit_ns = mproc__now_ns() - t0;
	if (kill_parent) {
		cr_expect(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	} else {
		cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 0,
			  "%s/%s: helper status %#x", method, mode, status);
	}
	if (!strcmp(mode, "nondaemon")) {
		/* The parent waited for its child before exiting. */
		cr_expect(gone_within(pidfd, 0), "%s: parent exited before its "
			  "non-daemon child", method);
	} else {
		/* Generous: the stubborn case waits out a 2 s grace. */
		bool gone = gone_within(pidfd, 20000);
		cr_expect(gone, "%s/%s: daemon %d survived its parent", method,
			  mode, (int)child);
		if (!gone)
			kill(child, SIGKILL);
	}
	char rest[256];
	read_rest(&h, rest, sizeof(rest));
	bool termed = strstr(rest, "terminated") != NULL;
	if (!strcmp(mode, "daemon") && !kill_parent)
		cr_expect(termed, "%s: the atexit handler sent no SIGTERM", method);
	if (kill_parent)
		cr_expect_not(termed, "%s: a killed parent cannot send SIGTERM",
			      method);
	if (!strcmp(mode, "stubborn"))
		cr_expect_geq(exit_ns, 1500 * MPROC_MSEC, "%s: exit did not wait "
			      "for the daemon to ignore SIGTERM (%lld ns)", method,
			      (long long)exit_ns);
	close(h.to);
	fclose(h.from);
	close(pidfd);
}

Test(exit, daemon_children_are_terminated_at_normal_exit, .timeout = 120)
{
	for (int m = 0; m < N_METHODS; m++)
		daemon_case(all_methods[m], "daemon", false);
}

Test(exit, daemon_ignoring_sigterm_is_killed_at_exit, .timeout = 120)
{
	for (int m = 0; m < N_METHODS; m++)
		daemon_case(all_methods[m], "stubborn", false);
}

Test(exit, daemon_children_die_with_a_killed_parent, .timeout = 120)
{
	for (int m = 0; m < N_METHODS; m++)
		daemon_case(all_methods[m], "daemon", true);
}

Test(exit, non_daemon_children_are_joined_at_exit, .timeout = 120)
{
	for (int m = 0; m < N_METHODS; m++)
		daemon_case(all_methods[m], "nondaemon", false);
}

Test(exit, spawn_without_mproc_main_does_not_recurse, .timeout = 60)
{
	struct helper h;
	char *argv[] = { (char *)MPROC_TEST_NOMAIN_HELPER, NULL };
	helper_start(&h, argv);
	/* The helper reads nothing, so it may be gone before this test runs
	 * again; a write to its stdin then raised SIGPIPE and crashed the
	 * test (seen once under load).  Wait for it to be gone first, the
	 * state that crashed, and write nothing. */
	siginfo_t si;
	while (waitid(P_PID, (id_t)h.pid, &si, WEXITED | WNOWAIT) < 0)
		cr_assert_eq(errno, EINTR);
	char out[512] = { 0 };
	size_t n = fread(out, 1, sizeof(out) - 1, h.from);
	(void)n;
	int status = helper_wait(&h);
	cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		  "status %#x, output:\n%s", status, out);
	cr_expect_not_null(strstr(out, "child exitcode 3"), "output:\n%s", out);
}
