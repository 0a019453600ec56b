/*
 * gen.h - a generation: the configuration a set of workers is started
 * with (plugin, [plugin] settings, pool and health figures).  A reload
 * makes a new one; every worker carries the number of the one it was
 * started for, so an operator sees a rollout in progress.  The plugin's
 * content id (inode:size:mtime) is taken when the generation is made, so
 * that a .so replaced on disk since (a deploy by copying a build in place)
 * is noticed: a standby that loaded the old file is retired, not used.
 */
#ifndef MASTER_GEN_H
#define MASTER_GEN_H

#include "master/conf.h"
#include "master/proc.h"

#define GEN_ID_LEN 64

typedef struct gen_spec {
	unsigned gen;              /* 1, 2, ... */
	config *cfg;               /* owned unless borrowed (the first) */
	int owned;
	worker_spec spec;          /* .cfg points at cfg */
	char plugin_id[GEN_ID_LEN];
} gen_spec;

/* The content id of a file: "inode:size:mtime_ns", or "" if it cannot be
 * read.  0, or a corral_err. */
int plugin_file_id(const char *path, char *buf, size_t len);

/* A generation for cfg (taken when owned), started by spec's binary. */
gen_spec *gen_new(unsigned gen, config *cfg, int owned,
                  const worker_spec *tmpl);
void gen_free(gen_spec *g);

#endif
