/*
 * standby.h - pre-started workers that make restarts fast.
 *
 * Starting a worker from nothing costs a fork+exec, dynamic linking, nng's
 * thread start-up and the plugin's dlopen: a few milliseconds, most of it
 * before plugin code runs at all.  A standby worker has paid all that and
 * waits (after HELLO, before init) on ipc://RUNDIR/standby-K.  When a slot
 * needs a new worker, the reconciler takes a ready standby and the slot
 * adopts it (ASSIGN, then init and READY as usual).
 *
 * Each standby has one named state; callbacks (HELLO, exit, deadline) only
 * record facts, and standby_reconcile(), called by the supervisor's
 * reconciler, is the only code that starts, stops, kills or reaps them.
 * Failed starts back off like slots (restart_delay doubling to
 * restart_delay_max); a plugin that cannot load (exit 78) or a crash loop
 * turns standbys off, with the reason logged once.
 */
#ifndef MASTER_STANDBY_H
#define MASTER_STANDBY_H

#include <stdint.h>
#include <uv.h>

#include "ipc/chan.h"
#include "ipc/proto.h"
#include "master/policy.h"
#include "master/proc.h"

#define STANDBY_STATES(X)                                                     \
	X(EMPTY, "empty")        /* no process; may be started */             \
	X(STARTING, "starting")  /* spawned, its HELLO not in yet */          \
	X(READY, "ready")        /* waiting for a slot to adopt it */         \
	X(STOPPING, "stopping")  /* told to stop (shutdown) */                \
	X(RETRY, "retry")        /* waiting out a delay after a failure */    \
	X(OFF, "off")            /* disabled for good */

typedef enum standby_state {
#define X(name, str) SB_##name,
	STANDBY_STATES(X)
#undef X
} standby_state;

typedef struct standby {
	int id;
	standby_state state;
	proc *proc;       /* NULL when none */
	ipc_chan *chan;
	int64_t pid;
	int exited;       /* the process ended: reap it */
	int exit_fatal;   /* ...with exit 78: the plugin cannot start */
	int failed;       /* ...unexpectedly */
	int due;          /* the RETRY delay is over */
	int late;         /* the STOPPING deadline passed: kill */
	unsigned gen;     /* the generation it was started for */
	char plugin_id[64]; /* the plugin file it loaded (gen.h) */
	restart_track track;
	uv_timer_t timer; /* retry delay, or kill deadline when stopping */
	struct standby_pool *pool;
} standby;

typedef struct standby_hooks {
	void (*dirty)(void *owner);        /* reconcile on this loop turn */
	void (*bad_frame)(void *owner, int code);
	/* a standby moved from one state to another (the event log) */
	void (*changed)(void *owner, const standby *sb, standby_state from,
	                const char *why);
} standby_hooks;

typedef struct standby_pool {
	uv_loop_t *loop;
	standby *spares;
	unsigned n;
	unsigned names;    /* names standby sockets uniquely */
	unsigned closing;  /* timers still closing at teardown */
	int off;           /* disabled: see off_reason */
	char off_reason[160];
	const restart_policy *policy;
	const standby_hooks *hooks;
	void *owner;
} standby_pool;

const char *standby_state_name(standby_state st);

int standby_pool_init(standby_pool *p, uv_loop_t *loop, unsigned n,
                      const restart_policy *pol, const standby_hooks *hooks,
                      void *owner);
void standby_pool_close(standby_pool *p);

/* What the supervisor wants of its standbys right now. */
typedef enum standby_want {
	SB_WANT_FILL, /* every slot runs: keep the pool full */
	SB_WANT_HOLD, /* keep the ready ones, start none (a slot is starting) */
	SB_WANT_NONE, /* shutting down: stop them all */
} standby_want;

/*
 * The reconciler's step for standbys: reaps the exited, kills those past
 * their deadline (or all, when kill_now), then does what `want` says
 * (stopping is STOP, then SIGKILL after stop_ms).
 */
void standby_reconcile(standby_pool *p, standby_want want, int kill_now,
                       const worker_spec *spec, unsigned gen,
                       const char *plugin_id, const char *rundir,
                       uint64_t stop_ms);

/* Hands over a ready standby's process and channel, if one is ready that
 * was started for gen and loaded the plugin file as it is now on disk
 * (plugin_id): 1, else 0.  One that does not match is retired (stopped
 * on the next reconcile, and replaced by one that does). */
int standby_take(standby_pool *p, unsigned gen, const char *plugin_id,
                 proc **pr, ipc_chan **ch, int64_t *pid);
/* No standby has a process. */
int standby_idle(const standby_pool *p);

#endif
