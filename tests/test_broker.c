/*
 * test_broker.c - the broker's ledger with fake workers and fake clients.
 *
 * The real master/broker.c is linked against a stand-in for the front end
 * (ipc_srv_open/ipc_srv_reply: a "client" is a struct that records the one
 * answer it must get) and given ops whose send puts into a fake worker's
 * inbox (the jobs and cancels sent to it) and whose clock is ours.  The
 * broker knows workers only by what the test tells it, as it knows them
 * only by what the supervisor tells it.  Everything else is real: the message
 * packing, the queues, the ledger, the sweep timer on a real libuv loop,
 * the poison files in a real directory.  So each test can say exactly
 * which worker holds which job, kill it, and check what the client got.
 */
#include <check.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "corral.h"
#include "common/log.h"
#include "ipc/chan.h"
#include "ipc/proto.h"
#include "ipc/srv.h"
#include "master/broker.h"
#include "master/conf.h"
#include "tests/failalloc.h"

#define NW 3       /* fake workers */
#define MAXJ 256   /* jobs a fake worker remembers */

/* ---- the fakes ---- */

struct ipc_req {          /* one client request */
	int answers;          /* must end at exactly 1 */
	size_t alloc_bytes;   /* failalloc_bytes() when answered */
	int type;             /* IPC_RESULT or IPC_RESULTS */
	uint32_t n;
	ipc_result res[IPC_MAX_BATCH];
	uint8_t data[IPC_MAX_BATCH][64];
};

typedef struct fake_worker {
	uint64_t jobs[MAXJ];  /* ids received, in order */
	uint8_t payload[MAXJ][64];
	uint32_t len[MAXJ];   /* each payload's length */
	unsigned njobs, msgs;
	size_t msg_len, msg_cap; /* the last JOB message's */
	unsigned long allocs;  /* made before the last JOB arrived, and */
	size_t alloc_bytes;    /* their bytes (failalloc: since it was armed) */
	uint64_t cancels[MAXJ];
	unsigned ncancels;
} fake_worker;

static ipc_req_cb g_cb;
static void *g_arg;
static uint64_t g_now = 1000;
static int g_send_fails;
static fake_worker W[NW];
static char g_dir[] = "/tmp/corral-broker-XXXXXX";
static uv_loop_t g_loop;
static config g_cfg;
static broker *B;
static int g_empty;
static ipc_req *g_reqs[256]; /* freed after the broker is closed */
static unsigned g_nreqs;

static ipc_req *new_req(void)
{
	ipc_req *r = calloc(1, sizeof *r);
	ck_assert_ptr_nonnull(r);
	ck_assert_uint_lt(g_nreqs, 256);
	return g_reqs[g_nreqs++] = r;
}

int ipc_srv_open(ipc_srv **out, uv_loop_t *loop, const char *url,
                 const ipc_sockopts *o, unsigned max_open, ipc_req_cb cb,
                 void *arg)
{
	static int dummy;
	(void)loop, (void)url, (void)o, (void)max_open;
	g_cb = cb;
	g_arg = arg;
	*out = (ipc_srv *)&dummy;
	return 0;
}

void ipc_srv_close(ipc_srv *s)
{
	(void)s;
}

const char *ipc_srv_url(const ipc_srv *s)
{
	(void)s;
	return "ipc:///nowhere";
}

void ipc_srv_reply(ipc_req *r, nng_msg *msg)
{
	ck_assert_ptr_nonnull(msg);
	r->answers++;
	r->alloc_bytes = failalloc_bytes();
	ipc_frame f;
	ck_assert_int_eq(ipc_decode_msg(msg, 1u << 26, &f), 0);
	r->type = f.type;
	if (f.type == IPC_RESULT) {
		r->n = 1;
		ck_assert_int_eq(ipc_unpack_result(&f, &r->res[0]), 0);
	} else {
		ck_assert_int_eq(f.type, IPC_RESULTS);
		ck_assert_int_eq(ipc_unpack_results(&f, r->res, &r->n), 0);
	}
	for (uint32_t i = 0; i < r->n; i++)
		if (r->res[i].ok) { /* the first 64 bytes, and the length */
			memcpy(r->data[i], r->res[i].data,
			       r->res[i].len < 64 ? r->res[i].len : 64);
			r->res[i].data = r->data[i];
		}
	ipc_frame_fini(&f);
}

static int fake_send(void *ctx, unsigned slot, nng_msg *msg)
{
	(void)ctx;
	ck_assert_uint_lt(slot, NW);
	fake_worker *w = &W[slot];
	if (g_send_fails) {
		g_send_fails--;
		nng_msg_free(msg); /* as the real one: it takes msg */
		return CORRAL_EAGAIN;
	}
	ipc_frame f;
	w->allocs = failalloc_count();
	w->alloc_bytes = failalloc_bytes();
	ck_assert_int_eq(ipc_decode_msg(msg, IPC_MAX_FRAME, &f), 0);
	if (f.type == IPC_JOB) {
		ipc_job jobs[IPC_MAX_BATCH];
		uint32_t n;
		ck_assert_int_eq(ipc_unpack_jobs(&f, jobs, &n), 0);
		for (uint32_t i = 0; i < n; i++) {
			ck_assert_uint_lt(w->njobs, MAXJ);
			memcpy(w->payload[w->njobs], jobs[i].payload,
			       jobs[i].len < 64 ? jobs[i].len : 64);
			w->len[w->njobs] = jobs[i].len;
			w->jobs[w->njobs++] = jobs[i].id;
		}
		w->msgs++;
		w->msg_len = nng_msg_len(msg);
		w->msg_cap = nng_msg_capacity(msg);
	} else {
		ck_assert_int_eq(f.type, IPC_CANCEL);
		uint64_t ids[IPC_MAX_BATCH];
		uint32_t n;
		ck_assert_int_eq(ipc_unpack_cancel(&f, ids, &n), 0);
		for (uint32_t i = 0; i < n; i++)
			w->cancels[w->ncancels++] = ids[i];
	}
	ipc_frame_fini(&f);
	return 0;
}

/* ---- driving it ---- */

/* The broker dispatches once per loop iteration (a uv_check): let one
 * iteration run after each event, as the supervisor's loop would. */
static void settle(void)
{
	uv_run(&g_loop, UV_RUN_NOWAIT);
}

static uint64_t fake_now(void *ctx)
{
	(void)ctx;
	return g_now;
}

static int g_bad;

static void on_drained(void *ctx)
{
	(void)ctx;
	g_empty++;
}

static void on_bad(void *ctx, int lane, int code)
{
	(void)ctx;
	(void)lane;
	(void)code;
	g_bad++;
}

static const broker_ops ops = {.send = fake_send, .now_ms = fake_now,
                               .drained = on_drained, .bad_frame = on_bad};

static void worker_up(int i)
{
	broker_worker_set(B, (unsigned)i, 1, 0);
	settle();
}

/* The worker process is gone: what the slot code tells the broker. */
static void worker_dies(int i)
{
	memset(&W[i], 0, sizeof W[i]);
	broker_worker_gone(B, (unsigned)i);
	settle();
}

static void worker_replies(int i, uint64_t id, int32_t code, const char *s)
{
	ipc_reply r = {.id = id, .code = code, .data = (const uint8_t *)s,
	               .len = (uint32_t)strlen(s)};
	nng_msg *msg;
	ipc_frame f;
	ck_assert_int_eq(ipc_pack_replies(&msg, &r, 1), 0);
	ck_assert_int_eq(ipc_decode_msg(msg, IPC_MAX_FRAME, &f), 0);
	broker_on_reply(B, (unsigned)i, &f);
	ipc_frame_fini(&f);
	settle();
}

/* Worker i answers job id with len bytes of c; with count set, what the
 * broker allocates from then on is counted (failalloc), not the test's
 * own packing. */
static void worker_replies_sized(int i, uint64_t id, uint32_t len, char c,
                                 int count)
{
	static uint8_t buf[IPC_MAX_PAYLOAD];
	memset(buf, c, len);
	ipc_reply r = {.id = id, .data = buf, .len = len};
	nng_msg *msg;
	ipc_frame f;
	ck_assert_int_eq(ipc_pack_replies(&msg, &r, 1), 0);
	ck_assert_int_eq(ipc_decode_msg(msg, IPC_MAX_FRAME, &f), 0);
	if (count)
		failalloc_arm(ULONG_MAX);
	broker_on_reply(B, (unsigned)i, &f);
	if (count)
		failalloc_disarm();
	ipc_frame_fini(&f);
	settle();
}

static ipc_req *client_calls(const char **payloads, uint32_t n,
                               uint64_t timeout_ms, int batch)
{
	ipc_req *r = new_req();
	ipc_call c[IPC_MAX_BATCH];
	nng_msg *msg;
	for (uint32_t i = 0; i < n; i++)
		c[i] = (ipc_call){.payload = (const uint8_t *)payloads[i],
		                  .len = (uint32_t)strlen(payloads[i]),
		                  .timeout_ms = timeout_ms, .prio = 2};
	if (batch)
		ck_assert_int_eq(ipc_pack_calls(&msg, c, n), 0);
	else
		ck_assert_int_eq(ipc_pack_call(&msg, &c[0]), 0);
	g_cb(r, msg, g_arg);
	settle();
	return r;
}

static ipc_req *client_call(const char *payload)
{
	return client_calls(&payload, 1, 0, 0);
}

/* n payloads of size bytes each, the i-th filled with 'a' + i (as a
 * CALLS when batch, else n must be 1). */
static ipc_req *client_sized(uint32_t n, uint32_t size, int batch)
{
	ipc_req *r = new_req();
	ipc_call c[IPC_MAX_BATCH];
	uint8_t *buf = malloc((size_t)n * size + 1);
	nng_msg *msg;
	ck_assert_ptr_nonnull(buf);
	ck_assert_uint_le(n, IPC_MAX_BATCH);
	for (uint32_t i = 0; i < n; i++) {
		memset(buf + (size_t)i * size, 'a' + (int)(i % 26), size);
		c[i] = (ipc_call){.payload = buf + (size_t)i * size,
		                  .len = size, .prio = 2};
	}
	if (batch)
		ck_assert_int_eq(ipc_pack_calls(&msg, c, n), 0);
	else
		ck_assert_int_eq(ipc_pack_call(&msg, &c[0]), 0);
	free(buf); /* the message has its own copy */
	g_cb(r, msg, g_arg);
	settle();
	return r;
}

/* Worker i answers every job it holds now, "ok" each; returns how
 * many. */
static unsigned worker_answers_all(int i)
{
	unsigned n = W[i].njobs;
	uint64_t ids[MAXJ];
	memcpy(ids, W[i].jobs, n * sizeof ids[0]);
	W[i].njobs = 0;
	for (unsigned k = 0; k < n; k++)
		worker_replies(i, ids[k], 0, "ok");
	return n;
}

/* The log lines at warning level, kept by a sink (log.h) while a test
 * runs; still written to stderr. */
static char g_warned[8192];

static int keep_warnings(void *arg, const log_rec *r)
{
	(void)arg;
	if (r->level == LOG_WARN)
		snprintf(g_warned + strlen(g_warned),
		         sizeof g_warned - strlen(g_warned), "%s\n", r->msg);
	return 0;
}

static void check_ok(const ipc_req *r, uint32_t i, const char *want)
{
	ck_assert_int_eq(r->answers, 1);
	ck_assert_msg(r->res[i].ok, "result %u: %s: %s", i, r->res[i].err,
	              r->res[i].msg);
	ck_assert_uint_le(strlen(want), 64);
	ck_assert_uint_eq(r->res[i].len, strlen(want));
	ck_assert(memcmp(r->res[i].data, want, r->res[i].len) == 0);
}

static void check_err(const ipc_req *r, uint32_t i, const char *err)
{
	ck_assert_int_eq(r->answers, 1);
	ck_assert_msg(!r->res[i].ok, "result %u should be %s", i, err);
	ck_assert_str_eq(r->res[i].err, err);
}

static broker_stats stats(void)
{
	broker_stats st;
	broker_get_stats(B, &st);
	return st;
}

/* The broker copies its settings when it opens. */
static void open_broker(void)
{
	broker_config bc = {.url = "ipc:///nowhere", .rundir = g_dir,
	                    .nslots = NW, .max_inflight = g_cfg.max_inflight,
	                    .queue_limit = g_cfg.queue_limit,
	                    .queue_limit_bytes = g_cfg.queue_limit_bytes,
	                    .max_attempts = g_cfg.max_attempts,
	                    .job_timeout_ms = g_cfg.job_timeout_ms,
	                    .max_lag_ms = g_cfg.max_lag_ms};
	ck_assert_int_eq(broker_open(&B, &g_loop, &bc, &ops, NULL), 0);
}

/* Settings changed in a test: a fresh broker with them (none held). */
static void reopen(void)
{
	broker_close(B);
	uv_run(&g_loop, UV_RUN_NOWAIT);
	open_broker();
}

static void setup(void)
{
	ck_assert_ptr_nonnull(mkdtemp(strcpy(g_dir, "/tmp/corral-broker-XXXXXX")));
	ck_assert_int_eq(uv_loop_init(&g_loop), 0);
	config_defaults(&g_cfg);
	g_cfg.max_inflight = 4;
	g_cfg.queue_limit = 8;
	g_cfg.job_timeout_ms = 1000;
	g_cfg.max_attempts = 3;
	memset(W, 0, sizeof W);
	g_now = 1000;
	g_send_fails = 0;
	g_empty = 0;
	g_bad = 0;
	g_warned[0] = '\0';
	log_set_sink(keep_warnings, NULL);
	open_broker();
}

static void teardown(void)
{
	broker_close(B); /* answers what is left: "shutting_down" */
	uv_run(&g_loop, UV_RUN_DEFAULT);
	for (unsigned i = 0; i < g_nreqs; i++) {
		ck_assert_int_eq(g_reqs[i]->answers, 1);
		free(g_reqs[i]);
	}
	g_nreqs = 0;
	ck_assert_int_eq(uv_loop_close(&g_loop), 0);
	log_set_sink(NULL, NULL);
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
	ck_assert_int_eq(system(cmd), 0);
	config_free(&g_cfg);
}

static void noop(uv_timer_t *t)
{
	(void)t;
}

/* Lets the broker's sweep timer (every 20 ms, unreferenced) run once:
 * the loop runs until a 30 ms timer of ours fires. */
static void sweep(void)
{
	uv_timer_t t;
	ck_assert_int_eq(uv_timer_init(&g_loop, &t), 0);
	ck_assert_int_eq(uv_timer_start(&t, noop, 30, 0), 0);
	uv_run(&g_loop, UV_RUN_DEFAULT);
	uv_close((uv_handle_t *)&t, NULL);
	uv_run(&g_loop, UV_RUN_NOWAIT);
}

/* Runs the loop for ms of real time (the broker's own timers included). */
static void run_for(uint64_t ms)
{
	uv_timer_t t;
	ck_assert_int_eq(uv_timer_init(&g_loop, &t), 0);
	ck_assert_int_eq(uv_timer_start(&t, noop, ms, 0), 0);
	uv_run(&g_loop, UV_RUN_DEFAULT);
	uv_close((uv_handle_t *)&t, NULL);
	uv_run(&g_loop, UV_RUN_NOWAIT);
}

/* ---- tests ---- */

START_TEST(dispatch_least_loaded_and_bounded)
{
	worker_up(0);
	worker_up(1);
	ipc_req *r[10];
	for (int i = 0; i < 10; i++)
		r[i] = client_call("x");
	/* 4 each (max_inflight), 2 wait in the queue. */
	ck_assert_uint_eq(W[0].njobs, 4);
	ck_assert_uint_eq(W[1].njobs, 4);
	ck_assert_uint_eq(stats().queued, 2);
	ck_assert_uint_eq(stats().inflight, 8);
	/* A reply makes room on worker 1 only: the next job goes there. */
	worker_replies(1, W[1].jobs[0], 0, "y");
	ck_assert_uint_eq(W[1].njobs, 5);
	ck_assert_uint_eq(W[0].njobs, 4);
	/* A third worker with nothing gets the last queued job. */
	worker_up(2);
	ck_assert_uint_eq(W[2].njobs, 1);
	ck_assert_uint_eq(stats().queued, 0);
	int answered = 0;
	for (int i = 0; i < 10; i++)
		answered += r[i]->answers;
	ck_assert_int_eq(answered, 1);
}
END_TEST

START_TEST(burst_is_spread_one_message_per_worker)
{
	g_cfg.max_inflight = 64;
	g_cfg.queue_limit = 64;
	reopen();
	worker_up(0);
	worker_up(1);
	worker_up(2);
	const char *p[9] = {"1", "2", "3", "4", "5", "6", "7", "8", "9"};
	client_calls(p, 9, 0, 1);
	for (int i = 0; i < NW; i++) {
		ck_assert_uint_eq(W[i].njobs, 3);
		ck_assert_uint_eq(W[i].msgs, 1);
	}
}
END_TEST

/* A few jobs arriving together are not worth a message per worker: fewer
 * than QUANTUM (4) per worker go to one worker, in one message. */
START_TEST(small_round_goes_to_one_worker)
{
	worker_up(0);
	worker_up(1);
	worker_up(2);
	const char *p[3] = {"1", "2", "3"};
	client_calls(p, 3, 0, 1);
	ck_assert_uint_eq(W[0].njobs + W[1].njobs + W[2].njobs, 3);
	ck_assert_uint_eq(W[0].msgs + W[1].msgs + W[2].msgs, 1);
	/* The next round starts from the least loaded: another worker. */
	client_calls(p, 3, 0, 1);
	ck_assert_uint_eq(W[0].msgs + W[1].msgs + W[2].msgs, 2);
	for (int i = 0; i < NW; i++)
		ck_assert_uint_le(W[i].njobs, 3);
}
END_TEST

START_TEST(worker_death_redispatches_and_late_reply_dropped)
{
	worker_up(0);
	ipc_req *r = client_call("job");
	ck_assert_uint_eq(W[0].njobs, 1);
	uint64_t id = W[0].jobs[0];
	worker_up(1); /* nothing moves: the job stays where it is */
	ck_assert_uint_eq(W[1].njobs, 0);
	worker_dies(0);
	/* Same job, same id, now on worker 1; the client waits on. */
	ck_assert_uint_eq(W[1].njobs, 1);
	ck_assert_uint_eq(W[1].jobs[0], id);
	ck_assert(memcmp(W[1].payload[0], "job", 3) == 0);
	ck_assert_int_eq(r->answers, 0);
	ck_assert_uint_eq(stats().redispatched, 1);
	/* The dead worker's reply arrives late (it was still in a socket):
	 * dropped, so the client does not get two answers. */
	worker_replies(0, id, 0, "stale");
	ck_assert_int_eq(r->answers, 0);
	ck_assert_uint_eq(stats().late_replies, 1);
	worker_replies(1, id, 0, "fresh");
	check_ok(r, 0, "fresh");
	/* And a duplicate from the live worker is dropped too. */
	worker_replies(1, id, 0, "again");
	ck_assert_int_eq(r->answers, 1);
	ck_assert_uint_eq(stats().late_replies, 2);
}
END_TEST

START_TEST(attempts_counted_then_poison)
{
	worker_up(0);
	ipc_req *bad = client_call("crash");
	uint64_t id = W[0].jobs[0];
	worker_up(1);
	ipc_req *good = client_call("fine"); /* least loaded: worker 1 */
	ck_assert_uint_eq(W[1].njobs, 1);
	uint64_t good_id = W[1].jobs[0];
	/* Three different workers die holding the job (max_attempts 3). */
	worker_dies(0);                 /* attempt 1 -> goes to worker 1 */
	ck_assert_int_eq(bad->answers, 0);
	worker_up(2);
	worker_dies(1);                 /* attempt 2 -> both jobs go on */
	ck_assert_int_eq(bad->answers, 0);
	ck_assert_int_eq(good->answers, 0);
	ck_assert_uint_eq(W[2].njobs, 2);
	/* Worker 2 answers the good job, then dies on the bad one. */
	worker_replies(2, good_id, 0, "ok");
	check_ok(good, 0, "ok");
	worker_dies(2);                 /* attempt 3: poison */
	check_err(bad, 0, "poison");
	ck_assert_uint_eq(stats().poison, 1);
	ck_assert_uint_eq(stats().queued + stats().inflight, 0);
	/* Its payload is kept for reproduction. */
	char path[4200], buf[16] = {0};
	snprintf(path, sizeof path, "%s/poison/%" PRIu64 ".bin", g_dir, id);
	FILE *f = fopen(path, "rb");
	ck_assert_msg(f != NULL, "%s missing", path);
	ck_assert_uint_eq(fread(buf, 1, sizeof buf, f), 5);
	fclose(f);
	ck_assert_str_eq(buf, "crash");
}
END_TEST

START_TEST(queue_full_is_busy_at_once)
{
	ipc_req *r[10];
	for (int i = 0; i < 10; i++)
		r[i] = client_call("q");
	/* No worker running: 8 wait (queue_limit), 2 are refused now. */
	for (int i = 0; i < 8; i++)
		ck_assert_int_eq(r[i]->answers, 0);
	check_err(r[8], 0, "busy");
	check_err(r[9], 0, "busy");
	ck_assert_uint_eq(stats().busy, 2);
	ck_assert_uint_eq(stats().queued, 8);
	/* The waiting ones are not lost: a worker takes them. */
	worker_up(0);
	worker_up(1);
	ck_assert_uint_eq(W[0].njobs + W[1].njobs, 8);
	for (unsigned i = 0; i < W[0].njobs; i++)
		worker_replies(0, W[0].jobs[i], 0, "a");
	for (unsigned i = 0; i < W[1].njobs; i++)
		worker_replies(1, W[1].jobs[i], 0, "b");
	for (int i = 0; i < 8; i++)
		ck_assert(r[i]->answers == 1 && r[i]->res[0].ok);
}
END_TEST

/* Jobs that arrive together wait for the end of the loop iteration to be
 * dispatched; that wait must not make them count against queue_limit. */
START_TEST(queue_limit_counts_only_jobs_no_worker_can_take)
{
	g_cfg.max_inflight = 1;
	g_cfg.queue_limit = 2;
	reopen();
	worker_up(0);
	const char *p[4] = {"1", "2", "3", "4"};
	ipc_req *r = client_calls(p, 4, 0, 1);
	ck_assert_uint_eq(W[0].njobs, 1);
	ck_assert_uint_eq(stats().queued, 2);
	ck_assert_uint_eq(stats().busy, 1);   /* only the 4th */
	for (int i = 0; i < 3; i++) {
		ck_assert_uint_eq(W[0].njobs, (unsigned)i + 1);
		worker_replies(0, W[0].jobs[i], 0, "k");
	}
	for (int i = 0; i < 3; i++)
		check_ok(r, (uint32_t)i, "k");
	check_err(r, 3, "busy");
}
END_TEST

START_TEST(timeout_answers_and_cancels)
{
	worker_up(0);
	const char *p = "slow";
	ipc_req *r = client_calls(&p, 1, 100, 0);   /* asks for 100 ms */
	ipc_req *q = client_call("queued?");
	worker_dies(0);                               /* both back in queue */
	worker_up(1);
	ck_assert_uint_eq(W[1].njobs, 2);
	uint64_t id = W[1].jobs[0];
	g_now += 150;
	sweep();
	check_err(r, 0, "timeout");
	ck_assert_int_eq(q->answers, 0);  /* its deadline is the server's 1 s */
	ck_assert_uint_eq(W[1].ncancels, 1);
	ck_assert_uint_eq(W[1].cancels[0], id);
	/* The worker finishes anyway: too late, dropped. */
	worker_replies(1, id, 0, "done");
	ck_assert_int_eq(r->answers, 1);
	ck_assert_uint_eq(stats().late_replies, 1);
	/* A queued job (no worker at all) times out as well. */
	worker_dies(1);
	g_now += 2000;
	sweep();
	check_err(q, 0, "timeout");
	ck_assert_uint_eq(stats().timeouts, 2);
}
END_TEST

START_TEST(batch_answered_once_in_order)
{
	worker_up(0);
	worker_up(1);
	const char *p[6] = {"a", "b", "c", "d", "e", "f"};
	ipc_req *r = client_calls(p, 6, 0, 1);
	ck_assert_uint_eq(W[0].njobs + W[1].njobs, 6);
	/* Worker 0 dies; its share runs again on worker 1 (max_inflight 4
	 * leaves some queued until replies make room). */
	worker_dies(0);
	for (int round = 0; round < 6 && r->answers == 0; round++) {
		unsigned n = W[1].njobs;
		uint64_t ids[MAXJ];
		memcpy(ids, W[1].jobs, n * sizeof ids[0]);
		char pl[MAXJ][8];
		for (unsigned i = 0; i < n; i++)
			snprintf(pl[i], sizeof pl[i], "%.1s!",
			         (const char *)W[1].payload[i]);
		memset(&W[1], 0, sizeof W[1]);
		for (unsigned i = n; i-- > 0;) /* out of order */
			worker_replies(1, ids[i], 0, pl[i]);
	}
	ck_assert_int_eq(r->answers, 1);
	ck_assert_int_eq(r->type, IPC_RESULTS);
	ck_assert_uint_eq(r->n, 6);
	const char *want[6] = {"a!", "b!", "c!", "d!", "e!", "f!"};
	for (int i = 0; i < 6; i++)
		check_ok(r, (uint32_t)i, want[i]);
}
END_TEST

START_TEST(batch_mixes_busy_failed_and_ok)
{
	const char *p[10] = {"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"};
	ipc_req *r = client_calls(p, 10, 0, 1);
	ck_assert_int_eq(r->answers, 0); /* 8 queued, 2 busy, held back */
	worker_up(0);
	worker_up(1);
	for (int round = 0; round < 8 && r->answers == 0; round++)
		for (int w = 0; w < 2; w++) {
			unsigned n = W[w].njobs;
			uint64_t ids[MAXJ];
			uint8_t first[MAXJ];
			memcpy(ids, W[w].jobs, n * sizeof ids[0]);
			for (unsigned i = 0; i < n; i++)
				first[i] = W[w].payload[i][0];
			memset(&W[w], 0, sizeof W[w]);
			for (unsigned i = 0; i < n; i++)
				worker_replies(w, ids[i],
				               first[i] == '3' ? CORRAL_EPLUGIN : 0,
				               first[i] == '3' ? "no" : "yes");
		}
	ck_assert_int_eq(r->answers, 1);
	ck_assert_uint_eq(r->n, 10);
	for (int i = 0; i < 8; i++)
		if (i == 3)
			check_err(r, 3, "failed");
		else
			check_ok(r, (uint32_t)i, "yes");
	check_err(r, 8, "busy");
	check_err(r, 9, "busy");
}
END_TEST

START_TEST(send_failure_keeps_jobs_queued)
{
	g_send_fails = 1;
	worker_up(0);          /* nothing queued yet */
	ipc_req *r = client_call("retry"); /* first send fails */
	ck_assert_uint_eq(W[0].njobs, 0);
	ck_assert_uint_eq(stats().queued, 1);
	sweep();               /* the sweep tries again */
	ck_assert_uint_eq(W[0].njobs, 1);
	worker_replies(0, W[0].jobs[0], 0, "r");
	check_ok(r, 0, "r");
}
END_TEST

START_TEST(degraded_worker_gets_nothing)
{
	worker_up(0);
	worker_up(1);
	broker_worker_set(B, 0, 1, (g_cfg.max_lag_ms + 1) * 1000);
	ck_assert(broker_slot_degraded(B, 0));
	for (int i = 0; i < 3; i++)
		client_call("d");
	ck_assert_uint_eq(W[0].njobs, 0);
	ck_assert_uint_eq(W[1].njobs, 3);
	/* Recovered: it is the least loaded again. */
	broker_worker_set(B, 0, 1, 0);
	client_call("e");
	ck_assert_uint_eq(W[0].njobs, 1);
}
END_TEST

START_TEST(drain_refuses_new_and_reports_empty)
{
	worker_up(0);
	ipc_req *r = client_call("inflight");
	ck_assert_int_eq(broker_drain(B), 0);
	ipc_req *late = client_call("late");
	check_err(late, 0, "shutting_down");
	ck_assert_int_eq(g_empty, 0);
	worker_replies(0, W[0].jobs[0], 0, "done");
	check_ok(r, 0, "done");
	ck_assert_int_eq(g_empty, 1);
}
END_TEST

START_TEST(abort_answers_everything)
{
	worker_up(0);
	ipc_req *r[6];
	for (int i = 0; i < 6; i++)
		r[i] = client_call("z"); /* 4 on worker 0, 2 queued */
	broker_abort(B);
	for (int i = 0; i < 6; i++)
		check_err(r[i], 0, "shutting_down");
	ck_assert_uint_eq(stats().queued + stats().inflight, 0);
}
END_TEST

START_TEST(bad_requests_get_an_answer)
{
	ipc_req *r = new_req();
	nng_msg *msg;
	ck_assert_int_eq(nng_msg_alloc(&msg, 0), 0);
	ck_assert_int_eq(nng_msg_append(msg, "\xdd\xff\xff\xff\xff", 5), 0);
	g_cb(r, msg, g_arg);
	check_err(r, 0, "bad_request");
	/* A well-formed message of the wrong kind. */
	ipc_req *r2 = new_req();
	ck_assert_int_eq(ipc_pack_ready(&msg), 0);
	g_cb(r2, msg, g_arg);
	check_err(r2, 0, "bad_request");
	ck_assert_uint_eq(stats().bad_requests, 2);
}
END_TEST

/* queue_limit_bytes: a job whose payload would take the bytes waiting in
 * the queues past it is "busy" at once, whatever the count; the waiting
 * ones are not lost; an empty queue takes any job. */
START_TEST(bytes_limit_is_busy_at_once_and_loses_nothing)
{
	g_cfg.queue_limit = 100;
	g_cfg.queue_limit_bytes = 1000;
	reopen();
	ipc_req *r[4];
	for (int i = 0; i < 4; i++)
		r[i] = client_sized(1, 300, 0); /* no worker: all wait */
	ck_assert_int_eq(r[0]->answers + r[1]->answers + r[2]->answers, 0);
	check_err(r[3], 0, "busy");
	ck_assert_msg(strstr(r[3]->res[0].msg, "queue_limit_bytes"), "%s",
	              r[3]->res[0].msg);
	ipc_req *fits = client_sized(1, 100, 0);   /* 1000: just fits */
	ipc_req *over = client_sized(1, 1, 0);     /* 1001: busy */
	ck_assert_int_eq(fits->answers, 0);
	check_err(over, 0, "busy");
	ck_assert_uint_eq(stats().queued, 4);
	ck_assert_uint_eq(stats().queued_bytes, 1000);
	ck_assert_uint_eq(stats().busy, 2);
	/* In a batch, each job is judged on its own: all refused here, so
	 * the batch is answered at once and its message let go. */
	ipc_req *b = client_sized(3, 10, 1);
	for (uint32_t i = 0; i < 3; i++)
		check_err(b, i, "busy");
	ck_assert_uint_eq(stats().busy, 5);
	/* A worker takes what waits; every accepted job is answered. */
	worker_up(0);
	ck_assert_uint_eq(stats().queued_bytes, 0);
	ck_assert_uint_eq(W[0].njobs, 4);
	ck_assert_uint_eq(W[0].len[0], 300);
	ck_assert_uint_eq(W[0].len[3], 100);
	ck_assert_uint_eq(worker_answers_all(0), 4);
	for (int i = 0; i < 3; i++)
		check_ok(r[i], 0, "ok");
	check_ok(fits, 0, "ok");
	/* With nothing queued, a job larger than the limit is taken. */
	ipc_req *big = client_sized(1, 5000, 0);
	ck_assert_uint_eq(W[0].njobs, 1);
	ck_assert_uint_eq(W[0].len[0], 5000);
	worker_answers_all(0);
	check_ok(big, 0, "ok");
	ck_assert_uint_eq(stats().accepted, 5);
	ck_assert_uint_eq(stats().ok, 5);
	ck_assert_uint_eq(stats().held_bytes, 0);
}
END_TEST

/* The count limit still holds when the bytes are far from theirs. */
START_TEST(count_limit_holds_beside_the_bytes_limit)
{
	ipc_req *r[9];
	for (int i = 0; i < 9; i++)
		r[i] = client_call("c");
	check_err(r[8], 0, "busy");
	ck_assert_msg(strstr(r[8]->res[0].msg, "(queue_limit)"), "%s",
	              r[8]->res[0].msg);
	ck_assert_uint_eq(stats().queued, 8);
	ck_assert_uint_eq(stats().queued_bytes, 8);
}
END_TEST

/* A CALLS request's message is kept (its payloads are not copied) until
 * its last job is answered: a job re-dispatched after its worker died,
 * when the others of its request were answered long ago, still carries
 * its payload; a late reply from the dead worker changes nothing. */
START_TEST(batch_payload_lives_until_its_last_job_is_answered)
{
	worker_up(0);
	ipc_req *r = client_sized(4, 2000, 1); /* 4 on worker 0 */
	ck_assert_uint_eq(W[0].njobs, 4);
	uint64_t ids[4];
	memcpy(ids, W[0].jobs, sizeof ids);
	uint64_t held = stats().held_bytes;
	ck_assert_uint_gt(held, 4 * 2000);
	for (int i = 0; i < 3; i++)
		worker_replies(0, ids[i], 0, "done");
	ck_assert_int_eq(r->answers, 0);
	ck_assert_uint_eq(stats().held_bytes, held); /* one job left */
	worker_dies(0);
	worker_up(1);
	ck_assert_uint_eq(W[1].njobs, 1);
	ck_assert_uint_eq(W[1].jobs[0], ids[3]);
	ck_assert_uint_eq(W[1].len[0], 2000);
	for (int k = 0; k < 64; k++)
		ck_assert_int_eq(W[1].payload[0][k], 'd');
	worker_replies(0, ids[3], 0, "stale"); /* the dead one's, late */
	ck_assert_int_eq(r->answers, 0);
	worker_replies(1, ids[3], 0, "last");
	ck_assert_int_eq(r->answers, 1);
	check_ok(r, 0, "done");
	check_ok(r, 3, "last");
	ck_assert_uint_eq(stats().held_bytes, 0);
	worker_replies(1, ids[3], 0, "again"); /* after the message is gone */
	ck_assert_uint_eq(stats().late_replies, 2);
}
END_TEST

/* Every way a job ends lets its request's message go: answered, timed
 * out (a reply after that is late), refused, poison, aborted. */
START_TEST(request_messages_are_let_go_on_every_path)
{
	worker_up(0);
	const char *p = "slow";
	ipc_req *t = client_calls(&p, 1, 100, 0);
	ck_assert_uint_gt(stats().held_bytes, 0);
	uint64_t id = W[0].jobs[0];
	g_now += 150;
	sweep();
	check_err(t, 0, "timeout");
	ck_assert_uint_eq(stats().held_bytes, 0);
	worker_replies(0, id, 0, "late"); /* its payload is gone: dropped */
	ck_assert_uint_eq(stats().late_replies, 1);
	/* Refused: at once. */
	ck_assert_int_eq(broker_drain(B), 1);
	check_err(client_call("no"), 0, "shutting_down");
	check_err(client_sized(3, 100, 1), 2, "shutting_down");
	ck_assert_uint_eq(stats().held_bytes, 0);
}
END_TEST

START_TEST(poison_from_a_batch_keeps_its_payload)
{
	g_cfg.max_attempts = 1;
	reopen();
	worker_up(0);
	ipc_req *r = client_sized(2, 100, 1);
	uint64_t id = W[0].jobs[1];
	worker_replies(0, W[0].jobs[0], 0, "fine");
	worker_dies(0);
	check_ok(r, 0, "fine");
	check_err(r, 1, "poison");
	char path[4200], buf[128];
	snprintf(path, sizeof path, "%s/poison/%" PRIu64 ".bin", g_dir, id);
	FILE *f = fopen(path, "rb");
	ck_assert_msg(f != NULL, "%s missing", path);
	ck_assert_uint_eq(fread(buf, 1, sizeof buf, f), 100);
	fclose(f);
	for (int i = 0; i < 100; i++)
		ck_assert_int_eq(buf[i], 'b');
	ck_assert_uint_eq(stats().held_bytes, 0);
}
END_TEST

/* A poison payload that cannot be kept: the log says so, with the call
 * and its errno, and never names a file that is not there. */
START_TEST(poison_not_kept_says_why)
{
	char path[4200];
	snprintf(path, sizeof path, "%s/poison", g_dir);
	FILE *f = fopen(path, "w"); /* a file where the directory goes */
	ck_assert_ptr_nonnull(f);
	fclose(f);
	g_cfg.max_attempts = 1;
	reopen();
	worker_up(0);
	ipc_req *r = client_call("crash");
	worker_dies(0);
	check_err(r, 0, "poison");
	ck_assert_uint_eq(stats().poison, 1);
	ck_assert_msg(strstr(g_warned, "is POISON") &&
	              strstr(g_warned, "payload not kept: cannot create ") &&
	              strstr(g_warned, ": Not a directory") &&
	              !strstr(g_warned, "kept in"), "logged: %s", g_warned);
}
END_TEST

/* The same when the disk fills up while writing (RLIMIT_FSIZE stands in
 * for a full disk: write() fails with EFBIG past it): nothing half written
 * is left, and the log says which call failed and why. */
START_TEST(poison_write_failure_says_why)
{
	g_cfg.max_attempts = 1;
	reopen();
	worker_up(0);
	ipc_req *r = client_call("crash and burn");
	struct rlimit old, lim = {.rlim_cur = 4, .rlim_max = RLIM_INFINITY};
	ck_assert_int_eq(getrlimit(RLIMIT_FSIZE, &old), 0);
	ck_assert_ptr_ne(signal(SIGXFSZ, SIG_IGN), SIG_ERR);
	/* No ck_assert between these two: Check writes to a file too. */
	int rc = setrlimit(RLIMIT_FSIZE, &lim);
	broker_worker_gone(B, 0);
	int rc2 = setrlimit(RLIMIT_FSIZE, &old);
	ck_assert_int_eq(rc, 0);
	ck_assert_int_eq(rc2, 0);
	settle();
	check_err(r, 0, "poison");
	ck_assert_msg(strstr(g_warned, "payload not kept: write ") &&
	              strstr(g_warned, ".tmp: File too large") &&
	              !strstr(g_warned, "kept in"), "logged: %s", g_warned);
	char out[256] = "";
	char cmd[300];
	snprintf(cmd, sizeof cmd, "ls -A '%s/poison'", g_dir);
	FILE *ls = popen(cmd, "r");
	ck_assert_ptr_nonnull(ls);
	size_t n = fread(out, 1, sizeof out - 1, ls);
	ck_assert_int_eq(pclose(ls), 0);
	ck_assert_msg(n == 0, "left in poison/: %s", out);
}
END_TEST

/* What the broker allocates on a job's way in and out, counted by
 * tests/failalloc.c (linked into this test for that): the payload bytes
 * are not copied on the way in (the request message is kept), and a JOB
 * message is sized once for all its payloads, so they are copied into it
 * once (growing by doubling would allocate about twice their size, in
 * more allocations). */
START_TEST(payloads_copied_once_on_their_way_to_a_worker)
{
	g_cfg.max_inflight = 64;
	reopen();
	/* In: a 100 kB CALL is queued without copying its payload. */
	static uint8_t big[100000];
	memset(big, 'p', sizeof big);
	ipc_call c = {.payload = big, .len = sizeof big, .prio = 2};
	nng_msg *msg;
	ck_assert_int_eq(ipc_pack_call(&msg, &c), 0);
	ipc_req *r = new_req();
	failalloc_arm(ULONG_MAX); /* count only */
	g_cb(r, msg, g_arg);
	size_t in_bytes = failalloc_bytes();
	failalloc_disarm();
	ck_assert_uint_eq(stats().queued, 1);
	ck_assert_msg(in_bytes < 10000, "%zu bytes allocated taking in a "
	              "100000-byte payload", in_bytes);
	/* Out: 8 jobs of 100 kB in one JOB message, sized once. */
	client_sized(7, 100000, 1);
	ck_assert_uint_eq(stats().queued, 8);
	failalloc_arm(ULONG_MAX);
	worker_up(0);
	failalloc_disarm();
	ck_assert_uint_eq(W[0].njobs, 8);
	ck_assert_uint_eq(W[0].msgs, 1);
	ck_assert_uint_gt(W[0].msg_len, 800000);
	ck_assert_msg(W[0].alloc_bytes <= 800000 + 8 * IPC_CALL_OVERHEAD +
	              64 + 1024, "the JOB message took %lu allocations, %zu "
	              "bytes, for 800000 bytes of payloads", W[0].allocs,
	              W[0].alloc_bytes);
	ck_assert_uint_le(W[0].msg_cap, 800000 + 8 * IPC_CALL_OVERHEAD + 64);
	worker_answers_all(0);
	check_ok(r, 0, "ok");
}
END_TEST

/* A CALLS' results go back in one RESULTS message sized once for all of
 * them: the last result is packed from its REPLY and the message never
 * grows (packing by doubling allocated about twice the results). */
START_TEST(batch_results_packed_once)
{
	g_cfg.max_inflight = 64;
	reopen();
	worker_up(0);
	ipc_req *r = client_sized(8, 10, 1);
	ck_assert_uint_eq(W[0].njobs, 8);
	for (int i = 0; i < 7; i++)
		worker_replies_sized(0, W[0].jobs[i], 100000, 'A' + i, 0);
	ck_assert_int_eq(r->answers, 0);
	worker_replies_sized(0, W[0].jobs[7], 100000, 'H', 1);
	ck_assert_int_eq(r->answers, 1);
	ck_assert_int_eq(r->type, IPC_RESULTS);
	ck_assert_uint_eq(r->n, 8);
	for (uint32_t i = 0; i < 8; i++) {
		ck_assert(r->res[i].ok);
		ck_assert_uint_eq(r->res[i].len, 100000);
		for (int k = 0; k < 64; k++)
			ck_assert_int_eq(r->res[i].data[k], 'A' + (int)i);
	}
	ck_assert_msg(r->alloc_bytes <= 800000 + 8 * IPC_CALL_OVERHEAD + 64 +
	              1024, "%zu bytes allocated for the last result and the "
	              "RESULTS of 800000 bytes", r->alloc_bytes);
}
END_TEST

/* After the queues drain from a burst of more than 2 MiB, freed memory is
 * handed back once (malloc_trim); not while the burst is held, and not
 * after a small one. */
START_TEST(trim_once_a_large_burst_has_drained)
{
	g_cfg.queue_limit = 1000;
	g_cfg.max_inflight = 64;
	reopen();
	for (int i = 0; i < 3; i++)
		client_sized(32, 100000, 1); /* 3 x 3.2 MB, all queued */
	ck_assert_uint_eq(stats().queued, 96);
	ck_assert_uint_gt(stats().held_bytes, 9600000);
	run_for(300);
	ck_assert_uint_eq(stats().trims, 0);
	worker_up(0);
	worker_up(1);
	ck_assert_uint_eq(stats().queued, 0);
	run_for(300);
	ck_assert_uint_eq(stats().trims, 0); /* all still in flight */
	worker_answers_all(0);
	worker_answers_all(1);
	ck_assert_uint_eq(stats().held_bytes, 0);
	run_for(300);
	ck_assert_uint_eq(stats().trims, 1);
	/* A small burst later: nothing to hand back. */
	client_sized(32, 1000, 1);
	worker_answers_all(0);
	worker_answers_all(1);
	run_for(1200);
	ck_assert_uint_eq(stats().trims, 1);
}
END_TEST

static Suite *broker_suite(void)
{
	Suite *s = suite_create("broker");
	TCase *tc = tcase_create("ledger");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, dispatch_least_loaded_and_bounded);
	tcase_add_test(tc, burst_is_spread_one_message_per_worker);
	tcase_add_test(tc, small_round_goes_to_one_worker);
	tcase_add_test(tc, worker_death_redispatches_and_late_reply_dropped);
	tcase_add_test(tc, attempts_counted_then_poison);
	tcase_add_test(tc, queue_full_is_busy_at_once);
	tcase_add_test(tc, queue_limit_counts_only_jobs_no_worker_can_take);
	tcase_add_test(tc, timeout_answers_and_cancels);
	tcase_add_test(tc, batch_answered_once_in_order);
	tcase_add_test(tc, batch_mixes_busy_failed_and_ok);
	tcase_add_test(tc, send_failure_keeps_jobs_queued);
	tcase_add_test(tc, degraded_worker_gets_nothing);
	tcase_add_test(tc, drain_refuses_new_and_reports_empty);
	tcase_add_test(tc, abort_answers_everything);
	tcase_add_test(tc, bad_requests_get_an_answer);
	tcase_add_test(tc, bytes_limit_is_busy_at_once_and_loses_nothing);
	tcase_add_test(tc, count_limit_holds_beside_the_bytes_limit);
	tcase_add_test(tc, batch_payload_lives_until_its_last_job_is_answered);
	tcase_add_test(tc, request_messages_are_let_go_on_every_path);
	tcase_add_test(tc, poison_from_a_batch_keeps_its_payload);
	tcase_add_test(tc, poison_not_kept_says_why);
	tcase_add_test(tc, poison_write_failure_says_why);
	tcase_add_test(tc, payloads_copied_once_on_their_way_to_a_worker);
	tcase_add_test(tc, batch_results_packed_once);
	tcase_add_test(tc, trim_once_a_large_burst_has_drained);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(broker_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
