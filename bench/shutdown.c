/*
 * bench/shutdown - time from SIGTERM to the supervisor's exit with 8 idle
 * workers, for corral and, in the same run, for a Node.js cluster primary
 * that disconnects its workers on SIGTERM.
 *
 * Usage: bench/shutdown [RUNS]   (default 10)
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/bench.h"
#include "tests/harness.h"

#define WORKERS 8

/* One run: wait for WORKERS ready lines, SIGTERM, time until exit. */
static double one(harness *h, const char *ready)
{
	for (int i = 0; i < WORKERS; i++)
		if (!h_expect(h, ready, 10000))
			return -1;
	double t0 = h_now_us();
	kill(h->sup, SIGTERM);
	int rc = h_wait_exit(h, 15000);
	double ms = (h_now_us() - t0) / 1000.0;
	return rc == 0 ? ms : -1;
}

int main(int argc, char **argv)
{
	int runs = argc > 1 ? atoi(argv[1]) : 10;
	char plug[4096], js[4096];
	double cv[100], nv[100];
	int nn = 0;
	if (runs <= 0 || runs > 100)
		return 2;
	h_path("examples/hello.so", plug, sizeof plug);
	for (int r = 0; r < runs; r++) {
		harness h;
		const char *args[] = {"-w", "8", plug, NULL};
		if (h_start(&h, args) != 0 ||
		    (cv[r] = one(&h, "-> running")) < 0) {
			fprintf(stderr, "bench/shutdown: corral run failed\n");
			h_dump(&h);
			h_cleanup(&h);
			return 1;
		}
		h_cleanup(&h);
	}
	const char *node = getenv("NODE");
	if (!node || !*node)
		node = "node";
	const char *b = getenv("CORRAL_BENCH_DIR");
	snprintf(js, sizeof js, "%s/node/cluster-idle.js", b && *b ? b : "bench");
	setenv("WORKERS", "8", 1);
	for (int r = 0; r < runs; r++) {
		harness h;
		memset(&h, 0, sizeof h);
		h.errfd = -1;
		h.quiet = 1;
		const char *nargv[] = {node, js, NULL};
		double ms = h_spawn(&h, nargv) == 0 ? one(&h, "online ") : -1;
		h_cleanup(&h);
		if (ms < 0)
			break;
		nv[nn++] = ms;
	}
	double c50 = bench_pct(cv, (size_t)runs, 50);
	printf("shutdown: SIGTERM -> supervisor exit, %d idle workers, %d runs\n",
	       WORKERS, runs);
	printf("  %-14s median %8.2f ms   max %8.2f ms\n", "corral", c50,
	       cv[runs - 1]);
	if (nn) {
		double n50 = bench_pct(nv, (size_t)nn, 50);
		printf("  %-14s median %8.2f ms   max %8.2f ms\n",
		       "node cluster", n50, nv[nn - 1]);
		printf("  ratio node/corral: %.1fx\n", n50 / c50);
	} else {
		printf("  node cluster   (not measured: %s did not run)\n", node);
	}
	printf("  goal: corral <= 100 ms: %s\n",
	       cv[runs - 1] <= 100 ? "met" : "NOT met");
	return 0;
}
