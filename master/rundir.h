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

#endif
