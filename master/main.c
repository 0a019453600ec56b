/*
 * main.c - corral, the supervisor: parse the command line and config file
 * (master/cli.c), prepare the run directory, run the supervisor loop, exit
 * with its code.
 * Configuration errors exit 2 before anything is started.
 */
#include <errno.h>
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
#include "master/sup.h"

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
	char err[700], rundir[PATH_MAX], worker[PATH_MAX], plugin[PATH_MAX];
	int rc;

	log_set_prog("corral");
	config_defaults(&cfg);

	if ((rc = cli_parse(&cfg, argc, argv)) != CLI_RUN)
		goto out;
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
		log_plain("run directory path too long");
		rc = CORRAL_EXIT_CONFIG;
		goto out;
	}
	if (rundir_prepare(rundir, err, sizeof err) != 0) {
		log_plain("%s", err);
		rc = CORRAL_EXIT_ERROR;
		goto out;
	}

	signal(SIGPIPE, SIG_IGN);
	uv_loop_t *loop = uv_default_loop();
	if ((rc = sup_init(&s, loop, &cfg, worker, rundir)) != 0) {
		if (rc == CORRAL_EBUSY)
			log_plain("another corral is already running in %s "
			          "(control socket in use)", rundir);
		else
			log_plain("cannot start: %s", corral_strerror(rc));
		rc = CORRAL_EXIT_ERROR;
		goto out;
	}
	rc = sup_run(&s);
	if (uv_loop_close(loop) != 0)
		log_msg("warning: event loop closed with handles still open");
out:
	config_free(&cfg);
	return rc;
}
