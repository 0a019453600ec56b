/*
 * sup.h - the supervisor: the slot table, the standbys, the broker, the
 * control socket, and the one reconciler that drives them.
 *
 * Callbacks (signals, exits, messages, timers, requests) only record facts
 * and mark the supervisor dirty.  The reconciler runs once per loop turn
 * while something is dirty (a uv_idle handle, so the loop never sleeps on
 * a pending decision), compares what is wanted with what is -- for the
 * supervisor, every slot and every standby -- and is the only code that
 * starts, stops, kills, reaps or tears down (nginx's process cycle works
 * this way: handlers set flags, one loop acts).
 *
 *   STARTING -first pass-> RUNNING -signal-> DRAINING -jobs done-> STOPPING
 *      (every slot wanted up)   (no new jobs)     (slots told to stop)
 *   STOPPING -every slot and standby at rest-> DONE (teardown, loop ends)
 *   RUNNING  -no slot left to supervise (all FAILED or done)-> DONE
 *   a second signal: kill what is left, never restart -> STOPPING -> DONE
 *
 * Everything here belongs to the loop thread.
 */
#ifndef MASTER_SUP_H
#define MASTER_SUP_H

#include <limits.h>
#include <stdint.h>
#include <uv.h>

#include "master/broker.h"
#include "master/conf.h"
#include "master/control.h"
#include "master/events.h"
#include "master/policy.h"
#include "master/proc.h"
#include "master/slot.h"
#include "master/standby.h"

#define SUP_STATES(X)                                                         \
	X(STARTING, "starting")                                               \
	X(RUNNING, "running")                                                 \
	X(DRAINING, "draining")  /* jobs finishing; no new ones */           \
	X(STOPPING, "stopping")  /* workers told to stop */                  \
	X(DONE, "done")

typedef enum sup_state {
#define X(name, str) SUP_##name,
	SUP_STATES(X)
#undef X
} sup_state;

/* Signals the supervisor handles, each with its documented meaning. */
#define SUP_SIGNALS(X)                                                        \
	X(SIGTERM, "graceful stop (a second one: fast stop)")                \
	X(SIGINT, "graceful stop (a second one: fast stop)")                 \
	X(SIGQUIT, "graceful stop (a second one: fast stop)")                \
	X(SIGHUP, "reload")                                                  \
	X(SIGUSR1, "reopen the log file")                                    \
	X(SIGUSR2, "write a status summary to the log")                      \
	X(SIGTTIN, "one worker more")                                        \
	X(SIGTTOU, "one worker less")

enum { SUP_NSIGNALS = 8 };

typedef struct sup {
	uv_loop_t *loop;
	config *cfg;
	worker_spec spec;
	char worker_bin[PATH_MAX];
	char rundir[PATH_MAX];
	restart_policy policy;
	slot_timeouts timeouts;

	slot *slots;        /* the slot table */
	unsigned nslots;
	standby_pool spares;
	broker *broker;
	control *ctl;
	evlog events;

	sup_state state;     /* only sup_set_state() writes it */
	/* Facts for the reconciler, set by callbacks. */
	int stop_sig;        /* a first stop signal, not acted on yet */
	int kill_sig;        /* a second one, not acted on yet */
	int stop_seen, kill_seen;
	int drained;         /* the broker has no jobs left */
	int drain_late;      /* shutdown_timeout passed while draining */
	unsigned pending_signals[SUP_NSIGNALS]; /* others, to log and act on */

	int fast_stop;       /* second signal: SIGKILL everything left */
	int unclean;         /* a worker was SIGKILLed, or crashed, during
	                      * shutdown: exit code 4 */
	int exit_decided;    /* exit_code set when "nothing left" began */
	int exit_code;
	unsigned long bad_frames;

	uv_idle_t reconcile; /* active while dirty */
	int dirty;
	uv_timer_t drain_timer;
	uv_prepare_t before_poll; /* stall detection: see sup.c */
	uv_check_t after_poll;
	uint64_t poll_start_ms;
	int64_t poll_timeout_ms;
	uv_signal_t sigs[SUP_NSIGNALS];
	int nsigs;
} sup;

const char *sup_state_name(sup_state st);

/* listeners and user (may be NULL) must outlive the supervisor. */
int sup_init(sup *s, uv_loop_t *loop, config *cfg, const char *worker_bin,
             const char *rundir, const listen_set *listeners,
             const priv_user *user);
/* Runs until done; returns the exit code (corral_base.h). */
int sup_run(sup *s);

/* Asks for a reconcile pass on this loop turn (any callback may). */
void sup_dirty(sup *s);

/* status.c: the STATUS reply, built from the slot table. */
int sup_status_reply(sup *s, nng_msg **reply);
/* status.c: the same snapshot, for the metrics endpoint (ops); 0 or
 * CORRAL_ENOMEM.  Free it with ipc_status_free() in either case. */
int sup_status_fill(sup *s, ipc_status *st);

#endif
