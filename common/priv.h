/*
 * priv.h - switching a process to an unprivileged user, done the one way
 * that leaves no privilege behind: initgroups (the user's supplementary
 * groups), setgid, setuid, in that order (setgid is impossible after
 * setuid; groups set after setuid would not take), then proof that it took:
 * real and effective ids are the user's, no supplementary group is root's,
 * and setuid(0) fails.  Shared by the supervisor's pre-flight check and
 * corral-worker, which both must agree on what "switched" means.
 */
#ifndef COMMON_PRIV_H
#define COMMON_PRIV_H

#include <stddef.h>
#include <sys/types.h>

/* 0, or CORRAL_ESYS with err naming the step that failed and why.  On
 * failure the process may be half switched: the caller must exit. */
int priv_switch(const char *user, uid_t uid, gid_t gid, char *err,
                size_t errlen);

#endif
