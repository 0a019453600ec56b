/*
 * client.c - see corral_client.h.  Each request in flight uses its own nng
 * context on the shared REQ socket, so requests proceed in parallel; a
 * request is a small state machine driven by its aio: send done ->
 * receive -> done.  Contexts are kept and reused rather than closed after
 * each request: with nng 1.5.2, opening and closing a context per request
 * under load lost about 1 request in 200 (sent, never delivered); reuse
 * loses none.
 *
 * A batch goes as CALLS messages of at most IPC_MAX_BATCH jobs and
 * BATCH_BYTES of payload, one context each; the RESULTS reply holds every
 * job's outcome in order, and the callback runs once per job.
 *
 * Coalescing.  A single call goes out at once, as a CALL, when nothing
 * else is being sent: a lone call never waits for company.  While earlier
 * requests are still being sent (nng has not taken them: its pipe is busy
 * writing, and a new request would queue behind them anyway), calls are
 * packed into one open CALLS message instead, straight from the caller's
 * buffer; the next send to complete sends it.  So calls that are pending
 * at the same moment share a message, with no timer and no added wait,
 * and the busier the client, the more of them do.  Each keeps its own
 * callback, argument, priority and timeout (only calls with the same
 * timeout share a message, so that each is answered by its own deadline:
 * RESULTS comes back when its last job is answered), and the supervisor
 * still handles each as a job of its own.
 *
 * Locks: `mu` guards the free list, the list of contexts, the count of
 * sends in progress and the open batch.  It is held while a coalesced
 * call's payload is copied into the open batch (that is the one copy the
 * call costs), never while calling nng or a user callback.
 *
 * Copies of a payload: a call's bytes are copied once, into the message
 * that carries them (sized up front, so that no growth copies them
 * again).  A result is handed to the callback where it lies in the
 * received message; corral_client_call() copies it once more, into the
 * buffer it returns.
 */
#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "corral_client.h"
#include "ipc/nngerr.h"
#include "ipc/proto.h"

/* Payload bytes per CALLS message: well inside the supervisor's limit. */
#define BATCH_BYTES (IPC_MAX_CTL_FRAME / 2)
/* A RESULTS reply may carry up to IPC_MAX_BATCH replies of 1 MiB. */
#define RESULTS_MAX (IPC_MAX_BATCH * (IPC_MAX_STR + 512) + 4096)

typedef struct call {
	struct call *next; /* in the client's free list */
	struct corral_client *c;
	nng_ctx ctx;
	nng_aio *aio;
	int sending;
	uint32_t n;        /* jobs: 1 for a CALL, else a CALLS batch */
	int batch;         /* the reply is RESULTS */
	corral_client_cb cbs[IPC_MAX_BATCH];
	void *args[IPC_MAX_BATCH];
} call;

struct corral_client {
	nng_socket sock;
	pthread_mutex_t mu; /* guards everything below */
	pthread_cond_t up;  /* signalled when a pipe comes up */
	unsigned pipes;     /* connections up now */
	call *free;         /* idle contexts, ready for reuse */
	call **all;         /* every context made, for close */
	size_t nall, capall;
	unsigned nsending;  /* requests nng has not taken yet */
	ipc_batch open;     /* coalesced calls, not sent yet (msg NULL: none) */
	call *open_call;    /* the context it will go on */
	uint64_t open_timeout;
	uint32_t last_open_n; /* calls in the last coalesced message */
	int closing;        /* no more sends start from callbacks */
};

/* nng thread: a connection to a supervisor came or went. */
static void on_pipe(nng_pipe p, nng_pipe_ev ev, void *arg)
{
	corral_client *c = arg;
	(void)p;
	pthread_mutex_lock(&c->mu);
	if (ev == NNG_PIPE_EV_ADD_POST)
		c->pipes++;
	else if (c->pipes)
		c->pipes--;
	pthread_cond_broadcast(&c->up);
	pthread_mutex_unlock(&c->mu);
}

CORRAL_EXPORT int corral_client_wait(corral_client *c, uint64_t timeout_ms)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += (time_t)(timeout_ms / 1000);
	ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	int rc = 0;
	pthread_mutex_lock(&c->mu);
	while (!c->pipes && rc == 0)
		rc = pthread_cond_timedwait(&c->up, &c->mu, &ts);
	int ok = c->pipes > 0;
	pthread_mutex_unlock(&c->mu);
	return ok ? 0 : CORRAL_ENOTCONN;
}

CORRAL_EXPORT int corral_client_open(corral_client **out, const char *urls)
{
	corral_client *c = calloc(1, sizeof *c);
	char *list = urls ? strdup(urls) : NULL;
	int rc = CORRAL_ENOMEM;
	if (!c || !list)
		goto fail;
	pthread_mutex_init(&c->mu, NULL);
	pthread_cond_init(&c->up, NULL);
	if ((rc = err_from_nng(nng_req0_open(&c->sock))))
		goto fail;
	if ((rc = err_from_nng(nng_pipe_notify(c->sock, NNG_PIPE_EV_ADD_POST,
	                                       on_pipe, c))) ||
	    (rc = err_from_nng(nng_pipe_notify(c->sock, NNG_PIPE_EV_REM_POST,
	                                       on_pipe, c)))) {
		nng_close(c->sock);
		goto fail;
	}
	nng_socket_set_size(c->sock, NNG_OPT_RECVMAXSZ, RESULTS_MAX);
	/* nng's REQ resends a request whose connection went away (to
	 * another supervisor, when there are several) and, after this long,
	 * one that got no answer.  Every job is answered by its deadline
	 * (at most the supervisor's job_timeout, 30 s by default), so the
	 * timer only matters for a lost connection. */
	nng_socket_set_ms(c->sock, NNG_OPT_REQ_RESENDTIME, 60000);
	char *save = NULL;
	int dialed = 0;
	for (char *u = strtok_r(list, ",", &save); u;
	     u = strtok_r(NULL, ",", &save)) {
		if ((rc = err_from_nng(nng_dial(c->sock, u, NULL,
		                                NNG_FLAG_NONBLOCK)))) {
			nng_close(c->sock);
			goto fail;
		}
		dialed++;
	}
	if (!dialed) {
		rc = CORRAL_EINVAL;
		nng_close(c->sock);
		goto fail;
	}
	free(list);
	*out = c;
	return 0;
fail:
	free(list);
	free(c);
	return rc;
}

CORRAL_EXPORT void corral_client_close(corral_client *c)
{
	if (!c)
		return;
	pthread_mutex_lock(&c->mu);
	c->closing = 1; /* a callback must not start a send on a context
	                 * being freed below */
	pthread_mutex_unlock(&c->mu);
	nng_close(c->sock); /* calls in flight complete with ECLOSED */
	for (size_t i = 0; i < c->nall; i++)
		nng_aio_free(c->all[i]->aio); /* waits out its callback */
	/* Calls still waiting in the open batch were never sent: they get
	 * their one callback too. */
	if (c->open.msg) {
		call *k = c->open_call;
		ipc_batch_abort(&c->open);
		corral_result r = {.status = CORRAL_ECLOSED, .err = "", .msg = ""};
		for (uint32_t i = 0; i < k->n; i++)
			k->cbs[i](k->args[i], &r);
	}
	for (size_t i = 0; i < c->nall; i++)
		free(c->all[i]);
	free(c->all);
	pthread_mutex_destroy(&c->mu);
	pthread_cond_destroy(&c->up);
	free(c);
}

static void to_result(const ipc_result *res, corral_result *r)
{
	if (res->ok) {
		r->data = res->data;
		r->len = res->len;
		r->status = 0;
	} else {
		r->err = res->err;
		r->msg = res->msg;
		r->status = ipc_joberr_code(res->err);
	}
}

/* Calls back once per job of k.  The reply (taken, may be NULL when status
 * says why there is none) is a RESULT, which stands for every job of the
 * call (for a batch: a request the supervisor could not read), or for a
 * batch RESULTS with one result per job, in order.  A RESULTS reply is
 * checked whole before any callback, then read one item at a time. */
static void finish(call *k, int status, nng_msg *reply)
{
	ipc_frame f;
	ipc_result one;
	uint32_t n = 1;
	int rc = status ? status : reply ? 0 : CORRAL_ENNG;
	int results = 0;
	if (reply && !(rc = ipc_decode_msg(reply, RESULTS_MAX, &f))) {
		if (f.type == IPC_RESULT || !k->batch) {
			rc = ipc_unpack_result(&f, &one);
		} else {
			results = 1;
			rc = ipc_results_count(&f, &n);
			if (!rc && n != k->n)
				rc = CORRAL_EFIELD;
			for (uint32_t i = 0; !rc && i < n; i++)
				rc = ipc_unpack_result_at(&f, i, &one);
		}
		if (rc)
			ipc_frame_fini(&f);
	}
	for (uint32_t i = 0; i < k->n; i++) {
		corral_result r = {.status = rc, .err = "", .msg = ""};
		if (!rc) {
			if (results && ipc_unpack_result_at(&f, i, &one) != 0)
				r.status = CORRAL_EFIELD; /* checked above */
			else
				to_result(&one, &r);
		}
		k->cbs[i](k->args[i], &r);
	}
	if (reply && !rc)
		ipc_frame_fini(&f);
}

static void start(call *k, nng_msg *msg, uint64_t timeout_ms);

/* Under mu: the open batch, closed, ready to send (*msg); NULL if none
 * (or if it is empty: an add that failed left it so). */
static call *take_open(corral_client *c, nng_msg **msg)
{
	call *k = c->open_call;
	if (!c->open.msg || c->closing)
		return NULL;
	if (!c->open.n) {
		ipc_batch_abort(&c->open);
		c->open_call = NULL;
		k->next = c->free;
		c->free = k;
		return NULL;
	}
	c->last_open_n = c->open.n;
	ipc_batch_end(&c->open, msg);
	c->open_call = NULL;
	c->nsending++;
	return k;
}

static void put_call(corral_client *c, call *k)
{
	pthread_mutex_lock(&c->mu);
	k->next = c->free;
	c->free = k;
	pthread_mutex_unlock(&c->mu);
}

/* A send has completed (or failed): one fewer in progress, and the calls
 * that coalesced meanwhile go now. */
static void send_done(corral_client *c)
{
	nng_msg *msg = NULL;
	pthread_mutex_lock(&c->mu);
	c->nsending--;
	uint64_t timeout = c->open_timeout;
	call *k = take_open(c, &msg);
	pthread_mutex_unlock(&c->mu);
	if (k)
		start(k, msg, timeout);
}

static void on_aio(void *arg)
{
	call *k = arg;
	corral_client *c = k->c;
	int rv = nng_aio_result(k->aio);
	if (k->sending) {
		k->sending = 0;
		if (rv) {
			nng_msg_free(nng_aio_get_msg(k->aio));
			send_done(c);
			finish(k, err_from_nng(rv), NULL);
			goto done;
		}
		nng_ctx_recv(k->ctx, k->aio);
		send_done(c);
		return;
	}
	finish(k, rv ? err_from_nng(rv) : 0, rv ? NULL : nng_aio_get_msg(k->aio));
done:
	/* Back to the free list; nothing touches k after this. */
	put_call(c, k);
}

/* Under mu: an idle context, or a new one. */
static int get_call_locked(corral_client *c, call **out)
{
	call *k = c->free;
	if (k) {
		c->free = k->next;
		*out = k;
		return 0;
	}
	if (c->nall == c->capall) {
		size_t nc = c->capall ? c->capall * 2 : 64;
		call **na = realloc(c->all, nc * sizeof *na);
		if (!na)
			return CORRAL_ENOMEM;
		c->all = na;
		c->capall = nc;
	}
	if (!(k = calloc(1, sizeof *k)))
		return CORRAL_ENOMEM;
	k->c = c;
	int rc = err_from_nng(nng_ctx_open(&k->ctx, c->sock));
	if (rc) {
		free(k);
		return rc;
	}
	if ((rc = err_from_nng(nng_aio_alloc(&k->aio, on_aio, k)))) {
		nng_ctx_close(k->ctx);
		free(k);
		return rc;
	}
	c->all[c->nall++] = k;
	*out = k;
	return 0;
}

static int get_call(corral_client *c, call **out)
{
	pthread_mutex_lock(&c->mu);
	int rc = get_call_locked(c, out);
	pthread_mutex_unlock(&c->mu);
	return rc;
}

/* How many of the next n calls fit one CALLS message. */
static size_t group_len(const corral_call *calls, size_t n)
{
	size_t m = 0, bytes = 0;
	while (m < n && m < IPC_MAX_BATCH &&
	       (m == 0 || bytes + calls[m].len <= BATCH_BYTES))
		bytes += calls[m++].len;
	return m;
}

static void start(call *k, nng_msg *msg, uint64_t timeout_ms)
{
	/* The supervisor answers by the job's deadline; wait a little more. */
	nng_aio_set_timeout(k->aio, timeout_ms ? (nng_duration)(timeout_ms + 2000)
	                                       : NNG_DURATION_DEFAULT);
	k->sending = 1;
	nng_aio_set_msg(k->aio, msg);
	nng_ctx_send(k->ctx, k->aio);
}

/* Under mu: adds one call to the open batch, opening one (with its
 * context) first if needed.  A batch that cannot take it (full, or another
 * timeout) is closed first, into *flush, to be sent after the unlock. */
static int coalesce_locked(corral_client *c, const ipc_call *req,
                           corral_client_cb cb, void *arg, call **flush,
                           nng_msg **flush_msg, uint64_t *flush_timeout)
{
	int rc;
	if (c->open.msg &&
	    (c->open.n == IPC_MAX_BATCH || c->open_timeout != req->timeout_ms ||
	     (c->open.n && c->open.bytes + req->len > BATCH_BYTES))) {
		*flush_timeout = c->open_timeout;
		*flush = take_open(c, flush_msg);
	}
	if (!c->open.msg) {
		call *k;
		if ((rc = get_call_locked(c, &k)))
			return rc;
		/* Room for as many like it as came together last time (at
		 * least 8): a message that grows copies what it holds. */
		size_t per = req->len + IPC_CALL_OVERHEAD;
		size_t expect = c->last_open_n > 8 ? c->last_open_n : 8;
		size_t reserve = per * expect;
		if (reserve > BATCH_BYTES + per)
			reserve = BATCH_BYTES + per;
		if ((rc = ipc_batch_begin(&c->open, IPC_CALLS, 64 + reserve))) {
			k->next = c->free;
			c->free = k;
			return rc;
		}
		k->n = 0;
		k->batch = 1;
		c->open_call = k;
		c->open_timeout = req->timeout_ms;
	}
	if ((rc = ipc_batch_add_call(&c->open, req)))
		return rc; /* the batch stays as it was, maybe empty */
	call *k = c->open_call;
	k->cbs[k->n] = cb;
	k->args[k->n] = arg;
	k->n++;
	return 0;
}

CORRAL_EXPORT int corral_client_call_async(corral_client *c,
                                           const void *payload, size_t len,
                                           uint64_t timeout_ms, int prio,
                                           corral_client_cb cb, void *arg)
{
	if (!c || !cb || len > IPC_MAX_PAYLOAD || prio < 0 || prio > 3)
		return CORRAL_EINVAL;
	ipc_call req = {.payload = payload, .len = (uint32_t)len,
	                .timeout_ms = timeout_ms, .prio = prio};
	call *flush = NULL;
	nng_msg *msg = NULL;
	uint64_t flush_timeout = 0;
	int rc;
	pthread_mutex_lock(&c->mu);
	if (c->nsending) {
		/* Others are still being sent: go with the next message. */
		rc = coalesce_locked(c, &req, cb, arg, &flush, &msg,
		                     &flush_timeout);
		pthread_mutex_unlock(&c->mu);
		if (flush)
			start(flush, msg, flush_timeout);
		return rc;
	}
	/* Nothing being sent: this call goes now, alone. */
	c->nsending++;
	pthread_mutex_unlock(&c->mu);
	call *k = NULL;
	if ((rc = ipc_pack_call_sized(&msg, &req)) == 0 &&
	    (rc = get_call(c, &k)) != 0)
		nng_msg_free(msg);
	if (rc) {
		send_done(c); /* what coalesced meanwhile still goes */
		return rc;
	}
	k->cbs[0] = cb;
	k->n = 1;
	k->batch = 0;
	k->args[0] = arg;
	start(k, msg, timeout_ms);
	return 0;
}

CORRAL_EXPORT int corral_client_call_batch_async(corral_client *c,
                                                 const corral_call *calls,
                                                 size_t n,
                                                 uint64_t timeout_ms,
                                                 int prio,
                                                 corral_client_cb cb)
{
	if (!c || !cb || (!calls && n) || prio < 0 || prio > 3)
		return CORRAL_EINVAL;
	for (size_t i = 0; i < n; i++)
		if (calls[i].len > IPC_MAX_PAYLOAD)
			return CORRAL_EINVAL;
	/* Everything that can fail happens before the first send, so that
	 * an error means no callback at all. */
	size_t groups = 0;
	for (size_t i = 0; i < n; groups++)
		i += group_len(calls + i, n - i);
	call **ks = calloc(groups ? groups : 1, sizeof *ks);
	nng_msg **msgs = calloc(groups ? groups : 1, sizeof *msgs);
	int rc = ks && msgs ? 0 : CORRAL_ENOMEM;
	size_t g = 0, at = 0;
	for (; !rc && g < groups; g++) {
		size_t m = group_len(calls + at, n - at), bytes = 64;
		for (size_t i = 0; i < m; i++)
			bytes += calls[at + i].len + IPC_CALL_OVERHEAD;
		ipc_batch b;
		if ((rc = ipc_batch_begin(&b, IPC_CALLS, bytes)))
			break;
		for (size_t i = 0; !rc && i < m; i++) {
			ipc_call req = {.payload = calls[at + i].payload,
			                .len = (uint32_t)calls[at + i].len,
			                .timeout_ms = timeout_ms, .prio = prio};
			rc = ipc_batch_add_call(&b, &req);
		}
		if (rc) {
			ipc_batch_abort(&b);
			break;
		}
		ipc_batch_end(&b, &msgs[g]);
		if ((rc = get_call(c, &ks[g]))) {
			nng_msg_free(msgs[g]);
			break;
		}
		ks[g]->n = (uint32_t)m;
		ks[g]->batch = 1;
		for (size_t i = 0; i < m; i++) {
			ks[g]->cbs[i] = cb;
			ks[g]->args[i] = calls[at + i].arg;
		}
		at += m;
	}
	if (rc) {
		while (g-- > 0) {
			nng_msg_free(msgs[g]);
			put_call(c, ks[g]);
		}
	} else {
		pthread_mutex_lock(&c->mu);
		c->nsending += (unsigned)groups;
		pthread_mutex_unlock(&c->mu);
		for (g = 0; g < groups; g++)
			start(ks[g], msgs[g], timeout_ms);
	}
	free(ks);
	free(msgs);
	return rc;
}

typedef struct waiter {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int done;
	int status;
	void *data;
	size_t len;
	char err[300];
} waiter;

static void wake(void *arg, const corral_result *r)
{
	waiter *w = arg;
	pthread_mutex_lock(&w->mu);
	w->status = r->status;
	if (r->status == 0) {
		w->data = malloc(r->len ? r->len : 1);
		if (w->data) {
			memcpy(w->data, r->data, r->len);
			w->len = r->len;
		} else {
			w->status = CORRAL_ENOMEM;
		}
	}
	if (r->err[0])
		snprintf(w->err, sizeof w->err, "%s: %s", r->err, r->msg);
	else if (r->status)
		snprintf(w->err, sizeof w->err, "%s", corral_strerror(r->status));
	w->done = 1;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

CORRAL_EXPORT int corral_client_call(corral_client *c, const void *payload,
                                     size_t len, uint64_t timeout_ms,
                                     int prio, void **reply,
                                     size_t *reply_len, char *errbuf,
                                     size_t errlen)
{
	waiter w = {.mu = PTHREAD_MUTEX_INITIALIZER,
	            .cv = PTHREAD_COND_INITIALIZER};
	int rc = corral_client_call_async(c, payload, len, timeout_ms, prio,
	                                  wake, &w);
	if (rc)
		return rc;
	pthread_mutex_lock(&w.mu);
	while (!w.done)
		pthread_cond_wait(&w.cv, &w.mu);
	pthread_mutex_unlock(&w.mu);
	pthread_mutex_destroy(&w.mu);
	pthread_cond_destroy(&w.cv);
	if (errbuf && errlen)
		snprintf(errbuf, errlen, "%s", w.err);
	if (reply)
		*reply = w.data;
	else
		free(w.data);
	if (reply_len)
		*reply_len = w.len;
	return w.status;
}
