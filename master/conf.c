/*
 * conf.c - see conf.h.
 *
 * Keys: config_keys[] is the only place a key is declared; config_set()
 * checks a value against its row and writes the field only when the whole
 * value is good.
 *
 * INI files: inih does the syntax, from memory (config_load_buffer), fed a
 * line at a time by ini_next_line().  inih cannot say which line its
 * handler is on, and it splits a line longer than its buffer (200 bytes in
 * Debian's build, fixed in the shared library) into several, so the
 * reader counts lines and hands inih a long line shortened: the key and
 * its '=' with a one-byte stand-in value (or, for a comment or section
 * line, what inih would keep of it).  The handler, called for that line,
 * swaps the stand-in for the real value, trimmed the way inih trims one.
 * So a value of any length reaches config_set() with its line number.
 */
#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "corral.h"
#include "common/duration.h"
#include "master/conf.h"
#include "master/listen.h"

/* ---- the keys ---- */

#define FIELD(f) .off = offsetof(config, f), .size = sizeof(((config *)0)->f)

static const char *const restart_names[] = {"always", "on-failure", "never",
                                            NULL};
static const char *const drain_names[] = {"run", "cancel", NULL};
static const char *const level_names[] = {"debug", "info", "warn", "error",
                                          NULL};
static const char *const kill_names[] = {"group", "process", NULL};
static const char *const leak_names[] = {"warn", "restart", NULL};
static const char *const format_names[] = {"text", "json", NULL};

const conf_key config_keys[] = {
	{.key = "workers", .short_opt = 'w', .kind = CONF_UINT,
	 FIELD(workers), .lo = 1, .hi = 1024, .auto_zero = 1, .def = "auto",
	 .arg = "N|auto", .help = "worker processes (auto: usable CPUs)"},
	{.key = "name", .short_opt = 'n', .kind = CONF_NAME, FIELD(name),
	 .def = "corral", .arg = "NAME",
	 .help = "instance name; picks the run directory"},
	{.key = "rundir", .kind = CONF_PATH, FIELD(rundir), .def = "",
	 .arg = "DIR", .help = "run directory (default $XDG_RUNTIME_DIR/"
	                       "corral/NAME or /tmp/corral-UID/NAME)"},
	{.key = "plugin", .kind = CONF_PATH, FIELD(plugin), .def = "",
	 .arg = "PATH", .help = "the plugin .so (or the positional argument)"},
	{.key = "restart", .kind = CONF_ENUM, FIELD(restart),
	 .choices = restart_names, .def = "always",
	 .arg = "always|on-failure|never", .help = "restart policy"},
	{.key = "shutdown_timeout", .kind = CONF_DURATION,
	 FIELD(shutdown_timeout_ms), .def = "10s", .arg = "DUR",
	 .help = "grace before SIGKILL"},
	{.key = "restart_delay", .kind = CONF_DURATION,
	 FIELD(restart_delay_ms), .def = "0", .arg = "DUR",
	 .help = "first restart delay"},
	{.key = "restart_delay_max", .kind = CONF_DURATION,
	 FIELD(restart_delay_max_ms), .def = "10s", .arg = "DUR",
	 .help = "delay ceiling; doubles up to it"},
	{.key = "min_uptime", .kind = CONF_DURATION, FIELD(min_uptime_ms),
	 .def = "1s", .arg = "DUR", .help = "uptime that resets the delay"},
	{.key = "max_restarts", .kind = CONF_UINT, FIELD(max_restarts),
	 .lo = 0, .hi = 1000, .def = "10", .arg = "N",
	 .help = "per restart window, then FAILED"},
	{.key = "restart_window", .kind = CONF_DURATION,
	 FIELD(restart_window_ms), .def = "60s", .arg = "DUR",
	 .help = "window for max_restarts"},
	{.key = "heartbeat_timeout", .kind = CONF_DURATION,
	 FIELD(heartbeat_timeout_ms), .lo = 1, .def = "5s", .arg = "DUR",
	 .help = "no health report: hung, killed"},
	{.key = "health_interval", .kind = CONF_DURATION,
	 FIELD(health_interval_ms), .lo = 1, .def = "1s", .arg = "DUR",
	 .help = "worker report interval"},
	{.key = "start_timeout", .kind = CONF_DURATION,
	 FIELD(start_timeout_ms), .lo = 1, .def = "30s", .arg = "DUR",
	 .help = "time to become ready"},
	{.key = "standby", .kind = CONF_UINT, FIELD(standby), .lo = 0,
	 .hi = 64, .def = "1", .arg = "N",
	 .help = "pre-started workers that replace a dead one at once "
	         "(0: always spawn fresh)"},
	{.key = "threads", .kind = CONF_UINT, FIELD(threads), .lo = 1,
	 .hi = 256, .auto_zero = 1, .def = "2", .arg = "N|auto",
	 .help = "pool threads per worker (auto: usable CPUs)"},
	{.key = "max_queue", .kind = CONF_UINT, FIELD(max_queue), .lo = 1,
	 .hi = 16777216, .def = "1024", .arg = "N",
	 .help = "pool tasks waiting before EBUSY"},
	{.key = "aging", .kind = CONF_DURATION, FIELD(aging_ms),
	 .def = "100ms", .arg = "DUR",
	 .help = "pool wait that outranks newer tasks"},
	{.key = "pool_drain", .kind = CONF_ENUM, FIELD(pool_drain_cancel),
	 .choices = drain_names, .def = "run", .arg = "run|cancel",
	 .help = "queued pool tasks when stopping"},
	{.key = "jobs", .kind = CONF_URL, FIELD(jobs_url), .def = "",
	 .arg = "URL", .help = "job front end (default ipc://RUNDIR/jobs)"},
	{.key = "max_inflight", .kind = CONF_UINT, FIELD(max_inflight),
	 .lo = 1, .hi = 100000, .def = "64", .arg = "N",
	 .help = "jobs per worker at once"},
	{.key = "queue_limit", .kind = CONF_UINT, FIELD(queue_limit),
	 .lo = 1, .hi = 10000000, .def = "10000", .arg = "N",
	 .help = "jobs waiting before 'busy'"},
	/* At least the largest payload, so that an empty queue takes any
	 * job. */
	{.key = "queue_limit_bytes", .kind = CONF_SIZE,
	 FIELD(queue_limit_bytes), .lo = 1u << 20, .hi = 1ull << 40,
	 .def = "64MiB", .arg = "SIZE",
	 .help = "payload bytes waiting before 'busy' (K, M, G: KiB, MiB, "
	         "GiB)"},
	{.key = "job_timeout", .kind = CONF_DURATION, FIELD(job_timeout_ms),
	 .lo = 1, .def = "30s", .arg = "DUR",
	 .help = "longest a job may take"},
	{.key = "max_attempts", .kind = CONF_UINT, FIELD(max_attempts),
	 .lo = 1, .hi = 100, .def = "3", .arg = "N",
	 .help = "worker deaths before a job is poison"},
	{.key = "max_lag", .kind = CONF_DURATION, FIELD(max_lag_ms),
	 .def = "500ms", .arg = "DUR",
	 .help = "lag p99 that stops new jobs to a worker"},
	{.key = "max_memory", .kind = CONF_SIZE, FIELD(max_memory),
	 .def = "0", .arg = "SIZE",
	 .help = "RSS over which a worker is replaced, gracefully (0: off)"},
	{.key = "leak_window", .kind = CONF_DURATION, FIELD(leak_window_ms),
	 .def = "5m", .arg = "DUR",
	 .help = "RSS growing steadily across this window flags the worker "
	         "leaking (0: off)"},
	{.key = "leak_min_growth", .kind = CONF_SIZE, FIELD(leak_min_growth),
	 .lo = 1, .def = "32M", .arg = "SIZE",
	 .help = "growth across leak_window below which it is no leak"},
	{.key = "leak_action", .kind = CONF_ENUM, FIELD(leak_restart),
	 .choices = leak_names, .def = "warn", .arg = "warn|restart",
	 .help = "a leaking worker: flagged and logged, or replaced"},
	{.key = "lag_restart", .kind = CONF_DURATION, FIELD(lag_restart_ms),
	 .def = "0", .arg = "DUR",
	 .help = "lag p99 over this for lag_restart_for replaces the worker "
	         "(0: off)"},
	{.key = "lag_restart_for", .kind = CONF_DURATION,
	 FIELD(lag_restart_for_ms), .def = "30s", .arg = "DUR",
	 .help = "how long lag_restart must hold"},
	{.key = "pool_stuck", .kind = CONF_DURATION, FIELD(pool_stuck_ms),
	 .def = "0", .arg = "DUR",
	 .help = "a pool task running longer flags the worker (0: off)"},
	{.key = "reload_gate", .kind = CONF_DURATION, FIELD(reload_gate_ms),
	 .def = "2s", .arg = "DUR",
	 .help = "in a reload, how long a new worker stays READY and healthy "
	         "before the old one stops"},
	{.key = "reload_parallel", .kind = CONF_UINT, FIELD(reload_parallel),
	 .lo = 1, .hi = 1024, .def = "1", .arg = "N",
	 .help = "slots a reload replaces at once"},
	{.key = "kill_mode", .kind = CONF_ENUM, FIELD(kill_process_only),
	 .choices = kill_names, .def = "group", .arg = "group|process",
	 .help = "when a worker ends, kill what it started too (group) or "
	         "not (process)"},
	{.key = "listen", .kind = CONF_LISTEN, FIELD(listen),
	 .count_off = offsetof(config, nlisten), .arg = "NAME=URL",
	 .help = "shared listener, repeatable: NAME=tcp://HOST:PORT, "
	         "NAME=tcp://[IPV6]:PORT, NAME=unix:/PATH"},
	{.key = "user", .kind = CONF_PATH, FIELD(user), .def = "",
	 .arg = "USER", .help = "run workers as USER (corral starts as root)"},
	{.key = "group", .kind = CONF_PATH, FIELD(group), .def = "",
	 .arg = "GROUP", .help = "workers' group (default: USER's)"},
	{.key = "log_file", .kind = CONF_PATH, FIELD(log_file), .def = "",
	 .arg = "PATH", .help = "log there instead of stderr (workers' "
	                        "output too); SIGUSR1 reopens it"},
	{.key = "log_format", .kind = CONF_ENUM, FIELD(log_json),
	 .choices = format_names, .def = "text", .arg = "text|json",
	 .help = "log lines as text or one JSON object per line"},
	{.key = "http", .kind = CONF_ENDPOINT, FIELD(http), .def = "",
	 .arg = "ADDR", .help = "serve /metrics, /healthz and /readyz at "
	                        "HOST:PORT ([IPV6]:PORT, *:PORT, "
	                        "tcp://HOST:PORT, unix:/PATH); off when empty"},
	{.key = "ready_min", .kind = CONF_UINT, FIELD(ready_min), .lo = 1,
	 .hi = 1024, .auto_zero = 1, .zero_name = "all", .def = "all",
	 .arg = "N|all", .help = "running workers that make /readyz answer "
	                         "200"},
	{.key = "log_level", .kind = CONF_ENUM, FIELD(log_level),
	 .choices = level_names, .def = "info",
	 .arg = "debug|info|warn|error",
	 .help = "least severe messages logged"},
	{.key = "set", .short_opt = 's', .kind = CONF_PAIR, FIELD(settings),
	 .count_off = offsetof(config, nsettings), .arg = "KEY=VALUE",
	 .help = "plugin setting, as in [plugin]; repeatable"},
};
const size_t config_nkeys = sizeof config_keys / sizeof config_keys[0];

/* An enum field is written as an int. */
_Static_assert(sizeof(restart_mode) == sizeof(int), "enum field size");
_Static_assert(sizeof(conf_log_level) == sizeof(int), "enum field size");

const conf_key *config_key_find(const char *key)
{
	for (size_t i = 0; i < config_nkeys; i++)
		if (strcmp(config_keys[i].key, key) == 0)
			return &config_keys[i];
	return NULL;
}

void config_defaults(config *c)
{
	char err[256];
	memset(c, 0, sizeof *c);
	for (size_t i = 0; i < config_nkeys; i++) {
		if (!config_keys[i].def)
			continue;
		if (config_set(c, config_keys[i].key, config_keys[i].def, err,
		               sizeof err) != 0) {
			/* A bad default is a bug in the table above. */
			fprintf(stderr, "corral: default of %s: %s\n",
			        config_keys[i].key, err);
			abort();
		}
	}
}

void config_free(config *c)
{
	for (size_t i = 0; i < c->nsettings; i++) {
		free(c->settings[i].key);
		free(c->settings[i].value);
	}
	free(c->settings);
	c->settings = NULL;
	c->nsettings = 0;
	for (size_t i = 0; i < c->nlisten; i++)
		free(c->listen[i]);
	free(c->listen);
	c->listen = NULL;
	c->nlisten = 0;
}

/* ---- values ---- */

/* Values echoed in messages are cut to this many bytes. */
#define ECHO_MAX 64

/* n bytes of v for a message: at most ECHO_MAX, control bytes as '?',
 * "..." when cut.  out has room for ECHO_MAX + 4. */
static void echo_plain(char *out, const char *v, size_t n)
{
	size_t k = n > ECHO_MAX ? ECHO_MAX : n;
	for (size_t i = 0; i < k; i++)
		out[i] = iscntrl((unsigned char)v[i]) ? '?' : v[i];
	strcpy(out + k, n > ECHO_MAX ? "..." : "");
}

/* 'v' for a message, cut as echo_plain() does, with the full length when
 * it was cut. */
static void echo_value(char *out, size_t cap, const char *v)
{
	char buf[ECHO_MAX + 4];
	size_t n = strlen(v);
	echo_plain(buf, v, n);
	if (n > ECHO_MAX)
		snprintf(out, cap, "'%s' (%zu bytes)", buf, n);
	else
		snprintf(out, cap, "'%s'", buf);
}

static int parse_uint(const char *s, uint64_t lo, uint64_t hi,
                      unsigned *out)
{
	char *end;
	if (!isdigit((unsigned char)*s))
		return -1;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || *end || v < lo || v > hi || v > UINT_MAX)
		return -1;
	*out = (unsigned)v;
	return 0;
}

/* "512", "64K", "256M", "2G", "1T", with an optional "B" or "iB" after
 * the multiple (all binary: what RSS figures and `free` use). */
static int parse_size(const char *s, uint64_t *out)
{
	char *end;
	if (!isdigit((unsigned char)*s))
		return -1;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno)
		return -1;
	unsigned shift = 0;
	switch (*end) {
	case 'k': case 'K': shift = 10; end++; break;
	case 'm': case 'M': shift = 20; end++; break;
	case 'g': case 'G': shift = 30; end++; break;
	case 't': case 'T': shift = 40; end++; break;
	default: break;
	}
	if (shift && *end == 'i')
		end++;
	if (*end == 'B' || (*end == 'b' && !shift))
		end++;
	if (*end || (shift && v > (UINT64_MAX >> shift)))
		return -1;
	*out = (uint64_t)v << shift;
	return 0;
}

/* n in the largest unit that writes it exactly: 1MiB, 1536KiB, 100. */
static void format_bytes(char *out, size_t cap, uint64_t n)
{
	static const char *const units[] = {"", "KiB", "MiB", "GiB", "TiB"};
	unsigned i = 0;
	while (i < 4 && n && n % 1024 == 0) {
		n /= 1024;
		i++;
	}
	snprintf(out, cap, "%llu%s", (unsigned long long)n, units[i]);
}

static int valid_name(const char *v)
{
	if (!*v || strlen(v) >= 64 || strcmp(v, ".") == 0 ||
	    strcmp(v, "..") == 0)
		return 0;
	for (const char *p = v; *p; p++)
		if (!isalnum((unsigned char)*p) && !strchr("._-", *p))
			return 0;
	return 1;
}

/* "a, b or c" for an enum's choices. */
static void choice_list(const char *const *ch, char *out, size_t cap)
{
	size_t o = 0;
	out[0] = '\0';
	for (size_t i = 0; ch[i] && o < cap; i++) {
		const char *sep = i == 0 ? "" : ch[i + 1] ? ", " : " or ";
		int n = snprintf(out + o, cap - o, "%s%s", sep, ch[i]);
		if (n < 0)
			break;
		o += (size_t)n;
	}
}

static int set_pair(config *c, const conf_key *k, const char *v, char *err,
                    size_t errlen)
{
	const char *eq = strchr(v, '=');
	char shown[ECHO_MAX + 48];
	if (!eq || eq == v) {
		echo_value(shown, sizeof shown, v);
		snprintf(err, errlen, "bad value %s for %s: expected KEY=VALUE",
		         shown, k->key);
		return CORRAL_ECONFIG;
	}
	char *key = strndup(v, (size_t)(eq - v));
	if (!key)
		return CORRAL_ENOMEM;
	int rc = config_add_setting(c, key, eq + 1);
	free(key);
	if (rc)
		snprintf(err, errlen, "%s: out of memory", k->key);
	return rc;
}

/* Per kind: store v in field, or say in expect what was expected. */
static void set_uint(const conf_key *k, const char *v, void *field,
                     char *expect, size_t cap)
{
	unsigned u;
	const char *zero = k->zero_name ? k->zero_name : "auto";
	if (k->auto_zero && strcmp(v, zero) == 0)
		*(unsigned *)field = 0;
	else if (parse_uint(v, k->lo, k->hi, &u) == 0)
		*(unsigned *)field = u;
	else
		snprintf(expect, cap, "%s%s%llu..%llu",
		         k->auto_zero ? zero : "", k->auto_zero ? " or " : "",
		         (unsigned long long)k->lo, (unsigned long long)k->hi);
}

static void set_duration(const conf_key *k, const char *v, void *field,
                         char *expect, size_t cap)
{
	uint64_t ms;
	if (parse_duration_ms(v, &ms) != 0)
		snprintf(expect, cap, "a duration like 500ms, 10s, 2m (bare "
		         "numbers are seconds)");
	else if (ms < k->lo && k->lo == 1)
		snprintf(expect, cap, "a duration above 0");
	else if (ms < k->lo)
		snprintf(expect, cap, "a duration of at least %llums",
		         (unsigned long long)k->lo);
	else
		*(uint64_t *)field = ms;
}

static void set_enum(const conf_key *k, const char *v, void *field,
                     char *expect, size_t cap)
{
	size_t i = 0;
	while (k->choices[i] && strcmp(k->choices[i], v) != 0)
		i++;
	if (k->choices[i])
		*(int *)field = (int)i;
	else
		choice_list(k->choices, expect, cap);
}

static void set_size(const conf_key *k, const char *v, void *field,
                     char *expect, size_t cap)
{
	uint64_t b;
	char lo[32], hi[32];
	if (parse_size(v, &b) != 0) {
		snprintf(expect, cap, "a size like 512, 64K, 256M, 2G (binary "
		         "multiples)");
	} else if (b < k->lo || (k->hi && b > k->hi)) {
		format_bytes(lo, sizeof lo, k->lo);
		format_bytes(hi, sizeof hi, k->hi);
		if (k->hi)
			snprintf(expect, cap, "a size of %s..%s", lo, hi);
		else
			snprintf(expect, cap, "a size of at least %s", lo);
	} else {
		*(uint64_t *)field = b;
	}
}

/* Strings: a path, an nng URL, or an endpoint (checked as a listener
 * would read it).  0, or CORRAL_ECONFIG with err written. */
static int set_string(const conf_key *k, const char *v, char *field,
                      char *expect, size_t cap, char *err, size_t errlen)
{
	size_t len = strlen(v);
	char why[512], shown[ECHO_MAX + 48];
	if (k->kind == CONF_ENDPOINT && *v && len < k->size &&
	    listen_single(k->key, v, NULL, why, sizeof why) != 0) {
		/* why repeats the value ("bad listen 'NAME=URL': ..."): only
		 * what follows it is news. */
		const char *detail = why;
		if (strncmp(why, "bad listen '", 12) == 0 &&
		    (detail = strstr(why + 12, "': ")) != NULL)
			detail += 3;
		else
			detail = why;
		echo_value(shown, sizeof shown, v);
		snprintf(err, errlen, "bad value %s for %s: expected HOST:PORT, "
		         "[IPV6]:PORT, *:PORT, tcp://HOST:PORT or unix:/PATH "
		         "(%.100s)", shown, k->key, detail);
		return CORRAL_ECONFIG;
	}
	if (len >= k->size) {
		snprintf(err, errlen, "value for %s too long: %zu bytes (at "
		         "most %zu)", k->key, len, k->size - 1);
		return CORRAL_ECONFIG;
	}
	if (k->kind == CONF_URL && *v && !strstr(v, "://"))
		snprintf(expect, cap, "an nng URL such as tcp://127.0.0.1:5555");
	else
		memcpy(field, v, len + 1);
	return 0;
}

int config_set(config *c, const char *key, const char *v, char *err,
               size_t errlen)
{
	const conf_key *k = config_key_find(key);
	char expect[160] = "", shown[ECHO_MAX + 48];
	if (!k) {
		echo_value(shown, sizeof shown, key);
		snprintf(err, errlen, "unknown key %s", shown);
		return CORRAL_ECONFIG;
	}
	char *field = (char *)c + k->off;
	int rc = 0;
	switch (k->kind) {
	case CONF_NAME:
		if (!valid_name(v))
			snprintf(expect, sizeof expect,
			         "1-63 of [A-Za-z0-9._-]");
		else
			memcpy(field, v, strlen(v) + 1);
		break;
	case CONF_UINT:
		set_uint(k, v, field, expect, sizeof expect);
		break;
	case CONF_DURATION:
		set_duration(k, v, field, expect, sizeof expect);
		break;
	case CONF_ENUM:
		set_enum(k, v, field, expect, sizeof expect);
		break;
	case CONF_SIZE:
		set_size(k, v, field, expect, sizeof expect);
		break;
	case CONF_ENDPOINT:
	case CONF_PATH:
	case CONF_URL:
		rc = set_string(k, v, field, expect, sizeof expect, err, errlen);
		break;
	case CONF_PAIR:
		return set_pair(c, k, v, err, errlen);
	case CONF_LISTEN:
		return listen_add_spec(&c->listen, &c->nlisten, v, err, errlen);
	}
	if (!rc && expect[0]) {
		echo_value(shown, sizeof shown, v);
		snprintf(err, errlen, "bad value %s for %s: expected %s", shown,
		         k->key, expect);
		return CORRAL_ECONFIG;
	}
	return rc;
}

int config_add_setting(config *c, const char *key, const char *value)
{
	plugin_setting *ns =
	    realloc(c->settings, (c->nsettings + 1) * sizeof *ns);
	if (!ns)
		return CORRAL_ENOMEM;
	c->settings = ns;
	char *k = strdup(key), *v = strdup(value);
	if (!k || !v) {
		free(k);
		free(v);
		return CORRAL_ENOMEM;
	}
	ns[c->nsettings].key = k;
	ns[c->nsettings].value = v;
	c->nsettings++;
	return 0;
}

/* ---- INI text ---- */

typedef struct ini_ctx {
	config *c;
	const char *buf; /* the whole text */
	size_t len, pos; /* pos: start of the next line */
	int line;        /* line inih is on, counted by ini_next_line */
	int err_line;    /* first line we found wrong, 0 = none */
	int err_code;
	char msg[512];
	/* The line inih is on, when it was too long for inih's buffer:
	 * rest is the text after leading blanks, right-trimmed (rest_len
	 * bytes); sep the offset of its '=' or ':' or -1. */
	int long_line;
	const char *rest;
	size_t rest_len;
	long sep;
} ini_ctx;

/* inih's rules, on a counted span: whitespace is isspace(); a ';' after
 * whitespace starts an inline comment; a line's key ends at the first '='
 * or ':' before such a comment. */
static size_t span_find(const char *s, size_t n, const char *chars)
{
	int was_space = 0;
	for (size_t i = 0; i < n; i++) {
		if (chars && strchr(chars, s[i]))
			return i;
		if (was_space && s[i] == ';')
			return i;
		was_space = isspace((unsigned char)s[i]);
	}
	return n;
}

static void ini_fail(ini_ctx *x, int line, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void ini_fail(ini_ctx *x, int line, int code, const char *fmt, ...)
{
	if (x->err_line)
		return; /* keep only the first error */
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(x->msg, sizeof x->msg, fmt, ap);
	va_end(ap);
	x->err_line = line;
	x->err_code = code;
}

/*
 * What inih gets for a line of n bytes too long for its buffer of size
 * bytes (size >= 32): the shortest text that inih parses the same way,
 * with a stand-in value "x" the handler replaces.  Written to out.
 */
static void shorten_line(ini_ctx *x, const char *s, size_t n, char *out,
                         int size)
{
	size_t lead = 0, o = 0;
	/* Leaves 'x' or ']' and the NUL: no '\n', which inih does not need,
 * so that every key a short line can hold fits here too. */
	size_t room = (size_t)size - 2;
	if (x->line == 1 && n >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0) {
		memcpy(out, s, 3); /* inih skips a BOM on line 1 */
		o = lead = 3;
	}
	while (n > lead && isspace((unsigned char)s[n - 1]))
		n--;
	while (lead < n && isspace((unsigned char)s[lead]))
		lead++;
	x->long_line = x->line;
	x->rest = s + lead;
	x->rest_len = n - lead;
	x->sep = -1;
	/* Leading blanks stay (a few): they make a continuation line. */
	size_t keep = lead - o < 8 ? lead - o : 8;
	memcpy(out + o, s + o, keep);
	o += keep;
	const char *r = x->rest;
	if (x->rest_len == 0) {
		o = 0; /* blanks only: a blank line */
	} else if (r[0] == ';' || r[0] == '#') {
		out[o++] = ';';
	} else if (r[0] == '[') {
		/* inih keeps 49 bytes of a section name anyway. */
		size_t close = span_find(r + 1, x->rest_len - 1, "]") + 1;
		size_t nm = close - 1 < 60 ? close - 1 : 60;
		if (nm > room - o - 1)
			nm = room - o - 1;
		out[o++] = '[';
		memcpy(out + o, r + 1, nm);
		o += nm;
		if (close < x->rest_len && r[close] == ']')
			out[o++] = ']';
	} else {
		/* The key ends at '=' or ':', unless a comment comes first. */
		size_t sep = span_find(r, x->rest_len, "=:");
		int has_sep = sep < x->rest_len && (r[sep] == '=' || r[sep] == ':');
		if (has_sep && o + sep + 1 <= room) {
			memcpy(out + o, r, sep + 1);
			o += sep + 1;
			x->sep = (long)sep;
		} else if (has_sep) {
			char shown[ECHO_MAX + 4];
			size_t kl = sep;
			while (kl && isspace((unsigned char)r[kl - 1]))
				kl--;
			echo_plain(shown, r, kl);
			ini_fail(x, x->line, CORRAL_ECONFIG,
			         "key '%s' too long: %zu bytes (at most %zu)",
			         shown, kl, room - o - 1);
			out[o] = '\0';
			return;
		}
		out[o++] = 'x';
	}
	out[o] = '\0';
}

/* inih's ini_reader: the next line, whole or shortened. */
static char *ini_next_line(char *out, int size, void *stream)
{
	ini_ctx *x = stream;
	if (x->pos >= x->len)
		return NULL;
	if (size < 32) {
		ini_fail(x, x->line + 1, CORRAL_ECONFIG,
		         "inih's line buffer is too small (%d bytes)", size);
		return NULL;
	}
	const char *s = x->buf + x->pos;
	size_t avail = x->len - x->pos;
	const char *nl = memchr(s, '\n', avail);
	size_t n = nl ? (size_t)(nl - s) : avail;
	x->pos += nl ? n + 1 : n;
	x->line++;
	if (memchr(s, '\0', n)) {
		ini_fail(x, x->line, CORRAL_ECONFIG, "NUL byte in line");
		out[0] = '\n';
		out[1] = '\0';
		return out;
	}
	if (n + 2 <= (size_t)size) {
		memcpy(out, s, n);
		out[n] = '\n';
		out[n + 1] = '\0';
		return out;
	}
	shorten_line(x, s, n, out, size);
	return out;
}

/* The real value of a shortened line, trimmed as inih trims one:
 * malloc()ed, or NULL. */
static char *long_value(const ini_ctx *x, const char *standin)
{
	const char *v = x->rest;
	size_t n = x->rest_len;
	if (x->sep >= 0 && strcmp(standin, "x") == 0) {
		/* key = value: the value after the separator, up to an
		 * inline comment. */
		v += x->sep + 1;
		n -= (size_t)x->sep + 1;
		n = span_find(v, n, NULL);
	}
	/* else a continuation line: all of it is the value (inih 55 keeps
	 * a " ;" in a continuation). */
	while (n && isspace((unsigned char)*v)) {
		v++;
		n--;
	}
	while (n && isspace((unsigned char)v[n - 1]))
		n--;
	return strndup(v, n);
}

static int on_ini_entry(void *user, const char *section, const char *key,
                        const char *value)
{
	ini_ctx *x = user;
	char msg[512];
	char *owned = NULL;
	int rc = 0;
	if (x->err_line)
		return 1; /* keep only the first error */
	if (x->long_line == x->line) {
		if (!(owned = long_value(x, value))) {
			ini_fail(x, x->line, CORRAL_ENOMEM, "out of memory");
			return 0;
		}
		value = owned;
	}
	if (section[0] == '\0' || strcmp(section, "corral") == 0) {
		rc = config_set(x->c, key, value, msg, sizeof msg);
		if (rc == CORRAL_ENOMEM)
			snprintf(msg, sizeof msg, "out of memory");
	} else if (strcmp(section, "plugin") == 0) {
		if (!key[0]) {
			snprintf(msg, sizeof msg, "empty key");
			rc = CORRAL_ECONFIG;
		} else if (config_add_setting(x->c, key, value) != 0) {
			snprintf(msg, sizeof msg, "out of memory");
			rc = CORRAL_ENOMEM;
		}
	} else {
		char shown[ECHO_MAX + 4];
		echo_plain(shown, section, strlen(section));
		snprintf(msg, sizeof msg,
		         "unknown section [%s] (expected [corral] or [plugin])",
		         shown);
		rc = CORRAL_ECONFIG;
	}
	free(owned);
	if (rc) {
		ini_fail(x, x->line, rc, "%s", msg);
		return 0;
	}
	return 1;
}

int config_load_buffer(config *c, const char *name, const char *buf,
                       size_t len, char *err, size_t errlen)
{
	ini_ctx x = {.c = c, .buf = buf, .len = len};
	int rv = ini_parse_stream(ini_next_line, &x, on_ini_entry, &x);
	if (rv == 0 && !x.err_line)
		return 0;
	if (x.err_line && (rv <= 0 || x.err_line <= rv)) {
		snprintf(err, errlen, "%s:%d: %s", name, x.err_line, x.msg);
		return x.err_code;
	}
	if (rv > 0)
		snprintf(err, errlen, "%s:%d: syntax error (expected "
		         "key = value or [section])", name, rv);
	else
		snprintf(err, errlen, "%s: out of memory", name);
	return rv > 0 ? CORRAL_ECONFIG : CORRAL_ENOMEM;
}

int config_load(config *c, const char *path, char *err, size_t errlen)
{
	FILE *f = fopen(path, "re");
	if (!f) {
		snprintf(err, errlen, "%s: cannot open: %s", path,
		         strerror(errno));
		return CORRAL_ECONFIG;
	}
	char *buf = malloc(CONFIG_MAX_FILE + 1);
	if (!buf) {
		fclose(f);
		snprintf(err, errlen, "%s: out of memory", path);
		return CORRAL_ENOMEM;
	}
	size_t n = fread(buf, 1, CONFIG_MAX_FILE + 1, f);
	int bad = ferror(f), rc;
	fclose(f);
	if (bad) {
		snprintf(err, errlen, "%s: cannot read", path);
		rc = CORRAL_ECONFIG;
	} else if (n > CONFIG_MAX_FILE) {
		snprintf(err, errlen, "%s: larger than %u bytes", path,
		         CONFIG_MAX_FILE);
		rc = CORRAL_ECONFIG;
	} else {
		rc = config_load_buffer(c, path, buf, n, err, errlen);
	}
	free(buf);
	return rc;
}
