/*
 * metrics.c - see metrics.h.
 *
 * The text format wants every sample of one metric family together, after
 * one # HELP and one # TYPE line.  A family is the rows of one table that
 * share a name (ipc/proto.h); the table is walked family by family, and
 * within a family slot by slot, so rows need not be adjacent.  Values in
 * microseconds or milliseconds (the field's JSON key ends in _us or _ms)
 * are printed in seconds, exactly (integer arithmetic, no rounding).
 * The HELP text names the fields of `corralctl status --json` that the
 * family shows, so the two views can be read against each other.
 */
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "corral_base.h"
#include "master/metrics.h"

#define PREFIX "corral_"
#define NAME_LEN 128

void mbuf_printf(mbuf *b, const char *fmt, ...)
{
	if (b->oom)
		return;
	for (;;) {
		va_list ap;
		va_start(ap, fmt);
		size_t room = b->cap - b->len;
		int n = vsnprintf(b->p ? b->p + b->len : NULL, room, fmt, ap);
		va_end(ap);
		if (n < 0) {
			b->oom = 1;
			return;
		}
		if ((size_t)n < room) {
			b->len += (size_t)n;
			return;
		}
		size_t cap = b->cap ? b->cap : 4096;
		while (cap - b->len <= (size_t)n)
			cap *= 2;
		char *p = realloc(b->p, cap);
		if (!p) {
			b->oom = 1;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
}

void mbuf_free(mbuf *b)
{
	free(b->p);
	memset(b, 0, sizeof *b);
}

/* Appends n bytes (the hot path: no format parsing). */
static void put(mbuf *b, const char *s, size_t n)
{
	if (b->oom)
		return;
	if (b->cap - b->len < n + 1) {
		size_t cap = b->cap ? b->cap : 4096;
		while (cap - b->len < n + 1)
			cap *= 2;
		char *p = realloc(b->p, cap);
		if (!p) {
			b->oom = 1;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void puts_(mbuf *b, const char *s)
{
	put(b, s, strlen(s));
}

/* v in decimal, at least `digits` digits (zero-padded). */
static void put_u64(mbuf *b, uint64_t v, int digits)
{
	char t[24];
	int i = sizeof t;
	do {
		t[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v || (int)sizeof t - i < digits);
	put(b, t + i, sizeof t - (size_t)i);
}

int metrics_parse_spec(const char *spec, char *name, size_t nlen,
                       char *label, size_t llen, char *value, size_t vlen)
{
	const char *brace = strchr(spec, '{');
	size_t n = brace ? (size_t)(brace - spec) : strlen(spec);
	label[0] = value[0] = '\0';
	if (n == 0 || n >= nlen)
		return -1;
	memcpy(name, spec, n);
	name[n] = '\0';
	for (size_t i = 0; i < n; i++)
		if (!(name[i] == '_' || (name[i] >= 'a' && name[i] <= 'z') ||
		      (name[i] >= '0' && name[i] <= '9' && i > 0)))
			return -1;
	if (!brace)
		return 0;
	const char *end = strchr(brace, '}'), *eq = strchr(brace, '=');
	if (!end || end[1])
		return -1;
	if (!eq || eq > end)
		eq = end;
	size_t ln = (size_t)(eq - brace - 1);
	size_t vn = eq < end ? (size_t)(end - eq - 1) : 0;
	if (ln == 0 || ln >= llen || vn >= vlen || (eq < end && vn == 0))
		return -1;
	memcpy(label, brace + 1, ln);
	label[ln] = '\0';
	memcpy(value, eq + 1, vn);
	value[vn] = '\0';
	return 0;
}

/* ---- values ---- */

static size_t ends_with(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);
	return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* 10^6 for a field in microseconds, 10^3 in milliseconds, else 1. */
static uint64_t field_scale(const ipc_field *f)
{
	if (f->json && ends_with(f->json, "_us"))
		return 1000000u;
	if (f->json && ends_with(f->json, "_ms"))
		return 1000u;
	return 1;
}

static void put_double(mbuf *b, double v)
{
	if (isnan(v)) {
		mbuf_printf(b, "NaN");
	} else if (isinf(v)) {
		mbuf_printf(b, v > 0 ? "+Inf" : "-Inf");
	} else {
		char t[40];
		snprintf(t, sizeof t, "%.15g", v);
		if (strtod(t, NULL) != v) /* the shortest that reads back */
			snprintf(t, sizeof t, "%.17g", v);
		mbuf_printf(b, "%s", t);
	}
}

static void put_scaled(mbuf *b, uint64_t v, uint64_t scale, int neg)
{
	if (neg)
		put(b, "-", 1);
	put_u64(b, v / scale, 1);
	if (scale > 1) {
		put(b, ".", 1);
		put_u64(b, v % scale, scale == 1000000u ? 6 : 3);
	}
}

static void put_value(mbuf *b, const ipc_field *f, const void *base)
{
	const char *p = (const char *)base + f->off;
	uint64_t scale = field_scale(f);
	int64_t s;
	switch (f->type) {
	case IPC_T_U64:
		put_scaled(b, *(const uint64_t *)p, scale, 0);
		break;
	case IPC_T_U32:
		put_scaled(b, *(const uint32_t *)p, scale, 0);
		break;
	case IPC_T_I64:
	case IPC_T_I32:
		s = f->type == IPC_T_I64 ? *(const int64_t *)p
		                         : *(const int32_t *)p;
		put_scaled(b, s < 0 ? (uint64_t)0 - (uint64_t)s : (uint64_t)s,
		           scale, s < 0);
		break;
	case IPC_T_F64:
		put_double(b, *(const double *)p / (double)scale);
		break;
	case IPC_T_BOOL:
		put(b, *(const int *)p ? "1" : "0", 1);
		break;
	case IPC_T_STR:
		put(b, "1", 1);
		break;
	}
}

/* A label value: backslash, double quote and newline escaped. */
static void put_label_value(mbuf *b, const char *v)
{
	for (; *v; v++) {
		size_t n = strcspn(v, "\\\"\n");
		put(b, v, n);
		v += n;
		if (!*v)
			break;
		put(b, *v == '\n' ? "\\n" : *v == '"' ? "\\\"" : "\\\\", 2);
	}
}

/* ---- families from a field table ---- */

typedef struct table {
	const ipc_field *f;
	unsigned n;
	const char *json_prefix; /* where the fields sit in the JSON */
	int per_slot;
	int needs_health;        /* only workers that reported health */
} table;

/* Where a table's struct sits in a worker's status (or the snapshot). */
static const void *table_base(const table *t, const ipc_status *st,
                              const ipc_worker_status *w)
{
	if (t->f == ipc_slot_fields)
		return w;
	if (t->f == ipc_health_fields)
		return &w->health;
	if (t->f == ipc_pool_fields)
		return &w->health.pool;
	return &st->jobs;
}

static const char *family_type(const char *name, const char *label)
{
	if (strcmp(label, "quantile") == 0)
		return "summary";
	return ends_with(name, "_total") ? "counter" : "gauge";
}

/* A table row's Prometheus column, parsed once per exposition. */
typedef struct prow {
	char name[NAME_LEN], label[64], value[64];
	int fam;  /* index of the family's first row; -1: not exported */
} prow;

static void sample(mbuf *b, const prow *r, const ipc_worker_status *w,
                   const ipc_field *f, const void *base)
{
	int any = 0;
	puts_(b, PREFIX);
	puts_(b, r->name);
	if (w) {
		puts_(b, "{slot=\"");
		if (w->slot < 0) {
			put(b, "-", 1);
			put_u64(b, (uint64_t)0 - (uint64_t)(int64_t)w->slot, 1);
		} else {
			put_u64(b, (uint64_t)w->slot, 1);
		}
		put(b, "\"", 1);
		any = 1;
	}
	if (r->label[0]) {
		put(b, any ? "," : "{", 1);
		puts_(b, r->label);
		put(b, "=\"", 2);
		put_label_value(b, r->value[0] ? r->value
		                               : (const char *)base + f->off);
		put(b, "\"", 1);
		any = 1;
	}
	put(b, any ? "} " : " ", any ? 2 : 1);
	put_value(b, f, base);
	put(b, "\n", 1);
}

static void render_table(mbuf *b, const table *t, const ipc_status *st)
{
	prow rows[128];
	unsigned n = t->n < 128 ? t->n : 128;
	for (unsigned i = 0; i < n; i++) {
		prow *r = &rows[i];
		r->fam = -1;
		if (!t->f[i].prom[0] ||
		    metrics_parse_spec(t->f[i].prom, r->name, sizeof r->name,
		                       r->label, sizeof r->label, r->value,
		                       sizeof r->value))
			continue;
		r->fam = (int)i;
		for (unsigned j = 0; j < i; j++)
			if (rows[j].fam >= 0 && strcmp(rows[j].name, r->name) == 0) {
				r->fam = rows[j].fam;
				break;
			}
	}
	for (unsigned i = 0; i < n; i++) {
		if (rows[i].fam != (int)i)
			continue; /* not exported, or not its family's first */
		/* HELP names the JSON fields shown; TYPE from the name. */
		mbuf_printf(b, "# HELP " PREFIX "%s corralctl status --json:",
		            rows[i].name);
		const char *sep = " ";
		int scaled = 0;
		for (unsigned j = i; j < n; j++) {
			if (rows[j].fam != (int)i)
				continue;
			mbuf_printf(b, "%s%s%s", sep, t->json_prefix,
			            t->f[j].json ? t->f[j].json : t->f[j].key);
			sep = ", ";
			scaled |= field_scale(&t->f[j]) != 1;
		}
		mbuf_printf(b, "%s.\n# TYPE " PREFIX "%s %s\n",
		            scaled ? " (here in seconds)" : "", rows[i].name,
		            family_type(rows[i].name, rows[i].label));
		unsigned nw = t->per_slot ? st->nworkers : 1;
		for (unsigned k = 0; k < nw; k++) {
			const ipc_worker_status *w =
			    t->per_slot ? &st->workers[k] : NULL;
			if (w && t->needs_health && w->health.pid == 0)
				continue;
			const void *base = table_base(t, st, w);
			for (unsigned j = i; j < n; j++)
				if (rows[j].fam == (int)i)
					sample(b, &rows[j], w, &t->f[j], base);
		}
	}
}

/* ---- the plugins' metrics ---- */

void metrics_plugin_name(const char *name, char *out, size_t len)
{
	static const char *reserved[] = {"_total", "_count", "_sum",
	                                 "_bucket"};
	size_t o = (size_t)snprintf(out, len, PREFIX "plugin_");
	for (const char *p = name; *p && o + 1 < len; p++) {
		char c = *p;
		int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		         (c >= '0' && c <= '9') || c == '_';
		out[o++] = ok ? c : '_';
	}
	out[o] = '\0';
	for (size_t i = 0; i < sizeof reserved / sizeof *reserved; i++)
		if (ends_with(out, reserved[i]) && o + 7 < len) {
			memcpy(out + o, "_value", 7);
			break;
		}
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void render_plugin_metrics(mbuf *b, const ipc_status *st)
{
	size_t cap = (size_t)st->nworkers * IPC_MAX_METRICS, n = 0;
	char(*names)[NAME_LEN] = cap ? calloc(cap, NAME_LEN) : NULL;
	char **sorted = cap ? calloc(cap, sizeof *sorted) : NULL;
	if (cap && (!names || !sorted)) {
		b->oom = 1;
		goto out;
	}
	/* Every distinct name, sorted: one family each. */
	for (uint32_t i = 0; i < st->nworkers; i++) {
		const ipc_health *h = &st->workers[i].health;
		for (uint32_t k = 0; h->pid && k < h->nmetrics &&
		                     k < IPC_MAX_METRICS; k++) {
			char pn[NAME_LEN];
			metrics_plugin_name(h->metrics[k].name, pn, sizeof pn);
			size_t j;
			for (j = 0; j < n; j++)
				if (strcmp(names[j], pn) == 0)
					break;
			if (j == n) {
				memcpy(names[n], pn, NAME_LEN);
				sorted[n] = names[n];
				n++;
			}
		}
	}
	qsort(sorted, n, sizeof *sorted, cmp_str);
	for (size_t j = 0; j < n; j++) {
		mbuf_printf(b, "# HELP %s The plugin's metric (corral_metric_set), "
		            "as the worker last reported it.\n# TYPE %s gauge\n",
		            sorted[j], sorted[j]);
		for (uint32_t i = 0; i < st->nworkers; i++) {
			const ipc_health *h = &st->workers[i].health;
			/* Two names that read the same once made valid: the
			 * first one only, so no series is given twice. */
			for (uint32_t k = 0; h->pid && k < h->nmetrics &&
			                     k < IPC_MAX_METRICS; k++) {
				char pn[NAME_LEN];
				metrics_plugin_name(h->metrics[k].name, pn,
				                    sizeof pn);
				if (strcmp(pn, sorted[j]) != 0)
					continue;
				puts_(b, pn);
				puts_(b, "{slot=\"");
				put_u64(b, (uint64_t)st->workers[i].slot, 1);
				puts_(b, "\"} ");
				put_double(b, h->metrics[k].value);
				put(b, "\n", 1);
				break;
			}
		}
	}
out:
	free(names);
	free(sorted);
}

/* ---- the whole exposition ---- */

unsigned metrics_running(const ipc_status *st)
{
	unsigned n = 0;
	for (uint32_t i = 0; i < st->nworkers; i++)
		n += strcmp(st->workers[i].state, "running") == 0;
	return n;
}

int metrics_render(const ipc_status *st, const metrics_extra *x, mbuf *b)
{
	const table tables[] = {
		{ipc_jobstat_fields, ipc_jobstat_nfields, "jobs.", 0, 0},
		{ipc_slot_fields, ipc_slot_nfields, "workers[].", 1, 0},
		{ipc_health_fields, ipc_health_nfields, "workers[].", 1, 1},
		{ipc_pool_fields, ipc_pool_nfields, "workers[].pool.", 1, 1},
	};
	mbuf_printf(b, "# HELP " PREFIX "info The supervisor: its instance "
	            "name and version (always 1).\n# TYPE " PREFIX "info gauge\n"
	            PREFIX "info{name=\"");
	put_label_value(b, st->name);
	mbuf_printf(b, "\",version=\"");
	put_label_value(b, x->version ? x->version : "");
	mbuf_printf(b, "\"} 1\n");
	mbuf_printf(b, "# HELP " PREFIX "supervisor_state The supervisor's "
	            "state (corralctl status --json: state).\n"
	            "# TYPE " PREFIX "supervisor_state gauge\n"
	            PREFIX "supervisor_state{state=\"");
	put_label_value(b, st->state);
	mbuf_printf(b, "\"} 1\n");
	mbuf_printf(b, "# HELP " PREFIX "start_time_seconds When the "
	            "supervisor started, Unix time.\n"
	            "# TYPE " PREFIX "start_time_seconds gauge\n"
	            PREFIX "start_time_seconds ");
	put_double(b, x->start_time_s);
	mbuf_printf(b, "\n# HELP " PREFIX "workers Worker slots (the workers "
	            "setting).\n# TYPE " PREFIX "workers gauge\n"
	            PREFIX "workers %" PRIu32 "\n", st->nworkers);
	mbuf_printf(b, "# HELP " PREFIX "workers_running Worker slots in state "
	            "running.\n# TYPE " PREFIX "workers_running gauge\n"
	            PREFIX "workers_running %u\n", metrics_running(st));
	mbuf_printf(b, "# HELP " PREFIX "workers_ready_min Running workers "
	            "that make /readyz answer 200 (ready_min).\n"
	            "# TYPE " PREFIX "workers_ready_min gauge\n"
	            PREFIX "workers_ready_min %u\n", x->ready_min);
	mbuf_printf(b, "# HELP " PREFIX "bad_frames_total Malformed messages "
	            "received and dropped (bad_frames).\n"
	            "# TYPE " PREFIX "bad_frames_total counter\n"
	            PREFIX "bad_frames_total %" PRIu64 "\n", st->bad_frames);
	mbuf_printf(b, "# HELP " PREFIX "listener_heals_total Dead nng "
	            "listeners replaced (listener_heals).\n"
	            "# TYPE " PREFIX "listener_heals_total counter\n"
	            PREFIX "listener_heals_total %" PRIu64 "\n", st->heals);
	mbuf_printf(b, "# HELP " PREFIX "worker_up 1 while the slot's worker "
	            "is running (ready and not stopping).\n"
	            "# TYPE " PREFIX "worker_up gauge\n");
	for (uint32_t i = 0; i < st->nworkers; i++)
		mbuf_printf(b, PREFIX "worker_up{slot=\"%d\"} %d\n",
		            (int)st->workers[i].slot,
		            strcmp(st->workers[i].state, "running") == 0);
	for (size_t t = 0; t < sizeof tables / sizeof *tables; t++)
		render_table(b, &tables[t], st);
	render_plugin_metrics(b, st);
	return b->oom ? CORRAL_ENOMEM : 0;
}
