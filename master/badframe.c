/*
 * badframe.c - see badframe.h.
 *
 * One timer serves every source: a bad frame arms it (when idle) for
 * BADFRAME_SETTLE_MS; when it runs it writes the summary of every source
 * whose held-back lines may be told now, and re-arms itself only while
 * some source still holds lines back that it may not tell yet, never
 * sooner than BADFRAME_SETTLE_MS.  Under a sustained flood it runs about
 * once per second and writes one summary per source per interval; after
 * the flood's last frame it runs until every count has been told.
 */
#include <inttypes.h>
#include <malloc.h>
#include <stdio.h>

#include "common/log.h"
#include "corral_base.h"
#include "master/badframe.h"

static const char *const src_name[BF_NSRC] = {"control", "jobs", "workers"};

/* What such a frame is called in a line. */
static const char *what(badframe_src src)
{
	return src == BF_WORKER ? "dropped a bad frame" : "bad request";
}

/* ...and in a summary, n of them. */
static const char *whats(int src, uint64_t n)
{
	if (src == BF_WORKER)
		return n == 1 ? "bad frame" : "bad frames";
	return n == 1 ? "bad request" : "bad requests";
}

/* The count of src's lines held back since its last line. */
static void summary(const badframes *bf, int src, uint64_t held)
{
	log_warn("%s: %" PRIu64 " more %s since the last such line, not "
	         "logged one by one (%" PRIu64 " in all)", src_name[src], held,
	         whats(src, held), bf->total[src]);
}

static void on_timer(uv_timer_t *t);

static void arm(badframes *bf, uint64_t ms)
{
	if (uv_timer_start(&bf->timer, on_timer, ms ? ms : 1, 0) != 0)
		log_debug("bad frames: cannot arm the summary timer");
}

static void on_timer(uv_timer_t *t)
{
	badframes *bf = t->data;
	uint64_t held, wait = UINT64_MAX;
	for (int i = 0; i < BF_NSRC; i++) {
		if (ratelog_flush(&bf->rl[i], &held))
			summary(bf, i, held);
		else if (bf->rl[i].held && ratelog_wait_ms(&bf->rl[i]) < wait)
			wait = ratelog_wait_ms(&bf->rl[i]);
	}
	if (wait != UINT64_MAX)
		arm(bf, wait > BADFRAME_SETTLE_MS ? wait : BADFRAME_SETTLE_MS);
}

int badframes_init(badframes *bf, uv_loop_t *loop)
{
	*bf = (badframes){0};
	/* A fixed threshold: see badframe.h.  Fails (0) only under a
	 * sanitizer's allocator, which has no such knob: nothing to do then
	 * (its RSS is its own quarantine's anyway). */
	if (mallopt(M_MMAP_THRESHOLD, BADFRAME_MMAP_THRESHOLD) != 1)
		log_debug("bad frames: malloc keeps its own mmap threshold");
	if (uv_timer_init(loop, &bf->timer) != 0)
		return CORRAL_ESYS;
	bf->timer.data = bf;
	uv_unref((uv_handle_t *)&bf->timer); /* never keeps corral up */
	bf->open = 1;
	return 0;
}

void badframes_note(badframes *bf, badframe_src src, const char *who,
                    int code)
{
	uint64_t held = 0;
	bf->total[src]++;
	if (!bf->open)
		return; /* shutting down: counted only */
	if (ratelog_ok(&bf->rl[src], &held)) {
		char more[128] = "";
		if (held)
			snprintf(more, sizeof more, "; %" PRIu64 " more held "
			         "back since the last such line (%" PRIu64
			         " in all)", held, bf->total[src]);
		log_warn("%s: %s: %s (%s)%s", who ? who : src_name[src],
		         what(src), corral_strerror(code), corral_errname(code),
		         more);
	}
	if (!uv_is_active((uv_handle_t *)&bf->timer))
		arm(bf, BADFRAME_SETTLE_MS);
}

void badframes_close(badframes *bf)
{
	if (!bf->open)
		return;
	/* The last counts, however soon after the last line. */
	for (int i = 0; i < BF_NSRC; i++)
		if (bf->rl[i].held) {
			summary(bf, i, bf->rl[i].held);
			bf->rl[i].held = 0;
		}
	bf->open = 0;
	uv_close((uv_handle_t *)&bf->timer, NULL);
}
