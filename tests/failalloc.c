/*
 * failalloc.c - see failalloc.h.
 *
 * The real allocator is looked up with dlsym(RTLD_NEXT) on first use;
 * dlsym itself may calloc() before the lookup is done, which is served
 * from a small static arena whose blocks free() recognises and ignores.
 */
#include <dlfcn.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/failalloc.h"

static void *(*real_malloc)(size_t);
static void *(*real_calloc)(size_t, size_t);
static void *(*real_realloc)(void *, size_t);
static void (*real_free)(void *);

static _Thread_local int armed;          /* this thread fails the n-th */
static _Thread_local unsigned long fail_at, count;
static _Thread_local size_t bytes;       /* asked for since arming */
static _Thread_local int hit;
static atomic_long live;

/* The replacements must be visible to the shared libraries, whatever
 * -fvisibility says. */
#define EXPORT __attribute__((visibility("default")))

/* For dlsym's own allocations while the lookup runs. */
static _Alignas(max_align_t) char arena[4096];
static size_t arena_used;
static int resolving;

static void resolve(void)
{
	if (real_free || resolving)
		return;
	resolving = 1;
	real_malloc = (void *(*)(size_t))dlsym(RTLD_NEXT, "malloc");
	real_calloc = (void *(*)(size_t, size_t))dlsym(RTLD_NEXT, "calloc");
	real_realloc = (void *(*)(void *, size_t))dlsym(RTLD_NEXT, "realloc");
	real_free = (void (*)(void *))dlsym(RTLD_NEXT, "free");
	resolving = 0;
}

static void *arena_alloc(size_t n)
{
	n = (n + 15) & ~(size_t)15;
	if (arena_used + n > sizeof arena)
		return NULL;
	void *p = arena + arena_used;
	arena_used += n;
	return p; /* zeroed: static storage, never reused */
}

static int in_arena(const void *p)
{
	return (const char *)p >= arena && (const char *)p < arena + sizeof arena;
}

/* 1 when this allocation (of n bytes) must fail. */
static int should_fail(size_t n)
{
	count++;
	bytes += n;
	if (armed && count == fail_at) {
		hit = 1;
		errno = ENOMEM;
		return 1;
	}
	return 0;
}

void failalloc_arm(unsigned long n)
{
	resolve();
	count = 0;
	bytes = 0;
	fail_at = n;
	hit = 0;
	armed = 1;
}

int failalloc_disarm(void)
{
	armed = 0;
	return hit;
}

unsigned long failalloc_count(void)
{
	return count;
}

size_t failalloc_bytes(void)
{
	return bytes;
}

long failalloc_live(void)
{
	return atomic_load(&live);
}

EXPORT void *malloc(size_t n)
{
	resolve();
	if (!real_malloc)
		return arena_alloc(n);
	if (should_fail(n))
		return NULL;
	void *p = real_malloc(n);
	if (p)
		atomic_fetch_add(&live, 1);
	return p;
}

EXPORT void *calloc(size_t k, size_t n)
{
	resolve();
	if (!real_calloc) {
		if (n && k > SIZE_MAX / n)
			return NULL;
		return arena_alloc(k * n);
	}
	if (should_fail(n && k > SIZE_MAX / n ? SIZE_MAX : k * n))
		return NULL;
	void *p = real_calloc(k, n);
	if (p)
		atomic_fetch_add(&live, 1);
	return p;
}

EXPORT void *realloc(void *old, size_t n)
{
	resolve();
	if (in_arena(old)) {
		/* Moves an arena block to the real heap; its size is not
		 * known, so copy what fits in the arena after it. */
		void *p = malloc(n);
		if (p && old)
			memcpy(p, old, (size_t)(arena + sizeof arena -
			                        (char *)old) < n
			                   ? (size_t)(arena + sizeof arena -
			                              (char *)old)
			                   : n);
		return p;
	}
	if (!real_realloc)
		return NULL;
	if (should_fail(n))
		return NULL;
	void *p = real_realloc(old, n);
	if (!old && p)
		atomic_fetch_add(&live, 1);
	else if (old && !p && n == 0)
		atomic_fetch_sub(&live, 1); /* realloc(p, 0) freed it */
	return p;
}

int failalloc_each(int (*op)(void *arg), void *arg, int enomem,
                   unsigned long *allocs, char *why, size_t whylen)
{
	for (unsigned long n = 1;; n++) {
		long before = failalloc_live();
		failalloc_arm(n);
		int rc = op(arg);
		int failed = failalloc_disarm();
		long leaked = failalloc_live() - before;
		if (leaked) {
			snprintf(why, whylen, "allocation %lu failed: %ld "
			         "block(s) leaked (rc %d)", n, leaked, rc);
			return -1;
		}
		if (!failed) {
			if (rc != 0) {
				snprintf(why, whylen, "returned %d with no "
				         "allocation failing", rc);
				return -1;
			}
			*allocs = n - 1;
			return 0;
		}
		if (rc != enomem) {
			snprintf(why, whylen, "allocation %lu failed: returned "
			         "%d, not %d", n, rc, enomem);
			return -1;
		}
	}
}

/* ASan and glibc's own strdup would allocate past malloc(): these keep
 * every string copy countable and failable. */
EXPORT char *strdup(const char *s)
{
	size_t n = strlen(s) + 1;
	char *p = malloc(n);
	return p ? memcpy(p, s, n) : NULL;
}

EXPORT char *strndup(const char *s, size_t max)
{
	size_t n = strnlen(s, max);
	char *p = malloc(n + 1);
	if (!p)
		return NULL;
	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

EXPORT void free(void *p)
{
	if (!p || in_arena(p))
		return;
	resolve();
	atomic_fetch_sub(&live, 1);
	real_free(p);
}
