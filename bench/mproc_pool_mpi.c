/*
 * mproc_pool_mpi.c - the row mproc_mpi of suite "pool": mproc's Pool over
 * MPI, a head and two agents on this machine (each agent's local pool
 * takes its share of the CPUs: one worker each on two CPUs), cases
 *
 *   apply_rtt    rtt_us: one blocking mproc_pool_apply (8 bytes in, 8 out),
 *                median over batches
 *   apply_async  tasks_per_sec: apply_async in batches of 1000, each batch
 *                waited for, until the time budget (at most 10^5)
 *   map_tiny     tasks_per_sec: mproc_pool_map of 10^6 eight-byte items
 *                (10^5 with --quick), default chunksize (ceil(n / (4 x 2
 *                agents)))
 *
 * the same cases, work (x + 1) and checks as mproc_pool.c.  The harness
 * cannot be an MPI rank itself, so this file is compiled twice: into
 * mproc-bench as the row, which starts the driver under mpiexec and reads
 * its figure, and with BENCH_MPI_DRIVER into mproc-bench-mpi, the driver
 * (installed beside mproc-bench), whose rank 0 measures and prints
 * "NAME=VALUE".  The MPI pool is created outside the timed part.  Without
 * MPI (the library or a launcher), the row is skipped with a note.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <mproc.h>

#include "common/clock.h"

#ifdef BENCH_MPI_DRIVER

/* ---- the driver (every rank runs it; agents never leave mpi_main) ------- */

static int plus_one(mproc_task *t, const void *arg, size_t len)
{
	uint64_t x;
	if (len != sizeof x)
		return -EINVAL;
	memcpy(&x, arg, sizeof x);
	x++;
	return mproc_task_return(t, &x, sizeof x);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* Batches doubling until one takes 20 us, for the budget; median of the
 * per-call times (what bench_op_loop and the Python rows do). */
static int apply_rtt(mproc_pool *pool, int64_t budget)
{
	static double per[100000];
	int n = 0;
	uint64_t x = 0, batch = 1;
	int64_t end = mproc__now_ns() + budget;
	while (n < 3 || (mproc__now_ns() < end && n < 100000)) {
		int64_t t0 = mproc__now_ns();
		for (uint64_t i = 0; i < batch; i++, x++) {
			uint64_t y;
			ssize_t r = mproc_pool_apply(pool, plus_one, &x, sizeof x,
						     &y, sizeof y);
			if (r != sizeof y || y != x + 1) {
				printf("note=apply: %s\n",
				       r < 0 ? mproc_strerror((int)r)
					     : "wrong result");
				return 1;
			}
		}
		int64_t dt = mproc__now_ns() - t0;
		per[n++] = (double)dt / (double)batch;
		if (dt < 20000)
			batch *= 2;
	}
	qsort(per, (size_t)n, sizeof per[0], cmp_double);
	double med = n % 2 ? per[n / 2] : (per[n / 2 - 1] + per[n / 2]) / 2;
	printf("rtt_us=%.3f\n", med / 1000.0);
	return 0;
}

static int apply_async(mproc_pool *pool, int64_t budget)
{
	static mproc_async *a[1000];
	uint64_t done = 0;
	int64_t t0 = mproc__now_ns(), t1 = t0;
	while (done < 100000 && t1 - t0 < budget) {
		for (uint64_t i = 0; i < 1000; i++) {
			uint64_t x = done + i;
			int rc = mproc_pool_apply_async(pool, plus_one, &x,
							sizeof x, NULL, NULL,
							NULL, &a[i]);
			if (rc) {
				printf("note=apply_async: %s\n",
				       mproc_strerror(rc));
				return 1;
			}
		}
		for (uint64_t i = 0; i < 1000; i++) {
			const void *data;
			size_t len;
			uint64_t y = 0;
			int rc = mproc_async_get(a[i], 60 * MPROC_SEC, &data,
						 &len);
			if (!rc && len == sizeof y)
				memcpy(&y, data, sizeof y);
			mproc_async_free(a[i]);
			if (rc || y != done + i + 1) {
				printf("note=task %llu: %s\n",
				       (unsigned long long)(done + i),
				       rc ? mproc_strerror(rc) : "wrong result");
				return 1;
			}
		}
		done += 1000;
		t1 = mproc__now_ns();
	}
	printf("tasks_per_sec=%.1f\n", (double)done * 1e9 / (double)(t1 - t0));
	return 0;
}

static int map_tiny(mproc_pool *pool, bool quick)
{
	size_t n = quick ? 100000 : 1000000;
	uint64_t *in = malloc(n * sizeof *in), *out = malloc(n * sizeof *out);
	if (!in || !out) {
		printf("note=out of memory\n");
		return 1;
	}
	for (size_t i = 0; i < n; i++)
		in[i] = i;
	int64_t t0 = mproc__now_ns();
	ssize_t failed = mproc_pool_map(pool, plus_one, in, n, sizeof *in, out,
					sizeof *out, NULL, NULL);
	int64_t t1 = mproc__now_ns();
	int rc = 0;
	if (failed) {
		printf("note=map: %s\n", failed < 0 ? mproc_strerror((int)failed)
						    : "items failed");
		rc = 1;
	}
	for (size_t i = 0; i < n && !rc; i++)
		if (out[i] != i + 1) {
			printf("note=item %zu: wrong result\n", i);
			rc = 1;
		}
	if (!rc)
		printf("tasks_per_sec=%.1f\n",
		       (double)n * 1e9 / (double)(t1 - t0));
	free(in);
	free(out);
	return rc;
}

/* argv: CASE BUDGET_S QUICK */
int main(int argc, char **argv)
{
	if (mproc_pool_mpi_main(argc, argv, NULL) < 0)
		return 1;
	if (argc < 4) {
		fprintf(stderr, "usage: mpiexec -n K+1 %s CASE BUDGET_S QUICK\n",
			argv[0]);
		return 2;
	}
	int64_t budget = (int64_t)(atof(argv[2]) * 1e9);
	mproc_context *ctx;
	struct mproc_pool_attr attr;
	mproc_pool_attr_init(&attr);
	mproc_pool *pool;
	int rc = mproc_get_context("mpi", &ctx);
	if (!rc) {
		attr.ctx = ctx;
		rc = mproc_pool_create(&attr, &pool);
	}
	if (rc) {
		printf("note=MPI pool: %s\n", mproc_strerror(rc));
		return 1;
	}
	/* Warm every agent up: functions defined, workers running. */
	uint64_t warm[16], wout[16];
	for (int i = 0; i < 16; i++)
		warm[i] = (uint64_t)i;
	struct mproc_map_opts o = { .chunksize = 1 };
	mproc_pool_map(pool, plus_one, warm, 16, 8, wout, 8, NULL, &o);
	if (!strcmp(argv[1], "apply_rtt"))
		rc = apply_rtt(pool, budget);
	else if (!strcmp(argv[1], "apply_async"))
		rc = apply_async(pool, budget);
	else
		rc = map_tiny(pool, argv[3][0] == '1');
	mproc_pool_destroy(pool);
	return rc;
}

#else /* the row, in mproc-bench */

#include <limits.h>
#include <signal.h>
#include <sys/wait.h>

#include "bench.h"
#include "bench_mpi.h"
#include "harness.h"

#ifndef BENCH_MPIEXEC
#define BENCH_MPIEXEC ""
#endif

int bench_mpi_launcher(bool own, char *out, size_t len, char *why,
		       size_t why_len)
{
	static const char *const names[] = { "mpiexec", "mpiexec.mpich",
					     "mpiexec.openmpi", NULL };
	char path[PATH_MAX];
	const char *env = getenv("MPIEXEC");
	bool found = false;
	if (env && *env) {
		snprintf(path, sizeof path, "%s", env);
		if (access(path, X_OK) != 0 &&
		    !bench__find_in_path(env, path, sizeof path)) {
			snprintf(why, why_len, "MPIEXEC=%.100s: no such launcher",
				 env);
			return BENCH_SKIP;
		}
		found = true;
	}
	/* An MPICH build started by Open MPI's mpiexec (or the reverse)
	 * runs K+1 independent singletons: the launcher must match. */
	static const char built_with[] = BENCH_MPIEXEC;
	if (!found && own && built_with[0] != '\0' &&
	    access(built_with, X_OK) == 0) {
		snprintf(path, sizeof path, "%s", built_with);
		found = true;
	}
	for (int i = 0; !found && names[i]; i++)
		found = bench__find_in_path(names[i], path, sizeof path);
	if (!found) {
		snprintf(why, why_len, "no MPI launcher (mpiexec) in PATH: "
				       "scripts/bootstrap.sh --mpi");
		return BENCH_SKIP;
	}
	/* Open MPI (as Debian's default) wants these as root and on a
	 * machine with fewer CPUs than ranks; MPICH needs nothing. */
	char cmd[PATH_MAX + 64], ver[256] = "";
	snprintf(cmd, sizeof cmd, "'%s' --version 2>&1", path);
	FILE *f = popen(cmd, "r");
	if (f) {
		size_t n = fread(ver, 1, sizeof ver - 1, f);
		ver[n] = '\0';
		pclose(f);
	}
	const char *flags = "";
	if (strstr(ver, "Open MPI") || strstr(ver, "OpenRTE")) {
		setenv("OMPI_ALLOW_RUN_AS_ROOT", "1", 1);
		setenv("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1", 1);
		flags = " --oversubscribe --mca btl self,vader";
	}
	snprintf(out, len, "'%s'%s -n %d", path, flags, BENCH_MPI_RANKS);
	return 0;
}

int bench_mpi_run(const char *cmd, int timeout_s, struct bench_sample *s)
{
	char full[8192];
	snprintf(full, sizeof full, "timeout -k 5 %d %s 2>&1 </dev/null",
		 timeout_s, cmd);
	fflush(NULL);
	FILE *f = popen(full, "r");
	if (!f) {
		snprintf(s->note, sizeof s->note, "popen: %s", strerror(errno));
		return -errno;
	}
	char line[1024], last[200] = "";
	int nfig = 0;
	while (fgets(line, sizeof line, f)) {
		line[strcspn(line, "\n")] = '\0';
		char *eq = strchr(line, '=');
		bool used = false;
		if (eq) {
			*eq = '\0';
			if (strcmp(line, "note") == 0) {
				snprintf(s->note, sizeof s->note, "%.190s", eq + 1);
				used = true;
			}
			for (int k = 0; k < BENCH_NFIGS; k++) {
				char *end;
				if (strcmp(line, bench_fig_name(k)) != 0)
					continue;
				double v = strtod(eq + 1, &end);
				if (end != eq + 1) {
					s->fig[k] = v;
					nfig++;
					used = true;
				}
			}
			*eq = '=';
		}
		if (!used && line[0])
			snprintf(last, sizeof last, "%.190s", line);
	}
	int st = pclose(f);
	if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st) != 0 || nfig == 0) {
		if (!s->note[0])
			snprintf(s->note, sizeof s->note, "%.150s (exit %d)",
				 last[0] ? last : "the MPI run failed",
				 WIFEXITED(st) ? WEXITSTATUS(st) : -1);
		return -EIO;
	}
	return 0;
}

/* mproc-bench-mpi beside this executable (build tree and install alike). */
static int driver_path(char *out, size_t len)
{
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
	if (n <= 0)
		return -errno;
	self[n] = '\0';
	char *slash = strrchr(self, '/');
	if (!slash)
		return -ENOENT;
	*slash = '\0';
	snprintf(out, len, "%.3800s/mproc-bench-mpi", self);
	return access(out, X_OK) == 0 ? 0 : -ENOENT;
}

static int mpi_prepare(struct bench_case *c, char *why, size_t why_len)
{
	(void)c;
	mproc_context *ctx;
	char launcher[PATH_MAX + 64], drv[PATH_MAX];
	if (mproc_get_context("mpi", &ctx) != 0) {
		snprintf(why, why_len, "mproc built without MPI (meson option "
				       "mpi; scripts/bootstrap.sh --mpi)");
		return BENCH_SKIP;
	}
	if (driver_path(drv, sizeof drv) != 0) {
		snprintf(why, why_len, "mproc-bench-mpi not found beside "
				       "mproc-bench");
		return BENCH_SKIP;
	}
	return bench_mpi_launcher(true, launcher, sizeof launcher, why,
				  why_len);
}

static int mpi_run(struct bench_case *c, struct bench_sample *s)
{
	char launcher[PATH_MAX + 64], drv[PATH_MAX], cmd[2 * PATH_MAX + 256];
	if (bench_mpi_launcher(true, launcher, sizeof launcher, s->note,
			       sizeof s->note) != 0 ||
	    driver_path(drv, sizeof drv) != 0)
		return BENCH_SKIP;
	snprintf(cmd, sizeof cmd, "%s '%s' %s %.3f %d", launcher, drv,
		 c->case_name, (double)c->duration_ns / 1e9, c->quick ? 1 : 0);
	return bench_mpi_run(cmd, (int)(c->duration_ns / MPROC_SEC) + 120, s);
}

BENCH_REGISTER(mproc_mpi) = {
	.suite = "pool",
	.impl = "mproc_mpi",
	.descr = "mproc Pool over MPI (head + 2 agents, mpiexec): apply round "
		 "trip, apply_async, map of 10^6 8-byte items",
	.cases = BENCH_NAMES("apply_rtt", "apply_async", "map_tiny"),
	.baselines = BENCH_NAMES("python_mpi4py", "mproc_pool"),
	.prepare = mpi_prepare,
	.run = mpi_run,
};

#endif /* BENCH_MPI_DRIVER */
