/*
 * pool.c - see pool.h.
 *
 * Model.  Tasks live in one of four places, and `state` says which:
 *
 *   STAGED   loop thread's private staging lists, one per lane: a loop
 *            turn's first submission is spliced onto its lane at once,
 *            the rest of the turn's once, from a uv_prepare callback (or
 *            every FLUSH_AT tasks); a splice does not touch the tasks, so
 *            a STAGED task whose `gen` is older than the pool's flush_gen
 *            is QUEUED;
 *   QUEUED   one of the four lane lists, under `mu`;
 *   RUNNING  taken by a pool thread (maybe not started: threads take a
 *            small batch per lock and give the rest back if a higher lane
 *            fills meanwhile);
 *   DONE     on the completion list (under `cmu`), then handed to the
 *            loop in one uv_async wake-up and freed after its done ran.
 *
 * Locks: `mu` guards the lanes and thread bookkeeping; `cmu` guards the
 * completion list.  They are never held together (a thread drops `mu`
 * before it runs work and takes `cmu` only to post), so there is no lock
 * order to get wrong.  No callback runs under either, and no futex call
 * is made under `mu` by the loop: flush() takes the threads to wake off
 * the idle stack under the lock and signals them after dropping it.  A
 * wake-up cannot be lost: a thread tests nqueued and parks itself on the
 * idle stack under `mu`, and leaves its wait only once taken off it (or
 * at stop); at worst one wakes for work another took.  Counters read
 * outside the locks are atomics.
 *
 * Idle threads wait on their own condvar, on a stack: the most recently
 * idle is woken first, its cache warm and its CPU likely still awake,
 * and a lightly loaded pool keeps using the same few threads.
 *
 * Fast path (loop thread): submit_loop() takes a task from a private slab
 * and stages it -- no lock, no atomic read-modify-write.  The turn's first
 * task goes to its lane at once (one lock, and one futex wake-up if a
 * thread sleeps), as uv_queue_work() would, so that a lone task does not
 * wait for the end of the turn; later ones in that turn go together from
 * the prepare callback, many tasks per lock and per wake-up.  Pool threads
 * take many tasks per lock and post completions per batch, so the loop
 * wakes once per batch, not once per task; the clock is read coarsely, and
 * precisely only for 1 task in SAMPLE_EVERY (for the wait/run figures).
 *
 * Slow path: a submission from another thread goes straight to the lane
 * under `mu` and signals under it (it is rare, and the pool may be freed
 * once it returns).
 *
 * Nothing spins, on either side.  An idle pool is threads asleep on `cv`
 * and a loop asleep in its poll, and costs no CPU.  Spinning was tried:
 * one thread spun 50 us for work after each batch and the loop polled
 * without blocking as long after each submission.  On the 2-vCPU VM the
 * kernel puts a woken thread on its waker's CPU, so the loop woken by a
 * completion waited out the spinner that had just posted it, and a pool
 * thread woken by a submission waited out the loop's polling: a lone task
 * took 110-125 us against uv_queue_work's 20-30 us (bench/pool, isolated
 * rows).  Without spinning, and with the wake-up after the unlock (the
 * woken thread does not go back to sleep on `mu`, which uv_queue_work's
 * signal under its lock costs), it takes 12-25 us; waking the most
 * recently idle thread takes a few more off at 1 ms gaps.
 *
 * Slab memory is kept until pool_free(): the pool holds on to its
 * high-water mark of tasks in flight.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/hist.h"
#include "pool/pool.h"

#define FLUSH_AT 512     /* staged tasks that trigger an early flush */
#define BATCH_MAX 128    /* tasks a pool thread takes per lock */
#define BATCH_NS 20000   /* ...but only about this much work at a time */
#define SAMPLE_EVERY 16  /* 1 task in N is timed precisely */
#define SLAB_TASKS 256   /* tasks per allocation on the loop thread */
#define CRIT_STREAK 16   /* criticals served before an aged task gets in */
#define SWEEP_MS 5       /* deadline check period while any is queued */

enum { T_STAGED, T_QUEUED, T_RUNNING, T_DONE };

/* One cache line: a task crosses cores twice (to a pool thread and back),
 * and a line is what moves. */
struct corral_task {
	_Alignas(64) corral_task *next;
	corral_task *prev;
	corral_work_fn work;
	corral_done_fn done;
	void *arg;
	union { /* sampled tasks only */
		uint64_t enq_ns;  /* set at submit... */
		struct {          /* ...replaced by what the pool thread saw */
			uint32_t wait_us, run_us;
		} seen;
	} tm;
	uint32_t enq_ms;      /* pool clock (pool_ms): aging */
	uint32_t deadline_ms; /* pool clock; 0 = none */
	uint32_t gen;         /* flush_gen when staged */
	int8_t status;        /* 0 or a small negative corral_err */
	uint8_t lane : 2;
	uint8_t sampled : 1;
	uint8_t foreign : 1;  /* malloc()ed by another thread: free(), no slab */
	_Atomic uint8_t state;
	_Atomic uint8_t cancel;
};
_Static_assert(sizeof(struct corral_task) == 64, "a task is one line");

typedef struct tlist {
	corral_task *head, *tail;
} tlist;

typedef struct pool_thread {
	pool *pool;
	unsigned id;
	pthread_t tid;
	uint64_t task_ns; /* moving average of this thread's task time */
	/* Under the pool's mu: a thread without work pushes itself on the
	 * idle stack and sleeps on its own cv until it is taken off. */
	pthread_cond_t cv;
	struct pool_thread *idle_next;
	int parked;             /* on the idle stack */
	/* pool_ms + 1 when its current task started; 0 = idle.  Own cache
	 * line: written per task by this thread, read by pool_stats_take. */
	_Alignas(64) _Atomic uint32_t running_since;
} pool_thread;

struct pool {
	uv_loop_t *loop;
	pool_config cfg;
	pthread_t loop_tid;
	uv_async_t async;
	uv_prepare_t prepare;
	uv_timer_t sweep;
	int open_handles;

	/* Loop thread only. */
	tlist staged[POOL_LANES];
	unsigned nstaged;
	unsigned staged_lane[POOL_LANES];
	int eager_done;         /* this loop turn's first task went at once */
	uint32_t flush_gen;
	corral_task *freelist;
	void **slabs;
	size_t nslabs;
	uint64_t epoch_ms;      /* coarse clock at pool_new: pool_ms() is 0 */
	uint32_t now_ms;        /* pool_ms(), refreshed every 64 submits */
	unsigned queued_seen;   /* lane total at the last look (for EBUSY) */
	uint64_t loop_submitted, loop_outstanding;
	uint64_t completed, expired, cancelled;
	hist wait_h, run_h;
	void (*drain_fn)(void *);
	void *drain_arg;
	int draining;

	/* Any thread. */
	atomic_uint_fast64_t foreign_outstanding, foreign_submitted, rejected;
	atomic_uint nstaged_pub;          /* nstaged, for other submitters */
	atomic_uint nlane[POOL_LANES];    /* queued, by lane */
	atomic_uint ndeadline;            /* queued tasks with a deadline */
	atomic_int want_drain;            /* an EBUSY happened */
	atomic_int closed;                /* submissions refused */

	/* Under mu. */
	pthread_mutex_t mu;
	tlist lanes[POOL_LANES];
	unsigned nqueued;
	pool_thread *idle_top; /* idle stack: the most recently idle first */
	unsigned crit_streak;
	int stop;

	/* Under cmu. */
	pthread_mutex_t cmu;
	tlist done;

	pool_thread *threads;
	unsigned nthreads;
	pool_thread **woken; /* flush()'s scratch, nthreads long (loop) */
};

static _Thread_local unsigned tl_sample;

/* ---- clocks ---- */

static uint64_t coarse_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static uint64_t precise_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Milliseconds since the pool started, on the coarse clock; 32 bits, so
 * compare with wrap-safe differences. */
static uint32_t pool_ms(const pool *p)
{
	return (uint32_t)(coarse_ms() - p->epoch_ms);
}

/* ---- lists ---- */

static void tl_push_tail(tlist *l, corral_task *t)
{
	t->next = NULL;
	t->prev = l->tail;
	if (l->tail)
		l->tail->next = t;
	else
		l->head = t;
	l->tail = t;
}

static void tl_push_head(tlist *l, corral_task *t)
{
	t->prev = NULL;
	t->next = l->head;
	if (l->head)
		l->head->prev = t;
	else
		l->tail = t;
	l->head = t;
}

static void tl_unlink(tlist *l, corral_task *t)
{
	if (t->prev)
		t->prev->next = t->next;
	else
		l->head = t->next;
	if (t->next)
		t->next->prev = t->prev;
	else
		l->tail = t->prev;
	t->next = t->prev = NULL;
}

/* Appends one task to a completion list (singly linked through next). */
static void tl_append(tlist *l, corral_task *t)
{
	t->next = NULL;
	if (l->tail)
		l->tail->next = t;
	else
		l->head = t;
	l->tail = t;
}

/* Appends all of src to dst (completion lists). */
static void tl_splice(tlist *dst, tlist *src)
{
	if (!src->head)
		return;
	if (dst->tail)
		dst->tail->next = src->head;
	else
		dst->head = src->head;
	dst->tail = src->tail;
	src->head = src->tail = NULL;
}

/* ---- picking (under mu) ---- */

static unsigned queued_total(pool *p)
{
	unsigned n = 0;
	for (int l = 0; l < POOL_LANES; l++)
		n += atomic_load_explicit(&p->nlane[l], memory_order_relaxed);
	return n;
}

/* Unlinks t from its lane; the caller settles nlane[] (batched). */
static void unlink_locked(pool *p, corral_task *t)
{
	tl_unlink(&p->lanes[t->lane], t);
	p->nqueued--;
	if (t->deadline_ms)
		atomic_fetch_sub_explicit(&p->ndeadline, 1,
		                          memory_order_relaxed);
}

static void dequeue_locked(pool *p, corral_task *t)
{
	unlink_locked(p, t);
	atomic_fetch_sub_explicit(&p->nlane[t->lane], 1, memory_order_relaxed);
}

static void enqueue_locked(pool *p, corral_task *t, int at_head)
{
	atomic_store_explicit(&t->state, T_QUEUED, memory_order_relaxed);
	if (at_head)
		tl_push_head(&p->lanes[t->lane], t);
	else
		tl_push_tail(&p->lanes[t->lane], t);
	p->nqueued++;
	atomic_fetch_add_explicit(&p->nlane[t->lane], 1, memory_order_relaxed);
	if (t->deadline_ms)
		atomic_fetch_add_explicit(&p->ndeadline, 1,
		                          memory_order_relaxed);
}

/*
 * The lane to serve next: critical first; otherwise a head that has waited
 * `aging` beats newer heads of higher lanes (oldest aged first); otherwise
 * the highest non-empty lane.  After CRIT_STREAK critical picks in a row,
 * an aged lane goes first once.  -1 if all are empty.
 */
static int pick_lane_locked(pool *p, uint32_t now)
{
	int aged = -1;
	uint32_t oldest = 0;
	for (int l = 1; l < POOL_LANES; l++) {
		corral_task *h = p->lanes[l].head;
		uint32_t age = h ? now - h->enq_ms : 0;
		if (h && age >= p->cfg.aging_ms && (aged < 0 || age > oldest)) {
			aged = l;
			oldest = age;
		}
	}
	if (p->lanes[0].head && !(aged >= 0 && p->crit_streak >= CRIT_STREAK)) {
		p->crit_streak++;
		return 0;
	}
	p->crit_streak = 0;
	if (aged >= 0)
		return aged;
	for (int l = 1; l < POOL_LANES; l++)
		if (p->lanes[l].head)
			return l;
	return -1;
}

/* Takes up to `want` tasks from the head of one lane (FIFO). */
static unsigned take_batch_locked(pool *p, uint32_t now, unsigned want,
                                  corral_task **batch)
{
	int l = pick_lane_locked(p, now);
	if (l < 0)
		return 0;
	tlist *q = &p->lanes[l];
	unsigned n = 0, deadlines = 0;
	corral_task *t = q->head;
	while (t && n < want) {
		atomic_store_explicit(&t->state, T_RUNNING, memory_order_relaxed);
		deadlines += t->deadline_ms != 0;
		batch[n++] = t;
		t = t->next;
	}
	q->head = t;
	if (t)
		t->prev = NULL;
	else
		q->tail = NULL;
	p->nqueued -= n;
	atomic_fetch_sub_explicit(&p->nlane[l], n, memory_order_relaxed);
	if (deadlines)
		atomic_fetch_sub_explicit(&p->ndeadline, deadlines,
		                          memory_order_relaxed);
	return n;
}


static int higher_waiting(pool *p, unsigned lane)
{
	for (unsigned l = 0; l < lane; l++)
		if (atomic_load_explicit(&p->nlane[l], memory_order_relaxed))
			return 1;
	return 0;
}

/* Under mu: takes up to n threads off the idle stack into out, the most
 * recently idle first (its cache is warm, its CPU likely still awake). */
static unsigned unpark_locked(pool *p, unsigned n, pool_thread **out)
{
	unsigned k = 0;
	while (k < n && p->idle_top) {
		pool_thread *t = p->idle_top;
		p->idle_top = t->idle_next;
		t->parked = 0;
		out[k++] = t;
	}
	return k;
}

/* ---- pool threads ---- */

static int expired(const corral_task *t, uint32_t now)
{
	return t->deadline_ms && (int32_t)(now - t->deadline_ms) > 0;
}

static void run_task(pool_thread *pt, corral_task *t, uint32_t now)
{
	int status = 0;
	if (atomic_load_explicit(&t->cancel, memory_order_acquire)) {
		status = CORRAL_ECANCELED;
	} else if (expired(t, now)) {
		status = CORRAL_ETIMEDOUT;
	} else {
		atomic_store_explicit(&pt->running_since, now + 1,
		                      memory_order_relaxed);
		uint64_t start = t->sampled ? precise_ns() : 0;
		t->work(t, t->arg);
		if (t->sampled) {
			uint64_t end = precise_ns();
			uint64_t enq = t->tm.enq_ns;
			t->tm.seen.wait_us = (uint32_t)((start - enq) / 1000);
			t->tm.seen.run_us = (uint32_t)((end - start) / 1000);
		}
		atomic_store_explicit(&pt->running_since, 0,
		                      memory_order_relaxed);
		if (atomic_load_explicit(&t->cancel, memory_order_acquire))
			status = CORRAL_ECANCELED;
	}
	t->status = (int8_t)status;
	atomic_store_explicit(&t->state, T_DONE, memory_order_release);
}

static void *thread_main(void *arg)
{
	pool_thread *pt = arg;
	pool *p = pt->pool;
	corral_task *batch[BATCH_MAX];
	char name[16];
	snprintf(name, sizeof name, "%.12s-%u", p->cfg.name, pt->id + 1);
	pthread_setname_np(pthread_self(), name);

	for (;;) {
		pthread_mutex_lock(&p->mu);
		/* No spinning, before or after work: see the top. */
		while (!p->stop && p->nqueued == 0) {
			pt->idle_next = p->idle_top;
			p->idle_top = pt;
			pt->parked = 1;
			while (pt->parked && !p->stop)
				pthread_cond_wait(&pt->cv, &p->mu);
		}
		if (p->nqueued == 0) { /* stop, and nothing left */
			pthread_mutex_unlock(&p->mu);
			break;
		}
		/* Many tiny tasks per lock, but long ones one at a time, so
		 * that threads share CPU-bound work evenly. */
		unsigned want = p->nqueued / p->nthreads;
		uint64_t by_time = BATCH_NS / (pt->task_ns ? pt->task_ns : 1);
		if (want > by_time)
			want = (unsigned)by_time;
		if (want < 1)
			want = 1;
		if (want > BATCH_MAX)
			want = BATCH_MAX;
		uint32_t now = pool_ms(p);
		unsigned n = take_batch_locked(p, now, want, batch);
		pthread_mutex_unlock(&p->mu);
		corral_task *t;

		tlist done = {NULL, NULL};
		uint64_t t0 = precise_ns();
		unsigned i;
		for (i = 0; i < n; i++) {
			t = batch[i];
			if (i > 0 && higher_waiting(p, t->lane))
				break; /* give the rest back, serve the higher */
			/* The clock matters for deadlines; otherwise the
			 * batch's reading is fresh enough (batches are short). */
			if (t->deadline_ms || (i & 15) == 15)
				now = pool_ms(p);
			run_task(pt, t, now);
			tl_append(&done, t);
		}
		if (i) {
			uint64_t per = (precise_ns() - t0) / i;
			pt->task_ns = pt->task_ns ? (pt->task_ns * 3 + per) / 4
			                          : per;
		}
		if (i < n) {
			pthread_mutex_lock(&p->mu);
			for (unsigned j = n; j-- > i;)
				enqueue_locked(p, batch[j], 1);
			pthread_mutex_unlock(&p->mu);
		}
		if (done.head) {
			pthread_mutex_lock(&p->cmu);
			tl_splice(&p->done, &done);
			pthread_mutex_unlock(&p->cmu);
			uv_async_send(&p->async);
		}
	}
	return NULL;
}

/* ---- loop side ---- */

static uint64_t outstanding(pool *p)
{
	return p->loop_outstanding +
	       atomic_load_explicit(&p->foreign_outstanding,
	                            memory_order_relaxed);
}

/* Loop thread: from the free list, growing it a slab at a time. */
static corral_task *task_alloc_loop(pool *p)
{
	if (!p->freelist) {
		void **ns = realloc(p->slabs, (p->nslabs + 1) * sizeof *ns);
		if (!ns)
			return NULL;
		p->slabs = ns;
		corral_task *slab =
		    aligned_alloc(64, SLAB_TASKS * sizeof *slab);
		if (!slab)
			return NULL;
		p->slabs[p->nslabs++] = slab;
		for (int i = SLAB_TASKS - 1; i >= 0; i--) {
			slab[i].next = p->freelist;
			p->freelist = &slab[i];
		}
	}
	corral_task *t = p->freelist;
	p->freelist = t->next;
	t->foreign = 0;
	return t;
}

static void task_free(pool *p, corral_task *t)
{
	if (t->foreign) {
		free(t);
		return;
	}
	t->next = p->freelist;
	p->freelist = t;
}

static void maybe_release_loop(pool *p)
{
	if (p->draining && outstanding(p) == 0)
		uv_unref((uv_handle_t *)&p->async);
}

/* Runs done for each task of a completed list, then recycles them. */
static void complete_list(pool *p, corral_task *t)
{
	while (t) {
		corral_task *next = t->next;
		switch (t->status) {
		case 0:
			p->completed++;
			if (t->sampled) {
				hist_add(&p->wait_h, t->tm.seen.wait_us);
				hist_add(&p->run_h, t->tm.seen.run_us);
			}
			break;
		case CORRAL_ETIMEDOUT:
			p->expired++;
			break;
		case CORRAL_ECANCELED:
			p->cancelled++;
			break;
		}
		if (t->foreign)
			atomic_fetch_sub_explicit(&p->foreign_outstanding, 1,
			                          memory_order_relaxed);
		else
			p->loop_outstanding--;
		t->done(t, t->status, t->arg);
		task_free(p, t);
		t = next;
	}
	if (atomic_load_explicit(&p->want_drain, memory_order_relaxed) &&
	    p->nstaged + queued_total(p) <= p->cfg.max_queue / 2) {
		atomic_store_explicit(&p->want_drain, 0, memory_order_relaxed);
		if (p->drain_fn)
			p->drain_fn(p->drain_arg);
	}
	maybe_release_loop(p);
}

static void on_sweep(uv_timer_t *h);

static void sweep_start(pool *p)
{
	if (!uv_is_active((uv_handle_t *)&p->sweep))
		uv_timer_start(&p->sweep, on_sweep, SWEEP_MS, SWEEP_MS);
}

static void on_async(uv_async_t *h)
{
	pool *p = h->data;
	pthread_mutex_lock(&p->cmu);
	corral_task *t = p->done.head;
	p->done.head = p->done.tail = NULL;
	pthread_mutex_unlock(&p->cmu);
	if (atomic_load_explicit(&p->ndeadline, memory_order_relaxed))
		sweep_start(p); /* a foreign thread queued a deadline */
	complete_list(p, t);
}

/* Moves staged tasks to the lanes under one lock and wakes as many
 * sleeping threads as there are tasks, the most recently idle first; the
 * futex calls come after the unlock, so a thread woken on another core
 * does not wake into a held lock. */
static void flush(pool *p)
{
	if (!p->nstaged)
		return;
	unsigned n = p->nstaged;
	pthread_mutex_lock(&p->mu);
	for (int l = 0; l < POOL_LANES; l++) {
		tlist *s = &p->staged[l], *q = &p->lanes[l];
		if (!s->head)
			continue;
		/* Splice, keeping prev links: the lanes are doubly linked. */
		s->head->prev = q->tail;
		if (q->tail)
			q->tail->next = s->head;
		else
			q->head = s->head;
		q->tail = s->tail;
		s->head = s->tail = NULL;
		atomic_fetch_add_explicit(&p->nlane[l], p->staged_lane[l],
		                          memory_order_relaxed);
		p->staged_lane[l] = 0;
	}
	p->flush_gen++; /* every STAGED task with an older gen is queued */
	p->nqueued += n;
	p->queued_seen = p->nqueued;
	unsigned nw = unpark_locked(p, n, p->woken);
	pthread_mutex_unlock(&p->mu);
	p->nstaged = 0;
	atomic_store_explicit(&p->nstaged_pub, 0, memory_order_relaxed);
	/* A thread taken off the stack may wake on its own first (and find
	 * the work, or none): then this signal reaches nobody, harmlessly.
	 * No wake-up is lost: a thread tests nqueued, and leaves its wait
	 * only once off the stack, under mu. */
	for (unsigned i = 0; i < nw; i++)
		pthread_cond_signal(&p->woken[i]->cv);
}

/* The end of a loop turn in which something was submitted: the tasks
 * staged since the first go now, and the next turn's first task will go
 * at once again. */
static void on_prepare(uv_prepare_t *h)
{
	pool *p = h->data;
	uv_prepare_stop(h);
	p->eager_done = 0;
	flush(p);
}

/* Expires queued tasks whose deadline has passed. */
static void on_sweep(uv_timer_t *h)
{
	pool *p = h->data;
	uint32_t now = pool_ms(p);
	tlist gone = {NULL, NULL};
	pthread_mutex_lock(&p->mu);
	for (int l = 0; l < POOL_LANES; l++) {
		for (corral_task *t = p->lanes[l].head, *next; t; t = next) {
			next = t->next;
			if (expired(t, now)) {
				dequeue_locked(p, t);
				t->status = (int8_t)CORRAL_ETIMEDOUT;
				atomic_store_explicit(&t->state, T_DONE,
				                      memory_order_relaxed);
				tl_append(&gone, t);
			}
		}
	}
	pthread_mutex_unlock(&p->mu);
	if (!atomic_load_explicit(&p->ndeadline, memory_order_relaxed))
		uv_timer_stop(&p->sweep);
	complete_list(p, gone.head);
}

static int reject(pool *p)
{
	atomic_fetch_add_explicit(&p->rejected, 1, memory_order_relaxed);
	atomic_store_explicit(&p->want_drain, 1, memory_order_relaxed);
	return CORRAL_EBUSY;
}

static void task_init(corral_task *t, int prio, corral_work_fn work,
                      corral_done_fn done, void *arg)
{
	t->next = t->prev = NULL;
	t->work = work;
	t->done = done;
	t->arg = arg;
	t->deadline_ms = 0;
	t->status = 0;
	t->lane = (uint8_t)prio & 3;
	t->sampled = 0;
	atomic_store_explicit(&t->cancel, 0, memory_order_relaxed);
	if (++tl_sample % SAMPLE_EVERY == 0) {
		t->sampled = 1;
		t->tm.enq_ns = precise_ns();
	}
}

/* Deadline on the pool clock; 0 means none, so a sum of 0 becomes 1. */
static uint32_t deadline_at(uint32_t enq, uint64_t after_ms)
{
	if (after_ms > INT32_MAX / 2)
		after_ms = INT32_MAX / 2; /* ~12 days: wrap-safe compares */
	uint32_t d = enq + (uint32_t)after_ms;
	return d ? d : 1;
}

static int submit_loop(pool *p, int prio, corral_work_fn work,
                       corral_done_fn done, void *arg,
                       const corral_task_opts *opts, corral_task **out)
{
	/* queued_seen only grows stale upwards (threads take work); look
	 * again before saying busy. */
	if (p->nstaged + p->queued_seen >= p->cfg.max_queue) {
		p->queued_seen = queued_total(p);
		if (p->nstaged + p->queued_seen >= p->cfg.max_queue)
			return reject(p);
	}
	corral_task *t = task_alloc_loop(p);
	if (!t)
		return CORRAL_ENOMEM;
	task_init(t, prio, work, done, arg);
	t->foreign = 0;
	if (p->nstaged == 0 || (p->loop_submitted & 63) == 0)
		p->now_ms = pool_ms(p);
	t->enq_ms = p->now_ms;
	if (opts && opts->deadline_ms) {
		t->enq_ms = pool_ms(p);
		t->deadline_ms = deadline_at(t->enq_ms, opts->deadline_ms);
		atomic_fetch_add_explicit(&p->ndeadline, 1,
		                          memory_order_relaxed);
		sweep_start(p);
	}
	p->loop_submitted++;
	p->loop_outstanding++;
	if (out)
		*out = t;
	atomic_store_explicit(&t->state, T_STAGED, memory_order_relaxed);
	t->gen = p->flush_gen;
	tl_push_tail(&p->staged[t->lane], t);
	p->staged_lane[t->lane]++;
	atomic_store_explicit(&p->nstaged_pub, ++p->nstaged,
	                      memory_order_relaxed);
	if (!p->eager_done) {
		/* The turn's first task: at once, as uv_queue_work would, so
		 * that a lone task does not wait for the end of the turn. */
		p->eager_done = 1;
		flush(p);
		uv_prepare_start(&p->prepare, on_prepare);
	} else if (p->nstaged >= FLUSH_AT) {
		flush(p);
	}
	return 0;
}

/* Another thread: straight to the lanes, under the lock. */
static int submit_foreign(pool *p, int prio, corral_work_fn work,
                          corral_done_fn done, void *arg,
                          const corral_task_opts *opts, corral_task **out)
{
	corral_task *t = aligned_alloc(64, sizeof *t);
	if (!t)
		return CORRAL_ENOMEM;
	task_init(t, prio, work, done, arg);
	t->foreign = 1;
	t->enq_ms = pool_ms(p);
	if (opts && opts->deadline_ms)
		t->deadline_ms = deadline_at(t->enq_ms, opts->deadline_ms);
	int has_deadline = t->deadline_ms != 0;
	if (out)
		*out = t;
	pthread_mutex_lock(&p->mu);
	if (p->nqueued + atomic_load_explicit(&p->nstaged_pub,
	                                      memory_order_relaxed) >=
	    p->cfg.max_queue) {
		pthread_mutex_unlock(&p->mu);
		free(t);
		return reject(p);
	}
	atomic_fetch_add_explicit(&p->foreign_submitted, 1,
	                          memory_order_relaxed);
	atomic_fetch_add_explicit(&p->foreign_outstanding, 1,
	                          memory_order_relaxed);
	enqueue_locked(p, t, 0);
	pool_thread *one;
	if (unpark_locked(p, 1, &one))
		pthread_cond_signal(&one->cv);
	pthread_mutex_unlock(&p->mu);
	/* From here t may already be done and freed: do not touch it. */
	if (has_deadline)
		uv_async_send(&p->async); /* the loop starts the sweep */
	return 0;
}

int pool_submit(pool *p, int prio, corral_work_fn work, corral_done_fn done,
                void *arg, const corral_task_opts *opts, corral_task **out)
{
	if (!p || !work || !done || prio < 0 || prio >= POOL_LANES)
		return CORRAL_EINVAL;
	if (atomic_load_explicit(&p->closed, memory_order_relaxed))
		return CORRAL_ESTATE;
	if (pthread_equal(pthread_self(), p->loop_tid))
		return submit_loop(p, prio, work, done, arg, opts, out);
	return submit_foreign(p, prio, work, done, arg, opts, out);
}

/* Queues t (already off every list) for completion on the next wake. */
static void complete_later(pool *p, corral_task *t, int status)
{
	t->status = (int8_t)status;
	atomic_store_explicit(&t->state, T_DONE, memory_order_relaxed);
	pthread_mutex_lock(&p->cmu);
	tl_append(&p->done, t);
	pthread_mutex_unlock(&p->cmu);
	uv_async_send(&p->async);
}

int pool_task_cancel(pool *p, corral_task *t)
{
	if (!p || !t)
		return CORRAL_EINVAL;
	int st = atomic_load_explicit(&t->state, memory_order_acquire);
	if (st == T_STAGED && t->gen != p->flush_gen)
		st = T_QUEUED; /* spliced onto its lane since */
	switch (st) {
	case T_STAGED:
		tl_unlink(&p->staged[t->lane], t);
		p->nstaged--;
		atomic_store_explicit(&p->nstaged_pub, p->nstaged,
		                      memory_order_relaxed);
		p->staged_lane[t->lane]--;
		if (t->deadline_ms)
			atomic_fetch_sub_explicit(&p->ndeadline, 1,
			                          memory_order_relaxed);
		complete_later(p, t, CORRAL_ECANCELED);
		return 0;
	case T_QUEUED:
		pthread_mutex_lock(&p->mu);
		st = atomic_load_explicit(&t->state, memory_order_relaxed);
		if (st == T_QUEUED || st == T_STAGED) {
			dequeue_locked(p, t);
			pthread_mutex_unlock(&p->mu);
			complete_later(p, t, CORRAL_ECANCELED);
			return 0;
		}
		pthread_mutex_unlock(&p->mu);
		/* A thread took it meanwhile: flag it, as below. */
		/* fallthrough */
	case T_RUNNING:
		atomic_store_explicit(&t->cancel, 1, memory_order_release);
		return 0;
	default:
		return CORRAL_ESTATE; /* ran already; done is on its way */
	}
}

int pool_task_cancelled(const corral_task *t)
{
	return atomic_load_explicit(&((corral_task *)t)->cancel,
	                            memory_order_acquire) != 0;
}

void pool_on_drain(pool *p, void (*fn)(void *), void *arg)
{
	p->drain_fn = fn;
	p->drain_arg = arg;
}

uint64_t pool_outstanding(const pool *p)
{
	return outstanding((pool *)p);
}

void pool_stats_take(pool *p, pool_stats *s)
{
	memset(s, 0, sizeof *s);
	s->submitted = p->loop_submitted +
	               atomic_load_explicit(&p->foreign_submitted,
	                                    memory_order_relaxed);
	s->rejected = atomic_load_explicit(&p->rejected, memory_order_relaxed);
	s->completed = p->completed;
	s->expired = p->expired;
	s->cancelled = p->cancelled;
	for (int l = 0; l < POOL_LANES; l++)
		s->queued[l] = atomic_load_explicit(&p->nlane[l],
		                                    memory_order_relaxed) +
		               p->staged_lane[l];
	uint32_t now = pool_ms(p) + 1, oldest = 0;
	for (unsigned i = 0; i < p->nthreads; i++) {
		uint32_t since = atomic_load_explicit(
		    &p->threads[i].running_since, memory_order_relaxed);
		if (since) {
			s->running++;
			if (now - since > oldest && (int32_t)(now - since) > 0)
				oldest = now - since;
		}
	}
	s->oldest_running_ms = oldest;
	s->wait_p50_us = hist_pct(&p->wait_h, 50);
	s->wait_p99_us = hist_pct(&p->wait_h, 99);
	s->run_p50_us = hist_pct(&p->run_h, 50);
	s->run_p99_us = hist_pct(&p->run_h, 99);
	hist_reset(&p->wait_h);
	hist_reset(&p->run_h);
}

void pool_drain(pool *p, int cancel)
{
	if (p->draining)
		return;
	p->draining = 1;
	atomic_store(&p->closed, 1);
	flush(p);
	if (cancel) {
		tlist gone = {NULL, NULL};
		pthread_mutex_lock(&p->mu);
		for (int l = 0; l < POOL_LANES; l++) {
			while (p->lanes[l].head) {
				corral_task *t = p->lanes[l].head;
				dequeue_locked(p, t);
				t->status = (int8_t)CORRAL_ECANCELED;
				atomic_store_explicit(&t->state, T_DONE,
				                      memory_order_relaxed);
				tl_append(&gone, t);
			}
		}
		pthread_mutex_unlock(&p->mu);
		/* Running tasks are flagged by the caller's cancels, if any;
		 * a thread's batch not yet started still runs. */
		if (gone.head) {
			pthread_mutex_lock(&p->cmu);
			tl_splice(&p->done, &gone);
			pthread_mutex_unlock(&p->cmu);
			uv_async_send(&p->async);
		}
	}
	maybe_release_loop(p);
}

static void handle_closed(uv_handle_t *h)
{
	pool *p = h->data;
	if (--p->open_handles > 0)
		return;
	for (size_t i = 0; i < p->nslabs; i++)
		free(p->slabs[i]);
	free(p->slabs);
	pthread_mutex_destroy(&p->mu);
	pthread_mutex_destroy(&p->cmu);
	for (unsigned i = 0; i < p->nthreads; i++)
		pthread_cond_destroy(&p->threads[i].cv);
	free(p->threads);
	free(p->woken);
	free(p);
}

static void stop_threads(pool *p, unsigned n)
{
	pthread_mutex_lock(&p->mu);
	p->stop = 1;
	pool_thread *t;
	while (unpark_locked(p, 1, &t))
		;
	for (unsigned i = 0; i < p->nthreads; i++)
		pthread_cond_signal(&p->threads[i].cv);
	pthread_mutex_unlock(&p->mu);
	for (unsigned i = 0; i < n; i++)
		pthread_join(p->threads[i].tid, NULL);
}

static void close_handles(pool *p)
{
	uv_close((uv_handle_t *)&p->async, handle_closed);
	uv_close((uv_handle_t *)&p->prepare, handle_closed);
	uv_close((uv_handle_t *)&p->sweep, handle_closed);
}

void pool_free(pool *p)
{
	if (!p)
		return;
	stop_threads(p, p->nthreads);
	close_handles(p);
}

int pool_new(pool **out, uv_loop_t *loop, const pool_config *cfg)
{
	if (!cfg->threads || !cfg->max_queue)
		return CORRAL_EINVAL;
	pool *p = calloc(1, sizeof *p);
	if (!p)
		return CORRAL_ENOMEM;
	p->loop = loop;
	hist_reset(&p->wait_h);
	hist_reset(&p->run_h);
	p->cfg = *cfg;
	if (!p->cfg.name)
		p->cfg.name = "corral-pool";
	p->loop_tid = pthread_self();
	p->epoch_ms = coarse_ms();
	p->now_ms = 0;
	p->threads = calloc(cfg->threads, sizeof *p->threads);
	p->woken = calloc(cfg->threads, sizeof *p->woken);
	if (!p->threads || !p->woken) {
		free(p->threads);
		free(p->woken);
		free(p);
		return CORRAL_ENOMEM;
	}
	pthread_mutex_init(&p->mu, NULL);
	pthread_mutex_init(&p->cmu, NULL);
	for (unsigned i = 0; i < cfg->threads; i++)
		pthread_cond_init(&p->threads[i].cv, NULL);
	uv_async_init(loop, &p->async, on_async);
	uv_prepare_init(loop, &p->prepare);
	uv_timer_init(loop, &p->sweep);
	p->async.data = p->prepare.data = p->sweep.data = p;
	p->open_handles = 3;
	uv_unref((uv_handle_t *)&p->sweep);

	p->nthreads = cfg->threads; /* read by threads for batch sizes */
	for (unsigned i = 0; i < cfg->threads; i++) {
		p->threads[i].pool = p;
		p->threads[i].id = i;
		if (pthread_create(&p->threads[i].tid, NULL, thread_main,
		                   &p->threads[i]) != 0) {
			stop_threads(p, i);
			close_handles(p);
			return CORRAL_ESYS;
		}
	}
	*out = p;
	return 0;
}
