/*
 * mproc_process.c - mproc's Process rows: create + start + join + free of
 * a process whose target returns 0 at once, under each start method
 * ("fork", "spawn", "forkserver"), timed in the harness process with
 * bench_op_run_start_join.  Every child's exit code is checked, so a start
 * that breaks fails the row instead of being timed.
 *
 * Spawn and forkserver children are fresh execs of this executable that
 * enter their target through mproc_main(); the early hook below makes it
 * the first thing main() does.  In the harness itself it returns at once.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <mproc.h>

#include "bench.h"

/* A child that does not end within this time is killed and the row
 * fails: a hang is a broken start, not a slow one. */
#define JOIN_LIMIT_NS (10 * MPROC_SEC)

static void enter_mproc_main(int argc, char **argv)
{
	/* Never returns in a spawned child or in the forkserver. */
	mproc_main(argc, argv);
}
BENCH_EARLY_HOOK(enter_mproc_main)

static int trivial_target(void *arg, size_t len)
{
	(void)arg;
	(void)len;
	return 0;
}

struct sj {
	mproc_context *ctx;
	char *note;
	size_t note_len;
};

/* One operation: create, start, join, check the exit code, free. */
static int start_join(void *arg)
{
	struct sj *j = arg;
	mproc_process *p;
	int code = -1;
	const char *what = "create";
	int rc = mproc_process_create(j->ctx, trivial_target, NULL, 0, &p);
	if (rc)
		goto out;
	what = "start";
	if ((rc = mproc_process_start(p)) != 0)
		goto out_free;
	what = "join";
	if ((rc = mproc_process_join(p, JOIN_LIMIT_NS)) != 0)
		goto out_free;
	what = "exitcode";
	rc = mproc_process_exitcode(p, &code);
	if (rc == -EBUSY) {
		/* Still running after the limit: kill it and reap it. */
		mproc_process_kill(p);
		mproc_process_join(p, MPROC_FOREVER);
		what = "join (child hung, killed)";
		rc = -ETIMEDOUT;
	} else if (rc == 0 && code != 0) {
		snprintf(j->note, j->note_len, "%s child exited with %d",
			 mproc_context_get_start_method(j->ctx), code);
		rc = -ECHILD;
	}
out_free:
	mproc_process_free(p);
out:
	if (rc && j->note[0] == '\0')
		snprintf(j->note, j->note_len, "%s %s: %s",
			 mproc_context_get_start_method(j->ctx), what,
			 mproc_strerror(rc));
	return rc;
}

static const char *method_of(const struct bench_case *c)
{
	/* "mproc_fork" -> "fork", ... */
	return c->impl->impl + strlen("mproc_");
}

/* Once per case, untimed: one start+join.  It starts the forkserver (a
 * spawn of the server itself) so that the timed runs see only requests
 * to a running server, and it fails the row early if the method is
 * broken here. */
static int sj_prepare(struct bench_case *c, char *why, size_t why_len)
{
	struct sj j = { .note = why, .note_len = why_len };
	int rc = mproc_get_context(method_of(c), &j.ctx);
	if (rc) {
		snprintf(why, why_len, "mproc_get_context(%s): %s",
			 method_of(c), mproc_strerror(rc));
		return rc;
	}
	return start_join(&j);
}

static int sj_run(struct bench_case *c, struct bench_sample *s)
{
	struct sj j = { .note = s->note, .note_len = sizeof s->note };
	int rc = mproc_get_context(method_of(c), &j.ctx);
	if (rc) {
		snprintf(s->note, sizeof s->note, "mproc_get_context: %s",
			 mproc_strerror(rc));
		return rc;
	}
	return bench_op_run_start_join(c, start_join, &j, s);
}

BENCH_REGISTER(mproc_fork) = {
	.suite = "process",
	.impl = "mproc_fork",
	.descr = "mproc Process, fork start method: create + start + join "
		 "+ free, target returns 0",
	.prepare = sj_prepare,
	.run = sj_run,
};

BENCH_REGISTER(mproc_spawn) = {
	.suite = "process",
	.impl = "mproc_spawn",
	.descr = "mproc Process, spawn start method (exec of this program, "
		 "mproc_main): create + start + join + free",
	.prepare = sj_prepare,
	.run = sj_run,
};

BENCH_REGISTER(mproc_forkserver) = {
	.suite = "process",
	.impl = "mproc_forkserver",
	.descr = "mproc Process, forkserver start method: create + start + "
		 "join + free; the server is started by an untimed start+join "
		 "in prepare",
	.prepare = sj_prepare,
	.run = sj_run,
};
