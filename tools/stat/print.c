/*
 * Writing a snapshot (stat.h): a text report for people and JSON for
 * scripts, with the same fields.  Rates (--watch) are the change of the
 * "got" counters, and of the consumed byte positions where the ring keeps
 * them (SPSC), since the previous snapshot of the same segment.
 */
#include <errno.h>
#include <math.h>
#include <string.h>

#include "mproc/common.h"
#include "ring/ring.h"
#include "json.h"
#include "stat.h"

static const char *ring_kind(int kind)
{
	return kind == MPROC__RING_SPSC ? "spsc" : "mpmc";
}

static const struct stat_seg *prev_seg(const struct stat_snap *prev,
				       const struct stat_seg *g)
{
	if (!prev)
		return NULL;
	for (unsigned i = 0; i < prev->nsegs; i++)
		if (prev->segs[i].ino == g->ino && prev->segs[i].dev == g->dev &&
		    !prev->segs[i].err)
			return &prev->segs[i];
	return NULL;
}

struct rate {
	bool known;
	double msgs, bytes;
	bool bytes_known;
};

static void rate_of(const struct stat_snap *s, const struct stat_snap *prev,
		    const struct stat_seg *g, struct rate *r)
{
	memset(r, 0, sizeof(*r));
	const struct stat_seg *p = prev_seg(prev, g);
	double dt = prev ? s->when - prev->when : 0;
	if (!p || g->err || !(dt > 0))
		return;
	struct stat_totals a, b;
	stat_totals(g, &a);
	stat_totals(p, &b);
	r->known = true;
	/* Unsigned differences: the counters are free-running. */
	r->msgs = (double)(uint64_t)(a.got - b.got) / dt;
	if (a.byte_totals && b.byte_totals) {
		r->bytes_known = true;
		r->bytes = (double)(uint64_t)(a.bytes_got - b.bytes_got) / dt;
	}
}

static void human(char *buf, size_t len, double v, const char *unit)
{
	static const char *const k[] = { "", "k", "M", "G", "T" };
	int i = 0;
	while (v >= 1000 && i < 4) {
		v /= 1000;
		i++;
	}
	snprintf(buf, len, i ? "%.1f %s%s" : "%.0f %s%s", v, k[i], unit);
}

static void bytes(char *buf, size_t len, uint64_t v)
{
	static const char *const k[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	int i = 0;
	double d = (double)v;
	while (d >= 1024 && i < 4) {
		d /= 1024;
		i++;
	}
	snprintf(buf, len, i ? "%.1f %s" : "%.0f %s", d, k[i]);
}

static const char *closed_word(int kind, uint32_t c)
{
	if (!c)
		return "open";
	/* The MPMC ring has one closed state (ring/mpmc.h). */
	if (kind == MPROC__RING_MPMC ||
	    c == (MPROC__RING_WR_CLOSED | MPROC__RING_RD_CLOSED))
		return "closed";
	return c & MPROC__RING_WR_CLOSED ? "closed for writing"
					  : "closed for reading";
}

static void text_ring(FILE *f, const struct mproc__ring_info *r, bool named)
{
	char cap[32], used[32];
	bytes(used, sizeof used, r->bytes_used);
	if (named)
		fprintf(f, "    %-10s ", r->name);
	else
		fputs("    ", f);
	if (r->kind == MPROC__RING_SPSC) {
		bytes(cap, sizeof cap, r->capacity);
		fprintf(f, "%s ring of %s", ring_kind(r->kind), cap);
	} else {
		bytes(cap, sizeof cap, r->max_msg);
		fprintf(f, "%s ring of %llu slots of %s", ring_kind(r->kind),
			(unsigned long long)r->capacity, cap);
	}
	fprintf(f, ", %llu queued (%s), put %llu, got %llu, %s",
		(unsigned long long)r->msgs, used,
		(unsigned long long)r->put_total,
		(unsigned long long)r->got_total, closed_word(r->kind, r->closed));
	if (r->get_waiters || r->put_waiters)
		fprintf(f, ", asleep: %u in get, %u in put", r->get_waiters,
			r->put_waiters);
	if (r->in_progress)
		fprintf(f, ", %u being written", r->in_progress);
	if (!r->consistent)
		fprintf(f, ", INCONSISTENT (%s)", r->problem);
	fputc('\n', f);
}

static void text_seg(FILE *f, const struct stat_snap *s,
		     const struct stat_snap *prev, const struct stat_seg *g)
{
	char size[32];
	bytes(size, sizeof size, g->size);
	const struct mproc__seg_info *in = &g->info;
	if (g->err) {
		fprintf(f, "%s  unreadable: %s\n", g->name,
			g->err == -EAGAIN ? "being created" : mproc_strerror(g->err));
	} else {
		fprintf(f, "%s  %s%s%s, %s", g->name, in->kind,
			in->variant ? " " : "", in->variant ? in->variant : "",
			size);
		if (in->joinable)
			fprintf(f, ", joinable: %llu unfinished, %u in join",
				(unsigned long long)in->unfinished,
				in->join_waiters);
		if (in->end_state[0])
			fprintf(f, ", end a %s, end b %s", in->end_state[0],
				in->end_state[1]);
		if (!strcmp(in->kind, "pool"))
			fprintf(f, ", %u workers (%u busy), pool thread %s",
				in->nworkers, in->busy_workers,
				in->doorbell_waiters ? "asleep" : "awake");
		if (!in->consistent)
			fprintf(f, ", INCONSISTENT (%s)", in->problem);
		fputc('\n', f);
		for (unsigned i = 0; i < in->nrings; i++)
			text_ring(f, &in->rings[i], in->nrings > 1);
		struct rate r;
		rate_of(s, prev, g, &r);
		if (r.known) {
			char m[32], b[32];
			human(m, sizeof m, r.msgs, " msg/s");
			human(b, sizeof b, r.bytes, "B/s");
			fprintf(f, "    rate %s%s%s\n", m,
				r.bytes_known ? ", " : "", r.bytes_known ? b : "");
		}
	}
	for (unsigned i = 0; i < g->nprocs; i++) {
		const struct stat_proc *p = &g->procs[i];
		fprintf(f, "    pid %-7d %-16s %-5s %s\n", (int)p->pid, p->comm,
			p->alive ? "alive" : "dead", p->roles);
	}
}

void stat_print_text(FILE *f, const struct stat_snap *s,
		     const struct stat_snap *prev)
{
	if (!s->nsegs)
		fputs("no mproc segments found\n", f);
	for (unsigned i = 0; i < s->nsegs; i++) {
		if (i)
			fputc('\n', f);
		text_seg(f, s, prev, &s->segs[i]);
	}
	if (s->skipped)
		fprintf(f, "\n(%u descriptors or files could not be opened; "
			   "run as their owner or root to see them)\n",
			s->skipped);
}

/* ---- JSON --------------------------------------------------------------- */

#define U(x) ((unsigned long long)(x))

static void json_ring(FILE *f, const struct mproc__ring_info *r)
{
	fputs("{\"name\":", f);
	mproc_tool_json_str(f, r->name);
	fprintf(f, ",\"kind\":\"%s\",\"capacity\":%llu,\"capacity_unit\":\"%s\""
		   ",\"max_msg\":%llu,\"bytes_used\":%llu,\"messages\":%llu"
		   ",\"put\":%llu,\"got\":%llu",
		ring_kind(r->kind), U(r->capacity),
		r->kind == MPROC__RING_SPSC ? "bytes" : "slots", U(r->max_msg),
		U(r->bytes_used), U(r->msgs), U(r->put_total), U(r->got_total));
	if (r->byte_totals)
		fprintf(f, ",\"bytes_put\":%llu,\"bytes_got\":%llu",
			U(r->bytes_put_total), U(r->bytes_got_total));
	fprintf(f, ",\"closed\":%s,\"closed_for_writing\":%s"
		   ",\"closed_for_reading\":%s"
		   ",\"waiters\":{\"get\":%u,\"put\":%u},\"in_progress\":%u"
		   ",\"consistent\":%s"
		   ",\"problem\":",
		r->closed ? "true" : "false",
		r->closed & MPROC__RING_WR_CLOSED ? "true" : "false",
		r->closed & MPROC__RING_RD_CLOSED ? "true" : "false",
		r->get_waiters, r->put_waiters, r->in_progress,
		r->consistent ? "true" : "false");
	mproc_tool_json_str(f, r->problem);
	fputc('}', f);
}

static void json_seg(FILE *f, const struct stat_snap *s,
		     const struct stat_snap *prev, const struct stat_seg *g)
{
	const struct mproc__seg_info *in = &g->info;
	fputs("{\"name\":", f);
	mproc_tool_json_str(f, g->name);
	fprintf(f, ",\"named\":%s,\"inode\":%llu,\"size\":%llu,\"error\":",
		g->named ? "true" : "false", U(g->ino), U(g->size));
	mproc_tool_json_str(f, g->err ? mproc_strerror(g->err) : NULL);
	if (!g->err) {
		struct stat_totals t;
		stat_totals(g, &t);
		fputs(",\"kind\":", f);
		mproc_tool_json_str(f, in->kind);
		fputs(",\"variant\":", f);
		mproc_tool_json_str(f, in->variant);
		fprintf(f, ",\"creator_uid\":%u,\"capacity\":%llu"
			   ",\"bytes_used\":%llu,\"messages\":%llu,\"put\":%llu"
			   ",\"got\":%llu,\"closed\":%s"
			   ",\"waiters\":{\"get\":%u,\"put\":%u}"
			   ",\"consistent\":%s,\"problem\":",
			g->creator_uid, U(t.capacity), U(t.bytes_used),
			U(t.msgs), U(t.put), U(t.got), t.closed ? "true" : "false",
			t.get_waiters, t.put_waiters,
			in->consistent ? "true" : "false");
		mproc_tool_json_str(f, in->problem);
		if (!strcmp(in->kind, "queue"))
			fprintf(f, ",\"joinable\":%s,\"unfinished\":%llu"
				   ",\"join_waiters\":%u",
				in->joinable ? "true" : "false",
				U(in->unfinished), in->join_waiters);
		if (in->end_state[0]) {
			fputs(",\"ends\":{\"a\":", f);
			mproc_tool_json_str(f, in->end_state[0]);
			fputs(",\"b\":", f);
			mproc_tool_json_str(f, in->end_state[1]);
			fputc('}', f);
		}
		if (!strcmp(in->kind, "pool"))
			fprintf(f, ",\"workers\":%u,\"busy_workers\":%u"
				   ",\"parent_pid\":%u,\"doorbell_waiters\":%u"
				   ",\"zygote_messages\":%llu",
				in->nworkers, in->busy_workers, in->parent_pid,
				in->doorbell_waiters, U(in->zygote_msgs));
		fputs(",\"rings\":[", f);
		for (unsigned i = 0; i < in->nrings; i++) {
			if (i)
				fputc(',', f);
			json_ring(f, &in->rings[i]);
		}
		fputc(']', f);
		struct rate r;
		rate_of(s, prev, g, &r);
		if (r.known) {
			fputs(",\"rate\":{\"messages_per_s\":", f);
			mproc_tool_json_num(f, r.msgs);
			fputs(",\"bytes_per_s\":", f);
			if (r.bytes_known)
				mproc_tool_json_num(f, r.bytes);
			else
				fputs("null", f);
			fputc('}', f);
		}
	}
	fputs(",\"processes\":[", f);
	for (unsigned i = 0; i < g->nprocs; i++) {
		const struct stat_proc *p = &g->procs[i];
		fprintf(f, "%s{\"pid\":%d,\"comm\":", i ? "," : "", (int)p->pid);
		mproc_tool_json_str(f, p->comm);
		fprintf(f, ",\"alive\":%s,\"attached\":%s,\"roles\":[",
			p->alive ? "true" : "false",
			p->attached ? "true" : "false");
		/* roles is a ", "-separated list (scan.c) */
		const char *r = p->roles;
		bool first = true;
		while (*r) {
			size_t n = strcspn(r, ",");
			char one[sizeof p->roles];
			snprintf(one, sizeof one, "%.*s", (int)n, r);
			fputs(first ? "" : ",", f);
			mproc_tool_json_str(f, one);
			first = false;
			r += n;
			while (*r == ',' || *r == ' ')
				r++;
		}
		fputs("]}", f);
	}
	fputs("]}", f);
}

void stat_print_json(FILE *f, const struct stat_snap *s,
		     const struct stat_snap *prev)
{
	fprintf(f, "{\"time\":%.3f,\"skipped\":%u,\"segments\":[", s->wall,
		s->skipped);
	for (unsigned i = 0; i < s->nsegs; i++) {
		if (i)
			fputc(',', f);
		json_seg(f, s, prev, &s->segs[i]);
	}
	fputs("]}\n", f);
}
