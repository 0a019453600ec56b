/*
 * hello - the smallest useful plugin: logs on init, publishes a custom
 * metric, and otherwise leaves its worker idle.
 *
 * Settings ([plugin] section or corral --set):
 *   greeting    text logged at init (default "hello")
 *   stop_delay  ms of simulated in-flight work after stop (default 0): the
 *               worker exits only when it is done, as a real plugin would
 */
#include <stdlib.h>

#include "corral.h"

static uv_timer_t drain;

static int hello_init(corral_worker *w)
{
	const char *g = corral_setting(w, "greeting");
	corral_log(w, CORRAL_LOG_INFO, "%s from slot %d", g ? g : "hello",
	           corral_slot(w));
	return corral_metric_set(w, "hello_inits", 1);
}

static void drained(uv_timer_t *t)
{
	corral_log(t->data, CORRAL_LOG_INFO, "in-flight work finished");
	uv_close((uv_handle_t *)t, NULL);
}

static void hello_stop(corral_worker *w)
{
	const char *d = corral_setting(w, "stop_delay");
	long ms = d ? atol(d) : 0;
	corral_log(w, CORRAL_LOG_INFO, "stopping (finishing work for %ld ms)",
	           ms);
	if (ms <= 0)
		return;
	uv_timer_init(corral_loop(w), &drain);
	drain.data = w;
	uv_timer_start(&drain, drained, (uint64_t)ms, 0);
}

static void hello_fini(corral_worker *w)
{
	corral_log(w, CORRAL_LOG_INFO, "goodbye");
}

CORRAL_PLUGIN(.name = "hello", .init = hello_init, .stop = hello_stop,
              .fini = hello_fini);
