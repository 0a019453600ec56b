/*
 * httpd.h - the supervisor's small HTTP/1.1 server for GET /metrics,
 * /healthz and /readyz: on the supervisor's own libuv loop, single
 * threaded, requests parsed by libhttp-parser (no hand-written parsing).
 *
 * Keep-alive (Prometheus keeps its scrape connection), one request at a
 * time; a client that asks for close, or pipelines, gets Connection: close.
 * GET and HEAD only (405 otherwise); a malformed request is a 400, one
 * whose request line and headers exceed max_request bytes a 431, a body a
 * 413.  A connection must deliver its request and take its answer within
 * timeout_ms (and each next request on a kept-alive connection within
 * timeout_ms of the answer), or it is closed: a slow client costs a
 * descriptor for that long, never the loop.  At max_conns open
 * connections a new one pushes out one that waits for a request without
 * having begun one, or, when there is none, is accepted and closed at
 * once.  Every descriptor is close-on-exec.
 *
 * Loop thread only.
 */
#ifndef MASTER_HTTPD_H
#define MASTER_HTTPD_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct httpd httpd;

/* What a handler answers: status code, content type and the body
 * (malloc()ed; the server frees it; NULL with len 0 for none). */
typedef struct httpd_reply {
	int status;
	const char *type;
	char *body;
	size_t len;
} httpd_reply;

/* Called on the loop for each complete request, with its path (the
 * query string cut off).  head: a HEAD request (the body is dropped). */
typedef void (*httpd_handler)(void *arg, const char *path, int head,
                              httpd_reply *r);

typedef struct httpd_limits {
	unsigned max_conns;   /* open connections (default 64) */
	size_t max_request;   /* bytes of request line + headers (8192) */
	uint64_t timeout_ms;  /* to read the request and write the answer
	                       * (5000) */
} httpd_limits;

/*
 * Serves on fd, a listening TCP or unix stream socket (the server takes
 * it: closed by httpd_close, or here on failure).  lim may be NULL for
 * the defaults.  0, CORRAL_ENOMEM or CORRAL_ESYS.
 */
int httpd_start(httpd **out, uv_loop_t *loop, int fd,
                const httpd_limits *lim, httpd_handler handler, void *arg);

/* Stops listening and closes every connection; frees itself once its
 * handles are closed.  NULL is a no-op. */
void httpd_close(httpd *h);

/* Whether the server is built in (libhttp-parser at configure time). */
int httpd_available(void);

#endif
