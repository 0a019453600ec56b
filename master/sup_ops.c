/*
 * sup_ops.c - what an operator asks of a running supervisor: reload,
 * restart, scale and stop (corralctl, or SIGHUP, SIGTTIN, SIGTTOU).  One
 * command at a time; another is refused with the reason while one runs,
 * and each is answered only once it has finished or failed.
 *
 * Reload and restart are a rolling, gated replacement: for one slot at a
 * time (reload_parallel), an incoming worker of the target generation is
 * started beside the one that serves, on the slot's other broker lane; it
 * must become READY within start_timeout and then stay healthy for
 * reload_gate (no exit, health reports arriving, lag p99 below max_lag).
 * Then the swap: the old worker stops getting jobs and is told to stop
 * (its jobs finish; it is the outgoing worker until it exits) and the new
 * one takes the slot.  If a new worker fails at any step, the rollout
 * stops: incoming workers are killed, and the slots already moved are
 * replaced again, the same way, by the old generation ("rolled back").
 *
 * Like the rest of the supervisor: the xworkers' callbacks only record
 * facts; sup_op_reconcile() is called from the reconciler and acts.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/exitdesc.h"
#include "common/log.h"
#include "common/ratelog.h"
#include "corral_base.h"
#include "master/notify.h"
#include "master/sup.h"

static uint64_t now_ms(void)
{
	return uv_hrtime() / 1000000u;
}

static const char *op_name(sup_op_kind k)
{
	switch (k) {
	case OP_RELOAD:
		return "reload";
	case OP_RESTART:
		return "restart";
	case OP_SCALE:
		return "scale";
	case OP_STOP:
		return "stop";
	default:
		return "none";
	}
}

/* ---- the xworkers' facts ---- */

static void xw_dirty(void *owner)
{
	sup_dirty(owner);
}

static void xw_reply(void *owner, xworker *x, const ipc_frame *f)
{
	sup *s = owner;
	if (s->broker)
		broker_on_reply(s->broker, x->lane, f);
}

static void xw_bad_frame(void *owner, int code)
{
	sup *s = owner;
	(void)code;
	s->bad_frames++;
}

static const xworker_hooks xw_cbs = {
	.dirty = xw_dirty,
	.reply = xw_reply,
	.bad_frame = xw_bad_frame,
};

/* ---- answering ---- */

void sup_op_answer(sup *s, ipc_req *req, int ok, int code, const char *fmt,
                   ...)
{
	ipc_cmd_result r = {.ok = ok, .code = code};
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(r.msg, sizeof r.msg, fmt, ap);
	va_end(ap);
	if (ok)
		log_msg("%s", r.msg);
	else
		log_warn("%s", r.msg);
	snprintf(s->last_op, sizeof s->last_op, "%.500s", r.msg);
	uint64_t id = req && req == s->op.req     ? s->op.cmd_id
	              : req && req == s->stop_req ? s->stop_id
	                                          : s->cmd_now;
	if (req && id) {
		s->done_id = id;
		s->done = r;
	}
	if (req)
		control_answer(req, &r);
}

/*
 * nng's REQ sends a request again when its connection closed before the
 * answer (a listener healed, a network blip): the same command, same id,
 * on a new connection.  It joins the command in progress (whose answer
 * goes to the new connection), or gets the answer already given; it is
 * never run twice.  1 when cmd was such a resend and is dealt with.
 */
static int resent(sup *s, ipc_req *req, const ipc_cmd *cmd)
{
	ipc_req **where = NULL;
	if (!cmd->id)
		return 0;
	if (s->op.kind != OP_NONE && s->op.req && cmd->id == s->op.cmd_id)
		where = &s->op.req;
	else if (s->stop_req && cmd->id == s->stop_id)
		where = &s->stop_req;
	if (where) {
		ipc_cmd_result r = {.ok = 0, .code = CORRAL_ECANCELED};
		snprintf(r.msg, sizeof r.msg, "answered on the client's new "
		         "connection");
		control_answer(*where, &r); /* its connection is gone */
		*where = req;
		log_debug("%s: resent by its client; answering the new request",
		          cmd->cmd);
		return 1;
	}
	if (cmd->id == s->done_id) {
		control_answer(req, &s->done);
		return 1;
	}
	return 0;
}

static void op_event(sup *s, int id, int64_t pid, unsigned gen,
                     const char *from, const char *to, const char *fmt, ...)
    __attribute__((format(printf, 7, 8)));

static void op_event(sup *s, int id, int64_t pid, unsigned gen,
                     const char *from, const char *to, const char *fmt, ...)
{
	char why[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, sizeof why, fmt, ap);
	va_end(ap);
	evlog_add(&s->events, op_name(s->op.kind), id, pid, gen, from, to,
	          "%s", why);
}

/* The command in progress ends: answered, forgotten. */
static void op_end(sup *s, int ok, int code, const char *msg)
{
	op_event(s, -1, 0, s->gen ? s->gen->gen : 0, "",
	         ok ? "done" : "failed", "%s", msg);
	if (s->op.kind == OP_RELOAD)
		notify_reloaded(ok); /* systemd: READY=1 again */
	sup_op_answer(s, s->op.req, ok, code, "%s", msg);
	free(s->op.pick);
	memset(&s->op, 0, sizeof s->op);
	sup_gens_gc(s);
}

void sup_op_abort(sup *s, const char *why)
{
	if (s->op.kind == OP_NONE)
		return;
	char msg[600];
	snprintf(msg, sizeof msg, "%s interrupted: %s", s->op.what, why);
	if (s->op.kind == OP_RELOAD && s->op.from && !s->op.back) {
		/* Not rolled out: what restarts from now on is the old. */
		s->gen = s->op.from;
		s->cfg = s->gen->cfg;
	}
	for (unsigned i = 0; i < s->nslots; i++)
		if (s->slots[i]->in)
			xw_kill(s->slots[i]->in);
	op_end(s, 0, CORRAL_ESHUTDOWN, msg);
}

/* ---- generations ---- */

static int gen_in_use(const sup *s, const gen_spec *g)
{
	if (g == s->gen || g == s->op.target || g == s->op.from)
		return 1;
	for (unsigned i = 0; i < s->nslots; i++) {
		const slot *sl = s->slots[i];
		if ((sl->proc && sl->gen == g->gen) ||
		    (sl->in && sl->in->gen == g->gen) ||
		    (sl->out && sl->out->gen == g->gen))
			return 1;
	}
	return 0;
}

void sup_gens_gc(sup *s)
{
	for (int i = 0; i < SUP_MAX_GENS; i++)
		if (s->gens[i] && s->gens[i]->owned &&
		    !gen_in_use(s, s->gens[i])) {
			gen_free(s->gens[i]);
			s->gens[i] = NULL;
		}
}

static int gen_keep(sup *s, gen_spec *g)
{
	sup_gens_gc(s);
	for (int i = 0; i < SUP_MAX_GENS; i++)
		if (!s->gens[i]) {
			s->gens[i] = g;
			return 0;
		}
	return CORRAL_ENOSPC;
}

/* The supervisor-wide settings a reload may change. */
static void apply_policy(sup *s, const config *c)
{
	unsigned old_max = s->policy.max_restarts;
	s->policy = (restart_policy){
		.delay_ms = c->restart_delay_ms,
		.delay_max_ms = c->restart_delay_max_ms,
		.min_uptime_ms = c->min_uptime_ms,
		.window_ms = c->restart_window_ms,
		.max_restarts = c->max_restarts,
	};
	s->timeouts = (slot_timeouts){.start_ms = c->start_timeout_ms,
	                              .heartbeat_ms = c->heartbeat_timeout_ms,
	                              .shutdown_ms = c->shutdown_timeout_ms};
	if (old_max == c->max_restarts)
		return;
	/* The crash-loop ring is sized by max_restarts: start it over. */
	for (unsigned i = 0; i < s->nslots; i++) {
		restart_track t;
		if (restart_track_init(&t, &s->policy) == 0) {
			restart_track_fini(&s->slots[i]->track);
			s->slots[i]->track = t;
		}
	}
}

/* Keys fixed while corral runs: a reload that changes one is refused. */
static const char *fixed_key(const config *a, const config *b)
{
	if (strcmp(a->name, b->name))
		return "name";
	if (strcmp(a->rundir, b->rundir))
		return "rundir";
	if (strcmp(a->jobs_url, b->jobs_url))
		return "jobs";
	if (strcmp(a->user, b->user))
		return "user";
	if (strcmp(a->group, b->group))
		return "group";
	if (a->nlisten != b->nlisten)
		return "listen";
	for (size_t i = 0; i < a->nlisten; i++)
		if (strcmp(a->listen[i], b->listen[i]))
			return "listen";
	if (a->workers != b->workers)
		return "workers (use corralctl scale)";
	if (a->standby != b->standby)
		return "standby";
	if (a->max_inflight != b->max_inflight)
		return "max_inflight";
	if (a->queue_limit != b->queue_limit)
		return "queue_limit";
	if (a->job_timeout_ms != b->job_timeout_ms)
		return "job_timeout";
	if (a->max_attempts != b->max_attempts)
		return "max_attempts";
	if (a->max_lag_ms != b->max_lag_ms)
		return "max_lag";
	return NULL;
}

/* ---- starting commands ---- */

static void start_reload(sup *s, ipc_req *req, const char *config_path,
                         const char *plugin)
{
	char err[1024];
	config *nc = calloc(1, sizeof *nc);
	if (!nc) {
		sup_op_answer(s, req, 0, CORRAL_ENOMEM, "reload: out of memory");
		return;
	}
	if (!s->params.reread) {
		free(nc);
		sup_op_answer(s, req, 0, CORRAL_ESTATE, "reload: this corral "
		              "was started without a way to re-read its "
		              "configuration");
		return;
	}
	int rc = s->params.reread(s->params.reread_arg, config_path, plugin,
	                          nc, err, sizeof err);
	const char *fixed = rc ? NULL : fixed_key(s->cfg, nc);
	if (rc || fixed) {
		if (fixed)
			snprintf(err, sizeof err, "%s cannot change while corral "
			         "runs: restart corral for that", fixed);
		config_free(nc);
		free(nc);
		sup_op_answer(s, req, 0, CORRAL_ECONFIG, "reload refused, "
		              "nothing changed: %s", err);
		return;
	}
	gen_spec *g = gen_new(s->last_gen + 1, nc, 1, &s->gen->spec);
	if (!g || !g->plugin_id[0] || gen_keep(s, g) != 0) {
		const char *why = !g ? "out of memory"
		                  : !g->plugin_id[0] ? "cannot read the plugin"
		                                     : "too many generations "
		                                       "still running";
		if (g)
			gen_free(g);
		else {
			config_free(nc);
			free(nc);
		}
		sup_op_answer(s, req, 0, CORRAL_ESTATE, "reload refused: %s",
		              why);
		return;
	}
	s->last_gen++;
	s->op = (sup_op){.kind = OP_RELOAD, .req = req, .cmd_id = s->cmd_now,
	                 .started_ms = now_ms(), .target = g,
	                 .from = s->gen};
	snprintf(s->op.what, sizeof s->op.what, "reload to generation %u "
	         "(%.200s)", g->gen, g->cfg->plugin);
	op_event(s, -1, 0, g->gen, "", "started", "%s", s->op.what);
	log_msg("%s: started", s->op.what);
	notify_reloading(); /* systemd: RELOADING=1 */
	s->gen = g;
	s->cfg = g->cfg;
	apply_policy(s, s->cfg);
	sup_dirty(s);
}

static void start_restart(sup *s, ipc_req *req, const ipc_cmd *cmd)
{
	unsigned char *pick = NULL;
	int all = cmd->nargs == 0;
	for (uint32_t i = 0; i < cmd->nargs; i++)
		if (strcmp(cmd->args[i], "all") == 0)
			all = 1;
	if (!all) {
		pick = calloc(s->nslots, 1);
		if (!pick) {
			sup_op_answer(s, req, 0, CORRAL_ENOMEM,
			              "restart: out of memory");
			return;
		}
		for (uint32_t i = 0; i < cmd->nargs; i++) {
			char *end;
			unsigned long n = strtoul(cmd->args[i], &end, 10);
			if (!cmd->args[i][0] || *end || n >= s->nslots) {
				free(pick);
				sup_op_answer(s, req, 0, CORRAL_EINVAL,
				              "restart: no slot '%s' (slots are "
				              "0..%u, or all)", cmd->args[i],
				              s->nslots - 1);
				return;
			}
			pick[n] = 1;
		}
	}
	s->op = (sup_op){.kind = OP_RESTART, .req = req, .cmd_id = s->cmd_now,
	                 .started_ms = now_ms(), .target = s->gen,
	                 .from = s->gen, .pick = pick};
	snprintf(s->op.what, sizeof s->op.what, "restart of %s",
	         all ? "every slot" : "the slots named");
	/* A FAILED slot comes back, its restart budget reset. */
	for (unsigned i = 0; i < s->nslots; i++) {
		slot *sl = s->slots[i];
		if ((all || pick[i]) && sl->state == SLOT_FAILED) {
			restart_track t;
			if (restart_track_init(&t, &s->policy) == 0) {
				restart_track_fini(&sl->track);
				sl->track = t;
			}
			sl->want = WANT_UP;
			log_msg("slot %d: revived by restart", sl->id);
		}
	}
	op_event(s, -1, 0, s->gen->gen, "", "started", "%s", s->op.what);
	sup_dirty(s);
}

void sup_op_heal(sup *s, slot *sl, ipc_cause reason, const char *why)
{
	static ratelog spent_rl;
	uint64_t held = 0, now = now_ms();
	if (s->state != SUP_RUNNING || s->op.kind != OP_NONE || sl->in ||
	    sl->out)
		return;
	if (crashloop_count(&s->policy, &sl->track, now) >=
	    s->cfg->max_restarts) {
		if (ratelog_ok(&spent_rl, &held))
			log_warn("slot %d pid %" PRId64 ": %s; not replacing it: "
			         "its restart budget is spent (max_restarts %u "
			         "in %" PRIu64 " s; %" PRIu64 " such lines held "
			         "back)", sl->id, sl->pid, why,
			         s->cfg->max_restarts,
			         s->cfg->restart_window_ms / 1000, held);
		return;
	}
	unsigned char *pick = calloc(s->nslots, 1);
	if (!pick)
		return; /* the next report asks again */
	pick[sl->id] = 1;
	(void)crashloop_record(&s->policy, &sl->track, now);
	s->op = (sup_op){.kind = OP_RESTART, .started_ms = now,
	                 .target = s->gen, .from = s->gen, .pick = pick,
	                 .heal = 1, .reason = reason};
	snprintf(s->op.what, sizeof s->op.what, "%s replacement of slot %d",
	         ipc_cause_name(reason), sl->id);
	log_warn("slot %d pid %" PRId64 ": %s: replacing it gracefully", sl->id,
	         sl->pid, why);
	evlog_add(&s->events, "health", sl->id, sl->pid, sl->gen, "",
	          ipc_cause_name(reason), "%s", why);
	op_event(s, -1, 0, s->gen->gen, "", "started", "%s", s->op.what);
	sup_dirty(s);
}

static void start_scale(sup *s, ipc_req *req, const char *arg)
{
	char *end;
	long n = strtol(arg, &end, 10);
	long to = (arg[0] == '+' || arg[0] == '-') ? (long)s->nslots + n : n;
	if (!arg[0] || *end || to < 1 || to > SUP_MAX_SLOTS) {
		sup_op_answer(s, req, 0, CORRAL_EINVAL, "scale: '%s' is not N, "
		              "+N or -N giving 1..%d workers (now %u)", arg,
		              SUP_MAX_SLOTS, s->nslots);
		return;
	}
	if ((unsigned)to == s->nslots) {
		sup_op_answer(s, req, 1, 0, "scale: already %u worker(s)",
		              s->nslots);
		return;
	}
	unsigned from = s->nslots;
	if ((unsigned)to > from) {
		for (unsigned i = from; i < (unsigned)to; i++) {
			slot *sl = sup_slot_new(s, (int)i);
			if (!sl) {
				while (i-- > from)
					slot_destroy(s->slots[i]);
				sup_op_answer(s, req, 0, CORRAL_ENOMEM,
				              "scale: out of memory");
				return;
			}
			sl->want = WANT_UP;
			s->slots[i] = sl;
		}
		s->nslots = (unsigned)to;
	} else {
		for (unsigned i = (unsigned)to; i < from; i++)
			s->slots[i]->want = WANT_DOWN;
	}
	s->op = (sup_op){.kind = OP_SCALE, .req = req, .cmd_id = s->cmd_now,
	                 .started_ms = now_ms(), .scale_to = (unsigned)to};
	snprintf(s->op.what, sizeof s->op.what, "scale from %u to %ld "
	         "worker(s)", from, to);
	op_event(s, -1, 0, s->gen->gen, "", "started", "%s", s->op.what);
	log_msg("%s: started", s->op.what);
	sup_dirty(s);
}

void sup_op_command(sup *s, ipc_req *req, const ipc_cmd *cmd)
{
	if (resent(s, req, cmd))
		return;
	s->cmd_now = cmd->id;
	if (strcmp(cmd->cmd, "stop") == 0) {
		if (s->stop_req || s->state >= SUP_STOPPING) {
			sup_op_answer(s, req, 1, 0, "already stopping");
			return;
		}
		s->stop_req = req;
		s->stop_id = cmd->id;
		if (!s->stop_seen) {
			s->stop_seen = 1;
			s->stop_sig = -1; /* corralctl stop */
		}
		sup_dirty(s);
		return;
	}
	if (s->state != SUP_RUNNING) {
		sup_op_answer(s, req, 0, CORRAL_ESHUTDOWN, "%s refused: the "
		              "supervisor is %s", cmd->cmd,
		              sup_state_name(s->state));
		return;
	}
	if (s->op.kind != OP_NONE) {
		sup_op_answer(s, req, 0, CORRAL_ESTATE, "%s refused: %s is in "
		              "progress (started %" PRIu64 " ms ago)", cmd->cmd,
		              s->op.what, now_ms() - s->op.started_ms);
		return;
	}
	if (strcmp(cmd->cmd, "reload") == 0) {
		const char *cfgpath = NULL, *plugin = NULL;
		for (uint32_t i = 0; i < cmd->nargs; i++) {
			if (strncmp(cmd->args[i], "config=", 7) == 0)
				cfgpath = cmd->args[i] + 7;
			else if (strncmp(cmd->args[i], "plugin=", 7) == 0)
				plugin = cmd->args[i] + 7;
			else {
				sup_op_answer(s, req, 0, CORRAL_EINVAL,
				              "reload: unknown argument '%s'",
				              cmd->args[i]);
				return;
			}
		}
		start_reload(s, req, cfgpath, plugin);
	} else if (strcmp(cmd->cmd, "restart") == 0) {
		start_restart(s, req, cmd);
	} else if (strcmp(cmd->cmd, "scale") == 0 && cmd->nargs == 1) {
		start_scale(s, req, cmd->args[0]);
	} else {
		sup_op_answer(s, req, 0, CORRAL_EINVAL, "unknown command '%s'",
		              cmd->cmd);
	}
}

void sup_op_signal(sup *s, int signum)
{
	if (s->state != SUP_RUNNING)
		return;
	if (s->op.kind != OP_NONE) {
		log_warn("%s ignored: %s is in progress",
		         signum == SIGHUP ? "reload" : "scale", s->op.what);
		return;
	}
	s->cmd_now = 0;
	if (signum == SIGHUP)
		start_reload(s, NULL, NULL, NULL);
	else
		start_scale(s, NULL, signum == SIGTTIN ? "+1" : "-1");
}

/* ---- the rollout ---- */

static int picked(const sup *s, unsigned i)
{
	return !s->op.pick || (i < s->nslots && s->op.pick[i]);
}

/* Where a failure of the rollout's current direction is written: the
 * forward error starts the rollback; the rollback's own ends it. */
static char *op_err(sup *s)
{
	return s->op.back ? s->op.back_error : s->op.error;
}

/* Starts an incoming worker of the target generation for sl. */
static void start_incoming(sup *s, slot *sl)
{
	char url[4200], why[4400];
	gen_spec *g = s->op.back ? s->op.from : s->op.target;
	unsigned lane = sl->lane ^ 1;
	if (sup_slot_url(s, sl, url, sizeof url) != 0) {
		snprintf(op_err(s), sizeof s->op.error, "slot %d: run "
		         "directory path too long", sl->id);
		return;
	}
	int rc = xw_spawn(&sl->in, s->loop, &g->spec, sl->id, g->gen, lane,
	                  url, s->timeouts.start_ms, &xw_cbs, s, why,
	                  sizeof why);
	if (rc) {
		sl->in = NULL;
		snprintf(op_err(s), sizeof s->op.error, "slot %d: %.480s",
		         sl->id, why);
		return;
	}
	op_event(s, sl->id, sl->in->pid, g->gen, "", "starting",
	         "slot %d: new worker pid %" PRId64 " for generation %u",
	         sl->id, sl->in->pid, g->gen);
}

/* The incoming worker took the gate: it becomes the slot's, the old one
 * drains as the outgoing worker. */
static void swap(sup *s, slot *sl)
{
	xworker *in = sl->in;
	char why[160];
	broker_worker_set(s->broker, sl->lane, 0, 0); /* no new jobs */
	xworker *out = xw_take(s->loop, sl->id, sl->gen, sl->lane, sl->proc,
	                       sl->chan, sl->pid, s->timeouts.shutdown_ms,
	                       &xw_cbs, s);
	if (!out) {
		snprintf(op_err(s), sizeof s->op.error, "slot %d: out of "
		         "memory at the swap", sl->id);
		return;
	}
	sl->out = out;
	proc *p;
	ipc_chan *ch;
	xw_release(in, &p, &ch);
	snprintf(why, sizeof why, "replaced pid %" PRId64 " (generation %u) "
	         "by pid %" PRId64 " (generation %u)", out->pid, out->gen,
	         in->pid, in->gen);
	slot_take_over(sl, p, ch, in->pid, in->gen, in->lane, in->ready_us,
	               in->have_health ? &in->health : NULL, why);
	if (!s->op.back) {
		ipc_cause c = s->op.heal               ? (ipc_cause)s->op.reason
		              : s->op.kind == OP_RELOAD ? IPC_CAUSE_RELOAD
		                                        : IPC_CAUSE_RESTART;
		sl->restarts_by[c]++;
		if (s->op.heal)
			sl->restarts++;
	}
	op_event(s, sl->id, in->pid, in->gen, "gating", "swapped", "slot %d: "
	         "%s", sl->id, why);
	xw_free(in);
	sl->in = NULL;
}

/* What to do with an incoming worker: wait, swap, or fail the rollout. */
static void check_incoming(sup *s, slot *sl)
{
	xworker *in = sl->in;
	char why[300] = "", desc[64];
	char *err = op_err(s);
	int64_t pid = in->pid;
	uint64_t now = uv_now(s->loop);
	if (in->exited) {
		if (!err[0])
			snprintf(why, sizeof why, "its new worker pid %" PRId64
			         " %s %s%s", in->pid,
			         exit_desc(in->exit_code, in->exit_signal, desc,
			                   sizeof desc),
			         in->phase == XW_STARTING ? "before it was READY"
			                                  : "during the gate",
			         in->fatal ? ": fatal plugin error" : "");
		broker_worker_gone(s->broker, in->lane);
		xw_free(in);
		sl->in = NULL;
		in = NULL;
	} else if (err[0]) {
		xw_kill(in); /* this direction failed: stop what it started */
	} else if (in->phase == XW_STARTING && in->late) {
		snprintf(why, sizeof why, "its new worker pid %" PRId64 " was "
		         "not READY within %" PRIu64 " ms", in->pid,
		         s->timeouts.start_ms);
		xw_kill(in);
	} else if (in->phase == XW_GATING && !in->killed) {
		if (!in->armed) {
			in->armed = 1;
			xw_arm(in, s->cfg->reload_gate_ms);
			op_event(s, sl->id, in->pid, in->gen, "starting",
			         "gating", "slot %d: pid %" PRId64 " READY, "
			         "gate %" PRIu64 " ms", sl->id, in->pid,
			         s->cfg->reload_gate_ms);
		}
		if (now - in->health_ms > s->timeouts.heartbeat_ms) {
			snprintf(why, sizeof why, "its new worker pid %" PRId64
			         " sent no health report for %" PRIu64 " ms in "
			         "the gate", in->pid, now - in->health_ms);
			xw_kill(in);
		} else if (in->have_health &&
		           in->health.lag_p99_us > s->cfg->max_lag_ms * 1000) {
			snprintf(why, sizeof why, "its new worker pid %" PRId64
			         " had a lag p99 of %" PRIu64 " ms in the gate "
			         "(max_lag %" PRIu64 " ms)", in->pid,
			         in->health.lag_p99_us / 1000, s->cfg->max_lag_ms);
			xw_kill(in);
		} else if (in->late) {
			swap(s, sl);
		}
	}
	if (why[0] && !err[0]) {
		snprintf(err, sizeof s->op.error, "slot %d: %s", sl->id, why);
		op_event(s, sl->id, pid, 0, "", "failed", "%s", err);
	}
}

static void check_outgoing(sup *s, slot *sl)
{
	xworker *out = sl->out;
	if (out->exited) {
		log_msg("slot %d: old worker pid %" PRId64 " (generation %u) "
		        "%s", sl->id, out->pid, out->gen,
		        out->exit_signal || out->exit_code
		            ? "ended badly while draining"
		            : "drained and exited");
		/* Whatever it still held (killed at the deadline) runs
		 * again elsewhere. */
		broker_worker_gone(s->broker, out->lane);
		xw_free(out);
		sl->out = NULL;
	} else if (out->late) {
		log_warn("slot %d: old worker pid %" PRId64 " did not stop "
		         "within %" PRIu64 " ms: killing it", sl->id, out->pid,
		         s->timeouts.shutdown_ms);
		out->late = 0;
		xw_kill(out);
	}
}

int sup_op_slot_quiet(sup *s, slot *sl)
{
	if (sl->in)
		check_incoming(s, sl);
	if (sl->out)
		check_outgoing(s, sl);
	return !sl->in && !sl->out;
}

/* Whether sl is still to be moved to the rollout's generation: 1 yes, 0
 * no (done, or nothing to move), -1 not yet (wait for it). */
static int to_move(const sup *s, const slot *sl)
{
	const gen_spec *g = s->op.back ? s->op.from : s->op.target;
	if (!picked(s, (unsigned)sl->id) || sl->in)
		return 0;
	/* One on its way up is waited for: the operation is done when
	 * every slot it names runs (or has failed). */
	if (sl->state == SLOT_SPAWNING || sl->state == SLOT_STARTING ||
	    sl->out)
		return -1;
	if (sl->state != SLOT_RUNNING || !sl->proc)
		return 0; /* restarts with the wanted generation anyway */
	if (s->op.kind == OP_RESTART)
		return !sl->moved;
	return sl->gen != g->gen;
}

static void rollout(sup *s)
{
	unsigned busy = 0;
	for (unsigned i = 0; i < s->nslots; i++) {
		slot *sl = s->slots[i];
		if (sl->in)
			busy++;
	}
	if (s->op.error[0] && !s->op.back) {
		/* Failed: stop here, and move what moved back. */
		if (busy)
			return; /* the incoming ones are being killed */
		if (s->op.kind == OP_RELOAD) {
			s->op.back = 1;
			s->gen = s->op.from;
			s->cfg = s->gen->cfg;
			apply_policy(s, s->cfg);
			op_event(s, -1, 0, s->gen->gen, "", "rollback",
			         "rolling back to generation %u: %s", s->gen->gen,
			         s->op.error);
		} else {
			char msg[800];
			snprintf(msg, sizeof msg, "%s failed: %s", s->op.what,
			         s->op.error);
			op_end(s, 0, CORRAL_EPLUGIN, msg);
			return;
		}
	}
	if (s->op.back && s->op.back_error[0]) {
		/* The old code failed to come back too: stop, and say
		 * which slots are left on the new generation. */
		if (busy)
			return;
		char msg[1500], left[200] = "";
		size_t n = 0;
		for (unsigned i = 0; i < s->nslots && n < sizeof left - 8; i++)
			if (s->slots[i]->gen != s->gen->gen)
				n += (size_t)snprintf(left + n, sizeof left - n,
				                      " %u", i);
		snprintf(msg, sizeof msg, "%s failed: %s; the rollback to "
		         "generation %u failed too: %s; slots still on the new "
		         "code:%s", s->op.what, s->op.error, s->gen->gen,
		         s->op.back_error, left[0] ? left : " none");
		for (unsigned i = 0; i < s->nslots; i++)
			s->slots[i]->moved = 0;
		op_end(s, 0, CORRAL_EPLUGIN, msg);
		return;
	}
	int waiting = 0;
	for (unsigned k = 0; k < s->nslots; k++) {
		slot *sl = s->slots[(s->op.next + k) % s->nslots];
		int m = to_move(s, sl);
		if (m < 0)
			waiting = 1;
		if (m <= 0)
			continue;
		if (busy >= s->cfg->reload_parallel)
			break;
		start_incoming(s, sl);
		if (!sl->in)
			return; /* failed: s->op.error says why */
		if (s->op.kind == OP_RESTART)
			sl->moved = 1;
		busy++;
		s->op.next = (unsigned)(sl->id + 1) % s->nslots;
	}
	if (busy || waiting)
		return;
	char msg[1024];
	uint64_t took = now_ms() - s->op.started_ms;
	if (s->op.back)
		snprintf(msg, sizeof msg, "%s failed, rolled back to generation "
		         "%u in %" PRIu64 " ms: %s", s->op.what, s->gen->gen,
		         took, s->op.error);
	else
		snprintf(msg, sizeof msg, "%s done in %" PRIu64 " ms", s->op.what,
		         took);
	for (unsigned i = 0; i < s->nslots; i++)
		s->slots[i]->moved = 0;
	op_end(s, !s->op.back, s->op.back ? CORRAL_EPLUGIN : 0, msg);
}

/* Scale down: the slots beyond scale_to go once they are at rest. */
static void scale(sup *s)
{
	unsigned to = s->op.scale_to;
	if (to > s->nslots || s->nslots == to) {
		/* Up: done when every new slot has come up (or failed). */
		for (unsigned i = 0; i < s->nslots; i++) {
			slot_state st = s->slots[i]->state;
			if (st != SLOT_RUNNING && st != SLOT_FAILED)
				return;
		}
	} else {
		for (unsigned i = to; i < s->nslots; i++)
			if (!slot_at_rest(s->slots[i]) ||
			    !sup_op_slot_quiet(s, s->slots[i]))
				return;
		for (unsigned i = to; i < s->nslots; i++) {
			slot_destroy(s->slots[i]);
			s->slots[i] = NULL;
		}
		s->nslots = to;
	}
	char msg[300];
	snprintf(msg, sizeof msg, "%s done in %" PRIu64 " ms", s->op.what,
	         now_ms() - s->op.started_ms);
	op_end(s, 1, 0, msg);
}

void sup_op_reconcile(sup *s)
{
	for (unsigned i = 0; i < s->nslots; i++)
		(void)sup_op_slot_quiet(s, s->slots[i]);
	if (s->state != SUP_RUNNING)
		return;
	switch (s->op.kind) {
	case OP_RELOAD:
	case OP_RESTART:
		rollout(s);
		break;
	case OP_SCALE:
		scale(s);
		break;
	default:
		break;
	}
}
