/*
 * reloady - a plugin for reload tests: echoes jobs, and misbehaves as its
 * settings say, so that a reload to it fails at a chosen step.  Test
 * fixture.
 *
 *   init_ms      init blocks this long (never READY within a short
 *                start_timeout)
 *   crash_after  ms after init, crash (SIGSEGV)...
 *   crash_slot   ...only in this slot (default: every slot)
 *   fail_if      init fails while this file exists (code that worked
 *                once and fails when it comes back)
 *   touch        init creates this file (so that a new generation can
 *                break the old one's fail_if, with no timing involved)
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "corral.h"

static uv_timer_t bomb;

static void boom(uv_timer_t *t)
{
	(void)t;
	raise(SIGSEGV);
}

static int reloady_init(corral_worker *w)
{
	const char *v;
	if ((v = corral_setting(w, "fail_if")) && access(v, F_OK) == 0) {
		corral_log(w, CORRAL_LOG_ERROR, "init: %s exists", v);
		return -1;
	}
	if ((v = corral_setting(w, "touch"))) {
		FILE *f = fopen(v, "w");
		if (f)
			fclose(f);
	}
	if ((v = corral_setting(w, "init_ms")))
		usleep((useconds_t)atoi(v) * 1000u);
	const char *after = corral_setting(w, "crash_after");
	const char *slot = corral_setting(w, "crash_slot");
	if (after && (!slot || atoi(slot) == corral_slot(w))) {
		uv_timer_init(corral_loop(w), &bomb);
		uv_timer_start(&bomb, boom, (uint64_t)atoi(after), 0);
	}
	return 0;
}

static void reloady_stop(corral_worker *w)
{
	(void)w;
	if (uv_is_active((uv_handle_t *)&bomb))
		uv_close((uv_handle_t *)&bomb, NULL);
}

static void reloady_handle(corral_worker *w, corral_job *job)
{
	size_t len;
	const void *p = corral_job_payload(job, &len);
	(void)w;
	corral_job_reply(job, p, len);
}

CORRAL_PLUGIN(.name = "reloady", .init = reloady_init,
              .stop = reloady_stop, .handle = reloady_handle);
