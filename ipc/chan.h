/*
 * chan.h - an nng pair socket bridged onto a libuv loop: the supervisor's
 * end of each worker's socket, and the worker's end.
 *
 * Received messages and pipe (connection) events come to the loop thread
 * through the one bridge (ipc/bridge.h), in the order they happened, with
 * no lock held.  Request/reply servers use ipc/srv.h on the same bridge.
 */
#ifndef IPC_CHAN_H
#define IPC_CHAN_H

#include <nng/nng.h>
#include <stddef.h>
#include <uv.h>

typedef struct ipc_chan ipc_chan;

/* Loop thread.  The callback owns msg and must free it. */
typedef void (*ipc_msg_cb)(ipc_chan *ch, nng_msg *msg, void *arg);
/* Loop thread.  up = 1 when a peer connected, 0 when one went away. */
typedef void (*ipc_pipe_cb)(ipc_chan *ch, int up, void *arg);

typedef struct ipc_sockopts {
	size_t max_frame; /* NNG_OPT_RECVMAXSZ */
	int bufs;         /* NNG_OPT_SENDBUF and NNG_OPT_RECVBUF, in messages */
	int perms;        /* NNG_OPT_IPC_PERMISSIONS for listeners, 0 = leave */
	int one_peer;     /* a listener for one worker's channel: bound the
	                     guard's way, never healed (ipc/guard.h) */
} ipc_sockopts;

/* Opens a pair0 socket and dials url, synchronously: it fails at once if
 * nobody listens.  For the worker's end. */
int ipc_pair_dial(nng_socket *s, const char *url, const ipc_sockopts *o);

/* Applies o (frame limit, buffers) to any socket; bufs_optional: a
 * protocol without NNG_OPT_SENDBUF is fine.  For ipc/srv.c. */
int ipc_sock_setopts(nng_socket s, const ipc_sockopts *o, int bufs_optional);

/*
 * The listening end: a pair0 socket listening on url through a guard
 * (ipc/guard.h), wrapped as a channel.  0, CORRAL_EBUSY when the address
 * is in use, or another code.
 */
int ipc_chan_listen(ipc_chan **out, uv_loop_t *loop, const char *url,
                    const ipc_sockopts *o, ipc_msg_cb msg_cb,
                    ipc_pipe_cb pipe_cb, void *arg);

/*
 * Wraps sock (the channel takes ownership) and starts receiving.  Returns 0
 * or a negative corral_err; on failure the socket is closed.
 */
int ipc_chan_open(ipc_chan **out, uv_loop_t *loop, nng_socket sock, int flags,
                  ipc_msg_cb msg_cb, ipc_pipe_cb pipe_cb, void *arg);
/* flags: none defined yet; pass 0. */

/*
 * Sends without blocking.  Takes msg in every case (frees it on failure).
 * Returns 0, CORRAL_EAGAIN when the send buffer is full, or another code.
 */
int ipc_chan_send(ipc_chan *ch, nng_msg *msg);

/* Hands the channel's messages to another handler from now on (loop
 * thread): a standby worker's channel moving to the slot that adopts it. */
void ipc_chan_set_handler(ipc_chan *ch, ipc_msg_cb msg_cb, void *arg);

/* Lets the loop end while this channel is open (uv_unref of its wake-up). */
void ipc_chan_unref(ipc_chan *ch);

/*
 * Stops receiving, closes the socket, drops queued messages, and frees the
 * channel once libuv has closed its handle.  Never blocks for long: it waits
 * only for an nng callback already running.  No callback runs afterwards.
 */
void ipc_chan_close(ipc_chan *ch);

/* Runs fn(arg) -- an nng_close() and what must follow it -- on a detached
 * thread, so that no caller waits on nng 1.5.2's close, which can hang
 * (see bridge.h); counted by ipc_chan_wait_closed(). */
void ipc_close_later(void (*fn)(void *), void *arg);

/* Waits up to timeout_ms for sockets still being closed in the background;
 * returns how many are left (0 when all are closed).  Call before exit. */
int ipc_chan_wait_closed(unsigned timeout_ms);

#endif
