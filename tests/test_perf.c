/*
 * test_perf.c - the performance contracts that can be checked exactly:
 * the worker's lag figure (a loop blocked X ms reports X; an idle loop is
 * never woken to measure it), first on a bare libuv loop with the health
 * monitor alone, then end to end with a plugin that stalls its loop.
 * Each case is bounded by Check's timeout; the process-level ones wait on
 * the supervisor's log and status, and kill and reap what they started.
 */
#include <check.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tests/harness.h"
#include "worker/health.h"

/* ---- the health monitor on a bare loop ---- */

static uv_loop_t loop;
static health_mon mon;
static long block_ms;

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

static void on_block(uv_timer_t *t)
{
	(void)t;
	sleep_ms(block_ms);
}

static void loop_setup(void)
{
	ck_assert_int_eq(uv_loop_init(&loop), 0);
	ck_assert_int_eq(health_start(&mon, &loop), 0);
}

static void loop_teardown(void)
{
	health_close(&mon);
	ck_assert_int_eq(uv_run(&loop, UV_RUN_DEFAULT), 0);
	ck_assert_int_eq(uv_loop_close(&loop), 0);
}

/* Runs one timer of delay_ms whose callback blocks the loop block_ms. */
static void run_timer(uint64_t delay_ms, long blocks_ms)
{
	uv_timer_t t;
	block_ms = blocks_ms;
	ck_assert_int_eq(uv_timer_init(&loop, &t), 0);
	ck_assert_int_eq(uv_timer_start(&t, on_block, delay_ms, 0), 0);
	ck_assert_int_eq(uv_run(&loop, UV_RUN_DEFAULT), 0);
	uv_close((uv_handle_t *)&t, NULL);
	ck_assert_int_eq(uv_run(&loop, UV_RUN_DEFAULT), 0);
}

START_TEST(blocked_loop_shows_its_lag)
{
	health_snapshot s;
	run_timer(10, 60);
	health_take(&mon, &loop, &s);
	ck_assert_uint_ge(s.lag_max_us, 60000);
	ck_assert_uint_ge(s.lag_p99_us, 60000 * 8 / 10);
	/* Next interval: the loop waits 30 ms but is never blocked. */
	run_timer(30, 0);
	health_take(&mon, &loop, &s);
	ck_assert_uint_lt(s.lag_max_us, 30000);
	ck_assert_uint_lt(s.lag_p99_us, 30000);
}
END_TEST

START_TEST(idle_loop_is_never_woken_to_measure)
{
	/* The hook alone does not keep the loop alive... */
	ck_assert_int_eq(uv_run(&loop, UV_RUN_NOWAIT), 0);
	health_snapshot s;
	health_take(&mon, &loop, &s);
	/* ...nor wake it: 300 ms of waiting is a handful of turns, where a
	 * 10 ms sampling timer would make 30. */
	run_timer(300, 0);
	ck_assert_uint_le(mon.lag.total, 4);
	health_take(&mon, &loop, &s);
	ck_assert_uint_lt(s.lag_max_us, 300000 / 2);
}
END_TEST

/* ---- end to end: a worker whose plugin stalls its loop ---- */

static harness H;
static char pbuf[PATH_MAX];

static const char *fixture(const char *rel)
{
	static char b[4][PATH_MAX];
	static int i;
	i = (i + 1) % 4;
	return h_path(rel, b[i], sizeof b[i]);
}

static const char *ctl(void)
{
	const char *e = getenv("CORRALCTL_BIN");
	return e && *e ? e : h_path("corralctl", pbuf, sizeof pbuf);
}

static const char *jq(void)
{
	const char *e = getenv("JQ");
	return e && *e ? e : "jq";
}

static void proc_teardown(void)
{
	h_cleanup(&H);
}

#define START(...)                                                            \
	do {                                                                  \
		const char *a_[] = {__VA_ARGS__, NULL};                       \
		ck_assert_int_eq(h_start(&H, a_), 0);                         \
	} while (0)

#define EXPECT(needles, ms)                                                   \
	({                                                                    \
		const char *l_ = h_expect(&H, needles, ms);                   \
		ck_assert_msg(l_ != NULL, "no log line with '%s'", needles);  \
		l_;                                                           \
	})

/* Asks `corralctl status --json` until jq's filter holds (health figures
 * arrive on the worker's schedule), up to timeout_ms. */
static int status_until(const char *filter, int timeout_ms, char *out,
                        size_t len)
{
	uint64_t deadline = h_now_ms() + (uint64_t)timeout_ms;
	int rc;
	do {
		rc = h_sh(out, len,
		          "'%s' --rundir '%s' status --json | tee -a /dev/stderr |"
		          " '%s' -e '%s' >/dev/null 2>&1",
		          ctl(), H.rundir, jq(), filter);
		if (rc == 0)
			return 0;
		struct timespec ts = {0, 50 * 1000000};
		nanosleep(&ts, NULL);
	} while (h_now_ms() < deadline);
	return rc;
}

START_TEST(stalling_plugin_reports_its_stall_as_lag)
{
	/* 80 ms stalls, one per health interval. */
	START("-w", "1", "--standby", "0", "--health-interval", "400ms",
	      "--set", "ms=80", "--set", "every=400",
	      fixture("tests/stall.so"));
	EXPECT("slot 0 pid |-> running", 5000);
	char out[8192];
	ck_assert_msg(status_until(".workers[0].lag_max_us >= 80000 and "
	                           ".workers[0].lag_p99_us >= 64000",
	                           5000, out, sizeof out) == 0,
	              "an 80 ms stall per interval never showed as lag");
}
END_TEST

/* Voluntary context switches of pid's main thread: each is a sleep. */
static long main_thread_sleeps(pid_t pid)
{
	char out[256];
	if (h_sh(out, sizeof out,
	         "sed -n 's/^voluntary_ctxt_switches:[[:space:]]*//p' "
	         "/proc/%d/task/%d/status", (int)pid, (int)pid) != 0)
		return -1;
	return atol(out);
}

START_TEST(idle_worker_loop_sleeps_between_health_reports)
{
	START("-w", "1", "--standby", "0", fixture("examples/hello.so"));
	pid_t w = h_line_pid(EXPECT("slot 0 pid |-> running", 5000));
	ck_assert_int_gt(w, 0);
	long before = main_thread_sleeps(w);
	ck_assert_int_ge(before, 0);
	sleep_ms(3000); /* the measurement window: three health reports */
	long after = main_thread_sleeps(w);
	ck_assert_int_ge(after, before);
	/* One wake-up per report (1 s), a few to spare; a 10 ms lag timer
	 * alone would add 300. */
	ck_assert_int_le(after - before, 12);
}
END_TEST

Suite *health_suite(void);
Suite *health_suite(void)
{
	Suite *s = suite_create("perf");
	TCase *tc = tcase_create("health");
	tcase_add_checked_fixture(tc, loop_setup, loop_teardown);
	tcase_set_timeout(tc, 20);
	tcase_add_test(tc, blocked_loop_shows_its_lag);
	tcase_add_test(tc, idle_loop_is_never_woken_to_measure);
	suite_add_tcase(s, tc);
	tc = tcase_create("worker");
	tcase_add_checked_fixture(tc, NULL, proc_teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, stalling_plugin_reports_its_stall_as_lag);
	tcase_add_test(tc, idle_worker_loop_sleeps_between_health_reports);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(health_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
