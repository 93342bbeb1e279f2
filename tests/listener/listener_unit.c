/*
 * Listener and Client between two mproc ends: Unix path, abstract name
 * and TCP, the shared-memory upgrade (and where it must not happen),
 * socket file modes, peer credentials, and failure: wrong key on both
 * sides, truncated handshake, garbage in place of the challenge, a client
 * that never speaks, 1000 connections dropped without a descriptor leak,
 * and a peer SIGKILLed mid-message on an upgraded connection.
 */
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

#include "listener_test.h"
#include "common/clock.h"
#include "common/os.h"

/* A send in a thread, for messages longer than the ring or socket buffer. */
struct sender {
	mproc_conn *c;
	const unsigned char *m;
	size_t n;
	ssize_t rc;
	pthread_t th;
};

static void *sender_main(void *arg)
{
	struct sender *s = arg;
	s->rc = mproc_conn_send_bytes(s->c, s->m, s->n);
	return NULL;
}

/* Send @n patterned bytes from @a to @b and back, checking them. */
static void exchange(mproc_conn *a, mproc_conn *b, size_t n)
{
	unsigned char *m = malloc(n ? n : 1);
	for (size_t i = 0; i < n; i++)
		m[i] = (unsigned char)(i * 13 + 1);
	for (int dir = 0; dir < 2; dir++) {
		mproc_conn *from = dir ? b : a, *to = dir ? a : b;
		struct sender s = { from, m, n, 0, 0 };
		pthread_create(&s.th, NULL, sender_main, &s);
		void *got;
		size_t len;
		ssize_t r = mproc_conn_recv_bytes(to, MPROC_CONN_NOLIMIT, &got, &len);
		pthread_join(s.th, NULL);
		cr_assert_eq(s.rc, (ssize_t)n);
		cr_assert_eq(r, (ssize_t)n, "%s", mproc_strerror((int)r));
		cr_assert(memcmp(got, m, n) == 0);
		free(got);
	}
	free(m);
}

/* Connect a client to @l (by its address) while it accepts. */
static void connect_pair(mproc_listener *l, const void *key, size_t key_len,
			 mproc_conn **server, mproc_conn **client)
{
	char addr[MPROC_LISTENER_ADDRESS_MAX];
	cr_assert_gt(mproc_listener_address(l, addr, sizeof(addr)), 0);
	struct acceptor a;
	accept_async(&a, l, 10 * MPROC_SEC);
	int rc = mproc_client(addr, key, key_len, 10 * MPROC_SEC, client);
	cr_assert_eq(rc, 0, "client %s: %s", addr, mproc_strerror(rc));
	rc = accept_wait(&a);
	cr_assert_eq(rc, 0, "accept %s: %s", addr, mproc_strerror(rc));
	*server = a.conn;
}

Test(listener, three_address_kinds)
{
	int fds_before = count_fds();
	for (int kind = 0; kind < 3; kind++) {
		char addr[64];
		test_address(addr, sizeof(addr), kind);
		mproc_listener *l = listen_on(addr, KEY, KEY_LEN, 0);
		mproc_conn *s, *c;
		connect_pair(l, KEY, KEY_LEN, &s, &c);
		/* Unix sockets upgrade to shared memory; TCP does not. */
		bool unix_sock = kind < 2;
		cr_assert_eq(is_eventfd(mproc_conn_fileno(s)), unix_sock,
			     "kind %d", kind);
		cr_assert_eq(is_eventfd(mproc_conn_fileno(c)), unix_sock);
		exchange(c, s, 0);
		exchange(s, c, 64 << 10);
		exchange(c, s, 8 << 20);
		struct mproc_peer_cred cr;
		if (unix_sock) {
			cr_assert_eq(mproc_listener_peer_cred(s, &cr), 0);
			cr_assert_eq(cr.pid, getpid());
			cr_assert_eq(cr.uid, getuid());
			cr_assert_eq(cr.gid, getgid());
		} else {
			cr_assert_eq(mproc_listener_peer_cred(s, &cr), -ENOPROTOOPT);
		}
		/* Close: the other side reads the end of the stream. */
		cr_assert_eq(mproc_conn_close(c), 0);
		char buf[4];
		cr_assert_eq(mproc_conn_recv_bytes_into(s, buf, 4), -MPROC_EEOF);
		mproc_conn_free(c);
		mproc_conn_free(s);
		cr_assert_eq(mproc_listener_close(l), 0);
	}
	cr_assert_eq(count_fds(), fds_before, "every descriptor of the "
		     "upgrades (memfds, eventfds, sockets) is closed");
}

Test(listener, no_upgrade_flag_and_no_auth)
{
	char addr[64];
	test_address(addr, sizeof(addr), 1);
	mproc_listener *l = listen_on(addr, KEY, KEY_LEN, MPROC_LISTENER_NO_UPGRADE);
	mproc_conn *s, *c;
	connect_pair(l, KEY, KEY_LEN, &s, &c);
	cr_assert_not(is_eventfd(mproc_conn_fileno(s)));
	cr_assert_not(is_eventfd(mproc_conn_fileno(c)));
	exchange(s, c, 1000);
	mproc_conn_free(s);
	mproc_conn_free(c);
	mproc_listener_close(l);
	/* An empty key: no handshake at all, so no upgrade either. */
	test_address(addr, sizeof(addr), 1);
	l = listen_on(addr, "", 0, 0);
	connect_pair(l, "", 0, &s, &c);
	cr_assert_not(is_eventfd(mproc_conn_fileno(s)));
	exchange(c, s, 10);
	mproc_conn_free(s);
	mproc_conn_free(c);
	mproc_listener_close(l);
}

/* The default key is the process's authkey, on both sides. */
Test(listener, default_key_is_the_process_authkey)
{
	char addr[64];
	test_address(addr, sizeof(addr), 1);
	mproc_listener *l = listen_on(addr, NULL, 0, 0);
	mproc_conn *s, *c;
	connect_pair(l, NULL, 0, &s, &c);
	exchange(s, c, 5);
	mproc_conn_free(s);
	mproc_conn_free(c);
	uint8_t key[MPROC_AUTHKEY_SIZE];
	cr_assert_eq(mproc_process_authkey(mproc_current_process(), key), 0);
	connect_pair(l, key, sizeof(key), &s, &c);
	mproc_conn_free(s);
	mproc_conn_free(c);
	mproc_listener_close(l);
}

Test(listener, socket_file_mode_and_cleanup)
{
	char addr[64];
	test_address(addr, sizeof(addr), 0);
	mode_t old = umask(0);
	mproc_listener *l = listen_on(addr, KEY, KEY_LEN, 0);
	struct stat st;
	cr_assert_eq(stat(addr, &st), 0);
	cr_assert_eq(st.st_mode & 07777, 0600, "mode %o", st.st_mode & 07777);
	/* A second listener on the same path is refused. */
	mproc_listener *l2;
	cr_assert_eq(mproc_listener_create(addr, NULL, &l2), -EADDRINUSE);
	mproc_listener_close(l);
	cr_assert_eq(stat(addr, &st), -1, "removed on close");
	umask(022);
	struct mproc_listener_attr a;
	mproc_listener_attr_init(&a);
	a.mode = 0660;
	cr_assert_eq(mproc_listener_create(addr, &a, &l), 0);
	cr_assert_eq(stat(addr, &st), 0);
	cr_assert_eq(st.st_mode & 07777, 0660, "mode %o despite the umask",
		     st.st_mode & 07777);
	char got[MPROC_LISTENER_ADDRESS_MAX];
	cr_assert_eq(mproc_listener_address(l, got, sizeof(got)), (int)strlen(addr));
	cr_assert_str_eq(got, addr);
	cr_assert_eq(mproc_listener_address(l, got, 4), -ENOSPC);
	mproc_listener_close(l);
	umask(old);
}

Test(listener, bad_arguments)
{
	mproc_listener *l;
	mproc_conn *c;
	cr_assert_eq(mproc_listener_create(NULL, NULL, &l), -EINVAL);
	cr_assert_eq(mproc_listener_create("/tmp/x", NULL, NULL), -EINVAL);
	const char *bad[] = { "", "@", "nope", "127.0.0.1:99999", "127.0.0.1:",
			      ":80", "[::1:80", "127.0.0.1:8x" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cr_assert_eq(mproc_listener_create(bad[i], NULL, &l), -EINVAL,
			     "%s", bad[i]);
		cr_assert_eq(mproc_client(bad[i], NULL, 0, 0, &c), -EINVAL);
	}
	char longpath[200];
	memset(longpath, 'a', sizeof(longpath));
	longpath[0] = '/';
	longpath[199] = '\0';
	cr_assert_eq(mproc_listener_create(longpath, NULL, &l), -EINVAL);
	struct mproc_listener_attr a;
	mproc_listener_attr_init(&a);
	a.flags = 1u << 9;
	cr_assert_eq(mproc_listener_create("@x", &a, &l), -EINVAL);
	mproc_listener_attr_init(&a);
	a.handshake_timeout_ns = -2;
	cr_assert_eq(mproc_listener_create("@x", &a, &l), -EINVAL);
	cr_assert_eq(mproc_listener_accept(NULL, 0, &c), -EINVAL);
	cr_assert_eq(mproc_listener_fileno(NULL), -EINVAL);
	cr_assert_eq(mproc_listener_close(NULL), -EINVAL);
	cr_assert_eq(mproc_client("@nobody-listens-here", NULL, 0, MPROC_SEC, &c),
		     -ECONNREFUSED);
	cr_assert_eq(mproc_client("/tmp/no/such/dir.sock", NULL, 0, MPROC_SEC, &c),
		     -ENOENT);
	/* Nobody waiting: accept does not block with timeout 0. */
	char addr[64];
	test_address(addr, sizeof(addr), 1);
	l = listen_on(addr, KEY, KEY_LEN, 0);
	cr_assert_eq(mproc_listener_accept(l, 0, &c), -EAGAIN);
	int64_t t0 = mproc__now_ns();
	cr_assert_eq(mproc_listener_accept(l, 30 * MPROC_MSEC, &c), -ETIMEDOUT);
	cr_assert_geq(mproc__now_ns() - t0, 25 * MPROC_MSEC);
	struct mproc_peer_cred cr;
	mproc_conn *pa, *pb;
	cr_assert_eq(mproc_pipe(true, NULL, &pa, &pb), 0);
	cr_assert_eq(mproc_listener_peer_cred(pa, &cr), -ENOTSOCK);
	mproc_conn_free(pa);
	mproc_conn_free(pb);
	mproc_listener_close(l);
}

/* A wrong key is -MPROC_EAUTH on both sides, and no data flows. */
Test(listener, wrong_key_both_sides)
{
	char addr[64];
	test_address(addr, sizeof(addr), 1);
	mproc_listener *l = listen_on(addr, KEY, KEY_LEN, 0);
	struct acceptor a;
	accept_async(&a, l, 10 * MPROC_SEC);
	mproc_conn *c;
	int rc = mproc_client(addr, "other", 5, 10 * MPROC_SEC, &c);
	cr_assert_eq(rc, -MPROC_EAUTH, "%s", mproc_strerror(rc));
	cr_assert_eq(accept_wait(&a), -MPROC_EAUTH);
	cr_assert_null(a.conn);
	/* The listener goes on. */
	mproc_conn *s;
	connect_pair(l, KEY, KEY_LEN, &s, &c);
	mproc_conn_free(s);
	mproc_conn_free(c);
	mproc_listener_close(l);
}

/* A raw client: connect to @addr (a Unix name or path). */
static int raw_connect(const char *addr)
{
	struct sockaddr_un un = { .sun_family = AF_UNIX };
	socklen_t len;
	if (addr[0] == '@') {
		strcpy(un.sun_path + 1, addr + 1);
		len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(addr));
	} else {
		strcpy(un.sun_path, addr);
		len = sizeof(un);
	}
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cr_assert_geq(fd, 0);
	cr_assert_eq(connect(fd, (struct sockaddr *)&un, len), 0, "%s", strerror(errno));
	return fd;
}

/* A raw listener: bind @addr and return the listening socket. */
static int raw_listen(const char *addr)
{
	struct sockaddr_un un = { .sun_family = AF_UNIX };
	strcpy(un.sun_path + 1, addr + 1);
	socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(addr));
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cr_assert_eq(bind(fd, (struct sockaddr *)&un, len), 0);
	cr_assert_eq(listen(fd, 8), 0);
	return fd;
}

/* Read one frame of at most 300 bytes from a raw socket. */
static ssize_t raw_frame(int fd, unsigned char *buf)
{
	unsigned char h[4];
	if (mproc__read_all(fd, h, 4))
		return -1;
	uint32_t n = (uint32_t)h[0] << 24 | h[1] << 16 | h[2] << 8 | h[3];
	if (n > 300 || mproc__read_all(fd, buf, n))
		return -1;
	return n;
}

/* Misbehaving clients: each costs the listener one failed accept with
 * the right error, and it accepts the next good client. */
Test(listener, hostile_clients, .timeout = 60)
{
	char addr[64];
	test_address(addr, sizeof(addr), 1);
	struct mproc_listener_attr at;
	mproc_listener_attr_init(&at);
	at.authkey = KEY;
	at.authkey_len = KEY_LEN;
	at.handshake_timeout_ns = 200 * MPROC_MSEC;
	mproc_listener *l;
	cr_assert_eq(mproc_listener_create(addr, &at, &l), 0);
	mproc_conn *c, *s;
	unsigned char buf[300];

	/* Truncated: half a response, then gone. */
	int fd = raw_connect(addr);
	struct acceptor a;
	accept_async(&a, l, 10 * MPROC_SEC);
	cr_assert_gt(raw_frame(fd, buf), 0);
	cr_assert_eq(mproc__write_all(fd, "\0\0\0\x30{sha", 8), 0);
	close(fd);
	cr_assert_eq(accept_wait(&a), -ECONNABORTED);

	/* Garbage in place of a response. */
	fd = raw_connect(addr);
	accept_async(&a, l, 10 * MPROC_SEC);
	cr_assert_gt(raw_frame(fd, buf), 0);
	cr_assert_eq(mproc__write_all(fd, "\0\0\0\x05hello", 9), 0);
	cr_assert_eq(accept_wait(&a), -EPROTO);
	ssize_t n = raw_frame(fd, buf);
	cr_assert_eq(n, 9);
	cr_assert_arr_eq(buf, "#FAILURE#", 9);
	close(fd);

	/* A length prefix far beyond any handshake message. */
	fd = raw_connect(addr);
	accept_async(&a, l, 10 * MPROC_SEC);
	cr_assert_gt(raw_frame(fd, buf), 0);
	cr_assert_eq(mproc__write_all(fd, "\xff\xff\xff\xff\x40\0\0\0\0\0\0\0", 12), 0);
	cr_assert_eq(accept_wait(&a), -EPROTO);
	close(fd);

	/* Silent: connects and never speaks; cut off at the handshake
	 * timeout, not at accept's. */
	fd = raw_connect(addr);
	int64_t t0 = mproc__now_ns();
	cr_assert_eq(mproc_listener_accept(l, 10 * MPROC_SEC, &s), -ECONNABORTED);
	int64_t took = mproc__now_ns() - t0;
	cr_assert(took >= 150 * MPROC_MSEC && took < 5 * MPROC_SEC, "%lld ns",
		  (long long)took);
	close(fd);

	connect_pair(l, KEY, KEY_LEN, &s, &c);
	exchange(s, c, 3);
	mproc_conn_free(s);
	mproc_conn_free(c);
	mproc_listener_close(l);
}

/* Misbehaving listeners: garbage in place of the challenge, and a
 * challenge of an unknown digest. */
Test(listener, hostile_listeners, .timeout = 60)
{
	char addr[64];
	test_address(addr, sizeof(addr), 1);
	int lfd = raw_listen(addr);
	const char *bad[] = { "\0\0\0\x0bgarbage!!!!",
			      "\0\0\0\x20#CHALLENGE#{sha999}abcdefghijklm",
			      "\0\0\0\x0e#CHALLENGE#abc" };
	const size_t bad_len[] = { 15, 36, 18 };
	for (int i = 0; i < 3; i++) {
		pid_t pid = fork();
		if (pid == 0) {
			int fd = accept(lfd, NULL, NULL);
			mproc__write_all(fd, bad[i], bad_len[i]);
			unsigned char b[64];
			while (read(fd, b, sizeof(b)) > 0)
				;
			_exit(0);
		}
		mproc_conn *c;
		int rc = mproc_client(addr, KEY, KEY_LEN, 10 * MPROC_SEC, &c);
		cr_assert_eq(rc, -EPROTO, "case %d: %s", i, mproc_strerror(rc));
		waitpid(pid, NULL, 0);
	}
	/* A listener that stalls: the client's own timeout cuts it off. */
	int64_t t0 = mproc__now_ns();
	mproc_conn *c;
	cr_assert_eq(mproc_client(addr, KEY, KEY_LEN, 100 * MPROC_MSEC, &c),
		     -ECONNABORTED);
	cr_assert_geq(mproc__now_ns() - t0, 90 * MPROC_MSEC);
	close(lfd);
}

/* 1000 clients connect and drop at once: the listener fails each accept
 * cleanly, keeps accepting, and ends with the descriptors it began with. */
Test(listener, thousand_dropped_connections, .timeout = 120)
{
	char addr[64];
	test_address(addr, sizeof(addr), 1);
	mproc_listener *l = listen_on(addr, KEY, KEY_LEN, 0);
	int before = count_fds();
	for (int i = 0; i < 1000; i++) {
		int fd = raw_connect(addr);
		/* Half of them leave a truncated frame behind. */
		if (i % 2)
			cr_assert_eq(mproc__write_all(fd, "\0\0\0\x30{sh", 7), 0);
		close(fd);
		mproc_conn *s;
		int rc = mproc_listener_accept(l, 10 * MPROC_SEC, &s);
		cr_assert_eq(rc, -ECONNABORTED, "%d: %s", i, mproc_strerror(rc));
	}
	cr_assert_eq(count_fds(), before, "no descriptor leaked");
	mproc_conn *s, *c;
	connect_pair(l, KEY, KEY_LEN, &s, &c);
	exchange(c, s, 100);
	mproc_conn_free(s);
	mproc_conn_free(c);
	cr_assert_eq(count_fds(), before);
	mproc_listener_close(l);
}

/* A client process that sends a stream too long for the ring and is
 * SIGKILLed part-way: the listener's upgraded end drops the partial
 * message (nothing spliced) and reports -MPROC_EPEERDIED. */
Test(listener, peer_killed_mid_message, .timeout = 60)
{
	char addr[64];
	test_address(addr, sizeof(addr), 1);
	struct mproc_listener_attr at;
	mproc_listener_attr_init(&at);
	at.authkey = KEY;
	at.authkey_len = KEY_LEN;
	at.capacity = 64 << 10;
	mproc_listener *l;
	cr_assert_eq(mproc_listener_create(addr, &at, &l), 0);
	pid_t pid = fork();
	if (pid == 0) {
		mproc_conn *c;
		if (mproc_client(addr, KEY, KEY_LEN, 10 * MPROC_SEC, &c))
			_exit(1);
		mproc_conn_send_bytes(c, "ready", 5);
		size_t big = 64 << 20;
		unsigned char *m = malloc(big);
		memset(m, 0x77, big);
		mproc_conn_send_bytes(c, m, big); /* blocks: nobody reads */
		_exit(2);
	}
	mproc_conn *s;
	int rc = mproc_listener_accept(l, 10 * MPROC_SEC, &s);
	cr_assert_eq(rc, 0, "%s", mproc_strerror(rc));
	cr_assert(is_eventfd(mproc_conn_fileno(s)), "upgraded");
	struct mproc_peer_cred cr;
	cr_assert_eq(mproc_listener_peer_cred(s, &cr), 0);
	cr_assert_eq(cr.pid, pid);
	char buf[8];
	cr_assert_eq(mproc_conn_set_timeout(s, 10 * MPROC_SEC), 0);
	cr_assert_eq(mproc_conn_recv_bytes_into(s, buf, sizeof(buf)), 5);
	/* Let the ring fill with fragments of the stream, then kill. */
	while (mproc_conn_poll(s, 0) == 0)
		usleep(1000);
	usleep(20000);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	void *m;
	size_t len;
	ssize_t n = mproc_conn_recv_bytes(s, MPROC_CONN_NOLIMIT, &m, &len);
	cr_assert_eq(n, -MPROC_EPEERDIED, "%zd %s", n, mproc_strerror((int)n));
	cr_assert_eq(mproc_conn_send_bytes(s, "x", 1), -MPROC_EPEERDIED);
	mproc_conn_free(s);
	mproc_listener_close(l);
}

/* Several threads accept on one listener at once; each gets a client. */
Test(listener, concurrent_accepts, .timeout = 60)
{
	char addr[64];
	test_address(addr, sizeof(addr), 2);
	mproc_listener *l = listen_on(addr, KEY, KEY_LEN, 0);
	char bound[MPROC_LISTENER_ADDRESS_MAX];
	cr_assert_gt(mproc_listener_address(l, bound, sizeof(bound)), 0);
	struct acceptor a[3];
	for (int i = 0; i < 3; i++)
		accept_async(&a[i], l, 10 * MPROC_SEC);
	mproc_conn *c[3];
	for (int i = 0; i < 3; i++)
		cr_assert_eq(mproc_client(bound, KEY, KEY_LEN, 10 * MPROC_SEC, &c[i]), 0);
	for (int i = 0; i < 3; i++) {
		cr_assert_eq(accept_wait(&a[i]), 0);
		mproc_conn_free(a[i].conn);
		mproc_conn_free(c[i]);
	}
	mproc_listener_close(l);
}


/* accept with timeout 0 takes a client that is already waiting, and its
 * handshake still runs to the end; the listener's fileno tells when. */
Test(listener, accept_nowait_takes_a_waiting_client, .timeout = 30)
{
	char addr[64];
	test_address(addr, sizeof(addr), 1);
	mproc_listener *l = listen_on(addr, KEY, KEY_LEN, 0);
	struct client_thread t;
	client_async(&t, addr);
	struct pollfd p = { .fd = mproc_listener_fileno(l), .events = POLLIN };
	cr_assert_eq(poll(&p, 1, 10000), 1);
	mproc_conn *s;
	int rc = mproc_listener_accept(l, 0, &s);
	cr_assert_eq(rc, 0, "%s", mproc_strerror(rc));
	pthread_join(t.th, NULL);
	cr_assert_eq(t.rc, 0);
	exchange(s, t.conn, 7);
	mproc_conn_free(s);
	mproc_conn_free(t.conn);
	mproc_listener_close(l);
}
