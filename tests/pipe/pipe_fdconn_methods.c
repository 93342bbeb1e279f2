/*
 * A descriptor connection handed to a child under every start method: the
 * parent wraps both ends of a socketpair, exports the child's end and
 * passes the token as the target's argument; the child imports it (fork:
 * the inherited descriptor; spawn and forkserver: the one the process
 * module passed at the same number), echoes, and closes.  Its close and
 * exit end the stream for the parent.  The binary's main() is
 * tests/process/process_main.c (mproc_main first: spawn and forkserver
 * re-execute it).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "mproc.h"

static const char *const methods[] = { "fork", "spawn", "forkserver" };

/* Echo every message with "child:" in front until "stop"; 0 when all
 * went well. */
static int echo_child(void *arg, size_t len)
{
	char tok[MPROC_CONN_TOKEN_MAX];
	if (len == 0 || len > sizeof(tok))
		return 10;
	memcpy(tok, arg, len);
	tok[len - 1] = '\0';
	mproc_conn *c;
	if (mproc_conn_import(tok, &c) != 0)
		return 11;
	int code = 0;
	for (;;) {
		void *m;
		size_t n;
		if (mproc_conn_recv_bytes(c, MPROC_CONN_NOLIMIT, &m, &n) < 0) {
			code = 12;
			break;
		}
		bool stop = n == 4 && memcmp(m, "stop", 4) == 0;
		char *out = malloc(n + 6);
		memcpy(out, "child:", 6);
		memcpy(out + 6, m, n);
		free(m);
		ssize_t r = stop ? 0 : mproc_conn_send_bytes(c, out, n + 6);
		free(out);
		if (r < 0) {
			code = 13;
			break;
		}
		if (stop)
			break;
	}
	if (mproc_conn_close(c) != 0 || mproc_conn_closed(c) != 1)
		code = 14;
	mproc_conn_free(c);
	return code;
}

Test(fdconn_methods, inherited_socketpair_end, .timeout = 120)
{
	unsetenv("BXFI_MAP"); /* see tests/process/process_main.c */
	for (int m = 0; m < 3; m++) {
		int sv[2];
		cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
		mproc_conn *mine, *theirs;
		cr_assert_eq(mproc_conn_from_fd(sv[0], 0, &mine), 0);
		cr_assert_eq(mproc_conn_from_fd(sv[1], 0, &theirs), 0);
		char tok[MPROC_CONN_TOKEN_MAX];
		int n = mproc_conn_export(theirs, tok, sizeof(tok));
		cr_assert_gt(n, 0, "%s", mproc_strerror(n));
		mproc_context *ctx;
		mproc_process *p;
		cr_assert_eq(mproc_get_context(methods[m], &ctx), 0);
		cr_assert_eq(mproc_process_create(ctx, echo_child, tok,
						  (size_t)n + 1, &p), 0);
		int rc = mproc_process_start(p);
		cr_assert_eq(rc, 0, "%s: %s", methods[m], mproc_strerror(rc));
		/* Our copy of the child's end goes: only the child's is left. */
		mproc_conn_free(theirs);
		cr_assert_eq(mproc_conn_set_timeout(mine, 30 * MPROC_SEC), 0);
		size_t big = 1 << 20;
		unsigned char *msg = malloc(big);
		for (size_t i = 0; i < big; i++)
			msg[i] = (unsigned char)(i * 7 + m);
		const size_t sizes[] = { 0, 5, big };
		for (int i = 0; i < 3; i++) {
			cr_assert_eq(mproc_conn_send_bytes(mine, msg, sizes[i]),
				     (ssize_t)sizes[i]);
			void *got;
			size_t len;
			ssize_t r = mproc_conn_recv_bytes(mine, MPROC_CONN_NOLIMIT,
							  &got, &len);
			cr_assert_eq(r, (ssize_t)sizes[i] + 6, "%s: %s", methods[m],
				     mproc_strerror((int)r));
			cr_assert(memcmp(got, "child:", 6) == 0);
			cr_assert(memcmp((char *)got + 6, msg, sizes[i]) == 0);
			free(got);
		}
		free(msg);
		cr_assert_eq(mproc_conn_send_bytes(mine, "stop", 4), 4);
		char buf[8];
		ssize_t r = mproc_conn_recv_bytes_into(mine, buf, sizeof(buf));
		cr_assert_eq(r, -MPROC_EEOF, "%s: %s", methods[m],
			     mproc_strerror((int)r));
		cr_assert_eq(mproc_process_join(p, MPROC_FOREVER), 0);
		int code = -1;
		cr_assert_eq(mproc_process_exitcode(p, &code), 0);
		cr_assert_eq(code, 0, "%s: child code %d", methods[m], code);
		mproc_process_free(p);
		mproc_conn_free(mine);
	}
}
