/*
 * broker.c - jobs that survive crashes.
 *
 * Clients send CALL requests to the front end (front.c, nng REP); each
 * becomes a job in one of four priority queues.  Jobs go to RUNNING,
 * non-degraded workers, least outstanding first (ties: lower lag), never
 * more than max_inflight each, several per JOB message.  The ledger knows
 * which job is on which worker: when a worker dies its jobs go back to the
 * head of their queue with one more attempt, and a job that has been on
 * max_attempts dead workers is poison: the client gets "poison" and its
 * payload is kept in RUNDIR/poison/ID.bin.  Every accepted job gets exactly
 * one RESULT: its reply, or "timeout", "busy", "poison", "shutting_down",
 * "failed".  A reply from a worker that no longer holds the job (it was
 * declared dead, or the job timed out) is dropped, so a client never gets
 * two.  Delivery is at-least-once: a job may run more than once.
 *
 * A client may send several jobs in one request (CALLS): each is a job of
 * its own here, and their results are collected in a bbatch and sent back
 * together, in order, when the last one is known (RESULTS).
 *
 * Everything here runs on the supervisor's loop thread.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "corral.h"
#include "common/error.h"
#include "common/log.h"
#include "common/rundir.h"
#include "master/front.h"
#include "master/sup.h"

#define HASH_BUCKETS 4096
#define SWEEP_MS 20
#define BATCH_BYTES (1u << 20)
#define POISON_KEEP 100
/* Jobs per worker per dispatch round below which spreading costs more
 * (a message each) than it gains: see dispatch(). */
#define QUANTUM 4

/* A CALLS request being answered: one result per job, in order. */
typedef struct bbatch {
	front_req *req;
	uint32_t n, left;  /* jobs, and those not answered yet */
	ipc_result res[];  /* data of an ok result is malloc()ed here */
} bbatch;

typedef struct bjob {
	struct bjob *next, *prev; /* in a queue, or on a slot's ledger */
	struct bjob *hnext;       /* id hash chain */
	uint64_t id;
	int slot;                 /* -1: queued */
	int prio;
	unsigned attempts;        /* workers that died holding it */
	uint64_t deadline;        /* sup_now_ms() */
	front_req *req;           /* its client's open request (CALL) */
	bbatch *batch;            /* or its place in a CALLS: batch, idx */
	uint32_t idx;
	uint8_t *payload;
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
	bjob *head, *tail;
	unsigned n;
} blist;

struct broker {
	sup *s;
	front *front;
	char url[4200];
	uv_timer_t sweep;
	uv_check_t check; /* runs dispatch once per loop iteration */
	int open_handles; /* sweep and check, until closed */
	unsigned quantum; /* this round: jobs a worker takes before the next */
	blist queue[4];   /* by priority */
	unsigned queued;
	blist *ledger;    /* per slot: jobs in flight there */
	bfill *fill;      /* per slot: dispatch's scratch */
	bjob *hash[HASH_BUCKETS];
	uint64_t next_id;
	int draining;
	void (*on_empty)(sup *s);
	broker_stats st;
	unsigned poison_kept;
};

/* ---- lists and the id index ---- */

static void bl_push(blist *l, bjob *j, int head)
{
	j->prev = j->next = NULL;
	if (head) {
		j->next = l->head;
		if (l->head)
			l->head->prev = j;
		else
			l->tail = j;
		l->head = j;
	} else {
		j->prev = l->tail;
		if (l->tail)
			l->tail->next = j;
		else
			l->head = j;
		l->tail = j;
	}
	l->n++;
}

static void bl_remove(blist *l, bjob *j)
{
	if (j->prev)
		j->prev->next = j->next;
	else
		l->head = j->next;
	if (j->next)
		j->next->prev = j->prev;
	else
		l->tail = j->prev;
	j->next = j->prev = NULL;
	l->n--;
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

/* Takes a job out of wherever it is (queue or ledger) and the index. */
static void detach(broker *b, bjob *j)
{
	if (j->slot < 0) {
		bl_remove(&b->queue[j->prio], j);
		b->queued--;
	} else {
		bl_remove(&b->ledger[j->slot], j);
	}
	unindex(b, j);
}

static void job_free(bjob *j)
{
	free(j->payload);
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
	/* Still answer: a reply the client can decode says why. */
	log_msg("jobs: cannot pack a result: %s", corral_strerror(rc));
	ipc_result e = {.ok = 0};
	snprintf(e.err, sizeof e.err, "%s", ipc_joberr_name(IPC_JOBERR_FAILED));
	snprintf(e.msg, sizeof e.msg, "%s", corral_strerror(rc));
	if (ipc_pack_result(msg, &e) != 0)
		*msg = NULL;
}

/* Answers a client's CALL; every request gets exactly one answer. */
static void send_result(front_req *req, const ipc_result *r)
{
	nng_msg *msg = NULL;
	int rc = ipc_pack_result(&msg, r);
	if (rc)
		pack_failed(&msg, rc);
	front_reply(req, msg);
}

static void batch_free(bbatch *bt)
{
	for (uint32_t i = 0; i < bt->n; i++)
		if (bt->res[i].ok)
			free((void *)bt->res[i].data);
	free(bt);
}

/* Records job idx's result; the last one sends them all. */
static void batch_set(bbatch *bt, uint32_t idx, const ipc_result *r)
{
	ipc_result *dst = &bt->res[idx];
	*dst = *r;
	if (r->ok) {
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
	}
	if (--bt->left)
		return;
	nng_msg *msg = NULL;
	int rc = ipc_pack_results(&msg, bt->res, bt->n);
	if (rc)
		pack_failed(&msg, rc);
	front_reply(bt->req, msg);
	batch_free(bt);
}

/* The one way a job's (or a refused call's) outcome leaves the broker. */
static void answer(front_req *req, bbatch *bt, uint32_t idx,
                   const ipc_result *r)
{
	if (bt)
		batch_set(bt, idx, r);
	else
		send_result(req, r);
}

static void answer_error(front_req *req, bbatch *bt, uint32_t idx,
                         ipc_joberr err, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static void answer_error(front_req *req, bbatch *bt, uint32_t idx,
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
	job_free(j);
}

/* ---- dispatch ---- */

static int degraded(const sup *s, const slot *sl)
{
	return sl->have_health &&
	       sl->health.lag_p99_us > s->cfg->max_lag_ms * 1000;
}

static int eligible(broker *b, const slot *sl)
{
	return sl->state == SLOT_RUNNING && sl->chan && !degraded(b->s, sl) &&
	       b->ledger[sl->id].n < b->s->cfg->max_inflight;
}

static bjob *dequeue(broker *b)
{
	for (int p = 0; p < 4; p++) {
		bjob *j = b->queue[p].head;
		if (j) {
			bl_remove(&b->queue[p], j);
			b->queued--;
			return j;
		}
	}
	return NULL;
}

/* Whether worker i can take one more job in this round. */
static int has_room(broker *b, unsigned i)
{
	const bfill *f = &b->fill[i];
	return !f->skip && eligible(b, &b->s->slots[i]) &&
	       b->ledger[i].n + f->n < b->s->cfg->max_inflight &&
	       f->n < IPC_MAX_BATCH && f->bytes < BATCH_BYTES;
}

/* Where the next job goes in this round: the worker with the fewest jobs,
 * counting those already picked for it (ties: lower lag) -- unless prev,
 * the one being filled, has taken fewer than this round's quantum and is
 * within a quantum of the fewest; -1 if no worker has room. */
static int pick(broker *b, int prev)
{
	sup *s = b->s;
	int best = -1;
	unsigned best_n = 0;
	for (unsigned i = 0; i < s->nslots; i++) {
		unsigned n = b->ledger[i].n + b->fill[i].n;
		if (!has_room(b, i))
			continue;
		if (best < 0 || n < best_n ||
		    (n == best_n && s->slots[i].health.lag_p99_us <
		                        s->slots[best].health.lag_p99_us)) {
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
static void send_fill(broker *b, slot *sl, uint64_t now)
{
	bfill *f = &b->fill[sl->id];
	ipc_job batch[IPC_MAX_BATCH];
	for (unsigned i = 0; i < f->n; i++) {
		bjob *j = f->taken[i];
		batch[i] = (ipc_job){
		    .id = j->id,
		    .timeout_ms = j->deadline > now ? j->deadline - now : 0,
		    .prio = j->prio, .payload = j->payload, .len = j->len};
	}
	nng_msg *msg = NULL;
	int rc = ipc_pack_jobs(&msg, batch, f->n);
	if (!rc)
		rc = ipc_chan_send(sl->chan, msg); /* takes msg */
	if (rc) {
		for (unsigned i = f->n; i-- > 0;) {
			bl_push(&b->queue[f->taken[i]->prio], f->taken[i], 1);
			b->queued++;
		}
		log_msg("slot %d pid %" PRId64 ": cannot send %u job(s): %s",
		        sl->id, sl->pid, f->n, corral_strerror(rc));
		f->skip = 1;
	} else {
		for (unsigned i = 0; i < f->n; i++) {
			f->taken[i]->slot = sl->id;
			bl_push(&b->ledger[sl->id], f->taken[i], 0);
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
	sup *s = b->s;
	uint64_t now = sup_now_ms(s);
	for (unsigned i = 0; i < s->nslots; i++)
		b->fill[i].skip = 0;
	while (b->queued) {
		/* Spread the round over as few workers as QUANTUM allows,
		 * in equal shares: 3 jobs go to one worker in one message,
		 * 9 jobs to 3 workers 3 each, 64 to 16 workers 4 each. */
		unsigned e = 0;
		for (unsigned i = 0; i < s->nslots; i++)
			e += !b->fill[i].skip && eligible(b, &s->slots[i]);
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
		for (unsigned i = 0; i < s->nslots; i++)
			if (b->fill[i].n)
				send_fill(b, &s->slots[i], now);
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
	if (b->draining && b->on_empty && !b->queued && !broker_inflight(b)) {
		void (*fn)(sup *) = b->on_empty;
		b->on_empty = NULL;
		fn(b->s);
	}
}

/* ---- the front end ---- */

static void on_sweep(uv_timer_t *h);

static void sweep_start(broker *b)
{
	if (!uv_is_active((uv_handle_t *)&b->sweep))
		uv_timer_start(&b->sweep, on_sweep, SWEEP_MS, SWEEP_MS);
}

/* Takes one call of a request: queued as a job, or answered at once. */
static void accept_call(broker *b, front_req *req, bbatch *bt, uint32_t idx,
                        const ipc_call *call)
{
	sup *s = b->s;
	if (b->draining) {
		b->st.rejected++;
		answer_error(req, bt, idx, IPC_JOBERR_SHUTTING_DOWN,
		             "the supervisor is stopping");
		return;
	}
	/* Jobs waiting for this iteration's dispatch are not "queued" in
	 * the queue_limit sense: send them before refusing. */
	if (b->queued >= s->cfg->queue_limit)
		dispatch(b);
	if (b->queued >= s->cfg->queue_limit) {
		b->st.busy++;
		answer_error(req, bt, idx, IPC_JOBERR_BUSY, "%u jobs queued (queue_limit)",
		             b->queued);
		return;
	}
	bjob *j = calloc(1, sizeof *j);
	uint8_t *copy = malloc(call->len ? call->len : 1);
	if (!j || !copy) {
		free(j);
		free(copy);
		answer_error(req, bt, idx, IPC_JOBERR_FAILED, "out of memory");
		return;
	}
	memcpy(copy, call->payload, call->len);
	uint64_t t = s->cfg->job_timeout_ms;
	if (call->timeout_ms && call->timeout_ms < t)
		t = call->timeout_ms;
	j->id = ++b->next_id;
	j->slot = -1;
	j->prio = call->prio;
	j->deadline = sup_now_ms(s) + t;
	j->req = req;
	j->batch = bt;
	j->idx = idx;
	j->payload = copy;
	j->len = call->len;
	j->hnext = *hslot(b, j->id);
	*hslot(b, j->id) = j;
	bl_push(&b->queue[j->prio], j, 0);
	b->queued++;
	b->st.accepted++;
	sweep_start(b);
}

static void on_front(front_req *req, nng_msg *msg, void *arg)
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
		b->s->bad_frames++;
		b->st.bad_requests++;
		answer_error(req, NULL, 0, IPC_JOBERR_BAD_REQUEST, "%s (%s)",
		             corral_strerror(rc), corral_errname(rc));
		return;
	}
	if (f.type == IPC_CALLS) {
		bt = calloc(1, sizeof *bt + n * sizeof bt->res[0]);
		if (!bt) {
			ipc_frame_fini(&f);
			answer_error(req, NULL, 0, IPC_JOBERR_FAILED, "out of memory");
			return;
		}
		bt->req = req;
		bt->n = bt->left = n;
	}
	for (uint32_t i = 0; i < n; i++)
		accept_call(b, req, bt, i, &calls[i]);
	ipc_frame_fini(&f);
	kick(b);
}

/* Expires jobs past their deadline; tells workers to drop them. */
static void on_sweep(uv_timer_t *h)
{
	broker *b = h->data;
	sup *s = b->s;
	uint64_t now = sup_now_ms(s);
	for (int p = 0; p < 4; p++) {
		for (bjob *j = b->queue[p].head, *next; j; j = next) {
			next = j->next;
			if (now >= j->deadline) {
				b->st.timeouts++;
				finish_error(b, j, IPC_JOBERR_TIMEOUT,
				             "no worker took the job in time");
			}
		}
	}
	for (unsigned i = 0; i < s->nslots; i++) {
		uint64_t ids[IPC_MAX_BATCH];
		uint32_t n = 0;
		for (bjob *j = b->ledger[i].head, *next; j; j = next) {
			next = j->next;
			if (now < j->deadline)
				continue;
			if (n < IPC_MAX_BATCH)
				ids[n++] = j->id;
			b->st.timeouts++;
			finish_error(b, j, IPC_JOBERR_TIMEOUT, "the worker did not reply "
			             "in time");
		}
		nng_msg *msg = NULL;
		if (n && s->slots[i].chan && ipc_pack_cancel(&msg, ids, n) == 0)
			ipc_chan_send(s->slots[i].chan, msg);
	}
	if (!b->queued && !broker_inflight(b))
		uv_timer_stop(h);
	check_empty(b);
	kick(b);
}

/* ---- events from slots ---- */

void broker_on_ready(broker *b)
{
	if (b)
		kick(b);
}

void broker_on_reply(broker *b, slot *sl, const ipc_frame *f)
{
	ipc_reply r[IPC_MAX_BATCH];
	uint32_t n = 0;
	int rc = ipc_unpack_replies(f, r, &n);
	if (rc) {
		b->s->bad_frames++;
		log_msg("slot %d pid %" PRId64 ": dropped a bad REPLY: %s (%s)",
		        sl->id, sl->pid, corral_errname(rc),
		        corral_strerror(rc));
		return;
	}
	for (uint32_t i = 0; i < n; i++) {
		bjob *j = find(b, r[i].id);
		if (!j || j->slot != sl->id) {
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
		job_free(j);
	}
	check_empty(b);
	kick(b);
}

/* Keeps a poison job's payload for reproduction: RUNDIR/poison/ID.bin,
 * written to a temporary name and renamed, at most POISON_KEEP files. */
static void keep_poison(broker *b, const bjob *j)
{
	char dir[4300], tmp[4400], path[4400];
	if (b->poison_kept >= POISON_KEEP)
		return;
	snprintf(dir, sizeof dir, "%s/poison", b->s->rundir);
	if (mkdir(dir, 0700) != 0 && errno != EEXIST)
		return;
	snprintf(tmp, sizeof tmp, "%s/.%" PRIu64 ".tmp", dir, j->id);
	snprintf(path, sizeof path, "%s/%" PRIu64 ".bin", dir, j->id);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return;
	ssize_t w = write(fd, j->payload, j->len);
	close(fd);
	if (w == (ssize_t)j->len && rename(tmp, path) == 0)
		b->poison_kept++;
	else
		unlink(tmp);
}

void broker_on_worker_gone(broker *b, slot *sl)
{
	if (!b)
		return;
	blist *l = &b->ledger[sl->id];
	/* Back to the head of their queues, oldest first at the head. */
	while (l->tail) {
		bjob *j = l->tail;
		bl_remove(l, j);
		j->slot = -1;
		j->attempts++;
		if (j->attempts >= b->s->cfg->max_attempts) {
			b->st.poison++;
			keep_poison(b, j);
			log_msg("jobs: job %" PRIu64 " (%u bytes) is POISON: %u "
			        "workers died holding it; payload kept in "
			        "%s/poison/%" PRIu64 ".bin", j->id, j->len,
			        j->attempts, b->s->rundir, j->id);
			unindex(b, j);
			answer_error(j->req, j->batch, j->idx, IPC_JOBERR_POISON,
			             "%u workers died running this job",
			             j->attempts);
			b->st.failed++;
			job_free(j);
			continue;
		}
		bl_push(&b->queue[j->prio], j, 1);
		b->queued++;
		b->st.redispatched++;
	}
	kick(b);
}

unsigned broker_inflight(const broker *b)
{
	unsigned n = 0;
	for (unsigned i = 0; b && i < b->s->nslots; i++)
		n += b->ledger[i].n;
	return n;
}

unsigned broker_slot_jobs(const broker *b, int slot_id)
{
	return b ? b->ledger[slot_id].n : 0;
}

int broker_slot_degraded(const broker *b, const slot *sl)
{
	return b && degraded(b->s, sl);
}

void broker_get_stats(const broker *b, broker_stats *st)
{
	memset(st, 0, sizeof *st);
	if (!b)
		return;
	*st = b->st;
	st->queued = b->queued;
	st->inflight = broker_inflight(b);
}

int broker_drain(broker *b, void (*on_empty)(sup *s))
{
	b->draining = 1;
	if (!b->queued && !broker_inflight(b))
		return 1;
	b->on_empty = on_empty;
	return 0;
}

void broker_abort(broker *b)
{
	b->on_empty = NULL;
	for (int p = 0; p < 4; p++)
		while (b->queue[p].head)
			finish_error(b, b->queue[p].head, IPC_JOBERR_SHUTTING_DOWN,
			             "the supervisor stopped before a worker "
			             "took the job");
	for (unsigned i = 0; i < b->s->nslots; i++)
		while (b->ledger[i].head)
			finish_error(b, b->ledger[i].head, IPC_JOBERR_SHUTTING_DOWN,
			             "the supervisor stopped before the worker "
			             "replied");
}

int broker_open(broker **out, sup *s)
{
	int rc;
	broker *b = calloc(1, sizeof *b);
	if (!b)
		return CORRAL_ENOMEM;
	b->s = s;
	b->ledger = calloc(s->nslots, sizeof *b->ledger);
	b->fill = calloc(s->nslots, sizeof *b->fill);
	if (!b->ledger || !b->fill) {
		rc = CORRAL_ENOMEM;
		goto fail;
	}
	if (s->cfg->jobs_url[0])
		snprintf(b->url, sizeof b->url, "%s", s->cfg->jobs_url);
	else if ((rc = rundir_url(s->rundir, "jobs", b->url, sizeof b->url)))
		goto fail;
	/* Room for every job the broker can hold, plus the requests that
	 * are answered "busy" at once. */
	unsigned max_open = s->cfg->queue_limit +
	                    s->cfg->max_inflight * s->nslots + 64;
	if ((rc = front_open(&b->front, s->loop, b->url, max_open, on_front,
	                     b)))
		goto fail;
	uv_timer_init(s->loop, &b->sweep);
	b->sweep.data = b;
	uv_check_init(s->loop, &b->check);
	b->check.data = b;
	uv_unref((uv_handle_t *)&b->sweep);
	*out = b;
	return 0;
fail:
	free(b->ledger);
	free(b->fill);
	free(b);
	return rc;
}

static void broker_freed(uv_handle_t *h)
{
	broker *b = h->data;
	if (--b->open_handles)
		return;
	free(b->ledger);
	free(b->fill);
	free(b);
}

void broker_close(broker *b)
{
	if (!b)
		return;
	broker_abort(b);
	front_close(b->front);
	b->open_handles = 2;
	uv_close((uv_handle_t *)&b->sweep, broker_freed);
	uv_close((uv_handle_t *)&b->check, broker_freed);
}
