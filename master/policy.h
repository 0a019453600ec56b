/*
 * policy.h - the restart policy as pure arithmetic on a clock the caller
 * passes in, so tests can drive it with a fake clock.
 *
 * Delay: the first restart after a good run waits restart_delay; each
 * further consecutive one doubles it (at least BACKOFF_STEP_MS once
 * nonzero), capped at restart_delay_max, with +-20% jitter so that a fleet of
 * crashing workers does not restart in lockstep.  A worker that stayed up
 * min_uptime resets the sequence.
 *
 * Crash loop: every restart counts, fast or slow.  A restart that would make
 * more than max_restarts within restart_window is refused: the slot FAILS.
 */
#ifndef MASTER_POLICY_H
#define MASTER_POLICY_H

#include <stdint.h>

#define BACKOFF_STEP_MS 100

typedef struct restart_policy {
	uint64_t delay_ms, delay_max_ms, min_uptime_ms, window_ms;
	unsigned max_restarts;
} restart_policy;

typedef struct restart_track {
	uint64_t base_ms;     /* last delay before jitter */
	unsigned consecutive; /* restarts since the last good run */
	uint64_t *times;      /* ring of the last max_restarts+1 restart times */
	unsigned cap, head, count;
} restart_track;

int restart_track_init(restart_track *t, const restart_policy *p);
void restart_track_fini(restart_track *t);

/*
 * The delay before the next restart of a worker that ran for uptime_ms.
 * rnd is any uniformly random 32-bit value (jitter).
 */
uint64_t backoff_next(const restart_policy *p, restart_track *t,
                      uint64_t uptime_ms, uint32_t rnd);

/*
 * Records a restart at now_ms.  Returns 1 if that makes more than
 * max_restarts within the window (the restart must not happen), else 0.
 */
int crashloop_record(const restart_policy *p, restart_track *t,
                     uint64_t now_ms);

/* Restarts recorded within the window that ends at now_ms (changes
 * nothing): the budget used, for `corralctl explain`. */
unsigned crashloop_count(const restart_policy *p, const restart_track *t,
                         uint64_t now_ms);

#endif
