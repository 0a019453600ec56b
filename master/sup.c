/*
 * sup.c - see sup.h: the supervisor's facts, its one reconciler, and its
 * start-up and teardown.
 *
 * Order of a reconcile pass: the supervisor's own facts first (signals,
 * the broker drained, a drain deadline), because they decide what is
 * wanted of every slot (a worker that exits in the same loop turn as a
 * SIGTERM arrives must not be restarted); then each slot; then the
 * standbys; then what the broker is told; last, whether everything is at
 * rest, which ends in teardown -- from the idle callback, never from inside
 * a callback of something being torn down.
 *
 * Stall detection: a prepare hook notes when the loop goes to poll and for
 * how long it means to; a check hook afterwards sees when poll took far
 * longer than that (the supervisor was SIGSTOPped, or its VM paused).  Such
 * a stall pushes every worker's deadline back by its length, so that
 * silence is judged over time the supervisor was able to listen, and a
 * paused supervisor does not kill healthy workers as hung when it resumes.
 */
#include <assert.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/exitdesc.h"
#include "common/log.h"
#include "common/ratelog.h"
#include "common/rundir.h"
#include "corral_base.h"
#include "master/decision.h" /* tools: explain's decision records */
#include "master/logsink.h"  /* tools: log ring, log_reopen */
#include "master/badframe.h"
#include "master/sup.h"

#define EVENTS_KEPT 4096
#define STALL_MS 250 /* poll overran its timeout by this much: a stall */
#define PIPE_GRACE_MS 1000 /* the end: held output pipes, then closed */
#define STALL_WARN_MS 2000 /* ...and this much is worth a warning */

static uint64_t now_ms(void)
{
	return uv_hrtime() / 1000000u;
}

const char *sup_state_name(sup_state st)
{
	static const char *names[] = {
#define X(name, str) str,
		SUP_STATES(X)
#undef X
	};
	return names[st];
}

static void set_state(sup *s, sup_state to, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_state(sup *s, sup_state to, const char *fmt, ...)
{
	char why[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, sizeof why, fmt, ap);
	va_end(ap);
	if (s->state == to)
		return;
	log_msg("supervisor now %s (was %s): %s", sup_state_name(to),
	        sup_state_name(s->state), why);
	evlog_add(&s->events, "supervisor", -1, getpid(), 0,
	          sup_state_name(s->state), sup_state_name(to), "%s", why);
	s->state = to;
}

static void on_reconcile(uv_idle_t *h);

void sup_dirty(sup *s)
{
	if (s->dirty || s->state == SUP_DONE)
		return;
	s->dirty = 1;
	uv_idle_start(&s->reconcile, on_reconcile);
}

/* ipc://RUNDIR/slot-ID.N: a new name per spawn, because the previous
 * worker's socket may still be closing (in the background) when the next
 * one listens. */
int sup_slot_url(sup *s, slot *sl, char *buf, size_t len)
{
	char leaf[48];
	snprintf(leaf, sizeof leaf, "slot-%d.%u", sl->id, sl->spawns++);
	return rundir_url(s->rundir, leaf, buf, len);
}

/* ---- what slots, standbys, the broker and control report up ---- */

static void hook_dirty(void *owner)
{
	sup_dirty(owner);
}

static void hook_reply(void *owner, slot *sl, const ipc_frame *f)
{
	sup *s = owner;
	if (s->broker)
		broker_on_reply(s->broker, sl->lane, f);
}

static void hook_changed(void *owner, slot *sl, slot_state from,
                         const char *why)
{
	sup *s = owner;
	evlog_add(&s->events, "slot", sl->id, sl->pid, sl->gen,
	          slot_state_name(from), slot_state_name(sl->state), "%s",
	          why);
}

/* Bad frames: counted (status), told of rate-limited (badframe.h). */
static void hook_slot_bad_frame(void *owner, slot *sl, int code)
{
	sup *s = owner;
	char who[64];
	s->bad_frames++;
	snprintf(who, sizeof who, "slot %d pid %" PRId64, sl->id, sl->pid);
	badframes_note(&s->bad, BF_WORKER, who, code);
}

static void hook_standby_bad_frame(void *owner, int code)
{
	sup *s = owner;
	s->bad_frames++;
	badframes_note(&s->bad, BF_WORKER, "standby", code);
}

static void hook_control_bad_frame(void *ctx, int code)
{
	sup *s = ctx;
	s->bad_frames++;
	badframes_note(&s->bad, BF_CONTROL, NULL, code);
}

/* lane < 0: a job client's request; else a worker's REPLY. */
static void hook_jobs_bad_frame(void *ctx, int lane, int code)
{
	sup *s = ctx;
	char who[64];
	s->bad_frames++;
	if (lane < 0) {
		badframes_note(&s->bad, BF_JOBS, NULL, code);
		return;
	}
	snprintf(who, sizeof who, "slot %d (a REPLY)", lane / 2);
	badframes_note(&s->bad, BF_WORKER, who, code);
}

static uint64_t hook_stalled(void *owner);

static const slot_hooks slot_cbs = {
	.stalled = hook_stalled,
	.dirty = hook_dirty,
	.reply = hook_reply,
	.changed = hook_changed,
	.bad_frame = hook_slot_bad_frame,
};

static void hook_standby_changed(void *owner, const standby *sb,
                                 standby_state from, const char *why)
{
	sup *s = owner;
	evlog_add(&s->events, "standby", -1, sb->pid, sb->gen,
	          standby_state_name(from), standby_state_name(sb->state), "%s",
	          why);
}

static const standby_hooks standby_cbs = {
	.dirty = hook_dirty,
	.bad_frame = hook_standby_bad_frame,
	.changed = hook_standby_changed,
};

/* To the worker on lane: the slot's current one, or its outgoing one
 * (cancels for jobs it still holds). */
static int broker_send(void *ctx, unsigned lane, nng_msg *msg)
{
	sup *s = ctx;
	unsigned id = lane / 2;
	slot *sl = id < s->nslots ? s->slots[id] : NULL;
	if (sl && sl->lane == lane)
		return slot_send(sl, msg);
	if (sl && sl->out && sl->out->lane == lane && sl->out->chan)
		return ipc_chan_send(sl->out->chan, msg);
	nng_msg_free(msg);
	return CORRAL_ECLOSED;
}

static uint64_t broker_now(void *ctx)
{
	(void)ctx;
	return now_ms();
}

static void broker_drained(void *ctx)
{
	sup *s = ctx;
	s->drained = 1;
	sup_dirty(s);
}

static const broker_ops broker_cbs = {
	.send = broker_send,
	.now_ms = broker_now,
	.drained = broker_drained,
	.bad_frame = hook_jobs_bad_frame,
};

static int control_status(void *ctx, nng_msg **reply)
{
	return sup_status_reply(ctx, reply);
}

static void control_command(void *ctx, ipc_req *req, const ipc_cmd *cmd)
{
	sup_op_command(ctx, req, cmd);
}

static const control_ops control_cbs = {
	.status = control_status,
	.command = control_command,
	.bad_frame = hook_control_bad_frame,
	.logs = logsink_ring_cb, /* tools: LOGS requests (corralctl logs) */
};

/* ---- signals: record, then reconcile ---- */

static const int sup_signums[SUP_NSIGNALS] = {
#define X(sig, what) sig,
	SUP_SIGNALS(X)
#undef X
};

static const char *signame(int sig)
{
	static char buf[32];
	return sig_name(sig, buf, sizeof buf);
}

static const char *const sup_sigmeanings[SUP_NSIGNALS] = {
#define X(sig, what) what,
	SUP_SIGNALS(X)
#undef X
};

static void on_signal(uv_signal_t *h, int signum)
{
	sup *s = h->data;
	char name[32];
	evlog_add(&s->events, "signal", -1, getpid(), s->gen ? s->gen->gen : 0,
	          "", sig_name(signum, name, sizeof name), "%s",
	          sup_sigmeanings[h - s->sigs]);
	if (signum == SIGTERM || signum == SIGINT || signum == SIGQUIT) {
		if (!s->stop_seen) {
			s->stop_seen = 1;
			s->stop_sig = signum;
		} else if (!s->kill_seen) {
			s->kill_seen = 1;
			s->kill_sig = signum;
		} else {
			log_msg("received %s: already stopping as fast as it "
			        "can", name);
		}
	} else {
		s->pending_signals[h - s->sigs]++;
	}
	sup_dirty(s);
}

static void log_summary(sup *s)
{
	unsigned running = 0, restarts = 0;
	for (unsigned i = 0; i < s->nslots; i++) {
		running += s->slots[i]->state == SLOT_RUNNING;
		restarts += s->slots[i]->restarts;
	}
	broker_stats bs;
	broker_get_stats(s->broker, &bs);
	log_msg("status: %s, %u/%u worker(s) running, %u restart(s); jobs: "
	        "%u queued, %u running, %" PRIu64 " ok, %" PRIu64 " failed",
	        sup_state_name(s->state), running, s->nslots, restarts,
	        bs.queued, bs.inflight, bs.ok, bs.failed);
}

/* Signals other than the stop signals: each is logged and acted on. */
static void handle_other_signals(sup *s)
{
	for (int i = 0; i < s->nsigs; i++) {
		if (!s->pending_signals[i])
			continue;
		s->pending_signals[i] = 0;
		int sig = sup_signums[i];
		switch (sig) {
		case SIGUSR2:
			log_msg("received SIGUSR2: status follows");
			log_summary(s);
			break;
		case SIGUSR1:
			log_reopen(); /* tools: reopens log_file (logsink.h) */
			break;
		default: /* HUP, TTIN, TTOU */
			log_msg("received %s", signame(sig));
			sup_op_signal(s, sig);
			break;
		}
	}
}

/* ---- the reconciler ---- */

static int any_slot_serving(const sup *s)
{
	for (unsigned i = 0; i < s->nslots; i++)
		if (s->slots[i]->state == SLOT_RUNNING ||
		    s->slots[i]->state == SLOT_STARTING)
			return 1;
	return 0;
}

static void on_drain_timer(uv_timer_t *t)
{
	sup *s = t->data;
	s->drain_late = 1;
	sup_dirty(s);
}

static void begin_stopping(sup *s, const char *why)
{
	uv_timer_stop(&s->drain_timer);
	sup_op_abort(s, "the supervisor is stopping");
	for (unsigned i = 0; i < s->nslots; i++)
		s->slots[i]->want = WANT_DOWN;
	set_state(s, SUP_STOPPING, "%s", why);
}

/* The supervisor's own facts: stop and kill requests, the drain. */
static void reconcile_sup(sup *s)
{
	if (s->state == SUP_STARTING) {
		for (unsigned i = 0; i < s->nslots; i++)
			s->slots[i]->want = WANT_UP;
		set_state(s, SUP_RUNNING, "starting %u worker(s)", s->nslots);
	}
	if (s->kill_sig) {
		int sig = s->kill_sig;
		s->kill_sig = s->stop_sig = 0;
		s->fast_stop = 1;
		log_msg("received %s again: killing remaining workers now",
		        signame(sig));
		broker_abort(s->broker);
		for (unsigned i = 0; i < s->nslots; i++) {
			slot *sl = s->slots[i];
			if (sl->proc) {
				s->unclean = 1;
				slot_event(sl, SLOT_EV_KILL,
				           "second shutdown signal");
			}
		}
		s->drained = 1;
		begin_stopping(s, "fast stop: second signal");
		return;
	}
	if (s->stop_sig && s->state == SUP_RUNNING) {
		int sig = s->stop_sig;
		s->stop_sig = 0;
		log_msg("%s%s: stopping %u worker(s), grace %" PRIu64 " ms",
		        sig > 0 ? "received " : "corralctl stop",
		        sig > 0 ? signame(sig) : "", s->nslots,
		        s->cfg->shutdown_timeout_ms);
		set_state(s, SUP_DRAINING, "%s",
		          sig > 0 ? signame(sig) : "corralctl stop");
		sup_op_abort(s, "the supervisor is stopping");
		/* First the jobs: no new ones, the accepted ones finish. */
		if (broker_drain(s->broker)) {
			s->drained = 1;
		} else {
			broker_stats st;
			broker_get_stats(s->broker, &st);
			log_msg("jobs: finishing %u queued and %u running job(s) "
			        "before stopping workers", st.queued, st.inflight);
			uv_timer_start(&s->drain_timer, on_drain_timer,
			               s->cfg->shutdown_timeout_ms, 0);
		}
	}
	if (s->state == SUP_DRAINING) {
		if (!s->drained && (s->drain_late || !any_slot_serving(s))) {
			log_msg("jobs: %s; answering the rest with "
			        "shutting_down", s->drain_late
			            ? "not finished within shutdown_timeout"
			            : "no worker left to finish them");
			broker_abort(s->broker);
			s->drained = 1;
		}
		if (s->drained)
			begin_stopping(s, "jobs done");
	}
}

/* Whether the slot may start a worker now. */
static int may_start(const sup *s, const slot *sl)
{
	return s->state == SUP_RUNNING && sl->want == WANT_UP;
}

static void start_slot(sup *s, slot *sl)
{
	char url[4200], id[GEN_ID_LEN];
	proc *p = NULL;
	ipc_chan *ch = NULL;
	int64_t pid = 0;
	if (sup_slot_url(s, sl, url, sizeof url) != 0) {
		sl->failed = 1;
		slot_event(sl, SLOT_EV_START, "spawning");
		slot_event(sl, SLOT_EV_SPAWN_FAILED, "run directory path too "
		           "long for a socket name");
		return;
	}
	(void)plugin_file_id(s->gen->cfg->plugin, id, sizeof id);
	(void)standby_take(&s->spares, s->gen->gen, id, &p, &ch, &pid);
	slot_spawn(sl, s->loop, &s->gen->spec, s->gen->gen, url, p, ch, pid);
}

/* EXITED: the restart policy decides what comes next. */
static void decide(sup *s, slot *sl)
{
	const config *c = s->cfg;
	char why[256];
	int clean = !sl->failed;
	if (s->state != SUP_RUNNING || sl->want == WANT_DOWN) {
		if (s->state != SUP_RUNNING && sl->failed)
			s->unclean = 1; /* crashed during shutdown */
		slot_event(sl, SLOT_EV_STOP, "not restarted: shutting down");
		return;
	}
	if (sl->have_exit && sl->exit_signal == 0 &&
	    sl->exit_code == CORRAL_EXIT_FATAL && !sl->reap) {
		sl->want = WANT_DOWN;
		slot_event(sl, SLOT_EV_GIVE_UP,
		           "failed: worker reported a fatal error (exit 78, see "
		           "its reason above); not restarting");
	} else if (c->restart == RESTART_NEVER ||
	           (c->restart == RESTART_ON_FAILURE && clean)) {
		sl->want = WANT_DOWN;
		snprintf(why, sizeof why, "%s: not restarting (restart=%s)",
		         clean ? "stopped" : "failed",
		         c->restart == RESTART_NEVER ? "never" : "on-failure");
		slot_event(sl, clean ? SLOT_EV_DONE : SLOT_EV_GIVE_UP, why);
	} else if (crashloop_record(&s->policy, &sl->track, now_ms())) {
		sl->want = WANT_DOWN;
		snprintf(why, sizeof why, "FAILED: crash loop: more than %u "
		         "restarts in %" PRIu64 " ms; not restarting",
		         c->max_restarts, c->restart_window_ms);
		slot_event(sl, SLOT_EV_GIVE_UP, why);
	} else {
		uint64_t d = backoff_next(&s->policy, &sl->track,
		                          sl->last_uptime_ms, (uint32_t)rand());
		sl->restarts++;
		slot_count_restart(sl); /* ops hook: restarts by cause */
		snprintf(why, sizeof why, "restarting in %" PRIu64
		         " ms (restart %u)", d, sl->restarts);
		slot_event(sl, SLOT_EV_RESTART, why);
		slot_arm_backoff(sl, d);
	}
}

/* The slot's latest health report, judged (healthwatch.h): flags that
 * change are events; a verdict that calls for it replaces the worker
 * gracefully, through the same gated replacement as a reload. */
static void watch_health(sup *s, slot *sl)
{
	const config *c = s->cfg;
	hw_limits lim = {.max_memory = c->max_memory,
	                 .leak_window_ms = c->leak_window_ms,
	                 .leak_min_growth = c->leak_min_growth,
	                 .lag_restart_ms = c->lag_restart_ms,
	                 .lag_for_ms = c->lag_restart_for_ms,
	                 .pool_stuck_ms = c->pool_stuck_ms};
	char why[256];
	int was_leaking = sl->hw.leaking, was_stuck = sl->hw.pool_stuck;
	sl->health_new = 0;
	hw_verdict v = hw_observe(&sl->hw, &lim, now_ms(), &sl->health, why,
	                          sizeof why);
	if (sl->hw.leaking != was_leaking) {
		if (sl->hw.leaking)
			log_warn("slot %d pid %" PRId64 ": leaking: %s", sl->id,
			         sl->pid, why);
		evlog_add(&s->events, "health", sl->id, sl->pid, sl->gen,
		          was_leaking ? "leaking" : "ok",
		          sl->hw.leaking ? "leaking" : "ok", "%s",
		          sl->hw.leaking ? why : "RSS no longer growing");
	}
	if (sl->hw.pool_stuck != was_stuck) {
		if (sl->hw.pool_stuck)
			log_warn("slot %d pid %" PRId64 ": a pool task has run "
			         "%" PRIu64 " ms (pool_stuck %" PRIu64 " ms)",
			         sl->id, sl->pid,
			         sl->health.pool.oldest_running_ms,
			         c->pool_stuck_ms);
		evlog_add(&s->events, "health", sl->id, sl->pid, sl->gen,
		          was_stuck ? "pool-stuck" : "ok",
		          sl->hw.pool_stuck ? "pool-stuck" : "ok",
		          "oldest pool task running %" PRIu64 " ms",
		          sl->health.pool.oldest_running_ms);
	}
	if (v == HW_OK || (v == HW_LEAK && !c->leak_restart) ||
	    sl->state != SLOT_RUNNING)
		return;
	sup_op_heal(s, sl, v == HW_MEMORY ? IPC_CAUSE_MEMORY
	                   : v == HW_LAG  ? IPC_CAUSE_LAG
	                                  : IPC_CAUSE_LEAK, why);
}

static void reconcile_slot(sup *s, slot *sl)
{
	if (sl->reap) {
		slot_reap(sl);
		/* Its jobs go back to the queue (or are poison) before
		 * anything else happens to the slot. */
		broker_worker_gone(s->broker, sl->lane);
	}
	if (sl->kill_wanted && sl->proc && !sl->killed) {
		if (sl->state == SLOT_STOPPING)
			s->unclean = 1;
		decision_note(s, sl); /* tools: the kill, for explain */
		slot_kill_now(sl);
	}
	switch (sl->state) {
	case SLOT_EXITED:
		if (!sl->reap)
			decide(s, sl);
		decision_note(s, sl); /* tools: what decide() chose, and why */
		break;
	case SLOT_BACKOFF:
		if (!may_start(s, sl))
			slot_event(sl, SLOT_EV_STOP, "stopped while waiting to "
			           "restart");
		else if (sl->due)
			start_slot(s, sl);
		break;
	case SLOT_STOPPED:
	case SLOT_FAILED: /* FAILED and wanted up: revived by the operator */
		if (may_start(s, sl) && !sl->proc)
			start_slot(s, sl);
		break;
	case SLOT_STARTING:
	case SLOT_RUNNING:
		if (s->state == SUP_STOPPING || sl->want == WANT_DOWN)
			slot_stop(sl, s->cfg->shutdown_timeout_ms);
		else if (sl->health_new)
			watch_health(s, sl);
		break;
	default:
		break;
	}
	if (sl->unclean_stop && s->state == SUP_STOPPING)
		s->unclean = 1;
}

static void reconcile_spares(sup *s)
{
	char id[GEN_ID_LEN];
	standby_want want = SB_WANT_NONE;
	if (s->state == SUP_RUNNING && s->op.kind != OP_SCALE) {
		want = SB_WANT_FILL;
		for (unsigned i = 0; i < s->nslots; i++)
			if (s->slots[i]->state != SLOT_RUNNING)
				want = SB_WANT_HOLD;
	}
	(void)plugin_file_id(s->gen->cfg->plugin, id, sizeof id);
	standby_reconcile(&s->spares, want, s->fast_stop, &s->gen->spec,
	                  s->gen->gen, id, s->rundir,
	                  s->cfg->shutdown_timeout_ms);
}

static void tell_broker(sup *s)
{
	for (unsigned i = 0; i < s->nslots; i++) {
		const slot *sl = s->slots[i];
		int up = sl->state == SLOT_RUNNING && sl->want == WANT_UP &&
		         s->state != SUP_STOPPING;
		broker_worker_set(s->broker, sl->lane, up,
		                  sl->have_health ? sl->health.lag_p99_us : 0);
		if (sl->out)
			broker_worker_set(s->broker, sl->out->lane, 0, 0);
	}
}

static void teardown(sup *s);

/* Whether everything is at rest: the end of a stop, or nothing left. */
static void check_done(sup *s)
{
	int any_failed = 0, all_finished = 1, all_rest = 1;
	for (unsigned i = 0; i < s->nslots; i++) {
		slot *sl = s->slots[i];
		all_finished &= slot_finished(sl);
		all_rest &= slot_at_rest(sl) && sup_op_slot_quiet(s, sl);
		any_failed |= sl->failed || sl->state == SLOT_FAILED;
	}
	if (s->state == SUP_RUNNING && all_finished) {
		s->exit_code = any_failed ? CORRAL_EXIT_FAILED : CORRAL_EXIT_OK;
		log_msg("%s: no worker left to supervise; exiting with code %d",
		        any_failed ? "FAILED" : "done", s->exit_code);
		s->exit_decided = 1;
		broker_drain(s->broker);
		broker_abort(s->broker);
		s->drained = 1;
		begin_stopping(s, "no worker left to supervise");
		return;
	}
	if (s->state != SUP_STOPPING || !all_rest || !standby_idle(&s->spares))
		return;
	if (!s->exit_decided) {
		s->exit_code = s->unclean ? CORRAL_EXIT_KILLED
		                              : CORRAL_EXIT_OK;
		log_msg("stopped: all %u worker(s) down%s", s->nslots,
		        s->unclean ? " (some had to be killed, or crashed "
		                         "while stopping)"
		                       : "");
	}
	set_state(s, SUP_DONE, "exit code %d", s->exit_code);
	if (s->stop_req) {
		sup_op_answer(s, s->stop_req, 1, 0, "stopped (exit code %d)",
		              s->exit_code);
		s->stop_req = NULL;
	}
	teardown(s);
}

/* Our children that are not workers (subreaper, or PID 1): reaped here,
 * so that no zombie piles up under a long-lived supervisor. */
static void reap_strays(sup *s)
{
	if (!s->chld_pending)
		return;
	s->chld_pending = 0;
	unsigned n = proc_reap_strays(0, NULL);
	if (n) {
		s->strays_reaped += n;
		log_debug("reaped %u process(es) that were not workers (%lu "
		          "so far)", n, s->strays_reaped);
	}
}

static void reconcile(sup *s)
{
	handle_other_signals(s);
	reap_strays(s);
	reconcile_sup(s);
	for (unsigned i = 0; i < s->nslots; i++)
		reconcile_slot(s, s->slots[i]);
	sup_op_reconcile(s);
	reconcile_spares(s);
	tell_broker(s);
	check_done(s);
}

static void on_reconcile(uv_idle_t *h)
{
	sup *s = h->data;
	s->dirty = 0;
	uv_idle_stop(h);
	reconcile(s);
}

/* ---- stall detection ----
 *
 * A supervisor that was itself stopped (SIGSTOP, a paused VM) heard
 * nobody meanwhile: the time is taken off its workers' deadlines.  Two
 * places see a stall: the poll (prepare to check) taking longer than its
 * timeout, and a deadline timer finding the loop's last sign of life (the
 * last check or prepare) too far back -- the stop came while callbacks
 * ran, and timers run first when the loop resumes, before the reports
 * that waited in the sockets are read. */

static void note_stall(sup *s, uint64_t stall)
{
	static ratelog rl;
	uint64_t held = 0;
	/* Short ones are a busy machine's scheduling; long ones a SIGSTOP
	 * or a paused VM.  Either way, nobody heard the workers. */
	if (stall < STALL_WARN_MS)
		log_debug("supervisor: its loop ran %" PRIu64 " ms late; worker "
		          "deadlines moved back as much", stall);
	else if (ratelog_ok(&rl, &held))
		log_warn("supervisor: its loop was stalled for %" PRIu64 " ms "
		         "(stopped or paused); worker deadlines moved back as "
		         "much", stall);
	/* Plus STALL_MS: the reports that waited in the sockets reach the
	 * loop only once nng's own threads have run again, which may be
	 * after the loop's first timers. */
	for (unsigned i = 0; i < s->nslots; i++) {
		slot *sl = s->slots[i];
		if (sl->state == SLOT_STARTING || sl->state == SLOT_RUNNING ||
		    sl->state == SLOT_STOPPING)
			slot_extend_deadline(sl, stall + STALL_MS);
	}
	s->alive_ms = now_ms();
}

static void on_before_poll(uv_prepare_t *h)
{
	sup *s = h->data;
	s->poll_start_ms = s->alive_ms = now_ms();
	s->poll_timeout_ms = uv_backend_timeout(s->loop);
}

static void on_after_poll(uv_check_t *h)
{
	sup *s = h->data;
	uint64_t now = now_ms(), took = now - s->poll_start_ms;
	s->alive_ms = now;
	if (s->poll_timeout_ms < 0 ||
	    took <= (uint64_t)s->poll_timeout_ms + STALL_MS)
		return;
	/* The whole poll, not only its overrun: a deadline due at the end
	 * of the poll's timeout was, after a stop, due at once on resume,
	 * before the workers' waiting reports could be read. */
	note_stall(s, took);
}

/* A slot's deadline fired: was it the supervisor that was away?  The
 * stall (0: none), every deadline already moved back by it. */
static uint64_t hook_stalled(void *owner)
{
	sup *s = owner;
	uint64_t now = now_ms();
	if (!s->alive_ms || now < s->alive_ms + STALL_MS)
		return 0;
	uint64_t stall = now - s->alive_ms;
	note_stall(s, stall);
	return stall;
}

/* ---- start-up and teardown ---- */

static void on_sigchld(uv_signal_t *h, int signum)
{
	sup *s = h->data;
	(void)signum;
	s->chld_pending = 1;
	sup_dirty(s);
}

static void on_pipe_timer(uv_timer_t *t)
{
	uv_close((uv_handle_t *)t, NULL);
	((sup *)t->data)->pipe_timer_on = 0;
	log_warn("output of exited workers still held open by what they "
	         "started (kill_mode = process); not waiting for it");
	proc_close_pipes();
}

/* What the workers started, at the very end: killed under kill_mode =
 * group (nothing corral starts outlives it), left under process; their
 * hold on the workers' output pipes is waited on briefly, never for
 * good. */
static void end_children(sup *s)
{
	unsigned killed = 0;
	proc_reap_strays(!s->cfg->kill_process_only, &killed);
	if (killed)
		log_msg("killed %u process(es) the workers had started "
		        "(kill_mode = group)", killed);
	if (!proc_pipes_held())
		return;
	if (uv_timer_init(s->loop, &s->pipe_timer) == 0) {
		s->pipe_timer_on = 1;
		s->pipe_timer.data = s;
		uv_timer_start(&s->pipe_timer, on_pipe_timer, PIPE_GRACE_MS, 0);
		uv_unref((uv_handle_t *)&s->pipe_timer);
	} else {
		proc_close_pipes();
	}
}

static void teardown(sup *s)
{
	s->dirty = 0;
	end_children(s);
	uv_close((uv_handle_t *)&s->sigchld, NULL);
	control_close(s->ctl);
	s->ctl = NULL;
	broker_close(s->broker);
	s->broker = NULL;
	badframes_close(&s->bad);
	uv_close((uv_handle_t *)&s->drain_timer, NULL);
	for (int i = 0; i < s->nsigs; i++)
		uv_close((uv_handle_t *)&s->sigs[i], NULL);
	for (unsigned i = 0; i < s->nslots; i++)
		slot_close(s->slots[i]); /* freed when the loop has ended */
	standby_pool_close(&s->spares);
	uv_close((uv_handle_t *)&s->reconcile, NULL);
	uv_close((uv_handle_t *)&s->before_poll, NULL);
	uv_close((uv_handle_t *)&s->after_poll, NULL);
}

slot *sup_slot_new(sup *s, int id)
{
	slot *sl = calloc(1, sizeof *sl);
	if (!sl)
		return NULL;
	if (slot_init(sl, s->loop, id, &s->policy, &s->timeouts, &slot_cbs,
	              s) != 0) {
		free(sl);
		return NULL;
	}
	sl->lane = sup_lane((unsigned)id, 0);
	return sl;
}

/* The figures sup_init() derives from the configuration: policy,
 * timeouts, how many slots (capped by the open-file limit's room). */
static void init_settings(sup *s, config *cfg, const sup_params *p)
{
	s->cfg = cfg;
	s->params = *p;
	s->state = SUP_STARTING;
	snprintf(s->worker_bin, sizeof s->worker_bin, "%s", p->worker_bin);
	snprintf(s->rundir, sizeof s->rundir, "%s", p->rundir);
	s->params.worker_bin = s->worker_bin;
	s->params.rundir = s->rundir;
	s->policy = (restart_policy){
		.delay_ms = cfg->restart_delay_ms,
		.delay_max_ms = cfg->restart_delay_max_ms,
		.min_uptime_ms = cfg->min_uptime_ms,
		.window_ms = cfg->restart_window_ms,
		.max_restarts = cfg->max_restarts,
	};
	s->timeouts = (slot_timeouts){.start_ms = cfg->start_timeout_ms,
	                              .heartbeat_ms = cfg->heartbeat_timeout_ms,
	                              .shutdown_ms = cfg->shutdown_timeout_ms};
	srand((unsigned)(uv_hrtime() ^ (uint64_t)getpid()));
	s->nslots = cfg->workers ? cfg->workers : uv_available_parallelism();
	if (p->max_slots && s->nslots > p->max_slots) {
		log_warn("running degraded, %u worker(s) instead of %u: %s",
		         p->max_slots, s->nslots,
		         p->cap_reason ? p->cap_reason : "limit");
		s->nslots = p->max_slots;
	}
	if (s->nslots > SUP_MAX_SLOTS)
		s->nslots = SUP_MAX_SLOTS;
}

/* The control socket and the job front end (the broker). */
static int open_sockets(sup *s)
{
	const config *cfg = s->cfg;
	char url[4200];
	int rc;
	if ((rc = rundir_url(s->rundir, "control", url, sizeof url)) ||
	    (rc = control_open(&s->ctl, s->loop, url, &control_cbs, s,
	                       &s->events)))
		return rc;
	broker_config bc = {
		.url = url, .rundir = s->rundir, .nslots = 2 * SUP_MAX_SLOTS,
		.open_hint = s->nslots,
		.max_inflight = cfg->max_inflight, .queue_limit = cfg->queue_limit,
		.queue_limit_bytes = cfg->queue_limit_bytes,
		.max_attempts = cfg->max_attempts,
		.job_timeout_ms = cfg->job_timeout_ms,
		.max_lag_ms = cfg->max_lag_ms};
	if (cfg->jobs_url[0])
		snprintf(url, sizeof url, "%s", cfg->jobs_url);
	else if ((rc = rundir_url(s->rundir, "jobs", url, sizeof url)))
		return rc;
	return broker_open(&s->broker, s->loop, &bc, &broker_cbs, s);
}

/* The loop handles: the reconciler, the drain timer, the stall watch,
 * SIGCHLD (strays) and the operator's signals.  libuv initialises these
 * without allocating: they cannot fail on a valid loop. */
static int init_handles(sup *s)
{
	uv_loop_t *loop = s->loop;
	if (uv_idle_init(loop, &s->reconcile) ||
	    uv_timer_init(loop, &s->drain_timer) ||
	    uv_prepare_init(loop, &s->before_poll) ||
	    uv_check_init(loop, &s->after_poll))
		return CORRAL_ESYS;
	s->reconcile.data = s->drain_timer.data = s;
	s->before_poll.data = s->after_poll.data = s;
	uv_prepare_start(&s->before_poll, on_before_poll);
	uv_check_start(&s->after_poll, on_after_poll);
	uv_unref((uv_handle_t *)&s->before_poll);
	uv_unref((uv_handle_t *)&s->after_poll);
	if (uv_signal_init(loop, &s->sigchld) != 0 ||
	    uv_signal_start(&s->sigchld, on_sigchld, SIGCHLD) != 0)
		return CORRAL_ESYS;
	s->sigchld.data = s;
	uv_unref((uv_handle_t *)&s->sigchld);
	for (int k = 0; k < SUP_NSIGNALS; k++) {
		uv_signal_t *h = &s->sigs[k];
		if (uv_signal_init(loop, h) != 0 ||
		    uv_signal_start(h, on_signal, sup_signums[k]) != 0)
			return CORRAL_ESYS;
		h->data = s;
		s->nsigs = k + 1;
	}
	return 0;
}

int sup_init(sup *s, uv_loop_t *loop, config *cfg, const sup_params *p)
{
	int rc;
	unsigned i = 0;

	memset(s, 0, sizeof *s);
	s->loop = loop;
	init_settings(s, cfg, p);
	worker_spec tmpl = {.worker_bin = s->worker_bin, .cfg = cfg,
	                    .listeners = p->listeners, .user = p->user};
	if (!(s->gen = gen_new(++s->last_gen, cfg, 0, &tmpl)))
		return CORRAL_ENOMEM;
	s->gens[0] = s->gen;
	if ((rc = evlog_init(&s->events, EVENTS_KEPT)))
		goto fail_gen;
	s->slots = calloc(SUP_MAX_SLOTS, sizeof *s->slots);
	if (!s->slots) {
		rc = CORRAL_ENOMEM;
		goto fail_events;
	}
	for (i = 0; i < s->nslots; i++)
		if (!(s->slots[i] = sup_slot_new(s, (int)i))) {
			rc = CORRAL_ENOMEM;
			goto fail_slots;
		}
	if ((rc = standby_pool_init(&s->spares, loop, cfg->standby, &s->policy,
	                            &standby_cbs, s)))
		goto fail_slots;
	if ((rc = badframes_init(&s->bad, loop)))
		goto fail_spares;
	if ((rc = open_sockets(s)) || (rc = init_handles(s)))
		goto fail_sockets;
	return 0;

fail_sockets:
	broker_close(s->broker);
	s->broker = NULL;
	control_close(s->ctl);
	s->ctl = NULL;
	badframes_close(&s->bad);
fail_spares:
	standby_pool_close(&s->spares);
fail_slots:
	while (i-- > 0)
		slot_destroy(s->slots[i]);
	uv_run(loop, UV_RUN_NOWAIT); /* let the handles close */
	free(s->slots);
	s->slots = NULL;
fail_events:
	evlog_free(&s->events);
fail_gen:
	gen_free(s->gen);
	s->gen = NULL;
	return rc;
}

static void remove_sockets(sup *s)
{
	char path[PATH_MAX + 16];
	snprintf(path, sizeof path, "%s/control", s->rundir);
	unlink(path);
	if (!s->cfg->jobs_url[0]) {
		snprintf(path, sizeof path, "%s/jobs", s->rundir);
		unlink(path);
	}
	/* The directory and its lock are main's (rundir_release). */
}

int sup_run(sup *s)
{
	log_msg("supervisor pid %ld: starting %u worker(s) of %s in %s",
	        (long)getpid(), s->nslots, s->cfg->plugin, s->rundir);
	sup_dirty(s);
	uv_run(s->loop, UV_RUN_DEFAULT);
	if (s->pipe_timer_on) {
		uv_close((uv_handle_t *)&s->pipe_timer, NULL);
		uv_run(s->loop, UV_RUN_NOWAIT);
	}
	int stuck = ipc_chan_wait_closed(2000);
	if (stuck)
		log_warn("%d socket(s) still closing inside nng; exiting "
		         "without them", stuck);
	remove_sockets(s);
	for (unsigned i = 0; i < s->nslots; i++)
		free(s->slots[i]);
	free(s->slots);
	s->slots = NULL;
	evlog_free(&s->events);
	for (int i = 0; i < SUP_MAX_GENS; i++) {
		if (s->gens[i] && s->gens[i]->cfg == s->cfg && !s->gens[i]->owned)
			s->cfg = NULL; /* main's: main frees it */
		gen_free(s->gens[i]);
		s->gens[i] = NULL;
	}
	return s->exit_code;
}
