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
 * Only the thread that armed it fails; the counts are process-wide.  Not
 * for code that allocates on other threads meanwhile.
 *
 *	for (unsigned long n = 1;; n++) {
 *		failalloc_arm(n);
 *		rc = operation();
 *		int hit = failalloc_disarm();
 *		... check rc: CORRAL_ENOMEM if hit (or 0, if it recovered) ...
 *		... undo the operation's effects ...
 *		ck_assert(failalloc_live() == live_before);   // nothing leaked
 *		if (!hit)
 *			break; // it ran through: every allocation was tried
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
 * included), whether or not armed still. */
unsigned long failalloc_count(void);
/* Blocks allocated and not yet freed, process-wide.  Compare it before
 * and after an operation that should free what it allocates. */
long failalloc_live(void);

#endif
