/*
 * logring.c - see logring.h.
 *
 * A source is a circular array of pointers to lines, grown by doubling up
 * to max_lines; each line is one allocation (its header and its text).
 * Sequence numbers rise within a source, so the first line after a cursor
 * is found by bisection, and reading every source in order is a merge of
 * those runs: at most max lines per request, each the smallest head among
 * the sources.
 */
#include <stdlib.h>
#include <string.h>

#include "corral_base.h"
#include "master/logring.h"

typedef struct rline {
	uint64_t seq, t_ms;
	int64_t pid;
	int32_t slot;
	uint32_t len;
	uint8_t level;
	char msg[];
} rline;

typedef struct source {
	rline **v;     /* cap entries, circular; v[head] the oldest */
	uint32_t cap, head, n;
	size_t bytes;  /* text held */
} source;

struct logring {
	source *src;   /* [0]: the supervisor and standbys; [k + 1]: slot k */
	uint32_t nsrc;
	uint32_t max_lines;
	size_t max_bytes;
	uint64_t last;
	void (*notify)(void *arg);
	void *arg;
};

int logring_new(logring **out, uint32_t max_lines, size_t max_bytes)
{
	logring *r = calloc(1, sizeof *r);
	if (!r)
		return CORRAL_ENOMEM;
	r->max_lines = max_lines ? max_lines : 1;
	r->max_bytes = max_bytes;
	*out = r;
	return 0;
}

void logring_free(logring *r)
{
	if (!r)
		return;
	for (uint32_t i = 0; i < r->nsrc; i++) {
		source *s = &r->src[i];
		for (uint32_t k = 0; k < s->n; k++)
			free(s->v[(s->head + k) % s->cap]);
		free(s->v);
	}
	free(r->src);
	free(r);
}

void logring_set_notify(logring *r, void (*fn)(void *arg), void *arg)
{
	r->notify = fn;
	r->arg = arg;
}

uint64_t logring_last(const logring *r)
{
	return r->last;
}

static uint32_t src_index(int slot)
{
	return slot >= 0 && slot < LOGRING_MAX_SLOTS ? (uint32_t)slot + 1 : 0;
}

static const rline *at(const source *s, uint32_t i)
{
	return s->v[(s->head + i) % s->cap];
}

/* The index of the first line with seq > since (n if none). */
static uint32_t first_after(const source *s, uint64_t since)
{
	uint32_t lo = 0, hi = s->n;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (at(s, mid)->seq > since)
			hi = mid;
		else
			lo = mid + 1;
	}
	return lo;
}

static void drop_oldest(source *s)
{
	rline *l = s->v[s->head];
	s->bytes -= l->len;
	free(l);
	s->head = (s->head + 1) % s->cap;
	s->n--;
}

static int grow(source *s, uint32_t max_lines)
{
	uint32_t nc = s->cap ? s->cap * 2 : 16;
	if (nc > max_lines)
		nc = max_lines;
	rline **nv = malloc(nc * sizeof *nv);
	if (!nv)
		return CORRAL_ENOMEM;
	for (uint32_t k = 0; k < s->n; k++)
		nv[k] = s->v[(s->head + k) % s->cap];
	free(s->v);
	s->v = nv;
	s->cap = nc;
	s->head = 0;
	return 0;
}

int logring_add(logring *r, int slot, int64_t pid, unsigned level,
                uint64_t t_ms, const char *msg, size_t len)
{
	uint32_t i = src_index(slot);
	if (i >= r->nsrc) {
		source *ns = realloc(r->src, (i + 1) * sizeof *ns);
		if (!ns)
			return CORRAL_ENOMEM;
		memset(ns + r->nsrc, 0, (i + 1 - r->nsrc) * sizeof *ns);
		r->src = ns;
		r->nsrc = i + 1;
	}
	source *s = &r->src[i];
	if (len > IPC_MAX_LOGLINE)
		len = IPC_MAX_LOGLINE;
	while (s->n && (s->n >= r->max_lines || s->bytes + len > r->max_bytes))
		drop_oldest(s);
	if (s->n == s->cap && grow(s, r->max_lines) != 0)
		return CORRAL_ENOMEM;
	rline *l = malloc(sizeof *l + len + 1);
	if (!l)
		return CORRAL_ENOMEM;
	l->seq = ++r->last;
	l->t_ms = t_ms;
	l->pid = pid;
	l->slot = slot < 0 ? -1 : slot;
	l->len = (uint32_t)len;
	l->level = (uint8_t)(level > 3 ? 2 : level);
	memcpy(l->msg, msg, len);
	l->msg[len] = '\0';
	s->v[(s->head + s->n) % s->cap] = l;
	s->n++;
	s->bytes += len;
	if (r->notify)
		r->notify(r->arg);
	return 0;
}

/* The sources a query reads: [*lo, *hi). */
static void range(const logring *r, int slot, uint32_t *lo, uint32_t *hi)
{
	if (slot < 0) {
		*lo = 0;
		*hi = r->nsrc;
		return;
	}
	*lo = src_index(slot);
	*hi = *lo < r->nsrc && *lo > 0 ? *lo + 1 : *lo;
}

int logring_has_after(const logring *r, uint64_t since, int slot)
{
	uint32_t lo, hi;
	range(r, slot, &lo, &hi);
	if (slot < 0)
		return r->last > since;
	for (uint32_t i = lo; i < hi; i++) {
		const source *s = &r->src[i];
		if (s->n && at(s, s->n - 1)->seq > since)
			return 1;
	}
	return 0;
}

static uint64_t count_after(const logring *r, uint32_t lo, uint32_t hi,
                            uint64_t since)
{
	uint64_t n = 0;
	for (uint32_t i = lo; i < hi; i++)
		n += r->src[i].n - first_after(&r->src[i], since);
	return n;
}

uint32_t logring_copy(const logring *r, const ipc_logs_req *q,
                      ipc_logline *out, uint32_t max, uint64_t *next)
{
	uint32_t lo, hi, n = 0;
	uint64_t since = q->since;
	*next = q->since;
	if (max == 0)
		return 0;
	range(r, q->slot, &lo, &hi);
	/* With a tail: the cursor past which exactly tail lines are left
	 * (the counts fall by one per line, so bisect over seq). */
	if (q->tail && count_after(r, lo, hi, since) > q->tail) {
		uint64_t bad = since, good = r->last;
		while (good - bad > 1) {
			uint64_t mid = bad + (good - bad) / 2;
			if (count_after(r, lo, hi, mid) <= q->tail)
				good = mid;
			else
				bad = mid;
		}
		since = good;
	}
	uint32_t *pos = hi > lo ? calloc(hi - lo, sizeof *pos) : NULL;
	if (hi > lo && !pos)
		return 0; /* nothing read: the reader asks again */
	for (uint32_t i = lo; i < hi; i++)
		pos[i - lo] = first_after(&r->src[i], since);
	int more = 0;
	for (;;) {
		const rline *best = NULL;
		uint32_t bi = 0;
		for (uint32_t i = lo; i < hi; i++) {
			const source *s = &r->src[i];
			if (pos[i - lo] < s->n) {
				const rline *l = at(s, pos[i - lo]);
				if (!best || l->seq < best->seq) {
					best = l;
					bi = i;
				}
			}
		}
		if (!best)
			break;
		if (n == max) {
			more = 1;
			break;
		}
		pos[bi - lo]++;
		out[n++] = (ipc_logline){.seq = best->seq, .t_ms = best->t_ms,
		                         .level = best->level,
		                         .slot = best->slot, .pid = best->pid,
		                         .msg = best->msg, .len = best->len};
	}
	free(pos);
	if (more)
		*next = out[n - 1].seq;
	else
		*next = r->last > q->since ? r->last : q->since;
	return n;
}
