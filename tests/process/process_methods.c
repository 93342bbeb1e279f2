/*
 * Start methods and contexts: set/get_start_method, contexts, the same
 * target and bytes under all three methods, the "subclass" form, authkeys,
 * function pointers that cannot cross (-MPROC_ENOSYMBOL), targets in a
 * dlopen'd object, shared segments in spawned and forkserver children,
 * what those children inherit, and the forkserver's own failure modes.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sched.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "process_test.h"
#include "process/boot.h"
#include "process/core.h"
#include "common/fnref.h"
#include "process/forkserver.h"
#include "process/method.h"

TestSuite(context, .init = forget_worker_marker);
TestSuite(methods, .init = forget_worker_marker);
TestSuite(authkey, .init = forget_worker_marker);
TestSuite(fnref, .init = forget_worker_marker);
TestSuite(shm, .init = forget_worker_marker);
TestSuite(inherit, .init = forget_worker_marker);
TestSuite(forkserver, .init = forget_worker_marker);
TestSuite(threads, .init = forget_worker_marker);

static int nothing(void *arg, size_t len)
{
	(void)arg;
	(void)len;
	return 0;
}

/* ---- set_start_method / get_start_method / contexts -------------------- */

Test(context, set_start_method_once_unless_forced)
{
	cr_expect_null(mproc_get_start_method(true));
	cr_expect_eq(mproc_set_start_method("bogus", false), -EINVAL);
	cr_expect_eq(mproc_set_start_method(NULL, false), -EINVAL);
	cr_expect_null(mproc_get_start_method(true), "a failed call fixes nothing");
	cr_expect_eq(mproc_set_start_method("spawn", false), 0);
	cr_expect_str_eq(mproc_get_start_method(true), "spawn");
	cr_expect_eq(mproc_set_start_method("fork", false), -EBUSY);
	cr_expect_eq(mproc_set_start_method("spawn", false), -EBUSY);
	cr_expect_str_eq(mproc_get_start_method(false), "spawn");
	cr_expect_eq(mproc_set_start_method("forkserver", true), 0);
	cr_expect_str_eq(mproc_get_start_method(false), "forkserver");
	cr_expect_eq(mproc_set_start_method(NULL, true), 0);
	cr_expect_null(mproc_get_start_method(true));
}

Test(context, default_is_fork_and_first_use_fixes_it)
{
	cr_expect_str_eq(mproc_get_start_method(false), "fork");
	cr_expect_eq(mproc_set_start_method("spawn", false), -EBUSY);
}

Test(context, starting_a_default_process_fixes_the_method, .timeout = 30)
{
	mproc_process *p;
	cr_assert_eq(mproc_process_create(NULL, nothing, NULL, 0, &p), 0);
	cr_expect_null(mproc_process_start_method(p));
	cr_assert_eq(mproc_process_start(p), 0);
	cr_expect_str_eq(mproc_process_start_method(p), "fork");
	cr_expect_str_eq(mproc_get_start_method(true), "fork");
	cr_expect_eq(mproc_set_start_method("spawn", false), -EBUSY);
	cr_expect_eq(mproc_process_join(p, MPROC_FOREVER), 0);
	mproc_process_free(p);
}

static int report_method(void *arg, size_t len)
{
	const char *m = mproc_process_start_method(mproc_current_process());
	return m && len == strlen(m) && !memcmp(arg, m, len) ? 0 : 1;
}

Test(context, default_context_follows_set_start_method, .timeout = 60)
{
	for (int m = 0; m < N_METHODS; m++) {
		cr_assert_eq(mproc_set_start_method(all_methods[m], true), 0);
		mproc_process *p;
		const char *meth = all_methods[m];
		cr_assert_eq(mproc_process_create(NULL, report_method, meth,
						  strlen(meth), &p), 0);
		cr_assert_eq(mproc_process_start(p), 0);
		cr_expect_str_eq(mproc_process_start_method(p), meth);
		cr_expect_eq(mproc_process_join(p, MPROC_FOREVER), 0);
		int code;
		cr_expect_eq(mproc_process_exitcode(p, &code), 0);
		cr_expect_eq(code, 0, "child did not run under %s", meth);
		mproc_process_free(p);
	}
}

Test(context, get_context)
{
	mproc_context *c = NULL, *d = NULL;
	cr_expect_eq(mproc_get_context("bogus", &c), -EINVAL);
	cr_expect_eq(mproc_get_context("fork", NULL), -EINVAL);
	for (int m = 0; m < N_METHODS; m++) {
		cr_assert_eq(mproc_get_context(all_methods[m], &c), 0);
		cr_expect_str_eq(mproc_context_get_start_method(c), all_methods[m]);
		cr_assert_eq(mproc_get_context(all_methods[m], &d), 0);
		cr_expect_eq(c, d, "contexts are singletons");
	}
	cr_expect_null(mproc_context_get_start_method(NULL));
	/* A context does not fix the default; NULL asks for the default and
	 * does. */
	cr_expect_null(mproc_get_start_method(true));
	cr_assert_eq(mproc_get_context(NULL, &c), 0);
	cr_expect_str_eq(mproc_context_get_start_method(c), "fork");
	cr_expect_eq(mproc_set_start_method("spawn", false), -EBUSY);
}

Test(context, all_start_methods)
{
	const char *names[4] = { 0 };
	cr_expect_eq(mproc_get_all_start_methods(NULL, 0), 3);
	cr_expect_eq(mproc_get_all_start_methods(NULL, 2), -EINVAL);
	cr_assert_eq(mproc_get_all_start_methods(names, 4), 3);
	cr_expect_str_eq(names[0], "fork");
	cr_expect_str_eq(names[1], "spawn");
	cr_expect_str_eq(names[2], "forkserver");
	cr_expect_null(names[3]);
}

/* ---- the same target and bytes under every method ---------------------- */

/* Argument layout: 4 bytes of checksum, then the payload. */
static int check_bytes(void *arg, size_t len)
{
	uint32_t want;
	if (len < sizeof(want) || ((uintptr_t)arg % _Alignof(max_align_t)))
		return 1;
	memcpy(&want, arg, sizeof(want));
	return fnv1a((char *)arg + sizeof(want), len - sizeof(want)) == want ? 0 : 2;
}

static void *make_payload(size_t len)
{
	uint8_t *buf = malloc(len);
	cr_assert_not_null(buf);
	for (size_t i = 4; i < len; i++)
		buf[i] = (uint8_t)(i * 131u + 7u);
	uint32_t sum = fnv1a(buf + 4, len - 4);
	memcpy(buf, &sum, sizeof(sum));
	return buf;
}

Test(methods, same_target_same_bytes_everywhere, .timeout = 60)
{
	/* Around 16 KiB too: the forkserver carries smaller start data in
	 * its request and larger in a memfd. */
	size_t sizes[] = { 4, 5, 4096, 16000, 16384, 17000, 1 << 20 };
	for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
		void *buf = make_payload(sizes[s]);
		for (int m = 0; m < N_METHODS; m++)
			cr_expect_eq(run_target(all_methods[m], check_bytes, buf, sizes[s]),
				     0, "%s, %zu bytes", all_methods[m], sizes[s]);
		free(buf);
	}
}

static int arg_is_null(void *arg, size_t len)
{
	return arg == NULL && len == 0 ? 0 : 1;
}

Test(methods, empty_argument_is_null, .timeout = 60)
{
	for (int m = 0; m < N_METHODS; m++)
		cr_expect_eq(run_target(all_methods[m], arg_is_null, NULL, 0), 0);
}

/* ---- the "subclass" form ----------------------------------------------- */

struct my_state {
	int max;
	char expect_name[32];
};

static int my_run(mproc_process *self, void *state, size_t len)
{
	struct my_state *st = state;
	if (len != sizeof(*st) || self != mproc_current_process())
		return 100;
	if (strcmp(mproc_process_name(self), st->expect_name))
		return 101;
	int sum = 0;
	for (int i = 0; i < st->max; i++)
		sum += i;
	return sum; /* max = 10 -> 45 */
}

Test(methods, ops_form_runs_run_with_self_and_state, .timeout = 60)
{
	static const struct mproc_process_ops my_ops = { "MyProcess", my_run };
	for (int m = 0; m < N_METHODS; m++) {
		struct my_state st = { .max = 10 };
		mproc_process *p;
		cr_assert_eq(mproc_process_create_ops(ctx_of(all_methods[m]), &my_ops,
						      &st, sizeof(st), &p), 0);
		/* Two handles per round: this one is number 2m+1. */
		char first[32];
		snprintf(first, sizeof(first), "MyProcess-%d", 2 * m + 1);
		cr_expect_str_eq(mproc_process_name(p), first);
		snprintf(st.expect_name, sizeof(st.expect_name), "my-%s", all_methods[m]);
		/* The state was copied at create: pass the name through a
		 * fresh handle instead of mutating st after the fact. */
		mproc_process_free(p);
		cr_assert_eq(mproc_process_create_ops(ctx_of(all_methods[m]), &my_ops,
						      &st, sizeof(st), &p), 0);
		cr_assert_eq(mproc_process_set_name(p, st.expect_name), 0);
		cr_assert_eq(mproc_process_start(p), 0);
		cr_expect_eq(mproc_process_join(p, MPROC_FOREVER), 0);
		int code;
		cr_expect_eq(mproc_process_exitcode(p, &code), 0);
		cr_expect_eq(code, 45, "%s: %d", all_methods[m], code);
		mproc_process_free(p);
	}
}

Test(methods, ops_type_name_defaults_to_process)
{
	struct mproc_process_ops ops = { NULL, my_run };
	mproc_process *p;
	cr_assert_eq(mproc_process_create_ops(NULL, &ops, NULL, 0, &p), 0);
	cr_expect_str_eq(mproc_process_name(p), "Process-1");
	mproc_process_free(p);
}

/* ---- authkey ----------------------------------------------------------- */

static int key_matches(void *arg, size_t len)
{
	uint8_t key[MPROC_AUTHKEY_SIZE];
	if (len != sizeof(key))
		return 1;
	if (mproc_process_authkey(mproc_current_process(), key))
		return 2;
	return memcmp(key, arg, sizeof(key)) ? 3 : 0;
}

Test(authkey, main_key_is_random_and_stable)
{
	uint8_t a[MPROC_AUTHKEY_SIZE], b[MPROC_AUTHKEY_SIZE], zero[MPROC_AUTHKEY_SIZE] = { 0 };
	cr_assert_eq(mproc_process_authkey(mproc_current_process(), a), 0);
	cr_assert_eq(mproc_process_authkey(mproc_current_process(), b), 0);
	cr_expect_eq(memcmp(a, b, sizeof(a)), 0);
	cr_expect_neq(memcmp(a, zero, sizeof(a)), 0);
	cr_expect_eq(mproc_process_authkey(NULL, a), -EINVAL);
	cr_expect_eq(mproc_process_authkey(mproc_current_process(), NULL), -EINVAL);
}

Test(authkey, children_inherit_it_under_every_method, .timeout = 60)
{
	uint8_t key[MPROC_AUTHKEY_SIZE];
	cr_assert_eq(mproc_process_authkey(mproc_current_process(), key), 0);
	for (int m = 0; m < N_METHODS; m++)
		cr_expect_eq(run_target(all_methods[m], key_matches, key, sizeof(key)),
			     0, "%s", all_methods[m]);
}

Test(authkey, set_before_start_and_on_the_current_process, .timeout = 60)
{
	uint8_t key[MPROC_AUTHKEY_SIZE];
	for (int m = 0; m < N_METHODS; m++) {
		memset(key, 0x40 + m, sizeof(key));
		mproc_process *p;
		cr_assert_eq(mproc_process_create(ctx_of(all_methods[m]), key_matches,
						  key, sizeof(key), &p), 0);
		cr_assert_eq(mproc_process_set_authkey(p, key), 0);
		uint8_t got[MPROC_AUTHKEY_SIZE];
		cr_assert_eq(mproc_process_authkey(p, got), 0);
		cr_expect_eq(memcmp(got, key, sizeof(key)), 0);
		cr_assert_eq(mproc_process_start(p), 0);
		cr_expect_eq(mproc_process_set_authkey(p, key), -EALREADY);
		cr_expect_eq(mproc_process_join(p, MPROC_FOREVER), 0);
		int code;
		cr_expect_eq(mproc_process_exitcode(p, &code), 0);
		cr_expect_eq(code, 0, "%s", all_methods[m]);
		mproc_process_free(p);
	}
	/* A new key for the current process is what new processes copy. */
	memset(key, 0x5a, sizeof(key));
	cr_assert_eq(mproc_process_set_authkey(mproc_current_process(), key), 0);
	cr_expect_eq(run_target("spawn", key_matches, key, sizeof(key)), 0);
}

/* ---- function pointers that cannot cross ------------------------------- */

static int data_word = 42;

Test(fnref, unresolvable_targets_fail_at_start)
{
	void *heap = malloc(64);
	int on_stack = 0;
	const void *bad[] = { heap, &on_stack, &data_word };
	for (size_t b = 0; b < sizeof(bad) / sizeof(bad[0]); b++) {
		for (int m = 1; m < N_METHODS; m++) { /* spawn, forkserver */
			mproc_process *p;
			mproc_target_fn t = (mproc_target_fn)(uintptr_t)bad[b];
			cr_assert_eq(mproc_process_create(ctx_of(all_methods[m]), t,
							  NULL, 0, &p), 0);
			cr_expect_eq(mproc_process_start(p), -MPROC_ENOSYMBOL,
				     "%s, pointer %zu", all_methods[m], b);
			/* Nothing was started. */
			cr_expect_eq(mproc_process_pid(p), -ECHILD);
			cr_expect_eq(mproc_process_join(p, 0), -ECHILD);
			mproc_process_free(p);
		}
	}
	free(heap);
}

Test(fnref, round_trip_in_this_image)
{
	struct mproc__fnref ref;
	void *back = NULL;
	char why[256];
	cr_assert_eq(mproc__fnref_encode((const void *)(uintptr_t)nothing, &ref), 0);
	cr_expect(ref.is_main);
	cr_expect_null(ref.path);
	cr_assert_eq(mproc__fnref_resolve(&ref, &back, why, sizeof(why)), 0, "%s", why);
	cr_expect_eq((uintptr_t)back, (uintptr_t)nothing);
	mproc__fnref_clear(&ref);

	/* A function of a shared library (libc). */
	const void *lib = (const void *)(uintptr_t)getpid;
	cr_assert_eq(mproc__fnref_encode(lib, &ref), 0);
	cr_expect_not(ref.is_main);
	cr_assert_not_null(ref.path);
	cr_expect_eq(ref.path[0], '/');
	cr_assert_eq(mproc__fnref_resolve(&ref, &back, why, sizeof(why)), 0, "%s", why);
	cr_expect_eq((uintptr_t)back, (uintptr_t)lib);
	mproc__fnref_clear(&ref);

	cr_expect_eq(mproc__fnref_encode(NULL, &ref), -MPROC_ENOSYMBOL);
	cr_expect_eq(mproc__fnref_encode(&data_word, &ref), -MPROC_ENOSYMBOL);
}

Test(fnref, child_side_validation_rejects_mismatches)
{
	struct mproc__fnref ref;
	void *back;
	char why[256];
	cr_assert_eq(mproc__fnref_encode((const void *)(uintptr_t)getpid, &ref), 0);
	uint64_t good = ref.offset;

	ref.offset = 0; /* the ELF header: not code */
	cr_expect_eq(mproc__fnref_resolve(&ref, &back, why, sizeof(why)), -MPROC_ENOSYMBOL);
	ref.offset = UINT64_MAX - 16;
	cr_expect_eq(mproc__fnref_resolve(&ref, &back, why, sizeof(why)), -MPROC_ENOSYMBOL);
	ref.offset = good;

	if (ref.build_id_len) {
		ref.build_id[0] ^= 0xff;
		cr_expect_eq(mproc__fnref_resolve(&ref, &back, why, sizeof(why)),
			     -MPROC_ENOSYMBOL);
		ref.build_id[0] ^= 0xff;
	}
	if (ref.symbol) {
		char *sym = ref.symbol;
		ref.symbol = (char *)"no_such_symbol";
		cr_expect_eq(mproc__fnref_resolve(&ref, &back, why, sizeof(why)),
			     -MPROC_ENOSYMBOL);
		ref.symbol = sym;
	}
	char *path = ref.path;
	ref.path = (char *)"/nonexistent/libnothing.so";
	cr_expect_eq(mproc__fnref_resolve(&ref, &back, why, sizeof(why)), -MPROC_ENOSYMBOL);
	ref.path = (char *)"relative/lib.so";
	cr_expect_eq(mproc__fnref_resolve(&ref, &back, why, sizeof(why)), -MPROC_ENOSYMBOL);
	ref.path = path;
	cr_expect_eq(mproc__fnref_resolve(&ref, &back, why, sizeof(why)), 0, "%s", why);
	mproc__fnref_clear(&ref);
}

Test(fnref, malformed_start_data_is_rejected)
{
	int fd = memfd_create("bad-boot", MFD_CLOEXEC);
	cr_assert_geq(fd, 0);
	char junk[200];
	memset(junk, 0x41, sizeof(junk));
	cr_assert_eq(write(fd, junk, sizeof(junk)), (ssize_t)sizeof(junk));
	mproc_process *self = NULL;
	struct mproc__proc_parent parent = { 0, NULL, -1 };
	int *fds = NULL;
	size_t n;
	char why[256];
	const struct mproc__proc_method *spawn = &mproc__proc_spawn_method;
	cr_expect_eq(mproc__proc_boot_read(fd, spawn, &self, &parent, &fds, &n, why, sizeof(why)),
		     -EPROTO);
	cr_expect_null(self);
	close(fd);
	/* Every truncation of a valid blob is rejected too. */
	mproc_process *p;
	cr_assert_eq(mproc_process_create(NULL, nothing, "abc", 3, &p), 0);
	p->method = spawn;
	p->starter_pidfd = 42; /* only its number is written */
	int good = mproc__proc_boot_write(p, NULL, 0);
	cr_assert_geq(good, 0);
	off_t size = lseek(good, 0, SEEK_END);
	cr_assert_gt(size, 0);
	char *blob = malloc((size_t)size);
	cr_assert_eq(pread(good, blob, (size_t)size, 0), size);
	for (off_t cut = 1; cut < size; cut++) {
		int t = memfd_create("cut-boot", MFD_CLOEXEC);
		cr_assert_eq(write(t, blob, (size_t)cut), cut);
		int rc = mproc__proc_boot_read(t, spawn, &self, &parent, &fds, &n, why, sizeof(why));
		cr_expect_eq(rc, -EPROTO, "cut at %lld: %d", (long long)cut, rc);
		close(t);
	}
	cr_expect_eq(mproc__proc_boot_read(good, &mproc__proc_forkserver_method, &self, &parent,
					   &fds, &n, why, sizeof(why)),
		     -EPROTO, "start data of a spawn child read as a forkserver child's");
	cr_assert_eq(mproc__proc_boot_read(good, spawn, &self, &parent, &fds, &n, why, sizeof(why)), 0,
		     "%s", why);
	cr_expect_eq(self->len, 3u);
	cr_expect_eq(memcmp(self->arg, "abc", 3), 0);
	cr_expect_eq(parent.pid, getpid());
	cr_expect_str_eq(parent.name, "MainProcess");
	cr_expect_eq(parent.pidfd, 42);
	free(parent.name);
	free(fds);
	mproc__proc_release(self);
	free(blob);
	close(good);
	mproc_process_free(p);
}

/* ---- a target inside an object loaded with dlopen ---------------------- */

Test(fnref, target_in_a_dlopened_object, .timeout = 60)
{
	void *h = dlopen(MPROC_TEST_PLUGIN, RTLD_NOW | RTLD_LOCAL);
	cr_assert_not_null(h, "%s", dlerror());
	mproc_target_fn t = (mproc_target_fn)(uintptr_t)dlsym(h, "plugin_target");
	cr_assert_not_null(t);
	int v = 5;
	for (int m = 0; m < N_METHODS; m++)
		cr_expect_eq(run_target(all_methods[m], t, &v, sizeof(v)), 5 * 11,
			     "%s", all_methods[m]);
	/* Not closed: a process started from it could still be running in
	 * other tests' designs; here it simply lives until exit. */
}

/* ---- shared segments in children --------------------------------------- */

struct seg_arg {
	char token[MPROC_SHM_TOKEN_MAX];
	uint32_t seed;
	size_t half;
};

static int seg_child(void *arg, size_t len)
{
	struct seg_arg a;
	if (len != sizeof(a))
		return 1;
	memcpy(&a, arg, sizeof(a));
	mproc_shm *seg;
	if (mproc_shm_import(a.token, MPROC_SHM_KIND_RAW, NULL, NULL, &seg))
		return 2;
	uint8_t *d = mproc_shm_data(seg);
	for (size_t i = 0; i < a.half; i++)
		if (d[i] != (uint8_t)(i * a.seed))
			return 3;
	for (size_t i = 0; i < a.half; i++)
		d[a.half + i] = (uint8_t)(i * a.seed + 1);
	mproc_shm_free(seg);
	return 0;
}

Test(shm, anonymous_segment_is_shared_with_every_method, .timeout = 60)
{
	for (int m = 0; m < N_METHODS; m++) {
		mproc_shm *seg;
		cr_assert_eq(mproc_shm_create(NULL, MPROC_SHM_KIND_RAW, NULL, 65536, 0, &seg), 0);
		struct seg_arg a = { .seed = 17u + (uint32_t)m, .half = 32768 };
		uint8_t *d = mproc_shm_data(seg);
		for (size_t i = 0; i < a.half; i++)
			d[i] = (uint8_t)(i * a.seed);
		cr_assert_eq(mproc_shm_publish(seg), 0);
		cr_assert_gt(mproc_shm_export(seg, a.token, sizeof(a.token)), 0);
		cr_expect_eq(run_target(all_methods[m], seg_child, &a, sizeof(a)), 0,
			     "%s", all_methods[m]);
		for (size_t i = 0; i < a.half; i++)
			if (d[a.half + i] != (uint8_t)(i * a.seed + 1)) {
				cr_expect_fail("%s: byte %zu not written by the child",
					       all_methods[m], i);
				break;
			}
		mproc_shm_free(seg);
	}
}

/* More segments than one SCM_RIGHTS message can carry (253). */
struct many_arg {
	char first[MPROC_SHM_TOKEN_MAX];
	char last[MPROC_SHM_TOKEN_MAX];
};

static int many_child(void *arg, size_t len)
{
	struct many_arg a;
	if (len != sizeof(a))
		return 1;
	memcpy(&a, arg, sizeof(a));
	const char *tok[2] = { a.first, a.last };
	for (int i = 0; i < 2; i++) {
		mproc_shm *seg;
		if (mproc_shm_import(tok[i], MPROC_SHM_KIND_RAW, NULL, NULL, &seg))
			return 2 + i;
		if (*(uint32_t *)mproc_shm_data(seg) != (i ? 299u : 1000u))
			return 4 + i;
		mproc_shm_free(seg);
	}
	return 0;
}

Test(shm, hundreds_of_segments_reach_the_child, .timeout = 60)
{
	enum { N = 300 };
	mproc_shm **segs = calloc(N, sizeof(*segs));
	for (int i = 0; i < N; i++) {
		cr_assert_eq(mproc_shm_create(NULL, MPROC_SHM_KIND_RAW, NULL, 64, 0,
					      &segs[i]), 0, "segment %d", i);
		*(uint32_t *)mproc_shm_data(segs[i]) = i ? (uint32_t)i : 1000u;
		cr_assert_eq(mproc_shm_publish(segs[i]), 0);
	}
	struct many_arg a;
	cr_assert_gt(mproc_shm_export(segs[0], a.first, sizeof(a.first)), 0);
	cr_assert_gt(mproc_shm_export(segs[N - 1], a.last, sizeof(a.last)), 0);
	for (int m = 0; m < N_METHODS; m++)
		cr_expect_eq(run_target(all_methods[m], many_child, &a, sizeof(a)), 0,
			     "%s", all_methods[m]);
	for (int i = 0; i < N; i++)
		mproc_shm_free(segs[i]);
	free(segs);
}

/* Queues created before start: the child echoes what comes in on one
 * queue back on another. */
struct echo_arg {
	char in[MPROC_QUEUE_TOKEN_MAX];
	char out[MPROC_QUEUE_TOKEN_MAX];
};

static int queue_echo(void *arg, size_t len)
{
	struct echo_arg a;
	mproc_queue *in, *out;
	if (len != sizeof(a))
		return 1;
	memcpy(&a, arg, sizeof(a));
	if (mproc_queue_import(a.in, 0, &in) || mproc_queue_import(a.out, 0, &out))
		return 2;
	char buf[64];
	int rc = 0;
	for (int i = 0; i < 10 && !rc; i++) {
		ssize_t n = mproc_queue_get(in, buf, sizeof(buf), 30 * MPROC_SEC);
		if (n < 1)
			rc = 3;
		else if (mproc_queue_put(out, buf, (size_t)n, 30 * MPROC_SEC) != n)
			rc = 4;
	}
	mproc_queue_free(in);
	mproc_queue_free(out);
	return rc;
}

Test(shm, queues_created_before_start_work_in_the_child, .timeout = 60)
{
	for (int m = 0; m < N_METHODS; m++) {
		mproc_queue *to_child, *to_parent;
		struct echo_arg a;
		cr_assert_eq(mproc_queue_create(NULL, &to_child), 0);
		cr_assert_eq(mproc_queue_create(NULL, &to_parent), 0);
		cr_assert_gt(mproc_queue_export(to_child, a.in, sizeof(a.in)), 0);
		cr_assert_gt(mproc_queue_export(to_parent, a.out, sizeof(a.out)), 0);
		mproc_process *p;
		cr_assert_eq(mproc_process_create(ctx_of(all_methods[m]), queue_echo,
						  &a, sizeof(a), &p), 0);
		cr_assert_eq(mproc_process_start(p), 0);
		for (int i = 0; i < 10; i++) {
			char msg[32], back[32];
			int n = snprintf(msg, sizeof(msg), "m%d-%s", i, all_methods[m]);
			cr_assert_eq(mproc_queue_put(to_child, msg, (size_t)n, MPROC_FOREVER), n);
			ssize_t got = mproc_queue_get(to_parent, back, sizeof(back),
						      30 * MPROC_SEC);
			cr_assert_eq(got, n, "%s: %zd", all_methods[m], got);
			cr_expect_eq(memcmp(back, msg, (size_t)n), 0);
		}
		cr_expect_eq(mproc_process_join(p, MPROC_FOREVER), 0);
		int code;
		cr_expect_eq(mproc_process_exitcode(p, &code), 0);
		cr_expect_eq(code, 0, "%s", all_methods[m]);
		mproc_process_free(p);
		mproc_queue_free(to_child);
		mproc_queue_free(to_parent);
	}
}

/* ---- what fresh children inherit ----------------------------------------- */

static int fd_is_closed(void *arg, size_t len)
{
	int fd;
	if (len != sizeof(fd))
		return 1;
	memcpy(&fd, arg, sizeof(fd));
	return fcntl(fd, F_GETFD) < 0 && errno == EBADF ? 0 : 2;
}

Test(inherit, unrelated_descriptors_are_not_inherited, .timeout = 60)
{
	/* Without O_CLOEXEC, and above the others, so that nothing the
	 * child opens early takes its number. */
	int fd = fcntl(open("/dev/null", O_RDONLY), F_DUPFD, 900);
	cr_assert_geq(fd, 900);
	for (int m = 1; m < N_METHODS; m++) /* spawn, forkserver */
		cr_expect_eq(run_target(all_methods[m], fd_is_closed, &fd, sizeof(fd)),
			     0, "%s leaked descriptor %d", all_methods[m], fd);
	close(fd);
}

static int write_hello(void *arg, size_t len)
{
	return write(1, arg, len) == (ssize_t)len ? 0 : 1;
}

Test(inherit, children_write_to_the_current_stdout, .timeout = 60)
{
	/* Start the forkserver first, then redirect: its children must
	 * still write where the requester's stdout points now. */
	cr_assert_eq(run_target("forkserver", nothing, NULL, 0), 0);
	char path[] = "/tmp/mproc-stdout-XXXXXX";
	int tmp = mkstemp(path);
	cr_assert_geq(tmp, 0);
	unlink(path);
	fflush(stdout);
	int saved = dup(1);
	cr_assert_eq(dup2(tmp, 1), 1);
	for (int m = 0; m < N_METHODS; m++) {
		char line[64];
		int n = snprintf(line, sizeof(line), "hello from %s\n", all_methods[m]);
		int code = run_target(all_methods[m], write_hello, line, (size_t)n);
		cr_expect_eq(code, 0);
	}
	dup2(saved, 1);
	close(saved);
	char buf[256] = { 0 };
	cr_assert_gt(pread(tmp, buf, sizeof(buf) - 1, 0), 0);
	close(tmp);
	cr_expect_str_eq(buf, "hello from fork\nhello from spawn\nhello from forkserver\n");
}

/* ps and top show a child under the program's name, not "exe" (the
 * name the kernel gives an image started through /proc/self/exe). */
static int comm_is(void *arg, size_t len)
{
	char comm[32] = "";
	FILE *f = fopen("/proc/self/comm", "r");
	if (!f || !fgets(comm, sizeof(comm), f))
		return 1;
	fclose(f);
	comm[strcspn(comm, "\n")] = '\0';
	return strlen(comm) == len && !memcmp(comm, arg, len) ? 0 : 2;
}

Test(inherit, children_keep_the_program_name, .timeout = 60)
{
	char comm[32] = "";
	FILE *f = fopen("/proc/self/comm", "r");
	cr_assert_not_null(f);
	cr_assert_not_null(fgets(comm, sizeof(comm), f));
	fclose(f);
	comm[strcspn(comm, "\n")] = '\0';
	/* A Criterion worker runs as "boxfort-worker"; the executable's own
	 * name is what a re-executed child gets. */
	const char *want = "process_unit";
	for (int m = 0; m < N_METHODS; m++) {
		const char *expect = m == 0 ? comm : want; /* fork keeps ours */
		cr_expect_eq(run_target(all_methods[m], comm_is, expect, strlen(expect)),
			     0, "%s", all_methods[m]);
	}
}

/* ---- the forkserver itself ---------------------------------------------- */

Test(forkserver, one_server_serves_many_children, .timeout = 60)
{
	cr_assert_eq(run_target("forkserver", nothing, NULL, 0), 0);
	pid_t server = mproc__proc_forkserver_pid();
	cr_assert_gt(server, 0);
	for (int i = 0; i < 5; i++)
		cr_expect_eq(run_target("forkserver", nothing, NULL, 0), 0);
	cr_expect_eq(mproc__proc_forkserver_pid(), server);
}

static int report_parent(void *arg, size_t len)
{
	(void)arg;
	(void)len;
	/* The OS parent is the server; the logical parent is the owner. */
	return getppid() != mproc_parent_pid() ? 0 : 1;
}

Test(forkserver, children_are_forked_by_the_server, .timeout = 60)
{
	cr_expect_eq(run_target("forkserver", report_parent, NULL, 0), 0);
}

Test(forkserver, server_death_is_reported_and_survived, .timeout = 60)
{
	mproc_process *p;
	cr_assert_eq(mproc_process_create(ctx_of("forkserver"), sleep_forever,
					  NULL, 0, &p), 0);
	cr_assert_eq(mproc_process_start(p), 0);
	pid_t server = mproc__proc_forkserver_pid();
	cr_assert_gt(server, 0);
	cr_assert_eq(kill(server, SIGKILL), 0);
	/* The (non-daemon) child outlives the server... */
	usleep(100 * 1000);
	cr_expect_eq(mproc_process_is_alive(p), 1);
	cr_expect_eq(mproc_process_join(p, 100 * MPROC_MSEC), 0);
	cr_expect_eq(mproc_process_is_alive(p), 1);
	/* ...can still be signalled and joined, but its status is lost. */
	cr_expect_eq(mproc_process_kill(p), 0);
	cr_expect_eq(mproc_process_join(p, 30 * MPROC_SEC), 0);
	cr_expect_eq(mproc_process_is_alive(p), 0);
	int code;
	cr_expect_eq(mproc_process_exitcode(p, &code), -MPROC_EPEERDIED);
	mproc_process_free(p);
	/* The next start brings up a new server. */
	cr_expect_eq(run_target("forkserver", nothing, NULL, 0), 0);
	pid_t again = mproc__proc_forkserver_pid();
	cr_expect_gt(again, 0);
	cr_expect_neq(again, server);
}

/* ---- forking while another thread runs ---------------------------------- */

static pthread_mutex_t held = PTHREAD_MUTEX_INITIALIZER;
static _Atomic int stop_thread;
static _Atomic int thread_ready;

static void *busy_holder(void *unused)
{
	(void)unused;
	pthread_mutex_lock(&held);
	atomic_store(&thread_ready, 1);
	/* Exercise malloc and stdio, whose locks glibc keeps fork-safe. */
	while (!atomic_load(&stop_thread)) {
		void *p = malloc(1000);
		char buf[64];
		snprintf(buf, sizeof(buf), "%p", p);
		free(p);
	}
	pthread_mutex_unlock(&held);
	return NULL;
}

static int try_held_lock(void *arg, size_t len)
{
	(void)arg;
	(void)len;
	void *p = malloc(4096); /* must not deadlock */
	free(p);
	if (pthread_mutex_trylock(&held) != 0)
		return 1; /* held by a thread that does not exist here */
	pthread_mutex_unlock(&held);
	return 0;
}

Test(threads, starting_while_another_thread_runs, .timeout = 60)
{
	pthread_t t;
	atomic_store(&stop_thread, 0);
	cr_assert_eq(pthread_create(&t, NULL, busy_holder, NULL), 0);
	while (!atomic_load(&thread_ready))
		sched_yield();
	for (int round = 0; round < 5; round++) {
		/* fork: the documented hazard - the lock stays held. */
		cr_expect_eq(run_target("fork", try_held_lock, NULL, 0), 1);
		/* spawn and forkserver start from a fresh image. */
		cr_expect_eq(run_target("spawn", try_held_lock, NULL, 0), 0);
		cr_expect_eq(run_target("forkserver", try_held_lock, NULL, 0), 0);
	}
	atomic_store(&stop_thread, 1);
	pthread_join(t, NULL);
}
