/*
 * worker.h - corral-worker's internal state.  One struct, owned by the loop
 * thread; the plugin sees it only as the opaque corral_worker.
 */
#ifndef WORKER_WORKER_H
#define WORKER_WORKER_H

#include <stdint.h>
#include <uv.h>

#include "corral.h"
#include "ipc/chan.h"
#include "ipc/proto.h"
#include "pool/pool.h"
#include "worker/health.h"
#include "worker/jobs.h"

typedef struct worker_setting {
	const char *key, *value; /* point into argv */
} worker_setting;

typedef struct wlistener wlistener;

typedef enum worker_phase {
	WPHASE_STANDBY, /* loaded and connected; init waits for ASSIGN */
	WPHASE_INIT,
	WPHASE_RUNNING,
	WPHASE_STOPPING,
} worker_phase;

struct corral_worker {
	uv_loop_t loop;
	int slot;
	int64_t ppid;          /* the supervisor; we exit when it is gone */
	const char *url;       /* ipc://RUNDIR/slot-N */
	const char *plugin_path;
	uint64_t health_ms;
	pool_config pool_cfg;
	int pool_drain_cancel;
	worker_setting *settings;
	int nsettings;

	worker_phase phase;
	int standby;           /* started as a standby (--standby) */
	int check_only;        /* --check: load the plugin, run nothing */
	int inited;            /* init succeeded: fini is owed */
	ipc_chan *chan;
	void *dl;                    /* dlopen handle */
	const struct corral_plugin *plugin; /* points into dl */
	struct corral_plugin ops;           /* hooks the plugin's size covers */
	void *data;                  /* corral_set_data */

	pool *pool; /* the CPU pool; created before the plugin's init */
	jobs *jobs; /* jobs the plugin holds; replies on their way */
	void (*drain_fn)(corral_worker *w, void *arg); /* corral_pool_on_drain */
	void *drain_arg;

	wlistener *listeners; /* inherited fds 3.. (listen.c) */
	size_t nlisteners;
	const char *user;     /* --user: switch to it at start (main.c) */
	long uid, gid;

	health_mon health;
	uv_timer_t health_timer;
	ipc_metric metrics[IPC_MAX_METRICS];
	uint32_t nmetrics;
};

/* The process's one worker (main.c), for the few API calls that are not
 * handed a corral_worker. */
extern corral_worker *worker_self;

/* plugin.c: dlopen, ABI and size checks; fills w->ops.  On failure, msg
 * holds a one-line reason. */
int plugin_load(corral_worker *w, char *msg, size_t msglen);
void plugin_unload(corral_worker *w);

/* listen.c: takes LISTEN_FDS / LISTEN_FDNAMES and sets LISTEN_PID, before
 * any plugin code.  0, or an error with a one-line reason. */
int wlisten_init(corral_worker *w, char *err, size_t errlen);
/* Graceful stop began: accept nothing more. */
void wlisten_stop(corral_worker *w);
void wlisten_fini(corral_worker *w);

#endif
