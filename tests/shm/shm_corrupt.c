/*
 * Corrupted and hostile segment headers.  Each test publishes a good named
 * segment, damages it through a second mapping of its file (as a buggy or
 * hostile peer could), and checks that mproc_shm_open answers with the
 * documented error instead of trusting the header.  Nothing here may crash
 * or read out of bounds; the suite also runs under ASan and UBSan.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>

#include "shm_test.h"

TestSuite(corrupt, .fini = t_cleanup_names, .timeout = 30);

struct victim {
	const char *name;
	int fd;                      /* our own descriptor of the file */
	size_t size;
	struct mproc_shm_header *h;  /* a second, writable mapping */
};

static size_t pg(void) { return (size_t)sysconf(_SC_PAGESIZE); }

/* A published QUEUE segment with two data pages and geometry {8, 16}. */
static struct victim make_victim(void)
{
	struct victim v = {.name = t_name()};
	uint64_t geom[MPROC_SHM_GEOM_WORDS] = {8, 16};
	mproc_shm *seg = NULL;
	cr_assert_eq(mproc_shm_create(v.name, MPROC_SHM_KIND_QUEUE, geom,
				      2 * pg(), 0, &seg), 0);
	cr_assert_eq(mproc_shm_publish(seg), 0);
	mproc_shm_free(seg);

	v.fd = shm_open(v.name, O_RDWR | O_CLOEXEC, 0);
	cr_assert_geq(v.fd, 0);
	struct stat st;
	cr_assert_eq(fstat(v.fd, &st), 0);
	v.size = (size_t)st.st_size;
	v.h = mmap(NULL, v.size, PROT_READ | PROT_WRITE, MAP_SHARED, v.fd, 0);
	cr_assert_neq(v.h, MAP_FAILED);
	return v;
}

static int reopen(const struct victim *v, mproc_shm_validate_fn fn, void *ctx)
{
	mproc_shm *seg = (mproc_shm *)1;
	int rc = mproc_shm_open(v->name, MPROC_SHM_KIND_QUEUE, 0, fn, ctx, &seg);
	if (rc == 0) {
		cr_assert_not_null(seg);
		mproc_shm_free(seg);
	} else {
		cr_assert_null(seg, "*out set although open failed");
	}
	return rc;
}

#define expect(v, want)                                                     \
	do {                                                                \
		int rc_ = reopen(&(v), NULL, NULL);                         \
		cr_assert_eq(rc_, (want), "got %d (%s), want %d (%s)", rc_, \
			     mproc_strerror(rc_), (want),                   \
			     mproc_strerror(want));                         \
	} while (0)

Test(corrupt, untouched_victim_opens)
{
	struct victim v = make_victim();
	expect(v, 0);
}

Test(corrupt, wrong_magic)
{
	struct victim v = make_victim();
	v.h->magic ^= 1;
	expect(v, -MPROC_ECORRUPT);
	v.h->magic = UINT64_MAX;
	expect(v, -MPROC_ECORRUPT);
}

Test(corrupt, zero_magic_means_not_yet_published)
{
	struct victim v = make_victim();
	v.h->magic = 0;
	expect(v, -EAGAIN);
}

Test(corrupt, other_layout_version)
{
	struct victim v = make_victim();
	v.h->version = MPROC_SHM_VERSION + 1;
	expect(v, -EPROTONOSUPPORT);
	v.h->version = 0;
	expect(v, -EPROTONOSUPPORT);
}

Test(corrupt, other_kind_is_eprototype)
{
	struct victim v = make_victim();
	v.h->kind = MPROC_SHM_KIND_PIPE;
	expect(v, -EPROTOTYPE);
	v.h->kind = MPROC_SHM_KIND_RAW;
	expect(v, -EPROTOTYPE);
}

Test(corrupt, out_of_range_kind_is_corrupt)
{
	struct victim v = make_victim();
	const uint32_t bad[] = {0, MPROC_SHM_KIND_MAX + 1, 1000, UINT32_MAX};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		v.h->kind = bad[i];
		expect(v, -MPROC_ECORRUPT);
	}
}

Test(corrupt, total_size_disagrees_with_the_file)
{
	struct victim v = make_victim();
	const uint64_t good = v.h->total_size;
	const uint64_t bad[] = {good + 1, good + pg(), good * 1000,
				UINT64_MAX, good - 1, good - pg(), 0};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		v.h->total_size = bad[i];
		expect(v, -MPROC_ECORRUPT);
	}
}

Test(corrupt, truncated_below_the_header)
{
	struct victim v = make_victim();
	munmap(v.h, v.size);
	cr_assert_eq(ftruncate(v.fd, 10), 0);
	expect(v, -MPROC_ECORRUPT);
	cr_assert_eq(ftruncate(v.fd, MPROC_SHM_HEADER_SIZE - 1), 0);
	expect(v, -MPROC_ECORRUPT);
}

Test(corrupt, file_shorter_than_total_size)
{
	/* The header is intact but the data area is gone: trusting
	 * total_size would map past the end of the file (SIGBUS). */
	struct victim v = make_victim();
	munmap(v.h, v.size);
	cr_assert_eq(ftruncate(v.fd, MPROC_SHM_HEADER_SIZE), 0);
	expect(v, -MPROC_ECORRUPT);
	cr_assert_eq(ftruncate(v.fd, (off_t)(v.size - pg())), 0);
	expect(v, -MPROC_ECORRUPT);
}

Test(corrupt, file_longer_than_total_size)
{
	struct victim v = make_victim();
	cr_assert_eq(ftruncate(v.fd, (off_t)(v.size + pg())), 0);
	expect(v, -MPROC_ECORRUPT);
}

Test(corrupt, data_offset_inconsistent)
{
	struct victim v = make_victim();
	const uint64_t bad[] = {0, 8, MPROC_SHM_HEADER_SIZE - 1,
				MPROC_SHM_HEADER_SIZE + 1, v.size, UINT64_MAX};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		v.h->data_offset = bad[i];
		expect(v, -MPROC_ECORRUPT);
	}
}

Test(corrupt, data_size_inconsistent)
{
	struct victim v = make_victim();
	const uint64_t good = v.h->data_size;
	const uint64_t bad[] = {good + 1, good - 1, 0, v.size, UINT64_MAX};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		v.h->data_size = bad[i];
		expect(v, -MPROC_ECORRUPT);
	}
}

/* A queue-like geometry check: geom[0] slots of geom[1] bytes must fit. */
static int slots_fit(const uint64_t geom[MPROC_SHM_GEOM_WORDS],
		     uint64_t data_size, void *ctx)
{
	int *calls = ctx;
	if (calls)
		(*calls)++;
	if (geom[0] == 0 || geom[1] == 0 || geom[1] > data_size ||
	    geom[0] > data_size / geom[1])
		return -MPROC_ECORRUPT;
	return 0;
}

static int always_erange(const uint64_t geom[MPROC_SHM_GEOM_WORDS],
			 uint64_t data_size, void *ctx)
{
	(void)geom, (void)data_size, (void)ctx;
	return -ERANGE;
}

Test(corrupt, geometry_rejected_by_the_validate_callback)
{
	struct victim v = make_victim();
	int calls = 0;
	cr_assert_eq(reopen(&v, slots_fit, &calls), 0);
	cr_assert_eq(calls, 1);

	v.h->geom[0] = UINT64_MAX / 2; /* slots * size overflows */
	cr_assert_eq(reopen(&v, slots_fit, &calls), -MPROC_ECORRUPT);
	v.h->geom[0] = 8;
	v.h->geom[1] = v.h->data_size + 1;
	cr_assert_eq(reopen(&v, slots_fit, &calls), -MPROC_ECORRUPT);
	v.h->geom[1] = 16;
	cr_assert_eq(reopen(&v, slots_fit, &calls), 0);
	/* Whatever the callback returns is what the caller gets. */
	cr_assert_eq(reopen(&v, always_erange, NULL), -ERANGE);
}

Test(corrupt, callback_is_not_consulted_for_a_bad_header)
{
	struct victim v = make_victim();
	int calls = 0;
	v.h->data_size = 0;
	cr_assert_eq(reopen(&v, slots_fit, &calls), -MPROC_ECORRUPT);
	cr_assert_eq(calls, 0, "validate saw an unchecked header");
}

Test(corrupt, later_scribbles_do_not_reach_an_open_handle)
{
	/* Open copies the geometry and sizes; a peer that rewrites the
	 * header afterwards must not change what this process uses. */
	struct victim v = make_victim();
	mproc_shm *seg = NULL;
	cr_assert_eq(mproc_shm_open(v.name, MPROC_SHM_KIND_QUEUE, 0, NULL, NULL,
				    &seg), 0);
	size_t n = mproc_shm_data_size(seg);
	v.h->data_size = UINT64_MAX;
	v.h->total_size = UINT64_MAX;
	v.h->geom[0] = 0xdead;
	cr_assert_eq(mproc_shm_data_size(seg), n);
	cr_assert_eq(mproc_shm_geom(seg)[0], 8);
	memset(mproc_shm_data(seg), 0x5a, n); /* still exactly in bounds */
	mproc_shm_free(seg);
}

Test(corrupt, damage_written_to_the_file_in_dev_shm)
{
	/* The same checks hold when the file is rewritten with write(2)
	 * rather than through a mapping. */
	struct victim v = make_victim();
	char path[128];
	snprintf(path, sizeof(path), "/dev/shm%s", v.name);
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		cr_skip_test("no %s: shm_open is not backed by /dev/shm", path);
	uint32_t kind = 77;
	cr_assert_eq(pwrite(fd, &kind, sizeof(kind),
			    offsetof(struct mproc_shm_header, kind)),
		     (ssize_t)sizeof(kind));
	close(fd);
	expect(v, -MPROC_ECORRUPT);
}

Test(corrupt, import_validates_the_same_way)
{
	mproc_shm *seg = NULL;
	cr_assert_eq(mproc_shm_create(NULL, MPROC_SHM_KIND_QUEUE, NULL, 1, 0,
				      &seg), 0);
	cr_assert_eq(mproc_shm_publish(seg), 0);
	struct mproc_shm_header *h =
		(struct mproc_shm_header *)mproc_shm_header(seg);
	const struct { uint64_t *field; uint64_t value; int rc; } cases[] = {
		{&h->magic, 12345, -MPROC_ECORRUPT},
		{&h->total_size, 1 << 30, -MPROC_ECORRUPT},
		{&h->data_offset, 0, -MPROC_ECORRUPT},
		{&h->data_size, 1, -MPROC_ECORRUPT},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint64_t saved = *cases[i].field;
		*cases[i].field = cases[i].value;
		int fd = fcntl(mproc_shm_fd(seg), F_DUPFD_CLOEXEC, 0);
		char tok[MPROC_SHM_TOKEN_MAX];
		snprintf(tok, sizeof(tok), "mproc-shm:%d:%zu", fd,
			 mproc_shm_data_size(seg) + MPROC_SHM_HEADER_SIZE);
		mproc_shm *imp = NULL;
		cr_assert_eq(mproc_shm_import(tok, MPROC_SHM_KIND_QUEUE, NULL,
					      NULL, &imp), cases[i].rc,
			     "case %zu", i);
		close(fd);
		*cases[i].field = saved;
	}
	mproc_shm_free(seg);
}

/* xorshift64: a reproducible stream of hostile values. */
static uint64_t next_rand(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

Test(corrupt, random_header_damage_never_crashes)
{
	struct victim v = make_victim();
	struct mproc_shm_header good = *v.h;
	uint64_t seed = 0x9e3779b97f4a7c15ull;
	const uint64_t interesting[] = {
		0, 1, 7, MPROC_SHM_HEADER_SIZE, v.size, v.size - 1, v.size + 1,
		good.data_size, UINT32_MAX, (uint64_t)INT64_MAX, UINT64_MAX,
	};
	for (int round = 0; round < 2000; round++) {
		*v.h = good;
		/* Damage one to three 64-bit words of the fixed header,
		 * mostly with values that sit near a boundary. */
		uint64_t *w = (uint64_t *)v.h;
		int damage = 1 + (int)(next_rand(&seed) % 3);
		for (int k = 0; k < damage; k++) {
			size_t at = next_rand(&seed) %
				    (sizeof(struct mproc_shm_header) / 8);
			uint64_t r = next_rand(&seed);
			w[at] = (r & 1) ? interesting[(r >> 1) %
				(sizeof(interesting) / sizeof(interesting[0]))]
					: next_rand(&seed);
		}
		int rc = reopen(&v, slots_fit, NULL);
		cr_assert(rc == 0 || rc == -MPROC_ECORRUPT || rc == -EAGAIN ||
				  rc == -EPROTONOSUPPORT || rc == -EPROTOTYPE,
			  "round %d: unexpected %d (%s)", round, rc,
			  mproc_strerror(rc));
		if (rc == 0) {
			/* Accepted headers must be self-consistent. */
			cr_assert_eq(v.h->magic, MPROC_SHM_MAGIC);
			cr_assert_eq(v.h->total_size, v.size);
			cr_assert_eq(v.h->data_size,
				     v.size - MPROC_SHM_HEADER_SIZE);
		}
	}
}
