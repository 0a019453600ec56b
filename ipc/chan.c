/*
 * chan.c - see chan.h.  A pair socket on the bridge: recv_done() and
 * pipe_event() run on nng's threads and only push items; deliver() runs on
 * the loop.  The socket is closed on a closer thread (bridge.h) after
 * nng_aio_stop() has waited out a running receive callback.
 */
#include <nng/nng.h>
#include <nng/protocol/pair0/pair.h>
#include <stdlib.h>

#include "common/log.h"
#include "corral_base.h"
#include "ipc/bridge.h"
#include "ipc/chan.h"
#include "ipc/guard.h"
#include "ipc/nngerr.h"

struct ipc_chan {
	ipc_bridge b; /* first */
	nng_socket sock;
	ipc_guard *guard;  /* the listening end's listener, or NULL */
	nng_aio *aio;
	ipc_msg_cb msg_cb; /* loop thread */
	ipc_pipe_cb pipe_cb;
	void *arg;
};

int ipc_sock_setopts(nng_socket s, const ipc_sockopts *o, int bufs_optional)
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

int ipc_pair_dial(nng_socket *s, const char *url, const ipc_sockopts *o)
{
	int rv = nng_pair0_open(s);
	if (rv)
		return err_from_nng(rv);
	rv = ipc_sock_setopts(*s, o, 0);
	if (!rv)
		rv = err_from_nng(nng_dial(*s, url, NULL, 0));
	if (rv)
		nng_close(*s);
	return rv;
}

/* nng thread. */
static void recv_done(void *arg)
{
	ipc_chan *ch = arg;
	int rv = nng_aio_result(ch->aio);
	if (rv == 0) {
		ipc_item it = {.kind = IPC_ITEM_MSG,
		               .msg = nng_aio_get_msg(ch->aio)};
		if (ipc_bridge_push(&ch->b, &it) != 0)
			nng_msg_free(it.msg); /* closing, or out of memory */
	}
	if (rv == NNG_ECLOSED || rv == NNG_ECANCELED)
		return;
	nng_recv_aio(ch->sock, ch->aio);
}

/* nng thread. */
static void pipe_event(nng_pipe p, nng_pipe_ev ev, void *arg)
{
	ipc_chan *ch = arg;
	(void)p;
	ipc_item it = {.kind = ev == NNG_PIPE_EV_ADD_POST ? IPC_ITEM_PIPE_UP
	                                                  : IPC_ITEM_PIPE_DOWN};
	(void)ipc_bridge_push(&ch->b, &it);
}

/* Loop thread. */
static void deliver(ipc_bridge *b, ipc_item *it)
{
	ipc_chan *ch = (ipc_chan *)b;
	if (it->kind == IPC_ITEM_MSG)
		ch->msg_cb(ch, it->msg, ch->arg);
	else if (ch->pipe_cb)
		ch->pipe_cb(ch, it->kind == IPC_ITEM_PIPE_UP, ch->arg);
}

static void chan_free(ipc_bridge *b)
{
	free(b);
}

int ipc_chan_open(ipc_chan **out, uv_loop_t *loop, nng_socket sock, int flags,
                  ipc_msg_cb msg_cb, ipc_pipe_cb pipe_cb, void *arg)
{
	(void)flags;
	int rc;
	ipc_chan *ch = calloc(1, sizeof *ch);
	if (!ch) {
		nng_close(sock);
		return CORRAL_ENOMEM;
	}
	ch->sock = sock;
	ch->msg_cb = msg_cb;
	ch->pipe_cb = pipe_cb;
	ch->arg = arg;
	if ((rc = ipc_bridge_init(&ch->b, loop, deliver, chan_free))) {
		nng_close(sock);
		free(ch);
		return rc;
	}
	if ((rc = err_from_nng(nng_aio_alloc(&ch->aio, recv_done, ch))))
		goto fail;
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
fail:
	nng_close(sock);
	ipc_bridge_abandon(&ch->b);
	return rc;
}

int ipc_chan_listen(ipc_chan **out, uv_loop_t *loop, const char *url,
                    const ipc_sockopts *o, ipc_msg_cb msg_cb,
                    ipc_pipe_cb pipe_cb, void *arg)
{
	nng_socket s;
	ipc_chan *ch;
	int rc = err_from_nng(nng_pair0_open(&s));
	if (rc)
		return rc;
	if ((rc = ipc_sock_setopts(s, o, 0))) {
		nng_close(s);
		return rc;
	}
	if ((rc = ipc_chan_open(&ch, loop, s, 0, msg_cb, pipe_cb, arg)))
		return rc; /* closed s */
	ipc_sockopts one = *o;
	one.one_peer = 1; /* a worker's channel: see ipc/guard.h */
	if ((rc = ipc_guard_listen(&ch->guard, loop, s, url, &one))) {
		ipc_chan_close(ch);
		return rc;
	}
	*out = ch;
	return 0;
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

void ipc_chan_unref(ipc_chan *ch)
{
	uv_unref((uv_handle_t *)&ch->b.async);
}

static void chan_closer(void *arg)
{
	ipc_chan *ch = arg;
	nng_close(ch->sock);
	nng_aio_free(ch->aio);
	ipc_bridge_release(&ch->b);
}

void ipc_chan_close(ipc_chan *ch)
{
	/* Mark closing first, so that a receive completing now is dropped;
	 * then wait out a callback already running. */
	pthread_mutex_lock(&ch->b.mu);
	ch->b.closing = 1;
	pthread_mutex_unlock(&ch->b.mu);
	nng_aio_stop(ch->aio);
	ipc_guard_close(ch->guard); /* before nng closes its listener */
	ch->guard = NULL;
	ipc_bridge_close(&ch->b, chan_closer);
}
