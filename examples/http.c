/*
 * http - an HTTP/1.1 server plugin on the worker's own libuv loop, parsed
 * with libhttp-parser (Debian's libhttp-parser-dev; see README, "The HTTP
 * example", for why not H2O).
 *
 * Every worker accepts from the supervisor's shared listener
 * (corral_listen), so N workers serve one port.  Connections are kept
 * alive; pipelined requests are answered in order.
 *
 * Routes (GET or HEAD):
 *   /             a short fixed body, "Hello, world!\n"
 *   /fib?n=25     fibonacci(n), 0 <= n <= 45, computed in the worker's pool
 *   /slow?ms=100  answered after a timer, 0 <= ms <= 60000 (an I/O-bound
 *                 service: the loop stays free meanwhile)
 *   /whoami       "slot S pid P": which worker answered (for tests)
 * Anything else: 404; other methods: 405.  A malformed request gets a 400
 * (431 for oversized headers, 414 for an oversized URL, 413 for a body over
 * max_body) and the connection closes; the worker stays up.
 *
 * Graceful stop (the stop hook, e.g. on a reload or SIGTERM): the worker
 * has already stopped accepting.  Requests in flight finish.  Every
 * response from then on carries "Connection: close" and the connection
 * closes after it, so a client on a keep-alive connection sends its next
 * request on a fresh connection, which another worker accepts; a client
 * never sends into a socket being closed under it.  A keep-alive
 * connection that stays idle for drain_idle ms is closed (an idle one
 * cannot be told "close" otherwise); idle means nothing read for that long
 * and nothing waiting unread in its socket (a worker held up while a
 * request arrived wakes to its timers first).  When the last connection is gone the
 * plugin's handles are closed and the loop runs dry.  A closing connection
 * is shut down for writing first and read until the client closes (a
 * lingering close), so unread input never turns into a reset that would
 * destroy the last response.
 *
 * Settings:
 *   listener    corral listener name (default http)
 *   keepalive   idle keep-alive timeout in ms (default 5000)
 *   drain_idle  ms an idle connection may stay open once stopping (300)
 *   max_body    largest request body in bytes (default 1048576)
 * Metrics: http_accepted, http_conns (open), http_requests, http_bad.
 */
#include <http_parser.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "corral.h"

#define URL_MAX 8192
#define OUT_INLINE 512
#define READ_BUF 65536
#define LINGER_MS 2000
#define REQUEST_TIMEOUT_MS 10000
#define HELLO "Hello, world!\n"

typedef struct conn conn;

struct conn {
	uv_stream_t *s;      /* from corral_listen; freed when closed */
	http_parser parser;
	conn *prev, *next;   /* every open connection */
	int refs;            /* handle, timer and pool task each hold one */
	uint64_t last_active; /* loop ms of the last byte in or out */
	uint64_t closing_since;

	/* the request being parsed */
	char url[URL_MAX];
	size_t url_len;
	int url_too_long;
	uint64_t body_len;
	int body_too_big;
	int in_request;      /* between message begin and complete */
	int keep_alive;      /* the current request allows keep-alive */
	int http10;

	/* the response side */
	int busy;            /* waiting for a pool task or a timer */
	int head;            /* the pending request is a HEAD */
	int writing;         /* a uv_write is in flight */
	int reading;
	int closing;         /* last response queued: shut down, then close */
	int shut;            /* uv_shutdown issued */
	int dead;            /* uv_close issued */
	char *pend;          /* input that arrived while busy */
	size_t pend_len;
	char *out;           /* response bytes not yet handed to the kernel */
	size_t out_len, out_cap;
	char out_inl[OUT_INLINE];

	uv_timer_t timer;    /* /slow */
	int timer_open;
	unsigned arg;        /* n of /fib, ms of /slow */
	unsigned long long result;
};

typedef struct write_req {
	uv_write_t req;
	conn *c;
	size_t len;
	char data[];
} write_req;

static struct {
	corral_worker *w;
	uv_loop_t *loop;
	const char *listener;
	uint64_t keepalive_ms, drain_idle_ms, max_body;
	conn *conns;
	unsigned long nconns;
	uint64_t accepted, requests, bad;
	uv_timer_t sweep;
	int sweep_open;
	int stopping;
	uint64_t date_sec;
	char date[40]; /* "Date: ...\r\n" */
} S;

static http_parser_settings parser_settings;

static void update_reading(conn *c);
static void flush(conn *c);

/* ---- connection lifetime ---- */

static void unref(conn *c)
{
	if (--c->refs > 0)
		return;
	if (c->out != c->out_inl)
		free(c->out);
	free(c->pend);
	free(c);
}

static void handle_closed(uv_handle_t *h)
{
	conn *c = h->data;
	free(h); /* corral_listen malloc()ed it */
	unref(c);
}

static void timer_closed(uv_handle_t *h)
{
	unref(h->data);
}

static void sweep_stop_if_done(void)
{
	if (S.stopping && !S.conns && S.sweep_open) {
		S.sweep_open = 0;
		uv_close((uv_handle_t *)&S.sweep, NULL);
	}
}

static void conn_close(conn *c)
{
	if (c->dead)
		return;
	c->dead = 1;
	if (c->prev)
		c->prev->next = c->next;
	else
		S.conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	S.nconns--;
	if (c->timer_open) {
		c->timer_open = 0;
		uv_close((uv_handle_t *)&c->timer, timer_closed);
	}
	uv_close((uv_handle_t *)c->s, handle_closed);
	sweep_stop_if_done();
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
	conn *c = req->data;
	free(req);
	if (status < 0)
		conn_close(c); /* else read until the client's EOF */
	else
		update_reading(c);
}

/* The last response is queued: once it is written, send FIN and wait for
 * the client's (lingering close). */
static void begin_close(conn *c)
{
	if (c->dead || c->shut || c->writing || c->out_len)
		return;
	c->shut = 1;
	c->closing_since = uv_now(S.loop);
	uv_shutdown_t *req = malloc(sizeof *req);
	if (!req) {
		conn_close(c);
		return;
	}
	req->data = c;
	if (uv_shutdown(req, c->s, on_shutdown) != 0) {
		free(req);
		conn_close(c);
	}
}

/* ---- output ---- */

static int out_reserve(conn *c, size_t more)
{
	if (c->out_len + more <= c->out_cap)
		return 0;
	size_t cap = c->out_cap * 2;
	while (cap < c->out_len + more)
		cap *= 2;
	char *nb = malloc(cap);
	if (!nb)
		return -1;
	memcpy(nb, c->out, c->out_len);
	if (c->out != c->out_inl)
		free(c->out);
	c->out = nb;
	c->out_cap = cap;
	return 0;
}

static void update_date(void)
{
	uint64_t sec = (uint64_t)time(NULL);
	if (sec == S.date_sec)
		return;
	struct tm tm;
	time_t t = (time_t)sec;
	gmtime_r(&t, &tm);
	strftime(S.date, sizeof S.date, "Date: %a, %d %b %Y %H:%M:%S GMT\r\n",
	         &tm);
	S.date_sec = sec;
}

static const char *reason(int status)
{
	switch (status) {
	case 200: return "OK";
	case 400: return "Bad Request";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 413: return "Content Too Large";
	case 414: return "URI Too Long";
	case 431: return "Request Header Fields Too Large";
	case 503: return "Service Unavailable";
	default: return "Internal Server Error";
	}
}

/* Queues one response.  keep = 0 makes it the connection's last. */
static void respond(conn *c, int status, const char *body, size_t len,
                    int keep)
{
	if (S.stopping)
		keep = 0; /* draining: the client reconnects elsewhere */
	update_date();
	char head[256];
	int n = snprintf(head, sizeof head,
	                 "HTTP/1.1 %d %s\r\n"
	                 "Server: corral\r\n"
	                 "%s"
	                 "Content-Type: text/plain\r\n"
	                 "Content-Length: %zu\r\n"
	                 "%s%s%s"
	                 "\r\n",
	                 status, reason(status), S.date, len,
	                 !keep ? "Connection: close\r\n" : "",
	                 keep && c->http10 ? "Connection: keep-alive\r\n" : "",
	                 status == 405 ? "Allow: GET, HEAD\r\n" : "");
	if (c->head)
		len = 0;
	if (n < 0 || out_reserve(c, (size_t)n + len) != 0) {
		conn_close(c);
		return;
	}
	memcpy(c->out + c->out_len, head, (size_t)n);
	c->out_len += (size_t)n;
	memcpy(c->out + c->out_len, body, len);
	c->out_len += len;
	S.requests++;
	if (!keep)
		c->closing = 1;
}

static void on_written(uv_write_t *req, int status)
{
	write_req *wr = (write_req *)req;
	conn *c = wr->c;
	free(wr);
	c->writing = 0;
	if (status < 0) {
		conn_close(c);
		unref(c);
		return;
	}
	c->last_active = uv_now(S.loop);
	flush(c);
	unref(c);
}

/* Hands queued output to the kernel: straight away if the socket takes it
 * (the usual case), else through one uv_write at a time. */
static void flush(conn *c)
{
	if (c->dead || c->writing)
		return;
	if (c->out_len) {
		uv_buf_t b = uv_buf_init(c->out, (unsigned)c->out_len);
		int n = uv_try_write(c->s, &b, 1);
		if (n < 0 && n != UV_EAGAIN) {
			conn_close(c);
			return;
		}
		size_t done = n > 0 ? (size_t)n : 0;
		if (done < c->out_len) {
			size_t rest = c->out_len - done;
			write_req *wr = malloc(sizeof *wr + rest);
			if (!wr) {
				conn_close(c);
				return;
			}
			wr->c = c;
			wr->len = rest;
			memcpy(wr->data, c->out + done, rest);
			uv_buf_t wb = uv_buf_init(wr->data, (unsigned)rest);
			if (uv_write(&wr->req, c->s, &wb, 1, on_written) != 0) {
				free(wr);
				conn_close(c);
				return;
			}
			c->writing = 1;
			c->refs++;
		}
		c->out_len = 0;
		c->last_active = uv_now(S.loop);
	}
	if (c->closing && !c->writing)
		begin_close(c);
	update_reading(c);
}

/* ---- requests ---- */

static unsigned long long fib(unsigned n)
{
	return n < 2 ? n : fib(n - 1) + fib(n - 2);
}

static void fib_work(corral_task *t, void *arg)
{
	conn *c = arg;
	(void)t;
	c->result = fib(c->arg);
}

static void feed(conn *c, const char *data, size_t len);

/* An async answer is queued: write it, then go on with held input. */
static void resume(conn *c)
{
	c->busy = 0;
	flush(c);
	if (c->pend && !c->dead && !c->closing) {
		char *p = c->pend;
		size_t n = c->pend_len;
		c->pend = NULL;
		c->pend_len = 0;
		feed(c, p, n);
		free(p);
		flush(c);
	}
	update_reading(c);
}

static void answer_number(conn *c, unsigned long long v)
{
	char body[32];
	int n = snprintf(body, sizeof body, "%llu\n", v);
	respond(c, 200, body, (size_t)n, c->keep_alive);
}

static void fib_done(corral_task *t, int status, void *arg)
{
	conn *c = arg;
	(void)t;
	if (!c->dead) {
		if (status == 0)
			answer_number(c, c->result);
		else
			respond(c, 503, "pool task did not run\n", 22,
			        c->keep_alive);
		resume(c);
	}
	unref(c);
}

static void on_slow(uv_timer_t *t)
{
	conn *c = t->data;
	char body[48];
	int n = snprintf(body, sizeof body, "slept %u ms\n", c->arg);
	respond(c, 200, body, (size_t)n, c->keep_alive);
	resume(c);
}

/* The decimal value of query parameter key, or -1. */
static long query_num(const char *q, const char *key, long max)
{
	size_t kl = strlen(key);
	while (q && *q) {
		if (strncmp(q, key, kl) == 0 && q[kl] == '=') {
			const char *p = q + kl + 1;
			long v = 0;
			if (*p < '0' || *p > '9')
				return -1;
			for (; *p >= '0' && *p <= '9'; p++)
				if ((v = v * 10 + (*p - '0')) > max)
					return -1;
			return *p == '\0' || *p == '&' ? v : -1;
		}
		q = strchr(q, '&');
		if (q)
			q++;
	}
	return -1;
}

static void route(conn *c)
{
	int keep = c->keep_alive;
	int method = c->parser.method;
	c->url[c->url_len] = '\0';
	char *q = strchr(c->url, '?');
	if (q)
		*q++ = '\0';
	const char *path = c->url;
	c->head = method == HTTP_HEAD;
	int known = strcmp(path, "/") == 0 || strcmp(path, "/fib") == 0 ||
	            strcmp(path, "/slow") == 0 || strcmp(path, "/whoami") == 0;
	if (!known) {
		respond(c, 404, "not found\n", 10, keep);
	} else if (method != HTTP_GET && method != HTTP_HEAD) {
		respond(c, 405, "method not allowed\n", 19, keep);
	} else if (strcmp(path, "/") == 0) {
		respond(c, 200, HELLO, sizeof HELLO - 1, keep);
	} else if (strcmp(path, "/whoami") == 0) {
		char body[64];
		int n = snprintf(body, sizeof body, "slot %d pid %ld\n",
		                 corral_slot(S.w), (long)getpid());
		respond(c, 200, body, (size_t)n, keep);
	} else if (strcmp(path, "/fib") == 0) {
		long n = query_num(q, "n", 45);
		if (n < 0) {
			respond(c, 400, "n must be 0..45\n", 16, keep);
			return;
		}
		c->arg = (unsigned)n;
		int rc = corral_submit(S.w, CORRAL_PRIO_NORMAL, fib_work,
		                       fib_done, c, NULL, NULL);
		if (rc == 0) {
			c->busy = 1;
			c->refs++;
		} else if (rc == CORRAL_ESTATE) {
			/* The pool takes no new work once the worker stops, but
			 * a draining keep-alive connection still gets its
			 * answer: compute it here, on the loop. */
			answer_number(c, fib(c->arg));
		} else {
			respond(c, 503, "busy\n", 5, keep);
		}
	} else {
		long ms = query_num(q, "ms", 60000);
		if (ms < 0) {
			respond(c, 400, "ms must be 0..60000\n", 20, keep);
			return;
		}
		if (!c->timer_open) {
			uv_timer_init(S.loop, &c->timer);
			c->timer.data = c;
			c->timer_open = 1;
			c->refs++;
		}
		c->arg = (unsigned)ms;
		c->busy = 1;
		uv_timer_start(&c->timer, on_slow, (uint64_t)ms, 0);
	}
}

static int on_message_begin(http_parser *p)
{
	conn *c = p->data;
	c->in_request = 1;
	c->url_len = 0;
	c->url_too_long = 0;
	c->body_len = 0;
	c->body_too_big = 0;
	return 0;
}

static int on_url(http_parser *p, const char *at, size_t len)
{
	conn *c = p->data;
	if (c->url_len + len >= sizeof c->url) {
		c->url_too_long = 1;
		return -1;
	}
	memcpy(c->url + c->url_len, at, len);
	c->url_len += len;
	return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
	conn *c = p->data;
	(void)at;
	c->body_len += len;
	if (c->body_len > S.max_body) {
		c->body_too_big = 1;
		return -1;
	}
	return 0;
}

static int on_message_complete(http_parser *p)
{
	conn *c = p->data;
	c->in_request = 0;
	c->keep_alive = http_should_keep_alive(p) && !p->upgrade;
	c->http10 = p->http_major == 1 && p->http_minor == 0;
	route(c);
	/* One request at a time: feed() goes on once this one is queued. */
	http_parser_pause(p, 1);
	return 0;
}

static void bad_request(conn *c)
{
	enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);
	int status = c->url_too_long ? 414 : c->body_too_big ? 413
	             : e == HPE_HEADER_OVERFLOW ? 431 : 400;
	c->head = 0;
	c->in_request = 0;
	S.bad++;
	respond(c, status, "bad request\n", 12, 0);
}

/* Parses what arrived and queues the answers, one request at a time; what
 * follows a request that waits for the pool or a timer is kept for later. */
static void feed(conn *c, const char *data, size_t len)
{
	while (len && !c->busy && !c->closing && !c->dead) {
		size_t n = http_parser_execute(&c->parser, &parser_settings,
		                               data, len);
		enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);
		if (e == HPE_PAUSED) {
			http_parser_pause(&c->parser, 0);
		} else if (e != HPE_OK) {
			bad_request(c);
			return;
		} else if (n == 0) {
			break; /* no progress: never spin */
		}
		data += n;
		len -= n;
	}
	if (len && c->busy && !c->closing) {
		char *np = realloc(c->pend, c->pend_len + len);
		if (!np) {
			conn_close(c);
			return;
		}
		memcpy(np + c->pend_len, data, len);
		c->pend = np;
		c->pend_len += len;
	}
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	static char chunk[READ_BUF]; /* loop thread; consumed at once */
	(void)h;
	(void)hint;
	*buf = uv_buf_init(chunk, sizeof chunk);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	conn *c = s->data;
	if (n < 0) {
		conn_close(c); /* EOF or error; also ends a lingering close */
		return;
	}
	if (n == 0)
		return;
	c->last_active = uv_now(S.loop);
	if (c->closing)
		return; /* lingering: discard until the client closes */
	feed(c, buf->base, (size_t)n);
	flush(c);
}

/* Read while nothing is pending (one request at a time, and no more input
 * while output waits: back-pressure), and while lingering. */
static void update_reading(conn *c)
{
	if (c->dead)
		return;
	int want = c->shut || (!c->closing && !c->busy && !c->writing);
	if (want && !c->reading)
		c->reading = uv_read_start(c->s, on_alloc, on_read) == 0;
	else if (!want && c->reading) {
		uv_read_stop(c->s);
		c->reading = 0;
	}
}

static void on_connection(corral_worker *w, const char *name,
                          uv_stream_t *s)
{
	(void)w;
	(void)name;
	conn *c = calloc(1, sizeof *c);
	if (!c) {
		corral_conn_close(s);
		return;
	}
	c->s = s;
	s->data = c;
	c->refs = 1;
	c->out = c->out_inl;
	c->out_cap = sizeof c->out_inl;
	c->last_active = uv_now(S.loop);
	http_parser_init(&c->parser, HTTP_REQUEST);
	c->parser.data = c;
	if (s->type == UV_TCP)
		uv_tcp_nodelay((uv_tcp_t *)s, 1);
	c->next = S.conns;
	if (S.conns)
		S.conns->prev = c;
	S.conns = c;
	S.nconns++;
	S.accepted++;
	update_reading(c);
}

/* ---- timers: idle keep-alive, slow clients, draining, metrics ---- */

static void publish(void)
{
	corral_metric_set(S.w, "http_accepted", (double)S.accepted);
	corral_metric_set(S.w, "http_conns", (double)S.nconns);
	corral_metric_set(S.w, "http_requests", (double)S.requests);
	corral_metric_set(S.w, "http_bad", (double)S.bad);
}

/* 1 if the kernel holds input for c that the loop has not read yet.  A
 * loop held up (a stopped or descheduled worker; epoll_wait fails with
 * EINTR after SIGSTOP/SIGCONT) runs its timers before it polls again, so
 * a request that arrived meanwhile can be waiting while last_active says
 * idle; closing the socket then would reset it and lose the request. */
static int has_unread(const conn *c)
{
	uv_os_fd_t fd;
	int n = 0;
	if (uv_fileno((const uv_handle_t *)c->s, &fd) != 0)
		return 0;
	return ioctl(fd, FIONREAD, &n) == 0 && n > 0;
}

static void on_sweep(uv_timer_t *t)
{
	uint64_t now = uv_now(S.loop);
	(void)t;
	publish();
	for (conn *c = S.conns, *next; c; c = next) {
		next = c->next;
		uint64_t quiet = now - c->last_active;
		int idle = !c->in_request && !c->busy && !c->writing &&
		           !c->out_len && !c->closing;
		if (c->shut && now - c->closing_since >= LINGER_MS)
			conn_close(c);
		else if (idle && quiet >= (S.stopping ? S.drain_idle_ms
		                                      : S.keepalive_ms)) {
			if (has_unread(c))
				c->last_active = now; /* read it first */
			else
				conn_close(c);
		}
		else if (!idle && !c->busy && quiet >= REQUEST_TIMEOUT_MS)
			conn_close(c); /* a request, or a reader, that stalled */
	}
	sweep_stop_if_done();
}

static uint64_t setting_u64(corral_worker *w, const char *key, uint64_t def)
{
	const char *v = corral_setting(w, key);
	return v ? strtoull(v, NULL, 10) : def;
}

static int http_init(corral_worker *w)
{
	S.w = w;
	S.loop = corral_loop(w);
	S.listener = corral_setting(w, "listener");
	if (!S.listener)
		S.listener = "http";
	S.keepalive_ms = setting_u64(w, "keepalive", 5000);
	S.drain_idle_ms = setting_u64(w, "drain_idle", 300);
	S.max_body = setting_u64(w, "max_body", 1048576);
	parser_settings = (http_parser_settings){
		.on_message_begin = on_message_begin,
		.on_url = on_url,
		.on_body = on_body,
		.on_message_complete = on_message_complete,
	};
	int rc = corral_listen(w, S.listener, on_connection);
	if (rc) {
		corral_log(w, CORRAL_LOG_ERROR, "cannot listen on '%s': %s "
		           "(configure it with listen = %s=tcp://HOST:PORT)",
		           S.listener, corral_strerror(rc), S.listener);
		return rc;
	}
	publish();
	if (uv_timer_init(S.loop, &S.sweep) != 0)
		return CORRAL_ESYS;
	S.sweep_open = 1;
	uv_timer_start(&S.sweep, on_sweep, 1000, 1000);
	return 0;
}

static void http_stop(corral_worker *w)
{
	S.stopping = 1;
	corral_log(w, CORRAL_LOG_INFO, "draining %lu connection(s)", S.nconns);
	publish();
	/* Connections idle for drain_idle already go now; the sweep takes
	 * the rest as they fall idle. */
	on_sweep(&S.sweep);
	if (S.sweep_open) {
		uint64_t every = S.drain_idle_ms / 4 ? S.drain_idle_ms / 4 : 1;
		uv_timer_start(&S.sweep, on_sweep, every, every);
	}
}

CORRAL_PLUGIN(.name = "http", .init = http_init, .stop = http_stop);
