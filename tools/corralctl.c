/*
 * corralctl.c - the control client: asks a running corral for its status
 * or its events over RUNDIR/control (nng REQ, msgpack), and sends jobs to
 * its front end through the client library.  What it prints comes from
 * tools/show.c (tables and JSON from the field tables).
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdatomic.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <sys/random.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/duration.h"
#include "common/log.h"
#include "common/rundir.h"
#include "corral_client.h"
#include "ipc/proto.h"
#include "tools/ctlreq.h"
#include "tools/show.h"
#include "tools/top.h"

enum { EXIT_USAGE = 2, EXIT_NOCONN = 1, EXIT_JOBFAIL = 3, EXIT_CMDFAIL = 4 };

#define CONNECT_WAIT_MS 3000

static void usage(FILE *f)
{
	fprintf(f,
"Usage: corralctl [-n NAME | --rundir DIR] [--url URL] [--timeout DUR] COMMAND\n"
"\n"
"Commands:\n"
"  status [--json]   workers, their state, restarts, memory, CPU, lag\n"
"  top [--once] [--interval DUR]\n"
"                    a live view: one row per slot (state, pid, generation,\n"
"                    CPU, memory, lag, utilisation, jobs/s, restarts) and\n"
"                    totals, redrawn every second; q quits.  --once prints\n"
"                    one frame as plain text (two samples DUR apart, 1s)\n"
"  logs [-f] [--slot N] [-n LINES] [--json]\n"
"                    the last lines the workers wrote and the supervisor\n"
"                    logged (each slot keeps its last 1000 lines or 256 KiB,\n"
"                    the supervisor as much); --slot N: slot N's workers\n"
"                    only; -n: the last LINES only; -f keeps following them\n"
"                    until the supervisor stops; --json: one object a line\n"
"  explain SLOT [--json] [-n N]\n"
"                    why the slot is as it is: its state changes and the\n"
"                    supervisor's decisions about it (restart, delay, give\n"
"                    up, kill), each with its inputs: exit, uptime, backoff\n"
"                    and why, restart budget used and left, health figures\n"
"  events [-f] [--json] [--since SEQ]\n"
"                    state changes, actions and decisions of the supervisor,\n"
"                    one per line (--json: one JSON object per line); -f\n"
"                    keeps following them until the supervisor stops\n"
"  call PAYLOAD|-    send one job (the payload, or stdin for -) to the\n"
"                    jobs front end (--url, default ipc://RUNDIR/jobs)\n"
"                    and print the reply; --timeout bounds the job\n"
"  reload [--plugin NEW.so] [--config FILE]\n"
"                    re-read the configuration and replace every worker,\n"
"                    one slot at a time, each new one READY and healthy\n"
"                    for reload_gate before the old one drains; a failure\n"
"                    rolls every slot back.  Prints each step.\n"
"  restart [SLOT...|all]\n"
"                    the same rolling replacement without new code; also\n"
"                    brings FAILED slots back\n"
"  scale N|+N|-N     workers wanted (new ones start at once; the highest\n"
"                    slots stop gracefully)\n"
"  stop              the graceful shutdown of SIGTERM\n"
"\n"
"reload, restart, scale and stop answer when the command has finished.\n"
"After the command, -n is LINES (logs, explain); before it, NAME.\n"
"\n"
"Exit codes: 0 ok, 1 no supervisor answered, 2 usage error,\n"
"3 the job failed (the reason is printed), 4 the command failed or was\n"
"refused (the reason is printed).\n");
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
	if (json) {
		if (show_status_json(stdout, &st) != 0)
			log_plain("out of memory for the JSON");
	} else {
		show_status_table(stdout, &st);
	}
	ipc_status_free(&st);
	return 0;
}

/* One EVENTS request.  On 0, free ev with ipc_events_free(). */
static int fetch_events(const char *url, uint64_t timeout_ms, uint64_t since,
                        uint64_t wait_ms, ipc_events *ev)
{
	ipc_events_req q = {.since = since, .wait_ms = wait_ms,
	                    .max = IPC_MAX_EVENTS};
	nng_msg *req = NULL, *reply = NULL;
	ipc_frame f;
	int rc = ipc_pack_events_req(&req, &q);
	if (!rc)
		rc = ctl_request(url, wait_ms + timeout_ms, req, &reply);
	if (!rc)
		rc = ipc_decode_msg(reply, IPC_MAX_CTL_FRAME, &f);
	if (rc)
		return rc;
	rc = ipc_unpack_events(&f, ev);
	ipc_frame_fini(&f);
	return rc;
}

/* Prints the events after `since`; with follow, keeps asking (each
 * request waits on the supervisor until there is news) until it stops. */
static int cmd_events(const char *rundir, uint64_t timeout_ms, int follow,
                      int json, uint64_t since)
{
	char url[PATH_MAX + 16];
	if (rundir_url(rundir, "control", url, sizeof url) != 0)
		return EXIT_USAGE;
	int seen_any = 0;
	for (;;) {
		ipc_events ev;
		int rc = fetch_events(url, timeout_ms, since,
		                      follow ? 30000 : 0, &ev);
		if (rc) {
			if (seen_any)
				return 0; /* it stopped while we followed */
			log_plain("no corral answered at %s: %s", url,
			          corral_strerror(rc));
			return EXIT_NOCONN;
		}
		seen_any = 1;
		if (since && ev.first > since + 1)
			fprintf(stderr, "corralctl: %" PRIu64 " event(s) were "
			        "dropped before they could be read\n",
			        ev.first - since - 1);
		int done = 0;
		for (uint32_t i = 0; i < ev.n; i++) {
			if (json)
				show_event_json(stdout, &ev.ev[i]);
			else
				show_event_line(stdout, &ev.ev[i]);
			since = ev.ev[i].seq;
			done |= strcmp(ev.ev[i].kind, "supervisor") == 0 &&
			        strcmp(ev.ev[i].to, "done") == 0;
		}
		fflush(stdout);
		int more = ev.n == IPC_MAX_EVENTS;
		ipc_events_free(&ev);
		if ((!follow || done) && !more)
			return 0; /* all there is, or the supervisor's end */
	}
}

/* The ERROR a supervisor answered instead (an older one, without LOGS). */
static int error_reply(const ipc_frame *f)
{
	ipc_error e;
	if (f->type != IPC_ERROR)
		return 0;
	if (ipc_unpack_error(f, &e) != 0)
		return CORRAL_EFIELD;
	log_plain("the supervisor refused: %s", e.msg);
	return e.code ? e.code : CORRAL_EFIELD;
}

/* Prints the log ring's lines (the last `lines` of them when lines > 0;
 * none of the old ones when lines is 0 and follow); with follow, then
 * what comes, until the supervisor stops. */
static int cmd_logs(const char *rundir, uint64_t timeout_ms, int follow,
                    int json, int slot, long lines)
{
	char url[PATH_MAX + 16];
	if (rundir_url(rundir, "control", url, sizeof url) != 0)
		return EXIT_USAGE;
	uint64_t since = 0;
	uint32_t tail = lines > 0 ? (uint32_t)lines : lines == 0 ? 1 : 0;
	int seen_any = 0, skip = lines == 0;
	for (;;) {
		ipc_logs_req q = {.since = since, .wait_ms = follow ? 30000 : 0,
		                  .max = IPC_MAX_LOGLINES, .slot = slot,
		                  .tail = tail};
		nng_msg *req = NULL, *reply = NULL;
		ipc_frame f;
		ipc_logs lg;
		if (skip)
			q.wait_ms = 0;
		int rc = ipc_pack_logs_req(&req, &q);
		if (!rc)
			rc = ctl_request(url, q.wait_ms + timeout_ms, req,
			                 &reply);
		if (!rc)
			rc = ipc_decode_msg(reply, IPC_MAX_CTL_FRAME, &f);
		if (rc) {
			if (seen_any)
				return 0; /* it stopped while we followed */
			log_plain("no corral answered at %s: %s", url,
			          corral_strerror(rc));
			return EXIT_NOCONN;
		}
		if ((rc = error_reply(&f)) != 0) {
			ipc_frame_fini(&f);
			return EXIT_NOCONN;
		}
		rc = ipc_unpack_logs(&f, &lg);
		if (rc) {
			ipc_frame_fini(&f);
			log_plain("bad reply: %s", corral_strerror(rc));
			return EXIT_NOCONN;
		}
		seen_any = 1;
		for (uint32_t i = 0; i < lg.n && !skip; i++) {
			if (json)
				show_logline_json(stdout, &lg.lines[i]);
			else
				show_logline(stdout, &lg.lines[i]);
		}
		fflush(stdout);
		int more = lg.n == IPC_MAX_LOGLINES, end = lg.end;
		since = lg.next;
		tail = 0;
		skip = 0;
		ipc_logs_free(&lg);
		ipc_frame_fini(&f); /* the lines pointed into it */
		if ((!follow || end) && !more)
			return 0; /* all there is, or the supervisor's last */
	}
}

/* The events about one slot (state changes, actions, decisions), with
 * its status for a heading. */
static int cmd_explain(const char *rundir, uint64_t timeout_ms,
                       const char *arg, int json, long lines)
{
	char url[PATH_MAX + 16], *end;
	long slot = strtol(arg, &end, 10);
	if (*end || !*arg || slot < 0 || slot > INT32_MAX) {
		log_plain("explain wants a slot number, not '%s'", arg);
		return EXIT_USAGE;
	}
	if (rundir_url(rundir, "control", url, sizeof url) != 0)
		return EXIT_USAGE;
	ipc_status st;
	int rc = ctl_status(rundir, timeout_ms, &st);
	if (rc) {
		log_plain("no corral answered at %s: %s", url,
		          corral_strerror(rc));
		return EXIT_NOCONN;
	}
	const ipc_worker_status *w = NULL;
	for (uint32_t i = 0; i < st.nworkers; i++)
		if (st.workers[i].slot == slot)
			w = &st.workers[i];
	if (!w) {
		log_plain("no slot %ld: this supervisor has slots 0 to %d", slot,
		          (int)st.nworkers - 1);
		ipc_status_free(&st);
		return EXIT_USAGE;
	}
	ipc_event *mine = NULL;
	size_t n = 0, cap = 0;
	uint64_t since = 0;
	for (;;) {
		ipc_events ev;
		if ((rc = fetch_events(url, timeout_ms, since, 0, &ev)) != 0)
			break;
		for (uint32_t i = 0; i < ev.n; i++) {
			since = ev.ev[i].seq;
			if (ev.ev[i].slot != slot)
				continue;
			if (n == cap) {
				size_t nc = cap ? cap * 2 : 64;
				ipc_event *ne = realloc(mine, nc * sizeof *ne);
				if (!ne) {
					rc = CORRAL_ENOMEM;
					break;
				}
				mine = ne;
				cap = nc;
			}
			mine[n++] = ev.ev[i];
		}
		int more = ev.n == IPC_MAX_EVENTS;
		ipc_events_free(&ev);
		if (rc || !more)
			break;
	}
	if (rc) {
		log_plain("could not read the events: %s", corral_strerror(rc));
		free(mine);
		ipc_status_free(&st);
		return EXIT_NOCONN;
	}
	const ipc_event *from = mine;
	if (lines > 0 && n > (size_t)lines) {
		from = mine + (n - (size_t)lines);
		n = (size_t)lines;
	}
	if (json) {
		if (show_explain_json(stdout, (int)slot, w, from, n) != 0)
			log_plain("out of memory for the JSON");
	} else {
		char last[32];
		size_t ndec = 0;
		show_last_exit(w, last, sizeof last);
		printf("slot %ld: %s, pid %" PRId64 ", gen %u, %u restart(s), "
		       "last exit %s\n", slot, w->state, w->pid, w->gen,
		       w->restarts, last);
		for (size_t i = 0; i < n; i++)
			ndec += from[i].has_decision;
		printf("%zu event(s) about it still held, oldest first; %zu "
		       "decision(s) with their inputs:\n", n, ndec);
		for (size_t i = 0; i < n; i++)
			show_explain_event(stdout, &from[i]);
	}
	fflush(stdout);
	free(mine);
	ipc_status_free(&st);
	return 0;
}

/* ---- commands: sent, then each step printed until the answer ---- */

typedef struct follower {
	char url[PATH_MAX + 16];
	uint64_t since;
	atomic_int stop;
	int json;
} follower;

/* Prints the command's steps (events of kinds other than slot changes,
 * and slot changes too: they are the steps) until told to stop. */
static void *follow_steps(void *arg)
{
	follower *fw = arg;
	while (!atomic_load(&fw->stop)) {
		ipc_events_req q = {.since = fw->since, .wait_ms = 200,
		                    .max = IPC_MAX_EVENTS};
		nng_msg *req = NULL, *reply = NULL;
		ipc_frame f;
		ipc_events ev;
		if (ipc_pack_events_req(&req, &q) != 0 ||
		    ctl_request(fw->url, 2000, req, &reply) != 0 ||
		    ipc_decode_msg(reply, IPC_MAX_CTL_FRAME, &f) != 0)
			break;
		int rc = ipc_unpack_events(&f, &ev);
		ipc_frame_fini(&f);
		if (rc)
			break;
		for (uint32_t i = 0; i < ev.n; i++) {
			if (strcmp(ev.ev[i].kind, "slot") != 0 ||
			    strcmp(ev.ev[i].to, "running") == 0 ||
			    strcmp(ev.ev[i].to, "stopped") == 0 ||
			    strcmp(ev.ev[i].to, "failed") == 0) {
				if (fw->json)
					show_event_json(stdout, &ev.ev[i]);
				else
					show_event_line(stdout, &ev.ev[i]);
			}
			fw->since = ev.ev[i].seq;
		}
		fflush(stdout);
		ipc_events_free(&ev);
	}
	return NULL;
}

/* The newest event's number now (to follow what comes after). */
static int events_last(const char *url, uint64_t *last)
{
	ipc_events_req q = {.since = UINT64_MAX - 1, .wait_ms = 0, .max = 1};
	nng_msg *req = NULL, *reply = NULL;
	ipc_frame f;
	ipc_events ev;
	int rc = ipc_pack_events_req(&req, &q);
	if (!rc)
		rc = ctl_request(url, 5000, req, &reply);
	if (!rc)
		rc = ipc_decode_msg(reply, IPC_MAX_CTL_FRAME, &f);
	if (rc)
		return rc;
	rc = ipc_unpack_events(&f, &ev);
	ipc_frame_fini(&f);
	if (!rc) {
		*last = ev.last;
		ipc_events_free(&ev);
	}
	return rc;
}

/* How long one ask waits before asking again (a rollout takes as long
 * as it takes; the command's id makes a repeat join the first). */
#define CMD_SLICE_MS 2000

/* The answer to cmd into r.  Asked again after a slice or a lost
 * connection; for stop, a supervisor (pid) that has exited is the answer,
 * should its own have been lost with its socket.  0 or a corral_err. */
static int await_command(const char *url, const ipc_cmd *cmd, pid_t pid,
                         ipc_cmd_result *r)
{
	for (;;) {
		nng_msg *req = NULL, *reply = NULL;
		ipc_frame f;
		int rc = ipc_pack_cmd(&req, cmd);
		if (!rc)
			rc = ctl_request(url, CMD_SLICE_MS, req, &reply);
		if (!rc && !(rc = ipc_decode_msg(reply, IPC_MAX_CTL_FRAME, &f))) {
			if (f.type == IPC_ERROR) {
				ipc_error e;
				rc = ipc_unpack_error(&f, &e);
				*r = (ipc_cmd_result){.ok = 0,
				                      .code = rc ? rc : e.code};
				snprintf(r->msg, sizeof r->msg, "%s",
				         rc ? "bad reply" : e.msg);
				rc = 0;
			} else {
				rc = ipc_unpack_cmd_result(&f, r);
			}
			ipc_frame_fini(&f);
			return rc;
		}
		int gone = pid > 0 && kill(pid, 0) != 0 && errno == ESRCH;
		if (gone && strcmp(cmd->cmd, "stop") == 0) {
			*r = (ipc_cmd_result){.ok = 1};
			snprintf(r->msg, sizeof r->msg, "stopped (corral pid %ld "
			         "has exited)", (long)pid);
			return 0;
		}
		if (gone || (rc != CORRAL_ETIMEDOUT && rc != CORRAL_ECLOSED))
			return rc;
	}
}

static int cmd_command(const char *rundir, const ipc_cmd *cmd, int quiet,
                       int json)
{
	static follower fw;
	pthread_t th;
	int following = 0;
	if (rundir_url(rundir, "control", fw.url, sizeof fw.url) != 0)
		return EXIT_USAGE;
	int rc = events_last(fw.url, &fw.since);
	if (rc) {
		log_plain("no corral answered at %s: %s", fw.url,
		          corral_strerror(rc));
		return EXIT_NOCONN;
	}
	ipc_status st;
	pid_t sup_pid = 0;
	if (ctl_status(rundir, CONNECT_WAIT_MS, &st) == 0) {
		sup_pid = (pid_t)st.pid;
		ipc_status_free(&st);
	}
	fw.json = json;
	if (!quiet && pthread_create(&th, NULL, follow_steps, &fw) == 0)
		following = 1;
	ipc_cmd_result r;
	rc = await_command(fw.url, cmd, sup_pid, &r);
	if (following) {
		usleep(250 * 1000); /* the last steps' events */
		atomic_store(&fw.stop, 1);
		pthread_join(th, NULL);
	}
	if (rc) {
		log_plain("%s: no answer from %s: %s", cmd->cmd, fw.url,
		          corral_strerror(rc));
		return EXIT_NOCONN;
	}
	fprintf(r.ok ? stdout : stderr, "%s\n", r.msg);
	return r.ok ? 0 : EXIT_CMDFAIL;
}

static int cmd_call(const char *url, uint64_t timeout_ms, const char *arg)
{
	static char buf[IPC_MAX_PAYLOAD + 1];
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
	corral_client *c;
	int rc = corral_client_open(&c, url);
	if (rc) {
		log_plain("cannot use %s: %s", url, corral_strerror(rc));
		return EXIT_USAGE;
	}
	/* Fail fast when nothing listens (a connect-and-close probe would
	 * hit nng 1.5.2 bug #1518 in the supervisor). */
	if ((rc = corral_client_wait(c, CONNECT_WAIT_MS))) {
		log_plain("no answer from %s: %s", url, corral_strerror(rc));
		corral_client_close(c);
		return EXIT_NOCONN;
	}
	void *reply = NULL;
	size_t rlen = 0;
	char err[512];
	rc = corral_client_call(c, buf, len, timeout_ms, CORRAL_PRIO_NORMAL,
	                        &reply, &rlen, err, sizeof err);
	corral_client_close(c);
	if (rc == 0) {
		fwrite(reply, 1, rlen, stdout);
		if (isatty(STDOUT_FILENO))
			putchar('\n');
		free(reply);
		return 0;
	}
	log_plain("%s", err);
	return rc == CORRAL_ECLOSED || rc == CORRAL_ENNG ? EXIT_NOCONN
	                                                 : EXIT_JOBFAIL;
}

/* After the command word, "-n" is logs' and explain's LINES, not NAME:
 * rewritten to --lines before getopt sees it.  Returns the index of the
 * command word (argc if none). */
static int lines_after_command(int argc, char **argv)
{
	static const char *const with_arg[] = {"-n", "--name", "--rundir",
	                                       "--url", "--timeout", "--since",
	                                       "--slot", "--lines",
	                                       "--interval", NULL};
	int cmd = argc;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0)
			return argc;
		if (argv[i][0] != '-') {
			cmd = i;
			break;
		}
		for (int k = 0; with_arg[k]; k++)
			if (strcmp(argv[i], with_arg[k]) == 0) {
				i++;
				break;
			}
	}
	if (cmd == argc || (strcmp(argv[cmd], "logs") != 0 &&
	                    strcmp(argv[cmd], "explain") != 0))
		return cmd;
	for (int i = cmd + 1; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0)
			break;
		if (strcmp(argv[i], "-n") == 0) {
			argv[i] = "--lines";
		} else if (strncmp(argv[i], "-n", 2) == 0) {
			/* -n20: the number glued on */
			static char glued[64];
			snprintf(glued, sizeof glued, "--lines=%s", argv[i] + 2);
			argv[i] = glued;
		}
	}
	return cmd;
}

static int parse_count(const char *what, const char *s, long *out)
{
	char *end;
	long v = strtol(s, &end, 10);
	if (*end || !*s || v < 0 || v > INT32_MAX) {
		log_plain("bad %s %s (a number)", what, s);
		return -1;
	}
	*out = v;
	return 0;
}

/* The command line, parsed: options before the command, the command, its
 * own options and arguments after it. */
typedef struct ctl_args {
	const char *name, *rundir_opt, *url_opt, *plugin_opt, *config_opt;
	uint64_t timeout_ms, since, interval_ms;
	long slot, lines;
	int json, follow, once;
	const char *cmd;
	char **args;
	int nargs;
} ctl_args;

static const struct option ctl_opts[] = {
	{"name", required_argument, NULL, 'n'},
	{"rundir", required_argument, NULL, 'r'},
	{"url", required_argument, NULL, 'u'},
	{"timeout", required_argument, NULL, 't'},
	{"json", no_argument, NULL, 'j'},
	{"follow", no_argument, NULL, 'f'},
	{"since", required_argument, NULL, 's'},
	{"plugin", required_argument, NULL, 'P'},
	{"config", required_argument, NULL, 'C'},
	{"slot", required_argument, NULL, 'S'},
	{"lines", required_argument, NULL, 'L'},
	{"once", no_argument, NULL, 'O'},
	{"interval", required_argument, NULL, 'I'},
	{"help", no_argument, NULL, 'h'},
	{"version", no_argument, NULL, 'V'},
	{NULL, 0, NULL, 0},
};

/* One option into a.  -1 to go on, else the exit code (--help, --version,
 * a bad value). */
static int one_option(ctl_args *a, int c)
{
	char *end;
	switch (c) {
	case 'n':
		a->name = optarg;
		return -1;
	case 'r':
		a->rundir_opt = optarg;
		return -1;
	case 'u':
		a->url_opt = optarg;
		return -1;
	case 'P':
		a->plugin_opt = optarg;
		return -1;
	case 'C':
		a->config_opt = optarg;
		return -1;
	case 'j':
		a->json = 1;
		return -1;
	case 'f':
		a->follow = 1;
		return -1;
	case 'O':
		a->once = 1;
		return -1;
	case 't':
	case 'I': {
		uint64_t *ms = c == 't' ? &a->timeout_ms : &a->interval_ms;
		if (parse_duration_ms(optarg, ms) != 0 || *ms == 0) {
			log_plain("bad --%s %s (500ms, 2s, 1m)",
			          c == 't' ? "timeout" : "interval", optarg);
			return EXIT_USAGE;
		}
		return -1;
	}
	case 's':
		a->since = strtoull(optarg, &end, 10);
		if (*end || !*optarg) {
			log_plain("bad --since %s (an event number)", optarg);
			return EXIT_USAGE;
		}
		return -1;
	case 'S':
		return parse_count("--slot", optarg, &a->slot) ? EXIT_USAGE : -1;
	case 'L':
		return parse_count("-n", optarg, &a->lines) ? EXIT_USAGE : -1;
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

/* Options before the command, then the command's own after it (so that
 * `scale -1` is an argument, not an option).  -1, or the exit code. */
static int parse_args(ctl_args *a, int argc, char **argv)
{
	int c, rc, cmd_at = 0, pos_at = 0;
	lines_after_command(argc, argv);
	for (int pass = 0; pass < 2; pass++) {
		int pc = pass ? argc - cmd_at : argc;
		char **pv = pass ? argv + cmd_at : argv;
		if (pass && (cmd_at >= argc || !strcmp(argv[cmd_at], "scale")))
			break;
		optind = 0;
		while ((c = getopt_long(pc, pv, pass ? "n:f" : "+n:fh",
		                        ctl_opts, NULL)) != -1)
			if ((rc = one_option(a, c)) != -1)
				return rc;
		if (!pass)
			cmd_at = optind;
		else
			pos_at = cmd_at + optind; /* getopt put them last */
	}
	if (cmd_at >= argc) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (!pos_at)
		pos_at = cmd_at + 1; /* scale: no options after it */
	a->cmd = argv[cmd_at];
	a->args = argv + pos_at;
	a->nargs = argc - pos_at;
	return -1;
}

/* reload, restart, scale, stop: the CMD request, with an id of its own
 * (so that a resend is known for one) and reload's paths made absolute. */
static int run_control_command(const ctl_args *a, const char *rundir)
{
	static ipc_cmd cm;
	snprintf(cm.cmd, sizeof cm.cmd, "%s", a->cmd);
	if (getrandom(&cm.id, sizeof cm.id, 0) != sizeof cm.id)
		cm.id = ((uint64_t)getpid() << 32) ^ (uint64_t)time(NULL);
	cm.id |= 1; /* never 0, "none" */
	const char *paths[2][2] = {{"plugin", a->plugin_opt},
	                           {"config", a->config_opt}};
	for (int k = 0; k < 2; k++) {
		char path[PATH_MAX];
		if (!paths[k][1])
			continue;
		if (strcmp(a->cmd, "reload") != 0) {
			log_plain("--%s is for reload", paths[k][0]);
			return EXIT_USAGE;
		}
		if (!realpath(paths[k][1], path)) {
			log_plain("reload --%s %s: %s", paths[k][0], paths[k][1],
			          strerror(errno));
			return EXIT_USAGE;
		}
		snprintf(cm.args[cm.nargs++], IPC_ARG_LEN, "%s=%.4000s",
		         paths[k][0], path);
	}
	int bad = (!strcmp(a->cmd, "scale") && a->nargs != 1) ||
	          ((!strcmp(a->cmd, "reload") || !strcmp(a->cmd, "stop")) &&
	           a->nargs != 0) ||
	          a->nargs + (int)cm.nargs > IPC_MAX_ARGS;
	for (int i = 0; !bad && i < a->nargs; i++)
		snprintf(cm.args[cm.nargs++], IPC_ARG_LEN, "%s", a->args[i]);
	if (bad) {
		log_plain("%s: bad arguments (see corralctl --help)", a->cmd);
		return EXIT_USAGE;
	}
	return cmd_command(rundir, &cm, 0, a->json);
}

static int run_call(const ctl_args *a, const char *rundir)
{
	char url[PATH_MAX + 16];
	if (a->nargs != 1) {
		log_plain("call wants one PAYLOAD (or - for stdin)");
		return EXIT_USAGE;
	}
	if (a->url_opt)
		snprintf(url, sizeof url, "%s", a->url_opt);
	else if (rundir_url(rundir, "jobs", url, sizeof url) != 0)
		return EXIT_USAGE;
	return cmd_call(url, a->timeout_ms, a->args[0]);
}

static int is(const ctl_args *a, const char *cmd, int nargs)
{
	return strcmp(a->cmd, cmd) == 0 && (nargs < 0 || a->nargs == nargs);
}

static int run(const ctl_args *a, const char *rundir)
{
	uint64_t tmo = a->timeout_ms ? a->timeout_ms : 5000;
	if (is(a, "status", 0))
		return cmd_status(rundir, tmo, a->json);
	if (is(a, "events", 0))
		return cmd_events(rundir, tmo, a->follow, a->json, a->since);
	if (is(a, "logs", 0))
		return cmd_logs(rundir, tmo, a->follow, a->json, (int)a->slot,
		                a->lines);
	if (is(a, "explain", 1))
		return cmd_explain(rundir, tmo, a->args[0], a->json, a->lines);
	if (is(a, "top", 0)) /* a slow answer must not hold up q for long */
		return top_main(rundir, a->timeout_ms ? a->timeout_ms : 1000,
		                a->interval_ms, a->once);
	if (is(a, "call", -1))
		return run_call(a, rundir);
	if (is(a, "reload", -1) || is(a, "restart", -1) ||
	    is(a, "scale", -1) || is(a, "stop", -1))
		return run_control_command(a, rundir);
	if (is(a, "explain", -1))
		log_plain("explain wants one SLOT");
	else if (a->nargs > 0 && (is(a, "status", -1) || is(a, "events", -1) ||
	                          is(a, "logs", -1) || is(a, "top", -1)))
		log_plain("%s: unexpected argument %s", a->cmd, a->args[0]);
	else
		log_plain("unknown command '%s'", a->cmd);
	usage(stderr);
	return EXIT_USAGE;
}

int main(int argc, char **argv)
{
	ctl_args a = {.name = "corral", .interval_ms = 1000, .slot = -1,
	              .lines = -1};
	char rundir[PATH_MAX];
	log_set_prog("corralctl");
	signal(SIGPIPE, SIG_IGN);
	int rc = parse_args(&a, argc, argv);
	if (rc != -1)
		return rc;
	if (a.rundir_opt)
		snprintf(rundir, sizeof rundir, "%s", a.rundir_opt);
	else if (rundir_default(a.name, rundir, sizeof rundir) != 0) {
		log_plain("name too long");
		return EXIT_USAGE;
	}
	return run(&a, rundir);
}
