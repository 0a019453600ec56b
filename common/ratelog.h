/*
 * ratelog.h - repeated log lines rate-limited: at most one line per
 * interval for the same kind of event, with a count of the ones held back,
 * so a flood (of bad frames, failed sends, hostile connections) can fill
 * neither a disk nor a journal.  One ratelog per kind of line; not
 * thread-safe (one owner, usually a loop thread).
 *
 * A line held back is told of by the next line written, or, when no
 * event follows, by the owner's own summary: ratelog_flush() once
 * ratelog_wait_ms() has passed (the owner arms a timer for it), so a
 * burst's tail is never left untold.
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

/* 1 if lines were held back and a line may be written now: write one
 * saying *held were; it counts as this interval's line.  0 otherwise. */
int ratelog_flush(ratelog *r, uint64_t *held);

/* Milliseconds until a line may be written (0: now). */
uint64_t ratelog_wait_ms(const ratelog *r);

#endif
