/*
 * test_srv.c - the REP front end (ipc/srv.c) over a real nng socket: a
 * burst grows its contexts, and once it has passed they are retired again
 * without losing a request, including ones that arrive while they go.
 */
#include <check.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "ipc/chan.h"
#include "ipc/srv.h"
#include "tests/suites.h"

#define BURST 600

static struct {
	ipc_req *r[BURST * 2];
	nng_msg *m[BURST * 2];
	unsigned n;
	int echo; /* answer at once instead of holding */
} got;

static void on_req(ipc_req *r, nng_msg *msg, void *arg)
{
	(void)arg;
	if (got.echo) {
		ipc_srv_reply(r, msg);
		got.n++;
		return;
	}
	ck_assert_uint_lt(got.n, BURST * 2);
	got.r[got.n] = r;
	got.m[got.n++] = msg;
}

typedef struct {
	nng_ctx ctx;
	nng_aio *aio;
} call;

/* Sends n requests on n contexts of one REQ socket, without waiting
 * (the server's loop must run for them to get in). */
static void send_all(nng_socket s, call *c, unsigned n, unsigned base)
{
	for (unsigned i = 0; i < n; i++) {
		nng_msg *m;
		ck_assert_int_eq(nng_ctx_open(&c[i].ctx, s), 0);
		ck_assert_int_eq(nng_aio_alloc(&c[i].aio, NULL, NULL), 0);
		ck_assert_int_eq(nng_msg_alloc(&m, 0), 0);
		ck_assert_int_eq(nng_msg_append_u32(m, base + i), 0);
		nng_aio_set_msg(c[i].aio, m);
		nng_ctx_send(c[i].ctx, c[i].aio);
	}
}

/* Once the server has them: the replies are waited for on each. */
static void arm_recv(call *c, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		nng_aio_wait(c[i].aio);
		ck_assert_int_eq(nng_aio_result(c[i].aio), 0);
		nng_ctx_recv(c[i].ctx, c[i].aio);
	}
}

/* Every answer is its own request's. */
static void recv_all(call *c, unsigned n, unsigned base)
{
	for (unsigned i = 0; i < n; i++) {
		uint32_t v;
		nng_aio_wait(c[i].aio);
		ck_assert_int_eq(nng_aio_result(c[i].aio), 0);
		nng_msg *m = nng_aio_get_msg(c[i].aio);
		ck_assert_int_eq(nng_msg_trim_u32(m, &v), 0);
		ck_assert_uint_eq(v, base + i);
		nng_msg_free(m);
		nng_aio_free(c[i].aio);
		nng_ctx_close(c[i].ctx);
	}
}

static void run_until(uv_loop_t *loop, int (*done)(void *), void *arg,
                      int max_ms)
{
	for (int i = 0; i < max_ms && !done(arg); i++) {
		uv_run(loop, UV_RUN_NOWAIT);
		usleep(1000);
	}
	uv_run(loop, UV_RUN_NOWAIT);
}

static unsigned want;
static int have_n(void *arg)
{
	(void)arg;
	return got.n >= want;
}

static int few_contexts(void *arg)
{
	return ipc_srv_contexts(arg) <= 16;
}

START_TEST(contexts_grow_for_a_burst_and_are_retired_after)
{
	char url[128];
	uv_loop_t loop;
	ipc_srv *srv;
	nng_socket cli;
	static call c[BURST];
	memset(&got, 0, sizeof got);
	snprintf(url, sizeof url, "ipc:///tmp/corral-test-srv-%d", (int)getpid());
	ipc_sockopts o = {.max_frame = 1 << 20, .bufs = 64, .perms = 0600};
	ck_assert_int_eq(uv_loop_init(&loop), 0);
	ck_assert_int_eq(ipc_srv_open(&srv, &loop, url, &o, 4096, on_req,
	                              NULL), 0);
	ck_assert_uint_eq(ipc_srv_contexts(srv), 16);
	ck_assert_int_eq(nng_req0_open(&cli), 0);
	ck_assert_int_eq(nng_dial(cli, url, NULL, 0), 0);

	/* A burst held unanswered: a context for each request. */
	send_all(cli, c, BURST, 0);
	want = BURST;
	run_until(&loop, have_n, NULL, 10000);
	ck_assert_uint_eq(got.n, BURST);
	ck_assert_uint_ge(ipc_srv_contexts(srv), BURST);
	arm_recv(c, BURST);

	/* Answered: back to 16, the unused ones too. */
	for (unsigned i = 0; i < BURST; i++)
		ipc_srv_reply(got.r[i], got.m[i]);
	recv_all(c, BURST, 0);
	run_until(&loop, few_contexts, srv, 10000);
	ck_assert_uint_eq(ipc_srv_contexts(srv), 16);

	/* A second burst while they go, answered as it comes: all of it
	 * answered, each by its own request. */
	got.n = 0;
	got.echo = 1;
	send_all(cli, c, BURST, 1000);
	want = BURST;
	run_until(&loop, have_n, NULL, 10000);
	arm_recv(c, BURST);
	recv_all(c, BURST, 1000);
	run_until(&loop, few_contexts, srv, 10000);
	ck_assert_uint_le(ipc_srv_contexts(srv), 32);

	nng_close(cli);
	ipc_srv_close(srv);
	ck_assert_int_eq(ipc_chan_wait_closed(5000), 0);
	unlink(url + strlen("ipc://")); /* nng 1.5.2 leaves the socket file */
	uv_run(&loop, UV_RUN_DEFAULT);
	ck_assert_int_eq(uv_loop_close(&loop), 0);
}
END_TEST

Suite *srv_suite(void)
{
	Suite *s = suite_create("srv");
	TCase *tc = tcase_create("retire");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, contexts_grow_for_a_burst_and_are_retired_after);
	suite_add_tcase(s, tc);
	return s;
}
