/*
 * slot.c - the worker slot state machine and the restart decisions.
 *
 * Events reach a slot from four places, all on the loop thread: the process
 * exit callback (slot_on_exit), messages on its pair socket (on_slot_msg),
 * its one deadline timer (on_slot_timer), and the supervisor (slot_start,
 * slot_stop, slot_kill).  Each handler decides the next state and calls
 * slot_transition(), the only writer of sl->state, which logs the change.
 */
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "corral.h"
#include "common/log.h"
#include "master/sup.h"

const char *slot_state_name(slot_state st)
{
	switch (st) {
#define X(name, str)                                                          \
	case SLOT_##name:                                                     \
		return str;
		SLOT_STATES(X)
#undef X
	}
	return "?";
}

int slot_is_terminal(const slot *sl)
{
	return (sl->state == SLOT_STOPPED || sl->state == SLOT_FAILED) &&
	       !sl->proc;
}

void slot_transition(slot *sl, slot_state to, const char *fmt, ...)
{
	char why[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, sizeof why, fmt, ap);
	va_end(ap);
	uint64_t now = sup_now_ms(sl->sup);
	log_msg("slot %d pid %" PRId64 ": %s -> %s: %s (%s for %" PRIu64 " ms)",
	        sl->id, sl->pid, slot_state_name(sl->state),
	        slot_state_name(to), why, slot_state_name(sl->state),
	        now - sl->state_since_ms);
	sl->state = to;
	sl->state_since_ms = now;
}

static void arm(slot *sl, uint64_t ms, uv_timer_cb cb)
{
	uv_timer_start(&sl->timer, cb, ms, 0);
}

static const char *signame(int sig, char *buf, size_t len)
{
	const char *abbrev = sigabbrev_np(sig);
	if (abbrev)
		snprintf(buf, len, "SIG%s", abbrev);
	else
		snprintf(buf, len, "signal %d", sig);
	return buf;
}

static void on_slot_timer(uv_timer_t *t);

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
	if (sl->state == SLOT_RUNNING)
		arm(sl, sl->sup->cfg->heartbeat_timeout_ms, on_slot_timer);
}

static void on_slot_msg(ipc_chan *ch, nng_msg *msg, void *arg)
{
	slot *sl = arg;
	ipc_frame f;
	int rc = ipc_decode_msg(msg, IPC_MAX_FRAME, &f);
	if (rc)
		goto bad;

	ipc_hello hello;
	ipc_health health;
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
		break;
	case IPC_READY:
		if (sl->state != SLOT_STARTING)
			break;
		sl->ready_us = uv_hrtime() / 1000u;
		sl->ready_ms = sl->ready_us / 1000u;
		slot_transition(sl, SLOT_RUNNING, "ready in %.2f ms",
		                (double)(sl->ready_us - sl->spawned_us) / 1000.0);
		arm(sl, sl->sup->cfg->heartbeat_timeout_ms, on_slot_timer);
		standby_maybe_start(sl->sup);
		broker_on_ready(sl->sup->broker);
		break;
	case IPC_REPLY:
		broker_on_reply(sl->sup->broker, sl, &f);
		break;
	case IPC_HEALTH:
		if ((rc = ipc_unpack_health(&f, &health)) == 0) {
			on_health(sl, &health);
			broker_on_ready(sl->sup->broker); /* lag may be back */
		}
		break;
	default:
		rc = CORRAL_ETYPE;
		break;
	}
	ipc_frame_fini(&f);
	if (!rc)
		return;
bad:
	sl->sup->bad_frames++;
	log_msg("slot %d pid %" PRId64 ": dropped a bad frame: %s (%s)",
	        sl->id, sl->pid, corral_errname(rc), corral_strerror(rc));
}

/* ---- lifecycle ---- */

static void restart_or_give_up(slot *sl, int clean, uint64_t uptime_ms);

static void slot_exited(void *owner, int64_t status, int term_signal)
{
	slot_on_exit(owner, status, term_signal);
}

/* Takes over a ready standby worker, if there is one: its process and
 * channel become the slot's, and ASSIGN makes it run init. */
static int adopt_standby(slot *sl)
{
	sup *s = sl->sup;
	nng_msg *msg = NULL;
	if (!standby_take(s, &sl->proc, &sl->chan, &sl->pid))
		return 0;
	proc_adopt(sl->proc, sl->id, slot_exited, sl);
	ipc_chan_set_handler(sl->chan, on_slot_msg, sl);
	ipc_assign a = {.slot = sl->id};
	int rc = ipc_pack_assign(&msg, &a);
	if (!rc)
		rc = ipc_chan_send(sl->chan, msg);
	slot_transition(sl, SLOT_STARTING, "adopted standby worker%s%s",
	                rc ? "; ASSIGN failed: " : "",
	                rc ? corral_strerror(rc) : "");
	arm(sl, s->cfg->start_timeout_ms, on_slot_timer);
	if (rc)
		slot_kill(sl, "could not assign it");
	return 1;
}

/* Spawning is synchronous: it ends in STARTING or, via EXITED, in the
 * restart decision. */
static void slot_spawn(slot *sl)
{
	sup *s = sl->sup;
	char url[4200];
	nng_socket sock;
	int rc;

	sl->kill_reason = NULL;
	sl->have_health = 0;
	sl->cpu_pct = 0;
	sl->ready_ms = 0;
	sl->pid = 0;
	slot_transition(sl, SLOT_SPAWNING, "spawning");
	sl->spawned_us = uv_hrtime() / 1000u;
	sl->spawned_ms = sl->spawned_us / 1000u;
	if (adopt_standby(sl))
		return;

	sup_slot_url(s, sl->id, sl->spawns++, url, sizeof url);
	ipc_sockopts so = {.max_frame = IPC_MAX_FRAME, .bufs = 64,
	                   .perms = 0600};
	rc = ipc_pair_listen(&sock, url, &so);
	if (!rc)
		rc = ipc_chan_open(&sl->chan, s->loop, sock, 0, on_slot_msg,
		                   NULL, sl);
	if (rc) {
		slot_transition(sl, SLOT_EXITED, "cannot listen on %s: %s", url,
		                corral_strerror(rc));
		restart_or_give_up(sl, 0, 0);
		return;
	}
	rc = proc_spawn(s, sl->id, url, slot_exited, sl, &sl->proc);
	if (rc) {
		ipc_chan_close(sl->chan);
		sl->chan = NULL;
		slot_transition(sl, SLOT_EXITED, "spawn of %s failed: %s",
		                s->worker_bin, uv_strerror(rc));
		restart_or_give_up(sl, 0, 0);
		return;
	}
	sl->pid = proc_pid(sl->proc);
	slot_transition(sl, SLOT_STARTING, "spawned %s", s->worker_bin);
	arm(sl, s->cfg->start_timeout_ms, on_slot_timer);
}

static void on_slot_timer(uv_timer_t *t)
{
	slot *sl = t->data;
	config *c = sl->sup->cfg;
	static char why[128];

	switch (sl->state) {
	case SLOT_STARTING:
		snprintf(why, sizeof why, "not ready within %" PRIu64 " ms",
		         c->start_timeout_ms);
		slot_kill(sl, why);
		break;
	case SLOT_RUNNING:
		snprintf(why, sizeof why,
		         "hung: no health report for %" PRIu64 " ms",
		         c->heartbeat_timeout_ms);
		slot_kill(sl, why);
		break;
	case SLOT_STOPPING:
		sl->sup->had_to_kill = 1;
		snprintf(why, sizeof why, "did not stop within %" PRIu64 " ms",
		         c->shutdown_timeout_ms);
		slot_kill(sl, why);
		break;
	case SLOT_BACKOFF:
		slot_spawn(sl);
		break;
	default:
		break;
	}
}

static void restart_or_give_up(slot *sl, int clean, uint64_t uptime_ms)
{
	sup *s = sl->sup;
	config *c = s->cfg;
	sl->failed = !clean;

	if (sl->want == WANT_DOWN) {
		slot_transition(sl, SLOT_STOPPED, "stopped");
	} else if (sl->have_exit && sl->exit_signal == 0 &&
	           sl->exit_code == CORRAL_EXIT_FATAL) {
		sl->failed = 1;
		slot_transition(sl, SLOT_FAILED,
		                "failed: worker reported a fatal error (exit "
		                "78, see its reason above); not restarting");
	} else if (c->restart == RESTART_NEVER ||
	           (c->restart == RESTART_ON_FAILURE && clean)) {
		slot_transition(sl, clean ? SLOT_STOPPED : SLOT_FAILED,
		                "%s: not restarting (restart=%s)",
		                clean ? "stopped" : "failed",
		                c->restart == RESTART_NEVER ? "never"
		                                            : "on-failure");
	} else if (crashloop_record(&s->policy, &sl->track, sup_now_ms(s))) {
		sl->failed = 1;
		slot_transition(sl, SLOT_FAILED,
		                "FAILED: crash loop: more than %u restarts in "
		                "%" PRIu64 " ms; not restarting",
		                c->max_restarts, c->restart_window_ms);
	} else {
		uint64_t d = backoff_next(&s->policy, &sl->track, uptime_ms,
		                          (uint32_t)rand());
		sl->restarts++;
		slot_transition(sl, SLOT_BACKOFF, "restarting in %" PRIu64
		                " ms (restart %u)", d, sl->restarts);
		arm(sl, d, on_slot_timer);
		return;
	}
	sup_check_done(s);
}

void slot_on_exit(slot *sl, int64_t status, int term_signal)
{
	char desc[256], sb[32];
	uint64_t now = sup_now_ms(sl->sup);
	uint64_t uptime = sl->ready_ms ? now - sl->ready_ms : 0;

	proc_detach(sl->proc);
	sl->proc = NULL;
	if (sl->chan) {
		ipc_chan_close(sl->chan);
		sl->chan = NULL;
	}
	uv_timer_stop(&sl->timer);
	/* Its jobs go back to the queue (or are poison) before anything
	 * else happens to the slot. */
	broker_on_worker_gone(sl->sup->broker, sl);
	sl->have_exit = 1;
	sl->exit_signal = term_signal;
	sl->exit_code = term_signal ? -1 : (int)status;
	sl->have_health = 0;
	int clean = !term_signal && status == 0;

	if (term_signal)
		snprintf(desc, sizeof desc, "killed by signal %s%s%s%s",
		         signame(term_signal, sb, sizeof sb),
		         sl->kill_reason ? " (" : "",
		         sl->kill_reason ? sl->kill_reason : "",
		         sl->kill_reason ? ")" : "");
	else
		snprintf(desc, sizeof desc, "exited with code %d",
		         (int)status);

	if (sl->state == SLOT_STOPPING || sl->want == WANT_DOWN) {
		sl->failed = sl->kill_reason != NULL;
		slot_transition(sl, SLOT_STOPPED, "%s", desc);
		sup_check_done(sl->sup);
		return;
	}
	slot_transition(sl, SLOT_EXITED, "%s after %" PRIu64 " ms up", desc,
	                uptime);
	restart_or_give_up(sl, clean, uptime);
}

void slot_kill(slot *sl, const char *reason)
{
	if (!sl->proc)
		return;
	log_msg("slot %d pid %" PRId64 ": killing with SIGKILL: %s", sl->id,
	        sl->pid, reason);
	sl->kill_reason = reason;
	proc_kill(sl->proc, SIGKILL);
}

void slot_start(slot *sl)
{
	sl->want = WANT_UP;
	slot_spawn(sl);
}

void slot_stop(slot *sl)
{
	config *c = sl->sup->cfg;
	nng_msg *msg = NULL;
	sl->want = WANT_DOWN;
	switch (sl->state) {
	case SLOT_STARTING:
	case SLOT_RUNNING: {
		ipc_stop stop = {.timeout_ms = c->shutdown_timeout_ms};
		int rc = ipc_pack_stop(&msg, &stop);
		if (!rc)
			rc = ipc_chan_send(sl->chan, msg);
		slot_transition(sl, SLOT_STOPPING,
		                "stopping: %s, deadline %" PRIu64 " ms",
		                rc ? "STOP not sent, SIGTERM sent" : "STOP sent",
		                c->shutdown_timeout_ms);
		if (rc)
			proc_kill(sl->proc, SIGTERM);
		arm(sl, c->shutdown_timeout_ms, on_slot_timer);
		break;
	}
	case SLOT_BACKOFF:
		uv_timer_stop(&sl->timer);
		slot_transition(sl, SLOT_STOPPED, "stopped while waiting to "
		                "restart");
		break;
	default:
		break;
	}
}

int slot_init(slot *sl, sup *s, int id)
{
	memset(sl, 0, sizeof *sl);
	sl->sup = s;
	sl->id = id;
	sl->state = SLOT_STOPPED;
	sl->want = WANT_DOWN;
	sl->exit_code = -1;
	sl->state_since_ms = sup_now_ms(s);
	int rc = restart_track_init(&sl->track, &s->policy);
	if (rc)
		return rc;
	if (uv_timer_init(s->loop, &sl->timer) != 0) {
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
