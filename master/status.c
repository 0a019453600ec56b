/*
 * status.c - the supervisor's view of itself, its slots and its jobs: one
 * snapshot (ipc_status) that the STATUS reply (`corralctl status`) and the
 * metrics endpoint (master/metrics.c) are both built from.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "corral_base.h"
#include "ipc/guard.h"
#include "master/sup.h"

static void fill_worker(const sup *s, const slot *sl, ipc_worker_status *w,
                        uint64_t now_us)
{
	memset(w, 0, sizeof *w);
	w->jobs = broker_slot_jobs(s->broker, (unsigned)sl->id);
	w->degraded = broker_slot_degraded(s->broker, (unsigned)sl->id);
	w->slot = sl->id;
	w->pid = sl->proc ? sl->pid : 0;
	snprintf(w->state, sizeof w->state, "%s", slot_state_name(sl->state));
	w->gen = sl->gen;
	w->restarts = sl->restarts;
#define CAUSE(X, name, str)                                                   \
	w->restarts_##str = sl->restarts_by[IPC_CAUSE_##name];
	IPC_RESTART_CAUSES(CAUSE, _)
#undef CAUSE
	w->uptime_ms = sl->proc && sl->ready_us ? (now_us - sl->ready_us) / 1000u
	                                        : 0;
	if (sl->have_health) {
		w->cpu_pct = sl->cpu_pct;
		w->health = sl->health;
	}
	w->leaking = sl->hw.leaking;
	w->leak_bps = sl->hw.slope_bps;
	w->pool_stuck = sl->hw.pool_stuck;
	w->exit_code = -1;
	if (sl->have_exit) {
		if (sl->exit_signal) {
			const char *ab = sigabbrev_np(sl->exit_signal);
			snprintf(w->exit_signal, sizeof w->exit_signal, "SIG%s",
			         ab ? ab : "?");
		} else {
			w->exit_code = sl->exit_code;
		}
	}
}

int sup_status_fill(sup *s, ipc_status *st)
{
	memset(st, 0, sizeof *st);
	snprintf(st->name, sizeof st->name, "%s", s->cfg->name);
	st->pid = getpid();
	snprintf(st->state, sizeof st->state, "%s", sup_state_name(s->state));
	st->bad_frames = s->bad_frames;
	if (s->gen) {
		st->gen = s->gen->gen;
		snprintf(st->plugin, sizeof st->plugin, "%.500s",
		         s->gen->cfg->plugin);
		snprintf(st->plugin_id, sizeof st->plugin_id, "%s",
		         s->gen->plugin_id);
	}
	snprintf(st->op, sizeof st->op, "%s", s->op.kind ? s->op.what : "");
	snprintf(st->last_op, sizeof st->last_op, "%s", s->last_op);
	snprintf(st->jobs_url, sizeof st->jobs_url, "%s", broker_url(s->broker));
	st->heals = ipc_guard_heals();
	st->slow_readers = ipc_srv_slow_readers();
	broker_stats bs;
	broker_get_stats(s->broker, &bs);
	st->jobs = (ipc_job_stats){
		.queued = bs.queued, .inflight = bs.inflight,
		.accepted = bs.accepted, .ok = bs.ok, .failed = bs.failed,
		.timeouts = bs.timeouts, .busy = bs.busy, .poison = bs.poison,
		.redispatched = bs.redispatched, .late = bs.late_replies};
	st->nworkers = s->nslots;
	st->workers = calloc(s->nslots ? s->nslots : 1, sizeof *st->workers);
	if (!st->workers)
		return CORRAL_ENOMEM;
	uint64_t now_us = uv_hrtime() / 1000u;
	for (unsigned i = 0; i < s->nslots; i++)
		fill_worker(s, s->slots[i], &st->workers[i], now_us);
	return 0;
}

int sup_status_reply(sup *s, nng_msg **reply)
{
	ipc_status st;
	int rc = sup_status_fill(s, &st);
	if (rc == 0)
		rc = ipc_pack_status(reply, &st);
	ipc_status_free(&st);
	return rc;
}
