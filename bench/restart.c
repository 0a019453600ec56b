/*
 * bench/restart - time from SIGKILL of a worker to its replacement being
 * ready, for corral (READY) and, in the same run, for a minimal Node.js
 * cluster primary that re-forks on exit ('online').  Both are read the same
 * way: the supervisor's output line announcing the new worker, through a
 * pipe, timestamped when this process reads it.
 *
 * corral is measured twice: as configured by default, where a standby
 * worker (pre-started, plugin loaded, init not yet run) takes over, and
 * with --standby 0, where every replacement is spawned from nothing.  In
 * the standby run each kill waits until the standby is ready again, as it
 * is between any two crashes that are not microseconds apart.
 *
 * Usage: bench/restart [KILLS]   (default 200)
 * Environment: CORRAL_BUILDDIR (default .), NODE (default node).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/bench.h"
#include "tests/harness.h"

/* Kills the current worker `kills` times; stores each restart latency in
 * ms.  `ready` is the text of the line that announces a ready worker;
 * `standby`, if not NULL, the line that announces a ready standby. */
static int measure(harness *h, const char *ready, const char *standby,
                   int kills, double *ms)
{
	const char *l = h_expect(h, ready, 10000);
	if (!l)
		return -1;
	pid_t cur = h_line_pid(l);
	if (cur <= 0)
		cur = (pid_t)atol(strrchr(l, ' ') + 1);
	for (int i = 0; i < kills; i++) {
		if (standby && !h_expect(h, standby, 10000))
			return -1;
		double t0 = h_now_us();
		if (kill(cur, SIGKILL) != 0)
			return -1;
		pid_t next = cur;
		while (next == cur) {
			l = h_expect(h, ready, 10000);
			if (!l)
				return -1;
			next = h_line_pid(l);
			if (next <= 0)
				next = (pid_t)atol(strrchr(l, ' ') + 1);
		}
		ms[i] = (h_now_us() - t0) / 1000.0;
		cur = next;
	}
	return 0;
}

static void report(const char *who, double *v, int n, double *p50,
                   double *p99)
{
	double sum = 0;
	for (int i = 0; i < n; i++)
		sum += v[i];
	*p50 = bench_pct(v, (size_t)n, 50);
	*p99 = bench_pct(v, (size_t)n, 99);
	printf("  %-16s p50 %8.2f ms   p99 %8.2f ms   mean %8.2f ms   max %8.2f ms\n",
	       who, *p50, *p99, sum / n, v[n - 1]);
}

int main(int argc, char **argv)
{
	int kills = argc > 1 ? atoi(argv[1]) : 200;
	char plug[4096], bdir[4096];
	double *cv = calloc((size_t)kills, sizeof *cv);
	double *nv = calloc((size_t)kills, sizeof *nv);
	double *sv = calloc((size_t)kills, sizeof *sv);
	double c50, c99, s50, s99, n50 = 0, n99 = 0;
	harness h;
	if (!cv || !nv || !sv || kills <= 0)
		return 2;

	h_path("examples/hello.so", plug, sizeof plug);
	printf("restart latency: SIGKILL -> replacement ready, %d kills each\n",
	       kills);
	for (int cold = 0; cold < 2; cold++) {
		const char *args[] = {"-w", "1", "--restart-delay", "0",
		                      "--min-uptime", "0", "--max-restarts",
		                      "1000", "--restart-window", "1s",
		                      "--standby", cold ? "0" : "1", plug, NULL};
		if (h_start(&h, args) != 0 ||
		    measure(&h, "slot 0 pid |-> running",
		            cold ? NULL : "standby pid |: ready", kills,
		            cold ? sv : cv) != 0) {
			fprintf(stderr, "bench/restart: corral run failed\n");
			h_dump(&h);
			h_cleanup(&h);
			return 1;
		}
		h_cleanup(&h);
	}
	report("corral", cv, kills, &c50, &c99);
	report("corral cold", sv, kills, &s50, &s99);

	const char *node = getenv("NODE");
	if (!node || !*node)
		node = "node";
	const char *b = getenv("CORRAL_BENCH_DIR");
	snprintf(bdir, sizeof bdir, "%s/node/cluster-restart.js",
	         b && *b ? b : "bench");
	const char *nargv[] = {node, bdir, NULL};
	memset(&h, 0, sizeof h);
	h.errfd = -1;
	h.quiet = 1;
	int node_ok = h_spawn(&h, nargv) == 0 &&
	              measure(&h, "online ", NULL, kills, nv) == 0;
	if (!node_ok)
		h_dump(&h);
	kill(h.sup, SIGTERM);
	h_wait_exit(&h, 5000);
	h_cleanup(&h);
	if (node_ok) {
		report("node cluster", nv, kills, &n50, &n99);
		printf("  ratio node/corral: p50 %.1fx, p99 %.1fx (cold: p50 "
		       "%.1fx, p99 %.1fx)\n", n50 / c50, n99 / c99, n50 / s50,
		       n99 / s99);
	} else {
		printf("  node cluster   (not measured: %s did not run)\n", node);
	}
	printf("  goal: corral p50 <= 3 ms, p99 <= 10 ms: %s\n",
	       c50 <= 3 && c99 <= 10 ? "met" : "NOT met");
	free(cv);
	free(nv);
	free(sv);
	return 0;
}
