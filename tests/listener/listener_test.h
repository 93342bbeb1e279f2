/*
 * Helpers shared by the Listener tests: a unique address per test, an
 * accept running in a thread, raw handshake frames, and the descriptor
 * count of /proc/self/fd.
 */
#ifndef MPROC_TESTS_LISTENER_TEST_H
#define MPROC_TESTS_LISTENER_TEST_H

#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mproc.h"
#include "mproc/listener.h"

#define KEY "test-key"
#define KEY_LEN (sizeof(KEY) - 1)

/* "/tmp/mproc-lt-PID-N.sock", "@mproc-lt-PID-N" or "127.0.0.1:0". */
static inline void test_address(char *buf, size_t n, int kind)
{
	static int seq;
	seq++;
	if (kind == 0)
		snprintf(buf, n, "/tmp/mproc-lt-%d-%d.sock", (int)getpid(), seq);
	else if (kind == 1)
		snprintf(buf, n, "@mproc-lt-%d-%d", (int)getpid(), seq);
	else
		snprintf(buf, n, "127.0.0.1:0");
}

static inline mproc_listener *listen_on(const char *addr, const void *key,
					size_t key_len, unsigned flags)
{
	struct mproc_listener_attr a;
	mproc_listener_attr_init(&a);
	a.authkey = key;
	a.authkey_len = key_len;
	a.flags = flags;
	mproc_listener *l;
	int rc = mproc_listener_create(addr, &a, &l);
	cr_assert_eq(rc, 0, "create %s: %s", addr, mproc_strerror(rc));
	return l;
}

/* An accept in a thread. */
struct acceptor {
	mproc_listener *l;
	int64_t timeout_ns;
	mproc_conn *conn;
	int rc;
	pthread_t th;
};

static inline void *acceptor_main(void *arg)
{
	struct acceptor *a = arg;
	a->rc = mproc_listener_accept(a->l, a->timeout_ns, &a->conn);
	return NULL;
}

static inline void accept_async(struct acceptor *a, mproc_listener *l,
				int64_t timeout_ns)
{
	a->l = l;
	a->timeout_ns = timeout_ns;
	a->conn = NULL;
	a->rc = -1;
	cr_assert_eq(pthread_create(&a->th, NULL, acceptor_main, a), 0);
}

static inline int accept_wait(struct acceptor *a)
{
	pthread_join(a->th, NULL);
	return a->rc;
}

/* A client (with KEY) connecting in a thread: client_async, then join
 * the thread and read conn and rc. */
struct client_thread {
	const char *addr;
	mproc_conn *conn;
	int rc;
	pthread_t th;
};

static inline void *client_main(void *arg)
{
	struct client_thread *t = arg;
	t->rc = mproc_client(t->addr, KEY, KEY_LEN, 10 * MPROC_SEC, &t->conn);
	return NULL;
}

static inline void client_async(struct client_thread *t, const char *addr)
{
	t->addr = addr;
	t->conn = NULL;
	t->rc = -1;
	cr_assert_eq(pthread_create(&t->th, NULL, client_main, t), 0);
}

/* Open descriptors of this process. */
static inline int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n - 1; /* the directory's own */
}

/* Is @fd an eventfd (an upgraded connection's fileno)? */
static inline bool is_eventfd(int fd)
{
	char path[64], link[64];
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	ssize_t n = readlink(path, link, sizeof(link) - 1);
	if (n < 0)
		return false;
	link[n] = '\0';
	return strcmp(link, "anon_inode:[eventfd]") == 0;
}

#endif /* MPROC_TESTS_LISTENER_TEST_H */
