/*
 * stall - blocks its event loop for a known time at a fixed period, like
 * a plugin doing a slow synchronous call now and then.  Test fixture for
 * the worker's lag figures: a loop blocked X ms must report a lag of X.
 *
 * Settings:
 *   ms     how long each stall lasts (default 50)
 *   every  ms between stalls (default 1000)
 */
#include <errno.h>
#include <stdlib.h>
#include <time.h>

#include "corral.h"

static uv_timer_t tick;
static long stall_ms = 50;

/* Blocks the loop thread for stall_ms, whatever signals arrive. */
static void stall(uv_timer_t *t)
{
	(void)t;
	struct timespec end;
	clock_gettime(CLOCK_MONOTONIC, &end);
	end.tv_sec += stall_ms / 1000;
	end.tv_nsec += (stall_ms % 1000) * 1000000L;
	if (end.tv_nsec >= 1000000000L) {
		end.tv_sec++;
		end.tv_nsec -= 1000000000L;
	}
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &end, NULL) ==
	       EINTR)
		;
}

static int stall_init(corral_worker *w)
{
	const char *m = corral_setting(w, "ms"), *e = corral_setting(w, "every");
	long every = e ? atol(e) : 1000;
	if (m)
		stall_ms = atol(m);
	if (stall_ms < 0 || every <= 0)
		return CORRAL_ECONFIG;
	int rc = uv_timer_init(corral_loop(w), &tick);
	if (!rc)
		rc = uv_timer_start(&tick, stall, (uint64_t)every,
		                    (uint64_t)every);
	return rc ? CORRAL_ESYS : 0;
}

static void stall_stop(corral_worker *w)
{
	(void)w;
	uv_close((uv_handle_t *)&tick, NULL);
}

CORRAL_PLUGIN(.name = "stall", .init = stall_init, .stop = stall_stop);
