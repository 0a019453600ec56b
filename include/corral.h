/*
 * corral.h - the one public header of corral: the plugin ABI.
 *
 * A plugin is a shared object that exports one const struct, `corral_plugin`,
 * built with CORRAL_PLUGIN().  corral-worker dlopen()s it, checks abi_version
 * and size before touching any hook, then calls init on its libuv loop thread.
 * Everything a plugin may call lives in the worker binary and is declared
 * here; a plugin includes nothing else of corral's.
 *
 * Threading contract: every function below and every hook runs on the
 * worker's loop thread unless its comment says otherwise.  The worker owns
 * the loop; a plugin may open uv handles on it in init and must close them
 * when stop is called, so that the loop can end.
 */
#ifndef CORRAL_H
#define CORRAL_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "corral_base.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Bumped when a change breaks plugins built against an older header. */
#define CORRAL_ABI_VERSION 1

typedef struct corral_worker corral_worker;
typedef struct corral_job corral_job;

enum corral_log_level {
	CORRAL_LOG_ERROR = 0,
	CORRAL_LOG_WARN = 1,
	CORRAL_LOG_INFO = 2,
	CORRAL_LOG_DEBUG = 3,
};

/*
 * The plugin's ops table.  Build it with CORRAL_PLUGIN() so that abi_version
 * and size are filled in.  (The type is `struct corral_plugin`; the one
 * exported object of that type is named `corral_plugin`.)  Hooks left NULL
 * are skipped.  Fields are only ever
 * appended: a worker reads a hook only if the plugin's `size` covers it, so a
 * plugin built against an older header keeps working (new hooks read as
 * NULL), and a plugin newer than the worker is refused with CORRAL_EABI.
 */
struct corral_plugin {
	uint32_t abi_version; /* CORRAL_ABI_VERSION the plugin was built for */
	uint32_t size;        /* sizeof(struct corral_plugin) at build time */
	const char *name;     /* shown in logs and status; may be NULL */

	/*
	 * init: loop thread, once, before the worker reports READY.  May open uv
	 * handles on corral_loop(w).  Must not block for long: the supervisor
	 * gives a worker `start_timeout` to become ready.  Returns 0, or a
	 * negative corral_err; on failure the worker exits with the "fatal, do
	 * not respawn" code (78) and is not restarted.  fini is still called.
	 */
	int (*init)(corral_worker *w);

	/*
	 * stop: loop thread, once, when graceful shutdown begins.  Stop taking
	 * new work and close your handles once in-flight work is done; the
	 * worker ends when its loop has nothing left to run, or is killed at the
	 * supervisor's shutdown deadline.  Must not block.  Cannot fail.
	 */
	void (*stop)(corral_worker *w);

	/*
	 * fini: loop thread, once, last, after the loop has run dry (or after a
	 * failed init).  Free what init allocated.  May block briefly; cannot
	 * fail.  Do not touch uv handles here: they are already closed.
	 */
	void (*fini)(corral_worker *w);

	/*
	 * handle: loop thread, once per job the supervisor sends.  Reply now
	 * or later (typically from a pool task's done) with corral_job_reply()
	 * or corral_job_fail(), exactly once.  Must not block.  A job may run
	 * more than once (at-least-once delivery: if this worker dies before
	 * replying, the job goes to another worker), so make handling
	 * idempotent.  Plugins built before this hook existed load fine; jobs
	 * sent to them fail with CORRAL_EPLUGIN.
	 */
	void (*handle)(corral_worker *w, corral_job *job);
};

#define CORRAL_PLUGIN(...)                                                    \
	CORRAL_EXPORT const struct corral_plugin corral_plugin = {            \
		.abi_version = CORRAL_ABI_VERSION,                            \
		.size = sizeof(struct corral_plugin),                         \
		__VA_ARGS__}

/* The worker's libuv loop. Never NULL. */
CORRAL_EXPORT uv_loop_t *corral_loop(corral_worker *w);

/* This worker's slot number, 0 .. workers-1. Stable across restarts. */
CORRAL_EXPORT int corral_slot(const corral_worker *w);

/*
 * The value of `key` in the config file's [plugin] section, or NULL when it
 * is not set.  The string lives as long as the worker.
 */
CORRAL_EXPORT const char *corral_setting(const corral_worker *w,
                                         const char *key);

/*
 * Logs one line to the supervisor's log, prefixed with slot and pid.
 * Embedded newlines are replaced.  Any thread (lines are written whole).
 */
CORRAL_EXPORT void corral_log(corral_worker *w, int level, const char *fmt,
                              ...) __attribute__((format(printf, 3, 4)));

/*
 * Sets a custom metric that rides along in every HEALTH report.  Names are
 * 1..31 bytes; at most 32 metrics.  Returns 0, CORRAL_EINVAL for a bad name,
 * or CORRAL_ENOSPC when the table is full.
 */
CORRAL_EXPORT int corral_metric_set(corral_worker *w, const char *name,
                                    double value);

/* One pointer of plugin state, NULL until set. */
CORRAL_EXPORT void corral_set_data(corral_worker *w, void *data);
CORRAL_EXPORT void *corral_get_data(const corral_worker *w);

/*
 * The worker's thread pool, for CPU work that must not block the loop.
 *
 * Four priority lanes, served highest first; a task that has waited longer
 * than `aging` (default 100 ms) is served before newer tasks of higher
 * lanes, except critical, so no lane starves (critical is for short,
 * latency-sensitive work; a pool flooded with critical tasks still serves
 * aged ones now and then).
 */
typedef struct corral_task corral_task;

/* Runs on a pool thread.  May block; should poll corral_task_cancelled()
 * if it runs long. */
typedef void (*corral_work_fn)(corral_task *task, void *arg);
/* Runs on the loop thread, exactly once per accepted task, after work (or
 * instead of it): status 0, CORRAL_ECANCELED or CORRAL_ETIMEDOUT.  The task
 * handle is invalid once it returns. */
typedef void (*corral_done_fn)(corral_task *task, int status, void *arg);

typedef struct corral_task_opts {
	/* If the task has not started this many ms after submission, it
	 * completes with CORRAL_ETIMEDOUT without running.  0 = no deadline. */
	uint64_t deadline_ms;
} corral_task_opts;

/*
 * Queues work on the pool.  Any thread (the loop thread is the fast path).
 * Returns 0 and sets *task (if task is not NULL); or CORRAL_EBUSY at once
 * when `max_queue` tasks are already waiting (see corral_pool_on_drain), or
 * CORRAL_ESTATE once the worker is stopping.  opts may be NULL.
 */
CORRAL_EXPORT int corral_submit(corral_worker *w, int prio,
                                corral_work_fn work, corral_done_fn done,
                                void *arg, const corral_task_opts *opts,
                                corral_task **task);

/*
 * Loop thread, before the task's done has run.  A queued task completes
 * with CORRAL_ECANCELED without running; a running one gets a flag that
 * corral_task_cancelled() reports, and completes with CORRAL_ECANCELED.
 * Returns 0, or CORRAL_ESTATE if the task has already finished running.
 */
CORRAL_EXPORT int corral_task_cancel(corral_task *task);
/* Pool thread, inside work: 1 once the task was cancelled. */
CORRAL_EXPORT int corral_task_cancelled(const corral_task *task);

/*
 * Jobs (loop thread).  A job handle is valid until its reply; replying a
 * second time returns CORRAL_ESTATE instead of sending anything.
 */
CORRAL_EXPORT const void *corral_job_payload(const corral_job *job,
                                             size_t *len);
/* Milliseconds left before the client stops waiting (0: already late). */
CORRAL_EXPORT uint64_t corral_job_deadline_ms(const corral_job *job);
/* 1 once the supervisor gave up on the job (client timeout). */
CORRAL_EXPORT int corral_job_cancelled(const corral_job *job);
/* The job's priority (enum corral_priority), for corral_submit. */
CORRAL_EXPORT int corral_job_priority(const corral_job *job);
/* Sends the result (copied; up to 1 MiB).  0, CORRAL_ESTATE (already
 * replied), CORRAL_ETOOLONG, or CORRAL_ENOMEM. */
CORRAL_EXPORT int corral_job_reply(corral_job *job, const void *data,
                                   size_t len);
/* Fails the job: the client gets error "failed" with code and msg. */
CORRAL_EXPORT int corral_job_fail(corral_job *job, int code, const char *msg);

/* Loop thread: fn runs on the loop thread when, after a CORRAL_EBUSY, the
 * queue has fallen to half of max_queue (like Piscina's 'drain'). */
CORRAL_EXPORT void corral_pool_on_drain(corral_worker *w,
                                        void (*fn)(corral_worker *w,
                                                   void *arg),
                                        void *arg);

/*
 * Listeners (loop thread).  The supervisor binds every `listen = NAME=URL`
 * once, before any worker starts, and every worker inherits the listening
 * sockets: all of them accept from the same kernel queue, so a worker that
 * dies loses only the connections it had accepted, and what waits in the
 * queue goes to the others.  The sockets outlive every worker (crash,
 * restart, reload, scale); only the supervisor's exit closes them.
 *
 * The descriptors follow systemd's socket-activation convention: fds 3..
 * in the order of LISTEN_FDNAMES, LISTEN_FDS of them, LISTEN_PID set to
 * the worker's pid (so sd_listen_fds() works too).  They are non-blocking
 * and close-on-exec, and that flag and everything else about the open
 * socket is shared with the supervisor and the other workers.
 */

/*
 * Stores the listening descriptor named `name` in *fd.  0, CORRAL_ENOENT
 * (no listener of that name), or CORRAL_EINVAL.  The descriptor stays the
 * worker's: do not close it (others share the socket; closing changes
 * nothing for them), and do not call listen() on it again (that would
 * reset the shared backlog).  Prefer corral_listen().
 */
CORRAL_EXPORT int corral_listener(corral_worker *w, const char *name,
                                  int *fd);

/*
 * Called on the loop thread once per accepted connection of listener
 * `name`.  conn is an open, non-blocking uv_tcp_t (TCP) or uv_pipe_t
 * (unix socket) on corral_loop(w), malloc()ed by the worker; it belongs to
 * the plugin from here on, with conn->data free for its use.  Close it
 * with corral_conn_close(), or with uv_close() and a close callback that
 * free()s the handle.  Must not block.
 */
typedef void (*corral_conn_fn)(corral_worker *w, const char *name,
                               uv_stream_t *conn);

/*
 * Starts accepting on listener `name` in this worker's loop; every
 * connection goes to on_connection.  Call from init (or later, on the loop
 * thread).  Returns 0, CORRAL_ENOENT (no listener of that name),
 * CORRAL_ESTATE (already listening on it, or stopping), CORRAL_EINVAL or
 * CORRAL_ESYS.
 *
 * Lifetime: when graceful stop begins, the worker stops accepting on every
 * listener before it calls the plugin's stop hook; on_connection is never
 * called after that.  Connections already accepted are the plugin's to
 * finish and close (stop's contract: the worker ends when the loop runs
 * dry).  Each wake-up accepts one connection and leaves the rest of a
 * burst to the other workers, which spreads a burst of connections over
 * the workers (see README, "Listeners").
 */
CORRAL_EXPORT int corral_listen(corral_worker *w, const char *name,
                                corral_conn_fn on_connection);

/* Closes an accepted connection and frees its handle (loop thread). */
CORRAL_EXPORT void corral_conn_close(uv_stream_t *conn);

#ifdef __cplusplus
}
#endif
#endif /* CORRAL_H */
