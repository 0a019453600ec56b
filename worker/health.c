/* health.c - see health.h. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "worker/health.h"

#define NS_PER_MS 1000000ull

/* One sample per loop turn: the time since the previous turn that the
 * loop did not spend waiting in the poll.  The idle figure is current
 * here: libuv brings it up to date when the poll returns. */
static void on_check(uv_check_t *c)
{
	health_mon *h = c->data;
	uint64_t now = uv_hrtime();
	uint64_t idle = uv_metrics_idle_time(h->loop);
	uint64_t span = now - h->turn_ns, waited = idle - h->turn_idle_ns;
	hist_add(&h->lag, span > waited ? (span - waited) / 1000 : 0);
	h->turn_ns = now;
	h->turn_idle_ns = idle;
}

int health_start(health_mon *h, uv_loop_t *loop)
{
	memset(h, 0, sizeof *h);
	hist_reset(&h->lag);
	h->loop = loop;
	/* No RSS figure (0) rather than no worker, if this fails. */
	h->statm_fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
	int rc = uv_loop_configure(loop, UV_METRICS_IDLE_TIME);
	if (rc)
		return rc;
	h->start_ns = h->last_report_ns = h->turn_ns = uv_hrtime();
	h->last_idle_ns = h->turn_idle_ns = uv_metrics_idle_time(loop);
	if ((rc = uv_check_init(loop, &h->check)))
		return rc;
	h->check.data = h;
	if ((rc = uv_check_start(&h->check, on_check)))
		return rc;
	/* A measurement never keeps the loop alive. */
	uv_unref((uv_handle_t *)&h->check);
	return 0;
}

/* Resident bytes, from /proc/self/statm opened once: opening a /proc file
 * cost about as much as the rest of a health report together. */
static uint64_t rss_bytes(health_mon *h)
{
	char buf[128];
	if (h->statm_fd < 0)
		return 0;
	ssize_t n = pread(h->statm_fd, buf, sizeof buf - 1, 0);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	char *end;
	strtoul(buf, &end, 10); /* size */
	unsigned long resident = strtoul(end, NULL, 10);
	return (uint64_t)resident * (uint64_t)sysconf(_SC_PAGESIZE);
}

/* User + system CPU of the whole process, all threads. */
static uint64_t cpu_us(void)
{
	struct timespec ts;
	if (clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts) != 0)
		return 0;
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

void health_take(health_mon *h, uv_loop_t *loop, health_snapshot *s)
{
	s->lag_p50_us = hist_pct(&h->lag, 50);
	s->lag_p99_us = hist_pct(&h->lag, 99);
	s->lag_max_us = h->lag.max;

	uint64_t now = uv_hrtime();
	uint64_t idle = uv_metrics_idle_time(loop);
	uint64_t span = now - h->last_report_ns;
	uint64_t idle_span = idle - h->last_idle_ns;
	s->util = span ? 1.0 - (double)idle_span / (double)span : 0.0;
	if (s->util < 0)
		s->util = 0;
	if (s->util > 1)
		s->util = 1;
	s->uptime_ms = (now - h->start_ns) / NS_PER_MS;
	s->rss_bytes = rss_bytes(h);
	s->cpu_us = cpu_us();

	hist_reset(&h->lag);
	h->last_report_ns = now;
	h->last_idle_ns = idle;
}

void health_unref(health_mon *h)
{
	uv_unref((uv_handle_t *)&h->check);
}

void health_close(health_mon *h)
{
	if (h->statm_fd >= 0)
		close(h->statm_fd);
	h->statm_fd = -1;
	if (!uv_is_closing((uv_handle_t *)&h->check))
		uv_close((uv_handle_t *)&h->check, NULL);
}
