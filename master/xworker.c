/* xworker.c - see xworker.h. */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "corral_base.h"
#include "master/xworker.h"

static void dirty(xworker *x)
{
	x->hooks->dirty(x->owner);
}

static void on_timer(uv_timer_t *t)
{
	xworker *x = t->data;
	x->late = 1;
	dirty(x);
}

static void on_msg(ipc_chan *ch, nng_msg *msg, void *arg)
{
	xworker *x = arg;
	ipc_frame f;
	ipc_hello hello;
	ipc_health h;
	(void)ch;
	int rc = ipc_decode_msg(msg, IPC_MAX_FRAME, &f);
	if (rc) {
		x->hooks->bad_frame(x->owner, rc);
		return;
	}
	switch (f.type) {
	case IPC_HELLO:
		if (!(rc = ipc_unpack_hello(&f, &hello)) &&
		    (hello.slot != x->slot || hello.pid != x->pid))
			rc = CORRAL_EFIELD;
		break;
	case IPC_READY:
		if (x->phase == XW_STARTING) {
			x->phase = XW_GATING;
			x->ready_us = uv_hrtime() / 1000u;
			x->health_ms = uv_now(x->loop);
			uv_timer_stop(&x->timer);
			dirty(x);
		}
		break;
	case IPC_HEALTH:
		if (!(rc = ipc_unpack_health(&f, &h))) {
			x->health = h;
			x->have_health = 1;
			x->health_ms = uv_now(x->loop);
			dirty(x);
		}
		break;
	case IPC_REPLY:
		x->hooks->reply(x->owner, x, &f);
		break;
	default:
		rc = CORRAL_ETYPE;
		break;
	}
	ipc_frame_fini(&f);
	if (rc)
		x->hooks->bad_frame(x->owner, rc);
}

static void on_exit_cb(void *owner, int64_t status, int term_signal)
{
	xworker *x = owner;
	x->proc = NULL; /* gone; the proc frees itself */
	x->exited = 1;
	x->exit_signal = term_signal;
	x->exit_code = term_signal ? -1 : (int)status;
	x->fatal = !term_signal && status == CORRAL_EXIT_FATAL;
	uv_timer_stop(&x->timer);
	dirty(x);
}

static xworker *alloc(uv_loop_t *loop, int slot, unsigned gen,
                      unsigned lane, const xworker_hooks *hooks,
                      void *owner)
{
	xworker *x = calloc(1, sizeof *x);
	if (!x)
		return NULL;
	if (uv_timer_init(loop, &x->timer) != 0) {
		free(x);
		return NULL;
	}
	x->timer.data = x;
	x->loop = loop;
	x->slot = slot;
	x->gen = gen;
	x->lane = lane;
	x->hooks = hooks;
	x->owner = owner;
	x->exit_code = -1;
	return x;
}

int xw_spawn(xworker **out, uv_loop_t *loop, const worker_spec *spec,
             int slot, unsigned gen, unsigned lane, const char *url,
             uint64_t start_timeout_ms, const xworker_hooks *hooks,
             void *owner, char *why, size_t whylen)
{
	xworker *x = alloc(loop, slot, gen, lane, hooks, owner);
	if (!x) {
		snprintf(why, whylen, "out of memory");
		return CORRAL_ENOMEM;
	}
	ipc_sockopts so = {.max_frame = IPC_MAX_FRAME, .bufs = 64,
	                   .perms = 0600};
	int rc = ipc_chan_listen(&x->chan, loop, url, &so, on_msg, NULL, x);
	if (rc) {
		snprintf(why, whylen, "cannot listen on %s: %s", url,
		         corral_strerror(rc));
		x->chan = NULL;
		xw_free(x);
		return rc;
	}
	rc = proc_spawn(loop, spec, slot, url, on_exit_cb, x, &x->proc);
	if (rc) {
		snprintf(why, whylen, "spawn of %s failed: %s",
		         spec->worker_bin, uv_strerror(rc));
		x->proc = NULL;
		xw_free(x);
		return CORRAL_ESYS;
	}
	x->pid = proc_pid(x->proc);
	x->phase = XW_STARTING;
	x->spawned_us = uv_hrtime() / 1000u;
	uv_timer_start(&x->timer, on_timer, start_timeout_ms, 0);
	*out = x;
	return 0;
}

xworker *xw_take(uv_loop_t *loop, int slot, unsigned gen, unsigned lane,
                 proc *p, ipc_chan *chan, int64_t pid, uint64_t stop_ms,
                 const xworker_hooks *hooks, void *owner)
{
	xworker *x = alloc(loop, slot, gen, lane, hooks, owner);
	if (!x)
		return NULL;
	x->proc = p;
	x->chan = chan;
	x->pid = pid;
	if (p)
		proc_adopt(p, slot, on_exit_cb, x);
	if (chan)
		ipc_chan_set_handler(chan, on_msg, x);
	xw_stop(x, stop_ms);
	return x;
}

void xw_arm(xworker *x, uint64_t ms)
{
	x->late = 0;
	uv_timer_start(&x->timer, on_timer, ms, 0);
}

void xw_stop(xworker *x, uint64_t ms)
{
	nng_msg *msg = NULL;
	ipc_stop stop = {.timeout_ms = ms};
	int rc = x->chan ? ipc_pack_stop(&msg, &stop) : CORRAL_ECLOSED;
	if (!rc)
		rc = ipc_chan_send(x->chan, msg);
	if (rc && x->proc)
		proc_kill(x->proc, SIGTERM);
	x->phase = XW_DRAINING;
	xw_arm(x, ms);
}

void xw_kill(xworker *x)
{
	if (x->proc && !x->killed) {
		x->killed = 1;
		proc_kill(x->proc, SIGKILL);
	}
}

void xw_release(xworker *x, proc **p, ipc_chan **chan)
{
	*p = x->proc;
	*chan = x->chan;
	x->proc = NULL;
	x->chan = NULL;
	uv_timer_stop(&x->timer);
}

static void freed(uv_handle_t *h)
{
	free(h->data);
}

void xw_free(xworker *x)
{
	if (!x)
		return;
	if (x->chan)
		ipc_chan_close(x->chan);
	x->chan = NULL;
	uv_close((uv_handle_t *)&x->timer, freed);
}
