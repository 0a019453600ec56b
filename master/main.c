/*
 * main.c - corral, the supervisor: parse the command line and config file,
 * prepare the run directory, run the supervisor loop, exit with its code.
 * Configuration errors exit 2 before anything is started.
 */
#include <errno.h>
#include <sys/wait.h>
#include <spawn.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "corral.h"
#include "common/log.h"
#include "common/rundir.h"
#include "master/cli.h"
#include "master/listen.h"
#include "master/logsink.h"
#include "master/ops.h" /* metrics, health endpoints, systemd, cgroups */
#include "master/privdrop.h"
#include "master/procenv.h"
#include "master/rundir.h"
#include "master/sup.h"

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
	int rc;
	config_defaults(c);
	if (cli_build(c, g_argc, g_argv, config_path, 0, err, errlen) !=
	    CLI_RUN)
		return CORRAL_ECONFIG;
	if (plugin && (rc = config_set(c, "plugin", plugin, err, errlen)))
		return rc;
	if (!realpath(c->plugin, real)) {
		snprintf(err, errlen, "plugin %.2000s: %s", c->plugin,
		         strerror(errno));
		return CORRAL_ECONFIG;
	}
	snprintf(c->plugin, sizeof c->plugin, "%s", real);
	return 0;
}

/* workers = auto as resolved at start (the cgroup's quota, ops.c): what
 * a re-read "auto" stands for, so that a reload does not see it change. */
static unsigned g_auto_workers;

/* A reload's re-read (sup.h sup_reread_fn). */
static int reread(void *arg, const char *config_path, const char *plugin,
                  config *out, char *err, size_t errlen)
{
	(void)arg;
	int rc = build_config(out, config_path, plugin, err, errlen);
	if (!rc && out->workers == 0)
		out->workers = g_auto_workers;
	return rc ? CORRAL_ECONFIG : 0;
}

/*
 * corral --check-config: the configuration parsed (by now), and the
 * plugin loaded by corral-worker --check in a child of its own, so that a
 * plugin that crashes in its constructors takes nothing down.  Exit 0 or
 * CORRAL_EXIT_CONFIG, with the worker's words either way.
 */
static int check_config(const char *worker, const config *cfg)
{
	int pfd[2];
	if (pipe2(pfd, O_CLOEXEC) != 0) {
		log_plain("cannot check the plugin: pipe: %s", strerror(errno));
		return CORRAL_EXIT_ERROR;
	}
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, pfd[1], 1);
	posix_spawn_file_actions_adddup2(&fa, pfd[1], 2);
	char *argv[] = {(char *)worker, "--check", "--plugin",
	                (char *)cfg->plugin, NULL};
	extern char **environ;
	pid_t pid;
	int rc = posix_spawn(&pid, worker, &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(pfd[1]);
	if (rc != 0) {
		close(pfd[0]);
		log_plain("cannot check the plugin: %s: %s", worker, strerror(rc));
		return CORRAL_EXIT_ERROR;
	}
	char out[2048];
	size_t n = 0;
	ssize_t r;
	while (n < sizeof out - 1 &&
	       ((r = read(pfd[0], out + n, sizeof out - 1 - n)) > 0 ||
	        (r < 0 && errno == EINTR)))
		n += r > 0 ? (size_t)r : 0;
	out[n] = '\0';
	close(pfd[0]);
	while (n && out[n - 1] == '\n')
		out[--n] = '\0';
	int st;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	if (WIFEXITED(st) && WEXITSTATUS(st) == 0) {
		printf("configuration ok: %u worker(s)%s, %s: %s\n",
		       cfg->workers ? cfg->workers : uv_available_parallelism(),
		       cfg->workers ? "" : " (auto)", cfg->plugin, out);
		return CORRAL_EXIT_OK;
	}
	log_plain("configuration error: %s%s", out,
	          WIFSIGNALED(st) ? " (the check was killed by a signal)" : "");
	return CORRAL_EXIT_CONFIG;
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

/* What main() sets up, step by step, and tears down at the end. */
typedef struct startup {
	config cfg;
	sup s;
	listen_set listeners;
	priv_user user;
	uv_loop_t loop;
	ops op;
	char err[PATH_MAX + 1024], rundir[PATH_MAX], worker[PATH_MAX];
	char room[512];   /* why the open-file limit caps the workers */
	unsigned want, fit;
	int lockfd;
} startup;

/* Each step: -1 to go on, or the exit code. */
#define GO_ON (-1)

static int fail(startup *st, int code)
{
	log_plain("%s", st->err);
	return code;
}

/* Before anything is opened or spawned: what we inherited stays ours,
 * and what the workers start stays our descendants. */
static void process_setup(void)
{
	if (procenv_cloexec_inherited() != 0)
		log_warn("cannot mark inherited descriptors close-on-exec: %s",
		         strerror(errno));
	if (procenv_subreaper() != 0)
		log_warn("cannot become a child subreaper: %s (processes "
		         "started by workers may escape corral)",
		         strerror(errno));
}

/* --help, --version, usage and config errors (exit 2), before anything
 * else happens; then the log goes where the configuration says. */
static int read_config(startup *st, int argc, char **argv)
{
	config *c = &st->cfg;
	int rc;
	const char *lv = getenv("CORRAL_LOG_LEVEL");
	log_level level;
	if (lv && log_level_parse(lv, &level) == 0)
		log_set_level(level);
	g_argc = argc;
	g_argv = argv;
	config_defaults(c);
	if ((rc = cli_parse(c, argc, argv)) != CLI_RUN)
		return rc;
	config_free(c);
	if (build_config(c, NULL, NULL, st->err, sizeof st->err) != 0)
		return fail(st, CORRAL_EXIT_CONFIG);
	if (!lv)
		log_set_level(c->log_level == CONF_LOG_DEBUG  ? LOG_DEBUG
		              : c->log_level == CONF_LOG_WARN ? LOG_WARN
		              : c->log_level == CONF_LOG_ERROR ? LOG_ERROR
		                                               : LOG_INFO);
	/* From here on every line goes to the log ring (corralctl logs)
	 * and to log_file when there is one. */
	if (logsink_open(c->log_file, c->log_json, st->err, sizeof st->err))
		return fail(st, CORRAL_EXIT_ERROR);
	if (find_worker(st->worker, sizeof st->worker) != 0) {
		log_plain("cannot find an executable corral-worker (%s); set "
		          "CORRAL_WORKER", st->worker);
		return CORRAL_EXIT_ERROR;
	}
	if (c->check_config)
		return check_config(st->worker, c);
	return GO_ON;
}

/* The run directory, ours alone (the lock) before any socket. */
static int claim_rundir(startup *st)
{
	const config *c = &st->cfg;
	if (c->rundir[0])
		snprintf(st->rundir, sizeof st->rundir, "%s", c->rundir);
	else if (rundir_default(c->name, st->rundir, sizeof st->rundir)) {
		log_plain("run directory path too long (name %s)", c->name);
		return CORRAL_EXIT_CONFIG;
	}
	if (rundir_prepare(st->rundir, st->err, sizeof st->err) != 0 ||
	    rundir_lock(st->rundir, &st->lockfd, st->err, sizeof st->err) != 0)
		return fail(st, CORRAL_EXIT_ERROR);
	return GO_ON;
}

/* What must exist before the first worker: workers = auto resolved (the
 * cgroup's CPU quota) and the http endpoint bound, room for the workers
 * under the open-file limit, the workers' user, the shared listeners
 * (bound once, kept until exit). */
static int prepare(startup *st)
{
	config *c = &st->cfg;
	int auto_workers = c->workers == 0, rc;
	if ((rc = ops_prepare(&st->op, c, st->err, sizeof st->err)) != 0)
		return fail(st, rc == CORRAL_ECONFIG ? CORRAL_EXIT_CONFIG
		                                     : CORRAL_EXIT_ERROR);
	if (auto_workers)
		g_auto_workers = c->workers;
	st->want = c->workers ? c->workers : uv_available_parallelism();
	st->fit = procenv_fd_room(st->want, c->standby + c->reload_parallel,
	                          st->room, sizeof st->room);
	if (st->fit == 0) {
		log_plain("cannot start: %s", st->room);
		return CORRAL_EXIT_ERROR;
	}
	if ((rc = priv_prepare(c, st->rundir, &st->user, st->err,
	                       sizeof st->err)) != 0 ||
	    listen_open(&st->listeners, c->listen, c->nlisten, st->err,
	                sizeof st->err) != 0)
		return fail(st, rc == CORRAL_ECONFIG ? CORRAL_EXIT_CONFIG
		                                     : CORRAL_EXIT_ERROR);
	return GO_ON;
}

static int run_supervisor(startup *st)
{
	int rc;
	signal(SIGPIPE, SIG_IGN);
	if ((rc = uv_loop_init(&st->loop)) != 0) {
		log_plain("cannot start: cannot create the event loop: %s",
		          uv_strerror(rc));
		return CORRAL_EXIT_ERROR;
	}
	sup_params sp = {.worker_bin = st->worker, .rundir = st->rundir,
	                 .listeners = &st->listeners, .user = &st->user,
	                 .reread = reread,
	                 .max_slots = st->fit < st->want ? st->fit : 0,
	                 .cap_reason = st->room};
	if ((rc = sup_init(&st->s, &st->loop, &st->cfg, &sp)) != 0) {
		if (rc == CORRAL_EBUSY)
			log_plain("another corral is already running in %s "
			          "(control socket in use)", st->rundir);
		else
			log_plain("cannot start: %s", corral_strerror(rc));
		(void)uv_loop_close(&st->loop);
		return CORRAL_EXIT_ERROR;
	}
	ops_attach(&st->op, &st->s); /* serve, notify, observe */
	rc = sup_run(&st->s);
	if (uv_loop_close(&st->loop) != 0)
		log_msg("warning: event loop closed with handles still open");
	return rc;
}

int main(int argc, char **argv)
{
	static startup st = {.op = {.http.fd = -1}, .lockfd = -1};
	log_set_prog("corral");
	process_setup();
	int rc = read_config(&st, argc, argv);
	if (rc == GO_ON)
		rc = claim_rundir(&st);
	if (rc == GO_ON)
		rc = prepare(&st);
	if (rc == GO_ON)
		rc = run_supervisor(&st);
	ops_close(&st.op);
	rundir_release(st.rundir, st.lockfd);
	listen_close(&st.listeners);
	config_free(&st.cfg);
	logsink_close();
	return rc;
}
