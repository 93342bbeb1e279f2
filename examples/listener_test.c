/*
 * listener_test - an echo service between unrelated processes, with an
 * authkey, in either language: the C twin of a multiprocessing.connection
 * Listener/Client pair.
 *
 *   listener_test serve ADDRESS KEY N    accept N clients one after the
 *                                        other and echo every message of
 *                                        each until it hangs up
 *   listener_test connect ADDRESS KEY    connect, send three messages,
 *                                        print the echoes
 *
 * ADDRESS is a Unix socket path, "@name" (abstract) or "host:port".  The
 * client may be a Python program (multiprocessing.connection.Client) and
 * the server a Python Listener: the wire protocol is Python's.  A client
 * with the wrong key is refused (MPROC_EAUTH) and the server carries on.
 * Between two mproc processes on a Unix socket the connection moves to
 * shared memory after the handshake ("shared memory: yes").
 *
 * Driven by listener_client.py and listener_server.py in the examples
 * suite.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <mproc.h>

/* An upgraded connection's fileno is its pipe's eventfd, not a socket. */
static const char *shared_memory(mproc_conn *c)
{
	struct mproc_peer_cred cred;
	(void)cred;
	char path[64], link[64];
	snprintf(path, sizeof(path), "/proc/self/fd/%d", mproc_conn_fileno(c));
	ssize_t n = readlink(path, link, sizeof(link) - 1);
	link[n > 0 ? n : 0] = '\0';
	return strstr(link, "eventfd") ? "yes" : "no";
}

static int serve(const char *address, const char *key, int clients)
{
	struct mproc_listener_attr attr;
	mproc_listener_attr_init(&attr);
	attr.authkey = key;
	attr.authkey_len = strlen(key);
	mproc_listener *l;
	int rc = mproc_listener_create(address, &attr, &l);
	if (rc) {
		fprintf(stderr, "listen on %s: %s\n", address, mproc_strerror(rc));
		return 1;
	}
	char bound[MPROC_LISTENER_ADDRESS_MAX];
	mproc_listener_address(l, bound, sizeof(bound));
	printf("listening on %s\n", bound);
	fflush(stdout);
	for (int i = 0; i < clients; i++) {
		mproc_conn *c;
		rc = mproc_listener_accept(l, 60 * MPROC_SEC, &c);
		if (rc) {
			printf("refused a client: %s\n", mproc_strerror(rc));
			fflush(stdout);
			continue;
		}
		struct mproc_peer_cred cred;
		if (mproc_listener_peer_cred(c, &cred) == 0)
			printf("client pid %d accepted, shared memory: %s\n",
			       (int)cred.pid, shared_memory(c));
		else
			printf("client accepted\n");
		fflush(stdout);
		size_t n = 0, bytes = 0;
		void *m;
		size_t len;
		ssize_t r;
		while ((r = mproc_conn_recv_bytes(c, MPROC_CONN_NOLIMIT, &m, &len)) >= 0) {
			mproc_conn_send_bytes(c, m, len);
			free(m);
			n++;
			bytes += len;
		}
		printf("client done: %zu messages, %zu bytes echoed (%s)\n", n,
		       bytes, mproc_strerror((int)r));
		fflush(stdout);
		mproc_conn_free(c);
	}
	mproc_listener_close(l);
	return 0;
}

static int connect_to(const char *address, const char *key)
{
	mproc_conn *c;
	int rc = mproc_client(address, key, strlen(key), 60 * MPROC_SEC, &c);
	if (rc) {
		printf("connect to %s: %s\n", address, mproc_strerror(rc));
		return 2;
	}
	printf("connected, shared memory: %s\n", shared_memory(c));
	const char *words[] = { "Python", "", "multiprocessing.connection" };
	for (int i = 0; i < 3; i++) {
		mproc_conn_send_bytes(c, words[i], strlen(words[i]));
		void *m;
		size_t len;
		ssize_t r = mproc_conn_recv_bytes(c, MPROC_CONN_NOLIMIT, &m, &len);
		if (r < 0) {
			printf("recv: %s\n", mproc_strerror((int)r));
			mproc_conn_free(c);
			return 1;
		}
		printf("echo: '%.*s'\n", (int)len, (char *)m);
		free(m);
	}
	mproc_conn_free(c);
	return 0;
}

int main(int argc, char *argv[])
{
	mproc_main(argc, argv);
	if (argc == 5 && strcmp(argv[1], "serve") == 0)
		return serve(argv[2], argv[3], atoi(argv[4]));
	if (argc == 4 && strcmp(argv[1], "connect") == 0)
		return connect_to(argv[2], argv[3]);
	fprintf(stderr, "usage: %s serve ADDRESS KEY N | connect ADDRESS KEY\n",
		argv[0]);
	return 2;
}
