/*
 * MPROC_QUEUE_WATCH_PRODUCERS (queue.h, "Watching the producers"): a get
 * that waits on an empty queue returns -MPROC_EPEERDIED once every
 * process that ever put into it has ended -- killed, or exited normally
 * without closing -- and not before: not while one lives, not before any
 * producer came, not without the flag, and a producer that attaches
 * after a get said so is served again.  (A producer that attaches while
 * a get already waits may come after that get's last look: queue.h
 * promises nothing for it, so nothing here tests it.)  Producers run under fork and
 * spawn (a spawned child imports the queue from a token), for SPSC and
 * MPMC queues.  The binary starts with mproc_main() (queue_watch_main
 * below) because spawn re-executes it.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mproc.h"
#include "queue/layout.h"

/* Criterion's worker marker must not reach spawned children (see
 * tests/process/process_main.c). */
static void forget_worker_marker(void)
{
	unsetenv("BXFI_MAP");
}

TestSuite(queue_watch, .init = forget_worker_marker, .timeout = 60);

/* What a producer process does. */
enum { PUT_AND_EXIT, PUT_AND_WAIT };

struct job {
	char token[MPROC_QUEUE_TOKEN_MAX];
	int what;
	int nput;
	int first; /* value of the first message */
};

/* The queue in this process: set by the test before a fork child starts
 * (the child inherits the handle); NULL in a spawned child, which imports
 * the token. */
static mproc_queue *inherited;

static int producer(void *arg, size_t len)
{
	struct job j;
	if (len != sizeof(j))
		return 10;
	memcpy(&j, arg, sizeof(j));
	/* An imported handle stays reachable from the global, so that a
	 * process that ends without freeing it is no leak to LSan. */
	if (!inherited && mproc_queue_import(j.token, 0, &inherited))
		return 11;
	mproc_queue *q = inherited;
	for (int i = 0; i < j.nput; i++) {
		int v = j.first + i;
		if (mproc_queue_put(q, &v, sizeof(v), MPROC_FOREVER) != sizeof(v))
			return 12;
	}
	if (j.what == PUT_AND_WAIT)
		for (;;)
			pause(); /* until the test kills it */
	return 0; /* exit without closing or freeing the queue */
}

static mproc_queue *make(unsigned flags)
{
	struct mproc_queue_attr a;
	mproc_queue_attr_init(&a);
	a.flags = flags;
	a.capacity = 4096;
	mproc_queue *q;
	cr_assert_eq(mproc_queue_create(&a, &q), 0);
	inherited = q;
	return q;
}

static mproc_process *start(mproc_queue *q, const char *method, int what,
			    int nput, int first)
{
	struct job j = { .what = what, .nput = nput, .first = first };
	if (strcmp(method, "fork"))
		cr_assert_gt(mproc_queue_export(q, j.token, sizeof(j.token)), 0);
	mproc_context *ctx;
	cr_assert_eq(mproc_get_context(method, &ctx), 0);
	mproc_process *p;
	cr_assert_eq(mproc_process_create(ctx, producer, &j, sizeof(j), &p), 0);
	/* Daemonic: a test that fails with a producer still waiting ends
	 * it, instead of joining it for ever at exit. */
	cr_assert_eq(mproc_process_set_daemon(p, true), 0);
	int rc = mproc_process_start(p);
	cr_assert_eq(rc, 0, "%s: %s", method, mproc_strerror(rc));
	return p;
}

static void kill_and_join(mproc_process *p)
{
	cr_assert_eq(mproc_process_kill(p), 0);
	cr_assert_eq(mproc_process_join(p, MPROC_FOREVER), 0);
	int code = 0;
	cr_assert_eq(mproc_process_exitcode(p, &code), 0);
	cr_assert_eq(code, -SIGKILL);
	mproc_process_free(p);
}

static void join_ok(mproc_process *p)
{
	cr_assert_eq(mproc_process_join(p, MPROC_FOREVER), 0);
	int code = -1;
	cr_assert_eq(mproc_process_exitcode(p, &code), 0);
	cr_assert_eq(code, 0, "the producer failed: %d", code);
	mproc_process_free(p);
}

static void wait_qsize(mproc_queue *q, ssize_t n)
{
	for (int i = 0; i < 20000 && mproc_queue_qsize(q) < n; i++)
		usleep(500);
	cr_assert_eq(mproc_queue_qsize(q), n);
}

static void get_value(mproc_queue *q, int want)
{
	int v = -1;
	ssize_t n = mproc_queue_get(q, &v, sizeof(v), MPROC_FOREVER);
	cr_assert_eq(n, (ssize_t)sizeof(v), "get: %s", mproc_strerror((int)n));
	cr_assert_eq(v, want);
}

static void get_peerdied(mproc_queue *q)
{
	int v;
	ssize_t n = mproc_queue_get(q, &v, sizeof(v), MPROC_FOREVER);
	cr_assert_eq(n, -MPROC_EPEERDIED, "get: %s", mproc_strerror((int)n));
}

/* A producer killed after its puts: its messages first, then
 * -MPROC_EPEERDIED for get, get_many, peek and next_size alike; a
 * non-blocking get still says -EAGAIN. */
static void killed(unsigned kind, const char *method)
{
	mproc_queue *q = make(kind | MPROC_QUEUE_WATCH_PRODUCERS);
	mproc_process *p = start(q, method, PUT_AND_WAIT, 3, 100);
	wait_qsize(q, 3);
	kill_and_join(p);
	for (int i = 0; i < 3; i++)
		get_value(q, 100 + i);
	get_peerdied(q);
	int v;
	cr_assert_eq(mproc_queue_get(q, &v, sizeof(v), MPROC_NOWAIT), -EAGAIN);
	cr_assert_eq(mproc_queue_next_size(q, MPROC_FOREVER), -MPROC_EPEERDIED);
	const void *ptr;
	cr_assert_eq(mproc_queue_peek(q, &ptr, 5 * MPROC_SEC), -MPROC_EPEERDIED);
	struct iovec iov = { &v, sizeof(v) };
	size_t len;
	cr_assert_eq(mproc_queue_get_many(q, &iov, &len, 1, MPROC_FOREVER),
		     -MPROC_EPEERDIED);
	mproc_queue_free(q);
}

Test(queue_watch, killed_producer_mpmc_fork) { killed(0, "fork"); }
Test(queue_watch, killed_producer_spsc_fork) { killed(MPROC_QUEUE_SPSC, "fork"); }
Test(queue_watch, killed_producer_mpmc_spawn) { killed(0, "spawn"); }
Test(queue_watch, killed_producer_spsc_spawn) { killed(MPROC_QUEUE_SPSC, "spawn"); }

/* A producer that exits normally without closing counts as ended too;
 * with two producers, only the death of the last one counts. */
static void exited(unsigned kind, const char *method)
{
	mproc_queue *q = make(kind | MPROC_QUEUE_WATCH_PRODUCERS);
	mproc_process *live = start(q, method, PUT_AND_WAIT, 1, 1);
	wait_qsize(q, 1);
	get_value(q, 1);
	join_ok(start(q, method, PUT_AND_EXIT, 2, 10));
	get_value(q, 10);
	get_value(q, 11);
	/* One producer still lives: the get waits out its timeout. */
	int v;
	cr_assert_eq(mproc_queue_get(q, &v, sizeof(v), 300 * MPROC_MSEC),
		     -ETIMEDOUT);
	kill_and_join(live);
	get_peerdied(q);
	mproc_queue_free(q);
}

Test(queue_watch, exited_producer_mpmc_fork) { exited(0, "fork"); }
Test(queue_watch, exited_producer_spsc_spawn) { exited(MPROC_QUEUE_SPSC, "spawn"); }

/* After -MPROC_EPEERDIED, a producer that attaches later is served: a
 * get that waits for its message gets it, and the queue waits for it
 * while it lives. */
static void late(unsigned kind, const char *method)
{
	mproc_queue *q = make(kind | MPROC_QUEUE_WATCH_PRODUCERS);
	join_ok(start(q, method, PUT_AND_EXIT, 1, 7));
	get_value(q, 7);
	get_peerdied(q);
	mproc_process *p = start(q, method, PUT_AND_WAIT, 1, 8);
	wait_qsize(q, 1);
	get_value(q, 8);
	int v;
	cr_assert_eq(mproc_queue_get(q, &v, sizeof(v), 300 * MPROC_MSEC),
		     -ETIMEDOUT, "a live late producer");
	kill_and_join(p);
	get_peerdied(q);
	mproc_queue_free(q);
}

Test(queue_watch, late_producer_mpmc_fork) { late(0, "fork"); }
Test(queue_watch, late_producer_spsc_fork) { late(MPROC_QUEUE_SPSC, "fork"); }
Test(queue_watch, late_producer_mpmc_spawn) { late(0, "spawn"); }

/* No producer yet: the get waits (consumers may start first).  The
 * consumer's own puts make it a producer that lives. */
Test(queue_watch, no_producer_yet_waits)
{
	mproc_queue *q = make(MPROC_QUEUE_WATCH_PRODUCERS);
	int v = 5;
	cr_assert_eq(mproc_queue_get(q, &v, sizeof(v), 300 * MPROC_MSEC),
		     -ETIMEDOUT);
	cr_assert_eq(mproc_queue_put(q, &v, sizeof(v), 0), sizeof(v));
	get_value(q, 5);
	cr_assert_eq(mproc_queue_get(q, &v, sizeof(v), 300 * MPROC_MSEC),
		     -ETIMEDOUT);
	mproc_queue_free(q);
}

/* Off by default, as in Python: a dead producer leaves gets waiting. */
Test(queue_watch, off_by_default)
{
	mproc_queue *q = make(0);
	mproc_process *p = start(q, "fork", PUT_AND_WAIT, 1, 3);
	wait_qsize(q, 1);
	kill_and_join(p);
	get_value(q, 3);
	int v;
	cr_assert_eq(mproc_queue_get(q, &v, sizeof(v), 300 * MPROC_MSEC),
		     -ETIMEDOUT);
	mproc_queue_free(q);
}

/* Closed beats dead: a closed and drained queue is the end of the
 * stream, whoever put into it. */
Test(queue_watch, closed_and_drained_is_eof)
{
	mproc_queue *q = make(MPROC_QUEUE_WATCH_PRODUCERS);
	join_ok(start(q, "fork", PUT_AND_EXIT, 1, 4));
	cr_assert_eq(mproc_queue_close(q), 0);
	get_value(q, 4);
	int v;
	cr_assert_eq(mproc_queue_get(q, &v, sizeof(v), MPROC_FOREVER),
		     -MPROC_EEOF);
	mproc_queue_free(q);
}

/* The table is shared memory: a geometry that misplaces it is refused on
 * import, and hostile entries decide only when the error comes. */
Test(queue_watch, hostile_table)
{
	mproc_queue *q = make(MPROC_QUEUE_WATCH_PRODUCERS);
	char tok[MPROC_QUEUE_TOKEN_MAX];
	cr_assert_gt(mproc_queue_export(q, tok, sizeof(tok)), 0);
	int fd = atoi(strchr(tok, ':') + 1);
	struct stat st;
	cr_assert_eq(fstat(fd, &st), 0);
	unsigned char *m = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE,
				MAP_SHARED, fd, 0);
	cr_assert_neq(m, MAP_FAILED);
	struct mproc_shm_header *h = (struct mproc_shm_header *)m;
	uint64_t good = h->geom[GEOM_PRODUCERS];
	cr_assert_neq(good, 0);
	uint64_t bad[] = { 0, good + 64, good - 64, UINT64_MAX - 8,
			   h->data_size };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		h->geom[GEOM_PRODUCERS] = bad[i];
		mproc_queue *q2 = NULL;
		cr_assert_eq(mproc_queue_import(tok, 0, &q2), -MPROC_ECORRUPT,
			     "offset %llu", (unsigned long long)bad[i]);
		cr_assert_geq(fcntl(fd, F_GETFD), 0, "the descriptor stays");
	}
	h->geom[GEOM_PRODUCERS] = good;
	/* Entries no process has: taken as ended. */
	struct queue_producers *t =
		(struct queue_producers *)(m + MPROC_SHM_HEADER_SIZE + good);
	for (int i = 0; i < QUEUE_PRODUCERS; i++)
		atomic_store(&t->ident[i], UINT64_MAX - (uint64_t)i);
	atomic_store(&t->ever, 1);
	get_peerdied(q);
	/* overflow: nobody can tell, so gets wait. */
	atomic_store(&t->overflow, 1);
	int v;
	cr_assert_eq(mproc_queue_get(q, &v, sizeof(v), 300 * MPROC_MSEC),
		     -ETIMEDOUT);
	/* A put from a full table of strangers reuses an ended entry. */
	atomic_store(&t->overflow, 0);
	v = 6;
	cr_assert_eq(mproc_queue_put(q, &v, sizeof(v), 0), sizeof(v));
	get_value(q, 6);
	cr_assert_eq(mproc_queue_get(q, &v, sizeof(v), 300 * MPROC_MSEC),
		     -ETIMEDOUT, "this process is a live producer now");
	munmap(m, (size_t)st.st_size);
	mproc_queue_free(q);
}

int main(int argc, char *argv[])
{
	mproc_main(argc, argv);
	struct criterion_test_set *tests = criterion_initialize();
	int result = 0;
	if (criterion_handle_args(argc, argv, true))
		result = !criterion_run_all_tests(tests);
	criterion_finalize(tests);
	return result;
}
