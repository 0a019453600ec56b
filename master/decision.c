/* decision.c - see decision.h. */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "master/decision.h"
#include "master/sup.h"

#define LOOK_BACK 64 /* events searched for the transition decided */

/* A kill's trigger, when one of the slot's deadlines passed: how long the
 * worker was silent (running), not ready (starting) or not gone
 * (stopping), against its limit. */
static void kill_trigger(const slot *sl, const slot_timeouts *to,
                         uint64_t now_ms, ipc_decision *d)
{
	const char *fig = NULL;
	uint64_t v = 0, lim = 0;
	switch (sl->state) {
	case SLOT_RUNNING: {
		uint64_t from = sl->health.pid == sl->pid && sl->health_ms
		                    ? sl->health_ms
		                    : sl->ready_us / 1000u;
		fig = "silent_ms";
		v = now_ms > from ? now_ms - from : 0;
		lim = to->heartbeat_ms;
		break;
	}
	case SLOT_STARTING:
		fig = "starting_ms";
		v = now_ms - sl->spawned_us / 1000u;
		lim = to->start_ms;
		break;
	case SLOT_STOPPING:
		fig = "stopping_ms";
		v = now_ms - sl->state_since_ms;
		lim = to->shutdown_ms;
		break;
	default:
		break;
	}
	/* The real slot's timer: on its own clock (the loop's, from when
	 * it was armed), so that a kill at the deadline reads as at least
	 * its limit; the figures above are for a slot without a loop. */
	if (fig && sl->timer.loop && sl->deadline_from_ms) {
		uint64_t now = uv_now(sl->timer.loop);
		v = now > sl->deadline_from_ms ? now - sl->deadline_from_ms : 0;
	}
	/* Below its limit, the figure was not why (a second signal, an
	 * operator): no trigger. */
	if (fig && v >= lim) {
		snprintf(d->figure, sizeof d->figure, "%s", fig);
		d->value = (double)v;
		d->limit = (double)lim;
	}
}

const char *decision_read(const slot *sl, const restart_policy *p,
                          const slot_timeouts *to, int shutting_down,
                          uint64_t now_ms, ipc_decision *d)
{
	const char *act;
	memset(d, 0, sizeof *d);
	d->exit_code = -1;
	if (sl->kill_wanted && sl->proc && !sl->killed)
		act = "kill";
	else if (sl->state == SLOT_BACKOFF)
		act = "restart";
	else if (sl->state == SLOT_FAILED)
		act = "give-up";
	else if (sl->state == SLOT_STOPPED)
		act = shutting_down ? "stop" : "done";
	else
		return NULL;
	snprintf(d->action, sizeof d->action, "%s", act);

	if (act[0] == 'k') {
		d->uptime_ms = sl->ready_us ? now_ms - sl->ready_us / 1000u : 0;
		kill_trigger(sl, to, now_ms, d);
	} else {
		/* The exit it follows (none after a failed spawn). */
		if (sl->have_exit && sl->pid) {
			if (sl->exit_signal) {
				const char *ab = sigabbrev_np(sl->exit_signal);
				snprintf(d->exit_signal, sizeof d->exit_signal,
				         "SIG%s", ab ? ab : "?");
			} else {
				d->exit_code = sl->exit_code;
			}
		}
		d->uptime_ms = sl->last_uptime_ms;
	}
	if (sl->state == SLOT_BACKOFF && !(act[0] == 'k')) {
		d->backoff_ms = sl->backoff_ms;
		d->backoff_base_ms = sl->track.base_ms;
	}
	d->consecutive = sl->track.consecutive;
	d->restart_delay_ms = p->delay_ms;
	d->restart_delay_max_ms = p->delay_max_ms;
	d->min_uptime_ms = p->min_uptime_ms;
	d->restarts_used = crashloop_count(p, &sl->track, now_ms);
	d->max_restarts = p->max_restarts;
	d->window_ms = p->window_ms;
	d->health_age_ms = UINT64_MAX;
	if (sl->pid && sl->health.pid == sl->pid && sl->health_ms) {
		d->health_age_ms = now_ms - sl->health_ms;
		d->lag_p99_us = sl->health.lag_p99_us;
		d->rss_bytes = sl->health.rss_bytes;
		d->cpu_pct = sl->cpu_pct;
	}
	return act;
}

void decision_note(struct sup *s, const slot *sl)
{
	ipc_decision d;
	uint64_t now = uv_hrtime() / 1000000u;
	const char *act = decision_read(sl, &s->policy, &s->timeouts,
	                                s->state != SUP_RUNNING, now, &d);
	if (!act)
		return;
	if (strcmp(act, "kill") == 0) {
		evlog_add_decision(&s->events, sl->id, sl->pid, sl->gen,
		                   slot_state_name(sl->state), act, &d, "%s",
		                   sl->kill_reason);
		return;
	}
	/* The reason is the one the transition just logged. */
	const ipc_event *e = evlog_latest(&s->events, "slot", sl->id,
	                                  LOOK_BACK);
	evlog_add_decision(&s->events, sl->id, sl->pid, sl->gen, "exited",
	                   act, &d, "%s", e ? e->why : act);
}
