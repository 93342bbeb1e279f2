/*
 * A process's relatives: its running children (mproc_active_children),
 * its parent seen from a child (mproc_parent_process), and the authkey
 * passed down through children and grandchildren, under every start
 * method.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "process_test.h"

TestSuite(family, .init = forget_worker_marker);

static mproc_process *start_one(const char *method, mproc_target_fn fn,
				const void *arg, size_t len, bool daemon)
{
	mproc_process *p;
	cr_assert_eq(mproc_process_create(ctx_of(method), fn, arg, len, &p), 0);
	cr_assert_eq(mproc_process_set_daemon(p, daemon), 0);
	int rc = mproc_process_start(p);
	cr_assert_eq(rc, 0, "%s: %s", method, mproc_strerror(rc));
	return p;
}

/* Wait, without reaping, until @p's sentinel says it has ended. */
static void wait_sentinel(mproc_process *p)
{
	struct pollfd pfd = { .fd = mproc_process_sentinel(p), .events = POLLIN };
	cr_assert_eq(poll(&pfd, 1, 30000), 1);
}

/* ---- active_children --------------------------------------------------- */

Test(family, no_children_yet)
{
	mproc_process *out[1];
	cr_expect_eq(mproc_active_children(NULL, 0), 0);
	cr_expect_eq(mproc_active_children(out, 1), 0);
	cr_expect_eq(mproc_active_children(NULL, 1), -EINVAL);
}

Test(family, active_children_lists_running_ones_oldest_first, .timeout = 60)
{
	enum { PER = 2, N = PER * N_METHODS };
	mproc_process *p[N];
	for (int i = 0; i < N; i++)
		p[i] = start_one(all_methods[i / PER], sleep_forever, NULL, 0,
				 i == 2);
	mproc_process *out[N + 1];
	cr_assert_eq(mproc_active_children(out, N + 1), N);
	for (int i = 0; i < N; i++)
		cr_expect_eq(out[i], p[i], "slot %d", i);
	/* A short array gets the oldest; the count is still the total. */
	memset(out, 0, sizeof(out));
	cr_expect_eq(mproc_active_children(out, 2), N);
	cr_expect_eq(out[0], p[0]);
	cr_expect_eq(out[1], p[1]);
	cr_expect_null(out[2]);

	/* One per method ends without being joined: it is reaped here and
	 * left out, and its exit code is there afterwards. */
	for (int m = 0; m < N_METHODS; m++) {
		cr_assert_eq(mproc_process_kill(p[m * PER + 1]), 0);
		wait_sentinel(p[m * PER + 1]);
	}
	cr_assert_eq(mproc_active_children(out, N), N - N_METHODS);
	cr_expect_eq(out[0], p[0]);
	cr_expect_eq(out[1], p[2]);
	cr_expect_eq(out[2], p[4]);
	for (int m = 0; m < N_METHODS; m++) {
		int code;
		cr_expect_eq(mproc_process_exitcode(p[m * PER + 1], &code), 0);
		cr_expect_eq(code, -SIGKILL, "%s", all_methods[m]);
	}
	/* A freed running handle is not listed (the daemon: mproc ends it at
	 * exit). */
	mproc_process_free(p[2]);
	cr_expect_eq(mproc_active_children(out, N), N - N_METHODS - 1);
	cr_expect_eq(out[0], p[0]);
	cr_expect_eq(out[1], p[4]);

	for (int i = 0; i < N; i += PER) {
		if (i == 2)
			continue;
		cr_expect_eq(mproc_process_terminate(p[i]), 0);
		cr_expect_eq(mproc_process_join(p[i], MPROC_FOREVER), 0);
	}
	cr_expect_eq(mproc_active_children(out, N), 0);
	for (int i = 0; i < N; i++)
		if (i != 2)
			mproc_process_free(p[i]);
}

/* In a child: none of its parent's children, then its own one. */
static int count_own_children(void *arg, size_t len)
{
	(void)arg;
	(void)len;
	if (mproc_active_children(NULL, 0) != 0)
		return 1;
	mproc_process *p, *out[2];
	if (mproc_process_create(NULL, sleep_forever, NULL, 0, &p) ||
	    mproc_process_start(p))
		return 2;
	int n = mproc_active_children(out, 2);
	int rc = n == 1 && out[0] == p ? 0 : 3;
	mproc_process_kill(p);
	mproc_process_join(p, MPROC_FOREVER);
	if (rc == 0 && mproc_active_children(NULL, 0) != 0)
		rc = 4;
	mproc_process_free(p);
	return rc;
}

Test(family, a_child_lists_only_its_own_children, .timeout = 60)
{
	mproc_process *sibling = start_one("fork", sleep_forever, NULL, 0, false);
	for (int m = 0; m < N_METHODS; m++)
		cr_expect_eq(run_target(all_methods[m], count_own_children, NULL, 0),
			     0, "%s", all_methods[m]);
	cr_expect_eq(mproc_process_kill(sibling), 0);
	cr_expect_eq(mproc_process_join(sibling, MPROC_FOREVER), 0);
	mproc_process_free(sibling);
}

/* ---- parent_process ---------------------------------------------------- */

Test(family, the_main_process_has_no_parent)
{
	cr_expect_null(mproc_parent_process());
}

struct whois {
	int parent;       /* the pid it should report */
	char name[32];    /* the name it should report */
};

static int check_parent(void *arg, size_t len)
{
	struct whois w;
	if (len != sizeof(w))
		return 99;
	memcpy(&w, arg, sizeof(w));
	mproc_process *par = mproc_parent_process();
	if (!par || par == mproc_current_process())
		return 1;
	if (mproc_process_pid(par) != w.parent || mproc_process_ident(par) != w.parent ||
	    mproc_parent_pid() != w.parent)
		return 2;
	if (strcmp(mproc_process_name(par), w.name))
		return 3;
	if (mproc_process_is_alive(par) != 1)
		return 4;
	int fd = mproc_process_sentinel(par);
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	if (fd < 0 || poll(&pfd, 1, 0) != 0)
		return 5;
	/* Alive: a join with a timeout returns 0 after waiting it out. */
	int64_t t0 = mproc__now_ns();
	if (mproc_process_join(par, 50 * MPROC_MSEC) != 0 ||
	    mproc__now_ns() - t0 < 40 * MPROC_MSEC)
		return 6;
	int code;
	uint8_t key[MPROC_AUTHKEY_SIZE];
	if (mproc_process_exitcode(par, &code) != -ECHILD ||
	    mproc_process_authkey(par, key) != -ECHILD)
		return 7;
	if (mproc_process_terminate(par) != -EINVAL ||
	    mproc_process_interrupt(par) != -EINVAL ||
	    mproc_process_kill(par) != -EINVAL ||
	    mproc_process_start(par) != -EINVAL ||
	    mproc_process_close(par) != -EINVAL ||
	    mproc_process_set_daemon(par, true) != -EINVAL ||
	    mproc_process_join(par, -2) != -EINVAL)
		return 8;
	mproc_process_free(par); /* ignored */
	if (mproc_parent_process() != par || mproc_process_sentinel(par) != fd)
		return 9;
	return 0;
}

Test(family, a_child_sees_its_parent, .timeout = 60)
{
	cr_assert_eq(mproc_process_set_name(mproc_current_process(), "Elder"), 0);
	for (int m = 0; m < N_METHODS; m++) {
		struct whois w = { .parent = getpid() };
		snprintf(w.name, sizeof(w.name), "Elder");
		cr_expect_eq(run_target(all_methods[m], check_parent, &w, sizeof(w)),
			     0, "%s", all_methods[m]);
	}
}

/* A grandchild started by @arg's method under a child: its parent is the
 * child, whatever started either of them. */
static int check_grandparent(void *arg, size_t len)
{
	int method;
	if (len != sizeof(method))
		return 99;
	memcpy(&method, arg, sizeof(method));
	struct whois w = { .parent = getpid() };
	snprintf(w.name, sizeof(w.name), "%s", mproc_current_process_name());
	return run_in_child(method, check_parent, &w, sizeof(w));
}

Test(family, a_grandchild_sees_its_own_parent, .timeout = 120)
{
	for (int m = 0; m < N_METHODS; m++)
		for (int g = 0; g < N_METHODS; g++)
			cr_expect_eq(run_target(all_methods[m], check_grandparent,
						&g, sizeof(g)), 0,
				     "%s then %s", all_methods[m], all_methods[g]);
}

/* The child outlives its parent and joins it; it writes the result, a
 * digit, to the file named in @arg (it is nobody's child to reap). */
static int join_parent(void *arg, size_t len)
{
	char path[64];
	if (len != sizeof(path))
		return 99;
	memcpy(path, arg, sizeof(path));
	mproc_process *par = mproc_parent_process();
	char result = '0';
	if (!par)
		result = '1';
	else if (mproc_process_join(par, 30 * MPROC_SEC) != 0)
		result = '2';
	else if (mproc_process_is_alive(par) != 0)
		result = '3';
	else {
		struct pollfd pfd = { .fd = mproc_process_sentinel(par),
				      .events = POLLIN };
		if (poll(&pfd, 1, 0) != 1)
			result = '4';
	}
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, &result, 1) != 1)
		return 98;
	close(fd);
	return 0;
}

Test(family, join_on_the_parent_returns_when_it_exits, .timeout = 60)
{
	for (int m = 0; m < N_METHODS; m++) {
		char path[64];
		snprintf(path, sizeof(path), "/tmp/mproc-family-XXXXXX");
		int fd = mkstemp(path);
		cr_assert_geq(fd, 0);
		/* The parent: a plain fork of this process that starts the
		 * child and leaves at once with _exit, not joining it. */
		pid_t mid = fork();
		cr_assert_geq(mid, 0);
		if (mid == 0) {
			mproc_context *ctx;
			mproc_process *p;
			if (mproc_get_context(all_methods[m], &ctx) ||
			    mproc_process_create(ctx, join_parent, path,
						 sizeof(path), &p) ||
			    mproc_process_start(p))
				_exit(1);
			usleep(100 * 1000); /* let the child get to its join */
			_exit(0);
		}
		int st;
		cr_assert_eq(waitpid(mid, &st, 0), mid);
		cr_expect_eq(st, 0, "%s: the parent could not start it", all_methods[m]);
		char got = 0;
		for (int tries = 0; tries < 3000 && pread(fd, &got, 1, 0) != 1; tries++)
			usleep(10 * 1000);
		cr_expect_eq(got, '0', "%s: result %c", all_methods[m], got ? got : '?');
		close(fd);
		unlink(path);
	}
}

/* ---- authkey down the generations -------------------------------------- */

/* The current process's key must be k.key; unless k.method is -1, a
 * child started by that method then checks its own key the same way. */
struct keycheck {
	uint8_t key[MPROC_AUTHKEY_SIZE];
	int method;         /* -1: do not go deeper */
};

static int check_key_and_descend(void *arg, size_t len)
{
	struct keycheck k;
	if (len != sizeof(k))
		return 99;
	memcpy(&k, arg, sizeof(k));
	uint8_t key[MPROC_AUTHKEY_SIZE];
	if (mproc_process_authkey(mproc_current_process(), key) ||
	    memcmp(key, k.key, sizeof(key)))
		return 1;
	if (k.method < 0)
		return 0;
	int method = k.method;
	k.method = -1;
	int code = run_in_child(method, check_key_and_descend, &k, sizeof(k));
	return code ? 10 + code : 0;
}

Test(family, a_key_set_here_reaches_children_and_grandchildren, .timeout = 120)
{
	struct keycheck k;
	for (size_t i = 0; i < sizeof(k.key); i++)
		k.key[i] = (uint8_t)(0xa5 ^ i);
	cr_assert_eq(mproc_process_set_authkey(mproc_current_process(), k.key), 0);
	for (int m = 0; m < N_METHODS; m++)
		for (int g = 0; g < N_METHODS; g++) {
			k.method = g;
			cr_expect_eq(run_target(all_methods[m], check_key_and_descend,
						&k, sizeof(k)), 0,
				     "%s then %s", all_methods[m], all_methods[g]);
		}
}
