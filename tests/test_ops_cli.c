/*
 * test_ops_cli.c - what a person at a terminal (and a script) uses to see
 * into a running supervisor: the log ring and `corralctl logs`, log_file
 * with its reopen and JSON format, the decision records and `corralctl
 * explain`, and `corralctl top` (one frame with --once; the live view
 * driven through tmux when tmux is installed).
 *
 * The first test case runs the pieces in-process (the ring, the sink, the
 * decision read off a slot); the second drives real supervisors with the
 * harness, waiting on events, and on files or command output only for the
 * output under test, each wait bounded.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/log.h"
#include "common/utf8.h"
#include "corral_base.h"
#include "master/conf.h"
#include "master/decision.h"
#include "master/logring.h"
#include "master/logsink.h"
#include "tests/harness.h"

/* What must happen gets this long; only a failure waits it out. */
#define WAIT_MS 15000

static harness H;

static const char *jq(void)
{
	const char *e = getenv("JQ");
	return e && *e ? e : "jq";
}

static const char *so(const char *rel)
{
	static char b[4][PATH_MAX];
	static int k;
	k = (k + 1) % 4;
	return h_path(rel, b[k], sizeof b[k]);
}

static char tmux_sock[128];

static void teardown(void)
{
	char cmd[256];
	if (tmux_sock[0]) {
		snprintf(cmd, sizeof cmd, "tmux -S '%s' kill-server "
		         ">/dev/null 2>&1", tmux_sock);
		(void)system(cmd);
		tmux_sock[0] = '\0';
	}
	h_cleanup(&H);
}

#define START(...) H_START(&H, __VA_ARGS__)

#define EVENT(filter)                                                         \
	({                                                                    \
		const ipc_event *e_ = h_event(&H, filter, WAIT_MS);           \
		ck_assert_msg(e_ != NULL, "no event '%s'", filter);           \
		e_;                                                           \
	})

/* Every slot 0..n-1 running (in whatever order they got there). */
static void all_running(int n)
{
	char f[64];
	for (int i = 0; i < n; i++) {
		snprintf(f, sizeof f, "kind=slot slot=%d to=running", i);
		if (h_event_count(&H, f) == 0)
			EVENT(f);
	}
}

/* Occurrences of needle in the file (-1: cannot read it). */
static int file_count(const char *path, const char *needle)
{
	FILE *f = fopen(path, "re");
	if (!f)
		return -1;
	static char buf[1 << 20];
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';
	int c = 0;
	for (const char *p = buf; (p = strstr(p, needle)); p++)
		c++;
	return c;
}

/* Until the file is there. */
static int wait_exists(const char *path)
{
	uint64_t deadline = h_now_ms() + WAIT_MS;
	do {
		if (access(path, F_OK) == 0)
			return 0;
		usleep(20 * 1000);
	} while (h_now_ms() < deadline);
	fprintf(stderr, "%s never appeared\n", path);
	return -1;
}

/* Until the file holds needle at least count times. */
static int wait_file(const char *path, const char *needle, int count)
{
	uint64_t deadline = h_now_ms() + WAIT_MS;
	do {
		if (file_count(path, needle) >= count)
			return 0;
		usleep(20 * 1000);
	} while (h_now_ms() < deadline);
	fprintf(stderr, "%s never held '%s' %d time(s)\n", path, needle,
	        count);
	return -1;
}

/* Until a shell command succeeds (output that arrives on the workers'
 * schedule); each try a real round trip. */
static int sh_until(const char *cmd)
{
	uint64_t deadline = h_now_ms() + WAIT_MS;
	do {
		if (h_sh(NULL, 0, "%s", cmd) == 0)
			return 0;
		usleep(50 * 1000);
	} while (h_now_ms() < deadline);
	fprintf(stderr, "never succeeded: %s\n", cmd);
	return -1;
}

/* Runs argv with stdout and stderr into the file at path. */
static pid_t spawn_to(const char *path, const char *const *argv)
{
	pid_t pid = fork();
	if (pid == 0) {
		int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		if (fd < 0)
			_exit(127);
		dup2(fd, 1);
		dup2(fd, 2);
		close(fd);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	return pid;
}

/* ---- in-process: the ring, the sink, the decision ---- */

static uint32_t ring_read(logring *r, uint64_t since, int which,
                          uint32_t tail, ipc_logline *out, uint32_t max,
                          uint64_t *next)
{
	ipc_logs_req q = {.since = since, .slot = which, .tail = tail,
	                  .max = max};
	return logring_copy(r, &q, out, max, next);
}

static void add(logring *r, int which, const char *msg)
{
	ck_assert_int_eq(logring_add(r, which, which >= 0 ? 100 + which : 0, 2,
	                             1700000000000ull, msg, strlen(msg)),
	                 0);
}

START_TEST(ring_keeps_the_last_lines_of_each_source)
{
	logring *r;
	ipc_logline l[64];
	uint64_t next;
	char msg[32];
	ck_assert_int_eq(logring_new(&r, 5, 1 << 20), 0);
	/* Interleaved: slot 0 chatty, slot 1 and the supervisor not. */
	add(r, -1, "sup 1");
	for (int i = 1; i <= 8; i++) {
		snprintf(msg, sizeof msg, "zero %d", i);
		add(r, 0, msg);
		if (i == 4)
			add(r, 1, "one 1");
	}
	add(r, -1, "sup 2");
	ck_assert_uint_eq(logring_last(r), 11);
	/* Slot 0 kept its last 5; the others lost nothing to it. */
	uint32_t n = ring_read(r, 0, 0, 0, l, 64, &next);
	ck_assert_uint_eq(n, 5);
	for (uint32_t i = 0; i < n; i++) {
		snprintf(msg, sizeof msg, "zero %u", i + 4);
		ck_assert_uint_eq(l[i].len, strlen(msg));
		ck_assert(memcmp(l[i].msg, msg, l[i].len) == 0);
		ck_assert_int_eq(l[i].slot, 0);
		ck_assert_int_eq(l[i].pid, 100);
	}
	ck_assert_uint_eq(next, 11);
	/* All of them, in sequence order across the sources. */
	n = ring_read(r, 0, -1, 0, l, 64, &next);
	ck_assert_uint_eq(n, 8);
	for (uint32_t i = 1; i < n; i++)
		ck_assert_uint_gt(l[i].seq, l[i - 1].seq);
	ck_assert(memcmp(l[0].msg, "sup 1", 5) == 0);
	ck_assert_int_eq(l[0].slot, -1);
	ck_assert_int_eq(l[0].pid, 0);
	ck_assert(memcmp(l[n - 1].msg, "sup 2", 5) == 0);
	/* A slot with no lines, or none past the cursor. */
	ck_assert_uint_eq(ring_read(r, 0, 9, 0, l, 64, &next), 0);
	ck_assert_uint_eq(next, 11);
	ck_assert_uint_eq(ring_read(r, 11, -1, 0, l, 64, &next), 0);
	ck_assert_int_eq(logring_has_after(r, 10, -1), 1);
	ck_assert_int_eq(logring_has_after(r, 11, -1), 0);
	ck_assert_int_eq(logring_has_after(r, 6, 1), 0); /* one 1 is seq 6 */
	ck_assert_int_eq(logring_has_after(r, 5, 1), 1);
	ck_assert_int_eq(logring_has_after(r, 0, 9), 0);
	logring_free(r);
}
END_TEST

START_TEST(ring_bounds_bytes_pages_and_tails)
{
	logring *r;
	ipc_logline l[8];
	uint64_t next;
	char line[30];
	memset(line, 'x', sizeof line);
	ck_assert_int_eq(logring_new(&r, 1000, 100), 0);
	for (int i = 0; i < 10; i++)
		ck_assert_int_eq(logring_add(r, 2, 7, 1, 1, line, sizeof line),
		                 0);
	/* 100 bytes hold three 30-byte lines. */
	ck_assert_uint_eq(ring_read(r, 0, 2, 0, l, 8, &next), 3);
	ck_assert_uint_eq(l[0].seq, 8);
	logring_free(r);

	ck_assert_int_eq(logring_new(&r, 100, 1 << 20), 0);
	for (int i = 0; i < 30; i++)
		add(r, i % 3 - 1, "x"); /* -1, 0, 1 in turn */
	/* The last 7 of everything, read 3 at a time. */
	uint32_t n = ring_read(r, 0, -1, 7, l, 3, &next);
	ck_assert_uint_eq(n, 3);
	ck_assert_uint_eq(l[0].seq, 24);
	ck_assert_uint_eq(next, 26); /* cut short: the last one given */
	n = ring_read(r, next, -1, 0, l, 3, &next);
	ck_assert_uint_eq(n, 3);
	ck_assert_uint_eq(l[0].seq, 27);
	n = ring_read(r, next, -1, 0, l, 3, &next);
	ck_assert_uint_eq(n, 1);
	ck_assert_uint_eq(l[0].seq, 30);
	ck_assert_uint_eq(next, 30);
	/* The last 2 of slot 0 (seqs 2, 5, ..., 29). */
	n = ring_read(r, 0, 0, 2, l, 8, &next);
	ck_assert_uint_eq(n, 2);
	ck_assert_uint_eq(l[0].seq, 26);
	ck_assert_uint_eq(l[1].seq, 29);
	/* A tail longer than what there is: all of it. */
	ck_assert_uint_eq(ring_read(r, 20, 1, 50, l, 8, &next), 4);
	/* Overlong lines are cut. */
	static char big[IPC_MAX_LOGLINE + 100];
	memset(big, 'y', sizeof big);
	ck_assert_int_eq(logring_add(r, 5, 1, 2, 1, big, sizeof big), 0);
	ck_assert_uint_eq(ring_read(r, 0, 5, 0, l, 8, &next), 1);
	ck_assert_uint_eq(l[0].len, IPC_MAX_LOGLINE);
	logring_free(r);
}
END_TEST

static int notified;
static void count_notify(void *arg)
{
	(void)arg;
	notified++;
}

START_TEST(ring_notifies_each_line)
{
	logring *r;
	ck_assert_int_eq(logring_new(&r, 10, 1000), 0);
	logring_set_notify(r, count_notify, NULL);
	add(r, 0, "a");
	add(r, -1, "b");
	ck_assert_int_eq(notified, 2);
	logring_set_notify(r, NULL, NULL);
	add(r, 0, "c");
	ck_assert_int_eq(notified, 2);
	logring_free(r);
}
END_TEST

/* The whole file, NUL-terminated (static). */
static const char *slurp(const char *path)
{
	static char buf[1 << 16];
	FILE *f = fopen(path, "re");
	ck_assert_msg(f != NULL, "%s: %s", path, strerror(errno));
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';
	return buf;
}

START_TEST(sink_writes_text_to_the_file_and_the_ring)
{
	char dir[] = "/tmp/corral-sink-XXXXXX", path[128], moved[140];
	char err[256];
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof path, "%s/corral.log", dir);
	snprintf(moved, sizeof moved, "%s.1", path);
	log_set_prog("corral");
	ck_assert_int_eq(logsink_open(path, 0, err, sizeof err), 0);
	log_msg("first %d", 1);
	log_warn("careful");
	static const char wline[] = "corral-worker: warning: low on \xff";
	log_relay(LOG_WARN, 3, 4242, wline, sizeof wline - 1);
	log_relay(LOG_INFO, -1, 4343, "from a standby", 14);
	const char *t = slurp(path);
	ck_assert_ptr_nonnull(strstr(t, " corral: first 1\n"));
	ck_assert_ptr_nonnull(strstr(t, " corral: warning: careful\n"));
	ck_assert_ptr_nonnull(strstr(t, " corral: slot 3 pid 4242: "
	                                "corral-worker: warning: low on \xff\n"));
	ck_assert_ptr_nonnull(strstr(t, " corral: standby pid 4343: from a "
	                                "standby\n"));
	/* The ring holds the messages alone, with their sources. */
	ipc_logline l[8];
	uint64_t next;
	uint32_t n = ring_read(logsink_ring(), 0, -1, 0, l, 8, &next);
	ck_assert_uint_eq(n, 4);
	ck_assert(l[0].len == 7 && memcmp(l[0].msg, "first 1", 7) == 0);
	ck_assert_int_eq(l[0].slot, -1);
	ck_assert_int_eq(l[0].pid, 0);
	ck_assert_uint_eq(l[1].level, LOG_WARN);
	ck_assert(memcmp(l[1].msg, "careful", 7) == 0);
	ck_assert_int_eq(l[2].slot, 3);
	ck_assert_int_eq(l[2].pid, 4242);
	ck_assert_uint_eq(l[2].level, LOG_WARN);
	ck_assert_uint_eq(l[2].len, sizeof wline - 1);
	ck_assert_int_eq(l[3].slot, -1);
	ck_assert_int_eq(l[3].pid, 4343);
	ck_assert_ptr_eq(logsink_ring_cb(NULL), logsink_ring());

	/* logrotate: the file moved away, SIGUSR1's reopen. */
	ck_assert_int_eq(rename(path, moved), 0);
	log_reopen();
	log_msg("after");
	const char *old = slurp(moved);
	ck_assert_ptr_nonnull(strstr(old, "reopening log file"));
	ck_assert_ptr_null(strstr(old, "after"));
	t = slurp(path);
	ck_assert_ptr_nonnull(strstr(t, "reopened"));
	ck_assert_ptr_nonnull(strstr(t, " corral: after\n"));
	/* A file that cannot be reopened: the old one stays in use. */
	ck_assert_int_eq(rename(path, moved), 0);
	ck_assert_int_eq(chmod(dir, 0500), 0);
	if (access(dir, W_OK) != 0) { /* not when root */
		log_reopen();
		log_msg("still here");
		ck_assert_ptr_nonnull(strstr(slurp(moved), "still here"));
	}
	chmod(dir, 0700);
	logsink_close();
	ck_assert_ptr_null(logsink_ring());
	char cmd[160];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	ck_assert_int_eq(system(cmd), 0);
}
END_TEST

START_TEST(sink_writes_one_json_object_per_line)
{
	char dir[] = "/tmp/corral-sink-XXXXXX", path[128], err[256];
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof path, "%s/corral.log", dir);
	log_set_prog("corral");
	ck_assert_int_eq(logsink_open(path, 1, err, sizeof err), 0);
	log_msg("plain \"quoted\" line");
	static const char bad[] = "bytes \xc0\xaf and \xed\xa0\x80 end";
	log_relay(LOG_ERROR, 2, 777, bad, sizeof bad - 1);
	logsink_close();
	FILE *f = fopen(path, "re");
	ck_assert_ptr_nonnull(f);
	char line[4096];
	int n = 0;
	while (fgets(line, sizeof line, f)) {
		json_error_t je;
		json_t *o = json_loads(line, 0, &je);
		ck_assert_msg(o != NULL, "line %d: %s: %s", n, je.text, line);
		const char *keys[] = {"time", "level", "prog", "slot", "pid",
		                      "msg", "source"};
		for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++)
			ck_assert_msg(json_object_get(o, keys[k]), "no %s",
			              keys[k]);
		const char *tm = json_string_value(json_object_get(o, "time"));
		ck_assert_uint_eq(strlen(tm), 24); /* 2024-05-01T12:00:00.123Z */
		ck_assert_int_eq(tm[10], 'T');
		ck_assert_int_eq(tm[23], 'Z');
		ck_assert_str_eq(json_string_value(json_object_get(o, "prog")),
		                 "corral");
		if (n == 0) {
			ck_assert(json_is_null(json_object_get(o, "slot")));
			ck_assert_int_eq(json_integer_value(json_object_get(
			                     o, "pid")), getpid());
			ck_assert_str_eq(json_string_value(json_object_get(
			                     o, "msg")), "plain \"quoted\" line");
			ck_assert_str_eq(json_string_value(json_object_get(
			                     o, "level")), "info");
			ck_assert_str_eq(json_string_value(json_object_get(
			                     o, "source")), "supervisor");
		} else {
			ck_assert_int_eq(json_integer_value(json_object_get(
			                     o, "slot")), 2);
			ck_assert_int_eq(json_integer_value(json_object_get(
			                     o, "pid")), 777);
			ck_assert_str_eq(json_string_value(json_object_get(
			                     o, "level")), "error");
			ck_assert_str_eq(json_string_value(json_object_get(
			                     o, "source")), "worker");
			/* Overlong and surrogate bytes repaired. */
			ck_assert_str_eq(json_string_value(json_object_get(
			                     o, "msg")),
			                 "bytes \xef\xbf\xbd\xef\xbf\xbd and "
			                 "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd end");
		}
		json_decref(o);
		n++;
	}
	fclose(f);
	ck_assert_int_eq(n, 2);
	char cmd[160];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	ck_assert_int_eq(system(cmd), 0);
}
END_TEST

START_TEST(sink_refuses_a_file_it_cannot_open)
{
	char err[256];
	ck_assert_int_eq(logsink_open("/nonexistent-dir/x.log", 0, err,
	                              sizeof err), CORRAL_ESYS);
	ck_assert_ptr_nonnull(strstr(err, "/nonexistent-dir/x.log"));
	ck_assert_ptr_null(logsink_ring());
	/* Without a file: the ring only, stderr as before. */
	ck_assert_int_eq(logsink_open("", 0, err, sizeof err), 0);
	ck_assert_ptr_nonnull(logsink_ring());
	logsink_close();
}
END_TEST

START_TEST(utf8_repair_keeps_good_text_and_replaces_the_rest)
{
	char out[64];
	static const char good[] = "a\xc3\xa9\xe2\x82\xac\xf0\x9f\x90\x8e";
	ck_assert_uint_eq(utf8_repair(good, sizeof good - 1, out),
	                  sizeof good - 1);
	ck_assert_str_eq(out, good);
	/* Truncated, stray continuation, overlong, surrogate, past
	 * U+10FFFF, NUL: one U+FFFD per byte. */
	static const struct {
		const char *in;
		size_t n;
		unsigned bad;
	} cases[] = {{"\xe2\x82", 2, 2}, {"\x80", 1, 1}, {"\xc1\xbf", 2, 2},
	             {"\xed\xa0\x80", 3, 3}, {"\xf4\x90\x80\x80", 4, 4},
	             {"x\0y", 3, 1}};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		size_t n = utf8_repair(cases[i].in, cases[i].n, out);
		size_t fffd = 0;
		for (const char *p = out; (p = strstr(p, "\xef\xbf\xbd")); p++)
			fffd++;
		ck_assert_msg(fffd == cases[i].bad, "case %zu: %zu", i, fffd);
		ck_assert_uint_eq(strlen(out), n);
	}
}
END_TEST

START_TEST(config_takes_log_file_and_log_format)
{
	config c;
	char err[256];
	config_defaults(&c);
	ck_assert_str_eq(c.log_file, "");
	ck_assert_int_eq(c.log_json, 0);
	ck_assert_int_eq(config_set(&c, "log_file", "/var/log/corral.log", err,
	                            sizeof err), 0);
	ck_assert_str_eq(c.log_file, "/var/log/corral.log");
	ck_assert_int_eq(config_set(&c, "log_format", "json", err, sizeof err),
	                 0);
	ck_assert_int_eq(c.log_json, 1);
	ck_assert_int_eq(config_set(&c, "log_format", "text", err, sizeof err),
	                 0);
	ck_assert_int_eq(c.log_json, 0);
	ck_assert_int_eq(config_set(&c, "log_format", "xml", err, sizeof err),
	                 CORRAL_ECONFIG);
	ck_assert_ptr_nonnull(strstr(err, "text or json"));
	config_free(&c);
}
END_TEST

/* A slot as the reconciler leaves it, for decision_read. */
static restart_policy pol = {.delay_ms = 100, .delay_max_ms = 10000,
                             .min_uptime_ms = 1000, .window_ms = 60000,
                             .max_restarts = 3};
static slot_timeouts tmo = {.start_ms = 30000, .heartbeat_ms = 5000,
                            .shutdown_ms = 10000};

static void slot_for(slot *sl)
{
	memset(sl, 0, sizeof *sl);
	sl->id = 2;
	sl->pid = 4242;
	sl->exit_code = -1;
	ck_assert_int_eq(restart_track_init(&sl->track, &pol), 0);
}

START_TEST(decision_read_off_the_slot)
{
	slot sl;
	ipc_decision d;
	uint64_t now = 1000000;
	slot_for(&sl);
	/* A crash after 12 ms up, the second in a row: restart. */
	sl.state = SLOT_BACKOFF;
	sl.have_exit = 1;
	sl.exit_signal = SIGSEGV;
	sl.last_uptime_ms = 12;
	sl.health.pid = 4242;
	sl.health.lag_p99_us = 1500;
	sl.health.rss_bytes = 3 << 20;
	sl.health_ms = now - 300;
	sl.cpu_pct = 2.5;
	ck_assert_int_eq(crashloop_record(&pol, &sl.track, now - 70000), 0);
	ck_assert_int_eq(crashloop_record(&pol, &sl.track, now - 500), 0);
	ck_assert_int_eq(crashloop_record(&pol, &sl.track, now), 0);
	(void)backoff_next(&pol, &sl.track, 5, 0);
	sl.backoff_ms = backoff_next(&pol, &sl.track, 12, UINT32_MAX / 2);
	ck_assert_str_eq(decision_read(&sl, &pol, &tmo, 0, now, &d),
	                 "restart");
	ck_assert_str_eq(d.action, "restart");
	ck_assert_str_eq(d.exit_signal, "SIGSEGV");
	ck_assert_int_eq(d.exit_code, -1);
	ck_assert_uint_eq(d.uptime_ms, 12);
	ck_assert_uint_eq(d.backoff_ms, sl.backoff_ms);
	ck_assert_uint_eq(d.backoff_base_ms, 200);
	ck_assert_uint_eq(d.consecutive, 2);
	ck_assert_uint_eq(d.restarts_used, 2); /* one left the window */
	ck_assert_uint_eq(d.max_restarts, 3);
	ck_assert_uint_eq(d.window_ms, 60000);
	ck_assert_uint_eq(d.restart_delay_ms, 100);
	ck_assert_uint_eq(d.min_uptime_ms, 1000);
	ck_assert_str_eq(d.figure, "");
	ck_assert_uint_eq(d.health_age_ms, 300);
	ck_assert_uint_eq(d.lag_p99_us, 1500);
	ck_assert_uint_eq(d.rss_bytes, 3 << 20);
	ck_assert(d.cpu_pct == 2.5);

	/* A clean exit not restarted by policy; while shutting down: a
	 * stop; a give-up has no delay.  Health of another worker is not
	 * this one's. */
	sl.state = SLOT_STOPPED;
	sl.exit_signal = 0;
	sl.exit_code = 0;
	sl.health.pid = 1;
	ck_assert_str_eq(decision_read(&sl, &pol, &tmo, 0, now, &d), "done");
	ck_assert_int_eq(d.exit_code, 0);
	ck_assert_str_eq(d.exit_signal, "");
	ck_assert_uint_eq(d.health_age_ms, UINT64_MAX);
	ck_assert_str_eq(decision_read(&sl, &pol, &tmo, 1, now, &d), "stop");
	sl.state = SLOT_FAILED;
	ck_assert_str_eq(decision_read(&sl, &pol, &tmo, 0, now, &d),
	                 "give-up");
	ck_assert_uint_eq(d.backoff_ms, 0);
	/* A failed spawn: no exit to speak of. */
	sl.pid = 0;
	ck_assert_str_eq(decision_read(&sl, &pol, &tmo, 0, now, &d),
	                 "give-up");
	ck_assert_int_eq(d.exit_code, -1);
	/* Nothing decided yet. */
	sl.state = SLOT_EXITED;
	ck_assert_ptr_null(decision_read(&sl, &pol, &tmo, 0, now, &d));
	restart_track_fini(&sl.track);
}
END_TEST

START_TEST(decision_read_of_a_kill_names_its_trigger)
{
	slot sl;
	ipc_decision d;
	int dummy;
	uint64_t now = 1000000;
	slot_for(&sl);
	sl.proc = (proc *)&dummy; /* only looked at, never used */
	sl.kill_wanted = 1;
	sl.state = SLOT_RUNNING;
	sl.ready_us = (now - 9000) * 1000;
	sl.health.pid = 4242;
	sl.health_ms = now - 5003;
	ck_assert_str_eq(decision_read(&sl, &pol, &tmo, 0, now, &d), "kill");
	ck_assert_str_eq(d.figure, "silent_ms");
	ck_assert(d.value == 5003 && d.limit == 5000);
	ck_assert_uint_eq(d.uptime_ms, 9000);
	ck_assert_uint_eq(d.health_age_ms, 5003);
	/* Not past its limit: killed for another reason, no trigger. */
	sl.health_ms = now - 10;
	decision_read(&sl, &pol, &tmo, 0, now, &d);
	ck_assert_str_eq(d.figure, "");
	/* Never ready; never gone. */
	sl.state = SLOT_STARTING;
	sl.spawned_us = (now - 31000) * 1000;
	decision_read(&sl, &pol, &tmo, 0, now, &d);
	ck_assert_str_eq(d.figure, "starting_ms");
	ck_assert(d.limit == 30000);
	sl.state = SLOT_STOPPING;
	sl.state_since_ms = now - 10001;
	decision_read(&sl, &pol, &tmo, 0, now, &d);
	ck_assert_str_eq(d.figure, "stopping_ms");
	ck_assert(d.value == 10001);
	/* Once the SIGKILL went out, that decision was recorded. */
	sl.killed = 1;
	sl.state = SLOT_RUNNING;
	ck_assert_ptr_null(decision_read(&sl, &pol, &tmo, 0, now, &d));
	restart_track_fini(&sl.track);
}
END_TEST

/* ---- against a real supervisor ---- */

START_TEST(logs_read_each_slot_and_the_supervisor)
{
	char cmd[2048], out[65536];
	START("-w", "2", "--standby", "0", "--set", "greeting=bonjour",
	      so("examples/hello.so"));
	all_running(2);
	/* The greeting is written before READY, but read on the pipe's
	 * schedule. */
	snprintf(cmd, sizeof cmd, "'%s' --rundir '%s' logs | grep -q "
	         "'bonjour from slot 0' && '%s' --rundir '%s' logs | grep -q "
	         "'bonjour from slot 1'", h_ctl(), H.rundir, h_ctl(), H.rundir);
	ck_assert_int_eq(sh_until(cmd), 0);
	/* One slot's workers only. */
	ck_assert_int_eq(h_sh(out, sizeof out, "'%s' --rundir '%s' logs --slot "
	                      "1", h_ctl(), H.rundir), 0);
	ck_assert_ptr_nonnull(strstr(out, "bonjour from slot 1"));
	ck_assert_ptr_null(strstr(out, "from slot 0"));
	for (char *l = out; *l; l = strchr(l, '\n') + 1) {
		char *nl = strchr(l, '\n');
		ck_assert_ptr_nonnull(nl);
		*nl = '\0';
		ck_assert_msg(strstr(l, " corral: slot 1 pid "), "%s", l);
		*nl = '\n';
	}
	/* Everything, as JSON lines: both slots and the supervisor, in
	 * order, nothing twice. */
	ck_assert_int_eq(h_sh(NULL, 0, "'%s' --rundir '%s' logs --json | '%s' "
	                      "-s -e 'any(.source == \"supervisor\" and .slot "
	                      "== null and .pid == null) and any(.slot == 0) "
	                      "and any(.slot == 1 and (.msg | contains("
	                      "\"bonjour\"))) and (map(.seq) as $s | $s == "
	                      "($s | sort) and ($s | unique | length) == "
	                      "($s | length))' >/dev/null", h_ctl(), H.rundir,
	                      jq()), 0);
	/* -n after the command is LINES. */
	ck_assert_int_eq(h_sh(out, sizeof out, "'%s' --rundir '%s' logs --slot "
	                      "0 -n 1 | wc -l", h_ctl(), H.rundir), 0);
	ck_assert_int_eq(atoi(out), 1);
	ck_assert_int_eq(h_sh(out, sizeof out, "'%s' --rundir '%s' logs -n2 | "
	                      "wc -l", h_ctl(), H.rundir), 0);
	ck_assert_int_eq(atoi(out), 2);
	/* A slot that is not there has no lines. */
	ck_assert_int_eq(h_sh(out, sizeof out, "'%s' --rundir '%s' logs --slot "
	                      "7", h_ctl(), H.rundir), 0);
	ck_assert_str_eq(out, "");
	/* Usage errors. */
	ck_assert_int_eq(h_sh(NULL, 0, "'%s' --rundir '%s' logs --slot x "
	                      "2>/dev/null", h_ctl(), H.rundir), 2);
	ck_assert_int_eq(h_sh(NULL, 0, "'%s' --rundir '%s' logs extra "
	                      "2>/dev/null", h_ctl(), H.rundir), 2);
}
END_TEST

START_TEST(logs_follow_until_the_supervisor_stops)
{
	char f1[128], f2[128], needle[128];
	START("-w", "1", "--standby", "0", "--set", "greeting=bonjour",
	      so("examples/hello.so"));
	pid_t p = (pid_t)EVENT("kind=slot slot=0 to=running")->pid;
	snprintf(f1, sizeof f1, "%s/slot0.log", H.dir);
	snprintf(f2, sizeof f2, "%s/new.jsonl", H.dir);
	const char *a1[] = {h_ctl(), "--rundir", H.rundir, "logs", "-f",
	                    "--slot", "0", NULL};
	const char *a2[] = {h_ctl(), "--rundir", H.rundir, "logs", "-f", "-n",
	                    "0", "--json", NULL};
	/* The first takes what is held, then follows; the second only
	 * what comes after it asked. */
	pid_t r1 = spawn_to(f1, a1), r2 = spawn_to(f2, a2);
	ck_assert_int_gt(r1, 0);
	ck_assert_int_gt(r2, 0);
	ck_assert_int_eq(wait_file(f1, "bonjour from slot 0", 1), 0);
	/* The second shows nothing old: it is following once a line the
	 * supervisor logs after it asked (SIGUSR2's summary) reaches it. */
	uint64_t deadline = h_now_ms() + WAIT_MS;
	while (file_count(f2, "\"source\":\"supervisor\"") < 1 &&
	       h_now_ms() < deadline) {
		kill(H.sup, SIGUSR2);
		usleep(100 * 1000);
	}
	ck_assert_int_ge(file_count(f2, "\"source\":\"supervisor\""), 1);
	ck_assert_int_eq(kill(p, SIGKILL), 0);
	EVENT("kind=slot slot=0 from=running to=exited");
	pid_t q = (pid_t)EVENT("kind=slot slot=0 to=running")->pid;
	snprintf(needle, sizeof needle, "slot 0 pid %d: corral-worker: info: "
	         "bonjour from slot 0", (int)q);
	ck_assert_int_eq(wait_file(f1, needle, 1), 0);
	snprintf(needle, sizeof needle, "\"slot\":0,\"pid\":%d,", (int)q);
	ck_assert_int_eq(wait_file(f2, needle, 1), 0);
	kill(H.sup, SIGTERM);
	ck_assert_int_eq(h_wait_exit(&H, WAIT_MS), 0);
	/* Both end by themselves once the supervisor is gone. */
	ck_assert_int_eq(h_wait_pid_gone(r1, WAIT_MS), 0);
	ck_assert_int_eq(h_wait_pid_gone(r2, WAIT_MS), 0);
	/* The second never saw the first worker's lines. */
	snprintf(needle, sizeof needle, "\"pid\":%d,", (int)p);
	ck_assert_int_eq(file_count(f2, needle), 0);
	ck_assert_int_eq(h_sh(NULL, 0, "'%s' -e . '%s' >/dev/null", jq(), f2),
	                 0);
}
END_TEST

START_TEST(log_file_takes_everything_and_reopens_on_sigusr1)
{
	char path[128], moved[140], needle[128];
	ck_assert_int_eq(h_prepare(&H), 0);
	snprintf(path, sizeof path, "%s/corral.log", H.dir);
	snprintf(moved, sizeof moved, "%s.1", path);
	START("-w", "1", "--standby", "0", "--log-file", path, "--set",
	      "greeting=bonjour", so("examples/hello.so"));
	pid_t p = (pid_t)EVENT("kind=slot slot=0 to=running")->pid;
	snprintf(needle, sizeof needle, "slot 0 pid %d: corral-worker: info: "
	         "bonjour from slot 0", (int)p);
	ck_assert_int_eq(wait_file(path, needle, 1), 0);
	/* logrotate moves it, then SIGUSR1. */
	ck_assert_int_eq(rename(path, moved), 0);
	ck_assert_int_eq(kill(H.sup, SIGUSR1), 0);
	ck_assert_int_eq(wait_exists(path), 0); /* there again */
	ck_assert_int_eq(kill(p, SIGKILL), 0);
	pid_t q = (pid_t)EVENT("kind=slot slot=0 to=running")->pid;
	snprintf(needle, sizeof needle, "slot 0 pid %d: corral-worker: info: "
	         "bonjour from slot 0", (int)q);
	ck_assert_int_eq(wait_file(path, needle, 1), 0);
	kill(H.sup, SIGTERM);
	ck_assert_int_eq(h_wait_exit(&H, WAIT_MS), 0);
	/* The new worker only in the new file; nothing of the workers on
	 * stderr. */
	snprintf(needle, sizeof needle, "pid %d:", (int)q);
	ck_assert_int_eq(file_count(moved, needle), 0);
	ck_assert_int_eq(h_count(&H, "bonjour"), 0);
	/* The supervisor's own lines follow it to the new file. */
	snprintf(needle, sizeof needle, "slot 0 pid %d: running -> exited",
	         (int)p);
	ck_assert_int_eq(file_count(path, needle), 1);
}
END_TEST

START_TEST(log_format_json_is_one_object_per_line)
{
	char path[128], out[256];
	ck_assert_int_eq(h_prepare(&H), 0);
	snprintf(path, sizeof path, "%s/corral.jsonl", H.dir);
	START("-w", "1", "--standby", "0", "--log-file", path, "--log-format",
	      "json", so("examples/hello.so"));
	pid_t p = (pid_t)EVENT("kind=slot slot=0 to=running")->pid;
	pid_t sup = H.sup;
	ck_assert_int_eq(wait_file(path, "hello from slot 0", 1), 0);
	kill(H.sup, SIGTERM);
	ck_assert_int_eq(h_wait_exit(&H, WAIT_MS), 0);
	/* Python's strict parser, every line; the worker's line and the
	 * supervisor's own carry who wrote them. */
	ck_assert_int_eq(h_sh(out, sizeof out,
	                      "python3 -c 'import json,re,sys\n"
	                      "ls=[json.loads(l) for l in open(sys.argv[1], "
	                      "encoding=\"utf-8\", errors=\"strict\")]\n"
	                      "keys={\"time\",\"level\",\"prog\",\"slot\","
	                      "\"pid\",\"msg\",\"source\"}\n"
	                      "assert all(keys <= set(l) for l in ls)\n"
	                      "assert all(re.fullmatch(r\"\\d{4}-\\d\\d-\\d\\dT"
	                      "\\d\\d:\\d\\d:\\d\\d\\.\\d{3}Z\", l[\"time\"]) "
	                      "for l in ls)\n"
	                      "assert any(l[\"slot\"] == 0 and l[\"pid\"] == "
	                      "int(sys.argv[2]) and l[\"source\"] == \"worker\""
	                      " and \"hello from slot 0\" in l[\"msg\"] for l "
	                      "in ls)\n"
	                      "assert any(l[\"slot\"] is None and l[\"pid\"] "
	                      "== int(sys.argv[3]) and l[\"source\"] == "
	                      "\"supervisor\" for l in ls)\n"
	                      "print(\"ok\")' '%s' %d %d", path, (int)p,
	                      (int)sup), 0);
	ck_assert_str_eq(out, "ok\n");
}
END_TEST

START_TEST(explain_shows_a_kill_and_the_restart_with_their_inputs)
{
	char out[65536];
	START("-w", "1", "--standby", "0", "--heartbeat-timeout", "1s",
	      "--max-restarts", "5", "--set", "after=200",
	      so("examples/hang.so"));
	EVENT("kind=decision slot=0 to=kill");
	EVENT("kind=decision slot=0 to=restart");
	ck_assert_int_eq(h_sh(NULL, 0, "'%s' --rundir '%s' explain 0 --json | "
	                      "'%s' -e '.slot == 0 and .status.slot == 0 and "
	                      "(.events | all(.slot == 0)) and (.events | "
	                      "map(select(.kind == \"decision\")) | "
	                      ".[0].decision.action == \"kill\" and "
	                      ".[0].decision.trigger.figure == \"silent_ms\" and "
	                      ".[0].decision.trigger.value >= 1000 and "
	                      ".[0].decision.trigger.limit == 1000 and "
	                      ".[0].decision.exit_code == null and "
	                      ".[1].decision.action == \"restart\" and "
	                      ".[1].decision.exit_signal == \"SIGKILL\" and "
	                      ".[1].decision.restarts_in_window == 1 and "
	                      ".[1].decision.policy.max_restarts == 5 and "
	                      ".[1].decision.policy.restart_window_ms == 60000 "
	                      "and (.[1].decision.backoff_ms | type) == "
	                      "\"number\" and .[1].why != \"\")' >/dev/null "
	                      "|| { '%s' --rundir '%s' explain 0 --json >&2; "
	                      "exit 1; }", h_ctl(), H.rundir, jq(), h_ctl(),
	                      H.rundir), 0);
	/* In words. */
	ck_assert_int_eq(h_sh(out, sizeof out, "'%s' --rundir '%s' explain 0",
	                      h_ctl(), H.rundir), 0);
	ck_assert_ptr_nonnull(strstr(out, "slot 0: "));
	ck_assert_ptr_nonnull(strstr(out, "decision: kill: hung"));
	ck_assert_ptr_nonnull(strstr(out, "trigger: silent_ms = "));
	ck_assert_ptr_nonnull(strstr(out, "decision: restart: "));
	ck_assert_ptr_nonnull(strstr(out, "exit:    SIGKILL after "));
	ck_assert_ptr_nonnull(strstr(out, "backoff: "));
	ck_assert_ptr_nonnull(strstr(out, "budget:  1 of 5 restarts used in "
	                                  "the last 60 s; 4 left"));
	/* -n keeps the last events only; events streams the decisions. */
	ck_assert_int_eq(h_sh(out, sizeof out, "'%s' --rundir '%s' explain 0 "
	                      "-n 1 --json | '%s' '.events | length'", h_ctl(),
	                      H.rundir, jq()), 0);
	ck_assert_int_eq(atoi(out), 1);
	ck_assert_int_eq(h_sh(NULL, 0, "'%s' --rundir '%s' events --json | "
	                      "'%s' -s -e 'any(.kind == \"decision\" and "
	                      ".decision.action == \"kill\" and .to == "
	                      "\"kill\" and .from == \"running\")' >/dev/null",
	                      h_ctl(), H.rundir, jq()), 0);
	ck_assert_int_eq(h_sh(NULL, 0, "'%s' --rundir '%s' explain 9 "
	                      "2>/dev/null", h_ctl(), H.rundir), 2);
	ck_assert_int_eq(h_sh(NULL, 0, "'%s' --rundir '%s' explain 2>/dev/null",
	                      h_ctl(), H.rundir), 2);
}
END_TEST

START_TEST(explain_shows_a_crash_loop_giving_up)
{
	char out[65536], f[96];
	START("-w", "2", "--standby", "0", "--max-restarts", "1",
	      so("examples/hello.so"));
	pid_t p = (pid_t)EVENT("kind=slot slot=1 to=running")->pid;
	ck_assert_int_eq(kill(p, SIGKILL), 0);
	EVENT("kind=decision slot=1 to=restart");
	snprintf(f, sizeof f, "kind=slot slot=1 to=running");
	p = (pid_t)EVENT(f)->pid;
	ck_assert_int_eq(kill(p, SIGKILL), 0);
	EVENT("kind=decision slot=1 to=give-up");
	ck_assert_int_eq(h_sh(NULL, 0, "'%s' --rundir '%s' explain 1 --json | "
	                      "'%s' -e '.status.state == \"failed\" and "
	                      "(.events | map(select(.kind == \"decision\")) "
	                      "| last | .decision.action == \"give-up\" and "
	                      ".decision.exit_signal == \"SIGKILL\" and "
	                      ".decision.restarts_in_window == 1 and "
	                      ".decision.policy.max_restarts == 1)' >/dev/null",
	                      h_ctl(), H.rundir, jq()), 0);
	ck_assert_int_eq(h_sh(out, sizeof out, "'%s' --rundir '%s' explain 1",
	                      h_ctl(), H.rundir), 0);
	ck_assert_ptr_nonnull(strstr(out, "decision: give-up: "));
	ck_assert_ptr_nonnull(strstr(out, "1 of 1 restarts used"));
	ck_assert_ptr_nonnull(strstr(out, "; 0 left"));
	/* The other slot had nothing to decide. */
	ck_assert_int_eq(h_sh(out, sizeof out, "'%s' --rundir '%s' explain 0 "
	                      "--json | '%s' '[.events[] | select(.kind == "
	                      "\"decision\")] | length'", h_ctl(), H.rundir,
	                      jq()), 0);
	ck_assert_int_eq(atoi(out), 0);
}
END_TEST

START_TEST(top_once_prints_one_plain_frame)
{
	char out[16384];
	START("-w", "2", "--standby", "0", "--health-interval", "100ms",
	      so("examples/echo.so"));
	all_running(2);
	ck_assert_int_eq(h_sh(out, sizeof out, "'%s' --rundir '%s' call hi",
	                      h_ctl(), H.rundir), 0);
	ck_assert_str_eq(out, "hi");
	/* The answered job shows in the worker's counter. */
	char cmd[1024];
	snprintf(cmd, sizeof cmd, "'%s' --rundir '%s' status --json | '%s' -e "
	         "'(.workers | map(.plugin_jobs_done) | add) == 1 and "
	         "(.workers | all(.gen == 1))' >/dev/null", h_ctl(), H.rundir,
	         jq());
	ck_assert_int_eq(sh_until(cmd), 0);
	ck_assert_int_eq(h_sh(out, sizeof out, "'%s' --rundir '%s' top --once "
	                      "--interval 250ms", h_ctl(), H.rundir), 0);
	ck_assert_ptr_null(strchr(out, '\033'));
	ck_assert_ptr_nonnull(strstr(out, "2/2 worker(s) running"));
	const char *head = strstr(out, "\nSLOT ");
	ck_assert_ptr_nonnull(head);
	const char *cols[] = {"PID", "STATE", "GEN", "RESTARTS", "CPU", "MEM",
	                      "LAG P99", "UTIL", "JOBS/S"};
	for (size_t i = 0; i < sizeof cols / sizeof cols[0]; i++)
		ck_assert_msg(strstr(head, cols[i]), "no column %s", cols[i]);
	ck_assert_ptr_nonnull(strstr(head, "\n0 "));
	ck_assert_ptr_nonnull(strstr(head, "\n1 "));
	ck_assert_ptr_nonnull(strstr(head, "\nall "));
	ck_assert_ptr_nonnull(strstr(head, " running "));
	/* No trailing blanks, no second frame. */
	ck_assert_ptr_null(strstr(out, " \n"));
	const char *again = strstr(head + 1, "\nSLOT ");
	ck_assert_ptr_null(again);
	/* Not a terminal: the live view refuses; nobody there: exit 1. */
	ck_assert_int_eq(h_sh(NULL, 0, "'%s' --rundir '%s' top </dev/null "
	                      ">/dev/null 2>&1", h_ctl(), H.rundir), 2);
	ck_assert_int_eq(h_sh(NULL, 0, "'%s' --rundir '%s/none' top --once "
	                      "2>/dev/null", h_ctl(), H.dir), 1);
}
END_TEST

/* ---- top in a terminal: tmux ---- */

static int tmux(char *out, size_t len, const char *args)
{
	return h_sh(out, len, "tmux -S '%s' %s 2>&1", tmux_sock, args);
}

/* Until the pane shows every '|'-separated part of needles. */
static int pane_until(const char *needles, char *screen, size_t len)
{
	uint64_t deadline = h_now_ms() + WAIT_MS;
	do {
		if (tmux(screen, len, "capture-pane -p -t top") == 0) {
			int all = 1;
			char part[128];
			for (const char *n = needles; all;) {
				const char *bar = strchr(n, '|');
				size_t k = bar ? (size_t)(bar - n) : strlen(n);
				snprintf(part, sizeof part, "%.*s", (int)k, n);
				all = strstr(screen, part) != NULL;
				if (!bar)
					break;
				n = bar + 1;
			}
			if (all)
				return 0;
		}
		usleep(50 * 1000);
	} while (h_now_ms() < deadline);
	fprintf(stderr, "pane never showed '%s'; it shows:\n%s\n", needles,
	        screen);
	return -1;
}

START_TEST(top_live_in_a_terminal)
{
	char screen[16384], cmd[1024];
	if (h_sh(NULL, 0, "tmux -V >/dev/null 2>&1") != 0) {
		fprintf(stderr, "top_live_in_a_terminal: SKIP: tmux is not "
		        "installed\n");
		return;
	}
	START("-w", "2", "--standby", "0", so("examples/hello.so"));
	all_running(2);
	snprintf(tmux_sock, sizeof tmux_sock, "%s/tmux", H.dir);
	/* The pane runs top and then says how it ended. */
	snprintf(cmd, sizeof cmd, "-f /dev/null new-session -d -s top -x 100 "
	         "-y 20 \"'%s' --rundir '%s' top --interval 200ms; echo "
	         "top-exited-\\$?; sleep 600\"", h_ctl(), H.rundir);
	ck_assert_int_eq(tmux(screen, sizeof screen, cmd), 0);
	ck_assert_int_eq(pane_until("SLOT|JOBS/S|q quits|\n0 |\n1 |\nall ",
	                            screen, sizeof screen), 0);
	/* SIGWINCH: redrawn to the new size, cut to fit instead of
	 * wrapping or scrolling. */
	ck_assert_int_eq(tmux(screen, sizeof screen, "resize-window -t top "
	                      "-x 40 -y 7"), 0);
	ck_assert_int_eq(pane_until("a taller terminal", screen,
	                            sizeof screen), 0);
	for (char *l = screen; *l;) {
		char *nl = strchr(l, '\n');
		size_t n = nl ? (size_t)(nl - l) : strlen(l);
		ck_assert_uint_le(n, 40);
		if (!nl)
			break;
		l = nl + 1;
	}
	ck_assert_ptr_nonnull(strstr(screen, "SLOT"));
	/* q quits, exit 0, the terminal given back. */
	ck_assert_int_eq(tmux(screen, sizeof screen, "send-keys -t top q"), 0);
	ck_assert_int_eq(pane_until("top-exited-0", screen, sizeof screen), 0);
	/* A terminal that goes away: top ends (SIGHUP, EOF), not spins. */
	snprintf(cmd, sizeof cmd, "new-session -d -s gone -x 80 -y 20 "
	         "\"exec '%s' --rundir '%s' top\"", h_ctl(), H.rundir);
	ck_assert_int_eq(tmux(screen, sizeof screen, cmd), 0);
	ck_assert_int_eq(tmux(screen, sizeof screen, "display-message -p -t "
	                      "gone '#{pane_pid}'"), 0);
	pid_t top = (pid_t)atoi(screen);
	ck_assert_int_gt(top, 0);
	ck_assert_int_eq(tmux(screen, sizeof screen, "kill-session -t gone"),
	                 0);
	ck_assert_int_eq(h_wait_pid_gone(top, WAIT_MS), 0);
	(void)tmux(screen, sizeof screen, "kill-server");
}
END_TEST

static Suite *ops_suite(void)
{
	Suite *s = suite_create("ops_cli");
	TCase *tc = tcase_create("pieces");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, ring_keeps_the_last_lines_of_each_source);
	tcase_add_test(tc, ring_bounds_bytes_pages_and_tails);
	tcase_add_test(tc, ring_notifies_each_line);
	tcase_add_test(tc, sink_writes_text_to_the_file_and_the_ring);
	tcase_add_test(tc, sink_writes_one_json_object_per_line);
	tcase_add_test(tc, sink_refuses_a_file_it_cannot_open);
	tcase_add_test(tc, utf8_repair_keeps_good_text_and_replaces_the_rest);
	tcase_add_test(tc, config_takes_log_file_and_log_format);
	tcase_add_test(tc, decision_read_off_the_slot);
	tcase_add_test(tc, decision_read_of_a_kill_names_its_trigger);
	suite_add_tcase(s, tc);
	tc = tcase_create("cli");
	tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, logs_read_each_slot_and_the_supervisor);
	tcase_add_test(tc, logs_follow_until_the_supervisor_stops);
	tcase_add_test(tc, log_file_takes_everything_and_reopens_on_sigusr1);
	tcase_add_test(tc, log_format_json_is_one_object_per_line);
	tcase_add_test(tc, explain_shows_a_kill_and_the_restart_with_their_inputs);
	tcase_add_test(tc, explain_shows_a_crash_loop_giving_up);
	tcase_add_test(tc, top_once_prints_one_plain_frame);
	tcase_add_test(tc, top_live_in_a_terminal);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(ops_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
