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
#include "master/logsink.h"
#include "master/privdrop.h"
#include "master/procenv.h"
#include "master/rundir.h"
#include "master/sup.h"

static void usage(FILE *f)
{
	fprintf(f,
"Usage: corral [OPTIONS] PLUGIN.so\n"
"\n"
"Runs one corral-worker process per slot, each loading PLUGIN.so, and keeps\n"
"them running: restarts with backoff, hang detection, graceful shutdown on\n"
"SIGTERM/SIGINT (a second signal kills at once).  Logs to stderr, or to\n"
"--log-file; `corralctl logs` reads its last lines.\n"
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
"      --reload-gate DUR        a new worker's healthy time before the\n"
"                               old one stops, in a reload (2s)\n"
"      --reload-parallel N      slots a reload replaces at once (1)\n"
"      --listen NAME=URL        shared listener, repeatable: NAME=tcp://HOST:PORT,\n"
"                               NAME=tcp://[IPV6]:PORT, NAME=unix:/PATH\n"
"      --user USER              run workers as USER (corral starts as root)\n"
"      --group GROUP            workers' group (default: USER's)\n"
"      --kill-mode group|process  when a worker ends, kill what it started\n"
"                               too (group, the default) or not (process)\n"
"      --log-file PATH          log there instead of stderr (workers' output\n"
"                               too); SIGUSR1 reopens it (logrotate)\n"
"      --log-format text|json   log lines as text (default) or one JSON\n"
"                               object per line\n"
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
	{"reload-gate", required_argument, NULL, 2000},
	{"reload-parallel", required_argument, NULL, 2000},
	{"listen", required_argument, NULL, 2000},
	{"user", required_argument, NULL, 2000},
	{"group", required_argument, NULL, 2000},
	{"kill-mode", required_argument, NULL, 2000},
	{"log-file", required_argument, NULL, 2000},
	{"log-format", required_argument, NULL, 2000},
	{NULL, 0, NULL, 0},
};

static int opt_error(const char *msg)
{
	log_plain("%s (see corral --help)", msg);
	return CORRAL_EXIT_CONFIG;
}

/* Everything on the command line but --help, --version and --config
 * (the file loads first, so that the command line wins).  0, or
 * CORRAL_ECONFIG with err filled. */
static int apply_args(config *c, int argc, char **argv, char *err,
                      size_t errlen)
{
	char why[512], key[64];
	int ch, idx;
	optind = 0;
	opterr = 0;
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
		case 'h':
		case OPT_VERSION:
			continue;
		case 's': {
			char *eq = strchr(optarg, '=');
			if (!eq || eq == optarg) {
				snprintf(err, errlen, "--set wants KEY=VALUE");
				return CORRAL_ECONFIG;
			}
			*eq = '\0';
			int rc = config_add_setting(c, optarg, eq + 1);
			*eq = '=';
			if (rc) {
				snprintf(err, errlen, "out of memory");
				return CORRAL_ENOMEM;
			}
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
			snprintf(err, errlen, "bad option %s",
			         argv[optind - 1]);
			return CORRAL_ECONFIG;
		}
		if (config_set(c, k, optarg, why, sizeof why) != 0) {
			snprintf(err, errlen, "option %s: %.500s",
			         ch == 2000 ? long_opts[idx].name : k, why);
			return CORRAL_ECONFIG;
		}
	}
	if (optind < argc - 1) {
		snprintf(err, errlen, "one plugin path expected");
		return CORRAL_ECONFIG;
	}
	if (optind == argc - 1 &&
	    config_set(c, "plugin", argv[optind], why, sizeof why) != 0) {
		snprintf(err, errlen, "%.600s", why);
		return CORRAL_ECONFIG;
	}
	return 0;
}

/* The command line, kept for reloads. */
static int g_argc;
static char **g_argv;

/* The configuration from the command line: defaults, then the config
 * file (config_path if given, else the last --config), then the options,
 * then plugin if given.  0, or CORRAL_ECONFIG with err filled. */
static int build_config(config *c, const char *config_path,
                        const char *plugin, char *err, size_t errlen)
{
	char real[PATH_MAX];
	int ch, rc;
	config_defaults(c);
	if (!config_path) {
		optind = 0;
		opterr = 0;
		while ((ch = getopt_long(g_argc, g_argv, "+w:c:n:s:h",
		                         long_opts, NULL)) != -1)
			if (ch == 'c')
				config_path = optarg;
	}
	if (config_path && (rc = config_load(c, config_path, err, errlen)))
		return rc;
	if ((rc = apply_args(c, g_argc, g_argv, err, errlen)))
		return rc;
	if (plugin && (rc = config_set(c, "plugin", plugin, err, errlen)))
		return rc;
	if (!c->plugin[0]) {
		snprintf(err, errlen, "no plugin given");
		return CORRAL_ECONFIG;
	}
	if (!realpath(c->plugin, real)) {
		snprintf(err, errlen, "plugin %.2000s: %s", c->plugin,
		         strerror(errno));
		return CORRAL_ECONFIG;
	}
	snprintf(c->plugin, sizeof c->plugin, "%s", real);
	return 0;
}

/* A reload's re-read (sup.h sup_reread_fn). */
static int reread(void *arg, const char *config_path, const char *plugin,
                  config *out, char *err, size_t errlen)
{
	(void)arg;
	int rc = build_config(out, config_path, plugin, err, errlen);
	return rc ? CORRAL_ECONFIG : 0;
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
	static uv_loop_t loop;
	char err[1024], rundir[PATH_MAX], worker[PATH_MAX], room[512];
	int ch, rc, lockfd = -1;

	log_set_prog("corral");
	const char *lv = getenv("CORRAL_LOG_LEVEL");
	log_level level;
	if (lv && log_level_parse(lv, &level) == 0)
		log_set_level(level);
	config_defaults(&cfg);
	/* Before anything is opened or spawned: what we inherited stays
	 * ours, and what the workers start stays our descendants. */
	if (procenv_cloexec_inherited() != 0)
		log_warn("cannot mark inherited descriptors close-on-exec: %s",
		         strerror(errno));
	if (procenv_subreaper() != 0)
		log_warn("cannot become a child subreaper: %s (processes "
		         "started by workers may escape corral)",
		         strerror(errno));

	/* First: --help, --version, and options getopt cannot parse. */
	g_argc = argc;
	g_argv = argv;
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
	}
	config_free(&cfg);
	if (build_config(&cfg, NULL, NULL, err, sizeof err) != 0) {
		if (strncmp(err, "no plugin", 9) == 0 ||
		    strncmp(err, "option", 6) == 0 ||
		    strncmp(err, "one plugin", 10) == 0 ||
		    strncmp(err, "--set", 5) == 0)
			rc = opt_error(err);
		else {
			log_plain("%s", err);
			rc = CORRAL_EXIT_CONFIG;
		}
		goto out;
	}
	/* From here on every line goes to the log ring (corralctl logs) and
	 * to log_file when there is one. */
	if (logsink_open(cfg.log_file, cfg.log_json, err, sizeof err) != 0) {
		log_plain("%s", err);
		rc = CORRAL_EXIT_ERROR;
		goto out;
	}
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
	if (rundir_prepare(rundir, err, sizeof err) != 0 ||
	    rundir_lock(rundir, &lockfd, err, sizeof err) != 0) {
		log_plain("%s", err);
		rc = CORRAL_EXIT_ERROR;
		goto out;
	}
	unsigned want = cfg.workers ? cfg.workers : uv_available_parallelism();
	unsigned fit = procenv_fd_room(want, cfg.standby + cfg.reload_parallel,
	                               room, sizeof room);
	if (fit == 0) {
		log_plain("cannot start: %s", room);
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

	signal(SIGPIPE, SIG_IGN);
	if ((rc = uv_loop_init(&loop)) != 0) {
		log_plain("cannot start: cannot create the event loop: %s",
		          uv_strerror(rc));
		rc = CORRAL_EXIT_ERROR;
		goto out;
	}
	sup_params sp = {.worker_bin = worker, .rundir = rundir,
	                 .listeners = &listeners, .user = &user,
	                 .reread = reread,
	                 .max_slots = fit < want ? fit : 0,
	                 .cap_reason = room};
	if ((rc = sup_init(&s, &loop, &cfg, &sp)) != 0) {
		if (rc == CORRAL_EBUSY)
			log_plain("another corral is already running in %s "
			          "(control socket in use)", rundir);
		else
			log_plain("cannot start: %s", corral_strerror(rc));
		rc = CORRAL_EXIT_ERROR;
		goto out;
	}
	rc = sup_run(&s);
	if (uv_loop_close(&loop) != 0)
		log_msg("warning: event loop closed with handles still open");
out:
	rundir_release(rundir, lockfd);
	listen_close(&listeners);
	config_free(&cfg);
	logsink_close();
	return rc;
}
