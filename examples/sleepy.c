/*
 * sleepy - answers each job after a uv timer, like a service waiting on
 * I/O: the loop stays free, many jobs are in flight at once.
 *
 * Settings:
 *   delay  ms before each reply (default 100)
 */
#include <stdlib.h>

#include "corral.h"

typedef struct wait {
	uv_timer_t timer;
	corral_job *job;
} wait;

static uint64_t delay_ms = 100;
static unsigned pending;

static void freed(uv_handle_t *h)
{
	free(h->data);
}

static void wake(uv_timer_t *t)
{
	wait *wt = t->data;
	size_t len;
	const void *p = corral_job_payload(wt->job, &len);
	corral_job_reply(wt->job, p, len);
	pending--;
	uv_close((uv_handle_t *)t, freed);
}

static int sleepy_init(corral_worker *w)
{
	const char *d = corral_setting(w, "delay");
	if (d)
		delay_ms = strtoull(d, NULL, 10);
	return 0;
}

static void sleepy_handle(corral_worker *w, corral_job *job)
{
	wait *wt = malloc(sizeof *wt);
	if (!wt) {
		corral_job_fail(job, CORRAL_ENOMEM, "out of memory");
		return;
	}
	wt->job = job;
	wt->timer.data = wt;
	uv_timer_init(corral_loop(w), &wt->timer);
	uv_timer_start(&wt->timer, wake, delay_ms, 0);
	pending++;
}

static void sleepy_stop(corral_worker *w)
{
	/* In-flight jobs finish on their timers; the loop ends after. */
	corral_log(w, CORRAL_LOG_INFO, "stopping with %u job(s) in flight",
	           pending);
}

CORRAL_PLUGIN(.name = "sleepy", .init = sleepy_init, .handle = sleepy_handle,
              .stop = sleepy_stop);
