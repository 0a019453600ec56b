/*
 * test_hostile.c - what a hostile or careless local user can do to a
 * running supervisor, and that it survives it: connections that close
 * before the SP handshake (nng 1.5.2 bug #1518), a second instance on the
 * same run directory, a flood of garbage frames (answered, counted, told
 * of in a handful of log lines, costing no memory for good), clients that
 * never read their replies.  Each test makes real connections with raw
 * sockets and real requests with nng, against the real binaries.
 */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <netinet/in.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "corral_base.h"
#include "ipc/proto.h"
#include "tests/harness.h"

static harness H, H2;

static const char *so(const char *rel)
{
	static char b[PATH_MAX];
	return h_path(rel, b, sizeof b);
}

static void teardown(void)
{
	h_cleanup(&H);
	h_cleanup(&H2);
}

#define EVENT(h, filter, ms)                                                  \
	({                                                                    \
		const ipc_event *e_ = h_event(h, filter, ms);                 \
		ck_assert_msg(e_ != NULL, "no event '%s'", filter);           \
		e_;                                                           \
	})

/* A raw stream connection to url (ipc:// or tcp://127.0.0.1:PORT); the
 * descriptor, whether or not connect() succeeded. */
static int raw_connect(const char *url, int *connected)
{
	int fd, rc;
	if (strncmp(url, "ipc://", 6) == 0) {
		struct sockaddr_un su = {.sun_family = AF_UNIX};
		snprintf(su.sun_path, sizeof su.sun_path, "%s", url + 6);
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		ck_assert_int_ge(fd, 0);
		rc = connect(fd, (struct sockaddr *)&su, sizeof su);
	} else {
		const char *colon = strrchr(url, ':');
		struct sockaddr_in si = {.sin_family = AF_INET,
		                         .sin_port = htons((uint16_t)atoi(colon + 1))};
		si.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		ck_assert_int_ge(fd, 0);
		rc = connect(fd, (struct sockaddr *)&si, sizeof si);
	}
	if (connected)
		*connected = rc == 0;
	return fd;
}

/* Connects and closes at once: what a port scan or a health probe does,
 * and what kills an nng 1.5.2 listener mid-handshake. */
static void raw_poke(const char *url)
{
	close(raw_connect(url, NULL));
}

/* One real request on a fresh REQ socket, answered or not within 20 s
 * (the reconnect after a heal takes well under that). */
static int real_request(const char *url, int type)
{
	nng_socket s;
	nng_msg *m = NULL, *r = NULL;
	int ok = 0;
	ck_assert_int_eq(nng_req0_open(&s), 0);
	nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, 20000);
	nng_socket_set_ms(s, NNG_OPT_SENDTIMEO, 20000);
	nng_socket_set_ms(s, NNG_OPT_RECONNMINT, 10);
	nng_socket_set_ms(s, NNG_OPT_RECONNMAXT, 50);
	nng_socket_set_size(s, NNG_OPT_RECVMAXSZ, IPC_MAX_CTL_FRAME);
	ck_assert_int_eq(nng_dial(s, url, NULL, NNG_FLAG_NONBLOCK), 0);
	if (type == IPC_CALL) {
		ipc_call c = {.payload = (const uint8_t *)"ping", .len = 4,
		              .prio = 2};
		ck_assert_int_eq(ipc_pack_call(&m, &c), 0);
	} else {
		ck_assert_int_eq(ipc_pack_status_req(&m), 0);
	}
	if (nng_sendmsg(s, m, 0) != 0)
		nng_msg_free(m);
	else if (nng_recvmsg(s, &r, 0) == 0) {
		ipc_frame f;
		if (ipc_decode_msg(r, IPC_MAX_CTL_FRAME, &f) == 0) {
			ipc_result res;
			ipc_status st;
			if (type == IPC_CALL)
				ok = ipc_unpack_result(&f, &res) == 0 && res.ok &&
				     res.len == 4;
			else if ((ok = ipc_unpack_status(&f, &st) == 0))
				ipc_status_free(&st);
			ipc_frame_fini(&f);
		}
	}
	nng_close(s);
	return ok;
}

static void hammer(const char *url, int type)
{
	int asked = 0, answered = 0;
	for (int i = 0; i < 1000; i++) {
		raw_poke(url);
		if (i % 50 == 49) {
			asked++;
			int ok_ = real_request(url, type);
			if (!ok_)
				fprintf(stderr, "request after poke %d not answered\n", i);
			answered += ok_;
		}
	}
	asked++;
	answered += real_request(url, type);
	ck_assert_int_eq(answered, asked);
}

static void start(harness *h, const char *jobs)
{
	const char *a[] = {"-w", "1", "--standby", "0", "--jobs", jobs,
	                   so("examples/echo.so"), NULL};
	if (!jobs[0]) {
		a[4] = so("examples/echo.so");
		a[5] = NULL;
	}
	ck_assert_int_eq(h_start(h, a), 0);
	EVENT(h, "kind=slot slot=0 to=running", 10000);
}

static void status_field(const char *jq_filter, char *out, size_t len)
{
	ck_assert_int_eq(h_sh(out, len, "'%s' --rundir '%s' status --json | "
	                      "jq -r '%s'", h_ctl(), H.rundir, jq_filter), 0);
}

START_TEST(control_survives_handshake_aborts)
{
	char url[256];
	start(&H, "");
	snprintf(url, sizeof url, "ipc://%s/control", H.rundir);
	hammer(url, IPC_STATUS_REQ);
}
END_TEST

START_TEST(ipc_jobs_survive_handshake_aborts)
{
	char url[256];
	start(&H, "");
	snprintf(url, sizeof url, "ipc://%s/jobs", H.rundir);
	hammer(url, IPC_CALL);
}
END_TEST

START_TEST(tcp_jobs_survive_a_port_scan)
{
	char url[256];
	start(&H, "tcp://127.0.0.1:0");
	status_field(".jobs_url", url, sizeof url);
	url[strcspn(url, "\n")] = '\0';
	ck_assert_msg(strncmp(url, "tcp://127.0.0.1:", 16) == 0 &&
	              atoi(url + 16) > 0, "jobs_url %s", url);
	hammer(url, IPC_CALL);
}
END_TEST

/* ---- a flood of garbage frames ---- */

#define FLOOD_BAD 100000  /* garbage frames per supervisor, through nng */
#define FLOOD_CTXS 32      /* REQ contexts on each socket */
#define GOOD_EVERY 20     /* every 20th frame on a socket is well-formed */
#define BIG_EVERY 1000    /* one garbage frame in 1000 is over 1 MiB */
#define MID_EVERY 100     /* one in 100 is 16-64 KiB (malloc's heaps) */
#define FLOOD_RAW 200     /* per socket: connections nng itself refuses */
#define RSS_SLACK_KB 1024 /* what the flood may leave behind */
#define MAX_FLOOD_LINES 50 /* log lines for the whole flood and the stop */
#define FLOOD_MS 100000   /* the flood's own bound (ASan runs slower) */

typedef struct flood flood;

typedef struct fctx {
	flood *f;
	nng_ctx ctx;
	nng_aio *aio;
	int receiving; /* the aio is receiving the answer (else sending) */
	unsigned i;    /* the frame out now */
} fctx;

/* One socket's share: a cooked REQ socket, FLOOD_CTXS contexts each
 * sending a frame, reading its answer, sending the next.  Callbacks run on
 * nng's threads, so nothing here may ck_assert: the main thread checks
 * the counters once the contexts are done. */
struct flood {
	nng_socket sock;
	int jobs;                    /* the jobs socket (else control) */
	unsigned total;              /* frames to send through it */
	atomic_uint next;            /* frames handed out */
	atomic_uint bad, good;       /* frames sent */
	atomic_uint bad_ok, good_ok; /* answered as each should be */
	atomic_uint wrong;           /* answered otherwise, or not at all */
	atomic_int active;           /* contexts not done */
	atomic_int stop;
	atomic_flag told;            /* why holds the first wrong one */
	char why[256];
	fctx c[FLOOD_CTXS];
};

static int is_good(unsigned i)
{
	return i % GOOD_EVERY == GOOD_EVERY - 1;
}

static uint64_t mix64(uint64_t x) /* splitmix64 */
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

static void note_wrong(flood *f, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void note_wrong(flood *f, const char *fmt, ...)
{
	atomic_fetch_add(&f->wrong, 1);
	if (atomic_flag_test_and_set(&f->told))
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(f->why, sizeof f->why, fmt, ap);
	va_end(ap);
}

/* The well-formed request of frame i: status, or a call of "flood I". */
static nng_msg *good_frame(int jobs, unsigned i)
{
	nng_msg *m = NULL;
	char p[32];
	int n = snprintf(p, sizeof p, "flood %u", i);
	ipc_call c = {.payload = (const uint8_t *)p, .len = (uint32_t)n,
	              .prio = 2};
	if ((jobs ? ipc_pack_call(&m, &c) : ipc_pack_status_req(&m)) != 0)
		return NULL;
	return m;
}

static nng_msg *bytes_msg(const void *p, size_t n)
{
	nng_msg *m;
	if (nng_msg_alloc(&m, 0) != 0)
		return NULL;
	if (n && nng_msg_append(m, p, n) != 0) {
		nng_msg_free(m);
		return NULL;
	}
	return m;
}

/*
 * Garbage frame i for one socket: something no corral socket accepts,
 * and each kind for its own reason -- not msgpack, msgpack that is not a
 * frame, a frame of another version, type or arity, cut short, nested
 * too deep, claiming lengths and counts it does not have, too many items,
 * bytes after the frame, a well-formed request the socket does not serve,
 * the right type with the wrong body -- and one in MID_EVERY 16-64 KiB
 * long, one in BIG_EVERY a real blob past the payload limit.
 */
static nng_msg *bad_frame(int jobs, unsigned i)
{
	uint64_t r = mix64((uint64_t)i << 1 | (unsigned)jobs);
	uint8_t b[64];
	size_t n = 0;
	nng_msg *m = NULL;
	if (i % BIG_EVERY == BIG_EVERY / 2) {
		static const uint8_t head[] = {0x93, 0x01, IPC_CALL, 0x81, 0xa1,
		                               'p', 0xc6};
		uint32_t len = IPC_MAX_STR + 1 + (uint32_t)(r % 4096);
		if (nng_msg_alloc(&m, sizeof head + 4 + len) != 0)
			return NULL;
		uint8_t *p = nng_msg_body(m);
		memcpy(p, head, sizeof head);
		p[7] = (uint8_t)(len >> 24);
		p[8] = (uint8_t)(len >> 16);
		p[9] = (uint8_t)(len >> 8);
		p[10] = (uint8_t)len;
		memset(p + 11, (int)(r & 0xff), len);
		return m;
	}
	if (i % MID_EVERY == MID_EVERY / 2) { /* a type nobody knows */
		static const uint8_t head[] = {0x93, 0x01, 0x7f, 0x81,
		                               0xa1, 'x', 0xda};
		uint16_t len = (uint16_t)(16384 + r % (65535 - 16384));
		if (nng_msg_alloc(&m, sizeof head + 2 + len) != 0)
			return NULL;
		uint8_t *p = nng_msg_body(m);
		memcpy(p, head, sizeof head);
		p[7] = (uint8_t)(len >> 8);
		p[8] = (uint8_t)len;
		memset(p + 9, 'a' + (int)(r % 26), len);
		return m;
	}
	switch (r % 12) {
	case 0: /* not msgpack: 0xc1 is never used */
		b[n++] = 0xc1;
		for (unsigned k = 0; k < (r >> 8) % 48; k++)
			b[n++] = (uint8_t)(mix64(r + k) & 0xff);
		return bytes_msg(b, n);
	case 1: { /* msgpack, but not an array */
		static const uint8_t s1[] = {0x05}, s2[] = {0xc0},
		    s3[] = {0xa5, 'h', 'e', 'l', 'l', 'o'}, s4[] = {0x80},
		    s5[] = {0xcb, 0x40, 0x09, 0x21, 0xfb, 0x54, 0x44, 0x2d,
		            0x18};
		const uint8_t *pick[] = {s1, s2, s3, s4, s5};
		size_t len[] = {sizeof s1, sizeof s2, sizeof s3, sizeof s4,
		                sizeof s5};
		unsigned k = (unsigned)((r >> 8) % 5);
		return bytes_msg(pick[k], len[k]);
	}
	case 2: { /* an array of the wrong arity */
		static const uint8_t a0[] = {0x90},
		    a2[] = {0x92, 0x01, IPC_CALL},
		    a4[] = {0x94, 0x01, IPC_CALL, 0x80, 0xc0};
		unsigned k = (unsigned)((r >> 8) % 3);
		return k == 0 ? bytes_msg(a0, sizeof a0)
		     : k == 1 ? bytes_msg(a2, sizeof a2)
		              : bytes_msg(a4, sizeof a4);
	}
	case 3: { /* another version */
		uint8_t v[] = {0x93, (uint8_t)(2 + (r >> 8) % 100),
		               jobs ? IPC_CALL : IPC_STATUS_REQ, 0x80};
		return bytes_msg(v, sizeof v);
	}
	case 4: { /* a type nobody knows */
		static const uint8_t t[] = {0x93, 0x01, 0xcd, 0x7f, 0xff, 0x80};
		return bytes_msg(t, sizeof t);
	}
	case 5: { /* a well-formed request cut short */
		if (!(m = good_frame(jobs, i)))
			return NULL;
		size_t len = nng_msg_len(m);
		if (nng_msg_chop(m, 1 + (size_t)((r >> 8) % len)) != 0) {
			nng_msg_free(m);
			return NULL;
		}
		return m;
	}
	case 6: { /* nested far too deep */
		size_t depth = IPC_MAX_DEPTH + 1 + (size_t)((r >> 8) % 3000);
		if (nng_msg_alloc(&m, depth + 1) != 0)
			return NULL;
		memset(nng_msg_body(m), 0x91, depth);
		((uint8_t *)nng_msg_body(m))[depth] = 0xc0;
		return m;
	}
	case 7: { /* lengths and counts it does not have */
		static const uint8_t h[][6] = {
		    {0xdd, 0xff, 0xff, 0xff, 0xff}, /* array32 */
		    {0xdf, 0xff, 0xff, 0xff, 0xff}, /* map32 */
		    {0xdb, 0xff, 0xff, 0xff, 0xff, 'a'}, /* str32 */
		    {0xc6, 0x7f, 0xff, 0xff, 0xff, 0x00}, /* bin32 */
		};
		unsigned k = (unsigned)((r >> 8) % 4);
		return bytes_msg(h[k], k < 2 ? 5 : 6);
	}
	case 8: { /* more items than any frame may hold */
		uint32_t items = IPC_MAX_ITEMS + 1 +
		                 (uint32_t)((r >> 8) % 1000);
		if (nng_msg_alloc(&m, 3 + items) != 0)
			return NULL;
		uint8_t *p = nng_msg_body(m);
		p[0] = 0xdc;
		p[1] = (uint8_t)(items >> 8);
		p[2] = (uint8_t)items;
		memset(p + 3, 0xc0, items);
		return m;
	}
	case 9: /* a well-formed request with bytes after it */
		if (!(m = good_frame(jobs, i)))
			return NULL;
		if (nng_msg_append(m, "\xc0", 1) != 0) {
			nng_msg_free(m);
			return NULL;
		}
		return m;
	case 10: /* a well-formed request the socket does not serve */
		return good_frame(!jobs, i);
	default: { /* the socket's own type, a body without its fields */
		uint8_t v[] = {0x93, 0x01, jobs ? IPC_CALL : IPC_CMD, 0x81,
		               0xa1, 'z', 0x07};
		return bytes_msg(v, sizeof v);
	}
	}
}

/* The answer to frame i: the reply for a well-formed request, an error
 * (control) or a "bad_request" result (jobs) for garbage.  Takes r. */
static void check_answer(flood *f, unsigned i, nng_msg *r)
{
	ipc_frame fr;
	int ok = 0, good = is_good(i);
	int rc = ipc_decode_msg(r, IPC_MAX_CTL_FRAME, &fr); /* takes r */
	if (rc) {
		note_wrong(f, "frame %u (%s): undecodable answer: %s", i,
		           good ? "good" : "bad", corral_errname(rc));
		return;
	}
	if (f->jobs) {
		ipc_result res;
		char want[32];
		int n = snprintf(want, sizeof want, "flood %u", i);
		if (ipc_unpack_result(&fr, &res) == 0)
			ok = good ? res.ok && res.len == (uint32_t)n &&
			                memcmp(res.data, want, (size_t)n) == 0
			          : !res.ok && ipc_joberr_parse(res.err) ==
			                           IPC_JOBERR_BAD_REQUEST;
	} else if (good) {
		ipc_status st;
		if ((ok = ipc_unpack_status(&fr, &st) == 0))
			ipc_status_free(&st);
	} else {
		ipc_error e;
		ok = ipc_unpack_error(&fr, &e) == 0 && e.code != 0;
	}
	ipc_frame_fini(&fr);
	uint64_t kind = mix64((uint64_t)i << 1 | (unsigned)f->jobs) % 12;
	if (!ok)
		note_wrong(f, "frame %u (%s, kind %u): wrong answer", i,
		           good ? "good" : "bad", (unsigned)kind);
	else
		atomic_fetch_add(good ? &f->good_ok : &f->bad_ok, 1);
}

/* Sends the context's next frame, or retires it. */
static void fctx_next(fctx *c)
{
	flood *f = c->f;
	unsigned i = atomic_fetch_add(&f->next, 1);
	nng_msg *m = NULL;
	if (i < f->total && !atomic_load(&f->stop))
		m = is_good(i) ? good_frame(f->jobs, i) : bad_frame(f->jobs, i);
	if (!m) {
		if (i < f->total && !atomic_load(&f->stop))
			note_wrong(f, "frame %u: cannot build it", i);
		atomic_fetch_sub(&f->active, 1);
		return;
	}
	c->i = i;
	c->receiving = 0;
	nng_aio_set_msg(c->aio, m);
	nng_ctx_send(c->ctx, c->aio);
}

static void fctx_done(void *arg)
{
	fctx *c = arg;
	flood *f = c->f;
	int rv = nng_aio_result(c->aio);
	if (!c->receiving) {
		if (rv) {
			nng_msg_free(nng_aio_get_msg(c->aio));
			note_wrong(f, "frame %u: cannot send: %s", c->i,
			           nng_strerror(rv));
			fctx_next(c);
			return;
		}
		atomic_fetch_add(is_good(c->i) ? &f->good : &f->bad, 1);
		c->receiving = 1;
		nng_ctx_recv(c->ctx, c->aio);
		return;
	}
	if (rv)
		note_wrong(f, "frame %u: no answer: %s", c->i,
		           nng_strerror(rv));
	else
		check_answer(f, c->i, nng_aio_get_msg(c->aio));
	fctx_next(c);
}

/* nbad garbage frames, with a well-formed one every GOOD_EVERY. */
static void flood_open(flood *f, const char *url, int jobs, unsigned nbad)
{
	memset(f, 0, sizeof *f);
	atomic_flag_clear(&f->told);
	f->jobs = jobs;
	f->total = nbad + nbad / (GOOD_EVERY - 1);
	ck_assert_int_eq(nng_req0_open(&f->sock), 0);
	/* A context's request is never sent twice: the count of bad
	 * frames must come out exact. */
	ck_assert_int_eq(nng_socket_set_ms(f->sock, NNG_OPT_REQ_RESENDTIME,
	                                   NNG_DURATION_INFINITE), 0);
	ck_assert_int_eq(nng_socket_set_size(f->sock, NNG_OPT_RECVMAXSZ,
	                                     IPC_MAX_CTL_FRAME), 0);
	ck_assert_int_eq(nng_dial(f->sock, url, NULL, 0), 0);
	for (int k = 0; k < FLOOD_CTXS; k++) {
		fctx *c = &f->c[k];
		c->f = f;
		ck_assert_int_eq(nng_ctx_open(&c->ctx, f->sock), 0);
		ck_assert_int_eq(nng_aio_alloc(&c->aio, fctx_done, c), 0);
		nng_aio_set_timeout(c->aio, 30000);
	}
}

static void flood_start(flood *f)
{
	atomic_store(&f->active, FLOOD_CTXS);
	for (int k = 0; k < FLOOD_CTXS; k++)
		fctx_next(&f->c[k]);
}

static void flood_close(flood *f)
{
	atomic_store(&f->stop, 1);
	nng_close(f->sock); /* ends every context's operation */
	for (int k = 0; k < FLOOD_CTXS; k++)
		if (f->c[k].aio)
			nng_aio_free(f->c[k].aio); /* waits out its callback */
}

static int write_all(int fd, const void *p, size_t n)
{
	const uint8_t *b = p;
	while (n) {
		ssize_t w = write(fd, b, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		b += w;
		n -= (size_t)w;
	}
	return 0;
}

/*
 * A connection that completes the SP handshake as a REQ peer and then
 * sends what nng itself refuses, so corral never sees it: a length past
 * the socket's frame limit, or a message cut short by the close.  k picks
 * which.  1 if the handshake completed.
 */
static int raw_hostile(const char *url, unsigned k)
{
	/* The SP header: protocol 48, REQ v0. */
	static const uint8_t hello[8] = {0, 'S', 'P', 0, 0, 48, 0, 0};
	int ipc = strncmp(url, "ipc://", 6) == 0, connected, ok = 0;
	int fd = raw_connect(url, &connected);
	struct timeval tv = {.tv_sec = 5};
	uint8_t peer[8], m[80];
	size_t n = 0, got = 0;
	if (!connected ||
	    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) != 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) != 0 ||
	    write_all(fd, hello, sizeof hello) != 0)
		goto out;
	while (got < sizeof peer) {
		ssize_t r = read(fd, peer + got, sizeof peer - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			goto out;
		got += (size_t)r;
	}
	ok = peer[1] == 'S' && peer[2] == 'P';
	uint64_t len = k % 2 ? (uint64_t)IPC_MAX_CTL_FRAME + 1 + k : 4096;
	if (ipc)
		m[n++] = 1; /* ipc: a message follows */
	for (int sh = 56; sh >= 0; sh -= 8)
		m[n++] = (uint8_t)(len >> sh);
	if (!(k % 2)) { /* the start of a request, then nothing */
		memset(m + n, 0x80, 40);
		n += 40;
	}
	(void)write_all(fd, m, n); /* nng may have closed it already */
out:
	close(fd);
	return ok;
}

/* A STATUS over a REQ socket dialed to control; 0 or -1. */
static int status_of(nng_socket s, ipc_status *st)
{
	nng_msg *m = NULL, *r = NULL;
	ipc_frame f;
	if (ipc_pack_status_req(&m) != 0)
		return -1;
	if (nng_sendmsg(s, m, 0) != 0) {
		nng_msg_free(m);
		return -1;
	}
	if (nng_recvmsg(s, &r, 0) != 0 ||
	    ipc_decode_msg(r, IPC_MAX_CTL_FRAME, &f) != 0)
		return -1;
	int rc = ipc_unpack_status(&f, st) == 0 ? 0 : -1;
	ipc_frame_fini(&f);
	return rc;
}

static void status_open(nng_socket *s, const char *url)
{
	ck_assert_int_eq(nng_req0_open(s), 0);
	ck_assert_int_eq(nng_socket_set_ms(*s, NNG_OPT_RECVTIMEO, 20000), 0);
	ck_assert_int_eq(nng_socket_set_ms(*s, NNG_OPT_SENDTIMEO, 20000), 0);
	ck_assert_int_eq(nng_socket_set_size(*s, NNG_OPT_RECVMAXSZ,
	                                     IPC_MAX_CTL_FRAME), 0);
	ck_assert_int_eq(nng_dial(*s, url, NULL, 0), 0);
}

/* Polls status until field (bad_frames, slow_readers) reaches want,
 * keeping the log pipe drained; the last value seen. */
static uint64_t status_until(nng_socket s, int slow, uint64_t want, int ms)
{
	uint64_t deadline = h_now_ms() + (uint64_t)ms, v = 0;
	do {
		ipc_status st;
		if (status_of(s, &st) == 0) {
			v = slow ? st.slow_readers : st.bad_frames;
			ipc_status_free(&st);
			if (v >= want)
				return v;
		}
		h_read_log(&H, 20); /* the pace: up to 20 ms */
	} while (h_now_ms() < deadline);
	return v;
}

/* VmRSS of pid in KiB, from /proc/PID/status; -1 if unreadable. */
static long rss_kb(pid_t pid)
{
	char path[64], line[256];
	long kb = -1;
	snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
	FILE *fp = fopen(path, "re");
	if (!fp)
		return -1;
	while (fgets(line, sizeof line, fp))
		if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
			break;
	fclose(fp);
	return kb;
}

/* RSS once it has settled: until it moved less than 64 KiB over a second
 * (or at most ms), reading it every 100 ms; or as soon as it is at most
 * below (> 0).  Keeps the log drained meanwhile. */
static long rss_settled(pid_t pid, long below, int ms)
{
	uint64_t deadline = h_now_ms() + (uint64_t)ms;
	long hist[10], kb;
	int n = 0;
	for (;;) {
		kb = rss_kb(pid);
		ck_assert_int_gt(kb, 0);
		if (below > 0 && kb <= below)
			return kb;
		hist[n++ % 10] = kb;
		if (n >= 10) {
			long lo = kb, hi = kb;
			for (int k = 0; k < 10; k++) {
				lo = hist[k] < lo ? hist[k] : lo;
				hi = hist[k] > hi ? hist[k] : hi;
			}
			if (below <= 0 && hi - lo < 64)
				return kb;
		}
		if (h_now_ms() >= deadline)
			return kb;
		h_read_log(&H, 100); /* the pace: 100 ms */
	}
}

/* Log lines from byte offset from to the end of what was read. */
static int lines_since(const harness *h, size_t from)
{
	int n = 0;
	for (size_t k = from; k < h->loglen; k++)
		n += h->log[k] == '\n';
	return n;
}

/* One flood, nbad garbage frames split between control and jobs, with
 * raw hostile connections interleaved; checks every answer.  Returns the
 * garbage frames sent. */
static unsigned run_flood(const char *ctl_url, const char *jobs_url,
                          unsigned nbad, unsigned nraw)
{
	static flood f[2];
	flood_open(&f[0], ctl_url, 0, nbad / 2);
	flood_open(&f[1], jobs_url, 1, nbad - nbad / 2);
	flood_start(&f[0]);
	flood_start(&f[1]);
	unsigned raw = 0, raw_ok = 0;
	uint64_t deadline = h_now_ms() + FLOOD_MS;
	while ((atomic_load(&f[0].active) || atomic_load(&f[1].active)) &&
	       h_now_ms() < deadline) {
		if (raw < 2 * nraw) {
			raw_ok += raw_hostile(raw % 2 ? jobs_url : ctl_url,
			                      raw / 2);
			raw++;
		} else {
			struct timespec ts = {0, 5000000};
			nanosleep(&ts, NULL);
		}
		ck_assert_int_eq(h_read_log(&H, 0), 0); /* never blocks it */
	}
	int done = !atomic_load(&f[0].active) && !atomic_load(&f[1].active);
	unsigned sent = 0;
	for (int k = 0; k < 2; k++) {
		flood_close(&f[k]);
		fprintf(stderr, "flood %s: %u garbage frames answered as such, "
		        "%u well-formed answered right, %u wrong%s%s\n",
		        k ? "jobs" : "control", atomic_load(&f[k].bad_ok),
		        atomic_load(&f[k].good_ok), atomic_load(&f[k].wrong),
		        atomic_load(&f[k].wrong) ? ": first " : "",
		        atomic_load(&f[k].wrong) ? f[k].why : "");
	}
	ck_assert_msg(done, "the flood did not end within %d ms", FLOOD_MS);
	for (int k = 0; k < 2; k++) {
		ck_assert_msg(atomic_load(&f[k].wrong) == 0, "%s: %s",
		              k ? "jobs" : "control", f[k].why);
		ck_assert_uint_eq(atomic_load(&f[k].bad_ok),
		                  atomic_load(&f[k].bad));
		ck_assert_uint_eq(atomic_load(&f[k].good_ok),
		                  atomic_load(&f[k].good));
		ck_assert_uint_eq(atomic_load(&f[k].bad) +
		                  atomic_load(&f[k].good), f[k].total);
		sent += atomic_load(&f[k].bad);
	}
	ck_assert_uint_eq(raw_ok, raw); /* every hostile one got in */
	return sent;
}

static void flood_supervisor(const char *jobs)
{
	char ctl_url[256], jobs_url[IPC_URL_LEN];
	nng_socket st_sock;
	ipc_status st;
	start(&H, jobs);
	snprintf(ctl_url, sizeof ctl_url, "ipc://%s/control", H.rundir);
	status_open(&st_sock, ctl_url);
	ck_assert_int_eq(status_of(st_sock, &st), 0);
	snprintf(jobs_url, sizeof jobs_url, "%s", st.jobs_url);
	ipc_status_free(&st);
	ck_assert_msg(strncmp(jobs_url, jobs[0] ? "tcp://" : "ipc://", 6) == 0,
	              "jobs_url %s", jobs_url);

	/* A warm-up of the same mix makes what is made once (the pipes of
	 * these sockets, the server's contexts, an arena for each nng
	 * thread that handles a message); what the flood leaves on top of
	 * that is what every longer flood would leave again. */
	unsigned warm = run_flood(ctl_url, jobs_url, FLOOD_BAD / 50,
	                          FLOOD_RAW / 50);
	ck_assert_uint_eq(status_until(st_sock, 0, warm, 20000), warm);
	long before = rss_settled(H.sup, 0, 10000);
	size_t mark = H.loglen;

	uint64_t t0 = h_now_ms();
	unsigned sent = run_flood(ctl_url, jobs_url, FLOOD_BAD, FLOOD_RAW);
	uint64_t t1 = h_now_ms();
	/* (a) counted, every one, and none twice */
	ck_assert_uint_eq(status_until(st_sock, 0, warm + sent, 20000),
	                  warm + sent);
	long after = rss_settled(H.sup, before + RSS_SLACK_KB, 10000);
	/* Still serving, on new connections. */
	ck_assert(real_request(ctl_url, IPC_STATUS_REQ));
	ck_assert(real_request(jobs_url, IPC_CALL));
	ck_assert_int_eq(status_of(st_sock, &st), 0);
	uint64_t heals = st.heals, slow = st.slow_readers;
	ipc_status_free(&st);
	nng_close(st_sock);

	ck_assert_int_eq(kill(H.sup, SIGTERM), 0);
	ck_assert_int_eq(h_wait_exit(&H, 20000), 0);
	int lines = lines_since(&H, mark);
	fprintf(stderr, "flood (jobs on %.3s): %u garbage frames + %u raw "
	        "connections in %.1f s (%.0f frames/s); RSS %ld -> %ld KiB "
	        "(%+ld); %d log lines from the flood to the exit; listener "
	        "heals %" PRIu64 ", slow readers %" PRIu64 "\n", jobs_url, sent,
	        2 * FLOOD_RAW, (double)(t1 - t0) / 1000.0,
	        sent * 1000.0 / (double)(t1 - t0 ? t1 - t0 : 1), before, after,
	        after - before, lines, heals, slow);
	if (lines >= MAX_FLOOD_LINES)
		fwrite(H.log + mark, 1, H.loglen - mark, stderr);
	ck_assert_uint_ge(sent, FLOOD_BAD);
	/* (b) no memory kept: under a sanitizer RSS is its allocator's
	 * (a quarantine of freed memory), not corral's, so only then not */
#if defined(__SANITIZE_ADDRESS__)
	fprintf(stderr, "RSS not checked under AddressSanitizer\n");
#else
	ck_assert_msg(after - before < RSS_SLACK_KB, "RSS grew by %ld KiB",
	              after - before);
#endif
	/* (c) a handful of lines, not one per frame */
	ck_assert_int_lt(lines, MAX_FLOOD_LINES);
	ck_assert_uint_eq(slow, 0); /* the flood's clients all read */
}

START_TEST(flood_of_garbage_over_ipc)
{
	flood_supervisor("");
}
END_TEST

START_TEST(flood_of_garbage_over_tcp)
{
	flood_supervisor("tcp://127.0.0.1:0");
}
END_TEST

/* ---- clients that never read ---- */

#define HOGS 20          /* connections per socket that never read... */
#define HOG_REQS 250     /* ...each sending this many requests */
#define MAX_HOG_LINES 20 /* log lines from the hogs to the exit */

/* A raw REQ socket: nng matches no reply to a request for it, and with
 * nobody calling recv it stops reading once its receive queue is full, so
 * the replies back up into the supervisor: a client that never reads. */
static void hog_open(nng_socket *s, const char *url)
{
	ck_assert_int_eq(nng_req0_open_raw(s), 0);
	ck_assert_int_eq(nng_socket_set_ms(*s, NNG_OPT_SENDTIMEO, 20000), 0);
	ck_assert_int_eq(nng_dial(*s, url, NULL, 0), 0);
}

/* Sends n requests (status, or calls of 4 KiB so that their results
 * fill the socket buffers soon); how many went out. */
static unsigned hog_send(nng_socket s, int jobs, unsigned n)
{
	static const uint8_t payload[4096];
	unsigned sent = 0;
	for (unsigned i = 0; i < n; i++) {
		nng_msg *m = NULL;
		ipc_call c = {.payload = payload, .len = sizeof payload,
		              .prio = 2};
		ck_assert_int_eq(jobs ? ipc_pack_call(&m, &c)
		                      : ipc_pack_status_req(&m), 0);
		/* A raw REQ sends the request id the application gives. */
		ck_assert_int_eq(nng_msg_header_append_u32(m, 0x80000000u | i),
		                 0);
		if (nng_sendmsg(s, m, 0) != 0) {
			nng_msg_free(m);
			break;
		}
		sent++;
		if (i % 64 == 0)
			ck_assert_int_eq(h_read_log(&H, 0), 0);
	}
	return sent;
}

/* HOGS clients on url that send HOG_REQS requests each and never read;
 * another client is answered meanwhile, the hogs are cut (slow_readers
 * grows past *cuts, which gets the new count), and then everyone is
 * answered at once.  Prints the figures under name. */
static void hogs_on(const char *name, const char *url, int jobs,
                    nng_socket st_sock, uint64_t *cuts)
{
	nng_socket hog[HOGS];
	unsigned sent = 0;
	uint64_t t0 = h_now_ms();
	for (int k = 0; k < HOGS; k++) {
		hog_open(&hog[k], url);
		sent += hog_send(hog[k], jobs, HOG_REQS);
	}
	uint64_t t1 = h_now_ms();
	ck_assert(real_request(url, jobs ? IPC_CALL : IPC_STATUS_REQ));
	uint64_t t2 = h_now_ms();
	uint64_t now_cut = status_until(st_sock, 1, *cuts + 1, 30000);
	uint64_t t3 = h_now_ms();
	for (int k = 0; k < HOGS; k++)
		nng_close(hog[k]);
	ck_assert(real_request(url, jobs ? IPC_CALL : IPC_STATUS_REQ));
	uint64_t t4 = h_now_ms();
	fprintf(stderr, "never-reading clients on %s: %u requests sent over "
	        "%d connections in %.1f s; another client answered %.1f s "
	        "later; %" PRIu64 " connection(s) cut %.1f s after the last "
	        "send; then answered in %.3f s\n", name, sent, HOGS,
	        (double)(t1 - t0) / 1000.0, (double)(t2 - t1) / 1000.0,
	        now_cut - *cuts, (double)(t3 - t1) / 1000.0,
	        (double)(t4 - t3) / 1000.0);
	ck_assert_uint_eq(sent, HOGS * HOG_REQS);
	ck_assert_uint_gt(now_cut, *cuts);
	*cuts = now_cut;
}

START_TEST(clients_that_never_read_are_cut)
{
	char ctl_url[256], jobs_url[256];
	nng_socket st_sock;
	uint64_t cuts = 0;
	start(&H, "");
	snprintf(ctl_url, sizeof ctl_url, "ipc://%s/control", H.rundir);
	snprintf(jobs_url, sizeof jobs_url, "ipc://%s/jobs", H.rundir);
	status_open(&st_sock, ctl_url);
	size_t mark = H.loglen;
	hogs_on("control", ctl_url, 0, st_sock, &cuts);
	hogs_on("jobs", jobs_url, 1, st_sock, &cuts);
	nng_close(st_sock);
	ck_assert_int_eq(kill(H.sup, SIGTERM), 0);
	ck_assert_int_eq(h_wait_exit(&H, 20000), 0);
	int lines = lines_since(&H, mark);
	fprintf(stderr, "never-reading clients: %" PRIu64 " connections cut, "
	        "%d log lines to the exit\n", cuts, lines);
	if (lines >= MAX_HOG_LINES)
		fwrite(H.log + mark, 1, H.loglen - mark, stderr);
	ck_assert_int_lt(lines, MAX_HOG_LINES);
}
END_TEST

Suite *hostile_suite(void);
Suite *hostile_suite(void)
{
	Suite *s = suite_create("hostile");
	TCase *tc = tcase_create("listeners");
	tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, control_survives_handshake_aborts);
	tcase_add_test(tc, ipc_jobs_survive_handshake_aborts);
	tcase_add_test(tc, tcp_jobs_survive_a_port_scan);
	suite_add_tcase(s, tc);
	tc = tcase_create("flood");
	tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_set_timeout(tc, 240);
	tcase_add_test(tc, flood_of_garbage_over_ipc);
	tcase_add_test(tc, flood_of_garbage_over_tcp);
	tcase_add_test(tc, clients_that_never_read_are_cut);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(hostile_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
