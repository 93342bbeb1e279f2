/*
 * progress.c - what mproc-bench says on stderr while it runs: the progress
 * line (rewritten in place on a terminal, one line per round otherwise)
 * and notes, which are printed once each and kept for the table's footer.
 * Both share stderr, so a note first erases the progress line.  A leaf:
 * rows, row helpers and the harness call it; it calls nothing back.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

/* ---- progress line -------------------------------------------------- */

static bool progress_tty;
static bool progress_shown;

void bench__progress_init(bool tty)
{
	progress_tty = tty;
}

void bench__progress_clear(void)
{
	if (progress_shown) {
		fputs("\r\033[K", stderr);
		progress_shown = false;
	}
}

void bench__case_name(char *buf, size_t len, const struct bench_case *c)
{
	int n = snprintf(buf, len, "%s %s", c->impl->suite, c->impl->impl);
	if (c->case_name && n >= 0 && (size_t)n < len)
		n += snprintf(buf + n, len - (size_t)n, "/%s", c->case_name);
	if (c->msg_size && n >= 0 && (size_t)n < len) {
		size_t z = c->msg_size;
		if (z % BENCH_MIB == 0)
			n += snprintf(buf + n, len - (size_t)n, " %zu MiB",
				      z / BENCH_MIB);
		else if (z % BENCH_KIB == 0)
			n += snprintf(buf + n, len - (size_t)n, " %zu KiB",
				      z / BENCH_KIB);
		else
			n += snprintf(buf + n, len - (size_t)n, " %zu B", z);
	}
	if ((c->producers || c->consumers) && n >= 0 && (size_t)n < len)
		snprintf(buf + n, len - (size_t)n, " %d/%d", c->producers,
			 c->consumers);
}

void bench__progress(const char *suite, int round, int rounds, int done,
		     int total, const struct bench_case *c)
{
	char what[160];
	bench__case_name(what, sizeof what, c);
	if (progress_tty) {
		fprintf(stderr, "\r\033[K[%s round %d/%d, %d/%d] %s", suite,
			round + 1, rounds, done + 1, total, what);
		progress_shown = true;
	} else if (done == 0) {
		fprintf(stderr, "mproc-bench: %s round %d/%d (%d cases)\n",
			suite, round + 1, rounds, total);
	}
	fflush(stderr);
}

/* ---- notes ---------------------------------------------------------- */

#define MAX_NOTES 64
static char *notes[MAX_NOTES];
static int nnotes;

void bench_note(const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	for (int i = 0; i < nnotes; i++)
		if (strcmp(notes[i], buf) == 0)
			return;
	bench__progress_clear();
	fprintf(stderr, "mproc-bench: note: %s\n", buf);
	if (nnotes < MAX_NOTES) {
		notes[nnotes] = strdup(buf);
		if (notes[nnotes])
			nnotes++;
	}
}

int bench__notes(const char *const **out)
{
	*out = (const char *const *)notes;
	return nnotes;
}
