/*
 * The forkserver start method.
 *
 * The server is a fresh image of the program (spawned like a spawn child,
 * entered through mproc_main) that runs one single-threaded loop: it forks
 * a child for each request and reports each child's end.  Children forked
 * from it start from a small, clean, single-threaded image, so they have
 * none of the fork-with-threads hazards, at a fraction of spawn's cost.
 *
 * Protocol.  The owner (the process that started the server) keeps one end
 * of a SOCK_SEQPACKET socketpair, the control socket.  A request is one or
 * more messages (SCM_RIGHTS carries at most 253 descriptors per message)
 * holding descriptors and, for each, the number it must have in the child:
 *   - a new per-child status socket (role STATUS),
 *   - the start data (see boot.c): up to BOOT_INLINE_MAX bytes of it
 *     inside the first message, after the numbers; more in a memfd (role
 *     BOOT),
 *   - the owner's stdin, stdout and stderr, to become 0, 1, 2,
 *   - the anonymous segments, to keep their numbers,
 *   - a pidfd of the owner, the child's sentinel on its parent (the
 *     owner, not the server), to keep its number too.
 * The server forks; the child installs the descriptors and runs the body.
 * On the status socket the server answers at once with the child's pid and
 * a pidfd for it (made by the server, the child's real parent, before it
 * could have been reaped, so it always refers to the right process), and
 * later with the exit code (the wait status turned into Python's form),
 * after which it closes its end.
 *
 * So the owner's sentinel for a forkserver child is its end of the status
 * socket: it becomes readable when the exit code is there to read (or, if
 * the server itself died, at end-of-file).  Signals go through the pidfd.
 *
 * The server exits when the control socket reaches end-of-file, i.e. when
 * the owner has exited or died; daemon children die with it through
 * PR_SET_PDEATHSIG, as they would with a spawn or fork parent.  A child
 * forked by the owner (fork method, or a plain fork) closes its copy of the
 * control socket and starts its own server if it needs one.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/fork.h"
#include "common/os.h"
#include "common/parse.h"
#include "process/boot.h"
#include "process/child.h"
#include "process/current.h"
#include "process/exec.h"
#include "process/forkserver.h"
#include "process/method.h"
#include "process/pidfd.h"

#define REQ_MAGIC 0x5152534du    /* "MSRQ" */
#define REPLY_MAGIC 0x5052534du  /* "MSRP" */
#define STATUS_MAGIC 0x5453534du /* "MSST" */
#define FDS_PER_MSG 250          /* below the kernel's SCM_MAX_FD (253) */
#define MAX_REQ_FDS (1u << 20)
/* Start data up to this size rides in the request: no memfd to create,
 * pass, read and close per child.  Far below a socket's send buffer. */
#define BOOT_INLINE_MAX 16384u

#define ROLE_STATUS (-1)
#define ROLE_BOOT (-2)

/* A request message: this header, then count int32_t target numbers,
 * then boot_len bytes of start data (the first message only; 0 when a
 * BOOT memfd carries them). */
struct req_hdr {
	uint32_t magic;
	uint32_t total;    /* descriptors in the whole request */
	uint32_t count;    /* descriptors in this message */
	uint32_t boot_len; /* start data bytes in this message */
};

struct reply {
	uint32_t magic;
	int32_t pid; /* > 0, or a negative errno */
};

struct status_msg {
	uint32_t magic;
	int32_t exitcode;
};

/* ---- owner side -------------------------------------------------------- */

/* Guards the server's state and keeps the messages of one request
 * together on the control socket. */
static pthread_mutex_t fs_lock = PTHREAD_MUTEX_INITIALIZER;
static int fs_ctl = -1;
static pid_t fs_pid;
static int fs_pidfd = -1;

/* Around fork(2), so that a child never inherits fs_lock held; the
 * server and its control socket belong to the parent, so a forked child
 * forgets them and starts its own server if it needs one. */
static void atfork_prepare(void)
{
	pthread_mutex_lock(&fs_lock);
}

static void atfork_parent(void)
{
	pthread_mutex_unlock(&fs_lock);
}

static void atfork_child(void)
{
	if (fs_ctl >= 0)
		close(fs_ctl);
	if (fs_pidfd >= 0)
		close(fs_pidfd);
	fs_ctl = fs_pidfd = -1;
	fs_pid = 0;
	pthread_mutex_unlock(&fs_lock);
}

/* At load time, like common/fork.c, so that no fork can come between a
 * first use of fs_lock and the handlers. */
__attribute__((constructor)) static void install_atfork(void)
{
	pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
}

pid_t mproc__proc_forkserver_pid(void)
{
	pthread_mutex_lock(&fs_lock);
	pid_t pid = fs_ctl >= 0 ? fs_pid : 0;
	pthread_mutex_unlock(&fs_lock);
	return pid;
}

static int start_server_locked(void)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	pid_t pid;
	int rc = mproc__proc_exec_self(mproc__proc_forkserver_method.exec_marker,
				       sv[1], NULL, 0, &pid);
	close(sv[1]);
	if (rc) {
		close(sv[0]);
		return rc;
	}
	fs_ctl = sv[0];
	fs_pid = pid;
	fs_pidfd = mproc__pidfd_open(pid);
	return 0;
}

static void stop_server_locked(void)
{
	if (fs_ctl >= 0)
		close(fs_ctl);
	fs_ctl = -1;
	/* The server is broken or gone; make sure it is gone and reap it so
	 * it does not stay a zombie. */
	if (fs_pidfd >= 0) {
		int code;
		mproc__pidfd_signal(fs_pidfd, SIGKILL);
		mproc__pidfd_reap(fs_pidfd, true, &code);
		close(fs_pidfd);
	}
	fs_pidfd = -1;
	fs_pid = 0;
}

/* Send a request; *partial tells whether some of it went out before an
 * error (then the stream is out of step and the server must go). */
static int send_request_locked(const int *fds, const int32_t *targets,
			       size_t n, const uint8_t *boot, size_t boot_len,
			       bool *partial)
{
	*partial = false;
	for (size_t off = 0; off < n; off += FDS_PER_MSG) {
		size_t cnt = n - off < FDS_PER_MSG ? n - off : FDS_PER_MSG;
		size_t blen = off == 0 ? boot_len : 0;
		struct req_hdr h = {
			.magic = REQ_MAGIC,
			.total = (uint32_t)n,
			.count = (uint32_t)cnt,
			.boot_len = (uint32_t)blen,
		};
		struct iovec iov[3] = {
			{ .iov_base = &h, .iov_len = sizeof(h) },
			{ .iov_base = (void *)(targets + off),
			  .iov_len = cnt * sizeof(int32_t) },
			{ .iov_base = (void *)boot, .iov_len = blen },
		};
		union {
			char buf[CMSG_SPACE(sizeof(int) * FDS_PER_MSG)];
			struct cmsghdr align;
		} cm;
		memset(&cm, 0, sizeof(cm));
		struct msghdr msg = {
			.msg_iov = iov,
			.msg_iovlen = blen ? 3 : 2,
			.msg_control = cm.buf,
			.msg_controllen = CMSG_SPACE(sizeof(int) * cnt),
		};
		struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * cnt);
		memcpy(CMSG_DATA(c), fds + off, sizeof(int) * cnt);
		ssize_t k;
		do
			k = sendmsg(fs_ctl, &msg, MSG_NOSIGNAL);
		while (k < 0 && errno == EINTR);
		if (k < 0)
			return -errno;
		*partial = true;
	}
	return 0;
}

/* Receive one message and at most one descriptor (-1 if none came). */
static ssize_t recv_with_fd(int sock, void *buf, size_t len, int *fd, int flags)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * 4)];
		struct cmsghdr align;
	} cm;
	struct iovec iov = { .iov_base = buf, .iov_len = len };
	struct msghdr msg = {
		.msg_iov = &iov,
		.msg_iovlen = 1,
		.msg_control = cm.buf,
		.msg_controllen = sizeof(cm.buf),
	};
	*fd = -1;
	ssize_t k;
	do
		k = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC | flags);
	while (k < 0 && errno == EINTR);
	if (k < 0)
		return -errno;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		size_t nfd = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < nfd; i++) {
			int got;
			memcpy(&got, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
			if (*fd < 0)
				*fd = got;
			else
				close(got);
		}
	}
	return k;
}

static int forkserver_start(mproc_process *p)
{
	int *mem;
	size_t nmem;
	int rc = mproc__proc_inheritable_fds(&mem, &nmem);
	if (rc)
		return rc;
	uint8_t *blob;
	size_t blob_len;
	rc = mproc__proc_boot_encode(p, mem, nmem, &blob, &blob_len);
	if (rc) {
		free(mem);
		return rc;
	}
	/* Small start data goes inside the request; larger in a memfd. */
	int boot = -1;
	if (blob_len > BOOT_INLINE_MAX) {
		boot = mproc__proc_boot_memfd(blob, blob_len);
		free(blob);
		blob = NULL;
		blob_len = 0;
		if (boot < 0) {
			free(mem);
			return boot;
		}
	}
	int sv[2] = { -1, -1 };
	int *fds = malloc((nmem + 6) * sizeof(*fds));
	int32_t *targets = malloc((nmem + 6) * sizeof(*targets));
	if (!fds || !targets) {
		rc = -ENOMEM;
		goto out;
	}
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
		rc = -errno;
		goto out;
	}
	size_t n = 0;
	fds[n] = sv[1];
	targets[n++] = ROLE_STATUS;
	if (boot >= 0) {
		fds[n] = boot;
		targets[n++] = ROLE_BOOT;
	}
	/* The child writes where we write now, not where the server's
	 * stdio pointed when it was started; a closed one stays closed. */
	for (int s = 0; s <= 2; s++)
		if (fcntl(s, F_GETFD) >= 0) {
			fds[n] = s;
			targets[n++] = s;
		}
	for (size_t i = 0; i < nmem; i++) {
		fds[n] = mem[i];
		targets[n++] = mem[i];
	}
	/* Our pidfd, the child's sentinel on its parent: us, not the
	 * server.  At its number, which the start data names. */
	fds[n] = p->starter_pidfd;
	targets[n++] = p->starter_pidfd;
	fflush(stdout);
	fflush(stderr);

	pthread_mutex_lock(&fs_lock);
	for (int attempt = 0; attempt < 2; attempt++) {
		if (fs_ctl < 0 && (rc = start_server_locked()) != 0)
			break;
		bool partial;
		rc = send_request_locked(fds, targets, n, blob, blob_len,
					 &partial);
		if (!rc)
			break;
		/* A dead server shows up as EPIPE/ECONNRESET: start a new
		 * one and try once more. */
		stop_server_locked();
		if (partial || (rc != -EPIPE && rc != -ECONNRESET &&
				rc != -ENOTCONN && rc != -ECONNREFUSED))
			break;
		rc = -EPIPE;
	}
	pthread_mutex_unlock(&fs_lock);
	close(sv[1]);
	sv[1] = -1;
	if (rc)
		goto out;

	struct reply r = { 0, 0 };
	int pidfd;
	ssize_t k = recv_with_fd(sv[0], &r, sizeof(r), &pidfd, 0);
	if (k != (ssize_t)sizeof(r) || r.magic != REPLY_MAGIC || r.pid == 0 ||
	    (r.pid > 0 && pidfd < 0)) {
		/* End-of-file: the server died before answering. */
		rc = k == 0 ? -EPIPE : k < 0 ? (int)k : -EPROTO;
		if (pidfd >= 0)
			close(pidfd);
		goto out;
	}
	if (r.pid < 0) {
		rc = r.pid;
		if (pidfd >= 0)
			close(pidfd);
		goto out;
	}
	p->pid = r.pid;
	p->pidfd = pidfd;
	p->status_fd = sv[0];
	p->status_lost = false;
	sv[0] = -1;
	rc = 0;
out:
	if (sv[0] >= 0)
		close(sv[0]);
	if (sv[1] >= 0)
		close(sv[1]);
	if (boot >= 0)
		close(boot);
	free(blob);
	free(fds);
	free(targets);
	free(mem);
	return rc;
}

static int forkserver_poll_status(mproc_process *p)
{
	if (!p->status_lost) {
		struct status_msg m;
		/* A server sends the status and closes: an end of file read
		 * before the status is not believed (os.h; seen under perf
		 * record as a false "peer process died"). */
		ssize_t k = mproc__recv_seqpacket(p->status_fd, &m, sizeof(m));
		if (k == (ssize_t)sizeof(m) && m.magic == STATUS_MAGIC) {
			p->exitcode = m.exitcode;
			p->done = true;
			return 1;
		}
		if (k == -EAGAIN)
			return 0;
		/* End-of-file or garbage: the server is gone and the status
		 * with it.  From now on only the pidfd tells us anything. */
		p->status_lost = true;
	}
	struct pollfd pfd = { .fd = p->pidfd, .events = POLLIN };
	if (poll(&pfd, 1, 0) > 0) {
		p->done = true;
		p->exit_err = -MPROC_EPEERDIED;
		return 1;
	}
	return 0;
}

/* ---- server side ------------------------------------------------------- */

struct kid {
	pid_t pid;
	int pidfd;
	int status_fd;
};

static char saved_comm[17];

static void report(struct kid *k)
{
	int code;
	if (mproc__pidfd_reap(k->pidfd, true, &code) == 1) {
		struct status_msg m = {
			.magic = STATUS_MAGIC,
			.exitcode = code,
		};
		/* The owner may be gone; then there is nobody to tell. */
		send(k->status_fd, &m, sizeof(m), MSG_NOSIGNAL | MSG_DONTWAIT);
	}
	close(k->status_fd);
	close(k->pidfd);
}

static _Noreturn void child_fail(const char *what, int err)
{
	fprintf(stderr, "mproc: forkserver child %d cannot start: %s%s%s\n",
		(int)getpid(), what, err ? ": " : "",
		err ? mproc_strerror(err) : "");
	_exit(MPROC_EXIT_BOOTSTRAP);
}

/* In the freshly forked child: put the received descriptors where they
 * belong, drop everything of the server's, and run the body.  The start
 * data is @blob (@blob_len bytes, the server's copy) or, if @blob is
 * NULL, in the BOOT memfd. */
static _Noreturn void child_main(int *fds, const int32_t *targets, size_t n,
				 const uint8_t *blob, size_t blob_len,
				 pid_t server)
{
	/* 1. Move what we keep above every target number, so that installing
	 * one cannot overwrite another still to be installed. */
	int hi = 3;
	for (size_t i = 0; i < n; i++)
		if (targets[i] >= hi)
			hi = targets[i] + 1;
	int boot = -1;
	for (size_t i = 0; i < n; i++) {
		if (targets[i] == ROLE_STATUS) {
			fds[i] = -1; /* the server's business */
			continue;
		}
		if (fds[i] >= hi) {
			/* Already above: stays where it is. */
			if (targets[i] == ROLE_BOOT)
				boot = fds[i];
			continue;
		}
		int m = fcntl(fds[i], F_DUPFD_CLOEXEC, hi);
		if (m < 0)
			child_fail("moving descriptors", -errno);
		fds[i] = m;
		if (targets[i] == ROLE_BOOT)
			boot = m;
	}
	/* 2. Close everything else: the server's stdio, its control socket,
	 * other children's descriptors, the originals of the moved ones. */
	int *keep = malloc(n * sizeof(*keep));
	if (!keep)
		child_fail("out of memory", 0);
	size_t nk = 0;
	for (size_t i = 0; i < n; i++)
		if (fds[i] >= 0)
			keep[nk++] = fds[i];
	for (size_t i = 1; i < nk; i++) /* insertion sort: n is small */
		for (size_t j = i; j > 0 && keep[j - 1] > keep[j]; j--) {
			int t = keep[j];
			keep[j] = keep[j - 1];
			keep[j - 1] = t;
		}
	unsigned from = 0;
	for (size_t i = 0; i < nk; i++) {
		if ((unsigned)keep[i] > from)
			close_range(from, (unsigned)keep[i] - 1, 0);
		from = (unsigned)keep[i] + 1;
	}
	close_range(from, ~0u, 0);
	free(keep);
	/* 3. Install at the target numbers: stdio without close-on-exec,
	 * segments and the parent's pidfd with it, as in a spawned child.
	 * Then close the copies, all at hi or above (but the memfd). */
	for (size_t i = 0; i < n; i++) {
		if (targets[i] < 0)
			continue;
		if (dup3(fds[i], targets[i], targets[i] > 2 ? O_CLOEXEC : 0) < 0)
			child_fail("installing descriptors", -errno);
	}
	if (boot < 0) {
		close_range((unsigned)hi, ~0u, 0);
	} else {
		if (boot > hi)
			close_range((unsigned)hi, (unsigned)boot - 1, 0);
		close_range((unsigned)boot + 1, ~0u, 0);
	}
	/* 4. Undo what the server changed for itself.  A SIGINT sent since
	 * the fork (the owner may interrupt as soon as it has the pid) was
	 * held pending by the mask, and acts now, with the default action. */
	signal(SIGINT, SIG_DFL);
	sigset_t intr;
	sigemptyset(&intr);
	sigaddset(&intr, SIGINT);
	sigprocmask(SIG_UNBLOCK, &intr, NULL);
	prctl(PR_SET_NAME, saved_comm, 0, 0, 0);

	char why[512] = "";
	mproc_process *self;
	struct mproc__proc_parent parent = { 0, NULL, -1 };
	int *segs;
	size_t nsegs;
	int rc;
	if (blob) {
		rc = mproc__proc_boot_decode(blob, blob_len,
					     &mproc__proc_forkserver_method, &self,
					     &parent, &segs, &nsegs, why,
					     sizeof(why));
	} else {
		rc = mproc__proc_boot_read(boot, &mproc__proc_forkserver_method,
					   &self, &parent, &segs, &nsegs, why,
					   sizeof(why));
		close(boot);
	}
	if (rc)
		child_fail(why, rc == -MPROC_ENOSYMBOL ? 0 : rc);
	free(segs);
	if (self->daemon)
		mproc__proc_die_with_parent(server);
	mproc__proc_become(self, &parent);
	/* The child ends as a fork child does, with _exit(2) after its
	 * mproc_atexit handlers and a flush of stdout and stderr, as
	 * Python's forkserver children end with os._exit: the atexit(3)
	 * list is the server's (what its constructors registered), and
	 * running it, and the destructors of every loaded object, in each
	 * child would repeat the server's clean-up once per child. */
	mproc__proc_child_run(self, false);
}

static void close_all(int *fds, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (fds[i] >= 0)
			close(fds[i]);
}

/* Serve one request.  Returns 0, or -1 when the control socket is at
 * end-of-file or out of step (the server then exits). */
static int serve(int ctl, struct kid **kids, size_t *nkids, size_t *cap)
{
	/* One message at most: a larger one arrives with MSG_TRUNC.  Static:
	 * the server has one thread, and the buffer is large. */
	static union {
		uint8_t b[sizeof(struct req_hdr) + FDS_PER_MSG * sizeof(int32_t) +
			  BOOT_INLINE_MAX];
		struct req_hdr align;
	} rq;
	int *fds = NULL;
	int32_t *targets = NULL;
	uint8_t *blob = NULL;
	size_t total = 0, got = 0, blob_len = 0;
	do {
		struct req_hdr h;
		int cfds[FDS_PER_MSG];
		union {
			char buf[CMSG_SPACE(sizeof(int) * FDS_PER_MSG)];
			struct cmsghdr align;
		} cm;
		struct iovec iov = { .iov_base = rq.b, .iov_len = sizeof(rq.b) };
		struct msghdr msg = {
			.msg_iov = &iov,
			.msg_iovlen = 1,
			.msg_control = cm.buf,
			.msg_controllen = sizeof(cm.buf),
		};
		ssize_t k;
		do
			k = recvmsg(ctl, &msg, MSG_CMSG_CLOEXEC);
		while (k < 0 && errno == EINTR);
		size_t nc = 0;
		if (k > 0) {
			for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c;
			     c = CMSG_NXTHDR(&msg, c)) {
				if (c->cmsg_level != SOL_SOCKET ||
				    c->cmsg_type != SCM_RIGHTS)
					continue;
				size_t m = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
				for (size_t i = 0; i < m; i++) {
					int fd;
					memcpy(&fd, CMSG_DATA(c) + i * sizeof(int),
					       sizeof(int));
					if (nc < FDS_PER_MSG)
						cfds[nc++] = fd;
					else
						close(fd);
				}
			}
		}
		size_t hsz = sizeof(h);
		if (k >= (ssize_t)hsz)
			memcpy(&h, rq.b, hsz);
		/* Start data only in the first message, and not more of it
		 * than a sender may put there. */
		bool ok = k >= (ssize_t)hsz && !(msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) &&
			  h.magic == REQ_MAGIC && h.count <= FDS_PER_MSG &&
			  h.boot_len <= (got == 0 ? BOOT_INLINE_MAX : 0) &&
			  (size_t)k == hsz + h.count * sizeof(int32_t) + h.boot_len &&
			  nc == h.count && h.total >= 1 && h.total <= MAX_REQ_FDS &&
			  (got == 0 || h.total == total) && got + h.count <= h.total;
		if (ok && got == 0) {
			total = h.total;
			fds = malloc(total * sizeof(*fds));
			targets = malloc(total * sizeof(*targets));
			ok = fds && targets;
			if (ok && h.boot_len) {
				blob_len = h.boot_len;
				blob = malloc(blob_len);
				ok = blob != NULL;
				if (ok)
					memcpy(blob, rq.b + hsz + h.count * sizeof(int32_t),
					       blob_len);
			}
		}
		if (!ok) {
			close_all(cfds, nc);
			close_all(fds, got);
			free(fds);
			free(targets);
			free(blob);
			return -1;
		}
		memcpy(fds + got, cfds, nc * sizeof(int));
		memcpy(targets + got, rq.b + hsz, nc * sizeof(int32_t));
		got += nc;
	} while (got < total);

	ssize_t status_i = -1, boot_i = -1;
	bool bad = false;
	for (size_t i = 0; i < total; i++) {
		if (targets[i] == ROLE_STATUS && status_i < 0)
			status_i = (ssize_t)i;
		else if (targets[i] == ROLE_BOOT && boot_i < 0)
			boot_i = (ssize_t)i;
		else if (targets[i] < 0)
			bad = true; /* a role twice, or an unknown one */
	}
	/* The start data comes one way: inline or in a memfd. */
	if (bad || status_i < 0 || (boot_i < 0) == (blob == NULL)) {
		close_all(fds, total);
		free(fds);
		free(targets);
		free(blob);
		return -1;
	}
	int status_fd = fds[status_i];

	pid_t server = mproc__self_pid();
	pid_t pid = fork();
	if (pid == 0)
		child_main(fds, targets, total, blob, blob_len, server);
	int err = pid < 0 ? -errno : 0;
	int pidfd = -1;
	if (!err && (pidfd = mproc__proc_pidfd_for_child(pid)) < 0)
		err = pidfd;
	struct reply r = { .magic = REPLY_MAGIC, .pid = err ? err : pid };
	struct iovec iov = { .iov_base = &r, .iov_len = sizeof(r) };
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} cm;
	memset(&cm, 0, sizeof(cm));
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
	if (!err) {
		msg.msg_control = cm.buf;
		msg.msg_controllen = sizeof(cm.buf);
		struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &pidfd, sizeof(int));
	}
	/* If the owner is gone the child still runs; keep watching it. */
	sendmsg(status_fd, &msg, MSG_NOSIGNAL);

	fds[status_i] = -1;
	close_all(fds, total);
	free(fds);
	free(targets);
	free(blob);
	if (err) {
		close(status_fd);
		return 0;
	}
	if (*nkids == *cap) {
		size_t nc = *cap ? *cap * 2 : 16;
		struct kid *nk = realloc(*kids, nc * sizeof(*nk));
		if (!nk) {
			/* Cannot track it: report it as lost rather than
			 * leave the owner waiting on a status that never
			 * comes. */
			close(status_fd);
			close(pidfd);
			return 0;
		}
		*kids = nk;
		*cap = nc;
	}
	(*kids)[(*nkids)++] = (struct kid){ pid, pidfd, status_fd };
	return 0;
}

static _Noreturn void forkserver_exec_main(const char *fdstr)
{
	int ctl = mproc__parse_fd(fdstr);
	int fl = ctl >= 0 ? fcntl(ctl, F_GETFD) : -1;
	if (fl < 0) {
		fprintf(stderr, "mproc: forkserver: bad control descriptor\n");
		_exit(MPROC_EXIT_BOOTSTRAP);
	}
	fcntl(ctl, F_SETFD, fl | FD_CLOEXEC);
	prctl(PR_GET_NAME, saved_comm, 0, 0, 0);
	prctl(PR_SET_NAME, "mproc-forksrv", 0, 0, 0);
	/* This process runs no application code, so its signal handling is
	 * ours to choose: Ctrl-C reaches the whole foreground process group,
	 * and it is for the owner, not the server, to react. */
	signal(SIGINT, SIG_IGN);
	/* Blocked as well: a blocked signal is never discarded as ignored, so
	 * a SIGINT that reaches a child between fork and its reset of the
	 * disposition stays pending instead of being lost. */
	sigset_t intr;
	sigemptyset(&intr);
	sigaddset(&intr, SIGINT);
	sigprocmask(SIG_BLOCK, &intr, NULL);

	struct kid *kids = NULL;
	size_t nkids = 0, cap = 0;
	struct pollfd *pfds = NULL;
	size_t pcap = 0;
	for (;;) {
		if (pcap < nkids + 1) {
			size_t nc = (nkids + 1) * 2;
			struct pollfd *np = realloc(pfds, nc * sizeof(*np));
			if (!np)
				_exit(1);
			pfds = np;
			pcap = nc;
		}
		pfds[0] = (struct pollfd){ .fd = ctl, .events = POLLIN };
		for (size_t i = 0; i < nkids; i++)
			pfds[i + 1] = (struct pollfd){ .fd = kids[i].pidfd,
						       .events = POLLIN };
		size_t polled = nkids;
		int n = poll(pfds, polled + 1, -1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			_exit(1);
		}
		/* Backwards, so that moving the last entry into a freed
		 * slot never moves one not yet looked at. */
		for (size_t i = polled; i-- > 0;) {
			if (!pfds[i + 1].revents)
				continue;
			report(&kids[i]);
			kids[i] = kids[--nkids];
		}
		if (pfds[0].revents && serve(ctl, &kids, &nkids, &cap) < 0)
			_exit(0);
	}
}

const struct mproc__proc_method mproc__proc_forkserver_method = {
	.name = "forkserver",
	.id = 3,
	.exec_marker = "--mproc-forkserver",
	.start = forkserver_start,
	.poll_status = forkserver_poll_status,
	.exec_main = forkserver_exec_main,
};
