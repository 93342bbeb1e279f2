/*
 * Internal: the parts of the Listener and Client (src/listener): address
 * parsing (address.c), Python's authkey handshake (auth.c), and the calls
 * of mproc/listener.h that tie them to sockets (listener.c).
 */
#ifndef MPROC_LISTENER_INTERNAL_H
#define MPROC_LISTENER_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "mproc/listener.h"
#include "common/clock.h"
#include "pipe/offer.h"

/* ---- address.c ------------------------------------------------------ */

struct lst_addr {
	struct sockaddr_storage sa;
	socklen_t len;
	int family;      /* AF_UNIX, AF_INET, AF_INET6 */
	bool abstract;   /* AF_UNIX: a Linux abstract name */
	char path[108];  /* AF_UNIX file: its path (for chmod and unlink) */
};

/* Parse @address (mproc/listener.h) into @a; @passive for a listener.
 * Returns 0, -EINVAL, -ENOENT (the host does not resolve), -ENOMEM. */
int mproc__lst_parse(const char *address, bool passive, struct lst_addr *a);

/* Write the address @sa (of @len bytes) in the form the parser reads.
 * Returns the length, or -ENOSPC, -EINVAL. */
int mproc__lst_format(const struct sockaddr_storage *sa, socklen_t len,
		      char *buf, size_t cap);

/* ---- auth.c --------------------------------------------------------- */

/* The authkey of one side: @len bytes at @key (0: no authentication). */
struct lst_key {
	const unsigned char *key;
	size_t len;
	unsigned char own[64]; /* holds the process's key when defaulted */
};

/* Fill @k from a caller's key (NULL: the current process's authkey).
 * Returns 0 or an error of mproc_process_authkey. */
int mproc__lst_key(struct lst_key *k, const void *key, size_t len);

/* What the side that delivers the second challenge (the client) may get
 * with the listener's response: an offered pipe end (mproc/listener.h,
 * "Shared-memory upgrade"). */
struct lst_offer_in {
	bool want;           /* read descriptors with the response */
	mproc_conn *conn;    /* out: the end taken up, or NULL */
};

/* Python's deliver_challenge over @c: challenge the peer, check its
 * response, and send #WELCOME# (or #FAILURE#).  With @in, descriptors
 * that come with the response are an offered pipe end, taken up when the
 * response checks out; the welcome then says so.  Returns 0, or the
 * handshake errors of mproc/listener.h. */
int mproc__lst_deliver(mproc_conn *c, const struct lst_key *k,
		       const struct mproc__deadline *d, struct lst_offer_in *in);

/* Python's answer_challenge over @c: answer the peer's challenge and wait
 * for its verdict.  With @offer (OFFER_NFDS descriptors), they travel
 * with the response, and *@taken tells whether the peer took them up.
 * Returns 0, or the handshake errors of mproc/listener.h. */
int mproc__lst_answer(mproc_conn *c, const struct lst_key *k,
		      const struct mproc__deadline *d, const int *offer,
		      bool *taken);

#endif /* MPROC_LISTENER_INTERNAL_H */
