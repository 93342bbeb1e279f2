/*
 * A process's own exit handlers (mproc_atexit, mproc_exit) under every
 * start method: they run last registered first when the target returns or
 * calls mproc_exit, no child inherits them, and atexit(3) handlers run in
 * spawn children but not in fork and forkserver children.  Handlers leave
 * their mark by appending a letter to a file whose path the test passes.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "process_test.h"

TestSuite(atexit, .init = forget_worker_marker);

struct marks {
	char path[64];
	int code;           /* what the target returns or passes to mproc_exit */
	int method;         /* a grandchild's start method (not_inherited) */
};

/* The file every handler of this process appends to (set by the target:
 * atexit(3) handlers take no argument). */
static char mark_path[64];

static void mark(const char *letter)
{
	int fd = open(mark_path, O_WRONLY | O_APPEND | O_CLOEXEC);
	if (fd < 0)
		return;
	if (write(fd, letter, strlen(letter)) < 0)
		(void)0; /* the reader sees the letter missing */
	close(fd);
}

static void mark_arg(void *arg)
{
	mark(arg);
}

static void mark_libc(void)
{
	mark("X");
}

/* The file's contents, at most @cap - 1 bytes. */
static const char *read_marks(const char *path, char *buf, size_t cap)
{
	FILE *f = fopen(path, "r");
	cr_assert_not_null(f);
	size_t n = fread(buf, 1, cap - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

static void new_marks(struct marks *m)
{
	snprintf(m->path, sizeof(m->path), "/tmp/mproc-atexit-XXXXXX");
	int fd = mkstemp(m->path);
	cr_assert_geq(fd, 0);
	close(fd);
}

/* In the child: copy the marks from the argument and point this
 * process's handlers at their file.  False if the argument is wrong. */
static bool take_marks(const void *arg, size_t len, struct marks *m)
{
	if (len != sizeof(*m))
		return false;
	memcpy(m, arg, sizeof(*m));
	memcpy(mark_path, m->path, sizeof(mark_path));
	return true;
}

static int register_abc(void *arg, size_t len)
{
	struct marks m;
	if (!take_marks(arg, len, &m))
		return 99;
	if (mproc_atexit(mark_arg, "A") || mproc_atexit(mark_arg, "B") ||
	    mproc_atexit(mark_arg, "C"))
		return 98;
	if (mproc_atexit(NULL, NULL) != -EINVAL)
		return 97;
	return m.code;
}

/* Run @fn under every method with marks @m (a fresh file each time): it
 * must exit with m->code and leave @want[method] in the file. */
static void expect_marks(mproc_target_fn fn, struct marks m,
			 const char *const want[N_METHODS])
{
	for (int i = 0; i < N_METHODS; i++) {
		char got[32];
		new_marks(&m);
		cr_expect_eq(run_target(all_methods[i], fn, &m, sizeof(m)), m.code,
			     "%s", all_methods[i]);
		read_marks(m.path, got, sizeof(got));
		unlink(m.path);
		cr_expect_str_eq(got, want[i], "%s", all_methods[i]);
	}
}

Test(atexit, null_handler_is_einval)
{
	cr_expect_eq(mproc_atexit(NULL, NULL), -EINVAL);
}

Test(atexit, handlers_run_in_reverse_when_the_target_returns, .timeout = 60)
{
	static const char *const want[N_METHODS] = { "CBA", "CBA", "CBA" };
	expect_marks(register_abc, (struct marks){ .code = 7 }, want);
}

static void exit_from_deep_inside(int code)
{
	mproc_exit(code);
}

static int register_then_exit(void *arg, size_t len)
{
	struct marks m;
	if (!take_marks(arg, len, &m))
		return 99;
	if (mproc_atexit(mark_arg, "A") || mproc_atexit(mark_arg, "B"))
		return 98;
	exit_from_deep_inside(m.code);
	mark("!"); /* not reached */
	return 96;
}

Test(atexit, mproc_exit_runs_them_and_sets_the_code, .timeout = 60)
{
	static const char *const want[N_METHODS] = { "BA", "BA", "BA" };
	expect_marks(register_then_exit, (struct marks){ .code = 5 }, want);
}

/* A handler that registers another: the new one runs too, next. */
static void register_more(void *arg)
{
	(void)arg;
	mark("1");
	mproc_atexit(mark_arg, "2");
}

static int register_during_exit(void *arg, size_t len)
{
	struct marks m;
	if (!take_marks(arg, len, &m))
		return 99;
	if (mproc_atexit(mark_arg, "3") || mproc_atexit(register_more, NULL))
		return 98;
	return 0;
}

Test(atexit, a_handler_may_register_another, .timeout = 60)
{
	static const char *const want[N_METHODS] = { "123", "123", "123" };
	expect_marks(register_during_exit, (struct marks){ .code = 0 }, want);
}

/* A child registers "P", then starts a grandchild by the method named in
 * the marks, which registers nothing: only the child's own end marks. */
static int quiet(void *arg, size_t len)
{
	(void)arg;
	(void)len;
	return 0;
}

static int register_then_start(void *arg, size_t len)
{
	struct marks m;
	if (!take_marks(arg, len, &m))
		return 99;
	if (mproc_atexit(mark_arg, "P"))
		return 98;
	int code = run_in_child(m.method, quiet, NULL, 0);
	/* A plain fork(2) drops them too: the copy ends through
	 * mproc_exit, which would run them if it had them. */
	pid_t pid = fork();
	if (pid == 0)
		mproc_exit(0);
	int st;
	if (pid < 0 || waitpid(pid, &st, 0) != pid || st != 0)
		return 95;
	return code;
}

Test(atexit, children_do_not_inherit_them, .timeout = 60)
{
	for (int i = 0; i < N_METHODS; i++)
		for (int g = 0; g < N_METHODS; g++) {
			struct marks m = { .method = g };
			char got[32];
			new_marks(&m);
			cr_expect_eq(run_target(all_methods[i], register_then_start,
						&m, sizeof(m)), 0, "%s then %s",
				     all_methods[i], all_methods[g]);
			read_marks(m.path, got, sizeof(got));
			unlink(m.path);
			cr_expect_str_eq(got, "P", "%s then %s", all_methods[i],
					 all_methods[g]);
		}
}

/* atexit(3) as well as mproc_atexit: "M" always, "X" only where the child
 * ends with exit(3) (spawn), after the mproc handlers. */
static int register_both(void *arg, size_t len)
{
	struct marks m;
	if (!take_marks(arg, len, &m))
		return 99;
	if (atexit(mark_libc) || mproc_atexit(mark_arg, "M"))
		return 98;
	return 0;
}

Test(atexit, libc_handlers_run_in_spawn_children_only, .timeout = 60)
{
	static const char *const want[N_METHODS] = { "M", "MX", "M" };
	expect_marks(register_both, (struct marks){ .code = 0 }, want);
}

/* Output a target leaves in stdout's buffer reaches the file under every
 * method: the child flushes stdout before _exit(2) (fork, forkserver) as
 * exit(3) does (spawn). */
static int print_unflushed(void *arg, size_t len)
{
	struct marks m;
	if (!take_marks(arg, len, &m))
		return 99;
	fflush(stdout);
	int fd = open(m.path, O_WRONLY | O_APPEND | O_CLOEXEC);
	if (fd < 0 || dup2(fd, STDOUT_FILENO) < 0)
		return 98;
	close(fd);
	printf("P"); /* no newline: stays buffered, whatever the buffering */
	return 0;
}

Test(atexit, stdout_is_flushed_under_every_method, .timeout = 60)
{
	static const char *const want[N_METHODS] = { "P", "P", "P" };
	expect_marks(print_unflushed, (struct marks){ .code = 0 }, want);
}
