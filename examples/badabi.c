/*
 * badabi - a plugin built for an ABI this corral does not speak.  The worker
 * must refuse it with a clear message before calling any hook, and the
 * supervisor must not restart it.
 */
#include "corral.h"

static int badabi_init(corral_worker *w)
{
	corral_log(w, CORRAL_LOG_ERROR, "init must never run");
	return 0;
}

CORRAL_EXPORT const struct corral_plugin corral_plugin = {
	.abi_version = CORRAL_ABI_VERSION + 98,
	.size = sizeof(struct corral_plugin),
	.name = "badabi",
	.init = badabi_init,
};
