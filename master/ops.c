/*
 * ops.c - see ops.h.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "common/cpus.h"
#include "common/log.h"
#include "corral_base.h"
#include "master/metrics.h"
#include "master/notify.h"
#include "master/ops.h"

#define PROM_TYPE "text/plain; version=0.0.4; charset=utf-8"
#define TEXT_TYPE "text/plain; charset=utf-8"

int ops_prepare(ops *o, config *cfg, char *err, size_t errlen)
{
	memset(o, 0, sizeof *o);
	o->http.fd = -1;
	struct timeval tv;
	gettimeofday(&tv, NULL);
	o->start_time_s = (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
	if (cfg->workers == 0) {
		cpus_info ci;
		cfg->workers = cpus_usable(&ci);
		if (ci.quota > 0)
			log_msg("workers = auto: %u (CPU quota %.2f from %s; %u "
			        "CPU(s) in the affinity mask)", cfg->workers,
			        ci.quota, ci.source[0] ? ci.source : "cgroup",
			        ci.affinity);
		else
			log_msg("workers = auto: %u (CPUs in the affinity mask; "
			        "no cgroup CPU quota)", cfg->workers);
	}
	if (!cfg->http[0])
		return 0;
	if (!httpd_available()) {
		snprintf(err, errlen, "http = %s: corral was built without "
		         "libhttp-parser (install libhttp-parser-dev and "
		         "rebuild)", cfg->http);
		return CORRAL_ECONFIG;
	}
	return listen_single("http", cfg->http, &o->http, err, errlen);
}

/* ---- observing the supervisor ---- */

static uint64_t jobs_done(const sup *s)
{
	broker_stats bs;
	broker_get_stats(s->broker, &bs);
	return bs.ok + bs.failed + bs.timeouts + bs.poison;
}

/* Answered jobs per second over the samples kept (up to 10 s). */
static double jobs_rate(const ops *o)
{
	if (o->rate_n < 2)
		return 0;
	unsigned newest = (o->rate_head + OPS_RATE_SAMPLES - 1) %
	                  OPS_RATE_SAMPLES;
	unsigned oldest = (o->rate_head + OPS_RATE_SAMPLES - o->rate_n) %
	                  OPS_RATE_SAMPLES;
	uint64_t dt = o->rate_ms[newest] - o->rate_ms[oldest];
	return dt ? (double)(o->rate_jobs[newest] - o->rate_jobs[oldest]) *
	                1000.0 / (double)dt
	          : 0;
}

static void sample_rate(ops *o, uint64_t now)
{
	unsigned newest = (o->rate_head + OPS_RATE_SAMPLES - 1) %
	                  OPS_RATE_SAMPLES;
	if (o->rate_n && now - o->rate_ms[newest] < 1000)
		return;
	o->rate_ms[o->rate_head] = now;
	o->rate_jobs[o->rate_head] = jobs_done(o->s);
	o->rate_head = (o->rate_head + 1) % OPS_RATE_SAMPLES;
	if (o->rate_n < OPS_RATE_SAMPLES)
		o->rate_n++;
}

static void close_handles(ops *o)
{
	if (o->done)
		return;
	o->done = 1;
	httpd_close(o->srv);
	o->srv = NULL;
	notify_close();
	if (o->check_open) {
		o->check_open = 0;
		uv_close((uv_handle_t *)&o->check, NULL);
	}
}

static void on_check(uv_check_t *h)
{
	ops *o = h->data;
	sup *s = o->s;
	if (s->state == SUP_DONE) {
		close_handles(o);
		return;
	}
	if (!notify_enabled())
		return;
	sample_rate(o, uv_now(s->loop));
	if (s->events.last == o->seen_seq)
		return; /* nothing changed state since the last look */
	o->seen_seq = s->events.last;
	notify_view v = {.state = sup_state_name(s->state),
	                 .total = s->nslots,
	                 .jobs_per_s = jobs_rate(o),
	                 .stopping = s->state == SUP_DRAINING ||
	                             s->state == SUP_STOPPING};
	for (unsigned i = 0; i < s->nslots; i++) {
		v.running += s->slots[i]->state == SLOT_RUNNING;
		v.restarts += s->slots[i]->restarts;
	}
	/* "running" only once every worker has been up together */
	if (v.running == v.total)
		o->all_up = 1;
	if (s->state == SUP_RUNNING && !o->all_up)
		v.state = "starting";
	notify_update(&v);
}

/* ---- the endpoints ---- */

/* ready_min, or every slot (also when there are fewer slots than it). */
static unsigned ready_min(const ops *o)
{
	unsigned want = o->s->cfg->ready_min;
	return want && want < o->s->nslots ? want : o->s->nslots;
}

static void text(httpd_reply *r, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void text(httpd_reply *r, int status, const char *fmt, ...)
{
	char buf[256];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	if ((size_t)n >= sizeof buf)
		n = sizeof buf - 1;
	r->status = status;
	r->type = TEXT_TYPE;
	r->body = malloc((size_t)n + 1);
	r->len = r->body ? (size_t)n : 0;
	if (r->body)
		memcpy(r->body, buf, (size_t)n + 1);
	else
		r->status = 500;
}

void ops_handle(void *arg, const char *path, int head, httpd_reply *r)
{
	ops *o = arg;
	sup *s = o->s;
	(void)head;
	if (strcmp(path, "/metrics") == 0) {
		ipc_status st;
		mbuf b = {0};
		metrics_extra x = {.ready_min = ready_min(o),
		                   .version = PACKAGE_VERSION,
		                   .start_time_s = o->start_time_s};
		int rc = sup_status_fill(s, &st);
		if (rc == 0)
			rc = metrics_render(&st, &x, &b);
		ipc_status_free(&st);
		if (rc) {
			mbuf_free(&b);
			text(r, 500, "cannot render metrics: %s\n",
			     corral_strerror(rc));
			return;
		}
		r->status = 200;
		r->type = PROM_TYPE;
		r->body = b.p;
		r->len = b.len;
	} else if (strcmp(path, "/healthz") == 0) {
		/* Answered from the supervisor's loop: it runs. */
		text(r, 200, "ok: supervisor %s\n", sup_state_name(s->state));
	} else if (strcmp(path, "/readyz") == 0) {
		unsigned running = 0;
		for (unsigned i = 0; i < s->nslots; i++)
			running += s->slots[i]->state == SLOT_RUNNING;
		if (s->state != SUP_RUNNING)
			text(r, 503, "not ready: supervisor %s\n",
			     sup_state_name(s->state));
		else if (running < ready_min(o))
			text(r, 503, "not ready: %u/%u workers running "
			     "(ready_min %u)\n", running, s->nslots,
			     ready_min(o));
		else
			text(r, 200, "ready: %u/%u workers running\n", running,
			     s->nslots);
	} else {
		text(r, 404, "not found: try /metrics, /healthz or /readyz\n");
	}
}

void ops_attach(ops *o, sup *s)
{
	o->s = s;
	if (notify_init(s->loop) != 0)
		log_warn("systemd: cannot start the watchdog timer");
	if (uv_check_init(s->loop, &o->check) == 0) {
		o->check.data = o;
		o->check_open = 1;
		uv_check_start(&o->check, on_check);
		uv_unref((uv_handle_t *)&o->check);
	}
	if (o->http.fd >= 0) {
		int fd = o->http.fd;
		o->http.fd = -1; /* the server's now, even if it fails */
		if (httpd_start(&o->srv, s->loop, fd, NULL, ops_handle, o) == 0)
			log_msg("http: serving /metrics, /healthz and /readyz on "
			        "%s", o->http.desc);
	}
}

void ops_close(ops *o)
{
	if (o->s && !o->done)
		close_handles(o);
	listen_single_close(&o->http);
}
