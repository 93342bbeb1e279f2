/*
 * Live objects for tools-stat (check-stat.py): this program creates a
 * queue of each kind, a pipe and a pool, puts known messages in them,
 * leaves a child asleep in a get and a queue whose creator has died, then
 * prints one JSON line of what mproc-stat should report and waits until
 * its stdin closes.  The checker compares mproc-stat --json with it.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <mproc.h>

#define CHECK(x)                                                             \
	do {                                                                 \
		long rc_ = (long)(x);                                        \
		if (rc_ < 0) {                                               \
			fprintf(stderr, "%s:%d: %s: %s\n", __FILE__,         \
				__LINE__, #x, mproc_strerror((int)rc_));     \
			exit(1);                                             \
		}                                                            \
	} while (0)

static int square(mproc_task *t, const void *arg, size_t len)
{
	int v;
	if (len != sizeof v)
		return -EINVAL;
	memcpy(&v, arg, sizeof v);
	v *= v;
	return mproc_task_return(t, &v, sizeof v);
}

int main(int argc, char **argv)
{
	mproc_main(argc, argv);
	char buf[4096];
	memset(buf, 'x', sizeof buf);
	int pid = (int)getpid();
	char spsc_name[64], orphan_name[64];
	snprintf(spsc_name, sizeof spsc_name, "/mproc-stat-test-%d", pid);
	snprintf(orphan_name, sizeof orphan_name, "/mproc-stat-test-%d-orphan",
		 pid);

	/* Named SPSC queue: 10 messages of 100 bytes in, 3 out. */
	struct mproc_queue_attr qa;
	mproc_queue_attr_init(&qa);
	qa.flags = MPROC_QUEUE_SPSC;
	qa.capacity = 65536;
	mproc_queue *spsc;
	CHECK(mproc_queue_create_named(spsc_name, &qa, &spsc));
	for (int i = 0; i < 10; i++)
		CHECK(mproc_queue_put(spsc, buf, 100, MPROC_NOWAIT));
	for (int i = 0; i < 3; i++)
		CHECK(mproc_queue_get(spsc, buf, sizeof buf, MPROC_NOWAIT));

	/* Anonymous joinable MPMC queue: 32 slots of 224 bytes (256 with the
	 * slot header), 5 messages
	 * of 50 bytes. */
	mproc_queue_attr_init(&qa);
	qa.flags = MPROC_QUEUE_JOINABLE;
	qa.capacity = 32 * 256;
	qa.max_msg = 224;
	mproc_queue *mpmc;
	CHECK(mproc_queue_create(&qa, &mpmc));
	for (int i = 0; i < 5; i++)
		CHECK(mproc_queue_put(mpmc, buf, 50, MPROC_NOWAIT));

	/* A closed MPMC queue with 2 messages left in it. */
	mproc_queue_attr_init(&qa);
	qa.capacity = 16 * 1024;
	mproc_queue *closed;
	CHECK(mproc_queue_create(&qa, &closed));
	CHECK(mproc_queue_put(closed, buf, 8, MPROC_NOWAIT));
	CHECK(mproc_queue_put(closed, buf, 8, MPROC_NOWAIT));
	CHECK(mproc_queue_close(closed));

	/* An empty SPSC queue with a child asleep in get. */
	mproc_queue_attr_init(&qa);
	qa.flags = MPROC_QUEUE_SPSC;
	qa.capacity = 8192;
	mproc_queue *idle;
	CHECK(mproc_queue_create(&qa, &idle));
	pid_t waiter = fork();
	CHECK(waiter);
	if (waiter == 0) {
		mproc_queue_get(idle, buf, sizeof buf, MPROC_FOREVER);
		_exit(0);
	}

	/* A named queue whose creator has exited. */
	pid_t orphan_creator = fork();
	CHECK(orphan_creator);
	if (orphan_creator == 0) {
		mproc_queue_attr_init(&qa);
		qa.capacity = 4096;
		mproc_queue *o;
		if (mproc_queue_create_named(orphan_name, &qa, &o) ||
		    mproc_queue_put(o, buf, 1, MPROC_NOWAIT) < 0)
			_exit(1);
		_exit(0);
	}
	int st;
	waitpid(orphan_creator, &st, 0);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		return 1;

	/* Duplex pipe of 4 KiB per direction: a sends 2 messages of 40
	 * bytes, b sends 1 of 10. */
	struct mproc_pipe_attr pa;
	mproc_pipe_attr_init(&pa);
	pa.capacity = 4096;
	mproc_conn *a, *b;
	CHECK(mproc_pipe(true, &pa, &a, &b));
	CHECK(mproc_conn_send_bytes(a, buf, 40));
	CHECK(mproc_conn_send_bytes(a, buf, 40));
	CHECK(mproc_conn_send_bytes(b, buf, 10));

	/* A pool of 2 workers that has run 3 tasks. */
	struct mproc_pool_attr pla;
	mproc_pool_attr_init(&pla);
	pla.processes = 2;
	pla.ring_capacity = 64 * 1024;
	mproc_pool *pool;
	CHECK(mproc_pool_create(&pla, &pool));
	for (int i = 1; i <= 3; i++) {
		int r;
		CHECK(mproc_pool_apply(pool, square, &i, sizeof i, &r, sizeof r));
		if (r != i * i)
			return 1;
	}
	pid_t workers[2];
	CHECK(mproc_pool_worker_pids(pool, workers, 2));

	printf("{\"pid\":%d,\"spsc_name\":\"%s\",\"orphan_name\":\"%s\","
	       "\"orphan_creator\":%d,\"waiter\":%d,\"workers\":[%d,%d]}\n",
	       pid, spsc_name, orphan_name, (int)orphan_creator, (int)waiter,
	       (int)workers[0], (int)workers[1]);
	fflush(stdout);

	/* Hold everything until the checker is done. */
	while (read(STDIN_FILENO, buf, sizeof buf) > 0)
		;
	kill(waiter, SIGKILL);
	waitpid(waiter, NULL, 0);
	mproc_pool_destroy(pool);
	mproc_conn_free(a);
	mproc_conn_free(b);
	mproc_queue_free(spsc);
	mproc_queue_free(mpmc);
	mproc_queue_free(closed);
	mproc_queue_free(idle);
	mproc_queue_unlink(spsc_name);
	mproc_queue_unlink(orphan_name);
	return 0;
}
