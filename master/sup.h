/*
 * sup.h - the supervisor: the slot table, the standbys, the broker, the
 * control socket, and the one reconciler that drives them.
 *
 * Callbacks (signals, exits, messages, timers, requests) only record facts
 * and mark the supervisor dirty.  The reconciler runs once per loop turn
 * while something is dirty (a uv_idle handle, so the loop never sleeps on
 * a pending decision), compares what is wanted with what is -- for the
 * supervisor, every slot, every replacement in progress and every standby
 * -- and is the only code that starts, stops, kills, reaps or tears down
 * (nginx's process cycle works this way: handlers set flags, one loop
 * acts).
 *
 *   STARTING -first pass-> RUNNING -signal-> DRAINING -jobs done-> STOPPING
 *      (every slot wanted up)   (no new jobs)     (slots told to stop)
 *   STOPPING -every slot and standby at rest-> DONE (teardown, loop ends)
 *   RUNNING  -no slot left to supervise (all FAILED or done)-> DONE
 *   a second signal: kill what is left, never restart -> STOPPING -> DONE
 *
 * While RUNNING, one operator command at a time (sup_ops.c): a reload or
 * restart (a rolling, gated replacement of workers, rolled back when a new
 * worker fails), a scale, a stop.
 *
 * Everything here belongs to the loop thread.
 */
#ifndef MASTER_SUP_H
#define MASTER_SUP_H

#include <limits.h>
#include <stdint.h>
#include <uv.h>

#include "ipc/srv.h"
#include "master/badframe.h"
#include "master/broker.h"
#include "master/conf.h"
#include "master/control.h"
#include "master/events.h"
#include "master/gen.h"
#include "master/policy.h"
#include "master/proc.h"
#include "master/slot.h"
#include "master/standby.h"
#include "master/xworker.h"

#define SUP_MAX_SLOTS 1024 /* the most `workers` or `scale` allow */

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
	X(SIGHUP, "reload: re-read the configuration, replace every worker") \
	X(SIGUSR1, "reopen the log file")                                    \
	X(SIGUSR2, "write a status summary to the log")                      \
	X(SIGTTIN, "one worker more")                                        \
	X(SIGTTOU, "one worker less")

enum { SUP_NSIGNALS = 8 };

/* Re-reads the configuration as at start (the same file and command
 * line), or from config_path, with plugin instead of the configured one
 * when given.  0, or CORRAL_ECONFIG with err as "FILE:LINE: what". */
typedef int (*sup_reread_fn)(void *arg, const char *config_path,
                             const char *plugin, config *out, char *err,
                             size_t errlen);

/* What sup_init needs besides the configuration; all must outlive it. */
typedef struct sup_params {
	const char *worker_bin;
	const char *rundir;
	const listen_set *listeners; /* may be NULL */
	const priv_user *user;       /* may be NULL */
	sup_reread_fn reread;        /* NULL: reload re-reads nothing */
	void *reread_arg;
	unsigned max_slots;          /* 0: no cap; else the open-file limit's
	                                (procenv_fd_room) */
	const char *cap_reason;      /* why, when it caps */
} sup_params;

typedef enum sup_op_kind {
	OP_NONE,
	OP_RELOAD,  /* a new generation, rolled out slot by slot */
	OP_RESTART, /* the same generation, rolled out again */
	OP_SCALE,
	OP_STOP,
} sup_op_kind;

/* The operator command in progress (sup_ops.c).  Owned by the loop. */
typedef struct sup_op {
	sup_op_kind kind;
	ipc_req *req;            /* the request to answer; NULL (a signal) */
	uint64_t started_ms;
	char what[256];          /* "reload to generation 3", for status */
	gen_spec *target;        /* rollout: the generation slots move to */
	gen_spec *from;          /* ...and the one they leave (rollback) */
	int back;                /* rolling back to `from` */
	char error[512];         /* why it rolls back */
	char back_error[512];    /* why the rollback itself failed */
	uint64_t cmd_id;         /* the client's id for it (ipc_cmd.id) */
	int heal;                /* a health action (sup_op_heal)... */
	int reason;              /* ...for this restart_reason */
	unsigned next;           /* the next slot to consider */
	unsigned char *pick;     /* restart: the slots named (NULL: all) */
	unsigned scale_to;
} sup_op;

#define SUP_MAX_GENS 4

typedef struct sup {
	uv_loop_t *loop;
	config *cfg;         /* the configuration of the current generation */
	sup_params params;
	char worker_bin[PATH_MAX];
	char rundir[PATH_MAX];
	restart_policy policy;
	slot_timeouts timeouts;

	slot **slots;        /* the slot table; each slot allocated alone */
	unsigned nslots;
	standby_pool spares;
	broker *broker;
	control *ctl;
	evlog events;

	gen_spec *gen;       /* the generation wanted now */
	gen_spec *gens[SUP_MAX_GENS]; /* every one still in use */
	unsigned last_gen;   /* numbers generations */
	sup_op op;
	char last_op[512];   /* how the last command ended */

	sup_state state;     /* only set_state() writes it */
	/* Facts for the reconciler, set by callbacks. */
	int stop_sig;        /* a first stop signal, not acted on yet */
	int kill_sig;        /* a second one, not acted on yet */
	int stop_seen, kill_seen;
	int drained;         /* the broker has no jobs left */
	int drain_late;      /* shutdown_timeout passed while draining */
	unsigned pending_signals[SUP_NSIGNALS]; /* others, to log and act on */
	ipc_req *stop_req;   /* a `corralctl stop` to answer at the end */
	uint64_t stop_id;    /* ...its ipc_cmd.id */
	uint64_t cmd_now;    /* the id of the command being handled now */
	uint64_t done_id;    /* the last command answered, and its answer: */
	ipc_cmd_result done; /* ...for a resend that arrives after that */

	int fast_stop;       /* second signal: SIGKILL everything left */
	int unclean;         /* a worker was SIGKILLed, or crashed, during
	                      * shutdown: exit code 4 */
	int exit_decided;    /* exit_code set when "nothing left" began */
	int exit_code;
	unsigned long bad_frames; /* every one, whoever drops it */
	badframes bad;            /* their log lines and memory */

	uv_idle_t reconcile; /* active while dirty */
	int dirty;
	uv_timer_t drain_timer;
	uv_prepare_t before_poll; /* stall detection: see sup.c */
	uv_check_t after_poll;
	uint64_t poll_start_ms;
	uint64_t alive_ms;   /* the loop's last sign of life (stall watch) */
	int64_t poll_timeout_ms;
	uv_signal_t sigs[SUP_NSIGNALS];
	int nsigs;
	uv_signal_t sigchld; /* a stray child (subreaper) may need reaping */
	int chld_pending;
	unsigned long strays_reaped;
	uv_timer_t pipe_timer; /* the end: stop waiting on held pipes */
	int pipe_timer_on;
} sup;

const char *sup_state_name(sup_state st);

int sup_init(sup *s, uv_loop_t *loop, config *cfg, const sup_params *p);
/* Runs until done; returns the exit code (corral_base.h). */
int sup_run(sup *s);

/* Asks for a reconcile pass on this loop turn (any callback may). */
void sup_dirty(sup *s);

/* Slot i's broker lanes: two per slot, so that an outgoing and an incoming
 * worker of one slot hold their jobs apart. */
static inline unsigned sup_lane(unsigned slot_id, unsigned which)
{
	return 2 * slot_id + (which & 1);
}

/* status.c: the STATUS reply, built from the slot table. */
int sup_status_reply(sup *s, nng_msg **reply);
/* status.c: the same snapshot, for the metrics endpoint (ops); 0 or
 * CORRAL_ENOMEM.  Free it with ipc_status_free() in either case. */
int sup_status_fill(sup *s, ipc_status *st);

/* sup_ops.c: operator commands and the rollout engine. */
void sup_op_command(sup *s, ipc_req *req, const ipc_cmd *cmd);
void sup_op_signal(sup *s, int signum); /* HUP, TTIN, TTOU */
/* A health verdict on sl (why, in words): its worker is replaced through
 * the gated replacement, within the slot's restart budget; nothing when
 * another operation runs (the next report asks again). */
void sup_op_heal(sup *s, slot *sl, ipc_cause reason, const char *why);
void sup_op_reconcile(sup *s);
/* Shutdown began: the command in progress ends (answered). */
void sup_op_abort(sup *s, const char *why);
/* Replies to a command: ok or not, code, message. */
void sup_op_answer(sup *s, ipc_req *req, int ok, int code, const char *fmt,
                   ...) __attribute__((format(printf, 5, 6)));
/* The slot's incoming and outgoing workers, reaped; 1 if it has none. */
int sup_op_slot_quiet(sup *s, slot *sl);
/* A new slot (scale up): allocated, initialised.  NULL if out of memory. */
slot *sup_slot_new(sup *s, int id);
/* Frees generations no worker uses any more. */
void sup_gens_gc(sup *s);
/* The url for the next socket of slot id.  0 or CORRAL_EINVAL. */
int sup_slot_url(sup *s, slot *sl, char *buf, size_t len);

#endif
