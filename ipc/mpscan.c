/*
 * mpscan.c - see mpscan.h.  One iterative pass with an explicit stack of
 * "items still to read" per open container, so hostile nesting cannot
 * overflow the C stack and the cost is linear in the frame size.
 */
#include "corral_base.h"
#include "ipc/mpscan.h"

static uint64_t rd_be(const uint8_t *p, unsigned n)
{
	uint64_t v = 0;
	for (unsigned i = 0; i < n; i++)
		v = (v << 8) | p[i];
	return v;
}

/* Classifies one header byte: how many length bytes follow, and what the
 * length measures. */
enum mp_kind { MPK_FIXED, MPK_BYTES, MPK_EXT, MPK_ARRAY, MPK_MAP, MPK_BAD };

static enum mp_kind mp_classify(uint8_t b, unsigned *lenbytes, uint64_t *imm)
{
	*lenbytes = 0;
	*imm = 0;
	if (b <= 0x7f || b >= 0xe0)
		return MPK_FIXED;
	if (b >= 0x80 && b <= 0x8f) {
		*imm = b & 0x0f;
		return MPK_MAP;
	}
	if (b >= 0x90 && b <= 0x9f) {
		*imm = b & 0x0f;
		return MPK_ARRAY;
	}
	if (b >= 0xa0 && b <= 0xbf) {
		*imm = b & 0x1f;
		return MPK_BYTES;
	}
	switch (b) {
	case 0xc0: case 0xc2: case 0xc3:
		return MPK_FIXED;
	case 0xc4: case 0xd9: *lenbytes = 1; return MPK_BYTES;
	case 0xc5: case 0xda: *lenbytes = 2; return MPK_BYTES;
	case 0xc6: case 0xdb: *lenbytes = 4; return MPK_BYTES;
	case 0xc7: *lenbytes = 1; return MPK_EXT;
	case 0xc8: *lenbytes = 2; return MPK_EXT;
	case 0xc9: *lenbytes = 4; return MPK_EXT;
	case 0xca: *imm = 4; return MPK_FIXED;
	case 0xcb: *imm = 8; return MPK_FIXED;
	case 0xcc: case 0xd0: *imm = 1; return MPK_FIXED;
	case 0xcd: case 0xd1: *imm = 2; return MPK_FIXED;
	case 0xce: case 0xd2: *imm = 4; return MPK_FIXED;
	case 0xcf: case 0xd3: *imm = 8; return MPK_FIXED;
	case 0xd4: *imm = 2; return MPK_FIXED;  /* fixext1: type + 1 */
	case 0xd5: *imm = 3; return MPK_FIXED;
	case 0xd6: *imm = 5; return MPK_FIXED;
	case 0xd7: *imm = 9; return MPK_FIXED;
	case 0xd8: *imm = 17; return MPK_FIXED;
	case 0xdc: *lenbytes = 2; return MPK_ARRAY;
	case 0xdd: *lenbytes = 4; return MPK_ARRAY;
	case 0xde: *lenbytes = 2; return MPK_MAP;
	case 0xdf: *lenbytes = 4; return MPK_MAP;
	default:
		return MPK_BAD; /* 0xc1 is never used */
	}
}

int mp_scan(const uint8_t *buf, size_t len, const mp_limits *lim)
{
	uint64_t rem[MP_MAX_DEPTH_LIMIT + 1];
	unsigned maxd = lim->max_depth;
	if (maxd > MP_MAX_DEPTH_LIMIT)
		maxd = MP_MAX_DEPTH_LIMIT;
	int d = 0;
	size_t pos = 0;
	rem[0] = 1;

	for (;;) {
		while (d >= 0 && rem[d] == 0)
			d--;
		if (d < 0)
			break;
		rem[d]--;
		if (pos >= len)
			return CORRAL_ETRUNC;
		unsigned lb;
		uint64_t n;
		enum mp_kind k = mp_classify(buf[pos++], &lb, &n);
		if (k == MPK_BAD)
			return CORRAL_EMALFORMED;
		if (lb) {
			if (len - pos < lb)
				return CORRAL_ETRUNC;
			n = rd_be(buf + pos, lb);
			pos += lb;
		}
		switch (k) {
		case MPK_FIXED:
			if (len - pos < n)
				return CORRAL_ETRUNC;
			pos += n;
			break;
		case MPK_BYTES:
		case MPK_EXT:
			if (n > lim->max_str)
				return CORRAL_ETOOLONG;
			if (k == MPK_EXT)
				n += 1; /* the ext type byte */
			if (len - pos < n)
				return CORRAL_ETRUNC;
			pos += n;
			break;
		case MPK_ARRAY:
		case MPK_MAP:
			if (n > lim->max_items)
				return CORRAL_ETOOMANY;
			if ((unsigned)d + 1 > maxd)
				return CORRAL_EDEPTH;
			if (k == MPK_MAP)
				n *= 2;
			/* Every item takes at least one byte. */
			if (n > len - pos)
				return CORRAL_ETRUNC;
			if (n)
				rem[++d] = n;
			break;
		case MPK_BAD:
			break;
		}
	}
	return pos == len ? 0 : CORRAL_ETRAILING;
}
