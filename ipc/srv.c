/*
 * srv.c - see srv.h.
 *
 * Threads: ctx_done() runs on nng's threads; for a received request it only
 * pushes it onto the bridge.  Replies are started from the loop with
 * nng_ctx_send(), which is thread-safe; its completion re-arms the
 * context's receive on the nng thread.  A context is busy from the moment
 * its request reaches the loop until its reply is sent.  When every
 * context is busy, the loop opens more (doubling, up to max_open).
 *
 * Fewer again after a burst (retire_some): past twice what is in use (and
 * past FIRST_CONTEXTS), the loop marks contexts to go.  A marked one that
 * is receiving has its receive cancelled; one that holds a request goes
 * once its reply is sent.  Either way ctx_done does not re-arm it and
 * tells the loop (IPC_ITEM_RETIRED), which frees it -- or re-arms it if
 * the server has got busy again meanwhile.  A request that arrives as the
 * cancel is made is delivered as usual.  Until the loop has taken it out,
 * a retired context stays in reqs[], so the closer frees it at the
 * latest.
 *
 * Clients that do not read: nng's REP hands a pipe one reply at a time;
 * the next ones wait, each holding its context, until the transport has
 * written the one before.  A client that sends requests and never reads
 * the replies (or stops reading) would so take every context in turn, one
 * per request it sends, and hold them for good: the server would stop
 * taking requests from anyone.  So the loop keeps, per connection with
 * replies waiting, when one was last handed on, and a sweep closes a
 * connection that has taken none for IPC_SRV_STALL_MS (nng then ends its
 * waiting replies as sent, freeing their contexts; a REQ client that
 * does read asks again on its next connection).  A slow reader that
 * still takes a reply now and then is never cut, and no reply is timed
 * out on its own: nng's REP cannot send it again once its send failed.
 */
#include <inttypes.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/ratelog.h"
#include "corral_base.h"
#include "ipc/bridge.h"
#include "ipc/guard.h"
#include "ipc/nngerr.h"
#include "ipc/srv.h"

#define FIRST_CONTEXTS 16
#define STALL_CHECK_MS 1000 /* the sweep for connections that do not read */
#define PIPE_BUCKETS 64

/* Connections cut for not reading, every server together (status). */
static atomic_ulong slow_readers;

struct ipc_req {
	ipc_srv *s;
	nng_ctx ctx;
	nng_aio *aio;
	int sending; /* the aio is sending a reply (else receiving) */
	nng_pipe pipe; /* loop thread: the connection of its request */
	unsigned idx;  /* loop thread: its place in s->reqs */
	unsigned held; /* loop thread: its requests not yet answered and sent */
	int parked;    /* loop thread: retired by ctx_done, waiting for the
	                * SENTs still on their way before it is freed */
	atomic_int retire_me; /* set by the loop, read by ctx_done */
	int tracked;   /* loop thread: its reply counts in a wpipe */
};

/* A connection with replies waiting to be handed to it (loop thread). */
typedef struct wpipe {
	struct wpipe *next;
	nng_pipe pipe;
	unsigned waiting;     /* replies handed to nng, not yet on the pipe */
	uint64_t progress_ms; /* uv_now() of the last one handed on, or of
	                       * the first that began waiting */
	int cut;              /* closed for not reading */
} wpipe;

struct ipc_srv {
	ipc_bridge b; /* first */
	nng_socket sock;
	ipc_guard *guard;
	ipc_req_cb cb;
	void *arg;
	unsigned max_open;
	ipc_req **reqs; /* every context made (loop thread; the closer) */
	unsigned marked; /* of them, marked to retire, not yet retired */
	unsigned nreqs;
	unsigned busy;  /* handed to the loop, not yet answered */
	unsigned sending; /* replies handed to nng, not yet sent */
	int close_when_sent;
	uv_timer_t *linger; /* the bound on close_when_sent's wait */
	uv_timer_t *stall;  /* the sweep for clients that do not read */
	wpipe *pipes[PIPE_BUCKETS]; /* connections with replies waiting */
	unsigned npipes;
	ratelog cut_rl, fail_rl; /* their log lines */
	unsigned long send_failed;
};

/* nng thread. */
static void ctx_done(void *arg)
{
	ipc_req *r = arg;
	int rv = nng_aio_result(r->aio);
	int retire = atomic_load(&r->retire_me);
	if (r->sending) {
		r->sending = 0;
		if (rv && nng_aio_get_msg(r->aio))
			nng_msg_free(nng_aio_get_msg(r->aio));
		ipc_item sent = {.kind = retire ? IPC_ITEM_RETIRED
		                                : IPC_ITEM_SENT,
		                 .tag = r, .rv = rv};
		/* Re-armed before the loop hears of it: once the loop has
		 * taken the SENT, the context is receiving (or has its next
		 * request), so a cancel from the loop then finds it.
		 * Closing: moot.  Out of memory: a marked context is kept
		 * idle, and freed by the closer. */
		if (rv != NNG_ECLOSED && !retire)
			nng_ctx_recv(r->ctx, r->aio);
		(void)ipc_bridge_push(&r->s->b, &sent);
		return;
	}
	if (rv) {
		if (rv == NNG_ECANCELED && retire) {
			ipc_item gone = {.kind = IPC_ITEM_RETIRED, .tag = r,
			                 .rv = NNG_ECANCELED};
			(void)ipc_bridge_push(&r->s->b, &gone);
		} else if (rv != NNG_ECLOSED && rv != NNG_ECANCELED) {
			nng_ctx_recv(r->ctx, r->aio);
		}
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
	r->idx = s->nreqs;
	s->reqs[s->nreqs++] = r;
	nng_ctx_recv(r->ctx, r->aio);
	return 0;
}

/* Loop thread: r is marked, has no operation pending and nothing on its
 * way to the loop. */
static void retire_ctx(ipc_srv *s, ipc_req *r)
{
	s->marked--;
	r->parked = 0;
	atomic_store(&r->retire_me, 0);
	if (s->nreqs <= FIRST_CONTEXTS ||
	    2 * (s->busy + s->sending) >= s->nreqs - 1) {
		nng_ctx_recv(r->ctx, r->aio); /* busy again: keep it */
		return;
	}
	ipc_req *last = s->reqs[--s->nreqs];
	s->reqs[r->idx] = last;
	last->idx = r->idx;
	nng_aio_free(r->aio); /* its callback has returned or is returning */
	nng_ctx_close(r->ctx);
	free(r);
}

/* Loop thread: marks the contexts past twice what is in use (and past
 * FIRST_CONTEXTS), from the end of reqs; cancels the receive of those
 * that wait for a request. */
static void retire_some(ipc_srv *s)
{
	unsigned keep = 2 * (s->busy + s->sending);
	if (keep < FIRST_CONTEXTS)
		keep = FIRST_CONTEXTS;
	if (s->close_when_sent || s->nreqs <= keep + s->marked)
		return;
	unsigned excess = s->nreqs - keep - s->marked;
	for (unsigned i = s->nreqs; excess && i-- > 0;) {
		ipc_req *r = s->reqs[i];
		if (atomic_load(&r->retire_me))
			continue;
		atomic_store(&r->retire_me, 1);
		s->marked++;
		excess--;
		if (!r->held)
			nng_aio_cancel(r->aio);
	}
}

static void close_now(ipc_srv *s);

/* ---- connections that do not read (loop thread) ---- */

static wpipe **wpipe_find(ipc_srv *s, nng_pipe p)
{
	wpipe **pp = &s->pipes[nng_pipe_id(p) % PIPE_BUCKETS];
	while (*pp && nng_pipe_id((*pp)->pipe) != nng_pipe_id(p))
		pp = &(*pp)->next;
	return pp;
}

static void on_stall_check(uv_timer_t *t);

/* r's reply was handed to nng: its connection has one more waiting. */
static void wpipe_add(ipc_srv *s, ipc_req *r)
{
	wpipe **pp = wpipe_find(s, r->pipe), *w = *pp;
	if (!w) {
		if (!(w = calloc(1, sizeof *w)))
			return; /* untracked: never cut for it, never lost */
		w->pipe = r->pipe;
		w->progress_ms = uv_now(s->b.async.loop);
		*pp = w;
		if (!s->npipes++ && s->stall)
			uv_timer_start(s->stall, on_stall_check, STALL_CHECK_MS,
			               STALL_CHECK_MS);
	}
	w->waiting++;
	r->tracked = 1;
}

/* r's reply left the queue (sent, or its connection gone). */
static void wpipe_done(ipc_srv *s, ipc_req *r)
{
	if (!r->tracked)
		return;
	r->tracked = 0;
	wpipe **pp = wpipe_find(s, r->pipe), *w = *pp;
	if (!w)
		return;
	w->progress_ms = uv_now(s->b.async.loop);
	if (--w->waiting)
		return;
	*pp = w->next;
	free(w);
	if (!--s->npipes && s->stall)
		uv_timer_stop(s->stall);
}

/* Closes w's connection: nng ends its waiting replies as sent, so they
 * come back through wpipe_done. */
static void cut(ipc_srv *s, wpipe *w)
{
	uint64_t held = 0;
	w->cut = 1;
	if (nng_pipe_close(w->pipe) != 0)
		return; /* already gone: its replies end anyway */
	unsigned long n = atomic_fetch_add(&slow_readers, 1) + 1;
	if (ratelog_ok(&s->cut_rl, &held))
		log_warn("%s: closed a connection that had taken none of its "
		         "%u waiting replies for %d s (a client that does not "
		         "read; %lu such closed so far, %" PRIu64 " such lines "
		         "held back)", ipc_srv_url(s), w->waiting,
		         IPC_SRV_STALL_MS / 1000, n, held);
}

static void on_stall_check(uv_timer_t *t)
{
	ipc_srv *s = t->data;
	uint64_t now = uv_now(t->loop);
	for (unsigned i = 0; i < PIPE_BUCKETS; i++)
		for (wpipe *w = s->pipes[i]; w; w = w->next)
			if (!w->cut && now - w->progress_ms >= IPC_SRV_STALL_MS)
				cut(s, w);
}

static void on_sent(ipc_srv *s, ipc_item *it)
{
	uint64_t held = 0;
	wpipe_done(s, it->tag);
	if (s->sending)
		s->sending--;
	/* Closing: every reply still out fails, and that is expected. */
	if (it->rv && it->rv != NNG_ECLOSED && !s->close_when_sent) {
		s->send_failed++;
		if (ratelog_ok(&s->fail_rl, &held))
			log_warn("%s: a reply could not be sent: %s (%lu so "
			         "far, %" PRIu64 " such lines held back)",
			         ipc_srv_url(s), nng_strerror(it->rv),
			         s->send_failed, held);
	}
	if (s->close_when_sent && !s->sending) {
		close_now(s);
		return;
	}
	ipc_req *r = it->tag;
	r->held--;
	if (it->kind == IPC_ITEM_RETIRED)
		r->parked = 1;
	if (r->parked && !r->held)
		retire_ctx(s, r);
	else if (!r->parked && !r->held && atomic_load(&r->retire_me))
		nng_aio_cancel(r->aio); /* marked while it was replying */
	retire_some(s);
}

static void deliver(ipc_bridge *b, ipc_item *it)
{
	ipc_srv *s = (ipc_srv *)b;
	if (it->kind == IPC_ITEM_SENT) {
		on_sent(s, it);
		return;
	}
	ipc_req *r = it->tag;
	if (it->kind == IPC_ITEM_RETIRED) {
		if (it->rv != NNG_ECANCELED) {
			on_sent(s, it);
			return;
		}
		r->parked = 1; /* cancelled while receiving */
		if (!r->held)
			retire_ctx(s, r);
		return;
	}
	r->pipe = nng_msg_get_pipe(it->msg);
	r->held++;
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
	s->cb(r, it->msg, s->arg);
}

void ipc_srv_reply(ipc_req *r, nng_msg *msg)
{
	r->s->busy--;
	if (!msg) {
		r->held--;
		if (r->parked || atomic_load(&r->retire_me)) {
			/* Nothing pending on it: it goes now, or once the
			 * SENTs still on their way are in. */
			if (!r->held)
				retire_ctx(r->s, r);
			else
				r->parked = 1;
			return;
		}
		nng_ctx_recv(r->ctx, r->aio);
		return;
	}
	r->sending = 1;
	r->s->sending++;
	wpipe_add(r->s, r);
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

unsigned ipc_srv_contexts(const ipc_srv *s)
{
	return s->nreqs;
}

void ipc_srv_unref(ipc_srv *s)
{
	uv_unref((uv_handle_t *)&s->b.async);
}

unsigned long ipc_srv_slow_readers(void)
{
	return atomic_load(&slow_readers);
}

static void srv_free(ipc_bridge *b)
{
	ipc_srv *s = (ipc_srv *)b;
	for (unsigned i = 0; i < PIPE_BUCKETS; i++)
		while (s->pipes[i]) {
			wpipe *w = s->pipes[i];
			s->pipes[i] = w->next;
			free(w);
		}
	free(s->reqs);
	free(s);
}

static void timer_freed(uv_handle_t *h)
{
	free(h);
}

/* The sweep's timer: its own allocation, so that it may close after
 * the server is freed.  NULL when it cannot be had: then nobody is cut
 * (what every server did before the sweep). */
static uv_timer_t *stall_timer(ipc_srv *s, uv_loop_t *loop)
{
	uv_timer_t *t = malloc(sizeof *t);
	if (t && uv_timer_init(loop, t) != 0) {
		free(t);
		t = NULL;
	}
	if (!t) {
		log_warn("no memory for the check on clients that do not read "
		         "their replies");
		return NULL;
	}
	t->data = s;
	uv_unref((uv_handle_t *)t);
	return t;
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
	s->stall = stall_timer(s, loop);
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

static void close_now(ipc_srv *s)
{
	/* What the rate limit held back is told at the end, at least. */
	if (s->cut_rl.held)
		log_warn("%s: %" PRIu64 " more connection(s) closed for not "
		         "reading since the last such line (%lu in all, every "
		         "server)", ipc_srv_url(s), s->cut_rl.held,
		         ipc_srv_slow_readers());
	if (s->fail_rl.held)
		log_warn("%s: %" PRIu64 " more replies could not be sent since "
		         "the last such line (%lu in all)", ipc_srv_url(s),
		         s->fail_rl.held, s->send_failed);
	s->cut_rl.held = s->fail_rl.held = 0;
	if (s->linger) {
		uv_close((uv_handle_t *)s->linger, timer_freed);
		s->linger = NULL;
	}
	if (s->stall) {
		uv_close((uv_handle_t *)s->stall, timer_freed);
		s->stall = NULL;
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
