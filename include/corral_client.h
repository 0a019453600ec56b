/*
 * corral_client.h - send jobs to corral supervisors from any C program.
 *
 * A client holds one nng REQ socket dialed to one or several supervisors'
 * `jobs` URLs; nng spreads requests over the live ones and moves them off a
 * dead one.  Calls are blocking (corral_client_call) or asynchronous
 * (corral_client_call_async, many in flight at once).  Link with
 * `pkg-config --libs corral-client`.  Every function is thread-safe.
 */
#ifndef CORRAL_CLIENT_H
#define CORRAL_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "corral_base.h" /* the CORRAL_E* codes, corral_strerror() */

#ifdef __cplusplus
extern "C" {
#endif

typedef struct corral_client corral_client;

/*
 * Opens a client for the comma-separated nng URLs ("ipc:///run/x/jobs",
 * "tcp://10.0.0.1:5555,tcp://10.0.0.2:5555").  Dialing is in the
 * background: a supervisor that is not up yet is retried.  0 or CORRAL_E*.
 */
CORRAL_EXPORT int corral_client_open(corral_client **out, const char *urls);
/*
 * Waits until a connection to at least one of the supervisors is up: 0, or
 * CORRAL_ENOTCONN after timeout_ms.  Optional (calls wait for a connection
 * anyway); for a tool that should fail fast when nothing listens.
 */
CORRAL_EXPORT int corral_client_wait(corral_client *c, uint64_t timeout_ms);

/* Closes the socket; calls still in flight complete with CORRAL_ECLOSED. */
CORRAL_EXPORT void corral_client_close(corral_client *c);

/* The outcome of one call. */
typedef struct corral_result {
	int status;        /* 0, or CORRAL_EBUSY, ETIMEDOUT, EPOISON,
	                    * ESHUTDOWN, EPLUGIN (the plugin failed it),
	                    * EINVAL (bad request), ECLOSED, ENNG */
	const void *data;  /* the reply when status is 0 */
	size_t len;
	const char *err;   /* the supervisor's reason ("busy", ...) or "" */
	const char *msg;   /* its message, or "" */
} corral_result;

/*
 * Runs one job and waits for its answer.  timeout_ms bounds the job (0:
 * the supervisor's job_timeout) and the wait.  prio is a corral_priority.
 * On return, *reply (malloc()ed, free it) holds the reply when the result
 * is 0.  Returns the status as in corral_result; errbuf (may be NULL) gets
 * "err: msg".
 */
CORRAL_EXPORT int corral_client_call(corral_client *c, const void *payload,
                                     size_t len, uint64_t timeout_ms,
                                     int prio, void **reply,
                                     size_t *reply_len, char *errbuf,
                                     size_t errlen);

/* Called once per async call, on an nng thread; r is valid only during the
 * call. */
typedef void (*corral_client_cb)(void *arg, const corral_result *r);

/*
 * Starts a job and returns at once; cb(arg, result) follows exactly once.
 * The payload is copied.  0, or a CORRAL_E* code (then cb is not called).
 *
 * A call made while nothing else is being sent goes at once, alone.  Calls
 * made while earlier requests are still being sent (they would queue
 * behind them anyway) share one request, up to 64 jobs and 2 MiB, if they
 * have the same timeout: each is still a job of its own, with its own
 * priority, timeout and result, but the results of a shared request come
 * back together, when its last job is answered.
 */
CORRAL_EXPORT int corral_client_call_async(corral_client *c,
                                           const void *payload, size_t len,
                                           uint64_t timeout_ms, int prio,
                                           corral_client_cb cb, void *arg);

/* One job of a batch: its payload, and the arg its callback gets. */
typedef struct corral_call {
	const void *payload;
	size_t len;
	void *arg;
} corral_call;

/*
 * Starts n jobs at once, sent together (as few messages as fit: 64 jobs
 * and 2 MiB of payload each) so that the per-message cost is paid once
 * per batch; each job is still a job of its own (queued, dispatched,
 * retried and answered separately).  cb(calls[i].arg, result) follows
 * exactly once per job, when its whole message is answered.  Payloads are
 * copied.  0, or a CORRAL_E* code (then cb is not called at all).
 */
CORRAL_EXPORT int corral_client_call_batch_async(corral_client *c,
                                                 const corral_call *calls,
                                                 size_t n,
                                                 uint64_t timeout_ms,
                                                 int prio,
                                                 corral_client_cb cb);

#ifdef __cplusplus
}
#endif
#endif
