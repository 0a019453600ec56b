/*
 * bridge.h - the one hand-off from nng's threads to a libuv loop, shared by
 * every socket corral bridges (ipc/chan.c: pair sockets; ipc/srv.c: REP
 * servers with contexts).
 *
 * nng completes operations on its own threads; corral's state belongs to
 * the loop thread alone.  An nng callback only appends an item to a
 * mutex-guarded queue and calls uv_async_send(); the loop drains the whole
 * queue per wake-up (one wake-up for many items) and hands each item to the
 * owner's deliver function with no lock held.  See DESIGN.md for why this
 * beats polling NNG_OPT_RECVFD.
 *
 * Closing never waits on nng: the owner's nng_close() runs on a short-lived
 * thread of its own (nng 1.5.2's close can block forever once its reaper is
 * stuck: nanomsg/nng#1543, #1813), and the owner's memory lives until both
 * the loop (uv_close) and that thread have let go of it.
 *
 * Internal to ipc/: the public faces are chan.h and srv.h.
 */
#ifndef IPC_BRIDGE_H
#define IPC_BRIDGE_H

#include <nng/nng.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <uv.h>

typedef enum ipc_item_kind {
	IPC_ITEM_MSG,       /* a received message (msg), tag as the owner set */
	IPC_ITEM_PIPE_UP,   /* a peer connected */
	IPC_ITEM_PIPE_DOWN, /* a peer went away */
	IPC_ITEM_SENT,      /* a reply finished sending (tag: the request) */
	IPC_ITEM_RETIRED,   /* the same, and its context was not re-armed */
} ipc_item_kind;

typedef struct ipc_item {
	ipc_item_kind kind;
	nng_msg *msg;
	void *tag;
	int rv;       /* IPC_ITEM_SENT: nng's result (0: handed to the pipe) */
} ipc_item;

typedef struct ipc_bridge ipc_bridge;

/* Loop thread, no lock held.  Owns it->msg. */
typedef void (*ipc_deliver_fn)(ipc_bridge *b, ipc_item *it);
/* Frees the owner once the loop and the closer thread have let go. */
typedef void (*ipc_free_fn)(ipc_bridge *b);

struct ipc_bridge {
	uv_async_t async; /* first: the handle's memory is the owner's */
	ipc_deliver_fn deliver;
	ipc_free_fn free_fn;

	pthread_mutex_t mu; /* guards the queue and closing */
	ipc_item *q;
	size_t qlen, qcap;
	int closing;

	atomic_int refs; /* after close: the loop's handle and the closer */
};

/* Loop thread.  0 or a negative corral_err. */
int ipc_bridge_init(ipc_bridge *b, uv_loop_t *loop, ipc_deliver_fn deliver,
                    ipc_free_fn free_fn);
/* Undoes ipc_bridge_init() when the owner fails to open: frees the owner
 * (free_fn) once libuv has closed the handle. */
void ipc_bridge_abandon(ipc_bridge *b);

/* nng thread.  Queues it and wakes the loop; 0, or -1 when the bridge is
 * closing or out of memory (the caller still owns it->msg). */
int ipc_bridge_push(ipc_bridge *b, const ipc_item *it);

/* Loop thread: 1 once ipc_bridge_close() was called (a deliver callback
 * may close its own owner). */
int ipc_bridge_closing(ipc_bridge *b);

/*
 * Loop thread.  Stops delivering, frees queued messages, then runs
 * closer(b) -- the owner's nng_close() and what must follow it -- on a
 * closer thread (ipc_close_later), and closes the async handle.  free_fn
 * runs when both are done.
 */
void ipc_bridge_close(ipc_bridge *b, void (*closer)(void *));
/* For the closer: it is done with the owner. */
void ipc_bridge_release(ipc_bridge *b);

#endif
