/*
 * test_ops.c - the operations side of corral: the Prometheus exposition
 * and its field-table column, the HTTP endpoint (in process, and on a real
 * supervisor scraped by a real Prometheus), restarts by cause, systemd's
 * notification protocol (a notify socket the test owns), workers = auto
 * under a cgroup CPU quota (a cgroup tree the test builds), and the
 * shipped examples, man pages and completion.
 *
 * Unit cases need nothing but the build.  Process cases use the harness:
 * they wait for events (or, for Prometheus, poll its HTTP API up to a
 * deadline: an outside server has no events to wait on), bind port 0, and
 * kill and reap everything they started.  A case whose tool is missing
 * (promtool, prometheus, systemd-analyze, mandoc) says so and passes; the
 * README's test command installs all of them.
 */
#include <arpa/inet.h>
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/cpus.h"
#include "corral.h"
#include "master/conf.h"
#include "master/httpd.h"
#include "master/metrics.h"
#include "master/notify.h"
#include "master/ops.h"
#include "master/slot.h"
#include "master/sup.h"
#include "tests/harness.h"

#define WAIT_MS 15000 /* what must happen; only a failure waits this long */

static harness H, P; /* corral, and Prometheus */

static const char *plugin(const char *rel)
{
	static char b[4][PATH_MAX];
	static int i;
	i = (i + 1) % 4;
	return h_path(rel, b[i], sizeof b[i]);
}

static const char *tool(const char *env, const char *name)
{
	const char *e = getenv(env);
	return e && *e ? e : name;
}

/* The tool, or NULL (and a note) when it is not installed. */
static const char *have_tool(const char *env, const char *name)
{
	char out[16];
	const char *t = tool(env, name);
	if (h_sh(out, sizeof out, "command -v '%s' >/dev/null 2>&1", t) == 0)
		return t;
	fprintf(stderr, "%s not installed: this check is skipped\n", name);
	return NULL;
}

/* A file of the source tree. */
static const char *src(const char *rel)
{
	static char b[4][PATH_MAX];
	static int i;
	const char *d = getenv("CORRAL_SRCDIR");
	i = (i + 1) % 4;
	snprintf(b[i], sizeof b[i], "%s/%s", d && *d ? d : "..", rel);
	return b[i];
}

static void teardown(void)
{
	h_cleanup(&P);
	h_cleanup(&H);
}

#define START(...) H_START(&H, __VA_ARGS__)

#define EVENT(filter)                                                         \
	({                                                                    \
		const ipc_event *e_ = h_event(&H, filter, WAIT_MS);           \
		ck_assert_msg(e_ != NULL, "no event '%s'", filter);           \
		e_;                                                           \
	})

static void write_file(const char *path, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void write_file(const char *path, const char *fmt, ...)
{
	FILE *f = fopen(path, "w");
	ck_assert_msg(f != NULL, "%s: %s", path, strerror(errno));
	va_list ap;
	va_start(ap, fmt);
	vfprintf(f, fmt, ap);
	va_end(ap);
	ck_assert_int_eq(fclose(f), 0);
}

static void mkdirs(const char *path)
{
	char b[PATH_MAX];
	snprintf(b, sizeof b, "%s", path);
	for (char *p = b + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		mkdir(b, 0755);
		*p = '/';
	}
	mkdir(b, 0755);
}

/* ---- a small HTTP client: one request per connection ---- */

static int dial(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct timeval tv = {10, 0};
	ck_assert_int_ge(fd, 0);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	struct sockaddr_in a = {.sin_family = AF_INET,
	                        .sin_port = htons((uint16_t)port),
	                        .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	ck_assert_msg(connect(fd, (struct sockaddr *)&a, sizeof a) == 0,
	              "connect to port %d: %s", port, strerror(errno));
	return fd;
}

/* Reads until EOF (the server closes); returns the bytes read or -1 on a
 * timeout. */
static long read_all(int fd, char *out, size_t len)
{
	size_t n = 0;
	for (;;) {
		ssize_t r = read(fd, out + n, len - 1 - n);
		if (r == 0)
			break;
		if (r < 0)
			return errno == ECONNRESET ? (long)n : -1;
		n += (size_t)r;
		if (n == len - 1)
			break;
	}
	out[n] = '\0';
	return (long)n;
}

/* Sends raw bytes, reads the whole answer; returns its status code, or 0
 * when the server closed without answering. */
static int http_raw(int port, const char *req, size_t reqlen, char *out,
                    size_t len)
{
	int fd = dial(port);
	ck_assert_int_eq(write(fd, req, reqlen), (ssize_t)reqlen);
	long n = read_all(fd, out, len);
	close(fd);
	ck_assert_msg(n >= 0, "no answer within 10 s");
	if (n == 0)
		return 0;
	ck_assert_msg(strncmp(out, "HTTP/1.1 ", 9) == 0, "answer: %s", out);
	return atoi(out + 9);
}

static int http_get(int port, const char *path, char *out, size_t len)
{
	char req[2048];
	int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: test\r\n"
	                 "Connection: close\r\n\r\n", path);
	return http_raw(port, req, (size_t)n, out, len);
}

static const char *body_of(const char *resp)
{
	const char *b = strstr(resp, "\r\n\r\n");
	return b ? b + 4 : "";
}

/* ---- unit: the Prometheus column of the field tables ---- */

typedef struct tbl {
	const ipc_field *f;
	unsigned n;
} tbl;

static tbl table_at(int i)
{
	switch (i) {
	case 0: return (tbl){ipc_jobstat_fields, ipc_jobstat_nfields};
	case 1: return (tbl){ipc_slot_fields, ipc_slot_nfields};
	case 2: return (tbl){ipc_health_fields, ipc_health_nfields};
	default: return (tbl){ipc_pool_fields, ipc_pool_nfields};
	}
}

static int ends(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);
	return a >= b && strcmp(s + a - b, suffix) == 0;
}

START_TEST(prometheus_column_is_well_formed)
{
	char name[128], label[64], value[64];
	char seen[64][128];
	int nseen = 0, exported = 0;
	for (int t = 0; t < 4; t++) {
		tbl tb = table_at(t);
		char mine[64][128];
		int nmine = 0;
		for (unsigned i = 0; i < tb.n; i++) {
			const ipc_field *f = &tb.f[i];
			if (!f->prom[0])
				continue;
			exported++;
			ck_assert_msg(metrics_parse_spec(f->prom, name, sizeof name,
			                                 label, sizeof label, value,
			                                 sizeof value) == 0,
			              "%s: bad column '%s'", f->key, f->prom);
			ck_assert_msg(f->json != NULL, "%s: exported but has no "
			              "JSON key to name in HELP", f->key);
			int timed = ends(f->json, "_us") || ends(f->json, "_ms");
			ck_assert_msg(timed == (strstr(name, "_seconds") != NULL),
			              "%s: %s: time fields and only they are in "
			              "seconds", f->json, name);
			ck_assert_msg(!strstr(name, "_ms") && !strstr(name, "_us"),
			              "%s: not a base unit", name);
			if (f->type == IPC_T_STR)
				ck_assert_msg(label[0] && !value[0], "%s: a STR "
				              "field is {label}", f->prom);
			else
				ck_assert_msg(!label[0] || value[0], "%s: only "
				              "STR fields have {label}", f->prom);
			if (strcmp(label, "quantile") == 0)
				ck_assert_msg(!ends(name, "_total"), "%s", name);
			int known = 0;
			for (int k = 0; k < nmine; k++)
				known |= strcmp(mine[k], name) == 0;
			if (!known) {
				ck_assert_int_lt(nmine, 64);
				snprintf(mine[nmine++], sizeof mine[0], "%s", name);
			}
		}
		/* A family lives in one table. */
		for (int k = 0; k < nmine; k++) {
			for (int j = 0; j < nseen; j++)
				ck_assert_msg(strcmp(seen[j], mine[k]) != 0,
				              "%s in two tables", mine[k]);
		}
		for (int k = 0; k < nmine; k++)
			memcpy(seen[nseen++], mine[k], sizeof seen[0]);
	}
	ck_assert_int_ge(exported, 30);
	/* Every restart cause is a row, named after it. */
	for (int c = 0; c < IPC_NCAUSES; c++) {
		char spec[128];
		int found = 0;
		snprintf(spec, sizeof spec, "worker_restarts_total{reason=%s}",
		         ipc_cause_name((ipc_cause)c));
		for (unsigned i = 0; i < ipc_slot_nfields; i++)
			found |= strcmp(ipc_slot_fields[i].prom, spec) == 0;
		ck_assert_msg(found, "no row for %s", spec);
	}
	ck_assert_int_ne(metrics_parse_spec("Bad", name, sizeof name, label,
	                                    sizeof label, value, sizeof value),
	                 0);
	ck_assert_int_ne(metrics_parse_spec("a{b=}", name, sizeof name, label,
	                                    sizeof label, value, sizeof value),
	                 0);
	ck_assert_int_ne(metrics_parse_spec("a{b=c", name, sizeof name, label,
	                                    sizeof label, value, sizeof value),
	                 0);
}
END_TEST

START_TEST(plugin_metric_names)
{
	char out[128];
	metrics_plugin_name("beats", out, sizeof out);
	ck_assert_str_eq(out, "corral_plugin_beats");
	metrics_plugin_name("http.requests-ok", out, sizeof out);
	ck_assert_str_eq(out, "corral_plugin_http_requests_ok");
	metrics_plugin_name("bad\xff\xfename", out, sizeof out);
	ck_assert_str_eq(out, "corral_plugin_bad__name");
	metrics_plugin_name("sent_total", out, sizeof out);
	ck_assert_str_eq(out, "corral_plugin_sent_total_value");
	metrics_plugin_name("x_bucket", out, sizeof out);
	ck_assert_str_eq(out, "corral_plugin_x_bucket_value");
	metrics_plugin_name("9lives", out, sizeof out);
	ck_assert_str_eq(out, "corral_plugin_9lives");
}
END_TEST

/* A snapshot of two workers, one with health and odd plugin metrics. */
static void sample_status(ipc_status *st, ipc_worker_status *w)
{
	memset(st, 0, sizeof *st);
	memset(w, 0, 2 * sizeof *w);
	snprintf(st->name, sizeof st->name, "web");
	snprintf(st->state, sizeof st->state, "running");
	st->nworkers = 2;
	st->workers = w;
	st->jobs.ok = 41;
	st->jobs.busy = 2;
	st->jobs.queued = 3;
	st->bad_frames = 1;
	for (int i = 0; i < 2; i++) {
		w[i].slot = i;
		w[i].exit_code = -1;
	}
	snprintf(w[0].state, sizeof w[0].state, "running");
	snprintf(w[1].state, sizeof w[1].state, "backoff");
	w[0].uptime_ms = 1500;
	w[1].restarts = 3;
	w[1].restarts_crash = 2;
	w[1].restarts_hung = 1;
	ipc_health *h = &w[0].health;
	h->pid = 4242;
	h->rss_bytes = 3u << 20;
	h->cpu_us = 2500001;
	h->lag_p50_us = 80;
	h->lag_p99_us = 1234;
	h->lag_max_us = 5000;
	h->util = 0.125;
	h->pool.wait_p99_us = 7;
	h->pool.queued_low = 4;
	h->nmetrics = 5;
	const char *names[] = {"beats", "sent_total", "bad\xffname", "q.len",
	                       "q_len"};
	double vals[] = {7, NAN, INFINITY, 1, 2};
	for (int i = 0; i < 5; i++) {
		snprintf(h->metrics[i].name, sizeof h->metrics[i].name, "%s",
		         names[i]);
		h->metrics[i].value = vals[i];
	}
}

/* Every family: one HELP and one TYPE, then its samples together; no
 * series twice. */
static void check_exposition(const char *text)
{
	char *copy = strdup(text), *save = NULL;
	char families[256][128], series[1024][256], current[128] = "";
	int nf = 0, ns = 0;
	for (char *l = strtok_r(copy, "\n", &save); l;
	     l = strtok_r(NULL, "\n", &save)) {
		if (strncmp(l, "# HELP ", 7) == 0) {
			sscanf(l + 7, "%127s", current);
			for (int i = 0; i < nf; i++)
				ck_assert_msg(strcmp(families[i], current) != 0,
				              "family %s twice", current);
			ck_assert_int_lt(nf, 256);
			snprintf(families[nf++], sizeof families[0], "%s",
			         current);
			continue;
		}
		if (l[0] == '#')
			continue;
		char id[256];
		ck_assert_int_eq(sscanf(l, "%255s", id), 1);
		size_t fl = strcspn(id, "{");
		ck_assert_msg(strlen(current) == fl &&
		                  strncmp(id, current, fl) == 0,
		              "sample %s outside its family %s", id, current);
		for (int i = 0; i < ns; i++)
			ck_assert_msg(strcmp(series[i], id) != 0, "series %s "
			              "twice", id);
		ck_assert_int_lt(ns, 1024);
		snprintf(series[ns++], sizeof series[0], "%s", id);
	}
	free(copy);
}

/* promtool check metrics on text: 1 passed, 0 no promtool. */
static int promtool_passes(const char *text, const char *dir)
{
	char path[PATH_MAX], out[8192];
	const char *pt = have_tool("PROMTOOL", "promtool");
	if (!pt)
		return 0;
	snprintf(path, sizeof path, "%s/metrics.txt", dir);
	write_file(path, "%s", text);
	int rc = h_sh(out, sizeof out, "'%s' check metrics < '%s' 2>&1", pt,
	              path);
	ck_assert_msg(rc == 0, "promtool check metrics failed (%d): %s", rc,
	              out);
	return 1;
}

START_TEST(exposition_from_a_snapshot)
{
	ipc_status st;
	ipc_worker_status w[2];
	sample_status(&st, w);
	metrics_extra x = {.ready_min = 2, .version = "9.9",
	                   .start_time_s = 1700000000.25};
	mbuf b = {0};
	ck_assert_int_eq(metrics_render(&st, &x, &b), 0);
	const char *t = b.p;
	static const char *want[] = {
		"corral_info{name=\"web\",version=\"9.9\"} 1\n",
		"corral_supervisor_state{state=\"running\"} 1\n",
		"corral_start_time_seconds 1700000000.25\n",
		"corral_workers 2\n",
		"corral_workers_running 1\n",
		"corral_workers_ready_min 2\n",
		"corral_bad_frames_total 1\n",
		"# TYPE corral_worker_up gauge\n",
		"corral_worker_up{slot=\"0\"} 1\n",
		"corral_worker_up{slot=\"1\"} 0\n",
		"corral_jobs_queued 3\n",
		"# TYPE corral_jobs_total counter\n",
		"corral_jobs_total{outcome=\"ok\"} 41\n",
		"corral_jobs_total{outcome=\"busy\"} 2\n",
		"corral_worker_state{slot=\"1\",state=\"backoff\"} 1\n",
		"# TYPE corral_worker_restarts_total counter\n",
		"corral_worker_restarts_total{slot=\"1\",reason=\"crash\"} 2\n",
		"corral_worker_restarts_total{slot=\"1\",reason=\"hung\"} 1\n",
		"corral_worker_restarts_total{slot=\"0\",reason=\"reload\"} 0\n",
		"corral_worker_uptime_seconds{slot=\"0\"} 1.500\n",
		"corral_worker_resident_memory_bytes{slot=\"0\"} 3145728\n",
		"# TYPE corral_worker_cpu_seconds_total counter\n",
		"corral_worker_cpu_seconds_total{slot=\"0\"} 2.500001\n",
		"# TYPE corral_worker_lag_seconds summary\n",
		"corral_worker_lag_seconds{slot=\"0\",quantile=\"0.5\"} 0.000080\n",
		"corral_worker_lag_seconds{slot=\"0\",quantile=\"0.99\"} 0.001234\n",
		"corral_worker_lag_seconds{slot=\"0\",quantile=\"1\"} 0.005000\n",
		"corral_worker_loop_utilization_ratio{slot=\"0\"} 0.125\n",
		"corral_pool_wait_seconds{slot=\"0\",quantile=\"0.99\"} 0.000007\n",
		"corral_pool_queued_tasks{slot=\"0\",lane=\"low\"} 4\n",
		"# TYPE corral_plugin_beats gauge\n",
		"corral_plugin_beats{slot=\"0\"} 7\n",
		"corral_plugin_sent_total_value{slot=\"0\"} NaN\n",
		"corral_plugin_bad_name{slot=\"0\"} +Inf\n",
		"corral_plugin_q_len{slot=\"0\"} 1\n",
	};
	for (size_t i = 0; i < sizeof want / sizeof *want; i++)
		ck_assert_msg(strstr(t, want[i]) != NULL, "missing: %s\nin:\n%s",
		              want[i], t);
	/* The worker without health shows no health or pool figures. */
	ck_assert_ptr_null(strstr(t, "corral_worker_lag_seconds{slot=\"1\""));
	ck_assert_ptr_null(strstr(t, "corral_pool_running_tasks{slot=\"1\""));
	/* HELP names the status fields shown. */
	ck_assert_ptr_nonnull(strstr(t, "# HELP corral_worker_lag_seconds "
	                             "corralctl status --json: "
	                             "workers[].lag_p50_us, workers[].lag_p99_us, "
	                             "workers[].lag_max_us (here in seconds).\n"));
	check_exposition(t);
	char dir[] = "/tmp/corral-m-XXXXXX";
	ck_assert_ptr_nonnull(mkdtemp(dir));
	promtool_passes(t, dir);
	char cmd[64];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	ck_assert_int_eq(system(cmd), 0);
	mbuf_free(&b);
}
END_TEST

/* ---- unit: restarts by cause, through the real slot table ---- */

static int dirty_calls;
static void fake_dirty(void *o)
{
	(void)o;
	dirty_calls++;
}
static void fake_reply(void *o, slot *sl, const ipc_frame *f)
{
	(void)o, (void)sl, (void)f;
}
static void fake_bad(void *o, slot *sl, int code)
{
	(void)o, (void)sl, (void)code;
}

static const slot_hooks fake_hooks = {.dirty = fake_dirty,
                                      .reply = fake_reply,
                                      .bad_frame = fake_bad};

/* A slot driven to RUNNING (or only STARTING) with a pretend process. */
static void slot_up(slot *sl, int ready)
{
	slot_event(sl, SLOT_EV_START, "test");
	sl->proc = (proc *)sl; /* never dereferenced by the table */
	sl->pid = 99999;
	slot_event(sl, SLOT_EV_SPAWNED, "test");
	if (ready)
		slot_event(sl, SLOT_EV_READY, "test");
}

START_TEST(restart_causes_follow_the_slot_table)
{
	uv_loop_t loop;
	restart_policy pol = {.delay_ms = 0, .delay_max_ms = 1000,
	                      .min_uptime_ms = 1000, .window_ms = 60000,
	                      .max_restarts = 100};
	slot_timeouts to = {.start_ms = 1000, .heartbeat_ms = 1000,
	                    .shutdown_ms = 1000};
	slot sl;
	ck_assert_int_eq(uv_loop_init(&loop), 0);
	ck_assert_int_eq(slot_init(&sl, &loop, 0, &pol, &to, &fake_hooks, NULL),
	                 0);

	/* Silent while running: the slot's own deadline kills it. */
	slot_up(&sl, 1);
	slot_event(&sl, SLOT_EV_TIMEOUT, NULL);
	ck_assert(sl.kill_wanted);
	sl.killed = 1; /* what slot_kill_now() records */
	slot_exited(&sl, 0, SIGKILL);
	ck_assert_int_eq(sl.state, SLOT_EXITED);
	ck_assert_int_eq(slot_restart_cause(&sl), IPC_CAUSE_HUNG);
	slot_count_restart(&sl);
	ck_assert_uint_eq(sl.restarts_by[IPC_CAUSE_HUNG], 1);
	slot_reap(&sl);
	slot_event(&sl, SLOT_EV_DONE, "test");

	/* Not ready in time: hung too. */
	sl.killed = 0;
	slot_up(&sl, 0);
	slot_event(&sl, SLOT_EV_TIMEOUT, NULL);
	sl.killed = 1;
	slot_exited(&sl, 0, SIGKILL);
	ck_assert_int_eq(slot_restart_cause(&sl), IPC_CAUSE_HUNG);
	slot_reap(&sl);
	slot_event(&sl, SLOT_EV_DONE, "test");

	/* A signal nobody here sent, and a nonzero exit: crashes. */
	sl.killed = 0;
	slot_up(&sl, 1);
	slot_exited(&sl, 0, SIGSEGV);
	ck_assert_int_eq(slot_restart_cause(&sl), IPC_CAUSE_CRASH);
	slot_reap(&sl);
	slot_event(&sl, SLOT_EV_DONE, "test");
	slot_up(&sl, 1);
	slot_exited(&sl, 1, 0);
	ck_assert_int_eq(slot_restart_cause(&sl), IPC_CAUSE_CRASH);
	slot_reap(&sl);
	slot_event(&sl, SLOT_EV_DONE, "test");

	/* A clean exit that the policy restarts. */
	slot_up(&sl, 1);
	slot_exited(&sl, 0, 0);
	ck_assert_int_eq(slot_restart_cause(&sl), IPC_CAUSE_EXIT);
	slot_reap(&sl);
	slot_event(&sl, SLOT_EV_DONE, "test");

	/* A health action names its cause before the kill; counting
	 * clears it. */
	slot_up(&sl, 1);
	sl.cause = IPC_CAUSE_MEMORY;
	slot_event(&sl, SLOT_EV_KILL, "rss over the limit");
	sl.killed = 1;
	slot_exited(&sl, 0, SIGKILL);
	ck_assert_int_eq(slot_restart_cause(&sl), IPC_CAUSE_MEMORY);
	slot_count_restart(&sl);
	ck_assert_uint_eq(sl.restarts_by[IPC_CAUSE_MEMORY], 1);
	ck_assert_int_eq(sl.cause, IPC_CAUSE_CRASH);
	ck_assert_int_eq(slot_restart_cause(&sl), IPC_CAUSE_CRASH); /* SIGKILL */
	slot_reap(&sl);

	slot_close(&sl);
	uv_run(&loop, UV_RUN_DEFAULT);
	ck_assert_int_eq(uv_loop_close(&loop), 0);
	ck_assert_str_eq(ipc_cause_name(IPC_CAUSE_LAG), "lag");
	ck_assert_str_eq(ipc_cause_name(IPC_NCAUSES), "");
}
END_TEST

/* ---- unit: configuration keys ---- */

START_TEST(http_and_ready_min_keys)
{
	config c;
	char err[256];
	config_defaults(&c);
	ck_assert_str_eq(c.http, "");
	ck_assert_uint_eq(c.ready_min, 0);
	static const char *good[] = {"127.0.0.1:9464", "0.0.0.0:0", "*:9464",
	                             "[::1]:9464", "tcp://localhost:9464",
	                             "unix:/run/corral-metrics.sock", ""};
	for (size_t i = 0; i < sizeof good / sizeof *good; i++)
		ck_assert_msg(config_set(&c, "http", good[i], err, sizeof err) ==
		                  0,
		              "%s: %s", good[i], err);
	static const char *bad[] = {"9464", "localhost", "127.0.0.1:99999",
	                            "http://x:1", "[::1:9464"};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		ck_assert_msg(config_set(&c, "http", bad[i], err, sizeof err) ==
		                  CORRAL_ECONFIG,
		              "%s accepted", bad[i]);
		ck_assert_ptr_nonnull(strstr(err, "http"));
	}
	ck_assert_int_eq(config_set(&c, "ready_min", "3", err, sizeof err), 0);
	ck_assert_uint_eq(c.ready_min, 3);
	ck_assert_int_eq(config_set(&c, "ready_min", "all", err, sizeof err), 0);
	ck_assert_uint_eq(c.ready_min, 0);
	ck_assert_int_eq(config_set(&c, "ready_min", "0", err, sizeof err),
	                 CORRAL_ECONFIG);
	config_free(&c);
}
END_TEST

/* ---- unit: the cgroup CPU quota ---- */

static void tree_file(const char *root, const char *rel, const char *text)
{
	char path[PATH_MAX], dir[PATH_MAX];
	snprintf(path, sizeof path, "%s%s", root, rel);
	snprintf(dir, sizeof dir, "%s", path);
	*strrchr(dir, '/') = '\0';
	mkdirs(dir);
	write_file(path, "%s", text);
}

START_TEST(cgroup_cpu_quota)
{
	char root[] = "/tmp/corral-cg-XXXXXX", self[PATH_MAX], src[512],
	     cmd[128];
	ck_assert_ptr_nonnull(mkdtemp(root));
	snprintf(self, sizeof self, "%s/self-cgroup", root);

	/* v2: the smallest limit on the way up; "max" is none. */
	write_file(self, "0::/kubepods/pod1/ctr\n");
	tree_file(root, "/fs/kubepods/pod1/ctr/cpu.max", "max 100000\n");
	char fs[PATH_MAX];
	snprintf(fs, sizeof fs, "%s/fs", root);
	ck_assert_double_eq(cpus_quota(fs, self, src, sizeof src), 0);
	tree_file(root, "/fs/kubepods/pod1/cpu.max", "200000 100000\n");
	ck_assert_double_eq(cpus_quota(fs, self, src, sizeof src), 2);
	ck_assert_ptr_nonnull(strstr(src, "/fs/kubepods/pod1/cpu.max"));
	tree_file(root, "/fs/kubepods/cpu.max", "150000 100000\n");
	ck_assert_double_eq(cpus_quota(fs, self, src, sizeof src), 1.5);
	tree_file(root, "/fs/kubepods/pod1/ctr/cpu.max", "50000 100000\n");
	ck_assert_double_eq(cpus_quota(fs, self, src, sizeof src), 0.5);
	tree_file(root, "/fs/kubepods/pod1/ctr/cpu.max", "garbage\n");
	ck_assert_double_eq(cpus_quota(fs, self, src, sizeof src), 1.5);

	/* v1: cpu,cpuacct hierarchy; -1 is none. */
	snprintf(fs, sizeof fs, "%s/v1", root);
	write_file(self, "12:pids:/x\n4:cpu,cpuacct:/docker/abc\n"
	                 "1:name=systemd:/docker/abc\n");
	tree_file(root, "/v1/cpu,cpuacct/docker/abc/cpu.cfs_quota_us", "-1\n");
	tree_file(root, "/v1/cpu,cpuacct/docker/abc/cpu.cfs_period_us",
	          "100000\n");
	ck_assert_double_eq(cpus_quota(fs, self, src, sizeof src), 0);
	tree_file(root, "/v1/cpu,cpuacct/docker/abc/cpu.cfs_quota_us",
	          "300000\n");
	ck_assert_double_eq(cpus_quota(fs, self, src, sizeof src), 3);
	ck_assert_ptr_nonnull(strstr(src, "cpu.cfs_quota_us"));

	/* No cgroup file, no limit. */
	snprintf(self, sizeof self, "%s/none", root);
	ck_assert_double_eq(cpus_quota(fs, self, src, sizeof src), 0);

	/* The process's own view: quota 1 here, whatever the CPUs. */
	cpus_info ci;
	unsigned all = cpus_usable(&ci);
	ck_assert_uint_ge(all, 1);
	FILE *f = fopen("/proc/self/cgroup", "r");
	char line[4096], v2[4096] = "";
	while (f && fgets(line, sizeof line, f))
		if (strncmp(line, "0::", 3) == 0)
			sscanf(line + 3, "%4095s", v2);
	if (f)
		fclose(f);
	if (v2[0]) {
		char rel[PATH_MAX];
		snprintf(rel, sizeof rel, "/own%s/cpu.max",
		         strcmp(v2, "/") ? v2 : "");
		tree_file(root, rel, "100000 100000\n");
		snprintf(fs, sizeof fs, "%s/own", root);
		setenv("CORRAL_CGROUP_ROOT", fs, 1);
		ck_assert_uint_eq(cpus_usable(&ci), 1);
		ck_assert_double_eq(ci.quota, 1);
		ck_assert_uint_eq(ci.affinity, all);
		unsetenv("CORRAL_CGROUP_ROOT");
	}
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
	ck_assert_int_eq(system(cmd), 0);
}
END_TEST

/* ---- unit: sd_notify through a socket of our own ---- */

typedef struct dgram {
	char text[512];
	pid_t pid; /* the sender, from SCM_CREDENTIALS */
} dgram;

static int notify_socket(const char *path)
{
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0), one = 1;
	ck_assert_int_ge(fd, 0);
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	snprintf(a.sun_path, sizeof a.sun_path, "%s", path);
	unlink(path);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
	setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof one);
	setenv("NOTIFY_SOCKET", path, 1);
	return fd;
}

/* The next datagram, waiting up to ms; 0 when none came. */
static int next_dgram(int fd, dgram *d, int ms)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	if (poll(&p, 1, ms) != 1)
		return 0;
	char cbuf[CMSG_SPACE(sizeof(struct ucred))];
	struct iovec iov = {.iov_base = d->text, .iov_len = sizeof d->text - 1};
	struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1,
	                   .msg_control = cbuf, .msg_controllen = sizeof cbuf};
	ssize_t n = recvmsg(fd, &m, 0);
	ck_assert_int_ge(n, 0);
	d->text[n] = '\0';
	d->pid = 0;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c))
		if (c->cmsg_level == SOL_SOCKET &&
		    c->cmsg_type == SCM_CREDENTIALS) {
			struct ucred u;
			memcpy(&u, CMSG_DATA(c), sizeof u);
			d->pid = u.pid;
		}
	return 1;
}

#define NEXT_IS(fd, expect)                                                   \
	do {                                                                  \
		dgram d_;                                                     \
		ck_assert_msg(next_dgram(fd, &d_, 2000), "nothing; wanted %s",\
		              expect);                                        \
		ck_assert_str_eq(d_.text, expect);                            \
	} while (0)

/*
 * A supervisor's notifications, read as they come by a thread of ours: a
 * datagram socket holds only net.unix.max_dgram_qlen (10) unread messages,
 * and past that the sender's sd_notify() blocks -- as systemd reads at
 * once, so must the test.
 */
typedef struct notes {
	int fd;
	pthread_t th;
	pthread_mutex_t mu;
	dgram v[4096];
	int n;
	volatile int stop;
} notes;

static void *notes_run(void *arg)
{
	notes *ns = arg;
	while (!ns->stop) {
		dgram d;
		if (!next_dgram(ns->fd, &d, 50))
			continue;
		pthread_mutex_lock(&ns->mu);
		if (ns->n < 4096)
			ns->v[ns->n++] = d;
		pthread_mutex_unlock(&ns->mu);
	}
	return NULL;
}

static notes *notes_start(const char *path)
{
	notes *ns = calloc(1, sizeof *ns);
	ck_assert_ptr_nonnull(ns);
	ns->fd = notify_socket(path);
	pthread_mutex_init(&ns->mu, NULL);
	ck_assert_int_eq(pthread_create(&ns->th, NULL, notes_run, ns), 0);
	return ns;
}

/* Stops the reader once every datagram sent so far is in. */
static void notes_stop(notes *ns)
{
	struct timespec ts = {0, 150 * 1000000};
	nanosleep(&ts, NULL); /* a datagram sent is queued: one more poll */
	ns->stop = 1;
	pthread_join(ns->th, NULL);
	dgram d;
	while (ns->n < 4096 && next_dgram(ns->fd, &d, 0))
		ns->v[ns->n++] = d;
	close(ns->fd);
}

/* Datagrams so far whose text starts with prefix and contains part. */
static int notes_count(notes *ns, const char *prefix, const char *part)
{
	int c = 0;
	pthread_mutex_lock(&ns->mu);
	for (int i = 0; i < ns->n; i++)
		c += strncmp(ns->v[i].text, prefix, strlen(prefix)) == 0 &&
		     (!part || strstr(ns->v[i].text, part));
	pthread_mutex_unlock(&ns->mu);
	return c;
}

/* Waits up to WAIT_MS until notes_count reaches at least want. */
static int notes_wait(notes *ns, const char *prefix, const char *part,
                      int want)
{
	uint64_t deadline = h_now_ms() + WAIT_MS;
	int c;
	while ((c = notes_count(ns, prefix, part)) < want &&
	       h_now_ms() < deadline) {
		struct timespec ts = {0, 20 * 1000000};
		nanosleep(&ts, NULL);
	}
	return c;
}

static void never_fires(uv_timer_t *t)
{
	(void)t;
	ck_abort_msg("a ten-minute timer fired");
}

START_TEST(notify_messages_and_their_order)
{
#if !HAVE_LIBSYSTEMD
	fprintf(stderr, "built without libsystemd: skipped\n");
	return;
#endif
	char path[64], expect[256];
	snprintf(path, sizeof path, "/tmp/corral-n-%ld.sock", (long)getpid());
	int fd = notify_socket(path);
	setenv("WATCHDOG_USEC", "100000", 1); /* every 50 ms */
	char pid[32];
	snprintf(pid, sizeof pid, "%ld", (long)getpid());
	setenv("WATCHDOG_PID", pid, 1);
	uv_loop_t loop;
	ck_assert_int_eq(uv_loop_init(&loop), 0);
	ck_assert_int_eq(notify_init(&loop), 0);
	ck_assert(notify_enabled());

	notify_view v = {.state = "starting", .running = 0, .total = 2};
	notify_update(&v);
	NEXT_IS(fd, "STATUS=starting: 0/2 workers running, 0.0 jobs/s, "
	            "0 restarts");
	notify_update(&v); /* nothing changed: nothing sent */
	v.running = 1;
	v.jobs_per_s = 3; /* not a change of its own */
	notify_update(&v);
	NEXT_IS(fd, "STATUS=starting: 1/2 workers running, 3.0 jobs/s, "
	            "0 restarts");
	v.running = 2;
	v.state = "running";
	notify_update(&v);
	snprintf(expect, sizeof expect, "READY=1\nMAINPID=%ld\nSTATUS=running: "
	         "2/2 workers running, 3.0 jobs/s, 0 restarts", (long)getpid());
	NEXT_IS(fd, expect);
	v.running = 1;
	v.restarts = 1;
	notify_update(&v);
	NEXT_IS(fd, "STATUS=running: 1/2 workers running, 3.0 jobs/s, "
	            "1 restart");
	v.running = 2;
	notify_update(&v); /* ready once only */
	NEXT_IS(fd, "STATUS=running: 2/2 workers running, 3.0 jobs/s, "
	            "1 restart");

	notify_reloading();
	dgram d;
	ck_assert(next_dgram(fd, &d, 2000));
	ck_assert_msg(strncmp(d.text, "RELOADING=1\nMONOTONIC_USEC=", 27) == 0,
	              "%s", d.text);
	ck_assert_ptr_nonnull(strstr(d.text, "\nSTATUS=reloading: 2/2 workers "
	                             "running, 3.0 jobs/s, 1 restart"));
	ck_assert_int_eq(d.pid, getpid());
	notify_update(&v); /* a reload in progress is not READY */
	notify_reloaded(1);
	NEXT_IS(fd, "READY=1\nSTATUS=reloaded: 2/2 workers running, 3.0 jobs/s,"
	            " 1 restart");

	v.state = "draining";
	v.stopping = 1;
	notify_update(&v);
	NEXT_IS(fd, "STOPPING=1\nSTATUS=draining: 2/2 workers running, 3.0 "
	            "jobs/s, 1 restart");
	v.state = "stopping";
	v.running = 0;
	notify_update(&v);
	NEXT_IS(fd, "STATUS=stopping: 0/2 workers running, 3.0 jobs/s, "
	            "1 restart");
	notify_reloading(); /* too late: nothing */

	/* The watchdog: from the loop's timer. */
	/* The watchdog timer keeps no loop alive (it is unreferenced):
	 * something else must, as the supervisor's handles do. */
	uv_timer_t keep;
	uv_timer_init(&loop, &keep);
	uv_timer_start(&keep, never_fires, 600000, 0);
	int wd = 0;
	for (int i = 0; i < 500 && wd < 2; i++) {
		uv_run(&loop, UV_RUN_NOWAIT);
		while (next_dgram(fd, &d, 10)) {
			ck_assert_str_eq(d.text, "WATCHDOG=1");
			wd++;
		}
	}
	ck_assert_int_ge(wd, 2);
	uv_close((uv_handle_t *)&keep, NULL);
	notify_close();
	uv_run(&loop, UV_RUN_DEFAULT);
	ck_assert_int_eq(uv_loop_close(&loop), 0);
	close(fd);
	unlink(path);
}
END_TEST

START_TEST(notify_is_silent_without_a_socket)
{
	uv_loop_t loop;
	unsetenv("NOTIFY_SOCKET");
	setenv("WATCHDOG_USEC", "100000", 1);
	ck_assert_int_eq(uv_loop_init(&loop), 0);
	ck_assert_int_eq(notify_init(&loop), 0);
	ck_assert(!notify_enabled());
	notify_view v = {.state = "running", .running = 1, .total = 1};
	notify_update(&v);
	ck_assert_str_eq(notify_last(), "");
	/* No watchdog timer: the loop has nothing to wait for. */
	ck_assert_int_eq(uv_run(&loop, UV_RUN_NOWAIT), 0);
	ck_assert_int_eq(uv_loop_alive(&loop), 0);
	notify_close();
	ck_assert_int_eq(uv_loop_close(&loop), 0);
}
END_TEST

/* ---- unit: the HTTP server, on a loop of its own ---- */

typedef struct srv {
	uv_loop_t loop;
	uv_async_t stop;
	httpd *h;
	pthread_t thread;
	int port;
	int cloexec_ok; /* every socket had FD_CLOEXEC at the last request */
} srv;

static void check_cloexec(srv *s)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	s->cloexec_ok = 1;
	while (d && (e = readdir(d))) {
		char link[PATH_MAX], target[64];
		int fd = atoi(e->d_name);
		if (fd < 3)
			continue;
		snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
		ssize_t n = readlink(link, target, sizeof target - 1);
		if (n <= 0)
			continue;
		target[n] = '\0';
		if (strncmp(target, "socket:", 7) == 0 &&
		    !(fcntl(fd, F_GETFD) & FD_CLOEXEC))
			s->cloexec_ok = 0;
	}
	if (d)
		closedir(d);
}

static void echo_handler(void *arg, const char *path, int head,
                         httpd_reply *r)
{
	srv *s = arg;
	(void)head;
	check_cloexec(s);
	r->status = strcmp(path, "/missing") == 0 ? 404 : 200;
	r->type = "text/plain";
	r->body = malloc(strlen(path) + 2);
	r->len = (size_t)sprintf(r->body, "%s\n", path);
}

static void on_stop(uv_async_t *a)
{
	srv *s = a->data;
	httpd_close(s->h);
	uv_close((uv_handle_t *)a, NULL);
}

static void *run_loop(void *arg)
{
	srv *s = arg;
	uv_run(&s->loop, UV_RUN_DEFAULT);
	return NULL;
}

static void srv_start(srv *s, const httpd_limits *lim)
{
	char err[256];
	listener l;
	memset(s, 0, sizeof *s);
	ck_assert_int_eq(listen_single("http", "127.0.0.1:0", &l, err,
	                               sizeof err), 0);
	ck_assert_int_eq(fcntl(l.fd, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
	s->port = atoi(strrchr(l.desc, ':') + 1);
	ck_assert_int_eq(uv_loop_init(&s->loop), 0);
	ck_assert_int_eq(uv_async_init(&s->loop, &s->stop, on_stop), 0);
	s->stop.data = s;
	ck_assert_int_eq(httpd_start(&s->h, &s->loop, l.fd, lim, echo_handler,
	                             s), 0);
	ck_assert_int_eq(pthread_create(&s->thread, NULL, run_loop, s), 0);
}

static void srv_stop(srv *s)
{
	uv_async_send(&s->stop);
	pthread_join(s->thread, NULL);
	ck_assert_int_eq(uv_loop_close(&s->loop), 0);
}

START_TEST(httpd_answers_and_refuses)
{
	srv s;
	char out[65536];
	httpd_limits lim = {.max_conns = 3, .max_request = 4096,
	                    .timeout_ms = 300};
	srv_start(&s, &lim);

	ck_assert_int_eq(http_get(s.port, "/metrics?x=1", out, sizeof out), 200);
	ck_assert_str_eq(body_of(out), "/metrics\n");
	ck_assert_ptr_nonnull(strstr(out, "Content-Length: 9\r\n"));
	ck_assert_ptr_nonnull(strstr(out, "Connection: close\r\n"));
	ck_assert(s.cloexec_ok);
	ck_assert_int_eq(http_get(s.port, "/missing", out, sizeof out), 404);

	const char *head = "HEAD /x HTTP/1.1\r\nHost: t\r\n\r\n";
	ck_assert_int_eq(http_raw(s.port, head, strlen(head), out, sizeof out),
	                 200);
	ck_assert_ptr_nonnull(strstr(out, "Content-Length: 3\r\n"));
	ck_assert_str_eq(body_of(out), "");

	const char *post = "POST /x HTTP/1.1\r\nHost: t\r\n"
	                   "Content-Length: 0\r\n\r\n";
	ck_assert_int_eq(http_raw(s.port, post, strlen(post), out, sizeof out),
	                 405);
	ck_assert_ptr_nonnull(strstr(out, "Allow: GET, HEAD\r\n"));
	const char *body = "GET /x HTTP/1.1\r\nHost: t\r\n"
	                   "Content-Length: 4\r\n\r\nabcd";
	ck_assert_int_eq(http_raw(s.port, body, strlen(body), out, sizeof out),
	                 413);
	const char *junk = "\x01\x02 garbage\r\n\r\n";
	ck_assert_int_eq(http_raw(s.port, junk, strlen(junk), out, sizeof out),
	                 400);
	const char *http10 = "GET / HTTP/1.0\r\n\r\n";
	ck_assert_int_eq(http_raw(s.port, http10, strlen(http10), out,
	                          sizeof out), 200);

	/* Oversized: the URL (414), the headers (431). */
	char big[8192];
	int n = snprintf(big, sizeof big, "GET /");
	memset(big + n, 'a', 2000);
	n += 2000;
	n += snprintf(big + n, sizeof big - (size_t)n, " HTTP/1.1\r\n\r\n");
	ck_assert_int_eq(http_raw(s.port, big, (size_t)n, out, sizeof out),
	                 414);
	n = snprintf(big, sizeof big, "GET / HTTP/1.1\r\nX-Big: ");
	memset(big + n, 'b', 5000);
	n += 5000;
	n += snprintf(big + n, sizeof big - (size_t)n, "\r\n\r\n");
	ck_assert_int_eq(http_raw(s.port, big, (size_t)n, out, sizeof out),
	                 431);

	/* A client that says nothing, or half a request, is closed at the
	 * deadline without an answer; the server goes on answering. */
	uint64_t t0 = h_now_ms();
	int idle = dial(s.port);
	int half = dial(s.port);
	ck_assert_int_eq(write(half, "GET /slow HT", 12), 12);
	ck_assert_int_eq(read_all(idle, out, sizeof out), 0);
	ck_assert_int_eq(read_all(half, out, sizeof out), 0);
	ck_assert_uint_ge(h_now_ms() - t0, 250);
	close(idle);
	close(half);

	ck_assert_int_eq(http_get(s.port, "/again", out, sizeof out), 200);
	srv_stop(&s);

	/* At max_conns, a new connection pushes out one that idles without
	 * a request (a deadline long enough that none times out meanwhile):
	 * exactly one of the three is closed, and the new one is served. */
	lim.timeout_ms = 60000;
	srv_start(&s, &lim);
	int c[3] = {dial(s.port), dial(s.port), dial(s.port)};
	ck_assert_int_eq(http_get(s.port, "/fourth", out, sizeof out), 200);
	ck_assert_str_eq(body_of(out), "/fourth\n");
	struct pollfd p[3];
	for (int i = 0; i < 3; i++)
		p[i] = (struct pollfd){.fd = c[i], .events = POLLIN};
	ck_assert_int_eq(poll(p, 3, 10000), 1);
	int pushed = -1;
	for (int i = 0; i < 3; i++)
		if (p[i].revents)
			pushed = i;
	ck_assert_int_eq(read_all(c[pushed], out, sizeof out), 0);
	/* The other two still serve a request each. */
	for (int i = 0; i < 3; i++) {
		if (i == pushed)
			continue;
		const char *r = "GET /kept HTTP/1.1\r\nConnection: close\r\n\r\n";
		ck_assert_int_eq(write(c[i], r, strlen(r)), (ssize_t)strlen(r));
		ck_assert_int_gt(read_all(c[i], out, sizeof out), 0);
		ck_assert_str_eq(body_of(out), "/kept\n");
	}
	for (int i = 0; i < 3; i++)
		close(c[i]);
	srv_stop(&s);
}
END_TEST

START_TEST(httpd_keeps_connections_alive)
{
	srv s;
	char out[65536];
	srv_start(&s, NULL);
	int fd = dial(s.port);
	/* Two requests, one after the other, on one connection. */
	const char *r1 = "GET /one HTTP/1.1\r\nHost: t\r\n\r\n";
	const char *r2 = "GET /two HTTP/1.1\r\nHost: t\r\n"
	                 "Connection: close\r\n\r\n";
	ck_assert_int_eq(write(fd, r1, strlen(r1)), (ssize_t)strlen(r1));
	ssize_t n = 0;
	while (!strstr(out, "/one\n")) {
		ssize_t r = read(fd, out + n, sizeof out - 1 - (size_t)n);
		ck_assert_int_gt(r, 0);
		n += r;
		out[n] = '\0';
	}
	ck_assert_ptr_nonnull(strstr(out, "Connection: keep-alive\r\n"));
	ck_assert_int_eq(write(fd, r2, strlen(r2)), (ssize_t)strlen(r2));
	ck_assert_int_gt(read_all(fd, out, sizeof out), 0);
	ck_assert_ptr_nonnull(strstr(out, "Connection: close\r\n"));
	ck_assert_str_eq(body_of(out), "/two\n");
	close(fd);
	/* Pipelined: the first is answered, and it is the last. */
	fd = dial(s.port);
	char both[256];
	snprintf(both, sizeof both, "%s%s", r1, r1);
	ck_assert_int_eq(write(fd, both, strlen(both)), (ssize_t)strlen(both));
	ck_assert_int_gt(read_all(fd, out, sizeof out), 0);
	ck_assert_ptr_nonnull(strstr(out, "Connection: close\r\n"));
	ck_assert_str_eq(body_of(out), "/one\n");
	close(fd);
	srv_stop(&s);
}
END_TEST

/* ---- unit: /healthz and /readyz against a supervisor's slot table ---- */

START_TEST(readyz_follows_ready_min)
{
	static config cfg;
	static sup s;
	static slot slots[3];
	slot *table[3] = {&slots[0], &slots[1], &slots[2]};
	ops o;
	httpd_reply r;
	config_defaults(&cfg);
	memset(&s, 0, sizeof s);
	memset(slots, 0, sizeof slots);
	memset(&o, 0, sizeof o);
	s.cfg = &cfg;
	s.slots = table;
	s.nslots = 3;
	s.state = SUP_RUNNING;
	o.s = &s;
	cfg.ready_min = 2;
	slots[0].state = SLOT_RUNNING;
	slots[1].state = SLOT_STARTING;
	slots[2].state = SLOT_BACKOFF;

	ops_handle(&o, "/readyz", 0, &r);
	ck_assert_int_eq(r.status, 503);
	ck_assert_str_eq(r.body, "not ready: 1/3 workers running "
	                         "(ready_min 2)\n");
	free(r.body);
	slots[1].state = SLOT_RUNNING;
	ops_handle(&o, "/readyz", 0, &r);
	ck_assert_int_eq(r.status, 200);
	ck_assert_str_eq(r.body, "ready: 2/3 workers running\n");
	free(r.body);
	ops_handle(&o, "/healthz", 0, &r);
	ck_assert_int_eq(r.status, 200);
	free(r.body);
	s.state = SUP_DRAINING;
	ops_handle(&o, "/readyz", 0, &r);
	ck_assert_int_eq(r.status, 503);
	ck_assert_str_eq(r.body, "not ready: supervisor draining\n");
	free(r.body);
	ops_handle(&o, "/healthz", 0, &r);
	ck_assert_int_eq(r.status, 200);
	ck_assert_str_eq(r.body, "ok: supervisor draining\n");
	free(r.body);
	ops_handle(&o, "/nope", 0, &r);
	ck_assert_int_eq(r.status, 404);
	free(r.body);
	/* /metrics from the same snapshot as STATUS (no broker here). */
	ops_handle(&o, "/metrics", 0, &r);
	ck_assert_int_eq(r.status, 200);
	ck_assert_str_eq(r.type, "text/plain; version=0.0.4; charset=utf-8");
	r.body = realloc(r.body, r.len + 1);
	r.body[r.len] = '\0';
	ck_assert_ptr_nonnull(strstr(r.body, "corral_workers_running 2\n"));
	ck_assert_ptr_nonnull(strstr(r.body, "corral_supervisor_state{state="
	                                     "\"draining\"} 1\n"));
	free(r.body);
	config_free(&cfg);
}
END_TEST

/* ---- process: the endpoint on a real supervisor ---- */

/* Scrapes /metrics until its body has want (every scrape is a real
 * request; health figures arrive on the workers' schedule). */
static void metrics_until(int port, const char *want, char *out, size_t len)
{
	uint64_t deadline = h_now_ms() + WAIT_MS;
	for (;;) {
		ck_assert_int_eq(http_get(port, "/metrics", out, len), 200);
		if (strstr(body_of(out), want))
			return;
		ck_assert_msg(h_now_ms() < deadline, "no '%s' in:\n%s", want,
		              body_of(out));
		struct timespec ts = {0, 50 * 1000000};
		nanosleep(&ts, NULL);
	}
}

START_TEST(metrics_endpoint_on_a_running_supervisor)
{
	char out[1 << 18], cmd[PATH_MAX * 2], note[512];
	ck_assert_int_eq(h_prepare(&H), 0);
	/* systemd without a watchdog: READY and STATUS, never WATCHDOG */
	snprintf(note, sizeof note, "%s/notify", H.dir);
	notes *ns = notes_start(note);
	unsetenv("WATCHDOG_USEC");
	START("-w", "2", "--http", "127.0.0.1:0", "--restart-delay", "0",
	      plugin("tests/badmetric.so"));
	const ipc_event *e = EVENT("kind=slot to=running");
	pid_t first = (pid_t)e->pid;
	int first_slot = e->slot;
	EVENT("kind=slot to=running");
	int port = h_listen_port(H.sup);
	ck_assert_int_gt(port, 0);

	ck_assert_int_eq(http_get(port, "/healthz", out, sizeof out), 200);
	ck_assert_str_eq(body_of(out), "ok: supervisor running\n");
	ck_assert_int_eq(http_get(port, "/readyz", out, sizeof out), 200);
	/* Health reports (and the plugin's metrics in them) come on the
	 * workers' schedule: scrape until both workers' are in. */
	metrics_until(port, "corral_plugin_nan{slot=\"1\"}", out, sizeof out);
	metrics_until(port, "corral_plugin_nan{slot=\"0\"}", out, sizeof out);
	ck_assert_ptr_nonnull(strstr(out, "Content-Type: text/plain; "
	                                  "version=0.0.4; charset=utf-8\r\n"));
	const char *m = body_of(out);
	ck_assert_ptr_nonnull(strstr(m, "corral_workers_running 2\n"));
	ck_assert_ptr_nonnull(strstr(m, "corral_worker_up{slot=\"1\"} 1\n"));
	ck_assert_ptr_nonnull(strstr(m, "corral_plugin_fine{slot=\"0\"} 3.5\n"));
	ck_assert_ptr_nonnull(strstr(m, "corral_plugin_nan{slot=\"1\"} NaN\n"));
	ck_assert_ptr_nonnull(strstr(m, "corral_plugin_inf{slot=\"1\"} +Inf\n"));
	check_exposition(m);
	promtool_passes(m, H.dir);

	/* A crash is counted under its cause, in both views. */
	kill(first, SIGKILL);
	char f[64];
	snprintf(f, sizeof f, "kind=slot slot=%d to=running", first_slot);
	EVENT(f);
	ck_assert_int_eq(http_get(port, "/metrics", out, sizeof out), 200);
	char want[128];
	snprintf(want, sizeof want, "corral_worker_restarts_total{slot=\"%d\","
	         "reason=\"crash\"} 1\n", first_slot);
	ck_assert_msg(strstr(body_of(out), want) != NULL, "%s", body_of(out));
	snprintf(cmd, sizeof cmd, "'%s' --rundir '%s' status --json | '%s' -e "
	         "'.workers[%d].restarts_by.crash == 1 and "
	         ".workers[%d].restarts_by.hung == 0'", h_ctl(), H.rundir,
	         tool("JQ", "jq"), first_slot, first_slot);
	ck_assert_int_eq(h_sh(note, sizeof note, "%s", cmd), 0);

	kill(H.sup, SIGTERM);
	ck_assert_int_eq(h_wait_exit(&H, WAIT_MS), 0);
	notes_stop(ns);
	ck_assert_int_eq(notes_count(ns, "WATCHDOG=1", NULL), 0);
	ck_assert_int_eq(notes_count(ns, "READY=1\n", NULL),
	                 HAVE_LIBSYSTEMD ? 1 : 0);
	free(ns);
}
END_TEST

START_TEST(hung_workers_are_counted_as_hung)
{
	char out[1 << 18];
	START("-w", "1", "--http", "127.0.0.1:0", "--heartbeat-timeout",
	      "300ms", "--health-interval", "100ms", "--standby", "0",
	      "--restart-delay", "1h", "--restart-delay-max", "1h",
	      "--set", "after=200", plugin("examples/hang.so"));
	EVENT("kind=slot slot=0 to=running");
	EVENT("kind=slot slot=0 to=backoff");
	int port = h_listen_port(H.sup);
	ck_assert_int_gt(port, 0);
	ck_assert_int_eq(http_get(port, "/metrics", out, sizeof out), 200);
	ck_assert_msg(strstr(body_of(out), "corral_worker_restarts_total{"
	                                   "slot=\"0\",reason=\"hung\"} 1\n"),
	              "%s", body_of(out));
	ck_assert_ptr_nonnull(strstr(body_of(out), "corral_worker_restarts_"
	                             "total{slot=\"0\",reason=\"crash\"} 0\n"));
}
END_TEST

START_TEST(readyz_is_503_with_a_reason_until_ready_min)
{
	char out[65536];
	/* Each worker exits once at start and then waits out a long
	 * restart delay: none is running. */
	START("-w", "2", "--http", "127.0.0.1:0", "--standby", "0",
	      "--restart-delay", "1h", "--restart-delay-max", "1h", "--set",
	      "mode=exit", "--set", "after=1", plugin("examples/crashy.so"));
	EVENT("kind=slot to=backoff");
	EVENT("kind=slot to=backoff");
	int port = h_listen_port(H.sup);
	ck_assert_int_gt(port, 0);
	ck_assert_int_eq(http_get(port, "/readyz", out, sizeof out), 503);
	ck_assert_str_eq(body_of(out), "not ready: 0/2 workers running "
	                               "(ready_min 2)\n");
	ck_assert_int_eq(http_get(port, "/healthz", out, sizeof out), 200);
	ck_assert_int_eq(http_get(port, "/metrics", out, sizeof out), 200);
	ck_assert_ptr_nonnull(strstr(body_of(out), "corral_workers_running 0\n"));
	kill(H.sup, SIGTERM);
	ck_assert_int_eq(h_wait_exit(&H, WAIT_MS), 0);
}
END_TEST

START_TEST(http_address_errors_stop_the_start)
{
	char err[256];
	listener l;
	ck_assert_int_eq(listen_single("http", "127.0.0.1:0", &l, err,
	                               sizeof err), 0);
	char addr[64];
	snprintf(addr, sizeof addr, "127.0.0.1:%s", strrchr(l.desc, ':') + 1);
	START("-w", "1", "--http", addr, plugin("examples/hello.so"));
	ck_assert_int_eq(h_wait_exit(&H, WAIT_MS), 1);
	ck_assert_ptr_nonnull(strstr(H.log, "cannot listen on tcp://127.0.0.1:"));
	ck_assert_ptr_null(strstr(H.log, "spawning"));
	listen_single_close(&l);
	h_cleanup(&H);
	START("-w", "1", "--http", "localhost", plugin("examples/hello.so"));
	ck_assert_int_eq(h_wait_exit(&H, WAIT_MS), 2);
	ck_assert_ptr_nonnull(strstr(H.log, "bad value 'localhost' for http"));
}
END_TEST

/* ---- process: a real Prometheus scrapes corral ---- */

/* GET against Prometheus's API: the value of the query's first result,
 * or "" when there is none yet. */
static void prom_query(int port, const char *query, char *val, size_t len)
{
	char path[512], out[65536];
	snprintf(path, sizeof path, "/api/v1/query?query=%s", query);
	val[0] = '\0';
	if (http_get(port, path, out, sizeof out) != 200)
		return;
	json_error_t je;
	json_t *root = json_loads(body_of(out), 0, &je);
	json_t *res = json_object_get(json_object_get(root, "data"), "result");
	json_t *v = json_array_get(json_object_get(json_array_get(res, 0),
	                                           "value"), 1);
	if (json_is_string(v))
		snprintf(val, len, "%s", json_string_value(v));
	json_decref(root);
}

static void wait_query(int port, const char *query, const char *want)
{
	char val[64] = "";
	uint64_t deadline = h_now_ms() + 30000;
	while (h_now_ms() < deadline) {
		prom_query(port, query, val, sizeof val);
		if (strcmp(val, want) == 0)
			return;
		struct timespec ts = {0, 200 * 1000000};
		nanosleep(&ts, NULL);
	}
	ck_abort_msg("Prometheus: %s is '%s', wanted '%s'", query, val, want);
}

START_TEST(prometheus_scrapes_corral)
{
	const char *prom = have_tool("PROMETHEUS", "prometheus");
	if (!prom)
		return;
	START("-w", "2", "--http", "127.0.0.1:0", plugin("examples/hello.so"));
	EVENT("kind=slot to=running");
	EVENT("kind=slot to=running");
	int port = h_listen_port(H.sup);
	ck_assert_int_gt(port, 0);

	char cfg[PATH_MAX], shcmd[4 * PATH_MAX];
	ck_assert_int_eq(h_prepare(&P), 0);
	snprintf(cfg, sizeof cfg, "%s/prometheus.yml", P.dir);
	write_file(cfg, "global:\n  scrape_interval: 1s\n"
	                "  evaluation_interval: 1s\n"
	                "scrape_configs:\n  - job_name: corral\n"
	                "    static_configs:\n"
	                "      - targets: ['127.0.0.1:%d']\n", port);
	snprintf(shcmd, sizeof shcmd, "exec '%s' --config.file='%s' "
	         "--storage.tsdb.path='%s/data' "
	         "--web.listen-address=127.0.0.1:0 > '%s/prometheus.log' 2>&1",
	         prom, cfg, P.dir, P.dir);
	const char *argv[] = {"/bin/sh", "-c", shcmd, NULL};
	ck_assert_int_eq(h_spawn(&P, argv), 0);
	int pport = 0;
	uint64_t deadline = h_now_ms() + 30000;
	while ((pport = h_listen_port(P.sup)) <= 0 && h_now_ms() < deadline) {
		struct timespec ts = {0, 50 * 1000000};
		nanosleep(&ts, NULL);
	}
	ck_assert_msg(pport > 0, "Prometheus did not listen");
	wait_query(pport, "up%7Bjob%3D%22corral%22%7D", "1");
	wait_query(pport, "corral_workers_running", "2");
	wait_query(pport, "sum(corral_worker_up)", "2");
}
END_TEST

/* ---- process: systemd's notifications ---- */

START_TEST(sd_notify_ready_status_watchdog_stopping)
{
#if !HAVE_LIBSYSTEMD
	fprintf(stderr, "built without libsystemd: skipped\n");
	return;
#endif
	char path[128];
	ck_assert_int_eq(h_prepare(&H), 0);
	snprintf(path, sizeof path, "%s/notify", H.dir);
	notes *ns = notes_start(path);
	setenv("WATCHDOG_USEC", "400000", 1); /* every 200 ms */
	START("-w", "2", plugin("examples/hello.so"));
	pid_t me = H.sup;
	const ipc_event *e = EVENT("kind=slot to=running");
	pid_t victim = (pid_t)e->pid;
	EVENT("kind=slot to=running");
	ck_assert_int_eq(notes_wait(ns, "READY=1\n", NULL, 1), 1);
	ck_assert_int_ge(notes_wait(ns, "WATCHDOG=1", NULL, 2), 2);

	/* A crash and its replacement: STATUS follows. */
	kill(victim, SIGKILL);
	ck_assert_int_ge(notes_wait(ns, "STATUS=running: 2/2 workers running, ",
	                            ", 1 restart", 1), 1);
	kill(me, SIGTERM);
	ck_assert_int_eq(h_wait_exit(&H, WAIT_MS), 0);
	notes_stop(ns);

	/* The whole conversation, watchdog beats aside. */
	char mainpid[160];
	snprintf(mainpid, sizeof mainpid, "READY=1\nMAINPID=%ld\nSTATUS="
	         "running: 2/2 workers running, ", (long)me);
	int readies = 0, stops = 0, ready_at = -1, stop_at = -1;
	for (int i = 0; i < ns->n; i++) {
		const char *t = ns->v[i].text;
		ck_assert_msg(ns->v[i].pid == me, "datagram from pid %ld: %s",
		              (long)ns->v[i].pid, t);
		if (strcmp(t, "WATCHDOG=1") == 0)
			continue;
		if (strncmp(t, "READY=1\n", 8) == 0) {
			readies++;
			ready_at = i;
			ck_assert_msg(strncmp(t, mainpid, strlen(mainpid)) == 0,
			              "%s", t);
		} else if (strncmp(t, "STOPPING=1\n", 11) == 0) {
			stops++;
			stop_at = i;
			/* draining, or already stopping when no job was
			 * left to drain in the same pass */
			ck_assert_msg(strncmp(t, "STOPPING=1\nSTATUS=draining: ",
			                      28) == 0 ||
			                  strncmp(t, "STOPPING=1\nSTATUS=stopping: ",
			                          28) == 0,
			              "%s", t);
		} else {
			ck_assert_msg(strncmp(t, "STATUS=", 7) == 0, "%s", t);
			if (ready_at < 0)
				ck_assert_msg(strncmp(t, "STATUS=starting: ", 17) ==
				                  0, "%s", t);
			if (stop_at >= 0)
				ck_assert_msg(strncmp(t, "STATUS=draining: ", 17) ==
				                      0 ||
				                  strncmp(t, "STATUS=stopping: ",
				                          17) == 0,
				              "%s", t);
		}
	}
	ck_assert_int_eq(readies, 1);
	ck_assert_int_eq(stops, 1);
	ck_assert_int_gt(stop_at, ready_at);
	free(ns);
}
END_TEST

/* ---- process: workers = auto under a CPU quota ---- */

START_TEST(workers_auto_follows_the_cgroup_quota)
{
	char line[4096], v2[4096] = "", v1[4096] = "", root[PATH_MAX],
	     rel[2 * PATH_MAX], out[64];
	FILE *f = fopen("/proc/self/cgroup", "r");
	ck_assert_ptr_nonnull(f);
	while (fgets(line, sizeof line, f)) {
		char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : 0;
		if (!c2)
			continue;
		c2[strcspn(c2, "\n")] = '\0';
		if (strncmp(line, "0::", 3) == 0)
			snprintf(v2, sizeof v2, "%s", c2 + 1);
		else if (strstr(c1, "cpu,") || strstr(c1, ":cpu:") ||
		         strstr(c1, ",cpu:"))
			snprintf(v1, sizeof v1, "%s", c2 + 1);
	}
	fclose(f);
	ck_assert_int_eq(h_prepare(&H), 0);
	snprintf(root, sizeof root, "%s/cgroup", H.dir);
	/* One CPU's worth of time, in whichever hierarchy this runs. */
	if (v2[0]) {
		snprintf(rel, sizeof rel, "%s/cpu.max", strcmp(v2, "/") ? v2 : "");
		tree_file(root, rel, "100000 100000\n");
	}
	if (v1[0]) {
		snprintf(rel, sizeof rel, "/cpu%s/cpu.cfs_quota_us",
		         strcmp(v1, "/") ? v1 : "");
		tree_file(root, rel, "100000\n");
		snprintf(rel, sizeof rel, "/cpu%s/cpu.cfs_period_us",
		         strcmp(v1, "/") ? v1 : "");
		tree_file(root, rel, "100000\n");
	}
	setenv("CORRAL_CGROUP_ROOT", root, 1);
	cpus_info ci;
	unsetenv("CORRAL_CGROUP_ROOT");
	unsigned host = cpus_usable(&ci);
	setenv("CORRAL_CGROUP_ROOT", root, 1);
	START(plugin("examples/hello.so")); /* workers = auto */
	EVENT("kind=slot slot=0 to=running");
	ck_assert_int_eq(h_sh(out, sizeof out, "'%s' --rundir '%s' status "
	                      "--json | '%s' '.workers | length'", h_ctl(),
	                      H.rundir, tool("JQ", "jq")), 0);
	ck_assert_int_eq(atoi(out), 1);
	ck_assert_ptr_nonnull(h_log_find(&H, "workers = auto: 1 (CPU quota "
	                                     "1.00", WAIT_MS));
	fprintf(stderr, "workers = auto: 1 under a 1-CPU quota (%u without "
	        "it)\n", host);
	kill(H.sup, SIGTERM);
	ck_assert_int_eq(h_wait_exit(&H, WAIT_MS), 0);
}
END_TEST

/* ---- the shipped files: units, manifests, man pages, completion ---- */

/* The number in "KEY=NUMBER" or "KEY: NUMBER" of a file, as seconds
 * (a trailing s or ms understood); -1 if absent. */
static double file_number(const char *path, const char *key)
{
	char line[1024];
	double v = -1;
	FILE *f = fopen(path, "r");
	ck_assert_msg(f != NULL, "%s: %s", path, strerror(errno));
	while (fgets(line, sizeof line, f)) {
		char *p = line + strspn(line, " \t");
		if (strncmp(p, key, strlen(key)) != 0)
			continue;
		p += strlen(key);
		p += strspn(p, " \t=:\"");
		char *end;
		v = strtod(p, &end);
		if (strncmp(end, "ms", 2) == 0)
			v /= 1000;
		else if (*end == 'm' && end[1] != 's')
			v *= 60;
		break;
	}
	fclose(f);
	return v;
}

START_TEST(systemd_units_verify)
{
	char dir[] = "/tmp/corral-sd-XXXXXX", out[8192], bin[PATH_MAX];
	const char *sa = have_tool("SYSTEMD_ANALYZE", "systemd-analyze");
	/* The timeouts agree with corral's own, whatever the tool. */
	double stop = file_number(src("examples/systemd/corral.service"),
	                          "TimeoutStopSec");
	double grace = file_number(src("examples/systemd/corral.ini"),
	                           "shutdown_timeout");
	ck_assert_msg(grace > 0 && stop > grace, "TimeoutStopSec %g must be "
	              "above shutdown_timeout %g", stop, grace);
	ck_assert_double_gt(file_number(src("examples/systemd/corral.service"),
	                                "WatchdogSec"), 0);
	if (!sa)
		return;
	ck_assert_ptr_nonnull(mkdtemp(dir));
	/* systemd-analyze verify needs the ExecStart binary to exist: the
	 * units with the built corral in place of /usr/local/bin/corral. */
	char rel[PATH_MAX];
	ck_assert_ptr_nonnull(realpath(h_path("corral", rel, sizeof rel), bin));
	int rc = h_sh(out, sizeof out,
	              "sed 's|/usr/local/bin/corral|%s|g' '%s' > '%s/corral.service'"
	              " && cp '%s' '%s/corral.socket'", bin,
	              src("examples/systemd/corral.service"), dir,
	              src("examples/systemd/corral.socket"), dir);
	ck_assert_int_eq(rc, 0);
	/* Can it run here at all (a container may lack what it needs)? */
	char probe[PATH_MAX];
	snprintf(probe, sizeof probe, "%s/probe.service", dir);
	write_file(probe, "[Unit]\nDescription=probe\n[Service]\n"
	                  "ExecStart=/bin/true\n");
	rc = h_sh(out, sizeof out, "cd '%s' && '%s' verify probe.service 2>&1",
	          dir, sa);
	if (rc != 0 || out[0]) {
		fprintf(stderr, "systemd-analyze verify does not work here "
		        "(%d: %s): skipped\n", rc, out);
	} else {
		/* Documentation=man:corral(8) must resolve: the pages where
		 * man looks for them. */
		rc = h_sh(out, sizeof out, "mkdir -p '%s/man/man1' '%s/man/man3' "
		          "'%s/man/man8' && cp '%s' '%s' '%s/man/man1/' && "
		          "cp '%s' '%s/man/man3/' && cp '%s' '%s/man/man8/'", dir,
		          dir, dir, src("man/corralctl.1"), src("man/corral-load.1"),
		          dir, src("man/corral-plugin.3"), dir, src("man/corral.8"),
		          dir);
		ck_assert_int_eq(rc, 0);
		/* Without man(1) it cannot look them up: skip that part. */
		int man = h_sh(out, sizeof out, "command -v man >/dev/null") == 0;
		if (!man)
			fprintf(stderr, "man not installed: systemd-analyze verify "
			        "--man=no\n");
		rc = h_sh(out, sizeof out, "cd '%s' && MANPATH='%s/man' '%s' verify "
		          "%s corral.socket corral.service 2>&1", dir, dir, sa,
		          man ? "" : "--man=no");
		ck_assert_msg(rc == 0 && out[0] == '\0',
		              "systemd-analyze verify (%d):\n%s", rc, out);
	}
	snprintf(out, sizeof out, "rm -rf '%s'", dir);
	ck_assert_int_eq(system(out), 0);
}
END_TEST

START_TEST(kubernetes_example_is_consistent)
{
	char out[4096];
	const char *dep = src("examples/kubernetes/deployment.yaml");
	const char *cm = src("examples/kubernetes/configmap.yaml");
	double grace = file_number(cm, "shutdown_timeout");
	double term = file_number(dep, "terminationGracePeriodSeconds");
	ck_assert_msg(grace > 0 && term > grace, "terminationGracePeriodSeconds "
	              "%g must be above shutdown_timeout %g", term, grace);
	/* liveness on /healthz, readiness on /readyz, on the http port */
	ck_assert_int_eq(h_sh(out, sizeof out, "grep -A3 livenessProbe '%s' | "
	                      "grep -q 'path: /healthz' && grep -A3 "
	                      "readinessProbe '%s' | grep -q 'path: /readyz'",
	                      dep, dep), 0);
	ck_assert_int_eq(h_sh(out, sizeof out, "grep -q '^ *http *= *0.0.0.0:9464'"
	                      " '%s' && grep -q 'containerPort: 9464' '%s'", cm,
	                      dep), 0);
	/* corral is PID 1: exec form, no shell in between */
	ck_assert_int_eq(h_sh(out, sizeof out, "grep -q 'command: "
	                      "\\[\"/usr/local/bin/corral\"' '%s'", dep), 0);
}
END_TEST

START_TEST(man_pages_are_lint_clean)
{
	static const char *pages[] = {"man/corral.8", "man/corralctl.1",
	                              "man/corral-load.1", "man/corral-plugin.3"};
	const char *md = have_tool("MANDOC", "mandoc");
	if (!md)
		return;
	for (size_t i = 0; i < sizeof pages / sizeof *pages; i++) {
		char out[8192];
		int rc = h_sh(out, sizeof out, "'%s' -T lint -W warning '%s' 2>&1",
		              md, src(pages[i]));
		ck_assert_msg(rc == 0 && out[0] == '\0', "%s (%d):\n%s",
		              pages[i], rc, out);
		rc = h_sh(out, sizeof out, "'%s' -T utf8 '%s' | wc -l", md,
		          src(pages[i]));
		ck_assert_int_eq(rc, 0);
		ck_assert_int_gt(atoi(out), 30);
	}
}
END_TEST

START_TEST(bash_completion_offers_commands_and_options)
{
	char out[4096], dir[PATH_MAX];
	snprintf(dir, sizeof dir, "%s", h_ctl());
	*strrchr(dir, '/') = '\0';
	const char *script = src("completions/corralctl");
	ck_assert_int_eq(h_sh(out, sizeof out, "bash -n '%s' 2>&1", script), 0);
	/* with the built corralctl first on PATH, as if installed */
	int rc = h_sh(out, sizeof out, "PATH='%s':\"$PATH\" bash -c '. \"%s\"; "
	              "COMP_WORDS=(corralctl st); COMP_CWORD=1; _corralctl; "
	              "echo \"${COMPREPLY[*]}\"; "
	              "COMP_WORDS=(corralctl --ti); COMP_CWORD=1; _corralctl; "
	              "echo \"${COMPREPLY[*]}\"; "
	              "COMP_WORDS=(corralctl status --); COMP_CWORD=2; "
	              "_corralctl; echo \"${COMPREPLY[*]}\"; "
	              "complete -p corralctl'", dir, script);
	ck_assert_int_eq(rc, 0);
	ck_assert_msg(strstr(out, "status stop\n") != NULL, "%s", out);
	ck_assert_msg(strstr(out, "--timeout") != NULL, "%s", out);
	ck_assert_msg(strstr(out, "--json") != NULL, "%s", out);
	ck_assert_msg(strstr(out, "complete -F _corralctl corralctl") != NULL,
	              "%s", out);
}
END_TEST

static Suite *ops_suite(void)
{
	Suite *s = suite_create("ops");
	TCase *u = tcase_create("units");
	tcase_set_timeout(u, 30);
	tcase_add_test(u, prometheus_column_is_well_formed);
	tcase_add_test(u, plugin_metric_names);
	tcase_add_test(u, exposition_from_a_snapshot);
	tcase_add_test(u, restart_causes_follow_the_slot_table);
	tcase_add_test(u, http_and_ready_min_keys);
	tcase_add_test(u, cgroup_cpu_quota);
	tcase_add_test(u, notify_messages_and_their_order);
	tcase_add_test(u, notify_is_silent_without_a_socket);
	tcase_add_test(u, httpd_answers_and_refuses);
	tcase_add_test(u, httpd_keeps_connections_alive);
	tcase_add_test(u, readyz_follows_ready_min);
	tcase_add_test(u, systemd_units_verify);
	tcase_add_test(u, kubernetes_example_is_consistent);
	tcase_add_test(u, man_pages_are_lint_clean);
	tcase_add_test(u, bash_completion_offers_commands_and_options);
	suite_add_tcase(s, u);
	TCase *p = tcase_create("proc");
	tcase_add_checked_fixture(p, NULL, teardown);
	tcase_set_timeout(p, 90);
	tcase_add_test(p, metrics_endpoint_on_a_running_supervisor);
	tcase_add_test(p, hung_workers_are_counted_as_hung);
	tcase_add_test(p, readyz_is_503_with_a_reason_until_ready_min);
	tcase_add_test(p, http_address_errors_stop_the_start);
	tcase_add_test(p, prometheus_scrapes_corral);
	tcase_add_test(p, sd_notify_ready_status_watchdog_stopping);
	tcase_add_test(p, workers_auto_follows_the_cgroup_quota);
	suite_add_tcase(s, p);
	return s;
}

int main(void)
{
	if (!httpd_available()) {
		fprintf(stderr, "corral built without libhttp-parser: the "
		        "endpoint tests are skipped\n");
		return 77;
	}
	SRunner *sr = srunner_create(ops_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
