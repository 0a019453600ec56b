/* procenv.c - see procenv.h. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include "master/procenv.h"

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

int procenv_cloexec_inherited(void)
{
#ifdef HAVE_CLOSE_RANGE
	if (close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) == 0)
		return 0;
#endif
	/* Older kernels (before 5.11): one by one. */
	DIR *d = opendir("/proc/self/fd");
	if (!d)
		return -1;
	struct dirent *e;
	int rc = 0;
	while ((e = readdir(d))) {
		char *end;
		long fd = strtol(e->d_name, &end, 10);
		if (*end || end == e->d_name || fd <= 2 || fd == dirfd(d))
			continue;
		int fl = fcntl((int)fd, F_GETFD);
		if (fl >= 0 && !(fl & FD_CLOEXEC) &&
		    fcntl((int)fd, F_SETFD, fl | FD_CLOEXEC) != 0)
			rc = -1;
	}
	closedir(d);
	return rc;
}

int procenv_subreaper(void)
{
	return prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
}

unsigned procenv_fd_room(unsigned want, unsigned extra, char *msg,
                         size_t len)
{
	struct rlimit rl;
	msg[0] = '\0';
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY)
		return want;
	rlim_t need = PROCENV_FDS_BASE +
	              (rlim_t)PROCENV_FDS_PER_WORKER * (want + extra);
	if (rl.rlim_cur < need && rl.rlim_max > rl.rlim_cur) {
		struct rlimit up = rl;
		up.rlim_cur = need < rl.rlim_max ? need : rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &up) == 0)
			rl = up;
	}
	if (rl.rlim_cur >= need)
		return want;
	rlim_t room = rl.rlim_cur > PROCENV_FDS_BASE
	                  ? (rl.rlim_cur - PROCENV_FDS_BASE) /
	                        PROCENV_FDS_PER_WORKER
	                  : 0;
	unsigned fit = room > extra ? (unsigned)(room - extra) : 0;
	if (fit > want)
		fit = want;
	snprintf(msg, len, "the open-file limit (%llu; ulimit -n, or "
	         "LimitNOFILE= under systemd) leaves room for %u of %u "
	         "worker(s): each takes %d descriptors in the supervisor, "
	         "which needs %d besides, and %llu would do",
	         (unsigned long long)rl.rlim_cur, fit, want,
	         PROCENV_FDS_PER_WORKER, PROCENV_FDS_BASE,
	         (unsigned long long)need);
	return fit;
}
