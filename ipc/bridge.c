/*
 * bridge.c - see bridge.h.
 *
 * Threads: ipc_bridge_push() runs on nng's threads and touches only the
 * `mu`-guarded queue and `closing`.  on_async() runs on the loop thread: it
 * swaps the queue out under the lock and delivers without it, checking
 * `closing` after each item because a deliver callback may close the
 * owner.  Close order matters: mark closing under the lock, so a late nng
 * callback neither queues nor wakes; free what is queued; then let the
 * closer thread close the socket while the loop closes its handle.
 *
 * Background closes: ipc_close_later() runs fn(arg) on a detached thread
 * with a small stack and counts it, so that the exit path can wait for
 * closes that finish and give up on ones that are stuck in nng.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "common/log.h"
#include "corral_base.h"
#include "ipc/bridge.h"
#include "ipc/chan.h"

/* Closer threads still running, for ipc_chan_wait_closed(). */
static atomic_int pending_closes;
static atomic_int warned_stuck;
static atomic_int closes_done;

/* Closes stuck this long (or more at once) are reported, once. */
#define STUCK_CLOSES 8
#define CLOSER_STACK (256 * 1024)
/* The exit wait gives up when no close has finished for this long: the
 * rest are stuck in nng for good, and waiting longer only delays exit. */
#define CLOSE_STALL_MS 250

typedef struct closer_job {
	void (*fn)(void *);
	void *arg;
} closer_job;

static void *closer_main(void *p)
{
	closer_job job = *(closer_job *)p;
	free(p);
	job.fn(job.arg);
	atomic_fetch_add(&closes_done, 1);
	atomic_fetch_sub(&pending_closes, 1);
	return NULL;
}

void ipc_close_later(void (*fn)(void *), void *arg)
{
	int n = atomic_fetch_add(&pending_closes, 1) + 1;
	if (n >= STUCK_CLOSES && !atomic_exchange(&warned_stuck, 1))
		log_warn("%d nng socket closes have not returned: nng's reaper "
		         "is stuck (a known nng 1.5.2 bug, fixed in later nng); "
		         "each holds a small thread, and shutdown will not wait "
		         "for them", n);
	closer_job *job = malloc(sizeof *job);
	pthread_attr_t attr;
	pthread_t t;
	int started = 0;
	if (job && pthread_attr_init(&attr) == 0) {
		*job = (closer_job){fn, arg};
		started = pthread_attr_setdetachstate(&attr,
		                                      PTHREAD_CREATE_DETACHED) == 0 &&
		          pthread_attr_setstacksize(&attr, CLOSER_STACK) == 0 &&
		          pthread_create(&t, &attr, closer_main, job) == 0;
		pthread_attr_destroy(&attr);
	}
	if (!started) {
		free(job);
		fn(arg); /* no thread to spare: close here */
		atomic_fetch_add(&closes_done, 1);
		atomic_fetch_sub(&pending_closes, 1);
	}
}

int ipc_chan_wait_closed(unsigned timeout_ms)
{
	int last = atomic_load(&closes_done);
	unsigned stalled = 0;
	for (unsigned waited = 0; atomic_load(&pending_closes) > 0;
	     waited++) {
		if (waited >= timeout_ms || stalled >= CLOSE_STALL_MS)
			return atomic_load(&pending_closes);
		struct timespec ts = {0, 1000000};
		nanosleep(&ts, NULL);
		int done = atomic_load(&closes_done);
		stalled = done == last ? stalled + 1 : 0;
		last = done;
	}
	return 0;
}

int ipc_bridge_push(ipc_bridge *b, const ipc_item *it)
{
	int rc = 0;
	pthread_mutex_lock(&b->mu);
	if (b->closing) {
		rc = -1;
	} else if (b->qlen == b->qcap) {
		size_t ncap = b->qcap ? b->qcap * 2 : 16;
		ipc_item *nq = realloc(b->q, ncap * sizeof *nq);
		if (nq) {
			b->q = nq;
			b->qcap = ncap;
		} else {
			rc = -1;
		}
	}
	if (!rc) {
		b->q[b->qlen++] = *it;
		uv_async_send(&b->async);
	}
	pthread_mutex_unlock(&b->mu);
	return rc;
}

int ipc_bridge_closing(ipc_bridge *b)
{
	pthread_mutex_lock(&b->mu);
	int c = b->closing;
	pthread_mutex_unlock(&b->mu);
	return c;
}

/* Loop thread: deliver everything queued since the last wake-up. */
static void on_async(uv_async_t *h)
{
	ipc_bridge *b = (ipc_bridge *)h;
	for (;;) {
		pthread_mutex_lock(&b->mu);
		if (b->closing) {
			pthread_mutex_unlock(&b->mu);
			return;
		}
		ipc_item *q = b->q;
		size_t n = b->qlen;
		b->q = NULL;
		b->qlen = b->qcap = 0;
		pthread_mutex_unlock(&b->mu);
		if (n == 0) {
			free(q);
			return;
		}
		size_t i = 0;
		while (i < n) {
			b->deliver(b, &q[i++]);
			if (ipc_bridge_closing(b))
				break;
		}
		for (; i < n; i++) /* closed by a deliver callback */
			if (q[i].msg)
				nng_msg_free(q[i].msg);
		free(q);
		if (ipc_bridge_closing(b))
			return;
	}
}

int ipc_bridge_init(ipc_bridge *b, uv_loop_t *loop, ipc_deliver_fn deliver,
                    ipc_free_fn free_fn)
{
	b->deliver = deliver;
	b->free_fn = free_fn;
	b->q = NULL;
	b->qlen = b->qcap = 0;
	b->closing = 0;
	atomic_init(&b->refs, 0);
	if (pthread_mutex_init(&b->mu, NULL) != 0)
		return CORRAL_ESYS;
	if (uv_async_init(loop, &b->async, on_async) != 0) {
		pthread_mutex_destroy(&b->mu);
		return CORRAL_ESYS;
	}
	return 0;
}

static void bridge_free(ipc_bridge *b)
{
	pthread_mutex_destroy(&b->mu);
	free(b->q);
	b->free_fn(b);
}

static void abandoned(uv_handle_t *h)
{
	bridge_free((ipc_bridge *)h);
}

void ipc_bridge_abandon(ipc_bridge *b)
{
	uv_close((uv_handle_t *)&b->async, abandoned);
}

void ipc_bridge_release(ipc_bridge *b)
{
	if (atomic_fetch_sub(&b->refs, 1) == 1)
		bridge_free(b);
}

static void handle_closed(uv_handle_t *h)
{
	ipc_bridge_release((ipc_bridge *)h);
}

void ipc_bridge_close(ipc_bridge *b, void (*closer)(void *))
{
	pthread_mutex_lock(&b->mu);
	b->closing = 1;
	ipc_item *q = b->q;
	size_t n = b->qlen;
	b->q = NULL;
	b->qlen = b->qcap = 0;
	pthread_mutex_unlock(&b->mu);
	for (size_t i = 0; i < n; i++)
		if (q[i].msg)
			nng_msg_free(q[i].msg);
	free(q);
	atomic_store(&b->refs, 2);
	ipc_close_later(closer, b);
	uv_close((uv_handle_t *)&b->async, handle_closed);
}
