/*
 * logsink.h - where the supervisor's log lines go: its own lines and its
 * workers' output (common/log.h's sink) into the log ring that `corralctl
 * logs` reads (master/logring.h), and out to stderr or to log_file, as
 * text (the lines stderr shows) or JSON (one object per line: time, level,
 * prog, slot, pid, msg, source).
 *
 * One per process: log.c has one sink.  Opened by main() before the
 * supervisor starts, closed after it ends.  The ring takes lines of the
 * thread that opened the sink (the loop thread) only; lines of any other
 * thread still reach the output.
 *
 * With log_file, lines go to the file only, except log_plain's (usage,
 * fatal errors), which a person starting corral must see on stderr too.
 * log_reopen() reopens the file by its path (SIGUSR1, after logrotate has
 * moved it away): the old file gets a last line, the new one the rest.
 */
#ifndef MASTER_LOGSINK_H
#define MASTER_LOGSINK_H

#include <stddef.h>

#include "master/logring.h"

/* path "" or NULL: stderr.  0, or a corral_err with err filled (the file
 * cannot be opened, out of memory). */
int logsink_open(const char *path, int json, char *err, size_t errlen);
/* Unregisters the sink, closes the file, frees the ring. */
void logsink_close(void);

/* Reopens log_file (and says so in the log); without one, logs that there
 * is nothing to reopen.  On failure the old file stays in use. */
void log_reopen(void);

/* The ring (NULL before logsink_open). */
logring *logsink_ring(void);
/* The same as a control_ops.logs callback (ctx unused). */
logring *logsink_ring_cb(void *ctx);

#endif
