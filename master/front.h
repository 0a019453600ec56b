/*
 * front.h - the jobs front end: an nng REP socket served through a growing
 * set of contexts, so that many requests are open at once and every reply
 * waits for its pipe instead of being dropped.  (nng's raw REP drops a
 * reply when its pipe's small send queue is full: under a burst of replies
 * to one client, about 1 in 300 vanished.)
 *
 * Each request is a front_req that must be answered exactly once with
 * front_reply(); answering frees its context for the next request.
 */
#ifndef MASTER_FRONT_H
#define MASTER_FRONT_H

#include <nng/nng.h>
#include <uv.h>

typedef struct front front;
typedef struct front_req front_req;

/* Loop thread.  Takes msg. */
typedef void (*front_cb)(front_req *r, nng_msg *msg, void *arg);

/* Listens on url; grows to at most max_open requests open at once. */
int front_open(front **out, uv_loop_t *loop, const char *url,
               unsigned max_open, front_cb cb, void *arg);
/* Loop thread.  Takes msg (frees it if it cannot be sent). */
void front_reply(front_req *r, nng_msg *msg);
void front_close(front *f);

#endif
