/*
 * echo - answers every job with its own payload.  The smallest job
 * handler, and the one the job benchmarks and tests use.
 */
#include "corral.h"

static void echo_handle(corral_worker *w, corral_job *job)
{
	size_t len;
	const void *p = corral_job_payload(job, &len);
	(void)w;
	corral_job_reply(job, p, len);
}

CORRAL_PLUGIN(.name = "echo", .handle = echo_handle);
