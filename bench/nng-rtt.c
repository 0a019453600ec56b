/*
 * bench/nng-rtt - the yardstick for job latency: one nng REQ/REP round
 * trip over ipc:// on this machine (a REP echo thread, a REQ sender, one
 * request at a time), p50 and p99.  bench/jobs.sh reports the job path's
 * latency in these units, measured in the same run.
 * Usage: bench/nng-rtt [requests [gap_us]]   (gap between requests, 200)
 */
#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "bench/bench.h"

static double now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static void *echo(void *arg)
{
	nng_socket rep = *(nng_socket *)arg;
	nng_msg *m;
	while (nng_recvmsg(rep, &m, 0) == 0)
		if (nng_sendmsg(rep, m, 0) != 0)
			nng_msg_free(m);
	return NULL;
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 5000;
	int gap_us = argc > 2 ? atoi(argv[2]) : 200;
	char dir[] = "/tmp/corral-rtt-XXXXXX", url[64];
	if (n < 10 || gap_us < 0 || !mkdtemp(dir))
		return 1;
	snprintf(url, sizeof url, "ipc://%s/s", dir);
	nng_socket rep, req;
	pthread_t t;
	if (nng_rep0_open(&rep) || nng_listen(rep, url, NULL, 0) ||
	    nng_req0_open(&req) || nng_dial(req, url, NULL, 0) ||
	    pthread_create(&t, NULL, echo, &rep)) {
		fprintf(stderr, "nng-rtt: cannot set up %s\n", url);
		return 1;
	}
	double *v = calloc((size_t)n, sizeof *v);
	char payload[64] = {0};
	for (int i = -100; v && i < n; i++) { /* 100 warm-up requests */
		nng_msg *m;
		double t0 = now_us();
		if (nng_msg_alloc(&m, 0) || nng_msg_append(m, payload, sizeof payload) ||
		    nng_sendmsg(req, m, 0) || nng_recvmsg(req, &m, 0)) {
			fprintf(stderr, "nng-rtt: request failed\n");
			return 1;
		}
		nng_msg_free(m);
		if (i >= 0)
			v[i] = now_us() - t0;
		usleep(gap_us); /* idle between, as an open loop at a rate */
	}
	double p50 = bench_pct(v, (size_t)n, 50), p99 = bench_pct(v, (size_t)n, 99);
	printf("{\"rtt_us\":{\"p50\":%.1f,\"p99\":%.1f}}\n", p50, p99);
	nng_close(req);
	nng_close(rep);
	pthread_join(t, NULL);
	unlink(url + 6);
	rmdir(dir);
	free(v);
	return 0;
}
