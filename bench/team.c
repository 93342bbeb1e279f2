/*
 * team.c - running producers and consumers in pinned child processes, and
 * timing loops of operations (round trips, process start+join).
 *
 * A team shares one MAP_SHARED control block with the harness: a "ready"
 * counter the workers bump as they reach the start barrier, a "go" word
 * the harness raises to release them all at once, a "stop" word it raises
 * when the repetition's time is up, and one result slot per worker.  Each
 * word sits on its own cache line so that the workers' polling of "stop"
 * never contends with anything else.
 */
#include <errno.h>
#include <linux/futex.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "common/clock.h"
#include "harness.h"
#include "mproc/common.h"

/* Workers still running this long after the stop flag are killed. */
#define REAP_GRACE_NS (20 * 1000000000LL)
/* After one worker failed, the others get this long before they are
 * killed (they may be blocked waiting for the failed one). */
#define FAIL_GRACE_NS (500 * 1000000LL)
/* Workers must reach the start barrier within this time. */
#define READY_TIMEOUT_NS (20 * 1000000000LL)

struct team_shared {
	_Atomic uint32_t ready __attribute__((aligned(64)));
	_Atomic uint32_t go __attribute__((aligned(64)));
	_Atomic uint32_t stop __attribute__((aligned(64)));
	struct bench_result res[2 * BENCH_MAX_WORKERS];
};

static long futex(_Atomic uint32_t *word, int op, uint32_t val,
		  const struct timespec *rel)
{
	return syscall(SYS_futex, (uint32_t *)word, op, val, rel, NULL, 0);
}

static void sleep_until(int64_t t_ns)
{
	struct timespec ts = {.tv_sec = t_ns / MPROC__NSEC_PER_SEC,
			      .tv_nsec = t_ns % MPROC__NSEC_PER_SEC};
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) ==
	       EINTR)
		;
}

static _Noreturn void worker_main(const struct bench_case *c,
				  const struct bench_team *t,
				  struct team_shared *sh, int is_consumer,
				  int index, pid_t parent)
{
	/* Die with the harness, so an interrupted run leaves no spinners. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(111);

	struct bench_worker w;
	memset(&w, 0, sizeof w);
	w.c = c;
	w.is_consumer = is_consumer;
	w.index = index;
	w.cpu = bench_cpu_for(is_consumer, index);
	w.res = &sh->res[is_consumer * BENCH_MAX_WORKERS + index];
	w.stop_ = &sh->stop;

	/* Pinning is best effort: a worker that cannot be pinned still
	 * runs, and its note tells the harness to say so. */
	int rc = bench_pin(w.cpu);
	if (rc < 0)
		snprintf(w.res->note, sizeof w.res->note,
			 "could not pin a worker to CPU %d (%s); it ran "
			 "unpinned", w.cpu, strerror(-rc));

	if (t->setup && (rc = t->setup(&w, t->arg)) < 0) {
		w.res->error = rc;
		if (w.res->note[0] == '\0')
			snprintf(w.res->note, sizeof w.res->note, "setup: %s",
				 mproc_strerror(rc));
		/* The parent reads the note after it reaped us. */
		_exit(1);
	}

	/* Release: the parent's acquire load of ready (after the futex
	 * wait) then sees our note/error if pinning failed. */
	atomic_fetch_add_explicit(&sh->ready, 1, memory_order_release);
	futex(&sh->ready, FUTEX_WAKE, 1, NULL);
	/* Acquire pairs with the parent's release store of go: whatever the
	 * parent wrote before the start is visible to the worker. */
	while (atomic_load_explicit(&sh->go, memory_order_acquire) == 0)
		futex(&sh->go, FUTEX_WAIT, 0, NULL);

	w.res->start_ns = mproc__now_ns();
	rc = (is_consumer ? t->consumer : t->producer)(&w, t->arg);
	w.res->end_ns = mproc__now_ns();
	w.res->msgs = w.msgs;
	w.res->seq_sum = w.seq_sum;
	w.res->error = rc < 0 ? rc : 0;
	if (rc < 0 && w.res->note[0] == '\0')
		snprintf(w.res->note, sizeof w.res->note, "%s", mproc_strerror(rc));
	/* _exit: never run the harness's atexit handlers or flush stdio
	 * buffers inherited from it. */
	_exit(w.res->error ? 1 : 0);
}

static void kill_all(pid_t *pids, int n)
{
	for (int i = 0; i < n; i++)
		if (pids[i] > 0)
			kill(pids[i], SIGKILL);
}

/* Reap every worker by its deadline; kill the rest.  Returns 0 or the
 * first abnormal end as an errno with a note. */
static int reap_all(pid_t *pids, int n, int64_t deadline, char *note,
		    size_t note_len)
{
	int err = 0, left = 0;
	bool killed_on_failure = false;
	for (int i = 0; i < n; i++)
		left += pids[i] > 0;
	while (left > 0) {
		for (int i = 0; i < n; i++) {
			if (pids[i] <= 0)
				continue;
			int st;
			pid_t p = waitpid(pids[i], &st, WNOHANG);
			if (p == 0)
				continue;
			pids[i] = 0;
			left--;
			if (p > 0 && WIFSIGNALED(st) && err == 0) {
				err = -EINTR;
				snprintf(note, note_len,
					 "worker killed by signal %d",
					 WTERMSIG(st));
			}
			/* A failed worker's peers may wait for it forever:
			 * give them a moment to notice, then kill them. */
			if (p > 0 && !(WIFEXITED(st) && WEXITSTATUS(st) == 0)) {
				int64_t soon = mproc__now_ns() + FAIL_GRACE_NS;
				if (soon < deadline)
					deadline = soon;
				killed_on_failure = true;
			}
		}
		if (left == 0)
			break;
		if (mproc__now_ns() > deadline) {
			kill_all(pids, n);
			if (err == 0 && !killed_on_failure) {
				err = -ETIMEDOUT;
				snprintf(note, note_len,
					 "worker still running %d s after the "
					 "stop: killed",
					 (int)(REAP_GRACE_NS / 1000000000LL));
			}
			deadline = INT64_MAX;
			continue;
		}
		struct timespec ts = {0, 1000000};
		nanosleep(&ts, NULL);
	}
	return err;
}

int bench_team_run(const struct bench_case *c, const struct bench_team *t,
		   struct bench_team_result *r, char *note, size_t note_len)
{
	int np = c->producers, nc = c->consumers;
	memset(r, 0, sizeof *r);
	note[0] = '\0';
	if (np < 0 || nc < 0 || np + nc == 0 || np > BENCH_MAX_WORKERS ||
	    nc > BENCH_MAX_WORKERS || (np && !t->producer) ||
	    (nc && !t->consumer)) {
		snprintf(note, note_len, "bad team %d/%d", np, nc);
		return -EINVAL;
	}
	struct team_shared *sh = bench_shared_alloc(sizeof *sh);
	if (!sh) {
		snprintf(note, note_len, "mmap: %s", strerror(errno));
		return -ENOMEM;
	}

	pid_t pids[2 * BENCH_MAX_WORKERS];
	int n = 0, err = 0;
	pid_t self = getpid();
	/* Children must not inherit unflushed output and print it twice. */
	fflush(NULL);
	for (int role = 0; role < 2 && err == 0; role++) {
		for (int i = 0; i < (role ? nc : np); i++) {
			pid_t p = fork();
			if (p == 0)
				worker_main(c, t, sh, role, i, self);
			if (p < 0) {
				err = -errno;
				snprintf(note, note_len, "fork: %s",
					 strerror(errno));
				break;
			}
			pids[n++] = p;
		}
	}
	if (err == 0 && t->parent_after_fork)
		t->parent_after_fork(t->arg);

	/* Start barrier: wait until every worker is pinned and waiting. */
	int64_t ready_deadline = mproc__now_ns() + READY_TIMEOUT_NS;
	while (err == 0) {
		uint32_t got = atomic_load_explicit(&sh->ready,
						    memory_order_acquire);
		if (got == (uint32_t)n)
			break;
		for (int i = 0; i < n; i++) {
			int st;
			if (err == 0 &&
			    waitpid(pids[i], &st, WNOHANG) == pids[i]) {
				/* pids[] holds the producers, then the
				 * consumers: find the dead one's slot. */
				int cons = i >= np, k = cons ? i - np : i;
				const struct bench_result *x =
					&sh->res[cons * BENCH_MAX_WORKERS + k];
				pids[i] = 0;
				err = x->error ? x->error : -ECHILD;
				snprintf(note, note_len, "%s %d died before "
					 "the start%s%.150s",
					 cons ? "consumer" : "producer", k,
					 x->note[0] ? ": " : "", x->note);
			}
		}
		if (mproc__now_ns() > ready_deadline) {
			err = -ETIMEDOUT;
			snprintf(note, note_len,
				 "workers did not reach the start barrier");
		}
		struct timespec slice = {0, 10000000};
		futex(&sh->ready, FUTEX_WAIT, got, &slice);
	}
	if (err) {
		kill_all(pids, n);
		reap_all(pids, n, INT64_MAX, note, 0);
		bench_shared_free(sh, sizeof *sh);
		return err;
	}

	r->start_ns = mproc__now_ns();
	/* Release pairs with the workers' acquire load of go. */
	atomic_store_explicit(&sh->go, 1, memory_order_release);
	futex(&sh->go, FUTEX_WAKE, INT32_MAX, NULL);

	sleep_until(r->start_ns + c->duration_ns);
	r->stop_ns = mproc__now_ns();
	/* Relaxed is enough: see bench_stop_requested. */
	atomic_store_explicit(&sh->stop, 1, memory_order_relaxed);

	err = reap_all(pids, n, r->stop_ns + REAP_GRACE_NS, note, note_len);

	r->producers = np;
	r->consumers = nc;
	memcpy(r->prod, &sh->res[0], sizeof r->prod);
	memcpy(r->cons, &sh->res[BENCH_MAX_WORKERS], sizeof r->cons);
	bench_shared_free(sh, sizeof *sh);

	int first_err = 0;
	for (int i = 0; i < np + nc; i++) {
		const struct bench_result *x =
			i < np ? &r->prod[i] : &r->cons[i - np];
		if (x->error && !first_err) {
			snprintf(note, note_len, "%s %d: %s",
				 i < np ? "producer" : "consumer",
				 i < np ? i : i - np, x->note);
			first_err = x->error;
		} else if (!x->error && x->note[0]) {
			/* A worker that succeeded but had something to say. */
			bench_note("%s", x->note);
		}
	}
	return first_err ? first_err : err;
}

int bench_team_throughput(const struct bench_case *c,
			  const struct bench_team *t, struct bench_sample *s)
{
	struct bench_team_result r;
	int rc = bench_team_run(c, t, &r, s->note, sizeof s->note);
	if (rc != 0)
		return rc;

	uint64_t sent = 0, sent_sum = 0, got = 0, got_sum = 0;
	int64_t first = INT64_MAX, last = 0;
	for (int i = 0; i < r.producers; i++) {
		sent += r.prod[i].msgs;
		sent_sum += r.prod[i].seq_sum;
		if (r.prod[i].start_ns < first)
			first = r.prod[i].start_ns;
		if (r.consumers == 0 && r.prod[i].end_ns > last)
			last = r.prod[i].end_ns;
	}
	for (int i = 0; i < r.consumers; i++) {
		got += r.cons[i].msgs;
		got_sum += r.cons[i].seq_sum;
		if (r.cons[i].start_ns < first)
			first = r.cons[i].start_ns;
		if (r.cons[i].end_ns > last)
			last = r.cons[i].end_ns;
	}
	if (r.consumers > 0 && (sent != got || sent_sum != got_sum)) {
		snprintf(s->note, sizeof s->note,
			 "%llu messages sent but %llu received (sequence sums "
			 "%s): lost or duplicated",
			 (unsigned long long)sent, (unsigned long long)got,
			 sent_sum == got_sum ? "agree" : "differ");
		return -EBADMSG;
	}
	if (r.consumers > 0 && got == 0) {
		snprintf(s->note, sizeof s->note, "no message got through");
		return -EIO;
	}
	bench_sample_rate(s, r.consumers > 0 ? got : sent, c->msg_size,
			  last - first);
	return 0;
}

/* ---- timed operation loops ------------------------------------------ */

#define BATCH_TARGET_NS 20000
#define MAX_BATCHES 65536

int bench_op_loop(const struct bench_case *c, const struct bench_worker *w,
		  bench_op_fn op, void *arg, struct bench_op_stats *st)
{
	double *per_op = malloc(MAX_BATCHES * sizeof *per_op);
	if (!per_op)
		return -ENOMEM;
	int64_t deadline = mproc__now_ns() + c->duration_ns;
	uint64_t batch = 1, ops = 0, recorded_ops = 0;
	int64_t total_ns = 0;
	int nrec = 0, rc = 0;

	for (;;) {
		int64_t t0 = mproc__now_ns();
		for (uint64_t i = 0; i < batch && rc == 0; i++)
			rc = op(arg);
		int64_t t1 = mproc__now_ns();
		if (rc < 0)
			break;
		int64_t dt = t1 - t0;
		ops += batch;
		total_ns += dt;
		/* Batches too short to time well only calibrate. */
		if (dt < BATCH_TARGET_NS && batch < (UINT64_C(1) << 24)) {
			batch *= 2;
		} else {
			per_op[nrec++] = (double)dt / (double)batch;
			recorded_ops += batch;
		}
		bool time_up = w ? bench_stop_requested(w) : t1 >= deadline;
		if ((time_up && nrec > 0 && recorded_ops >= 3) ||
		    nrec == MAX_BATCHES)
			break;
	}
	if (rc == 0) {
		st->ops = ops;
		st->median_ns = bench__median(per_op, nrec);
		st->mean_ns = (double)total_ns / (double)ops;
	}
	free(per_op);
	return rc;
}

int bench_op_run_start_join(struct bench_case *c, bench_op_fn op, void *arg,
			    struct bench_sample *s)
{
	struct bench_op_stats st;
	int rc = bench_op_loop(c, NULL, op, arg, &st);
	if (rc < 0) {
		if (s->note[0] == '\0')
			snprintf(s->note, sizeof s->note, "%s", mproc_strerror(rc));
		return rc;
	}
	s->fig[BENCH_START_JOIN_US] = st.median_ns / 1000.0;
	return 0;
}

/* ---- ping-pong ------------------------------------------------------- */

/* The initiator's loop with think time: idle, then one timed round
 * trip, until the stop flag (and at least 3 round trips). */
static int think_loop(const struct bench_worker *w,
		      const struct bench_pingpong *pp, struct bench_op_stats *st)
{
	double *per_op = malloc(MAX_BATCHES * sizeof *per_op);
	if (!per_op)
		return -ENOMEM;
	int n = 0, rc = 0;
	int64_t total = 0;
	while (rc == 0 && n < MAX_BATCHES &&
	       (n < 3 || !bench_stop_requested(w))) {
		struct timespec think = { .tv_sec = pp->think_ns / 1000000000,
					  .tv_nsec = pp->think_ns % 1000000000 };
		while (nanosleep(&think, &think) != 0 && errno == EINTR)
			;
		int64_t t0 = mproc__now_ns();
		rc = pp->ping(pp->arg);
		int64_t dt = mproc__now_ns() - t0;
		per_op[n++] = (double)dt;
		total += dt;
	}
	if (rc == 0) {
		st->ops = (uint64_t)n;
		st->median_ns = bench__median(per_op, n);
		st->mean_ns = (double)total / n;
	}
	free(per_op);
	return rc;
}

static int pp_initiator(struct bench_worker *w, void *arg)
{
	const struct bench_pingpong *pp = arg;
	struct bench_op_stats st;
	int rc = pp->think_ns > 0 ? think_loop(w, pp, &st)
				  : bench_op_loop(w->c, w, pp->ping, pp->arg, &st);
	/* Always release the echoer, also after a failed ping. */
	int rc2 = pp->stop(pp->arg);
	if (rc < 0)
		return rc;
	if (rc2 < 0)
		return rc2;
	w->res->value = st.median_ns;
	w->msgs = st.ops;
	return 0;
}

static int pp_echoer(struct bench_worker *w, void *arg)
{
	const struct bench_pingpong *pp = arg;
	for (;;) {
		int rc = pp->pong(pp->arg);
		if (rc == BENCH_PONG_STOP)
			return 0;
		if (rc < 0)
			return rc;
		w->msgs++;
	}
}

/* bench_team_run hands the team's argument (the ping-pong) to the hook;
 * the row's hook wants the row's own argument. */
static void pp_after_fork(void *arg)
{
	const struct bench_pingpong *pp = arg;
	pp->parent_after_fork(pp->arg);
}

int bench_pingpong_run(struct bench_case *c, const struct bench_pingpong *pp,
		       struct bench_sample *s)
{
	struct bench_case one = *c;
	one.producers = 1;
	one.consumers = 1;
	struct bench_team t = {
		.producer = pp_initiator,
		.consumer = pp_echoer,
		.arg = (void *)pp,
		.parent_after_fork = pp->parent_after_fork ? pp_after_fork
							   : NULL,
	};
	struct bench_team_result r;
	int rc = bench_team_run(&one, &t, &r, s->note, sizeof s->note);
	if (rc != 0)
		return rc;
	if (r.cons[0].msgs != r.prod[0].msgs) {
		snprintf(s->note, sizeof s->note,
			 "%llu pings but %llu answers",
			 (unsigned long long)r.prod[0].msgs,
			 (unsigned long long)r.cons[0].msgs);
		return -EBADMSG;
	}
	s->fig[BENCH_RTT_NS] = r.prod[0].value;
	return 0;
}
