/* log.c - see log.h. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"

#define LINE_CAP 2048

static const char *log_prog = "corral";
static log_level log_min = LOG_INFO;
static int log_stamp = 1;
static log_sink_fn log_sink;
static void *log_sink_arg;
static const char *const level_names[] = {"error", "warn", "info", "debug"};
static const char *const level_prefix[] = {"error: ", "warning: ", "",
                                           "debug: "};

void log_set_timestamps(int on)
{
	log_stamp = on;
}

void log_set_level(log_level lv)
{
	log_min = lv;
}

log_level log_get_level(void)
{
	return log_min;
}

int log_level_parse(const char *s, log_level *lv)
{
	for (int i = 0; i <= LOG_DEBUG; i++)
		if (strcmp(s, level_names[i]) == 0) {
			*lv = (log_level)i;
			return 0;
		}
	return -1;
}

const char *log_level_name(int lv)
{
	return lv >= 0 && lv <= LOG_DEBUG ? level_names[lv] : "info";
}

void log_set_prog(const char *prog)
{
	log_prog = prog;
}

void log_set_sink(log_sink_fn fn, void *arg)
{
	log_sink = fn;
	log_sink_arg = arg;
}

int log_write_all(int fd, const char *buf, size_t len)
{
	size_t off = 0;
	while (off < len) {
		ssize_t w = write(fd, buf + off, len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -1;
		off += (size_t)w;
	}
	return 0;
}

/* buf holds n bytes of line (maybe more than fit: cut to cap), the
 * message from msg_off on.  Hands it to the sink, else to stderr. */
static void log_emit(log_rec *r, char *buf, size_t n, size_t cap,
                     size_t msg_off)
{
	if (n > cap - 2)
		n = cap - 2; /* room for '\n' and NUL */
	/* Replace embedded newlines so one call stays one line (and NULs,
	 * which a relayed line may hold, so the message stays whole). */
	for (size_t i = 0; i < n; i++)
		if (buf[i] == '\n' || buf[i] == '\r' || buf[i] == '\0')
			buf[i] = ' ';
	buf[n] = '\0';
	r->prog = log_prog;
	r->line = buf;
	r->len = n;
	r->msg = buf + (msg_off < n ? msg_off : n);
	if (log_sink && log_sink(log_sink_arg, r))
		return;
	buf[n] = '\n';
	(void)log_write_all(STDERR_FILENO, buf, n + 1); /* nowhere left to
	                                                 * report a failure */
}

/* "HH:MM:SS.mmm PROG: " (or "PROG: " without timestamps) into buf; the
 * record gets the time.  Returns the length, or -1. */
static int log_head(char *buf, size_t cap, int stamp, log_rec *r)
{
	struct timeval tv;
	struct tm tm;
	gettimeofday(&tv, NULL);
	r->t_ms = (uint64_t)tv.tv_sec * 1000u + (uint64_t)tv.tv_usec / 1000u;
	if (!stamp)
		return snprintf(buf, cap, "%s: ", log_prog);
	localtime_r(&tv.tv_sec, &tm);
	return snprintf(buf, cap, "%02d:%02d:%02d.%03d %s: ", tm.tm_hour,
	                tm.tm_min, tm.tm_sec, (int)(tv.tv_usec / 1000),
	                log_prog);
}

void log_vmsg(log_level lv, const char *fmt, va_list ap)
{
	char buf[LINE_CAP];
	if (lv > log_min)
		return;
	log_rec r = {.level = lv, .slot = -1};
	int n = log_head(buf, sizeof buf, log_stamp, &r);
	if (n < 0)
		return;
	int p = snprintf(buf + n, sizeof buf - (size_t)n, "%s",
	                 level_prefix[lv]);
	if (p < 0)
		return;
	n += p;
	int m = vsnprintf(buf + n, sizeof buf - (size_t)n, fmt, ap);
	if (m < 0)
		return;
	log_emit(&r, buf, (size_t)n + (size_t)m, sizeof buf, (size_t)n);
}

#define LOG_AT(name, lv)                                                      \
	void name(const char *fmt, ...)                                       \
	{                                                                     \
		va_list ap;                                                   \
		va_start(ap, fmt);                                            \
		log_vmsg(lv, fmt, ap);                                        \
		va_end(ap);                                                   \
	}
LOG_AT(log_msg, LOG_INFO)
LOG_AT(log_error, LOG_ERROR)
LOG_AT(log_warn, LOG_WARN)
LOG_AT(log_debug, LOG_DEBUG)

void log_plain(const char *fmt, ...)
{
	char buf[LINE_CAP];
	va_list ap;
	log_rec r = {.level = LOG_ERROR, .slot = -1, .plain = 1};
	int n = log_head(buf, sizeof buf, 0, &r);
	if (n < 0)
		return;
	va_start(ap, fmt);
	int m = vsnprintf(buf + n, sizeof buf - (size_t)n, fmt, ap);
	va_end(ap);
	if (m < 0)
		return;
	log_emit(&r, buf, (size_t)n + (size_t)m, sizeof buf, (size_t)n);
}

void log_relay(log_level level, int slot, int64_t pid, const char *line,
               size_t len)
{
	char buf[LINE_CAP + 64];
	if (LOG_INFO > log_min)
		return;
	log_rec r = {.level = level, .relayed = 1, .slot = slot < 0 ? -1 : slot,
	             .pid = pid};
	int n = log_head(buf, sizeof buf, log_stamp, &r);
	if (n < 0)
		return;
	int p = slot >= 0 ? snprintf(buf + n, sizeof buf - (size_t)n,
	                             "slot %d pid %" PRId64 ": ", slot, pid)
	                  : snprintf(buf + n, sizeof buf - (size_t)n,
	                             "standby pid %" PRId64 ": ", pid);
	if (p < 0)
		return;
	n += p;
	size_t room = sizeof buf - (size_t)n - 2;
	if (len > room)
		len = room;
	memcpy(buf + n, line, len);
	log_emit(&r, buf, (size_t)n + len, sizeof buf, (size_t)n);
}
