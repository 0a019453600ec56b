/*
 * bench/nng-load - the yardstick for one job per request: how many
 * request/reply round trips a plain nng REQ client with C contexts (each
 * one request in flight, closed loop) gets through a bare nng REP echo
 * server with as many contexts, in another process, over ipc://.  The
 * same client then sends corral CALL messages, one job each, to a
 * corral's jobs socket: what corral adds on top of its transport.
 *
 *   bench/nng-load serve URL [CONTEXTS]     REP echo server until killed
 *   bench/nng-load load URL SECS CONTEXTS [PAYLOAD [call]]
 *
 * load prints {"throughput":N,"errors":E} (round trips per second); with
 * `call` each request is a CALL of PAYLOAD bytes (64 by default) and an
 * answer counts only if it is a RESULT with ok set.
 */
#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ipc/proto.h"

#define MAX_CTX 4096

typedef struct slot {
	nng_ctx ctx;
	nng_aio *aio;
	int sending;
} slot;

static nng_socket sock;
static slot *slots;
static int nslots;
static atomic_long done, errors;
static atomic_int stopping;
static const uint8_t *payload;
static size_t payload_len;
static int as_call;

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- the bare echo server ---- */

static void serve_cb(void *arg)
{
	slot *s = arg;
	int rv = nng_aio_result(s->aio);
	if (s->sending) {
		s->sending = 0;
		if (rv)
			nng_msg_free(nng_aio_get_msg(s->aio));
		if (rv != NNG_ECLOSED)
			nng_ctx_recv(s->ctx, s->aio);
		return;
	}
	if (rv) {
		if (rv != NNG_ECLOSED)
			nng_ctx_recv(s->ctx, s->aio);
		return;
	}
	s->sending = 1; /* the request goes back as it came */
	nng_ctx_send(s->ctx, s->aio);
}

/* ---- the client ---- */

static int make_request(nng_msg **m)
{
	if (as_call) {
		ipc_call c = {.payload = payload, .len = (uint32_t)payload_len,
		              .timeout_ms = 10000, .prio = 2};
		return ipc_pack_call(m, &c) ? -1 : 0;
	}
	if (nng_msg_alloc(m, 0) || nng_msg_append(*m, payload, payload_len))
		return -1;
	return 0;
}

static int answer_ok(nng_msg *m)
{
	if (!as_call) {
		nng_msg_free(m);
		return 1;
	}
	ipc_frame f;
	ipc_result r;
	if (ipc_decode_msg(m, IPC_MAX_CTL_FRAME, &f) != 0)
		return 0;
	int ok = ipc_unpack_result(&f, &r) == 0 && r.ok;
	ipc_frame_fini(&f);
	return ok;
}

static void load_cb(void *arg)
{
	slot *s = arg;
	int rv = nng_aio_result(s->aio);
	if (s->sending) {
		s->sending = 0;
		if (rv) {
			nng_msg_free(nng_aio_get_msg(s->aio));
			atomic_fetch_add(&errors, 1);
			return;
		}
		nng_ctx_recv(s->ctx, s->aio);
		return;
	}
	if (rv) {
		atomic_fetch_add(&errors, 1);
		return;
	}
	if (answer_ok(nng_aio_get_msg(s->aio)))
		atomic_fetch_add(&done, 1);
	else
		atomic_fetch_add(&errors, 1);
	if (atomic_load(&stopping))
		return;
	nng_msg *m;
	if (make_request(&m) != 0) {
		atomic_fetch_add(&errors, 1);
		return;
	}
	s->sending = 1;
	nng_aio_set_msg(s->aio, m);
	nng_ctx_send(s->ctx, s->aio);
}

static int open_slots(int n, void (*cb)(void *))
{
	slots = calloc((size_t)n, sizeof *slots);
	if (!slots)
		return -1;
	for (int i = 0; i < n; i++) {
		if (nng_ctx_open(&slots[i].ctx, sock) ||
		    nng_aio_alloc(&slots[i].aio, cb, &slots[i]))
			return -1;
		nslots++;
	}
	return 0;
}

static int serve(const char *url, int n)
{
	if (nng_rep0_open(&sock) ||
	    nng_socket_set_size(sock, NNG_OPT_RECVMAXSZ, IPC_MAX_CTL_FRAME) ||
	    nng_listen(sock, url, NULL, 0) || open_slots(n, serve_cb)) {
		fprintf(stderr, "nng-load: cannot serve %s\n", url);
		return 1;
	}
	for (int i = 0; i < n; i++)
		nng_ctx_recv(slots[i].ctx, slots[i].aio);
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	int sig;
	sigwait(&set, &sig);
	return 0;
}

static int load(const char *url, double secs, int n)
{
	if (nng_req0_open(&sock) ||
	    nng_socket_set_size(sock, NNG_OPT_RECVMAXSZ, IPC_MAX_CTL_FRAME) ||
	    nng_dial(sock, url, NULL, 0) || open_slots(n, load_cb)) {
		fprintf(stderr, "nng-load: cannot connect to %s\n", url);
		return 1;
	}
	/* Warm up for a tenth of the time, then count. */
	for (int i = 0; i < n; i++) {
		nng_msg *m;
		if (make_request(&m) != 0)
			return 1;
		slots[i].sending = 1;
		nng_aio_set_msg(slots[i].aio, m);
		nng_ctx_send(slots[i].ctx, slots[i].aio);
	}
	struct timespec warm = {0, (long)(secs / 10 * 1e9) % 1000000000L};
	warm.tv_sec = (time_t)(secs / 10);
	nanosleep(&warm, NULL);
	long d0 = atomic_load(&done);
	double t0 = now_s();
	struct timespec ts = {(time_t)secs, (long)((secs - (long)secs) * 1e9)};
	nanosleep(&ts, NULL);
	long d1 = atomic_load(&done);
	double t1 = now_s();
	atomic_store(&stopping, 1);
	printf("{\"throughput\":%.1f,\"errors\":%ld}\n", (double)(d1 - d0) / (t1 - t0),
	       atomic_load(&errors));
	fflush(stdout);
	/* No nng_close: with requests in flight nng 1.5.2 can hang in it
	 * (nanomsg/nng#1543), and this process has nothing left to do. */
	_exit(0);
}

int main(int argc, char **argv)
{
	static uint8_t buf[IPC_MAX_PAYLOAD];
	if (argc >= 3 && strcmp(argv[1], "serve") == 0) {
		int n = argc > 3 ? atoi(argv[3]) : 64;
		return serve(argv[2], n > 0 && n <= MAX_CTX ? n : 64);
	}
	if (argc >= 5 && strcmp(argv[1], "load") == 0) {
		double secs = atof(argv[3]);
		int n = atoi(argv[4]);
		payload_len = argc > 5 ? strtoul(argv[5], NULL, 10) : 64;
		as_call = argc > 6 && strcmp(argv[6], "call") == 0;
		if (secs <= 0 || n <= 0 || n > MAX_CTX ||
		    payload_len > IPC_MAX_PAYLOAD)
			goto usage;
		memset(buf, 'x', payload_len);
		payload = buf;
		return load(argv[2], secs, n);
	}
usage:
	fprintf(stderr, "usage: bench/nng-load serve URL [CONTEXTS]\n"
	                "       bench/nng-load load URL SECS CONTEXTS "
	                "[PAYLOAD [call]]\n");
	return 2;
}
