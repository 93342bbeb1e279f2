/*
 * Pipe life cycle: creating the segment and its eventfds, attaching a
 * connection to one end, export/import for spawn and forkserver children,
 * ownership of ends across fork, the peer liveness check, and close.
 * conn.h describes the segment layout; pipe.h the rules users see.
 *
 * Ownership in brief.  pipe_end_ctl.owner names the last process that used
 * an end (mproc__conn_claim runs at the start of every call).  Each handle
 * remembers which process last used it (used_by: after a fork the child's
 * copy still names the parent, so "not used here"), and which process
 * created it and in which fork generation (a counter bumped before every
 * fork(3) by an atfork handler).  Close is for good only when this
 * process owns the end and either used it or made it and never handed it
 * on; otherwise it releases the handle, and hands ownership over (owner =
 * 0) if it still held it, so that the liveness check does not watch a
 * process that no longer cares about the end.
 */
#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "pipe/conn.h"
#include "pipe/inspect.h"
#include "pipe/offer.h"
#include "common/bits.h"
#include "common/clock.h"
#include "common/fdreg.h"
#include "common/fork.h"
#include "common/os.h"
#include "common/parse.h"


#define DEFAULT_CAPACITY ((uint64_t)1 << 20)
#define TOKEN_PREFIX "mproc-conn:"

void mproc__conn_claim(mproc_conn *c)
{
	int self = mproc__self_pid();
	/* Relaxed: used_by is private to this process (atomic only because
	 * the sending and receiving threads may both store it). */
	if (atomic_load_explicit(&c->used_by, memory_order_relaxed) != self) {
		atomic_store_explicit(&c->used_by, self, memory_order_relaxed);
		atomic_store_explicit(&c->res->used_pid[c->end], self,
				      memory_order_relaxed);
	}
	_Atomic uint32_t *owner = &c->ctl->end[c->end].owner;
	/* Relaxed: a liveness hint for the peer, which reads it only when it
	 * has waited in vain; anything we publish afterwards (release) makes
	 * the new value visible to a peer that sees the data. */
	if (atomic_load_explicit(owner, memory_order_relaxed) != (uint32_t)self)
		atomic_store_explicit(owner, (uint32_t)self,
				      memory_order_relaxed);
}

/* ------------------------------------------------------------------ */
/* Liveness                                                            */

/* The peer's owner died: record it and close the rings on its behalf so
 * that every later call (ours, or another holder's) sees it at once, and
 * wake an armed fileno. */
static void mark_dead(mproc_conn *c)
{
	int peer = 1 - c->end;
	uint32_t open = END_OPEN;
	/* Release: pairs with the acquire loads of state that turn
	 * -MPROC_EEOF/-EPIPE into -MPROC_EPEERDIED. */
	atomic_compare_exchange_strong_explicit(&c->ctl->end[peer].state, &open,
						END_DIED, memory_order_release,
						memory_order_relaxed);
	if (c->can_tx)
		mproc__ring_close(&c->tx, MPROC__RING_RD_CLOSED);
	if (c->can_rx) {
		mproc__ring_close(&c->rx, MPROC__RING_WR_CLOSED);
		if (mproc__note_armed(c))
			mproc__note_force(c->ctl, c->end, c->res->efd[c->end]);
	}
}

int mproc__conn_peer_alive(void *arg)
{
	mproc_conn *c = arg;
	struct pipe_end_ctl *p = &c->ctl->end[1 - c->end];
	/* Acquire: pairs with the release in mark_dead by another holder. */
	uint32_t st = atomic_load_explicit(&p->state, memory_order_acquire);
	if (st == END_DIED)
		return -MPROC_EPEERDIED;
	/* Relaxed: see mproc__conn_claim. */
	uint32_t o = atomic_load_explicit(&p->owner, memory_order_relaxed);
	int self = mproc__self_pid();
	if (st == END_CLOSED) {
		/* The rings carry the close -- unless its owner was killed
		 * inside close_for_good, after the state and before the
		 * rings.  Then close them on its behalf: mark_dead's CAS
		 * leaves the state CLOSED, so we still end with -MPROC_EEOF
		 * after draining what it sent, as the close meant. */
		if (o != 0 && o != (uint32_t)self &&
		    mproc__pid_exited((pid_t)o) &&
		    atomic_load_explicit(&p->owner, memory_order_relaxed) == o)
			mark_dead(c);
		return 0;
	}
	/* An upgraded end (offer.c) also watches the process at the other
	 * end of its handshake socket while the peer end is that process's:
	 * the socket hanging up without a close of the end means it died,
	 * whatever has become of its pid since.  (An end handed on to
	 * another process is watched by pid alone: the socket may close
	 * with the process that handed it on.)  Acquire, after the poll:
	 * pairs with the release CAS of close_for_good, which the peer
	 * makes before its close(2) of the socket, so a close for good is
	 * never taken for a death. */
	if (c->sock >= 0 && o == (uint32_t)c->sock_pid &&
	    o != (uint32_t)self && mproc__offer_sock_gone(c) &&
	    atomic_load_explicit(&p->state, memory_order_acquire) == END_OPEN) {
		mark_dead(c);
		return -MPROC_EPEERDIED;
	}
	if (o == 0 || o == (uint32_t)self)
		return 0; /* handed over (nobody to watch yet), or ourselves */
	/* We hold the peer end too and have used it: it is ours to use
	 * again, whoever used it last.  Relaxed: private to this process. */
	if (atomic_load_explicit(&c->res->used_pid[1 - c->end],
				 memory_order_relaxed) == self)
		return 0;
	if (!mproc__pid_exited((pid_t)o))
		return 0;
	/* Another process may have claimed the end meanwhile. */
	if (atomic_load_explicit(&p->owner, memory_order_relaxed) != o)
		return 0;
	mark_dead(c);
	return -MPROC_EPEERDIED;
}

int mproc__conn_peer_check_rl(mproc_conn *c, int64_t *next_check)
{
	int64_t now = mproc__coarse_now_ns();
	if (now < *next_check)
		return 0;
	*next_check = now + MPROC__WAIT_SLICE_NS;
	return mproc__conn_peer_alive(c);
}

int mproc__conn_begin(mproc_conn *c, bool rx)
{
	if (!c)
		return -EINVAL;
	if (c->closed)
		return -EBADF;
	if (rx ? !c->can_rx : !c->can_tx)
		return -EPERM;
	/* Relaxed: another holder closing this end for good is not ordered
	 * with our call anyway; seeing it one call late is the same. */
	if (atomic_load_explicit(&c->ctl->end[c->end].state,
				 memory_order_relaxed) != END_OPEN)
		return -EBADF;
	mproc__conn_claim(c);
	return 0;
}

/* ------------------------------------------------------------------ */
/* Geometry                                                            */

static uint64_t ring0_off(void)
{
	return (sizeof(struct pipe_ctl) + MPROC_CACHELINE - 1) &
	       ~(uint64_t)(MPROC_CACHELINE - 1);
}

/* Bytes of data area for a pipe; fills the geometry words. */
static uint64_t plan(uint64_t cap, bool duplex,
		     uint64_t geom[MPROC_SHM_GEOM_WORDS])
{
	uint64_t ring = mproc__ring_shared_size(MPROC__RING_SPSC) + cap;
	memset(geom, 0, MPROC_SHM_GEOM_WORDS * sizeof(uint64_t));
	geom[GEOM_DUPLEX] = duplex;
	geom[GEOM_CAP] = cap;
	geom[GEOM_RING0] = ring0_off();
	geom[GEOM_RING1] = duplex ? ring0_off() + ring : 0;
	return ring0_off() + (duplex ? 2 : 1) * ring;
}

/* What an import token says about the end (NULL: nothing to check). */
struct import_want {
	int end;
	bool rx, tx; /* the token names a receiving / sending eventfd */
};

/* The kind-specific check run by mproc_shm_import (shm.h); on import,
 * also that the token's eventfds fit the pipe's direction (@ctx, a
 * struct import_want; NULL elsewhere). */
int mproc__pipe_validate_geom(const uint64_t g[MPROC_SHM_GEOM_WORDS],
			      uint64_t data_size, void *ctx)
{
	const struct import_want *w = ctx;
	uint64_t cap = g[GEOM_CAP];
	if (g[GEOM_DUPLEX] > 1 || !mproc__is_pow2(cap) ||
	    cap < MPROC_PIPE_MIN_CAPACITY || cap > MPROC_PIPE_MAX_CAPACITY)
		return -MPROC_ECORRUPT;
	uint64_t want[MPROC_SHM_GEOM_WORDS];
	uint64_t need = plan(cap, g[GEOM_DUPLEX], want);
	if (memcmp(want, g, sizeof(want)) != 0 || data_size < need)
		return -MPROC_ECORRUPT;
	if (w && (w->rx != (g[GEOM_DUPLEX] || w->end == 0) ||
		  w->tx != (g[GEOM_DUPLEX] || w->end == 1)))
		return -EINVAL;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Per-process resources                                               */

static void res_put(struct pipe_res *res)
{
	/* AcqRel: the last handle to go frees what the others used. */
	if (atomic_fetch_sub_explicit(&res->refs, 1, memory_order_acq_rel) != 1)
		return;
	for (int k = 0; k < 2; k++) {
		if (res->efd[k] >= 0) {
			mproc__fdreg_remove(res->efd[k]);
			close(res->efd[k]);
		}
	}
	mproc_shm_free(res->seg);
	free(res);
}

/* The geometry of each ring of a pipe of @cap bytes per direction:
 * messages up to the largest record (longer ones stream, conn.h). */
static int ring_geom(uint64_t cap, struct mproc__ring_geom *rg)
{
	return mproc__ring_plan(MPROC__RING_SPSC, cap, 0, 0, rg);
}

/* Attach @r to ring @k of a validated pipe segment. */
static int ring_attach(struct mproc__ring *r, unsigned char *data,
		       const uint64_t *g, int k)
{
	struct mproc__ring_geom rg;
	unsigned char *sh = data + g[GEOM_RING0 + k];
	if (ring_geom(g[GEOM_CAP], &rg))
		return -MPROC_ECORRUPT;
	return mproc__ring_attach(r, MPROC__RING_SPSC, sh,
				  sh + mproc__ring_shared_size(MPROC__RING_SPSC),
				  &rg, false);
}

/* Point @c at end @end of the segment in @res. */
static int attach(mproc_conn *c, struct pipe_res *res, int end)
{
	const uint64_t *g = mproc_shm_geom(res->seg);
	unsigned char *data = mproc_shm_data(res->seg);
	bool duplex = g[GEOM_DUPLEX];
	uint64_t cap = g[GEOM_CAP];
	c->res = res;
	c->ctl = (struct pipe_ctl *)data;
	c->end = end;
	c->can_rx = duplex || end == 0;
	c->can_tx = duplex || end == 1;
	c->timeout_ns = MPROC_FOREVER;
	/* A fragment is an eighth of the ring: several are in flight at
	 * once, so sender and receiver copy in parallel. */
	c->frag = cap / 8;
	int rc;
	if (c->can_rx && (rc = ring_attach(&c->rx, data, g, end)) != 0)
		return rc;
	if (c->can_tx && (rc = ring_attach(&c->tx, data, g, 1 - end)) != 0)
		return rc;
	c->created_by = mproc__self_pid();
	c->created_gen = mproc__fork_gen();
	c->sock = -1;
	return 0;
}

MPROC_API void mproc_pipe_attr_init(struct mproc_pipe_attr *attr)
{
	if (attr)
		memset(attr, 0, sizeof(*attr));
}

static int make_eventfd(int *out)
{
	int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (fd < 0)
		return -errno;
	int rc = mproc__fdreg_add(fd);
	if (rc) {
		close(fd);
		return rc;
	}
	*out = fd;
	return 0;
}

MPROC_API int mproc_pipe(bool duplex, const struct mproc_pipe_attr *attr,
			 mproc_conn **a, mproc_conn **b)
{
	if (!a || !b || a == b)
		return -EINVAL;
	*a = *b = NULL;
	struct mproc_pipe_attr defaults;
	if (!attr) {
		mproc_pipe_attr_init(&defaults);
		attr = &defaults;
	}
	if ((attr->flags & ~(unsigned)MPROC_PIPE_BUSY_POLL) ||
	    attr->capacity > MPROC_PIPE_MAX_CAPACITY)
		return -EINVAL;

	uint64_t want = attr->capacity ? attr->capacity : DEFAULT_CAPACITY;
	uint64_t cap = want < MPROC_PIPE_MIN_CAPACITY
			       ? MPROC_PIPE_MIN_CAPACITY
			       : mproc__pow2_ceil(want);
	uint64_t geom[MPROC_SHM_GEOM_WORDS];
	uint64_t size = plan(cap, duplex, geom);

	struct pipe_res *res = calloc(1, sizeof(*res));
	mproc_conn *ca = calloc(1, sizeof(*ca));
	mproc_conn *cb = calloc(1, sizeof(*cb));
	int rc = -ENOMEM;
	if (!res || !ca || !cb)
		goto fail_mem;
	res->efd[0] = res->efd[1] = -1;
	rc = mproc_shm_create(NULL, MPROC_SHM_KIND_PIPE, geom, size, 0,
			      &res->seg);
	if (rc)
		goto fail_mem;
	for (int k = 0; k < (duplex ? 2 : 1); k++)
		if ((rc = make_eventfd(&res->efd[k])) != 0)
			goto fail;

	unsigned char *data = mproc_shm_data(res->seg);
	struct pipe_ctl *ctl = (struct pipe_ctl *)data;
	/* Plain initialisation: nobody else can see the segment before the
	 * release store of its magic in mproc_shm_publish. */
	for (int e = 0; e < 2; e++) {
		atomic_init(&ctl->end[e].owner, (uint32_t)mproc__self_pid());
		atomic_init(&ctl->end[e].state, END_OPEN);
		atomic_init(&ctl->note[e].armed, 0);
		atomic_init(&ctl->note[e].sig, SIG_IDLE);
	}
	struct mproc__ring_geom rg;
	if ((rc = ring_geom(cap, &rg)) != 0)
		goto fail;
	for (int k = 0; k < (duplex ? 2 : 1); k++) {
		unsigned char *sh = data + geom[GEOM_RING0 + k];
		mproc__ring_init_shared(
			MPROC__RING_SPSC, sh,
			sh + mproc__ring_shared_size(MPROC__RING_SPSC), &rg,
			attr->initial_index);
	}
	if ((rc = mproc_shm_publish(res->seg)) != 0)
		goto fail;
	atomic_init(&res->refs, 2);
	atomic_init(&res->used_pid[0], 0);
	atomic_init(&res->used_pid[1], 0);
	if ((rc = attach(ca, res, 0)) != 0 || (rc = attach(cb, res, 1)) != 0)
		goto fail;
	bool busy = attr->flags & MPROC_PIPE_BUSY_POLL;
	mproc_conn_set_busy_poll(ca, busy);
	mproc_conn_set_busy_poll(cb, busy);
	*a = ca;
	*b = cb;
	return 0;

fail:
	for (int k = 0; k < 2; k++) {
		if (res->efd[k] >= 0) {
			mproc__fdreg_remove(res->efd[k]);
			close(res->efd[k]);
		}
	}
	mproc_shm_free(res->seg);
fail_mem:
	free(res);
	free(ca);
	free(cb);
	return rc;
}

/* ------------------------------------------------------------------ */
/* Settings                                                            */

MPROC_API int mproc_conn_set_timeout(mproc_conn *c, int64_t timeout_ns)
{
	if (!c || timeout_ns < -1)
		return -EINVAL;
	if (c->closed)
		return -EBADF;
	c->timeout_ns = timeout_ns;
	return 0;
}

MPROC_API int mproc_conn_set_busy_poll(mproc_conn *c, bool on)
{
	if (!c)
		return -EINVAL;
	if (c->closed)
		return -EBADF;
	if (c->ops)
		return 0; /* a descriptor connection waits in poll(2) */
	if (c->can_rx)
		mproc__ring_set_busy_poll(&c->rx, on);
	if (c->can_tx)
		mproc__ring_set_busy_poll(&c->tx, on);
	return 0;
}

MPROC_API int mproc_conn_readable(const mproc_conn *c)
{
	if (!c)
		return -EINVAL;
	return c->closed ? -EBADF : c->can_rx;
}

MPROC_API int mproc_conn_writable(const mproc_conn *c)
{
	if (!c)
		return -EINVAL;
	return c->closed ? -EBADF : c->can_tx;
}

/* ------------------------------------------------------------------ */
/* Export / import                                                     */

int mproc__conn_set_cloexec(int fd, bool on)
{
	int fl = fcntl(fd, F_GETFD);
	if (fl < 0)
		return -errno;
	fl = on ? fl | FD_CLOEXEC : fl & ~FD_CLOEXEC;
	return fcntl(fd, F_SETFD, fl) < 0 ? -errno : 0;
}

MPROC_API int mproc_conn_export(mproc_conn *c, char *buf, size_t len)
{
	if (c && c->ops)
		return c->ops->export(c, buf, len);
	if (!c || !buf)
		return -EINVAL;
	if (c->closed)
		return -EBADF;
	int rx_fd = c->can_rx ? c->res->efd[c->end] : -1;
	int tx_fd = c->can_tx ? c->res->efd[1 - c->end] : -1;
	char tmp[MPROC_CONN_TOKEN_MAX];
	int n = snprintf(tmp, sizeof(tmp), TOKEN_PREFIX "%d:%d:%d:", c->end,
			 rx_fd, tx_fd);
	if (n < 0 || (size_t)n >= sizeof(tmp))
		return -ENOSPC;
	int m = mproc_shm_export(c->res->seg, tmp + n, sizeof(tmp) - (size_t)n);
	if (m < 0)
		return m;
	if ((size_t)(n + m) >= len)
		return -ENOSPC;
	int rc;
	if ((rx_fd >= 0 && (rc = mproc__conn_set_cloexec(rx_fd, false)) != 0) ||
	    (tx_fd >= 0 && (rc = mproc__conn_set_cloexec(tx_fd, false)) != 0))
		return rc;
	c->exported = true;
	/* Uses before the export do not count: only one after it makes the
	 * end this process's again (close for good, take-over).  Relaxed:
	 * private to this process, as in mproc__conn_claim. */
	atomic_store_explicit(&c->used_by, 0, memory_order_relaxed);
	atomic_store_explicit(&c->res->used_pid[c->end], 0,
			      memory_order_relaxed);
	memcpy(buf, tmp, (size_t)(n + m) + 1);
	return n + m;
}

/* An imported descriptor must be an eventfd: we write 8-byte counts into
 * it, which would corrupt a file or a socket handed over by mistake. */
static int check_eventfd(int fd)
{
	if (fcntl(fd, F_GETFD) < 0)
		return -EBADF;
	char path[64], link[64];
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	ssize_t n = readlink(path, link, sizeof(link) - 1);
	if (n < 0)
		return 0; /* no /proc: trust the token */
	link[n] = '\0';
	return strcmp(link, "anon_inode:[eventfd]") == 0 ? 0 : -EINVAL;
}

/* Read "-1" or a decimal 0..INT_MAX followed by ':' at *@p and advance
 * past the ':' (strict: see common/parse.h). */
static int parse_field(const char **p, int *out)
{
	const char *s = *p;
	uint64_t v;
	if (s[0] == '-' && s[1] == '1' && s[2] == ':') {
		*out = -1;
		*p = s + 3;
		return 0;
	}
	if (mproc__parse_u64(&s, INT_MAX, &v) || *s != ':')
		return -EINVAL;
	*out = (int)v;
	*p = s + 1;
	return 0;
}

/* The segment's descriptor in a shm token ("mproc-shm:FD:SIZE", shm.h);
 * *@rest points at ":SIZE" after it. */
static int shm_token_fd(const char *tok, int *fd, const char **rest)
{
	static const char prefix[] = "mproc-shm:";
	uint64_t v;
	if (strncmp(tok, prefix, sizeof(prefix) - 1) != 0)
		return -EINVAL;
	tok += sizeof(prefix) - 1;
	if (mproc__parse_u64(&tok, INT_MAX, &v) || *tok != ':')
		return -EINVAL;
	*fd = (int)v;
	*rest = tok;
	return 0;
}

/* Register the eventfds of an imported end; all or none. */
static int import_eventfds(struct pipe_res *res)
{
	for (int k = 0; k < 2; k++) {
		int rc;
		if (res->efd[k] >= 0 && (rc = mproc__fdreg_add(res->efd[k])) != 0) {
			if (k == 1 && res->efd[0] >= 0)
				mproc__fdreg_remove(res->efd[0]);
			return rc;
		}
	}
	return 0;
}

MPROC_API int mproc_conn_import(const char *token, mproc_conn **out)
{
	if (!token || !out)
		return -EINVAL;
	*out = NULL;
	if (strncmp(token, MPROC__FDCONN_TOKEN_PREFIX,
		    strlen(MPROC__FDCONN_TOKEN_PREFIX)) == 0)
		return mproc__fdconn_import(token, out);
	int end, rx_fd, tx_fd, sfd;
	const char *shm_token = token + strlen(TOKEN_PREFIX), *size_part;
	if (strncmp(token, TOKEN_PREFIX, strlen(TOKEN_PREFIX)) != 0 ||
	    parse_field(&shm_token, &end) || parse_field(&shm_token, &rx_fd) ||
	    parse_field(&shm_token, &tx_fd) || (end != 0 && end != 1) ||
	    (rx_fd < 0 && tx_fd < 0) || rx_fd == tx_fd ||
	    shm_token_fd(shm_token, &sfd, &size_part))
		return -EINVAL;
	int rc;
	if ((rx_fd >= 0 && (rc = check_eventfd(rx_fd)) != 0) ||
	    (tx_fd >= 0 && (rc = check_eventfd(tx_fd)) != 0))
		return rc;
	/* Map the segment through a duplicate of its descriptor, so that a
	 * failure at any step below closes only what we made and leaves
	 * every descriptor of the token as it was (pipe.h). */
	if (fcntl(sfd, F_GETFD) < 0)
		return -EBADF;
	int dfd = fcntl(sfd, F_DUPFD_CLOEXEC, 0);
	if (dfd < 0)
		return -errno;
	char dup_token[MPROC_SHM_TOKEN_MAX];
	int n = snprintf(dup_token, sizeof(dup_token), "mproc-shm:%d%s", dfd,
			 size_part);
	struct pipe_res *res = calloc(1, sizeof(*res));
	mproc_conn *c = calloc(1, sizeof(*c));
	struct import_want want = { end, rx_fd >= 0, tx_fd >= 0 };
	rc = !res || !c ? -ENOMEM
	     : n < 0 || (size_t)n >= sizeof(dup_token)
		     ? -EINVAL
		     : mproc_shm_import(dup_token, MPROC_SHM_KIND_PIPE,
					mproc__pipe_validate_geom, &want,
					&res->seg);
	if (rc) {
		close(dfd);
		free(res);
		free(c);
		return rc;
	}
	res->efd[0] = res->efd[1] = -1;
	atomic_init(&res->refs, 1);
	atomic_init(&res->used_pid[0], 0);
	atomic_init(&res->used_pid[1], 0);
	if ((rc = attach(c, res, end)) != 0)
		goto fail;
	res->efd[end] = rx_fd;
	res->efd[1 - end] = tx_fd;
	if ((rc = import_eventfds(res)) != 0)
		goto fail;
	/* Nothing fails from here: the descriptors are ours now. */
	for (int k = 0; k < 2; k++)
		if (res->efd[k] >= 0)
			mproc__conn_set_cloexec(res->efd[k], true);
	close(sfd);
	/* Importing is taking the end: this process is its user now. */
	mproc__conn_claim(c);
	*out = c;
	return 0;
fail:
	mproc_shm_free(res->seg); /* closes dfd only */
	free(res);
	free(c);
	return rc;
}

/* ------------------------------------------------------------------ */
/* Close                                                               */

/* Close end for good: the peer drains, then sees the end of the stream. */
static void close_for_good(mproc_conn *c)
{
	uint32_t open = END_OPEN;
	/* Release: pairs with the acquire load of state in
	 * mproc__conn_peer_alive (a closed end is not a dead one). */
	atomic_compare_exchange_strong_explicit(&c->ctl->end[c->end].state,
						&open, END_CLOSED,
						memory_order_release,
						memory_order_relaxed);
	if (c->can_tx) {
		/* E3 of ring/spsc.h, then N1-N4 of notify.c: the close ends
		 * with the fence mproc__note_signal relies on. */
		mproc__ring_close(&c->tx, MPROC__RING_WR_CLOSED);
		mproc__note_signal(c, true);
	}
	if (c->can_rx)
		mproc__ring_close(&c->rx, MPROC__RING_RD_CLOSED);
}

MPROC_API int mproc_conn_close(mproc_conn *c)
{
	if (c && c->ops)
		return c->ops->close(c);
	if (!c)
		return -EINVAL;
	if (c->closed)
		return -EBADF;
	int self = mproc__self_pid();
	struct pipe_end_ctl *me = &c->ctl->end[c->end];
	/* Relaxed: our own claims are program-ordered before this load;
	 * another process's claim racing with our close is a hand-over the
	 * user did not synchronise, and either outcome is allowed. */
	uint32_t owner = atomic_load_explicit(&me->owner, memory_order_relaxed);
	bool used_here = atomic_load_explicit(&c->used_by,
					      memory_order_relaxed) == self;
	bool kept = c->created_by == self && !c->exported &&
		    c->created_gen == mproc__fork_gen();
	bool open = atomic_load_explicit(&me->state, memory_order_relaxed) ==
		    END_OPEN;
	if (owner == (uint32_t)self && open && (used_here || kept)) {
		close_for_good(c);
	} else if (owner == (uint32_t)self) {
		/* Handed over: let the next user claim it; until then the
		 * peer has no process to watch. */
		uint32_t expect = owner;
		atomic_compare_exchange_strong_explicit(&me->owner, &expect, 0,
							memory_order_relaxed,
							memory_order_relaxed);
	}
	free(c->rx_stash);
	c->rx_stash = NULL;
	c->rx_stash_cap = 0;
	c->rx_active = false;
	atomic_store_explicit(&c->res->used_pid[c->end], 0,
			      memory_order_relaxed);
	res_put(c->res);
	c->res = NULL;
	if (c->sock >= 0) {
		/* After close_for_good: the peer that sees the socket hang
		 * up then finds the end closed, not dead. */
		close(c->sock);
		c->sock = -1;
	}
	c->closed = true;
	return 0;
}

MPROC_API int mproc_conn_closed(const mproc_conn *c)
{
	if (!c)
		return -EINVAL;
	if (c->closed)
		return 1;
	if (c->ops)
		return 0;
	/* Relaxed: as in mproc__conn_begin, another holder's close seen one
	 * call late is the same. */
	return atomic_load_explicit(&c->ctl->end[c->end].state,
				    memory_order_relaxed) != END_OPEN;
}

MPROC_API void mproc_conn_free(mproc_conn *c)
{
	if (!c)
		return;
	if (!c->closed)
		mproc_conn_close(c);
	free(c);
}
