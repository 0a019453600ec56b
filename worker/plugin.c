/*
 * plugin.c - loads the plugin and checks its ops table before any hook runs:
 * the symbol must exist, abi_version must match, and `size` must cover the
 * hooks of ABI 1 without claiming hooks this worker does not know.
 */
#include <dlfcn.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "worker/worker.h"

#define PLUGIN_MIN_SIZE                                                       \
	(offsetof(struct corral_plugin, fini) + sizeof(((struct corral_plugin *)0)->fini))

int plugin_load(corral_worker *w, char *msg, size_t msglen)
{
	w->dl = dlopen(w->plugin_path, RTLD_NOW | RTLD_LOCAL);
	if (!w->dl) {
		snprintf(msg, msglen, "cannot load plugin: %s", dlerror());
		return CORRAL_EPLUGIN;
	}
	const struct corral_plugin *p = dlsym(w->dl, "corral_plugin");
	if (!p) {
		snprintf(msg, msglen,
		         "plugin %s does not export the symbol corral_plugin "
		         "(build it with CORRAL_PLUGIN(...))",
		         w->plugin_path);
		return CORRAL_ENOSYM;
	}
	if (p->abi_version != CORRAL_ABI_VERSION) {
		snprintf(msg, msglen,
		         "plugin %s has abi_version %u, this worker speaks %u: "
		         "rebuild it against this corral.h",
		         w->plugin_path, p->abi_version, CORRAL_ABI_VERSION);
		return CORRAL_EABI;
	}
	if (p->size < PLUGIN_MIN_SIZE || p->size > sizeof(struct corral_plugin)) {
		snprintf(msg, msglen,
		         "plugin %s has a corral_plugin of %u bytes, expected "
		         "%zu..%zu: rebuild it against this corral.h",
		         w->plugin_path, p->size, (size_t)PLUGIN_MIN_SIZE,
		         sizeof(struct corral_plugin));
		return CORRAL_EABI;
	}
	w->plugin = p;
	memset(&w->ops, 0, sizeof w->ops);
	memcpy(&w->ops, p, p->size);
	return 0;
}

void plugin_unload(corral_worker *w)
{
	/* Left mapped on purpose: a plugin may have started threads or
	 * registered atexit handlers that still point into it. */
	w->plugin = NULL;
}
