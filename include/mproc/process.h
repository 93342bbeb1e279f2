/*
 * mproc/process.h - processes, start methods and contexts.
 *
 * The C twin of Python's multiprocessing.Process.  A process object is
 * created from a target function and an argument buffer (copied), or from
 * a table of callbacks with user state (the "subclass" form, where run() is
 * the overridable body).  start() runs it in a new process by one of three
 * start methods:
 *
 *  - "fork": fork(2).  The child is a copy of the parent at the moment of
 *    start, with every mproc object created before it.  This is the
 *    default, as on Python/Linux before 3.14.
 *  - "spawn": a fresh exec of the same program (/proc/self/exe).  The new
 *    image enters the target through mproc_main(), which must be the first
 *    call in main().  It inherits only stdin/stdout/stderr, the anonymous
 *    shared-memory segments (at their descriptor numbers) and the data the
 *    target needs; every other inherited descriptor is closed.
 *  - "forkserver": a single-threaded server process, itself spawned the
 *    same way on first use, forks each child on request.  The child gets
 *    the requester's stdin/stdout/stderr and anonymous segments (passed
 *    over a Unix socket, installed at the requester's descriptor numbers),
 *    but the server's environment, working directory and memory image
 *    (those of the moment the server started).
 *
 * With spawn and forkserver, target and run() pointers are translated to
 * (loaded object, offset) at start and back in the child, so any function
 * of the program or of a shared library works without registration; a
 * pointer that is not inside the code of a loaded object (a heap or stack
 * address, JIT code) makes start fail with -MPROC_ENOSYMBOL.  With fork no
 * translation is needed and any function pointer works.
 *
 * THREADS AND FORK.  A forked child contains only the thread that called
 * start.  Locks held at that moment by other threads (the application's
 * mutexes, or those of libraries that do not use pthread_atfork) stay
 * locked forever in the child, and data they protected may be half
 * updated, so a target started with "fork" from a multi-threaded program
 * must not touch state shared with other threads (malloc and stdio are
 * made safe by glibc; mproc's own state is protected by atfork handlers).
 * "spawn" and "forkserver" start from a fresh image and have no such
 * hazard: prefer them in multi-threaded programs.
 *
 * SIGNALS.  mproc installs no signal handler and changes no signal
 * disposition or mask of the application.  A child starts with: under
 * "fork", the dispositions and mask of the thread that started it; under
 * "spawn", an empty mask and the dispositions an exec leaves (ignored
 * signals stay ignored, handled ones return to their default); under
 * "forkserver", the same as a spawn child of the program at the moment it
 * started the server, except SIGINT, which is at its default (the server
 * ignores Ctrl-C, which is for the owner; Python's forkserver children
 * likewise get the default handling back).  Children are watched through
 * pidfds.  Do not reap mproc's children behind its back: with SIGCHLD set
 * to SIG_IGN, or a handler calling waitpid(-1, ...), the exit status is
 * lost and join/exitcode report -ECHILD.
 *
 * EXIT.  When the process that started children exits normally (return
 * from main or exit()), an atexit handler first sends SIGTERM to its live
 * daemon children and gives them 2 seconds to end before SIGKILL (Python
 * waits forever; a daemon that ignores SIGTERM must not keep a service
 * from exiting), then waits for all other children, as Python does: a
 * non-daemon child that never ends keeps its parent from exiting.  A child's run()
 * returning ends the child after the same clean-up.  As a safety net a
 * daemon child also gets PR_SET_PDEATHSIG(SIGKILL), so it dies if its
 * parent dies abnormally.  Linux delivers that signal when the *thread*
 * that created the child exits: start daemon children from a thread that
 * lives as long as they should (normally the main thread).
 *
 * Exit codes: the child's exit status is the low 8 bits of the value the
 * target or run() returned (or passed to mproc_exit); exitcode reports -N
 * if a signal N ended it.
 *
 * EXIT HANDLERS.  mproc_atexit registers a handler in the current process
 * only; the handlers run, last registered first, when a child's target or
 * run() returns, when any process calls mproc_exit, and when a process
 * that is not an mproc child exits normally (return from main, exit(3)).
 * No child inherits them, under any start method: a child forked by the
 * "fork" method (or by a plain fork(2)) starts with an empty list.  They
 * run before the children clean-up above, as Python 3.12+ runs a child's
 * atexit handlers before its multiprocessing clean-up.
 *
 * What happens to atexit(3) handlers, by start method, when the target
 * returns or calls mproc_exit:
 *  - "fork": none run.  The child inherits the parent's atexit(3) list,
 *    which it cannot drop, and running it would repeat the parent's
 *    clean-up, so the child ends with _exit(2); handlers the target
 *    registers with atexit(3) are lost too.  Use mproc_atexit.  (A fork
 *    child that calls exit(3) itself does run the parent's list.)
 *  - "spawn": the child ends with exit(3) in its fresh image: the
 *    atexit(3) handlers the target registered run, after the mproc
 *    handlers and the children clean-up, as do any that constructors of
 *    the new image registered before main().
 *  - "forkserver": the same as "fork", as Python's forkserver children
 *    end with os._exit.  The child is forked from the server, whose
 *    atexit(3) list holds what the server image's constructors
 *    registered; running it, and the destructors of every object the
 *    server loaded, in each child would repeat the server's clean-up
 *    once per child.  So the child ends with _exit(2) after its
 *    mproc_atexit handlers; handlers its target registers with atexit(3)
 *    are lost.  stdout and stderr are flushed first, under every method.
 *    (Tools that hook exit(3), such as LeakSanitizer's leak check or
 *    gcov's counters, so see forkserver children as they see fork
 *    children: not at all.)
 *
 * CONCURRENCY.  Handles are independent of each other.  On one handle,
 * join, is_alive, exitcode, pid, ident, sentinel, terminate, kill and
 * interrupt may run concurrently from any threads once start has
 * returned; the setters
 * belong before start; close and free must not run concurrently with any
 * other call on the handle.  The start-method and context calls are
 * thread-safe.  A handle is only usable in the process that created it (a
 * copy in a forked child refuses with -ECHILD).
 */
#ifndef MPROC_PROCESS_H
#define MPROC_PROCESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mproc/common.h"

MPROC_BEGIN_DECLS

/** Size of an authentication key, in bytes. */
#define MPROC_AUTHKEY_SIZE 32

/** Exit status of a spawn or forkserver child that could not set itself
 *  up (unreadable start data, a target that does not resolve in the new
 *  image); a message goes to stderr. */
#define MPROC_EXIT_BOOTSTRAP 127

/* mproc_context (a start method and everything created through it) is
 * declared in mproc/common.h, because queues and pipes take one too. */
/** A process object: a child to be started, running or finished, or the
 *  current process (mproc_current_process). */
typedef struct mproc_process mproc_process;

/**
 * Target function, run in the child.  @arg is the child's copy of the
 * argument buffer given at create (NULL when @len is 0), aligned for any
 * type.  The return value becomes the exit status (low 8 bits).
 */
typedef int (*mproc_target_fn)(void *arg, size_t len);

/**
 * The "subclass" form: a process type defined by its callbacks.
 * @type_name: used for default names ("<type_name>-N"); NULL means
 *     "Process".  Copied at create.
 * @run: the body, run in the child (required).  @self is the child's view
 *     of this process object (name, pid, daemon, authkey); @state is the
 *     child's copy of the state buffer given at create (NULL when @len is
 *     0).  The return value becomes the exit status (low 8 bits).
 */
struct mproc_process_ops {
	const char *type_name;
	int (*run)(mproc_process *self, void *state, size_t len);
};

/* ---- the __main__ guard ------------------------------------------------ */

/**
 * mproc_main - call first in main(), with main's arguments.
 *
 * In a program started normally it records nothing and returns 0 at once.
 * In a process created by the spawn start method, or in the forkserver, it
 * never returns: it runs the target (or the server) and exits.  Such a
 * process is an exec of the same executable with argv {path of the
 * executable, "--mproc-spawn" or "--mproc-forkserver", descriptor}; code
 * that runs before main() (constructors) runs there too.  A program
 * that starts processes with "spawn" or "forkserver" but does not call this
 * first would, in the child, run main() from the top; mproc detects that
 * and makes every start in such a child fail with -EPROTO rather than
 * recurse.
 */
MPROC_API int mproc_main(int argc, char **argv);

/* ---- start methods and contexts ---------------------------------------- */

/**
 * mproc_set_start_method - choose the start method of the default context
 * ("fork", "spawn" or "forkserver").
 * @force: true to change a method that is already fixed; with @force,
 *     @method may be NULL to unfix it (the next use fixes the default,
 *     "fork", again).
 *
 * The method is fixed by the first call of this function, or on first use
 * (mproc_get_start_method(false), mproc_get_context(NULL), or the start of a
 * process created with a NULL context).
 * Returns 0, -EINVAL (unknown name, or NULL without @force), -EBUSY (already
 * fixed and @force is false).  Thread-safe; never blocks.
 */
MPROC_API int mproc_set_start_method(const char *method, bool force);

/**
 * mproc_get_start_method - name of the default context's start method.
 * @allow_none: if true and no method is fixed yet, return NULL and fix
 *     nothing; otherwise fix the default ("fork") if needed.
 * Returns a static string ("fork", "spawn", "forkserver") or NULL.
 * Thread-safe; never blocks.
 */
MPROC_API const char *mproc_get_start_method(bool allow_none);

/**
 * mproc_get_all_start_methods - the names of the methods supported here.
 * @names: receives up to @max static strings (may be NULL if @max is 0).
 * Returns how many methods there are (3), default first.  Never blocks.
 */
MPROC_API int mproc_get_all_start_methods(const char **names, size_t max);

/**
 * mproc_get_context - the context of a start method.
 * @method: "fork", "spawn", "forkserver", or NULL for the default method
 *     (which fixes it, as mproc_get_start_method(false) does); or "mpi",
 *     which is not a start method: a pool created with it runs over MPI
 *     (mproc/pool.h, "pools over MPI"), and processes, queues and pipes
 *     created with it start by fork (mproc_context_get_start_method says
 *     "fork").
 * @out: receives a context that lives as long as the program; it is never
 *     freed.  Pass it to mproc_process_create (and, in the same way, to the
 *     creating calls of queues, pipes and pools).
 * Returns 0, -EINVAL (unknown name or NULL @out), -ENOTSUP ("mpi" in a
 * library built without MPI).  Thread-safe.
 */
MPROC_API int mproc_get_context(const char *method, mproc_context **out);

/**
 * mproc_context_get_start_method - the name of @ctx's start method
 * ("fork", "spawn", "forkserver"), or NULL if @ctx is NULL.
 */
MPROC_API const char *mproc_context_get_start_method(const mproc_context *ctx);

/* ---- creating processes ------------------------------------------------ */

/**
 * mproc_process_create - a process object that will run
 * target(arg copy, len) in a child.
 * @ctx: start method; NULL means the default context, whose method is
 *     looked up (and fixed) at start.
 * @target: the function (not NULL).
 * @arg, @len: argument bytes, copied now (@arg may be NULL only if @len is
 *     0).  Nothing in them is translated: pass data, shared-memory tokens
 *     (mproc_shm_export) and offsets, not pointers, if the process may be
 *     started with spawn or forkserver.
 * @out: receives the handle; free it with mproc_process_free.
 *
 * The name defaults to "Process-N" ("Process-1:N" in a child, as Python
 * numbers them); daemon defaults to off; the authkey is copied from the
 * current process.
 * Returns 0, -EINVAL (NULL @target or @out, NULL @arg with @len > 0),
 * -ENOMEM.  Thread-safe; never blocks.
 */
MPROC_API int mproc_process_create(const mproc_context *ctx,
				   mproc_target_fn target, const void *arg,
				   size_t len, mproc_process **out);

/**
 * mproc_process_create_ops - a process object of a type defined by @ops
 * (the "subclass" form): the child runs ops->run(self, state copy, len).
 * @ops: callbacks; the table is copied, @ops->run must not be NULL.
 * Other arguments and errors as for mproc_process_create; the default name
 * is "<type_name>-N".
 */
MPROC_API int mproc_process_create_ops(const mproc_context *ctx,
				       const struct mproc_process_ops *ops,
				       const void *state, size_t len,
				       mproc_process **out);

/* ---- attributes -------------------------------------------------------- */

/**
 * mproc_process_name - the process's name.  The string stays valid until
 * the next mproc_process_set_name on the handle or its free.  NULL if @p
 * is NULL.  Never blocks.
 */
MPROC_API const char *mproc_process_name(const mproc_process *p);

/**
 * mproc_process_set_name - rename (any time; a started child keeps the
 * name it was started with).  On the handle of the current process it
 * renames the current process.  @name is copied.
 * Returns 0, -EINVAL (NULL), -ENOMEM.  Must not run concurrently with
 * mproc_process_name on the same handle.
 */
MPROC_API int mproc_process_set_name(mproc_process *p, const char *name);

/**
 * mproc_process_daemon - 1 if @p is a daemon, 0 if not, -EINVAL (NULL).
 */
MPROC_API int mproc_process_daemon(const mproc_process *p);

/**
 * mproc_process_set_daemon - mark a process daemonic (@daemon true) or
 * not, before start.  A daemon child is terminated when its parent exits;
 * it may not start children of its own.
 * Returns 0, -EINVAL (NULL, or the current process's handle), -EALREADY
 * (already started), -EBADF (closed).
 */
MPROC_API int mproc_process_set_daemon(mproc_process *p, bool daemon);

/**
 * mproc_process_authkey - copy the process's authentication key (32 bytes)
 * into @key.  A key is made of random bytes (getrandom) in the main
 * process; children inherit their process object's key under every start
 * method.  Returns 0, -EINVAL (NULL), or an errno of getrandom.
 */
MPROC_API int mproc_process_authkey(const mproc_process *p,
				    uint8_t key[MPROC_AUTHKEY_SIZE]);

/**
 * mproc_process_set_authkey - set the key that the child will have (before
 * start), or, on mproc_current_process(), the current process's key, which
 * processes created afterwards copy.
 * Returns 0, -EINVAL (NULL), -EALREADY (a child already started).
 */
MPROC_API int mproc_process_set_authkey(mproc_process *p,
					const uint8_t key[MPROC_AUTHKEY_SIZE]);

/**
 * mproc_process_start_method - name of the method @p was started with, or
 * will be started with if its context is fixed; NULL for a default-context
 * process whose method is not fixed yet, and for NULL @p.  In a child, the
 * current process's handle reports the method that started it; in the
 * main process it has none (NULL).
 */
MPROC_API const char *mproc_process_start_method(const mproc_process *p);

/* ---- life cycle -------------------------------------------------------- */

/**
 * mproc_process_start - start the child.  Once only.
 *
 * Returns 0, or -EINVAL (NULL, or the current process's handle),
 * -EALREADY (started before), -EBADF (closed), -ECHILD (the handle was
 * created by another process, e.g. copied into a forked child), -EPERM
 * (the current process is a daemon: daemons may not have children),
 * -EPROTO (this is a spawned child whose main() did not call mproc_main),
 * -MPROC_ENOSYMBOL (spawn/forkserver: the target or run pointer is not in
 * the code of a loaded object), -EAGAIN/-ENOMEM/-EMFILE (fork, spawn or
 * descriptors failed), -EPIPE (the forkserver could not be reached or
 * restarted).  On error nothing was started and start may be retried.
 * Blocks for the fork/exec, and with forkserver for one round trip to the
 * server (which itself is spawned on first use).  Calls on different
 * handles may run concurrently from several threads.
 */
MPROC_API int mproc_process_start(mproc_process *p);

/**
 * mproc_process_join - wait until the child ends, at most @timeout_ns
 * (MPROC_FOREVER: no limit; 0: just check).  The child is reaped and its
 * exit code recorded.  Returns 0 also when the timeout expired: check
 * mproc_process_is_alive.
 * Returns 0, -EINVAL (NULL, bad timeout, current process's handle),
 * -ECHILD (never started, created by another process, or the status was
 * reaped by someone else), -EBADF (closed).  Blocks up to the timeout;
 * several threads may join (or poll) one handle concurrently.
 */
MPROC_API int mproc_process_join(mproc_process *p, int64_t timeout_ns);

/**
 * mproc_process_is_alive - 1 if the child has been started and has not
 * ended (the current process's handle: always 1), 0 otherwise (never
 * started, ended - an ended child is reaped here), -EINVAL (NULL), -EBADF
 * (closed).  Never blocks.
 */
MPROC_API int mproc_process_is_alive(mproc_process *p);

/**
 * mproc_process_exitcode - the child's exit code: the low 8 bits of what
 * the target returned, or -N if signal N ended it.
 * @code: receives it.
 * Returns 0, -EBUSY (still running: no exit code yet), -ECHILD (never
 * started, or the status was lost: reaped by someone else), -MPROC_EPEERDIED
 * (forkserver only: the server died before reporting it), -EINVAL (NULL),
 * -EBADF (closed).  Never blocks (reaps a child that has just ended).
 */
MPROC_API int mproc_process_exitcode(mproc_process *p, int *code);

/**
 * mproc_process_pid - the child's pid (the current process's pid for its
 * handle); -ECHILD if never started, -EINVAL if @p is NULL.
 */
MPROC_API int mproc_process_pid(const mproc_process *p);

/**
 * mproc_process_ident - Python's ident: the same as mproc_process_pid.
 */
MPROC_API int mproc_process_ident(const mproc_process *p);

/**
 * mproc_process_sentinel - a descriptor that becomes readable (POLLIN) when
 * the child ends; use with poll/epoll, never read or close it.  Valid until
 * mproc_process_close/free.
 *  - fork, spawn: a pidfd of the child.
 *  - forkserver: a socket on which the server reports the exit status; it
 *    becomes readable once the server has reaped the child (so an exit code
 *    is available when it fires), or if the server itself dies.
 * Returns the descriptor, -ECHILD (never started), -EBADF (closed),
 * -EINVAL (NULL or the current process's handle).
 */
MPROC_API int mproc_process_sentinel(const mproc_process *p);

/**
 * mproc_process_terminate - send SIGTERM to the child.
 * mproc_process_kill - send SIGKILL.
 * mproc_process_interrupt - send SIGINT (Python 3.14's interrupt(); a
 *     child that ignores SIGINT, e.g. by inheriting SIG_IGN from its parent
 *     under fork or spawn, keeps running; forkserver children start with
 *     the default disposition).
 * Signals go through the child's pidfd, so a recycled pid is never hit.
 * Sending to a child that already ended does nothing and returns 0.
 * Returns 0, -ECHILD (never started), -EBADF (closed), -EINVAL (NULL or
 * the current process's handle), or an errno from pidfd_send_signal.
 * Never blocks.
 */
MPROC_API int mproc_process_terminate(mproc_process *p);
MPROC_API int mproc_process_kill(mproc_process *p);
MPROC_API int mproc_process_interrupt(mproc_process *p);

/**
 * mproc_process_close - release the handle's descriptors (pidfd,
 * sentinel).  Afterwards mproc_process_free, the attribute getters,
 * mproc_process_pid and mproc_process_exitcode still work; start, join,
 * is_alive, sentinel, terminate, kill, set_daemon and set_authkey return
 * -EBADF.
 * Returns 0, -EBUSY (the child is still running; an ended child is reaped
 * here), -EBADF (already closed), -EINVAL (NULL or the current process's
 * handle).  Never blocks.  Must not run concurrently with any other call
 * on @p.
 */
MPROC_API int mproc_process_close(mproc_process *p);

/**
 * mproc_process_free - release the handle.  Freeing a child that is still
 * running does not stop it: mproc keeps tracking it, reaps it when it ends
 * and, at exit, terminates it if it is a daemon and waits for it otherwise.
 * NULL and the current process's handle are ignored.  Must not run
 * concurrently with any other call on @p.
 */
MPROC_API void mproc_process_free(mproc_process *p);

/* ---- exit handlers ----------------------------------------------------- */

/** An exit handler: called with the @arg given to mproc_atexit. */
typedef void (*mproc_exit_fn)(void *arg);

/**
 * mproc_atexit - register @fn(@arg) to run when the current process ends
 * (its target or run() returns, it calls mproc_exit, or, in a process that
 * is not an mproc child, it exits normally); see EXIT HANDLERS above.
 * Handlers run last registered first, each once; a handler may register
 * another, which then runs too.  They belong to the registering process:
 * no child inherits them, under any start method.
 * Returns 0, -EINVAL (NULL @fn), -ENOMEM.  Thread-safe; never blocks.
 */
MPROC_API int mproc_atexit(mproc_exit_fn fn, void *arg);

/**
 * mproc_exit - end the current process with exit status @code (low 8
 * bits), as if its target or run() had returned @code: run its mproc_atexit
 * handlers, flush stdout and stderr, terminate its daemon children and
 * join the others, then end the way its start method ends a child
 * (_exit(2) under "fork" and "forkserver", exit(3) under "spawn"; see EXIT
 * HANDLERS above).  In a process that is not an mproc child (the main
 * process) it is exit(@code), which runs the same steps from its atexit(3)
 * hook.  Never returns; blocks while it joins children.  Other threads
 * keep running until the process ends.
 */
MPROC_API __attribute__((noreturn)) void mproc_exit(int code);

/* ---- the current process ----------------------------------------------- */

/**
 * mproc_current_process - the handle describing this process: in the main
 * process its name is "MainProcess"; in a child it is the child's view of
 * the process object that started it (the same object run() gets as
 * @self).  Valid for the life of the process; never free it.
 */
MPROC_API mproc_process *mproc_current_process(void);

/** mproc_current_process_name - shorthand for
 *  mproc_process_name(mproc_current_process()). */
MPROC_API const char *mproc_current_process_name(void);

/**
 * mproc_active_children - the children of the current process that are
 * still running (Python's active_children()).  Children that have ended
 * are reaped first (their exit codes stay readable through their handles)
 * and dropped from the list that the exit clean-up joins.
 * @out: receives up to @max handles, oldest start first; may be NULL if
 *     @max is 0 (to count).
 * The handles are the caller's own, those that mproc_process_create gave
 * it, not new references: do not free them twice.  They stay valid until
 * the caller frees them, so a handle freed by another thread after this
 * call returns is dangling in @out.  A child whose handle was already
 * freed while it ran is not listed (mproc still tracks it, see
 * mproc_process_free).  Children of a forked copy's parent are not this
 * process's children and are never listed.
 * Returns the number of running children, which may exceed @max, or
 * -EINVAL (NULL @out with @max > 0).  Never blocks; thread-safe, but must
 * not run concurrently with mproc_process_close or mproc_process_free of
 * one of the children.
 */
MPROC_API int mproc_active_children(mproc_process **out, size_t max);

/**
 * mproc_parent_pid - in a child started by mproc, the pid of the process
 * that started it (also for forkserver children, whose OS parent is the
 * server); 0 in the main process.
 */
MPROC_API int mproc_parent_pid(void);

/**
 * mproc_parent_process - in a child started by mproc, a handle on the
 * process that started it (Python's parent_process()); NULL in the main
 * process.  Under "forkserver" that is the process that asked for the
 * child, not the server.  Valid for the life of the process; never free or
 * close it (both are ignored / -EINVAL).  What works on it:
 *  - mproc_process_pid / _ident: the parent's pid (as mproc_parent_pid);
 *    mproc_process_name: its name when it started this child.
 *  - mproc_process_sentinel: a pidfd of the parent, readable (POLLIN)
 *    once the parent has exited; it was opened by the parent itself before
 *    the child existed, so it always names the right process.
 *  - mproc_process_is_alive: 1 until the parent has exited, then 0.
 *  - mproc_process_join(p, timeout): returns 0 when the parent has exited
 *    or the timeout expired (check is_alive), -EINVAL for a bad timeout;
 *    it waits on the pidfd and blocks up to the timeout.
 *  - mproc_process_exitcode: -ECHILD, always: the parent is not our child,
 *    so its exit status goes to its own parent and is never known here.
 *  - mproc_process_authkey: -ECHILD (the parent's key is not sent to the
 *    child; the child's own key is its parent's unless set otherwise).
 *  - start, terminate, kill, interrupt, set_daemon, set_authkey: -EINVAL.
 * A process forked from a child by plain fork(2) keeps the child's
 * parent handle, as it keeps its mproc_current_process.  Thread-safe;
 * never blocks.
 */
MPROC_API mproc_process *mproc_parent_process(void);

/**
 * mproc_cpu_count - the number of CPUs this process may run on (its
 * sched_getaffinity mask), or a negative errno.
 */
MPROC_API int mproc_cpu_count(void);

MPROC_END_DECLS

#endif /* MPROC_PROCESS_H */
