/*
 * health.h - what a worker measures about itself for HEALTH reports.
 *
 * Event-loop lag without a timer: a uv_check hook, which runs once per
 * loop turn right after the poll, records how long the loop was busy --
 * not blocked in the poll -- since the previous turn: wall time minus the
 * poll's idle time (uv_metrics_idle_time).  That is how long an event that
 * arrived at the start of the turn waited for the loop, so a loop blocked
 * X ms by plugin code shows a lag of X (max, and p99 of a turn's samples).
 * Nothing wakes the loop to measure: an idle loop turns only for the
 * health report itself, and a turn costs two clock reads.
 */
#ifndef WORKER_HEALTH_H
#define WORKER_HEALTH_H

#include <stdint.h>
#include <uv.h>

#include "common/hist.h"

typedef struct health_mon {
	uv_check_t check;         /* once per loop turn, after the poll */
	uv_loop_t *loop;
	uint64_t turn_ns;         /* uv_hrtime() at the previous turn */
	uint64_t turn_idle_ns;    /* idle time at the previous turn */
	hist lag;                 /* busy time per turn in us, this interval */
	int statm_fd;             /* /proc/self/statm, kept open; -1 */
	uint64_t last_idle_ns, last_report_ns, start_ns;
} health_mon;

typedef struct health_snapshot {
	uint64_t uptime_ms, rss_bytes, cpu_us;
	uint64_t lag_p50_us, lag_p99_us, lag_max_us;
	double util;
} health_snapshot;

/* Loop thread.  Turns on UV_METRICS_IDLE_TIME for the loop (the lag and
 * utilisation need it).  0 or a libuv error. */
int health_start(health_mon *h, uv_loop_t *loop);
/* Fills s with this interval's figures and starts the next interval. */
void health_take(health_mon *h, uv_loop_t *loop, health_snapshot *s);
/* The hook stops holding the loop open (it never does; kept for stop). */
void health_unref(health_mon *h);
void health_close(health_mon *h);

#endif
