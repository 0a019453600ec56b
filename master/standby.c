/*
 * standby.c - pre-started workers that make restarts fast.
 *
 * Starting a worker from nothing costs a fork+exec, dynamic linking, nng's
 * thread start-up and the plugin's dlopen: a few milliseconds, most of it
 * before plugin code runs at all.  A standby worker has paid all that and
 * waits (after HELLO, before init) on ipc://RUNDIR/standby-K.  When a slot
 * needs a new worker, slot.c adopts a ready standby (ASSIGN, then init and
 * READY as usual).  Standbys are started, and refilled, only while every
 * slot is running: never competing with a start-up or a restart for the
 * loop (uv_spawn blocks it until exec) or the CPU.  A standby whose plugin
 * cannot load (exit 78) turns the feature off rather than looping.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "corral.h"
#include "common/log.h"
#include "common/rundir.h"
#include "master/sup.h"

#define STANDBY_RETRY_MS 1000
#define STANDBY_MAX_FAILS 5

static void spawn_one(standby *sb);

static void on_standby_msg(ipc_chan *ch, nng_msg *msg, void *arg)
{
	standby *sb = arg;
	ipc_frame f;
	ipc_hello hello;
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
		sb->sup->bad_frames++;
		log_msg("standby pid %" PRId64 ": dropped a bad frame: %s (%s)",
		        sb->pid, corral_errname(rc), corral_strerror(rc));
		return;
	}
	sb->ready = 1;
	log_msg("standby pid %" PRId64 ": ready", sb->pid);
}

static void on_standby_timer(uv_timer_t *t)
{
	standby *sb = t->data;
	if (sb->proc)
		proc_kill(sb->proc, SIGKILL); /* shutdown deadline */
	else
		standby_maybe_start(sb->sup);
}

static void on_standby_exit(void *owner, int64_t status, int term_signal)
{
	standby *sb = owner;
	sup *s = sb->sup;
	proc_detach(sb->proc);
	sb->proc = NULL;
	sb->ready = 0;
	if (sb->chan) {
		ipc_chan_close(sb->chan);
		sb->chan = NULL;
	}
	uv_timer_stop(&sb->timer);
	if (term_signal)
		log_msg("standby pid %" PRId64 ": killed by signal %d", sb->pid,
		        term_signal);
	else
		log_msg("standby pid %" PRId64 ": exited with code %d", sb->pid,
		        (int)status);
	if (s->stopping || s->spares_draining) {
		sup_check_done(s);
		return;
	}
	if (!term_signal && status == CORRAL_EXIT_FATAL) {
		s->spares_off = 1;
		log_msg("standby workers disabled: the plugin cannot start");
		return;
	}
	if (++sb->fails >= STANDBY_MAX_FAILS) {
		s->spares_off = 1;
		log_msg("standby workers disabled after %u failures in a row",
		        sb->fails);
		return;
	}
	uv_timer_start(&sb->timer, on_standby_timer, STANDBY_RETRY_MS, 0);
}

static void spawn_one(standby *sb)
{
	sup *s = sb->sup;
	char url[4200], leaf[32];
	nng_socket sock;
	/* A fresh name each time: the adopted one's socket lives on. */
	snprintf(leaf, sizeof leaf, "standby-%u", s->standby_gen++);
	int rc = rundir_url(s->rundir, leaf, url, sizeof url);
	ipc_sockopts so = {.max_frame = IPC_MAX_FRAME, .bufs = 64,
	                   .perms = 0600};
	if (!rc)
		rc = ipc_pair_listen(&sock, url, &so);
	if (!rc)
		rc = ipc_chan_open(&sb->chan, s->loop, sock, 0, on_standby_msg,
		                   NULL, sb);
	if (rc) {
		log_msg("standby %d: cannot listen on %s: %s", sb->id, url,
		        corral_strerror(rc));
		uv_timer_start(&sb->timer, on_standby_timer, STANDBY_RETRY_MS, 0);
		return;
	}
	rc = proc_spawn(s, -1, url, on_standby_exit, sb, &sb->proc);
	if (rc) {
		ipc_chan_close(sb->chan);
		sb->chan = NULL;
		log_msg("standby %d: spawn failed: %s", sb->id, uv_strerror(rc));
		uv_timer_start(&sb->timer, on_standby_timer, STANDBY_RETRY_MS, 0);
		return;
	}
	sb->pid = proc_pid(sb->proc);
	sb->ready = 0;
}

int standby_init(sup *s)
{
	s->nspares = s->cfg->standby;
	if (!s->nspares)
		return 0;
	s->spares = calloc(s->nspares, sizeof *s->spares);
	if (!s->spares)
		return CORRAL_ENOMEM;
	for (unsigned i = 0; i < s->nspares; i++) {
		standby *sb = &s->spares[i];
		sb->sup = s;
		sb->id = (int)i;
		if (uv_timer_init(s->loop, &sb->timer) != 0) {
			s->nspares = i;
			return CORRAL_ESYS;
		}
		sb->timer.data = sb;
	}
	return 0;
}

void standby_maybe_start(sup *s)
{
	if (s->spares_off || s->stopping || s->spares_draining)
		return;
	for (unsigned i = 0; i < s->nslots; i++)
		if (s->slots[i].state != SLOT_RUNNING)
			return;
	for (unsigned i = 0; i < s->nspares; i++) {
		standby *sb = &s->spares[i];
		/* Empty, and not waiting out a retry delay. */
		if (!sb->proc && !uv_is_active((uv_handle_t *)&sb->timer))
			spawn_one(sb);
	}
}

int standby_take(sup *s, proc **p, ipc_chan **ch, int64_t *pid)
{
	for (unsigned i = 0; i < s->nspares; i++) {
		standby *sb = &s->spares[i];
		if (!sb->ready || !sb->proc)
			continue;
		*p = sb->proc;
		*ch = sb->chan;
		*pid = sb->pid;
		sb->proc = NULL;
		sb->chan = NULL;
		sb->ready = 0;
		sb->fails = 0;
		return 1; /* refilled by standby_maybe_start() */
	}
	return 0;
}

void standby_stop_all(sup *s, int now)
{
	if (s->spares_draining && !now)
		return;
	s->spares_draining = 1;
	for (unsigned i = 0; i < s->nspares; i++) {
		standby *sb = &s->spares[i];
		uv_timer_stop(&sb->timer);
		if (!sb->proc)
			continue;
		nng_msg *msg = NULL;
		ipc_stop stop = {.timeout_ms = s->cfg->shutdown_timeout_ms};
		int rc = now ? 1 : ipc_pack_stop(&msg, &stop);
		if (!rc)
			rc = ipc_chan_send(sb->chan, msg);
		if (rc) {
			proc_kill(sb->proc, SIGKILL);
		} else {
			uv_timer_start(&sb->timer, on_standby_timer,
			               s->cfg->shutdown_timeout_ms, 0);
		}
	}
}

int standby_idle(const sup *s)
{
	for (unsigned i = 0; i < s->nspares; i++)
		if (s->spares[i].proc)
			return 0;
	return 1;
}

void standby_close(sup *s)
{
	for (unsigned i = 0; i < s->nspares; i++)
		uv_close((uv_handle_t *)&s->spares[i].timer, NULL);
}
