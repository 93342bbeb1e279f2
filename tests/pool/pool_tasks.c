/*
 * Task functions and helpers shared by the pool tests (see pool_test.h).
 * Task functions run in pool workers, possibly in a fresh image of this
 * binary (spawn, forkserver), so they use only their arguments and
 * per-process statics.
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "pool_test.h"

void pt_sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* ---- scratch files ------------------------------------------------------ */

void pt_tmpdir_new(struct pt_tmpdir *d)
{
	snprintf(d->path, sizeof d->path, "/tmp/mproc-pooltest-XXXXXX");
	cr_assert_not_null(mkdtemp(d->path), "mkdtemp: %s", strerror(errno));
}

void pt_tmpdir_free(struct pt_tmpdir *d)
{
	DIR *dir = opendir(d->path);
	if (!dir)
		return;
	struct dirent *e;
	while ((e = readdir(dir)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		char p[512];
		snprintf(p, sizeof p, "%s/%s", d->path, e->d_name);
		unlink(p);
	}
	closedir(dir);
	rmdir(d->path);
}

void pt_file_arg(struct pt_file_arg *a, const struct pt_tmpdir *d,
		 const char *name, int64_t n)
{
	memset(a, 0, sizeof *a);
	a->n = n;
	snprintf(a->path, sizeof a->path, "%s/%s", d->path, name);
}

void pt_open_gate(const struct pt_file_arg *a)
{
	int fd = open(a->path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	cr_assert_geq(fd, 0, "open gate %s: %s", a->path, strerror(errno));
	close(fd);
}

pid_t pt_read_pid(const struct pt_file_arg *a)
{
	FILE *f = fopen(a->path, "re");
	if (!f)
		return 0;
	int pid = 0;
	if (fscanf(f, "%d", &pid) != 1)
		pid = 0;
	fclose(f);
	return pid;
}

size_t pt_read_pids(const char *path, pid_t *pids, size_t max)
{
	FILE *f = fopen(path, "re");
	if (!f)
		return 0;
	size_t n = 0;
	int pid;
	while (n < max && fscanf(f, "%d", &pid) == 1)
		pids[n++] = pid;
	fclose(f);
	return n;
}

/* ---- processes ---------------------------------------------------------- */

bool pt_pid_running(pid_t pid)
{
	if (pid <= 0)
		return false;
	if (kill(pid, 0) < 0 && errno == ESRCH)
		return false;
	char p[64], buf[512];
	snprintf(p, sizeof p, "/proc/%d/stat", (int)pid);
	FILE *f = fopen(p, "re");
	if (!f)
		return false;
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* "pid (comm) S ...": the state follows the last ')'. */
	char *rp = strrchr(buf, ')');
	if (!rp || rp[1] != ' ')
		return true;
	return rp[2] != 'Z' && rp[2] != 'X';
}

bool pt_is_worker(mproc_pool *pool, pid_t pid)
{
	pid_t pids[MPROC_POOL_MAX_PROCESSES];
	int n = mproc_pool_worker_pids(pool, pids, MPROC_POOL_MAX_PROCESSES);
	for (int i = 0; i < n && i < MPROC_POOL_MAX_PROCESSES; i++)
		if (pids[i] == pid)
			return true;
	return false;
}

/* Children of every thread of @pid, appended to @out[*n..max). */
static void children_of(pid_t pid, pid_t *out, size_t *n, size_t max)
{
	char p[64];
	snprintf(p, sizeof p, "/proc/%d/task", (int)pid);
	DIR *dir = opendir(p);
	if (!dir)
		return;
	struct dirent *e;
	while ((e = readdir(dir)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		char cp[320];
		snprintf(cp, sizeof cp, "/proc/%d/task/%s/children", (int)pid,
			 e->d_name);
		FILE *f = fopen(cp, "re");
		if (!f)
			continue;
		int c;
		while (*n < max && fscanf(f, "%d", &c) == 1)
			out[(*n)++] = c;
		fclose(f);
	}
	closedir(dir);
}

size_t pt_descendants(pid_t pid, pid_t *out, size_t max)
{
	size_t n = 0;
	children_of(pid, out, &n, max);
	for (size_t i = 0; i < n; i++) /* n grows: breadth first */
		children_of(out[i], out, &n, max);
	return n;
}

/* ---- tasks -------------------------------------------------------------- */

int task_square(mproc_task *t, const void *arg, size_t len)
{
	uint32_t x;
	if (len != sizeof x)
		return -EINVAL;
	memcpy(&x, arg, sizeof x);
	uint64_t r = (uint64_t)x * x;
	return mproc_task_return(t, &r, sizeof r);
}

int task_echo(mproc_task *t, const void *arg, size_t len)
{
	return mproc_task_return(t, arg, len);
}

int task_index(mproc_task *t, const void *arg, size_t len)
{
	(void)arg;
	(void)len;
	uint64_t i = mproc_task_index(t);
	return mproc_task_return(t, &i, sizeof i);
}

int task_fail(mproc_task *t, const void *arg, size_t len)
{
	int32_t code = 0;
	if (len == sizeof code)
		memcpy(&code, arg, sizeof code);
	char msg[64];
	snprintf(msg, sizeof msg, "failed on purpose: %d", (int)code);
	mproc_task_set_error(t, msg);
	return -code;
}

int task_nothing(mproc_task *t, const void *arg, size_t len)
{
	(void)t;
	(void)arg;
	(void)len;
	return 0;
}

/* Set by init_record in the worker's own process. */
static int32_t init_calls, init_pid, init_value, whoami_runs;

int init_record(const void *arg, size_t len)
{
	const struct pt_init_arg *a = arg;
	if (len != sizeof *a)
		return -EINVAL;
	init_calls++;
	init_pid = (int32_t)getpid();
	init_value = a->value;
	if (a->log[0]) {
		int fd = open(a->log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC,
			      0600);
		if (fd < 0)
			return -errno;
		char line[32];
		int n = snprintf(line, sizeof line, "%d\n", (int)getpid());
		/* One write of a short line with O_APPEND: lines of several
		 * workers never interleave. */
		ssize_t w = write(fd, line, (size_t)n);
		close(fd);
		if (w != n)
			return -EIO;
	}
	return a->value < 0 ? -EPERM : 0;
}

int task_whoami(mproc_task *t, const void *arg, size_t len)
{
	(void)arg;
	(void)len;
	struct pt_whoami w = {
		.pid = (int32_t)getpid(),
		.init_calls = init_calls,
		.init_pid = init_pid,
		.init_value = init_value,
		.tasks_here = ++whoami_runs,
		.index = (int32_t)mproc_task_index(t),
	};
	return mproc_task_return(t, &w, sizeof w);
}

static int file_arg(const void *arg, size_t len, struct pt_file_arg *a)
{
	if (len != sizeof *a)
		return -EINVAL;
	memcpy(a, arg, sizeof *a);
	a->path[sizeof a->path - 1] = '\0';
	return 0;
}

int task_gate(mproc_task *t, const void *arg, size_t len)
{
	struct pt_file_arg a;
	int rc = file_arg(arg, len, &a);
	if (rc)
		return rc;
	for (int i = 0; access(a.path, F_OK) != 0; i++) {
		if (i == 60000)
			return -ETIMEDOUT;
		pt_sleep_ms(1);
	}
	return mproc_task_return(t, &a.n, sizeof a.n);
}

int task_pidfile_block(mproc_task *t, const void *arg, size_t len)
{
	(void)t;
	struct pt_file_arg a;
	int rc = file_arg(arg, len, &a);
	if (rc)
		return rc;
	char tmp[160], line[32];
	snprintf(tmp, sizeof tmp, "%s.tmp", a.path);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	int n = snprintf(line, sizeof line, "%d\n", (int)getpid());
	ssize_t w = write(fd, line, (size_t)n);
	close(fd);
	/* Renamed into place so that a reader never sees half a pid. */
	if (w != n || rename(tmp, a.path) < 0)
		return -EIO;
	if (a.n > 0) {
		pt_sleep_ms((int)a.n);
		return 0;
	}
	for (;;)
		pause();
	return 0; /* not reached */
}

int task_sleep_ms(mproc_task *t, const void *arg, size_t len)
{
	int64_t ms;
	if (len != sizeof ms)
		return -EINVAL;
	memcpy(&ms, arg, sizeof ms);
	pt_sleep_ms((int)ms);
	return mproc_task_return(t, &ms, sizeof ms);
}

int task_segfault(mproc_task *t, const void *arg, size_t len)
{
	(void)t;
	(void)arg;
	(void)len;
	/* A real fault: a write to a page mapped without access.  Not a
	 * NULL store, which UBSan would catch and turn into an exit before
	 * the CPU faults; volatile so the write cannot be dropped. */
	void *page = mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS,
			  -1, 0);
	if (page == MAP_FAILED)
		return -errno;
	volatile int *volatile p = page;
	*p = 1;
	return 0;
}

int task_abort(mproc_task *t, const void *arg, size_t len)
{
	(void)t;
	(void)arg;
	(void)len;
	abort();
}

int task_exit(mproc_task *t, const void *arg, size_t len)
{
	(void)t;
	(void)arg;
	(void)len;
	_exit(3);
}

void pt_pattern(void *buf, size_t len, uint64_t seed)
{
	unsigned char *p = buf;
	uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;
	size_t i = 0;
	for (; i + 8 <= len; i += 8) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		memcpy(p + i, &x, 8);
	}
	for (; i < len; i++)
		p[i] = (unsigned char)(x >> (8 * (i & 7)));
}

uint64_t pt_checksum(const void *buf, size_t len)
{
	const unsigned char *p = buf;
	uint64_t h = 1469598103934665603ull, w;
	size_t i = 0;
	for (; i + 8 <= len; i += 8) {
		memcpy(&w, p + i, 8);
		h = (h ^ w) * 1099511628211ull;
	}
	for (; i < len; i++)
		h = (h ^ p[i]) * 1099511628211ull;
	return h;
}

int task_pattern(mproc_task *t, const void *arg, size_t len)
{
	uint64_t a[2];
	if (len != sizeof a)
		return -EINVAL;
	memcpy(a, arg, sizeof a);
	void *buf = mproc_task_result_buffer(t, (size_t)a[0]);
	if (!buf && a[0])
		return -ENOMEM;
	pt_pattern(buf, (size_t)a[0], a[1]);
	return 0;
}

int task_len(mproc_task *t, const void *arg, size_t len)
{
	uint32_t n;
	if (len != sizeof n)
		return -EINVAL;
	memcpy(&n, arg, sizeof n);
	void *buf = mproc_task_result_buffer(t, n);
	if (!buf && n)
		return -ENOMEM;
	memset(buf, 0xab, n);
	return 0;
}

int task_selfcheck(mproc_task *t, const void *arg, size_t len)
{
	(void)arg;
	(void)len;
	const char *bad = NULL;
	if (mproc_task_return(NULL, "a", 1) != -EINVAL)
		bad = "return(NULL task) != -EINVAL";
	else if (mproc_task_return(t, NULL, 3) != -EINVAL)
		bad = "return(NULL buf, 3) != -EINVAL";
	else if (mproc_task_result_buffer(NULL, 8) != NULL)
		bad = "result_buffer(NULL task) != NULL";
	else if (mproc_task_set_error(NULL, "x") != -EINVAL)
		bad = "set_error(NULL task) != -EINVAL";
	else if (mproc_task_return(t, "first result", 12) != 0)
		bad = "return(first)";
	else if (mproc_task_return(t, "ok", 2) != 0)
		bad = "return(second)";
	else if (mproc_task_index(t) != 0)
		bad = "index of an apply != 0";
	if (bad) {
		mproc_task_set_error(t, bad);
		return -EPROTO;
	}
	return 0;
}

int star_concat(mproc_task *t, const struct iovec *args, size_t nargs)
{
	size_t total = sizeof(uint32_t);
	for (size_t i = 0; i < nargs; i++)
		total += args[i].iov_len;
	unsigned char *out = mproc_task_result_buffer(t, total);
	if (!out)
		return -ENOMEM;
	size_t off = 0;
	for (size_t i = 0; i < nargs; i++) {
		if (args[i].iov_len)
			memcpy(out + off, args[i].iov_base, args[i].iov_len);
		off += args[i].iov_len;
	}
	uint32_t k = (uint32_t)nargs;
	memcpy(out + off, &k, sizeof k);
	return 0;
}

int task_long_error(mproc_task *t, const void *arg, size_t len)
{
	(void)arg;
	(void)len;
	char big[400];
	memset(big, 'x', sizeof big - 1);
	big[0] = 'A';
	big[sizeof big - 1] = '\0';
	if (mproc_task_set_error(t, big) != 0)
		return -EPROTO;
	return -EDOM;
}
