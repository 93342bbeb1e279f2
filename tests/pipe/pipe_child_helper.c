/*
 * Helper for the spawn test in pipe_unit.c: started by exec with a
 * connection token, it imports the end, answers one message with
 * "child:" + the message, and closes its end (which ends the stream for
 * the parent).  Exit status 0 on success, else the step that failed.
 */
#include <stdio.h>
#include <string.h>

#include "mproc/pipe.h"

int main(int argc, char **argv)
{
	if (argc != 2)
		return 10;
	mproc_conn *c;
	int rc = mproc_conn_import(argv[1], &c);
	if (rc) {
		fprintf(stderr, "pipe_child_helper: import: %s\n", mproc_strerror(rc));
		return 11;
	}
	mproc_conn_set_timeout(c, 10 * MPROC_SEC);
	char msg[64], reply[80];
	ssize_t n = mproc_conn_recv_bytes_into(c, msg, sizeof(msg));
	if (n < 0)
		return 12;
	memcpy(reply, "child:", 6);
	memcpy(reply + 6, msg, (size_t)n);
	if (mproc_conn_send_bytes(c, reply, 6 + (size_t)n) != 6 + n)
		return 13;
	if (mproc_conn_close(c))
		return 14;
	mproc_conn_free(c);
	return 0;
}
