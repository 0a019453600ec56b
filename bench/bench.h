/* bench.h - small helpers shared by the benchmarks: sample statistics. */
#ifndef BENCH_BENCH_H
#define BENCH_BENCH_H

#include <stdlib.h>

static int bench_cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* The p-th percentile (0..100) of n samples; sorts them in place. */
static inline double bench_pct(double *v, size_t n, double p)
{
	if (n == 0)
		return 0;
	qsort(v, n, sizeof *v, bench_cmp_double);
	size_t i = (size_t)((p / 100.0) * (double)(n - 1) + 0.5);
	return v[i < n ? i : n - 1];
}

#endif
