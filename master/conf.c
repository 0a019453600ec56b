/* conf.c - see conf.h.  inih does the INI syntax; it reports the line of
 * the first error but does not tell the handler which line it is on, so we
 * feed it through a reader that counts lines.
 */
#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "corral_base.h"
#include "common/duration.h"
#include "master/conf.h"
#include "master/listen.h"

static int parse_uint(const char *s, unsigned lo, unsigned hi, unsigned *out)
{
	char *end;
	if (!s || !isdigit((unsigned char)*s))
		return -1;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (errno || *end || v < lo || v > hi)
		return -1;
	*out = (unsigned)v;
	return 0;
}

void config_defaults(config *c)
{
	char err[64];
	memset(c, 0, sizeof *c);
#define X(key, syntax, def, help) config_set(c, #key, def, err, sizeof err);
	CONFIG_KEYS(X)
#undef X
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

static int set_path(char *dst, size_t cap, const char *v)
{
	if (strlen(v) >= cap)
		return -1;
	memcpy(dst, v, strlen(v) + 1);
	return 0;
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

int config_set(config *c, const char *key, const char *v, char *err,
               size_t errlen)
{
	uint64_t *dur = NULL;
	const char *expect = NULL;

	if (strcmp(key, "name") == 0) {
		if (!valid_name(v))
			expect = "1-63 of [A-Za-z0-9._-]";
		else
			snprintf(c->name, sizeof c->name, "%s", v);
	} else if (strcmp(key, "workers") == 0) {
		if (strcmp(v, "auto") == 0)
			c->workers = 0;
		else if (parse_uint(v, 1, 1024, &c->workers))
			expect = "auto or 1..1024";
	} else if (strcmp(key, "rundir") == 0) {
		if (set_path(c->rundir, sizeof c->rundir, v))
			expect = "a shorter path";
	} else if (strcmp(key, "plugin") == 0) {
		if (set_path(c->plugin, sizeof c->plugin, v))
			expect = "a shorter path";
	} else if (strcmp(key, "restart") == 0) {
		if (strcmp(v, "always") == 0)
			c->restart = RESTART_ALWAYS;
		else if (strcmp(v, "on-failure") == 0)
			c->restart = RESTART_ON_FAILURE;
		else if (strcmp(v, "never") == 0)
			c->restart = RESTART_NEVER;
		else
			expect = "always, on-failure or never";
	} else if (strcmp(key, "threads") == 0) {
		if (strcmp(v, "auto") == 0)
			c->threads = 0;
		else if (parse_uint(v, 1, 256, &c->threads))
			expect = "auto or 1..256";
	} else if (strcmp(key, "max_queue") == 0) {
		if (parse_uint(v, 1, 16777216, &c->max_queue))
			expect = "1..16777216";
	} else if (strcmp(key, "aging") == 0) {
		dur = &c->aging_ms;
	} else if (strcmp(key, "pool_drain") == 0) {
		if (strcmp(v, "run") == 0)
			c->pool_drain_cancel = 0;
		else if (strcmp(v, "cancel") == 0)
			c->pool_drain_cancel = 1;
		else
			expect = "run or cancel";
	} else if (strcmp(key, "jobs") == 0) {
		if (set_path(c->jobs_url, sizeof c->jobs_url, v))
			expect = "a shorter URL";
		else if (*v && !strstr(v, "://"))
			expect = "an nng URL such as tcp://127.0.0.1:5555";
	} else if (strcmp(key, "max_inflight") == 0) {
		if (parse_uint(v, 1, 100000, &c->max_inflight))
			expect = "1..100000";
	} else if (strcmp(key, "queue_limit") == 0) {
		if (parse_uint(v, 1, 10000000, &c->queue_limit))
			expect = "1..10000000";
	} else if (strcmp(key, "job_timeout") == 0) {
		dur = &c->job_timeout_ms;
	} else if (strcmp(key, "max_attempts") == 0) {
		if (parse_uint(v, 1, 100, &c->max_attempts))
			expect = "1..100";
	} else if (strcmp(key, "max_lag") == 0) {
		dur = &c->max_lag_ms;
	} else if (strcmp(key, "standby") == 0) {
		if (parse_uint(v, 0, 64, &c->standby))
			expect = "0..64";
	} else if (strcmp(key, "max_restarts") == 0) {
		if (parse_uint(v, 0, 1000, &c->max_restarts))
			expect = "0..1000";
	} else if (strcmp(key, "shutdown_timeout") == 0) {
		dur = &c->shutdown_timeout_ms;
	} else if (strcmp(key, "restart_delay") == 0) {
		dur = &c->restart_delay_ms;
	} else if (strcmp(key, "restart_delay_max") == 0) {
		dur = &c->restart_delay_max_ms;
	} else if (strcmp(key, "min_uptime") == 0) {
		dur = &c->min_uptime_ms;
	} else if (strcmp(key, "restart_window") == 0) {
		dur = &c->restart_window_ms;
	} else if (strcmp(key, "heartbeat_timeout") == 0) {
		dur = &c->heartbeat_timeout_ms;
	} else if (strcmp(key, "health_interval") == 0) {
		dur = &c->health_interval_ms;
	} else if (strcmp(key, "start_timeout") == 0) {
		dur = &c->start_timeout_ms;
	} else if (strcmp(key, "listen") == 0) {
		return listen_add_spec(&c->listen, &c->nlisten, v, err, errlen);
	} else if (strcmp(key, "user") == 0 || strcmp(key, "group") == 0) {
		if (set_path(key[0] == 'u' ? c->user : c->group, sizeof c->user,
		             v))
			expect = "a name of at most 63 bytes";
	} else if (strcmp(key, "http") == 0) {
		if (*v && listen_single("http", v, NULL, err, errlen))
			expect = "HOST:PORT ([IPV6]:PORT, *:PORT for every "
			         "address), tcp://HOST:PORT or unix:/PATH";
		else if (set_path(c->http, sizeof c->http, v))
			expect = "a shorter address";
	} else if (strcmp(key, "ready_min") == 0) {
		if (strcmp(v, "all") == 0)
			c->ready_min = 0;
		else if (parse_uint(v, 1, 1024, &c->ready_min))
			expect = "all or 1..1024";
	} else {
		snprintf(err, errlen, "unknown key '%s'", key);
		return CORRAL_ECONFIG;
	}
	if (dur && parse_duration_ms(v, dur) != 0)
		expect = "a duration like 500ms, 10s, 2m (bare numbers are "
		         "seconds)";
	else if (dur && (strcmp(key, "health_interval") == 0 ||
	                 strcmp(key, "heartbeat_timeout") == 0 ||
	                 strcmp(key, "start_timeout") == 0 ||
	                 strcmp(key, "job_timeout") == 0) && *dur == 0)
		expect = "a duration above 0";
	if (expect) {
		snprintf(err, errlen, "bad value '%s' for %s: expected %s", v,
		         key, expect);
		return CORRAL_ECONFIG;
	}
	return 0;
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

typedef struct ini_ctx {
	config *c;
	FILE *f;
	int line;     /* line inih is on, counted by ini_read */
	int err_line; /* first line our handler rejected, 0 = none */
	char *err;
	size_t errlen;
} ini_ctx;

static char *ini_read(char *buf, int size, void *stream)
{
	ini_ctx *x = stream;
	char *r = fgets(buf, size, x->f);
	if (r)
		x->line++;
	return r;
}

static int on_ini_entry(void *user, const char *section, const char *key,
                       const char *value)
{
	ini_ctx *x = user;
	char msg[256];
	int rc = 0;
	if (x->err_line)
		return 1; /* keep only the first error */
	if (section[0] == '\0' || strcmp(section, "corral") == 0) {
		rc = config_set(x->c, key, value, msg, sizeof msg);
	} else if (strcmp(section, "plugin") == 0) {
		if (!key[0]) {
			snprintf(msg, sizeof msg, "empty key");
			rc = CORRAL_ECONFIG;
		} else if (config_add_setting(x->c, key, value) != 0) {
			snprintf(msg, sizeof msg, "out of memory");
			rc = CORRAL_ENOMEM;
		}
	} else {
		snprintf(msg, sizeof msg,
		         "unknown section [%s] (expected [corral] or [plugin])",
		         section);
		rc = CORRAL_ECONFIG;
	}
	if (rc) {
		x->err_line = x->line;
		snprintf(x->err, x->errlen, "%s", msg);
		return 0;
	}
	return 1;
}

int config_load(config *c, const char *path, char *err, size_t errlen)
{
	char msg[256] = "";
	ini_ctx x = {.c = c, .err = msg, .errlen = sizeof msg};
	x.f = fopen(path, "re");
	if (!x.f) {
		snprintf(err, errlen, "%s: cannot open: %s", path,
		         strerror(errno));
		return CORRAL_ECONFIG;
	}
	int rv = ini_parse_stream(ini_read, &x, on_ini_entry, &x);
	fclose(x.f);
	if (rv == 0)
		return 0;
	if (x.err_line && (rv < 0 || x.err_line <= rv))
		snprintf(err, errlen, "%s:%d: %s", path, x.err_line, msg);
	else if (rv > 0)
		snprintf(err, errlen, "%s:%d: syntax error (expected "
		         "key = value or [section])", path, rv);
	else
		snprintf(err, errlen, "%s: cannot read", path);
	return CORRAL_ECONFIG;
}
