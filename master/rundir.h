/*
 * rundir.h - the run directory holds the control socket that accepts
 * commands, so it must be ours alone: created 0700, never a symlink or a
 * directory that someone else owns (a classic /tmp squat).
 */
#ifndef MASTER_RUNDIR_H
#define MASTER_RUNDIR_H

#include <stddef.h>

/* Creates (or checks) path.  0, or a corral_err with err filled. */
int rundir_prepare(const char *path, char *err, size_t errlen);

/*
 * One instance per run directory: an flock on DIR/lock, holding our pid,
 * taken before any socket is touched (a second instance's bind would
 * itself disturb the first one's listeners, nng#1518).  Then whatever
 * socket files a killed instance left behind are removed: with the lock
 * held they are nobody's.  0 with *fd set, CORRAL_EBUSY with "already
 * running as pid N", or another corral_err; err filled.
 */
int rundir_lock(const char *dir, int *fd, char *err, size_t errlen);

/* At exit: the lock file goes (still locked, so that whoever opens it
 * next sees a fresh file), then the directory if it is empty. */
void rundir_release(const char *dir, int fd);

#endif
