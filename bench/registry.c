/*
 * registry.c - what the harness knows before it runs anything: the rows
 * (registered from constructors), the early hooks, the executable's own
 * path, the figures and their names, and the suites with their default
 * sizes and primary figure.  Data only: this file calls no other file of
 * the benchmark.
 */
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

/* ---- rows and hooks ------------------------------------------------- */

static struct bench_impl *registry_head, **registry_tail = &registry_head;

void bench_register(struct bench_impl *impl)
{
	impl->next_ = NULL;
	*registry_tail = impl;
	registry_tail = &impl->next_;
}

const struct bench_impl *bench__registry(void)
{
	return registry_head;
}

#define MAX_HOOKS 16
static bench_early_hook_fn hooks[MAX_HOOKS];
static int nhooks;

void bench_register_early_hook(bench_early_hook_fn fn)
{
	if (nhooks < MAX_HOOKS)
		hooks[nhooks++] = fn;
}

void bench__run_early_hooks(int argc, char **argv)
{
	for (int i = 0; i < nhooks; i++)
		hooks[i](argc, argv);
}

static char self_exe[PATH_MAX];

void bench__set_self_exe(const char *argv0)
{
	ssize_t l = readlink("/proc/self/exe", self_exe, sizeof self_exe - 1);
	if (l > 0)
		self_exe[l] = '\0';
	else
		snprintf(self_exe, sizeof self_exe, "%s", argv0);
}

const char *bench_self_exe(void)
{
	return self_exe;
}

/* ---- figures -------------------------------------------------------- */

static const char *const fig_names[BENCH_NFIGS] = {
	[BENCH_MSGS_PER_SEC] = "msgs_per_sec",
	[BENCH_BYTES_PER_SEC] = "bytes_per_sec",
	[BENCH_RTT_NS] = "rtt_ns",
	[BENCH_START_JOIN_US] = "start_join_us",
	[BENCH_TASKS_PER_SEC] = "tasks_per_sec",
	[BENCH_RTT_US] = "rtt_us",
};

/* Column headings in the table. */
static const char *const fig_heads[BENCH_NFIGS] = {
	[BENCH_MSGS_PER_SEC] = "msgs/s",
	[BENCH_BYTES_PER_SEC] = "bytes/s",
	[BENCH_RTT_NS] = "round trip",
	[BENCH_START_JOIN_US] = "start+join",
	[BENCH_TASKS_PER_SEC] = "tasks/s",
	[BENCH_RTT_US] = "round trip",
};

const char *bench_fig_name(enum bench_fig f)
{
	return (unsigned)f < BENCH_NFIGS ? fig_names[f] : "?";
}

const char *bench__fig_head(enum bench_fig f)
{
	return (unsigned)f < BENCH_NFIGS ? fig_heads[f] : "?";
}

bool bench_fig_lower_is_better(enum bench_fig f)
{
	return f == BENCH_RTT_NS || f == BENCH_START_JOIN_US ||
	       f == BENCH_RTT_US;
}

/* ---- suites --------------------------------------------------------- */

static const size_t no_sizes[] = {0, 0};

static const struct bench_suite known_suites[] = {
	{"throughput", "messages streamed from producers to consumers",
	 BENCH_SIZES(64, 256, BENCH_KIB, 4 * BENCH_KIB, 64 * BENCH_KIB,
		     BENCH_MIB),
	 BENCH_SIZES(64, 4 * BENCH_KIB, BENCH_MIB), BENCH_MSGS_PER_SEC, true},
	{"latency", "round trip of one message between two processes",
	 BENCH_SIZES(64), BENCH_SIZES(64), BENCH_RTT_NS, true},
	{"process", "start and join a process that does nothing", no_sizes,
	 no_sizes, BENCH_START_JOIN_US, false},
	{"pool", "tasks through a pool of worker processes", no_sizes,
	 no_sizes, BENCH_TASKS_PER_SEC, false},
};
#define NKNOWN (sizeof known_suites / sizeof known_suites[0])

const struct bench_suite *bench__suite(const char *name)
{
	static const struct bench_suite other = {
		NULL, "", no_sizes, no_sizes, BENCH_MSGS_PER_SEC, false};
	for (size_t i = 0; i < NKNOWN; i++)
		if (strcmp(known_suites[i].name, name) == 0)
			return &known_suites[i];
	return &other;
}

int bench__suite_cmp(const char *a, const char *b)
{
	size_t ra = NKNOWN, rb = NKNOWN;
	for (size_t i = 0; i < NKNOWN; i++) {
		if (strcmp(known_suites[i].name, a) == 0)
			ra = i;
		if (strcmp(known_suites[i].name, b) == 0)
			rb = i;
	}
	if (ra != rb)
		return ra < rb ? -1 : 1;
	return strcmp(a, b);
}
