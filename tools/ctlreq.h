/* ctlreq.h - one request to a supervisor's control socket, shared by
 * corralctl and corral-load. */
#ifndef TOOLS_CTLREQ_H
#define TOOLS_CTLREQ_H

#include <nng/nng.h>
#include <stdint.h>

#include "ipc/proto.h"

/* Sends req (taken in every case) to url and waits up to timeout_ms for
 * *reply.  0 or a negative corral_err. */
int ctl_request(const char *url, uint64_t timeout_ms, nng_msg *req,
                nng_msg **reply);

/* Asks RUNDIR/control for its status.  On 0, free st with
 * ipc_status_free().  An ERROR reply gives its code. */
int ctl_status(const char *rundir, uint64_t timeout_ms, ipc_status *st);

#endif
