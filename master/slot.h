/*
 * slot.h - a worker slot: a position in the worker table (0..workers-1)
 * that outlives the processes that fill it, and its lifecycle as one table.
 *
 * Events drive `table[state][event] -> effect, next state` (slot.c).  An
 * event that is not legal in a state is logged and ignored.  Events from
 * callbacks (a message, the exit, the deadline timer) only record facts --
 * the next state, a deadline, a kill that is wanted and why, a process to
 * reap -- and ask the owner to reconcile.  The owner's reconciler
 * (master/sup.c) is the only caller of the action functions at the bottom
 * of this header: it starts, stops, kills and reaps, and feeds the matching
 * event back in.  What the operator wants (`want`) is kept apart from what
 * is (`state`), as in s6 and runit.
 *
 *  SPAWNING -spawned-> STARTING -ready-> RUNNING -stop-> STOPPING -exit-> STOPPED
 *      ^                  | exit            | exit
 *      |                  v                 v
 *      +--- BACKOFF <-restart- EXITED -give up (crash loop, fatal)-> FAILED
 *                                 +-done (not restarted by policy)-> STOPPED
 *
 * Everything here belongs to the supervisor's loop thread.
 */
#ifndef MASTER_SLOT_H
#define MASTER_SLOT_H

#include <stdint.h>
#include <uv.h>

#include "ipc/chan.h"
#include "ipc/proto.h"
#include "master/healthwatch.h"
#include "master/policy.h"
#include "master/proc.h"

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
	SLOT_NSTATES
} slot_state;

/* What happens to a slot.  The first group comes from callbacks; the
 * second from the reconciler, after it acted. */
#define SLOT_EVENTS(X)                                                        \
	X(HELLO, "hello")             /* the worker introduced itself */     \
	X(READY, "ready")             /* its init is done */                 \
	X(HEALTH, "health")           /* a health report */                  \
	X(EXIT, "exit")               /* the process ended */                \
	X(TIMEOUT, "timeout")         /* the state's deadline passed */      \
	X(START, "start")             /* reconciler: about to spawn */       \
	X(SPAWNED, "spawned")         /* reconciler: exec ok / adopted */    \
	X(SPAWN_FAILED, "spawn-failed")                                      \
	X(STOP, "stop")               /* reconciler: STOP sent */            \
	X(KILL, "kill")               /* reconciler: kill at once */         \
	X(RESTART, "restart")         /* reconciler: policy says later */    \
	X(GIVE_UP, "give-up")         /* reconciler: policy says never */    \
	X(DONE, "done")               /* reconciler: not to be restarted */  \
	X(SWAPPED, "swapped")         /* reconciler: a replacement took over */

typedef enum slot_ev {
#define X(name, str) SLOT_EV_##name,
	SLOT_EVENTS(X)
#undef X
	SLOT_NEVENTS
} slot_ev;

typedef enum slot_want { WANT_UP, WANT_DOWN } slot_want;

typedef struct slot slot;
typedef struct xworker xworker;

/* How a slot reports up to its owner (the supervisor).  Loop thread. */
typedef struct slot_hooks {
	/* A fact changed: reconcile on this loop turn. */
	void (*dirty)(void *owner);
	/* A REPLY frame from the worker (job results), for the broker. */
	void (*reply)(void *owner, slot *sl, const ipc_frame *f);
	/* A state changed (for the event log); why is the logged reason. */
	void (*changed)(void *owner, slot *sl, slot_state from,
	                const char *why);
	/* A malformed frame arrived from the worker. */
	void (*bad_frame)(void *owner, slot *sl, int code);
	/* A deadline fired: how long the owner itself was stalled (0:
	 * not), every deadline then moved back by as much.  May be NULL. */
	uint64_t (*stalled)(void *owner);
} slot_hooks;

/* Per-slot settings, from the supervisor's configuration. */
typedef struct slot_timeouts {
	uint64_t start_ms, heartbeat_ms, shutdown_ms;
} slot_timeouts;

struct slot {
	int id;
	slot_state state;  /* only slot_event() writes it */
	slot_want want;    /* only the reconciler writes it */
	uint64_t state_since_ms;

	/* The live process, its channel, its pid (kept after exit, for logs),
	 * the generation it was started for and its broker lane. */
	proc *proc;
	ipc_chan *chan;
	int64_t pid;
	unsigned gen;
	unsigned lane;
	unsigned spawns;   /* names each spawn's socket uniquely */

	/* While it is being replaced (master/sup_ops.c): the incoming worker,
	 * and after the swap the outgoing one, draining. */
	xworker *in, *out;
	int moved;         /* a restart command replaced it already */

	/* Facts recorded by events, acted on by the reconciler. */
	int reap;          /* the process exited: channel and jobs to settle */
	int kill_wanted;   /* kill_reason says why */
	int killed;        /* SIGKILL sent to the current process */
	int due;           /* BACKOFF's delay is over */
	char kill_reason[128];
	uint64_t backoff_ms; /* the delay chosen, for logs and explain */

	restart_track track;
	uint32_t restarts;
	/* ops: restarts counted by cause (slot_count_restart), and the cause
	 * of a kill or stop asked for by a health action or a reload (CRASH,
	 * the zero value, means none was given: the exit decides). */
	uint32_t restarts_by[IPC_NCAUSES];
	ipc_cause cause;
	healthwatch hw;    /* the health reports' verdicts (healthwatch.h) */
	int health_new;    /* a report came since the reconciler looked */
	uint64_t spawned_us, ready_us; /* for "ready in" and uptime */
	uint64_t last_uptime_ms;       /* of the process that exited last */

	int have_health;
	ipc_health health;
	double cpu_pct;
	uint64_t health_ms; /* when the last report arrived */

	int have_exit;     /* the last process's end, for status */
	int exit_code;     /* -1 if killed by a signal */
	int exit_signal;   /* 0 if it exited */
	int failed;        /* ended by failure, not by a clean exit */
	int unclean_stop;  /* crashed or was killed while stopping */

	uv_timer_t timer;  /* the current state's deadline */
	uint64_t deadline_from_ms; /* loop time it was armed from */
	const slot_timeouts *to;
	const slot_hooks *hooks;
	void *owner;
};

const char *slot_state_name(slot_state st);
const char *slot_event_name(slot_ev ev);

int slot_init(slot *sl, uv_loop_t *loop, int id, const restart_policy *pol,
              const slot_timeouts *to, const slot_hooks *hooks, void *owner);
/* Closes the timer; the slot must have no process.  With free_it, the
 * slot's memory is freed once the timer is closed (a slot scaled away). */
void slot_close(slot *sl);
void slot_destroy(slot *sl);

/*
 * Feeds one event: looks up table[state][event], logs the transition with
 * slot, pid, reason and time in the previous state, applies the effect
 * (deadlines, facts) and asks the owner to reconcile.  An illegal event is
 * logged and ignored: returns -1.  why may be NULL.
 */
int slot_event(slot *sl, slot_ev ev, const char *why);

/* Finished: FAILED, or STOPPED and not wanted up; nothing left running. */
int slot_finished(const slot *sl);
/* At rest: no process and no decision pending (STOPPED, FAILED). */
int slot_at_rest(const slot *sl);

/* The worker's messages (the channel's callback) and its exit (the proc's
 * callback): they record facts and feed events. */
void slot_on_msg(ipc_chan *ch, nng_msg *msg, void *arg);
void slot_exited(void *owner, int64_t status, int term_signal);

/* ---- actions: the reconciler's alone (slot_act.c) ---- */

/* Starts a new worker: adopts `spare` (a ready standby's process and
 * channel, or NULL) or spawns one listening on url.  Ends in STARTING, or
 * EXITED when the spawn failed (SPAWN_FAILED with the reason). */
void slot_spawn(slot *sl, uv_loop_t *loop, const worker_spec *spec,
                unsigned gen, const char *url, proc *spare_proc,
                ipc_chan *spare_chan, int64_t spare_pid);
/* The swap of a replacement: the incoming worker's process and channel
 * (already READY and through the gate) become the slot's. */
void slot_take_over(slot *sl, proc *p, ipc_chan *chan, int64_t pid,
                    unsigned gen, unsigned lane, uint64_t ready_us,
                    const ipc_health *health, const char *why);
/* Sends STOP (SIGTERM if it cannot be sent) and enters STOPPING. */
void slot_stop(slot *sl, uint64_t timeout_ms);
/* SIGKILLs the process (kill_reason says why, already logged). */
void slot_kill_now(slot *sl);
/* Settles an exited process: closes its channel, lets the proc go. */
void slot_reap(slot *sl);
/* Sends msg (taken) to the worker; CORRAL_ECLOSED without a channel. */
int slot_send(slot *sl, nng_msg *msg);
/* Arms the BACKOFF delay. */
void slot_arm_backoff(slot *sl, uint64_t delay_ms);
/* Pushes the current deadline back by ms (the supervisor itself was
 * stalled and could not have heard the worker). */
void slot_extend_deadline(slot *sl, uint64_t ms);

/* ---- restarts by cause (master/restarts.c) ---- */

/* Why the process that just ended is being restarted: sl->cause when a
 * health action or a reload set it; else hung when the supervisor killed
 * it at its heartbeat or start deadline; crash for any other failure
 * (a signal, a nonzero exit); exit for a clean exit. */
ipc_cause slot_restart_cause(const slot *sl);
/* The reconciler decided to restart the slot (decide(), master/sup.c):
 * counts the restart under its cause and clears sl->cause. */
void slot_count_restart(slot *sl);

#endif
