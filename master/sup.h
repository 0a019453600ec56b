/*
 * sup.h - the supervisor's state: the slot table, the control socket and the
 * shutdown bookkeeping.  Everything here belongs to the one loop thread.
 *
 * A slot is a position in the worker table (0..workers-1) that outlives the
 * processes that fill it.  Its lifecycle is one state enum assigned only by
 * slot_transition(), which logs every change; what the operator wants
 * (`want`) is kept apart from what is (`state`), as in s6 and runit.
 *
 *  SPAWNING -exec ok-> STARTING -READY-> RUNNING -stop-> STOPPING -exit-> STOPPED
 *      ^                  | exit/timeout    | exit / hung
 *      |                  v                 v
 *      +---- BACKOFF <-- EXITED -- crash loop / fatal / policy --> FAILED
 */
#ifndef MASTER_SUP_H
#define MASTER_SUP_H

#include <stdint.h>
#include <uv.h>

#include "ipc/chan.h"
#include "ipc/proto.h"
#include "master/conf.h"
#include "master/policy.h"

#define SLOT_STATES(X)                                                        \
	X(SPAWNING, "spawning")                                               \
	X(STARTING, "starting")                                               \
	X(RUNNING, "running")                                                 \
	X(STOPPING, "stopping")                                               \
	X(STOPPED, "stopped")                                                 \
	X(EXITED, "exited")                                                   \
	X(BACKOFF, "backoff")                                                 \
	X(FAILED, "failed")

typedef enum slot_state {
#define X(name, str) SLOT_##name,
	SLOT_STATES(X)
#undef X
} slot_state;

typedef enum slot_want { WANT_UP, WANT_DOWN } slot_want;

typedef struct sup sup;
typedef struct proc proc;
typedef struct broker broker;

typedef struct broker_stats {
	uint64_t accepted, ok, failed, timeouts, busy, poison, redispatched;
	uint64_t late_replies, bad_requests, rejected, dispatched;
	unsigned queued, inflight;
} broker_stats;

/* Called on the loop when a process exits; owner as given to proc_spawn. */
typedef void (*proc_exit_fn)(void *owner, int64_t status, int term_signal);

/* A pre-started worker: exec'd, connected, plugin loaded, waiting for
 * ASSIGN.  A slot that needs a new worker adopts one (standby.c). */
typedef struct standby {
	sup *sup;
	int id;
	proc *proc;      /* NULL when none */
	int64_t pid;
	ipc_chan *chan;
	int ready;       /* its HELLO arrived */
	unsigned fails;  /* consecutive unexpected exits */
	uv_timer_t timer; /* respawn delay, or kill deadline when stopping */
} standby;

typedef struct slot {
	sup *sup;
	int id;
	slot_state state; /* only slot_transition() writes it */
	slot_want want;
	uint64_t state_since_ms;

	proc *proc;       /* the live child, NULL when none */
	int64_t pid;      /* of proc, or of the last one (for logs) */
	ipc_chan *chan;   /* pair socket for the current child */
	uv_timer_t timer; /* the deadline of the current state */
	const char *kill_reason; /* why we SIGKILLed it, NULL if we did not */

	restart_track track;
	uint32_t restarts;
	unsigned spawns; /* names each spawn's socket (sup_slot_url) */
	uint64_t spawned_ms, ready_ms;
	uint64_t spawned_us, ready_us; /* for the "ready in" figure */

	int have_health;
	ipc_health health;
	double cpu_pct;

	int have_exit;
	int exit_code;   /* -1 if killed by a signal */
	int exit_signal; /* 0 if it exited */
	int failed;      /* ended by failure, not by a clean exit */
} slot;

struct sup {
	uv_loop_t *loop;
	config *cfg;
	restart_policy policy;
	char worker_bin[4096];
	char rundir[4096];
	slot *slots;
	unsigned nslots;

	standby *spares;
	unsigned nspares;
	int spares_off;     /* disabled: the plugin cannot start */
	int spares_draining; /* being stopped for good */
	unsigned standby_gen; /* names standby sockets uniquely */

	broker *broker;       /* jobs: front end, queues, ledger */
	uv_timer_t drain_timer; /* shutdown: how long jobs may take */

	ipc_chan *ctl;
	uv_signal_t sig_term, sig_int, sig_hup;
	int stopping;     /* shutdown began: want DOWN everywhere */
	int signals;      /* shutdown signals received */
	int had_to_kill;
	int done;         /* teardown began */
	int exit_code;
	unsigned long bad_frames;
};

/* sup.c */
uint64_t sup_now_ms(const sup *s);
int sup_init(sup *s, uv_loop_t *loop, config *cfg, const char *worker_bin,
             const char *rundir);
int sup_run(sup *s);
void sup_check_done(sup *s);
void sup_slot_url(const sup *s, int id, unsigned gen, char *buf, size_t len);

/* slot.c: the state machine and restart policy */
const char *slot_state_name(slot_state st);
void slot_transition(slot *sl, slot_state to, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int slot_init(slot *sl, sup *s, int id);
void slot_start(slot *sl);
void slot_stop(slot *sl);
void slot_kill(slot *sl, const char *reason);
void slot_on_exit(slot *sl, int64_t status, int term_signal);
void slot_close(slot *sl);
int slot_is_terminal(const slot *sl);

/* proc.c: spawning a worker and capturing its output.  slot_id -1 spawns
 * a standby worker. */
int proc_spawn(sup *s, int slot_id, const char *url, proc_exit_fn fn,
               void *owner, proc **out);
int64_t proc_pid(const proc *p);
int proc_kill(proc *p, int signum);
/* Gives the process to a new owner (a slot adopting a standby). */
void proc_adopt(proc *p, int slot_id, proc_exit_fn fn, void *owner);
/* The owner lets go at exit; the proc frees itself later. */
void proc_detach(proc *p);

/* standby.c */
int standby_init(sup *s);
/* Starts standbys that are missing, if every slot is running. */
void standby_maybe_start(sup *s);
/* Hands over a ready standby worker's process and channel; 0 if none. */
int standby_take(sup *s, proc **p, ipc_chan **ch, int64_t *pid);
void standby_stop_all(sup *s, int now);
int standby_idle(const sup *s);
void standby_close(sup *s);

/* control.c: the control socket */
int control_open(sup *s);
void control_close(sup *s);

/* broker.c: jobs */
int broker_open(broker **out, sup *s);
void broker_close(broker *b);
void broker_on_ready(broker *b);
void broker_on_reply(broker *b, slot *sl, const ipc_frame *f);
void broker_on_worker_gone(broker *b, slot *sl);
unsigned broker_inflight(const broker *b);
unsigned broker_slot_jobs(const broker *b, int slot_id);
int broker_slot_degraded(const broker *b, const slot *sl);
void broker_get_stats(const broker *b, broker_stats *st);
/* Stops taking jobs; 1 if none are left, else on_empty(s) runs later. */
int broker_drain(broker *b, void (*on_empty)(sup *s));
/* Answers every job still held with "shutting_down". */
void broker_abort(broker *b);

/* rundir.c */
int rundir_prepare(const char *path, char *err, size_t errlen);

#endif
