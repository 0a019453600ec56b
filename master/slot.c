/*
 * slot.c - see slot.h: the lifecycle table, the worker's messages and its
 * exit.  The reconciler's actions are in slot_act.c (a test can replace
 * them with fakes and drive the reconciler without processes).
 *
 * Every state change goes through slot_event(), which reads the one table
 * below.  An entry is the next state and an effect; the effects are only
 * bookkeeping (arm or disarm the state's deadline, record that a kill is
 * wanted and why, that a process is to be reaped, that a delay is over).
 * What starts, stops, kills or reaps is done by the owner's reconciler
 * through the action functions, which then feed their event in.
 */
#include <assert.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/exitdesc.h"
#include "common/log.h"
#include "corral_base.h"
#include "master/slot.h"

typedef enum effect {
	E_ILLEGAL = 0, /* the zero entry: not legal in this state */
	E_NONE,
	E_ARM_START,   /* spawned: start_timeout to become ready */
	E_ARM_BEAT,    /* ready, or a report: heartbeat_timeout of silence */
	E_ARM_STOP,    /* STOP sent: shutdown_timeout to exit */
	E_DISARM,      /* the state's deadline no longer applies */
	E_REAP,        /* the process is gone: settle it */
	E_NOT_READY,   /* start deadline passed: kill */
	E_HUNG,        /* heartbeat deadline passed: kill */
	E_STOP_LATE,   /* shutdown deadline passed: kill */
	E_KILL,        /* kill at once (the reconciler's reason) */
	E_DUE,         /* the restart delay is over */
} effect;

typedef struct entry {
	slot_state next;
	effect eff;
} entry;

#define T(st, ev, nx, ef) [SLOT_##st][SLOT_EV_##ev] = {SLOT_##nx, E_##ef}

static const entry table[SLOT_NSTATES][SLOT_NEVENTS] = {
	T(SPAWNING, SPAWNED, STARTING, ARM_START),
	T(SPAWNING, SPAWN_FAILED, EXITED, NONE),

	T(STARTING, HELLO, STARTING, NONE),
	T(STARTING, READY, RUNNING, ARM_BEAT),
	T(STARTING, HEALTH, STARTING, NONE),
	T(STARTING, EXIT, EXITED, REAP),
	T(STARTING, TIMEOUT, STARTING, NOT_READY),
	T(STARTING, STOP, STOPPING, ARM_STOP),
	T(STARTING, KILL, STARTING, KILL),

	T(RUNNING, HEALTH, RUNNING, ARM_BEAT),
	T(RUNNING, EXIT, EXITED, REAP),
	T(RUNNING, TIMEOUT, RUNNING, HUNG),
	T(RUNNING, STOP, STOPPING, ARM_STOP),
	T(RUNNING, KILL, RUNNING, KILL),
	T(RUNNING, SWAPPED, RUNNING, ARM_BEAT),

	/* A worker told to stop may still be finishing its start-up. */
	T(STOPPING, HELLO, STOPPING, NONE),
	T(STOPPING, READY, STOPPING, NONE),
	T(STOPPING, HEALTH, STOPPING, NONE),
	T(STOPPING, EXIT, STOPPED, REAP),
	T(STOPPING, TIMEOUT, STOPPING, STOP_LATE),
	T(STOPPING, STOP, STOPPING, NONE),
	T(STOPPING, KILL, STOPPING, KILL),

	T(STOPPED, START, SPAWNING, NONE),
	T(STOPPED, STOP, STOPPED, NONE),
	T(STOPPED, HEALTH, STOPPED, NONE), /* sent just before it exited */

	T(EXITED, RESTART, BACKOFF, NONE),
	T(EXITED, GIVE_UP, FAILED, NONE),
	T(EXITED, DONE, STOPPED, NONE),
	T(EXITED, STOP, STOPPED, NONE),
	T(EXITED, HEALTH, EXITED, NONE),

	T(BACKOFF, TIMEOUT, BACKOFF, DUE),
	T(BACKOFF, START, SPAWNING, DISARM),
	T(BACKOFF, STOP, STOPPED, DISARM),
	T(BACKOFF, HEALTH, BACKOFF, NONE),

	/* A FAILED slot starts again only when the operator asks. */
	T(FAILED, START, SPAWNING, NONE),
	T(FAILED, STOP, FAILED, NONE),
	T(FAILED, HEALTH, FAILED, NONE),
};

#undef T

const char *slot_state_name(slot_state st)
{
	static const char *names[] = {
#define X(name, str) str,
		SLOT_STATES(X)
#undef X
	};
	return (unsigned)st < SLOT_NSTATES ? names[st] : "?";
}

const char *slot_event_name(slot_ev ev)
{
	static const char *names[] = {
#define X(name, str) str,
		SLOT_EVENTS(X)
#undef X
	};
	return (unsigned)ev < SLOT_NEVENTS ? names[ev] : "?";
}

static uint64_t now_ms(void)
{
	return uv_hrtime() / 1000000u;
}

static void arm(slot *sl, uint64_t ms);

/* A deadline that passed while the supervisor itself was stopped is not
 * the worker's: it runs again for as long as the stall lasted. */
static void on_timer(uv_timer_t *t)
{
	slot *sl = t->data;
	uint64_t stall = sl->hooks->stalled ? sl->hooks->stalled(sl->owner)
	                                    : 0;
	if (stall && (sl->state == SLOT_STARTING ||
	              sl->state == SLOT_RUNNING ||
	              sl->state == SLOT_STOPPING)) {
		arm(sl, stall);
		return;
	}
	slot_event(sl, SLOT_EV_TIMEOUT, NULL);
}

static void arm(slot *sl, uint64_t ms)
{
	uv_timer_start(&sl->timer, on_timer, ms, 0);
}

static void want_kill(slot *sl, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void want_kill(slot *sl, const char *fmt, ...)
{
	if (sl->kill_wanted || !sl->proc)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(sl->kill_reason, sizeof sl->kill_reason, fmt, ap);
	va_end(ap);
	sl->kill_wanted = 1;
}

static void apply(slot *sl, effect eff, const char *why)
{
	const slot_timeouts *to = sl->to;
	switch (eff) {
	case E_ARM_START:
	case E_ARM_BEAT:
	case E_ARM_STOP:
		/* On the timer's own clock: what a kill's trigger is measured
		 * from (master/decision.c). */
		sl->deadline_from_ms = uv_now(sl->timer.loop);
		arm(sl, eff == E_ARM_START  ? to->start_ms
		        : eff == E_ARM_BEAT ? to->heartbeat_ms
		                            : to->shutdown_ms);
		break;
	case E_DISARM:
		uv_timer_stop(&sl->timer);
		break;
	case E_REAP:
		uv_timer_stop(&sl->timer);
		sl->reap = 1;
		break;
	case E_NOT_READY:
		want_kill(sl, "not ready within %" PRIu64 " ms", to->start_ms);
		break;
	case E_HUNG:
		want_kill(sl, "hung: no health report for %" PRIu64 " ms",
		          to->heartbeat_ms);
		break;
	case E_STOP_LATE:
		sl->unclean_stop = 1;
		want_kill(sl, "did not stop within %" PRIu64 " ms",
		          to->shutdown_ms);
		break;
	case E_KILL:
		want_kill(sl, "%s", why ? why : "killed");
		break;
	case E_DUE:
		sl->due = 1;
		break;
	case E_NONE:
	case E_ILLEGAL:
		break;
	}
}

int slot_event(slot *sl, slot_ev ev, const char *why)
{
	assert((unsigned)ev < SLOT_NEVENTS && (unsigned)sl->state < SLOT_NSTATES);
	const entry *e = &table[sl->state][ev];
	if (e->eff == E_ILLEGAL) {
		log_warn("slot %d pid %" PRId64 ": ignored event %s in state %s",
		         sl->id, sl->pid, slot_event_name(ev),
		         slot_state_name(sl->state));
		return -1;
	}
	slot_state from = sl->state;
	if (e->next != from) {
		uint64_t now = now_ms();
		log_msg("slot %d pid %" PRId64 ": %s -> %s: %s (%s for %" PRIu64
		        " ms)", sl->id, sl->pid, slot_state_name(from),
		        slot_state_name(e->next), why ? why : slot_event_name(ev),
		        slot_state_name(from), now - sl->state_since_ms);
		sl->state = e->next;
		sl->state_since_ms = now;
	}
	apply(sl, e->eff, why);
	if (e->next != from && sl->hooks->changed)
		sl->hooks->changed(sl->owner, sl, from,
		                   why ? why : slot_event_name(ev));
	if (e->eff != E_NONE || e->next != from)
		sl->hooks->dirty(sl->owner);
	return 0;
}

int slot_finished(const slot *sl)
{
	return !sl->proc && (sl->state == SLOT_FAILED ||
	                     (sl->state == SLOT_STOPPED && sl->want == WANT_DOWN));
}

int slot_at_rest(const slot *sl)
{
	return !sl->proc && !sl->reap &&
	       (sl->state == SLOT_STOPPED || sl->state == SLOT_FAILED);
}

/* ---- messages from the worker ---- */

static void on_health(slot *sl, const ipc_health *h)
{
	if (sl->have_health && h->uptime_ms > sl->health.uptime_ms &&
	    h->cpu_us >= sl->health.cpu_us) {
		double dt_us = (double)(h->uptime_ms - sl->health.uptime_ms) *
		               1000.0;
		sl->cpu_pct = 100.0 * (double)(h->cpu_us - sl->health.cpu_us) /
		              dt_us;
	}
	sl->health = *h;
	sl->have_health = 1;
	sl->health_ms = now_ms();
	sl->health_new = 1; /* the reconciler judges it (healthwatch.h) */
	sl->hooks->dirty(sl->owner);
}

void slot_on_msg(ipc_chan *ch, nng_msg *msg, void *arg)
{
	slot *sl = arg;
	ipc_frame f;
	ipc_hello hello;
	ipc_health health;
	(void)ch;
	int rc = ipc_decode_msg(msg, IPC_MAX_FRAME, &f);
	if (rc) {
		sl->hooks->bad_frame(sl->owner, sl, rc);
		return;
	}
	switch (f.type) {
	case IPC_HELLO:
		if ((rc = ipc_unpack_hello(&f, &hello)))
			break;
		if (hello.slot != sl->id || hello.pid != sl->pid) {
			rc = CORRAL_EFIELD;
			break;
		}
		log_msg("slot %d pid %" PRId64 ": hello: plugin '%s' abi %u",
		        sl->id, sl->pid, hello.plugin, hello.abi);
		slot_event(sl, SLOT_EV_HELLO, NULL);
		break;
	case IPC_READY: {
		char why[64];
		sl->ready_us = uv_hrtime() / 1000u;
		snprintf(why, sizeof why, "ready in %.2f ms",
		         (double)(sl->ready_us - sl->spawned_us) / 1000.0);
		slot_event(sl, SLOT_EV_READY, why);
		break;
	}
	case IPC_REPLY:
		sl->hooks->reply(sl->owner, sl, &f);
		break;
	case IPC_HEALTH:
		if ((rc = ipc_unpack_health(&f, &health)) == 0) {
			on_health(sl, &health);
			slot_event(sl, SLOT_EV_HEALTH, NULL);
		}
		break;
	default:
		rc = CORRAL_ETYPE;
		break;
	}
	ipc_frame_fini(&f);
	if (rc)
		sl->hooks->bad_frame(sl->owner, sl, rc);
}

/* The proc's exit callback: record the facts, nothing else. */
void slot_exited(void *owner, int64_t status, int term_signal)
{
	slot *sl = owner;
	char desc[256];
	uint64_t up_ms = sl->ready_us ? (uv_hrtime() / 1000u - sl->ready_us) /
	                                    1000u
	                              : 0;
	sl->proc = NULL; /* gone; the proc frees itself */
	sl->have_exit = 1;
	sl->last_uptime_ms = up_ms;
	sl->exit_signal = term_signal;
	sl->exit_code = term_signal ? -1 : (int)status;
	sl->failed = term_signal || status != 0;
	/* SIGTERM while we were stopping it anyway: the operator's stop
	 * reached it too (a process group, systemd's control group) before
	 * its handler was up or after it was down.  Not a crash. */
	if (sl->state == SLOT_STOPPING && term_signal == SIGTERM && !sl->killed)
		sl->failed = 0;
	exit_desc((int)status, term_signal, desc, sizeof desc);
	if (term_signal && sl->killed) {
		size_t n = strlen(desc);
		snprintf(desc + n, sizeof desc - n, " (%s)", sl->kill_reason);
	}
	if (sl->state == SLOT_STOPPING) {
		if (sl->failed)
			sl->unclean_stop = 1;
	} else {
		size_t n = strlen(desc);
		snprintf(desc + n, sizeof desc - n, " after %" PRIu64 " ms up",
		         up_ms);
	}
	slot_event(sl, SLOT_EV_EXIT, desc);
}

void slot_arm_backoff(slot *sl, uint64_t delay_ms)
{
	sl->due = 0;
	sl->backoff_ms = delay_ms;
	arm(sl, delay_ms);
}

void slot_extend_deadline(slot *sl, uint64_t ms)
{
	if (uv_is_active((uv_handle_t *)&sl->timer))
		arm(sl, uv_timer_get_due_in(&sl->timer) + ms);
}

int slot_init(slot *sl, uv_loop_t *loop, int id, const restart_policy *pol,
              const slot_timeouts *to, const slot_hooks *hooks, void *owner)
{
	memset(sl, 0, sizeof *sl);
	sl->id = id;
	sl->state = SLOT_STOPPED;
	sl->want = WANT_DOWN;
	sl->exit_code = -1;
	sl->state_since_ms = now_ms();
	sl->to = to;
	sl->hooks = hooks;
	sl->owner = owner;
	int rc = restart_track_init(&sl->track, pol);
	if (rc)
		return rc;
	if (uv_timer_init(loop, &sl->timer) != 0) {
		restart_track_fini(&sl->track);
		return CORRAL_ESYS;
	}
	sl->timer.data = sl;
	return 0;
}

void slot_close(slot *sl)
{
	uv_close((uv_handle_t *)&sl->timer, NULL);
	restart_track_fini(&sl->track);
}

static void slot_freed(uv_handle_t *h)
{
	free(h->data);
}

void slot_destroy(slot *sl)
{
	assert(!sl->proc && !sl->in && !sl->out);
	uv_close((uv_handle_t *)&sl->timer, slot_freed);
	restart_track_fini(&sl->track);
}
