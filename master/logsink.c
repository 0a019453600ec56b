/*
 * logsink.c - see logsink.h.
 *
 * A line from the sink hook goes first into the ring, unless the sink is
 * already running on this thread (the ring's notify answers readers, and
 * answering may log: that line is written out but not kept), then to the
 * output.  The output descriptor never changes number: a reopen dup3()s
 * the new file onto it, so a line is never written to a closed one.
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/utf8.h"
#include "corral_base.h"
#include "master/logsink.h"

typedef struct logsink {
	logring *ring;
	int fd;              /* log_file; -1: stderr */
	char path[PATH_MAX]; /* "" without log_file */
	int json;
	pthread_t owner;     /* the thread whose lines the ring takes */
	int inside;          /* the owner is in the sink */
} logsink;

static logsink the_sink = {.fd = -1};
static int sink_open;

static int open_file(const char *path)
{
	return open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
}

/* "2024-05-01T12:00:00.123Z" */
static void iso_time(uint64_t t_ms, char *buf, size_t len)
{
	time_t t = (time_t)(t_ms / 1000);
	struct tm tm;
	gmtime_r(&t, &tm);
	snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
	         tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
	         tm.tm_min, tm.tm_sec, (int)(t_ms % 1000));
}

/* One JSON object and '\n' to fd.  0 or -1. */
static int write_json(int fd, const log_rec *r)
{
	char when[64];
	size_t n = strlen(r->msg);
	char *msg = malloc(3 * n + 1);
	if (!msg)
		return -1;
	utf8_repair(r->msg, n, msg);
	iso_time(r->t_ms, when, sizeof when);
	json_t *o = json_pack("{s:s, s:s, s:s, s:o, s:I, s:s, s:s}", "time",
	                      when, "level", log_level_name(r->level), "prog",
	                      r->prog, "slot",
	                      r->relayed && r->slot >= 0 ? json_integer(r->slot)
	                                                 : json_null(),
	                      "pid",
	                      (json_int_t)(r->relayed ? r->pid : getpid()),
	                      "source", r->relayed ? "worker" : "supervisor",
	                      "msg", msg);
	free(msg);
	char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	if (!text)
		return -1;
	size_t len = strlen(text);
	text[len] = '\n'; /* over the NUL: written by length */
	int rc = log_write_all(fd, text, len + 1);
	free(text);
	return rc;
}

static int sink(void *arg, const log_rec *r)
{
	logsink *s = arg;
	if (!s->inside && pthread_equal(pthread_self(), s->owner)) {
		s->inside = 1;
		(void)logring_add(s->ring, r->relayed ? r->slot : -1,
		                  r->relayed ? r->pid : 0, r->level, r->t_ms,
		                  r->msg, strlen(r->msg));
		s->inside = 0;
	}
	if (s->json) {
		(void)write_json(s->fd >= 0 ? s->fd : STDERR_FILENO, r);
		/* A person at the terminal still reads plain lines. */
		return !(r->plain && s->fd >= 0);
	}
	if (s->fd < 0)
		return 0; /* stderr, as without a sink */
	char buf[4096];
	size_t n = r->len < sizeof buf - 1 ? r->len : sizeof buf - 1;
	memcpy(buf, r->line, n);
	buf[n] = '\n';
	(void)log_write_all(s->fd, buf, n + 1);
	return !r->plain;
}

int logsink_open(const char *path, int json, char *err, size_t errlen)
{
	logsink *s = &the_sink;
	if (sink_open)
		logsink_close();
	memset(s, 0, sizeof *s);
	s->fd = -1;
	s->json = json;
	s->owner = pthread_self();
	if (path && *path) {
		if (strlen(path) >= sizeof s->path) {
			snprintf(err, errlen, "log file %s: path too long", path);
			return CORRAL_ECONFIG;
		}
		snprintf(s->path, sizeof s->path, "%s", path);
		if ((s->fd = open_file(path)) < 0) {
			snprintf(err, errlen, "cannot open log file %s: %s", path,
			         strerror(errno));
			return CORRAL_ESYS;
		}
	}
	int rc = logring_new(&s->ring, LOGRING_LINES, LOGRING_BYTES);
	if (rc) {
		if (s->fd >= 0)
			close(s->fd);
		s->fd = -1;
		snprintf(err, errlen, "out of memory for the log ring");
		return rc;
	}
	sink_open = 1;
	log_set_sink(sink, s);
	return 0;
}

void logsink_close(void)
{
	logsink *s = &the_sink;
	if (!sink_open)
		return;
	log_set_sink(NULL, NULL);
	sink_open = 0;
	if (s->fd >= 0)
		close(s->fd);
	s->fd = -1;
	logring_free(s->ring);
	s->ring = NULL;
}

void log_reopen(void)
{
	logsink *s = &the_sink;
	if (!sink_open || s->fd < 0) {
		log_msg("log: no log_file (logging to stderr): nothing to "
		        "reopen");
		return;
	}
	log_msg("log: reopening log file %s", s->path);
	int fd = open_file(s->path);
	if (fd < 0) {
		log_error("cannot reopen log file %s: %s; still writing to the "
		          "old one", s->path, strerror(errno));
		return;
	}
	if (fd != s->fd) {
		if (dup3(fd, s->fd, O_CLOEXEC) < 0) {
			log_error("cannot reopen log file %s: %s; still writing "
			          "to the old one", s->path, strerror(errno));
			close(fd);
			return;
		}
		close(fd);
	}
	log_msg("log: log file %s reopened", s->path);
}

logring *logsink_ring(void)
{
	return sink_open ? the_sink.ring : NULL;
}

logring *logsink_ring_cb(void *ctx)
{
	(void)ctx;
	return logsink_ring();
}
