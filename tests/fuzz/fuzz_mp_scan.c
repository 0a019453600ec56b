/*
 * fuzz_mp_scan.c - the msgpack pre-scan alone.  Properties: it never reads
 * outside the input; whatever it accepts, msgpack-c decodes as exactly one
 * object of exactly that many bytes; and what passes tight limits passes
 * the wire limits.
 */
#include <msgpack.h>

#include "corral_base.h"
#include "ipc/mpscan.h"
#include "ipc/proto.h"
#include "tests/fuzz/fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const mp_limits wire = {.max_depth = IPC_MAX_DEPTH,
	                               .max_str = IPC_MAX_STR,
	                               .max_items = IPC_MAX_ITEMS};
	static const mp_limits tight = {.max_depth = 2, .max_str = 8,
	                                .max_items = 3};
	static const mp_limits deep = {.max_depth = 100, .max_str = UINT32_MAX,
	                               .max_items = UINT32_MAX};
	int rc = mp_scan(data, size, &wire);
	FUZZ_CHECK(rc <= 0);
	if (mp_scan(data, size, &tight) == 0)
		FUZZ_CHECK(rc == 0);
	(void)mp_scan(data, size, &deep);
	if (rc == 0) {
		msgpack_unpacked up;
		size_t off = 0;
		msgpack_unpacked_init(&up);
		int r = msgpack_unpack_next(&up, (const char *)data, size, &off);
		FUZZ_CHECK(r == MSGPACK_UNPACK_SUCCESS ||
		           r == MSGPACK_UNPACK_NOMEM_ERROR);
		FUZZ_CHECK(r != MSGPACK_UNPACK_SUCCESS || off == size);
		msgpack_unpacked_destroy(&up);
	}
	return 0;
}
