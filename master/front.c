/*
 * front.c - see front.h.
 *
 * Threads: ctx_done() runs on nng's threads; it only queues the received
 * message under `mu` and wakes the loop (uv_async), as ipc/chan.c does.
 * Replies are started from the loop with nng_ctx_send(), which is
 * thread-safe; its completion re-arms the context's receive on the nng
 * thread.  A context is busy from the moment its request arrives until its
 * reply is sent.  When every context is busy, the loop opens more (double,
 * up to max_open); beyond that, requests wait in nng's queues.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "corral.h"
#include "ipc/chan.h"
#include "ipc/nngerr.h"
#include "common/log.h"
#include "ipc/proto.h"
#include "master/front.h"

#include <nng/protocol/reqrep0/rep.h>

struct front_req {
	front *f;
	nng_ctx ctx;
	nng_aio *aio;
	int sending;      /* the aio is sending a reply (else receiving) */
	nng_msg *msg;     /* received, waiting for the loop */
	front_req *qnext; /* in the received queue */
};

struct front {
	uv_async_t async; /* first: the handle's memory is the front's */
	atomic_int refs;  /* after close: the loop's handle and the closer */
	nng_socket sock;
	front_cb cb;
	void *arg;
	unsigned max_open;
	front_req **reqs; /* every context made (loop thread) */
	unsigned nreqs;
	unsigned busy;    /* handed to the loop, not yet answered (loop) */

	pthread_mutex_t mu; /* guards the queue and closing */
	front_req *qhead, *qtail;
	int closing;
};

/* nng thread. */
static void ctx_done(void *arg)
{
	front_req *r = arg;
	front *f = r->f;
	int rv = nng_aio_result(r->aio);
	if (r->sending) {
		r->sending = 0;
		if (rv && nng_aio_get_msg(r->aio))
			nng_msg_free(nng_aio_get_msg(r->aio));
		if (rv != NNG_ECLOSED)
			nng_ctx_recv(r->ctx, r->aio);
		return;
	}
	if (rv) {
		if (rv != NNG_ECLOSED && rv != NNG_ECANCELED)
			nng_ctx_recv(r->ctx, r->aio);
		return;
	}
	nng_msg *msg = nng_aio_get_msg(r->aio);
	pthread_mutex_lock(&f->mu);
	if (f->closing) {
		pthread_mutex_unlock(&f->mu);
		nng_msg_free(msg);
		return;
	}
	r->msg = msg;
	r->qnext = NULL;
	if (f->qtail)
		f->qtail->qnext = r;
	else
		f->qhead = r;
	f->qtail = r;
	uv_async_send(&f->async);
	pthread_mutex_unlock(&f->mu);
}

/* Loop thread: one more context, receiving. */
static int add_ctx(front *f)
{
	if (f->nreqs >= f->max_open)
		return CORRAL_ENOSPC;
	front_req **nr = realloc(f->reqs, (f->nreqs + 1) * sizeof *nr);
	if (!nr)
		return CORRAL_ENOMEM;
	f->reqs = nr;
	front_req *r = calloc(1, sizeof *r);
	if (!r)
		return CORRAL_ENOMEM;
	r->f = f;
	int rc = err_from_nng(nng_ctx_open(&r->ctx, f->sock));
	if (!rc && (rc = err_from_nng(nng_aio_alloc(&r->aio, ctx_done, r))))
		nng_ctx_close(r->ctx);
	if (rc) {
		free(r);
		return rc;
	}
	f->reqs[f->nreqs++] = r;
	nng_ctx_recv(r->ctx, r->aio);
	return 0;
}

static void on_async(uv_async_t *h)
{
	front *f = (front *)h;
	pthread_mutex_lock(&f->mu);
	front_req *r = f->qhead;
	f->qhead = f->qtail = NULL;
	pthread_mutex_unlock(&f->mu);
	while (r) {
		front_req *next = r->qnext;
		nng_msg *msg = r->msg;
		r->msg = NULL;
		f->busy++;
		/* All contexts busy: open more, so that further requests
		 * (including ones to be answered "busy") get in. */
		if (f->busy == f->nreqs) {
			unsigned want = f->nreqs;
			while (want-- && add_ctx(f) == 0)
				;
		}
		f->cb(r, msg, f->arg);
		r = next;
	}
}

void front_reply(front_req *r, nng_msg *msg)
{
	r->f->busy--;
	if (!msg) {
		/* Out of memory for even an error reply: drop this request
		 * (its client times out) and take the next. */
		nng_ctx_recv(r->ctx, r->aio);
		return;
	}
	r->sending = 1;
	nng_aio_set_msg(r->aio, msg);
	nng_ctx_send(r->ctx, r->aio);
}

int front_open(front **out, uv_loop_t *loop, const char *url,
               unsigned max_open, front_cb cb, void *arg)
{
	front *f = calloc(1, sizeof *f);
	int rc;
	if (!f)
		return CORRAL_ENOMEM;
	f->cb = cb;
	f->arg = arg;
	f->max_open = max_open ? max_open : 1;
	pthread_mutex_init(&f->mu, NULL);
	if ((rc = err_from_nng(nng_rep0_open(&f->sock))))
		goto fail;
	nng_socket_set_size(f->sock, NNG_OPT_RECVMAXSZ, IPC_MAX_CTL_FRAME);
	nng_listener l;
	rc = err_from_nng(nng_listener_create(&l, f->sock, url));
	if (!rc && strncmp(url, "ipc://", 6) == 0)
		rc = err_from_nng(nng_listener_set_int(l, NNG_OPT_IPC_PERMISSIONS,
		                                       0600));
	if (!rc) {
		int rv = nng_listener_start(l, 0);
		rc = rv == NNG_EADDRINUSE ? CORRAL_EBUSY : err_from_nng(rv);
	}
	if (rc)
		goto fail_sock;
	if (uv_async_init(loop, &f->async, on_async) != 0) {
		rc = CORRAL_ESYS;
		goto fail_sock;
	}
	for (int i = 0; i < 64 && (unsigned)i < f->max_open; i++)
		if ((rc = add_ctx(f)) != 0) {
			front_close(f);
			return rc;
		}
	*out = f;
	return 0;
fail_sock:
	nng_close(f->sock);
fail:
	pthread_mutex_destroy(&f->mu);
	free(f);
	return rc;
}

static void front_unref(front *f)
{
	if (atomic_fetch_sub(&f->refs, 1) == 1) {
		pthread_mutex_destroy(&f->mu);
		free(f);
	}
}

static void front_freed(uv_handle_t *h)
{
	front_unref((front *)h);
}

/* On a closer thread: nng_close() may hang (see ipc/chan.c). */
static void front_closer(void *arg)
{
	front *f = arg;
	nng_close(f->sock); /* aborts every context's operation */
	for (unsigned i = 0; i < f->nreqs; i++) {
		nng_aio_free(f->reqs[i]->aio); /* waits out its callback */
		free(f->reqs[i]);
	}
	free(f->reqs);
	front_unref(f);
}

void front_close(front *f)
{
	if (!f)
		return;
	pthread_mutex_lock(&f->mu);
	f->closing = 1;
	front_req *q = f->qhead;
	f->qhead = f->qtail = NULL;
	pthread_mutex_unlock(&f->mu);
	for (; q; q = q->qnext)
		nng_msg_free(q->msg);
	atomic_store(&f->refs, 2);
	ipc_close_later(front_closer, f);
	uv_close((uv_handle_t *)&f->async, front_freed);
}
