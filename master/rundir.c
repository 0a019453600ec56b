/* rundir.c - see rundir.h. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
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

/* The pid written in a lock file, or 0. */
static long lock_holder(int fd)
{
	char buf[32];
	ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	return strtol(buf, NULL, 10);
}

/* Removes socket files left in dir by an instance that was killed: only
 * sockets, only at the top level; the rest is not ours to judge. */
static void clear_stale(const char *dir)
{
	DIR *d = opendir(dir);
	if (!d)
		return;
	struct dirent *e;
	struct stat st;
	while ((e = readdir(d))) {
		if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		    S_ISSOCK(st.st_mode))
			(void)unlinkat(dirfd(d), e->d_name, 0);
	}
	closedir(d);
}

int rundir_lock(const char *dir, int *fd, char *err, size_t errlen)
{
	char path[4200];
	if (snprintf(path, sizeof path, "%s/lock", dir) >= (int)sizeof path) {
		snprintf(err, errlen, "run directory path too long");
		return CORRAL_EINVAL;
	}
	/* Locked, and still the file at path: the one who held it before
	 * may have unlinked it between our open and our flock. */
	for (int tries = 0; tries < 100; tries++) {
		int f = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW,
		             0600);
		if (f < 0) {
			snprintf(err, errlen, "cannot open %s: %s", path,
			         strerror(errno));
			return CORRAL_ESYS;
		}
		if (flock(f, LOCK_EX | LOCK_NB) != 0) {
			int e = errno;
			long pid = e == EWOULDBLOCK ? lock_holder(f) : 0;
			close(f);
			if (e != EWOULDBLOCK) {
				snprintf(err, errlen, "cannot lock %s: %s", path,
				         strerror(e));
				return CORRAL_ESYS;
			}
			if (pid > 0)
				snprintf(err, errlen, "already running as pid %ld "
				         "(run directory %s)", pid, dir);
			else
				snprintf(err, errlen, "already running (run "
				         "directory %s is locked)", dir);
			return CORRAL_EBUSY;
		}
		struct stat a, b;
		if (fstat(f, &a) != 0 || stat(path, &b) != 0 ||
		    a.st_ino != b.st_ino || a.st_dev != b.st_dev) {
			close(f);
			continue;
		}
		char pid[32];
		int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
		if (ftruncate(f, 0) != 0 || pwrite(f, pid, (size_t)n, 0) != n) {
			snprintf(err, errlen, "cannot write %s: %s", path,
			         strerror(errno));
			close(f);
			return CORRAL_ESYS;
		}
		clear_stale(dir);
		*fd = f;
		return 0;
	}
	snprintf(err, errlen, "cannot lock %s: it keeps being replaced", path);
	return CORRAL_ESYS;
}

void rundir_release(const char *dir, int fd)
{
	char path[4200];
	if (fd < 0)
		return;
	snprintf(path, sizeof path, "%s/lock", dir);
	(void)unlink(path);
	close(fd);
	(void)rmdir(dir); /* only if empty: other files are not ours */
}
