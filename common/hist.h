/*
 * hist.h - the one latency histogram of corral: log-linear buckets (16 per
 * power of two, so a value is known to within 1/16), fixed size, no
 * allocation, O(1) to add.  Percentiles are nearest-rank, as HdrHistogram
 * and Node's monitorEventLoopDelay report them: p99 of 70 samples is the
 * 70th smallest, so a stall of X once per window shows as p99 >= 15/16 X,
 * never as the second-largest sample.  The exact max and min are kept, and
 * a percentile never reads above the max.
 *
 * Units are the caller's (corral uses microseconds).  Not thread-safe: one
 * owner, or the owner's lock.
 */
#ifndef COMMON_HIST_H
#define COMMON_HIST_H

#include <stdint.h>

#define HIST_SUB_BITS 4                    /* 16 buckets per power of two */
#define HIST_SUB (1u << HIST_SUB_BITS)
#define HIST_BUCKETS (HIST_SUB * 41)       /* values up to 2^44 */

typedef struct hist {
	uint64_t total;
	uint64_t min, max; /* exact; min is UINT64_MAX while empty */
	uint32_t n[HIST_BUCKETS];
} hist;

void hist_reset(hist *h);
void hist_add(hist *h, uint64_t v);
/* Adds every sample of src to dst. */
void hist_merge(hist *dst, const hist *src);
/* The nearest-rank pct-th percentile (0 < pct <= 100): the smallest
 * recorded value (to bucket precision) that at least pct % of the samples
 * do not exceed.  0 when empty. */
uint64_t hist_pct(const hist *h, double pct);

#endif
