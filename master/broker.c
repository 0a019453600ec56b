/*
 * broker.c - jobs that survive crashes.
 *
 * Clients send CALL requests to the front end (ipc/srv.c, nng REP); each
 * becomes a job in one of four priority queues.  Jobs go to RUNNING,
 * non-degraded workers, least outstanding first (ties: lower lag), never
 * more than max_inflight each, several per JOB message.  The ledger knows
 * which job is on which worker: when a worker dies its jobs go back to the
 * head of their queue with one more attempt, and a job that has been on
 * max_attempts dead workers is poison: the client gets "poison" and its
 * payload is kept in RUNDIR/poison/ID.bin (the log names the file, or
 * says why it could not be written).  Every accepted job gets exactly
 * one RESULT: its reply, or "timeout", "busy", "poison", "shutting_down",
 * "failed".  A reply from a worker that no longer holds the job (it was
 * declared dead, or the job timed out) is dropped, so a client never gets
 * two.  Delivery is at-least-once: a job may run more than once.
 *
 * A client may send several jobs in one request (CALLS): each is a job of
 * its own here, and their results are collected in a bbatch and sent back
 * together, in order, when the last one is known (RESULTS).
 *
 * Payloads are not copied on the way in: a job's payload points into the
 * client's request message, which the broker keeps (a CALL's in its job,
 * a CALLS' in its bbatch) until every job of that request is answered --
 * not when it is dispatched, because a job goes out again when its worker
 * dies.  For a CALLS the reference count is the bbatch's count of jobs not
 * answered yet.  Each JOB message is sized once for all its payloads
 * (ipc_batch), so each payload is copied once on its way to a worker.  On
 * the way back, a CALL's result is packed from the worker's REPLY; a
 * CALLS' results are copied as they come (the REPLY is its slot's, gone
 * when broker_on_reply returns), but for the last, and packed into one
 * RESULTS message sized once.
 *
 * Memory is bounded and given back.  Past queue_limit jobs, or past
 * queue_limit_bytes of their payloads, waiting in the queues, a new job
 * is answered "busy" at once.  glibc keeps what is freed (see on_trim): so
 * once the queues have drained after the broker held more than
 * TRIM_MIN_BYTES of requests, it calls malloc_trim(0), at most once per
 * TRIM_EVERY_MS.
 *
 * The broker knows workers only by slot number: what the supervisor tells
 * it (broker_worker_set/gone) and ops->send.  Everything here runs on the
 * supervisor's loop thread.
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#ifdef HAVE_MALLOC_TRIM
#include <malloc.h>
#endif
#include <stdarg.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/list.h"
#include "common/log.h"
#include "common/ratelog.h"
#include "common/rundir.h"
#include "corral_base.h"
#include "ipc/srv.h"
#include "master/broker.h"

#define HASH_BUCKETS 4096
#define SWEEP_MS 20
#define BATCH_BYTES (1u << 20)
#define POISON_KEEP 100
/* Jobs per worker per dispatch round below which spreading costs more
 * (a message each) than it gains: see dispatch(). */
#define QUANTUM 4
/* Giving freed memory back (on_trim): after holding at least this many
 * bytes of requests, once the queues have drained (and stayed drained
 * TRIM_SETTLE_MS), at most once per TRIM_EVERY_MS.  Each byte held costs
 * more than one of RSS (the job, the client's context, nng's buffers), so
 * the bar is low: a burst that held 7.6 MiB and was not trimmed left the
 * supervisor 16.7 MiB above its idle RSS; a trim then takes under 10 ms. */
#define TRIM_MIN_BYTES (2u << 20)
/* What a held request costs besides its bytes, counted toward
 * TRIM_MIN_BYTES: its job, nng's message and the client's REP context.
 * 10,000 queued 64-byte calls hold 1.4 MiB of messages but left the
 * supervisor 12 MiB above its idle RSS, untrimmed. */
#define HOLD_COST 1024
#define TRIM_SETTLE_MS 100
#define TRIM_EVERY_MS 1000

/* A CALLS request being answered: one result per job, in order. */
typedef struct bbatch {
	broker *b;
	ipc_req *req;
	nng_msg *msg;      /* the request, owned: its jobs' payloads point
	                    * into it; freed with the batch */
	uint32_t n, left;  /* jobs, and those not answered yet */
	ipc_result res[];  /* data of an ok result is malloc()ed here */
} bbatch;

typedef struct bjob {
	list_node node;           /* in a queue, or on a slot's ledger */
	struct bjob *hnext;       /* id hash chain */
	uint64_t id;
	int slot;                 /* -1: queued */
	int prio;
	unsigned attempts;        /* workers that died holding it */
	uint64_t deadline;        /* ops->now_ms() */
	ipc_req *req;           /* its client's open request (CALL) */
	bbatch *batch;            /* or its place in a CALLS: batch, idx */
	uint32_t idx;
	nng_msg *msg;             /* a CALL's request, owned (NULL in a
	                           * batch: the batch owns its message) */
	const uint8_t *payload;   /* in msg, or in the batch's */
	uint32_t len;
} bjob;

/* One dispatch round's jobs for one worker (sent as one JOB message). */
typedef struct bfill {
	bjob *taken[IPC_MAX_BATCH];
	unsigned n;
	size_t bytes;
	int skip; /* its send failed: no more this round */
} bfill;

typedef struct blist {
	list_head l;
	unsigned n;
} blist;

/* What the supervisor told us about one worker. */
typedef struct bworker {
	int up;              /* may take new jobs */
	uint64_t lag_p99_us;
} bworker;

struct broker {
	broker_config cfg;
	const broker_ops *ops;
	void *ctx;
	char url[4200];
	char rundir[4096];
	ipc_srv *front;
	uv_timer_t sweep;
	uv_check_t check; /* runs dispatch once per loop iteration */
	uv_timer_t trim;  /* on_trim, once the queues have drained */
	int open_handles; /* sweep, check and trim, until closed */
	unsigned quantum; /* this round: jobs a worker takes before the next */
	blist queue[4];   /* by priority */
	unsigned queued;
	uint64_t queued_bytes; /* payload bytes in the queues */
	uint64_t held_bytes;   /* request messages kept for their jobs */
	uint64_t held_cost;    /* held_bytes + HOLD_COST per message */
	uint64_t held_peak;    /* the most held_cost since the last trim */
	uint64_t trimmed_at;   /* uv_now() of the last trim, 0: none */
	blist *ledger;    /* per slot: jobs in flight there */
	bfill *fill;      /* per slot: dispatch's scratch */
	bworker *w;       /* per slot */
	unsigned hi;      /* 1 + the highest worker ever told of */
	bjob *hash[HASH_BUCKETS];
	uint64_t next_id;
	int draining;
	int told_drained;
	broker_stats st;
	unsigned poison_kept;
	ratelog send_rl;  /* "cannot send jobs" lines */
};

/* ---- lists and the id index ---- */

#define JOB(n) list_entry(n, bjob, node)

static void bl_push(blist *l, bjob *j, int head)
{
	if (head)
		list_push_front(&l->l, &j->node);
	else
		list_push_back(&l->l, &j->node);
	l->n++;
}

static void bl_remove(blist *l, bjob *j)
{
	list_remove(&j->node);
	l->n--;
}

static bjob *bl_head(const blist *l)
{
	list_node *n = list_first(&l->l);
	return n ? JOB(n) : NULL;
}

static bjob *bl_tail(const blist *l)
{
	list_node *n = list_last(&l->l);
	return n ? JOB(n) : NULL;
}

static bjob **hslot(broker *b, uint64_t id)
{
	return &b->hash[id % HASH_BUCKETS];
}

static bjob *find(broker *b, uint64_t id)
{
	for (bjob *j = *hslot(b, id); j; j = j->hnext)
		if (j->id == id)
			return j;
	return NULL;
}

static void unindex(broker *b, bjob *j)
{
	for (bjob **p = hslot(b, j->id); *p; p = &(*p)->hnext)
		if (*p == j) {
			*p = j->hnext;
			return;
		}
}

/* The queues, with their counts of jobs and payload bytes. */
static void q_push(broker *b, bjob *j, int head)
{
	bl_push(&b->queue[j->prio], j, head);
	b->queued++;
	b->queued_bytes += j->len;
}

static void q_remove(broker *b, bjob *j)
{
	bl_remove(&b->queue[j->prio], j);
	b->queued--;
	b->queued_bytes -= j->len;
}

/* Takes a job out of wherever it is (queue or ledger) and the index. */
static void detach(broker *b, bjob *j)
{
	if (j->slot < 0)
		q_remove(b, j);
	else
		bl_remove(&b->ledger[j->slot], j);
	unindex(b, j);
}

/* ---- request messages kept for their payloads ---- */

static void trim_check(broker *b);

static void hold(broker *b, nng_msg *m)
{
	b->held_bytes += nng_msg_len(m);
	b->held_cost += nng_msg_len(m) + HOLD_COST;
	if (b->held_cost > b->held_peak)
		b->held_peak = b->held_cost;
}

static void let_go(broker *b, nng_msg *m)
{
	assert(b->held_bytes >= nng_msg_len(m));
	b->held_bytes -= nng_msg_len(m);
	b->held_cost -= nng_msg_len(m) + HOLD_COST;
	nng_msg_free(m);
	trim_check(b);
}

/* After the job's answer: a CALL's message goes with it (a CALLS' goes
 * with its batch, when the last of its jobs is answered). */
static void job_free(broker *b, bjob *j)
{
	if (j->msg)
		let_go(b, j->msg);
	free(j);
}

/* ---- replies to clients ---- */

static void set_error(ipc_result *r, ipc_joberr err, const char *fmt,
                      va_list ap)
{
	*r = (ipc_result){.ok = 0};
	snprintf(r->err, sizeof r->err, "%s", ipc_joberr_name(err));
	vsnprintf(r->msg, sizeof r->msg, fmt, ap);
}

static void pack_failed(nng_msg **msg, int rc)
{
	static ratelog rl; /* loop thread only */
	uint64_t held = 0;
	/* Still answer: a reply the client can decode says why. */
	if (ratelog_ok(&rl, &held))
		log_msg("jobs: cannot pack a result: %s (%" PRIu64 " such "
		        "lines held back)", corral_strerror(rc), held);
	ipc_result e = {.ok = 0};
	snprintf(e.err, sizeof e.err, "%s", ipc_joberr_name(IPC_JOBERR_FAILED));
	snprintf(e.msg, sizeof e.msg, "%s", corral_strerror(rc));
	if (ipc_pack_result(msg, &e) != 0)
		*msg = NULL;
}

/* Answers a client's CALL; every request gets exactly one answer. */
static void send_result(ipc_req *req, const ipc_result *r)
{
	nng_msg *msg = NULL;
	int rc = ipc_pack_result(&msg, r);
	if (rc)
		pack_failed(&msg, rc);
	ipc_srv_reply(req, msg);
}

static void batch_free(bbatch *bt)
{
	for (uint32_t i = 0; i < bt->n; i++)
		if (bt->res[i].ok)
			free((void *)bt->res[i].data);
	let_go(bt->b, bt->msg);
	free(bt);
}

/* Records job idx's result; the last one sends them all, in a RESULTS
 * message sized once for all of them (it never grows, so each result is
 * copied into it once).  A result before the last is copied here (the
 * REPLY it came in goes when the caller returns); the last one is packed
 * from where it is. */
static void batch_set(bbatch *bt, uint32_t idx, const ipc_result *r)
{
	ipc_result *dst = &bt->res[idx];
	*dst = *r;
	if (--bt->left) {
		if (!r->ok)
			return;
		uint8_t *copy = malloc(r->len ? r->len : 1);
		if (copy) {
			memcpy(copy, r->data, r->len);
			dst->data = copy;
		} else {
			*dst = (ipc_result){.ok = 0};
			snprintf(dst->err, sizeof dst->err, "%s",
			         ipc_joberr_name(IPC_JOBERR_FAILED));
			snprintf(dst->msg, sizeof dst->msg,
			         "out of memory for the reply");
		}
		return;
	}
	size_t reserve = 64;
	for (uint32_t i = 0; i < bt->n; i++)
		reserve += ipc_result_bytes(&bt->res[i]) + IPC_CALL_OVERHEAD;
	ipc_batch out;
	nng_msg *msg = NULL;
	int rc = ipc_batch_begin(&out, IPC_RESULTS, reserve);
	for (uint32_t i = 0; !rc && i < bt->n; i++)
		rc = ipc_batch_add_result(&out, &bt->res[i]);
	if (rc) {
		ipc_batch_abort(&out);
		pack_failed(&msg, rc);
	} else {
		ipc_batch_end(&out, &msg);
	}
	dst->ok = 0; /* its data is the caller's: not batch_free's to free */
	ipc_srv_reply(bt->req, msg);
	batch_free(bt);
}

/* The one way a job's (or a refused call's) outcome leaves the broker. */
static void answer(ipc_req *req, bbatch *bt, uint32_t idx,
                   const ipc_result *r)
{
	if (bt)
		batch_set(bt, idx, r);
	else
		send_result(req, r);
}

static void answer_error(ipc_req *req, bbatch *bt, uint32_t idx,
                         ipc_joberr err, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static void answer_error(ipc_req *req, bbatch *bt, uint32_t idx,
                         ipc_joberr err, const char *fmt, ...)
{
	ipc_result r;
	va_list ap;
	va_start(ap, fmt);
	set_error(&r, err, fmt, ap);
	va_end(ap);
	answer(req, bt, idx, &r);
}

/* Ends a job: one result to its client, then it is gone. */
static void finish_error(broker *b, bjob *j, ipc_joberr err,
                         const char *msg)
{
	detach(b, j);
	answer_error(j->req, j->batch, j->idx, err, "%s", msg);
	b->st.failed++;
	job_free(b, j);
}

/* ---- dispatch ---- */

static int degraded(const broker *b, unsigned i)
{
	return b->w[i].lag_p99_us > b->cfg.max_lag_ms * 1000;
}

static int eligible(const broker *b, unsigned i)
{
	return b->w[i].up && !degraded(b, i) &&
	       b->ledger[i].n < b->cfg.max_inflight;
}

static bjob *dequeue(broker *b)
{
	for (int p = 0; p < 4; p++) {
		bjob *j = bl_head(&b->queue[p]);
		if (j) {
			q_remove(b, j);
			return j;
		}
	}
	return NULL;
}

/* Whether worker i can take one more job in this round. */
static int has_room(broker *b, unsigned i)
{
	const bfill *f = &b->fill[i];
	return !f->skip && eligible(b, i) &&
	       b->ledger[i].n + f->n < b->cfg.max_inflight &&
	       f->n < IPC_MAX_BATCH && f->bytes < BATCH_BYTES;
}

/* Where the next job goes in this round: the worker with the fewest jobs,
 * counting those already picked for it (ties: lower lag) -- unless prev,
 * the one being filled, has taken fewer than this round's quantum and is
 * within a quantum of the fewest; -1 if no worker has room. */
static int pick(broker *b, int prev)
{
	int best = -1;
	unsigned best_n = 0;
	for (unsigned i = 0; i < b->hi; i++) {
		unsigned n = b->ledger[i].n + b->fill[i].n;
		if (!has_room(b, i))
			continue;
		if (best < 0 || n < best_n ||
		    (n == best_n && b->w[i].lag_p99_us < b->w[best].lag_p99_us)) {
			best = (int)i;
			best_n = n;
		}
	}
	if (prev >= 0 && best >= 0 && prev != best && has_room(b, prev) &&
	    b->fill[prev].n < b->quantum &&
	    b->ledger[prev].n + b->fill[prev].n < best_n + b->quantum)
		return prev;
	return best;
}

/* Sends one worker its share of this round; on failure the jobs go back
 * to the head of their queues, in order, and the worker sits the rest of
 * this dispatch out. */
static void send_fill(broker *b, unsigned slot, uint64_t now)
{
	bfill *f = &b->fill[slot];
	ipc_batch bt;
	nng_msg *msg = NULL;
	/* Sized once for every payload (a JOB item's own bytes are fewer
	 * than IPC_CALL_OVERHEAD, the envelope fewer than 64): each payload
	 * is copied once, straight into the message, which never grows. */
	int rc = ipc_batch_begin(&bt, IPC_JOB, f->bytes +
	                         (size_t)f->n * IPC_CALL_OVERHEAD + 64);
	for (unsigned i = 0; !rc && i < f->n; i++) {
		bjob *j = f->taken[i];
		ipc_job job = {
		    .id = j->id,
		    .timeout_ms = j->deadline > now ? j->deadline - now : 0,
		    .prio = j->prio, .payload = j->payload, .len = j->len};
		rc = ipc_batch_add_job(&bt, &job);
	}
	if (rc) {
		ipc_batch_abort(&bt);
	} else {
		ipc_batch_end(&bt, &msg);
		rc = b->ops->send(b->ctx, slot, msg); /* takes msg */
	}
	if (rc) {
		for (unsigned i = f->n; i-- > 0;)
			q_push(b, f->taken[i], 1);
		uint64_t held = 0;
		if (ratelog_ok(&b->send_rl, &held))
			log_warn("slot %u: cannot send %u job(s): %s (they "
			         "wait for a worker; %" PRIu64 " such lines "
			         "held back)", slot, f->n,
			         corral_strerror(rc), held);
		f->skip = 1;
	} else {
		for (unsigned i = 0; i < f->n; i++) {
			f->taken[i]->slot = (int)slot;
			bl_push(&b->ledger[slot], f->taken[i], 0);
		}
		b->st.dispatched += f->n;
	}
	f->n = 0;
	f->bytes = 0;
}

/* Hands out what is queued, one job at a time to the least loaded
 * worker, then sends each worker its share as one message. */
static void dispatch(broker *b)
{
	unsigned nslots = b->hi;
	uint64_t now = b->ops->now_ms(b->ctx);
	for (unsigned i = 0; i < nslots; i++)
		b->fill[i].skip = 0;
	while (b->queued) {
		/* Spread the round over as few workers as QUANTUM allows,
		 * in equal shares: 3 jobs go to one worker in one message,
		 * 9 jobs to 3 workers 3 each, 64 to 16 workers 4 each. */
		unsigned e = 0;
		for (unsigned i = 0; i < nslots; i++)
			e += !b->fill[i].skip && eligible(b, i);
		unsigned k = (b->queued + QUANTUM - 1) / QUANTUM;
		if (k > e)
			k = e;
		b->quantum = k ? (b->queued + k - 1) / k : 1;
		unsigned picked = 0;
		int w = -1;
		while (b->queued && (w = pick(b, w)) >= 0) {
			bfill *f = &b->fill[w];
			bjob *j = dequeue(b);
			f->taken[f->n++] = j;
			f->bytes += j->len;
			picked++;
		}
		if (!picked)
			return;
		for (unsigned i = 0; i < nslots; i++)
			if (b->fill[i].n)
				send_fill(b, i, now);
	}
}

static void on_check(uv_check_t *h)
{
	uv_check_stop(h);
	dispatch(h->data);
}

/* Dispatches after this loop iteration's events (requests, replies,
 * deaths) have all been taken in: what arrived together goes out
 * together, a message per worker rather than per event. */
static void kick(broker *b)
{
	if (b->queued && !uv_is_active((uv_handle_t *)&b->check))
		uv_check_start(&b->check, on_check);
}

static void check_empty(broker *b)
{
	if (b->draining && !b->told_drained && broker_empty(b)) {
		b->told_drained = 1;
		b->ops->drained(b->ctx);
	}
}

/* ---- giving memory back ---- */

/* Resident bytes of this process (/proc/self/statm), 0 if unknown: for
 * the log line only. */
static uint64_t rss_now(void)
{
	char buf[128];
	unsigned long long size, res;
	int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	if (sscanf(buf, "%llu %llu", &size, &res) != 2)
		return 0;
	long page = sysconf(_SC_PAGESIZE);
	return page > 0 ? res * (uint64_t)page : 0;
}

/*
 * Why this exists: glibc does not give freed memory back to the system by
 * itself, except from the top of the main heap and past M_TRIM_THRESHOLD
 * -- a threshold that glibc raises (to twice the size of the largest
 * mmap()ed block freed, up to 64 MiB) once large messages have come and
 * gone.  Messages are allocated by nng's threads, in their own arenas, and
 * freed here in whatever order their jobs end, so after a burst the heap
 * is mostly free pages that stay resident: the supervisor measured 646 MiB
 * after 10,000 queued 64 KiB jobs had all timed out, for good.
 * malloc_trim(0) returns the free pages of every arena (madvise), at the
 * cost of one walk over the free lists (4 ms after a 36 MiB burst here),
 * so it runs only when a burst has drained -- the queues empty and at
 * most a quarter of the peak still held, and still so TRIM_SETTLE_MS
 * later -- and at most once per TRIM_EVERY_MS.
 */
static void on_trim(uv_timer_t *h)
{
	broker *b = h->data;
	if (b->queued || b->held_cost > b->held_peak / 4)
		return; /* filling again: the next drain calls trim_check */
	uint64_t peak = b->held_peak, rss0 = rss_now(), t0 = uv_hrtime();
#ifdef HAVE_MALLOC_TRIM
	(void)malloc_trim(0); /* 1 if memory was released: either is fine */
#endif
	double ms = (double)(uv_hrtime() - t0) / 1e6;
	uint64_t rss1 = rss_now();
	b->held_peak = b->held_cost;
	b->trimmed_at = uv_now(h->loop);
	b->st.trims++;
	log_msg("jobs: the queue drained after holding %.1f MiB of requests: "
	        "freed memory handed back, RSS %.1f -> %.1f MiB (%.1f ms)",
	        (double)peak / 1048576.0, (double)rss0 / 1048576.0,
	        (double)rss1 / 1048576.0, ms);
}

/* Called when held bytes fall: arms on_trim once a large burst drained. */
static void trim_check(broker *b)
{
	if (b->held_peak < TRIM_MIN_BYTES || b->queued ||
	    b->held_cost > b->held_peak / 4 ||
	    uv_is_active((uv_handle_t *)&b->trim) ||
	    uv_is_closing((uv_handle_t *)&b->trim))
		return;
	uint64_t now = uv_now(b->trim.loop), wait = TRIM_SETTLE_MS;
	if (b->trimmed_at && b->trimmed_at + TRIM_EVERY_MS > now + wait)
		wait = b->trimmed_at + TRIM_EVERY_MS - now;
	uv_timer_start(&b->trim, on_trim, wait, 0);
}

/* ---- the front end ---- */

static void on_sweep(uv_timer_t *h);

static void sweep_start(broker *b)
{
	if (!uv_is_active((uv_handle_t *)&b->sweep))
		uv_timer_start(&b->sweep, on_sweep, SWEEP_MS, SWEEP_MS);
}

/* Whether one more job of len bytes would take the queues past a limit.
 * An empty queue takes any job, whatever queue_limit_bytes says. */
static int queue_full(const broker *b, uint32_t len)
{
	return b->queued >= b->cfg.queue_limit ||
	       (b->queued && b->queued_bytes + len > b->cfg.queue_limit_bytes);
}

/* Takes one call of a request: queued as a job, or answered at once.  msg
 * is a CALL's request message, which the job takes (freed here if the
 * call is refused); NULL for a call of a batch, whose message the batch
 * owns. */
static void accept_call(broker *b, ipc_req *req, bbatch *bt, uint32_t idx,
                        const ipc_call *call, nng_msg *msg)
{
	if (b->draining) {
		b->st.rejected++;
		answer_error(req, bt, idx, IPC_JOBERR_SHUTTING_DOWN,
		             "the supervisor is stopping");
		goto refused;
	}
	/* Jobs waiting for this iteration's dispatch are not "queued" in
	 * the sense of the limits: send them before refusing. */
	if (queue_full(b, call->len))
		dispatch(b);
	if (queue_full(b, call->len)) {
		b->st.busy++;
		if (b->queued >= b->cfg.queue_limit)
			answer_error(req, bt, idx, IPC_JOBERR_BUSY,
			             "%u jobs queued (queue_limit)", b->queued);
		else
			answer_error(req, bt, idx, IPC_JOBERR_BUSY,
			             "%" PRIu64 " payload bytes queued, %u more "
			             "would pass queue_limit_bytes (%" PRIu64 ")",
			             b->queued_bytes, call->len,
			             b->cfg.queue_limit_bytes);
		goto refused;
	}
	bjob *j = calloc(1, sizeof *j);
	if (!j) {
		answer_error(req, bt, idx, IPC_JOBERR_FAILED, "out of memory");
		goto refused;
	}
	uint64_t t = b->cfg.job_timeout_ms;
	if (call->timeout_ms && call->timeout_ms < t)
		t = call->timeout_ms;
	j->id = ++b->next_id;
	j->slot = -1;
	j->prio = call->prio;
	j->deadline = b->ops->now_ms(b->ctx) + t;
	j->req = req;
	j->batch = bt;
	j->idx = idx;
	j->payload = call->payload;
	j->len = call->len;
	if (msg) {
		j->msg = msg;
		hold(b, msg);
	}
	j->hnext = *hslot(b, j->id);
	*hslot(b, j->id) = j;
	q_push(b, j, 0);
	b->st.accepted++;
	sweep_start(b);
	return;
refused:
	if (msg)
		nng_msg_free(msg);
}

static void on_request(ipc_req *req, nng_msg *msg, void *arg)
{
	broker *b = arg;
	ipc_frame f;
	ipc_call calls[IPC_MAX_BATCH];
	uint32_t n = 1;
	bbatch *bt = NULL;
	int rc = ipc_decode_msg(msg, IPC_MAX_CTL_FRAME, &f);
	if (!rc) {
		if (f.type == IPC_CALL)
			rc = ipc_unpack_call(&f, &calls[0]);
		else if (f.type == IPC_CALLS)
			rc = ipc_unpack_calls(&f, calls, &n);
		else
			rc = CORRAL_ETYPE;
		if (rc)
			ipc_frame_fini(&f);
	}
	if (rc) {
		b->ops->bad_frame(b->ctx, -1, rc);
		b->st.bad_requests++;
		answer_error(req, NULL, 0, IPC_JOBERR_BAD_REQUEST, "%s (%s)",
		             corral_strerror(rc), corral_errname(rc));
		return;
	}
	/* The payloads stay where they arrived (see the top of the file):
	 * the request message is kept, the frame's zone is not needed. */
	int is_batch = f.type == IPC_CALLS;
	nng_msg *kept = ipc_frame_take_msg(&f);
	ipc_frame_fini(&f);
	assert(kept);
	if (!is_batch) {
		accept_call(b, req, NULL, 0, &calls[0], kept);
		kick(b);
		return;
	}
	bt = calloc(1, sizeof *bt + n * sizeof bt->res[0]);
	if (!bt) {
		nng_msg_free(kept);
		answer_error(req, NULL, 0, IPC_JOBERR_FAILED, "out of memory");
		return;
	}
	bt->b = b;
	bt->req = req;
	bt->msg = kept;
	bt->n = bt->left = n;
	hold(b, kept);
	/* The last call's answer may free bt (all of them refused): it is
	 * not touched after the loop. */
	for (uint32_t i = 0; i < n; i++)
		accept_call(b, req, bt, i, &calls[i], NULL);
	kick(b);
}

/* Expires jobs past their deadline; tells workers to drop them. */
static void on_sweep(uv_timer_t *h)
{
	broker *b = h->data;
	uint64_t now = b->ops->now_ms(b->ctx);
	list_node *n, *tmp;
	for (int p = 0; p < 4; p++) {
		list_foreach_safe(n, tmp, &b->queue[p].l) {
			bjob *j = JOB(n);
			if (now >= j->deadline) {
				b->st.timeouts++;
				finish_error(b, j, IPC_JOBERR_TIMEOUT,
				             "no worker took the job in time");
			}
		}
	}
	for (unsigned i = 0; i < b->hi; i++) {
		uint64_t ids[IPC_MAX_BATCH];
		uint32_t nids = 0;
		list_foreach_safe(n, tmp, &b->ledger[i].l) {
			bjob *j = JOB(n);
			if (now < j->deadline)
				continue;
			if (nids < IPC_MAX_BATCH)
				ids[nids++] = j->id;
			b->st.timeouts++;
			finish_error(b, j, IPC_JOBERR_TIMEOUT, "the worker did not reply "
			             "in time");
		}
		nng_msg *msg = NULL;
		if (nids && b->w[i].up && ipc_pack_cancel(&msg, ids, nids) == 0)
			(void)b->ops->send(b->ctx, i, msg); /* best effort */
	}
	if (!b->queued && !broker_inflight(b))
		uv_timer_stop(h);
	check_empty(b);
	kick(b);
}

/* ---- what the supervisor tells us ---- */

void broker_worker_set(broker *b, unsigned slot, int takes_jobs,
                       uint64_t lag_p99_us)
{
	assert(slot < b->cfg.nslots);
	if (slot >= b->hi)
		b->hi = slot + 1;
	b->w[slot].up = takes_jobs;
	b->w[slot].lag_p99_us = lag_p99_us;
	kick(b);
}

void broker_on_reply(broker *b, unsigned slot, const ipc_frame *f)
{
	ipc_reply r[IPC_MAX_BATCH];
	uint32_t n = 0;
	int rc = ipc_unpack_replies(f, r, &n);
	if (rc) {
		b->ops->bad_frame(b->ctx, (int)slot, rc);
		return;
	}
	for (uint32_t i = 0; i < n; i++) {
		bjob *j = find(b, r[i].id);
		if (!j || j->slot != (int)slot) {
			b->st.late_replies++; /* timed out, or re-dispatched */
			continue;
		}
		detach(b, j);
		ipc_result res = {.ok = r[i].code == 0};
		if (res.ok) {
			res.data = r[i].data;
			res.len = r[i].len;
			b->st.ok++;
		} else {
			snprintf(res.err, sizeof res.err, "%s",
			         ipc_joberr_name(IPC_JOBERR_FAILED));
			snprintf(res.msg, sizeof res.msg, "%s: %.*s",
			         corral_errname(r[i].code),
			         (int)(r[i].len > 200 ? 200 : r[i].len),
			         (const char *)r[i].data);
			b->st.failed++;
		}
		answer(j->req, j->batch, j->idx, &res);
		job_free(b, j);
	}
	check_empty(b);
	kick(b);
}

/* Keeps a poison job's payload for reproduction: RUNDIR/poison/ID.bin,
 * written to a temporary name and renamed, at most POISON_KEEP files.
 * Says in what[] how it went, for the log: "kept in PATH", or why not
 * with the call that failed and its errno (a full disk, a poison/ that is
 * not a directory), so that the log never names a file that is not
 * there.  Returns 0 when the file was kept. */
static int keep_poison(broker *b, const bjob *j, char *what, size_t len)
{
	char dir[4300], tmp[4400], path[4400];
	const char *step;
	int err;
	if (b->poison_kept >= POISON_KEEP) {
		snprintf(what, len, "payload not kept: %u kept already, the "
		         "most there may be", POISON_KEEP);
		return -1;
	}
	snprintf(dir, sizeof dir, "%s/poison", b->rundir);
	snprintf(tmp, sizeof tmp, "%s/.%" PRIu64 ".tmp", dir, j->id);
	snprintf(path, sizeof path, "%s/%" PRIu64 ".bin", dir, j->id);
	if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		err = errno;
		snprintf(what, len, "payload not kept: cannot create %s: %s", dir,
		         strerror(err));
		return -1;
	}
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		err = errno;
		snprintf(what, len, "payload not kept: cannot create %s: %s", tmp,
		         strerror(err));
		return -1;
	}
	step = "write";
	err = log_write_all(fd, (const char *)j->payload, j->len) ? errno : 0;
	/* close() can be where a full disk (or NFS) says so. */
	if (close(fd) != 0 && !err) {
		err = errno;
		step = "close";
	}
	if (!err && rename(tmp, path) != 0) {
		err = errno;
		step = "rename it to its name";
	}
	if (err) {
		unlink(tmp); /* best effort: nothing half written stays */
		snprintf(what, len, "payload not kept: %s %s: %s", step, tmp,
		         strerror(err));
		return -1;
	}
	b->poison_kept++;
	snprintf(what, len, "payload kept in %s", path);
	return 0;
}

void broker_worker_gone(broker *b, unsigned slot)
{
	assert(slot < b->cfg.nslots);
	if (slot >= b->hi)
		return; /* never told of it: it holds nothing */
	b->w[slot].up = 0;
	blist *l = &b->ledger[slot];
	/* Back to the head of their queues, oldest first at the head. */
	bjob *j;
	while ((j = bl_tail(l))) {
		bl_remove(l, j);
		j->slot = -1;
		j->attempts++;
		if (j->attempts >= b->cfg.max_attempts) {
			char what[9000];
			b->st.poison++;
			if (keep_poison(b, j, what, sizeof what) == 0)
				log_msg("jobs: job %" PRIu64 " (%u bytes) is POISON: "
				        "%u workers died holding it; %s", j->id,
				        j->len, j->attempts, what);
			else
				log_warn("jobs: job %" PRIu64 " (%u bytes) is "
				         "POISON: %u workers died holding it; %s",
				         j->id, j->len, j->attempts, what);
			unindex(b, j);
			answer_error(j->req, j->batch, j->idx, IPC_JOBERR_POISON,
			             "%u workers died running this job",
			             j->attempts);
			b->st.failed++;
			job_free(b, j);
			continue;
		}
		q_push(b, j, 1);
		b->st.redispatched++;
	}
	kick(b);
}

const char *broker_url(const broker *b)
{
	return b ? ipc_srv_url(b->front) : "";
}

unsigned broker_inflight(const broker *b)
{
	unsigned n = 0;
	for (unsigned i = 0; b && i < b->hi; i++)
		n += b->ledger[i].n;
	return n;
}

int broker_empty(const broker *b)
{
	return !b->queued && !broker_inflight(b);
}

unsigned broker_slot_jobs(const broker *b, unsigned slot)
{
	return b && slot < b->hi ? b->ledger[slot].n : 0;
}

int broker_slot_degraded(const broker *b, unsigned slot)
{
	return b && slot < b->hi && degraded(b, slot);
}

void broker_get_stats(const broker *b, broker_stats *st)
{
	memset(st, 0, sizeof *st);
	if (!b)
		return;
	*st = b->st;
	st->queued = b->queued;
	st->inflight = broker_inflight(b);
	st->queued_bytes = b->queued_bytes;
	st->held_bytes = b->held_bytes;
}

int broker_drain(broker *b)
{
	b->draining = 1;
	return broker_empty(b);
}

void broker_abort(broker *b)
{
	bjob *j;
	for (int p = 0; p < 4; p++)
		while ((j = bl_head(&b->queue[p])))
			finish_error(b, j, IPC_JOBERR_SHUTTING_DOWN,
			             "the supervisor stopped before a worker "
			             "took the job");
	for (unsigned i = 0; i < b->hi; i++)
		while ((j = bl_head(&b->ledger[i])))
			finish_error(b, j, IPC_JOBERR_SHUTTING_DOWN,
			             "the supervisor stopped before the worker "
			             "replied");
	check_empty(b);
}

int broker_open(broker **out, uv_loop_t *loop, const broker_config *cfg,
                const broker_ops *ops, void *ctx)
{
	int rc;
	broker *b = calloc(1, sizeof *b);
	if (!b)
		return CORRAL_ENOMEM;
	b->cfg = *cfg;
	b->ops = ops;
	b->ctx = ctx;
	for (int p = 0; p < 4; p++)
		list_init(&b->queue[p].l);
	b->ledger = calloc(cfg->nslots, sizeof *b->ledger);
	b->fill = calloc(cfg->nslots, sizeof *b->fill);
	b->w = calloc(cfg->nslots, sizeof *b->w);
	if (!b->ledger || !b->fill || !b->w) {
		rc = CORRAL_ENOMEM;
		goto fail;
	}
	for (unsigned i = 0; i < cfg->nslots; i++)
		list_init(&b->ledger[i].l);
	if (snprintf(b->url, sizeof b->url, "%s", cfg->url) >=
	        (int)sizeof b->url ||
	    snprintf(b->rundir, sizeof b->rundir, "%s", cfg->rundir) >=
	        (int)sizeof b->rundir) {
		rc = CORRAL_EINVAL;
		goto fail;
	}
	b->cfg.url = b->url;
	b->cfg.rundir = b->rundir;
	/* Room for every job the broker can hold, plus the requests that
	 * are answered "busy" at once. */
	unsigned max_open = cfg->queue_limit + cfg->max_inflight * cfg->open_hint +
	                    64;
	ipc_sockopts so = {.max_frame = IPC_MAX_CTL_FRAME, .perms = 0600};
	if ((rc = ipc_srv_open(&b->front, loop, b->url, &so, max_open,
	                       on_request, b)))
		goto fail;
	/* libuv initialises these without allocating: they cannot fail on
	 * a valid loop. */
	uv_timer_init(loop, &b->sweep);
	b->sweep.data = b;
	uv_check_init(loop, &b->check);
	b->check.data = b;
	uv_timer_init(loop, &b->trim);
	b->trim.data = b;
	uv_unref((uv_handle_t *)&b->sweep);
	uv_unref((uv_handle_t *)&b->trim);
	*out = b;
	return 0;
fail:
	free(b->ledger);
	free(b->fill);
	free(b->w);
	free(b);
	return rc;
}

static void broker_freed(uv_handle_t *h)
{
	broker *b = h->data;
	if (--b->open_handles)
		return;
	assert(b->held_bytes == 0); /* every request was answered */
	free(b->ledger);
	free(b->fill);
	free(b->w);
	free(b);
}

void broker_close(broker *b)
{
	if (!b)
		return;
	broker_abort(b);
	ipc_srv_close(b->front);
	b->open_handles = 3;
	uv_close((uv_handle_t *)&b->sweep, broker_freed);
	uv_close((uv_handle_t *)&b->check, broker_freed);
	uv_close((uv_handle_t *)&b->trim, broker_freed);
}
