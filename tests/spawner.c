/*
 * spawner - a plugin that starts a process of its own in init, the way
 * plugins run helpers: a shell command, left in the worker's process group
 * or, with escape = 1, double-forked into a session of its own (a daemon
 * that escapes the group).  For the tests of what outlives a worker.
 * Test fixture.
 *
 *   spawn   the command (/bin/sh -c); it may write its own pid ($$)
 *   escape  1: setsid in a grandchild, the middle process exits at once
 */
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "corral.h"

static int spawner_init(corral_worker *w)
{
	const char *cmd = corral_setting(w, "spawn");
	const char *esc = corral_setting(w, "escape");
	int escape = esc && strcmp(esc, "1") == 0;
	if (!cmd)
		return 0;
	pid_t p = fork();
	if (p < 0) {
		corral_log(w, CORRAL_LOG_ERROR, "fork failed");
		return -1;
	}
	if (p == 0) {
		if (escape) {
			if (fork() != 0)
				_exit(0);
			setsid();
		}
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	if (escape)
		(void)waitpid(p, NULL, 0); /* the middle one */
	return 0;
}

static void spawner_handle(corral_worker *w, corral_job *job)
{
	size_t len;
	const void *d = corral_job_payload(job, &len);
	(void)w;
	corral_job_reply(job, d, len);
}

CORRAL_PLUGIN(.name = "spawner", .init = spawner_init,
              .handle = spawner_handle);
