/* priv.c - see priv.h. */
#include <errno.h>
#include <grp.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "corral_base.h"
#include "common/priv.h"

int priv_switch(const char *user, uid_t uid, gid_t gid, char *err,
                size_t errlen)
{
	const char *step;
	if (uid == 0) {
		snprintf(err, errlen, "refusing to switch to uid 0");
		return CORRAL_EPERM;
	}
	step = "initgroups";
	if (initgroups(user, gid) != 0)
		goto fail;
	step = "setgid";
	if (setgid(gid) != 0)
		goto fail;
	step = "setuid";
	if (setuid(uid) != 0)
		goto fail;
	if (getuid() != uid || geteuid() != uid || getgid() != gid ||
	    getegid() != gid) {
		snprintf(err, errlen, "switch to %s did not take: uid %u/%u gid "
		         "%u/%u", user, (unsigned)getuid(), (unsigned)geteuid(),
		         (unsigned)getgid(), (unsigned)getegid());
		return CORRAL_ESYS;
	}
	gid_t groups[256];
	int n = getgroups(256, groups);
	for (int i = 0; i < n; i++) {
		if (groups[i] == 0) {
			snprintf(err, errlen, "switch to %s left the root group "
			         "among its supplementary groups", user);
			return CORRAL_ESYS;
		}
	}
	if (setuid(0) == 0 || seteuid(0) == 0) {
		snprintf(err, errlen, "switch to %s can be undone: setuid(0) "
		         "succeeded", user);
		return CORRAL_ESYS;
	}
	return 0;
fail:
	snprintf(err, errlen, "%s for user %s (uid %u gid %u): %s", step, user,
	         (unsigned)uid, (unsigned)gid, strerror(errno));
	return CORRAL_ESYS;
}
