/*
 * corralctl.c - the control client: asks a running corral for its status
 * over RUNDIR/control (nng REQ, msgpack) and prints it as an aligned table
 * or as JSON.
 */
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "corral_base.h"
#include "common/duration.h"
#include "common/error.h"
#include "common/log.h"
#include "ipc/proto.h"
#include "common/rundir.h"
#include "tools/ctlreq.h"

enum { EXIT_USAGE = 2, EXIT_NOCONN = 1, EXIT_JOBFAIL = 3 };

static void usage(FILE *f)
{
	fprintf(f,
"Usage: corralctl [-n NAME | --rundir DIR] [--url URL] [--timeout DUR] COMMAND\n"
"\n"
"Commands:\n"
"  status [--json]   workers, their state, restarts, memory, CPU, lag\n"
"  call PAYLOAD|-    send one job (the payload, or stdin for -) to the\n"
"                    jobs front end (--url, default ipc://RUNDIR/jobs)\n"
"                    and print the reply; --timeout bounds the job\n"
"\n"
"Exit codes: 0 ok, 1 no supervisor answered, 2 usage error,\n"
"3 the job failed (the reason is printed).\n");
}

/* JSON string with the escapes RFC 8259 requires. */
static void json_str(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c < 0x20)
			printf("\\u%04x", c);
		else
			putchar(c);
	}
	putchar('"');
}

static void print_json(const ipc_status *st)
{
	printf("{\"name\":");
	json_str(st->name);
	printf(",\"pid\":%" PRId64 ",\"state\":", st->pid);
	json_str(st->state);
	printf(",\"bad_frames\":%" PRIu64, st->bad_frames);
	const ipc_job_stats *js = &st->jobs;
	printf(",\"jobs\":{\"queued\":%" PRIu64 ",\"inflight\":%" PRIu64
	       ",\"accepted\":%" PRIu64 ",\"ok\":%" PRIu64
	       ",\"failed\":%" PRIu64 ",\"timeouts\":%" PRIu64
	       ",\"busy\":%" PRIu64 ",\"poison\":%" PRIu64
	       ",\"redispatched\":%" PRIu64 ",\"late_replies\":%" PRIu64 "}",
	       js->queued, js->inflight, js->accepted, js->ok, js->failed,
	       js->timeouts, js->busy, js->poison, js->redispatched, js->late);
	printf(",\"workers\":[");
	for (uint32_t i = 0; i < st->nworkers; i++) {
		const ipc_worker_status *w = &st->workers[i];
		printf("%s{\"slot\":%d,\"pid\":%" PRId64 ",\"state\":",
		       i ? "," : "", w->slot, w->pid);
		json_str(w->state);
		printf(",\"restarts\":%u,\"uptime_ms\":%" PRIu64
		       ",\"rss_bytes\":%" PRIu64 ",\"cpu_pct\":%.2f"
		       ",\"lag_p50_us\":%" PRIu64 ",\"lag_p99_us\":%" PRIu64
		       ",\"lag_max_us\":%" PRIu64 ",\"utilization\":%.4f",
		       w->restarts, w->uptime_ms, w->rss_bytes, w->cpu_pct,
		       w->lag_p50_us, w->lag_p99_us, w->lag_max_us, w->util);
		printf(",\"jobs\":%" PRIu64 ",\"degraded\":%s", w->jobs,
		       w->degraded ? "true" : "false");
		printf(",\"last_exit\":");
		if (w->exit_signal[0]) {
			printf("{\"signal\":");
			json_str(w->exit_signal);
			printf("}");
		} else if (w->exit_code >= 0) {
			printf("{\"code\":%d}", w->exit_code);
		} else {
			printf("null");
		}
		printf(",\"metrics\":{");
		for (uint32_t j = 0; j < w->nmetrics; j++) {
			printf("%s", j ? "," : "");
			json_str(w->metrics[j].name);
			printf(":%.17g", w->metrics[j].value);
		}
		const ipc_pool_stats *p = &w->pool;
		printf("},\"pool\":{\"submitted\":%" PRIu64
		       ",\"completed\":%" PRIu64 ",\"rejected\":%" PRIu64
		       ",\"expired\":%" PRIu64 ",\"cancelled\":%" PRIu64
		       ",\"queued\":{\"critical\":%" PRIu64 ",\"high\":%" PRIu64
		       ",\"normal\":%" PRIu64 ",\"low\":%" PRIu64 "}"
		       ",\"running\":%" PRIu64 ",\"wait_p50_us\":%" PRIu64
		       ",\"wait_p99_us\":%" PRIu64 ",\"run_p50_us\":%" PRIu64
		       ",\"run_p99_us\":%" PRIu64
		       ",\"oldest_running_ms\":%" PRIu64 "}}",
		       p->submitted, p->completed, p->rejected, p->expired,
		       p->cancelled, p->queued[0], p->queued[1], p->queued[2],
		       p->queued[3], p->running, p->wait_p50_us, p->wait_p99_us,
		       p->run_p50_us, p->run_p99_us, p->oldest_running_ms);
	}
	printf("]}\n");
}

static void fmt_dur(uint64_t ms, char *buf, size_t len)
{
	if (ms < 60000)
		snprintf(buf, len, "%" PRIu64 "s", ms / 1000);
	else if (ms < 3600000)
		snprintf(buf, len, "%" PRIu64 "m", ms / 60000);
	else if (ms < 86400000)
		snprintf(buf, len, "%" PRIu64 "h", ms / 3600000);
	else
		snprintf(buf, len, "%" PRIu64 "d", ms / 86400000);
}

static void print_table(const ipc_status *st)
{
	printf("%s: supervisor pid %" PRId64 ", %s, %u worker(s)\n", st->name,
	       st->pid, st->state, st->nworkers);
	printf("%-5s %-8s %-9s %-8s %-7s %-6s %-9s %-9s %s\n", "SLOT", "PID",
	       "STATE", "RESTARTS", "UPTIME", "CPU", "MEM", "LAG P99",
	       "LAST EXIT");
	for (uint32_t i = 0; i < st->nworkers; i++) {
		const ipc_worker_status *w = &st->workers[i];
		char up[16], cpu[16], mem[16], lag[16], last[32], pid[24];
		fmt_dur(w->uptime_ms, up, sizeof up);
		snprintf(pid, sizeof pid, "%" PRId64, w->pid);
		snprintf(cpu, sizeof cpu, "%.1f%%", w->cpu_pct);
		snprintf(mem, sizeof mem, "%.1f MB",
		         (double)w->rss_bytes / (1024.0 * 1024.0));
		snprintf(lag, sizeof lag, "%.1f ms",
		         (double)w->lag_p99_us / 1000.0);
		if (w->exit_signal[0])
			snprintf(last, sizeof last, "%s", w->exit_signal);
		else if (w->exit_code >= 0)
			snprintf(last, sizeof last, "code %d", w->exit_code);
		else
			snprintf(last, sizeof last, "-");
		printf("%-5d %-8s %-9s %-8u %-7s %-6s %-9s %-9s %s\n", w->slot,
		       w->pid ? pid : "-", w->state, w->restarts, up, cpu, mem,
		       lag, last);
	}
}

static int cmd_status(const char *rundir, uint64_t timeout_ms, int json)
{
	ipc_status st;
	int rc = ctl_status(rundir, timeout_ms, &st);
	if (rc) {
		log_plain("no corral answered at %s/control: %s", rundir,
		          corral_strerror(rc));
		return EXIT_NOCONN;
	}
	if (json)
		print_json(&st);
	else
		print_table(&st);
	ipc_status_free(&st);
	return 0;
}

static int cmd_call(const char *url, uint64_t timeout_ms, const char *arg)
{
	static uint8_t buf[IPC_MAX_PAYLOAD + 1];
	size_t len;
	if (strcmp(arg, "-") == 0) {
		len = fread(buf, 1, sizeof buf, stdin);
	} else {
		len = strlen(arg);
		if (len <= IPC_MAX_PAYLOAD)
			memcpy(buf, arg, len);
	}
	if (len > IPC_MAX_PAYLOAD) {
		log_plain("payload larger than %u bytes", IPC_MAX_PAYLOAD);
		return EXIT_USAGE;
	}
	ipc_call c = {.payload = buf, .len = (uint32_t)len,
	              .timeout_ms = timeout_ms, .prio = CORRAL_PRIO_NORMAL};
	nng_msg *req = NULL, *reply = NULL;
	ipc_frame f;
	ipc_result r;
	/* Wait a little longer than the job may take: its answer (even
	 * "timeout") comes from the supervisor. */
	uint64_t wait = timeout_ms ? timeout_ms + 2000 : 600000;
	int rc = ipc_pack_call(&req, &c);
	if (!rc)
		rc = ctl_request(url, wait, req, &reply);
	if (rc) {
		log_plain("no answer from %s: %s", url, corral_strerror(rc));
		return EXIT_NOCONN;
	}
	rc = ipc_decode_msg(reply, IPC_MAX_CTL_FRAME, &f);
	if (rc) {
		log_plain("bad reply: %s", corral_strerror(rc));
		return EXIT_NOCONN;
	}
	rc = ipc_unpack_result(&f, &r);
	if (rc) {
		log_plain("bad reply: %s", corral_strerror(rc));
		ipc_frame_fini(&f);
		return EXIT_NOCONN;
	}
	int code = 0;
	if (r.ok) {
		fwrite(r.data, 1, r.len, stdout);
		if (isatty(STDOUT_FILENO))
			putchar('\n');
	} else {
		log_plain("%s: %s", r.err, r.msg);
		code = EXIT_JOBFAIL;
	}
	ipc_frame_fini(&f);
	return code;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"name", required_argument, NULL, 'n'},
		{"rundir", required_argument, NULL, 'r'},
		{"url", required_argument, NULL, 'u'},
		{"timeout", required_argument, NULL, 't'},
		{"json", no_argument, NULL, 'j'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0},
	};
	const char *name = "corral", *rundir_opt = NULL, *url_opt = NULL;
	char rundir[PATH_MAX];
	uint64_t timeout_ms = 0;
	int json = 0, c;

	log_set_prog("corralctl");
	while ((c = getopt_long(argc, argv, "n:h", opts, NULL)) != -1) {
		switch (c) {
		case 'n':
			name = optarg;
			break;
		case 'r':
			rundir_opt = optarg;
			break;
		case 'u':
			url_opt = optarg;
			break;
		case 't':
			if (parse_duration_ms(optarg, &timeout_ms) != 0 ||
			    timeout_ms == 0) {
				log_plain("bad --timeout %s (500ms, 2s, 1m)", optarg);
				return EXIT_USAGE;
			}
			break;
		case 'j':
			json = 1;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("corralctl %s\n", PACKAGE_VERSION);
			return 0;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (rundir_opt)
		snprintf(rundir, sizeof rundir, "%s", rundir_opt);
	else if (rundir_default(name, rundir, sizeof rundir) != 0) {
		log_plain("name too long");
		return EXIT_USAGE;
	}
	const char *cmd = argv[optind];
	if (strcmp(cmd, "status") == 0) {
		for (int i = optind + 1; i < argc; i++) {
			if (strcmp(argv[i], "--json") == 0) {
				json = 1;
			} else {
				log_plain("status: unknown argument %s", argv[i]);
				return EXIT_USAGE;
			}
		}
		return cmd_status(rundir, timeout_ms ? timeout_ms : 5000, json);
	}
	if (strcmp(cmd, "call") == 0) {
		char url[PATH_MAX + 16];
		if (optind + 2 != argc) {
			log_plain("call wants one PAYLOAD (or - for stdin)");
			return EXIT_USAGE;
		}
		if (url_opt)
			snprintf(url, sizeof url, "%s", url_opt);
		else if (rundir_url(rundir, "jobs", url, sizeof url) != 0)
			return EXIT_USAGE;
		return cmd_call(url, timeout_ms, argv[optind + 1]);
	}
	log_plain("unknown command '%s'", cmd);
	usage(stderr);
	return EXIT_USAGE;
}
