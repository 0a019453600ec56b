/*
 * top.h - `corralctl top`: a live view of a supervisor, one row per slot
 * (the status table's columns, which come from the field tables, and
 * utilisation and jobs per second), totals, refreshed every interval; `q`
 * quits.  Plain ANSI escapes (alternate screen, cursor home, erase to end
 * of line), no curses: the frame is a few lines of text redrawn in place.
 *
 * Jobs per second are rates between two status snapshots: a slot's from
 * its worker's jobs_done counter over the worker's own uptime between two
 * health reports (so not skewed by when the reports arrive), the total
 * from the broker's answered jobs over the time between the snapshots.
 *
 * --once prints one frame without escape codes, for scripts and tests: it
 * takes two snapshots `interval` apart so that rates have a value.
 */
#ifndef TOOLS_TOP_H
#define TOOLS_TOP_H

#include <stdint.h>

/* Runs top against RUNDIR/control.  Returns corralctl's exit code. */
int top_main(const char *rundir, uint64_t timeout_ms, uint64_t interval_ms,
             int once);

#endif
