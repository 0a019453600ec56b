/*
 * mpscan.h - a bounds-checking pass over raw msgpack bytes.
 *
 * msgpack-c trusts the lengths it reads: an array32 header declaring four
 * billion items makes it allocate for them before it notices the frame is
 * five bytes long.  So every received frame is scanned here first, without
 * allocating, and only a frame that passes is handed to msgpack_unpack().
 */
#ifndef IPC_MPSCAN_H
#define IPC_MPSCAN_H

#include <stddef.h>
#include <stdint.h>

#define MP_MAX_DEPTH_LIMIT 32

typedef struct mp_limits {
	unsigned max_depth; /* containers nested deeper than this: EDEPTH */
	uint32_t max_str;   /* longest str/bin/ext payload: ETOOLONG */
	uint32_t max_items; /* most array items or map pairs: ETOOMANY */
} mp_limits;

/*
 * Checks that buf holds exactly one well-formed msgpack object within the
 * limits.  Returns 0 or CORRAL_ETRUNC, EMALFORMED, EDEPTH, ETOOLONG,
 * ETOOMANY, ETRAILING.
 */
int mp_scan(const uint8_t *buf, size_t len, const mp_limits *lim);

#endif
