/*
 * control.c - see control.h.
 *
 * EVENTS requests long-poll: one that finds no event after its `since`
 * waits (its context held, see ipc/srv.h) until an event is logged or its
 * wait is over.  Waiters are few (a `corralctl events -f`, a test); a
 * timer is armed only while some wait, for the earliest deadline, so an
 * idle control socket costs nothing.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/list.h"
#include "common/log.h"
#include "corral_base.h"
#include "ipc/proto.h"
#include "ipc/srv.h"
#include "master/control.h"

#define MAX_WAITERS 64

typedef struct waiter {
	list_node node;
	ipc_req *req;
	uint64_t since;
	uint32_t max;
	uint64_t deadline; /* uv_now() */
} waiter;

struct control {
	ipc_srv *srv;
	uv_loop_t *loop;
	const control_ops *ops;
	void *ctx;
	evlog *ev;
	list_head waiters;
	unsigned nwaiters;
	uv_timer_t timer; /* the earliest waiter's deadline */
};

static void reply_error(control *c, ipc_req *req, int code)
{
	nng_msg *reply = NULL;
	ipc_error e = {.code = code};
	snprintf(e.msg, sizeof e.msg, "bad request: %s", corral_strerror(code));
	if (ipc_pack_error(&reply, &e) != 0)
		reply = NULL;
	ipc_srv_reply(req, reply);
	(void)c;
}

/* Answers with what there is after since (possibly nothing). */
static void reply_events(control *c, ipc_req *req, uint64_t since,
                         uint32_t max)
{
	ipc_event buf[IPC_MAX_EVENTS];
	ipc_events m = {.first = evlog_first(c->ev), .last = c->ev->last,
	                .ev = buf};
	m.n = evlog_copy(c->ev, since, buf, max);
	nng_msg *reply = NULL;
	int rc = ipc_pack_events(&reply, &m);
	if (rc)
		reply_error(c, req, rc);
	else
		ipc_srv_reply(req, reply);
}

static void wake(control *c);

static void on_timer(uv_timer_t *t)
{
	wake(t->data);
}

/* Answers the waiters that have events now or whose wait is over, then
 * re-arms the timer for the rest. */
static void wake(control *c)
{
	uint64_t now = uv_now(c->loop), first = UINT64_MAX;
	list_node *n, *tmp;
	list_foreach_safe(n, tmp, &c->waiters) {
		waiter *w = list_entry(n, waiter, node);
		if (c->ev->last > w->since || now >= w->deadline) {
			list_remove(&w->node);
			c->nwaiters--;
			reply_events(c, w->req, w->since, w->max);
			free(w);
		} else if (w->deadline < first) {
			first = w->deadline;
		}
	}
	if (first == UINT64_MAX)
		uv_timer_stop(&c->timer);
	else
		uv_timer_start(&c->timer, on_timer, first - now, 0);
}

static void on_event_added(void *arg)
{
	control *c = arg;
	if (c->nwaiters)
		wake(c);
}

static void on_events_req(control *c, ipc_req *req, const ipc_events_req *q)
{
	if (c->ev->last > q->since || q->wait_ms == 0 ||
	    c->nwaiters >= MAX_WAITERS) {
		reply_events(c, req, q->since, q->max);
		return;
	}
	waiter *w = calloc(1, sizeof *w);
	if (!w) {
		reply_error(c, req, CORRAL_ENOMEM);
		return;
	}
	w->req = req;
	w->since = q->since;
	w->max = q->max;
	w->deadline = uv_now(c->loop) + q->wait_ms;
	list_push_back(&c->waiters, &w->node);
	c->nwaiters++;
	wake(c);
}

static void on_request(ipc_req *req, nng_msg *msg, void *arg)
{
	control *c = arg;
	ipc_frame f;
	nng_msg *reply = NULL;
	ipc_events_req q;
	int rc = ipc_decode_msg(msg, IPC_MAX_CTL_FRAME, &f);
	if (!rc) {
		switch (f.type) {
		case IPC_STATUS_REQ:
			rc = c->ops->status(c->ctx, &reply);
			break;
		case IPC_EVENTS_REQ:
			if (!(rc = ipc_unpack_events_req(&f, &q))) {
				ipc_frame_fini(&f);
				on_events_req(c, req, &q);
				return;
			}
			break;
		default:
			rc = CORRAL_ETYPE;
			break;
		}
		ipc_frame_fini(&f);
	}
	if (rc) {
		c->ops->bad_frame(c->ctx, rc);
		log_warn("control: bad request: %s (%s)", corral_strerror(rc),
		         corral_errname(rc));
		reply_error(c, req, rc);
		return;
	}
	ipc_srv_reply(req, reply);
}

int control_open(control **out, uv_loop_t *loop, const char *url,
                 const control_ops *ops, void *ctx, evlog *ev)
{
	control *c = calloc(1, sizeof *c);
	if (!c)
		return CORRAL_ENOMEM;
	c->loop = loop;
	c->ops = ops;
	c->ctx = ctx;
	c->ev = ev;
	list_init(&c->waiters);
	ipc_sockopts so = {.max_frame = IPC_MAX_CTL_FRAME, .perms = 0600};
	int rc = ipc_srv_open(&c->srv, loop, url, &so, MAX_WAITERS + 16,
	                      on_request, c);
	if (rc) {
		free(c);
		return rc;
	}
	if (uv_timer_init(loop, &c->timer) != 0) {
		ipc_srv_close(c->srv);
		free(c);
		return CORRAL_ESYS;
	}
	c->timer.data = c;
	uv_unref((uv_handle_t *)&c->timer);
	ev->on_add = on_event_added;
	ev->arg = c;
	*out = c;
	return 0;
}

static void control_freed(uv_handle_t *h)
{
	free(h->data);
}

void control_close(control *c)
{
	if (!c)
		return;
	c->ev->on_add = NULL;
	list_node *n, *tmp;
	list_foreach_safe(n, tmp, &c->waiters) {
		waiter *w = list_entry(n, waiter, node);
		list_remove(&w->node);
		reply_events(c, w->req, w->since, w->max); /* what there is */
		free(w);
	}
	/* Let those last events (the supervisor's own end) reach their
	 * readers: a `corralctl events -f` sees "done". */
	ipc_srv_close_when_sent(c->srv, 250);
	uv_close((uv_handle_t *)&c->timer, control_freed);
}
