/*
 * jobs.c - see jobs.h.
 *
 * Copies.  A job's payload is not copied: it stays where it arrived, in
 * the JOB message, which the jobs of that message share (a count of the
 * jobs not yet replied to frees it with the last reply).  The price: a
 * plugin that holds one job of a message holds the whole message, up to
 * IPC_MAX_FRAME.  A reply is copied once, by corral_job_reply(), straight
 * into the REPLY message being built (ipc_batch); that message is sent
 * from a uv_prepare callback, so that all replies made in one loop
 * iteration travel together (or in a few messages, at IPC_MAX_BATCH jobs
 * or about 1 MiB each).  A reply made from the handle hook opens it sized
 * for one reply like it per job of that JOB message still to be handled,
 * so that a plugin answering at once (echo) never makes it grow, which
 * would copy what it holds again; a reply made elsewhere (a pool task's
 * done) sizes it for as many replies as the previous REPLY carried.
 *
 * A replied job's memory is not freed at once but queued behind
 * QUARANTINE others before reuse, so that a plugin replying twice gets
 * CORRAL_ESTATE rather than touching freed memory.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/list.h"
#include "common/log.h"
#include "common/ratelog.h"
#include "worker/jobs.h"
#include "worker/worker.h"

#define QUARANTINE 256
#define BATCH_BYTES (1u << 20)

/* A JOB message, kept while any of its jobs is not replied to. */
typedef struct jframe {
	nng_msg *msg;
	uint32_t refs; /* its jobs not yet retired */
} jframe;

struct corral_job {
	list_node node;          /* in flight, or in the free queue */
	jobs *owner;
	jframe *frame;           /* the payload lies in it */
	uint64_t id;
	uint64_t deadline; /* uv_now() ms */
	int prio;
	int replied;
	int cancelled;
	const uint8_t *payload; /* in frame */
	size_t len;
};

struct jobs {
	corral_worker *w;
	uv_loop_t *loop;
	ipc_chan *chan;
	uv_prepare_t flush;
	list_head inflight;   /* unordered */
	uint32_t ninflight;
	uint64_t ndone;       /* answered since the worker started */
	list_head free;       /* FIFO: oldest reused first */
	uint32_t nfree;
	ipc_batch out;        /* the REPLY being built; msg NULL: none */
	uint32_t to_handle;   /* in jobs_on_message: jobs not yet handled,
	                       * the current one included; else 0 */
	uint32_t last_n;      /* replies in the last REPLY sent */
	ratelog send_rl, bad_rl; /* per-frame lines, rate-limited */
};

static void send_pending(jobs *j)
{
	if (!j->out.msg)
		return;
	uint32_t n = j->out.n;
	nng_msg *msg;
	j->last_n = n;
	ipc_batch_end(&j->out, &msg);
	int rc = ipc_chan_send(j->chan, msg);
	uint64_t held = 0;
	if (rc && ratelog_ok(&j->send_rl, &held))
		log_plain("error: could not send %u job replies: %s; the "
		          "supervisor will retry them elsewhere or time out "
		          "(%" PRIu64 " such lines held back)", n,
		          corral_strerror(rc), held);
}

static void on_flush(uv_prepare_t *h)
{
	jobs *j = h->data;
	uv_prepare_stop(h);
	send_pending(j);
}

static void frame_unref(jframe *f)
{
	if (f && --f->refs == 0) {
		nng_msg_free(f->msg);
		free(f);
	}
}

int jobs_new(jobs **out, corral_worker *w, uv_loop_t *loop, ipc_chan *chan)
{
	jobs *j = calloc(1, sizeof *j);
	if (!j)
		return CORRAL_ENOMEM;
	j->w = w;
	j->loop = loop;
	j->chan = chan;
	list_init(&j->inflight);
	list_init(&j->free);
	if (uv_prepare_init(loop, &j->flush) != 0) {
		free(j);
		return CORRAL_ESYS;
	}
	j->flush.data = j;
	*out = j;
	return 0;
}

static corral_job *job_alloc(jobs *j)
{
	if (j->nfree > QUARANTINE) {
		corral_job *job = list_entry(list_first(&j->free), corral_job,
		                             node);
		list_remove(&job->node);
		j->nfree--;
		memset(job, 0, sizeof *job);
		return job;
	}
	return calloc(1, sizeof(corral_job));
}

static void job_retire(jobs *j, corral_job *job)
{
	/* Off the in-flight list... */
	list_remove(&job->node);
	j->ninflight--;
	frame_unref(job->frame);
	job->frame = NULL;
	job->payload = NULL;
	job->len = 0;
	/* ...onto the tail of the free queue, replied flag kept. */
	list_push_back(&j->free, &job->node);
	j->nfree++;
}

/* Queues one reply (data copied into the REPLY being built) and retires
 * the job. */
static int reply(corral_job *job, int code, const void *data, size_t len)
{
	if (!job)
		return CORRAL_EINVAL;
	if (job->replied)
		return CORRAL_ESTATE;
	if (len > IPC_MAX_PAYLOAD)
		return CORRAL_ETOOLONG;
	jobs *j = job->owner;
	if (j->out.msg && (j->out.n == IPC_MAX_BATCH ||
	                   (j->out.n && j->out.bytes + len > BATCH_BYTES)))
		send_pending(j);
	int rc;
	if (!j->out.msg) {
		size_t expect = j->to_handle ? j->to_handle
		                : j->last_n ? j->last_n : 1;
		size_t per = len + IPC_CALL_OVERHEAD;
		size_t reserve = per * expect;
		if (reserve > BATCH_BYTES + per)
			reserve = BATCH_BYTES + per;
		if ((rc = ipc_batch_begin(&j->out, IPC_REPLY, 64 + reserve)))
			return rc;
	}
	ipc_reply r = {.id = job->id, .code = code, .data = data,
	               .len = (uint32_t)len};
	if ((rc = ipc_batch_add_reply(&j->out, &r)))
		return rc;
	job->replied = 1;
	j->ndone++;
	job_retire(j, job);
	if (!uv_is_active((uv_handle_t *)&j->flush))
		uv_prepare_start(&j->flush, on_flush);
	return 0;
}

CORRAL_EXPORT int corral_job_reply(corral_job *job, const void *data,
                                   size_t len)
{
	return reply(job, 0, data, len);
}

CORRAL_EXPORT int corral_job_fail(corral_job *job, int code, const char *msg)
{
	if (code >= 0)
		code = CORRAL_EPLUGIN;
	if (!msg)
		msg = corral_strerror(code);
	size_t n = strlen(msg);
	return reply(job, code, msg, n > 255 ? 255 : n);
}

CORRAL_EXPORT const void *corral_job_payload(const corral_job *job,
                                             size_t *len)
{
	if (len)
		*len = job->len;
	return job->payload ? job->payload : (const void *)"";
}

CORRAL_EXPORT uint64_t corral_job_deadline_ms(const corral_job *job)
{
	uint64_t now = uv_now(job->owner->loop);
	return job->deadline > now ? job->deadline - now : 0;
}

CORRAL_EXPORT int corral_job_cancelled(const corral_job *job)
{
	return job->cancelled;
}

CORRAL_EXPORT int corral_job_priority(const corral_job *job)
{
	return job->prio;
}

void jobs_on_message(jobs *j, ipc_frame *f)
{
	ipc_job in[IPC_MAX_BATCH];
	uint32_t n = 0;
	int rc = ipc_unpack_jobs(f, in, &n);
	uint64_t held = 0;
	if (rc) {
		if (ratelog_ok(&j->bad_rl, &held))
			log_plain("warn: dropped a bad JOB frame: %s (%s; "
			          "%" PRIu64 " such lines held back)",
			          corral_errname(rc), corral_strerror(rc),
			          held);
		return;
	}
	/* The payloads stay in the message: take it from the frame.  One
	 * reference for this function, so that jobs replied to at once
	 * from handle do not free it under the ones still to come. */
	jframe *fr = malloc(sizeof *fr);
	if (!fr || !f->msg) {
		free(fr);
		log_plain("error: out of memory for %u jobs; the supervisor "
		          "will time them out", n);
		return;
	}
	fr->msg = f->msg;
	fr->refs = 1;
	f->msg = NULL;
	for (uint32_t i = 0; i < n; i++) {
		corral_job *job = job_alloc(j);
		if (!job) {
			log_plain("error: out of memory for job %llu; the "
			          "supervisor will time it out",
			          (unsigned long long)in[i].id);
			continue;
		}
		fr->refs++;
		job->owner = j;
		job->frame = fr;
		job->id = in[i].id;
		job->prio = in[i].prio >= 0 && in[i].prio <= 3 ? in[i].prio : 2;
		job->deadline = uv_now(j->loop) + in[i].timeout_ms;
		job->payload = in[i].payload;
		job->len = in[i].len;
		list_push_front(&j->inflight, &job->node);
		j->ninflight++;
		j->to_handle = n - i;
		if (j->w->ops.handle)
			j->w->ops.handle(j->w, job);
		else
			corral_job_fail(job, CORRAL_EPLUGIN,
			                "the plugin has no handle hook");
	}
	j->to_handle = 0;
	frame_unref(fr);
}

void jobs_on_cancel(jobs *j, const ipc_frame *f)
{
	uint64_t ids[IPC_MAX_BATCH];
	uint32_t n = 0;
	if (ipc_unpack_cancel(f, ids, &n) != 0) {
		return;
	}
	list_node *nd;
	for (uint32_t i = 0; i < n; i++)
		list_foreach(nd, &j->inflight) {
			corral_job *job = list_entry(nd, corral_job, node);
			if (job->id == ids[i])
				job->cancelled = 1;
		}
}

uint32_t jobs_inflight(const jobs *j)
{
	return j ? j->ninflight : 0;
}

uint64_t jobs_done(const jobs *j)
{
	return j ? j->ndone : 0;
}

void jobs_flush(jobs *j)
{
	if (!j)
		return;
	uv_prepare_stop(&j->flush);
	send_pending(j);
}

static void jobs_closed(uv_handle_t *h)
{
	jobs *j = h->data;
	list_node *n, *tmp;
	list_foreach_safe(n, tmp, &j->free)
		free(list_entry(n, corral_job, node));
	list_foreach_safe(n, tmp, &j->inflight) {
		corral_job *job = list_entry(n, corral_job, node);
		frame_unref(job->frame);
		free(job);
	}
	ipc_batch_abort(&j->out);
	free(j);
}

void jobs_free(jobs *j)
{
	if (j)
		uv_close((uv_handle_t *)&j->flush, jobs_closed);
}
