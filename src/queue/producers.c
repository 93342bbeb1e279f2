/*
 * The producer table of MPROC_QUEUE_WATCH_PRODUCERS (queue.h): producers
 * name themselves in it once per process, and a consumer that waits on an
 * empty queue asks, between its sleep slices, whether any of them lives.
 * The invariants P1-P3 and the ordering edges Q1-Q2 are in layout.h.
 */
#include <stdbool.h>

#include "common/fork.h"
#include "common/os.h"
#include "queue/layout.h"

/* Take entry @i for @id if it holds @expect (0, or a dead producer). */
static bool take(struct queue_producers *t, int i, uint64_t expect,
		 uint64_t id)
{
	/* Q1: seq_cst, ordered before the store of ever below. */
	return atomic_compare_exchange_strong(&t->ident[i], &expect, id);
}

void mproc__queue_producer_register(struct queue_producers *t)
{
	uint64_t id = mproc__proc_ident(mproc__self_pid());
	bool named = false;
	if (id != 0) {
		/* Already named (another handle of this process)? */
		for (int i = 0; i < QUEUE_PRODUCERS && !named; i++)
			named = atomic_load(&t->ident[i]) == id;
		for (int i = 0; i < QUEUE_PRODUCERS && !named; i++)
			named = take(t, i, 0, id);
		/* Full: reuse the entry of a producer that has ended (P1).
		 * Reads /proc per entry, but only here, once per process. */
		for (int i = 0; i < QUEUE_PRODUCERS && !named; i++) {
			uint64_t old = atomic_load(&t->ident[i]);
			named = old != 0 && !mproc__proc_ident_alive(old) &&
				take(t, i, old, id);
		}
	}
	if (named)
		atomic_store(&t->ever, 1); /* Q1: after the entry */
	else
		atomic_store(&t->overflow, 1); /* P3: nobody can tell now */
}

int mproc__queue_producers_alive(void *table)
{
	struct queue_producers *t = table;
	/* Q1: acquire (seq_cst) load of ever, then the entries. */
	if (!atomic_load(&t->ever) || atomic_load(&t->overflow))
		return 0;
	for (int i = 0; i < QUEUE_PRODUCERS; i++) {
		uint64_t id = atomic_load(&t->ident[i]);
		if (id != 0 && mproc__proc_ident_alive(id))
			return 0;
	}
	return -MPROC_EPEERDIED;
}
