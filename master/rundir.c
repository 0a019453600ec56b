/* rundir.c - see rundir.h. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "corral_base.h"
#include "master/rundir.h"

static int check_dir(const char *path, char *err, size_t errlen)
{
	struct stat st;
	if (lstat(path, &st) != 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return CORRAL_ESYS;
	}
	if (S_ISLNK(st.st_mode)) {
		snprintf(err, errlen, "%s is a symlink; refusing to use it as a "
		         "run directory", path);
		return CORRAL_EPERM;
	}
	if (!S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "%s is not a directory", path);
		return CORRAL_EPERM;
	}
	if (st.st_uid != geteuid()) {
		snprintf(err, errlen, "%s is owned by uid %u, not by us (uid "
		         "%u); refusing to use it", path, (unsigned)st.st_uid,
		         (unsigned)geteuid());
		return CORRAL_EPERM;
	}
	if ((st.st_mode & 07777) != 0700 && chmod(path, 0700) != 0) {
		snprintf(err, errlen, "%s: chmod 0700: %s", path,
		         strerror(errno));
		return CORRAL_ESYS;
	}
	return 0;
}

/* mkdir 0700 unless it exists, then check it. */
static int ensure_dir(const char *path, char *err, size_t errlen)
{
	if (mkdir(path, 0700) != 0 && errno != EEXIST) {
		snprintf(err, errlen, "cannot create %s: %s", path,
		         strerror(errno));
		return CORRAL_ESYS;
	}
	return check_dir(path, err, errlen);
}

int rundir_prepare(const char *path, char *err, size_t errlen)
{
	char parent[4096];
	if (path[0] != '/') {
		snprintf(err, errlen, "run directory %s must be absolute", path);
		return CORRAL_EINVAL;
	}
	if (strlen(path) >= sizeof parent) {
		snprintf(err, errlen, "run directory path too long");
		return CORRAL_EINVAL;
	}
	/* The parent must exist; we create only the last level, as
	 * install -d would for a per-user runtime dir. */
	snprintf(parent, sizeof parent, "%s", path);
	char *slash = strrchr(parent, '/');
	if (slash && slash != parent) {
		*slash = '\0';
		struct stat st;
		if (lstat(parent, &st) != 0) {
			/* e.g. /tmp/corral-UID or $XDG_RUNTIME_DIR/corral */
			int rc = ensure_dir(parent, err, errlen);
			if (rc)
				return rc;
		} else if (st.st_uid != geteuid() && st.st_uid != 0) {
			/* Its owner could swap our directory out from under us. */
			snprintf(err, errlen, "%s is owned by uid %u, not by us "
			         "or root; refusing to create a run directory in "
			         "it", parent, (unsigned)st.st_uid);
			return CORRAL_EPERM;
		}
	}
	return ensure_dir(path, err, errlen);
}
