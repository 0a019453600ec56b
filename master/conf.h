/*
 * conf.h - the supervisor's settings: one table of keys (config_keys[]),
 * which drives parsing and validation, the defaults, the command line
 * (--foo-bar VALUE for the key foo_bar) and corral --help.  The INI file
 * sets the same keys in its [corral] section (or before any section); its
 * [plugin] section is handed to workers as-is.
 *
 * Adding a key: one row in config_keys[] (conf.c) and, if it is new, a
 * field in struct config.  Nothing else.
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

/* log_level = debug|info|warn|error, in this order. */
typedef enum conf_log_level {
	CONF_LOG_DEBUG,
	CONF_LOG_INFO,
	CONF_LOG_WARN,
	CONF_LOG_ERROR,
} conf_log_level;

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
	uint64_t queue_limit_bytes; /* their payload bytes */
	uint64_t job_timeout_ms;
	unsigned max_attempts;   /* worker deaths before a job is poison */
	uint64_t max_lag_ms;     /* lag p99 above this: degraded, no jobs */
	uint64_t restart_window_ms;
	uint64_t heartbeat_timeout_ms;
	uint64_t health_interval_ms;
	uint64_t start_timeout_ms;
	conf_log_level log_level;
	plugin_setting *settings; /* owned; [plugin] and --set, in order */
	size_t nsettings;
	char **listen;     /* "NAME=URL" specs, owned; see master/listen.h */
	size_t nlisten;
	char user[64];     /* "" = workers keep corral's user */
	char group[64];    /* "" = the user's primary group */
	uint64_t reload_gate_ms; /* healthy this long after READY: in */
	unsigned reload_parallel; /* slots a rollout replaces at once */
	int kill_process_only; /* kill_mode = process: a worker's children
	                          outlive it (systemd's KillMode=process) */
	uint64_t max_memory;      /* bytes; 0 = off (healthwatch.h) */
	uint64_t leak_window_ms;  /* 0 = off */
	uint64_t leak_min_growth; /* bytes across leak_window */
	int leak_restart;         /* leak_action = restart (else warn) */
	uint64_t lag_restart_ms;  /* 0 = off */
	uint64_t lag_restart_for_ms;
	uint64_t pool_stuck_ms;   /* 0 = off */
	char log_file[PATH_MAX]; /* "" = stderr; reopened on SIGUSR1 */
	int log_json;      /* log_format = json: one JSON object per line */
	char http[PATH_MAX]; /* metrics and health endpoint, "" = off */
	unsigned ready_min;  /* running workers for /readyz; 0 = all */
	int check_config;    /* --check-config (not a key): check, run nothing */
} config;

/* What a key's value is, and how it is checked. */
typedef enum conf_kind {
	CONF_NAME,     /* 1-63 of [A-Za-z0-9._-], not "." or ".." */
	CONF_UINT,     /* unsigned in lo..hi; "auto" = 0 if auto_zero */
	CONF_DURATION, /* parse_duration_ms(), at least lo ms: uint64_t */
	CONF_ENUM,     /* one of choices[]; the int field gets its index */
	CONF_PATH,     /* any text shorter than the char[] field */
	CONF_URL,      /* "" or an nng URL ("scheme://..."), as CONF_PATH */
	CONF_PAIR,     /* repeatable KEY=VALUE, appended to a setting list */
	CONF_LISTEN,   /* repeatable NAME=URL listener (master/listen.h) */
	CONF_ENDPOINT, /* "" or one listener address (listen_single), as
	                  CONF_PATH */
	CONF_SIZE,     /* bytes: 512, 64K, 256M, 2G (binary); 0 = off */
} conf_kind;

/* One configuration key.  The field is at off (size bytes) in config;
 * for CONF_PAIR it is a plugin_setting * and count_off its size_t count. */
typedef struct conf_key {
	const char *key;      /* file key; the option is --key, '_' as '-' */
	char short_opt;       /* -w etc., or 0 */
	conf_kind kind;
	size_t off, size, count_off;
	uint64_t lo, hi;      /* CONF_UINT, CONF_SIZE: range (hi 0: none);
	                       * CONF_DURATION: minimum */
	int auto_zero;        /* CONF_UINT: "auto" (or zero_name) is 0 */
	const char *zero_name; /* ...instead of "auto" */
	const char *const *choices; /* CONF_ENUM: NULL-terminated names */
	const char *def;      /* default, as written in a file; NULL: none */
	const char *arg;      /* the value's syntax, for --help */
	const char *help;     /* one short line, for --help */
} conf_key;

/* Every key, in the order --help lists them. */
extern const conf_key config_keys[];
extern const size_t config_nkeys;

/* The row for key, or NULL. */
const conf_key *config_key_find(const char *key);

void config_defaults(config *c);
void config_free(config *c);

/*
 * Sets one key from text.  Returns 0, CORRAL_ENOMEM, or CORRAL_ECONFIG
 * with err filled ("bad value 'V' for KEY: expected ...", "value for KEY
 * too long: ...", "unknown key 'K'"); a long value is shown cut short.
 * c is unchanged on error.
 */
int config_set(config *c, const char *key, const char *value, char *err,
               size_t errlen);
/* Adds a [plugin] setting (later ones win). */
int config_add_setting(config *c, const char *key, const char *value);

/*
 * Reads INI text from memory: len bytes of buf (no NUL needed; a NUL byte
 * in the text is an error).  Lines of any length work.  name is the file
 * name errors start with.  Returns 0, or CORRAL_ECONFIG (CORRAL_ENOMEM)
 * with err holding "NAME:LINE: what is wrong".  Keys already set before an
 * error stay set.
 */
int config_load_buffer(config *c, const char *name, const char *buf,
                       size_t len, char *err, size_t errlen);

/* Largest config file config_load() reads. */
#define CONFIG_MAX_FILE (1u << 20)

/*
 * Reads an INI file through config_load_buffer().  Returns 0, or
 * CORRAL_ECONFIG with err holding "FILE:LINE: what is wrong" (or "FILE:
 * why it cannot be read").
 */
int config_load(config *c, const char *path, char *err, size_t errlen);

#endif
