/*
 * failalloc.h - allocation fault injection for tests, after SQLite's: the
 * N-th allocation from now fails, looped over N until an operation runs
 * through without reaching its N-th allocation.
 *
 * Link tests/failalloc.c into a test program (and only into test
 * programs): it defines malloc, calloc, realloc and free, which the
 * dynamic linker then uses for the whole process, libmsgpackc's and
 * libnng's allocations included (link-time --wrap would miss those).
 * Each forwards to the allocator next in line: libc's, or ASan's in a
 * sanitizer build, so ASan still sees every block.
 *
 * Only the thread that armed it fails; the live-block count is
 * process-wide, so it measures leaks only while no other thread allocates
 * or frees (under ASan, LeakSanitizer does not have that limit).
 *
 * The loop, done by failalloc_each():
 *
 *	for (unsigned long n = 1;; n++) {
 *		long live = failalloc_live();
 *		failalloc_arm(n);
 *		rc = op(arg);            // must free what it made, or undo it
 *		int hit = failalloc_disarm();
 *		check: failalloc_live() == live  (nothing leaked)
 *		if (!hit) { check rc == 0; break; }  // every allocation tried
 *		check: rc == the out-of-memory code
 *	}
 */
#ifndef TESTS_FAILALLOC_H
#define TESTS_FAILALLOC_H

#include <stddef.h>

/* From now on, on this thread, the n-th allocation (n >= 1) fails, once:
 * malloc, calloc and realloc return NULL with errno ENOMEM. */
void failalloc_arm(unsigned long n);
/* Stops failing allocations.  Returns 1 if the n-th allocation was
 * reached (and failed), 0 if the operation made fewer. */
int failalloc_disarm(void);
/* Allocations made since the last failalloc_arm() (the failed one
 * included), whether or not armed still; and the bytes they asked for.
 * failalloc_arm(ULONG_MAX) only counts: what an operation allocates. */
unsigned long failalloc_count(void);
size_t failalloc_bytes(void);
/* Blocks allocated and not yet freed, process-wide.  Compare it before
 * and after an operation that should free what it allocates. */
long failalloc_live(void);

/*
 * The loop above: runs op(arg) with its 1st, 2nd, ... allocation failing
 * until a run makes fewer allocations than that, then stops.  op returns
 * 0 or an error code, and leaves no block allocated (it frees or undoes
 * what it made, whether it failed or not); it must not allocate in its
 * checks (Check's ck_assert does).  A run with a failure must return
 * enomem; the run without one, 0.  Returns 0 with *allocs the number of
 * allocations op makes, or -1 at the first run that breaks a rule, with
 * why saying which allocation failed and what went wrong.
 */
int failalloc_each(int (*op)(void *arg), void *arg, int enomem,
                   unsigned long *allocs, char *why, size_t whylen);

#endif
