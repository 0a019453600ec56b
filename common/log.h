/*
 * log.h - one line per event on stderr, written with a single write() so
 * that lines from several processes sharing the stream never interleave.
 */
#ifndef COMMON_LOG_H
#define COMMON_LOG_H

#include <stdarg.h>

/* Sets the "corral" in "12:00:00.123 corral: ...". Not copied. */
void log_set_prog(const char *prog);
/* Writes "HH:MM:SS.mmm PROG: message\n" to stderr. */
void log_msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_vmsg(const char *fmt, va_list ap);
/* Writes "PROG: message\n" without a timestamp (usage and fatal errors). */
void log_plain(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
