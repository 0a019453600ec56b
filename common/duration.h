/* duration.h - the one duration syntax of corral's config and tools:
 * "1.5s", "250ms", "2m", "1h"; a bare number is seconds. */
#ifndef COMMON_DURATION_H
#define COMMON_DURATION_H

#include <stdint.h>

/* 0 and *ms set, or -1 if s is not a duration. */
int parse_duration_ms(const char *s, uint64_t *ms);

#endif
