/* events.c - see events.h. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "corral_base.h"
#include "master/events.h"

int evlog_init(evlog *l, uint32_t cap)
{
	memset(l, 0, sizeof *l);
	l->ring = calloc(cap, sizeof *l->ring);
	if (!l->ring)
		return CORRAL_ENOMEM;
	l->cap = cap;
	return 0;
}

void evlog_free(evlog *l)
{
	free(l->ring);
	l->ring = NULL;
}

static void evlog_vadd(evlog *l, const char *kind, int32_t slot,
                       int64_t pid, uint32_t gen, const char *from,
                       const char *to, const ipc_decision *d,
                       const char *fmt, va_list ap)
{
	struct timeval tv;
	gettimeofday(&tv, NULL);
	ipc_event *e = &l->ring[l->last % l->cap];
	memset(e, 0, sizeof *e);
	e->seq = ++l->last;
	e->t_ms = (uint64_t)tv.tv_sec * 1000u + (uint64_t)tv.tv_usec / 1000u;
	snprintf(e->kind, sizeof e->kind, "%s", kind);
	e->slot = slot;
	e->pid = pid;
	e->gen = gen;
	snprintf(e->from, sizeof e->from, "%s", from ? from : "");
	snprintf(e->to, sizeof e->to, "%s", to ? to : "");
	vsnprintf(e->why, sizeof e->why, fmt, ap);
	if (d) {
		e->has_decision = 1;
		e->dec = *d;
	}
	if (l->on_add)
		l->on_add(l->arg);
}

void evlog_add(evlog *l, const char *kind, int32_t slot, int64_t pid,
               uint32_t gen, const char *from, const char *to,
               const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	evlog_vadd(l, kind, slot, pid, gen, from, to, NULL, fmt, ap);
	va_end(ap);
}

void evlog_add_decision(evlog *l, int32_t slot, int64_t pid, uint32_t gen,
                        const char *from, const char *to,
                        const ipc_decision *d, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	evlog_vadd(l, "decision", slot, pid, gen, from, to, d, fmt, ap);
	va_end(ap);
}

const ipc_event *evlog_latest(const evlog *l, const char *kind, int32_t slot,
                              uint32_t look)
{
	uint64_t first = evlog_first(l);
	for (uint64_t seq = l->last; seq >= first && seq > 0 && look--; seq--) {
		const ipc_event *e = &l->ring[(seq - 1) % l->cap];
		if (e->slot == slot && strcmp(e->kind, kind) == 0)
			return e;
	}
	return NULL;
}

uint64_t evlog_first(const evlog *l)
{
	return l->last > l->cap ? l->last - l->cap + 1 : 1;
}

uint32_t evlog_copy(const evlog *l, uint64_t since, ipc_event *out,
                    uint32_t max)
{
	uint64_t seq = since + 1, first = evlog_first(l);
	if (seq < first)
		seq = first;
	uint32_t n = 0;
	for (; seq <= l->last && n < max; seq++)
		out[n++] = l->ring[(seq - 1) % l->cap];
	return n;
}
