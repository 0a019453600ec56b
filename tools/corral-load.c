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
 * Each payload starts with the job's sequence number; a plugin that echoes
 * it (echo, sleepy) lets duplicates be told apart.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "client/corral_client.h"
#include "ipc/log.h"
#include "ipc/rundir.h"
#include "tools/ctlreq.h"

enum { EXIT_LOSS = 1, EXIT_USAGE = 2 };

#define REASONS(X)                                                            \
	X(busy) X(timeout) X(poison) X(shutting_down) X(failed)               \
	X(bad_request) X(no_reply) X(other)

enum {
#define X(r) R_##r,
	REASONS(X)
#undef X
	R_COUNT
};
static const char *reason_names[] = {
#define X(r) #r,
	REASONS(X)
#undef X
};

typedef struct load {
	corral_client *client;
	char rundir[PATH_MAX];
	char url[PATH_MAX + 16];
	double rate; /* jobs/s; 0 = max (closed loop) */
	double duration_s;
	unsigned concurrency;
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
	double *lat_us;
	uint64_t nlat;
	int stop;

	unsigned kills;
	double restart_ms[4096];
	unsigned nrestart;
} load;

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
	for (int i = 0; i < R_COUNT; i++)
		if (strcmp(r->err, reason_names[i]) == 0)
			return i;
	if (r->status == CORRAL_ETIMEDOUT || r->status == CORRAL_ECLOSED)
		return R_no_reply;
	return R_other;
}

/* nng thread. */
static void on_result(void *arg, const corral_result *r)
{
	job_ctx *k = arg;
	load *l = k->l;
	double lat = now_us() - k->due_us;
	pthread_mutex_lock(&l->mu);
	if (r->status == 0) {
		l->ok++;
		uint64_t seq = k->seq;
		if (r->len >= 8 && !l->payload_fixed)
			memcpy(&seq, r->data, 8);
		if (seq < l->cap && ++l->replies[seq] > 1)
			l->dups++;
		if (l->nlat < l->cap)
			l->lat_us[l->nlat++] = lat;
	} else {
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

static int send_one(load *l, uint64_t seq, double due, uint8_t *payload)
{
	job_ctx *k = malloc(sizeof *k);
	if (!k)
		return CORRAL_ENOMEM;
	*k = (job_ctx){.l = l, .seq = seq, .due_us = due};
	if (!l->payload_fixed)
		memcpy(payload, &seq, 8);
	pthread_mutex_lock(&l->mu);
	l->sent++;
	l->outstanding++;
	pthread_mutex_unlock(&l->mu);
	int rc = corral_client_call_async(l->client, payload, l->payload_len,
	                                  l->job_timeout_ms, CORRAL_PRIO_NORMAL,
	                                  on_result, k);
	if (rc) {
		free(k);
		pthread_mutex_lock(&l->mu);
		l->outstanding--;
		l->failed[R_other]++;
		pthread_mutex_unlock(&l->mu);
	}
	return rc;
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
		l->kills++;
		double ms = wait_replaced(l, slot, pid, t0);
		if (ms >= 0 && l->nrestart < 4096)
			l->restart_ms[l->nrestart++] = ms;
	}
	return NULL;
}

/* ---- report ---- */

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double pct(const double *v, uint64_t n, double p)
{
	if (!n)
		return 0;
	uint64_t i = (uint64_t)(p / 100.0 * (double)(n - 1) + 0.5);
	return v[i < n ? i : n - 1];
}

static void report(load *l, double elapsed_s)
{
	uint64_t failed = 0;
	for (int i = 0; i < R_COUNT; i++)
		failed += l->failed[i];
	uint64_t answered = l->ok + failed;
	uint64_t lost = l->sent > answered ? l->sent - answered : 0;
	qsort(l->lat_us, l->nlat, sizeof *l->lat_us, cmp_d);
	qsort(l->restart_ms, l->nrestart, sizeof *l->restart_ms, cmp_d);
	double thr = elapsed_s > 0 ? (double)l->ok / elapsed_s : 0;
	double p50 = pct(l->lat_us, l->nlat, 50), p90 = pct(l->lat_us, l->nlat, 90),
	       p99 = pct(l->lat_us, l->nlat, 99),
	       p999 = pct(l->lat_us, l->nlat, 99.9),
	       max = l->nlat ? l->lat_us[l->nlat - 1] : 0;
	double r50 = pct(l->restart_ms, l->nrestart, 50),
	       r99 = pct(l->restart_ms, l->nrestart, 99);
	if (l->json) {
		printf("{\"sent\":%" PRIu64 ",\"ok\":%" PRIu64 ",\"failed\":{",
		       l->sent, l->ok);
		for (int i = 0; i < R_COUNT; i++)
			printf("%s\"%s\":%" PRIu64, i ? "," : "", reason_names[i],
			       l->failed[i]);
		printf("},\"lost\":%" PRIu64 ",\"duplicates\":%" PRIu64
		       ",\"throughput\":%.1f,\"latency_us\":{\"p50\":%.0f,"
		       "\"p90\":%.0f,\"p99\":%.0f,\"p999\":%.0f,\"max\":%.0f},"
		       "\"restarts\":%u,\"restart_latency_ms\":{\"p50\":%.2f,"
		       "\"p99\":%.2f},\"duration_s\":%.2f}\n",
		       lost, l->dups, thr, p50, p90, p99, p999, max, l->kills,
		       r50, r99, elapsed_s);
		return;
	}
	printf("sent %" PRIu64 ", ok %" PRIu64 ", failed %" PRIu64
	       ", lost %" PRIu64 ", duplicates %" PRIu64 "\n",
	       l->sent, l->ok, failed, lost, l->dups);
	for (int i = 0; i < R_COUNT; i++)
		if (l->failed[i])
			printf("  failed %-14s %" PRIu64 "\n", reason_names[i],
			       l->failed[i]);
	printf("throughput %.0f jobs/s over %.2f s\n", thr, elapsed_s);
	printf("latency p50 %.0f us, p90 %.0f, p99 %.0f, p99.9 %.0f, max %.0f\n",
	       p50, p90, p99, p999, max);
	if (l->chaos_rate > 0)
		printf("restarts %u, restart latency p50 %.2f ms, p99 %.2f ms\n",
		       l->kills, r50, r99);
}

static void usage(FILE *f)
{
	fprintf(f,
"Usage: corral-load [-n NAME | --rundir DIR | --url URL[,URL...]]\n"
"                   [--rate R|max] [--duration D] [--concurrency C]\n"
"                   [--payload BYTES | --payload-file F] [--job-timeout D]\n"
"                   [--chaos-kill RATE] [--chaos-signal KILL|SEGV|TERM|STOP]\n"
"                   [--json] [--fail-on-loss]\n"
"\n"
"Sends jobs to a corral and reports ok / failed / lost / duplicated,\n"
"(duplicates need the reply to echo the payload's first 8 bytes, the job's\n"
"sequence number; --payload-file sends the file as is instead),\n"
"throughput, latency (from each job's intended send time) and, with\n"
"--chaos-kill, restarts and their latency.  Defaults: --rate 1000,\n"
"--duration 10s, --concurrency 256, --payload 64, --job-timeout 10s.\n"
"Exit: 0; 1 with --fail-on-loss when a job was lost or duplicated;\n"
"2 usage error.\n");
}

static double parse_dur_s(const char *s)
{
	char *end;
	double v = strtod(s, &end);
	if (end == s || v < 0)
		return -1;
	if (!*end || strcmp(end, "s") == 0)
		return v;
	if (strcmp(end, "ms") == 0)
		return v / 1000;
	if (strcmp(end, "m") == 0)
		return v * 60;
	return -1;
}

int main(int argc, char **argv)
{
	static load l;
	static const struct option opts[] = {
		{"name", required_argument, NULL, 'n'},
		{"rundir", required_argument, NULL, 'r'},
		{"url", required_argument, NULL, 'u'},
		{"rate", required_argument, NULL, 'R'},
		{"duration", required_argument, NULL, 'd'},
		{"concurrency", required_argument, NULL, 'c'},
		{"payload", required_argument, NULL, 'p'},
		{"payload-file", required_argument, NULL, 'P'},
		{"job-timeout", required_argument, NULL, 't'},
		{"chaos-kill", required_argument, NULL, 'k'},
		{"chaos-signal", required_argument, NULL, 's'},
		{"json", no_argument, NULL, 'j'},
		{"fail-on-loss", no_argument, NULL, 'f'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *name = "corral", *rundir = NULL, *url = NULL;
	int ch;

	log_set_prog("corral-load");
	l.rate = 1000;
	l.duration_s = 10;
	l.concurrency = 256;
	l.payload_len = 64;
	l.job_timeout_ms = 10000;
	l.chaos_sig = SIGKILL;
	while ((ch = getopt_long(argc, argv, "n:h", opts, NULL)) != -1) {
		double d;
		switch (ch) {
		case 'n': name = optarg; break;
		case 'r': rundir = optarg; break;
		case 'u': url = optarg; break;
		case 'R':
			l.rate = strcmp(optarg, "max") == 0 ? 0 : atof(optarg);
			if (strcmp(optarg, "max") && l.rate <= 0)
				goto bad;
			break;
		case 'd':
			if ((l.duration_s = parse_dur_s(optarg)) <= 0)
				goto bad;
			break;
		case 'c':
			l.concurrency = (unsigned)atoi(optarg);
			if (!l.concurrency)
				goto bad;
			break;
		case 'p':
			l.payload_len = strtoul(optarg, NULL, 10);
			if (l.payload_len > IPC_MAX_PAYLOAD)
				goto bad;
			if (l.payload_len < 8)
				l.payload_len = 8;
			break;
		case 'P': {
			FILE *pf = fopen(optarg, "rb");
			static uint8_t fixed[IPC_MAX_PAYLOAD];
			if (!pf) {
				log_plain("%s: cannot open", optarg);
				return EXIT_USAGE;
			}
			l.payload_len = fread(fixed, 1, sizeof fixed, pf);
			fclose(pf);
			l.payload_fixed = fixed;
			break;
		}
		case 't':
			if ((d = parse_dur_s(optarg)) <= 0)
				goto bad;
			l.job_timeout_ms = (uint64_t)(d * 1000);
			break;
		case 'k':
			if ((l.chaos_rate = atof(optarg)) <= 0)
				goto bad;
			break;
		case 's':
			if (strcmp(optarg, "KILL") == 0) l.chaos_sig = SIGKILL;
			else if (strcmp(optarg, "SEGV") == 0) l.chaos_sig = SIGSEGV;
			else if (strcmp(optarg, "TERM") == 0) l.chaos_sig = SIGTERM;
			else if (strcmp(optarg, "STOP") == 0) l.chaos_sig = SIGSTOP;
			else goto bad;
			break;
		case 'j': l.json = 1; break;
		case 'f': l.fail_on_loss = 1; break;
		case 'h': usage(stdout); return 0;
		default: goto bad;
		}
	}
	if (optind != argc)
		goto bad;
	if (rundir)
		snprintf(l.rundir, sizeof l.rundir, "%s", rundir);
	else if (rundir_default(name, l.rundir, sizeof l.rundir) != 0)
		goto bad;
	if (url)
		snprintf(l.url, sizeof l.url, "%s", url);
	else if (rundir_url(l.rundir, "jobs", l.url, sizeof l.url) != 0)
		goto bad;

	int rc = corral_client_open(&l.client, l.url);
	if (rc) {
		log_plain("cannot open %s: %s", l.url, corral_strerror(rc));
		return EXIT_USAGE;
	}
	double jobs_max = l.rate > 0 ? l.rate * l.duration_s + 16
	                             : 4e6 * l.duration_s;
	l.cap = (uint64_t)jobs_max;
	l.replies = calloc(l.cap, 1);
	l.lat_us = calloc(l.cap, sizeof *l.lat_us);
	uint8_t *payload = calloc(1, l.payload_len ? l.payload_len : 1);
	if (payload && l.payload_fixed)
		memcpy(payload, l.payload_fixed, l.payload_len);
	if (!l.replies || !l.lat_us || !payload) {
		log_plain("out of memory");
		return EXIT_USAGE;
	}
	pthread_mutex_init(&l.mu, NULL);
	pthread_cond_init(&l.cv, NULL);
	srand((unsigned)getpid());

	pthread_t chaos;
	int chaos_on = l.chaos_rate > 0 &&
	               pthread_create(&chaos, NULL, chaos_thread, &l) == 0;
	int tty = isatty(STDERR_FILENO) && !l.json;
	double start = now_us(), end = start + l.duration_s * 1e6;
	double last_progress = start;
	for (uint64_t seq = 0; seq < l.cap; seq++) {
		double due = l.rate > 0 ? start + (double)seq * 1e6 / l.rate
		                        : now_us();
		if (due >= end)
			break;
		if (l.rate > 0)
			sleep_until(due);
		pthread_mutex_lock(&l.mu);
		while (l.outstanding >= l.concurrency)
			pthread_cond_wait(&l.cv, &l.mu);
		pthread_mutex_unlock(&l.mu);
		if (l.rate == 0 && now_us() >= end)
			break;
		send_one(&l, seq, due, payload);
		if (tty && now_us() - last_progress > 1e6) {
			last_progress = now_us();
			pthread_mutex_lock(&l.mu);
			fprintf(stderr, "\r%.0fs sent %" PRIu64 " ok %" PRIu64
			        " in flight %" PRIu64 " kills %u   ",
			        (last_progress - start) / 1e6, l.sent, l.ok,
			        l.outstanding, l.kills);
			pthread_mutex_unlock(&l.mu);
		}
	}
	double sent_end = now_us();
	/* Wait for the stragglers: every job is answered by its deadline. */
	double give_up = now_us() + (double)l.job_timeout_ms * 1e3 + 3e6;
	pthread_mutex_lock(&l.mu);
	l.stop = 1;
	while (l.outstanding && now_us() < give_up) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 50000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&l.cv, &l.mu, &ts);
	}
	pthread_mutex_unlock(&l.mu);
	if (chaos_on)
		pthread_join(chaos, NULL);
	if (tty)
		fprintf(stderr, "\n");
	double elapsed = (sent_end - start) / 1e6;
	pthread_mutex_lock(&l.mu);
	report(&l, elapsed);
	uint64_t failed = 0;
	for (int i = 0; i < R_COUNT; i++)
		failed += l.failed[i];
	int loss = l.sent > l.ok + failed || l.dups;
	pthread_mutex_unlock(&l.mu);
	/* Calls still in flight hold pointers into l: leave them be. */
	if (!l.outstanding) {
		corral_client_close(l.client);
		free(l.replies);
		free(l.lat_us);
	}
	free(payload);
	return l.fail_on_loss && loss ? EXIT_LOSS : 0;
bad:
	usage(stderr);
	return EXIT_USAGE;
}
