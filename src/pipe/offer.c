/*
 * The pipe side of the Listener's shared-memory upgrade (offer.h).  The
 * end travels as descriptors rather than a token of numbers: the listener
 * sends them with SCM_RIGHTS, and the receiving side names the numbers it
 * got in a token for the import of pipe.c, so there is one way to take an
 * end up, with one set of checks.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <sys/stat.h>

#include "pipe/conn.h"
#include "pipe/fdconn.h"
#include "pipe/offer.h"

int mproc__offer_fds(mproc_conn *b, int fds[OFFER_NFDS])
{
	if (!b || b->ops)
		return -EINVAL;
	if (b->closed)
		return -EBADF;
	if (!b->can_rx || !b->can_tx)
		return -EINVAL;
	fds[OFFER_SEG] = mproc_shm_fd(b->res->seg);
	fds[OFFER_RX] = b->res->efd[b->end];
	fds[OFFER_TX] = b->res->efd[1 - b->end];
	b->exported = true;
	return 0;
}

int mproc__offer_take(const int fds[OFFER_NFDS], mproc_conn **out)
{
	/* A segment its sender could still shrink would SIGBUS us. */
	int seals = fcntl(fds[OFFER_SEG], F_GET_SEALS);
	int need = F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL;
	if (seals < 0 || (seals & need) != need)
		return -EINVAL;
	struct stat st;
	if (fstat(fds[OFFER_SEG], &st) < 0 || !S_ISREG(st.st_mode))
		return -EINVAL;
	/* End b: the listener keeps a (ring 0 delivers to a, ring 1 to b). */
	char tok[MPROC_CONN_TOKEN_MAX];
	int n = snprintf(tok, sizeof(tok), "mproc-conn:1:%d:%d:mproc-shm:%d:%lld",
			 fds[OFFER_RX], fds[OFFER_TX], fds[OFFER_SEG],
			 (long long)st.st_size);
	if (n < 0 || (size_t)n >= sizeof(tok))
		return -EINVAL;
	return mproc_conn_import(tok, out);
}

void mproc__offer_keep_socket(mproc_conn *c, int sock, pid_t peer)
{
	c->sock = sock;
	c->sock_pid = (int)peer;
}

int mproc__conn_socket(const mproc_conn *c)
{
	if (!c)
		return -EINVAL;
	if (c->closed)
		return -EBADF;
	if (c->ops)
		return mproc__fdconn_fd(c); /* getsockopt tells a pipe */
	return c->sock >= 0 ? c->sock : -ENOTSOCK;
}

bool mproc__offer_sock_gone(const mproc_conn *c)
{
	struct pollfd p = { .fd = c->sock, .events = POLLRDHUP };
	if (poll(&p, 1, 0) <= 0)
		return false;
	return (p.revents & (POLLHUP | POLLRDHUP | POLLERR)) != 0;
}
