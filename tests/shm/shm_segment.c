/*
 * Unit tests for shared-memory segments (src/shm/segment.c): anonymous and
 * named creation, the publish/open protocol, export to exec'd children,
 * name rules, the owner check, and the handle's life cycle.  Corrupted
 * headers have their own file, shm_corrupt.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>

#include "shm_test.h"
#include "common/fdreg.h"

#ifndef IMPORT_HELPER
#error "meson passes the path of shm-import-helper as IMPORT_HELPER"
#endif

#define GEOM_TAG UINT64_C(0xfeedf00d)

static size_t pg(void) { return (size_t)sysconf(_SC_PAGESIZE); }

static mproc_shm *anon(size_t size)
{
	mproc_shm *seg = NULL;
	int rc = mproc_shm_create(NULL, MPROC_SHM_KIND_RAW, NULL, size, 0, &seg);
	cr_assert_eq(rc, 0, "create: %s", mproc_strerror(rc));
	cr_assert_not_null(seg);
	return seg;
}

static void done(mproc_shm *seg)
{
	cr_assert_eq(mproc_shm_close(seg), 0);
	mproc_shm_free(seg);
}

TestSuite(anon, .timeout = 30);
TestSuite(named, .fini = t_cleanup_names, .timeout = 30);
TestSuite(lifecycle, .fini = t_cleanup_names, .timeout = 30);

/* ---------------------------------------------------------------- anon */

Test(anon, create_fills_the_header_and_publish_sets_the_magic)
{
	uint64_t geom[MPROC_SHM_GEOM_WORDS] = {1, 2, 3, 4, 5, 6, 7, 8};
	mproc_shm *seg = NULL;
	cr_assert_eq(mproc_shm_create(NULL, MPROC_SHM_KIND_QUEUE, geom, 100, 0,
				      &seg), 0);
	const struct mproc_shm_header *h = mproc_shm_header(seg);
	cr_assert_not_null(h);
	cr_assert_eq(h->magic, 0, "magic must wait for publish");
	cr_assert_eq(h->version, MPROC_SHM_VERSION);
	cr_assert_eq(h->kind, MPROC_SHM_KIND_QUEUE);
	cr_assert_eq(h->total_size, pg());
	cr_assert_eq(h->data_offset, MPROC_SHM_HEADER_SIZE);
	cr_assert_eq(h->data_size, pg() - MPROC_SHM_HEADER_SIZE);
	cr_assert_eq(h->creator_pid, (uint32_t)getpid());
	cr_assert_eq(h->creator_uid, (uint32_t)geteuid());
	cr_assert_arr_eq(h->geom, geom, sizeof(geom));
	cr_assert_arr_eq(mproc_shm_geom(seg), geom, sizeof(geom));
	cr_assert_eq((char *)mproc_shm_data(seg), (char *)h + h->data_offset);
	cr_assert_null(mproc_shm_name(seg));

	cr_assert_eq(mproc_shm_publish(seg), 0);
	cr_assert_eq(h->magic, MPROC_SHM_MAGIC);
	done(seg);
}

Test(anon, null_geometry_means_zeros)
{
	mproc_shm *seg = anon(1);
	for (int i = 0; i < MPROC_SHM_GEOM_WORDS; i++) {
		cr_assert_eq(mproc_shm_geom(seg)[i], 0);
		cr_assert_eq(mproc_shm_header(seg)->geom[i], 0);
	}
	done(seg);
}

Test(anon, data_is_zeroed)
{
	mproc_shm *seg = anon(3 * pg() + 17);
	const unsigned char *d = mproc_shm_data(seg);
	size_t n = mproc_shm_data_size(seg);
	for (size_t i = 0; i < n; i++)
		cr_assert_eq(d[i], 0, "byte %zu is %u", i, d[i]);
	done(seg);
}

Test(anon, sizes_round_up_to_whole_pages)
{
	const size_t p = pg(), hs = MPROC_SHM_HEADER_SIZE;
	const struct { size_t ask, total; } cases[] = {
		{1, p}, {p - hs, p}, {p - hs + 1, 2 * p}, {p, 2 * p},
		{10 * p, 11 * p}, {1 << 20, (1 << 20) + p},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		mproc_shm *seg = anon(cases[i].ask);
		struct stat st;
		cr_assert_eq(fstat(mproc_shm_fd(seg), &st), 0);
		cr_assert_eq((size_t)st.st_size, cases[i].total,
			     "ask %zu: file is %lld", cases[i].ask,
			     (long long)st.st_size);
		cr_assert_eq(mproc_shm_data_size(seg), cases[i].total - hs);
		cr_assert_geq(mproc_shm_data_size(seg), cases[i].ask);
		/* The whole rounded-up area is mapped and writable. */
		unsigned char *d = mproc_shm_data(seg);
		d[mproc_shm_data_size(seg) - 1] = 1;
		done(seg);
	}
}

Test(anon, memfd_is_sealed_against_resizing)
{
	mproc_shm *seg = anon(pg());
	int fd = mproc_shm_fd(seg);
	int seals = fcntl(fd, F_GET_SEALS);
	cr_assert_geq(seals, 0, "F_GET_SEALS: %s", strerror(errno));
	cr_assert(seals & F_SEAL_GROW);
	cr_assert(seals & F_SEAL_SHRINK);
	cr_assert(seals & F_SEAL_SEAL, "seals can still be changed");
	struct stat st;
	cr_assert_eq(fstat(fd, &st), 0);
	cr_assert_eq(ftruncate(fd, st.st_size * 2), -1);
	cr_assert_eq(errno, EPERM);
	cr_assert_eq(ftruncate(fd, 10), -1);
	cr_assert_eq(errno, EPERM);
	cr_assert_eq(ftruncate(fd, 0), -1);
	cr_assert_eq(fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE), -1);
	done(seg);
}

Test(anon, descriptor_is_close_on_exec)
{
	mproc_shm *seg = anon(1);
	int fl = fcntl(mproc_shm_fd(seg), F_GETFD);
	cr_assert(fl >= 0 && (fl & FD_CLOEXEC));
	done(seg);
}

Test(anon, bad_arguments)
{
	mproc_shm *seg = (mproc_shm *)1;
	cr_assert_eq(mproc_shm_create(NULL, MPROC_SHM_KIND_RAW, NULL, 1, 0, NULL),
		     -EINVAL);
	cr_assert_eq(mproc_shm_create(NULL, MPROC_SHM_KIND_RAW, NULL, 0, 0, &seg),
		     -EINVAL);
	cr_assert_null(seg, "*out must be cleared on error");
	cr_assert_eq(mproc_shm_create(NULL, 0, NULL, 1, 0, &seg), -EINVAL);
	cr_assert_eq(mproc_shm_create(NULL, MPROC_SHM_KIND_MAX + 1, NULL, 1, 0,
				      &seg), -EINVAL);
	cr_assert_eq(mproc_shm_create(NULL, MPROC_SHM_KIND_RAW, NULL, SIZE_MAX,
				      0, &seg), -EINVAL);
	cr_assert_eq(mproc_shm_create(NULL, MPROC_SHM_KIND_RAW, NULL,
				      SIZE_MAX - 4096, 0, &seg), -EINVAL);
}

static int child_checks_and_writes(void *arg)
{
	mproc_shm *seg = arg;
	unsigned char *d = mproc_shm_data(seg);
	size_t n = mproc_shm_data_size(seg);
	for (size_t i = 0; i < n; i++)
		if (d[i] != (unsigned char)i)
			return 1;
	for (size_t i = 0; i < n; i++)
		d[i] = (unsigned char)(255 - i);
	return 0;
}

Test(anon, inherited_across_fork)
{
	mproc_shm *seg = anon(2 * pg());
	unsigned char *d = mproc_shm_data(seg);
	size_t n = mproc_shm_data_size(seg);
	for (size_t i = 0; i < n; i++)
		d[i] = (unsigned char)i;
	t_assert_exit0(t_join(t_fork(child_checks_and_writes, seg)), "child");
	for (size_t i = 0; i < n; i++)
		cr_assert_eq(d[i], (unsigned char)(255 - i), "byte %zu", i);
	done(seg);
}

/* ------------------------------------------------------- export / import */

static mproc_shm *tagged(size_t size)
{
	/* The helper checks that geom[1] is the rounded-up data size. */
	size_t total = (MPROC_SHM_HEADER_SIZE + size + pg() - 1) / pg() * pg();
	uint64_t geom[MPROC_SHM_GEOM_WORDS] = {GEOM_TAG,
					       total - MPROC_SHM_HEADER_SIZE};
	mproc_shm *seg = NULL;
	cr_assert_eq(mproc_shm_create(NULL, MPROC_SHM_KIND_RAW, geom, size, 0,
				      &seg), 0);
	cr_assert_eq(mproc_shm_data_size(seg), geom[1]);
	unsigned char *d = mproc_shm_data(seg);
	for (size_t i = 0; i < mproc_shm_data_size(seg); i++)
		d[i] = (unsigned char)(i * 7 + 1);
	cr_assert_eq(mproc_shm_publish(seg), 0);
	return seg;
}

static int run_helper(const char *token, const char *expect)
{
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		execl(IMPORT_HELPER, IMPORT_HELPER, token, expect, (char *)NULL);
		_exit(127);
	}
	return t_join(pid);
}

Test(anon, export_reaches_an_exec_child)
{
	mproc_shm *seg = tagged(3 * pg());
	char tok[MPROC_SHM_TOKEN_MAX];
	int n = mproc_shm_export(seg, tok, sizeof(tok));
	cr_assert_gt(n, 0, "export: %s", mproc_strerror(n));
	cr_assert_eq((size_t)n, strlen(tok));
	char want[MPROC_SHM_TOKEN_MAX];
	snprintf(want, sizeof(want), "mproc-shm:%d:%zu", mproc_shm_fd(seg),
		 mproc_shm_data_size(seg) + MPROC_SHM_HEADER_SIZE);
	cr_assert_str_eq(tok, want);
	int fl = fcntl(mproc_shm_fd(seg), F_GETFD);
	cr_assert(fl >= 0 && !(fl & FD_CLOEXEC), "export keeps FD_CLOEXEC");

	t_assert_exit0(run_helper(tok, "expect-ok"), "helper");
	unsigned char *d = mproc_shm_data(seg);
	cr_assert_eq(d[mproc_shm_data_size(seg) - 1], 0xa5,
		     "the child's write is not visible");
	done(seg);
}

Test(anon, without_export_an_exec_child_cannot_import)
{
	mproc_shm *seg = tagged(pg());
	char tok[MPROC_SHM_TOKEN_MAX];
	/* The token a successful export would have made; the descriptor
	 * stays close-on-exec, so the child must see -EBADF. */
	snprintf(tok, sizeof(tok), "mproc-shm:%d:%zu", mproc_shm_fd(seg),
		 mproc_shm_data_size(seg) + MPROC_SHM_HEADER_SIZE);
	char expect[32];
	snprintf(expect, sizeof(expect), "expect-%d", EBADF);
	t_assert_exit0(run_helper(tok, expect), "helper");
	done(seg);
}

Test(anon, export_errors)
{
	mproc_shm *seg = anon(1);
	char tok[MPROC_SHM_TOKEN_MAX];
	cr_assert_eq(mproc_shm_export(NULL, tok, sizeof(tok)), -EINVAL);
	cr_assert_eq(mproc_shm_export(seg, NULL, sizeof(tok)), -EINVAL);
	cr_assert_eq(mproc_shm_export(seg, tok, 5), -ENOSPC);
	cr_assert_eq(mproc_shm_export(seg, tok, 0), -ENOSPC);
	int fl = fcntl(mproc_shm_fd(seg), F_GETFD);
	cr_assert(fl & FD_CLOEXEC, "a failed export must not leak the fd");
	cr_assert_eq(mproc_shm_close(seg), 0);
	cr_assert_eq(mproc_shm_export(seg, tok, sizeof(tok)), -EBADF);
	mproc_shm_free(seg);
}

/* A token for a duplicate of @seg's descriptor, so that an in-process
 * import owns a descriptor of its own. */
static int dup_token(mproc_shm *seg, char *tok, size_t len, long size_delta)
{
	int fd = fcntl(mproc_shm_fd(seg), F_DUPFD_CLOEXEC, 0);
	cr_assert_geq(fd, 0);
	snprintf(tok, len, "mproc-shm:%d:%ld", fd,
		 (long)(mproc_shm_data_size(seg) + MPROC_SHM_HEADER_SIZE) +
			 size_delta);
	return fd;
}

Test(anon, import_in_process_shares_the_data)
{
	mproc_shm *seg = tagged(pg());
	char tok[MPROC_SHM_TOKEN_MAX];
	int fd = dup_token(seg, tok, sizeof(tok), 0);
	mproc_shm *imp = NULL;
	int rc = mproc_shm_import(tok, MPROC_SHM_KIND_RAW, NULL, NULL, &imp);
	cr_assert_eq(rc, 0, "import: %s", mproc_strerror(rc));
	cr_assert_eq(mproc_shm_fd(imp), fd);
	cr_assert_eq(mproc_shm_data_size(imp), mproc_shm_data_size(seg));
	cr_assert_eq(mproc_shm_geom(imp)[0], GEOM_TAG);
	unsigned char *a = mproc_shm_data(seg), *b = mproc_shm_data(imp);
	cr_assert_neq(a, b, "expected a second mapping");
	b[0] = 0x42;
	cr_assert_eq(a[0], 0x42);
	done(imp);
	/* Closing the imported handle closes only its own descriptor. */
	cr_assert_eq(fcntl(fd, F_GETFD), -1);
	cr_assert_geq(fcntl(mproc_shm_fd(seg), F_GETFD), 0);
	done(seg);
}

Test(anon, import_rejects_malformed_tokens)
{
	mproc_shm *seg = tagged(pg());
	char good[MPROC_SHM_TOKEN_MAX];
	int fd = dup_token(seg, good, sizeof(good), 0);
	size_t total = mproc_shm_data_size(seg) + MPROC_SHM_HEADER_SIZE;
	char t[12][128];
	snprintf(t[0], 128, "mproc-shm:%d", fd);
	snprintf(t[1], 128, "mproc-shm:%d:%zux", fd, total);
	snprintf(t[2], 128, "mproc-shm:%d:%zu:1", fd, total);
	snprintf(t[3], 128, "mproc-shm:x%d:%zu", fd, total);
	snprintf(t[4], 128, "mproc-shm:-%d:%zu", fd, total);
	snprintf(t[5], 128, "mproc-shm:%d:", fd);
	snprintf(t[6], 128, "mproc-seg:%d:%zu", fd, total);
	snprintf(t[7], 128, " mproc-shm:%d:%zu", fd, total);
	snprintf(t[8], 128, "mproc-shm: %d:%zu", fd, total);
	snprintf(t[9], 128, "mproc-shm:+%d:%zu", fd, total);
	snprintf(t[10], 128, "mproc-shm:%d:-%zu", fd, total);
	/* A descriptor number that wraps to ours in a 32-bit int. */
	snprintf(t[11], 128, "mproc-shm:%lld:%zu", fd + (1LL << 32), total);
	const char *fixed[] = {
		"", "mproc-shm:", "mproc-shm::", "garbage", "mproc-shm:a:b",
		"mproc-shm:99999999999999999999:4096",
	};
	mproc_shm *imp = (mproc_shm *)1;
	for (size_t i = 0; i < 12; i++) {
		cr_assert_eq(mproc_shm_import(t[i], MPROC_SHM_KIND_RAW, NULL,
					      NULL, &imp), -EINVAL,
			     "token \"%s\"", t[i]);
		cr_assert_null(imp);
	}
	for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
		cr_assert_eq(mproc_shm_import(fixed[i], MPROC_SHM_KIND_RAW,
					      NULL, NULL, &imp), -EINVAL,
			     "token \"%s\"", fixed[i]);
	cr_assert_eq(mproc_shm_import(NULL, MPROC_SHM_KIND_RAW, NULL, NULL,
				      &imp), -EINVAL);
	cr_assert_eq(mproc_shm_import(good, MPROC_SHM_KIND_RAW, NULL, NULL,
				      NULL), -EINVAL);
	cr_assert_eq(mproc_shm_import(good, 0, NULL, NULL, &imp), -EINVAL);
	/* The good token still works after all that. */
	cr_assert_eq(mproc_shm_import(good, MPROC_SHM_KIND_RAW, NULL, NULL,
				      &imp), 0);
	done(imp);
	done(seg);
}

Test(anon, import_of_a_closed_descriptor_is_ebadf)
{
	int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	cr_assert_geq(fd, 0);
	close(fd);
	char tok[MPROC_SHM_TOKEN_MAX];
	snprintf(tok, sizeof(tok), "mproc-shm:%d:4096", fd);
	mproc_shm *imp = NULL;
	cr_assert_eq(mproc_shm_import(tok, MPROC_SHM_KIND_RAW, NULL, NULL, &imp),
		     -EBADF);
	cr_assert_null(imp);
}

Test(anon, import_errors_leave_the_descriptor_to_the_caller)
{
	mproc_shm *seg = tagged(pg());
	char tok[MPROC_SHM_TOKEN_MAX];
	mproc_shm *imp = NULL;

	int fd = dup_token(seg, tok, sizeof(tok), 0);
	cr_assert_eq(mproc_shm_import(tok, MPROC_SHM_KIND_QUEUE, NULL, NULL,
				      &imp), -EPROTOTYPE);
	cr_assert_geq(fcntl(fd, F_GETFD), 0);
	close(fd);

	fd = dup_token(seg, tok, sizeof(tok), (long)pg());
	cr_assert_eq(mproc_shm_import(tok, MPROC_SHM_KIND_RAW, NULL, NULL,
				      &imp), -MPROC_ECORRUPT,
		     "a size that disagrees with the file");
	cr_assert_geq(fcntl(fd, F_GETFD), 0);
	close(fd);
	cr_assert_null(imp);
	done(seg);
}

Test(anon, import_of_an_unpublished_segment_is_eagain)
{
	mproc_shm *seg = anon(pg());
	char tok[MPROC_SHM_TOKEN_MAX];
	int fd = dup_token(seg, tok, sizeof(tok), 0);
	mproc_shm *imp = NULL;
	cr_assert_eq(mproc_shm_import(tok, MPROC_SHM_KIND_RAW, NULL, NULL, &imp),
		     -EAGAIN);
	cr_assert_eq(mproc_shm_publish(seg), 0);
	cr_assert_eq(mproc_shm_import(tok, MPROC_SHM_KIND_RAW, NULL, NULL, &imp),
		     0);
	cr_assert_eq(mproc_shm_fd(imp), fd);
	done(imp);
	done(seg);
}

Test(anon, import_of_something_else_is_corrupt)
{
	int p[2];
	cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
	char tok[MPROC_SHM_TOKEN_MAX];
	snprintf(tok, sizeof(tok), "mproc-shm:%d:4096", p[0]);
	mproc_shm *imp = NULL;
	int rc = mproc_shm_import(tok, MPROC_SHM_KIND_RAW, NULL, NULL, &imp);
	cr_assert_eq(rc, -MPROC_ECORRUPT, "pipe: %s", mproc_strerror(rc));
	close(p[0]);
	close(p[1]);
}

struct vctx {
	int calls;
	uint64_t geom0, data_size;
	int answer;
};

static int record_geom(const uint64_t geom[MPROC_SHM_GEOM_WORDS],
		       uint64_t data_size, void *ctx)
{
	struct vctx *v = ctx;
	v->calls++;
	v->geom0 = geom[0];
	v->data_size = data_size;
	return v->answer;
}

Test(anon, validate_callback_sees_the_geometry_and_decides)
{
	mproc_shm *seg = tagged(2 * pg());
	char tok[MPROC_SHM_TOKEN_MAX];
	mproc_shm *imp = NULL;
	struct vctx v = {.answer = 0};
	dup_token(seg, tok, sizeof(tok), 0);
	cr_assert_eq(mproc_shm_import(tok, MPROC_SHM_KIND_RAW, record_geom, &v,
				      &imp), 0);
	cr_assert_eq(v.calls, 1);
	cr_assert_eq(v.geom0, GEOM_TAG);
	cr_assert_eq(v.data_size, mproc_shm_data_size(seg));
	done(imp);

	v = (struct vctx){.answer = -ERANGE};
	int fd = dup_token(seg, tok, sizeof(tok), 0);
	cr_assert_eq(mproc_shm_import(tok, MPROC_SHM_KIND_RAW, record_geom, &v,
				      &imp), -ERANGE);
	cr_assert_eq(v.calls, 1);
	cr_assert_null(imp);
	close(fd);
	done(seg);
}

static bool registered(int fd)
{
	int fds[256];
	size_t n = mproc__fdreg_list(fds, 256);
	cr_assert_leq(n, 256);
	for (size_t i = 0; i < n; i++)
		if (fds[i] == fd)
			return true;
	return false;
}

Test(anon, registry_lists_live_anonymous_descriptors)
{
	mproc_shm *seg = tagged(pg());
	int fd = mproc_shm_fd(seg);
	cr_assert(registered(fd), "spawned children would not get the memfd");

	char tok[MPROC_SHM_TOKEN_MAX];
	int ifd = dup_token(seg, tok, sizeof(tok), 0);
	mproc_shm *imp = NULL;
	cr_assert_eq(mproc_shm_import(tok, MPROC_SHM_KIND_RAW, NULL, NULL, &imp),
		     0);
	cr_assert(registered(ifd), "imported segments are passed on too");
	done(imp);
	cr_assert_not(registered(ifd));
	done(seg);
	cr_assert_not(registered(fd), "closed descriptor still registered");

	/* More segments than the first array size reported in full. */
	mproc_shm *many[40];
	for (int i = 0; i < 40; i++)
		many[i] = anon(1);
	int small[4];
	cr_assert_geq(mproc__fdreg_list(small, 4), 40);
	for (int i = 0; i < 40; i++)
		done(many[i]);
}

/* --------------------------------------------------------------- named */

static mproc_shm *named(const char *name, size_t size, unsigned mode)
{
	uint64_t geom[MPROC_SHM_GEOM_WORDS] = {GEOM_TAG, 9};
	mproc_shm *seg = NULL;
	int rc = mproc_shm_create(name, MPROC_SHM_KIND_PIPE, geom, size, mode,
				  &seg);
	cr_assert_eq(rc, 0, "create %s: %s", name, mproc_strerror(rc));
	return seg;
}

static int open_named(const char *name, int flags, mproc_shm **out)
{
	return mproc_shm_open(name, MPROC_SHM_KIND_PIPE, flags, NULL, NULL, out);
}

Test(named, create_publish_open_share_data)
{
	const char *name = t_name();
	mproc_shm *seg = named(name, 2 * pg(), 0);
	cr_assert_str_eq(mproc_shm_name(seg), name);
	strcpy(mproc_shm_data(seg), "hello from the creator");
	cr_assert_eq(mproc_shm_publish(seg), 0);

	mproc_shm *o = NULL;
	int rc = open_named(name, 0, &o);
	cr_assert_eq(rc, 0, "open: %s", mproc_strerror(rc));
	cr_assert_str_eq(mproc_shm_name(o), name);
	cr_assert_str_eq(mproc_shm_data(o), "hello from the creator");
	cr_assert_eq(mproc_shm_data_size(o), mproc_shm_data_size(seg));
	cr_assert_eq(mproc_shm_geom(o)[0], GEOM_TAG);
	cr_assert_eq(mproc_shm_geom(o)[1], 9);
	strcpy(mproc_shm_data(o), "answer");
	cr_assert_str_eq(mproc_shm_data(seg), "answer");
	int fl = fcntl(mproc_shm_fd(o), F_GETFD);
	cr_assert(fl >= 0 && (fl & FD_CLOEXEC));
	done(o);
	done(seg);
	cr_assert_eq(mproc_shm_unlink(name), 0);
}

Test(named, create_is_exclusive_and_keeps_the_existing_one)
{
	const char *name = t_name();
	mproc_shm *seg = named(name, 1, 0);
	cr_assert_eq(mproc_shm_publish(seg), 0);
	mproc_shm *dup = (mproc_shm *)1;
	cr_assert_eq(mproc_shm_create(name, MPROC_SHM_KIND_PIPE, NULL, 1, 0,
				      &dup), -EEXIST);
	cr_assert_null(dup);
	/* The failed create must not have unlinked the name it lost. */
	mproc_shm *o = NULL;
	cr_assert_eq(open_named(name, 0, &o), 0);
	done(o);
	done(seg);
}

Test(named, default_mode_is_0600_whatever_the_umask)
{
	mode_t old = umask(0);
	const char *name = t_name();
	mproc_shm *seg = named(name, 1, 0);
	umask(old);
	struct stat st;
	cr_assert_eq(fstat(mproc_shm_fd(seg), &st), 0);
	cr_assert_eq(st.st_mode & 07777, 0600, "mode %o", st.st_mode & 07777);
	cr_assert_eq(st.st_uid, geteuid());
	done(seg);
}

Test(named, explicit_mode_is_exact)
{
	mode_t old = umask(077);
	const char *name = t_name();
	mproc_shm *seg = named(name, 1, 0640);
	umask(old);
	struct stat st;
	cr_assert_eq(fstat(mproc_shm_fd(seg), &st), 0);
	cr_assert_eq(st.st_mode & 07777, 0640, "mode %o", st.st_mode & 07777);
	done(seg);
}

Test(named, open_before_publish_is_eagain)
{
	const char *name = t_name();
	mproc_shm *seg = named(name, 1, 0);
	mproc_shm *o = (mproc_shm *)1;
	cr_assert_eq(open_named(name, 0, &o), -EAGAIN);
	cr_assert_null(o);
	cr_assert_eq(mproc_shm_publish(seg), 0);
	cr_assert_eq(open_named(name, 0, &o), 0);
	done(o);
	done(seg);
}

Test(named, open_of_a_sized_but_unwritten_object_is_eagain)
{
	/* What an opener sees between the creator's ftruncate and its header
	 * writes: zeros, so "not yet published". */
	const char *name = t_name();
	int fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL, 0600);
	cr_assert_geq(fd, 0);
	cr_assert_eq(ftruncate(fd, (off_t)pg()), 0);
	mproc_shm *o = NULL;
	cr_assert_eq(open_named(name, 0, &o), -EAGAIN);
	close(fd);
}

Test(named, open_of_an_empty_object_is_eagain)
{
	/* What an opener sees between the creator's shm_open and its
	 * ftruncate: the creator is not done, so the answer is "retry",
	 * not "corrupt". */
	const char *name = t_name();
	int fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL, 0600);
	cr_assert_geq(fd, 0);
	mproc_shm *o = NULL;
	int rc = open_named(name, 0, &o);
	cr_assert_eq(rc, -EAGAIN, "got %s", mproc_strerror(rc));
	close(fd);
}

Test(named, open_of_a_missing_name_is_enoent)
{
	const char *name = t_name();
	mproc_shm *o = (mproc_shm *)1;
	cr_assert_eq(open_named(name, 0, &o), -ENOENT);
	cr_assert_null(o);
}

Test(named, unlink_removes_the_name_not_the_mapping)
{
	const char *name = t_name();
	mproc_shm *seg = named(name, 1, 0);
	cr_assert_eq(mproc_shm_publish(seg), 0);
	cr_assert_eq(mproc_shm_unlink(name), 0);
	mproc_shm *o = NULL;
	cr_assert_eq(open_named(name, 0, &o), -ENOENT);
	cr_assert_eq(mproc_shm_unlink(name), -ENOENT);
	strcpy(mproc_shm_data(seg), "still mapped");
	cr_assert_str_eq(mproc_shm_data(seg), "still mapped");
	/* The name can be taken again by a new segment. */
	mproc_shm *again = named(name, 1, 0);
	done(again);
	done(seg);
}

Test(named, open_checks_kind_and_arguments)
{
	const char *name = t_name();
	mproc_shm *seg = named(name, 1, 0);
	cr_assert_eq(mproc_shm_publish(seg), 0);
	mproc_shm *o = NULL;
	cr_assert_eq(mproc_shm_open(name, MPROC_SHM_KIND_QUEUE, 0, NULL, NULL,
				    &o), -EPROTOTYPE);
	cr_assert_eq(mproc_shm_open(name, 0, 0, NULL, NULL, &o), -EINVAL);
	cr_assert_eq(mproc_shm_open(name, MPROC_SHM_KIND_MAX + 1, 0, NULL, NULL,
				    &o), -EINVAL);
	cr_assert_eq(mproc_shm_open(name, MPROC_SHM_KIND_PIPE, 0x100, NULL, NULL,
				    &o), -EINVAL, "unknown flags");
	cr_assert_eq(mproc_shm_open(name, MPROC_SHM_KIND_PIPE, 0, NULL, NULL,
				    NULL), -EINVAL);
	cr_assert_null(o);
	done(seg);
}

Test(named, name_rules)
{
	char longest[NAME_MAX + 2], too_long[NAME_MAX + 3];
	longest[0] = too_long[0] = '/';
	memset(longest + 1, 'a', NAME_MAX);
	longest[NAME_MAX + 1] = '\0';
	memset(too_long + 1, 'b', NAME_MAX + 1);
	too_long[NAME_MAX + 2] = '\0';
	const struct { const char *name; int rc; } cases[] = {
		{"/ok", 0}, {"/a.b-c_d", 0}, {"/...", 0}, {longest, 0},
		{NULL, -EINVAL}, {"", -EINVAL}, {"/", -EINVAL},
		{"noslash", -EINVAL}, {"/a/b", -EINVAL}, {"//a", -EINVAL},
		{"/a/", -EINVAL}, {"/.", -EINVAL}, {"/..", -EINVAL},
		{too_long, -ENAMETOOLONG},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *n = cases[i].name;
		int want = cases[i].rc;
		cr_assert_eq(mproc_shm_check_name(n), want, "check \"%s\"",
			     n ? n : "(null)");
		if (want == 0)
			continue;
		/* Every call taking a name applies the same rule (create
		 * takes NULL to mean anonymous). */
		mproc_shm *seg = NULL;
		if (n)
			cr_assert_eq(mproc_shm_create(n, MPROC_SHM_KIND_RAW,
						      NULL, 1, 0, &seg), want);
		cr_assert_eq(mproc_shm_open(n, MPROC_SHM_KIND_RAW, 0, NULL,
					    NULL, &seg), want);
		cr_assert_eq(mproc_shm_unlink(n), want);
	}
}

Test(named, longest_name_works)
{
	/* NAME_MAX characters after the slash, made unique by our pid. */
	char name[NAME_MAX + 2];
	int n = snprintf(name, sizeof(name), "/mproc-test-%ld-", (long)getpid());
	memset(name + n, 'x', NAME_MAX + 1 - (size_t)n);
	name[NAME_MAX + 1] = '\0';
	shm_unlink(name);
	mproc_shm *seg = NULL;
	cr_assert_eq(mproc_shm_create(name, MPROC_SHM_KIND_RAW, NULL, 1, 0, &seg),
		     0);
	cr_assert_eq(mproc_shm_unlink(name), 0);
	done(seg);
}

Test(named, foreign_owner_is_refused_unless_allowed)
{
	if (geteuid() != 0)
		cr_skip_test("needs root to hand the object to another uid");
	const char *name = t_name();
	mproc_shm *seg = named(name, 1, 0);
	cr_assert_eq(mproc_shm_publish(seg), 0);
	cr_assert_eq(fchown(mproc_shm_fd(seg), 4242, (gid_t)-1), 0);
	mproc_shm *o = (mproc_shm *)1;
	cr_assert_eq(open_named(name, 0, &o), -EACCES);
	cr_assert_null(o);
	int rc = open_named(name, MPROC_SHM_ALLOW_FOREIGN_OWNER, &o);
	cr_assert_eq(rc, 0, "allowed: %s", mproc_strerror(rc));
	done(o);
	done(seg);
}

/* ----------------------------------------------------------- lifecycle */

Test(lifecycle, double_close_is_ebadf)
{
	mproc_shm *seg = anon(1);
	int fd = mproc_shm_fd(seg);
	cr_assert_eq(mproc_shm_close(seg), 0);
	cr_assert_eq(fcntl(fd, F_GETFD), -1, "descriptor left open");
	cr_assert_eq(mproc_shm_close(seg), -EBADF);
	cr_assert_null(mproc_shm_data(seg));
	cr_assert_eq(mproc_shm_data_size(seg), 0);
	cr_assert_null(mproc_shm_header(seg));
	cr_assert_eq(mproc_shm_fd(seg), -EBADF);
	cr_assert_eq(mproc_shm_publish(seg), -EBADF);
	cr_assert_eq(mproc_shm_unmap(seg), -EBADF);
	mproc_shm_free(seg);
}

Test(lifecycle, double_close_of_a_named_segment)
{
	const char *name = t_name();
	mproc_shm *seg = named(name, 1, 0);
	cr_assert_eq(mproc_shm_close(seg), 0);
	cr_assert_eq(mproc_shm_close(seg), -EBADF);
	cr_assert_str_eq(mproc_shm_name(seg), name);
	mproc_shm_free(seg);
}

Test(lifecycle, unmap_then_close)
{
	mproc_shm *seg = anon(1);
	cr_assert_eq(mproc_shm_unmap(seg), 0);
	cr_assert_null(mproc_shm_data(seg));
	cr_assert_eq(mproc_shm_data_size(seg), 0);
	cr_assert_geq(mproc_shm_fd(seg), 0, "unmap must keep the descriptor");
	cr_assert_eq(mproc_shm_unmap(seg), -EBADF);
	cr_assert_eq(mproc_shm_publish(seg), -EBADF);
	cr_assert_eq(mproc_shm_close(seg), 0);
	cr_assert_eq(mproc_shm_close(seg), -EBADF);
	mproc_shm_free(seg);
}

Test(lifecycle, free_closes_what_is_open)
{
	mproc_shm *seg = anon(1);
	int fd = mproc_shm_fd(seg);
	mproc_shm_free(seg);
	cr_assert_eq(fcntl(fd, F_GETFD), -1);

	seg = anon(1);
	fd = mproc_shm_fd(seg);
	cr_assert_eq(mproc_shm_unmap(seg), 0);
	mproc_shm_free(seg);
	cr_assert_eq(fcntl(fd, F_GETFD), -1);
}

Test(lifecycle, null_handles)
{
	mproc_shm_free(NULL);
	cr_assert_eq(mproc_shm_close(NULL), -EINVAL);
	cr_assert_eq(mproc_shm_unmap(NULL), -EINVAL);
	cr_assert_eq(mproc_shm_publish(NULL), -EINVAL);
	cr_assert_eq(mproc_shm_fd(NULL), -EINVAL);
	cr_assert_null(mproc_shm_data(NULL));
	cr_assert_eq(mproc_shm_data_size(NULL), 0);
	cr_assert_null(mproc_shm_header(NULL));
	cr_assert_null(mproc_shm_geom(NULL));
	cr_assert_null(mproc_shm_name(NULL));
}
