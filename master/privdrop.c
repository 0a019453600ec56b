/* privdrop.c - see privdrop.h. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "corral.h"
#include "common/log.h"
#include "common/priv.h"
#include "common/rundir.h"
#include "master/privdrop.h"

int priv_own_socket(const priv_user *u, const char *ipc_url)
{
	if (!u || !u->active)
		return 0;
	const char *path = strncmp(ipc_url, "ipc://", 6) == 0 ? ipc_url + 6
	                                                      : ipc_url;
	if (chown(path, u->uid, u->gid) != 0) {
		log_warn("cannot give %s to user %s: %s", path, u->name,
		         strerror(errno));
		return CORRAL_ESYS;
	}
	return 0;
}

/* Opens dir to others for search only (0711), if it is root's. */
static int open_dir(const char *dir, char *err, size_t errlen)
{
	struct stat st;
	if (lstat(dir, &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != 0)
		return 0; /* not ours to change; the pre-flight check tells */
	if ((st.st_mode & 0777) != 0711 && chmod(dir, 0711) != 0) {
		snprintf(err, errlen, "%s: chmod 0711: %s", dir,
		         strerror(errno));
		return CORRAL_ESYS;
	}
	return 0;
}

/* Forks, switches, and checks what a worker will need.  The child writes
 * its reason to the pipe and exits 1. */
static int preflight(const config *c, const char *rundir, const priv_user *u,
                     char *err, size_t errlen)
{
	int pfd[2];
	if (pipe2(pfd, O_CLOEXEC) != 0) {
		snprintf(err, errlen, "pipe: %s", strerror(errno));
		return CORRAL_ESYS;
	}
	pid_t pid = fork();
	if (pid < 0) {
		close(pfd[0]);
		close(pfd[1]);
		snprintf(err, errlen, "fork: %s", strerror(errno));
		return CORRAL_ESYS;
	}
	if (pid == 0) {
		char why[512];
		int fd;
		close(pfd[0]);
		if (priv_switch(u->name, u->uid, u->gid, why,
		                sizeof why) != 0) {
		} else if (access(rundir, X_OK) != 0) {
			snprintf(why, sizeof why, "cannot reach the run "
			         "directory %.300s: %s (every directory above it "
			         "needs search permission for the user)",
			         rundir, strerror(errno));
		} else if ((fd = open(c->plugin, O_RDONLY | O_CLOEXEC)) < 0) {
			snprintf(why, sizeof why, "cannot read the plugin "
			         "%.300s: %s", c->plugin, strerror(errno));
		} else {
			_exit(0);
		}
		ssize_t w = write(pfd[1], why, strlen(why));
		(void)w;
		_exit(1);
	}
	close(pfd[1]);
	char why[512];
	ssize_t n = read(pfd[0], why, sizeof why - 1);
	close(pfd[0]);
	int st;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
		return 0;
	why[n > 0 ? n : 0] = '\0';
	snprintf(err, errlen, "cannot run workers as user %s: %s",
	         u->name, n > 0 ? why : "the check died");
	return CORRAL_ESYS;
}

int priv_prepare(const config *c, const char *rundir, priv_user *u,
                 char *err, size_t errlen)
{
	memset(u, 0, sizeof *u);
	if (!c->user[0]) {
		if (c->group[0]) {
			snprintf(err, errlen, "group = %s needs user as well",
			         c->group);
			return CORRAL_ECONFIG;
		}
		return 0;
	}
	errno = 0;
	struct passwd *pw = getpwnam(c->user);
	if (!pw) {
		snprintf(err, errlen, "user = %s: no such user%s%s", c->user,
		         errno ? ": " : "", errno ? strerror(errno) : "");
		return CORRAL_ECONFIG;
	}
	if (pw->pw_uid == 0) {
		snprintf(err, errlen, "user = %s is root: refusing to run "
		         "workers as root (leave user unset to keep corral's "
		         "own user)", c->user);
		return CORRAL_ECONFIG;
	}
	snprintf(u->name, sizeof u->name, "%s", pw->pw_name);
	u->uid = pw->pw_uid;
	u->gid = pw->pw_gid;
	if (c->group[0]) {
		errno = 0;
		struct group *gr = getgrnam(c->group);
		if (!gr) {
			snprintf(err, errlen, "group = %s: no such group",
			         c->group);
			return CORRAL_ECONFIG;
		}
		if (gr->gr_gid == 0) {
			snprintf(err, errlen, "group = %s is root's group: "
			         "refusing it for workers", c->group);
			return CORRAL_ECONFIG;
		}
		u->gid = gr->gr_gid;
	}
	if (u->gid == 0) {
		snprintf(err, errlen, "user = %s has root's group as its primary "
		         "group: set group to another one", u->name);
		return CORRAL_ECONFIG;
	}
	if (geteuid() != 0) {
		if (geteuid() == u->uid && getegid() == u->gid) {
			log_msg("user = %s: corral already runs as %s; workers "
			        "keep its user", u->name, u->name);
			return 0;
		}
		snprintf(err, errlen, "user = %s: switching user needs corral "
		         "to start as root (it runs as uid %u)", u->name,
		         (unsigned)geteuid());
		return CORRAL_ESYS;
	}
	/* The default run directory's parent (/tmp/corral-0, or
	 * $XDG_RUNTIME_DIR/corral) is ours too; a directory given with
	 * --rundir has parents that are the operator's business. */
	char def[4096];
	int rc;
	if (rundir_default(c->name, def, sizeof def) == 0 &&
	    strcmp(def, rundir) == 0) {
		char *slash = strrchr(def, '/');
		if (slash && slash != def) {
			*slash = '\0';
			if ((rc = open_dir(def, err, errlen)))
				return rc;
		}
	}
	if ((rc = open_dir(rundir, err, errlen)))
		return rc;
	if ((rc = preflight(c, rundir, u, err, errlen)))
		return rc;
	u->active = 1;
	log_msg("workers run as user %s (uid %u, gid %u)", u->name,
	        (unsigned)u->uid, (unsigned)u->gid);
	return 0;
}
