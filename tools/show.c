/* show.c - see show.h. */
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "common/utf8.h"
#include "tools/show.h"

/* A JSON string from bytes that should be UTF-8: invalid sequences become
 * U+FFFD instead of making the whole document unparseable. */
static json_t *jstrn(const char *s, size_t n)
{
	char *buf = malloc(n * 3 + 1);
	if (!buf)
		return NULL;
	utf8_repair(s, n, buf);
	json_t *j = json_string(buf);
	free(buf);
	return j;
}

static json_t *jstr(const char *s)
{
	return jstrn(s, strlen(s));
}

static json_t *jreal(double v)
{
	return isfinite(v) ? json_real(v) : json_null();
}

/* Sets key in obj; "a.b" sets b in the object a (made if needed). */
static int jset(json_t *obj, const char *key, json_t *v)
{
	if (!v)
		return -1;
	const char *dot = strchr(key, '.');
	if (!dot)
		return json_object_set_new(obj, key, v);
	char head[64];
	snprintf(head, sizeof head, "%.*s", (int)(dot - key), key);
	json_t *sub = json_object_get(obj, head);
	if (!sub) {
		sub = json_object();
		if (!sub || json_object_set_new(obj, head, sub) != 0) {
			json_decref(v);
			return -1;
		}
	}
	return jset(sub, dot + 1, v);
}

static json_t *jfield(const ipc_field *f, const void *base)
{
	const char *p = (const char *)base + f->off;
	switch (f->type) {
	case IPC_T_U64:
		return json_integer((json_int_t) * (const uint64_t *)p);
	case IPC_T_I64:
		return json_integer((json_int_t) * (const int64_t *)p);
	case IPC_T_U32:
		return json_integer((json_int_t) * (const uint32_t *)p);
	case IPC_T_I32:
		return json_integer((json_int_t) * (const int32_t *)p);
	case IPC_T_F64:
		return jreal(*(const double *)p);
	case IPC_T_BOOL:
		return json_boolean(*(const int *)p);
	case IPC_T_STR:
		return jstr(p);
	}
	return NULL;
}

/* Every field of a table that has a JSON key. */
static int jfields(json_t *obj, const ipc_field *f, unsigned n,
                   const void *base)
{
	int rc = 0;
	for (unsigned i = 0; i < n; i++)
		if (f[i].json)
			rc |= jset(obj, f[i].json, jfield(&f[i], base));
	return rc;
}

static json_t *jworker(const ipc_worker_status *w)
{
	json_t *o = json_object(), *m = json_object(), *pool = json_object();
	int rc = o && m && pool ? 0 : -1;
	if (!rc)
		rc |= jfields(o, ipc_slot_fields, ipc_slot_nfields, w);
	if (!rc)
		rc |= jfields(o, ipc_health_fields, ipc_health_nfields,
		              &w->health);
	json_t *last = NULL;
	if (w->exit_signal[0])
		last = json_pack("{s:o}", "signal", jstr(w->exit_signal));
	else if (w->exit_code >= 0)
		last = json_pack("{s:i}", "code", w->exit_code);
	else
		last = json_null();
	rc |= jset(o, "last_exit", last);
	for (uint32_t i = 0; m && i < w->health.nmetrics; i++) {
		const ipc_metric *x = &w->health.metrics[i];
		json_t *k = jstr(x->name);
		if (!k) {
			rc = -1;
			break;
		}
		/* The repaired name is the key. */
		rc |= json_object_set_new(m, json_string_value(k),
		                          jreal(x->value));
		json_decref(k);
	}
	rc |= jset(o, "metrics", m);
	m = NULL;
	if (!rc)
		rc |= jfields(pool, ipc_pool_fields, ipc_pool_nfields,
		              &w->health.pool);
	rc |= jset(o, "pool", pool);
	pool = NULL;
	if (rc) {
		json_decref(o);
		json_decref(m);
		json_decref(pool);
		return NULL;
	}
	return o;
}

static int dump(FILE *f, json_t *root)
{
	if (!root)
		return -1;
	int rc = json_dumpf(root, f, JSON_COMPACT | JSON_ENSURE_ASCII);
	json_decref(root);
	if (rc == 0)
		fputc('\n', f);
	return rc;
}

int show_status_json(FILE *f, const ipc_status *st)
{
	json_t *root = json_object(), *jobs = json_object(), *ws = json_array();
	int rc = root && jobs && ws ? 0 : -1;
	if (!rc) {
		rc |= jset(root, "name", jstr(st->name));
		rc |= jset(root, "pid", json_integer((json_int_t)st->pid));
		rc |= jset(root, "state", jstr(st->state));
		rc |= jset(root, "bad_frames",
		           json_integer((json_int_t)st->bad_frames));
		rc |= jset(root, "jobs_url", jstr(st->jobs_url));
		rc |= jset(root, "gen", json_integer(st->gen));
		rc |= jset(root, "plugin", jstr(st->plugin));
		rc |= jset(root, "plugin_id", jstr(st->plugin_id));
		rc |= jset(root, "op", jstr(st->op));
		rc |= jset(root, "last_op", jstr(st->last_op));
		rc |= jset(root, "listener_heals",
		           json_integer((json_int_t)st->heals));
		rc |= jset(root, "slow_readers",
		           json_integer((json_int_t)st->slow_readers));
		rc |= jfields(jobs, ipc_jobstat_fields, ipc_jobstat_nfields,
		              &st->jobs);
	}
	rc |= jset(root, "jobs", jobs);
	for (uint32_t i = 0; !rc && i < st->nworkers; i++) {
		json_t *w = jworker(&st->workers[i]);
		rc |= w ? json_array_append_new(ws, w) : -1;
	}
	rc |= jset(root, "workers", ws);
	if (rc) {
		json_decref(root);
		return -1;
	}
	return dump(f, root);
}

/* ---- the table ---- */

static void fmt_dur(uint64_t ms, char *buf, size_t len)
{
	if (ms < 60000)
		snprintf(buf, len, "%" PRIu64 "s", ms / 1000);
	else if (ms < 3600000)
		snprintf(buf, len, "%" PRIu64 "m", ms / 60000);
	else if (ms < 86400000)
		snprintf(buf, len, "%" PRIu64 "h", ms / 3600000);
	else
		snprintf(buf, len, "%" PRIu64 "d", ms / 86400000);
}

static uint64_t as_u64(const ipc_field *f, const char *p)
{
	switch (f->type) {
	case IPC_T_U64:
		return *(const uint64_t *)p;
	case IPC_T_I64:
		return (uint64_t) * (const int64_t *)p;
	case IPC_T_U32:
		return *(const uint32_t *)p;
	case IPC_T_I32:
		return (uint64_t)(int64_t) * (const int32_t *)p;
	case IPC_T_BOOL:
		return (uint64_t) * (const int *)p;
	default:
		return 0;
	}
}

/* One cell: the field's value in its column's format. */
static void cell(const ipc_field *f, const void *base, char *buf,
                 size_t len)
{
	const char *p = (const char *)base + f->off;
	switch (f->fmt) {
	case IPC_FMT_STR:
		snprintf(buf, len, "%s", f->type == IPC_T_STR ? p : "?");
		break;
	case IPC_FMT_DUR_MS:
		fmt_dur(as_u64(f, p), buf, len);
		break;
	case IPC_FMT_MB:
		snprintf(buf, len, "%.1f MB",
		         (double)as_u64(f, p) / (1024.0 * 1024.0));
		break;
	case IPC_FMT_PCT:
		snprintf(buf, len, "%.1f%%",
		         f->type == IPC_T_F64 ? *(const double *)p : 0.0);
		break;
	case IPC_FMT_US_AS_MS:
		snprintf(buf, len, "%.1f ms", (double)as_u64(f, p) / 1000.0);
		break;
	default:
		if (f->type == IPC_T_I64 || f->type == IPC_T_I32)
			snprintf(buf, len, "%" PRId64, (int64_t)as_u64(f, p));
		else
			snprintf(buf, len, "%" PRIu64, as_u64(f, p));
		break;
	}
}

unsigned show_columns(show_column *c, unsigned max)
{
	unsigned n = 0;
	for (unsigned i = 0; i < ipc_slot_nfields && n < max; i++)
		if (ipc_slot_fields[i].col)
			c[n++] = (show_column){&ipc_slot_fields[i], 0};
	for (unsigned i = 0; i < ipc_health_nfields && n < max; i++)
		if (ipc_health_fields[i].col)
			c[n++] = (show_column){&ipc_health_fields[i], 1};
	return n;
}

void show_cell(const show_column *c, const ipc_worker_status *w, char *buf,
               size_t len)
{
	cell(c->f, c->health ? (const void *)&w->health : (const void *)w, buf,
	     len);
	if (!c->health && c->f->off == offsetof(ipc_worker_status, pid) &&
	    w->pid == 0)
		snprintf(buf, len, "-"); /* no process */
}

void show_last_exit(const ipc_worker_status *w, char *buf, size_t len)
{
	if (w->exit_signal[0])
		snprintf(buf, len, "%s", w->exit_signal);
	else if (w->exit_code >= 0)
		snprintf(buf, len, "code %d", w->exit_code);
	else
		snprintf(buf, len, "-");
}

#define MAXCOLS 32

void show_status_table(FILE *f, const ipc_status *st)
{
	show_column c[MAXCOLS];
	int width[MAXCOLS];
	unsigned n = show_columns(c, MAXCOLS);
	char buf[64];
	fprintf(f, "%s: supervisor pid %" PRId64 ", %s, %u worker(s), "
	        "generation %u (%s, %s)\n", st->name, st->pid, st->state,
	        st->nworkers, st->gen, st->plugin, st->plugin_id);
	if (st->op[0])
		fprintf(f, "in progress: %s\n", st->op);
	else if (st->last_op[0])
		fprintf(f, "last command: %s\n", st->last_op);
	for (unsigned k = 0; k < n; k++) {
		width[k] = (int)strlen(c[k].f->col);
		for (uint32_t i = 0; i < st->nworkers; i++) {
			show_cell(&c[k], &st->workers[i], buf, sizeof buf);
			if ((int)strlen(buf) > width[k])
				width[k] = (int)strlen(buf);
		}
	}
	for (unsigned k = 0; k < n; k++)
		fprintf(f, "%-*s ", width[k], c[k].f->col);
	fprintf(f, "LAST EXIT\n");
	for (uint32_t i = 0; i < st->nworkers; i++) {
		const ipc_worker_status *w = &st->workers[i];
		for (unsigned k = 0; k < n; k++) {
			show_cell(&c[k], w, buf, sizeof buf);
			fprintf(f, "%-*s ", width[k], buf);
		}
		show_last_exit(w, buf, sizeof buf);
		fprintf(f, "%s\n", buf);
	}
}

/* ---- events ---- */

static json_t *jevent(const ipc_event *e)
{
	json_t *o = json_pack("{s:I,s:I,s:o,s:i,s:I,s:i,s:o,s:o,s:o}",
	                      "seq", (json_int_t)e->seq, "t_ms",
	                      (json_int_t)e->t_ms, "kind", jstr(e->kind),
	                      "slot", e->slot, "pid", (json_int_t)e->pid,
	                      "gen", (int)e->gen, "from", jstr(e->from), "to",
	                      jstr(e->to), "why", jstr(e->why));
	if (!o || !e->has_decision)
		return o;
	json_t *d = json_object();
	int rc = d ? jfields(d, ipc_decision_fields, ipc_decision_nfields,
	                     &e->dec)
	           : -1;
	/* What is not there reads null, not a sentinel. */
	if (!rc && e->dec.exit_code < 0)
		rc |= json_object_set_new(d, "exit_code", json_null());
	if (!rc && !e->dec.exit_signal[0])
		rc |= json_object_set_new(d, "exit_signal", json_null());
	if (!rc && !e->dec.figure[0])
		rc |= json_object_set_new(d, "trigger", json_null());
	if (!rc && e->dec.health_age_ms == UINT64_MAX)
		rc |= json_object_set_new(d, "health", json_null());
	if (!rc)
		return json_object_set_new(o, "decision", d) ? (json_decref(o),
		                                                NULL)
		                                             : o;
	json_decref(d);
	json_decref(o);
	return NULL;
}

int show_event_json(FILE *f, const ipc_event *e)
{
	return dump(f, jevent(e));
}

int show_explain_json(FILE *f, int slot, const ipc_worker_status *w,
                      const ipc_event *ev, size_t n)
{
	json_t *root = json_object(), *evs = json_array();
	int rc = root && evs ? 0 : -1;
	rc |= jset(root, "slot", json_integer(slot));
	rc |= jset(root, "status", w ? jworker(w) : json_null());
	for (size_t i = 0; !rc && i < n; i++) {
		json_t *e = jevent(&ev[i]);
		rc |= e ? json_array_append_new(evs, e) : -1;
	}
	rc |= jset(root, "events", evs);
	if (rc) {
		json_decref(root);
		return -1;
	}
	return dump(f, root);
}

/* "1.2 s", "350 ms": a duration for people. */
static void fmt_ms(uint64_t ms, char *buf, size_t len)
{
	if (ms < 1000)
		snprintf(buf, len, "%" PRIu64 " ms", ms);
	else if (ms < 120000)
		snprintf(buf, len, "%.3g s", (double)ms / 1000.0);
	else
		fmt_dur(ms, buf, len);
}

static void fmt_exit(const ipc_decision *d, char *buf, size_t len)
{
	if (d->exit_signal[0])
		snprintf(buf, len, "%s", d->exit_signal);
	else if (d->exit_code >= 0)
		snprintf(buf, len, "code %d", d->exit_code);
	else
		snprintf(buf, len, "none");
}

static void stamp(const ipc_event *e, char *buf, size_t len)
{
	time_t t = (time_t)(e->t_ms / 1000);
	struct tm tm;
	localtime_r(&t, &tm);
	snprintf(buf, len, "%02d:%02d:%02d.%03d", tm.tm_hour, tm.tm_min,
	         tm.tm_sec, (int)(e->t_ms % 1000));
}

void show_event_line(FILE *f, const ipc_event *e)
{
	char who[64], when[32];
	stamp(e, when, sizeof when);
	if (e->slot >= 0)
		snprintf(who, sizeof who, "slot %d pid %" PRId64, e->slot,
		         e->pid);
	else
		snprintf(who, sizeof who, "%s", e->kind);
	fprintf(f, "%s %s: %s -> %s: %s", when, who, e->from, e->to, e->why);
	if (e->has_decision) {
		const ipc_decision *d = &e->dec;
		char x[32], up[32], dl[32], win[32];
		fmt_exit(d, x, sizeof x);
		fmt_ms(d->uptime_ms, up, sizeof up);
		fmt_ms(d->backoff_ms, dl, sizeof dl);
		fmt_ms(d->window_ms, win, sizeof win);
		fprintf(f, " [decision: exit %s, up %s, delay %s, %u/%u "
		        "restarts in %s", x, up, dl, d->restarts_used,
		        d->max_restarts, win);
		if (d->figure[0])
			fprintf(f, ", %s %.0f >= %.0f", d->figure, d->value,
			        d->limit);
		fprintf(f, "]");
	}
	fputc('\n', f);
}

/* How the delay came about, in words (master/policy.h's arithmetic). */
static void explain_backoff(FILE *f, const ipc_decision *d)
{
	char dl[32], base[32], first[32], max[32], minup[32], up[32];
	fmt_ms(d->backoff_ms, dl, sizeof dl);
	fmt_ms(d->backoff_base_ms, base, sizeof base);
	fmt_ms(d->restart_delay_ms, first, sizeof first);
	fmt_ms(d->restart_delay_max_ms, max, sizeof max);
	fmt_ms(d->min_uptime_ms, minup, sizeof minup);
	fmt_ms(d->uptime_ms, up, sizeof up);
	if (d->consecutive <= 1)
		fprintf(f, "    backoff: %s: the first restart %s, so "
		        "restart_delay (%s) with +-20%% jitter\n", dl,
		        d->uptime_ms >= d->min_uptime_ms
		            ? "after a good run (up at least min_uptime)"
		            : "of this slot",
		        first);
	else
		fprintf(f, "    backoff: %s: restart %u in a row (each worker up "
		        "less than min_uptime %s; this one %s), so the delay "
		        "doubled to %s%s, with +-20%% jitter\n", dl,
		        d->consecutive, minup, up, base,
		        d->backoff_base_ms >= d->restart_delay_max_ms
		            ? " (the ceiling, restart_delay_max)"
		            : "");
	(void)max;
}

void show_explain_event(FILE *f, const ipc_event *e)
{
	char when[32];
	stamp(e, when, sizeof when);
	if (!e->has_decision) {
		fprintf(f, "%s pid %" PRId64 ": %s -> %s: %s\n", when, e->pid,
		        e->from, e->to, e->why);
		return;
	}
	const ipc_decision *d = &e->dec;
	char x[32], up[32], win[32], age[32], lim[32];
	fprintf(f, "%s pid %" PRId64 ": decision: %s: %s\n", when, e->pid,
	        d->action, e->why);
	fmt_exit(d, x, sizeof x);
	fmt_ms(d->uptime_ms, up, sizeof up);
	fmt_ms(d->min_uptime_ms, lim, sizeof lim);
	if (strcmp(d->action, "kill") == 0)
		fprintf(f, "    worker:  up %s\n", up);
	else
		fprintf(f, "    exit:    %s after %s up (%s min_uptime %s)\n",
		        x, up, d->uptime_ms >= d->min_uptime_ms ? "at least"
		                                                : "less than",
		        lim);
	if (d->figure[0])
		fprintf(f, "    trigger: %s = %.0f, limit %.0f\n", d->figure,
		        d->value, d->limit);
	if (strcmp(d->action, "restart") == 0)
		explain_backoff(f, d);
	fmt_ms(d->window_ms, win, sizeof win);
	fprintf(f, "    budget:  %u of %u restarts used in the last %s; %u "
	        "left\n", d->restarts_used, d->max_restarts, win,
	        d->restarts_used < d->max_restarts
	            ? d->max_restarts - d->restarts_used
	            : 0);
	if (d->health_age_ms == UINT64_MAX) {
		fprintf(f, "    health:  no report from this worker\n");
	} else {
		fmt_ms(d->health_age_ms, age, sizeof age);
		fprintf(f, "    health:  last report %s before: lag p99 %.1f ms, "
		        "RSS %.1f MB, CPU %.1f%%\n", age,
		        (double)d->lag_p99_us / 1000.0,
		        (double)d->rss_bytes / (1024.0 * 1024.0), d->cpu_pct);
	}
}

/* ---- log lines ---- */

void show_logline(FILE *f, const ipc_logline *l)
{
	time_t t = (time_t)(l->t_ms / 1000);
	struct tm tm;
	localtime_r(&t, &tm);
	static const char *const prefix[] = {"error: ", "warning: ", "",
	                                     "debug: "};
	fprintf(f, "%02d:%02d:%02d.%03d corral: ", tm.tm_hour, tm.tm_min,
	        tm.tm_sec, (int)(l->t_ms % 1000));
	if (l->slot >= 0)
		fprintf(f, "slot %d pid %" PRId64 ": ", l->slot, l->pid);
	else if (l->pid)
		fprintf(f, "standby pid %" PRId64 ": ", l->pid);
	else
		fputs(prefix[l->level <= 3 ? l->level : 2], f);
	fwrite(l->msg, 1, l->len, f);
	fputc('\n', f);
}

int show_logline_json(FILE *f, const ipc_logline *l)
{
	json_t *o = json_pack("{s:I,s:I,s:s,s:o,s:o,s:s,s:o}", "seq",
	                      (json_int_t)l->seq, "t_ms", (json_int_t)l->t_ms,
	                      "level", log_level_name((int)l->level), "slot",
	                      l->slot >= 0 ? json_integer(l->slot)
	                                   : json_null(),
	                      "pid",
	                      l->pid ? json_integer((json_int_t)l->pid)
	                             : json_null(),
	                      "source", l->pid ? "worker" : "supervisor",
	                      "msg", jstrn(l->msg, l->len));
	return dump(f, o);
}
