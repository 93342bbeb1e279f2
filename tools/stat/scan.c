/*
 * Finding and describing segments (stat.h).  Everything here is read-only
 * and non-blocking: files are opened O_RDONLY|O_NONBLOCK and mapped
 * PROT_READ (src/shm/inspect.c), /proc is only read.  A segment may be
 * hostile or change under us: the owning module validates its geometry
 * before any of it is used (src/<module>/inspect.c), and a named segment
 * that its owner truncates while we read it (only memfds are sealed) raises
 * SIGBUS, which is caught here and reported as that segment's error.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/os.h"
#include "pipe/inspect.h"
#include "pool/inspect.h"
#include "queue/layout.h"
#include "shm/inspect.h"
#include "stat.h"

/* memfd_create("mproc", ...) in src/shm/segment.c shows in /proc as
 * "/memfd:mproc (deleted)". */
#define MEMFD_LINK "/memfd:mproc"
#define SHM_DIR "/dev/shm/"

/* One describer per segment kind, each from the module that owns the
 * layout. */
static int (*const describers[MPROC_SHM_KIND_MAX + 1])(
	const struct mproc__shm_view *, struct mproc__seg_info *) = {
	[MPROC_SHM_KIND_QUEUE] = mproc__queue_describe,
	[MPROC_SHM_KIND_PIPE] = mproc__pipe_describe,
	[MPROC_SHM_KIND_POOL] = mproc__pool_describe,
};

static sigjmp_buf bus_jmp;
static volatile sig_atomic_t bus_armed;

static void on_sigbus(int sig)
{
	if (!bus_armed) {
		signal(sig, SIG_DFL);
		raise(sig);
		return;
	}
	siglongjmp(bus_jmp, 1);
}

static bool is_memfd_link(const char *l)
{
	size_t n = strlen(MEMFD_LINK);
	return !strncmp(l, MEMFD_LINK, n) && (l[n] == '\0' || l[n] == ' ');
}

static struct stat_seg *find_seg(struct stat_snap *s, dev_t dev, ino_t ino)
{
	for (unsigned i = 0; i < s->nsegs; i++)
		if (s->segs[i].ino == ino && s->segs[i].dev == dev)
			return &s->segs[i];
	return NULL;
}

/* By inode alone: /proc/PID/maps gives the device in a form stat does not
 * (major:minor of the mapping), and inode numbers of tmpfs and memfds
 * are unique enough among the few segments listed. */
static struct stat_seg *find_seg_ino(struct stat_snap *s, ino_t ino)
{
	for (unsigned i = 0; i < s->nsegs; i++)
		if (s->segs[i].ino == ino)
			return &s->segs[i];
	return NULL;
}

/* Describe the segment open on @fd into @g. */
static void describe(int fd, struct stat_seg *g)
{
	struct mproc__shm_view v;
	int rc = mproc__shm_view_fd(fd, &v);
	if (rc) {
		g->err = rc;
		return;
	}
	g->shm_kind = v.hdr.kind;
	g->size = v.size;
	g->creator_uid = v.hdr.creator_uid;
	int (*fn)(const struct mproc__shm_view *, struct mproc__seg_info *) =
		describers[v.hdr.kind];
	if (!fn) {
		/* A raw segment: the application's own data. */
		g->info.kind = "raw";
		g->info.consistent = true;
		rc = mproc__seg_info_add_pid(&g->info, v.hdr.creator_pid,
					     "creator");
	} else if (sigsetjmp(bus_jmp, 1) == 0) {
		bus_armed = 1;
		rc = fn(&v, &g->info);
		bus_armed = 0;
	} else {
		bus_armed = 0;
		rc = -EFAULT; /* truncated under us */
	}
	if (rc) {
		mproc__seg_info_free(&g->info);
		g->err = rc;
	}
	mproc__shm_view_release(&v);
}

/* Add the segment open on @fd (@st its fstat) unless it is known. */
static struct stat_seg *add_seg(struct stat_snap *s, int fd,
				const struct stat *st, const char *name,
				bool named)
{
	struct stat_seg *g = find_seg(s, st->st_dev, st->st_ino);
	if (g)
		return g;
	if (s->nsegs == s->cap_segs) {
		unsigned cap = s->cap_segs ? 2 * s->cap_segs : 16;
		void *p = realloc(s->segs, cap * sizeof(*s->segs));
		if (!p)
			return NULL;
		s->segs = p;
		s->cap_segs = cap;
	}
	g = &s->segs[s->nsegs++];
	memset(g, 0, sizeof(*g));
	g->dev = st->st_dev;
	g->ino = st->st_ino;
	g->named = named;
	if (named)
		snprintf(g->name, sizeof g->name, "/%s", name);
	else
		snprintf(g->name, sizeof g->name, "memfd:%llu",
			 (unsigned long long)st->st_ino);
	describe(fd, g);
	return g;
}

static struct stat_proc *add_proc(struct stat_seg *g, pid_t pid)
{
	for (unsigned i = 0; i < g->nprocs; i++)
		if (g->procs[i].pid == pid)
			return &g->procs[i];
	if (g->nprocs == g->cap_procs) {
		unsigned cap = g->cap_procs ? 2 * g->cap_procs : 4;
		void *p = realloc(g->procs, cap * sizeof(*g->procs));
		if (!p)
			return NULL;
		g->procs = p;
		g->cap_procs = cap;
	}
	struct stat_proc *p = &g->procs[g->nprocs++];
	memset(p, 0, sizeof(*p));
	p->pid = pid;
	return p;
}

static void add_role(struct stat_proc *p, const char *role)
{
	/* Skip a role already listed (a process may map a segment twice). */
	size_t n = strlen(role);
	for (const char *r = p->roles; (r = strstr(r, role)) != NULL; r += n)
		if ((r == p->roles || r[-2] == ',') &&
		    (r[n] == '\0' || r[n] == ','))
			return;
	size_t len = strlen(p->roles);
	snprintf(p->roles + len, sizeof p->roles - len, "%s%s",
		 len ? ", " : "", role);
}

/* A process holds @g through a descriptor or a mapping. */
static void attach(struct stat_seg *g, pid_t pid, const char *how)
{
	struct stat_proc *p = add_proc(g, pid);
	if (!p)
		return;
	p->attached = true;
	add_role(p, how);
}

static bool all_digits(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (!isdigit((unsigned char)*s))
			return false;
	return true;
}

/* Named segments: every file in /dev/shm that starts with the magic. */
static void scan_dev_shm(struct stat_snap *s)
{
	DIR *d = opendir(SHM_DIR);
	if (!d)
		return;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		int fd = openat(dirfd(d), e->d_name,
				O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC |
					O_NOCTTY);
		if (fd < 0) {
			s->skipped++;
			continue;
		}
		struct stat st;
		uint64_t magic = 0;
		/* Only files that carry the magic are ours; an unpublished
		 * segment (magic 0) is not listed until it is ready. */
		if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
		    st.st_size >= (off_t)MPROC_SHM_HEADER_SIZE &&
		    pread(fd, &magic, sizeof magic, 0) == (ssize_t)sizeof magic &&
		    magic == MPROC_SHM_MAGIC)
			add_seg(s, fd, &st, e->d_name, true);
		close(fd);
	}
	closedir(d);
}

/* A segment found through a process's descriptor @path: a memfd of
 * mproc's (listed even when it fails validation: the name says it is
 * ours), or a named segment already unlinked from /dev/shm (@link: listed
 * only when it carries the magic, as in scan_dev_shm). */
static struct stat_seg *add_held(struct stat_snap *s, const char *path,
				 const struct stat *st, const char *link)
{
	int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		s->skipped++;
		return NULL;
	}
	struct stat_seg *g = NULL;
	uint64_t magic = 0;
	if (!link)
		g = add_seg(s, fd, st, NULL, false);
	else if (pread(fd, &magic, sizeof magic, 0) == (ssize_t)sizeof magic &&
		 magic == MPROC_SHM_MAGIC)
		g = add_seg(s, fd, st, link + strlen(SHM_DIR), true);
	close(fd);
	return g;
}

/* One process: its descriptors, then its mappings. */
static void scan_pid(struct stat_snap *s, const char *pidstr)
{
	pid_t pid = (pid_t)atol(pidstr);
	char path[PATH_MAX], link[PATH_MAX];
	snprintf(path, sizeof path, "/proc/%s/fd", pidstr);
	DIR *d = opendir(path);
	if (d) {
		struct dirent *e;
		while ((e = readdir(d)) != NULL) {
			if (!all_digits(e->d_name))
				continue;
			snprintf(path, sizeof path, "/proc/%s/fd/%s", pidstr,
				 e->d_name);
			ssize_t n = readlink(path, link, sizeof link - 1);
			if (n <= 0)
				continue;
			link[n] = '\0';
			bool memfd = is_memfd_link(link);
			bool named = !strncmp(link, SHM_DIR, strlen(SHM_DIR));
			if (!memfd && !named)
				continue;
			struct stat st;
			if (stat(path, &st) < 0)
				continue;
			struct stat_seg *g = find_seg(s, st.st_dev, st.st_ino);
			if (!g)
				g = add_held(s, path, &st, named ? link : NULL);
			if (g) {
				char how[32];
				snprintf(how, sizeof how, "fd %d", atoi(e->d_name));
				attach(g, pid, how);
			}
		}
		closedir(d);
	}
	snprintf(path, sizeof path, "/proc/%s/maps", pidstr);
	FILE *f = fopen(path, "re");
	if (!f)
		return;
	char line[PATH_MAX + 128];
	while (fgets(line, sizeof line, f)) {
		const char *m = strstr(line, MEMFD_LINK);
		const char *n = strstr(line, " " SHM_DIR);
		if (!m && !n)
			continue;
		unsigned long long ino = 0;
		/* start-end perms offset dev inode path */
		if (sscanf(line, "%*s %*s %*s %*s %llu", &ino) != 1 || !ino)
			continue;
		struct stat_seg *g = find_seg_ino(s, (ino_t)ino);
		if (g)
			attach(g, pid, "mapped");
	}
	fclose(f);
}

static void scan_proc(struct stat_snap *s)
{
	DIR *d = opendir("/proc");
	if (!d)
		return;
	char self[24];
	snprintf(self, sizeof self, "%d", (int)getpid());
	struct dirent *e;
	while ((e = readdir(d)) != NULL)
		if (all_digits(e->d_name) && strcmp(e->d_name, self))
			scan_pid(s, e->d_name);
	closedir(d);
}

static void read_comm(pid_t pid, char *buf, size_t len)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/comm", (int)pid);
	snprintf(buf, len, "?");
	FILE *f = fopen(path, "re");
	if (!f)
		return;
	if (fgets(buf, (int)len, f))
		buf[strcspn(buf, "\n")] = '\0';
	fclose(f);
}

/* Add the processes each segment names, then the state of all of them. */
static void finish_procs(struct stat_seg *g)
{
	for (unsigned i = 0; i < g->info.npids; i++) {
		const struct mproc__seg_pid *sp = &g->info.pids[i];
		if (sp->pid > INT32_MAX)
			continue; /* not a pid: hostile or damaged */
		struct stat_proc *p = add_proc(g, (pid_t)sp->pid);
		if (p)
			add_role(p, sp->role);
	}
	for (unsigned i = 0; i < g->nprocs; i++) {
		struct stat_proc *p = &g->procs[i];
		p->alive = !mproc__pid_exited(p->pid);
		read_comm(p->pid, p->comm, sizeof p->comm);
	}
}

int stat_scan(struct stat_snap *s)
{
	memset(s, 0, sizeof(*s));
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_sigbus;
	sigaction(SIGBUS, &sa, NULL);
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	s->when = (double)ts.tv_sec + ts.tv_nsec / 1e9;
	clock_gettime(CLOCK_REALTIME, &ts);
	s->wall = (double)ts.tv_sec + ts.tv_nsec / 1e9;
	scan_dev_shm(s);
	scan_proc(s);
	for (unsigned i = 0; i < s->nsegs; i++)
		finish_procs(&s->segs[i]);
	return 0;
}

void stat_snap_free(struct stat_snap *s)
{
	for (unsigned i = 0; i < s->nsegs; i++) {
		mproc__seg_info_free(&s->segs[i].info);
		free(s->segs[i].procs);
	}
	free(s->segs);
	memset(s, 0, sizeof(*s));
}

static bool seg_matches(const struct stat_seg *g, const char *name, pid_t pid)
{
	if (pid > 0) {
		for (unsigned i = 0; i < g->nprocs; i++)
			if (g->procs[i].pid == pid)
				return true;
		return false;
	}
	if (!strcmp(g->name, name))
		return true;
	return name[0] != '/' && g->named && !strcmp(g->name + 1, name);
}

unsigned stat_filter(struct stat_snap *s, const char *name, pid_t pid)
{
	unsigned k = 0;
	for (unsigned i = 0; i < s->nsegs; i++) {
		if (seg_matches(&s->segs[i], name, pid)) {
			s->segs[k++] = s->segs[i];
		} else {
			mproc__seg_info_free(&s->segs[i].info);
			free(s->segs[i].procs);
		}
	}
	s->nsegs = k;
	return k;
}

void stat_totals(const struct stat_seg *g, struct stat_totals *t)
{
	memset(t, 0, sizeof(*t));
	t->byte_totals = g->info.nrings > 0;
	t->closed = g->info.nrings > 0;
	for (unsigned i = 0; i < g->info.nrings; i++) {
		const struct mproc__ring_info *r = &g->info.rings[i];
		t->capacity += r->capacity;
		t->bytes_used += r->bytes_used;
		t->msgs += r->msgs;
		t->put += r->put_total;
		t->got += r->got_total;
		t->get_waiters += r->get_waiters;
		t->put_waiters += r->put_waiters;
		if (r->byte_totals)
			t->bytes_got += r->bytes_got_total;
		else
			t->byte_totals = false;
		if (!r->closed)
			t->closed = false;
	}
}
