/*
 * A connection from the Listener handed to a child under every start
 * method: the parent connects to its own listener (an upgraded pipe end on
 * each side), exports the client's end to a child and frees its handle on
 * it, which closes the handshake socket of that end.  The child imports
 * the end, echoes, and closes it: the listener's end then reads the
 * end of the stream -- not a dead peer, although the socket went away with
 * the parent's handle.  main() is tests/process/process_main.c
 * (mproc_main first, for spawn and forkserver).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "listener_test.h"

static const char *const methods[] = { "fork", "spawn", "forkserver" };

static int echo_child(void *arg, size_t len)
{
	char tok[MPROC_CONN_TOKEN_MAX];
	if (len == 0 || len > sizeof(tok))
		return 10;
	memcpy(tok, arg, len);
	tok[len - 1] = '\0';
	/* Give the listener's end time to look at its peer while nobody
	 * owns this end: it must not take that for a death. */
	usleep(300000);
	mproc_conn *c;
	if (mproc_conn_import(tok, &c) != 0)
		return 11;
	int code = 0;
	for (int i = 0; i < 2 && code == 0; i++) {
		void *m;
		size_t n;
		if (mproc_conn_recv_bytes(c, MPROC_CONN_NOLIMIT, &m, &n) < 0)
			code = 12;
		else if (mproc_conn_send_bytes(c, m, n) != (ssize_t)n)
			code = 13;
		if (code == 0)
			free(m);
	}
	if (mproc_conn_close(c) != 0)
		code = 14;
	mproc_conn_free(c);
	return code;
}


Test(listener_methods, upgraded_end_handed_to_a_child, .timeout = 120)
{
	unsetenv("BXFI_MAP"); /* see tests/process/process_main.c */
	for (int m = 0; m < 3; m++) {
		char addr[64];
		test_address(addr, sizeof(addr), 1);
		mproc_listener *l = listen_on(addr, KEY, KEY_LEN, 0);
		struct client_thread t;
		client_async(&t, addr);
		mproc_conn *s;
		cr_assert_eq(mproc_listener_accept(l, 10 * MPROC_SEC, &s), 0);
		pthread_join(t.th, NULL);
		cr_assert_eq(t.rc, 0);
		cr_assert(is_eventfd(mproc_conn_fileno(t.conn)), "upgraded");
		char tok[MPROC_CONN_TOKEN_MAX];
		int n = mproc_conn_export(t.conn, tok, sizeof(tok));
		cr_assert_gt(n, 0);
		mproc_context *ctx;
		mproc_process *p;
		cr_assert_eq(mproc_get_context(methods[m], &ctx), 0);
		cr_assert_eq(mproc_process_create(ctx, echo_child, tok,
						  (size_t)n + 1, &p), 0);
		int rc = mproc_process_start(p);
		cr_assert_eq(rc, 0, "%s: %s", methods[m], mproc_strerror(rc));
		mproc_conn_free(t.conn); /* released here; the socket closes */
		cr_assert_eq(mproc_conn_set_timeout(s, 30 * MPROC_SEC), 0);
		/* Poll while the child has not taken the end yet. */
		for (int i = 0; i < 20; i++) {
			rc = mproc_conn_poll(s, 0);
			cr_assert_eq(rc, 0, "%s: %s", methods[m], mproc_strerror(rc));
			usleep(10000);
		}
		for (int i = 0; i < 2; i++) {
			cr_assert_eq(mproc_conn_send_bytes(s, "ping", 4), 4);
			char buf[8];
			ssize_t r = mproc_conn_recv_bytes_into(s, buf, sizeof(buf));
			cr_assert_eq(r, 4, "%s: %s", methods[m], mproc_strerror((int)r));
		}
		char buf[8];
		ssize_t r = mproc_conn_recv_bytes_into(s, buf, sizeof(buf));
		cr_assert_eq(r, -MPROC_EEOF, "%s: %s", methods[m],
			     mproc_strerror((int)r));
		cr_assert_eq(mproc_process_join(p, MPROC_FOREVER), 0);
		int code = -1;
		cr_assert_eq(mproc_process_exitcode(p, &code), 0);
		cr_assert_eq(code, 0, "%s: child code %d", methods[m], code);
		mproc_process_free(p);
		mproc_conn_free(s);
		mproc_listener_close(l);
	}
}
