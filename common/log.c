/* log.c - see log.h. */
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"

static const char *log_prog = "corral";

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

void log_vmsg(const char *fmt, va_list ap)
{
	char buf[2048];
	struct timeval tv;
	struct tm tm;
	gettimeofday(&tv, NULL);
	localtime_r(&tv.tv_sec, &tm);
	int n = snprintf(buf, sizeof buf, "%02d:%02d:%02d.%03d %s: ",
	                 tm.tm_hour, tm.tm_min, tm.tm_sec,
	                 (int)(tv.tv_usec / 1000), log_prog);
	if (n < 0)
		return;
	int m = vsnprintf(buf + n, sizeof buf - (size_t)n, fmt, ap);
	if (m < 0)
		return;
	log_write(buf, (size_t)n + (size_t)m, sizeof buf);
}

void log_msg(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_vmsg(fmt, ap);
	va_end(ap);
}

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
