/*
 * hang - blocks its event loop after a delay, like a plugin stuck in an
 * endless loop or a blocking call.  Its worker stops reporting health and
 * ignores STOP; the supervisor must kill it.
 *
 * Settings:
 *   after  ms before blocking (default 500)
 */
#include <stdlib.h>
#include <unistd.h>

#include "corral.h"

static uv_timer_t tick;

static void block_forever(uv_timer_t *t)
{
	corral_log(t->data, CORRAL_LOG_WARN, "blocking the event loop now");
	for (;;)
		sleep(1);
}

static int hang_init(corral_worker *w)
{
	const char *a = corral_setting(w, "after");
	uv_timer_init(corral_loop(w), &tick);
	tick.data = w;
	uv_timer_start(&tick, block_forever, (uint64_t)(a ? atol(a) : 500), 0);
	return 0;
}

static void hang_stop(corral_worker *w)
{
	(void)w;
	uv_close((uv_handle_t *)&tick, NULL);
}

CORRAL_PLUGIN(.name = "hang", .init = hang_init, .stop = hang_stop);
