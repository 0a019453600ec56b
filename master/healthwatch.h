/*
 * healthwatch.h - what a worker's health reports say should be done about
 * it: the judgement behind corral's health actions, kept apart from the
 * doing (the supervisor replaces a worker through the same gated
 * replacement as a reload) so that it can be tested on made-up samples.
 *
 * Three figures, each off unless configured:
 *   max_memory  RSS above it: replace the worker (PM2's
 *               max_memory_restart, but judged on every report).
 *   leak_window RSS that grows steadily across the window: a least-squares
 *               line through the samples of the window, with a slope whose
 *               growth over the window reaches leak_min_growth and a fit
 *               good enough (r^2) that one step up is not mistaken for a
 *               trend.  Flagged `leaking` with its slope; replaced only
 *               with leak_action = restart.
 *   lag_restart lag p99 above it in every report for lag_restart_for:
 *               replace the worker (max_lag alone only stops dispatch).
 * And pool_stuck: a pool task running longer than it flags the worker
 * (nothing is restarted for it: the task may be legitimately long).
 *
 * One watch per slot, reset when a new worker takes the slot.  Memory is
 * bounded: at most HW_SAMPLES samples, thinned to the window's length.
 */
#ifndef MASTER_HEALTHWATCH_H
#define MASTER_HEALTHWATCH_H

#include <stddef.h>
#include <stdint.h>

#include "ipc/proto.h"

#define HW_SAMPLES 256
#define HW_MIN_FIT 0.9 /* r^2 below this: not a steady trend */

typedef struct hw_limits {
	uint64_t max_memory;      /* bytes; 0 = off */
	uint64_t leak_window_ms;  /* 0 = off */
	uint64_t leak_min_growth; /* bytes across the window */
	uint64_t lag_restart_ms;  /* lag p99 threshold; 0 = off */
	uint64_t lag_for_ms;      /* ...sustained this long */
	uint64_t pool_stuck_ms;   /* 0 = off */
} hw_limits;

typedef enum hw_verdict {
	HW_OK,
	HW_MEMORY, /* over max_memory */
	HW_LEAK,   /* leaking (acted on only with leak_action = restart) */
	HW_LAG,    /* lag sustained over lag_restart */
} hw_verdict;

typedef struct hw_sample {
	uint64_t t_ms;
	uint64_t rss;
} hw_sample;

typedef struct healthwatch {
	hw_sample s[HW_SAMPLES]; /* a ring, oldest at head */
	unsigned head, n;
	uint64_t lag_since_ms;   /* lag over the threshold since; 0: not */
	int leaking;
	double slope_bps;        /* bytes per second over the window */
	int pool_stuck;
} healthwatch;

const char *hw_verdict_name(hw_verdict v);

/* A new worker in the slot: forget the old one's samples. */
void hw_reset(healthwatch *w);

/*
 * One health report h at now_ms: updates the flags (leaking, slope,
 * pool_stuck) and returns the most pressing verdict, with why filled in
 * words and figures ("RSS 300.0 MB over max_memory 256.0 MB").
 */
hw_verdict hw_observe(healthwatch *w, const hw_limits *l, uint64_t now_ms,
                      const ipc_health *h, char *why, size_t len);

/* The least-squares fit of the samples: slope in bytes/s and r^2.  0 when
 * there are fewer than 3 samples or no spread in time. */
int hw_fit(const healthwatch *w, double *slope_bps, double *r2);

#endif
