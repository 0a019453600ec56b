/*
 * test_reload.c - rolling reload, restart, scale and stop on a running
 * supervisor, under real load (corral-load's jobs, wrk's HTTP), and the
 * rollback when the new code fails at each step.  Waits for events and
 * for the commands' own answers (corralctl answers when a command has
 * finished); every pid is cleaned up.
 */
#include <check.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/harness.h"

#define WAIT_MS 20000

static harness H;

static void teardown(void)
{
	h_cleanup(&H);
}

#define START(...) H_START(&H, __VA_ARGS__)
#define EVENT(filter, ms) H_EVENT(&H, filter, ms)

/* An INI file in the test's directory: plugin = so, then extra lines. */
static const char *ini(const char *name, const char *so, const char *extra)
{
	static char paths[4][256];
	static int k;
	k = (k + 1) % 4;
	if (!H.dir[0])
		ck_assert_int_eq(h_prepare(&H), 0);
	snprintf(paths[k], sizeof paths[k], "%s/%s.ini", H.dir, name);
	FILE *f = fopen(paths[k], "w");
	ck_assert_ptr_nonnull(f);
	fprintf(f, "[corral]\nplugin = %s\n%s", h_bin(so), extra ? extra : "");
	fclose(f);
	return paths[k];
}

static void expect_running(int n)
{
	for (int i = 0; i < n; i++)
		EVENT("kind=slot to=running", WAIT_MS);
}

/* Runs corralctl with args; its exit code, its output in out. */
static int ctl_run(char *out, size_t len, const char *args)
{
	return h_sh(out, len, "'%s' --rundir '%s' %s 2>&1", h_ctl(), H.rundir,
	            args);
}

/* The worker pids of slots 0..n-1, from status. */
static void pids_now(pid_t *p, int n)
{
	char out[256];
	for (int i = 0; i < n; i++) {
		char f[64];
		snprintf(f, sizeof f, ".workers[%d].pid", i);
		ck_assert_int_eq(h_sh(out, sizeof out, "'%s' --rundir '%s' status "
		                      "--json | jq -r '%s'", h_ctl(), H.rundir, f),
		                 0);
		p[i] = (pid_t)atol(out);
	}
}

/* ---- reload under load ---- */

START_TEST(reload_under_job_load_loses_nothing)
{
	const char *a = ini("a", "examples/echo.so", NULL);
	START("-w", "2", "--reload-gate", "300ms", "-c", a);
	expect_running(2);
	const char *b = ini("b", "tests/reloady.so", NULL);
	char out[16384];
	/* Jobs all along; two reloads while they flow. */
	(void)h_sh(out, sizeof out,
	              "'%s' --rundir '%s' --rate 300 --duration 6s --json "
	              "--fail-on-loss > %s/load.json & L=$!; "
	              "until '%s' --rundir '%s' status --json | jq -e "
	              "'.jobs.ok > 100' >/dev/null; do sleep 0.05; done; "
	              "'%s' --rundir '%s' reload --config %s && "
	              "'%s' --rundir '%s' reload --config %s; R=$?; wait $L; "
	              "echo load=$? reload=$R",
	              h_bin("corral-load"), H.rundir, H.dir, h_ctl(), H.rundir, h_ctl(),
	              H.rundir, b, h_ctl(), H.rundir, a);
	ck_assert_msg(strstr(out, "load=0 reload=0"), "%s", out);
	ck_assert_int_eq(h_sh(out, sizeof out, "jq -e '.lost == 0 and "
	                      ".duplicates == 0 and .ok == .sent and "
	                      ".sent > 1000' %s/load.json", H.dir), 0);
	ck_assert_int_eq(h_status_is(&H, ".gen == 3 and (.workers | all(.gen == 3 "
	                           "and .state == \"running\"))"), 0);
	/* Each slot went through the gate and was swapped, twice. */
	ck_assert_int_eq(h_event_count(&H, "kind=reload to=swapped"), 4);
	ck_assert_int_eq(h_event_count(&H, "kind=reload to=done"), 2);
}
END_TEST

START_TEST(reload_under_http_load_has_no_errors)
{
	const char *a = ini("a", "examples/http.so", NULL);
	START("-w", "2", "--reload-gate", "300ms", "--listen",
	      "http=tcp://127.0.0.1:0", "-c", a);
	expect_running(2);
	int port = h_listen_port(H.sup);
	ck_assert_int_gt(port, 0);
	char out[16384];
	(void)h_sh(out, sizeof out,
	              "wrk -t1 -c16 -d5s http://127.0.0.1:%d/ > %s/wrk.out 2>&1 "
	              "& W=$!; sleep 1; "
	              "'%s' --rundir '%s' reload && '%s' --rundir '%s' reload; "
	              "R=$?; wait $W; echo wrk=$? reload=$R; cat %s/wrk.out",
	              port, H.dir, h_ctl(), H.rundir, h_ctl(), H.rundir, H.dir);
	ck_assert_msg(strstr(out, "wrk=0 reload=0"), "%s", out);
	ck_assert_msg(strstr(out, "requests in"), "%s", out);
	ck_assert_msg(!strstr(out, "Socket errors") &&
	              !strstr(out, "Non-2xx"), "errors during reload: %s", out);
	ck_assert_int_eq(h_event_count(&H, "kind=reload to=swapped"), 4);
}
END_TEST

/* ---- rollback ---- */

/* A reload that must fail: corralctl exits 4 saying why, nothing of the
 * old generation was stopped, and jobs still work. */
static void expect_rollback(const char *b, const char *why)
{
	pid_t before[2], after[2];
	pids_now(before, 2);
	char out[8192], args[512];
	snprintf(args, sizeof args, "reload --config %s", b);
	int rc = ctl_run(out, sizeof out, args);
	ck_assert_msg(rc == 4, "reload should fail (exit 4), got %d: %s", rc,
	              out);
	ck_assert_msg(strstr(out, "rolled back") && strstr(out, why),
	              "reload said: %s", out);
	EVENT("kind=reload to=failed", WAIT_MS);
	pids_now(after, 2);
	ck_assert_int_eq(before[0], after[0]);
	ck_assert_int_eq(before[1], after[1]);
	ck_assert_int_eq(h_status_is(&H, ".gen == 1 and (.workers | all(.gen == 1 "
	                           "and .state == \"running\")) and "
	                           "(.last_op | contains(\"rolled back\"))"), 0);
	ck_assert_int_eq(ctl_run(out, sizeof out, "call still-here"), 0);
	ck_assert_str_eq(out, "still-here");
}

START_TEST(reload_to_a_plugin_whose_init_fails_rolls_back)
{
	START("-w", "2", "-c", ini("a", "examples/echo.so", NULL));
	expect_running(2);
	expect_rollback(ini("b", "tests/initfail.so", NULL),
	                "exited with code 78 before it was READY");
}
END_TEST

START_TEST(reload_to_a_plugin_of_another_abi_rolls_back)
{
	START("-w", "2", "-c", ini("a", "examples/echo.so", NULL));
	expect_running(2);
	expect_rollback(ini("b", "examples/badabi.so", NULL),
	                "fatal plugin error");
}
END_TEST

START_TEST(reload_to_a_plugin_never_ready_rolls_back)
{
	START("-w", "2", "--start-timeout", "1s", "-c",
	      ini("a", "examples/echo.so", NULL));
	expect_running(2);
	expect_rollback(ini("b", "tests/reloady.so", "[plugin]\ninit_ms = "
	                    "30000\n"), "not READY within 1000 ms");
}
END_TEST

START_TEST(reload_to_a_plugin_crashing_in_the_gate_rolls_back)
{
	START("-w", "2", "--reload-gate", "3s", "-c",
	      ini("a", "examples/echo.so", NULL));
	expect_running(2);
	expect_rollback(ini("b", "tests/reloady.so", "[plugin]\ncrash_after = "
	                    "500\n"), "during the gate");
}
END_TEST

/* Slot 0 moves to the new code, slot 1's new worker crashes: slot 0 is
 * moved back, and every slot ends on the old generation. */
START_TEST(rollback_moves_replaced_slots_back)
{
	/* A gate 10 times the crash's delay: a loaded machine may run the
	 * new worker's timer late, never that late. */
	START("-w", "2", "--reload-gate", "3s", "-c",
	      ini("a", "examples/echo.so", NULL));
	expect_running(2);
	char out[8192], args[512];
	snprintf(args, sizeof args, "reload --config %s",
	         ini("b", "tests/reloady.so", "[plugin]\ncrash_after = 300\n"
	             "crash_slot = 1\n"));
	ck_assert_int_eq(ctl_run(out, sizeof out, args), 4);
	if (!strstr(out, "slot 1") || !strstr(out, "rolled back"))
		fprintf(stderr, "reload said:\n%s\n", out);
	ck_assert(strstr(out, "slot 1") && strstr(out, "rolled back"));
	EVENT("kind=reload slot=0 to=swapped why~(generation 2)", WAIT_MS);
	EVENT("kind=reload to=rollback", WAIT_MS);
	EVENT("kind=reload slot=0 to=swapped why~(generation 1)", WAIT_MS);
	ck_assert_int_eq(h_status_is(&H, ".gen == 1 and (.workers | all(.gen == 1 "
	                           "and .state == \"running\"))"), 0);
}
END_TEST

/* The old code fails to come back too (here: its init now fails): the
 * rollback stops there and the answer names the slots left on the new
 * code; nothing hangs, and the slot still runs. */
START_TEST(a_failed_rollback_is_reported_not_retried)
{
	char flag[300], extra[400], bextra[700], out[8192], args[512];
	ck_assert_int_eq(h_prepare(&H), 0);
	snprintf(flag, sizeof flag, "%s/broken", H.dir);
	snprintf(extra, sizeof extra, "[plugin]\nfail_if = %s\n", flag);
	START("-w", "2", "--reload-gate", "500ms", "--standby", "0", "-c",
	      ini("a", "tests/reloady.so", extra));
	expect_running(2);
	/* The new code breaks the old (its init creates the file the old
	 * init refuses to start with), and crashes in slot 1's gate. */
	snprintf(bextra, sizeof bextra, "[plugin]\ncrash_after = 200\n"
	         "crash_slot = 1\ntouch = %s\n", flag);
	snprintf(args, sizeof args, "reload --config %s",
	         ini("b", "tests/reloady.so", bextra));
	int rc = ctl_run(out, sizeof out, args);
	if (rc != 4 || !strstr(out, "failed too") || !strstr(out, "new code: 0"))
		fprintf(stderr, "reload said (%d):\n%s\n", rc, out);
	ck_assert(rc == 4 && strstr(out, "failed too") &&
	          strstr(out, "new code: 0"));
	ck_assert_int_eq(h_status_is(&H, ".op == \"\" and .workers[0].gen == 2 and "
	                           ".workers[0].state == \"running\""), 0);
}
END_TEST

/* ---- restart, scale, stop ---- */

START_TEST(restart_replaces_every_worker_and_revives_failed_slots)
{
	START("-w", "2", "--restart", "never", "--reload-gate", "200ms",
	      "--standby", "0", h_bin("examples/hello.so"));
	expect_running(2);
	pid_t p[2], q[2];
	pids_now(p, 2);
	ck_assert_int_eq(kill(p[1], SIGKILL), 0);
	EVENT("kind=slot slot=1 to=failed", WAIT_MS);
	char out[8192];
	int rc = ctl_run(out, sizeof out, "restart all");
	ck_assert_msg(rc == 0 && strstr(out, "done"), "%s", out);
	EVENT("kind=restart slot=0 to=swapped", WAIT_MS);
	ck_assert_int_eq(h_status_is(&H, ".workers | all(.state == \"running\")"),
	                 0);
	pids_now(q, 2);
	ck_assert_int_ne(q[0], p[0]);
	ck_assert_int_gt(q[1], 0);
	/* A slot that does not exist is refused, with the reason. */
	ck_assert_int_eq(ctl_run(out, sizeof out, "restart 7"), 4);
	ck_assert_ptr_nonnull(strstr(out, "no slot '7'"));
}
END_TEST

START_TEST(scale_up_and_down_under_load_loses_nothing)
{
	START("-w", "2", h_bin("examples/echo.so"));
	expect_running(2);
	char out[16384];
	(void)h_sh(out, sizeof out,
	              "'%s' --rundir '%s' --rate 300 --duration 5s --json "
	              "--fail-on-loss > %s/load.json & L=$!; "
	              "until '%s' --rundir '%s' status --json | jq -e "
	              "'.jobs.ok > 100' >/dev/null; do sleep 0.05; done; "
	              "'%s' --rundir '%s' scale +2 && "
	              "'%s' --rundir '%s' scale -3; R=$?; wait $L; "
	              "echo load=$? scale=$R",
	              h_bin("corral-load"), H.rundir, H.dir, h_ctl(), H.rundir, h_ctl(),
	              H.rundir, h_ctl(), H.rundir);
	ck_assert_msg(strstr(out, "load=0 scale=0"), "%s", out);
	ck_assert_int_eq(h_sh(out, sizeof out, "jq -e '.lost == 0 and "
	                      ".ok == .sent' %s/load.json", H.dir), 0);
	ck_assert_int_eq(h_status_is(&H, "(.workers | length) == 1"), 0);
	/* gunicorn's signals: TTIN one more. */
	ck_assert_int_eq(kill(H.sup, SIGTTIN), 0);
	EVENT("kind=scale to=done", WAIT_MS);
	EVENT("kind=scale to=done", WAIT_MS);
	EVENT("kind=scale to=done", WAIT_MS);
	ck_assert_int_eq(h_status_is(&H, "(.workers | length) == 2"), 0);
}
END_TEST

START_TEST(stop_command_stops_and_answers)
{
	START("-w", "2", h_bin("examples/echo.so"));
	expect_running(2);
	char out[1024];
	int rc = ctl_run(out, sizeof out, "stop");
	ck_assert_msg(rc == 0 && strstr(out, "stopped"), "rc %d: %s", rc, out);
	ck_assert_int_eq(h_wait_exit(&H, WAIT_MS), 0);
}
END_TEST

START_TEST(sighup_reloads_the_changed_config_file)
{
	const char *a = ini("a", "examples/echo.so", NULL);
	START("-w", "1", "--reload-gate", "200ms", "-c", a);
	expect_running(1);
	ini("a", "tests/reloady.so", NULL); /* the same file, new content */
	ck_assert_int_eq(kill(H.sup, SIGHUP), 0);
	EVENT("kind=reload to=done", WAIT_MS);
	ck_assert_int_eq(h_status_is(&H, ".gen == 2 and (.plugin | endswith("
	                           "\"reloady.so\"))"), 0);
	/* A bad file changes nothing and says where. */
	FILE *f = fopen(a, "w");
	fprintf(f, "[corral]\nplugin = %s\nworkerz = 3\n",
	        h_bin("examples/echo.so"));
	fclose(f);
	char out[2048];
	ck_assert_int_eq(ctl_run(out, sizeof out, "reload"), 4);
	ck_assert_msg(strstr(out, "a.ini:3") && strstr(out, "workerz"), "%s",
	              out);
	ck_assert_int_eq(h_status_is(&H, ".gen == 2"), 0);
}
END_TEST

START_TEST(a_command_is_refused_while_a_reload_runs)
{
	START("-w", "1", "--reload-gate", "3s", h_bin("examples/echo.so"));
	expect_running(1);
	char out[4096];
	(void)h_sh(out, sizeof out,
	              "'%s' --rundir '%s' reload > %s/r.out 2>&1 & R=$!; "
	              "until '%s' --rundir '%s' status --json | jq -e "
	              "'.op != \"\"' >/dev/null; do sleep 0.05; done; "
	              "'%s' --rundir '%s' scale +1 2>&1; echo scale=$?; wait $R; "
	              "echo reload=$?",
	              h_ctl(), H.rundir, H.dir, h_ctl(), H.rundir, h_ctl(), H.rundir);
	ck_assert_msg(strstr(out, "scale=4") &&
	              strstr(out, "in progress") && strstr(out, "reload=0"),
	              "%s", out);
}
END_TEST

START_TEST(standby_is_retired_when_the_plugin_file_changes)
{
	char so[256], out[1024];
	ck_assert_int_eq(h_prepare(&H), 0);
	snprintf(so, sizeof so, "%s/e.so", H.dir);
	ck_assert_int_eq(h_sh(NULL, 0, "cp '%s' '%s'", h_bin("examples/echo.so"),
	                      so), 0);
	START("-w", "1", so);
	pid_t w = (pid_t)EVENT("kind=slot slot=0 to=running", WAIT_MS)->pid;
	pid_t sb = (pid_t)EVENT("kind=standby to=ready", WAIT_MS)->pid;
	/* A deploy: a new build (longer, so its id differs even within
	 * one mtime tick) renamed over the file. */
	ck_assert_int_eq(h_sh(NULL, 0, "cp '%s' '%s.new' && cat '%s' >> "
	                      "'%s.new' && mv '%s.new' '%s'",
	                      h_bin("examples/echo.so"), so, h_bin("tests/nosym.so"),
	                      so, so, so), 0);
	ck_assert_int_eq(kill(w, SIGKILL), 0);
	const ipc_event *e = EVENT("kind=slot slot=0 to=starting", WAIT_MS);
	ck_assert_msg(e->pid != sb && !strstr(e->why, "adopted"),
	              "the old standby was used: %s", e->why);
	ck_assert_int_eq(h_wait_pid_gone(sb, WAIT_MS), 0);
	EVENT("kind=slot slot=0 to=running", WAIT_MS);
	ck_assert_int_eq(ctl_run(out, sizeof out, "call fresh"), 0);
	ck_assert_str_eq(out, "fresh");
}
END_TEST

Suite *reload_suite(void);
Suite *reload_suite(void)
{
	Suite *s = suite_create("reload");
	/* One case per test: CK_RUN_CASE=name runs one alone. */
#define CASE(t) H_CASE(s, t, teardown, 90)
	CASE(reload_under_job_load_loses_nothing);
	CASE(reload_under_http_load_has_no_errors);
	CASE(reload_to_a_plugin_whose_init_fails_rolls_back);
	CASE(reload_to_a_plugin_of_another_abi_rolls_back);
	CASE(reload_to_a_plugin_never_ready_rolls_back);
	CASE(reload_to_a_plugin_crashing_in_the_gate_rolls_back);
	CASE(rollback_moves_replaced_slots_back);
	CASE(a_failed_rollback_is_reported_not_retried);
	CASE(restart_replaces_every_worker_and_revives_failed_slots);
	CASE(scale_up_and_down_under_load_loses_nothing);
	CASE(stop_command_stops_and_answers);
	CASE(sighup_reloads_the_changed_config_file);
	CASE(a_command_is_refused_while_a_reload_runs);
	CASE(standby_is_retired_when_the_plugin_file_changes);
#undef CASE
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(reload_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
