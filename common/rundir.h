/* rundir.h - where an instance keeps its sockets; shared by corral and
 * corralctl so both find the same place for a given name. */
#ifndef COMMON_RUNDIR_H
#define COMMON_RUNDIR_H

#include <stddef.h>

/* $XDG_RUNTIME_DIR/corral/NAME, or /tmp/corral-UID/NAME.  0 or EINVAL. */
int rundir_default(const char *name, char *buf, size_t len);
/* ipc://DIR/LEAF into buf.  0 or CORRAL_EINVAL if it does not fit. */
int rundir_url(const char *dir, const char *leaf, char *buf, size_t len);

#endif
