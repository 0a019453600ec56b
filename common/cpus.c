/*
 * cpus.c - see cpus.h.
 *
 * Where the files are.  /proc/self/cgroup names the process's cgroup per
 * hierarchy: "0::/PATH" for the unified (v2) one, "N:cpu,cpuacct:/PATH"
 * for the v1 hierarchy with the cpu controller.  /proc/self/mountinfo
 * says where each hierarchy is mounted and which of its directories the
 * mount shows (field 4, the mount's root): in a container without a
 * cgroup namespace the mount shows only the container's own cgroup, so
 * PATH is taken relative to that root.  The walk goes from the cgroup's
 * directory up to the mount point, reading each level's limit.
 */
#include <ctype.h>
#include <math.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/cpus.h"

#define PATH_LEN 4096

/* 1 if the comma-separated list has the token tok. */
static int has_token(const char *list, size_t len, const char *tok)
{
	size_t tl = strlen(tok);
	const char *p = list, *end = list + len;
	while (p < end) {
		const char *c = memchr(p, ',', (size_t)(end - p));
		size_t n = c ? (size_t)(c - p) : (size_t)(end - p);
		if (n == tl && memcmp(p, tok, tl) == 0)
			return 1;
		p += n + 1;
	}
	return 0;
}

/* The v2 path and the v1 cpu path from a /proc/PID/cgroup file. */
static void self_paths(const char *file, char *v2, char *v1, size_t len)
{
	char line[PATH_LEN + 128];
	v2[0] = v1[0] = '\0';
	FILE *f = fopen(file, "re");
	if (!f)
		return;
	while (fgets(line, sizeof line, f)) {
		line[strcspn(line, "\n")] = '\0';
		char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
		if (!c2 || c2[1] != '/')
			continue;
		if (strncmp(line, "0::", 3) == 0)
			snprintf(v2, len, "%s", c2 + 1);
		else if (has_token(c1 + 1, (size_t)(c2 - c1 - 1), "cpu"))
			snprintf(v1, len, "%s", c2 + 1);
	}
	fclose(f);
}

/* Undoes mountinfo's octal escapes (\040 for a space) in place. */
static void unescape(char *s)
{
	char *o = s;
	for (char *p = s; *p; p++) {
		if (p[0] == '\\' && isdigit((unsigned char)p[1]) &&
		    isdigit((unsigned char)p[2]) && isdigit((unsigned char)p[3])) {
			*o++ = (char)((p[1] - '0') * 64 + (p[2] - '0') * 8 +
			              (p[3] - '0'));
			p += 3;
		} else {
			*o++ = *p;
		}
	}
	*o = '\0';
}

/* Mount points and roots of the v2 hierarchy and the v1 cpu one. */
static void mounts(char *m2, char *r2, char *m1, char *r1, size_t len)
{
	char line[3 * PATH_LEN];
	m2[0] = r2[0] = m1[0] = r1[0] = '\0';
	FILE *f = fopen("/proc/self/mountinfo", "re");
	if (!f)
		return;
	while (fgets(line, sizeof line, f)) {
		/* id parent maj:min root mountpoint opts [tags] - fstype src
		 * superopts */
		char *sep = strstr(line, " - ");
		if (!sep)
			continue;
		char root[PATH_LEN], mnt[PATH_LEN], fstype[64], src[PATH_LEN],
		    sopts[PATH_LEN];
		if (sscanf(line, "%*s %*s %*s %4095s %4095s", root, mnt) != 2 ||
		    sscanf(sep + 3, "%63s %4095s %4095s", fstype, src, sopts) != 3)
			continue;
		unescape(root);
		unescape(mnt);
		if (strcmp(fstype, "cgroup2") == 0 && !m2[0]) {
			snprintf(m2, len, "%s", mnt);
			snprintf(r2, len, "%s", root);
		} else if (strcmp(fstype, "cgroup") == 0 && !m1[0] &&
		           has_token(sopts, strlen(sopts), "cpu")) {
			snprintf(m1, len, "%s", mnt);
			snprintf(r1, len, "%s", root);
		}
	}
	fclose(f);
}

static int read_line(const char *path, char *buf, size_t len)
{
	FILE *f = fopen(path, "re");
	if (!f)
		return -1;
	int ok = fgets(buf, (int)len, f) != NULL;
	fclose(f);
	return ok ? 0 : -1;
}

/* The limit in dir, in CPUs; 0 if none. */
static double limit_v2(const char *dir, char *file, size_t flen)
{
	char line[128];
	if (snprintf(file, flen, "%s/cpu.max", dir) >= (int)flen ||
	    read_line(file, line, sizeof line) != 0)
		return 0;
	char q[32];
	unsigned long long period;
	if (sscanf(line, "%31s %llu", q, &period) != 2 || period == 0 ||
	    !isdigit((unsigned char)q[0]))
		return 0; /* "max": no limit */
	return strtod(q, NULL) / (double)period;
}

static double limit_v1(const char *dir, char *file, size_t flen)
{
	char line[64], pfile[2 * PATH_LEN + 32];
	if (snprintf(file, flen, "%s/cpu.cfs_quota_us", dir) >= (int)flen ||
	    snprintf(pfile, sizeof pfile, "%s/cpu.cfs_period_us", dir) >=
	        (int)sizeof pfile ||
	    read_line(file, line, sizeof line) != 0)
		return 0;
	long long quota = strtoll(line, NULL, 10);
	if (quota <= 0 || read_line(pfile, line, sizeof line) != 0)
		return 0; /* -1: no limit */
	long long period = strtoll(line, NULL, 10);
	return period > 0 ? (double)quota / (double)period : 0;
}

/*
 * The smallest limit from mnt/rel up to mnt.  rel is the cgroup's path;
 * mroot the directory the mount shows (a prefix of rel to drop).
 */
static double walk(const char *mnt, const char *mroot, const char *rel,
                   int v2, char *src, size_t srclen)
{
	char dir[2 * PATH_LEN], file[2 * PATH_LEN + 32];
	size_t rl = strlen(mroot);
	if (rl > 1 && strncmp(rel, mroot, rl) == 0 &&
	    (rel[rl] == '/' || rel[rl] == '\0'))
		rel += rl;
	snprintf(dir, sizeof dir, "%s%s", mnt, strcmp(rel, "/") ? rel : "");
	size_t base = strlen(mnt);
	double best = 0;
	for (;;) {
		double lim = v2 ? limit_v2(dir, file, sizeof file)
		                : limit_v1(dir, file, sizeof file);
		if (lim > 0 && (best == 0 || lim < best)) {
			best = lim;
			if (src && snprintf(src, srclen, "%s", file) >=
			               (int)srclen)
				src[0] = '\0'; /* too long to name */
		}
		char *slash = strrchr(dir, '/');
		if (strlen(dir) <= base || !slash || (size_t)(slash - dir) < base)
			break;
		*slash = '\0';
	}
	return best;
}

double cpus_quota(const char *root, const char *self_cgroup, char *src,
                  size_t srclen)
{
	char v2[PATH_LEN], v1[PATH_LEN], m2[PATH_LEN], r2[PATH_LEN],
	    m1[PATH_LEN], r1[PATH_LEN], s2[512] = "", s1[512] = "";
	if (src && srclen)
		src[0] = '\0';
	self_paths(self_cgroup ? self_cgroup : "/proc/self/cgroup", v2, v1,
	           sizeof v2);
	if (root) {
		static const char *v1dirs[] = {"cpu", "cpu,cpuacct",
		                               "cpuacct,cpu"};
		snprintf(m2, sizeof m2, "%s", root);
		snprintf(r2, sizeof r2, "/");
		snprintf(r1, sizeof r1, "/");
		/* v1: the first of these directories that exists */
		snprintf(m1, sizeof m1, "%s/cpu", root);
		for (size_t i = 0; i < sizeof v1dirs / sizeof *v1dirs; i++) {
			char d[PATH_LEN];
			struct stat st;
			if (snprintf(d, sizeof d, "%s/%s", root, v1dirs[i]) >=
			    (int)sizeof d)
				break;
			if (stat(d, &st) == 0 && S_ISDIR(st.st_mode)) {
				snprintf(m1, sizeof m1, "%s", d);
				break;
			}
		}
	} else {
		mounts(m2, r2, m1, r1, sizeof m2);
	}
	double q2 = v2[0] && m2[0] ? walk(m2, r2, v2, 1, s2, sizeof s2) : 0;
	double q1 = v1[0] && m1[0] ? walk(m1, r1, v1, 0, s1, sizeof s1) : 0;
	double q = q2;
	const char *s = s2;
	if (q1 > 0 && (q == 0 || q1 < q)) {
		q = q1;
		s = s1;
	}
	if (src && srclen)
		snprintf(src, srclen, "%s", s);
	return q;
}

unsigned cpus_usable(cpus_info *info)
{
	cpu_set_t set;
	memset(info, 0, sizeof *info);
	info->affinity = 1;
	long online = sysconf(_SC_NPROCESSORS_ONLN);
	if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0)
		info->affinity = (unsigned)CPU_COUNT(&set);
	else if (online > 0) /* more CPUs than a cpu_set_t holds */
		info->affinity = (unsigned)online;
	const char *root = getenv("CORRAL_CGROUP_ROOT");
	info->quota = cpus_quota(root && *root ? root : NULL, NULL,
	                         info->source, sizeof info->source);
	info->usable = info->affinity;
	if (info->quota > 0) {
		double c = ceil(info->quota - 1e-9);
		if (c < 1)
			c = 1;
		if (c < info->usable)
			info->usable = (unsigned)c;
	}
	return info->usable;
}
