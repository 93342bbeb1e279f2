/*
 * Terminate while a large task is half sent: the rest of it is never
 * sent.
 *
 * A task message reads its chunk, and the caller's items through it, as
 * the ring makes room.  Terminate fails the chunks in flight at once (the
 * caller may then free its items); a slot that still meant to send the
 * rest read the freed chunk and the caller's freed items as soon as its
 * worker made room (a use-after-free seen under ASan when the worker
 * drained the ring in the moment before its kill arrived).
 *
 * This test builds that moment instead of waiting for it.  The one worker
 * is held in a gated task while an 8 MiB chunk fills its 256 KiB ring
 * (the test waits until the pool thread has the task half sent);
 * this binary defines send(2) (libmproc is linked statically, so its calls
 * come here) and drops the pool's kill request to the zygote, so after
 * terminate the worker lives on; the test unmaps the items once the map
 * is cancelled and opens the gate, the worker drains its ring, and a pool
 * thread that still sends reads unmapped memory (SIGSEGV without ASan).
 * Then the test kills the worker itself and terminate returns.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>

#include "pool_test.h"
#include "pool/internal.h"

/* Set: the pool's kill requests to the zygote are dropped (and counted). */
static atomic_bool drop_kills;
static atomic_int kills_dropped;

ssize_t send(int fd, const void *buf, size_t len, int flags)
{
	if (atomic_load(&drop_kills) && len == sizeof(struct pool_zmsg)) {
		struct pool_zmsg m;
		memcpy(&m, buf, sizeof(m));
		if (m.op == POOL_Z_KILL) {
			atomic_fetch_add(&kills_dropped, 1);
			return (ssize_t)len;
		}
	}
	return sendto(fd, buf, len, flags, NULL, 0);
}

static void *terminate_thread(void *arg)
{
	static int rc;
	rc = mproc_pool_terminate(arg);
	return &rc;
}

TestSuite(terminate_send, .init = forget_worker_marker);

Test(terminate_send, a_half_sent_task_is_not_sent_on_after_terminate,
     .timeout = 120)
{
	struct mproc_pool_attr attr;
	mproc_pool_attr_init(&attr);
	attr.processes = 1;
	attr.ring_capacity = 256 * 1024;
	mproc_pool *p = NULL;
	cr_assert_eq(mproc_pool_create(&attr, &p), 0);
	pid_t worker;
	cr_assert_eq(mproc_pool_worker_pids(p, &worker, 1), 1);

	struct pt_tmpdir d;
	pt_tmpdir_new(&d);
	struct pt_file_arg g;
	pt_file_arg(&g, &d, "gate", 0);
	mproc_async *held;
	cr_assert_eq(mproc_pool_apply_async(p, task_gate, &g, sizeof(g), NULL,
					    NULL, NULL, &held), 0);

	/* One chunk of 8 MiB: 32 ringfuls, sent while the worker is held. */
	enum { N = 1024 * 1024 };
	size_t bytes = (size_t)N * sizeof(uint64_t);
	uint64_t *items = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	cr_assert_neq(items, MAP_FAILED);
	for (size_t i = 0; i < N; i++)
		items[i] = i;
	uint64_t *results = calloc(N, sizeof(*results));
	int *status = calloc(N, sizeof(*status));
	cr_assert(results && status);
	struct mproc_map_opts o = { .chunksize = N };
	mproc_async *map;
	cr_assert_eq(mproc_pool_map_async(p, task_index, items, N,
					  sizeof(uint64_t), results,
					  sizeof(uint64_t), status, &o, &map),
		     0);
	/* Wait until the pool thread has the task half sent: tx_kind is
	 * still set between its rounds only when the ring was full (it is
	 * the pool thread's; the test only reads it, atomically). */
	cr_assert(POLL_UNTIL(__atomic_load_n(&p->slots[0].tx_kind,
					     __ATOMIC_RELAXED) == POOL_MSG_TASK,
			     30000),
		  "the task was never half sent: the test proves nothing");

	atomic_store(&drop_kills, true);
	pthread_t t;
	cr_assert_eq(pthread_create(&t, NULL, terminate_thread, p), 0);
	cr_assert_eq(mproc_async_wait(map, 30 * MPROC_SEC), 0);
	cr_expect_eq(mproc_async_successful(map), 0);
	cr_expect_eq(status[0], -ECANCELED);
	cr_expect_eq(status[N - 1], -ECANCELED);
	cr_assert_eq(mproc_async_wait(held, 30 * MPROC_SEC), 0);
	cr_expect_eq(mproc_async_get(held, MPROC_NOWAIT, NULL, NULL),
		     -ECANCELED);
	/* Finished: the items are the caller's again. */
	cr_assert_eq(munmap(items, bytes), 0);

	/* The worker finishes its task and drains the ring; a pool thread
	 * that sends on reads the unmapped items meanwhile.  The wait is
	 * the window for that, not a synchronisation. */
	pt_open_gate(&g);
	pt_sleep_ms(300);
	cr_expect_eq(atomic_load(&kills_dropped), 1,
		     "terminate's kill was not seen: the test proves nothing");
	cr_assert(pt_pid_running(worker), "the worker is gone early");
	cr_assert_eq(kill(worker, SIGKILL), 0);
	int *rc;
	cr_assert_eq(pthread_join(t, (void **)&rc), 0);
	cr_expect_eq(*rc, 0);
	atomic_store(&drop_kills, false);
	cr_expect_eq(mproc_pool_join(p, 30 * MPROC_SEC), 0);
	mproc_async_free(held);
	mproc_async_free(map);
	mproc_pool_destroy(p);
	free(results);
	free(status);
	pt_tmpdir_free(&d);
}
