/* rundir.c - see rundir.h. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "corral_base.h"
#include "common/rundir.h"

int rundir_default(const char *name, char *buf, size_t len)
{
	const char *xdg = getenv("XDG_RUNTIME_DIR");
	int n;
	if (xdg && xdg[0] == '/')
		n = snprintf(buf, len, "%s/corral/%s", xdg, name);
	else
		n = snprintf(buf, len, "/tmp/corral-%u/%s", (unsigned)geteuid(),
		             name);
	return n < 0 || (size_t)n >= len ? CORRAL_EINVAL : 0;
}

int rundir_url(const char *dir, const char *leaf, char *buf, size_t len)
{
	int n = snprintf(buf, len, "ipc://%s/%s", dir, leaf);
	return n < 0 || (size_t)n >= len ? CORRAL_EINVAL : 0;
}
