/* test_conf.c - configuration keys, durations, and errors with file:line. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "corral.h"
#include "common/duration.h"
#include "master/conf.h"
#include "tests/suites.h"

static char path[64];

static const char *write_ini(const char *text)
{
	snprintf(path, sizeof path, "/tmp/corral-conf-XXXXXX");
	int fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	return path;
}

START_TEST(defaults_match_the_readme)
{
	config c;
	config_defaults(&c);
	ck_assert_str_eq(c.name, "corral");
	ck_assert_uint_eq(c.workers, 0);
	ck_assert_int_eq(c.restart, RESTART_ALWAYS);
	ck_assert_uint_eq(c.shutdown_timeout_ms, 10000);
	ck_assert_uint_eq(c.restart_delay_ms, 0);
	ck_assert_uint_eq(c.restart_delay_max_ms, 10000);
	ck_assert_uint_eq(c.min_uptime_ms, 1000);
	ck_assert_uint_eq(c.max_restarts, 10);
	ck_assert_uint_eq(c.restart_window_ms, 60000);
	ck_assert_uint_eq(c.heartbeat_timeout_ms, 5000);
	ck_assert_uint_eq(c.health_interval_ms, 1000);
	config_free(&c);
}
END_TEST

START_TEST(durations)
{
	uint64_t ms;
	ck_assert_int_eq(parse_duration_ms("250ms", &ms), 0);
	ck_assert_uint_eq(ms, 250);
	ck_assert_int_eq(parse_duration_ms("1.5s", &ms), 0);
	ck_assert_uint_eq(ms, 1500);
	ck_assert_int_eq(parse_duration_ms("2m", &ms), 0);
	ck_assert_uint_eq(ms, 120000);
	ck_assert_int_eq(parse_duration_ms("3", &ms), 0);
	ck_assert_uint_eq(ms, 3000);
	ck_assert_int_eq(parse_duration_ms("1h", &ms), 0);
	ck_assert_uint_eq(ms, 3600000);
	ck_assert_int_eq(parse_duration_ms("", &ms), -1);
	ck_assert_int_eq(parse_duration_ms("-1s", &ms), -1);
	ck_assert_int_eq(parse_duration_ms("10 s", &ms), -1);
	ck_assert_int_eq(parse_duration_ms("5sec", &ms), -1);
	ck_assert_int_eq(parse_duration_ms("abc", &ms), -1);
}
END_TEST

START_TEST(file_sets_keys_and_plugin_settings)
{
	config c;
	char err[256];
	config_defaults(&c);
	const char *p = write_ini("; comment\n"
	                          "workers = 3\n"
	                          "[corral]\n"
	                          "restart = on-failure\n"
	                          "shutdown_timeout = 500ms\n"
	                          "[plugin]\n"
	                          "greeting = hi there\n");
	ck_assert_int_eq(config_load(&c, p, err, sizeof err), 0);
	ck_assert_uint_eq(c.workers, 3);
	ck_assert_int_eq(c.restart, RESTART_ON_FAILURE);
	ck_assert_uint_eq(c.shutdown_timeout_ms, 500);
	ck_assert_uint_eq(c.nsettings, 1);
	ck_assert_str_eq(c.settings[0].key, "greeting");
	ck_assert_str_eq(c.settings[0].value, "hi there");
	unlink(p);
	config_free(&c);
}
END_TEST

START_TEST(unknown_key_names_file_and_line)
{
	config c;
	char err[512], want[128];
	config_defaults(&c);
	const char *p = write_ini("[corral]\nworkers = 2\n\nwrokers = 3\n");
	ck_assert_int_eq(config_load(&c, p, err, sizeof err), CORRAL_ECONFIG);
	snprintf(want, sizeof want, "%s:4: unknown key 'wrokers'", p);
	ck_assert_str_eq(err, want);
	unlink(p);
	config_free(&c);
}
END_TEST

START_TEST(bad_value_names_file_and_line)
{
	config c;
	char err[512], want[256];
	config_defaults(&c);
	const char *p = write_ini("restart_delay = 1s\nrestart = sometimes\n");
	ck_assert_int_eq(config_load(&c, p, err, sizeof err), CORRAL_ECONFIG);
	snprintf(want, sizeof want, "%s:2: bad value 'sometimes' for restart",
	         p);
	ck_assert_msg(strncmp(err, want, strlen(want)) == 0, "got: %s", err);
	unlink(p);
	p = write_ini("\n\nshutdown_timeout = 10 sec\n");
	ck_assert_int_eq(config_load(&c, p, err, sizeof err), CORRAL_ECONFIG);
	snprintf(want, sizeof want, "%s:3: bad value '10 sec'", p);
	ck_assert_msg(strncmp(err, want, strlen(want)) == 0, "got: %s", err);
	unlink(p);
	p = write_ini("workers = 0\n");
	ck_assert_int_eq(config_load(&c, p, err, sizeof err), CORRAL_ECONFIG);
	unlink(p);
	config_free(&c);
}
END_TEST

START_TEST(syntax_and_section_errors)
{
	config c;
	char err[512], want[256];
	config_defaults(&c);
	const char *p = write_ini("workers = 1\nthis line is wrong\n");
	ck_assert_int_eq(config_load(&c, p, err, sizeof err), CORRAL_ECONFIG);
	snprintf(want, sizeof want, "%s:2: syntax error", p);
	ck_assert_msg(strncmp(err, want, strlen(want)) == 0, "got: %s", err);
	unlink(p);
	p = write_ini("[corral]\n[plguin]\nx = 1\n");
	ck_assert_int_eq(config_load(&c, p, err, sizeof err), CORRAL_ECONFIG);
	snprintf(want, sizeof want, "%s:3: unknown section [plguin]", p);
	ck_assert_msg(strncmp(err, want, strlen(want)) == 0, "got: %s", err);
	unlink(p);
	ck_assert_int_eq(config_load(&c, "/nonexistent/x.ini", err, sizeof err),
	                 CORRAL_ECONFIG);
	ck_assert_msg(strstr(err, "/nonexistent/x.ini: cannot open") != NULL,
	              "got: %s", err);
	config_free(&c);
}
END_TEST

START_TEST(set_rejects_each_bad_value)
{
	config c;
	char err[256];
	config_defaults(&c);
	ck_assert_int_eq(config_set(&c, "workers", "auto", err, sizeof err), 0);
	ck_assert_int_eq(config_set(&c, "workers", "-1", err, sizeof err),
	                 CORRAL_ECONFIG);
	ck_assert_int_eq(config_set(&c, "name", "../x", err, sizeof err),
	                 CORRAL_ECONFIG);
	ck_assert_int_eq(config_set(&c, "max_restarts", "x", err, sizeof err),
	                 CORRAL_ECONFIG);
	ck_assert_int_eq(config_set(&c, "heartbeat_timeout", "0", err,
	                            sizeof err), CORRAL_ECONFIG);
	ck_assert_int_eq(config_set(&c, "nope", "1", err, sizeof err),
	                 CORRAL_ECONFIG);
	ck_assert_str_eq(err, "unknown key 'nope'");
	config_free(&c);
}
END_TEST

Suite *conf_suite(void)
{
	Suite *s = suite_create("conf");
	TCase *tc = tcase_create("conf");
	tcase_add_test(tc, defaults_match_the_readme);
	tcase_add_test(tc, durations);
	tcase_add_test(tc, file_sets_keys_and_plugin_settings);
	tcase_add_test(tc, unknown_key_names_file_and_line);
	tcase_add_test(tc, bad_value_names_file_and_line);
	tcase_add_test(tc, syntax_and_section_errors);
	tcase_add_test(tc, set_rejects_each_bad_value);
	suite_add_tcase(s, tc);
	return s;
}
