/* ratelog.c - see ratelog.h. */
#include <time.h>

#include "common/ratelog.h"

static uint64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
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
	r->held = 0;
	r->next_ms = now + RATELOG_INTERVAL_MS;
	return 1;
}
