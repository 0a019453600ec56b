/* log.c - see log.h. */
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"

static const char *log_prog = "corral";
static log_level log_min = LOG_INFO;
static int log_stamp = 1;
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

void log_set_prog(const char *prog)
{
	log_prog = prog;
}

static void log_write(char *buf, size_t n, size_t cap)
{
	if (n >= cap)
		n = cap - 1;
	/* Replace embedded newlines so one call stays one line. */
	for (size_t i = 0; i < n; i++)
		if (buf[i] == '\n' || buf[i] == '\r')
			buf[i] = ' ';
	buf[n++] = '\n';
	ssize_t off = 0;
	while ((size_t)off < n) {
		ssize_t w = write(STDERR_FILENO, buf + off, n - (size_t)off);
		if (w < 0)
			return; /* nowhere left to report it */
		off += w;
	}
}

void log_vmsg(log_level lv, const char *fmt, va_list ap)
{
	char buf[2048];
	if (lv > log_min)
		return;
	struct timeval tv;
	struct tm tm;
	gettimeofday(&tv, NULL);
	localtime_r(&tv.tv_sec, &tm);
	int n = log_stamp ? snprintf(buf, sizeof buf, "%02d:%02d:%02d.%03d %s: %s",
	                             tm.tm_hour, tm.tm_min, tm.tm_sec,
	                             (int)(tv.tv_usec / 1000), log_prog,
	                             level_prefix[lv])
	                  : snprintf(buf, sizeof buf, "%s: %s", log_prog,
	                             level_prefix[lv]);
	if (n < 0)
		return;
	int m = vsnprintf(buf + n, sizeof buf - (size_t)n, fmt, ap);
	if (m < 0)
		return;
	log_write(buf, (size_t)n + (size_t)m, sizeof buf);
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
	char buf[2048];
	va_list ap;
	int n = snprintf(buf, sizeof buf, "%s: ", log_prog);
	if (n < 0)
		return;
	va_start(ap, fmt);
	int m = vsnprintf(buf + n, sizeof buf - (size_t)n, fmt, ap);
	va_end(ap);
	if (m < 0)
		return;
	log_write(buf, (size_t)n + (size_t)m, sizeof buf);
}
