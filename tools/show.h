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

#include <stdio.h>

#include "ipc/proto.h"

/* 0, or -1 when out of memory. */
int show_status_json(FILE *f, const ipc_status *st);
void show_status_table(FILE *f, const ipc_status *st);
int show_event_json(FILE *f, const ipc_event *e);
void show_event_line(FILE *f, const ipc_event *e);

#endif
