/*
 * test_tools.c - process-level tests of the command-line tools: every
 * binary answers --version; corral-load fails at once, with a reason and a
 * non-zero exit, when no supervisor listens; its report against a real
 * corral keeps its keys and columns.
 */
#include <check.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/harness.h"

static harness H;

static void teardown(void)
{
	h_cleanup(&H);
}

static const char *bin(const char *name, char *buf, size_t len)
{
	return h_path(name, buf, len);
}

START_TEST(every_tool_answers_version)
{
	/* corral-worker is not a user's tool and does not (yet) answer. */
	static const char *const tools[] = {"corral", "corralctl",
	                                    "corral-load"};
	for (size_t i = 0; i < sizeof tools / sizeof tools[0]; i++) {
		char out[512], path[PATH_MAX], want[128];
		int rc = h_sh(out, sizeof out, "'%s' --version 2>&1",
		              bin(tools[i], path, sizeof path));
		ck_assert_msg(rc == 0, "%s --version: exit %d: %s", tools[i], rc,
		              out);
		snprintf(want, sizeof want, "%s %s", tools[i], PACKAGE_VERSION);
		ck_assert_msg(strncmp(out, want, strlen(want)) == 0,
		              "%s --version: %s", tools[i], out);
	}
}
END_TEST

START_TEST(load_without_a_supervisor_fails_within_seconds)
{
	char dir[] = "/tmp/corral-load-XXXXXX", out[2048], path[PATH_MAX];
	ck_assert_ptr_nonnull(mkdtemp(dir));
	uint64_t t0 = h_now_ms();
	int rc = h_sh(out, sizeof out, "'%s' --rundir '%s/run' --duration 60s "
	              "--json 2>&1", bin("corral-load", path, sizeof path), dir);
	uint64_t took = h_now_ms() - t0;
	ck_assert_msg(rc == 3, "exit %d: %s", rc, out);
	ck_assert_msg(took < 10000, "took %llu ms", (unsigned long long)took);
	ck_assert_msg(strstr(out, "no corral is listening at ipc://") != NULL,
	              "got: %s", out);
	ck_assert_ptr_null(strstr(out, "\"sent\""));
	/* a TCP port nobody listens on, and a URL nng does not know */
	rc = h_sh(out, sizeof out, "'%s' --url tcp://127.0.0.1:1 2>&1",
	          bin("corral-load", path, sizeof path));
	ck_assert_msg(rc == 3 && strstr(out, "no corral is listening"),
	              "exit %d: %s", rc, out);
	rc = h_sh(out, sizeof out, "'%s' --url nope://x 2>&1",
	          bin("corral-load", path, sizeof path));
	ck_assert_msg(rc == 3 && strstr(out, "nope://x"), "exit %d: %s", rc,
	              out);
	rmdir(dir);
}
END_TEST

START_TEST(load_report_keeps_its_keys_and_columns)
{
	char echo[PATH_MAX], path[PATH_MAX], out[8192];
	const char *args[] = {"-w", "2", h_path("examples/echo.so", echo,
	                                        sizeof echo), NULL};
	ck_assert_int_eq(h_start(&H, args), 0);
	for (int i = 0; i < 2; i++)
		ck_assert_ptr_nonnull(h_expect(&H, "-> running", 5000));
	const char *jq = getenv("JQ");
	int rc = h_sh(out, sizeof out,
	              "'%s' --rundir '%s' --rate 400 --duration 1s --csv "
	              "'%s/run.csv' --json --fail-on-loss | tee /dev/stderr | "
	              "'%s' -e '(.failed | keys_unsorted) == [\"busy\", "
	              "\"timeout\", \"poison\", \"shutting_down\", \"failed\", "
	              "\"bad_request\", \"no_reply\", \"other\"] and .ok == .sent "
	              "and .sent >= 380 and .lost == 0 and .latency_us.p50 > 0 "
	              "and .latency_us.p50 <= .latency_us.p99 and "
	              ".latency_us.p99 <= .latency_us.max and "
	              "(.latency_us | keys_unsorted) == [\"p50\", \"p90\", "
	              "\"p99\", \"p999\", \"max\"]'",
	              bin("corral-load", path, sizeof path), H.rundir, H.dir,
	              jq && *jq ? jq : "jq");
	ck_assert_msg(rc == 0, "report: %s", out);
	/* ten 100 ms rows with jobs, each with a p99 */
	rc = h_sh(out, sizeof out, "head -1 '%s/run.csv'; awk -F, 'NR > 1 && "
	          "$3 > 0 && $6 > 0 { n++ } END { print (n >= 9) }' "
	          "'%s/run.csv'", H.dir, H.dir);
	ck_assert_str_eq(out, "t_ms,sent,ok,failed,throughput,p99_us,kills\n1\n");
}
END_TEST

int main(void)
{
	Suite *s = suite_create("tools");
	TCase *tc = tcase_create("tools");
	tcase_set_timeout(tc, 30);
	tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_add_test(tc, every_tool_answers_version);
	tcase_add_test(tc, load_without_a_supervisor_fails_within_seconds);
	tcase_add_test(tc, load_report_keeps_its_keys_and_columns);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
