/*
 * test_hostile.c - what a hostile or careless local user can do to a
 * running supervisor, and that it survives it: connections that close
 * before the SP handshake (nng 1.5.2 bug #1518), a second instance on the
 * same run directory, garbage frames.  Each test makes real connections
 * with raw sockets and real requests with nng, against the real binaries.
 */
#include <arpa/inet.h>
#include <check.h>
#include <limits.h>
#include <netinet/in.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "ipc/proto.h"
#include "tests/harness.h"

static harness H, H2;
static char pbuf[PATH_MAX];

static const char *ctl(void)
{
	const char *e = getenv("CORRALCTL_BIN");
	return e && *e ? e : h_path("corralctl", pbuf, sizeof pbuf);
}

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

/* Connects and closes at once: what a port scan or a health probe does,
 * and what kills an nng 1.5.2 listener mid-handshake. */
static void raw_poke(const char *url)
{
	int fd;
	if (strncmp(url, "ipc://", 6) == 0) {
		struct sockaddr_un su = {.sun_family = AF_UNIX};
		snprintf(su.sun_path, sizeof su.sun_path, "%s", url + 6);
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		ck_assert_int_ge(fd, 0);
		(void)connect(fd, (struct sockaddr *)&su, sizeof su);
	} else {
		const char *colon = strrchr(url, ':');
		struct sockaddr_in si = {.sin_family = AF_INET,
		                         .sin_port = htons((uint16_t)atoi(colon + 1))};
		si.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		ck_assert_int_ge(fd, 0);
		(void)connect(fd, (struct sockaddr *)&si, sizeof si);
	}
	close(fd);
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
	                      "jq -r '%s'", ctl(), H.rundir, jq_filter), 0);
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
