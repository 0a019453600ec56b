/*
 * log.h - one line per event on stderr, written with a single write() so
 * that lines from several processes sharing the stream never interleave.
 */
#ifndef COMMON_LOG_H
#define COMMON_LOG_H

#include <stdarg.h>

/* Sets the "corral" in "12:00:00.123 corral: ...". Not copied. */
void log_set_prog(const char *prog);
typedef enum log_level {
	LOG_ERROR = 0,
	LOG_WARN = 1,
	LOG_INFO = 2,
	LOG_DEBUG = 3,
} log_level;

/* Off: no "HH:MM:SS.mmm " (a worker's lines are stamped by the
 * supervisor that reads them). */
void log_set_timestamps(int on);
/* Lines below this level are dropped (default LOG_INFO). */
void log_set_level(log_level lv);
log_level log_get_level(void);
/* "debug", "info", "warn", "error" -> 0 and *lv; -1 if unknown. */
int log_level_parse(const char *s, log_level *lv);

/* Writes "HH:MM:SS.mmm PROG: message\n" to stderr (info level), and the
 * same with "error: ", "warning: " or "debug: " before the message. */
void log_msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_vmsg(log_level lv, const char *fmt, va_list ap);
/* Writes "PROG: message\n" without a timestamp (usage and fatal errors). */
void log_plain(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
