/*
 * xworker.h - a slot's second worker while it is being replaced: the
 * incoming one (started for the target generation while the old one still
 * serves; READY, then healthy through the gate) or the outgoing one (the
 * old one after the swap, draining: the jobs it holds finish, then it
 * exits).  Each has its own socket, process and broker lane.
 *
 * Callbacks (messages, the exit, the deadline) only record facts and ask
 * the owner to reconcile; the supervisor's reconciler (master/sup_ops.c)
 * decides and calls the actions.  Loop thread only.
 */
#ifndef MASTER_XWORKER_H
#define MASTER_XWORKER_H

#include <stdint.h>
#include <uv.h>

#include "ipc/chan.h"
#include "ipc/proto.h"
#include "master/proc.h"

typedef enum xw_phase {
	XW_STARTING, /* spawned, READY not yet in */
	XW_GATING,   /* READY: must stay healthy until the gate is over */
	XW_DRAINING, /* outgoing: STOP sent, waiting for its exit */
} xw_phase;

typedef struct xworker xworker;

typedef struct xworker_hooks {
	void (*dirty)(void *owner);
	void (*reply)(void *owner, xworker *x, const ipc_frame *f);
	void (*bad_frame)(void *owner, int code);
} xworker_hooks;

struct xworker {
	int slot;
	unsigned gen, lane;
	xw_phase phase;
	proc *proc;        /* NULL once it exited */
	ipc_chan *chan;
	int64_t pid;
	uint64_t spawned_us, ready_us;

	/* Facts, for the reconciler. */
	int exited, exit_code, exit_signal, fatal; /* exit code 78 */
	int late;          /* its phase's deadline passed */
	int armed;         /* the gate's timer is running */
	int killed;
	int have_health;
	ipc_health health;
	uint64_t health_ms; /* when the last report came (loop time) */

	uv_timer_t timer;
	uv_loop_t *loop;
	const xworker_hooks *hooks;
	void *owner;
};

/* An incoming worker for slot, listening on url, started from spec.  0,
 * or a corral_err with why filled (nothing left behind). */
int xw_spawn(xworker **out, uv_loop_t *loop, const worker_spec *spec,
             int slot, unsigned gen, unsigned lane, const char *url,
             uint64_t start_timeout_ms, const xworker_hooks *hooks,
             void *owner, char *why, size_t whylen);

/* An outgoing worker: takes over a slot's process and channel (the slot
 * lets go of them), sends STOP and arms the kill deadline. */
xworker *xw_take(uv_loop_t *loop, int slot, unsigned gen, unsigned lane,
                 proc *p, ipc_chan *chan, int64_t pid, uint64_t stop_ms,
                 const xworker_hooks *hooks, void *owner);

/* The gate: from READY, the incoming one must stay up for gate_ms. */
void xw_arm(xworker *x, uint64_t ms);
/* Tells it to stop (STOP; SIGTERM if that cannot be sent), deadline ms. */
void xw_stop(xworker *x, uint64_t ms);
void xw_kill(xworker *x);
/* Hands the process and channel over (to the slot, at the swap): the
 * xworker keeps neither. */
void xw_release(xworker *x, proc **p, ipc_chan **chan);
/* Frees it; its channel (if still held) is closed.  Its process must have
 * exited or been handed over. */
void xw_free(xworker *x);

#endif
