/*
 * fuzz.h - what corral's fuzz targets share.  Each target file defines
 * LLVMFuzzerTestOneInput(); it is linked either with libFuzzer (make fuzz,
 * clang) or with replay.c (make check: every file of tests/fuzz/TARGET/
 * once, with the normal compiler).  A target reports a broken property
 * with FUZZ_CHECK, which aborts so that both drivers see a crash.
 */
#ifndef TESTS_FUZZ_H
#define TESTS_FUZZ_H

#include <nng/nng.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond)                                                      \
	do {                                                                  \
		if (!(cond)) {                                                \
			fprintf(stderr, "%s:%d: fuzz check failed: %s\n",     \
			        __FILE__, __LINE__, #cond);                   \
			abort();                                              \
		}                                                             \
	} while (0)

/* The input as a received nng message, or NULL (out of memory). */
static inline nng_msg *fuzz_msg(const uint8_t *data, size_t size)
{
	nng_msg *m;
	if (nng_msg_alloc(&m, 0) != 0)
		return NULL;
	if (size && nng_msg_append(m, data, size) != 0) {
		nng_msg_free(m);
		return NULL;
	}
	return m;
}

/* Reads every byte of a decoded blob, so that ASan checks its bounds. */
static inline unsigned fuzz_touch(const uint8_t *p, uint32_t n)
{
	unsigned s = 0;
	for (uint32_t i = 0; i < n; i++)
		s += p[i];
	return s;
}

#endif
