/*
 * broker.h - jobs that survive crashes: the front end, the priority queues
 * and the ledger of which job is on which worker.
 *
 * The broker knows workers only by a number (the supervisor gives each
 * slot two, so that during a reload the outgoing and the incoming worker
 * of one slot hold jobs apart) and by what the supervisor tells it
 * (broker_worker_set / broker_worker_gone); it reaches them only through
 * ops->send.  It never sees a slot's fields.  "slot" below means that
 * number.  Everything here runs on the supervisor's loop thread.
 */
#ifndef MASTER_BROKER_H
#define MASTER_BROKER_H

#include <nng/nng.h>
#include <stdint.h>
#include <uv.h>

#include "ipc/proto.h"

typedef struct broker broker;

typedef struct broker_config {
	const char *url;      /* the jobs front end */
	const char *rundir;   /* poison payloads go to RUNDIR/poison/ */
	unsigned nslots;       /* worker numbers 0..nslots-1 may be used */
	unsigned open_hint;    /* workers expected: sizes the front end */
	unsigned max_inflight; /* jobs per worker at once */
	unsigned queue_limit;  /* jobs waiting before "busy" */
	uint64_t queue_limit_bytes; /* their payload bytes, the same way */
	unsigned max_attempts; /* worker deaths before a job is poison */
	uint64_t job_timeout_ms;
	uint64_t max_lag_ms;   /* lag p99 above this: degraded, no new jobs */
} broker_config;

typedef struct broker_ops {
	/* Sends msg (taken in every case) to the worker in slot. */
	int (*send)(void *ctx, unsigned slot, nng_msg *msg);
	/* The supervisor's monotonic clock in ms. */
	uint64_t (*now_ms)(void *ctx);
	/* The broker became empty while draining (reconcile soon). */
	void (*drained)(void *ctx);
	/* A malformed request (lane -1) or a worker's malformed reply (its
	 * lane) was dropped; code says why.  The broker logs neither: the
	 * supervisor does, rate-limited (master/badframe.h). */
	void (*bad_frame)(void *ctx, int lane, int code);
} broker_ops;

typedef struct broker_stats {
	uint64_t accepted, ok, failed, timeouts, busy, poison, redispatched;
	uint64_t late_replies, bad_requests, rejected, dispatched;
	uint64_t trims;         /* freed memory handed back (malloc_trim) */
	unsigned queued, inflight;
	uint64_t queued_bytes;  /* payload bytes of the queued jobs */
	uint64_t held_bytes;    /* client requests kept for the payloads of
	                         * their jobs, queued or in flight */
} broker_stats;

/* Opens the front end.  0, CORRAL_EBUSY (address in use) or another code. */
int broker_open(broker **out, uv_loop_t *loop, const broker_config *cfg,
                const broker_ops *ops, void *ctx);
/* Answers what is left with "shutting_down" and closes. */
void broker_close(broker *b);

/* Whether the worker in slot may take new jobs (RUNNING, not stopping),
 * and its latest lag p99.  Dispatch follows on this loop turn. */
void broker_worker_set(broker *b, unsigned slot, int takes_jobs,
                       uint64_t lag_p99_us);
/* The worker's process is gone: its jobs go back to the head of their
 * queues (or are poison after max_attempts). */
void broker_worker_gone(broker *b, unsigned slot);
/* A REPLY frame from the worker in slot. */
void broker_on_reply(broker *b, unsigned slot, const ipc_frame *f);

/* The front end's URL, its port resolved ("" without a broker). */
const char *broker_url(const broker *b);
unsigned broker_inflight(const broker *b);
unsigned broker_slot_jobs(const broker *b, unsigned slot);
int broker_slot_degraded(const broker *b, unsigned slot);
void broker_get_stats(const broker *b, broker_stats *st);

/* Stops taking jobs ("shutting_down"); the accepted ones go on.  Returns
 * 1 when nothing is left, else ops->drained runs when that happens. */
int broker_drain(broker *b);
/* No job queued or in flight. */
int broker_empty(const broker *b);
/* Answers every job still held with "shutting_down". */
void broker_abort(broker *b);

#endif
