/* ratelog.c - see ratelog.h. */
#include <time.h>

#include "common/ratelog.h"

/* CLOCK_MONOTONIC cannot fail on Linux; should it, every line is let
 * through rather than none (UINT64_MAX is never before next_ms). */
static uint64_t mono_ms(void)
{
	struct timespec ts;
	if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
		return UINT64_MAX;
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void written(ratelog *r, uint64_t now)
{
	r->held = 0;
	r->next_ms = now == UINT64_MAX ? now : now + RATELOG_INTERVAL_MS;
}

int ratelog_ok(ratelog *r, uint64_t *held)
{
	uint64_t now = mono_ms();
	if (now < r->next_ms) {
		r->held++;
		return 0;
	}
	if (held)
		*held = r->held;
	written(r, now);
	return 1;
}

int ratelog_flush(ratelog *r, uint64_t *held)
{
	uint64_t now = mono_ms();
	if (!r->held || now < r->next_ms)
		return 0;
	*held = r->held;
	written(r, now);
	return 1;
}

uint64_t ratelog_wait_ms(const ratelog *r)
{
	uint64_t now = mono_ms();
	return now < r->next_ms ? r->next_ms - now : 0;
}
