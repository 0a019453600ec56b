/* test_conf.c - configuration keys, durations, and errors with file:line. */
#include <check.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "corral.h"
#include "common/duration.h"
#include "master/cli.h"
#include "master/conf.h"
#include "tests/suites.h"

/* The long-value tests build their texts from repeat()'s buffer, which
 * is larger than each text on purpose. */
#pragma GCC diagnostic ignored "-Wformat-truncation"

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

/* A string of n copies of c (static; one at a time). */
static const char *repeat(char c, size_t n)
{
	static char buf[3 * PATH_MAX];
	ck_assert_uint_lt(n, sizeof buf);
	memset(buf, c, n);
	buf[n] = '\0';
	return buf;
}

START_TEST(every_key_has_a_working_default_and_help)
{
	config c;
	char err[256];
	config_defaults(&c);
	for (size_t i = 0; i < config_nkeys; i++) {
		const conf_key *k = &config_keys[i];
		ck_assert_ptr_eq(config_key_find(k->key), k);
		ck_assert_msg(k->help && k->arg, "%s: no help", k->key);
		if (k->def)
			ck_assert_msg(config_set(&c, k->key, k->def, err,
			                         sizeof err) == 0,
			              "%s: %s", k->key, err);
	}
	ck_assert_int_eq(c.log_level, CONF_LOG_INFO);
	ck_assert_uint_eq(c.threads, 2);
	ck_assert_uint_eq(c.max_lag_ms, 500);
	ck_assert_str_eq(c.jobs_url, "");
	/* --help names every key's option. */
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	cli_usage(f);
	fclose(f);
	for (size_t i = 0; i < config_nkeys; i++) {
		char opt[80];
		snprintf(opt, sizeof opt, "--%s ", config_keys[i].key);
		for (char *p = opt; *p; p++)
			if (*p == '_')
				*p = '-';
		ck_assert_msg(strstr(text, opt), "--help lacks %s", opt);
	}
	free(text);
	config_free(&c);
}
END_TEST

START_TEST(log_level_key)
{
	config c;
	char err[256];
	config_defaults(&c);
	static const char *names[] = {"debug", "info", "warn", "error"};
	for (int i = 0; i < 4; i++) {
		ck_assert_int_eq(config_set(&c, "log_level", names[i], err,
		                            sizeof err), 0);
		ck_assert_int_eq(c.log_level, i);
	}
	ck_assert_int_eq(config_set(&c, "log_level", "loud", err, sizeof err),
	                 CORRAL_ECONFIG);
	ck_assert_str_eq(err, "bad value 'loud' for log_level: expected "
	                      "debug, info, warn or error");
	ck_assert_int_eq(c.log_level, CONF_LOG_ERROR); /* unchanged */
	config_free(&c);
}
END_TEST

START_TEST(value_kinds_and_limits)
{
	config c;
	char err[256];
	config_defaults(&c);
	/* uint ranges, with and without auto */
	ck_assert_int_eq(config_set(&c, "standby", "0", err, sizeof err), 0);
	ck_assert_int_eq(config_set(&c, "standby", "65", err, sizeof err),
	                 CORRAL_ECONFIG);
	ck_assert_str_eq(err, "bad value '65' for standby: expected 0..64");
	ck_assert_int_eq(config_set(&c, "threads", "auto", err, sizeof err), 0);
	ck_assert_uint_eq(c.threads, 0);
	ck_assert_int_eq(config_set(&c, "max_queue", "auto", err, sizeof err),
	                 CORRAL_ECONFIG);
	ck_assert_int_eq(config_set(&c, "workers", "99999999999999999999",
	                            err, sizeof err), CORRAL_ECONFIG);
	ck_assert_int_eq(config_set(&c, "workers", " 2", err, sizeof err),
	                 CORRAL_ECONFIG);
	/* durations with a minimum */
	ck_assert_int_eq(config_set(&c, "restart_delay", "0", err, sizeof err),
	                 0);
	ck_assert_int_eq(config_set(&c, "job_timeout", "0", err, sizeof err),
	                 CORRAL_ECONFIG);
	ck_assert_str_eq(err, "bad value '0' for job_timeout: expected a "
	                      "duration above 0");
	/* URLs */
	ck_assert_int_eq(config_set(&c, "jobs", "tcp://127.0.0.1:1", err,
	                            sizeof err), 0);
	ck_assert_int_eq(config_set(&c, "jobs", "localhost", err, sizeof err),
	                 CORRAL_ECONFIG);
	ck_assert_str_eq(c.jobs_url, "tcp://127.0.0.1:1");
	/* repeatable */
	ck_assert_int_eq(config_set(&c, "set", "a=1", err, sizeof err), 0);
	ck_assert_int_eq(config_set(&c, "set", "a=2=3", err, sizeof err), 0);
	ck_assert_int_eq(config_set(&c, "set", "=x", err, sizeof err),
	                 CORRAL_ECONFIG);
	ck_assert_uint_eq(c.nsettings, 2);
	ck_assert_str_eq(c.settings[1].value, "2=3");
	/* a long bad value is echoed cut, with its length and the key */
	ck_assert_int_eq(config_set(&c, "restart", repeat('r', 5000), err,
	                            sizeof err), CORRAL_ECONFIG);
	ck_assert_msg(strstr(err, "(5000 bytes) for restart: expected always")
	              && strlen(err) < 200, "got: %s", err);
	config_free(&c);
}
END_TEST

START_TEST(paths_up_to_path_max_from_a_file)
{
	config c;
	char err[512], text[3 * PATH_MAX], want[256];
	config_defaults(&c);
	/* A plugin path of PATH_MAX - 1 bytes on line 3, after a long
	 * comment, with blanks and an inline comment around it. */
	char path_[PATH_MAX];
	snprintf(path_, sizeof path_, "/%s", repeat('p', PATH_MAX - 2));
	snprintf(text, sizeof text, "[corral]\n; %s\n  plugin =  %s  ; why\n"
	         "workers = 2\n", repeat('c', 600), path_);
	const char *p = write_ini(text);
	ck_assert_int_eq(config_load(&c, p, err, sizeof err), 0);
	ck_assert_str_eq(c.plugin, path_);
	ck_assert_uint_eq(c.workers, 2);
	unlink(p);
	/* One byte more: refused on its own line, with the key and limit. */
	snprintf(text, sizeof text, "[corral]\nworkers = 1\nplugin = /%s\n"
	         "bogus = 1\n", repeat('p', PATH_MAX - 1));
	p = write_ini(text);
	ck_assert_int_eq(config_load(&c, p, err, sizeof err), CORRAL_ECONFIG);
	snprintf(want, sizeof want, "%s:3: value for plugin too long: %d "
	         "bytes (at most %d)", p, PATH_MAX, PATH_MAX - 1);
	ck_assert_str_eq(err, want);
	unlink(p);
	/* Errors after a long line still name their own line. */
	snprintf(text, sizeof text, "rundir = /%s\n\nwrokers = 3\n",
	         repeat('d', 300));
	p = write_ini(text);
	ck_assert_int_eq(config_load(&c, p, err, sizeof err), CORRAL_ECONFIG);
	snprintf(want, sizeof want, "%s:3: unknown key 'wrokers'", p);
	ck_assert_str_eq(err, want);
	ck_assert_uint_eq(strlen(c.rundir), 301);
	unlink(p);
	config_free(&c);
}
END_TEST

START_TEST(long_lines_in_every_position)
{
	config c;
	char err[512], text[3 * PATH_MAX];
	const char *v = repeat('v', 1000);
	char val[1001];
	snprintf(val, sizeof val, "%s", v);
	config_defaults(&c);
	/* a long [plugin] value, its continuation, CRLF line ends */
	snprintf(text, sizeof text, "[plugin]\r\nbig = %s\r\n  %s\r\n"
	         "small : 1\r\n", val, val);
	ck_assert_int_eq(config_load_buffer(&c, "t.ini", text, strlen(text),
	                                    err, sizeof err), 0);
	ck_assert_uint_eq(c.nsettings, 3);
	ck_assert_str_eq(c.settings[0].key, "big");
	ck_assert_str_eq(c.settings[0].value, val);
	ck_assert_str_eq(c.settings[1].key, "big");
	ck_assert_str_eq(c.settings[1].value, val);
	ck_assert_str_eq(c.settings[2].value, "1");
	/* " ;" starts a comment after a key, not in a continuation line
	 * (as inih does it with short lines) */
	config_free(&c);
	snprintf(text, sizeof text, "[plugin]\nbig = %s ; c\n  %s ; c\n"
	         "small = 1 ; c\n  2 ; c\n", val, val);
	ck_assert_msg(config_load_buffer(&c, "t.ini", text, strlen(text), err,
	                                 sizeof err) == 0, "got: %s", err);
	ck_assert_uint_eq(c.nsettings, 4);
	ck_assert_str_eq(c.settings[0].value, val);
	ck_assert_uint_eq(strlen(c.settings[1].value), 1004);
	ck_assert_str_eq(c.settings[2].value, "1");
	ck_assert_str_eq(c.settings[3].value, "2 ; c");
	/* a long key: refused with its line and limit */
	snprintf(text, sizeof text, "[plugin]\n%s = 1\n", val);
	ck_assert_int_eq(config_load_buffer(&c, "t.ini", text, strlen(text),
	                                    err, sizeof err), CORRAL_ECONFIG);
	ck_assert_msg(strncmp(err, "t.ini:2: key 'vvv", 17) == 0 &&
	              strstr(err, "too long: 1000 bytes"), "got: %s", err);
	/* the longest key a short line holds is the same on a long line */
	char key[198];
	snprintf(key, sizeof key, "%s", repeat('k', 197));
	snprintf(text, sizeof text, "[plugin]\n%s=\n%s=%s\n", key, key,
	         repeat(' ', 300));
	ck_assert_int_eq(config_load_buffer(&c, "t.ini", text, strlen(text),
	                                    err, sizeof err), 0);
	ck_assert_str_eq(c.settings[c.nsettings - 1].key, key);
	ck_assert_str_eq(c.settings[c.nsettings - 1].value, "");
	/* a long line without '=': a syntax error on that line */
	snprintf(text, sizeof text, "workers = 1\n%s\n", val);
	ck_assert_int_eq(config_load_buffer(&c, "t.ini", text, strlen(text),
	                                    err, sizeof err), CORRAL_ECONFIG);
	ck_assert_msg(strncmp(err, "t.ini:2: syntax error", 21) == 0,
	              "got: %s", err);
	/* a long section name: unknown, on the right line */
	snprintf(text, sizeof text, "\n[%s]\nx = 1\n", val);
	ck_assert_int_eq(config_load_buffer(&c, "t.ini", text, strlen(text),
	                                    err, sizeof err), CORRAL_ECONFIG);
	ck_assert_msg(strncmp(err, "t.ini:3: unknown section [vvv", 29) == 0,
	              "got: %s", err);
	/* a long line of blanks is a blank line */
	snprintf(text, sizeof text, "workers = 1\n%s\nworkers = 2\n%s",
	         repeat(' ', 300), repeat('\t', 300));
	ck_assert_int_eq(config_load_buffer(&c, "t.ini", text, strlen(text),
	                                    err, sizeof err), 0);
	ck_assert_uint_eq(c.workers, 2);
	/* a NUL byte */
	ck_assert_int_eq(config_load_buffer(&c, "t.ini", "workers = 1\na\0b\n",
	                                    16, err, sizeof err),
	                 CORRAL_ECONFIG);
	ck_assert_str_eq(err, "t.ini:2: NUL byte in line");
	/* no final newline, empty text */
	ck_assert_int_eq(config_load_buffer(&c, "t.ini", "workers = 7", 11,
	                                    err, sizeof err), 0);
	ck_assert_uint_eq(c.workers, 7);
	ck_assert_int_eq(config_load_buffer(&c, "t.ini", "", 0, err,
	                                    sizeof err), 0);
	config_free(&c);
}
END_TEST

/* Runs cli_parse() on a NULL-terminated argv with stderr (and stdout)
 * captured into out. */
static int run_cli(config *c, char *out, size_t len, const char **args)
{
	char *argv[32];
	int argc = 0;
	argv[argc++] = "corral";
	while (*args)
		argv[argc++] = (char *)*args++;
	argv[argc] = NULL;
	char tmp[] = "/tmp/corral-cli-XXXXXX";
	int fd = mkstemp(tmp);
	ck_assert_int_ge(fd, 0);
	unlink(tmp);
	fflush(stdout);
	int save_err = dup(2), save_out = dup(1);
	dup2(fd, 2);
	dup2(fd, 1);
	int rc = cli_parse(c, argc, argv);
	fflush(stdout);
	dup2(save_err, 2);
	dup2(save_out, 1);
	close(save_err);
	close(save_out);
	ssize_t n = pread(fd, out, len - 1, 0);
	out[n > 0 ? n : 0] = '\0';
	close(fd);
	return rc;
}

START_TEST(command_line_options_come_from_the_table)
{
	config c;
	char out[8192];
	config_defaults(&c);
	const char *ok[] = {"-w", "3", "--log-level", "warn", "--max-lag",
	                    "1s", "-s", "a=b", "--pool-drain", "cancel",
	                    "x.so", NULL};
	ck_assert_int_eq(run_cli(&c, out, sizeof out, ok), CLI_RUN);
	ck_assert_uint_eq(c.workers, 3);
	ck_assert_int_eq(c.log_level, CONF_LOG_WARN);
	ck_assert_uint_eq(c.max_lag_ms, 1000);
	ck_assert_int_eq(c.pool_drain_cancel, 1);
	ck_assert_uint_eq(c.nsettings, 1);
	ck_assert_str_eq(c.plugin, "x.so");
	const char *bad[] = {"--shutdown-timeout", "10 sec", "x.so", NULL};
	ck_assert_int_eq(run_cli(&c, out, sizeof out, bad), CORRAL_EXIT_CONFIG);
	ck_assert_msg(strstr(out, "option --shutdown-timeout: bad value "
	                     "'10 sec' for shutdown_timeout"), "got: %s", out);
	config_free(&c);
	config_defaults(&c);
	const char *none[] = {"-w", "2", NULL};
	ck_assert_int_eq(run_cli(&c, out, sizeof out, none), CORRAL_EXIT_CONFIG);
	ck_assert_msg(strstr(out, "no plugin given"), "got: %s", out);
	const char *two[] = {"a.so", "b.so", NULL};
	ck_assert_int_eq(run_cli(&c, out, sizeof out, two), CORRAL_EXIT_CONFIG);
	const char *help[] = {"--help", NULL};
	ck_assert_int_eq(run_cli(&c, out, sizeof out, help), CORRAL_EXIT_OK);
	ck_assert_msg(strstr(out, "--log-level debug|info|warn|error"),
	              "got: %s", out);
	const char *ver[] = {"--version", NULL};
	ck_assert_int_eq(run_cli(&c, out, sizeof out, ver), CORRAL_EXIT_OK);
	ck_assert_msg(strncmp(out, "corral ", 7) == 0, "got: %s", out);
	const char *unknown[] = {"--wrokers", "2", "x.so", NULL};
	ck_assert_int_eq(run_cli(&c, out, sizeof out, unknown),
	                 CORRAL_EXIT_CONFIG);
	config_free(&c);
}
END_TEST

/* Sizes: bytes, K/M/G/T as powers of 1024 (with or without "iB" or "B",
 * as max_memory reads them), within 1MiB..1TiB. */
START_TEST(queue_limit_bytes_key)
{
	config c;
	char err[256], out[8192];
	config_defaults(&c);
	ck_assert_uint_eq(c.queue_limit_bytes, 64u << 20);
	static const struct { const char *v; uint64_t want; } good[] = {
		{"1048576", 1u << 20}, {"1MiB", 1u << 20}, {"2M", 2u << 20},
		{"1536k", 1536u << 10}, {"1536KiB", 1536u << 10},
		{"3g", 3ull << 30}, {"1TiB", 1ull << 40}, {"64MB", 64u << 20},
		{"2097152B", 2u << 20},
	};
	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
		ck_assert_msg(config_set(&c, "queue_limit_bytes", good[i].v, err,
		                         sizeof err) == 0, "%s: %s", good[i].v,
		              err);
		ck_assert_uint_eq(c.queue_limit_bytes, good[i].want);
	}
	static const char *bad[] = {"", "64 MiB", "-1", "1.5M",
	                            "1048575", "1023K", "1025G", "2T", "64Mib",
	                            "64MiBs", "M", "99999999999999999999",
	                            "18014398509481984K"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		ck_assert_msg(config_set(&c, "queue_limit_bytes", bad[i], err,
		                         sizeof err) == CORRAL_ECONFIG,
		              "'%s' taken", bad[i]);
		ck_assert_uint_eq(c.queue_limit_bytes, 2u << 20); /* unchanged */
	}
	ck_assert_int_eq(config_set(&c, "queue_limit_bytes", "2T", err,
	                            sizeof err), CORRAL_ECONFIG);
	ck_assert_str_eq(err, "bad value '2T' for queue_limit_bytes: "
	                      "expected a size of 1MiB..1TiB");
	config_free(&c);
	/* From the command line and in --help, like every key. */
	config_defaults(&c);
	const char *args[] = {"--queue-limit-bytes", "8M", "x.so", NULL};
	ck_assert_int_eq(run_cli(&c, out, sizeof out, args), CLI_RUN);
	ck_assert_uint_eq(c.queue_limit_bytes, 8u << 20);
	const char *help[] = {"--help", NULL};
	ck_assert_int_eq(run_cli(&c, out, sizeof out, help), CORRAL_EXIT_OK);
	ck_assert_msg(strstr(out, "--queue-limit-bytes SIZE") &&
	              strstr(out, "(default 64MiB)"), "got: %s", out);
	config_free(&c);
}
END_TEST

START_TEST(command_line_wins_over_the_file_and_takes_long_paths)
{
	config c;
	char out[8192], arg[PATH_MAX + 16], want[PATH_MAX + 64];
	config_defaults(&c);
	const char *p = write_ini("workers = 2\nrestart = never\n");
	const char *args[] = {"--workers", "5", "-c", p, "x.so", NULL};
	ck_assert_int_eq(run_cli(&c, out, sizeof out, args), CLI_RUN);
	ck_assert_uint_eq(c.workers, 5);
	ck_assert_int_eq(c.restart, RESTART_NEVER);
	unlink(p);
	const char *missing[] = {"-c", "/nonexistent/c.ini", "x.so", NULL};
	ck_assert_int_eq(run_cli(&c, out, sizeof out, missing),
	                 CORRAL_EXIT_CONFIG);
	ck_assert_msg(strstr(out, "/nonexistent/c.ini: cannot open"),
	              "got: %s", out);
	/* PATH_MAX - 1 bytes, as an option and as the positional path */
	snprintf(arg, sizeof arg, "/%s", repeat('q', PATH_MAX - 2));
	const char *longp[] = {"--rundir", arg, arg, NULL};
	ck_assert_int_eq(run_cli(&c, out, sizeof out, longp), CLI_RUN);
	ck_assert_str_eq(c.rundir, arg);
	ck_assert_str_eq(c.plugin, arg);
	/* PATH_MAX bytes: refused with the option, the length and the
	 * limit, in one short line */
	snprintf(arg, sizeof arg, "/%s", repeat('q', PATH_MAX - 1));
	const char *toolong[] = {"--jobs", arg, "x.so", NULL};
	ck_assert_int_eq(run_cli(&c, out, sizeof out, toolong),
	                 CORRAL_EXIT_CONFIG);
	snprintf(want, sizeof want, "option --jobs: value for jobs too long: "
	         "%d bytes (at most %d)", PATH_MAX, PATH_MAX - 1);
	ck_assert_msg(strstr(out, want) && strlen(out) < 200, "got: %s", out);
	const char *toolong2[] = {arg, NULL};
	ck_assert_int_eq(run_cli(&c, out, sizeof out, toolong2),
	                 CORRAL_EXIT_CONFIG);
	ck_assert_msg(strstr(out, "value for plugin too long"), "got: %s", out);
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
	tcase_add_test(tc, every_key_has_a_working_default_and_help);
	tcase_add_test(tc, log_level_key);
	tcase_add_test(tc, value_kinds_and_limits);
	tcase_add_test(tc, paths_up_to_path_max_from_a_file);
	tcase_add_test(tc, long_lines_in_every_position);
	tcase_add_test(tc, command_line_options_come_from_the_table);
	tcase_add_test(tc, command_line_wins_over_the_file_and_takes_long_paths);
	tcase_add_test(tc, queue_limit_bytes_key);
	suite_add_tcase(s, tc);
	return s;
}
