/*
 * Process objects: attributes, life-cycle errors, exit codes from return
 * values and signals, terminate/kill, join timeouts, the sentinel, close
 * and free.  Most run under all three start methods.
 */
#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "process_test.h"

TestSuite(process, .init = forget_worker_marker);

static int return_arg(void *arg, size_t len)
{
	int v;
	if (len != sizeof(v))
		return 99;
	memcpy(&v, arg, sizeof(v));
	return v;
}

static int raise_usr1(void *arg, size_t len)
{
	(void)arg;
	(void)len;
	signal(SIGUSR1, SIG_DFL);
	raise(SIGUSR1);
	return 0;
}

static int ignore_term_forever(void *arg, size_t len)
{
	(void)arg;
	(void)len;
	signal(SIGTERM, SIG_IGN);
	for (;;)
		pause();
	return 0; /* not reached */
}

static int nothing(void *arg, size_t len)
{
	(void)arg;
	(void)len;
	return 0;
}

static int run_nothing(mproc_process *self, void *state, size_t len)
{
	(void)self;
	(void)state;
	(void)len;
	return 0;
}

Test(process, create_rejects_bad_arguments)
{
	mproc_process *p = (mproc_process *)1;
	cr_expect_eq(mproc_process_create(NULL, NULL, NULL, 0, &p), -EINVAL);
	cr_expect_eq(mproc_process_create(NULL, nothing, NULL, 0, NULL), -EINVAL);
	cr_expect_eq(mproc_process_create(NULL, nothing, NULL, 4, &p), -EINVAL);
	struct mproc_process_ops ops = { "T", NULL };
	cr_expect_eq(mproc_process_create_ops(NULL, &ops, NULL, 0, &p), -EINVAL);
	cr_expect_eq(mproc_process_create_ops(NULL, NULL, NULL, 0, &p), -EINVAL);
}

Test(process, default_names_count_up_like_python)
{
	mproc_process *a, *b, *c;
	cr_assert_eq(mproc_process_create(NULL, nothing, NULL, 0, &a), 0);
	cr_assert_eq(mproc_process_create(NULL, nothing, NULL, 0, &b), 0);
	struct mproc_process_ops ops = { "MyProcess", run_nothing };
	cr_assert_eq(mproc_process_create_ops(NULL, &ops, NULL, 0, &c), 0);
	cr_expect_str_eq(mproc_process_name(a), "Process-1");
	cr_expect_str_eq(mproc_process_name(b), "Process-2");
	cr_expect_str_eq(mproc_process_name(c), "MyProcess-3");
	cr_expect_eq(mproc_process_set_name(a, "worker"), 0);
	cr_expect_str_eq(mproc_process_name(a), "worker");
	cr_expect_eq(mproc_process_set_name(a, NULL), -EINVAL);
	mproc_process_free(a);
	mproc_process_free(b);
	mproc_process_free(c);
}

Test(process, main_process_identity)
{
	mproc_process *self = mproc_current_process();
	cr_assert_not_null(self);
	cr_expect_str_eq(mproc_current_process_name(), "MainProcess");
	cr_expect_str_eq(mproc_process_name(self), "MainProcess");
	cr_expect_eq(mproc_process_pid(self), getpid());
	cr_expect_eq(mproc_process_ident(self), getpid());
	cr_expect_eq(mproc_process_is_alive(self), 1);
	cr_expect_eq(mproc_parent_pid(), 0);
	cr_expect_null(mproc_process_start_method(self));
	/* The current process is not a child of itself. */
	cr_expect_eq(mproc_process_start(self), -EINVAL);
	cr_expect_eq(mproc_process_join(self, 0), -EINVAL);
	cr_expect_eq(mproc_process_terminate(self), -EINVAL);
	cr_expect_eq(mproc_process_interrupt(self), -EINVAL);
	int code;
	cr_expect_eq(mproc_process_exitcode(self, &code), -EBUSY);
	mproc_process_free(self); /* ignored */
	cr_expect_str_eq(mproc_current_process_name(), "MainProcess");
}

Test(process, unstarted_process_errors)
{
	mproc_process *p;
	cr_assert_eq(mproc_process_create(NULL, nothing, NULL, 0, &p), 0);
	int code;
	cr_expect_eq(mproc_process_join(p, MPROC_FOREVER), -ECHILD);
	cr_expect_eq(mproc_process_exitcode(p, &code), -ECHILD);
	cr_expect_eq(mproc_process_terminate(p), -ECHILD);
	cr_expect_eq(mproc_process_kill(p), -ECHILD);
	cr_expect_eq(mproc_process_interrupt(p), -ECHILD);
	cr_expect_eq(mproc_process_sentinel(p), -ECHILD);
	cr_expect_eq(mproc_process_pid(p), -ECHILD);
	cr_expect_eq(mproc_process_ident(p), -ECHILD);
	cr_expect_eq(mproc_process_is_alive(p), 0);
	cr_expect_eq(mproc_process_join(p, -2), -EINVAL);
	cr_expect_eq(mproc_process_close(p), 0);
	cr_expect_eq(mproc_process_start(p), -EBADF);
	mproc_process_free(p);
}

Test(process, null_handle_errors)
{
	int code;
	cr_expect_eq(mproc_process_start(NULL), -EINVAL);
	cr_expect_eq(mproc_process_join(NULL, 0), -EINVAL);
	cr_expect_eq(mproc_process_is_alive(NULL), -EINVAL);
	cr_expect_eq(mproc_process_exitcode(NULL, &code), -EINVAL);
	cr_expect_eq(mproc_process_pid(NULL), -EINVAL);
	cr_expect_eq(mproc_process_sentinel(NULL), -EINVAL);
	cr_expect_eq(mproc_process_terminate(NULL), -EINVAL);
	cr_expect_eq(mproc_process_kill(NULL), -EINVAL);
	cr_expect_eq(mproc_process_interrupt(NULL), -EINVAL);
	cr_expect_eq(mproc_process_ident(NULL), -EINVAL);
	cr_expect_eq(mproc_process_close(NULL), -EINVAL);
	cr_expect_eq(mproc_process_daemon(NULL), -EINVAL);
	cr_expect_eq(mproc_process_set_daemon(NULL, true), -EINVAL);
	cr_expect_null(mproc_process_name(NULL));
	cr_expect_null(mproc_process_start_method(NULL));
	mproc_process_free(NULL);
}

Test(process, double_start_is_an_error, .timeout = 60)
{
	for (int m = 0; m < N_METHODS; m++) {
		mproc_process *p;
		cr_assert_eq(mproc_process_create(ctx_of(all_methods[m]), nothing,
						  NULL, 0, &p), 0);
		cr_assert_eq(mproc_process_start(p), 0);
		cr_expect_eq(mproc_process_start(p), -EALREADY, "%s", all_methods[m]);
		cr_expect_eq(mproc_process_join(p, MPROC_FOREVER), 0);
		cr_expect_eq(mproc_process_start(p), -EALREADY);
		mproc_process_free(p);
	}
}

Test(process, exit_code_is_the_return_value, .timeout = 60)
{
	for (int m = 0; m < N_METHODS; m++) {
		int v = 7;
		cr_expect_eq(run_target(all_methods[m], return_arg, &v, sizeof(v)), 7);
		v = 0;
		cr_expect_eq(run_target(all_methods[m], return_arg, &v, sizeof(v)), 0);
		/* Only the low 8 bits survive, as with exit(3). */
		v = 300;
		cr_expect_eq(run_target(all_methods[m], return_arg, &v, sizeof(v)), 44);
		v = -1;
		cr_expect_eq(run_target(all_methods[m], return_arg, &v, sizeof(v)), 255);
	}
}

Test(process, exit_code_is_minus_the_signal, .timeout = 60)
{
	for (int m = 0; m < N_METHODS; m++)
		cr_expect_eq(run_target(all_methods[m], raise_usr1, NULL, 0),
			     -SIGUSR1, "%s", all_methods[m]);
}

Test(process, terminate_kill_interrupt_and_exitcode_while_running, .timeout = 60)
{
	for (int m = 0; m < N_METHODS; m++) {
		const char *meth = all_methods[m];
		mproc_process *p;
		cr_assert_eq(mproc_process_create(ctx_of(meth), sleep_forever,
						  NULL, 0, &p), 0);
		cr_assert_eq(mproc_process_start(p), 0);
		cr_expect_gt(mproc_process_pid(p), 0);
		cr_expect_eq(mproc_process_is_alive(p), 1);
		int code = 12345;
		cr_expect_eq(mproc_process_exitcode(p, &code), -EBUSY, "%s", meth);
		cr_expect_eq(code, 12345);
		cr_expect_eq(mproc_process_close(p), -EBUSY);
		cr_expect_eq(mproc_process_terminate(p), 0);
		cr_expect_eq(mproc_process_join(p, MPROC_FOREVER), 0);
		cr_expect_eq(mproc_process_is_alive(p), 0);
		cr_expect_eq(mproc_process_exitcode(p, &code), 0);
		cr_expect_eq(code, -SIGTERM, "%s: %d", meth, code);
		/* Signalling a process that has ended does nothing. */
		cr_expect_eq(mproc_process_terminate(p), 0);
		cr_expect_eq(mproc_process_kill(p), 0);
		mproc_process_free(p);

		cr_assert_eq(mproc_process_create(ctx_of(meth), sleep_forever,
						  NULL, 0, &p), 0);
		cr_assert_eq(mproc_process_start(p), 0);
		cr_expect_eq(mproc_process_kill(p), 0);
		cr_expect_eq(mproc_process_join(p, MPROC_FOREVER), 0);
		cr_expect_eq(mproc_process_exitcode(p, &code), 0);
		cr_expect_eq(code, -SIGKILL, "%s: %d", meth, code);
		mproc_process_free(p);

		cr_assert_eq(mproc_process_create(ctx_of(meth), sleep_forever,
						  NULL, 0, &p), 0);
		cr_assert_eq(mproc_process_start(p), 0);
		cr_expect_eq(mproc_process_ident(p), mproc_process_pid(p));
		cr_expect_eq(mproc_process_interrupt(p), 0);
		cr_expect_eq(mproc_process_join(p, MPROC_FOREVER), 0);
		cr_expect_eq(mproc_process_exitcode(p, &code), 0);
		cr_expect_eq(code, -SIGINT, "%s: %d", meth, code);
		cr_expect_eq(mproc_process_interrupt(p), 0);
		mproc_process_free(p);
	}
}

/* True once process @pid ignores SIGTERM (its SigIgn mask in /proc). */
static bool ignores_sigterm(pid_t pid)
{
	char path[64], line[256];
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return false;
	bool ign = false;
	unsigned long long mask;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "SigIgn: %llx", &mask) == 1) {
			ign = mask & (1ULL << (SIGTERM - 1));
			break;
		}
	fclose(f);
	return ign;
}

Test(process, terminate_ignored_then_kill, .timeout = 60)
{
	for (int m = 0; m < N_METHODS; m++) {
		const char *meth = all_methods[m];
		mproc_process *p;
		cr_assert_eq(mproc_process_create(ctx_of(meth), ignore_term_forever,
						  NULL, 0, &p), 0);
		cr_assert_eq(mproc_process_start(p), 0);
		/* Wait until the child has installed SIG_IGN: until it has, a
		 * SIGTERM would still kill it, which proves nothing.  A fixed
		 * sleep is not enough for a spawned (re-executed) child on a
		 * loaded machine, so watch its signal mask instead. */
		int64_t t0 = mproc__now_ns();
		while (!ignores_sigterm(mproc_process_pid(p))) {
			cr_assert_lt(mproc__now_ns() - t0, 15 * MPROC_SEC,
				     "%s: child never ignored SIGTERM", meth);
			usleep(1000);
		}
		cr_expect_eq(mproc_process_terminate(p), 0);
		cr_expect_eq(mproc_process_join(p, 300 * MPROC_MSEC), 0);
		cr_expect_eq(mproc_process_is_alive(p), 1, "%s ignored SIGTERM", meth);
		cr_expect_eq(mproc_process_kill(p), 0);
		cr_expect_eq(mproc_process_join(p, MPROC_FOREVER), 0);
		int code;
		cr_expect_eq(mproc_process_exitcode(p, &code), 0);
		cr_expect_eq(code, -SIGKILL);
		mproc_process_free(p);
	}
}

Test(process, join_timeout_returns_zero_and_waits, .timeout = 60)
{
	for (int m = 0; m < N_METHODS; m++) {
		mproc_process *p;
		cr_assert_eq(mproc_process_create(ctx_of(all_methods[m]),
						  sleep_forever, NULL, 0, &p), 0);
		cr_assert_eq(mproc_process_start(p), 0);
		int64_t t0 = mproc__now_ns();
		cr_expect_eq(mproc_process_join(p, 0), 0);
		cr_expect_eq(mproc_process_join(p, 200 * MPROC_MSEC), 0);
		int64_t waited = mproc__now_ns() - t0;
		cr_expect_geq(waited, 200 * MPROC_MSEC, "waited %lld ns",
			      (long long)waited);
		cr_expect_lt(waited, 20 * MPROC_SEC);
		cr_expect_eq(mproc_process_is_alive(p), 1);
		cr_expect_eq(mproc_process_kill(p), 0);
		cr_expect_eq(mproc_process_join(p, 30 * MPROC_SEC), 0);
		cr_expect_eq(mproc_process_is_alive(p), 0);
		mproc_process_free(p);
	}
}

Test(process, sentinel_becomes_readable_when_the_child_ends, .timeout = 60)
{
	for (int m = 0; m < N_METHODS; m++) {
		const char *meth = all_methods[m];
		mproc_process *p;
		cr_assert_eq(mproc_process_create(ctx_of(meth), sleep_forever,
						  NULL, 0, &p), 0);
		cr_assert_eq(mproc_process_start(p), 0);
		int fd = mproc_process_sentinel(p);
		cr_assert_geq(fd, 0);
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		cr_expect_eq(poll(&pfd, 1, 100), 0, "%s: readable too early", meth);
		cr_expect_eq(mproc_process_kill(p), 0);
		pfd.revents = 0;
		cr_expect_eq(poll(&pfd, 1, 30000), 1, "%s", meth);
		cr_expect(pfd.revents & POLLIN);
		/* When the sentinel fires the exit code is there. */
		int code;
		cr_expect_eq(mproc_process_exitcode(p, &code), 0, "%s", meth);
		cr_expect_eq(code, -SIGKILL);
		cr_expect_eq(mproc_process_close(p), 0);
		cr_expect_eq(mproc_process_sentinel(p), -EBADF);
		mproc_process_free(p);
	}
}

Test(process, close_rules, .timeout = 60)
{
	mproc_process *p;
	int v = 5;
	cr_assert_eq(mproc_process_create(NULL, return_arg, &v, sizeof(v), &p), 0);
	cr_assert_eq(mproc_process_start(p), 0);
	cr_expect_eq(mproc_process_join(p, MPROC_FOREVER), 0);
	cr_expect_eq(mproc_process_close(p), 0);
	cr_expect_eq(mproc_process_close(p), -EBADF);
	cr_expect_eq(mproc_process_join(p, 0), -EBADF);
	cr_expect_eq(mproc_process_is_alive(p), -EBADF);
	cr_expect_eq(mproc_process_terminate(p), -EBADF);
	cr_expect_eq(mproc_process_set_daemon(p, true), -EBADF);
	/* The results stay readable. */
	int code;
	cr_expect_eq(mproc_process_exitcode(p, &code), 0);
	cr_expect_eq(code, 5);
	cr_expect_gt(mproc_process_pid(p), 0);
	cr_expect_str_eq(mproc_process_name(p), "Process-1");
	mproc_process_free(p);
}

Test(process, free_while_running_keeps_tracking, .timeout = 60)
{
	for (int m = 0; m < N_METHODS; m++) {
		mproc_process *p;
		int v = 3;
		cr_assert_eq(mproc_process_create(ctx_of(all_methods[m]), return_arg,
						  &v, sizeof(v), &p), 0);
		cr_assert_eq(mproc_process_start(p), 0);
		mproc_process_free(p);
	}
	/* The next start reaps the orphans that have ended by now. */
	usleep(200 * 1000);
	cr_expect_eq(run_target("fork", nothing, NULL, 0), 0);
}

Test(process, daemon_flag_only_before_start, .timeout = 60)
{
	mproc_process *p;
	cr_assert_eq(mproc_process_create(NULL, nothing, NULL, 0, &p), 0);
	cr_expect_eq(mproc_process_daemon(p), 0);
	cr_expect_eq(mproc_process_set_daemon(p, true), 0);
	cr_expect_eq(mproc_process_daemon(p), 1);
	cr_assert_eq(mproc_process_start(p), 0);
	cr_expect_eq(mproc_process_set_daemon(p, false), -EALREADY);
	cr_expect_eq(mproc_process_daemon(p), 1);
	cr_expect_eq(mproc_process_join(p, MPROC_FOREVER), 0);
	mproc_process_free(p);
}

/* In a daemon child, starting a process must fail with -EPERM. */
static int daemon_tries_to_start(void *arg, size_t len)
{
	(void)arg;
	(void)len;
	if (mproc_process_daemon(mproc_current_process()) != 1)
		return 1;
	mproc_process *p;
	if (mproc_process_create(NULL, nothing, NULL, 0, &p))
		return 2;
	int rc = mproc_process_start(p);
	mproc_process_free(p);
	return rc == -EPERM ? 0 : 3;
}

Test(process, daemons_may_not_have_children, .timeout = 60)
{
	for (int m = 0; m < N_METHODS; m++) {
		mproc_process *p;
		cr_assert_eq(mproc_process_create(ctx_of(all_methods[m]),
						  daemon_tries_to_start, NULL, 0, &p), 0);
		cr_assert_eq(mproc_process_set_daemon(p, true), 0);
		cr_assert_eq(mproc_process_start(p), 0);
		cr_expect_eq(mproc_process_join(p, MPROC_FOREVER), 0);
		int code;
		cr_expect_eq(mproc_process_exitcode(p, &code), 0);
		cr_expect_eq(code, 0, "%s: %d", all_methods[m], code);
		mproc_process_free(p);
	}
}

/* A handle copied into a forked child is not the child's to start. */
static mproc_process *parents_handle;

static int start_parents_handle(void *arg, size_t len)
{
	(void)arg;
	(void)len;
	int rc = mproc_process_start(parents_handle);
	int j = mproc_process_join(parents_handle, 0);
	return rc == -ECHILD && j == -ECHILD ? 0 : 1;
}

Test(process, handle_of_another_process_is_refused, .timeout = 60)
{
	cr_assert_eq(mproc_process_create(NULL, nothing, NULL, 0, &parents_handle), 0);
	cr_expect_eq(run_target("fork", start_parents_handle, NULL, 0), 0);
	mproc_process_free(parents_handle);
}

Test(process, cpu_count_matches_affinity)
{
	cpu_set_t set;
	CPU_ZERO(&set);
	cr_assert_eq(sched_getaffinity(0, sizeof(set), &set), 0);
	int n = mproc_cpu_count();
	cr_expect_geq(n, 1);
	cr_expect_eq(n, CPU_COUNT(&set));
}

/* The child checks its own view of itself against what the parent
 * expected: name, parent pid, daemon flag, start method. */
struct whoami {
	char name[64];
	int parent;
	int daemon;
	char method[16];
};

static int check_whoami(void *arg, size_t len)
{
	struct whoami w;
	if (len != sizeof(w))
		return 1;
	memcpy(&w, arg, sizeof(w));
	mproc_process *self = mproc_current_process();
	if (strcmp(mproc_current_process_name(), w.name))
		return 2;
	if (mproc_parent_pid() != w.parent)
		return 3;
	if (mproc_process_daemon(self) != w.daemon)
		return 4;
	if (mproc_process_pid(self) != getpid() || mproc_process_is_alive(self) != 1)
		return 5;
	const char *m = mproc_process_start_method(self);
	if (!m || strcmp(m, w.method))
		return 6;
	return 0;
}

Test(process, child_sees_its_name_parent_and_method, .timeout = 60)
{
	for (int m = 0; m < N_METHODS; m++) {
		for (int d = 0; d < 2; d++) {
			mproc_process *p;
			struct whoami w = { .parent = getpid(), .daemon = d };
			snprintf(w.method, sizeof(w.method), "%s", all_methods[m]);
			snprintf(w.name, sizeof(w.name), "child-%d-%d", m, d);
			cr_assert_eq(mproc_process_create(ctx_of(all_methods[m]),
							  check_whoami, &w, sizeof(w), &p), 0);
			cr_assert_eq(mproc_process_set_name(p, w.name), 0);
			cr_assert_eq(mproc_process_set_daemon(p, d), 0);
			cr_expect_str_eq(mproc_process_start_method(p), all_methods[m]);
			cr_assert_eq(mproc_process_start(p), 0);
			cr_expect_eq(mproc_process_join(p, MPROC_FOREVER), 0);
			int code;
			cr_expect_eq(mproc_process_exitcode(p, &code), 0);
			cr_expect_eq(code, 0, "%s daemon=%d: check %d", all_methods[m], d, code);
			mproc_process_free(p);
		}
	}
}

/* Children of children are numbered "Process-N:M", as in Python. */
static int name_of_grandchild(void *arg, size_t len)
{
	int k;
	if (len != sizeof(k))
		return 3;
	memcpy(&k, arg, sizeof(k));
	char want[32];
	snprintf(want, sizeof(want), "Process-%d:1", k);
	mproc_process *p;
	if (mproc_process_create(NULL, nothing, NULL, 0, &p))
		return 1;
	int ok = !strcmp(mproc_process_name(p), want);
	mproc_process_free(p);
	return ok ? 0 : 2;
}

Test(process, nested_identity_in_names, .timeout = 60)
{
	for (int m = 0; m < N_METHODS; m++) {
		mproc_process *p;
		int k = m + 1; /* this test's m-th child is Process-<m+1> */
		cr_assert_eq(mproc_process_create(ctx_of(all_methods[m]),
						  name_of_grandchild, &k, sizeof(k), &p), 0);
		cr_assert_eq(mproc_process_set_name(p, "renamed"), 0);
		cr_assert_eq(mproc_process_start(p), 0);
		cr_expect_eq(mproc_process_join(p, MPROC_FOREVER), 0);
		int code;
		cr_expect_eq(mproc_process_exitcode(p, &code), 0);
		cr_expect_eq(code, 0, "%s", all_methods[m]);
		mproc_process_free(p);
	}
}
