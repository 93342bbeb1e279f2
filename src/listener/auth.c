/*
 * Python's authkey handshake (multiprocessing.connection's
 * deliver_challenge and answer_challenge), byte for byte, over a
 * descriptor connection, plus the shared-memory offer that rides on it
 * between two mproc ends (mproc/listener.h).
 *
 * Messages, each one frame of the connection:
 *   challenge  "#CHALLENGE#" + "{sha256}" + 40 random bytes (3.12+); an
 *              old Python sends 20 random bytes with no tag
 *   response   "{name}" + HMAC-name(authkey, challenge without
 *              "#CHALLENGE#"), or a bare 16-byte HMAC-MD5 (3.11 and
 *              older, and our answer to an untagged challenge)
 *   verdict    "#WELCOME#" or "#FAILURE#"; a client that took an offered
 *              pipe end says "#WELCOME#{mproc-shm}" instead (a message no
 *              Python peer sends, and that a listener accepts only after
 *              making an offer)
 * Every message read during the handshake is at most 256 bytes, as in
 * Python; whatever the peer sends is only compared, never trusted.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "mproc/process.h"
#include "listener/internal.h"
#include "pipe/fdconn.h"

#define CHALLENGE "#CHALLENGE#"
#define WELCOME "#WELCOME#"
#define FAILURE "#FAILURE#"
#define WELCOME_SHM WELCOME "{mproc-shm}"
#define MSG_MAX 256
#define RANDOM_LEN 40     /* Python 3.12's MESSAGE_LENGTH */
#define LEGACY_CHALLENGE 20 /* an untagged challenge (Python <= 3.11) */
#define LEGACY_RESPONSE 16  /* a bare HMAC-MD5 */

int mproc__lst_key(struct lst_key *k, const void *key, size_t len)
{
	if (key) {
		k->key = key;
		k->len = len;
		return 0;
	}
	int rc = mproc_process_authkey(mproc_current_process(), k->own);
	if (rc)
		return rc;
	k->key = k->own;
	k->len = MPROC_AUTHKEY_SIZE;
	return 0;
}

/* The digests Python's handshake allows, by their names on the wire. */
static const EVP_MD *digest_by_name(const unsigned char *name, size_t n)
{
	static const struct {
		const char *name;
		const EVP_MD *(*md)(void);
	} table[] = {
		{ "md5", EVP_md5 },           { "sha256", EVP_sha256 },
		{ "sha384", EVP_sha384 },     { "sha3_256", EVP_sha3_256 },
		{ "sha3_384", EVP_sha3_384 },
	};
	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++)
		if (strlen(table[i].name) == n && memcmp(table[i].name, name, n) == 0)
			return table[i].md();
	return NULL;
}

/* Python's _get_digest_name_and_payload: a message of a legacy length is
 * untagged (MD5, *@md = NULL); otherwise "{name}" with an allowed name
 * (the longest is 8 characters) starts it.  Sets *@tag_len to the tag's
 * length.  Returns 0 or -EPROTO. */
static int split_tag(const unsigned char *m, size_t n, const EVP_MD **md,
		     size_t *tag_len)
{
	if (n == LEGACY_CHALLENGE || n == LEGACY_RESPONSE) {
		*md = NULL;
		*tag_len = 0;
		return 0;
	}
	if (n < 2 || m[0] != '{')
		return -EPROTO;
	size_t lim = n < 11 ? n : 11; /* "{" + 8 + "}" */
	const unsigned char *end = memchr(m + 1, '}', lim - 1);
	if (!end || !(*md = digest_by_name(m + 1, (size_t)(end - m - 1))))
		return -EPROTO;
	*tag_len = (size_t)(end - m) + 1;
	return 0;
}

/* HMAC-@md of @m under @k into @out (EVP_MAX_MD_SIZE bytes).  Returns
 * the MAC's length, or 0 when the digest is unavailable (FIPS mode). */
static unsigned mac(const EVP_MD *md, const struct lst_key *k,
		    const unsigned char *m, size_t n, unsigned char *out)
{
	unsigned len = 0;
	if (!HMAC(md, k->key, (int)k->len, m, n, out, &len))
		return 0;
	return len;
}

/* Point the connection's timeout at what is left of @d. */
static int arm(mproc_conn *c, const struct mproc__deadline *d)
{
	if (d->forever)
		return mproc_conn_set_timeout(c, MPROC_FOREVER);
	int64_t left = mproc__deadline_left(d);
	if (left <= 0)
		return -ECONNABORTED;
	return mproc_conn_set_timeout(c, left);
}

/* A stalled, closed or broken peer mid-handshake. */
static int io_error(ssize_t rc)
{
	switch (rc) {
	case -ETIMEDOUT:
	case -EAGAIN:
	case -MPROC_EEOF:
	case -EPIPE:
		return -ECONNABORTED;
	case -EMSGSIZE: /* longer than any handshake message */
		return -EPROTO;
	default:
		return (int)rc;
	}
}

static int send_msg(mproc_conn *c, const struct mproc__deadline *d,
		    const void *m, size_t n, const int *fds, int nfds)
{
	int rc = arm(c, d);
	if (rc)
		return rc;
	ssize_t s = nfds ? mproc__fdconn_send_fds(c, m, n, fds, nfds)
			 : mproc_conn_send_bytes(c, m, n);
	return s < 0 ? io_error(s) : 0;
}

/* Receive one handshake message (at most MSG_MAX bytes) into @buf. */
static ssize_t recv_msg(mproc_conn *c, const struct mproc__deadline *d,
			unsigned char *buf)
{
	int rc = arm(c, d);
	if (rc)
		return rc;
	ssize_t n = mproc_conn_recv_bytes_into(c, buf, MSG_MAX);
	return n < 0 ? io_error(n) : n;
}

static bool equals(const unsigned char *m, size_t n, const char *s)
{
	return n == strlen(s) && memcmp(m, s, n) == 0;
}

/* Does @resp answer @chal (the challenge without "#CHALLENGE#")?
 * Returns 0, -MPROC_EAUTH (a wrong MAC), -EPROTO (not a response). */
static int verify(const struct lst_key *k, const unsigned char *chal,
		  size_t chal_len, const unsigned char *resp, size_t n)
{
	const EVP_MD *md;
	size_t tag;
	if (split_tag(resp, n, &md, &tag))
		return -EPROTO;
	if (!md)
		md = EVP_md5();
	unsigned char want[EVP_MAX_MD_SIZE];
	unsigned wl = mac(md, k, chal, chal_len, want);
	if (!wl)
		return -EPROTO;
	if (n - tag != wl)
		return -MPROC_EAUTH;
	return CRYPTO_memcmp(want, resp + tag, wl) == 0 ? 0 : -MPROC_EAUTH;
}

/* Take up an offered pipe end: exactly OFFER_NFDS descriptors came. */
static void take_offer(mproc_conn *c, struct lst_offer_in *in)
{
	int fds[MPROC__FDCONN_MAX_FDS];
	int n = mproc__fdconn_taken_fds(c, fds);
	if (n == OFFER_NFDS && mproc__offer_take(fds, &in->conn) == 0)
		return;
	in->conn = NULL;
	for (int i = 0; i < n; i++)
		close(fds[i]);
}

int mproc__lst_deliver(mproc_conn *c, const struct lst_key *k,
		       const struct mproc__deadline *d, struct lst_offer_in *in)
{
	static const char tag[] = "{sha256}";
	unsigned char msg[sizeof(CHALLENGE) - 1 + sizeof(tag) - 1 + RANDOM_LEN];
	size_t pre = sizeof(CHALLENGE) - 1;
	memcpy(msg, CHALLENGE, pre);
	memcpy(msg + pre, tag, sizeof(tag) - 1);
	unsigned char *rnd = msg + pre + sizeof(tag) - 1;
	if (RAND_bytes(rnd, RANDOM_LEN) != 1)
		return -EIO;
	int rc = send_msg(c, d, msg, sizeof(msg), NULL, 0);
	if (rc)
		return rc;
	unsigned char resp[MSG_MAX];
	if (in) {
		in->conn = NULL;
		mproc__fdconn_take_fds(c, in->want);
	}
	ssize_t n = recv_msg(c, d, resp);
	if (n < 0) {
		if (in)
			mproc__fdconn_take_fds(c, false);
		return (int)n;
	}
	rc = verify(k, msg + pre, sizeof(msg) - pre, resp, (size_t)n);
	if (in) {
		if (rc == 0)
			take_offer(c, in);
		mproc__fdconn_take_fds(c, false); /* closes any left */
	}
	if (rc) {
		/* Best effort, as Python: the peer learns why we hang up. */
		send_msg(c, d, FAILURE, sizeof(FAILURE) - 1, NULL, 0);
		return rc;
	}
	const char *verdict = in && in->conn ? WELCOME_SHM : WELCOME;
	rc = send_msg(c, d, verdict, strlen(verdict), NULL, 0);
	if (rc && in && in->conn) {
		mproc_conn_free(in->conn);
		in->conn = NULL;
	}
	return rc;
}

int mproc__lst_answer(mproc_conn *c, const struct lst_key *k,
		      const struct mproc__deadline *d, const int *offer,
		      bool *taken)
{
	if (taken)
		*taken = false;
	unsigned char msg[MSG_MAX];
	ssize_t n = recv_msg(c, d, msg);
	if (n < 0)
		return (int)n;
	size_t pre = sizeof(CHALLENGE) - 1;
	if ((size_t)n < pre + LEGACY_CHALLENGE || memcmp(msg, CHALLENGE, pre))
		return -EPROTO;
	const unsigned char *chal = msg + pre;
	size_t chal_len = (size_t)n - pre;
	const EVP_MD *md;
	size_t tag;
	if (split_tag(chal, chal_len, &md, &tag))
		return -EPROTO;
	/* The MAC covers the whole challenge, its tag included; the
	 * response carries the same tag (none for a legacy challenge). */
	unsigned char resp[1 + 8 + 1 + EVP_MAX_MD_SIZE];
	memcpy(resp, chal, tag);
	unsigned ml = mac(md ? md : EVP_md5(), k, chal, chal_len, resp + tag);
	if (!ml)
		return -EPROTO;
	int rc = send_msg(c, d, resp, tag + ml, offer, offer ? OFFER_NFDS : 0);
	if (rc)
		return rc;
	n = recv_msg(c, d, msg);
	if (n < 0)
		return (int)n;
	if (equals(msg, (size_t)n, WELCOME))
		return 0;
	if (offer && equals(msg, (size_t)n, WELCOME_SHM)) {
		*taken = true;
		return 0;
	}
	return equals(msg, (size_t)n, FAILURE) ? -MPROC_EAUTH : -EPROTO;
}
