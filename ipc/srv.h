/*
 * srv.h - an nng REP server bridged onto a libuv loop: the jobs front end
 * and the control socket.
 *
 * Requests are served through a growing set of REP contexts, so many are
 * open at once and each reply waits for its pipe instead of being dropped
 * (nng's raw REP drops a reply when its pipe's small send queue is full:
 * under a burst of replies to one client, about 1 in 300 vanished).  A
 * request that is not answered at once (a job, a long-poll for events)
 * simply keeps its context until it is.
 *
 * Each request must be answered exactly once with ipc_srv_reply(), which
 * frees its context for the next request.
 *
 * A connection whose replies wait and that has taken none of them for
 * IPC_SRV_STALL_MS is closed (a client that does not read would otherwise
 * hold every context, one per request it sends; see srv.c); a client that
 * reads, however slowly, is never cut.  Cuts and failed sends are logged
 * rate-limited (common/ratelog.h).
 */
#ifndef IPC_SRV_H
#define IPC_SRV_H

#include <nng/nng.h>
#include <stdint.h>
#include <uv.h>

#include "ipc/chan.h"

typedef struct ipc_srv ipc_srv;
typedef struct ipc_req ipc_req;

#define IPC_SRV_STALL_MS 5000

/* Loop thread.  Takes msg. */
typedef void (*ipc_req_cb)(ipc_req *r, nng_msg *msg, void *arg);

/*
 * Listens on url (ipc:// listeners get o->perms); grows to at most
 * max_open requests open at once (beyond that, requests wait in nng's
 * queues).  0, CORRAL_EBUSY when the address is in use, or another code.
 */
int ipc_srv_open(ipc_srv **out, uv_loop_t *loop, const char *url,
                 const ipc_sockopts *o, unsigned max_open, ipc_req_cb cb,
                 void *arg);
/* Loop thread.  Takes msg; a NULL msg drops the request (its client
 * times out) -- only for when not even an error reply can be built. */
void ipc_srv_reply(ipc_req *r, nng_msg *msg);
/* The URL it listens on (a tcp:// port 0 resolved to the real one). */
const char *ipc_srv_url(const ipc_srv *s);
/* Requests handed to the loop and not answered yet. */
unsigned ipc_srv_open_requests(const ipc_srv *s);

/* Contexts open now: grown by bursts, retired once they pass (tests). */
unsigned ipc_srv_contexts(const ipc_srv *s);
/* Lets the loop end while the server is open. */
void ipc_srv_unref(ipc_srv *s);
/* Connections closed for not reading their replies, by every server of
 * this process (status: slow_readers).  Any thread. */
unsigned long ipc_srv_slow_readers(void);
/* Loop thread.  Never blocks (see ipc_close_later); requests not answered
 * yet are dropped with the socket, and so are replies still being sent. */
void ipc_srv_close(ipc_srv *s);
/* The same, once the replies already made have been sent (or after
 * max_wait_ms): for last answers, such as a stream's final events. */
void ipc_srv_close_when_sent(ipc_srv *s, uint64_t max_wait_ms);

#endif
