/*
 * corral-load - the load and chaos tester: sends jobs to a corral at a
 * fixed rate (open loop) or as fast as it answers (--rate max), optionally
 * killing random workers meanwhile, and reports what came back: ok, failed
 * by reason, lost, duplicated, throughput, latency, restarts.
 *
 * Open loop: job i is due at start + i/rate and its latency counts from
 * then, not from when it could actually be sent, so a stall shows in the
 * figures instead of slowing the sender down (coordinated omission).
 *
 * --batch N sends up to N jobs per request (corral_client_call_batch_async):
 * in the closed loop every request carries N; in the open loop a request
 * carries the jobs that are due together, so batching never delays a job.
 *
 * Each payload starts with the job's sequence number; a plugin that echoes
 * it (echo, sleepy) lets duplicates be told apart.
 *
 * --csv and --svg give the run over time, in 100 ms buckets: jobs sent, ok,
 * failed, throughput and p99 latency, with each chaos kill marked.
 * Latencies go into histograms (common/hist.h): one for the whole run and
 * one per bucket, so memory does not grow with the number of jobs.
 *
 * Before sending anything it checks that a supervisor accepts connections
 * at the URL (CONNECT_WAIT_MS), so that a wrong name or a stopped corral is
 * an error at once rather than a run of lost jobs.
 *
 * main() is four steps: parse_args, setup, run, report.
 */
#include <errno.h>
#include <getopt.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <inttypes.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <sys/prctl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "corral_client.h"
#include "common/duration.h"
#include "common/hist.h"
#include "common/log.h"
#include "common/rundir.h"
#include "tools/ctlreq.h"

enum { EXIT_LOSS = 1, EXIT_USAGE = 2, EXIT_NOCONN = 3 };

/* main()'s steps return this to go on, or an exit code. */
#define GO_ON (-1)

#define CORRAL_LOAD_MAX_BATCH 64
#define BATCH_GAP_US 100.0
/* How long a supervisor has to accept the first connection. */
#define CONNECT_WAIT_MS 3000

/* Why a job failed: the supervisor's reasons (IPC_JOB_ERRORS, in that
 * order), then no answer at all and anything else. */
enum {
	R_NO_REPLY = IPC_JOBERR_COUNT,
	R_OTHER,
	R_COUNT
};

static const char *reason_name(int r)
{
	if (r < IPC_JOBERR_COUNT)
		return ipc_joberr_name((ipc_joberr)r);
	return r == R_NO_REPLY ? "no_reply" : "other";
}

typedef struct load {
	corral_client *client;
	char rundir[PATH_MAX];
	char url[PATH_MAX + 16];
	double rate; /* jobs/s; 0 = max (closed loop) */
	double duration_s;
	unsigned concurrency;
	unsigned batch;
	size_t payload_len;
	uint8_t *payload_fixed; /* --payload-file: sent as is, no sequence */
	uint64_t job_timeout_ms;
	double chaos_rate;
	int chaos_sig;
	int json, fail_on_loss;

	pthread_mutex_t mu;
	pthread_cond_t cv;
	uint64_t sent, ok, dups, failed[R_COUNT];
	uint64_t outstanding;
	uint8_t *replies; /* per sequence number */
	uint64_t cap;     /* sequence numbers available */
	hist lat;         /* every ok job's latency, us */
	int stop;

	unsigned kills;
	double restart_ms[4096];
	unsigned nrestart;
	double kill_at_ms[4096]; /* since start, for the time series */

	/* Time series (--csv, --svg): 100 ms buckets from the start. */
	const char *csv_path, *svg_path;
	double start_us;
	uint32_t nbuckets;
	uint64_t *b_sent, *b_ok, *b_failed;
	hist **b_lat; /* each bucket's latencies, allocated on first use */

	/* The run, for the report. */
	uint8_t *payload; /* room for a batch of payloads */
	double elapsed_s;
} load;

#define BUCKET_MS 100

typedef struct job_ctx {
	load *l;
	uint64_t seq;
	double due_us;
} job_ctx;

static double now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static void sleep_until(double us)
{
	struct timespec ts = {.tv_sec = (time_t)(us / 1e6),
	                      .tv_nsec = (long)(fmod(us, 1e6) * 1e3)};
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) ==
	       EINTR)
		;
}

static int reason_of(const corral_result *r)
{
	ipc_joberr e = ipc_joberr_parse(r->err);
	if (e < IPC_JOBERR_COUNT)
		return (int)e;
	if (r->status == CORRAL_ETIMEDOUT || r->status == CORRAL_ECLOSED)
		return R_NO_REPLY;
	return R_OTHER;
}

/* nng thread. */
static uint32_t bucket_of(const load *l, double t_us)
{
	double b = (t_us - l->start_us) / (BUCKET_MS * 1000.0);
	if (b < 0)
		b = 0;
	return b >= l->nbuckets ? l->nbuckets - 1 : (uint32_t)b;
}

/* Under l->mu. */
static void add_latency(load *l, uint32_t bk, double lat_us)
{
	uint64_t us = lat_us > 0 ? (uint64_t)(lat_us + 0.5) : 0;
	hist_add(&l->lat, us);
	if (!l->b_lat[bk] && (l->b_lat[bk] = malloc(sizeof(hist))))
		hist_reset(l->b_lat[bk]);
	if (l->b_lat[bk])
		hist_add(l->b_lat[bk], us);
}

static void on_result(void *arg, const corral_result *r)
{
	job_ctx *k = arg;
	load *l = k->l;
	double now = now_us(), lat = now - k->due_us;
	uint32_t bk = bucket_of(l, now);
	pthread_mutex_lock(&l->mu);
	if (r->status == 0) {
		l->ok++;
		uint64_t seq = k->seq;
		if (r->len >= 8 && !l->payload_fixed)
			memcpy(&seq, r->data, 8);
		if (seq < l->cap && ++l->replies[seq] > 1)
			l->dups++;
		add_latency(l, bk, lat);
		l->b_ok[bk]++;
	} else {
		l->b_failed[bk]++;
		if (getenv("CORRAL_LOAD_DEBUG"))
			log_plain("job %" PRIu64 ": %s %s %s", k->seq,
			          corral_errname(r->status), r->err, r->msg);
		l->failed[reason_of(r)]++;
	}
	l->outstanding--;
	pthread_cond_broadcast(&l->cv);
	pthread_mutex_unlock(&l->mu);
	free(k);
}

/* Sends jobs seq..seq+n-1 (due[i] each) in one request, or n = 1 as a
 * plain call; payload has room for n payloads. */
static void send_jobs(load *l, uint64_t seq, uint32_t n, const double *due,
                      uint8_t *payload)
{
	corral_call calls[CORRAL_LOAD_MAX_BATCH];
	uint32_t made = 0;
	for (; made < n; made++) {
		job_ctx *k = malloc(sizeof *k);
		if (!k)
			break;
		*k = (job_ctx){.l = l, .seq = seq + made, .due_us = due[made]};
		uint8_t *p = payload + (size_t)made * l->payload_len;
		if (!l->payload_fixed)
			memcpy(p, &k->seq, 8);
		calls[made] = (corral_call){.payload = p, .len = l->payload_len,
		                            .arg = k};
	}
	pthread_mutex_lock(&l->mu);
	l->sent += n;
	l->outstanding += made;
	l->failed[R_OTHER] += n - made;
	l->b_sent[bucket_of(l, now_us())] += n;
	pthread_mutex_unlock(&l->mu);
	int rc = made == 1 && l->batch == 1
	             ? corral_client_call_async(l->client, calls[0].payload,
	                                        calls[0].len, l->job_timeout_ms,
	                                        CORRAL_PRIO_NORMAL, on_result,
	                                        calls[0].arg)
	             : corral_client_call_batch_async(
	                   l->client, calls, made, l->job_timeout_ms,
	                   CORRAL_PRIO_NORMAL, on_result);
	if (rc && made) {
		for (uint32_t i = 0; i < made; i++)
			free(calls[i].arg);
		pthread_mutex_lock(&l->mu);
		l->outstanding -= made;
		l->failed[R_OTHER] += made;
		pthread_mutex_unlock(&l->mu);
	}
}

/* ---- chaos ---- */

/* The pid of a random running worker, its slot in *slot; 0 if none. */
static int64_t pick_victim(load *l, int *slot)
{
	ipc_status st;
	if (ctl_status(l->rundir, 2000, &st) != 0)
		return 0;
	int64_t pids[1024];
	int slots[1024], n = 0;
	for (uint32_t i = 0; i < st.nworkers && n < 1024; i++)
		if (strcmp(st.workers[i].state, "running") == 0 &&
		    st.workers[i].pid > 0) {
			pids[n] = st.workers[i].pid;
			slots[n++] = st.workers[i].slot;
		}
	ipc_status_free(&st);
	if (!n)
		return 0;
	int k = rand() % n;
	*slot = slots[k];
	return pids[k];
}

/* Waits for slot to run a process other than old; ms, or -1. */
static double wait_replaced(load *l, int slot, int64_t old, double t0)
{
	while (now_us() - t0 < 10e6) {
		ipc_status st;
		if (ctl_status(l->rundir, 2000, &st) == 0) {
			int done = 0;
			for (uint32_t i = 0; i < st.nworkers; i++)
				if (st.workers[i].slot == slot &&
				    st.workers[i].pid != old &&
				    strcmp(st.workers[i].state, "running") == 0)
					done = 1;
			ipc_status_free(&st);
			if (done)
				return (now_us() - t0) / 1000.0;
		}
		struct timespec ts = {0, 1000000};
		nanosleep(&ts, NULL);
	}
	return -1;
}

static void *chaos_thread(void *arg)
{
	load *l = arg;
	double next = now_us() + 1e6 / l->chaos_rate;
	for (;;) {
		sleep_until(next);
		next += 1e6 / l->chaos_rate;
		pthread_mutex_lock(&l->mu);
		int stop = l->stop;
		pthread_mutex_unlock(&l->mu);
		if (stop)
			break;
		int slot = -1;
		int64_t pid = pick_victim(l, &slot);
		if (pid <= 0)
			continue;
		double t0 = now_us();
		if (kill((pid_t)pid, l->chaos_sig) != 0)
			continue;
		if (l->kills < 4096)
			l->kill_at_ms[l->kills] = (t0 - l->start_us) / 1000.0;
		l->kills++;
		double ms = wait_replaced(l, slot, pid, t0);
		if (ms >= 0 && l->nrestart < 4096)
			l->restart_ms[l->nrestart++] = ms;
	}
	return NULL;
}

/* ---- time series ---- */

typedef struct point {
	double t_ms, thr, p99;
	uint64_t sent, ok, failed;
} point;

/* One point per bucket up to the last that saw anything.  Returns count. */
static uint32_t series(load *l, point *pts)
{
	uint32_t last = 0;
	for (uint32_t b = 0; b < l->nbuckets; b++)
		if (l->b_sent[b] || l->b_ok[b] || l->b_failed[b])
			last = b + 1;
	for (uint32_t b = 0; b < last; b++)
		pts[b] = (point){.t_ms = (double)b * BUCKET_MS,
		                 .sent = l->b_sent[b], .ok = l->b_ok[b],
		                 .failed = l->b_failed[b],
		                 .thr = (double)l->b_ok[b] * 1000.0 / BUCKET_MS,
		                 .p99 = l->b_lat[b]
		                            ? (double)hist_pct(l->b_lat[b], 99)
		                            : 0};
	return last;
}

static void write_csv(load *l, const point *pts, uint32_t n)
{
	FILE *f = fopen(l->csv_path, "w");
	if (!f) {
		log_plain("%s: cannot write", l->csv_path);
		return;
	}
	fprintf(f, "t_ms,sent,ok,failed,throughput,p99_us,kills\n");
	for (uint32_t b = 0; b < n; b++) {
		unsigned kills = 0;
		for (unsigned i = 0; i < l->kills && i < 4096; i++)
			if (l->kill_at_ms[i] >= pts[b].t_ms &&
			    l->kill_at_ms[i] < pts[b].t_ms + BUCKET_MS)
				kills++;
		fprintf(f, "%.0f,%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%.0f,%.0f,%u\n",
		        pts[b].t_ms, pts[b].sent, pts[b].ok, pts[b].failed,
		        pts[b].thr, pts[b].p99, kills);
	}
	fclose(f);
}

/* A self-contained SVG: throughput (blue, left axis) and p99 latency
 * (orange, right axis) over time, each kill a red line. */
static void write_svg(load *l, const point *pts, uint32_t n)
{
	FILE *f = fopen(l->svg_path, "w");
	if (!f) {
		log_plain("%s: cannot write", l->svg_path);
		return;
	}
	const double W = 900, H = 360, X0 = 70, Y0 = 30, PW = 760, PH = 280;
	double tmax = n ? pts[n - 1].t_ms + BUCKET_MS : 1, thrmax = 1, p99max = 1;
	for (uint32_t b = 0; b < n; b++) {
		if (pts[b].thr > thrmax)
			thrmax = pts[b].thr;
		if (pts[b].p99 > p99max)
			p99max = pts[b].p99;
	}
	fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" "
	        "height=\"%.0f\" font-family=\"sans-serif\" font-size=\"12\">\n"
	        "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n"
	        "<text x=\"%.0f\" y=\"18\">corral-load: throughput (blue, "
	        "jobs/s) and p99 latency (orange, ms); red lines: kills</text>\n"
	        "<rect x=\"%.0f\" y=\"%.0f\" width=\"%.0f\" height=\"%.0f\" "
	        "fill=\"none\" stroke=\"#888\"/>\n",
	        W, H, X0, X0, Y0, PW, PH);
	for (unsigned i = 0; i < l->kills && i < 4096; i++) {
		double x = X0 + PW * l->kill_at_ms[i] / tmax;
		fprintf(f, "<line x1=\"%.1f\" y1=\"%.0f\" x2=\"%.1f\" "
		        "y2=\"%.0f\" stroke=\"red\" stroke-opacity=\"0.6\"/>\n",
		        x, Y0, x, Y0 + PH);
	}
	const char *colors[2] = {"#1f5fbf", "#e07b00"};
	for (int s = 0; s < 2; s++) {
		fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" "
		        "stroke-width=\"1.5\" points=\"", colors[s]);
		for (uint32_t b = 0; b < n; b++) {
			double v = s ? pts[b].p99 / p99max : pts[b].thr / thrmax;
			fprintf(f, "%.1f,%.1f ", X0 + PW * (pts[b].t_ms + BUCKET_MS / 2) / tmax,
			        Y0 + PH * (1 - v));
		}
		fprintf(f, "\"/>\n");
	}
	fprintf(f, "<text x=\"5\" y=\"%.0f\" fill=\"%s\">%.0f/s</text>\n"
	        "<text x=\"%.0f\" y=\"%.0f\" fill=\"%s\">%.1f ms</text>\n"
	        "<text x=\"%.0f\" y=\"%.0f\">0</text>\n"
	        "<text x=\"%.0f\" y=\"%.0f\">%.1f s</text>\n</svg>\n",
	        Y0 + 10, colors[0], thrmax, X0 + PW + 5, Y0 + 10, colors[1],
	        p99max / 1000.0, X0, Y0 + PH + 16, X0 + PW - 30, Y0 + PH + 16,
	        tmax / 1000.0);
	fclose(f);
}

/* ---- report ---- */

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* The p-th percentile of n sorted values (restart latencies). */
static double pct(const double *v, uint64_t n, double p)
{
	if (!n)
		return 0;
	uint64_t i = (uint64_t)(p / 100.0 * (double)(n - 1) + 0.5);
	return v[i < n ? i : n - 1];
}

static uint64_t failed_total(const load *l)
{
	uint64_t failed = 0;
	for (int i = 0; i < R_COUNT; i++)
		failed += l->failed[i];
	return failed;
}

/* A finite double for JSON (which has no NaN or infinity): 0 else. */
static json_t *jnum(double v)
{
	return json_real(isfinite(v) ? v : 0);
}

/* The --json report: one object, built with jansson. */
static void print_json(load *l, uint64_t lost, double thr, double p50,
                       double p90, double p99, double p999, double max,
                       double r50, double r99)
{
	json_t *failed = json_object(), *lat, *rl, *root;
	for (int i = 0; failed && i < R_COUNT; i++)
		json_object_set_new(failed, reason_name(i),
		                    json_integer((json_int_t)l->failed[i]));
	lat = json_pack("{s:o,s:o,s:o,s:o,s:o}", "p50", jnum(p50), "p90",
	                jnum(p90), "p99", jnum(p99), "p999", jnum(p999), "max",
	                jnum(max));
	rl = json_pack("{s:o,s:o}", "p50", jnum(r50), "p99", jnum(r99));
	root = json_pack("{s:I,s:I,s:o,s:I,s:I,s:o,s:o,s:I,s:o,s:o}", "sent",
	                 (json_int_t)l->sent, "ok", (json_int_t)l->ok, "failed",
	                 failed, "lost", (json_int_t)lost, "duplicates",
	                 (json_int_t)l->dups, "throughput", jnum(thr),
	                 "latency_us", lat, "restarts", (json_int_t)l->kills,
	                 "restart_latency_ms", rl, "duration_s",
	                 jnum(l->elapsed_s));
	if (!root || json_dumpf(root, stdout, JSON_COMPACT) != 0)
		fprintf(stderr, "corral-load: cannot write the JSON report\n");
	else
		fputc('\n', stdout);
	json_decref(root);
}

static void print_report(load *l)
{
	uint64_t failed = failed_total(l);
	uint64_t answered = l->ok + failed;
	uint64_t lost = l->sent > answered ? l->sent - answered : 0;
	double elapsed_s = l->elapsed_s;
	qsort(l->restart_ms, l->nrestart, sizeof *l->restart_ms, cmp_d);
	double thr = elapsed_s > 0 ? (double)l->ok / elapsed_s : 0;
	double p50 = (double)hist_pct(&l->lat, 50),
	       p90 = (double)hist_pct(&l->lat, 90),
	       p99 = (double)hist_pct(&l->lat, 99),
	       p999 = (double)hist_pct(&l->lat, 99.9),
	       max = l->lat.total ? (double)l->lat.max : 0;
	double r50 = pct(l->restart_ms, l->nrestart, 50),
	       r99 = pct(l->restart_ms, l->nrestart, 99);
	if (l->json) {
		print_json(l, lost, thr, p50, p90, p99, p999, max, r50, r99);
		return;
	}
	printf("sent %" PRIu64 ", ok %" PRIu64 ", failed %" PRIu64
	       ", lost %" PRIu64 ", duplicates %" PRIu64 "\n",
	       l->sent, l->ok, failed, lost, l->dups);
	for (int i = 0; i < R_COUNT; i++)
		if (l->failed[i])
			printf("  failed %-14s %" PRIu64 "\n", reason_name(i),
			       l->failed[i]);
	printf("throughput %.0f jobs/s over %.2f s\n", thr, elapsed_s);
	printf("latency p50 %.0f us, p90 %.0f, p99 %.0f, p99.9 %.0f, max %.0f\n",
	       p50, p90, p99, p999, max);
	if (l->chaos_rate > 0)
		printf("restarts %u, restart latency p50 %.2f ms, p99 %.2f ms\n",
		       l->kills, r50, r99);
}

/* The time series files, the report; the exit code. */
static int report(load *l)
{
	pthread_mutex_lock(&l->mu);
	if (l->csv_path || l->svg_path) {
		point *pts = calloc(l->nbuckets, sizeof *pts);
		if (pts) {
			uint32_t n = series(l, pts);
			if (l->csv_path)
				write_csv(l, pts, n);
			if (l->svg_path)
				write_svg(l, pts, n);
			free(pts);
		}
	}
	print_report(l);
	int loss = l->sent > l->ok + failed_total(l) || l->dups;
	pthread_mutex_unlock(&l->mu);
	return l->fail_on_loss && loss ? EXIT_LOSS : 0;
}

/* ---- step 1: the command line ---- */

static void usage(FILE *f)
{
	fprintf(f,
"Usage: corral-load [-n NAME | --rundir DIR | --url URL[,URL...]]\n"
"                   [--rate R|max] [--duration D] [--concurrency C]\n"
"                   [--batch N]\n"
"                   [--payload BYTES | --payload-file F] [--job-timeout D]\n"
"                   [--chaos-kill RATE] [--chaos-signal KILL|SEGV|TERM|STOP]\n"
"                   [--json] [--csv FILE] [--svg FILE] [--fail-on-loss]\n"
"       corral-load --help | --version\n"
"\n"
"Sends jobs to a corral and reports ok / failed / lost / duplicated,\n"
"(duplicates need the reply to echo the payload's first 8 bytes, the job's\n"
"sequence number; --payload-file sends the file as is instead),\n"
"throughput, latency (from each job's intended send time) and, with\n"
"--chaos-kill, restarts and their latency.  Defaults: --rate 1000,\n"
"--duration 10s, --concurrency 256, --batch 1, --payload 64,\n"
"--job-timeout 10s.  --batch N (up to 64) sends up to N jobs per request:\n"
"N at a time in the closed loop, the jobs due together in the open loop.\n"
"Exit: 0; 1 with --fail-on-loss when a job was lost or duplicated;\n"
"2 usage error; 3 no corral accepted a connection within 3 s.\n");
}

/* Seconds, or -1: the duration syntax of the rest of corral. */
static double parse_dur_s(const char *s)
{
	uint64_t ms;
	return parse_duration_ms(s, &ms) == 0 ? (double)ms / 1000.0 : -1;
}

static int parse_signal(const char *s)
{
	static const struct { const char *name; int sig; } sigs[] = {
		{"KILL", SIGKILL}, {"SEGV", SIGSEGV}, {"TERM", SIGTERM},
		{"STOP", SIGSTOP},
	};
	for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
		if (strcmp(s, sigs[i].name) == 0)
			return sigs[i].sig;
	return -1;
}

/* Reads --payload-file into a static buffer.  0 or -1. */
static int read_payload_file(load *l, const char *path)
{
	static uint8_t fixed[IPC_MAX_PAYLOAD];
	FILE *pf = fopen(path, "rb");
	if (!pf) {
		log_plain("%s: cannot open", path);
		return -1;
	}
	l->payload_len = fread(fixed, 1, sizeof fixed, pf);
	fclose(pf);
	l->payload_fixed = fixed;
	return 0;
}

/* One option of the run (not the target).  0, or -1 if its value is bad. */
static int set_option(load *l, int ch, const char *arg)
{
	double d;
	switch (ch) {
	case 'R':
		l->rate = strcmp(arg, "max") == 0 ? 0 : atof(arg);
		return strcmp(arg, "max") && l->rate <= 0 ? -1 : 0;
	case 'd':
		return (l->duration_s = parse_dur_s(arg)) > 0 ? 0 : -1;
	case 'c':
		l->concurrency = (unsigned)atoi(arg);
		return l->concurrency ? 0 : -1;
	case 'b':
		l->batch = (unsigned)atoi(arg);
		return l->batch && l->batch <= CORRAL_LOAD_MAX_BATCH ? 0 : -1;
	case 'p':
		l->payload_len = strtoul(arg, NULL, 10);
		if (l->payload_len > IPC_MAX_PAYLOAD)
			return -1;
		if (l->payload_len < 8)
			l->payload_len = 8;
		return 0;
	case 't':
		if ((d = parse_dur_s(arg)) <= 0)
			return -1;
		l->job_timeout_ms = (uint64_t)(d * 1000);
		return 0;
	case 'k':
		return (l->chaos_rate = atof(arg)) > 0 ? 0 : -1;
	case 's':
		return (l->chaos_sig = parse_signal(arg)) > 0 ? 0 : -1;
	case 'j':
		l->json = 1;
		return 0;
	case 'f':
		l->fail_on_loss = 1;
		return 0;
	case 'C':
		l->csv_path = arg;
		return 0;
	case 'G':
		l->svg_path = arg;
		return 0;
	}
	return -1;
}

/* Fills l from argv.  GO_ON, or the exit code. */
static int parse_args(load *l, int argc, char **argv)
{
	static const struct option opts[] = {
		{"name", required_argument, NULL, 'n'},
		{"rundir", required_argument, NULL, 'r'},
		{"url", required_argument, NULL, 'u'},
		{"rate", required_argument, NULL, 'R'},
		{"duration", required_argument, NULL, 'd'},
		{"concurrency", required_argument, NULL, 'c'},
		{"batch", required_argument, NULL, 'b'},
		{"payload", required_argument, NULL, 'p'},
		{"payload-file", required_argument, NULL, 'P'},
		{"job-timeout", required_argument, NULL, 't'},
		{"chaos-kill", required_argument, NULL, 'k'},
		{"chaos-signal", required_argument, NULL, 's'},
		{"json", no_argument, NULL, 'j'},
		{"fail-on-loss", no_argument, NULL, 'f'},
		{"csv", required_argument, NULL, 'C'},
		{"svg", required_argument, NULL, 'G'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0},
	};
	const char *name = "corral", *rundir = NULL, *url = NULL;
	int ch;

	l->rate = 1000;
	l->duration_s = 10;
	l->concurrency = 256;
	l->batch = 1;
	l->payload_len = 64;
	l->job_timeout_ms = 10000;
	l->chaos_sig = SIGKILL;
	while ((ch = getopt_long(argc, argv, "n:h", opts, NULL)) != -1) {
		switch (ch) {
		case 'n': name = optarg; break;
		case 'r': rundir = optarg; break;
		case 'u': url = optarg; break;
		case 'P':
			if (read_payload_file(l, optarg) != 0)
				return EXIT_USAGE;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("corral-load %s\n", PACKAGE_VERSION);
			return 0;
		default:
			if (set_option(l, ch, optarg) != 0)
				goto bad;
		}
	}
	if (optind != argc)
		goto bad;
	if (rundir)
		snprintf(l->rundir, sizeof l->rundir, "%s", rundir);
	else if (rundir_default(name, l->rundir, sizeof l->rundir) != 0)
		goto bad;
	if (url)
		snprintf(l->url, sizeof l->url, "%s", url);
	else if (rundir_url(l->rundir, "jobs", l->url, sizeof l->url) != 0)
		goto bad;
	if (l->batch > l->concurrency)
		l->batch = l->concurrency;
	return GO_ON;
bad:
	usage(stderr);
	return EXIT_USAGE;
}

/* ---- step 2: setup ---- */

typedef struct probe {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int connected;
} probe;

/* nng thread: a connection finished its handshake. */
static void on_probe_pipe(nng_pipe p, nng_pipe_ev ev, void *arg)
{
	probe *pr = arg;
	pthread_mutex_lock(&pr->mu);
	pr->connected = 1;
	pthread_cond_signal(&pr->cv);
	pthread_mutex_unlock(&pr->mu);
}

/* Whether something at one of the comma-separated urls completes an SP
 * handshake with a REQ socket within wait_ms.  The client library dials
 * without waiting and retries for ever, so it cannot tell. */
static int supervisor_listening(const char *urls, int wait_ms,
                                char *why, size_t whylen)
{
	probe pr = {.mu = PTHREAD_MUTEX_INITIALIZER,
	            .cv = PTHREAD_COND_INITIALIZER};
	nng_socket s;
	char list[sizeof ((load *)0)->url];
	int rv = nng_req0_open(&s), dialed = 0;
	snprintf(why, whylen, "nothing accepted a connection within %d ms",
	         wait_ms);
	if (rv) {
		snprintf(why, whylen, "%s", nng_strerror(rv));
		return 0;
	}
	nng_pipe_notify(s, NNG_PIPE_EV_ADD_POST, on_probe_pipe, &pr);
	snprintf(list, sizeof list, "%s", urls);
	char *save = NULL;
	for (char *u = strtok_r(list, ",", &save); u;
	     u = strtok_r(NULL, ",", &save)) {
		if ((rv = nng_dial(s, u, NULL, NNG_FLAG_NONBLOCK)) == 0)
			dialed++;
		else
			snprintf(why, whylen, "%s: %s", u, nng_strerror(rv));
	}
	struct timespec dl;
	clock_gettime(CLOCK_REALTIME, &dl);
	dl.tv_sec += wait_ms / 1000;
	dl.tv_nsec += (long)(wait_ms % 1000) * 1000000;
	if (dl.tv_nsec >= 1000000000) {
		dl.tv_sec++;
		dl.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&pr.mu);
	while (dialed && !pr.connected &&
	       pthread_cond_timedwait(&pr.cv, &pr.mu, &dl) == 0)
		;
	int ok = pr.connected;
	pthread_mutex_unlock(&pr.mu);
	nng_close(s); /* waits out the callback */
	return ok;
}

/* Checks the supervisor, opens the client, allocates the counters.
 * GO_ON, or the exit code. */
static int setup(load *l)
{
	char why[PATH_MAX + 64];
	if (!supervisor_listening(l->url, CONNECT_WAIT_MS, why, sizeof why)) {
		log_plain("no corral is listening at %s: %s", l->url, why);
		return EXIT_NOCONN;
	}
	int rc = corral_client_open(&l->client, l->url);
	if (rc) {
		log_plain("cannot open %s: %s", l->url, corral_strerror(rc));
		return EXIT_USAGE;
	}
	double jobs_max = l->rate > 0 ? l->rate * l->duration_s + 16
	                              : 4e6 * l->duration_s;
	l->cap = (uint64_t)jobs_max;
	l->replies = calloc(l->cap, 1);
	l->nbuckets = (uint32_t)((l->duration_s * 1000 +
	                          (double)l->job_timeout_ms + 5000) /
	                         BUCKET_MS) + 2;
	l->b_sent = calloc(l->nbuckets, sizeof *l->b_sent);
	l->b_ok = calloc(l->nbuckets, sizeof *l->b_ok);
	l->b_failed = calloc(l->nbuckets, sizeof *l->b_failed);
	l->b_lat = calloc(l->nbuckets, sizeof *l->b_lat);
	l->payload = calloc(l->batch, l->payload_len ? l->payload_len : 1);
	if (!l->replies || !l->payload || !l->b_sent || !l->b_ok ||
	    !l->b_failed || !l->b_lat) {
		log_plain("out of memory");
		return EXIT_USAGE;
	}
	for (unsigned i = 0; l->payload_fixed && i < l->batch; i++)
		memcpy(l->payload + (size_t)i * l->payload_len,
		       l->payload_fixed, l->payload_len);
	hist_reset(&l->lat);
	pthread_mutex_init(&l->mu, NULL);
	pthread_cond_init(&l->cv, NULL);
	srand((unsigned)getpid());
	/* Wake at each job's due time, not up to 50 us later (the default
	 * timer slack): the sender's own lateness would count as latency. */
	if (prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0) != 0)
		log_plain("cannot lower the timer slack: open-loop sends may "
		          "be up to 50 us late");
	return GO_ON;
}

/* ---- step 3: the run ---- */

/* The jobs of the next request, starting at seq: their due times in due[]
 * (due[0] set by the caller); how many. */
static uint32_t gather_due(load *l, uint64_t seq, double *due, double start,
                           double end)
{
	uint32_t n = 1;
	double t = now_us();
	while (n < l->batch && seq + n < l->cap) {
		if (l->rate > 0) {
			due[n] = start + (double)(seq + n) * 1e6 / l->rate;
			if (due[n] > t || due[n] >= end)
				break;
		} else {
			due[n] = due[0];
		}
		n++;
	}
	return n;
}

/* Waits until n more jobs fit under --concurrency. */
static void wait_for_room(load *l, uint32_t n)
{
	pthread_mutex_lock(&l->mu);
	while (l->outstanding + n > l->concurrency)
		pthread_cond_wait(&l->cv, &l->mu);
	pthread_mutex_unlock(&l->mu);
}

static void show_progress(load *l, double start)
{
	pthread_mutex_lock(&l->mu);
	fprintf(stderr, "\r%.0fs sent %" PRIu64 " ok %" PRIu64
	        " in flight %" PRIu64 " kills %u   ", (now_us() - start) / 1e6,
	        l->sent, l->ok, l->outstanding, l->kills);
	pthread_mutex_unlock(&l->mu);
}

/* Sends for --duration; returns when the last request went out. */
static void send_loop(load *l, int tty)
{
	double start = l->start_us, end = start + l->duration_s * 1e6;
	double last_progress = start;
	double due[CORRAL_LOAD_MAX_BATCH], last_send = 0;
	for (uint64_t seq = 0; seq < l->cap;) {
		due[0] = l->rate > 0 ? start + (double)seq * 1e6 / l->rate
		                     : now_us();
		if (due[0] >= end)
			break;
		/* With batches, wake at most every BATCH_GAP_US: the jobs
		 * that fell due meanwhile go together (their latency still
		 * counts from their own due times). */
		if (l->rate > 0)
			sleep_until(l->batch > 1 &&
			                    due[0] < last_send + BATCH_GAP_US
			                ? last_send + BATCH_GAP_US
			                : due[0]);
		last_send = now_us();
		/* This request's jobs: a full batch in the closed loop, the
		 * ones already due in the open loop. */
		uint32_t n = gather_due(l, seq, due, start, end);
		wait_for_room(l, n);
		if (l->rate == 0 && now_us() >= end)
			break;
		if (l->rate == 0)
			for (uint32_t i = 0; i < n; i++)
				due[i] = now_us();
		send_jobs(l, seq, n, due, l->payload);
		seq += n;
		if (tty && now_us() - last_progress > 1e6) {
			last_progress = now_us();
			show_progress(l, start);
		}
	}
}

/* Waits for the stragglers: every job is answered by its deadline. */
static void wait_answers(load *l)
{
	double give_up = now_us() + (double)l->job_timeout_ms * 1e3 + 3e6;
	pthread_mutex_lock(&l->mu);
	l->stop = 1;
	while (l->outstanding && now_us() < give_up) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 50000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&l->cv, &l->mu, &ts);
	}
	pthread_mutex_unlock(&l->mu);
}

static void run(load *l)
{
	pthread_t chaos;
	int tty = isatty(STDERR_FILENO) && !l->json;
	l->start_us = now_us();
	int chaos_on = l->chaos_rate > 0 &&
	               pthread_create(&chaos, NULL, chaos_thread, l) == 0;
	send_loop(l, tty);
	l->elapsed_s = (now_us() - l->start_us) / 1e6;
	wait_answers(l);
	if (chaos_on)
		pthread_join(chaos, NULL);
	if (tty)
		fprintf(stderr, "\n");
}

/* ---- step 4 is report() above; then the end ---- */

static void teardown(load *l)
{
	/* Calls still in flight hold pointers into l: leave them be. */
	if (l->outstanding)
		return;
	if (l->client)
		corral_client_close(l->client);
	for (uint32_t b = 0; l->b_lat && b < l->nbuckets; b++)
		free(l->b_lat[b]);
	free(l->b_lat);
	free(l->replies);
	free(l->b_sent);
	free(l->b_ok);
	free(l->b_failed);
	free(l->payload);
}

int main(int argc, char **argv)
{
	static load l;
	log_set_prog("corral-load");
	int rc = parse_args(&l, argc, argv);
	if (rc == GO_ON)
		rc = setup(&l);
	if (rc == GO_ON) {
		run(&l);
		rc = report(&l);
	}
	teardown(&l);
	return rc;
}
