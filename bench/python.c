/*
 * python.c - running an embedded Python script as one repetition.
 *
 * Python rows are measured by Python itself (its multiprocessing module is
 * the thing compared against), so the harness only starts the interpreter
 * with `-c SCRIPT`, which works the same from the build directory and after
 * installation, and reads back "NAME=VALUE" lines.  No Python, no row: the
 * caller's prepare skips it with a note.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"
#include "common/clock.h"
#include "harness.h"

extern char **environ;

static char interp[4096];
static int interp_state; /* 0 unknown, 1 usable, -1 not */
static char interp_why[200];

/* Spawn argv with stdout/stderr on pipes; collect stdout into @out and the
 * tail of stderr into @err; kill the child after @timeout_ns.  Returns the
 * wait status (>= 0) or a negative errno. */
static int run_capture(char *const argv[], char *out, size_t out_len,
		       char *err, size_t err_len, int64_t timeout_ns)
{
	int po[2], pe[2];
	if (pipe2(po, O_CLOEXEC) < 0)
		return -errno;
	if (pipe2(pe, O_CLOEXEC) < 0) {
		int e = -errno;
		close(po[0]);
		close(po[1]);
		return e;
	}
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, po[1], 1);
	posix_spawn_file_actions_adddup2(&fa, pe[1], 2);
	pid_t pid;
	fflush(NULL);
	int rc = posix_spawn(&pid, argv[0], &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(po[1]);
	close(pe[1]);
	if (rc != 0) {
		close(po[0]);
		close(pe[0]);
		return -rc;
	}

	size_t no = 0, ne = 0;
	int64_t deadline = mproc__now_ns() + timeout_ns;
	struct pollfd fds[2] = {{po[0], POLLIN, 0}, {pe[0], POLLIN, 0}};
	int open_fds = 2;
	bool timed_out = false;
	while (open_fds > 0) {
		int64_t left = deadline - mproc__now_ns();
		if (left <= 0) {
			timed_out = true;
			kill(pid, SIGKILL);
			break;
		}
		int n = poll(fds, 2, (int)(left / 1000000 + 1));
		if (n < 0 && errno != EINTR)
			break;
		for (int i = 0; i < 2; i++) {
			if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP)))
				continue;
			char tmp[1024];
			ssize_t r = read(fds[i].fd, tmp, sizeof tmp);
			if (r <= 0) {
				if (r < 0 && errno == EINTR)
					continue;
				fds[i].fd = -1;
				open_fds--;
				continue;
			}
			if (i == 0) {
				size_t take = (size_t)r;
				if (take > out_len - 1 - no)
					take = out_len - 1 - no;
				memcpy(out + no, tmp, take);
				no += take;
			} else {
				/* Keep the end of stderr: that is where a
				 * traceback says what went wrong. */
				for (ssize_t k = 0; k < r; k++) {
					if (ne == err_len - 1) {
						memmove(err, err + 1, ne - 1);
						ne--;
					}
					err[ne++] = tmp[k];
				}
			}
		}
	}
	out[no] = '\0';
	err[ne] = '\0';
	close(po[0]);
	close(pe[0]);
	int st;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	return timed_out ? -ETIMEDOUT : st;
}

bool bench_python_available(char *why, size_t why_len)
{
	if (interp_state == 0) {
		const char *env = getenv("MPROC_BENCH_PYTHON");
		interp_state = -1;
		if (env && *env) {
			snprintf(interp, sizeof interp, "%s", env);
		} else if (!bench__find_in_path("python3", interp,
						 sizeof interp)) {
			interp[0] = '\0';
			snprintf(interp_why, sizeof interp_why,
				 "python3 not found in PATH");
		}
		if (interp[0]) {
			char out[256], err[512];
			char *argv[] = {interp, "-c",
					"import multiprocessing, sys; "
					"print(sys.version.split()[0]); "
					"print(sys.executable)",
					NULL};
			int st = run_capture(argv, out, sizeof out, err,
					     sizeof err, 30 * 1000000000LL);
			if (st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0) {
				interp_state = 1;
				/* Run the real interpreter from now on, not a
				 * wrapper such as a version manager's shim,
				 * whose start-up would slow every row. */
				char *exe = strchr(out, '\n');
				if (exe) {
					*exe++ = '\0';
					exe[strcspn(exe, "\n")] = '\0';
					if (exe[0] == '/' &&
					    access(exe, X_OK) == 0)
						snprintf(interp, sizeof interp,
							 "%s", exe);
				}
				bench_note("python rows use %s (Python %s)",
					   interp, out);
			} else {
				snprintf(interp_why, sizeof interp_why,
					 "%.150s cannot import multiprocessing",
					 interp);
			}
		}
	}
	if (interp_state < 0 && why)
		snprintf(why, why_len, "%s", interp_why);
	return interp_state > 0;
}

int bench_python_run(const struct bench_case *c, const char *script,
		     const char *const *args, struct bench_sample *s)
{
	if (!bench_python_available(s->note, sizeof s->note))
		return BENCH_SKIP;
	char *argv[32];
	int n = 0;
	argv[n++] = interp;
	argv[n++] = "-c";
	argv[n++] = (char *)script;
	for (int i = 0; args && args[i] && n < 31; i++)
		argv[n++] = (char *)args[i];
	argv[n] = NULL;

	char out[4096], err[600];
	int st = run_capture(argv, out, sizeof out, err, sizeof err,
			     c->duration_ns + 60 * 1000000000LL);
	if (st < 0) {
		snprintf(s->note, sizeof s->note, "running %.120s: %s", interp,
			 strerror(-st));
		return st;
	}
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		/* The last non-empty line of stderr names the exception. */
		size_t l = strlen(err);
		while (l > 0 && (err[l - 1] == '\n' || err[l - 1] == ' '))
			err[--l] = '\0';
		char *last = strrchr(err, '\n');
		snprintf(s->note, sizeof s->note, "python script failed (%s %d): %s",
			 WIFEXITED(st) ? "status" : "signal",
			 WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st),
			 last ? last + 1 : err);
		return -EIO;
	}

	int nfig = 0;
	for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n")) {
		char *eq = strchr(line, '=');
		if (!eq)
			continue;
		*eq = '\0';
		if (strcmp(line, "note") == 0) {
			snprintf(s->note, sizeof s->note, "%s", eq + 1);
			continue;
		}
		for (int f = 0; f < BENCH_NFIGS; f++) {
			if (strcmp(line, bench_fig_name(f)) == 0) {
				char *end;
				double v = strtod(eq + 1, &end);
				if (end != eq + 1) {
					s->fig[f] = v;
					nfig++;
				}
			}
		}
	}
	if (nfig == 0) {
		snprintf(s->note, sizeof s->note,
			 "python script printed no figure");
		return -EIO;
	}
	return 0;
}
