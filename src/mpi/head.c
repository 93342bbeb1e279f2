/*
 * The head of a pool over MPI: the MPI transport of the pool's engine
 * (pool/internal.h, "The transport seam"), on rank 0.
 *
 * A pool created with the "mpi" context has one slot per agent rank.  The
 * engine drives those slots as it drives local workers -- task messages
 * out, result messages back, a window of chunks in flight per slot, a
 * slot's results in the order its chunks went out -- and this file carries
 * the messages over MPI instead of shared-memory rings:
 *
 *   start       the agent's hello: STARTED (with the agent's pid, on its
 *               host) or START_FAILED (its local pool did not start);
 *               a READY message follows, as from a worker;
 *   send        appends the whole task message to the slot's frame in
 *               the making (link.h: a frame carries several messages),
 *               and sends the frame at once when it reached STAGE_FLUSH
 *               bytes (a large chunk need not wait for the next ones);
 *   publish     sends that frame (MPI_Isend, in pieces);
 *   collect     tests the receives posted per agent (MPI_Testsome) and
 *               hands each message of a received frame to pool_on_message,
 *               straight from the frame's buffer;
 *   end_tasks   CLOSE: the agent finishes what it holds, closes its local
 *               pool and says GONE, which becomes EXITED;
 *   kill        TERMINATE: the agent terminates its local pool at once and
 *               says GONE (EXITED);
 *   sleep       MPI has nothing to sleep on: it polls, with a backoff, while
 *               anything is on the wire or at an agent, and sleeps on its
 *               own event (which wake rings) only when nothing is.
 * A worker lost inside an agent comes back as a failed item of a RESULT
 * message (agent.c); a dead rank ends the whole MPI job.
 *
 * Threads.  MPI is initialised with MPI_THREAD_FUNNELED by the pool
 * thread, in its first sleep, and finalised by it in stop: only that
 * thread calls MPI.  The transport is pool_thread_only, so callers never
 * help the engine, and every op that needs the engine (send, publish,
 * collect, kill, end_tasks, next_event) and has_news and sleep run on the
 * pool thread.  The exceptions touch no MPI: open and start run on the
 * creating thread before the pool thread exists (pthread_create orders
 * them), wake on any thread (an event signal), destroy after the pool
 * thread was joined.  So the state below needs no lock and no atomics,
 * except the event.
 */
/* Only with MPI: meson compiles this file then alone, but tools that
 * compile every source of the library (the fuzz build) see it too. */
#ifdef MPROC_HAVE_MPI

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "mpi/agent.h"
#include "mpi/env.h"
#include "mpi/hooks.h"
#include "mpi/link.h"
#include "pool/internal.h"

/* Longest the head waits for the agents' hellos at create. */
#define HELLO_TIMEOUT_NS (120 * MPROC_SEC)
/* Longest it waits for the agents to say they are gone at the end. */
#define GONE_TIMEOUT_NS (30 * MPROC_SEC)
/* How far the engine may grow an agent's window while the agent drains
 * it faster than chunks arrive (pool.c's collect): a chunk's round trip
 * over MPI and through the agent's own pool is long next to a tiny task. */
#define WINDOW_MAX 256
/* Staged task messages of this many bytes go without waiting for the
 * engine's publish. */
#define STAGE_FLUSH (64u << 10)
/* How recent a progress call stands for a new one (progress_fresh). */
#define PROGRESS_FRESH_NS (2 * 1000)
/* How long the pool thread keeps polling after the last traffic before
 * it sleeps: the next apply usually comes sooner, and a sleeping pool
 * thread costs it a wake-up. */
#define IDLE_POLL_NS (100 * 1000)

/* A message of a received frame, for pool_on_message; the frame's last
 * message owns the frame's buffer (frames are taken in order). */
struct inbound {
	struct inbound *next;
	unsigned char *own; /* give back after this message, or NULL */
	uint64_t cap;       /* own's size */
	const unsigned char *msg;
	uint64_t len;
};

struct agent {
	struct mpi_link link;
	pid_t pid;          /* on its host, from the hello */
	unsigned workers;
	int status;         /* its local pool's start, from the hello */
	bool said_hello;
	bool wanted;        /* start asked for it */
	struct inbound *in_head, *in_tail;
	unsigned char *stage; /* the frame of task messages being built */
	uint64_t stage_len, stage_cap;
	uint32_t staged;
	uint64_t at_agent;  /* chunks sent and not yet answered */
	bool told;          /* CLOSE or TERMINATE went out */
	bool drop;          /* its results are no longer wanted */
	bool gone;          /* it said GONE */
};

struct mproc__mpi_head {
	unsigned n;          /* agents: ranks 1..n */
	unsigned window;     /* from the attributes, 0: by the agents' size */
	bool up;             /* we initialised MPI */
	bool met;            /* the hellos are in */
	bool dead;           /* MPI failed: nothing more goes out */
	int fail;            /* why, for the slots' START_FAILED */
	MPI_Request *rreqs;  /* one posted receive per agent */
	int *idx;
	MPI_Status *st;
	struct agent *ag;
	/* Lifecycle events for next_event: at most a start and an exit per
	 * agent. */
	struct pool_tevent *evq;
	unsigned ev_head, ev_tail;
	/* The pool thread's sleep when nothing is on the wire. */
	struct mproc__event doorbell;
	struct mproc__spin spin;
	struct mpi_bufs bufs;  /* every link's buffers */
	int64_t progressed_ns; /* when progress last ran */
};

/* MPI can be initialised once per process: one MPI pool per program.
 * used: an MPI pool was planned (or the exit handler ran); live: the
 * pool whose thread owns MPI now, for the exit handler.  Sequentially
 * consistent (the plain atomic_* calls): the pool thread stores them, and
 * create and the exit handler, on other threads, read them; the
 * exchange on used makes "plan a pool" and "release the agents at exit"
 * exclusive, and a handler that loads live == NULL after the pool thread
 * cleared it finds MPI already finalised by that thread.  Nothing else is
 * published through them. */
static atomic_bool used;
static _Atomic(mproc_pool *) live;

extern const struct pool_transport_ops mproc__mpi_transport;
static void started(mproc_pool *p, unsigned slot);

static _Noreturn void fatal(const char *what, int rc)
{
	fprintf(stderr, "mproc: MPI pool head: %s: %s\n", what,
		mproc_strerror(rc));
	MPI_Abort(MPI_COMM_WORLD, 70);
	abort();
}

static void push_event(struct mproc__mpi_head *h, int kind, unsigned slot,
		       pid_t pid, int val)
{
	h->evq[h->ev_tail++ % (2 * h->n)] =
		(struct pool_tevent){ .kind = kind, .slot = slot, .pid = pid,
				      .val = val };
}

/* ---- received messages ------------------------------------------------------ */

static void inbound_push(struct agent *a, unsigned char *own, uint64_t cap,
			 const unsigned char *msg, uint64_t len)
{
	struct inbound *m = malloc(sizeof(*m));
	if (!m)
		fatal("a result frame", -ENOMEM);
	m->next = NULL;
	m->own = own;
	m->cap = cap;
	m->msg = msg;
	m->len = len;
	if (a->in_tail)
		a->in_tail->next = m;
	else
		a->in_head = m;
	a->in_tail = m;
}

static void inbound_drop(struct agent *a)
{
	while (a->in_head) {
		struct inbound *m = a->in_head;
		a->in_head = m->next;
		mpi_link_keep(&a->link, m->own, m->cap);
		free(m);
	}
	a->in_tail = NULL;
}

/* Split a POOL frame (@f, @body, ours) into its @f->aux messages; the
 * body starts with the number of chunks the frame finishes. */
static int take_messages(struct agent *a, const struct mpi_frame *f,
			 const struct mpi_body *body)
{
	const unsigned char *p = body->p, *end = body->p + f->len;
	uint64_t done;
	if (f->len < sizeof(done))
		return -EPROTO;
	memcpy(&done, p, sizeof(done));
	p += sizeof(done);
	if (done > a->at_agent || !f->aux)
		return -EPROTO;
	a->at_agent -= done;
	for (uint32_t k = 0; k < f->aux; k++) {
		uint64_t len;
		if ((size_t)(end - p) < sizeof(len))
			return -EPROTO;
		memcpy(&len, p, sizeof(len));
		p += sizeof(len);
		if (len < sizeof(struct pool_msg) || len % 8 ||
		    len > (uint64_t)(end - p))
			return -EPROTO;
		bool last = k + 1 == f->aux;
		inbound_push(a, last ? body->own : NULL,
			     last ? body->cap : 0, p, len);
		p += len;
	}
	return p == end ? 0 : -EPROTO;
}

/* A whole frame from agent @i. */
static void take_frame(struct mproc__mpi_head *h, unsigned i,
		       const struct mpi_frame *f, const struct mpi_body *body)
{
	struct agent *a = &h->ag[i];
	switch (f->kind) {
	case MPI_FRAME_POOL:
		if (a->drop) {
			mpi_link_keep(&a->link, body->own, body->cap);
			return;
		}
		if (take_messages(a, f, body) < 0)
			fatal("a malformed result frame", -EPROTO);
		return;
	case MPI_FRAME_GONE:
		mpi_link_keep(&a->link, body->own, body->cap);
		a->gone = a->drop = true;
		a->at_agent = 0;
		inbound_drop(a);
		/* The agent's pool is down: its slot's worker exited. */
		if (a->said_hello && a->status == 0)
			push_event(h, POOL_TE_EXITED, i, a->pid, 0);
		return;
	default:
		fatal("an unexpected frame", -EPROTO);
	}
}

/* What absorb_some does with each whole frame from agent @i: 0, or an
 * error that stops it. */
typedef int (*frame_fn)(struct mproc__mpi_head *h, unsigned i,
			struct mpi_frame *f, struct mpi_body *body, void *arg);

/* Take in the agents' completed receives (one MPI_Testsome), handing
 * each frame they complete to @on.  Returns how many receives completed,
 * -EIO when MPI_Testsome failed, or the first error of a frame
 * (mpi_link_absorb's or @on's). */
static int absorb_some(struct mproc__mpi_head *h, frame_fn on, void *arg)
{
	int outcount = 0;
	if (MPI_Testsome((int)h->n, h->rreqs, &outcount, h->idx, h->st) !=
	    MPI_SUCCESS)
		return -EIO;
	if (outcount == MPI_UNDEFINED)
		outcount = 0;
	for (int k = 0; k < outcount; k++) {
		unsigned i = (unsigned)h->idx[k];
		struct mpi_frame f;
		struct mpi_body body;
		int rc = mpi_link_absorb(&h->ag[i].link, &h->st[k], &f, &body);
		if (rc == 1)
			rc = on(h, i, &f, &body, arg);
		if (rc < 0)
			return rc;
	}
	return outcount;
}

static int take_frame_cb(struct mproc__mpi_head *h, unsigned i,
			 struct mpi_frame *f, struct mpi_body *body, void *arg)
{
	(void)arg;
	take_frame(h, i, f, body);
	return 0;
}

/* Take in completed receives, and free completed sends.  True if any
 * receive completed. */
static bool progress(struct mproc__mpi_head *h)
{
	if (!h->up || h->dead)
		return false;
	h->progressed_ns = mproc__now_ns();
	int got = absorb_some(h, take_frame_cb, NULL);
	if (got < 0)
		fatal("MPI_Testsome or a frame from an agent", got);
	for (unsigned i = 0; i < h->n; i++)
		mpi_link_sends_done(&h->ag[i].link);
	return got > 0;
}

/* progress, unless it ran less than PROGRESS_FRESH_NS ago: the engine
 * collects every slot and asks for news in one pass, and each call into
 * MPI runs its progress engine (microseconds here), while one call takes
 * in every agent's frames. */
static bool progress_fresh(struct mproc__mpi_head *h)
{
	if (mproc__now_ns() - h->progressed_ns < PROGRESS_FRESH_NS)
		return false;
	return progress(h);
}

/* Whether anything is still to come from, or to go to, an agent. */
static bool outstanding(const struct mproc__mpi_head *h)
{
	if (!h->up || h->dead)
		return false;
	for (unsigned i = 0; i < h->n; i++) {
		const struct agent *a = &h->ag[i];
		if (a->link.sq_head || a->link.frame.kind ||
		    (a->at_agent && !a->drop) || (a->told && !a->gone))
			return true;
	}
	return false;
}

/* ---- meeting the agents ------------------------------------------------------- */

static int check_hello(struct agent *a, const struct mpi_frame *f,
		       const struct mpi_body *body)
{
	struct mpi_hello hello;
	if (a->said_hello || f->kind != MPI_FRAME_HELLO ||
	    f->len != sizeof(hello))
		return -EPROTO;
	memcpy(&hello, body->p, sizeof(hello));
	if (hello.magic != MPI_HELLO_MAGIC || hello.version != MPI_HELLO_VERSION ||
	    hello.status > 0 || (hello.status == 0 && hello.workers == 0) ||
	    hello.workers > MPROC_POOL_MAX_PROCESSES || hello.pid <= 0)
		return -EPROTO;
	a->said_hello = true;
	a->workers = hello.workers;
	a->status = hello.status;
	a->pid = (pid_t)hello.pid;
	return 0;
}

/* absorb_some's frame_fn while meeting the agents: @arg counts the
 * hellos checked good. */
static int hello_cb(struct mproc__mpi_head *h, unsigned i,
		    struct mpi_frame *f, struct mpi_body *body, void *arg)
{
	int rc = check_hello(&h->ag[i], f, body);
	mpi_link_keep(&h->ag[i].link, body->own, body->cap);
	*(unsigned *)arg += rc == 0;
	return rc;
}

/* Wait for every agent's hello; 0 or an error. */
static int meet_agents(struct mproc__mpi_head *h)
{
	struct mproc__deadline d;
	mproc__deadline_init(&d, HELLO_TIMEOUT_NS);
	unsigned met = 0;
	int64_t idle_from = mproc__now_ns();
	while (met < h->n) {
		int got = absorb_some(h, hello_cb, &met);
		if (got < 0)
			return got;
		int64_t now = mproc__now_ns();
		if (got > 0)
			idle_from = now;
		if (met == h->n)
			break;
		if (mproc__deadline_passed(&d)) {
			fprintf(stderr, "mproc: MPI pool: %u of %u agent ranks "
					"did not start (does main() call "
					"mproc_pool_mpi_main?)\n",
				h->n - met, h->n);
			return -ETIMEDOUT;
		}
		mpi_backoff(now - idle_from);
	}
	return 0;
}

/* The pool thread's first sleep: initialise MPI, meet the agents, and
 * answer the engine's starts. */
static void begin(mproc_pool *p)
{
	struct mproc__mpi_head *h = p->mpi;
	int flag = 0, provided = 0, rank = -1, size = 0, rc = 0;
	h->dead = true;
	MPI_Initialized(&flag);
	if (flag) {
		fprintf(stderr, "mproc: MPI pool: the program initialised MPI "
				"itself; the pool's thread must own it\n");
		rc = -EBUSY;
	} else {
		atomic_store(&used, true);
		if (MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED,
				    &provided) != MPI_SUCCESS)
			rc = -EIO;
	}
	if (rc == 0) {
		h->up = true;
		atomic_store(&live, p);
		MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
		MPI_Comm_rank(MPI_COMM_WORLD, &rank);
		MPI_Comm_size(MPI_COMM_WORLD, &size);
		if (provided < MPI_THREAD_FUNNELED || rank != 0 ||
		    size != (int)h->n + 1)
			rc = -EPROTO;
	}
	if (rc == 0)
		rc = mpi_bufs_warm(&h->bufs);
	for (unsigned i = 0; rc == 0 && i < h->n; i++) {
		rc = mpi_link_init(&h->ag[i].link, (int)i + 1, &h->rreqs[i],
				   &h->bufs);
		if (rc == 0)
			rc = mpi_link_post(&h->ag[i].link);
	}
	if (rc == 0) {
		h->dead = false;
		rc = meet_agents(h);
	}
	h->met = true;
	if (rc) {
		h->dead = true;
		h->fail = rc;
	}
	unsigned most = 1;
	for (unsigned i = 0; i < h->n; i++)
		if (h->ag[i].workers > most)
			most = h->ag[i].workers;
	/* Two chunks per agent worker to start with: one running, one queued
	 * behind it; the engine grows the window while the agent drains it
	 * faster than chunks arrive (a chunk's round trip is long next to a
	 * tiny task).  A window the caller chose is kept. */
	p->window = h->window ? h->window : 2 * most;
	p->window_max = h->window ? h->window : WINDOW_MAX;
	if (p->window > p->window_max)
		p->window_max = p->window;
	for (unsigned i = 0; i < h->n; i++) {
		p->slots[i].window = p->window;
		if (h->ag[i].wanted)
			started(p, i);
	}
}

/* ---- the transport's ops ------------------------------------------------------ */

static int mpi_open(mproc_pool *p, const struct mproc_pool_attr *a)
{
	(void)p;
	(void)a; /* checked by mproc__mpi_plan; MPI starts on the pool thread */
	return 0;
}

static void mpi_stop(mproc_pool *p)
{
	struct mproc__mpi_head *h = p->mpi;
	if (!h->up)
		return;
	if (!h->dead) {
		/* Agents not told yet (create failed, or the engine stopped
		 * without ending their slots) stop now. */
		for (unsigned i = 0; i < h->n; i++) {
			struct agent *a = &h->ag[i];
			a->drop = true;
			inbound_drop(a);
			if (a->said_hello && !a->told && !a->gone &&
			    mpi_link_send(&a->link, MPI_FRAME_TERMINATE, 0, NULL,
					  0, NULL, 0) == 0)
				a->told = true;
		}
		struct mproc__deadline d;
		mproc__deadline_init(&d, GONE_TIMEOUT_NS);
		int64_t idle_from = mproc__now_ns();
		for (;;) {
			bool waiting = false;
			for (unsigned i = 0; i < h->n; i++)
				waiting |= h->ag[i].told && !h->ag[i].gone;
			if (!waiting || mproc__deadline_passed(&d))
				break;
			int64_t now = mproc__now_ns();
			if (progress(h))
				idle_from = now;
			mpi_backoff(now - idle_from);
		}
	}
	for (unsigned i = 0; i < h->n; i++)
		mpi_link_shut(&h->ag[i].link);
	MPI_Finalize();
	h->up = false;
	atomic_store(&live, NULL);
}

static void mpi_destroy(mproc_pool *p)
{
	struct mproc__mpi_head *h = p->mpi;
	if (!h)
		return;
	for (unsigned i = 0; h->ag && i < h->n; i++) {
		struct agent *a = &h->ag[i];
		inbound_drop(a);
		mpi_link_free(&a->link);
		free(a->stage);
	}
	mpi_bufs_free(&h->bufs);
	free(h->ag);
	free(h->rreqs);
	free(h->idx);
	free(h->st);
	free(h->evq);
	free(h);
	p->mpi = NULL;
}

static int mpi_start(mproc_pool *p, unsigned slot)
{
	struct mproc__mpi_head *h = p->mpi;
	struct agent *a = &h->ag[slot];
	if (a->gone || a->wanted)
		return -ESRCH; /* an agent rank does not come back */
	a->wanted = true;
	if (h->met)
		started(p, slot);
	return 0;
}

/* Send @kind (CLOSE, TERMINATE) to the agent of @slot, after the task
 * messages staged for it. */
static void tell(mproc_pool *p, unsigned slot, uint32_t kind);

static int mpi_kill(mproc_pool *p, unsigned slot, pid_t pid)
{
	(void)pid;
	struct agent *a = &p->mpi->ag[slot];
	a->drop = true; /* the engine fails what the agent held */
	a->at_agent = 0;
	inbound_drop(a);
	tell(p, slot, MPI_FRAME_TERMINATE);
	return 0;
}

static void mpi_end_tasks(mproc_pool *p, unsigned slot)
{
	tell(p, slot, MPI_FRAME_CLOSE);
}

static int mpi_next_event(mproc_pool *p, struct pool_tevent *ev)
{
	struct mproc__mpi_head *h = p->mpi;
	if (h->ev_head == h->ev_tail)
		return 0;
	*ev = h->evq[h->ev_head++ % (2 * h->n)];
	return 1;
}

static void mpi_running(mproc_pool *p, unsigned slot, struct pool_running *r)
{
	(void)p;
	(void)slot;
	/* Nothing runs in the head's slot itself: what an agent's worker
	 * was running when it died is reported by the agent, as a failed
	 * item. */
	*r = (struct pool_running){ 0 };
}

static void mpi_reset(mproc_pool *p, unsigned slot)
{
	inbound_drop(&p->mpi->ag[slot]);
}

static int mpi_check(mproc_pool *p)
{
	/* A dead rank ends the job before we could tell; but agents the
	 * engine stopped after they broke the protocol do not come back,
	 * and a running pool without any left can run nothing. */
	struct mproc__mpi_head *h = p->mpi;
	/* seq_cst: as pool.c's get_state. */
	if (!h->met || atomic_load_explicit(&p->state, memory_order_seq_cst) !=
			       POOL_RUNNING)
		return 0;
	for (unsigned i = 0; i < h->n; i++)
		if (!h->ag[i].gone && !h->dead)
			return 0;
	return -EPIPE;
}

/* Flush the task messages staged for agent @a as one frame. */
static void flush_stage(struct agent *a)
{
	if (!a->staged)
		return;
	int rc = mpi_link_send_owned(&a->link, MPI_FRAME_POOL, a->staged,
				     a->stage, a->stage_cap, a->stage_len);
	a->stage = NULL;
	a->stage_len = a->stage_cap = 0;
	a->staged = 0;
	if (rc < 0)
		fatal("MPI_Isend", rc);
}

static void tell(mproc_pool *p, unsigned slot, uint32_t kind)
{
	struct mproc__mpi_head *h = p->mpi;
	struct agent *a = &h->ag[slot];
	if (h->dead || !a->said_hello || a->told || a->gone)
		return;
	flush_stage(a);
	int rc = mpi_link_send(&a->link, kind, 0, NULL, 0, NULL, 0);
	if (rc < 0)
		fatal("MPI_Isend", rc);
	a->told = true;
}

static int mpi_send(mproc_pool *p, unsigned slot, struct pool_tx *tx)
{
	struct mproc__mpi_head *h = p->mpi;
	struct agent *a = &h->ag[slot];
	if (h->dead || a->told || a->gone)
		return -EPIPE;
	/* The whole message at once: the window bounds what is staged. */
	uint64_t len = tx->total, padded = pool_pad8(len);
	uint64_t need = sizeof(uint64_t) + padded;
	if (!a->stage) {
		/* A spare of the link's, likely large enough for the
		 * frame: its pages are touched already. */
		uint64_t want = sizeof(struct mpi_frame) + need;
		a->stage = mpi_link_buf(&a->link, want < 4096 ? 4096 : want,
					&a->stage_cap);
		if (!a->stage)
			return 0; /* nothing taken: the engine tries again */
		a->stage_len = sizeof(struct mpi_frame);
	}
	if (a->stage_len + need > a->stage_cap) {
		uint64_t cap = a->stage_cap;
		while (cap < a->stage_len + need)
			cap *= 2;
		unsigned char *b = realloc(a->stage, cap);
		if (!b)
			return 0; /* nothing taken: the engine tries again */
		a->stage = b;
		a->stage_cap = cap;
	}
	unsigned char *dst = a->stage + a->stage_len + sizeof(uint64_t);
	memcpy(a->stage + a->stage_len, &padded, sizeof(padded));
	while (tx->sent < tx->total)
		tx->sent += tx->fill(tx->ctx, tx->sent, dst + tx->sent,
				     (size_t)(tx->total - tx->sent));
	memset(dst + len, 0, padded - len);
	struct pool_msg m;
	memcpy(&m, dst, sizeof(m)); /* the engine's own message: whole */
	if (m.type == POOL_MSG_TASK)
		a->at_agent++;
	a->stage_len += need;
	a->staged++;
	/* A large task goes at once: the agent starts on it while the
	 * next ones are staged (small ones wait for publish, together). */
	if (a->stage_len >= STAGE_FLUSH)
		flush_stage(a);
	return 1;
}

static void mpi_publish(mproc_pool *p, unsigned slot)
{
	flush_stage(&p->mpi->ag[slot]);
}

static int mpi_collect(mproc_pool *p, unsigned slot)
{
	struct agent *a = &p->mpi->ag[slot];
	progress_fresh(p->mpi);
	while (a->in_head) {
		struct inbound *m = a->in_head;
		int rc = pool_on_message(p, slot, m->msg, m->len);
		a->in_head = m->next;
		if (!a->in_head)
			a->in_tail = NULL;
		mpi_link_keep(&a->link, m->own, m->cap);
		free(m);
		if (rc)
			return rc;
	}
	return 0;
}

static bool mpi_has_news(const mproc_pool *p)
{
	struct mproc__mpi_head *h = p->mpi;
	progress_fresh(h);
	if (h->ev_head != h->ev_tail)
		return true;
	for (unsigned i = 0; i < h->n; i++)
		if (h->ag[i].in_head)
			return true;
	return false;
}

static void mpi_wake(mproc_pool *p)
{
	mproc__event_signal(&p->mpi->doorbell);
}

static void mpi_sleep(mproc_pool *p, bool (*ready)(void *), void *arg,
		      const struct mproc__deadline *d)
{
	struct mproc__mpi_head *h = p->mpi;
	if (!h->met) {
		begin(p);
		return; /* the engine takes the starts in */
	}
	int64_t idle_from = mproc__now_ns();
	for (;;) {
		bool moved = progress(h);
		if (ready(arg) || d->nowait || mproc__deadline_passed(d))
			return;
		int64_t now = mproc__now_ns();
		if (moved)
			idle_from = now;
		if (!outstanding(h) && now - idle_from >= IDLE_POLL_NS) {
			/* Nothing on the wire or at an agent: only a
			 * submission or a request (both wake) can bring
			 * work. */
			mproc__event_wait(&h->doorbell, ready, arg, d, &h->spin,
					  NULL);
			return;
		}
		mpi_backoff(now - idle_from);
	}
}

static void mpi_watch(mproc_pool *p, bool on)
{
	(void)p;
	(void)on; /* no helpers (pool_thread_only) */
}

const struct pool_transport_ops mproc__mpi_transport = {
	.name = "mpi",
	.pool_thread_only = true,
	.open = mpi_open,
	.stop = mpi_stop,
	.destroy = mpi_destroy,
	.start = mpi_start,
	.kill = mpi_kill,
	.end_tasks = mpi_end_tasks,
	.next_event = mpi_next_event,
	.running = mpi_running,
	.reset = mpi_reset,
	.check = mpi_check,
	.send = mpi_send,
	.publish = mpi_publish,
	.collect = mpi_collect,
	.has_news = mpi_has_news,
	.wake = mpi_wake,
	.sleep = mpi_sleep,
	.watch = mpi_watch,
};

/* The engine asked for a worker in @slot and the hellos are in: the
 * agent's start, then its READY as a worker would send it. */
static void started(mproc_pool *p, unsigned slot)
{
	struct mproc__mpi_head *h = p->mpi;
	struct agent *a = &h->ag[slot];
	if (h->dead || !a->said_hello || a->status) {
		push_event(h, POOL_TE_START_FAILED, slot, 0,
			   h->dead ? h->fail : a->said_hello ? a->status
							    : -EPROTO);
		return;
	}
	struct pool_msg ready = { .type = POOL_MSG_READY };
	unsigned char *buf = malloc(sizeof(ready));
	if (!buf) {
		push_event(h, POOL_TE_START_FAILED, slot, 0, -ENOMEM);
		return;
	}
	memcpy(buf, &ready, sizeof(ready));
	inbound_push(a, buf, sizeof(ready), buf, sizeof(ready));
	push_event(h, POOL_TE_STARTED, slot, a->pid, 0);
}

int mproc__mpi_plan(mproc_pool *p, const struct mproc_pool_attr *a)
{
	/* What runs in workers is set where the workers are: in each
	 * agent's local pool, whose attributes mproc_pool_mpi_main takes. */
	if (a->initializer || a->initarg_len || a->maxtasksperchild ||
	    a->task_timeout_ns > 0 || a->processes)
		return -ENOTSUP;
	int rank = mproc__mpi_env_rank(), size = mproc__mpi_env_size();
	if (rank > 0)
		return -EPROTO; /* an agent rank that never became one */
	if (rank < 0 || size < 2)
		return -ESRCH;
	if ((unsigned)size - 1 > MPROC_POOL_MAX_PROCESSES)
		return -EINVAL;
	if (atomic_load(&used))
		return -EALREADY;
	struct mproc__mpi_head *h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	h->n = (unsigned)size - 1;
	h->window = a->window;
	h->ag = calloc(h->n, sizeof(*h->ag));
	h->rreqs = calloc(h->n, sizeof(*h->rreqs));
	h->idx = calloc(h->n, sizeof(*h->idx));
	h->st = calloc(h->n, sizeof(*h->st));
	h->evq = calloc(2 * h->n, sizeof(*h->evq));
	if (!h->ag || !h->rreqs || !h->idx || !h->st || !h->evq) {
		p->mpi = h;
		mpi_destroy(p);
		return -ENOMEM;
	}
	for (unsigned i = 0; i < h->n; i++)
		h->rreqs[i] = MPI_REQUEST_NULL;
	p->nslots = h->n;
	p->mpi = h;
	p->tp = &mproc__mpi_transport;
	return 0;
}

/* ---- the head's exit ----------------------------------------------------- */

/* Agents wait for a head that never made an MPI pool: meet them and let
 * them go, so that the job ends. */
static void release_agents(void)
{
	int flag = 0, size = 0, provided;
	MPI_Initialized(&flag);
	if (flag || MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED,
				    &provided) != MPI_SUCCESS)
		return;
	MPI_Comm_size(MPI_COMM_WORLD, &size);
	for (int r = 1; r < size; r++) {
		struct {
			struct mpi_frame f;
			struct mpi_hello h;
		} hello;
		struct mpi_frame f = { .kind = MPI_FRAME_TERMINATE };
		MPI_Recv(&hello, sizeof(hello), MPI_BYTE, r, MPI_TAG_MPROC,
			 MPI_COMM_WORLD, MPI_STATUS_IGNORE);
		MPI_Send(&f, sizeof(f), MPI_BYTE, r, MPI_TAG_MPROC,
			 MPI_COMM_WORLD);
		MPI_Recv(&f, sizeof(f), MPI_BYTE, r, MPI_TAG_MPROC,
			 MPI_COMM_WORLD, MPI_STATUS_IGNORE);
	}
	MPI_Finalize();
}

/* atexit on rank 0 (mproc_pool_mpi_main): a pool still running is
 * terminated (its thread lets the agents go and finalises MPI); a program
 * that never made one still releases the agents. */
void mproc__mpi_head_exit(void)
{
	mproc_pool *p = atomic_load(&live);
	if (p) {
		mproc_pool_terminate(p);
		return;
	}
	if (!atomic_exchange(&used, true))
		release_agents();
}

#else
typedef int mproc__mpi_absent; /* no empty translation unit */
#endif /* MPROC_HAVE_MPI */
