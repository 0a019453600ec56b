/*
 * srv.c - see srv.h.
 *
 * Threads: ctx_done() runs on nng's threads; for a received request it only
 * pushes it onto the bridge.  Replies are started from the loop with
 * nng_ctx_send(), which is thread-safe; its completion re-arms the
 * context's receive on the nng thread.  A context is busy from the moment
 * its request reaches the loop until its reply is sent.  When every
 * context is busy, the loop opens more (doubling, up to max_open).
 */
#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <stdlib.h>
#include <string.h>

#include "corral_base.h"
#include "ipc/bridge.h"
#include "ipc/guard.h"
#include "ipc/nngerr.h"
#include "ipc/srv.h"

#define FIRST_CONTEXTS 16

struct ipc_req {
	ipc_srv *s;
	nng_ctx ctx;
	nng_aio *aio;
	int sending; /* the aio is sending a reply (else receiving) */
};

struct ipc_srv {
	ipc_bridge b; /* first */
	nng_socket sock;
	ipc_guard *guard;
	ipc_req_cb cb;
	void *arg;
	unsigned max_open;
	ipc_req **reqs; /* every context made (loop thread; the closer) */
	unsigned nreqs;
	unsigned busy;  /* handed to the loop, not yet answered */
	unsigned sending; /* replies handed to nng, not yet sent */
	int close_when_sent;
	uv_timer_t *linger; /* the bound on close_when_sent's wait */
};

/* nng thread. */
static void ctx_done(void *arg)
{
	ipc_req *r = arg;
	int rv = nng_aio_result(r->aio);
	if (r->sending) {
		r->sending = 0;
		if (rv && nng_aio_get_msg(r->aio))
			nng_msg_free(nng_aio_get_msg(r->aio));
		ipc_item sent = {.kind = IPC_ITEM_SENT, .tag = r};
		(void)ipc_bridge_push(&r->s->b, &sent); /* closing: moot */
		if (rv != NNG_ECLOSED)
			nng_ctx_recv(r->ctx, r->aio);
		return;
	}
	if (rv) {
		if (rv != NNG_ECLOSED && rv != NNG_ECANCELED)
			nng_ctx_recv(r->ctx, r->aio);
		return;
	}
	ipc_item it = {.kind = IPC_ITEM_MSG, .msg = nng_aio_get_msg(r->aio),
	               .tag = r};
	if (ipc_bridge_push(&r->s->b, &it) != 0) {
		nng_msg_free(it.msg);
		/* Out of memory (or closing): take the next request. */
		nng_ctx_recv(r->ctx, r->aio);
	}
}

/* Loop thread: one more context, receiving. */
static int add_ctx(ipc_srv *s)
{
	if (s->nreqs >= s->max_open)
		return CORRAL_ENOSPC;
	ipc_req **nr = realloc(s->reqs, (s->nreqs + 1) * sizeof *nr);
	if (!nr)
		return CORRAL_ENOMEM;
	s->reqs = nr;
	ipc_req *r = calloc(1, sizeof *r);
	if (!r)
		return CORRAL_ENOMEM;
	r->s = s;
	int rc = err_from_nng(nng_ctx_open(&r->ctx, s->sock));
	if (!rc && (rc = err_from_nng(nng_aio_alloc(&r->aio, ctx_done, r))))
		nng_ctx_close(r->ctx);
	if (rc) {
		free(r);
		return rc;
	}
	s->reqs[s->nreqs++] = r;
	nng_ctx_recv(r->ctx, r->aio);
	return 0;
}

static void close_now(ipc_srv *s);

static void deliver(ipc_bridge *b, ipc_item *it)
{
	ipc_srv *s = (ipc_srv *)b;
	if (it->kind == IPC_ITEM_SENT) {
		if (s->sending)
			s->sending--;
		if (s->close_when_sent && !s->sending)
			close_now(s);
		return;
	}
	s->busy++;
	/* Every context busy -- with a request, or with a reply nng has not
	 * handed to its pipe yet (a client slow to read holds those) -- open
	 * more, so that further requests (including ones to be answered
	 * "busy") get in. */
	if (s->busy + s->sending >= s->nreqs) {
		unsigned want = s->nreqs;
		while (want-- && add_ctx(s) == 0)
			;
	}
	s->cb(it->tag, it->msg, s->arg);
}

void ipc_srv_reply(ipc_req *r, nng_msg *msg)
{
	r->s->busy--;
	if (!msg) {
		nng_ctx_recv(r->ctx, r->aio);
		return;
	}
	r->sending = 1;
	r->s->sending++;
	nng_aio_set_msg(r->aio, msg);
	nng_ctx_send(r->ctx, r->aio);
}

const char *ipc_srv_url(const ipc_srv *s)
{
	return s->guard ? ipc_guard_url(s->guard) : "";
}

unsigned ipc_srv_open_requests(const ipc_srv *s)
{
	return s->busy;
}

void ipc_srv_unref(ipc_srv *s)
{
	uv_unref((uv_handle_t *)&s->b.async);
}

static void srv_free(ipc_bridge *b)
{
	ipc_srv *s = (ipc_srv *)b;
	free(s->reqs);
	free(s);
}

int ipc_srv_open(ipc_srv **out, uv_loop_t *loop, const char *url,
                 const ipc_sockopts *o, unsigned max_open, ipc_req_cb cb,
                 void *arg)
{
	int rc;
	ipc_srv *s = calloc(1, sizeof *s);
	if (!s)
		return CORRAL_ENOMEM;
	s->cb = cb;
	s->arg = arg;
	s->max_open = max_open ? max_open : 1;
	if ((rc = err_from_nng(nng_rep0_open(&s->sock)))) {
		free(s);
		return rc;
	}
	if ((rc = ipc_sock_setopts(s->sock, o, 1)) ||
	    (rc = ipc_bridge_init(&s->b, loop, deliver, srv_free))) {
		nng_close(s->sock);
		free(s);
		return rc;
	}
	if ((rc = ipc_guard_listen(&s->guard, loop, s->sock, url, o))) {
		ipc_srv_close(s);
		return rc;
	}
	for (unsigned i = 0; i < FIRST_CONTEXTS && i < s->max_open; i++)
		if ((rc = add_ctx(s)) != 0) {
			ipc_srv_close(s);
			return rc;
		}
	*out = s;
	return 0;
}

/* On a closer thread: nng_close() may hang (see bridge.h). */
static void srv_closer(void *arg)
{
	ipc_srv *s = arg;
	nng_close(s->sock); /* aborts every context's operation */
	for (unsigned i = 0; i < s->nreqs; i++) {
		nng_aio_free(s->reqs[i]->aio); /* waits out its callback */
		free(s->reqs[i]);
	}
	ipc_bridge_release(&s->b);
}

static void linger_freed(uv_handle_t *h)
{
	free(h);
}

static void close_now(ipc_srv *s)
{
	if (s->linger) {
		uv_close((uv_handle_t *)s->linger, linger_freed);
		s->linger = NULL;
	}
	s->close_when_sent = 0;
	ipc_guard_close(s->guard); /* before nng closes its listener */
	s->guard = NULL;
	ipc_bridge_close(&s->b, srv_closer);
}

void ipc_srv_close(ipc_srv *s)
{
	if (s)
		close_now(s);
}

static void on_linger(uv_timer_t *t)
{
	close_now(t->data);
}

void ipc_srv_close_when_sent(ipc_srv *s, uint64_t max_wait_ms)
{
	if (!s)
		return;
	if (!s->sending || s->close_when_sent)
		goto now;
	s->linger = malloc(sizeof *s->linger);
	if (!s->linger || uv_timer_init(s->b.async.loop, s->linger) != 0) {
		free(s->linger);
		s->linger = NULL;
		goto now;
	}
	s->linger->data = s;
	uv_timer_start(s->linger, on_linger, max_wait_ms, 0);
	s->close_when_sent = 1;
	return;
now:
	if (!s->close_when_sent)
		close_now(s);
}
