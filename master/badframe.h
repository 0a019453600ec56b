/*
 * badframe.h - the frames the supervisor drops as malformed (from control
 * clients, job clients, its own workers), told of without letting a flood
 * of them fill the log or keep the supervisor's memory.
 *
 * The log: per source, at most one line per RATELOG interval (ratelog.h);
 * the first bad frame after a quiet spell is told of as it comes, the
 * ones held back after it are counted into the next line or, once the
 * burst is over (or at close), into a summary ("N more bad requests since
 * the last such line"), so no count is lost and a 100,000-frame flood
 * costs a handful of lines.  The
 * exact total is in status (`bad_frames`), which the caller keeps.
 *
 * The memory: nng allocates each received message on its own threads,
 * and glibc gives each thread an arena of its own.  glibc's mmap
 * threshold is dynamic: the first large message (a frame up to 4 MiB) is
 * mmap()ed, and freeing it raises the threshold to its size, so every
 * later one comes out of a thread's arena -- and freeing it there leaves
 * it resident, on top of the arena, which glibc shrinks only past a trim
 * threshold raised along with the other.  Measured with tests/test_hostile
 * (100,000 garbage frames, one in 1000 over 1 MiB): +3.3 to 4.3 MiB of
 * RSS, about 1 MiB per nng thread that had received one, left after it;
 * malloc_trim(0) after it gave nothing back (it returns only the main
 * arena's top and pages inside free chunks, never a thread arena's top).
 * So badframes_init() fixes the threshold at glibc's own default
 * (BADFRAME_MMAP_THRESHOLD, which also stops the trim threshold from
 * rising): a large message is always mmap()ed and unmapped when freed.
 * The cost is an mmap per message over 128 KiB, small beside copying it.
 * The same flood then leaves 250-650 KiB, as much after 30,000 frames as
 * after 300,000 (what a first flood allocates once), with or without a
 * malloc_trim.
 *
 * Loop thread only.
 */
#ifndef MASTER_BADFRAME_H
#define MASTER_BADFRAME_H

#include <stdint.h>
#include <uv.h>

#include "common/ratelog.h"

#define BADFRAME_SETTLE_MS 1000 /* the timer's period, at most */
#define BADFRAME_MMAP_THRESHOLD (128 * 1024) /* glibc's default, fixed */

typedef enum badframe_src {
	BF_CONTROL, /* a control client's request */
	BF_JOBS,    /* a job client's request */
	BF_WORKER,  /* a worker's (or standby's) message */
	BF_NSRC
} badframe_src;

typedef struct badframes {
	uv_timer_t timer;        /* the held-back counts' summaries */
	int open;                /* the timer is initialised, not closed */
	ratelog rl[BF_NSRC];
	uint64_t total[BF_NSRC]; /* since start (the "in all" of lines) */
} badframes;

/* 0 or CORRAL_ESYS.  Also sets the process's malloc mmap threshold (see
 * above): call it once, in the supervisor. */
int badframes_init(badframes *bf, uv_loop_t *loop);
/* One frame dropped: src, who sent it ("slot 2 pid 1234"; NULL: the
 * source's name), and why (a corral_err). */
void badframes_note(badframes *bf, badframe_src src, const char *who,
                    int code);
/* Tells the counts still held back, closes the timer; bf must stay valid
 * until the loop has run once. */
void badframes_close(badframes *bf);

#endif
