/*
 * The zygote: a small single-threaded process, started once per pool by
 * the pool's start method, that forks every worker of the pool -- the
 * first ones and every replacement.  Forking a worker from the parent,
 * which runs the pool thread and the application's threads, could leave
 * the child with locks held by threads that do not exist there; the
 * zygote never has a second thread, so its forks are safe at any time.
 *
 * The zygote and the parent talk over a SOCK_SEQPACKET socketpair of
 * small fixed messages (struct pool_zmsg).  The parent asks for a worker
 * in a slot (START) or for a signal to one (KILL: sent through the
 * zygote, which holds the worker's pidfd, so a signal can never reach a
 * recycled pid).  The zygote answers STARTED and reports every worker's
 * end (EXITED, with its exit code or signal) after reaping it; after each
 * message it bumps the segment's zygote_msgs counter and rings the
 * doorbell, so the pool thread, asleep on the doorbell, looks at the
 * socket.  When the parent's end closes (the pool is destroyed, or the
 * parent died), the zygote kills whatever workers remain, reaps them and
 * exits: no orphans.
 *
 * Workers die with the zygote (PR_SET_PDEATHSIG), and the zygote is a
 * daemon child of the parent, so it is killed if the parent dies without
 * closing the socket.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/fdreg.h"
#include "common/os.h"
#include "pool/fn.h"
#include "pool/internal.h"

/* The zygote's start data (the process target's argument), followed by
 * the packed initializer reference and the initializer's argument. */
struct zygote_args {
	char token[MPROC_SHM_TOKEN_MAX];
	int32_t sock;
	uint32_t timeouts;
	uint64_t init_len;
	uint64_t initarg_len;
};

/* How long create waits for the zygote to come up. */
#define HELLO_TIMEOUT_MS 60000

/* ---- the zygote process ------------------------------------------------ */

struct zworker {
	pid_t pid;
	int pidfd;
	uint32_t slot;
};

struct zygote {
	int sock;
	mproc_shm *seg;
	struct pool_hdr *hdr;
	unsigned char *slot0;
	uint64_t nslots, ring_cap, slot_size;
	struct pool_worker_args wa;
	struct zworker *w;   /* one per slot; pid 0 when none */
};

static void zsend(struct zygote *z, uint32_t op, uint32_t slot, pid_t pid,
		  int32_t val)
{
	struct pool_zmsg m = { op, slot, (int32_t)pid, val };
	while (send(z->sock, &m, sizeof(m), MSG_NOSIGNAL) < 0 && errno == EINTR)
		;
	/* Release: the message is in the socket before the pool thread can
	 * see the count move (it reads the count with acquire). */
	if (z->hdr) {
		atomic_fetch_add_explicit(&z->hdr->zygote_msgs, 1,
					  memory_order_release);
		mproc__event_signal(&z->hdr->doorbell);
	}
}

static void start_worker(struct zygote *z, uint32_t slot)
{
	if (slot >= z->nslots || z->w[slot].pid) {
		zsend(z, POOL_Z_START_FAILED, slot, 0, -EINVAL);
		return;
	}
	pid_t self = getpid();
	pid_t pid = fork();
	if (pid < 0) {
		zsend(z, POOL_Z_START_FAILED, slot, 0, -errno);
		return;
	}
	if (pid == 0) {
		/* The worker.  Die with the zygote; leave at once if it is
		 * already gone. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != self)
			_exit(1);
		close(z->sock);
		for (uint64_t i = 0; i < z->nslots; i++)
			if (z->w[i].pidfd >= 0)
				close(z->w[i].pidfd);
		struct pool_worker_args a = z->wa;
		a.slot = z->slot0 + slot * z->slot_size;
		pool_worker_main(&a);
	}
	int fd = mproc__pidfd_open(pid);
	if (fd < 0) {
		kill(pid, SIGKILL);
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
			;
		zsend(z, POOL_Z_START_FAILED, slot, 0, fd);
		return;
	}
	z->w[slot].pid = pid;
	z->w[slot].pidfd = fd;
	zsend(z, POOL_Z_STARTED, slot, pid, 0);
}

static void reap_worker(struct zygote *z, uint32_t slot)
{
	struct zworker *w = &z->w[slot];
	int val = 0;
	mproc__pidfd_reap(w->pidfd, true, &val);
	close(w->pidfd);
	pid_t pid = w->pid;
	w->pid = 0;
	w->pidfd = -1;
	zsend(z, POOL_Z_EXITED, slot, pid, val);
}

static void kill_all(struct zygote *z)
{
	for (uint64_t i = 0; i < z->nslots; i++)
		if (z->w[i].pid)
			mproc__pidfd_signal(z->w[i].pidfd, SIGKILL);
	for (uint64_t i = 0; i < z->nslots; i++)
		if (z->w[i].pid) {
			int code;
			mproc__pidfd_reap(z->w[i].pidfd, true, &code);
			close(z->w[i].pidfd);
			z->w[i].pid = 0;
		}
}

static int zygote_main(void *arg, size_t len)
{
	struct zygote z = { .sock = -1 };
	struct zygote_args za;
	struct pollfd *pf = NULL;
	uint32_t *slot_of = NULL;
	int code = 1;
	if (len < sizeof(za))
		return 2;
	memcpy(&za, arg, sizeof(za));
	if (za.init_len > POOL_FNREF_MAX ||
	    za.initarg_len > len - sizeof(za) - za.init_len)
		return 2;
	z.sock = za.sock;
	za.token[sizeof(za.token) - 1] = '\0';
	int status = mproc_shm_import(za.token, MPROC_SHM_KIND_POOL,
				      pool_validate_geom, NULL, &z.seg);
	if (status == 0) {
		const uint64_t *g = mproc_shm_geom(z.seg);
		z.hdr = mproc_shm_data(z.seg);
		z.nslots = g[POOL_GEOM_SLOTS];
		z.ring_cap = g[POOL_GEOM_RING_CAP];
		z.slot_size = g[POOL_GEOM_SLOT_SIZE];
		z.slot0 = (unsigned char *)z.hdr + g[POOL_GEOM_SLOT0];
		z.w = calloc(z.nslots, sizeof(*z.w));
		pf = calloc(z.nslots + 1, sizeof(*pf));
		slot_of = calloc(z.nslots + 1, sizeof(*slot_of));
		if (!z.w || !pf || !slot_of)
			status = -ENOMEM;
	}
	const unsigned char *extra = (const unsigned char *)arg + sizeof(za);
	void *init = NULL;
	if (status == 0 && za.init_len) {
		char why[128];
		status = pool_fn_unpack(extra, (size_t)za.init_len, &init, why,
					sizeof(why));
		if (status)
			fprintf(stderr, "mproc: pool initializer: %s\n", why);
	}
	z.wa = (struct pool_worker_args){
		.hdr = z.hdr,
		.ring_cap = z.ring_cap,
		.timeouts = za.timeouts != 0,
		.init = (mproc_pool_init_fn)init,
		.initarg = za.initarg_len ? extra + za.init_len : NULL,
		.initarg_len = (size_t)za.initarg_len,
	};
	zsend(&z, POOL_Z_HELLO, 0, getpid(), status);
	if (status)
		goto out;
	for (uint64_t i = 0; i < z.nslots; i++)
		z.w[i].pidfd = -1;

	for (;;) {
		nfds_t n = 0;
		pf[n++] = (struct pollfd){ .fd = z.sock, .events = POLLIN };
		for (uint64_t i = 0; i < z.nslots; i++)
			if (z.w[i].pid) {
				slot_of[n] = (uint32_t)i;
				pf[n++] = (struct pollfd){ .fd = z.w[i].pidfd,
							   .events = POLLIN };
			}
		if (poll(pf, n, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		for (nfds_t k = 1; k < n; k++)
			if (pf[k].revents)
				reap_worker(&z, slot_of[k]);
		if (pf[0].revents & (POLLIN | POLLHUP | POLLERR)) {
			struct pool_zmsg m;
			ssize_t r = mproc__recv_seqpacket(z.sock, &m, sizeof(m));
			if (r == -EAGAIN)
				continue;
			if (r != (ssize_t)sizeof(m))
				break; /* the parent is gone, or nonsense */
			if (m.op == POOL_Z_START)
				start_worker(&z, m.slot);
			else if (m.op == POOL_Z_KILL && m.slot < z.nslots &&
				 z.w[m.slot].pid == (pid_t)m.pid && m.pid > 0)
				mproc__pidfd_signal(z.w[m.slot].pidfd, m.val);
		}
	}
	kill_all(&z);
	code = 0;
out:
	free(pf);
	free(slot_of);
	free(z.w);
	if (z.seg)
		mproc_shm_free(z.seg);
	close(z.sock);
	return code;
}

/* ---- the parent's side --------------------------------------------------- */

int pool_zygote_recv(mproc_pool *pool, struct pool_zmsg *m)
{
	/* The zygote's last words come just before it closes (the hello
	 * of an initializer that does not resolve; the exits it reported
	 * before it died): an end of file is believed only when no message
	 * follows it (os.h). */
	ssize_t r = mproc__recv_seqpacket(pool->local.sock, m, sizeof(*m));
	if (r == (ssize_t)sizeof(*m))
		return 1;
	if (r == -EAGAIN)
		return 0;
	return -EPIPE;
}

static int zygote_send(mproc_pool *pool, uint32_t op, uint32_t slot,
		       pid_t pid, int32_t val)
{
	struct pool_zmsg m = { op, slot, (int32_t)pid, val };
	for (;;) {
		ssize_t r = send(pool->local.sock, &m, sizeof(m), MSG_NOSIGNAL);
		if (r == (ssize_t)sizeof(m))
			return 0;
		if (r < 0 && errno == EINTR)
			continue;
		return r < 0 ? -errno : -EPIPE;
	}
}

int pool_zygote_request_start(mproc_pool *pool, unsigned slot)
{
	return zygote_send(pool, POOL_Z_START, slot, 0, 0);
}

int pool_zygote_request_kill(mproc_pool *pool, unsigned slot, pid_t pid,
			     int sig)
{
	return zygote_send(pool, POOL_Z_KILL, slot, pid, sig);
}

/* Wait up to @ms for one message, also watching the zygote's sentinel. */
static int recv_wait(mproc_pool *pool, struct pool_zmsg *m, int ms)
{
	struct pollfd pf[2] = {
		{ .fd = pool->local.sock, .events = POLLIN },
		{ .fd = mproc_process_sentinel(pool->local.zygote),
		  .events = POLLIN },
	};
	for (;;) {
		int rc = pool_zygote_recv(pool, m);
		if (rc)
			return rc < 0 ? rc : 0;
		int r = poll(pf, pf[1].fd >= 0 ? 2 : 1, ms);
		if (r < 0 && errno == EINTR)
			continue;
		if (r == 0)
			return -ETIMEDOUT;
		if (r < 0)
			return -errno;
		if (!(pf[0].revents & POLLIN) && pf[1].revents)
			return -EPIPE; /* it died without a word */
	}
}

int pool_zygote_start(mproc_pool *pool, const mproc_context *ctx,
		      mproc_pool_init_fn init, const void *initarg,
		      size_t initarg_len)
{
	void *packed = NULL;
	size_t packed_len = 0;
	int rc;
	if (init && (rc = pool_fn_pack((const void *)(uintptr_t)init, &packed,
				       &packed_len)) < 0)
		return rc;
	size_t len = sizeof(struct zygote_args) + packed_len + initarg_len;
	unsigned char *arg = calloc(1, len);
	int sv[2] = { -1, -1 };
	if (!arg) {
		free(packed);
		return -ENOMEM;
	}
	struct zygote_args za = {
		.timeouts = pool->task_timeout_ns > 0,
		.init_len = packed_len,
		.initarg_len = initarg_len,
	};
	rc = mproc_shm_export(pool->local.seg, za.token, sizeof(za.token));
	if (rc >= 0 && socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0,
				  sv) < 0)
		rc = -errno;
	if (rc < 0)
		goto out;
	za.sock = sv[1];
	memcpy(arg, &za, sizeof(za));
	if (packed_len)
		memcpy(arg + sizeof(za), packed, packed_len);
	if (initarg_len)
		memcpy(arg + sizeof(za) + packed_len, initarg, initarg_len);

	rc = mproc_process_create(ctx, zygote_main, arg, len,
				  &pool->local.zygote);
	if (rc == 0)
		rc = mproc_process_set_daemon(pool->local.zygote, true);
	if (rc == 0)
		rc = mproc_process_set_name(pool->local.zygote,
					    "mproc-pool-zygote");
	/* Spawn and forkserver children receive the registered descriptors
	 * at the same numbers (fork inherits them anyway). */
	if (rc == 0 && (rc = mproc__fdreg_add(sv[1])) == 0) {
		rc = mproc_process_start(pool->local.zygote);
		mproc__fdreg_remove(sv[1]);
	}
	/* The export made the segment inheritable by every exec; only the
	 * zygote needed that. */
	int fd = mproc_shm_fd(pool->local.seg);
	int fl = fcntl(fd, F_GETFD);
	if (fl >= 0)
		fcntl(fd, F_SETFD, fl | FD_CLOEXEC);
	close(sv[1]);
	sv[1] = -1;
	pool->local.sock = sv[0];
	sv[0] = -1;
	if (rc < 0)
		goto out;
	struct pool_zmsg m;
	rc = recv_wait(pool, &m, HELLO_TIMEOUT_MS);
	if (rc == 0 && m.op != POOL_Z_HELLO)
		rc = -MPROC_ECORRUPT;
	if (rc == 0)
		rc = m.val;
	if (rc == 0)
		/* The hello bumped the counter once. */
		atomic_store_explicit(&pool->local.zygote_seen, 1,
				      memory_order_relaxed);
out:
	if (sv[0] >= 0)
		close(sv[0]);
	if (sv[1] >= 0)
		close(sv[1]);
	free(arg);
	free(packed);
	return rc;
}
