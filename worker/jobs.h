/*
 * jobs.h - the worker's side of jobs: a table of the jobs its plugin holds,
 * and replies batched into one REPLY message per loop iteration.
 */
#ifndef WORKER_JOBS_H
#define WORKER_JOBS_H

#include <stdint.h>
#include <uv.h>

#include "ipc/chan.h"
#include "ipc/proto.h"

typedef struct corral_worker corral_worker;
typedef struct jobs jobs;

int jobs_new(jobs **out, corral_worker *w, uv_loop_t *loop, ipc_chan *chan);
/* A decoded JOB message: hands each job to the plugin's handle hook.  The
 * jobs keep the message (their payloads lie in it): f->msg is taken, and
 * NULL on return. */
void jobs_on_message(jobs *j, ipc_frame *f);
/* A decoded CANCEL message. */
void jobs_on_cancel(jobs *j, const ipc_frame *f);
/* Jobs held by the plugin, not yet replied to. */
uint32_t jobs_inflight(const jobs *j);
/* Jobs answered (replied to or failed) since the worker started. */
uint64_t jobs_done(const jobs *j);
/* Sends what is pending now (before the channel closes). */
void jobs_flush(jobs *j);
void jobs_free(jobs *j);

#endif
