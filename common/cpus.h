/*
 * cpus.h - how many CPUs this process may really use: the CPUs of its
 * affinity mask, and the CPU quota of the cgroup it runs in (cgroup v2
 * cpu.max, v1 cpu.cfs_quota_us / cpu.cfs_period_us), whichever is less.
 * A container limited to 2 CPUs on a 64-core host sees 64 CPUs in its
 * affinity mask but may only use 2 CPUs' worth of time: `workers = auto`
 * runs 2 workers there, not 64 workers that the kernel throttles.
 *
 * The quota is the smallest along the cgroup and its ancestors (each
 * level's limit applies).  A quota of 1.5 CPUs counts as 2 (rounded up,
 * as the JVM and the Go runtime do).  Files that are missing or cannot be
 * read mean no limit.
 */
#ifndef COMMON_CPUS_H
#define COMMON_CPUS_H

#include <stddef.h>

typedef struct cpus_info {
	unsigned affinity; /* CPUs in the affinity mask (at least 1) */
	double quota;      /* CPUs' worth of time the cgroups allow; 0: none */
	char source[512];  /* the file that set the quota, "" if none */
	unsigned usable;   /* min(affinity, quota rounded up), at least 1 */
} cpus_info;

/*
 * The quota of the cgroup named in self_cgroup (a /proc/PID/cgroup file;
 * NULL: /proc/self/cgroup), read below root (the cgroup file system: v2
 * files in root/PATH, v1 files in root/cpu/PATH or root/cpu,cpuacct/PATH;
 * NULL: the mounts listed in /proc/self/mountinfo).  0 when there is none;
 * src (may be NULL) gets the file that set it.
 */
double cpus_quota(const char *root, const char *self_cgroup, char *src,
                  size_t srclen);

/* Fills info for this process.  The cgroup root is $CORRAL_CGROUP_ROOT
 * when set (tests build a cgroup tree of their own there), else the
 * system's mounts.  Returns info->usable. */
unsigned cpus_usable(cpus_info *info);

#endif
