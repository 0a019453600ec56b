/*
 * control.h - the control socket: nng REP at ipc://RUNDIR/control, mode
 * 0600, served through contexts (ipc/srv.h), so a client waiting for
 * events does not hold up a status request.  This module only decodes
 * requests and sends replies; the supervisor answers through ops.  A bad
 * request gets an ERROR reply with its code, never silence.
 */
#ifndef MASTER_CONTROL_H
#define MASTER_CONTROL_H

#include <nng/nng.h>
#include <uv.h>

#include "ipc/srv.h"
#include "master/events.h"
#include "master/logring.h"

typedef struct control control;

typedef struct control_ops {
	/* Builds a STATUS reply.  0 or a corral_err. */
	int (*status)(void *ctx, nng_msg **reply);
	/* A command (reload, restart, scale, stop): the supervisor keeps req
	 * and answers it with control_answer() when the command has ended. */
	void (*command)(void *ctx, ipc_req *req, const ipc_cmd *cmd);
	/* A malformed request arrived (it is answered with an ERROR); the
	 * supervisor logs it, rate-limited (master/badframe.h). */
	void (*bad_frame)(void *ctx, int code);
	/* The log ring LOGS requests read (asked once, at open; it must
	 * outlive the control socket).  NULL, or returning NULL: LOGS
	 * requests get CORRAL_ETYPE. */
	logring *(*logs)(void *ctx);
} control_ops;

/* Listens on url; answers EVENTS requests from ev (and wakes waiting ones
 * when ev grows: it takes ev->on_add) and LOGS requests from ops->logs's
 * ring (the same way: it takes the ring's notify). */
int control_open(control **out, uv_loop_t *loop, const char *url,
                 const control_ops *ops, void *ctx, evlog *ev);
/* Answers a command request (see control_ops.command). */
void control_answer(ipc_req *req, const ipc_cmd_result *r);
void control_close(control *c);

#endif
