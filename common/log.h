/*
 * log.h - one line per event on stderr, written with a single write() so
 * that lines from several processes sharing the stream never interleave.
 *
 * A program may register one sink that sees every line that passes the
 * level filter, with its parts (level, time, the slot and pid of a line
 * relayed from a worker, the message alone): the supervisor's sink keeps
 * them in its log ring and writes them to its log file, as text or JSON
 * (master/logsink.h).  log.c itself knows nothing of either.
 */
#ifndef COMMON_LOG_H
#define COMMON_LOG_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

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
/* "error", "warn", "info", "debug"; "info" for anything else. */
const char *log_level_name(int lv);

/* Writes "HH:MM:SS.mmm PROG: message\n" to stderr (info level), and the
 * same with "error: ", "warning: " or "debug: " before the message. */
void log_msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_vmsg(log_level lv, const char *fmt, va_list ap);
/* Writes "PROG: message\n" without a timestamp (usage and fatal errors). */
void log_plain(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * A line another process wrote (a worker's stdout or stderr), relayed as
 * "HH:MM:SS.mmm PROG: slot N pid P: LINE" (slot >= 0) or "... standby pid
 * P: LINE".  It passes the filter as an info line does; level is what the
 * sink is told the line is (the worker's own "warning: " and the like).
 * At most about 2000 bytes of line are kept.
 */
void log_relay(log_level level, int slot, int64_t pid, const char *line,
               size_t len);

/* A line as a sink sees it; every pointer is valid during the call only. */
typedef struct log_rec {
	log_level level;
	uint64_t t_ms;    /* wall clock, ms since the epoch */
	const char *prog;
	int relayed;      /* written by another process (log_relay) */
	int slot;         /* relayed: the worker's slot, -1 for a standby */
	int64_t pid;      /* relayed: the process that wrote it; else 0 */
	const char *msg;  /* the message alone (no time, prog, level) */
	const char *line; /* the line as stderr shows it, without '\n' */
	size_t len;       /* strlen(line) */
	int plain;        /* from log_plain: meant for the person at the
	                   * terminal (usage, fatal errors) */
} log_rec;

/* Returns 1 when it wrote the line where it belongs (log.c then writes
 * nothing), 0 to have log.c write it to stderr as without a sink.  Called
 * in the thread that logs; it must not block for long. */
typedef int (*log_sink_fn)(void *arg, const log_rec *r);
/* Registers the sink (NULL: none). */
void log_set_sink(log_sink_fn fn, void *arg);

/* Writes len bytes to fd, all of them (retrying short writes and EINTR).
 * 0, or -1 with errno. */
int log_write_all(int fd, const char *buf, size_t len);

#endif
