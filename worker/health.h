/*
 * health.h - what a worker measures about itself for HEALTH reports.
 *
 * Event-loop lag is measured the way Node's monitorEventLoopDelay does it: a
 * repeating timer notes how late each tick fires compared with when it was
 * due.  A loop blocked by plugin code makes the next tick late by the whole
 * blocked time, so the max and p99 show it.
 */
#ifndef WORKER_HEALTH_H
#define WORKER_HEALTH_H

#include <stdint.h>
#include <uv.h>

#include "common/hist.h"

#define HEALTH_LAG_TICK_MS 10

typedef struct health_mon {
	uv_timer_t tick;
	uint64_t due_ns;          /* when the current tick should fire */
	hist lag;                 /* lag in us, this interval */
	uint64_t last_idle_ns, last_report_ns, start_ns;
} health_mon;

typedef struct health_snapshot {
	uint64_t uptime_ms, rss_bytes, cpu_us;
	uint64_t lag_p50_us, lag_p99_us, lag_max_us;
	double util;
} health_snapshot;

int health_start(health_mon *h, uv_loop_t *loop);
/* Fills s with this interval's figures and starts the next interval. */
void health_take(health_mon *h, uv_loop_t *loop, health_snapshot *s);
void health_unref(health_mon *h);
void health_close(health_mon *h);

#endif
