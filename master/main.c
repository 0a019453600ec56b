/*
 * main.c - corral, the supervisor: parse the command line and config file,
 * prepare the run directory, run the supervisor loop, exit with its code.
 * Configuration errors exit 2 before anything is started.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "corral.h"
#include "common/log.h"
#include "common/rundir.h"
#include "master/listen.h"
#include "master/ops.h" /* ops hook: metrics, health, systemd, cgroups */
#include "master/privdrop.h"
#include "master/rundir.h"
#include "master/sup.h"

static void usage(FILE *f)
{
	fprintf(f,
"Usage: corral [OPTIONS] PLUGIN.so\n"
"\n"
"Runs one corral-worker process per slot, each loading PLUGIN.so, and keeps\n"
"them running: restarts with backoff, hang detection, graceful shutdown on\n"
"SIGTERM/SIGINT (a second signal kills at once).  Logs to stderr.\n"
"\n"
"Options (each is also a key in the config file's [corral] section):\n"
"  -w, --workers N|auto         worker processes (auto: usable CPUs)\n"
"  -c, --config FILE            INI file; command-line options win\n"
"  -n, --name NAME              instance name (default corral)\n"
"      --rundir DIR             default $XDG_RUNTIME_DIR/corral/NAME or\n"
"                               /tmp/corral-UID/NAME\n"
"      --restart always|on-failure|never   (default always)\n"
"      --shutdown-timeout DUR   grace before SIGKILL (default 10s)\n"
"      --restart-delay DUR      first restart delay (default 0)\n"
"      --restart-delay-max DUR  delay ceiling; doubles up to it (10s)\n"
"      --min-uptime DUR         uptime that resets the delay (1s)\n"
"      --max-restarts N         per restart window, then FAILED (10)\n"
"      --restart-window DUR     (60s)\n"
"      --heartbeat-timeout DUR  no health report: hung, killed (5s)\n"
"      --health-interval DUR    worker report interval (1s)\n"
"      --start-timeout DUR      time to become ready (30s)\n"
"      --standby N              pre-started workers that replace a dead\n"
"                               one at once (1; 0 = always spawn fresh)\n"
"      --threads N|auto         pool threads per worker (2)\n"
"      --max-queue N            pool tasks waiting before EBUSY (1024)\n"
"      --aging DUR              pool wait that outranks newer tasks (100ms)\n"
"      --pool-drain run|cancel  queued pool tasks when stopping (run)\n"
"      --jobs URL               job front end (ipc://RUNDIR/jobs)\n"
"      --max-inflight N         jobs per worker at once (64)\n"
"      --queue-limit N          jobs waiting before 'busy' (10000)\n"
"      --job-timeout DUR        longest a job may take (30s)\n"
"      --max-attempts N         worker deaths before a job is poison (3)\n"
"      --max-lag DUR            lag p99 that stops new jobs (500ms)\n"
"      --listen NAME=URL        shared listener, repeatable: NAME=tcp://HOST:PORT,\n"
"                               NAME=tcp://[IPV6]:PORT, NAME=unix:/PATH\n"
"      --user USER              run workers as USER (corral starts as root)\n"
"      --group GROUP            workers' group (default: USER's)\n"
"      --http HOST:PORT         serve /metrics, /healthz, /readyz (off)\n"
"      --ready-min N|all        running workers for /readyz (all)\n"
"  -s, --set KEY=VALUE          plugin setting, as in [plugin]\n"
"  -h, --help                   this text\n"
"      --version                print the version\n"
"\n"
"Durations: 500ms, 10s, 2m, 1h; a bare number is seconds.\n"
"\n"
"Exit codes:\n"
"  0  stopped cleanly          1  could not start (rundir, socket, spawn)\n"
"  2  usage or config error    3  every worker FAILED (crash loop, fatal)\n"
"  4  stopped, but workers had to be killed at the deadline\n"
"Worker exit codes: 78 = fatal plugin error (never restarted),\n"
"  75 = lost the supervisor.\n");
}

enum { OPT_CONFIG = 'c', OPT_HELP = 'h', OPT_VERSION = 1000 };

static const struct option long_opts[] = {
	{"workers", required_argument, NULL, 'w'},
	{"config", required_argument, NULL, 'c'},
	{"name", required_argument, NULL, 'n'},
	{"set", required_argument, NULL, 's'},
	{"help", no_argument, NULL, 'h'},
	{"version", no_argument, NULL, OPT_VERSION},
	/* The rest map --foo-bar to the key foo_bar (val 2000). */
	{"rundir", required_argument, NULL, 2000},
	{"plugin", required_argument, NULL, 2000},
	{"restart", required_argument, NULL, 2000},
	{"shutdown-timeout", required_argument, NULL, 2000},
	{"restart-delay", required_argument, NULL, 2000},
	{"restart-delay-max", required_argument, NULL, 2000},
	{"min-uptime", required_argument, NULL, 2000},
	{"max-restarts", required_argument, NULL, 2000},
	{"restart-window", required_argument, NULL, 2000},
	{"heartbeat-timeout", required_argument, NULL, 2000},
	{"health-interval", required_argument, NULL, 2000},
	{"start-timeout", required_argument, NULL, 2000},
	{"standby", required_argument, NULL, 2000},
	{"threads", required_argument, NULL, 2000},
	{"max-queue", required_argument, NULL, 2000},
	{"aging", required_argument, NULL, 2000},
	{"pool-drain", required_argument, NULL, 2000},
	{"jobs", required_argument, NULL, 2000},
	{"max-inflight", required_argument, NULL, 2000},
	{"queue-limit", required_argument, NULL, 2000},
	{"job-timeout", required_argument, NULL, 2000},
	{"max-attempts", required_argument, NULL, 2000},
	{"max-lag", required_argument, NULL, 2000},
	{"listen", required_argument, NULL, 2000},
	{"user", required_argument, NULL, 2000},
	{"group", required_argument, NULL, 2000},
	{"http", required_argument, NULL, 2000},      /* ops hook */
	{"ready-min", required_argument, NULL, 2000}, /* ops hook */
	{NULL, 0, NULL, 0},
};

static int opt_error(const char *msg)
{
	log_plain("%s (see corral --help)", msg);
	return CORRAL_EXIT_CONFIG;
}

/* Second pass over argv: everything but --config, which loaded first. */
static int apply_args(config *c, int argc, char **argv)
{
	char err[512], key[64], msg[700];
	int ch, idx;
	optind = 0;
	while ((ch = getopt_long(argc, argv, "+w:c:n:s:h", long_opts, &idx)) !=
	       -1) {
		const char *k = NULL;
		switch (ch) {
		case 'w':
			k = "workers";
			break;
		case 'n':
			k = "name";
			break;
		case 'c':
			continue;
		case 's': {
			char *eq = strchr(optarg, '=');
			if (!eq || eq == optarg)
				return opt_error("--set wants KEY=VALUE");
			*eq = '\0';
			int rc = config_add_setting(c, optarg, eq + 1);
			*eq = '=';
			if (rc)
				return opt_error("out of memory");
			continue;
		}
		case 2000: {
			snprintf(key, sizeof key, "%s", long_opts[idx].name);
			for (char *p = key; *p; p++)
				if (*p == '-')
					*p = '_';
			k = key;
			break;
		}
		default:
			return CORRAL_EXIT_CONFIG; /* getopt printed why */
		}
		if (config_set(c, k, optarg, err, sizeof err) != 0) {
			snprintf(msg, sizeof msg, "option %s: %s",
			         ch == 2000 ? long_opts[idx].name : k, err);
			return opt_error(msg);
		}
	}
	if (optind < argc - 1)
		return opt_error("one plugin path expected");
	if (optind == argc - 1 &&
	    config_set(c, "plugin", argv[optind], err, sizeof err) != 0)
		return opt_error(err);
	return 0;
}

static int find_worker(char *buf, size_t len)
{
	const char *env = getenv("CORRAL_WORKER");
	if (env && *env) {
		snprintf(buf, len, "%s", env);
		return access(buf, X_OK);
	}
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
	if (n <= 0)
		return -1;
	self[n] = '\0';
	char *slash = strrchr(self, '/');
	if (!slash)
		return -1;
	*slash = '\0';
	int n2 = snprintf(buf, len, "%.*s/corral-worker", PATH_MAX - 16, self);
	if (n2 < 0 || (size_t)n2 >= len)
		return -1;
	return access(buf, X_OK);
}

int main(int argc, char **argv)
{
	static config cfg;
	static sup s;
	static listen_set listeners;
	static priv_user user;
	static ops op = {.http.fd = -1}; /* ops hook */
	char err[700], rundir[PATH_MAX], worker[PATH_MAX], plugin[PATH_MAX];
	int ch, rc;

	log_set_prog("corral");
	const char *lv = getenv("CORRAL_LOG_LEVEL");
	log_level level;
	if (lv && log_level_parse(lv, &level) == 0)
		log_set_level(level);
	config_defaults(&cfg);

	/* First pass: --help, --version and --config (the file loads before
	 * the other options so that the command line wins). */
	opterr = 1;
	while ((ch = getopt_long(argc, argv, "+w:c:n:s:h", long_opts, NULL)) !=
	       -1) {
		if (ch == 'h') {
			usage(stdout);
			return CORRAL_EXIT_OK;
		}
		if (ch == OPT_VERSION) {
			printf("corral %s (plugin ABI %d)\n", PACKAGE_VERSION,
			       CORRAL_ABI_VERSION);
			return CORRAL_EXIT_OK;
		}
		if (ch == '?')
			return opt_error("bad option");
		if (ch == 'c' && config_load(&cfg, optarg, err, sizeof err)) {
			log_plain("%s", err);
			rc = CORRAL_EXIT_CONFIG;
			goto out;
		}
	}
	if ((rc = apply_args(&cfg, argc, argv)))
		goto out;
	if (!cfg.plugin[0]) {
		rc = opt_error("no plugin given");
		goto out;
	}
	if (!realpath(cfg.plugin, plugin)) {
		log_plain("plugin %s: %s", cfg.plugin, strerror(errno));
		rc = CORRAL_EXIT_CONFIG;
		goto out;
	}
	snprintf(cfg.plugin, sizeof cfg.plugin, "%s", plugin);
	if (find_worker(worker, sizeof worker) != 0) {
		log_plain("cannot find an executable corral-worker (%s); set "
		          "CORRAL_WORKER", worker);
		rc = CORRAL_EXIT_ERROR;
		goto out;
	}
	if (cfg.rundir[0])
		snprintf(rundir, sizeof rundir, "%s", cfg.rundir);
	else if (rundir_default(cfg.name, rundir, sizeof rundir) != 0) {
		rc = opt_error("run directory path too long");
		goto out;
	}
	if (rundir_prepare(rundir, err, sizeof err) != 0) {
		log_plain("%s", err);
		rc = CORRAL_EXIT_ERROR;
		goto out;
	}

	/* Workers' user first (it opens the rundir to them), then the
	 * listeners: bound once, before any worker, kept until exit. */
	if ((rc = priv_prepare(&cfg, rundir, &user, err, sizeof err)) != 0 ||
	    listen_open(&listeners, cfg.listen, cfg.nlisten, err,
	                sizeof err) != 0) {
		log_plain("%s", err);
		rc = rc == CORRAL_ECONFIG ? CORRAL_EXIT_CONFIG : CORRAL_EXIT_ERROR;
		goto out;
	}

	/* ops hook: workers = auto from the cgroup's CPU quota; the http
	 * endpoint bound before any worker (a bind error is a start error) */
	if ((rc = ops_prepare(&op, &cfg, err, sizeof err)) != 0) {
		log_plain("%s", err);
		rc = rc == CORRAL_ECONFIG ? CORRAL_EXIT_CONFIG : CORRAL_EXIT_ERROR;
		goto out;
	}

	signal(SIGPIPE, SIG_IGN);
	uv_loop_t *loop = uv_default_loop();
	if ((rc = sup_init(&s, loop, &cfg, worker, rundir, &listeners,
	                   &user)) != 0) {
		if (rc == CORRAL_EBUSY)
			log_plain("another corral is already running in %s "
			          "(control socket in use)", rundir);
		else
			log_plain("cannot start: %s", corral_strerror(rc));
		rc = CORRAL_EXIT_ERROR;
		goto out;
	}
	ops_attach(&op, &s); /* ops hook: serve, notify, observe */
	rc = sup_run(&s);
	if (uv_loop_close(loop) != 0)
		log_msg("warning: event loop closed with handles still open");
out:
	ops_close(&op); /* ops hook */
	listen_close(&listeners);
	config_free(&cfg);
	return rc;
}
