/*
 * sup.c - the supervisor's top level: start every slot, turn signals into
 * shutdown, and end the loop once every slot is at rest.
 *
 * Signal handlers are uv_signal_t callbacks on the loop, so they only ever
 * run between other events: the first SIGTERM/SIGINT asks every slot to stop
 * (STOP message, deadline shutdown_timeout); the second kills what is left.
 * Shutdown completes in sup_check_done(), which every path that can leave a
 * slot at rest calls.
 */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "corral.h"
#include "common/log.h"
#include "common/rundir.h"
#include "master/sup.h"

uint64_t sup_now_ms(const sup *s)
{
	(void)s;
	return uv_hrtime() / 1000000u;
}

/* ipc://RUNDIR/slot-ID.GEN: a new name per spawn, because the previous
 * worker's socket may still be closing (in the background) when the next
 * one listens. */
void sup_slot_url(const sup *s, int id, unsigned gen, char *buf, size_t len)
{
	char leaf[48];
	snprintf(leaf, sizeof leaf, "slot-%d.%u", id, gen);
	rundir_url(s->rundir, leaf, buf, len);
}

/* Second step of shutdown: no jobs left (or no time left for them). */
static void stop_slots(sup *s)
{
	uv_timer_stop(&s->drain_timer);
	for (unsigned i = 0; i < s->nslots; i++)
		slot_stop(&s->slots[i]);
	sup_check_done(s);
}

static void on_drain_timeout(uv_timer_t *h)
{
	sup *s = h->data;
	log_msg("jobs: not finished within %" PRIu64 " ms; answering the rest "
	        "with shutting_down", s->cfg->shutdown_timeout_ms);
	broker_abort(s->broker);
	stop_slots(s);
}

static void on_signal(uv_signal_t *h, int signum)
{
	sup *s = h->data;
	s->signals++;
	if (s->signals == 1) {
		log_msg("received SIG%s: stopping %u worker(s), grace %" PRIu64
		        " ms", sigabbrev_np(signum), s->nslots,
		        s->cfg->shutdown_timeout_ms);
		s->stopping = 1;
		standby_stop_all(s, 0);
		/* First the jobs: no new ones, the accepted ones finish. */
		if (broker_drain(s->broker, stop_slots)) {
			stop_slots(s);
		} else {
			broker_stats st;
			broker_get_stats(s->broker, &st);
			log_msg("jobs: finishing %u queued and %u running job(s) "
			        "before stopping workers", st.queued, st.inflight);
			uv_timer_start(&s->drain_timer, on_drain_timeout,
			               s->cfg->shutdown_timeout_ms, 0);
		}
		return;
	} else if (!s->done) {
		broker_abort(s->broker);
		uv_timer_stop(&s->drain_timer);
		log_msg("received SIG%s again: killing remaining workers now",
		        sigabbrev_np(signum));
		for (unsigned i = 0; i < s->nslots; i++) {
			if (s->slots[i].proc) {
				s->had_to_kill = 1;
				slot_kill(&s->slots[i], "second shutdown signal");
			}
		}
		standby_stop_all(s, 1);
	}
	sup_check_done(s);
}

void sup_check_done(sup *s)
{
	if (s->done)
		return;
	int any_failed = 0;
	for (unsigned i = 0; i < s->nslots; i++) {
		if (!slot_is_terminal(&s->slots[i]))
			return;
		any_failed |= s->slots[i].failed;
	}
	if (!standby_idle(s)) {
		standby_stop_all(s, 0); /* nothing left to stand by for */
		return;                 /* back here when the last one exits */
	}
	s->done = 1;
	if (s->stopping) {
		s->exit_code = s->had_to_kill ? CORRAL_EXIT_KILLED : CORRAL_EXIT_OK;
		log_msg("stopped: all %u worker(s) down%s", s->nslots,
		        s->had_to_kill ? " (some had to be killed)" : "");
	} else {
		s->exit_code = any_failed ? CORRAL_EXIT_FAILED : CORRAL_EXIT_OK;
		log_msg("%s: no worker left to supervise; exiting with code %d",
		        any_failed ? "FAILED" : "done", s->exit_code);
	}
	control_close(s);
	broker_close(s->broker);
	s->broker = NULL;
	uv_close((uv_handle_t *)&s->drain_timer, NULL);
	standby_close(s);
	uv_close((uv_handle_t *)&s->sig_term, NULL);
	uv_close((uv_handle_t *)&s->sig_int, NULL);
	for (unsigned i = 0; i < s->nslots; i++)
		slot_close(&s->slots[i]);
}

int sup_init(sup *s, uv_loop_t *loop, config *cfg, const char *worker_bin,
             const char *rundir)
{
	memset(s, 0, sizeof *s);
	s->loop = loop;
	s->cfg = cfg;
	snprintf(s->worker_bin, sizeof s->worker_bin, "%s", worker_bin);
	snprintf(s->rundir, sizeof s->rundir, "%s", rundir);
	s->policy = (restart_policy){
		.delay_ms = cfg->restart_delay_ms,
		.delay_max_ms = cfg->restart_delay_max_ms,
		.min_uptime_ms = cfg->min_uptime_ms,
		.window_ms = cfg->restart_window_ms,
		.max_restarts = cfg->max_restarts,
	};
	srand((unsigned)(uv_hrtime() ^ (uint64_t)getpid()));
	s->nslots = cfg->workers ? cfg->workers : uv_available_parallelism();
	s->slots = calloc(s->nslots, sizeof *s->slots);
	if (!s->slots)
		return CORRAL_ENOMEM;
	int rc;
	unsigned i;
	for (i = 0; i < s->nslots; i++)
		if ((rc = slot_init(&s->slots[i], s, (int)i)))
			goto fail_slots;
	if ((rc = standby_init(s)))
		goto fail_standby;
	if ((rc = control_open(s)))
		goto fail_standby;
	if ((rc = broker_open(&s->broker, s))) {
		control_close(s);
		goto fail_standby;
	}
	uv_timer_init(loop, &s->drain_timer);
	s->drain_timer.data = s;
	uv_signal_init(loop, &s->sig_term);
	uv_signal_init(loop, &s->sig_int);
	s->sig_term.data = s->sig_int.data = s;
	uv_signal_start(&s->sig_term, on_signal, SIGTERM);
	uv_signal_start(&s->sig_int, on_signal, SIGINT);
	return 0;

fail_standby:
	standby_close(s);
	free(s->spares);
	s->spares = NULL;
fail_slots:
	while (i-- > 0)
		slot_close(&s->slots[i]);
	uv_run(loop, UV_RUN_NOWAIT); /* let the timer handles close */
	free(s->slots);
	s->slots = NULL;
	return rc;
}

static void remove_sockets(sup *s)
{
	char path[4300];
	snprintf(path, sizeof path, "%s/control", s->rundir);
	unlink(path);
	snprintf(path, sizeof path, "%s/jobs", s->rundir);
	unlink(path);
	rmdir(s->rundir); /* only if empty: other files are not ours to drop */
}

int sup_run(sup *s)
{
	log_msg("supervisor pid %ld: starting %u worker(s) of %s in %s",
	        (long)getpid(), s->nslots, s->cfg->plugin, s->rundir);
	for (unsigned i = 0; i < s->nslots; i++)
		slot_start(&s->slots[i]);
	sup_check_done(s); /* every spawn may already have failed */
	uv_run(s->loop, UV_RUN_DEFAULT);
	int stuck = ipc_chan_wait_closed(2000);
	if (stuck)
		log_msg("warning: %d socket(s) still closing inside nng; "
		        "exiting without them", stuck);
	remove_sockets(s);
	free(s->slots);
	s->slots = NULL;
	free(s->spares);
	s->spares = NULL;
	return s->exit_code;
}
