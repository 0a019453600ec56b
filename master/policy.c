/* policy.c - see policy.h. */
#include <stdlib.h>

#include "corral_base.h"
#include "master/policy.h"

int restart_track_init(restart_track *t, const restart_policy *p)
{
	t->base_ms = 0;
	t->consecutive = 0;
	t->head = t->count = 0;
	t->cap = p->max_restarts + 1;
	t->times = calloc(t->cap, sizeof *t->times);
	return t->times ? 0 : CORRAL_ENOMEM;
}

void restart_track_fini(restart_track *t)
{
	free(t->times);
	t->times = NULL;
}

uint64_t backoff_next(const restart_policy *p, restart_track *t,
                      uint64_t uptime_ms, uint32_t rnd)
{
	if (uptime_ms >= p->min_uptime_ms)
		t->consecutive = 0;
	uint64_t base;
	if (t->consecutive == 0) {
		base = p->delay_ms;
	} else {
		base = t->base_ms * 2;
		if (base < BACKOFF_STEP_MS)
			base = BACKOFF_STEP_MS;
	}
	if (base > p->delay_max_ms)
		base = p->delay_max_ms;
	t->base_ms = base;
	t->consecutive++;
	/* Jitter in [-20%, +20%], never past the ceiling. */
	double f = 0.8 + 0.4 * ((double)rnd / (double)UINT32_MAX);
	uint64_t d = (uint64_t)((double)base * f + 0.5);
	if (d > p->delay_max_ms)
		d = p->delay_max_ms;
	return d;
}

int crashloop_record(const restart_policy *p, restart_track *t,
                     uint64_t now_ms)
{
	/* Forget restarts that left the window. */
	while (t->count) {
		unsigned oldest = (t->head + t->cap - t->count) % t->cap;
		if (now_ms - t->times[oldest] < p->window_ms)
			break;
		t->count--;
	}
	if (t->count + 1 > p->max_restarts)
		return 1;
	t->times[t->head] = now_ms;
	t->head = (t->head + 1) % t->cap;
	t->count++;
	return 0;
}

unsigned crashloop_count(const restart_policy *p, const restart_track *t,
                         uint64_t now_ms)
{
	unsigned n = 0;
	for (unsigned k = 0; k < t->count; k++) {
		uint64_t at = t->times[(t->head + t->cap - 1 - k) % t->cap];
		if (now_ms - at >= p->window_ms)
			break; /* older ones are older still */
		n++;
	}
	return n;
}
