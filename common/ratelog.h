/*
 * ratelog.h - repeated log lines rate-limited: at most one line per
 * interval for the same kind of event, with a count of the ones held back,
 * so a flood (of bad frames, failed sends, hostile connections) can fill
 * neither a disk nor a journal.  One ratelog per kind of line; not
 * thread-safe (one owner, usually a loop thread).
 */
#ifndef COMMON_RATELOG_H
#define COMMON_RATELOG_H

#include <stdint.h>

#define RATELOG_INTERVAL_MS 5000

typedef struct ratelog {
	uint64_t next_ms;    /* no line before this */
	uint64_t held;       /* lines held back since the last one written */
} ratelog;

/* 1 if a line may be written now; then *held (may be NULL) is how many
 * were held back before it (to say so in the line).  0: count it, skip. */
int ratelog_ok(ratelog *r, uint64_t *held);

#endif
