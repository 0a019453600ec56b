/*
 * pool.h - a CPU thread pool whose completions come back to one libuv loop.
 *
 * It is what uv_queue_work() is not: four priority lanes with aging, a
 * bounded queue that says CORRAL_EBUSY at once instead of growing, deadlines
 * for tasks that have not started, cancellation, statistics, and a drain
 * for shutdown.  It depends on pthreads, libuv (for the wake-up) and the
 * error codes and public types of corral.h; corral-worker owns one per
 * process and plugins reach it through corral_submit().
 *
 * Threads: pool_submit() may be called from any thread; the loop thread is
 * the fast path.  Every other function here runs on the loop thread.  Work
 * functions run on pool threads; done functions always run on the loop
 * thread, exactly once per accepted task, with no pool lock held.
 */
#ifndef POOL_POOL_H
#define POOL_POOL_H

#include <stdint.h>
#include <uv.h>

#include "corral.h"

#define POOL_LANES 4

typedef struct pool pool;

typedef struct pool_config {
	unsigned threads;    /* >= 1 */
	unsigned max_queue;  /* tasks waiting (not running) before EBUSY */
	uint64_t aging_ms;   /* a task waiting this long outranks newer ones */
	const char *name;    /* thread name prefix, e.g. "corral-pool" */
} pool_config;

typedef struct pool_stats {
	uint64_t submitted, completed, rejected, expired, cancelled;
	uint32_t queued[POOL_LANES]; /* by lane: critical, high, normal, low */
	uint32_t running;
	/* Sampled over the interval since the previous pool_stats() call. */
	uint64_t wait_p50_us, wait_p99_us, run_p50_us, run_p99_us;
	uint64_t oldest_running_ms; /* age of the longest-running task, 0 */
} pool_stats;

/* Starts the threads.  0 or a negative corral_err. */
int pool_new(pool **out, uv_loop_t *loop, const pool_config *cfg);

/*
 * Queues work(task, arg) on a pool thread, then done(task, status, arg) on
 * the loop thread.  status is 0, CORRAL_ECANCELED or CORRAL_ETIMEDOUT.
 * Returns 0 (and *task if task is not NULL; valid until done returns),
 * CORRAL_EBUSY when max_queue tasks are waiting (nothing is queued and done
 * will not be called), CORRAL_EINVAL, or CORRAL_ESTATE once draining.
 */
int pool_submit(pool *p, int prio, corral_work_fn work, corral_done_fn done,
                void *arg, const corral_task_opts *opts, corral_task **task);

/* See corral_task_cancel() and corral_task_cancelled() in corral.h. */
int pool_task_cancel(pool *p, corral_task *t);
int pool_task_cancelled(const corral_task *t);

/* fn(arg) runs on the loop thread when, after a CORRAL_EBUSY, the queue has
 * fallen to half of max_queue.  NULL clears it. */
void pool_on_drain(pool *p, void (*fn)(void *arg), void *arg);

void pool_stats_take(pool *p, pool_stats *s);

/* Tasks accepted whose done has not run yet. */
uint64_t pool_outstanding(const pool *p);

/*
 * Shutdown, step one: no new submissions (CORRAL_ESTATE); queued tasks
 * run (cancel = 0) or complete with CORRAL_ECANCELED (cancel = 1, and
 * running ones see corral_task_cancelled()).  The pool's handles stop
 * holding the loop open once every done has run.
 */
void pool_drain(pool *p, int cancel);

/* Step two, after the loop has run dry: joins the threads, closes the
 * handles (the loop must run once more to finish closing), frees. */
void pool_free(pool *p);

#endif
