/* gen.c - see gen.h. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "common/error.h"
#include "corral_base.h"
#include "master/gen.h"

int plugin_file_id(const char *path, char *buf, size_t len)
{
	struct stat st;
	buf[0] = '\0';
	if (stat(path, &st) != 0)
		return err_from_errno(errno);
	snprintf(buf, len, "%ju:%jd:%jd.%09ld", (uintmax_t)st.st_ino,
	         (intmax_t)st.st_size, (intmax_t)st.st_mtim.tv_sec,
	         st.st_mtim.tv_nsec);
	return 0;
}

gen_spec *gen_new(unsigned gen, config *cfg, int owned,
                  const worker_spec *tmpl)
{
	gen_spec *g = calloc(1, sizeof *g);
	if (!g)
		return NULL;
	g->gen = gen;
	g->cfg = cfg;
	g->owned = owned;
	g->spec = *tmpl;
	g->spec.cfg = cfg;
	(void)plugin_file_id(cfg->plugin, g->plugin_id, sizeof g->plugin_id);
	return g;
}

void gen_free(gen_spec *g)
{
	if (!g)
		return;
	if (g->owned) {
		config_free(g->cfg);
		free(g->cfg);
	}
	free(g);
}
