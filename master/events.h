/*
 * events.h - the supervisor's event log: every state change of a slot and
 * of the supervisor, and every action it takes, with a sequence number, in
 * a bounded ring.  `corralctl events` and the process tests read it over
 * the control socket (waiting for what they expect, instead of reading log
 * wording).  Loop thread only.
 */
#ifndef MASTER_EVENTS_H
#define MASTER_EVENTS_H

#include <stdint.h>

#include "ipc/proto.h"

typedef struct evlog {
	ipc_event *ring;
	uint32_t cap;
	uint64_t last;      /* seq of the newest event; 0 = none yet */
	void (*on_add)(void *arg); /* after each event (wakes waiters) */
	void *arg;
} evlog;

int evlog_init(evlog *l, uint32_t cap);
void evlog_free(evlog *l);

/* Records one event; why is printf-style. */
void evlog_add(evlog *l, const char *kind, int32_t slot, int64_t pid,
               uint32_t gen, const char *from, const char *to,
               const char *fmt, ...) __attribute__((format(printf, 8, 9)));
/* Records a decision about a slot (kind "decision"): from is the slot's
 * state, to the action, d what it was taken on (master/decision.h). */
void evlog_add_decision(evlog *l, int32_t slot, int64_t pid, uint32_t gen,
                        const char *from, const char *to,
                        const ipc_decision *d, const char *fmt, ...)
    __attribute__((format(printf, 8, 9)));
/* The newest event of kind about slot among the last `look` events, or
 * NULL. */
const ipc_event *evlog_latest(const evlog *l, const char *kind, int32_t slot,
                              uint32_t look);

/* The oldest seq still held (last + 1 when empty). */
uint64_t evlog_first(const evlog *l);
/* Copies up to max events with seq > since into out; returns how many. */
uint32_t evlog_copy(const evlog *l, uint64_t since, ipc_event *out,
                    uint32_t max);

#endif
