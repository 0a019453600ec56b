/*
 * metrics.h - the Prometheus text exposition (format 0.0.4) of a status
 * snapshot: what GET /metrics answers.
 *
 * Everything comes from the same ipc_status the STATUS reply is built
 * from (sup_status_fill), and every per-field metric from the field
 * tables in ipc/proto.h (their Prometheus column): names, types, units
 * and the grouping into families are declared there, once.  What this
 * file adds are the few figures that are not fields: the supervisor's
 * state and counters, workers up and running, and the plugins' own
 * metrics (corral_metric_set) as gauges named corral_plugin_NAME.
 *
 * Pure: no I/O, no loop; the unit tests render hand-made snapshots.
 */
#ifndef MASTER_METRICS_H
#define MASTER_METRICS_H

#include <stddef.h>

#include "ipc/proto.h"

/* A growing text buffer; oom is set (and text dropped) when out of
 * memory. */
typedef struct mbuf {
	char *p;
	size_t len, cap;
	int oom;
} mbuf;

void mbuf_printf(mbuf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void mbuf_free(mbuf *b);

/* What the exposition needs besides the snapshot. */
typedef struct metrics_extra {
	unsigned ready_min;   /* workers that make /readyz answer 200 */
	const char *version;  /* corral's */
	double start_time_s;  /* the supervisor's start, Unix time */
} metrics_extra;

/* Appends the exposition of st to out; 0 or CORRAL_ENOMEM. */
int metrics_render(const ipc_status *st, const metrics_extra *x, mbuf *out);

/* Workers in state "running". */
unsigned metrics_running(const ipc_status *st);

/* The Prometheus name of a plugin's metric: corral_plugin_ and the name
 * with every byte outside [A-Za-z0-9_] made '_'; a name that would end in
 * a suffix Prometheus keeps for counters, summaries and histograms
 * (_total, _count, _sum, _bucket) gets _value appended. */
void metrics_plugin_name(const char *name, char *out, size_t len);

/* One field's Prometheus column split up: family name (without corral_),
 * label name and value ("" when none; a label without a value takes the
 * field's text).  0, or -1 for a malformed column. */
int metrics_parse_spec(const char *spec, char *name, size_t nlen,
                       char *label, size_t llen, char *value, size_t vlen);

#endif
