/*
 * jobs.c - see jobs.h.
 *
 * A job's payload is copied out of the frame (the frame is gone once the
 * message is handled; the plugin may keep the job for as long as it likes).
 * Replies are copied too and sent from a uv_prepare callback, so that all
 * replies made in one loop iteration travel in one REPLY message (or a few,
 * at IPC_MAX_BATCH jobs or about 1 MiB each).
 *
 * A replied job's memory is not freed at once but queued behind
 * QUARANTINE others before reuse, so that a plugin replying twice gets
 * CORRAL_ESTATE rather than touching freed memory.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "worker/jobs.h"
#include "worker/worker.h"

#define QUARANTINE 256
#define BATCH_BYTES (1u << 20)

struct corral_job {
	corral_job *next, *prev; /* in flight, or in the free queue */
	jobs *owner;
	uint64_t id;
	uint64_t deadline; /* uv_now() ms */
	int prio;
	int replied;
	int cancelled;
	uint8_t *payload;
	size_t len;
};

struct jobs {
	corral_worker *w;
	uv_loop_t *loop;
	ipc_chan *chan;
	uv_prepare_t flush;
	corral_job *inflight; /* doubly linked, unordered */
	uint32_t ninflight;
	uint64_t ndone;       /* answered since the worker started */
	corral_job *free_head, *free_tail; /* FIFO: oldest reused first */
	uint32_t nfree;
	ipc_reply pend[IPC_MAX_BATCH];
	uint32_t npend;
	size_t pend_bytes;
};

static void send_pending(jobs *j)
{
	if (!j->npend)
		return;
	nng_msg *msg = NULL;
	int rc = ipc_pack_replies(&msg, j->pend, j->npend);
	if (!rc)
		rc = ipc_chan_send(j->chan, msg);
	if (rc)
		log_plain("error: could not send %u job replies: %s; the "
		          "supervisor will retry them elsewhere or time out",
		          j->npend, corral_strerror(rc));
	for (uint32_t i = 0; i < j->npend; i++)
		free((void *)j->pend[i].data);
	j->npend = 0;
	j->pend_bytes = 0;
}

static void on_flush(uv_prepare_t *h)
{
	jobs *j = h->data;
	uv_prepare_stop(h);
	send_pending(j);
}

int jobs_new(jobs **out, corral_worker *w, uv_loop_t *loop, ipc_chan *chan)
{
	jobs *j = calloc(1, sizeof *j);
	if (!j)
		return CORRAL_ENOMEM;
	j->w = w;
	j->loop = loop;
	j->chan = chan;
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
		corral_job *job = j->free_head;
		j->free_head = job->next;
		if (!j->free_head)
			j->free_tail = NULL;
		j->nfree--;
		memset(job, 0, sizeof *job);
		return job;
	}
	return calloc(1, sizeof(corral_job));
}

static void job_retire(jobs *j, corral_job *job)
{
	/* Off the in-flight list... */
	if (job->prev)
		job->prev->next = job->next;
	else
		j->inflight = job->next;
	if (job->next)
		job->next->prev = job->prev;
	j->ninflight--;
	free(job->payload);
	job->payload = NULL;
	job->len = 0;
	/* ...onto the tail of the free queue, replied flag kept. */
	job->next = NULL;
	job->prev = NULL;
	if (j->free_tail)
		j->free_tail->next = job;
	else
		j->free_head = job;
	j->free_tail = job;
	j->nfree++;
}

/* Queues one reply (data copied) and retires the job. */
static int reply(corral_job *job, int code, const void *data, size_t len)
{
	if (!job)
		return CORRAL_EINVAL;
	if (job->replied)
		return CORRAL_ESTATE;
	if (len > IPC_MAX_PAYLOAD)
		return CORRAL_ETOOLONG;
	jobs *j = job->owner;
	uint8_t *copy = malloc(len ? len : 1);
	if (!copy)
		return CORRAL_ENOMEM;
	if (len)
		memcpy(copy, data, len);
	if (j->npend == IPC_MAX_BATCH || j->pend_bytes + len > BATCH_BYTES)
		send_pending(j);
	j->pend[j->npend++] = (ipc_reply){.id = job->id, .code = code,
	                                  .data = copy, .len = (uint32_t)len};
	j->pend_bytes += len;
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

void jobs_on_message(jobs *j, const ipc_frame *f)
{
	ipc_job in[IPC_MAX_BATCH];
	uint32_t n = 0;
	int rc = ipc_unpack_jobs(f, in, &n);
	if (rc) {
		log_plain("warn: dropped a bad JOB frame: %s (%s)",
		          corral_errname(rc), corral_strerror(rc));
		return;
	}
	for (uint32_t i = 0; i < n; i++) {
		corral_job *job = job_alloc(j);
		uint8_t *copy = malloc(in[i].len ? in[i].len : 1);
		if (!job || !copy) {
			free(job);
			free(copy);
			log_plain("error: out of memory for job %llu; the "
			          "supervisor will time it out",
			          (unsigned long long)in[i].id);
			continue;
		}
		memcpy(copy, in[i].payload, in[i].len);
		job->owner = j;
		job->id = in[i].id;
		job->prio = in[i].prio >= 0 && in[i].prio <= 3 ? in[i].prio : 2;
		job->deadline = uv_now(j->loop) + in[i].timeout_ms;
		job->payload = copy;
		job->len = in[i].len;
		job->next = j->inflight;
		if (j->inflight)
			j->inflight->prev = job;
		j->inflight = job;
		j->ninflight++;
		if (j->w->ops.handle)
			j->w->ops.handle(j->w, job);
		else
			corral_job_fail(job, CORRAL_EPLUGIN,
			                "the plugin has no handle hook");
	}
}

void jobs_on_cancel(jobs *j, const ipc_frame *f)
{
	uint64_t ids[IPC_MAX_BATCH];
	uint32_t n = 0;
	if (ipc_unpack_cancel(f, ids, &n) != 0) {
		return;
	}
	for (uint32_t i = 0; i < n; i++)
		for (corral_job *job = j->inflight; job; job = job->next)
			if (job->id == ids[i])
				job->cancelled = 1;
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
	while (j->free_head) {
		corral_job *n = j->free_head->next;
		free(j->free_head);
		j->free_head = n;
	}
	while (j->inflight) {
		corral_job *n = j->inflight->next;
		free(j->inflight->payload);
		free(j->inflight);
		j->inflight = n;
	}
	free(j);
}

void jobs_free(jobs *j)
{
	if (j)
		uv_close((uv_handle_t *)&j->flush, jobs_closed);
}
