/*
 * Start data: everything a fresh image needs to become the child a
 * process object describes (name, identity, daemon flag, authkey; the
 * parent's pid, name and the number of the parent's pidfd; the body as a
 * translated function pointer, the argument bytes, and the descriptor
 * numbers of the shared segments it was given).  The parent
 * writes it into a memfd that the child inherits; a memfd rather than a
 * pipe so that the parent never blocks on a child that is slow to read
 * (or never reads) and never gets SIGPIPE from one that died.  The
 * forkserver sends small start data inside its request instead (the
 * child inherits the server's copy); both go through the same encoder and
 * decoder.
 *
 * The child trusts nothing in it: every length is checked against what is
 * left before it is used, and a malformed blob is a clean error.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/fork.h"
#include "common/os.h"
#include "process/boot.h"
#include "common/fnref.h"
#include "process/method.h"

#define BOOT_MAGIC UINT64_C(0x31544f4f42435052) /* "RPCBOOT1" */
#define BOOT_END UINT64_C(0x444e45544f4f4250)   /* "PBOOTEND" */
#define BOOT_VERSION 2u
#define FLAG_DAEMON 1u
#define FLAG_OPS 2u
/* Generous bounds that a real blob never reaches; they only keep a bad
 * blob from asking for absurd allocations. */
#define MAX_STRING 65536u
#define MAX_FDS (1u << 20)

struct wbuf {
	uint8_t *p;
	size_t len, cap;
	int err;
};

static void put(struct wbuf *w, const void *src, size_t n)
{
	if (w->err)
		return;
	if (n > SIZE_MAX - w->len) {
		w->err = -ENOMEM;
		return;
	}
	if (w->len + n > w->cap) {
		size_t cap = w->cap ? w->cap : 256;
		while (cap < w->len + n)
			cap = cap > SIZE_MAX / 2 ? w->len + n : cap * 2;
		uint8_t *q = realloc(w->p, cap);
		if (!q) {
			w->err = -ENOMEM;
			return;
		}
		w->p = q;
		w->cap = cap;
	}
	if (n)
		memcpy(w->p + w->len, src, n);
	w->len += n;
}

static void put_u32(struct wbuf *w, uint32_t v) { put(w, &v, sizeof(v)); }
static void put_u64(struct wbuf *w, uint64_t v) { put(w, &v, sizeof(v)); }

static void put_str(struct wbuf *w, const char *s)
{
	size_t n = s ? strlen(s) : 0;
	if (n > MAX_STRING) {
		w->err = -EINVAL;
		return;
	}
	put_u32(w, (uint32_t)n);
	put(w, s, n);
}

int mproc__proc_boot_encode(const mproc_process *p, const int *fds,
			    size_t nfds, uint8_t **out, size_t *out_len)
{
	struct mproc__fnref ref;
	const void *body = p->run ? (const void *)(uintptr_t)p->run
				  : (const void *)(uintptr_t)p->target;
	int rc = mproc__fnref_encode(body, &ref);
	if (rc)
		return rc;

	struct wbuf w = { 0 };
	put_u64(&w, BOOT_MAGIC);
	put_u32(&w, BOOT_VERSION);
	put_u32(&w, (p->daemon ? FLAG_DAEMON : 0) | (p->run ? FLAG_OPS : 0));
	put_u32(&w, (uint32_t)mproc__self_pid());
	put_str(&w, mproc_current_process_name());
	put_u32(&w, (uint32_t)p->starter_pidfd);
	put_u32(&w, p->method->id);
	put(&w, p->authkey, sizeof(p->authkey));
	put_str(&w, p->name);
	put_u32(&w, p->identity_len);
	put(&w, p->identity, p->identity_len * sizeof(p->identity[0]));
	put_str(&w, p->type_name);
	put_u32(&w, ref.is_main);
	put_str(&w, ref.path);
	put_u64(&w, ref.offset);
	put_u32(&w, ref.build_id_len);
	put(&w, ref.build_id, ref.build_id_len);
	put_str(&w, ref.symbol);
	put_u64(&w, p->len);
	put(&w, p->arg, p->len);
	put_u32(&w, (uint32_t)nfds);
	for (size_t i = 0; i < nfds; i++)
		put_u32(&w, (uint32_t)fds[i]);
	put_u64(&w, BOOT_END);
	mproc__fnref_clear(&ref);
	if (w.err) {
		free(w.p);
		return w.err;
	}
	*out = w.p;
	*out_len = w.len;
	return 0;
}

int mproc__proc_boot_write(const mproc_process *p, const int *fds,
			   size_t nfds)
{
	uint8_t *buf;
	size_t len;
	int rc = mproc__proc_boot_encode(p, fds, nfds, &buf, &len);
	if (rc)
		return rc;
	int fd = mproc__proc_boot_memfd(buf, len);
	free(buf);
	return fd;
}

int mproc__proc_boot_memfd(const uint8_t *buf, size_t len)
{
	int rc = 0;
	int fd = memfd_create("mproc-boot", MFD_CLOEXEC);
	if (fd < 0) {
		rc = -errno;
	} else if ((rc = mproc__write_all(fd, buf, len)) != 0) {
		close(fd);
	}
	return rc ? rc : fd;
}

/* Reader: every get checks the bytes are there; after the first failure
 * all further gets fail too, so the caller checks once at the end. */
struct rbuf {
	const uint8_t *p;
	size_t len, pos;
	bool bad;
};

static const uint8_t *get(struct rbuf *r, size_t n)
{
	if (r->bad || n > r->len - r->pos) {
		r->bad = true;
		return NULL;
	}
	const uint8_t *q = r->p + r->pos;
	r->pos += n;
	return q;
}

static uint32_t get_u32(struct rbuf *r)
{
	uint32_t v = 0;
	const uint8_t *q = get(r, sizeof(v));
	if (q)
		memcpy(&v, q, sizeof(v));
	return v;
}

static uint64_t get_u64(struct rbuf *r)
{
	uint64_t v = 0;
	const uint8_t *q = get(r, sizeof(v));
	if (q)
		memcpy(&v, q, sizeof(v));
	return v;
}

/* A NUL-terminated malloc'd copy; NULL for an empty string. */
static char *get_str(struct rbuf *r, int *err)
{
	uint32_t n = get_u32(r);
	if (n > MAX_STRING) {
		r->bad = true;
		return NULL;
	}
	const uint8_t *q = get(r, n);
	if (!q || n == 0)
		return NULL;
	if (memchr(q, '\0', n)) {
		r->bad = true;
		return NULL;
	}
	char *s = malloc((size_t)n + 1);
	if (!s) {
		*err = -ENOMEM;
		r->bad = true;
		return NULL;
	}
	memcpy(s, q, n);
	s[n] = '\0';
	return s;
}

/* The whole blob, from the start whatever the shared file offset (the
 * parent's writes left it at the end). */
static int read_file(int fd, uint8_t **out, size_t *len)
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		return -errno;
	if (st.st_size <= 0 || (uint64_t)st.st_size > SIZE_MAX / 2)
		return -EPROTO;
	if (lseek(fd, 0, SEEK_SET) < 0)
		return -errno;
	size_t n = (size_t)st.st_size;
	uint8_t *buf = malloc(n);
	if (!buf)
		return -ENOMEM;
	int rc = mproc__read_all(fd, buf, n);
	if (rc) {
		free(buf);
		return rc == -EPIPE ? -EPROTO : rc; /* shorter than it said */
	}
	*out = buf;
	*len = n;
	return 0;
}

int mproc__proc_boot_read(int fd, const struct mproc__proc_method *method,
			  mproc_process **self_out,
			  struct mproc__proc_parent *parent,
			  int **fds_out, size_t *nfds_out, char *why,
			  size_t why_len)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	int rc = read_file(fd, &buf, &len);
	if (rc) {
		snprintf(why, why_len, "cannot read the start data: %s",
			 mproc_strerror(rc));
		return rc;
	}
	rc = mproc__proc_boot_decode(buf, len, method, self_out, parent,
				     fds_out, nfds_out, why, why_len);
	free(buf);
	return rc;
}

int mproc__proc_boot_decode(const uint8_t *buf, size_t len,
			    const struct mproc__proc_method *method,
			    mproc_process **self_out,
			    struct mproc__proc_parent *parent, int **fds_out,
			    size_t *nfds_out, char *why, size_t why_len)
{
	int rc;
	mproc_process *p = mproc__proc_alloc();
	struct mproc__fnref ref = { 0 };
	int *fds = NULL;
	int err = 0;
	if (!p)
		return -ENOMEM;
	struct rbuf r = { buf, len, 0, false };
	if (get_u64(&r) != BOOT_MAGIC || get_u32(&r) != BOOT_VERSION)
		r.bad = true;
	uint32_t flags = get_u32(&r);
	parent->pid = (pid_t)get_u32(&r);
	parent->name = get_str(&r, &err);
	parent->pidfd = (int)get_u32(&r);
	if (get_u32(&r) != method->id)
		r.bad = true;
	p->method = method;
	const uint8_t *key = get(&r, sizeof(p->authkey));
	if (key)
		memcpy(p->authkey, key, sizeof(p->authkey));
	p->name = get_str(&r, &err);
	p->identity_len = get_u32(&r);
	if (p->identity_len > MPROC__PROC_IDENTITY_MAX)
		r.bad = true;
	const uint8_t *ids = get(&r, (size_t)p->identity_len * sizeof(uint32_t));
	if (ids)
		memcpy(p->identity, ids, (size_t)p->identity_len * sizeof(uint32_t));
	p->type_name = get_str(&r, &err);
	ref.is_main = get_u32(&r) != 0;
	ref.path = get_str(&r, &err);
	ref.offset = get_u64(&r);
	ref.build_id_len = get_u32(&r);
	if (ref.build_id_len > sizeof(ref.build_id))
		r.bad = true;
	const uint8_t *bid = get(&r, ref.build_id_len);
	if (bid)
		memcpy(ref.build_id, bid, ref.build_id_len);
	ref.symbol = get_str(&r, &err);
	uint64_t arg_len = get_u64(&r);
	const uint8_t *arg = NULL;
	if (arg_len > len)
		r.bad = true;
	else
		arg = get(&r, (size_t)arg_len);
	uint32_t nfds = get_u32(&r);
	if (nfds > MAX_FDS)
		r.bad = true;
	const uint8_t *fdbytes = get(&r, (size_t)nfds * sizeof(uint32_t));
	if (get_u64(&r) != BOOT_END || r.pos != r.len)
		r.bad = true;
	if (r.bad || !p->name) {
		rc = err ? err : -EPROTO;
		snprintf(why, why_len, "malformed start data");
		goto fail;
	}
	p->daemon = flags & FLAG_DAEMON;
	if (arg_len) {
		p->arg = malloc((size_t)arg_len);
		if (!p->arg) {
			rc = -ENOMEM;
			goto fail;
		}
		memcpy(p->arg, arg, (size_t)arg_len);
		p->len = (size_t)arg_len;
	}
	fds = malloc(((size_t)nfds + 1) * sizeof(*fds));
	if (!fds) {
		rc = -ENOMEM;
		goto fail;
	}
	for (uint32_t i = 0; i < nfds; i++) {
		uint32_t v;
		memcpy(&v, fdbytes + (size_t)i * sizeof(v), sizeof(v));
		fds[i] = (int)v;
	}
	void *body;
	rc = mproc__fnref_resolve(&ref, &body, why, why_len);
	if (rc)
		goto fail;
	if (flags & FLAG_OPS)
		p->run = (int (*)(mproc_process *, void *, size_t))(uintptr_t)body;
	else
		p->target = (mproc_target_fn)(uintptr_t)body;
	mproc__fnref_clear(&ref);
	*self_out = p;
	*fds_out = fds;
	*nfds_out = nfds;
	return 0;
fail:
	free(parent->name);
	parent->name = NULL;
	mproc__fnref_clear(&ref);
	free(fds);
	mproc__proc_release(p);
	return rc;
}
