/*
 * test_perf.c - the performance contracts that can be checked exactly:
 * the worker's lag figure (a loop blocked X ms reports X; an idle loop is
 * never woken to measure it), first on a bare libuv loop with the health
 * monitor alone, then end to end with a plugin that stalls its loop.
 * Then the client library against a fake supervisor (an nng REP socket
 * that echoes every job and notes what each request carried): batches
 * split at 64 jobs and 2 MiB, and concurrent single calls coalesce into
 * CALLS messages while each keeps its own answer and timeout, but a lone
 * call goes alone at once.  Each case is bounded by Check's timeout; the
 * process-level ones wait on the supervisor's log and status, and kill
 * and reap what they started.
 */
#include <check.h>
#include <errno.h>
#include <limits.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "corral_client.h"
#include "ipc/proto.h"
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

static const char *fixture(const char *rel)
{
	static char b[4][PATH_MAX];
	static int i;
	i = (i + 1) % 4;
	return h_path(rel, b[i], sizeof b[i]);
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

#define START(...) H_START(&H, __VA_ARGS__)

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
		          h_ctl(), H.rundir, jq(), filter);
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


/* ---- the client library against a fake supervisor ---- */

#define FAKE_MAX 512

/* A REP socket on a thread: answers CALL with RESULT and CALLS with
 * RESULTS, echoing each payload, and notes each request. */
typedef struct fake {
	nng_socket rep;
	pthread_t thread;
	char dir[64], url[128];
	pthread_mutex_t mu;
	int nmsgs;
	int type[FAKE_MAX];      /* IPC_CALL or IPC_CALLS, per request */
	uint32_t njobs[FAKE_MAX];
	int njobs_total;
	uint64_t timeout[4096];  /* per job, in arrival order */
} fake;

static fake F;

static void *fake_main(void *arg)
{
	fake *f = arg;
	nng_msg *m;
	static ipc_call calls[IPC_MAX_BATCH];
	static ipc_result res[IPC_MAX_BATCH];
	while (nng_recvmsg(f->rep, &m, 0) == 0) {
		ipc_frame fr;
		uint32_t n = 1;
		nng_msg *out = NULL;
		if (ipc_decode_msg(m, IPC_MAX_CTL_FRAME, &fr) != 0)
			continue;
		int rc = fr.type == IPC_CALL ? ipc_unpack_call(&fr, &calls[0])
		                             : ipc_unpack_calls(&fr, calls, &n);
		if (rc == 0) {
			pthread_mutex_lock(&f->mu);
			if (f->nmsgs < FAKE_MAX) {
				f->type[f->nmsgs] = fr.type;
				f->njobs[f->nmsgs++] = n;
			}
			for (uint32_t i = 0; i < n; i++)
				if (f->njobs_total < 4096)
					f->timeout[f->njobs_total++] =
					    calls[i].timeout_ms;
			pthread_mutex_unlock(&f->mu);
			for (uint32_t i = 0; i < n; i++)
				res[i] = (ipc_result){.ok = 1,
				                      .data = calls[i].payload,
				                      .len = calls[i].len};
			rc = fr.type == IPC_CALL ? ipc_pack_result(&out, &res[0])
			                         : ipc_pack_results(&out, res, n);
		}
		ipc_frame_fini(&fr);
		if (rc == 0 && nng_sendmsg(f->rep, out, 0) != 0)
			nng_msg_free(out);
	}
	return NULL;
}

static void fake_init(void)
{
	memset(&F, 0, sizeof F);
	pthread_mutex_init(&F.mu, NULL);
	snprintf(F.dir, sizeof F.dir, "/tmp/corral-fake-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(F.dir));
	snprintf(F.url, sizeof F.url, "ipc://%s/jobs", F.dir);
}

static void fake_listen(void)
{
	ck_assert_int_eq(nng_rep0_open(&F.rep), 0);
	ck_assert_int_eq(nng_socket_set_size(F.rep, NNG_OPT_RECVMAXSZ,
	                                     IPC_MAX_CTL_FRAME), 0);
	ck_assert_int_eq(nng_listen(F.rep, F.url, NULL, 0), 0);
	ck_assert_int_eq(pthread_create(&F.thread, NULL, fake_main, &F), 0);
}

static void fake_fini(void)
{
	nng_close(F.rep);
	pthread_join(F.thread, NULL);
	char path[200];
	snprintf(path, sizeof path, "%s/jobs", F.dir);
	unlink(path);
	rmdir(F.dir);
}

/* Callbacks (nng threads): each call's outcome, by its index. */
#define NCALLS 4096
static pthread_mutex_t cb_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cb_cv = PTHREAD_COND_INITIALIZER;
static int ncb, cb_count[NCALLS], cb_status[NCALLS], cb_match[NCALLS];
static size_t payload_len = 16;

/* Call i's payload: its index, then filler up to payload_len. */
static void *payload_of(int i)
{
	uint8_t *p = malloc(payload_len);
	ck_assert_ptr_nonnull(p);
	memset(p, 'a' + i % 26, payload_len);
	memcpy(p, &i, sizeof i);
	return p;
}

static void on_result(void *arg, const corral_result *r)
{
	int i = (int)(intptr_t)arg;
	int match = 0;
	if (r->status == 0 && r->len == payload_len) {
		void *want = payload_of(i);
		match = memcmp(want, r->data, r->len) == 0;
		free(want);
	}
	pthread_mutex_lock(&cb_mu);
	cb_count[i]++;
	cb_status[i] = r->status;
	cb_match[i] = match;
	ncb++;
	pthread_cond_broadcast(&cb_cv);
	pthread_mutex_unlock(&cb_mu);
}

static void wait_callbacks(int n)
{
	uint64_t deadline = h_now_ms() + 10000;
	pthread_mutex_lock(&cb_mu);
	while (ncb < n && h_now_ms() < deadline) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 20000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&cb_cv, &cb_mu, &ts);
	}
	int got = ncb;
	pthread_mutex_unlock(&cb_mu);
	ck_assert_int_eq(got, n);
	for (int i = 0; i < n; i++) {
		ck_assert_int_eq(cb_count[i], 1);
		ck_assert_int_eq(cb_status[i], 0);
		ck_assert_msg(cb_match[i], "call %d got another call's answer", i);
	}
}

static void client_setup(void)
{
	fake_init();
	ncb = 0;
	memset(cb_count, 0, sizeof cb_count);
	payload_len = 16;
}

static void client_teardown(void)
{
	fake_fini();
}

static void call_one(corral_client *c, int i, uint64_t timeout_ms)
{
	void *p = payload_of(i);
	ck_assert_int_eq(corral_client_call_async(c, p, payload_len,
	                                          timeout_ms,
	                                          CORRAL_PRIO_NORMAL,
	                                          on_result,
	                                          (void *)(intptr_t)i), 0);
	free(p); /* the library copied it */
}

/* A batch of n calls of payload_len bytes; indexes from `from`. */
static void call_batch(corral_client *c, int from, int n)
{
	corral_call *calls = calloc((size_t)n, sizeof *calls);
	ck_assert_ptr_nonnull(calls);
	for (int i = 0; i < n; i++)
		calls[i] = (corral_call){.payload = payload_of(from + i),
		                         .len = payload_len,
		                         .arg = (void *)(intptr_t)(from + i)};
	ck_assert_int_eq(corral_client_call_batch_async(
	                     c, calls, (size_t)n, 5000, CORRAL_PRIO_NORMAL,
	                     on_result), 0);
	for (int i = 0; i < n; i++)
		free((void *)calls[i].payload);
	free(calls);
}

START_TEST(batches_split_at_64_jobs_and_2_mib)
{
	corral_client *c;
	fake_listen();
	ck_assert_int_eq(corral_client_open(&c, F.url), 0);
	call_batch(c, 0, 200);
	wait_callbacks(200);
	ck_assert_int_eq(F.nmsgs, 4);
	const uint32_t want[4] = {64, 64, 64, 8};
	for (int i = 0; i < 4; i++) {
		ck_assert_int_eq(F.type[i], IPC_CALLS);
		ck_assert_uint_eq(F.njobs[i], want[i]);
	}
	/* 700 KiB each: two fit 2 MiB, three do not. */
	ncb = 0;
	memset(cb_count, 0, sizeof cb_count);
	payload_len = 700 * 1024;
	call_batch(c, 0, 5);
	wait_callbacks(5);
	ck_assert_int_eq(F.nmsgs, 7);
	ck_assert_uint_eq(F.njobs[4], 2);
	ck_assert_uint_eq(F.njobs[5], 2);
	ck_assert_uint_eq(F.njobs[6], 1);
	corral_client_close(c);
}
END_TEST

START_TEST(concurrent_calls_coalesce_and_keep_their_own_answers)
{
	corral_client *c;
	/* Nobody listens yet: the first call's send waits for a connection,
	 * so every later call is pending at the same moment. */
	ck_assert_int_eq(corral_client_open(&c, F.url), 0);
	call_one(c, 0, 5000);      /* alone, as a CALL */
	for (int i = 1; i <= 99; i++)
		call_one(c, i, 5000); /* 64, then 35 more */
	call_one(c, 100, 7000);    /* another timeout: a message of its own */
	fake_listen();
	wait_callbacks(101);
	ck_assert_int_eq(F.nmsgs, 4);
	ck_assert_int_eq(F.type[0], IPC_CALL);
	ck_assert_uint_eq(F.njobs[0], 1);
	const uint32_t want[4] = {1, 64, 35, 1};
	for (int i = 1; i < 4; i++) {
		ck_assert_int_eq(F.type[i], IPC_CALLS);
		ck_assert_uint_eq(F.njobs[i], want[i]);
	}
	/* Each job carried its own call's timeout. */
	for (int i = 0; i < 100; i++)
		ck_assert_uint_eq(F.timeout[i], 5000);
	ck_assert_uint_eq(F.timeout[100], 7000);

	/* Nothing in flight now: a lone call goes at once, alone. */
	ncb = 0;
	memset(cb_count, 0, sizeof cb_count);
	call_one(c, 0, 5000);
	wait_callbacks(1);
	ck_assert_int_eq(F.nmsgs, 5);
	ck_assert_int_eq(F.type[4], IPC_CALL);
	corral_client_close(c);
}
END_TEST

START_TEST(close_answers_calls_still_waiting_to_coalesce)
{
	corral_client *c;
	ck_assert_int_eq(corral_client_open(&c, F.url), 0);
	for (int i = 0; i < 10; i++)
		call_one(c, i, 5000); /* 1 waiting in nng, 9 coalesced */
	corral_client_close(c);
	/* Every call got exactly one callback, ECLOSED. */
	ck_assert_int_eq(ncb, 10);
	for (int i = 0; i < 10; i++) {
		ck_assert_int_eq(cb_count[i], 1);
		ck_assert_int_eq(cb_status[i], CORRAL_ECLOSED);
	}
	fake_listen(); /* for the teardown */
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
	tc = tcase_create("client");
	tcase_add_checked_fixture(tc, client_setup, client_teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, batches_split_at_64_jobs_and_2_mib);
	tcase_add_test(tc, concurrent_calls_coalesce_and_keep_their_own_answers);
	tcase_add_test(tc, close_answers_calls_still_waiting_to_coalesce);
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
