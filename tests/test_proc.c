/*
 * test_proc.c - process-level tests: the real corral, corral-worker and
 * corralctl binaries, real signals, real sockets under a temporary run
 * directory.  Each test is bounded by Check's per-case timeout and kills and
 * reaps every process it started (h_cleanup).
 *
 * Tests wait for events -- a slot's or the supervisor's state change from
 * its event log (EVENT), a fact in `corralctl status` (status_until), a
 * process's exit -- never for log wording, and never sleep and hope.  What
 * a process prints is checked as output (OUTPUT: a plugin's line with its
 * slot and pid, a warning, an error message), found anywhere in the log,
 * never ordered against events.  The few checks still on the log are
 * marked "log:" with the reason (see harness.h for h_log_event_count).
 *
 * No test asserts how fast something happens: a loaded 2-core CI machine
 * can miss any upper time bound.  Lower bounds that are the contract stay
 * (a hung worker is not killed before heartbeat_timeout); speed is
 * measured in bench/ (bench/restart, bench/shutdown).  TCP tests bind port
 * 0 and read the port back.
 */
#include <check.h>
#include <dirent.h>
#include <pthread.h>
#include <errno.h>
#include <limits.h>
#include <nng/nng.h>
#include <nng/protocol/pair0/pair.h>
#include <nng/protocol/reqrep0/req.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "corral_client.h"
#include "corral.h"
#include "ipc/proto.h"
#include "tests/harness.h"

static harness H, H2; /* H2: a second supervisor, for the tests that need one */

/* How long a test waits for something that must happen (an event, a
 * status fact, an exit, a line of output) before it fails.  Only a failure
 * takes this long: it bounds the test, it asserts no speed, and it leaves
 * room for a loaded machine (an ASan worker took over 5 s to start on a
 * loaded 2-core machine here).  Check's per-case timeout is 30 s. */
#define WAIT_MS 15000

static const char *plugin(const char *name)
{
	char rel[128];
	snprintf(rel, sizeof rel, "%s.so", name);
	static char b[4][PATH_MAX];
	static int i;
	i = (i + 1) % 4;
	char tmp[PATH_MAX];
	if (strncmp(name, "tests/", 6) == 0)
		return h_path(rel, b[i], sizeof b[i]);
	snprintf(tmp, sizeof tmp, "examples/%s", rel);
	return h_path(tmp, b[i], sizeof b[i]);
}

static const char *jq(void)
{
	const char *e = getenv("JQ");
	return e && *e ? e : "jq";
}

static void teardown(void)
{
	h_cleanup(&H);
	h_cleanup(&H2);
}

#define START(...) H_START(&H, __VA_ARGS__)

/* A line of output (see h_log_find): anywhere in the log, in no order
 * against events. */
#define OUTPUT(needles, ms)                                                   \
	({                                                                    \
		const char *l_ = h_log_find(&H, needles, ms);                 \
		ck_assert_msg(l_ != NULL, "no output line '%s'", needles);    \
		l_;                                                           \
	})

/*
 * Asks `corralctl status --json` until jq's filter holds, up to timeout_ms.
 * Health figures arrive on the workers' schedule, so a status query may
 * need to be repeated; each try is a real round trip to the supervisor.
 */
static int status_until(const char *filter, int timeout_ms, char *out,
                        size_t len)
{
	uint64_t deadline = h_now_ms() + (uint64_t)timeout_ms;
	int rc;
	do {
		rc = h_sh(out, len,
		          "'%s' --rundir '%s' status --json | tee -a /dev/stderr |"
		          " '%s' -e '%s' >/dev/null 2>&1",
		          h_ctl(), H.rundir, jq(), filter);
		if (rc == 0)
			return 0;
		struct timespec ts = {0, 50 * 1000000};
		nanosleep(&ts, NULL);
	} while (h_now_ms() < deadline);
	return rc;
}

#define EVENT(filter, ms) H_EVENT(&H, filter, ms)

/* Waits for n workers to report ready, in any order; pids[slot] = pid. */
static void expect_all_running(int n, pid_t *pids)
{
	for (int i = 0; i < n; i++) {
		const ipc_event *e = EVENT("kind=slot to=running", WAIT_MS);
		ck_assert_int_lt(e->slot, n);
		pids[e->slot] = (pid_t)e->pid;
	}
	for (int i = 0; i < n; i++)
		ck_assert_int_gt(pids[i], 0);
}

static pid_t expect_running(int slot)
{
	char f[64];
	snprintf(f, sizeof f, "kind=slot slot=%d to=running", slot);
	return (pid_t)EVENT(f, WAIT_MS)->pid;
}

/* The pid of the next standby worker that reports ready.  log: no event
 * for this yet (standbys' states are not in the event log). */
static pid_t expect_standby_ready(void)
{
	const char *l = h_expect(&H, "standby pid |: ready", WAIT_MS);
	ck_assert_msg(l != NULL, "no standby worker became ready");
	pid_t pid = h_line_pid(l);
	ck_assert_int_gt(pid, 0);
	return pid;
}

/* After h_wait_exit: exactly n state changes of the whole run match
 * filter.  log: events are not readable once corral has exited (see
 * h_log_event_count). */
#define LOG_EVENTS_EQ(filter, n)                                              \
	do {                                                                  \
		int c_ = h_log_event_count(&H, filter);                       \
		if (c_ != (n))                                                \
			h_dump(&H);                                           \
		ck_assert_msg(c_ == (n), "%d state changes '%s' in the log, " \
		              "want %d", c_, filter, (n));                    \
	} while (0)

/* ---- start, status, stop ---- */

START_TEST(workers_come_up_ready_and_status_matches)
{
	START("-w", "3", "--set", "greeting=bonjour", "--health-interval",
	      "100ms", plugin("hello"));
	pid_t pids[3] = {0};
	expect_all_running(3, pids);
	/* Plugin log lines come through with slot and pid. */
	char want[96], filter[1024], out[8192];
	snprintf(want, sizeof want, "slot 0 pid %d: corral-worker: info: "
	         "bonjour from slot 0", (int)pids[0]);
	OUTPUT(want, WAIT_MS);

	snprintf(filter, sizeof filter,
	              "(.workers|length)==3 and .state==\"running\" and "
	              ".name==\"corral\" and "
	              "([.workers[].state]|unique)==[\"running\"] and "
	              "(.workers|map(.restarts)|add)==0 and "
	              "(.workers|all(.rss_bytes>0 and .uptime_ms>0 and "
	              ".last_exit==null and .metrics.hello_inits==1)) and "
	              "(.workers|map(.slot))==[0,1,2] and "
	              ".workers[0].pid==%d and .workers[1].pid==%d and "
	              ".workers[2].pid==%d and .pid==%d",
	              (int)pids[0], (int)pids[1], (int)pids[2], (int)H.sup);
	ck_assert_msg(status_until(filter, WAIT_MS, out, sizeof out) == 0,
	              "status --json never matched %s", filter);

	int rc = h_sh(out, sizeof out, "'%s' --rundir '%s' status", h_ctl(),
	          H.rundir);
	ck_assert_int_eq(rc, 0);
	ck_assert_ptr_nonnull(strstr(out, "SLOT"));
	ck_assert_ptr_nonnull(strstr(out, "RESTARTS"));
	ck_assert_int_eq(h_event_count(&H, "kind=slot to=running"), 3);

	/* The control and slot sockets are 0600 in a 0700 directory. */
	struct stat st;
	char p[256];
	ck_assert_int_eq(stat(H.rundir, &st), 0);
	ck_assert_int_eq(st.st_mode & 0777, 0700);
	snprintf(p, sizeof p, "%s/control", H.rundir);
	ck_assert_int_eq(stat(p, &st), 0);
	ck_assert_int_eq(st.st_mode & 0777, 0600);
	char mode[64];
	ck_assert_int_eq(h_sh(mode, sizeof mode, "stat -c %%a %s/slot-0.*",
	                      H.rundir), 0);
	ck_assert_str_eq(mode, "600\n");

	kill(H.sup, SIGTERM);
	ck_assert_int_eq(h_wait_exit(&H, WAIT_MS), 0);
	/* log: events are not readable once corral has exited */
	LOG_EVENTS_EQ("kind=slot from=stopping to=stopped "
	              "why~exited with code 0", 3);
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(h_wait_pid_gone(pids[i], WAIT_MS), 0);
	/* Socket files are gone. */
	snprintf(p, sizeof p, "%s/control", H.rundir);
	ck_assert_int_ne(access(p, F_OK), 0);
	ck_assert_int_ne(h_sh(NULL, 0, "ls %s/slot-* >/dev/null 2>&1",
	                      H.rundir), 0);
}
END_TEST

START_TEST(status_without_supervisor_fails_clearly)
{
	char out[1024];
	int rc = h_sh(out, sizeof out,
	              "'%s' --rundir /nonexistent/corral status 2>&1", h_ctl());
	ck_assert_int_eq(rc, 1);
	ck_assert_ptr_nonnull(strstr(out, "no corral answered"));
}
END_TEST

/* ---- restarts ---- */

START_TEST(sigkilled_worker_is_replaced)
{
	START("-w", "2", plugin("hello"));
	pid_t p[2] = {0};
	expect_all_running(2, p);
	pid_t a = p[0];
	char f[128];
	ck_assert_int_eq(kill(a, SIGKILL), 0);
	snprintf(f, sizeof f, "kind=slot slot=0 pid=%d from=running to=exited "
	         "why~killed by SIGKILL", (int)a);
	EVENT(f, WAIT_MS);
	EVENT("kind=slot slot=0 from=exited to=backoff why~restarting in 0 ms",
	      WAIT_MS);
	pid_t b = expect_running(0);
	ck_assert_int_ne(a, b);
	ck_assert_int_eq(kill(b, 0), 0);

	char out[4096], filter[512];
	snprintf(filter, sizeof filter,
	         ".workers[0].restarts==1 and "
	         ".workers[0].last_exit.signal==\"SIGKILL\" and "
	         ".workers[0].pid==%d and .workers[0].state==\"running\" "
	         "and .workers[1].restarts==0", (int)b);
	ck_assert_msg(status_until(filter, WAIT_MS, out, sizeof out) == 0,
	              "status after restart never matched %s", filter);
}
END_TEST

START_TEST(standby_worker_takes_over_with_its_slot)
{
	START("-w", "2", plugin("hello"));
	pid_t p[2] = {0};
	expect_all_running(2, p);
	pid_t spare = expect_standby_ready();
	ck_assert_int_eq(kill(p[1], SIGKILL), 0);
	char want[128];
	snprintf(want, sizeof want, "kind=slot slot=1 pid=%d from=spawning "
	         "to=starting why~adopted standby worker", (int)spare);
	EVENT(want, WAIT_MS);
	ck_assert_int_eq(expect_running(1), spare);
	/* init ran in the adopted process, for the right slot */
	snprintf(want, sizeof want, "slot 1 pid %d: corral-worker: info: "
	         "hello from slot 1", (int)spare);
	OUTPUT(want, WAIT_MS);
	/* ...and a new standby takes its place */
	pid_t next = expect_standby_ready();
	ck_assert_int_ne(next, spare);
	kill(H.sup, SIGTERM);
	ck_assert_int_eq(h_wait_exit(&H, WAIT_MS), 0);
}
END_TEST

START_TEST(cold_restart_without_standby)
{
	START("-w", "1", "--standby", "0", plugin("hello"));
	pid_t a = expect_running(0);
	ck_assert_int_eq(kill(a, SIGKILL), 0);
	pid_t spawned = (pid_t)EVENT("kind=slot slot=0 from=spawning "
	                             "to=starting why~spawned ", WAIT_MS)->pid;
	pid_t b = expect_running(0);
	ck_assert_int_ne(a, b);
	ck_assert_int_eq(b, spawned);
	ck_assert_int_eq(h_event_count(&H, "why~adopted standby"), 0);
	/* log: no event for this yet (standbys are not in the event log) */
	ck_assert_int_eq(h_count(&H, "standby"), 0);
}
END_TEST

START_TEST(crash_loop_fails_slot_with_growing_delays)
{
	START("-w", "1", "--max-restarts", "3", "--restart-window", "60s",
	      "--set", "after=20", plugin("crashy"));
	/* It gives up and exits by itself, so the run is read afterwards.
	 * log: events are not readable once corral has exited */
	ck_assert_int_eq(h_wait_exit(&H, WAIT_MS), 3);
	const char *restart = "kind=slot slot=0 from=exited to=backoff "
	                      "why~restarting in ";
	LOG_EVENTS_EQ(restart, 3);
	uint64_t delays[3];
	for (int i = 0; i < 3; i++) {
		const ipc_event *e = h_log_event_nth(&H, restart, i);
		ck_assert_ptr_nonnull(e);
		delays[i] = strtoull(strstr(e->why, "restarting in ") + 14,
		                     NULL, 10);
	}
	/* 0, then 100 and 200 ms, each +-20% (the policy's choice, not a
	 * measured time) */
	ck_assert_uint_eq(delays[0], 0);
	ck_assert_uint_ge(delays[1], 80);
	ck_assert_uint_le(delays[1], 120);
	ck_assert_uint_ge(delays[2], 160);
	ck_assert_uint_le(delays[2], 240);
	LOG_EVENTS_EQ("kind=slot slot=0 from=exited to=failed "
	              "why~crash loop", 1);
	LOG_EVENTS_EQ("kind=slot to=exited "
	              "why~killed by SIGSEGV", 4);
	LOG_EVENTS_EQ("kind=slot to=spawning", 4);
}
END_TEST

START_TEST(restart_never_leaves_slot_failed)
{
	START("-w", "1", "--restart", "never", "--set", "mode=exit", "--set",
	      "after=20", plugin("crashy"));
	ck_assert_int_eq(h_wait_exit(&H, WAIT_MS), 3);
	/* log: events are not readable once corral has exited */
	LOG_EVENTS_EQ("kind=slot slot=0 to=exited "
	              "why~exited with code 1", 1);
	LOG_EVENTS_EQ("kind=slot slot=0 from=exited to=failed "
	              "why~restart=never", 1);
	LOG_EVENTS_EQ("kind=slot to=spawning", 1);
}
END_TEST

/* The bug that made the supervisor reshape necessary: a slot whose spawn
 * fails synchronously counted slots that were never started as "at rest",
 * so corral tore itself down and then ran slot 1 unsupervised.  Now slot
 * 0 fails on its own and slot 1 stays supervised. */
START_TEST(failed_spawn_leaves_the_other_slots_supervised)
{
	char path[256];
	ck_assert_int_eq(h_prepare(&H), 0);
	ck_assert_int_eq(mkdir(H.rundir, 0700), 0);
	/* A directory where slot 0's first socket goes: its listen fails. */
	snprintf(path, sizeof path, "%s/slot-0.0", H.rundir);
	ck_assert_int_eq(mkdir(path, 0700), 0);
	START("-w", "2", "--restart", "never", "--standby", "0",
	      plugin("hello"));
	EVENT("kind=slot slot=0 from=exited to=failed", WAIT_MS);
	H.evpos = 0; /* slot 1 may have been running before slot 0 failed */
	pid_t p1 = expect_running(1);
	char out[8192];
	ck_assert_msg(status_until(".state==\"running\" and "
	                           ".workers[0].state==\"failed\" and "
	                           ".workers[1].state==\"running\"",
	                           WAIT_MS, out, sizeof out) == 0,
	              "slot 1 not supervised");
	/* Supervised: its death is seen, and with nothing left corral
	 * ends with "every slot failed" (its last events still reach a
	 * reader waiting for them: the control socket lingers for it). */
	ck_assert_int_eq(kill(p1, SIGKILL), 0);
	char f[128];
	snprintf(f, sizeof f, "kind=slot slot=1 pid=%d from=running to=exited "
	         "why~killed by SIGKILL", (int)p1);
	EVENT(f, WAIT_MS);
	EVENT("kind=slot slot=1 from=exited to=failed", WAIT_MS);
	ck_assert_int_eq(h_wait_exit(&H, WAIT_MS), 3);
	ck_assert_int_eq(h_wait_pid_gone(p1, WAIT_MS), 0);
	rmdir(path);
}
END_TEST

/*
 * The worker reports health every 100 ms and blocks its loop after 1200
 * ms, longer than heartbeat_timeout (1 s).  The contract, both halves,
 * without upper time bounds:
 *   - reports keep it alive: it lives to print that it blocks, which it
 *     could not if its reports did not move the deadline on;
 *   - silence kills it, as hung, and never before heartbeat_timeout
 *     (it has been up longer than that when it dies).
 * How soon after its deadline it is killed is not asserted; how soon it
 * is replaced, bench/restart measures.
 */
START_TEST(hung_worker_is_killed_after_heartbeat_timeout)
{
	START("-w", "1", "--heartbeat-timeout", "1s", "--health-interval",
	      "100ms", "--set", "after=1200", plugin("hang"));
	pid_t w = expect_running(0);
	char f[160];
	snprintf(f, sizeof f, "kind=slot slot=0 pid=%d from=running to=exited "
	         "why~killed by SIGKILL (hung: no health report for "
	         "1000 ms) after ", (int)w);
	const ipc_event *e = EVENT(f, WAIT_MS);
	const char *up = strstr(e->why, ") after ");
	ck_assert_ptr_nonnull(up);
	ck_assert_uint_ge(strtoull(up + 8, NULL, 10), 1000);
	snprintf(f, sizeof f, "slot 0 pid %d: |blocking the event loop now",
	         (int)w);
	OUTPUT(f, WAIT_MS);
	EVENT("kind=slot slot=0 from=exited to=backoff why~restarting in",
	      WAIT_MS);
	ck_assert_int_ne(expect_running(0), w);
}
END_TEST

START_TEST(leaking_worker_shows_growing_rss)
{
	START("-w", "1", "--health-interval", "100ms", "--set",
	      "rate=20000000", plugin("leak"));
	expect_running(0);
	char out[4096];
	ck_assert_msg(status_until(".workers[0].rss_bytes > 8000000 and "
	                           ".workers[0].metrics.leaked_bytes > 4000000",
	                           WAIT_MS, out, sizeof out) == 0,
	              "RSS of the leaking worker never grew");
}
END_TEST

/* Names of pid's threads, concatenated, one per line. */
static void thread_names(pid_t pid, char *out, size_t len)
{
	h_sh(out, len, "cat /proc/%d/task/*/comm", (int)pid);
}

START_TEST(fib_runs_in_the_pool_and_reports_it)
{
	START("-w", "1", "--threads", "2", "--health-interval", "100ms",
	      "--set", "n=20", "--set", "rate=400", plugin("fib"));
	pid_t w = expect_running(0);
	char out[4096];
	ck_assert_msg(status_until(".workers[0].pool.completed > 50 and "
	                           ".workers[0].pool.submitted >= "
	                           ".workers[0].pool.completed and "
	                           ".workers[0].metrics.fib_per_s > 0 and "
	                           ".workers[0].metrics.fib_last == 6765 and "
	                           ".workers[0].lag_p99_us < 100000",
	                           WAIT_MS, out, sizeof out) == 0,
	              "pool figures never showed up in status");
	thread_names(w, out, sizeof out);
	ck_assert_msg(strstr(out, "corral-pool-1") && strstr(out, "corral-pool-2"),
	              "pool threads not named: %s", out);
	kill(H.sup, SIGTERM);
	ck_assert_int_eq(h_wait_exit(&H, WAIT_MS), 0);
	/* The plugin's stop hook ran (its output; the log is complete now). */
	char want[96];
	snprintf(want, sizeof want, "slot 0 pid %d: corral-worker: info: "
	         "stopping after ", (int)w);
	OUTPUT(want, 0);
}
END_TEST

START_TEST(pool_backpressure_reaches_the_plugin)
{
	/* 1 thread, 8 queue slots, far more work than it can do. */
	START("-w", "1", "--threads", "1", "--max-queue", "8",
	      "--health-interval", "100ms", "--pool-drain", "cancel",
	      "--set", "n=27", "--set", "rate=5000", plugin("fib"));
	expect_running(0);
	char out[4096];
	ck_assert_msg(status_until(".workers[0].pool.rejected > 0 and "
	                           ".workers[0].metrics.fib_busy > 0 and "
	                           ".workers[0].pool.queued.normal <= 8",
	                           WAIT_MS, out, sizeof out) == 0,
	              "no EBUSY seen");
	/* Cancel mode: queued work is dropped and the worker stops cleanly
	 * (exit 0: nobody had to be killed at shutdown_timeout).  How fast
	 * a stop is, bench/shutdown measures. */
	kill(H.sup, SIGTERM);
	ck_assert_int_eq(h_wait_exit(&H, WAIT_MS), 0);
}
END_TEST

/* ---- jobs ---- */

/* One blocking client call per thread, each on its own REQ socket, so
 * that n jobs are in flight at once. */
typedef struct call_slot {
	char url[256];
	char payload[64];
	uint64_t timeout_ms;
	int ok;          /* 1 ok, 0 error reply, -1 no reply */
	char err[32];
	char reply[64];
	pthread_t th;
} call_slot;

static void *call_thread(void *arg)
{
	call_slot *c = arg;
	nng_socket s;
	nng_msg *m = NULL;
	ipc_frame f;
	ipc_result r;
	c->ok = -1;
	if (nng_req0_open(&s) != 0)
		return NULL;
	nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, 20000);
	/* No resend: one request must be one job. */
	nng_socket_set_ms(s, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE);
	ipc_call call = {.payload = (const uint8_t *)c->payload,
	                 .len = (uint32_t)strlen(c->payload),
	                 .timeout_ms = c->timeout_ms, .prio = 2};
	if (nng_dial(s, c->url, NULL, 0) == 0 && ipc_pack_call(&m, &call) == 0 &&
	    nng_sendmsg(s, m, 0) == 0 && nng_recvmsg(s, &m, 0) == 0 &&
	    ipc_decode_msg(m, IPC_MAX_CTL_FRAME, &f) == 0) {
		if (ipc_unpack_result(&f, &r) == 0) {
			c->ok = r.ok;
			snprintf(c->err, sizeof c->err, "%s", r.err);
			snprintf(c->reply, sizeof c->reply, "%.*s",
			         (int)(r.len < 63 ? r.len : 63),
			         (const char *)r.data);
		}
		ipc_frame_fini(&f);
	}
	nng_close(s);
	return NULL;
}

static void calls_start(call_slot *c, int n, const char *prefix,
                        uint64_t timeout_ms)
{
	for (int i = 0; i < n; i++) {
		snprintf(c[i].url, sizeof c[i].url, "ipc://%s/jobs", H.rundir);
		snprintf(c[i].payload, sizeof c[i].payload, "%s%d", prefix, i);
		c[i].timeout_ms = timeout_ms;
		ck_assert_int_eq(pthread_create(&c[i].th, NULL, call_thread,
		                                &c[i]), 0);
	}
}

static void calls_join(call_slot *c, int n)
{
	for (int i = 0; i < n; i++)
		pthread_join(c[i].th, NULL);
}

START_TEST(echo_jobs_round_trip)
{
	START("-w", "2", plugin("echo"));
	pid_t p[2];
	expect_all_running(2, p);
	char out[256];
	ck_assert_int_eq(h_sh(out, sizeof out, "'%s' --rundir '%s' call hello",
	                      h_ctl(), H.rundir), 0);
	ck_assert_str_eq(out, "hello");
	static call_slot c[100];
	calls_start(c, 100, "job-", 5000);
	calls_join(c, 100);
	for (int i = 0; i < 100; i++) {
		char want[64];
		snprintf(want, sizeof want, "job-%d", i);
		ck_assert_int_eq(c[i].ok, 1);
		ck_assert_str_eq(c[i].reply, want);
	}
	ck_assert_int_eq(status_until(".jobs.ok == 101 and .jobs.failed == 0 "
	                              "and .jobs.inflight == 0",
	                              WAIT_MS, out, sizeof out), 0);
}
END_TEST

START_TEST(jobs_of_a_killed_worker_are_answered_by_others)
{
	START("-w", "2", "--standby", "0", "--set", "delay=1000",
	      plugin("sleepy"));
	pid_t p[2];
	expect_all_running(2, p);
	static call_slot c[50];
	calls_start(c, 50, "s", 10000);
	char out[4096];
	ck_assert_int_eq(status_until(".jobs.inflight == 50 and "
	                              ".workers[0].jobs > 0",
	                              WAIT_MS, out, sizeof out), 0);
	ck_assert_int_eq(kill(p[0], SIGKILL), 0);
	calls_join(c, 50);
	for (int i = 0; i < 50; i++)
		ck_assert_msg(c[i].ok == 1, "job %d: %d %s", i, c[i].ok,
		              c[i].err);
	ck_assert_int_eq(status_until(".jobs.ok == 50 and .jobs.failed == 0 "
	                              "and .jobs.redispatched > 0",
	                              WAIT_MS, out, sizeof out), 0);
}
END_TEST

START_TEST(poison_job_is_quarantined_after_max_attempts)
{
	START("-w", "2", "--max-attempts", "3", "--set", "after=0",
	      plugin("crashy"));
	pid_t p[2];
	expect_all_running(2, p);
	static call_slot c[11];
	snprintf(c[10].url, sizeof c[10].url, "ipc://%s/jobs", H.rundir);
	snprintf(c[10].payload, sizeof c[10].payload, "crash");
	c[10].timeout_ms = 15000;
	ck_assert_int_eq(pthread_create(&c[10].th, NULL, call_thread, &c[10]),
	                 0);
	pthread_join(c[10].th, NULL);
	ck_assert_int_eq(c[10].ok, 0);
	ck_assert_str_eq(c[10].err, "poison");
	/* The verdict comes as the third death is settled, after that
	 * death's event: all three are in the event log now. */
	ck_assert_int_eq(h_event_count(&H, "kind=slot to=exited "
	                               "why~killed by SIGSEGV"), 3);
	/* Others are unaffected, and no slot ends FAILED over one job. */
	calls_start(c, 10, "fine", 5000);
	calls_join(c, 10);
	for (int i = 0; i < 10; i++)
		ck_assert_int_eq(c[i].ok, 1);
	char out[4096];
	ck_assert_int_eq(status_until(".jobs.poison == 1 and "
	                              "([.workers[].state]|unique) == "
	                              "[\"running\"]", WAIT_MS, out,
	                              sizeof out),
	                 0);
	/* The payload is kept for reproduction. */
	ck_assert_int_eq(h_sh(out, sizeof out, "cat %s/poison/*.bin",
	                      H.rundir), 0);
	ck_assert_str_eq(out, "crash");
}
END_TEST

/*
 * "At once" means without waiting for room: the worker is SIGSTOPped
 * while the queue is full, so nothing can leave it, and the extra job is
 * answered "busy" all the same (a broker that waited for room would never
 * answer).  How fast is not asserted (no bench/ program measures the busy
 * answer yet).  Before, this asserted an answer within 300 ms, and needed
 * it before the first job's 400 ms ran out: a loaded machine could miss
 * either.
 */
START_TEST(full_queue_answers_busy_at_once)
{
	START("-w", "1", "--standby", "0", "--max-inflight", "1",
	      "--queue-limit", "2", "--heartbeat-timeout", "60s", "--set",
	      "delay=400", plugin("sleepy"));
	pid_t w = expect_running(0);
	ck_assert_int_eq(kill(w, SIGSTOP), 0);
	static call_slot c[3], extra;
	calls_start(c, 3, "q", 15000);
	char out[4096];
	ck_assert_int_eq(status_until(".jobs.inflight == 1 and .jobs.queued == 2",
	                              WAIT_MS, out, sizeof out), 0);
	snprintf(extra.url, sizeof extra.url, "ipc://%s/jobs", H.rundir);
	snprintf(extra.payload, sizeof extra.payload, "one too many");
	call_thread(&extra);
	ck_assert_int_eq(extra.ok, 0);
	ck_assert_str_eq(extra.err, "busy");
	ck_assert_int_eq(status_until(".jobs.busy == 1 and .jobs.ok == 0 and "
	                              ".jobs.inflight == 1 and "
	                              ".jobs.queued == 2",
	                              WAIT_MS, out, sizeof out), 0);
	ck_assert_int_eq(kill(w, SIGCONT), 0);
	calls_join(c, 3);
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(c[i].ok, 1);
}
END_TEST

/* VmRSS and VmHWM (peak) of pid in bytes, from /proc/PID/status. */
static void proc_rss(pid_t pid, uint64_t *rss, uint64_t *hwm)
{
	char path[64], line[256];
	snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
	FILE *f = fopen(path, "r");
	ck_assert_msg(f != NULL, "%s: %s", path, strerror(errno));
	unsigned long long kb;
	*rss = *hwm = 0;
	while (fgets(line, sizeof line, f)) {
		if (sscanf(line, "VmRSS: %llu kB", &kb) == 1)
			*rss = kb * 1024;
		else if (sscanf(line, "VmHWM: %llu kB", &kb) == 1)
			*hwm = kb * 1024;
	}
	fclose(f);
	ck_assert_msg(*rss && *hwm, "no VmRSS/VmHWM in %s", path);
}

/*
 * A burst of 200 MiB of 64 KiB payloads (3200 jobs in 3.2 s) at a slow
 * plugin (one worker, 64 jobs in flight, 250 ms each: 256 jobs/s) fills
 * the queue to queue_limit_bytes (32 MiB): from then on the supervisor
 * answers "busy" at once, and every job it accepted is answered -- nothing
 * lost, nothing twice, corral-load's counts and the supervisor's agree.
 * Once the queue has drained, its RSS goes back to within 10 MiB of what
 * it was before the burst (the peak shows it held the burst first).
 *
 * Under ASan the RSS half is skipped: its allocator keeps freed memory in
 * a quarantine (256 MiB by default) on purpose, so RSS says nothing of
 * what corral gives back.
 */
START_TEST(burst_past_queue_limit_bytes_is_busy_and_memory_comes_back)
{
	START("-w", "1", "--standby", "0", "--max-inflight", "64",
	      "--queue-limit-bytes", "32M", "--job-timeout", "60s",
	      "--set", "delay=250", plugin("sleepy"));
	expect_running(0);
	char out[8192], bin[PATH_MAX];
	/* Warm: the client path has been taken once before the baseline. */
	ck_assert_int_eq(h_sh(out, sizeof out, "'%s' --rundir '%s' call hi",
	                      h_ctl(), H.rundir), 0);
	uint64_t rss0, hwm0, rss, hwm;
	proc_rss(H.sup, &rss0, &hwm0);
	int rc = h_sh(out, sizeof out,
	              "'%s' --rundir '%s' --rate 1000 --duration 3200ms "
	              "--payload 65536 --concurrency 16384 --job-timeout 60s "
	              "--json --fail-on-loss >%s/burst.json; r=$?; "
	              "cat %s/burst.json >&2; [ $r = 0 ] && '%s' -e "
	              "'.lost == 0 and .duplicates == 0 and .sent == 3200 and "
	              ".failed.busy > 0 and .ok + .failed.busy == .sent and "
	              ".ok > 0' %s/burst.json >/dev/null && '%s' .ok "
	              "%s/burst.json",
	              h_path("corral-load", bin, sizeof bin), H.rundir, H.dir,
	              H.dir, jq(), H.dir, jq(), H.dir);
	ck_assert_msg(rc == 0, "burst lost jobs or got no busy: %s", out);
	long load_ok = atol(out);
	/* The supervisor's books agree: every job it accepted was answered
	 * ok (the burst's and the warm-up call), the refused ones counted
	 * as busy, nothing left. */
	char filter[512];
	snprintf(filter, sizeof filter, ".jobs.queued == 0 and "
	         ".jobs.inflight == 0 and .jobs.busy > 0 and "
	         ".jobs.failed == 0 and .jobs.accepted == %ld and "
	         ".jobs.ok == %ld", load_ok + 1, load_ok + 1);
	ck_assert_int_eq(status_until(filter, WAIT_MS, out, sizeof out), 0);
#ifndef __SANITIZE_ADDRESS__
	proc_rss(H.sup, &rss, &hwm);
	ck_assert_msg(hwm >= rss0 + (24u << 20), "the burst never held "
	              "memory: RSS %llu, peak %llu", (unsigned long long)rss0,
	              (unsigned long long)hwm);
	/* Memory comes back once the queue has drained: wait for it. */
	uint64_t deadline = h_now_ms() + WAIT_MS;
	while ((proc_rss(H.sup, &rss, &hwm), rss > rss0 + (10u << 20)) &&
	       h_now_ms() < deadline) {
		struct timespec ts = {0, 100 * 1000000};
		nanosleep(&ts, NULL);
	}
	fprintf(stderr, "supervisor RSS %.1f MiB before the burst, %.1f at "
	        "its peak, %.1f after it drained\n", (double)rss0 / 1048576,
	        (double)hwm / 1048576, (double)rss / 1048576);
	ck_assert_msg(rss <= rss0 + (10u << 20), "RSS %.1f MiB before the "
	              "burst, %.1f at its peak, %.1f after it drained",
	              (double)rss0 / 1048576, (double)hwm / 1048576,
	              (double)rss / 1048576);
#endif
}
END_TEST

START_TEST(job_timeout_is_answered)
{
	START("-w", "1", "--set", "delay=5000", plugin("sleepy"));
	expect_running(0);
	char out[512];
	/* Exit 3 is a job answered with an error (no answer at all would be
	 * 1): the supervisor's, as "timeout", before the job's own 5 s. */
	int rc = h_sh(out, sizeof out, "'%s' --rundir '%s' --timeout 300ms "
	              "call slow 2>&1", h_ctl(), H.rundir);
	ck_assert_int_eq(rc, 3);
	ck_assert_msg(strstr(out, "timeout") != NULL, "got: %s", out);
	char sout[4096];
	ck_assert_int_eq(status_until(".jobs.timeouts == 1 and .jobs.ok == 0",
	                              WAIT_MS, sout, sizeof sout), 0);
}
END_TEST

START_TEST(sigterm_answers_every_accepted_job)
{
	START("-w", "2", "--set", "delay=300", plugin("sleepy"));
	pid_t p[2];
	expect_all_running(2, p);
	static call_slot c[40];
	calls_start(c, 40, "t", 10000);
	char out[4096];
	ck_assert_int_eq(status_until(".jobs.accepted == 40", WAIT_MS, out,
	                              sizeof out), 0);
	kill(H.sup, SIGTERM);
	calls_join(c, 40);
	for (int i = 0; i < 40; i++)
		ck_assert_msg(c[i].ok == 1, "job %d: %s", i, c[i].err);
	ck_assert_int_eq(h_wait_exit(&H, WAIT_MS), 0);
}
END_TEST

/* A client in another language, from the README's protocol alone: Python
 * builds the request with msgpack, nngcat sends it. */
START_TEST(external_client_gets_a_correct_reply)
{
	START("-w", "1", plugin("echo"));
	expect_running(0);
	char out[512];
	int rc = h_sh(out, sizeof out,
	              "cd '%s' && /usr/bin/python3 -c 'import msgpack,sys; "
	              "sys.stdout.buffer.write(msgpack.packb([1, 32, "
	              "{\"p\": b\"from python\"}], use_bin_type=True))' "
	              "> req.bin && nngcat --req --dial ipc://%s/jobs "
	              "--file req.bin --raw --recv-timeout 15 > rep.bin && "
	              "/usr/bin/python3 -c 'import msgpack; r = msgpack.unpackb("
	              "open(\"rep.bin\", \"rb\").read(), raw=False); "
	              "assert r[:2] == [1, 33] and r[2][\"ok\"] and "
	              "r[2][\"p\"] == b\"from python\", r; print(\"good\")'",
	              H.dir, H.rundir);
	ck_assert_msg(rc == 0, "external client failed (%d): %s", rc, out);
	ck_assert_str_eq(out, "good\n");
}
END_TEST

static pthread_mutex_t two_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t two_cv = PTHREAD_COND_INITIALIZER;
static int two_ok, two_failed;

static void two_done(void *arg, const corral_result *r)
{
	(void)arg;
	pthread_mutex_lock(&two_mu);
	if (r->status == 0)
		two_ok++;
	else
		two_failed++;
	pthread_cond_signal(&two_cv);
	pthread_mutex_unlock(&two_mu);
}

/* Two supervisors on two TCP ports; a client given both URLs; one whole
 * supervisor SIGKILLed while it holds jobs: nng's REQ moves them to the
 * other, and every job is answered.  Each binds port 0 (the kernel picks
 * a free one) and the test reads back which: a fixed or guessed port can
 * be taken by anything else on the machine. */
START_TEST(jobs_move_to_the_other_supervisor)
{
	char both[140];
	START("-w", "1", "--jobs", "tcp://127.0.0.1:0", "--set", "delay=600",
	      plugin("sleepy"));
	expect_running(0);
	const char *a2[] = {"-w", "1", "--jobs", "tcp://127.0.0.1:0", "--set",
	                    "delay=600", plugin("sleepy"), NULL};
	ck_assert_int_eq(h_start(&H2, a2), 0);
	ck_assert_ptr_nonnull(h_event(&H2, "kind=slot to=running", WAIT_MS));
	/* Both have bound their jobs socket before starting any worker. */
	int port1 = h_listen_port(H.sup), port2 = h_listen_port(H2.sup);
	ck_assert_int_gt(port1, 0);
	ck_assert_int_gt(port2, 0);
	ck_assert_int_ne(port1, port2);
	snprintf(both, sizeof both, "tcp://127.0.0.1:%d,tcp://127.0.0.1:%d",
	         port1, port2);

	corral_client *c;
	ck_assert_int_eq(corral_client_open(&c, both), 0);
	/* The client connects in the background: send rounds of jobs until
	 * the first supervisor holds some. */
	char out[4096];
	int sent = 0, held = 0;
	two_ok = two_failed = 0;
	uint64_t deadline = h_now_ms() + WAIT_MS;
	while (!held && h_now_ms() < deadline) {
		for (int i = 0; i < 10; i++, sent++)
			ck_assert_int_eq(corral_client_call_async(
			                     c, "j", 1, 10000, 2, two_done, NULL),
			                 0);
		held = status_until(".jobs.inflight > 0", 300, out,
		                    sizeof out) == 0;
	}
	ck_assert_msg(held, "the first supervisor never got a job");
	kill(H.sup, SIGKILL);
	pthread_mutex_lock(&two_mu);
	while (two_ok + two_failed < sent) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += 15;
		if (pthread_cond_timedwait(&two_cv, &two_mu, &ts) != 0)
			break;
	}
	int ok = two_ok, failed = two_failed;
	pthread_mutex_unlock(&two_mu);
	corral_client_close(c);
	ck_assert_msg(ok == sent, "%d ok, %d failed, %d unanswered", ok, failed,
	              sent - ok - failed);
}
END_TEST

/* A batch's results, one per job, checked against its payload. */
typedef struct batch_job {
	char payload[16];
	int status;      /* 1 until answered */
	char reply[16];
} batch_job;

static void batch_done(void *arg, const corral_result *r)
{
	batch_job *j = arg;
	pthread_mutex_lock(&two_mu);
	j->status = r->status;
	if (r->status == 0)
		snprintf(j->reply, sizeof j->reply, "%.*s",
		         (int)(r->len < 15 ? r->len : 15), (const char *)r->data);
	two_ok++;
	pthread_cond_signal(&two_cv);
	pthread_mutex_unlock(&two_mu);
}

/* 100 jobs sent as batches (CALLS of 64 + 36) through the client library;
 * a worker holding some is SIGKILLed: every job still gets its own,
 * correct answer. */
START_TEST(batched_jobs_survive_a_killed_worker)
{
	START("-w", "2", "--standby", "0", "--set", "delay=800",
	      plugin("sleepy"));
	pid_t p[2];
	expect_all_running(2, p);
	char url[4200];
	snprintf(url, sizeof url, "ipc://%s/jobs", H.rundir);
	corral_client *c;
	ck_assert_int_eq(corral_client_open(&c, url), 0);
	static batch_job jobs[100];
	corral_call calls[100];
	for (int i = 0; i < 100; i++) {
		snprintf(jobs[i].payload, sizeof jobs[i].payload, "b%d", i);
		jobs[i].status = 1;
		calls[i] = (corral_call){.payload = jobs[i].payload,
		                         .len = strlen(jobs[i].payload),
		                         .arg = &jobs[i]};
	}
	two_ok = 0;
	ck_assert_int_eq(corral_client_call_batch_async(c, calls, 100, 10000, 2,
	                                                batch_done), 0);
	char out[4096];
	ck_assert_int_eq(status_until(".jobs.inflight == 100 and "
	                              ".workers[0].jobs > 0",
	                              WAIT_MS, out, sizeof out), 0);
	ck_assert_int_eq(kill(p[0], SIGKILL), 0);
	pthread_mutex_lock(&two_mu);
	while (two_ok < 100) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += 15;
		if (pthread_cond_timedwait(&two_cv, &two_mu, &ts) != 0)
			break;
	}
	int answered = two_ok;
	pthread_mutex_unlock(&two_mu);
	corral_client_close(c);
	ck_assert_int_eq(answered, 100);
	for (int i = 0; i < 100; i++) {
		ck_assert_msg(jobs[i].status == 0, "job %d: %s", i,
		              corral_strerror(jobs[i].status));
		ck_assert_str_eq(jobs[i].reply, jobs[i].payload);
	}
	ck_assert_int_eq(status_until(".jobs.ok == 100 and .jobs.failed == 0 "
	                              "and .jobs.redispatched > 0",
	                              WAIT_MS, out, sizeof out), 0);
}
END_TEST

START_TEST(chaos_under_load_loses_nothing)
{
	START("-w", "2", "--set", "delay=20", plugin("sleepy"));
	pid_t p[2];
	expect_all_running(2, p);
	char out[8192], bin[PATH_MAX];
	/* 3 s at 300 jobs/s, a worker SIGKILLed twice a second. */
	int rc = h_sh(out, sizeof out,
	              "'%s' --rundir '%s' --rate 300 --duration 3s "
	              "--chaos-kill 2 --chaos-signal KILL --job-timeout 5s "
	              "--csv %s/run.csv --svg %s/run.svg "
	              "--json --fail-on-loss | '%s' -e '.lost == 0 and "
	              ".duplicates == 0 and .ok == .sent and .sent > 800 and "
	              ".restarts >= 3 and .restart_latency_ms.p50 > 0'",
	              h_path("corral-load", bin, sizeof bin), H.rundir, H.dir,
	              H.dir, jq());
	ck_assert_msg(rc == 0, "chaos run lost jobs or did not kill: %s", out);
	/* The time series: a CSV row per 100 ms, an SVG with the kills. */
	ck_assert_int_eq(h_sh(out, sizeof out, "head -1 %s/run.csv; "
	                      "awk -F, 'NR > 1 { k += $7 } END { print (k >= 3) }' "
	                      "%s/run.csv; grep -c '<line' %s/run.svg", H.dir,
	                      H.dir, H.dir), 0);
	static const char want[] =
	    "t_ms,sent,ok,failed,throughput,p99_us,kills\n1\n";
	ck_assert_msg(strncmp(out, want, sizeof want - 1) == 0 &&
	              atoi(out + sizeof want - 1) >= 3, "csv/svg: %s", out);
	ck_assert_int_eq(status_until(".jobs.redispatched >= 0 and "
	                              ".jobs.failed == 0", WAIT_MS, out,
	                              sizeof out), 0);
}
END_TEST

/* ---- plugins that cannot start ---- */

/* Both slots fail for good at once, and corral exits by itself: the run
 * is read afterwards.  reason is the worker's own output. */
static void expect_fatal_no_respawn(const char *plug, const char *reason)
{
	START("-w", "2", plug);
	ck_assert_int_eq(h_wait_exit(&H, WAIT_MS), 3);
	OUTPUT(reason, 0);
	/* log: events are not readable once corral has exited */
	LOG_EVENTS_EQ("kind=slot from=exited to=failed "
	              "why~fatal", 2);
	LOG_EVENTS_EQ("kind=slot to=spawning", 2);
	LOG_EVENTS_EQ("kind=slot to=exited "
	              "why~exited with code 78", 2);
	/* ...and no standby loaded the plugin either.  log: no event for
	 * this yet (standbys are not in the event log) */
	ck_assert_int_eq(h_count(&H, "standby pid"), 0);
}

START_TEST(bad_abi_is_refused_without_respawn)
{
	expect_fatal_no_respawn(plugin("badabi"),
	                        "has abi_version 99, this worker speaks 1");
	ck_assert_ptr_null(strstr(H.log, "init must never run"));
}
END_TEST

START_TEST(missing_symbol_is_refused_without_respawn)
{
	expect_fatal_no_respawn(plugin("tests/nosym"),
	                        "does not export the symbol corral_plugin");
}
END_TEST

START_TEST(failed_init_is_refused_without_respawn)
{
	expect_fatal_no_respawn(plugin("tests/initfail"),
	                        "init failed: configuration error");
}
END_TEST

/* ---- shutdown ---- */

START_TEST(sigterm_waits_for_busy_workers)
{
	START("-w", "3", "--set", "stop_delay=400", "--shutdown-timeout", "5s",
	      plugin("hello"));
	pid_t p[3];
	expect_all_running(3, p);
	uint64_t t0 = h_now_ms();
	kill(H.sup, SIGTERM);
	/* Exit 0: every worker stopped by itself, none was killed at the
	 * 5 s deadline.  How long a stop takes, bench/shutdown measures. */
	ck_assert_int_eq(h_wait_exit(&H, WAIT_MS), 0);
	uint64_t took = h_now_ms() - t0;
	ck_assert_uint_ge(took, 390); /* they really finished their work */
	/* Each worker's own output: its work finished, then fini ran. */
	for (int i = 0; i < 3; i++) {
		char want[128];
		snprintf(want, sizeof want, "slot %d pid %d: corral-worker: "
		         "info: in-flight work finished", i, (int)p[i]);
		OUTPUT(want, 0);
		snprintf(want, sizeof want, "slot %d pid %d: corral-worker: "
		         "info: goodbye", i, (int)p[i]);
		OUTPUT(want, 0);
	}
	ck_assert_int_eq(h_count(&H, "in-flight work finished"), 3);
	ck_assert_int_eq(h_count(&H, "goodbye"), 3);
	/* log: events are not readable once corral has exited */
	LOG_EVENTS_EQ("kind=slot from=stopping to=stopped "
	              "why~exited with code 0", 3);
}
END_TEST

START_TEST(worker_ignoring_stop_is_killed_at_deadline)
{
	START("-w", "1", "--shutdown-timeout", "500ms", "--heartbeat-timeout",
	      "60s", "--set", "after=50", plugin("hang"));
	pid_t w = expect_running(0);
	/* The plugin's own output is the only sign that its loop is
	 * blocked (and so that it will ignore STOP).  log: no event for
	 * this yet */
	char want[96];
	snprintf(want, sizeof want, "slot 0 pid %d: |blocking the event loop "
	         "now", (int)w);
	OUTPUT(want, WAIT_MS);
	uint64_t t0 = h_now_ms();
	kill(H.sup, SIGTERM);
	ck_assert_int_eq(h_wait_exit(&H, WAIT_MS), 4);
	/* Not killed before its grace period was over; how soon after,
	 * bench/shutdown's territory, not asserted. */
	ck_assert_uint_ge(h_now_ms() - t0, 450);
	/* log: events are not readable once corral has exited */
	char f[160];
	snprintf(f, sizeof f, "kind=slot slot=0 pid=%d from=stopping "
	         "to=stopped why~killed by SIGKILL (did not stop "
	         "within 500 ms)", (int)w);
	LOG_EVENTS_EQ(f, 1);
}
END_TEST

START_TEST(second_signal_skips_the_grace_period)
{
	START("-w", "2", "--set", "stop_delay=20000", "--shutdown-timeout",
	      "30s", plugin("hello"));
	pid_t p[2];
	expect_all_running(2, p);
	kill(H.sup, SIGINT);
	/* The first signal is acted on: both workers are told to stop
	 * and have 30 s, their work 20 s. */
	EVENT("kind=supervisor from=running to=draining why~SIGINT", WAIT_MS);
	EVENT("kind=slot from=running to=stopping why~STOP sent", WAIT_MS);
	EVENT("kind=slot from=running to=stopping why~STOP sent", WAIT_MS);
	kill(H.sup, SIGTERM);
	/* Exit 4 (workers killed) long before their 20 s of work was done:
	 * the grace period was skipped.  How fast, not asserted. */
	ck_assert_int_eq(h_wait_exit(&H, WAIT_MS), 4);
	/* log: events are not readable once corral has exited */
	for (int i = 0; i < 2; i++) {
		char f[160];
		snprintf(f, sizeof f, "kind=slot slot=%d pid=%d from=stopping "
		         "to=stopped why~killed by SIGKILL (second "
		         "shutdown signal)", i, (int)p[i]);
		LOG_EVENTS_EQ(f, 1);
	}
}
END_TEST

/* Workers die with their supervisor (PR_SET_PDEATHSIG(SIGKILL)): the
 * harness, their subreaper, reaps them.  That it is immediate is the
 * kernel's promise, not asserted here (a loaded machine can take its
 * time to schedule the dying); no bench/ program measures it yet. */
START_TEST(supervisor_death_takes_its_workers)
{
	START("-w", "3", plugin("hello"));
	pid_t p[3];
	expect_all_running(3, p);
	kill(H.sup, SIGKILL);
	ck_assert_int_eq(h_wait_exit(&H, WAIT_MS), 128 + SIGKILL);
	for (int i = 0; i < 3; i++)
		ck_assert_msg(h_wait_pid_gone(p[i], WAIT_MS) == 0,
		              "worker %d outlived its supervisor", (int)p[i]);
}
END_TEST

/* ---- bad input ---- */

START_TEST(config_error_names_file_and_line_and_starts_nothing)
{
	char dir[] = "/tmp/corral-cfg-XXXXXX", path[128], out[4096];
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof path, "%s/bad.ini", dir);
	FILE *f = fopen(path, "w");
	fputs("[corral]\nworkers = 2\nshutdown_timout = 5s\n", f);
	fclose(f);
	char bin[PATH_MAX];
	const char *e = getenv("CORRAL_BIN");
	int rc = h_sh(out, sizeof out,
	              "'%s' --rundir '%s/run' -c '%s' '%s' 2>&1",
	              e && *e ? e : h_path("corral", bin, sizeof bin), dir,
	              path, plugin("hello"));
	ck_assert_int_eq(rc, 2);
	char want[256];
	snprintf(want, sizeof want, "%s:3: unknown key 'shutdown_timout'", path);
	ck_assert_msg(strstr(out, want) != NULL, "got: %s", out);
	ck_assert_ptr_null(strstr(out, "spawn"));
	snprintf(want, sizeof want, "%s/run", dir);
	ck_assert_int_ne(access(want, F_OK), 0); /* nothing created */
	rc = h_sh(out, sizeof out, "'%s' --workers lots '%s' 2>&1",
	          e && *e ? e : h_path("corral", bin, sizeof bin),
	          plugin("hello"));
	ck_assert_int_eq(rc, 2);
	ck_assert_ptr_nonnull(strstr(out, "bad value 'lots' for workers"));
	unlink(path);
	rmdir(dir);
}
END_TEST

START_TEST(symlinked_rundir_is_refused)
{
	char dir[] = "/tmp/corral-sym-XXXXXX", link[128], target[128],
	     out[2048], bin[PATH_MAX];
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(target, sizeof target, "%s/real", dir);
	snprintf(link, sizeof link, "%s/run", dir);
	ck_assert_int_eq(mkdir(target, 0700), 0);
	ck_assert_int_eq(symlink(target, link), 0);
	const char *e = getenv("CORRAL_BIN");
	int rc = h_sh(out, sizeof out, "'%s' --rundir '%s' '%s' 2>&1",
	              e && *e ? e : h_path("corral", bin, sizeof bin), link,
	              plugin("hello"));
	ck_assert_int_eq(rc, 1);
	ck_assert_msg(strstr(out, "is a symlink") != NULL, "got: %s", out);
	unlink(link);
	rmdir(target);
	rmdir(dir);
}
END_TEST

START_TEST(foreign_owned_rundir_is_refused)
{
	if (geteuid() != 0)
		return; /* needs root to hand a directory to another uid */
	char dir[] = "/tmp/corral-own-XXXXXX", run[128], out[2048],
	     bin[PATH_MAX];
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(run, sizeof run, "%s/run", dir);
	ck_assert_int_eq(mkdir(run, 0700), 0);
	ck_assert_int_eq(chown(run, 65534, 65534), 0);
	const char *e = getenv("CORRAL_BIN");
	int rc = h_sh(out, sizeof out, "'%s' --rundir '%s' '%s' 2>&1",
	              e && *e ? e : h_path("corral", bin, sizeof bin), run,
	              plugin("hello"));
	ck_assert_int_eq(rc, 1);
	ck_assert_msg(strstr(out, "is owned by uid 65534") != NULL, "got: %s",
	              out);
	rmdir(run);
	rmdir(dir);
}
END_TEST

START_TEST(control_rejects_bad_request_and_keeps_serving)
{
	START("-w", "1", plugin("hello"));
	expect_running(0);
	char url[256];
	snprintf(url, sizeof url, "ipc://%s/control", H.rundir);
	nng_socket s;
	ck_assert_int_eq(nng_req0_open(&s), 0);
	nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, WAIT_MS);
	ck_assert_int_eq(nng_dial(s, url, NULL, 0), 0);
	static const uint8_t bomb[] = {0xdd, 0xff, 0xff, 0xff, 0xff};
	ck_assert_int_eq(nng_send(s, (void *)bomb, sizeof bomb, 0), 0);
	nng_msg *m;
	ck_assert_int_eq(nng_recvmsg(s, &m, 0), 0);
	ipc_frame f;
	ipc_error e;
	ck_assert_int_eq(ipc_decode_msg(m, IPC_MAX_CTL_FRAME, &f), 0);
	ck_assert_int_eq(ipc_unpack_error(&f, &e), 0);
	ipc_frame_fini(&f);
	ck_assert_int_eq(e.code, CORRAL_ETOOMANY);
	nng_close(s);
	/* Counted, and visible; and the operator is told why (output). */
	char sout[4096];
	ck_assert_int_eq(status_until(".bad_frames == 1", WAIT_MS, sout,
	                              sizeof sout), 0);
	OUTPUT("warning: control: bad request|ETOOMANY", WAIT_MS);
	char out[4096];
	ck_assert_int_eq(h_sh(out, sizeof out, "'%s' --rundir '%s' status",
	                      h_ctl(), H.rundir), 0);
	ck_assert_ptr_nonnull(strstr(out, "running"));
}
END_TEST

/* Socket and pipe inodes behind a process's descriptors from fd `from`. */
static int fd_inodes(pid_t pid, int from, char out[][64], int max)
{
	char dir[64], p[320], link[64];
	snprintf(dir, sizeof dir, "/proc/%d/fd", (int)pid);
	DIR *d = opendir(dir);
	if (!d)
		return -1;
	int n = 0;
	struct dirent *de;
	while ((de = readdir(d)) && n < max) {
		if (de->d_name[0] == '.' || atoi(de->d_name) < from)
			continue;
		snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
		ssize_t k = readlink(p, link, sizeof link - 1);
		if (k <= 0)
			continue;
		link[k] = '|';
		if (strncmp(link, "socket:", 7) == 0 ||
		    strncmp(link, "pipe:", 5) == 0)
			snprintf(out[n++], 64, "%s", link);
	}
	closedir(d);
	return n;
}

START_TEST(worker_inherits_no_supervisor_descriptors)
{
	START("-w", "2", plugin("hello"));
	pid_t p[2] = {0};
	expect_all_running(2, p);
	pid_t w = p[0];
	static char sup_fds[256][64], w_fds[256][64];
	int ns = fd_inodes(H.sup, 0, sup_fds, 256);
	int nw = fd_inodes(w, 3, w_fds, 256);
	ck_assert_int_gt(ns, 0);
	ck_assert_int_ge(nw, 0);
	for (int i = 0; i < nw; i++)
		for (int j = 0; j < ns; j++)
			ck_assert_msg(strcmp(w_fds[i], sup_fds[j]) != 0,
			              "worker inherited %s", w_fds[i]);
}
END_TEST

static Suite *proc_suite(void)
{
	Suite *s = suite_create("proc");
	TCase *tc = tcase_create("proc");
	tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, workers_come_up_ready_and_status_matches);
	tcase_add_test(tc, status_without_supervisor_fails_clearly);
	tcase_add_test(tc, sigkilled_worker_is_replaced);
	tcase_add_test(tc, standby_worker_takes_over_with_its_slot);
	tcase_add_test(tc, cold_restart_without_standby);
	tcase_add_test(tc, crash_loop_fails_slot_with_growing_delays);
	tcase_add_test(tc, restart_never_leaves_slot_failed);
	tcase_add_test(tc, failed_spawn_leaves_the_other_slots_supervised);
	tcase_add_test(tc, hung_worker_is_killed_after_heartbeat_timeout);
	tcase_add_test(tc, leaking_worker_shows_growing_rss);
	tcase_add_test(tc, fib_runs_in_the_pool_and_reports_it);
	tcase_add_test(tc, pool_backpressure_reaches_the_plugin);
	tcase_add_test(tc, echo_jobs_round_trip);
	tcase_add_test(tc, jobs_of_a_killed_worker_are_answered_by_others);
	tcase_add_test(tc, poison_job_is_quarantined_after_max_attempts);
	tcase_add_test(tc, full_queue_answers_busy_at_once);
	tcase_add_test(tc, burst_past_queue_limit_bytes_is_busy_and_memory_comes_back);
	tcase_add_test(tc, job_timeout_is_answered);
	tcase_add_test(tc, sigterm_answers_every_accepted_job);
	tcase_add_test(tc, chaos_under_load_loses_nothing);
	tcase_add_test(tc, external_client_gets_a_correct_reply);
	tcase_add_test(tc, jobs_move_to_the_other_supervisor);
	tcase_add_test(tc, batched_jobs_survive_a_killed_worker);
	tcase_add_test(tc, bad_abi_is_refused_without_respawn);
	tcase_add_test(tc, missing_symbol_is_refused_without_respawn);
	tcase_add_test(tc, failed_init_is_refused_without_respawn);
	tcase_add_test(tc, sigterm_waits_for_busy_workers);
	tcase_add_test(tc, worker_ignoring_stop_is_killed_at_deadline);
	tcase_add_test(tc, second_signal_skips_the_grace_period);
	tcase_add_test(tc, supervisor_death_takes_its_workers);
	tcase_add_test(tc, config_error_names_file_and_line_and_starts_nothing);
	tcase_add_test(tc, symlinked_rundir_is_refused);
	tcase_add_test(tc, foreign_owned_rundir_is_refused);
	tcase_add_test(tc, control_rejects_bad_request_and_keeps_serving);
	tcase_add_test(tc, worker_inherits_no_supervisor_descriptors);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(proc_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
