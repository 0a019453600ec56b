/*
 * control.c - the control socket: nng REP at ipc://RUNDIR/control, mode
 * 0600.  One request at a time (a REP reply pairs with the last request);
 * answers are built from the slot table on the loop thread.  A bad request
 * gets an ERROR reply with its code, never silence.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "corral.h"
#include "common/log.h"
#include "common/rundir.h"
#include "master/sup.h"

static void fill_worker(const slot *sl, ipc_worker_status *w, uint64_t now)
{
	memset(w, 0, sizeof *w);
	w->jobs = broker_slot_jobs(sl->sup->broker, sl->id);
	w->degraded = broker_slot_degraded(sl->sup->broker, sl);
	w->slot = sl->id;
	w->pid = sl->proc ? sl->pid : 0;
	snprintf(w->state, sizeof w->state, "%s", slot_state_name(sl->state));
	w->restarts = sl->restarts;
	w->uptime_ms = sl->proc && sl->ready_ms ? now - sl->ready_ms : 0;
	if (sl->have_health) {
		w->rss_bytes = sl->health.rss_bytes;
		w->cpu_pct = sl->cpu_pct;
		w->lag_p50_us = sl->health.lag_p50_us;
		w->lag_p99_us = sl->health.lag_p99_us;
		w->lag_max_us = sl->health.lag_max_us;
		w->util = sl->health.util;
		w->pool = sl->health.pool;
		w->nmetrics = sl->health.nmetrics;
		memcpy(w->metrics, sl->health.metrics,
		       sl->health.nmetrics * sizeof w->metrics[0]);
	}
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

static int build_status(sup *s, nng_msg **reply)
{
	ipc_status st;
	memset(&st, 0, sizeof st);
	snprintf(st.name, sizeof st.name, "%s", s->cfg->name);
	st.pid = getpid();
	snprintf(st.state, sizeof st.state, "%s",
	         s->stopping ? "stopping" : "running");
	st.bad_frames = s->bad_frames;
	broker_stats bs;
	broker_get_stats(s->broker, &bs);
	st.jobs = (ipc_job_stats){
		.queued = bs.queued, .inflight = bs.inflight,
		.accepted = bs.accepted, .ok = bs.ok, .failed = bs.failed,
		.timeouts = bs.timeouts, .busy = bs.busy, .poison = bs.poison,
		.redispatched = bs.redispatched, .late = bs.late_replies};
	st.nworkers = s->nslots;
	st.workers = calloc(s->nslots ? s->nslots : 1, sizeof *st.workers);
	if (!st.workers)
		return CORRAL_ENOMEM;
	uint64_t now = sup_now_ms(s);
	for (unsigned i = 0; i < s->nslots; i++)
		fill_worker(&s->slots[i], &st.workers[i], now);
	int rc = ipc_pack_status(reply, &st);
	free(st.workers);
	return rc;
}

static void on_ctl_msg(ipc_chan *ch, nng_msg *msg, void *arg)
{
	sup *s = arg;
	ipc_frame f;
	nng_msg *reply = NULL;
	int rc = ipc_decode_msg(msg, IPC_MAX_CTL_FRAME, &f);
	if (!rc) {
		if (f.type == IPC_STATUS_REQ)
			rc = build_status(s, &reply);
		else
			rc = CORRAL_ETYPE;
		ipc_frame_fini(&f);
	}
	if (rc) {
		ipc_error e = {.code = rc};
		s->bad_frames++;
		snprintf(e.msg, sizeof e.msg, "bad request: %s",
		         corral_strerror(rc));
		log_msg("control: %s (%s)", e.msg, corral_errname(rc));
		if (ipc_pack_error(&reply, &e) != 0)
			reply = NULL;
	}
	if (reply && (rc = ipc_chan_send(ch, reply)) != 0)
		log_msg("control: cannot send reply: %s", corral_strerror(rc));
	ipc_chan_rearm(ch);
}

int control_open(sup *s)
{
	char url[4200];
	nng_socket sock;
	int rc = rundir_url(s->rundir, "control", url, sizeof url);
	if (rc)
		return rc;
	ipc_sockopts so = {.max_frame = IPC_MAX_CTL_FRAME, .bufs = 8,
	                   .perms = 0600};
	rc = ipc_rep_listen(&sock, url, &so);
	if (rc)
		return rc;
	return ipc_chan_open(&s->ctl, s->loop, sock, IPC_CHAN_ONE_AT_A_TIME,
	                     on_ctl_msg, NULL, s);
}

void control_close(sup *s)
{
	if (s->ctl) {
		ipc_chan_close(s->ctl);
		s->ctl = NULL;
	}
}
