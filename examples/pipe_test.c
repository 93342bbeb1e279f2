/*
 * pipe_test - the C twin of the seed's Pipe_test.py: Pipe() makes two
 * connected ends; a child process sends through one, the parent receives
 * from the other.  The seed's messages, in English:
 *
 *   (PID) process starts sending data...     (in the child)
 *   (PID) process starts receiving data...   (in the parent)
 *   Python                                   (what the parent received)
 *
 * The child here is a plain fork(); every mproc object made before a fork
 * works in both processes.  As in Python, the parent closes the child's
 * end and uses its own; when the child closes its end (or exits), the
 * parent's next receive reports the end of the stream, where Python's
 * recv() would raise EOFError.
 *
 * Build: meson compiles it to build/examples/pipe_test.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <mproc.h>

/* The child's target, as f(conn) in the seed. */
static int f(mproc_conn *conn)
{
	printf("(%d) process starts sending data...\n", (int)getpid());
	fflush(stdout); /* the child leaves with _exit, which does not flush */
	const char *word = "Python";
	ssize_t n = mproc_conn_send_bytes(conn, word, strlen(word));
	if (n < 0) {
		fprintf(stderr, "send_bytes: %s\n", mproc_strerror((int)n));
		return 1;
	}
	return mproc_conn_close(conn) ? 1 : 0;
}

int main(void)
{
	/* Pipe(): two ends, both able to send and receive. */
	mproc_conn *parent_conn, *child_conn;
	int rc = mproc_pipe(true, NULL, &parent_conn, &child_conn);
	if (rc) {
		fprintf(stderr, "mproc_pipe: %s\n", mproc_strerror(rc));
		return 1;
	}
	pid_t pid = fork();
	if (pid < 0) {
		perror("fork");
		return 1;
	}
	if (pid == 0) {
		mproc_conn_close(parent_conn); /* not ours: only released */
		_exit(f(child_conn));
	}
	mproc_conn_close(child_conn); /* the child's end: only released */

	printf("(%d) process starts receiving data...\n", (int)getpid());
	fflush(stdout);
	/* recv() of a message of any size: recv_bytes allocates it. */
	void *data;
	size_t len;
	ssize_t n = mproc_conn_recv_bytes(parent_conn, MPROC_CONN_NOLIMIT,
					  &data, &len);
	if (n < 0) {
		fprintf(stderr, "recv_bytes: %s\n", mproc_strerror((int)n));
		return 1;
	}
	printf("%.*s\n", (int)len, (const char *)data);
	free(data);

	/* The child closed its end: poll says readable, recv says EOF. */
	int readable = mproc_conn_poll(parent_conn, 10 * MPROC_SEC);
	n = mproc_conn_recv_bytes(parent_conn, MPROC_CONN_NOLIMIT, &data, &len);
	printf("poll=%d, then recv: %s\n", readable, mproc_strerror((int)n));

	int status;
	waitpid(pid, &status, 0);
	mproc_conn_free(parent_conn);
	mproc_conn_free(child_conn);
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 &&
			       n == -MPROC_EEOF
		       ? 0
		       : 1;
}
