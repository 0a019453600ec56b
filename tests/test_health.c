/*
 * test_health.c - health that acts, against real workers: a worker over
 * max_memory, one leaking steadily (flagged with leak_action = warn,
 * replaced with restart) and one whose loop lags past lag_restart is
 * replaced through the gated replacement while jobs flow, losing none;
 * each action is an event with its figures and is counted by cause.
 */
#include <check.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/harness.h"

#define WAIT_MS 20000

static harness H;

static void teardown(void)
{
	h_cleanup(&H);
}

#define START(...) H_START(&H, __VA_ARGS__)
#define EVENT(filter) H_EVENT(&H, filter, WAIT_MS)

/* Load through the whole test (corral-load in the background, its JSON
 * report in DIR/load.json); load_check() waits for it and checks it. */
static void load_start(const char *dur)
{
	ck_assert_int_eq(h_sh(NULL, 0, "'%s' --rundir '%s' --rate 200 "
	                      "--duration %s --json --fail-on-loss > "
	                      "'%s/load.json' 2>'%s/load.err' & echo $! > "
	                      "'%s/load.pid'", h_bin("corral-load"), H.rundir,
	                      dur, H.dir, H.dir, H.dir), 0);
}

static void load_check(void)
{
	char out[4096];
	/* It was the shell's; now it is ours (the harness is a subreaper):
	 * wait for it and reap it. */
	ck_assert_int_eq(h_sh(out, sizeof out, "cat '%s/load.pid'", H.dir), 0);
	ck_assert_int_eq(h_wait_pid_gone((pid_t)atoi(out), WAIT_MS), 0);
	int rc = h_sh(out, sizeof out, "jq -e '.lost == 0 and .duplicates == 0 "
	              "and .ok == .sent and .sent > 100' '%s/load.json' || cat "
	              "'%s/load.json' '%s/load.err'", H.dir, H.dir, H.dir);
	ck_assert_msg(rc == 0 && strstr(out, "true"), "load: %s", out);
}

START_TEST(over_max_memory_the_worker_is_replaced_losing_no_job)
{
	START("-w", "2", "--standby", "0", "--health-interval", "100ms",
	      "--reload-gate", "300ms", "--max-memory", "48M",
	      "--leak-window", "0", "--set", "rate=20000000", "--set",
	      "max=400000000", h_bin("examples/leak.so"));
	EVENT("kind=slot to=running");
	EVENT("kind=slot to=running");
	load_start("4s");
	const ipc_event *e = EVENT("kind=health to=memory");
	ck_assert_ptr_nonnull(strstr(e->why, "over max_memory 48.0 MB"));
	EVENT("kind=restart to=swapped");
	load_check();
	ck_assert_int_eq(h_status_is(&H, "[.workers[].restarts_by.memory] | add >= 1"),
	                 0);
	ck_assert_int_eq(h_status_is(&H, "[.workers[].restarts_by.crash] | add == 0"),
	                 0);
}
END_TEST

START_TEST(a_steady_leak_is_flagged_with_leak_action_warn)
{
	START("-w", "1", "--standby", "0", "--health-interval", "100ms",
	      "--reload-gate", "300ms", "--leak-window", "3s",
	      "--leak-min-growth", "4M", "--set", "rate=3000000", "--set",
	      "max=400000000", h_bin("examples/leak.so"));
	EVENT("kind=slot to=running");
	/* warn (the default): flagged with its slope, not replaced. */
	const ipc_event *e = EVENT("kind=health slot=0 to=leaking");
	ck_assert_ptr_nonnull(strstr(e->why, "RSS growing"));
	ck_assert_int_eq(h_status_is(&H, ".workers[0].leaking == true and "
	                           ".workers[0].leak_bytes_per_s > 1000000"),
	                 0);
	ck_assert_int_eq(h_event_count(&H, "kind=restart"), 0);
}
END_TEST

START_TEST(leak_action_restart_replaces_the_leaking_worker)
{
	START("-w", "1", "--standby", "0", "--health-interval", "100ms",
	      "--reload-gate", "300ms", "--leak-window", "3s",
	      "--leak-min-growth", "4M", "--leak-action", "restart", "--set",
	      "rate=3000000", "--set", "max=400000000",
	      h_bin("examples/leak.so"));
	pid_t first = (pid_t)EVENT("kind=slot to=running")->pid;
	load_start("6s");
	EVENT("kind=health slot=0 to=leak");
	const ipc_event *e = EVENT("kind=restart slot=0 to=swapped");
	ck_assert_int_ne(e->pid, first);
	load_check();
	ck_assert_int_eq(h_status_is(&H, ".workers[0].restarts_by.leak >= 1"), 0);
}
END_TEST

START_TEST(sustained_lag_replaces_the_worker)
{
	START("-w", "1", "--standby", "0", "--health-interval", "200ms",
	      "--reload-gate", "300ms", "--lag-restart", "100ms",
	      "--lag-restart-for", "1s", "--set", "ms=150", "--set",
	      "every=250", h_bin("tests/stall.so"));
	pid_t first = (pid_t)EVENT("kind=slot to=running")->pid;
	const ipc_event *e = EVENT("kind=health slot=0 to=lag");
	ck_assert_ptr_nonnull(strstr(e->why, "over lag_restart 100 ms"));
	e = EVENT("kind=restart slot=0 to=swapped");
	ck_assert_int_ne(e->pid, first);
	ck_assert_int_eq(h_status_is(&H, ".workers[0].restarts_by.lag >= 1"), 0);
}
END_TEST

/* The budget still rules: with max_restarts 1 a second replacement in
 * the window does not happen, and says so. */
START_TEST(health_actions_stay_within_the_restart_budget)
{
	START("-w", "1", "--standby", "0", "--health-interval", "100ms",
	      "--reload-gate", "200ms", "--max-memory", "32M",
	      "--max-restarts", "1", "--leak-window", "0", "--set",
	      "rate=40000000", "--set", "max=400000000",
	      h_bin("examples/leak.so"));
	EVENT("kind=slot to=running");
	EVENT("kind=restart slot=0 to=swapped");
	ck_assert_ptr_nonnull(h_log_find(&H, "restart budget is spent",
	                                 WAIT_MS));
	ck_assert_int_eq(h_event_count(&H, "kind=restart to=swapped"), 1);
	ck_assert_int_eq(h_status_is(&H, ".workers[0].state == \"running\""), 0);
}
END_TEST

static Suite *health_suite(void)
{
	Suite *s = suite_create("health");
#define CASE(t) H_CASE(s, t, teardown, 60)
	CASE(over_max_memory_the_worker_is_replaced_losing_no_job);
	CASE(a_steady_leak_is_flagged_with_leak_action_warn);
	CASE(leak_action_restart_replaces_the_leaking_worker);
	CASE(sustained_lag_replaces_the_worker);
	CASE(health_actions_stay_within_the_restart_budget);
#undef CASE
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
