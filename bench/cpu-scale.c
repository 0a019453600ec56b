/*
 * bench/cpu-scale - the ceiling for CPU-bound scaling on this machine:
 * fib(n) in N plain threads with nothing else running, as jobs/s relative
 * to one thread.  bench/jobs.sh prints it beside the fib jobs figure, so a
 * 2-worker ratio can be read against what the cores themselves allow
 * (shared caches, SMT siblings, turbo limits, a VM's steal time).
 * Usage: bench/cpu-scale N [THREADS...]   (default 30, threads 1 2)
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static unsigned fib_n;
static volatile int stop;

static unsigned long long fib(unsigned n)
{
	return n < 2 ? n : fib(n - 1) + fib(n - 2);
}

static void *spin(void *arg)
{
	unsigned long long *count = arg;
	while (!stop) {
		volatile unsigned long long r = fib(fib_n);
		(void)r;
		(*count)++;
	}
	return NULL;
}

/* fib(n) results per second over `secs` with t threads. */
static double rate(int t, double secs)
{
	pthread_t th[256];
	unsigned long long counts[256] = {0}, total = 0;
	struct timespec d = {.tv_sec = (time_t)secs,
	                     .tv_nsec = (long)((secs - (long)secs) * 1e9)};
	stop = 0;
	for (int i = 0; i < t; i++)
		if (pthread_create(&th[i], NULL, spin, &counts[i]) != 0)
			return 0;
	nanosleep(&d, NULL);
	stop = 1;
	for (int i = 0; i < t; i++) {
		pthread_join(th[i], NULL);
		total += counts[i];
	}
	return (double)total / secs;
}

int main(int argc, char **argv)
{
	fib_n = argc > 1 ? (unsigned)atoi(argv[1]) : 30;
	int ts[32] = {1, 2}, nt = 2;
	if (argc > 2)
		for (nt = 0; nt + 2 < argc && nt < 32; nt++)
			ts[nt] = atoi(argv[nt + 2]);
	double one = rate(1, 2.0);
	for (int i = 0; i < nt; i++) {
		if (ts[i] < 1 || ts[i] > 256)
			return 2;
		double r = ts[i] == 1 ? one : rate(ts[i], 2.0);
		printf("{\"threads\":%d,\"per_s\":%.1f,\"scaling\":%.2f}\n", ts[i],
		       r, one > 0 ? r / one : 0);
	}
	return 0;
}
