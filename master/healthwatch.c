/* healthwatch.c - see healthwatch.h. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "master/healthwatch.h"

#define MB (1024.0 * 1024.0)

const char *hw_verdict_name(hw_verdict v)
{
	static const char *const names[] = {"ok", "memory", "leak", "lag"};
	return names[v];
}

void hw_reset(healthwatch *w)
{
	memset(w, 0, sizeof *w);
}

static const hw_sample *nth(const healthwatch *w, unsigned i)
{
	return &w->s[(w->head + i) % HW_SAMPLES];
}

/* Keeps the samples of the window, thinned so that HW_SAMPLES span it. */
static void add_sample(healthwatch *w, uint64_t window_ms, uint64_t now_ms,
                       uint64_t rss)
{
	while (w->n && now_ms - nth(w, 0)->t_ms > window_ms) {
		w->head = (w->head + 1) % HW_SAMPLES;
		w->n--;
	}
	uint64_t step = window_ms / HW_SAMPLES;
	if (w->n && now_ms - nth(w, w->n - 1)->t_ms < step)
		return;
	if (w->n == HW_SAMPLES) {
		w->head = (w->head + 1) % HW_SAMPLES;
		w->n--;
	}
	w->s[(w->head + w->n) % HW_SAMPLES] = (hw_sample){now_ms, rss};
	w->n++;
}

int hw_fit(const healthwatch *w, double *slope_bps, double *r2)
{
	*slope_bps = *r2 = 0;
	if (w->n < 3)
		return 0;
	/* Centred sums: RSS in the gigabytes and times in the thousands of
	 * seconds lose nothing in a double this way. */
	double t0 = (double)nth(w, 0)->t_ms, mx = 0, my = 0;
	for (unsigned i = 0; i < w->n; i++) {
		mx += ((double)nth(w, i)->t_ms - t0) / 1000.0;
		my += (double)nth(w, i)->rss;
	}
	mx /= w->n;
	my /= w->n;
	double sxx = 0, sxy = 0, syy = 0;
	for (unsigned i = 0; i < w->n; i++) {
		double dx = ((double)nth(w, i)->t_ms - t0) / 1000.0 - mx;
		double dy = (double)nth(w, i)->rss - my;
		sxx += dx * dx;
		sxy += dx * dy;
		syy += dy * dy;
	}
	if (sxx <= 0)
		return 0;
	*slope_bps = sxy / sxx;
	*r2 = syy > 0 ? (sxy * sxy) / (sxx * syy) : 0;
	return 1;
}

static void judge_leak(healthwatch *w, const hw_limits *l)
{
	double slope, r2;
	w->leaking = 0;
	w->slope_bps = 0;
	if (!hw_fit(w, &slope, &r2))
		return;
	w->slope_bps = slope;
	uint64_t span = nth(w, w->n - 1)->t_ms - nth(w, 0)->t_ms;
	/* The window must be (nearly) covered: a young worker's start-up
	 * growth is not a leak. */
	if (span * 10 < l->leak_window_ms * 8)
		return;
	double growth = slope * (double)l->leak_window_ms / 1000.0;
	w->leaking = slope > 0 && r2 >= HW_MIN_FIT &&
	             growth >= (double)l->leak_min_growth;
}

hw_verdict hw_observe(healthwatch *w, const hw_limits *l, uint64_t now_ms,
                      const ipc_health *h, char *why, size_t len)
{
	hw_verdict v = HW_OK;
	why[0] = '\0';
	w->pool_stuck = l->pool_stuck_ms &&
	                h->pool.oldest_running_ms > l->pool_stuck_ms;
	if (l->leak_window_ms) {
		add_sample(w, l->leak_window_ms, now_ms, h->rss_bytes);
		judge_leak(w, l);
	}
	int lagging = l->lag_restart_ms &&
	              h->lag_p99_us > l->lag_restart_ms * 1000;
	if (!lagging)
		w->lag_since_ms = 0;
	else if (!w->lag_since_ms)
		w->lag_since_ms = now_ms;

	if (l->max_memory && h->rss_bytes > l->max_memory) {
		snprintf(why, len, "RSS %.1f MB over max_memory %.1f MB",
		         (double)h->rss_bytes / MB, (double)l->max_memory / MB);
		v = HW_MEMORY;
	} else if (lagging && now_ms - w->lag_since_ms >= l->lag_for_ms) {
		snprintf(why, len, "lag p99 %.1f ms over lag_restart %" PRIu64
		         " ms for %" PRIu64 " ms (lag_restart_for %" PRIu64
		         " ms)", (double)h->lag_p99_us / 1000.0,
		         l->lag_restart_ms, now_ms - w->lag_since_ms,
		         l->lag_for_ms);
		v = HW_LAG;
	} else if (w->leaking) {
		snprintf(why, len, "RSS growing %.1f KB/s for %" PRIu64
		         " s (%.1f MB now; leak_window %" PRIu64 " s)",
		         w->slope_bps / 1024.0,
		         (nth(w, w->n - 1)->t_ms - nth(w, 0)->t_ms) / 1000,
		         (double)h->rss_bytes / MB, l->leak_window_ms / 1000);
		v = HW_LEAK;
	}
	return v;
}
