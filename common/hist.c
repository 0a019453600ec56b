/* hist.c - see hist.h. */
#include <math.h>
#include <string.h>

#include "common/hist.h"

/* Bucket of v: values below HIST_SUB have one bucket each; above, the
 * power of two picks a group of HIST_SUB and the next bits the bucket. */
static unsigned bucket_of(uint64_t v)
{
	if (v < HIST_SUB)
		return (unsigned)v;
	unsigned e = 63u - (unsigned)__builtin_clzll(v); /* >= SUB_BITS */
	unsigned idx = HIST_SUB * (e - HIST_SUB_BITS + 1) +
	               (unsigned)((v >> (e - HIST_SUB_BITS)) & (HIST_SUB - 1));
	return idx < HIST_BUCKETS ? idx : HIST_BUCKETS - 1;
}

/* The smallest value that falls in bucket idx. */
static uint64_t bucket_low(unsigned idx)
{
	if (idx < HIST_SUB)
		return idx;
	unsigned e = idx / HIST_SUB - 1 + HIST_SUB_BITS, sub = idx % HIST_SUB;
	return ((uint64_t)(HIST_SUB + sub)) << (e - HIST_SUB_BITS);
}

void hist_reset(hist *h)
{
	memset(h, 0, sizeof *h);
	h->min = UINT64_MAX;
}

void hist_add(hist *h, uint64_t v)
{
	h->n[bucket_of(v)]++;
	h->total++;
	if (v > h->max)
		h->max = v;
	if (v < h->min)
		h->min = v;
}

void hist_merge(hist *dst, const hist *src)
{
	for (unsigned i = 0; i < HIST_BUCKETS; i++)
		dst->n[i] += src->n[i];
	dst->total += src->total;
	if (src->max > dst->max)
		dst->max = src->max;
	if (src->min < dst->min)
		dst->min = src->min;
}

uint64_t hist_pct(const hist *h, double pct)
{
	if (!h->total)
		return 0;
	if (pct >= 100)
		return h->max;
	double r = ceil(pct / 100.0 * (double)h->total);
	uint64_t rank = r < 1 ? 1 : (uint64_t)r;
	uint64_t seen = 0;
	for (unsigned i = 0; i < HIST_BUCKETS; i++) {
		seen += h->n[i];
		if (seen >= rank) {
			uint64_t v = bucket_low(i);
			if (v < h->min)
				v = h->min;
			return v > h->max ? h->max : v;
		}
	}
	return h->max;
}
