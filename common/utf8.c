/* utf8.c - see utf8.h. */
#include <string.h>

#include "common/utf8.h"

/* The length of the well-formed sequence at p (RFC 3629, table 3-7 of
 * the Unicode standard), or 0. */
static size_t seq_len(const unsigned char *p, size_t left)
{
	unsigned c = p[0];
	size_t len;
	unsigned lo = 0x80, hi = 0xbf; /* range of the second byte */
	if (c >= 0x01 && c <= 0x7f)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		len = 2;
	else if (c >= 0xe0 && c <= 0xef) {
		len = 3;
		if (c == 0xe0)
			lo = 0xa0;
		else if (c == 0xed)
			hi = 0x9f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4;
		if (c == 0xf0)
			lo = 0x90;
		else if (c == 0xf4)
			hi = 0x8f;
	} else {
		return 0;
	}
	if (left < len || p[1] < lo || p[1] > hi)
		return 0;
	for (size_t k = 2; k < len; k++)
		if ((p[k] & 0xc0) != 0x80)
			return 0;
	return len;
}

size_t utf8_repair(const char *s, size_t n, char *out)
{
	const unsigned char *p = (const unsigned char *)s, *end = p + n;
	char *o = out;
	while (p < end) {
		size_t len = seq_len(p, (size_t)(end - p));
		if (len) {
			memcpy(o, p, len);
			o += len;
			p += len;
		} else {
			memcpy(o, "\xef\xbf\xbd", 3);
			o += 3;
			p++;
		}
	}
	*o = '\0';
	return (size_t)(o - out);
}
