/*
 * conf.h - the supervisor's settings: one table of keys, shared by the
 * command line (--key value) and the INI file ([corral] section, or keys
 * before any section), plus the [plugin] section handed to workers as-is.
 */
#ifndef MASTER_CONF_H
#define MASTER_CONF_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

typedef enum restart_mode {
	RESTART_ALWAYS,
	RESTART_ON_FAILURE,
	RESTART_NEVER,
} restart_mode;

typedef struct plugin_setting {
	char *key, *value;
} plugin_setting;

typedef struct config {
	char name[64];
	unsigned workers; /* 0 = auto: usable CPUs */
	char rundir[PATH_MAX];  /* "" = default for name */
	char plugin[PATH_MAX];
	restart_mode restart;
	uint64_t shutdown_timeout_ms;
	uint64_t restart_delay_ms;
	uint64_t restart_delay_max_ms;
	uint64_t min_uptime_ms;
	unsigned max_restarts;
	unsigned standby; /* pre-started workers waiting to replace one */
	unsigned threads;   /* pool threads per worker; 0 = auto (CPUs) */
	unsigned max_queue; /* pool tasks waiting before CORRAL_EBUSY */
	uint64_t aging_ms;
	int pool_drain_cancel; /* on stop: 0 = run queued tasks, 1 = cancel */
	char jobs_url[PATH_MAX]; /* "" = ipc://RUNDIR/jobs */
	unsigned max_inflight;   /* jobs per worker at once */
	unsigned queue_limit;    /* jobs waiting for a worker */
	uint64_t job_timeout_ms;
	unsigned max_attempts;   /* worker deaths before a job is poison */
	uint64_t max_lag_ms;     /* lag p99 above this: degraded, no jobs */
	uint64_t restart_window_ms;
	uint64_t heartbeat_timeout_ms;
	uint64_t health_interval_ms;
	uint64_t start_timeout_ms;
	plugin_setting *settings; /* owned */
	size_t nsettings;
	char **listen;     /* "NAME=URL" specs, owned; see master/listen.h */
	size_t nlisten;
	char user[64];     /* "" = workers keep corral's user */
	char group[64];    /* "" = the user's primary group */
	char http[PATH_MAX]; /* metrics and health endpoint, "" = off */
	unsigned ready_min;  /* running workers for /readyz; 0 = all */
} config;

/* One row per key: name, value syntax, default, help. */
#define CONFIG_KEYS(X)                                                        \
	X(name, "NAME", "corral", "instance name; picks the run directory")  \
	X(workers, "N|auto", "auto", "worker processes (auto = usable CPUs)") \
	X(rundir, "DIR", "", "run directory (default: see README)")           \
	X(plugin, "PATH", "", "the plugin .so (or the positional argument)")  \
	X(restart, "always|on-failure|never", "always", "restart policy")     \
	X(shutdown_timeout, "DUR", "10s", "grace period before SIGKILL")      \
	X(restart_delay, "DUR", "0", "first restart delay")                   \
	X(restart_delay_max, "DUR", "10s", "restart delay ceiling")           \
	X(min_uptime, "DUR", "1s", "uptime that resets the delay")            \
	X(max_restarts, "N", "10", "restarts allowed per restart_window")     \
	X(restart_window, "DUR", "60s", "window for max_restarts")            \
	X(heartbeat_timeout, "DUR", "5s", "no HEALTH for this long: hung")     \
	X(health_interval, "DUR", "1s", "how often workers report")           \
	X(start_timeout, "DUR", "30s", "time allowed to become ready")       \
	X(standby, "N", "1", "pre-started workers kept ready for restarts")  \
	X(threads, "N|auto", "2", "pool threads per worker")                  \
	X(max_queue, "N", "1024", "pool tasks waiting before EBUSY")          \
	X(aging, "DUR", "100ms", "pool wait that outranks newer tasks")       \
	X(pool_drain, "run|cancel", "run", "queued pool tasks on stop")       \
	X(jobs, "URL", "", "job front end (default ipc://RUNDIR/jobs)")       \
	X(max_inflight, "N", "64", "jobs per worker at once")                 \
	X(queue_limit, "N", "10000", "jobs waiting before 'busy'")            \
	X(job_timeout, "DUR", "30s", "longest a job may take")                \
	X(max_attempts, "N", "3", "worker deaths before a job is poison")     \
	X(max_lag, "DUR", "500ms", "lag p99 that marks a worker degraded")  \
	X(listen, "NAME=URL", "", "listener, repeatable (master/listen.h)")   \
	X(user, "USER", "", "run workers as USER (corral starts as root)")    \
	X(group, "GROUP", "", "workers' group (default: USER's)")            \
	X(http, "HOST:PORT", "", "serve /metrics, /healthz, /readyz there")  \
	X(ready_min, "N|all", "all", "running workers that make /readyz 200")

void config_defaults(config *c);
void config_free(config *c);

/* Sets one key from text.  Returns 0, or CORRAL_ECONFIG with err filled. */
int config_set(config *c, const char *key, const char *value, char *err,
               size_t errlen);
/* Adds a [plugin] setting (later ones win). */
int config_add_setting(config *c, const char *key, const char *value);

/*
 * Reads an INI file.  Returns 0, or CORRAL_ECONFIG with err holding
 * "FILE:LINE: what is wrong" (or "FILE: why it cannot be read").
 */
int config_load(config *c, const char *path, char *err, size_t errlen);

#endif
