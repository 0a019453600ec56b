/*
 * httpd.c - see httpd.h.
 *
 * A connection's life: accepted -> reading (the parser fed as bytes come;
 * the deadline timer armed) -> a whole request, or an error the parser or
 * the limits found -> the answer written (one uv_write) -> either, when
 * the request allows keep-alive, back to reading the next request (the
 * deadline armed again: the next request must arrive whole within it), or
 * shut down for writing and read until the client's EOF, so that unread
 * input never turns into a reset that destroys the answer (a lingering
 * close, bounded by LINGER_MS) -> closed.  The deadline timer closes a
 * connection at any of these steps.  Requests on one connection are
 * answered one at a time: bytes that follow a whole request in the same
 * read (pipelining) make that answer the connection's last.  At max_conns,
 * a new connection pushes out one that idles between requests, if any, so
 * that idle keep-alive connections never lock a probe out.  A connection
 * holds two handles (stream, timer) and is freed when both are closed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/list.h"
#include "common/log.h"
#include "corral_base.h"
#include "master/httpd.h"

#if HAVE_HTTP_PARSER

#include <http_parser.h>

#define URL_MAX 1024
#define LINGER_MS 1000
#define READ_BUF 16384

typedef struct conn conn;

struct httpd {
	uv_loop_t *loop;
	union {
		uv_handle_t h;
		uv_stream_t s;
		uv_tcp_t tcp;
		uv_pipe_t pipe;
	} lsn;
	int is_tcp;
	httpd_limits lim;
	httpd_handler handler;
	void *arg;
	list_head conns;    /* every open connection */
	unsigned nconns;
	int handles;        /* open handles, listener and connections' */
	int closing;
	char buf[READ_BUF]; /* every read lands here (one loop thread) */
};

struct conn {
	httpd *h;
	list_node node;     /* in h->conns */
	union {
		uv_handle_t h;
		uv_stream_t s;
		uv_tcp_t tcp;
		uv_pipe_t pipe;
	} io;
	uv_timer_t timer;
	uv_write_t wreq;
	uv_shutdown_t sreq;
	http_parser parser;
	char url[URL_MAX];
	size_t url_len;
	size_t bytes;     /* request bytes read so far */
	int status;       /* an error found while parsing: 4xx, else 0 */
	int complete;     /* a whole request arrived */
	int answered;     /* the answer is queued */
	int keep;         /* keep-alive: read the next request after it */
	int closing;
	int refs;         /* open handles: stream and timer */
	char *out;        /* the answer being written */
};

static http_parser_settings settings;

static void maybe_free(httpd *h)
{
	if (h->closing && h->handles == 0)
		free(h);
}

static void conn_handle_closed(uv_handle_t *hd)
{
	conn *c = hd->data;
	httpd *h = c->h;
	h->handles--;
	if (--c->refs == 0) {
		free(c->out);
		free(c);
	}
	maybe_free(h);
}

static void conn_close(conn *c)
{
	if (c->closing)
		return;
	c->closing = 1;
	httpd *h = c->h;
	list_remove(&c->node);
	h->nconns--;
	uv_close((uv_handle_t *)&c->timer, conn_handle_closed);
	uv_close(&c->io.h, conn_handle_closed);
}

static void on_deadline(uv_timer_t *t)
{
	conn_close(t->data);
}

static const char *reason(int status)
{
	switch (status) {
	case 200: return "OK";
	case 400: return "Bad Request";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 413: return "Payload Too Large";
	case 414: return "URI Too Long";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 503: return "Service Unavailable";
	default: return "Unknown";
	}
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
	conn *c = req->data;
	if (status < 0)
		conn_close(c);
	/* else read on until the client's EOF, or the linger deadline */
}

/* Ready for the next request on a kept-alive connection. */
static void next_request(conn *c)
{
	http_parser_init(&c->parser, HTTP_REQUEST);
	c->parser.data = c;
	c->url_len = c->bytes = 0;
	c->status = c->complete = c->answered = c->keep = 0;
	uv_timer_start(&c->timer, on_deadline, c->h->lim.timeout_ms, 0);
}

/* Waiting for a request that has not begun: may be pushed out. */
static int idle(const conn *c)
{
	return !c->closing && !c->answered && c->bytes == 0;
}

static void on_written(uv_write_t *req, int status)
{
	conn *c = req->data;
	free(c->out);
	c->out = NULL;
	if (status < 0 || c->closing) {
		conn_close(c);
		return;
	}
	if (c->keep && !c->h->closing) {
		next_request(c);
		return;
	}
	uv_timer_start(&c->timer, on_deadline, LINGER_MS, 0);
	c->sreq.data = c;
	if (uv_shutdown(&c->sreq, &c->io.s, on_shutdown) != 0)
		conn_close(c);
}

/* Queues the one answer of this connection. */
static void answer(conn *c, httpd_reply *r, int head)
{
	char hdr[256];
	c->answered = 1;
	int n = snprintf(hdr, sizeof hdr,
	                 "HTTP/1.1 %d %s\r\nContent-Type: %s\r\n"
	                 "Content-Length: %zu\r\n%sConnection: %s\r\n\r\n",
	                 r->status, reason(r->status),
	                 r->type ? r->type : "text/plain; charset=utf-8",
	                 r->len, r->status == 405 ? "Allow: GET, HEAD\r\n" : "",
	                 c->keep ? "keep-alive" : "close");
	size_t blen = head ? 0 : r->len;
	c->out = malloc((size_t)n + blen);
	if (!c->out) {
		free(r->body);
		conn_close(c);
		return;
	}
	memcpy(c->out, hdr, (size_t)n);
	if (blen)
		memcpy(c->out + n, r->body, blen);
	free(r->body);
	r->body = NULL;
	uv_buf_t b = uv_buf_init(c->out, (unsigned)((size_t)n + blen));
	c->wreq.data = c;
	if (uv_write(&c->wreq, &c->io.s, &b, 1, on_written) != 0)
		conn_close(c);
}

static void answer_error(conn *c, int status)
{
	char *body = malloc(64);
	int n = body ? snprintf(body, 64, "%d %s\n", status, reason(status))
	             : 0;
	httpd_reply r = {.status = status, .body = body, .len = (size_t)n};
	answer(c, &r, 0);
}

static void dispatch(conn *c)
{
	httpd *h = c->h;
	int head = c->parser.method == HTTP_HEAD;
	if (c->parser.method != HTTP_GET && !head) {
		answer_error(c, 405);
		return;
	}
	c->url[c->url_len] = '\0';
	c->url[strcspn(c->url, "?#")] = '\0';
	httpd_reply r = {.status = 500};
	if (!http_should_keep_alive(&c->parser))
		c->keep = 0;
	h->handler(h->arg, c->url, head, &r);
	answer(c, &r, head);
}

/* ---- parser callbacks ---- */

static int on_url(http_parser *p, const char *at, size_t len)
{
	conn *c = p->data;
	if (c->url_len + len >= URL_MAX) {
		c->status = 414;
		return 1;
	}
	memcpy(c->url + c->url_len, at, len);
	c->url_len += len;
	return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
	(void)at;
	(void)len;
	((conn *)p->data)->status = 413;
	return 1;
}

static int on_message_complete(http_parser *p)
{
	((conn *)p->data)->complete = 1;
	http_parser_pause(p, 1); /* one request per connection */
	return 0;
}

static void on_alloc(uv_handle_t *hd, size_t suggested, uv_buf_t *b)
{
	conn *c = hd->data;
	(void)suggested;
	*b = uv_buf_init(c->h->buf, sizeof c->h->buf);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
	conn *c = s->data;
	if (c->closing)
		return;
	if (n < 0) {
		/* EOF or an error: done, answered or not (a client that
		 * hung up before its request was whole gets nothing). */
		conn_close(c);
		return;
	}
	if (n == 0 || c->answered)
		return; /* lingering, or bytes after a request: dropped */
	size_t len = (size_t)n;
	if (c->bytes + len > c->h->lim.max_request)
		len = c->h->lim.max_request - c->bytes;
	if (len == 0) {
		answer_error(c, 431);
		return;
	}
	c->bytes += len;
	size_t used = http_parser_execute(&c->parser, &settings, b->base, len);
	enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);
	if (c->complete) {
		/* More after the request (pipelined): answered last. */
		c->keep = used == (size_t)n;
		dispatch(c);
	} else if (c->status) {
		answer_error(c, c->status);
	} else if (e != HPE_OK || used != len) {
		answer_error(c, e == HPE_HEADER_OVERFLOW ? 431 : 400);
	} else if (c->bytes >= c->h->lim.max_request) {
		answer_error(c, 431);
	}
}

static void on_connection(uv_stream_t *lsn, int status)
{
	httpd *h = lsn->data;
	if (status < 0 || h->closing)
		return;
	if (h->nconns >= h->lim.max_conns) {
		/* Full: push out one that idles between requests. */
		list_node *n;
		list_foreach(n, &h->conns) {
			conn *o = list_entry(n, conn, node);
			if (idle(o)) {
				conn_close(o);
				break;
			}
		}
	}
	conn *c = calloc(1, sizeof *c);
	if (!c) {
		/* libuv stops watching the listener until the connection is
		 * accepted: a supervisor out of memory stops serving HTTP. */
		log_warn("http: out of memory for a connection");
		return;
	}
	c->h = h;
	int rc = h->is_tcp ? uv_tcp_init(h->loop, &c->io.tcp)
	                   : uv_pipe_init(h->loop, &c->io.pipe, 0);
	if (rc != 0) {
		free(c);
		return;
	}
	uv_timer_init(h->loop, &c->timer); /* cannot fail */
	c->io.h.data = c->timer.data = c;
	c->refs = 2;
	h->handles += 2;
	list_push_front(&h->conns, &c->node);
	h->nconns++;
	if (uv_accept(lsn, &c->io.s) != 0 || h->nconns > h->lim.max_conns) {
		conn_close(c); /* over the limit: accepted and closed */
		return;
	}
	http_parser_init(&c->parser, HTTP_REQUEST);
	c->parser.data = c;
	uv_timer_start(&c->timer, on_deadline, h->lim.timeout_ms, 0);
	if (uv_read_start(&c->io.s, on_alloc, on_read) != 0)
		conn_close(c);
}

static void lsn_closed(uv_handle_t *hd)
{
	httpd *h = hd->data;
	h->handles--;
	maybe_free(h);
}

int httpd_start(httpd **out, uv_loop_t *loop, int fd,
                const httpd_limits *lim, httpd_handler handler, void *arg)
{
	*out = NULL;
	httpd *h = calloc(1, sizeof *h);
	if (!h) {
		close(fd);
		return CORRAL_ENOMEM;
	}
	settings = (http_parser_settings){
		.on_url = on_url,
		.on_body = on_body,
		.on_message_complete = on_message_complete,
	};
	h->loop = loop;
	list_init(&h->conns);
	h->handler = handler;
	h->arg = arg;
	h->lim = (httpd_limits){.max_conns = 64, .max_request = 8192,
	                        .timeout_ms = 5000};
	if (lim && lim->max_conns)
		h->lim.max_conns = lim->max_conns;
	if (lim && lim->max_request)
		h->lim.max_request = lim->max_request;
	if (lim && lim->timeout_ms)
		h->lim.timeout_ms = lim->timeout_ms;
	int domain = 0;
	socklen_t dl = sizeof domain;
	getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &dl);
	h->is_tcp = domain != AF_UNIX;
	int rc = h->is_tcp ? uv_tcp_init(loop, &h->lsn.tcp)
	                   : uv_pipe_init(loop, &h->lsn.pipe, 0);
	if (rc != 0) {
		close(fd);
		free(h);
		return CORRAL_ESYS;
	}
	h->lsn.h.data = h;
	h->handles = 1;
	rc = h->is_tcp ? uv_tcp_open(&h->lsn.tcp, fd)
	               : uv_pipe_open(&h->lsn.pipe, fd);
	if (rc != 0)
		close(fd); /* not the handle's: uv_close will not close it */
	else
		rc = uv_listen(&h->lsn.s, 128, on_connection);
	if (rc != 0) {
		log_warn("http: cannot serve on fd %d: %s", fd, uv_strerror(rc));
		h->closing = 1;
		uv_close(&h->lsn.h, lsn_closed);
		return CORRAL_ESYS;
	}
	*out = h;
	return 0;
}

void httpd_close(httpd *h)
{
	if (!h || h->closing)
		return;
	h->closing = 1;
	while (!list_empty(&h->conns))
		conn_close(list_entry(list_first(&h->conns), conn, node));
	uv_close(&h->lsn.h, lsn_closed);
}

int httpd_available(void)
{
	return 1;
}

#else /* !HAVE_HTTP_PARSER */

int httpd_start(httpd **out, uv_loop_t *loop, int fd,
                const httpd_limits *lim, httpd_handler handler, void *arg)
{
	(void)loop, (void)lim, (void)handler, (void)arg;
	*out = NULL;
	close(fd);
	return CORRAL_ESYS;
}

void httpd_close(httpd *h)
{
	(void)h;
}

int httpd_available(void)
{
	return 0;
}

#endif
