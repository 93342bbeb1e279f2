/*
 * bench.h - the interface between mproc-bench's harness and the rows it
 * measures.
 *
 * mproc-bench measures "rows": one implementation (impl) of one suite, e.g.
 * suite "throughput", impl "pipe".  A row is expanded into cases, one per
 * message size x producer/consumer configuration x named case, and each case
 * is measured in several time-bounded repetitions.  The harness interleaves
 * the repetitions of every case of a suite (round 1 of A, B, C, then round
 * 2 of A, B, C, ...) because this machine drifts for tens of seconds at a
 * time; medians over rounds then make ratios between rows of one run
 * meaningful.  It prints a table, writes JSON and plots.
 *
 * HOW TO ADD A ROW
 * ----------------
 * Write one file bench/<something>.c and add its name to `bench_rows` in
 * bench/meson.build.  Nothing else: the file registers itself.
 *
 *     #include "bench.h"
 *
 *     static int my_run(struct bench_case *c, struct bench_sample *s)
 *     {
 *             ... measure one repetition of case c, for about
 *             ... c->duration_ns, then fill s, e.g.:
 *             return bench_team_throughput(c, &team, s);
 *     }
 *
 *     BENCH_REGISTER(my_queue) = {
 *             .suite = "throughput",
 *             .impl = "mproc_spsc",
 *             .descr = "mproc SPSC queue, put/get, one message per call",
 *             .pcs = BENCH_PCS({1, 1}),       // optional
 *             .run = my_run,
 *     };
 *
 * The base_*.c files are the worked examples, one per pattern:
 *   - base_pipe.c, base_socket.c: producer/consumer throughput with checked
 *     messages (bench_team_run + bench_msg_*) and a ping-pong round trip
 *     (bench_pingpong_run);
 *   - base_mq.c: a transport with a size limit (prepare returns BENCH_SKIP),
 *     whose workers are the shared send/receive loops of stream.h;
 *   - base_memcpy.c: a single pinned worker;
 *   - base_floor.c: ping-pong over shared memory (bench_shared_alloc);
 *   - base_process.c: process start+join (bench_op_run_start_join);
 *   - base_python.c: rows measured by an embedded Python script
 *     (bench_python_run).
 *
 * Rules for a run function:
 *   - Take about c->duration_ns and no fixed huge message count: the
 *     helpers below stop on the harness's clock.
 *   - Check every message on the consumer side (bench_msg_*).
 *   - Return 0 with the figures set in s, BENCH_SKIP (with s->note) if this
 *     case cannot run here, or a negative errno (with s->note) on failure.
 *     A failed repetition is reported and makes the exit status non-zero.
 *   - Leave nothing behind: child processes reaped, fds closed, names
 *     unlinked.
 *
 * Ratios: the table prints, for each mproc_* row, its median divided by the
 * median of a baseline row of the same suite and message size (e.g. "x pipe").
 * The harness's table (baseline_map in stats.c) maps impl prefixes to
 * baselines per suite (mproc_* to pipe/memcpy for throughput, mproc_fork to
 * raw_fork, ...), and an mproc_X row is also compared with python_X when that
 * row exists.  A row can name further baselines in .baselines.  mproc rows
 * are also divided by their closest peer, another library's queue measured
 * in the same run (peer_map in stats.c: "x rte_ring", "x ck_ring", ...).
 *
 * Peer rows (rows measuring another library, compiled only when meson
 * finds it): see bench/peer.h and the peer list in bench/meson.build.
 *
 * Spawned children: a row that needs the benchmark's own executable to act
 * as a child (e.g. mproc's spawn start method calling mproc_main) registers
 * an early hook with BENCH_EARLY_HOOK; it runs at the top of main(), before
 * option parsing (only the raw_spawn row's --exit-at-once comes first).
 */
#ifndef MPROC_BENCH_H
#define MPROC_BENCH_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* ------------------------------------------------------------------ */
/* Figures                                                             */
/* ------------------------------------------------------------------ */

/* The figures a repetition can report.  The JSON field names are the
 * names returned by bench_fig_name() and must not change. */
enum bench_fig {
	BENCH_MSGS_PER_SEC,  /* "msgs_per_sec": messages per second */
	BENCH_BYTES_PER_SEC, /* "bytes_per_sec": payload bytes per second */
	BENCH_RTT_NS,        /* "rtt_ns": one round trip, nanoseconds */
	BENCH_START_JOIN_US, /* "start_join_us": process start + join, us */
	BENCH_TASKS_PER_SEC, /* "tasks_per_sec": pool tasks per second */
	BENCH_RTT_US,        /* "rtt_us": one task round trip, microseconds */
	BENCH_NFIGS
};

const char *bench_fig_name(enum bench_fig f);
/* True for figures where smaller is better (times). */
bool bench_fig_lower_is_better(enum bench_fig f);

/* Return value of a run/prepare function: this case cannot be measured
 * here (reason in the note); the row is left out, not faked. */
#define BENCH_SKIP 1

/* What one repetition measured.  The harness sets every figure to NAN
 * before calling run; run sets those it measured. */
struct bench_sample {
	double fig[BENCH_NFIGS];
	char note[200]; /* why it was skipped or failed; free text */
};

/* Set msgs_per_sec and bytes_per_sec from a count of messages of
 * msg_size bytes handled in elapsed_ns. */
void bench_sample_rate(struct bench_sample *s, uint64_t msgs, size_t msg_size,
		       int64_t elapsed_ns);

/* ------------------------------------------------------------------ */
/* Registration                                                        */
/* ------------------------------------------------------------------ */

/* A producer/consumer configuration; lists end with {0, 0}. */
struct bench_pc {
	int producers, consumers;
};

/* Compound-literal helpers for the lists in struct bench_impl. */
#define BENCH_SIZES(...) ((const size_t[]){__VA_ARGS__, 0})
#define BENCH_PCS(...) ((const struct bench_pc[]){__VA_ARGS__, {0, 0}})
#define BENCH_NAMES(...) ((const char *const[]){__VA_ARGS__, NULL})

#define BENCH_KIB ((size_t)1024)
#define BENCH_MIB ((size_t)1024 * 1024)

struct bench_case;

/* One row of the benchmark.  Declare it with BENCH_REGISTER. */
struct bench_impl {
	/* Suite: "throughput", "latency", "process", or a new name (new
	 * suites are printed after the known ones). */
	const char *suite;
	/* Implementation name, e.g. "pipe", "mproc_spsc".  Names starting
	 * with "mproc_" get ratio columns against their baselines. */
	const char *impl;
	/* One line for --list and --help. */
	const char *descr;
	/* Message sizes, 0-terminated (BENCH_SIZES).  NULL: the suite's
	 * standard sizes (throughput: 64 B .. 1 MiB; latency: 64 B; others:
	 * none, shown as "-").  --quick keeps only its quick sizes (64 B,
	 * 4 KiB, 1 MiB for throughput) when any of them is in the list. */
	const size_t *sizes;
	/* Producer/consumer configurations (BENCH_PCS).  NULL: {1, 1} for
	 * throughput and latency, {0, 0} ("-") for other suites. */
	const struct bench_pc *pcs;
	/* Named variants (BENCH_NAMES), each its own row; NULL: one row
	 * without a case name. */
	const char *const *cases;
	/* Extra baselines (impl names of the same suite), NULL-terminated. */
	const char *const *baselines;
	/* Optional, called once per case in the parent before any
	 * repetition: check the case can run, set up c->state.  Returns 0,
	 * BENCH_SKIP (why in @why), or a negative errno (why in @why). */
	int (*prepare)(struct bench_case *c, char *why, size_t why_len);
	/* Measure one repetition (see "Rules for a run function"). */
	int (*run)(struct bench_case *c, struct bench_sample *s);
	/* Optional: undo prepare, once per case after the last repetition. */
	void (*cleanup)(struct bench_case *c);

	struct bench_impl *next_; /* the harness's registry list */
};

/* Add a row to the registry (called from constructors, before main). */
void bench_register(struct bench_impl *impl);

/* Define and register a row: BENCH_REGISTER(name) = { .suite = ..., };
 * The constructor runs before main(), so the executable's own objects are
 * enough: keep rows in bench_sources, never in a static library (the
 * linker would drop the unreferenced objects and their constructors). */
#define BENCH_REGISTER(name)                                              \
	static struct bench_impl bench_impl_##name;                       \
	__attribute__((constructor)) static void bench_reg_##name(void)   \
	{                                                                 \
		bench_register(&bench_impl_##name);                       \
	}                                                                 \
	static struct bench_impl bench_impl_##name

/* Code run at the top of main(), before option parsing, in every process
 * started from the executable (except `EXE --exit-at-once`): e.g. a call to
 * mproc_main() so that spawned mproc children run their target and never
 * reach the harness.  Hooks run in registration order. */
typedef void (*bench_early_hook_fn)(int argc, char **argv);
void bench_register_early_hook(bench_early_hook_fn fn);
#define BENCH_EARLY_HOOK(fn)                                              \
	__attribute__((constructor)) static void bench_hook_##fn(void)    \
	{                                                                 \
		bench_register_early_hook(fn);                            \
	}

/* ------------------------------------------------------------------ */
/* The case being measured                                            */
/* ------------------------------------------------------------------ */

struct bench_case {
	const struct bench_impl *impl;
	const char *case_name; /* NULL when the row has no cases */
	size_t msg_size;       /* 0 when the suite has no sizes */
	int producers, consumers;
	int64_t duration_ns; /* time budget of one repetition */
	int rep, reps;       /* this repetition (0-based) and how many */
	bool quick;          /* --quick */
	void *state;         /* free for prepare/run/cleanup */
};

/* ------------------------------------------------------------------ */
/* CPUs, notes, shared memory                                         */
/* ------------------------------------------------------------------ */

/*
 * The clock and full reads/writes are mproc's internal helpers, which the
 * benchmark reaches because it is built with src/ on its include path:
 * "common/clock.h" mproc__now_ns() (CLOCK_MONOTONIC in nanoseconds,
 * comparable across processes) and "common/os.h" mproc__write_all() /
 * mproc__read_all() (0, -errno, or -EPIPE at end of file).
 */

/* CPUs this process may run on, from sched_getaffinity at start-up. */
int bench_ncpus(void);
/* Workers of every row of the "pool" suite, mproc's and Python's alike:
 * the CPUs this process may run on, at most 8. */
int bench_pool_workers(void);
/* The CPU a worker of the given role and index is pinned to, or -1 when
 * pinning is off (--no-pin) or only one CPU is allowed.  Producers take
 * the first half of the allowed CPUs, consumers the second half, so a
 * producer and a consumer never share a CPU when two or more are allowed. */
int bench_cpu_for(int is_consumer, int index);
/* Pin the calling process to @cpu (no-op for -1).  Returns 0 or -errno. */
int bench_pin(int cpu);

/* Print a note on stderr (once per distinct text) and keep it for the
 * footer of the table. */
void bench_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* MAP_SHARED anonymous memory, zero-filled, page-aligned: visible to the
 * processes forked after it is mapped.  NULL on failure. */
void *bench_shared_alloc(size_t size);
void bench_shared_free(void *p, size_t size);

/* The benchmark's own executable (from /proc/self/exe at start-up), for
 * rows that start it as a child.  Started as `EXE --exit-at-once` it exits
 * with status 0 before doing anything else (see BENCH_EXIT_ARG). */
const char *bench_self_exe(void);
#define BENCH_EXIT_ARG "--exit-at-once"

/* Spin-loop pause: a CPU relax hint when workers have CPUs of their own,
 * sched_yield when they may share one (so a spinning waiter lets its peer
 * run). */
void bench_pause(void);

/* ------------------------------------------------------------------ */
/* Worker teams: producers and consumers in pinned child processes     */
/* ------------------------------------------------------------------ */

#define BENCH_MAX_WORKERS 16

/* What a worker reports; lives in shared memory, one per worker. */
struct bench_result {
	uint64_t msgs;     /* messages sent (producer) or received (consumer) */
	uint64_t seq_sum;  /* sum of the sequence numbers sent / received */
	int64_t start_ns;  /* when the worker left the start barrier */
	int64_t end_ns;    /* when its function returned */
	double value;      /* free for the worker, e.g. a median */
	int error;         /* the worker function's negative errno, or 0 */
	char note[200];    /* why it failed; after a success, a remark the
			    * harness passes on with bench_note */
} __attribute__((aligned(64)));

/* A worker's view of its team, passed to the worker function in the child
 * process.  Counters are private until the function returns, then copied
 * to the worker's shared bench_result. */
struct bench_worker {
	const struct bench_case *c;
	int is_consumer;
	int index; /* among the producers or among the consumers */
	int cpu;   /* pinned CPU, or -1 */
	struct bench_result *res;      /* this worker's shared slot */
	const _Atomic uint32_t *stop_; /* set by the harness when time is up */
	/* Message accounting, maintained by bench_msg_*. */
	uint64_t msgs, seq_sum;
	uint64_t next_seq[BENCH_MAX_WORKERS]; /* per producer, consumer side */
	int ends;                             /* end markers seen */
};

/* Has the harness asked the team to stop?  A relaxed load of a word that
 * only changes once: cheap enough to call for every message. */
static inline bool bench_stop_requested(const struct bench_worker *w)
{
	/* Relaxed: the flag carries no data; the worker only needs to see it
	 * eventually, and the stop-marker protocol orders the messages. */
	return atomic_load_explicit(w->stop_, memory_order_relaxed) != 0;
}

/* Worker function, run in a forked child pinned by the harness.  Returns
 * 0 or a negative errno (explain in w->res->note). */
typedef int (*bench_worker_fn)(struct bench_worker *w, void *arg);

struct bench_team {
	bench_worker_fn producer; /* run c->producers times */
	bench_worker_fn consumer; /* run c->consumers times (may be 0) */
	void *arg;                /* passed to both */
	/* Optional, in the parent after every worker was forked and before
	 * the start: e.g. close descriptors the parent must not hold. */
	void (*parent_after_fork)(void *arg);
	/* Optional, in each worker after pinning and before the start
	 * barrier, so outside the timed window: open what the worker needs
	 * (a socket, a connection to its peer).  *arg is the worker's own
	 * copy after the fork, so setup may keep its handles there for the
	 * worker function.  Returns 0 or a negative errno (why in
	 * w->res->note); a worker whose setup fails never starts, and the
	 * team fails with that note. */
	int (*setup)(struct bench_worker *w, void *arg);
};

struct bench_team_result {
	int64_t start_ns; /* when the harness released the start barrier */
	int64_t stop_ns;  /* when it raised the stop flag */
	int producers, consumers;
	struct bench_result prod[BENCH_MAX_WORKERS];
	struct bench_result cons[BENCH_MAX_WORKERS];
};

/* Fork c->producers + c->consumers workers, pin them, hold them at a start
 * barrier until all are ready, let them run for c->duration_ns, raise the
 * stop flag, and reap them (killing any that is still running 20 s after
 * the stop).  Returns 0 when every worker returned 0, else the first
 * worker error (with its note copied to @note) or a harness errno. */
int bench_team_run(const struct bench_case *c, const struct bench_team *t,
		   struct bench_team_result *r, char *note, size_t note_len);

/* bench_team_run for a throughput case: checks that every message sent
 * was received once (counts and sequence sums must agree) and fills
 * msgs_per_sec and bytes_per_sec from the consumers' count over the time
 * from the first worker's start to the last consumer's end.  With no
 * consumers, the producers' counts over their own time are used. */
int bench_team_throughput(const struct bench_case *c,
			  const struct bench_team *t, struct bench_sample *s);

/* ------------------------------------------------------------------ */
/* Checked messages                                                    */
/* ------------------------------------------------------------------ */

/*
 * A checked message carries, in its first 8 bytes, the producer's index
 * (top 16 bits) and that producer's sequence number (low 48 bits); its last
 * 8 bytes hold a mix of that word (messages of 16 bytes or more).  The
 * middle is a fixed pattern written once.  So stamping and checking cost
 * the same for 64 B and 1 MiB, yet a lost, duplicated, reordered or torn
 * message is caught: per producer, a single consumer must see 0, 1, 2, ...
 * exactly; several consumers must each see increasing numbers, and the
 * harness compares counts and sums of all numbers sent and received.
 * Sizes below 8 bytes cannot be checked and are refused (-EINVAL).
 *
 * Ending a run: when bench_stop_requested() turns true, each producer sends
 * one end marker per consumer (bench_msg_stamp_end) after its last message,
 * and each consumer stops once it has seen c->producers end markers
 * (w->ends == c->producers).  Over a FIFO that delivers everything, this
 * leaves no message behind even with several producers and consumers: the
 * P x C markers are all taken, and each producer's data precedes its
 * markers.
 */

/* Fill a message buffer with the fixed pattern (once, before the loop). */
void bench_msg_init(void *buf, size_t size);
/* Producer: stamp the next sequence number into buf and count it. */
void bench_msg_stamp(struct bench_worker *w, void *buf, size_t size);
/* Producer: stamp the end marker (not counted) that tells a consumer this
 * producer has finished. */
void bench_msg_stamp_end(struct bench_worker *w, void *buf, size_t size);
/* Consumer: verify and count a received message.  Returns 0 for a data
 * message, BENCH_MSG_END for an end marker (w->ends counts them), or
 * -EBADMSG with an explanation in w->res->note. */
#define BENCH_MSG_END 2
int bench_msg_check(struct bench_worker *w, const void *buf, size_t size);

/* ------------------------------------------------------------------ */
/* Timed operation loops: round trips, process start+join              */
/* ------------------------------------------------------------------ */

/* One operation (a round trip, a start+join, ...).  0 or negative errno. */
typedef int (*bench_op_fn)(void *arg);

struct bench_op_stats {
	uint64_t ops;
	double median_ns; /* median over batches of (batch time / batch ops) */
	double mean_ns;   /* total time / ops */
};

/* Run op repeatedly until c->duration_ns has passed (or, inside a team
 * worker @w, until the stop flag), and at least 3 times.  Operations are
 * timed in batches whose size doubles until a batch takes 20 us, so the
 * clock's own cost stays below a few percent; the result's median is the
 * median over batches of the per-operation time. */
int bench_op_loop(const struct bench_case *c, const struct bench_worker *w,
		  bench_op_fn op, void *arg, struct bench_op_stats *st);

/* Process start+join in the harness process: bench_op_loop, and the
 * median in microseconds goes to start_join_us. */
int bench_op_run_start_join(struct bench_case *c, bench_op_fn op, void *arg,
			    struct bench_sample *s);

/* A ping-pong between two pinned processes. */
struct bench_pingpong {
	/* Initiator: send a ping and wait for its answer (one round trip). */
	bench_op_fn ping;
	/* Echoer: wait for one ping and answer it.  Returns 0, or
	 * BENCH_PONG_STOP when the initiator said stop, or -errno. */
	bench_op_fn pong;
	/* Initiator, after the last round trip: make the echoer's pong
	 * return BENCH_PONG_STOP. */
	bench_op_fn stop;
	void *arg;
	void (*parent_after_fork)(void *arg);
	/* Think time: the initiator idles (nanosleep) this long before each
	 * ping, so that a blocking echoer falls asleep; each round trip is
	 * then timed on its own, the think time not counted.  0: none, round
	 * trips back to back, timed in batches (bench_op_loop). */
	int64_t think_ns;
};
#define BENCH_PONG_STOP 3

/* Run a ping-pong team (initiator on a producer CPU, echoer on a consumer
 * CPU) for c->duration_ns; rtt_ns is the median over batches of round
 * trips (see bench_op_loop). */
int bench_pingpong_run(struct bench_case *c, const struct bench_pingpong *pp,
		       struct bench_sample *s);

/* ------------------------------------------------------------------ */
/* Rows over byte-stream descriptors (pipes, sockets)                  */
/* ------------------------------------------------------------------ */

/* Descriptors of a byte-stream transport, created by the row before the
 * team is forked.  Throughput: producer writes fwd_tx, consumer reads
 * fwd_rx.  Ping-pong: the initiator writes fwd_tx and reads back_rx, the
 * echoer reads fwd_rx and answers on back_tx.  The parent closes all of
 * them once the workers are forked (they become -1), so a worker that dies
 * shows as end-of-file or EPIPE to its peer instead of a hang. */
struct bench_fd_link {
	int fwd_tx, fwd_rx, back_tx, back_rx;
	/* Private to each process after the fork. */
	uint64_t seq;
	unsigned char msg[64];
};

/* One repetition of a throughput case over @l (one message = one
 * msg_size-byte write; the consumer reads exactly msg_size bytes). */
int bench_fd_throughput(struct bench_case *c, struct bench_fd_link *l,
			struct bench_sample *s);
/* One repetition of a 64-byte ping-pong over @l. */
int bench_fd_pingpong(struct bench_case *c, struct bench_fd_link *l,
		      struct bench_sample *s);
/* Close the descriptors of @l that are still open. */
void bench_fd_close(struct bench_fd_link *l);

/* ------------------------------------------------------------------ */
/* Python                                                              */
/* ------------------------------------------------------------------ */

/* Is a Python 3 interpreter with multiprocessing usable?  ($MPROC_BENCH_PYTHON
 * or python3 in PATH.)  Checked once.  On false, why says what is missing. */
bool bench_python_available(char *why, size_t why_len);

/* Run `python3 -c SCRIPT ARGS...` with the case's parameters available to
 * the script as sys.argv[1:] = ARGS, wait for it (killed after duration +
 * 60 s), and read lines "NAME=VALUE" from its standard output: NAME a
 * figure name (bench_fig_name) sets that figure, "note" sets the note.
 * Returns 0, BENCH_SKIP (no interpreter), or a negative errno (a failing
 * script's last stderr line goes to the note). */
int bench_python_run(const struct bench_case *c, const char *script,
		     const char *const *args, struct bench_sample *s);

#endif /* MPROC_BENCH_H */
