/* show.c - see show.h. */
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tools/show.h"

/* A JSON string from bytes that should be UTF-8: invalid sequences become
 * U+FFFD instead of making the whole document unparseable. */
static json_t *jstr(const char *s)
{
	size_t n = strlen(s);
	char *buf = malloc(n * 3 + 1), *o = buf;
	if (!buf)
		return NULL;
	const unsigned char *p = (const unsigned char *)s, *end = p + n;
	while (p < end) {
		unsigned c = *p, len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2
		                              : (c >> 4) == 14 ? 3
		                              : (c >> 3) == 30 ? 4 : 0;
		int ok = len && p + len <= end;
		for (unsigned k = 1; ok && k < len; k++)
			ok = (p[k] & 0xc0) == 0x80;
		if (ok) {
			memcpy(o, p, len);
			o += len;
			p += len;
		} else {
			memcpy(o, "\xef\xbf\xbd", 3);
			o += 3;
			p++;
		}
	}
	*o = '\0';
	/* Overlongs and surrogates are still refused by jansson: then the
	 * string is dropped to its ASCII. */
	json_t *j = json_string(buf);
	if (!j) {
		for (o = buf; *o; o++)
			if ((unsigned char)*o >= 0x80)
				*o = '?';
		j = json_string(buf);
	}
	free(buf);
	return j;
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

#define MAXCOLS 16

typedef struct column {
	const ipc_field *f;
	int health; /* the field is in w->health */
	int width;
} column;

static unsigned columns(column *c)
{
	unsigned n = 0;
	for (unsigned i = 0; i < ipc_slot_nfields && n < MAXCOLS; i++)
		if (ipc_slot_fields[i].col)
			c[n++] = (column){&ipc_slot_fields[i], 0, 0};
	for (unsigned i = 0; i < ipc_health_nfields && n < MAXCOLS; i++)
		if (ipc_health_fields[i].col)
			c[n++] = (column){&ipc_health_fields[i], 1, 0};
	return n;
}

void show_status_table(FILE *f, const ipc_status *st)
{
	column c[MAXCOLS];
	unsigned n = columns(c);
	char buf[64];
	fprintf(f, "%s: supervisor pid %" PRId64 ", %s, %u worker(s), "
	        "generation %u (%s, %s)\n", st->name, st->pid, st->state,
	        st->nworkers, st->gen, st->plugin, st->plugin_id);
	if (st->op[0])
		fprintf(f, "in progress: %s\n", st->op);
	else if (st->last_op[0])
		fprintf(f, "last command: %s\n", st->last_op);
	for (unsigned k = 0; k < n; k++) {
		c[k].width = (int)strlen(c[k].f->col);
		for (uint32_t i = 0; i < st->nworkers; i++) {
			const ipc_worker_status *w = &st->workers[i];
			cell(c[k].f, c[k].health ? (const void *)&w->health
			                         : (const void *)w,
			     buf, sizeof buf);
			if ((int)strlen(buf) > c[k].width)
				c[k].width = (int)strlen(buf);
		}
	}
	for (unsigned k = 0; k < n; k++)
		fprintf(f, "%-*s ", c[k].width, c[k].f->col);
	fprintf(f, "LAST EXIT\n");
	for (uint32_t i = 0; i < st->nworkers; i++) {
		const ipc_worker_status *w = &st->workers[i];
		for (unsigned k = 0; k < n; k++) {
			cell(c[k].f, c[k].health ? (const void *)&w->health
			                         : (const void *)w,
			     buf, sizeof buf);
			if (!c[k].health && c[k].f->off ==
			        offsetof(ipc_worker_status, pid) && w->pid == 0)
				snprintf(buf, sizeof buf, "-"); /* no process */
			fprintf(f, "%-*s ", c[k].width, buf);
		}
		if (w->exit_signal[0])
			fprintf(f, "%s\n", w->exit_signal);
		else if (w->exit_code >= 0)
			fprintf(f, "code %d\n", w->exit_code);
		else
			fprintf(f, "-\n");
	}
}

/* ---- events ---- */

int show_event_json(FILE *f, const ipc_event *e)
{
	json_t *o = json_pack("{s:I,s:I,s:o,s:i,s:I,s:i,s:o,s:o,s:o}",
	                      "seq", (json_int_t)e->seq, "t_ms",
	                      (json_int_t)e->t_ms, "kind", jstr(e->kind),
	                      "slot", e->slot, "pid", (json_int_t)e->pid,
	                      "gen", (int)e->gen, "from", jstr(e->from), "to",
	                      jstr(e->to), "why", jstr(e->why));
	return dump(f, o);
}

void show_event_line(FILE *f, const ipc_event *e)
{
	time_t t = (time_t)(e->t_ms / 1000);
	struct tm tm;
	localtime_r(&t, &tm);
	char who[64];
	if (e->slot >= 0)
		snprintf(who, sizeof who, "slot %d pid %" PRId64, e->slot,
		         e->pid);
	else
		snprintf(who, sizeof who, "%s", e->kind);
	fprintf(f, "%02d:%02d:%02d.%03d %s: %s -> %s: %s\n", tm.tm_hour,
	        tm.tm_min, tm.tm_sec, (int)(e->t_ms % 1000), who, e->from,
	        e->to, e->why);
}
