/*
 * logring.h - the last lines of each worker slot and of the supervisor
 * itself, in memory, for `corralctl logs` (LOGS requests on the control
 * socket).
 *
 * One ring per source: the supervisor's own lines (with its standbys'
 * output), and each slot's workers' output.  A ring keeps its last
 * max_lines lines or max_bytes bytes of text, whichever is less, so a
 * chatty slot pushes out only its own lines.  Every line gets a sequence
 * number from one counter across the rings, so one cursor (`since`) reads
 * all of them in order, or one slot's, and a reader that follows asks for
 * what came after the cursor the last answer gave it.
 *
 * Loop thread only (the supervisor's sink adds only the loop thread's
 * lines: master/logsink.h).
 */
#ifndef MASTER_LOGRING_H
#define MASTER_LOGRING_H

#include <stddef.h>
#include <stdint.h>

#include "ipc/proto.h"

#define LOGRING_LINES 1000         /* per source, by default */
#define LOGRING_BYTES (256 * 1024)  /* per source, by default */
#define LOGRING_MAX_SLOTS 4096     /* slots past this share ring -1 */

typedef struct logring logring;

int logring_new(logring **out, uint32_t max_lines, size_t max_bytes);
void logring_free(logring *r);

/* Keeps one line: slot -1 for the supervisor's own (pid 0) or a
 * standby's; len bytes of msg (at most IPC_MAX_LOGLINE kept).  Calls the
 * notify function afterwards.  0 or CORRAL_ENOMEM (the line is lost). */
int logring_add(logring *r, int slot, int64_t pid, unsigned level,
                uint64_t t_ms, const char *msg, size_t len);

/* The newest line's seq (0: none yet). */
uint64_t logring_last(const logring *r);
/* Whether a line of slot (-1: any) came after since. */
int logring_has_after(const logring *r, uint64_t since, int slot);

/*
 * Up to max lines of q->slot (-1: all) with seq > q->since, oldest first;
 * with q->tail, only the last q->tail of those.  The lines' msg point into
 * the ring: use them before the next logring_add.  *next is the cursor for
 * the next request: the last line given when max cut the answer short,
 * else the newest line there is.
 */
uint32_t logring_copy(const logring *r, const ipc_logs_req *q,
                      ipc_logline *out, uint32_t max, uint64_t *next);

/* fn(arg) after each line (control.c wakes its waiting readers); NULL:
 * none. */
void logring_set_notify(logring *r, void (*fn)(void *arg), void *arg);

#endif
