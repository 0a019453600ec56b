/* utf8.h - text that should be UTF-8 made so, for JSON. */
#ifndef COMMON_UTF8_H
#define COMMON_UTF8_H

#include <stddef.h>

/*
 * Copies n bytes of s to out (room for 3 * n + 1 bytes), each byte that
 * does not start a well-formed UTF-8 sequence -- stray continuation bytes,
 * truncated sequences, overlong forms, surrogates, code points past
 * U+10FFFF, and NUL -- replaced by U+FFFD.  NUL-terminates; returns the
 * length written.
 */
size_t utf8_repair(const char *s, size_t n, char *out);

#endif
