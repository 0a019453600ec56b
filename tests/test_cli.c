/*
 * test_cli.c - the command-line tools against a real supervisor: corralctl
 * status and events, as a script (jq) and an operator (the table) read
 * them, including what a plugin can put in them that would break JSON.
 */
#include <check.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/harness.h"

static harness H;

static const char *jq(void)
{
	const char *e = getenv("JQ");
	return e && *e ? e : "jq";
}

static const char *so(const char *rel)
{
	static char b[PATH_MAX];
	return h_path(rel, b, sizeof b);
}

static void teardown(void)
{
	h_cleanup(&H);
}

#define START(...) H_START(&H, __VA_ARGS__)

#define EVENT(filter, ms) H_EVENT(&H, filter, ms)

/* Until jq's filter holds on `status --json` (health arrives on the
 * workers' schedule), each try a real round trip. */
static int status_until(const char *filter, int timeout_ms)
{
	uint64_t deadline = h_now_ms() + (uint64_t)timeout_ms;
	do {
		if (h_sh(NULL, 0, "'%s' --rundir '%s' status --json | '%s' -e "
		         "'%s' >/dev/null 2>&1", h_ctl(), H.rundir, jq(),
		         filter) == 0)
			return 0;
		usleep(50 * 1000);
	} while (h_now_ms() < deadline);
	return -1;
}

START_TEST(status_json_survives_hostile_metrics)
{
	START("-w", "1", "--health-interval", "100ms",
	      so("tests/badmetric.so"));
	EVENT("kind=slot slot=0 to=running", 5000);
	/* jq parses it; NaN and infinity are null; the bad name is
	 * repaired, the escaped one kept. */
	ck_assert_msg(status_until(".workers[0].metrics.fine == 3.5 and "
	                           ".workers[0].metrics.nan == null and "
	                           ".workers[0].metrics.inf == null and "
	                           ".workers[0].metrics[\"quote\\\"back\\\\"
	                           "slash\\ttab\"] == 2 and "
	                           "(.workers[0].metrics|keys|map(select("
	                           "startswith(\"bad\")))|length) == 1",
	                           5000) == 0,
	              "status --json did not parse or lost a metric");
	char out[8192];
	/* Python's strict parser agrees (no NaN, valid UTF-8). */
	int rc = h_sh(out, sizeof out,
	              "'%s' --rundir '%s' --timeout 20s status --json > "
	              "'%s/st.json' 2>&1; python3 -c 'import json,sys; "
	              "json.loads(open(sys.argv[1], \"rb\").read().decode("
	              "\"utf-8\", \"strict\"), parse_constant=lambda c: 1/0); "
	              "print(\"ok\")' '%s/st.json' 2>&1 || cat '%s/st.json'",
	              h_ctl(), H.rundir, H.dir, H.dir, H.dir);
	ck_assert_msg(rc == 0 && strcmp(out, "ok\n") == 0, "%s", out);
	/* The table too. */
	ck_assert_int_eq(h_sh(out, sizeof out, "'%s' --rundir '%s' status",
	                      h_ctl(), H.rundir), 0);
	ck_assert_ptr_nonnull(strstr(out, "SLOT"));
	ck_assert_ptr_nonnull(strstr(out, "LAG P99"));
	ck_assert_ptr_nonnull(strstr(out, "running"));
}
END_TEST

START_TEST(events_stream_as_json_lines_and_follow_ends_with_done)
{
	START("-w", "2", "--standby", "0", so("examples/hello.so"));
	pid_t p = (pid_t)EVENT("kind=slot slot=1 to=running", 5000)->pid;
	char out[16384], path[256];
	snprintf(path, sizeof path, "%s/events.jsonl", H.dir);
	/* A follower, started now, sees what comes next and the end. */
	char cmd[1024];
	snprintf(cmd, sizeof cmd, "'%s' --rundir '%s' events -f --json "
	         "> '%s' 2>&1 &", h_ctl(), H.rundir, path);
	ck_assert_int_eq(system(cmd), 0);
	/* Every line already there parses; one per event. */
	ck_assert_int_eq(h_sh(out, sizeof out,
	                      "'%s' --rundir '%s' events --json | '%s' -s -e "
	                      "'length >= 5 and (map(.seq) == "
	                      "[range(1; length + 1)]) and any(.kind == "
	                      "\"supervisor\" and .to == \"running\")' "
	                      ">/dev/null", h_ctl(), H.rundir, jq()), 0);
	ck_assert_int_eq(kill(p, SIGKILL), 0);
	EVENT("kind=slot slot=1 from=running to=exited why~SIGKILL", 5000);
	EVENT("kind=slot slot=1 to=running", 5000);
	kill(H.sup, SIGTERM);
	ck_assert_int_eq(h_wait_exit(&H, 10000), 0);
	/* The follower ended by itself, having seen the whole story up to
	 * the supervisor's own end. */
	uint64_t deadline = h_now_ms() + 5000;
	int rc;
	while ((rc = h_sh(NULL, 0, "'%s' -s -e 'any(.kind == \"supervisor\" "
	                  "and .to == \"done\") and any(.why | "
	                  "contains(\"SIGKILL\"))' '%s' >/dev/null 2>&1", jq(),
	                  path)) != 0 &&
	       h_now_ms() < deadline)
		usleep(20 * 1000);
	ck_assert_msg(rc == 0, "follower did not see the end");
	/* Text lines for people. */
	(void)out;
}
END_TEST

START_TEST(every_tool_answers_version)
{
	char out[512];
	const char *bins[] = {"corral", "corralctl", "corral-load",
	                      "corral-worker"};
	for (int i = 0; i < 4; i++) {
		char b[PATH_MAX];
		ck_assert_int_eq(h_sh(out, sizeof out, "'%s' --version",
		                      h_path(bins[i], b, sizeof b)), 0);
		ck_assert_msg(strstr(out, PACKAGE_VERSION), "%s: %s", bins[i],
		              out);
	}
}
END_TEST

/* nginx -t: the configuration and the plugin checked, nothing started. */
START_TEST(check_config_checks_and_starts_nothing)
{
	char out[2048], b[PATH_MAX], ini[PATH_MAX];
	ck_assert_int_eq(h_prepare(&H), 0);
	const char *corral = h_path("corral", b, sizeof b);
	int rc = h_sh(out, sizeof out, "'%s' --rundir '%s' --check-config "
	              "'%s' 2>&1", corral, H.rundir, so("examples/echo.so"));
	ck_assert_msg(rc == 0 && strstr(out, "configuration ok") &&
	              strstr(out, "plugin 'echo' (abi 1) loads"), "%d: %s", rc,
	              out);
	ck_assert_int_ne(access(H.rundir, F_OK), 0); /* nothing started */
	rc = h_sh(out, sizeof out, "'%s' --rundir '%s' --check-config '%s' "
	          "2>&1", corral, H.rundir, so("examples/badabi.so"));
	ck_assert_msg(rc == 2 && strstr(out, "abi_version 99"), "%d: %s", rc,
	              out);
	rc = h_sh(out, sizeof out, "'%s' --rundir '%s' --check-config '%s' "
	          "2>&1", corral, H.rundir, so("tests/nosym.so"));
	ck_assert_msg(rc == 2 && strstr(out, "corral_plugin"), "%d: %s", rc,
	              out);
	snprintf(ini, sizeof ini, "%s/c.ini", H.dir);
	FILE *f = fopen(ini, "w");
	ck_assert_ptr_nonnull(f);
	fprintf(f, "[corral]\nworkers = 2\nmax_memroy = 1G\n");
	fclose(f);
	rc = h_sh(out, sizeof out, "'%s' --rundir '%s' --check-config -c '%s' "
	          "'%s' 2>&1", corral, H.rundir, ini, so("examples/echo.so"));
	ck_assert_msg(rc == 2 && strstr(out, "c.ini:3") &&
	              strstr(out, "max_memroy"), "%d: %s", rc, out);
	ck_assert_int_ne(access(H.rundir, F_OK), 0);
}
END_TEST

static Suite *cli_suite(void)
{
	Suite *s = suite_create("cli");
	TCase *tc = tcase_create("cli");
	tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, status_json_survives_hostile_metrics);
	tcase_add_test(tc, events_stream_as_json_lines_and_follow_ends_with_done);
	tcase_add_test(tc, every_tool_answers_version);
	tcase_add_test(tc, check_config_checks_and_starts_nothing);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(cli_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
