/*
 * guard.h - keeps an nng listener alive through nng 1.5.2's bug #1518
 * (fixed in nng 1.6.0): a connection that closes during the SP handshake
 * -- a port scan, a health probe, nng's own "address in use" check --
 * makes the listener stop accepting for good, with nothing but its "other"
 * error counter to show for it.  Every listener corral owns (control, the
 * jobs front end, each slot's and standby's socket) listens through one.
 *
 * How (guard.c has the details): corral's accept()/accept4() count each
 * connection the OS hands nng for the listener's descriptor and wake the
 * guard; a connection the listener has neither accepted nor refused with a
 * counted error once a handshake had time to end (100 ms for ipc, 250 ms
 * for tcp, judged on the hook's own clock) means its accept loop stopped,
 * and it is replaced: for ipc://, a new listener on a private name in the
 * same directory renamed over the public path (the path is never missing,
 * and the dead one closes without unlinking it); for tcp://, the dead one
 * closes and a new one binds the same address.  Connections established
 * through the dead one close with it; their nng clients reconnect and
 * resend.  A once-a-second backstop rides on existing loop wake-ups.
 *
 * A worker's channel (ipc_sockopts.one_peer) is bound the same way but
 * not watched: one worker dials it once, and if that handshake aborts the
 * worker is gone and its successor dials a socket of its own, while
 * watching could take a slow handshake on a loaded machine for a death.
 *
 * ipc:// listeners always bind a private name first and rename it into
 * place, so the public path is ours to remove: ipc_guard_close() does, if
 * it still names our socket.  Loop thread only.
 */
#ifndef IPC_GUARD_H
#define IPC_GUARD_H

#include <nng/nng.h>
#include <uv.h>

#include "ipc/chan.h"

typedef struct ipc_guard ipc_guard;

/* Starts a guarded listener for s on url (o's permissions for ipc://).
 * 0, CORRAL_EBUSY when the address is in use, or another code. */
int ipc_guard_listen(ipc_guard **out, uv_loop_t *loop, nng_socket s,
                     const char *url, const ipc_sockopts *o);
/* Stops watching (before the socket closes) and removes the public ipc
 * path; frees itself once its handles are closed. */
void ipc_guard_close(ipc_guard *g);

/* The URL listened on (tcp:// port 0 resolved). */
const char *ipc_guard_url(const ipc_guard *g);

/* Dead listeners replaced so far, by every guard of the process. */
unsigned long ipc_guard_heals(void);

#endif
