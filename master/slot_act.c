/*
 * slot_act.c - the actions on a slot that only the supervisor's reconciler
 * performs: spawn (or adopt a standby), stop, kill, reap, send.  Each does
 * the work and then feeds the matching event into the table (slot.c).
 */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "common/log.h"
#include "corral_base.h"
#include "master/slot.h"

void slot_spawn(slot *sl, uv_loop_t *loop, const worker_spec *spec,
                unsigned gen, const char *url, proc *spare_proc,
                ipc_chan *spare_chan, int64_t spare_pid)
{
	char why[512];
	int rc;

	sl->kill_wanted = sl->killed = sl->due = 0;
	sl->kill_reason[0] = '\0';
	sl->have_health = sl->health_new = 0;
	hw_reset(&sl->hw);
	sl->cpu_pct = 0;
	sl->ready_us = 0;
	sl->unclean_stop = 0;
	sl->pid = 0;
	sl->gen = gen;
	slot_event(sl, SLOT_EV_START, "spawning");
	sl->spawned_us = uv_hrtime() / 1000u;

	if (spare_proc) {
		nng_msg *msg = NULL;
		sl->proc = spare_proc;
		sl->chan = spare_chan;
		sl->pid = spare_pid;
		proc_adopt(sl->proc, sl->id, slot_exited, sl);
		ipc_chan_set_handler(sl->chan, slot_on_msg, sl);
		ipc_assign a = {.slot = sl->id};
		rc = ipc_pack_assign(&msg, &a);
		if (!rc)
			rc = ipc_chan_send(sl->chan, msg);
		snprintf(why, sizeof why, "adopted standby worker%s%s",
		         rc ? "; ASSIGN failed: " : "",
		         rc ? corral_strerror(rc) : "");
		slot_event(sl, SLOT_EV_SPAWNED, why);
		if (rc)
			slot_event(sl, SLOT_EV_KILL, "could not assign it");
		return;
	}

	ipc_sockopts so = {.max_frame = IPC_MAX_FRAME, .bufs = 64,
	                   .perms = 0600};
	rc = ipc_chan_listen(&sl->chan, loop, url, &so, slot_on_msg, NULL, sl);
	if (rc) {
		sl->chan = NULL;
		snprintf(why, sizeof why, "cannot listen on %s: %s", url,
		         corral_strerror(rc));
		sl->failed = 1;
		sl->last_uptime_ms = 0;
		slot_event(sl, SLOT_EV_SPAWN_FAILED, why);
		return;
	}
	rc = proc_spawn(loop, spec, sl->id, url, slot_exited, sl, &sl->proc);
	if (rc) {
		ipc_chan_close(sl->chan);
		sl->chan = NULL;
		sl->proc = NULL;
		snprintf(why, sizeof why, "spawn of %s failed: %s",
		         spec->worker_bin, uv_strerror(rc));
		sl->failed = 1;
		sl->last_uptime_ms = 0;
		slot_event(sl, SLOT_EV_SPAWN_FAILED, why);
		return;
	}
	sl->pid = proc_pid(sl->proc);
	snprintf(why, sizeof why, "spawned %s", spec->worker_bin);
	slot_event(sl, SLOT_EV_SPAWNED, why);
}

void slot_take_over(slot *sl, proc *p, ipc_chan *chan, int64_t pid,
                    unsigned gen, unsigned lane, uint64_t ready_us,
                    const ipc_health *health, const char *why)
{
	sl->proc = p;
	sl->chan = chan;
	sl->pid = pid;
	sl->gen = gen;
	sl->lane = lane;
	sl->ready_us = ready_us;
	sl->kill_wanted = sl->killed = 0;
	sl->kill_reason[0] = '\0';
	sl->have_health = health != NULL;
	if (health)
		sl->health = *health;
	sl->health_new = 0;
	hw_reset(&sl->hw);
	sl->cpu_pct = 0;
	proc_adopt(p, sl->id, slot_exited, sl);
	ipc_chan_set_handler(chan, slot_on_msg, sl);
	slot_event(sl, SLOT_EV_SWAPPED, why);
}

int slot_send(slot *sl, nng_msg *msg)
{
	if (!sl->chan) {
		nng_msg_free(msg);
		return CORRAL_ECLOSED;
	}
	return ipc_chan_send(sl->chan, msg);
}

void slot_stop(slot *sl, uint64_t timeout_ms)
{
	char why[128];
	nng_msg *msg = NULL;
	ipc_stop stop = {.timeout_ms = timeout_ms};
	int rc = ipc_pack_stop(&msg, &stop);
	if (!rc)
		rc = slot_send(sl, msg);
	if (rc && sl->proc)
		proc_kill(sl->proc, SIGTERM);
	snprintf(why, sizeof why, "stopping: %s, deadline %" PRIu64 " ms",
	         rc ? "STOP not sent, SIGTERM sent" : "STOP sent", timeout_ms);
	slot_event(sl, SLOT_EV_STOP, why);
}

void slot_kill_now(slot *sl)
{
	if (!sl->proc || sl->killed)
		return;
	log_msg("slot %d pid %" PRId64 ": killing with SIGKILL: %s", sl->id,
	        sl->pid, sl->kill_reason);
	sl->killed = 1;
	proc_kill(sl->proc, SIGKILL);
}

void slot_reap(slot *sl)
{
	sl->proc = NULL; /* let go in the exit callback already */
	if (sl->chan) {
		ipc_chan_close(sl->chan);
		sl->chan = NULL;
	}
	sl->reap = 0;
	sl->kill_wanted = 0;
	sl->have_health = 0;
}

