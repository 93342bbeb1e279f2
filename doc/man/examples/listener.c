/* An echo server with an authkey: one client at a time, any language. */
#include <stdio.h>
#include <stdlib.h>
#include <mproc.h>
#include <mproc/listener.h>

int main(void)
{
	struct mproc_listener_attr attr;
	mproc_listener_attr_init(&attr);
	attr.authkey = "secret";
	attr.authkey_len = 6;
	mproc_listener *l;
	int rc = mproc_listener_create("/tmp/echo.sock", &attr, &l);
	if (rc) {
		fprintf(stderr, "listen: %s\n", mproc_strerror(rc));
		return 1;
	}
	for (;;) {
		mproc_conn *c;
		rc = mproc_listener_accept(l, MPROC_FOREVER, &c);
		if (rc) {
			fprintf(stderr, "accept: %s\n", mproc_strerror(rc));
			continue; /* a wrong key, say: wait for the next one */
		}
		void *m;
		size_t len;
		while (mproc_conn_recv_bytes(c, MPROC_CONN_NOLIMIT, &m, &len) >= 0) {
			mproc_conn_send_bytes(c, m, len);
			free(m);
		}
		mproc_conn_free(c);
	}
}
