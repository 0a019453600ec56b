/*
 * control.c - see control.h.
 *
 * EVENTS and LOGS requests long-poll: one that finds nothing after its
 * `since` waits (its context held, see ipc/srv.h) until an event (a log
 * line of the slot it reads) is added or its wait is over.  Waiters are few
 * (a `corralctl events -f` or `logs -f`, a test); a timer is armed only
 * while some wait, for the earliest deadline, so an idle control socket
 * costs nothing.  Answering may itself log a line, which wakes waiters
 * again: a wake inside a wake only asks the outer one for another round.
 *
 * At close, a reader that was just answered has not asked again yet, and
 * the supervisor's last events (its own end) would be lost to it: so the
 * socket lingers up to LINGER_MS for such readers' next request, answers
 * it with what there is, and only then closes.
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
#define LINGER_MS 250   /* at close: how long a recent reader may take */
#define RECENT_MS 2000  /* a reader answered this recently may ask again */

typedef struct waiter {
	list_node node;
	ipc_req *req;
	int logs;          /* a LOGS request (else EVENTS) */
	uint64_t since;
	uint32_t max;
	int32_t slot;      /* LOGS: whose lines */
	uint32_t tail;     /* LOGS: only the last lines */
	uint64_t deadline; /* uv_now() */
} waiter;

struct control {
	ipc_srv *srv;
	uv_loop_t *loop;
	const control_ops *ops;
	void *ctx;
	evlog *ev;
	logring *logs;    /* NULL: LOGS not served */
	list_head waiters;
	unsigned nwaiters;
	uv_timer_t timer; /* the earliest waiter's deadline; the linger */
	uint64_t answered_ms; /* when a waiter was last answered */
	int closing;      /* lingering for readers' last requests */
	int waking, rewake; /* in wake(); asked for another round */
};

static void reply_error(control *c, ipc_req *req, int code)
{
	nng_msg *reply = NULL;
	ipc_error e = {.code = code};
	snprintf(e.msg, sizeof e.msg, "%s%s",
	         code == CORRAL_ESHUTDOWN ? "" : "bad request: ",
	         corral_strerror(code));
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

/* Answers with the lines after q->since (possibly none). */
static void reply_logs(control *c, ipc_req *req, const ipc_logs_req *q)
{
	static ipc_logline buf[IPC_MAX_LOGLINES]; /* loop thread only */
	ipc_logs m = {.lines = buf, .end = c->closing};
	m.n = logring_copy(c->logs, q, buf, q->max, &m.next);
	nng_msg *reply = NULL;
	int rc = ipc_pack_logs(&reply, &m);
	if (rc)
		reply_error(c, req, rc);
	else
		ipc_srv_reply(req, reply);
}

static void reply_waiter(control *c, waiter *w)
{
	if (w->logs) {
		ipc_logs_req q = {.since = w->since, .max = w->max,
		                  .slot = w->slot, .tail = w->tail};
		reply_logs(c, w->req, &q);
	} else {
		reply_events(c, w->req, w->since, w->max);
	}
}

static int has_news(const control *c, const waiter *w)
{
	return w->logs ? logring_has_after(c->logs, w->since, w->slot)
	               : c->ev->last > w->since;
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
	if (c->waking) {
		c->rewake = 1;
		return;
	}
	c->waking = 1;
	uint64_t now, first;
	do {
		c->rewake = 0;
		now = uv_now(c->loop);
		first = UINT64_MAX;
		list_node *n, *tmp;
		list_foreach_safe(n, tmp, &c->waiters) {
			waiter *w = list_entry(n, waiter, node);
			if (has_news(c, w) || now >= w->deadline) {
				list_remove(&w->node);
				c->nwaiters--;
				reply_waiter(c, w);
				c->answered_ms = now;
				free(w);
			} else if (w->deadline < first) {
				first = w->deadline;
			}
		}
	} while (c->rewake); /* a reply logged a line others may want */
	c->waking = 0;
	if (c->closing)
		return; /* the linger owns the timer now */
	if (first == UINT64_MAX)
		uv_timer_stop(&c->timer);
	else
		uv_timer_start(&c->timer, on_timer, first - now, 0);
}

static void on_added(void *arg)
{
	control *c = arg;
	if (c->nwaiters)
		wake(c);
}

/* Answers at once when there is news, the reader would not wait, or the
 * socket is closing; else keeps the request until there is news. */
static void on_wait_req(control *c, ipc_req *req, const waiter *q,
                        uint64_t wait_ms)
{
	if (has_news(c, q) || wait_ms == 0 || c->closing ||
	    c->nwaiters >= MAX_WAITERS) {
		waiter tmp = *q;
		tmp.req = req;
		reply_waiter(c, &tmp);
		return;
	}
	waiter *w = calloc(1, sizeof *w);
	if (!w) {
		reply_error(c, req, CORRAL_ENOMEM);
		return;
	}
	*w = *q;
	w->req = req;
	w->deadline = uv_now(c->loop) + wait_ms;
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
	static ipc_cmd cmd; /* 64 KiB: loop thread only, used at once */
	ipc_logs_req lq;
	int type = 0;
	int rc = ipc_decode_msg(msg, IPC_MAX_CTL_FRAME, &f);
	if (!rc) {
		type = f.type;
		if (type == IPC_EVENTS_REQ)
			rc = ipc_unpack_events_req(&f, &q);
		else if (type == IPC_LOGS_REQ)
			rc = c->logs ? ipc_unpack_logs_req(&f, &lq)
			             : CORRAL_ETYPE;
		else if (c->closing)
			rc = CORRAL_ESHUTDOWN; /* only final events now */
		else if (type == IPC_STATUS_REQ)
			rc = c->ops->status(c->ctx, &reply);
		else if (type == IPC_CMD)
			rc = ipc_unpack_cmd(&f, &cmd);
		else
			rc = CORRAL_ETYPE;
		ipc_frame_fini(&f);
	}
	if (!rc && type == IPC_EVENTS_REQ) {
		waiter w = {.since = q.since, .max = q.max};
		on_wait_req(c, req, &w, q.wait_ms);
		return;
	}
	if (!rc && type == IPC_LOGS_REQ) {
		waiter w = {.logs = 1, .since = lq.since, .max = lq.max,
		            .slot = lq.slot, .tail = lq.tail};
		on_wait_req(c, req, &w, lq.wait_ms);
		return;
	}
	if (!rc && type == IPC_CMD) {
		c->ops->command(c->ctx, req, &cmd);
		return;
	}
	if (rc && rc != CORRAL_ESHUTDOWN)
		c->ops->bad_frame(c->ctx, rc); /* logs it, rate-limited */
	if (rc)
		reply_error(c, req, rc);
	else
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
	ev->on_add = on_added;
	ev->arg = c;
	c->logs = ops->logs ? ops->logs(ctx) : NULL;
	if (c->logs)
		logring_set_notify(c->logs, on_added, c);
	*out = c;
	return 0;
}

void control_answer(ipc_req *req, const ipc_cmd_result *r)
{
	nng_msg *reply = NULL;
	if (ipc_pack_cmd_result(&reply, r) != 0)
		reply = NULL; /* dropped: the client times out */
	ipc_srv_reply(req, reply);
}

static void control_freed(uv_handle_t *h)
{
	free(h->data);
}

static void close_now(control *c)
{
	/* Let the last replies (the supervisor's own end) go out. */
	ipc_srv_close_when_sent(c->srv, LINGER_MS);
	uv_close((uv_handle_t *)&c->timer, control_freed);
}

static void on_linger(uv_timer_t *t)
{
	close_now(t->data);
}

void control_close(control *c)
{
	if (!c)
		return;
	c->ev->on_add = NULL;
	if (c->logs)
		logring_set_notify(c->logs, NULL, NULL);
	/* From here on every answer is a last one (LOGS says so: a
	 * follower stops instead of waiting on a socket that is gone). */
	c->closing = 1;
	list_node *n, *tmp;
	list_foreach_safe(n, tmp, &c->waiters) {
		waiter *w = list_entry(n, waiter, node);
		list_remove(&w->node);
		reply_waiter(c, w); /* what there is */
		c->answered_ms = uv_now(c->loop);
		free(w);
	}
	c->nwaiters = 0;
	if (c->answered_ms && uv_now(c->loop) - c->answered_ms < RECENT_MS) {
		uv_ref((uv_handle_t *)&c->timer);
		uv_timer_start(&c->timer, on_linger, LINGER_MS, 0);
		return;
	}
	close_now(c);
}
