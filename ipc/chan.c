/*
 * chan.c - see chan.h.
 *
 * Threads: recv_done() and pipe_event() run on nng's threads and touch only
 * `mu`-guarded fields (queue, pending pipe events, closing).  Everything else
 * belongs to the loop thread.  Close order matters: mark closing under the
 * lock, so a late callback neither queues nor wakes; then nng_aio_stop() to
 * wait out a running callback; only then close the socket and the handle.
 *
 * The socket itself is closed on a short-lived thread of its own
 * (ipc_close_later): nng 1.5.2's nng_close() can block forever once its
 * reaper thread is stuck -- a race in nng's task queue when a busy pipe's
 * peer is killed (nanomsg/nng#1543, #1813, fixed in later nng) -- and the
 * loop must never wait on that.  The channel's memory lives until both the
 * loop (uv_close) and that thread let go.
 */
#include <nng/nng.h>
#include <nng/protocol/pair0/pair.h>
#include <nng/protocol/reqrep0/rep.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#include "corral_base.h"
#include "ipc/chan.h"
#include "ipc/nngerr.h"
#include "common/log.h"

struct ipc_chan {
	uv_async_t async; /* first: the handle's memory is the chan's */
	nng_socket sock;
	nng_aio *aio;
	int flags;
	ipc_msg_cb msg_cb;
	ipc_pipe_cb pipe_cb;
	void *arg;

	pthread_mutex_t mu; /* guards the fields below */
	nng_msg **q;        /* received, not yet handed to the loop */
	size_t qlen, qcap;
	int pipes_up, pipes_down; /* pipe events not yet handed over */
	int closing;

	atomic_int refs; /* after close: the loop's handle and the closer */
};

/* Closer threads still running, for ipc_chan_wait_closed(). */
static atomic_int pending_closes;
static atomic_int warned_stuck;
static atomic_int closes_done;

/* Closes stuck this long (or more at once) are reported, once. */
#define STUCK_CLOSES 8
#define CLOSER_STACK (256 * 1024)

typedef struct closer_job {
	void (*fn)(void *);
	void *arg;
} closer_job;

static void *closer_main(void *p)
{
	closer_job job = *(closer_job *)p;
	free(p);
	job.fn(job.arg);
	atomic_fetch_add(&closes_done, 1);
	atomic_fetch_sub(&pending_closes, 1);
	return NULL;
}

void ipc_close_later(void (*fn)(void *), void *arg)
{
	int n = atomic_fetch_add(&pending_closes, 1) + 1;
	if (n >= STUCK_CLOSES && !atomic_exchange(&warned_stuck, 1))
		log_msg("warning: %d nng socket closes have not returned: "
		        "nng's reaper is stuck (a known nng 1.5.2 bug, fixed "
		        "in later nng); each holds a small thread, and "
		        "shutdown will not wait for them", n);
	closer_job *job = malloc(sizeof *job);
	pthread_attr_t attr;
	pthread_t t;
	int started = 0;
	if (job && pthread_attr_init(&attr) == 0) {
		*job = (closer_job){fn, arg};
		started = pthread_attr_setdetachstate(&attr,
		                                      PTHREAD_CREATE_DETACHED) == 0 &&
		          pthread_attr_setstacksize(&attr, CLOSER_STACK) == 0 &&
		          pthread_create(&t, &attr, closer_main, job) == 0;
		pthread_attr_destroy(&attr);
	}
	if (!started) {
		free(job);
		fn(arg); /* no thread to spare: close here */
		atomic_fetch_sub(&pending_closes, 1);
	}
}

static int set_opts(nng_socket s, const ipc_sockopts *o, int bufs_optional)
{
	int rv = nng_socket_set_size(s, NNG_OPT_RECVMAXSZ, o->max_frame);
	if (rv)
		return err_from_nng(rv);
	if (o->bufs > 0) {
		rv = nng_socket_set_int(s, NNG_OPT_SENDBUF, o->bufs);
		if (!rv)
			rv = nng_socket_set_int(s, NNG_OPT_RECVBUF, o->bufs);
		if (rv && !(bufs_optional && rv == NNG_ENOTSUP))
			return err_from_nng(rv);
	}
	return 0;
}

static int listen_on(nng_socket s, const char *url, const ipc_sockopts *o)
{
	nng_listener l;
	int rv = nng_listener_create(&l, s, url);
	if (rv)
		return err_from_nng(rv);
	if (o->perms) {
		rv = nng_listener_set_int(l, NNG_OPT_IPC_PERMISSIONS, o->perms);
		if (rv && rv != NNG_ENOTSUP)
			return err_from_nng(rv);
	}
	rv = nng_listener_start(l, 0);
	return rv == NNG_EADDRINUSE ? CORRAL_EBUSY : err_from_nng(rv);
}

int ipc_pair_listen(nng_socket *s, const char *url, const ipc_sockopts *o)
{
	int rv = nng_pair0_open(s);
	if (rv)
		return err_from_nng(rv);
	rv = set_opts(*s, o, 0);
	if (!rv)
		rv = listen_on(*s, url, o);
	if (rv)
		nng_close(*s);
	return rv;
}

int ipc_pair_dial(nng_socket *s, const char *url, const ipc_sockopts *o)
{
	int rv = nng_pair0_open(s);
	if (rv)
		return err_from_nng(rv);
	rv = set_opts(*s, o, 0);
	if (!rv)
		rv = err_from_nng(nng_dial(*s, url, NULL, 0));
	if (rv)
		nng_close(*s);
	return rv;
}

int ipc_rep_listen(nng_socket *s, const char *url, const ipc_sockopts *o)
{
	int rv = nng_rep0_open(s);
	if (rv)
		return err_from_nng(rv);
	rv = set_opts(*s, o, 1);
	if (!rv)
		rv = listen_on(*s, url, o);
	if (rv)
		nng_close(*s);
	return rv;
}

/* nng thread. */
static void recv_done(void *arg)
{
	ipc_chan *ch = arg;
	int rv = nng_aio_result(ch->aio);
	nng_msg *msg = rv == 0 ? nng_aio_get_msg(ch->aio) : NULL;

	pthread_mutex_lock(&ch->mu);
	if (ch->closing) {
		pthread_mutex_unlock(&ch->mu);
		if (msg)
			nng_msg_free(msg);
		return;
	}
	if (msg) {
		if (ch->qlen == ch->qcap) {
			size_t ncap = ch->qcap ? ch->qcap * 2 : 16;
			nng_msg **nq = realloc(ch->q, ncap * sizeof *nq);
			if (!nq) {
				/* Cannot queue it: drop it, say so, keep going. */
				log_plain("error: out of memory; dropped a "
				          "received message");
				nng_msg_free(msg);
				msg = NULL;
			} else {
				ch->q = nq;
				ch->qcap = ncap;
			}
		}
		if (msg)
			ch->q[ch->qlen++] = msg;
		uv_async_send(&ch->async);
	}
	pthread_mutex_unlock(&ch->mu);

	if (rv == NNG_ECLOSED || rv == NNG_ECANCELED)
		return;
	if (!(ch->flags & IPC_CHAN_ONE_AT_A_TIME) || rv != 0)
		nng_recv_aio(ch->sock, ch->aio);
}

/* nng thread. */
static void pipe_event(nng_pipe p, nng_pipe_ev ev, void *arg)
{
	ipc_chan *ch = arg;
	(void)p;
	pthread_mutex_lock(&ch->mu);
	if (!ch->closing) {
		if (ev == NNG_PIPE_EV_ADD_POST)
			ch->pipes_up++;
		else
			ch->pipes_down++;
		uv_async_send(&ch->async);
	}
	pthread_mutex_unlock(&ch->mu);
}

/* Loop thread: drain everything queued since the last wake-up. */
static void on_async(uv_async_t *h)
{
	ipc_chan *ch = (ipc_chan *)h;
	for (;;) {
		pthread_mutex_lock(&ch->mu);
		if (ch->closing) {
			pthread_mutex_unlock(&ch->mu);
			return;
		}
		nng_msg **q = ch->q;
		size_t n = ch->qlen;
		int up = ch->pipes_up, down = ch->pipes_down;
		ch->q = NULL;
		ch->qlen = ch->qcap = 0;
		ch->pipes_up = ch->pipes_down = 0;
		pthread_mutex_unlock(&ch->mu);

		if (n == 0 && up == 0 && down == 0) {
			free(q);
			return;
		}
		for (int i = 0; i < up && ch->pipe_cb; i++)
			ch->pipe_cb(ch, 1, ch->arg);
		size_t i = 0;
		for (; i < n; i++) {
			ch->msg_cb(ch, q[i], ch->arg);
			/* The callback may close us: stop handing out. */
			pthread_mutex_lock(&ch->mu);
			int closing = ch->closing;
			pthread_mutex_unlock(&ch->mu);
			if (closing) {
				for (i++; i < n; i++)
					nng_msg_free(q[i]);
				free(q);
				return;
			}
		}
		free(q);
		for (int j = 0; j < down && ch->pipe_cb; j++) {
			ch->pipe_cb(ch, 0, ch->arg);
			pthread_mutex_lock(&ch->mu);
			int closing = ch->closing;
			pthread_mutex_unlock(&ch->mu);
			if (closing)
				return;
		}
	}
}

int ipc_chan_open(ipc_chan **out, uv_loop_t *loop, nng_socket sock, int flags,
                  ipc_msg_cb msg_cb, ipc_pipe_cb pipe_cb, void *arg)
{
	int rc;
	ipc_chan *ch = calloc(1, sizeof *ch);
	if (!ch) {
		nng_close(sock);
		return CORRAL_ENOMEM;
	}
	ch->sock = sock;
	ch->flags = flags;
	ch->msg_cb = msg_cb;
	ch->pipe_cb = pipe_cb;
	ch->arg = arg;
	if (pthread_mutex_init(&ch->mu, NULL) != 0) {
		rc = CORRAL_ESYS;
		goto fail_free;
	}
	if (uv_async_init(loop, &ch->async, on_async) != 0) {
		rc = CORRAL_ESYS;
		goto fail_mutex;
	}
	if ((rc = err_from_nng(nng_aio_alloc(&ch->aio, recv_done, ch))))
		goto fail_async;
	if (pipe_cb) {
		rc = err_from_nng(nng_pipe_notify(sock, NNG_PIPE_EV_ADD_POST,
		                                  pipe_event, ch));
		if (!rc)
			rc = err_from_nng(nng_pipe_notify(
			    sock, NNG_PIPE_EV_REM_POST, pipe_event, ch));
		if (rc)
			goto fail_aio;
	}
	nng_recv_aio(sock, ch->aio);
	*out = ch;
	return 0;

fail_aio:
	nng_aio_free(ch->aio);
fail_async:
	nng_close(sock);
	pthread_mutex_destroy(&ch->mu);
	uv_close((uv_handle_t *)&ch->async, (uv_close_cb)free);
	return rc;
fail_mutex:
	pthread_mutex_destroy(&ch->mu);
fail_free:
	nng_close(sock);
	free(ch);
	return rc;
}

int ipc_chan_send(ipc_chan *ch, nng_msg *msg)
{
	int rv = nng_sendmsg(ch->sock, msg, NNG_FLAG_NONBLOCK);
	if (rv) {
		nng_msg_free(msg);
		return err_from_nng(rv);
	}
	return 0;
}

void ipc_chan_set_handler(ipc_chan *ch, ipc_msg_cb msg_cb, void *arg)
{
	ch->msg_cb = msg_cb;
	ch->arg = arg;
}

void ipc_chan_rearm(ipc_chan *ch)
{
	nng_recv_aio(ch->sock, ch->aio);
}

void ipc_chan_unref(ipc_chan *ch)
{
	uv_unref((uv_handle_t *)&ch->async);
}

static void chan_unref(ipc_chan *ch)
{
	if (atomic_fetch_sub(&ch->refs, 1) == 1) {
		pthread_mutex_destroy(&ch->mu);
		free(ch);
	}
}

static void chan_free(uv_handle_t *h)
{
	chan_unref((ipc_chan *)h);
}

static void chan_closer(void *arg)
{
	ipc_chan *ch = arg;
	nng_close(ch->sock);
	nng_aio_free(ch->aio);
	chan_unref(ch);
}

/* Gives up early when no close has finished for this long: the rest are
 * stuck in nng for good, and waiting longer only delays the exit. */
#define CLOSE_STALL_MS 250

int ipc_chan_wait_closed(unsigned timeout_ms)
{
	int last = atomic_load(&closes_done);
	unsigned stalled = 0;
	for (unsigned waited = 0; atomic_load(&pending_closes) > 0;
	     waited++) {
		if (waited >= timeout_ms || stalled >= CLOSE_STALL_MS)
			return atomic_load(&pending_closes);
		struct timespec ts = {0, 1000000};
		nanosleep(&ts, NULL);
		int done = atomic_load(&closes_done);
		stalled = done == last ? stalled + 1 : 0;
		last = done;
	}
	return 0;
}

void ipc_chan_close(ipc_chan *ch)
{
	pthread_mutex_lock(&ch->mu);
	ch->closing = 1;
	pthread_mutex_unlock(&ch->mu);

	nng_aio_stop(ch->aio);
	for (size_t i = 0; i < ch->qlen; i++)
		nng_msg_free(ch->q[i]);
	free(ch->q);
	ch->q = NULL;
	ch->qlen = ch->qcap = 0;

	atomic_store(&ch->refs, 2);
	ipc_close_later(chan_closer, ch);
	uv_close((uv_handle_t *)&ch->async, chan_free);
}
