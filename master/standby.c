/* standby.c - see standby.h. */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/exitdesc.h"
#include "common/log.h"
#include "common/rundir.h"
#include "corral_base.h"
#include "master/standby.h"

const char *standby_state_name(standby_state st)
{
	static const char *names[] = {
#define X(name, str) str,
		STANDBY_STATES(X)
#undef X
	};
	return names[st];
}

static void set_state(standby *sb, standby_state to, const char *why)
{
	standby_state from = sb->state;
	if (from == to)
		return;
	log_debug("standby %d pid %" PRId64 ": %s -> %s: %s", sb->id, sb->pid,
	          standby_state_name(from), standby_state_name(to), why);
	sb->state = to;
	if (sb->pool->hooks->changed)
		sb->pool->hooks->changed(sb->pool->owner, sb, from, why);
}

static void dirty(standby *sb)
{
	sb->pool->hooks->dirty(sb->pool->owner);
}

static void on_msg(ipc_chan *ch, nng_msg *msg, void *arg)
{
	standby *sb = arg;
	ipc_frame f;
	ipc_hello hello;
	(void)ch;
	int rc = ipc_decode_msg(msg, IPC_MAX_FRAME, &f);
	if (!rc) {
		if (f.type != IPC_HELLO)
			rc = CORRAL_ETYPE;
		else if (!(rc = ipc_unpack_hello(&f, &hello)) &&
		         (hello.slot != -1 || hello.pid != sb->pid))
			rc = CORRAL_EFIELD;
		ipc_frame_fini(&f);
	}
	if (rc) {
		sb->pool->hooks->bad_frame(sb->pool->owner, rc);
		return;
	}
	if (sb->state == SB_STARTING) {
		set_state(sb, SB_READY, "hello");
		log_msg("standby pid %" PRId64 ": ready", sb->pid);
		dirty(sb);
	}
}

static void on_timer(uv_timer_t *t)
{
	standby *sb = t->data;
	if (sb->state == SB_STOPPING)
		sb->late = 1;
	else if (sb->state == SB_RETRY)
		sb->due = 1;
	dirty(sb);
}

static void on_exit_cb(void *owner, int64_t status, int term_signal)
{
	standby *sb = owner;
	char desc[64];
	log_msg("standby pid %" PRId64 ": %s", sb->pid,
	        exit_desc((int)status, term_signal, desc, sizeof desc));
	sb->proc = NULL; /* gone; the proc frees itself */
	sb->exited = 1;
	sb->exit_fatal = !term_signal && status == CORRAL_EXIT_FATAL;
	sb->failed = sb->state != SB_STOPPING;
	dirty(sb);
}

static void turn_off(standby_pool *p, const char *why)
{
	if (p->off)
		return;
	p->off = 1;
	snprintf(p->off_reason, sizeof p->off_reason, "%s", why);
	log_warn("standby workers disabled: %s", why);
}

/* A start failed: wait, longer each time, before the next one. */
static void retry_later(standby *sb, const char *why)
{
	standby_pool *p = sb->pool;
	uint64_t now = uv_hrtime() / 1000000u;
	if (crashloop_record(p->policy, &sb->track, now)) {
		char msg[160];
		snprintf(msg, sizeof msg, "%u failed starts in %" PRIu64
		         " ms (last: %s)", p->policy->max_restarts,
		         p->policy->window_ms, why);
		turn_off(p, msg);
		set_state(sb, SB_OFF, why);
		return;
	}
	uint64_t d = backoff_next(p->policy, &sb->track, 0, (uint32_t)rand());
	if (d < 100)
		d = 100; /* a standby is never urgent */
	log_msg("standby %d: %s; next try in %" PRIu64 " ms", sb->id, why, d);
	set_state(sb, SB_RETRY, why);
	sb->due = 0;
	uv_timer_start(&sb->timer, on_timer, d, 0);
}

static void reap(standby *sb)
{
	if (sb->chan) {
		ipc_chan_close(sb->chan);
		sb->chan = NULL;
	}
	uv_timer_stop(&sb->timer);
	sb->exited = 0;
	sb->late = 0;
	if (sb->exit_fatal) {
		turn_off(sb->pool, "the plugin cannot start (exit 78)");
		set_state(sb, SB_OFF, "fatal exit");
	} else if (sb->failed && sb->state != SB_STOPPING) {
		retry_later(sb, "exited unexpectedly");
	} else {
		set_state(sb, SB_EMPTY, "exited");
	}
}

static void spawn_one(standby *sb, const worker_spec *spec, unsigned gen,
                      const char *plugin_id, const char *rundir)
{
	standby_pool *p = sb->pool;
	char url[4200], leaf[32], why[4400];
	/* A fresh name each time: an adopted one's socket lives on. */
	snprintf(leaf, sizeof leaf, "standby-%u", p->names++);
	int rc = rundir_url(rundir, leaf, url, sizeof url);
	ipc_sockopts so = {.max_frame = IPC_MAX_FRAME, .bufs = 64,
	                   .perms = 0600};
	if (!rc)
		rc = ipc_chan_listen(&sb->chan, p->loop, url, &so, on_msg, NULL,
		                     sb);
	if (rc) {
		sb->chan = NULL;
		snprintf(why, sizeof why, "cannot listen on %s: %s", url,
		         corral_strerror(rc));
		retry_later(sb, why);
		return;
	}
	rc = proc_spawn(p->loop, spec, -1, url, on_exit_cb, sb, &sb->proc);
	if (rc) {
		ipc_chan_close(sb->chan);
		sb->chan = NULL;
		sb->proc = NULL;
		snprintf(why, sizeof why, "spawn of %s failed: %s",
		         spec->worker_bin, uv_strerror(rc));
		retry_later(sb, why);
		return;
	}
	sb->pid = proc_pid(sb->proc);
	sb->failed = 0;
	sb->gen = gen;
	snprintf(sb->plugin_id, sizeof sb->plugin_id, "%s", plugin_id);
	set_state(sb, SB_STARTING, "spawned");
}

static void stop_one(standby *sb, uint64_t stop_ms, const char *why)
{
	nng_msg *msg = NULL;
	ipc_stop stop = {.timeout_ms = stop_ms};
	int rc = ipc_pack_stop(&msg, &stop);
	if (!rc)
		rc = ipc_chan_send(sb->chan, msg);
	set_state(sb, SB_STOPPING, why);
	if (rc) {
		sb->late = 1; /* cannot tell it: kill it */
	} else {
		sb->late = 0;
		uv_timer_start(&sb->timer, on_timer, stop_ms, 0);
	}
}

void standby_reconcile(standby_pool *p, standby_want want, int kill_now,
                       const worker_spec *spec, unsigned gen,
                       const char *plugin_id, const char *rundir,
                       uint64_t stop_ms)
{
	for (unsigned i = 0; i < p->n; i++) {
		standby *sb = &p->spares[i];
		if (sb->exited)
			reap(sb);
		if (sb->proc && (kill_now || sb->late)) {
			sb->late = 0;
			proc_kill(sb->proc, SIGKILL);
			continue;
		}
		/* Started for another generation, or its plugin file has
		 * changed since: retired, so no slot ever runs old code. */
		if (sb->proc && sb->state != SB_STOPPING &&
		    (sb->gen != gen || strcmp(sb->plugin_id, plugin_id) != 0)) {
			log_msg("standby pid %" PRId64 ": retired (generation %u, "
			        "or its plugin file changed)", sb->pid, sb->gen);
			stop_one(sb, stop_ms, "retired");
			continue;
		}
		if (want == SB_WANT_NONE) {
			if (sb->proc && sb->state != SB_STOPPING)
				stop_one(sb, stop_ms, "shutdown");
			else if (sb->state == SB_RETRY) {
				uv_timer_stop(&sb->timer);
				set_state(sb, SB_EMPTY, "shutdown");
			}
			continue;
		}
		if (sb->state == SB_RETRY && sb->due) {
			sb->due = 0;
			set_state(sb, SB_EMPTY, "retry");
		}
		if (sb->state == SB_EMPTY && !p->off && want == SB_WANT_FILL)
			spawn_one(sb, spec, gen, plugin_id, rundir);
	}
}

int standby_take(standby_pool *p, unsigned gen, const char *plugin_id,
                 proc **pr, ipc_chan **ch, int64_t *pid)
{
	for (unsigned i = 0; i < p->n; i++) {
		standby *sb = &p->spares[i];
		if (sb->state != SB_READY || !sb->proc || sb->exited)
			continue;
		if (sb->gen != gen || strcmp(sb->plugin_id, plugin_id) != 0) {
			p->hooks->dirty(p->owner); /* to retire it */
			continue;
		}
		*pr = sb->proc;
		*ch = sb->chan;
		*pid = sb->pid;
		sb->proc = NULL;
		sb->chan = NULL;
		set_state(sb, SB_EMPTY, "adopted by a slot");
		return 1;
	}
	return 0;
}

int standby_idle(const standby_pool *p)
{
	for (unsigned i = 0; i < p->n; i++)
		if (p->spares[i].proc)
			return 0;
	return 1;
}

int standby_pool_init(standby_pool *p, uv_loop_t *loop, unsigned n,
                      const restart_policy *pol, const standby_hooks *hooks,
                      void *owner)
{
	memset(p, 0, sizeof *p);
	p->loop = loop;
	p->policy = pol;
	p->hooks = hooks;
	p->owner = owner;
	if (!n)
		return 0;
	p->spares = calloc(n, sizeof *p->spares);
	if (!p->spares)
		return CORRAL_ENOMEM;
	for (unsigned i = 0; i < n; i++) {
		standby *sb = &p->spares[i];
		sb->id = (int)i;
		sb->pool = p;
		int rc = restart_track_init(&sb->track, pol);
		if (!rc && uv_timer_init(loop, &sb->timer) != 0) {
			restart_track_fini(&sb->track);
			rc = CORRAL_ESYS;
		}
		if (rc) {
			p->n = i;
			standby_pool_close(p);
			return rc;
		}
		sb->timer.data = sb;
		p->n = i + 1;
	}
	return 0;
}

/* libuv closes handles in no promised order: free after the last. */
static void spares_freed(uv_handle_t *h)
{
	standby *sb = h->data;
	standby_pool *p = sb->pool;
	if (--p->closing == 0) {
		free(p->spares);
		p->spares = NULL;
		p->n = 0;
	}
}

void standby_pool_close(standby_pool *p)
{
	if (!p->n) {
		free(p->spares);
		p->spares = NULL;
		return;
	}
	p->closing = p->n;
	for (unsigned i = 0; i < p->n; i++) {
		restart_track_fini(&p->spares[i].track);
		uv_close((uv_handle_t *)&p->spares[i].timer, spares_freed);
	}
}
