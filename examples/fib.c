/*
 * fib - CPU work in the pool, not on the loop: the classic "don't block the
 * event loop" example.  Until jobs arrive (a later issue), it drives itself:
 * it submits fibonacci(n) tasks at a steady rate and publishes what it got
 * done as custom metrics.  The loop stays responsive (low lag) while the
 * pool threads do the arithmetic.
 *
 * Settings:
 *   n         fibonacci(n) per task (default 25)
 *   rate      tasks submitted per second (default 200)
 *   priority  critical, high, normal (default) or low
 *
 * Metrics: fib_per_s (completed last second), fib_done, fib_busy (EBUSY
 * answers), fib_last (the last result).
 *
 * Jobs: a payload of decimal digits n (0..45) is answered with fib(n) in
 * decimal, computed in the pool.  With rate=0 the plugin only serves jobs.
 */
#include <stdlib.h>
#include <string.h>

#include "corral.h"

#define TICK_MS 10

typedef struct fib_state {
	corral_worker *w;
	uv_timer_t tick;
	unsigned n;
	int prio;
	double per_tick, carry;
	uint64_t done, done_at_last_second, busy, second_start;
	int paused; /* waiting for the pool's drain callback */
	int stopping;
} fib_state;

static fib_state S;

/* The naive recursion is the point: it is what burns CPU. */
static unsigned long long fib(unsigned n)
{
	return n < 2 ? n : fib(n - 1) + fib(n - 2);
}

/* Pool thread. */
static void fib_work(corral_task *t, void *arg)
{
	unsigned long long *result = arg;
	(void)t;
	*result = fib(S.n);
}

/* Loop thread. */
static void fib_done(corral_task *t, int status, void *arg)
{
	unsigned long long *result = arg;
	(void)t;
	if (status == 0) {
		S.done++;
		corral_metric_set(S.w, "fib_last", (double)*result);
	}
	free(result);
}

static void on_drain(corral_worker *w, void *arg)
{
	(void)w;
	(void)arg;
	S.paused = 0;
}

static void on_tick(uv_timer_t *h)
{
	uint64_t now = uv_now(h->loop);
	if (now - S.second_start >= 1000) {
		corral_metric_set(S.w, "fib_per_s",
		                  (double)(S.done - S.done_at_last_second) *
		                      1000.0 / (double)(now - S.second_start));
		corral_metric_set(S.w, "fib_done", (double)S.done);
		S.done_at_last_second = S.done;
		S.second_start = now;
	}
	if (S.paused)
		return;
	S.carry += S.per_tick;
	while (S.carry >= 1) {
		unsigned long long *result = malloc(sizeof *result);
		if (!result)
			return;
		int rc = corral_submit(S.w, S.prio, fib_work, fib_done, result,
		                       NULL, NULL);
		if (rc != 0) {
			free(result);
			if (rc == CORRAL_EBUSY) {
				S.busy++;
				S.paused = 1; /* resume on drain */
				corral_metric_set(S.w, "fib_busy",
				                  (double)S.busy);
			}
			return;
		}
		S.carry -= 1;
	}
}

typedef struct fib_job {
	corral_job *job;
	unsigned n;
	unsigned long long result;
} fib_job;

static void job_work(corral_task *t, void *arg)
{
	fib_job *fj = arg;
	(void)t;
	fj->result = fib(fj->n);
}

static void job_done(corral_task *t, int status, void *arg)
{
	fib_job *fj = arg;
	char buf[32];
	(void)t;
	if (status == 0) {
		int len = snprintf(buf, sizeof buf, "%llu", fj->result);
		corral_job_reply(fj->job, buf, (size_t)len);
		S.done++;
	} else {
		corral_job_fail(fj->job, status, "fib task did not run");
	}
	free(fj);
}

static void fib_handle(corral_worker *w, corral_job *job)
{
	size_t len;
	const char *p = corral_job_payload(job, &len);
	unsigned n = 0;
	size_t i = 0;
	for (; i < len && i < 3 && p[i] >= '0' && p[i] <= '9'; i++)
		n = n * 10 + (unsigned)(p[i] - '0');
	if (i == 0 || n > 45) {
		corral_job_fail(job, CORRAL_EINVAL, "payload must be n, 0..45");
		return;
	}
	fib_job *fj = malloc(sizeof *fj);
	if (!fj) {
		corral_job_fail(job, CORRAL_ENOMEM, "out of memory");
		return;
	}
	fj->job = job;
	fj->n = n;
	int rc = corral_submit(w, corral_job_priority(job), job_work, job_done,
	                       fj, NULL, NULL);
	if (rc) {
		free(fj);
		corral_job_fail(job, rc, "the pool is full");
	}
}

static int parse_prio(const char *s)
{
	if (!s || strcmp(s, "normal") == 0)
		return CORRAL_PRIO_NORMAL;
	if (strcmp(s, "critical") == 0)
		return CORRAL_PRIO_CRITICAL;
	if (strcmp(s, "high") == 0)
		return CORRAL_PRIO_HIGH;
	if (strcmp(s, "low") == 0)
		return CORRAL_PRIO_LOW;
	return -1;
}

static int fib_init(corral_worker *w)
{
	const char *n = corral_setting(w, "n"), *rate = corral_setting(w, "rate");
	S.w = w;
	S.n = n ? (unsigned)atoi(n) : 25;
	S.prio = parse_prio(corral_setting(w, "priority"));
	if (S.n > 45 || S.prio < 0) {
		corral_log(w, CORRAL_LOG_ERROR,
		           "bad settings: n must be 0..45, priority one of "
		           "critical, high, normal, low");
		return CORRAL_ECONFIG;
	}
	S.per_tick = (rate ? atof(rate) : 200.0) * TICK_MS / 1000.0;
	corral_pool_on_drain(w, on_drain, NULL);
	uv_timer_init(corral_loop(w), &S.tick);
	S.second_start = uv_now(corral_loop(w));
	corral_metric_set(w, "fib_per_s", 0);
	corral_metric_set(w, "fib_done", 0);
	return uv_timer_start(&S.tick, on_tick, TICK_MS, TICK_MS) ? CORRAL_ESYS
	                                                          : 0;
}

static void fib_stop(corral_worker *w)
{
	/* In-flight tasks finish; the pool drains them before the worker
	 * exits. */
	corral_log(w, CORRAL_LOG_INFO, "stopping after %llu tasks",
	           (unsigned long long)S.done);
	uv_close((uv_handle_t *)&S.tick, NULL);
}

CORRAL_PLUGIN(.name = "fib", .init = fib_init, .stop = fib_stop,
              .handle = fib_handle);
