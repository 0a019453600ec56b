/*
 * privdrop.h - `user` / `group`: corral may start as root (to bind ports
 * below 1024 and create its run directory); its workers run as the user.
 *
 * Who does what:
 *  - the supervisor stays root; at start priv_prepare() resolves the names,
 *    refuses uid 0, opens the run directory to the user (root-owned, 0711:
 *    the user may reach a socket whose name it knows but not list them) and
 *    tries the switch once in a forked child that must then reach the run
 *    directory and read the plugin, so that a switch that cannot work is a
 *    start error (exit 1), not a crash loop;
 *  - the socket each worker dials (slot or standby) is chowned to the user
 *    (priv_own_socket, called by proc_spawn just before the spawn), so the
 *    worker can dial it; the control socket stays root's and 0600;
 *  - corral-worker is exec'd as root with --user/--uid/--gid and switches
 *    itself first thing, before nng, dlopen or any plugin code:
 *    initgroups, setgid, setuid (common/priv.c), then re-arms
 *    PR_SET_PDEATHSIG (the kernel clears it on a credential change) and
 *    checks getppid() again.  A failed switch exits 78: never restarted.
 *    (libuv's UV_PROCESS_SETUID would call setgroups(0, NULL) instead of
 *    initgroups, dropping the user's supplementary groups.)
 */
#ifndef MASTER_PRIVDROP_H
#define MASTER_PRIVDROP_H

#include <stddef.h>
#include <sys/types.h>

#include "master/conf.h"

typedef struct priv_user {
	int active; /* workers switch to this user */
	char name[64];
	uid_t uid;
	gid_t gid;
} priv_user;

/*
 * Once, at start, before any socket or worker exists.  Without `user` it
 * does nothing (and `group` alone is an error).  0; CORRAL_ECONFIG for an
 * unknown user or group, group without user, or user root; CORRAL_ESYS
 * when the switch cannot work here (corral is not root, the run directory
 * or the plugin is out of the user's reach).  err says which.
 */
int priv_prepare(const config *c, const char *rundir, priv_user *u,
                 char *err, size_t errlen);


/*
 * Gives the socket file of an ipc:// URL to the workers' user (chown), so
 * a worker that switched user can dial it.  proc_spawn calls it with the
 * URL the new worker dials (bound by the caller just before).  A no-op (0)
 * without `user`.  0 or CORRAL_ESYS (logged).
 */
int priv_own_socket(const priv_user *u, const char *ipc_url);

#endif
