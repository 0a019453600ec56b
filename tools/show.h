/*
 * show.h - how corralctl shows what a supervisor reports: a status as an
 * aligned table or as JSON, an event as a line or as a JSON object.  The
 * table's columns and the JSON keys come from the field tables in
 * ipc/proto.h, so a field added there appears here without code.  JSON is
 * built with jansson: strings that are not valid UTF-8 are repaired
 * (U+FFFD), and numbers that JSON cannot hold (NaN, infinities) are null.
 */
#ifndef TOOLS_SHOW_H
#define TOOLS_SHOW_H

#include <stddef.h>
#include <stdio.h>

#include "ipc/proto.h"

/* 0, or -1 when out of memory. */
int show_status_json(FILE *f, const ipc_status *st);
void show_status_table(FILE *f, const ipc_status *st);
/* An event; a decision's inputs come along (JSON: "decision", whose
 * absent figures are null; a line: a bracketed summary). */
int show_event_json(FILE *f, const ipc_event *e);
void show_event_line(FILE *f, const ipc_event *e);
/* An event as `corralctl explain` shows it: a state change on one line; a
 * decision with its inputs, one line each, in words. */
void show_explain_event(FILE *f, const ipc_event *e);
/* {"slot": N, "status": the slot as in `status --json` (null: w NULL),
 * "events": [the events, as show_event_json]}. */
int show_explain_json(FILE *f, int slot, const ipc_worker_status *w,
                      const ipc_event *ev, size_t n);
/* A log ring line as the supervisor's log shows it, and as JSON: seq,
 * t_ms, level, slot, pid (null for the supervisor's own), source, msg. */
void show_logline(FILE *f, const ipc_logline *l);
int show_logline_json(FILE *f, const ipc_logline *l);

/* The status table's columns, from the field tables: a slot field or a
 * health field that has a column name. */
typedef struct show_column {
	const ipc_field *f;
	int health; /* the field is in w->health */
} show_column;

/* Fills up to max columns; returns how many. */
unsigned show_columns(show_column *c, unsigned max);
/* The column's cell for w ("-" for the pid of a slot without a process). */
void show_cell(const show_column *c, const ipc_worker_status *w, char *buf,
               size_t len);
/* "SIGKILL", "code 1" or "-". */
void show_last_exit(const ipc_worker_status *w, char *buf, size_t len);

#endif
