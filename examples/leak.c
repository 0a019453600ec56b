/*
 * leak - grows its resident memory steadily, for watching RSS in health
 * reports and `corralctl status`, and for corral's memory actions
 * (max_memory, leak_window); it echoes jobs, so that load can run
 * through it meanwhile.
 *
 * Settings:
 *   rate  bytes per second (default 1048576)
 *   max   stop growing here (default 268435456)
 */
#include <stdlib.h>
#include <string.h>

#include "corral.h"

#define TICK_MS 100

static uv_timer_t tick;
static void **blocks;
static size_t nblocks, cap_blocks, total;

static void grow(uv_timer_t *t)
{
	corral_worker *w = t->data;
	const char *r = corral_setting(w, "rate"), *m = corral_setting(w, "max");
	size_t rate = r ? strtoul(r, NULL, 10) : 1u << 20;
	size_t max = m ? strtoul(m, NULL, 10) : 256u << 20;
	size_t step = rate / (1000 / TICK_MS);
	if (step == 0 || total + step > max)
		return;
	if (nblocks == cap_blocks) {
		size_t nc = cap_blocks ? cap_blocks * 2 : 64;
		void **nb = realloc(blocks, nc * sizeof *nb);
		if (!nb)
			return;
		blocks = nb;
		cap_blocks = nc;
	}
	void *b = malloc(step);
	if (!b)
		return;
	memset(b, 0xa5, step); /* touch it: resident, not just reserved */
	blocks[nblocks++] = b;
	total += step;
	corral_metric_set(w, "leaked_bytes", (double)total);
}

static int leak_init(corral_worker *w)
{
	uv_timer_init(corral_loop(w), &tick);
	tick.data = w;
	uv_timer_start(&tick, grow, TICK_MS, TICK_MS);
	return 0;
}

static void leak_stop(corral_worker *w)
{
	(void)w;
	uv_close((uv_handle_t *)&tick, NULL);
}

static void leak_fini(corral_worker *w)
{
	(void)w;
	for (size_t i = 0; i < nblocks; i++)
		free(blocks[i]);
	free(blocks);
}

static void leak_handle(corral_worker *w, corral_job *job)
{
	size_t len;
	const void *p = corral_job_payload(job, &len);
	(void)w;
	corral_job_reply(job, p, len);
}

CORRAL_PLUGIN(.name = "leak", .init = leak_init, .stop = leak_stop,
              .fini = leak_fini, .handle = leak_handle);
