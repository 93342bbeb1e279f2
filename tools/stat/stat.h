/*
 * mproc-stat: what the inspector knows about one snapshot of the system.
 *
 * scan.c finds every mproc segment this user can see (named ones in
 * /dev/shm, anonymous memfds through /proc/PID/fd and /proc/PID/maps),
 * maps each read-only and asks the owning module to describe it
 * (src/<module>/inspect.c); print.c writes a snapshot as text or JSON,
 * with rates against the previous snapshot in --watch; main.c parses the
 * command line and runs the refresh loop.
 */
#ifndef MPROC_STAT_H
#define MPROC_STAT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "ring/inspect.h"

/* A process related to a segment: it holds a descriptor or a mapping of
 * it, or the segment names it (ring/inspect.h, struct mproc__seg_pid). */
struct stat_proc {
	pid_t pid;
	char comm[32];    /* /proc/PID/comm, "?" when unreadable */
	bool alive;
	bool attached;    /* holds a descriptor or a mapping now */
	char roles[160];  /* "creator, fd 5, mapped", comma-separated */
};

struct stat_seg {
	dev_t dev;
	ino_t ino;
	char name[300];   /* "/jobs" (named) or "memfd:INODE" */
	bool named;
	int err;          /* 0, or why it could not be described */
	uint32_t shm_kind;
	uint64_t size;    /* file size */
	uint32_t creator_uid;
	struct mproc__seg_info info;
	struct stat_proc *procs;
	unsigned nprocs, cap_procs;
};

struct stat_snap {
	struct stat_seg *segs;
	unsigned nsegs, cap_segs;
	double when;      /* CLOCK_MONOTONIC seconds */
	double wall;      /* CLOCK_REALTIME seconds */
	unsigned skipped; /* descriptors or files we could not open */
};

/* Fill @s with every segment visible now.  Returns 0 or -ENOMEM. */
int stat_scan(struct stat_snap *s);
void stat_snap_free(struct stat_snap *s);
/* Keep only the segments named @name ("/jobs", "jobs", "memfd:INODE") or,
 * when @pid > 0, those that process holds or is named in.  Returns how
 * many are left. */
unsigned stat_filter(struct stat_snap *s, const char *name, pid_t pid);

/* Segment-wide sums over the rings. */
struct stat_totals {
	uint64_t capacity, bytes_used, msgs, put, got;
	bool byte_totals;
	uint64_t bytes_got;
	uint32_t get_waiters, put_waiters;
	bool closed;      /* every ring closed one way or the other */
};
void stat_totals(const struct stat_seg *g, struct stat_totals *t);

/* Output.  @prev: the previous snapshot for rates, or NULL. */
void stat_print_text(FILE *f, const struct stat_snap *s,
		     const struct stat_snap *prev);
void stat_print_json(FILE *f, const struct stat_snap *s,
		     const struct stat_snap *prev);

#endif /* MPROC_STAT_H */
