/*
 * crashy - a plugin that crashes on purpose, to exercise restarts.
 *
 * Settings:
 *   mode         segv (default), exit (exit(1)) or abort
 *   after        ms between crash chances (default 100)
 *   probability  chance of crashing at each chance, 0..1 (default 1)
 *   after=0      never crash by itself; only jobs decide
 *
 * Jobs: a payload of "crash" crashes the worker (the poison job case);
 * any other payload is echoed back.
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "corral.h"

static uv_timer_t tick;

static void crash(corral_worker *w)
{
	const char *mode = corral_setting(w, "mode");
	corral_log(w, CORRAL_LOG_WARN, "crashing now (%s)", mode ? mode : "segv");
	if (mode && strcmp(mode, "exit") == 0)
		exit(1);
	if (mode && strcmp(mode, "abort") == 0)
		abort();
	/* Die by a real SIGSEGV, without undefined behaviour, and past any
	 * handler a sanitizer runtime may have installed. */
	signal(SIGSEGV, SIG_DFL);
	raise(SIGSEGV);
}

static void maybe_crash(uv_timer_t *t)
{
	corral_worker *w = t->data;
	const char *p = corral_setting(w, "probability");
	double prob = p ? atof(p) : 1.0;
	if ((double)rand() / RAND_MAX < prob)
		crash(w);
}

static void crashy_handle(corral_worker *w, corral_job *job)
{
	size_t len;
	const char *p = corral_job_payload(job, &len);
	if (len == 5 && memcmp(p, "crash", 5) == 0)
		crash(w);
	corral_job_reply(job, p, len);
}

static int crashy_init(corral_worker *w)
{
	const char *a = corral_setting(w, "after");
	long after = a ? atol(a) : 100;
	srand((unsigned)getpid());
	uv_timer_init(corral_loop(w), &tick);
	tick.data = w;
	if (after > 0)
		uv_timer_start(&tick, maybe_crash, (uint64_t)after,
		               (uint64_t)after);
	return 0;
}

static void crashy_stop(corral_worker *w)
{
	(void)w;
	uv_close((uv_handle_t *)&tick, NULL);
}

CORRAL_PLUGIN(.name = "crashy", .init = crashy_init, .stop = crashy_stop,
              .handle = crashy_handle);
