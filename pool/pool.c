/*
 * pool.c - see pool.h.
 *
 * Model.  Tasks live in one of four places, and `state` says which:
 *
 *   STAGED   loop thread's private staging list (submissions from the loop
 *            are batched and moved to the lanes once per loop iteration,
 *            from a uv_prepare callback, or every FLUSH_AT tasks);
 *   QUEUED   one of the four lane lists, under `mu`;
 *   RUNNING  taken by a pool thread (maybe not started: threads take a
 *            small batch per lock and give the rest back if a higher lane
 *            fills meanwhile);
 *   DONE     on the completion list (under `cmu`), then handed to the
 *            loop in one uv_async wake-up and freed after its done ran.
 *
 * Locks: `mu` guards the lanes and thread bookkeeping; `cmu` guards the
 * completion list.  Nothing takes `cmu` and then `mu`.  No callback runs
 * under either.  Counters read outside the locks are atomics.
 *
 * Why it is fast: the loop thread allocates from a private free list,
 * stages without a lock, and moves many tasks per lock; pool threads take
 * several tasks per lock and post completions per batch, so the loop wakes
 * once per batch, not once per task; the clock is read coarsely per task
 * and precisely only for 1 task in SAMPLE_EVERY (for the wait/run figures).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pool/pool.h"

#define FLUSH_AT 256     /* staged tasks that trigger an early flush */
#define BATCH_MAX 32     /* tasks a pool thread takes per lock */
#define SAMPLE_EVERY 16  /* 1 task in N is timed precisely */
#define FREE_MAX 4096    /* tasks kept for reuse */
#define CRIT_STREAK 16   /* criticals served before an aged task gets in */
#define SWEEP_MS 5       /* deadline check period while any is queued */
#define HIST_BUCKETS 320

enum { T_STAGED, T_QUEUED, T_RUNNING, T_DONE };

struct corral_task {
	corral_task *next, *prev;
	corral_work_fn work;
	corral_done_fn done;
	void *arg;
	pool *pool;
	uint64_t enq_ms;      /* coarse clock: aging */
	uint64_t deadline_ms; /* coarse clock; 0 = none */
	uint64_t t_enq, t_start, t_end; /* ns, sampled tasks only */
	int status;
	uint8_t lane;
	uint8_t sampled;
	_Atomic uint8_t state;
	atomic_int cancel;
};

typedef struct tlist {
	corral_task *head, *tail;
} tlist;

typedef struct hist {
	uint32_t n[HIST_BUCKETS];
	uint64_t total;
} hist;

typedef struct pool_thread {
	pool *pool;
	unsigned id;
	pthread_t tid;
	/* coarse ms when its current task started; 0 = idle.  Own cache line:
	 * written per task by this thread, read by pool_stats_take. */
	_Alignas(64) _Atomic uint64_t running_since;
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
	tlist staged;
	unsigned nstaged;
	unsigned staged_lane[POOL_LANES];
	corral_task *freelist;
	unsigned nfree;
	unsigned sample_ctr;
	uint64_t completed, expired, cancelled;
	hist wait_h, run_h;
	void (*drain_fn)(void *);
	void *drain_arg;
	int draining;

	/* Any thread. */
	atomic_uint_fast64_t outstanding; /* accepted, done not yet run */
	atomic_uint_fast64_t submitted, rejected;
	atomic_uint nwaiting;             /* staged + queued */
	atomic_uint nlane[POOL_LANES];    /* queued, by lane */
	atomic_uint ndeadline;            /* queued tasks with a deadline */
	atomic_int want_drain;            /* an EBUSY happened */
	atomic_int closed;                /* submissions refused */

	/* Under mu. */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	tlist lanes[POOL_LANES];
	unsigned nqueued;
	unsigned idle;
	unsigned crit_streak;
	int stop;

	/* Under cmu. */
	pthread_mutex_t cmu;
	tlist done;

	pool_thread *threads;
	unsigned nthreads;
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

/* Appends all of src to dst (singly: completion lists only use next). */
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

/* ---- histograms (log-linear, 8 steps per power of two, in us) ---- */

static unsigned hist_index(uint64_t v)
{
	if (v < 8)
		return (unsigned)v;
	unsigned e = 63u - (unsigned)__builtin_clzll(v); /* >= 3 */
	unsigned idx = 8 + (e - 3) * 8 + (unsigned)((v >> (e - 3)) & 7);
	return idx < HIST_BUCKETS ? idx : HIST_BUCKETS - 1;
}

static uint64_t hist_value(unsigned idx)
{
	if (idx < 8)
		return idx;
	unsigned e = (idx - 8) / 8 + 3, sub = (idx - 8) % 8;
	return ((uint64_t)(8 + sub)) << (e - 3);
}

static void hist_add(hist *h, uint64_t us)
{
	h->n[hist_index(us)]++;
	h->total++;
}

static uint64_t hist_pct(const hist *h, double pct)
{
	if (!h->total)
		return 0;
	uint64_t want = (uint64_t)((double)h->total * pct / 100.0 + 0.5);
	if (want == 0)
		want = 1;
	uint64_t seen = 0;
	for (unsigned i = 0; i < HIST_BUCKETS; i++) {
		seen += h->n[i];
		if (seen >= want)
			return hist_value(i);
	}
	return hist_value(HIST_BUCKETS - 1);
}

/* ---- picking (under mu) ---- */

static void dequeue_locked(pool *p, corral_task *t)
{
	tl_unlink(&p->lanes[t->lane], t);
	p->nqueued--;
	atomic_fetch_sub_explicit(&p->nlane[t->lane], 1, memory_order_relaxed);
	if (t->deadline_ms)
		atomic_fetch_sub_explicit(&p->ndeadline, 1,
		                          memory_order_relaxed);
}

/*
 * Critical first; otherwise a head that has waited `aging` beats newer
 * heads of higher lanes (oldest aged first); otherwise highest lane.  After
 * CRIT_STREAK criticals in a row, an aged task goes first once.
 */
static corral_task *pick_locked(pool *p, uint64_t now)
{
	corral_task *aged = NULL;
	for (int l = 1; l < POOL_LANES; l++) {
		corral_task *h = p->lanes[l].head;
		if (h && now - h->enq_ms >= p->cfg.aging_ms &&
		    (!aged || h->enq_ms < aged->enq_ms))
			aged = h;
	}
	corral_task *t;
	if (p->lanes[0].head && !(aged && p->crit_streak >= CRIT_STREAK)) {
		t = p->lanes[0].head;
		p->crit_streak++;
	} else {
		p->crit_streak = 0;
		t = aged;
		for (int l = 1; !t && l < POOL_LANES; l++)
			t = p->lanes[l].head;
	}
	if (t)
		dequeue_locked(p, t);
	return t;
}

static int higher_waiting(pool *p, unsigned lane)
{
	for (unsigned l = 0; l < lane; l++)
		if (atomic_load_explicit(&p->nlane[l], memory_order_relaxed))
			return 1;
	return 0;
}

/* ---- pool threads ---- */

static void run_task(pool_thread *pt, corral_task *t, uint64_t now)
{
	int status = 0;
	if (atomic_load_explicit(&t->cancel, memory_order_acquire)) {
		status = CORRAL_ECANCELED;
	} else if (t->deadline_ms && now > t->deadline_ms) {
		status = CORRAL_ETIMEDOUT;
	} else {
		atomic_store_explicit(&pt->running_since, now ? now : 1,
		                      memory_order_relaxed);
		if (t->sampled)
			t->t_start = precise_ns();
		t->work(t, t->arg);
		if (t->sampled)
			t->t_end = precise_ns();
		atomic_store_explicit(&pt->running_since, 0,
		                      memory_order_relaxed);
		if (atomic_load_explicit(&t->cancel, memory_order_acquire))
			status = CORRAL_ECANCELED;
	}
	t->status = status;
	atomic_store_explicit(&t->state, T_DONE, memory_order_release);
}

static void *thread_main(void *arg)
{
	pool_thread *pt = arg;
	pool *p = pt->pool;
	corral_task *batch[BATCH_MAX];
	char name[16];
	snprintf(name, sizeof name, "%.10s-%u", p->cfg.name, pt->id + 1);
	pthread_setname_np(pthread_self(), name);

	for (;;) {
		pthread_mutex_lock(&p->mu);
		while (!p->stop && p->nqueued == 0) {
			p->idle++;
			pthread_cond_wait(&p->cv, &p->mu);
			p->idle--;
		}
		if (p->nqueued == 0) { /* stop, and nothing left */
			pthread_mutex_unlock(&p->mu);
			break;
		}
		unsigned want = p->nqueued / p->nthreads;
		if (want < 1)
			want = 1;
		if (want > BATCH_MAX)
			want = BATCH_MAX;
		uint64_t now = coarse_ms();
		unsigned n = 0;
		corral_task *t;
		while (n < want && (t = pick_locked(p, now))) {
			atomic_store_explicit(&t->state, T_RUNNING,
			                      memory_order_relaxed);
			batch[n++] = t;
		}
		pthread_mutex_unlock(&p->mu);
		atomic_fetch_sub_explicit(&p->nwaiting, n, memory_order_relaxed);

		tlist done = {NULL, NULL};
		unsigned i;
		for (i = 0; i < n; i++) {
			t = batch[i];
			if (i > 0 && higher_waiting(p, t->lane))
				break; /* give the rest back, serve the higher */
			run_task(pt, t, i ? coarse_ms() : now);
			t->next = NULL;
			tl_splice(&done, &(tlist){t, t});
		}
		if (i < n) {
			pthread_mutex_lock(&p->mu);
			for (unsigned j = n; j-- > i;) {
				t = batch[j];
				atomic_store_explicit(&t->state, T_QUEUED,
				                      memory_order_relaxed);
				tl_push_head(&p->lanes[t->lane], t);
				p->nqueued++;
				atomic_fetch_add_explicit(&p->nlane[t->lane], 1,
				                          memory_order_relaxed);
				if (t->deadline_ms)
					atomic_fetch_add_explicit(
					    &p->ndeadline, 1,
					    memory_order_relaxed);
			}
			pthread_mutex_unlock(&p->mu);
			atomic_fetch_add_explicit(&p->nwaiting, n - i,
			                          memory_order_relaxed);
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

static corral_task *task_alloc(pool *p, int on_loop)
{
	corral_task *t;
	if (on_loop && p->freelist) {
		t = p->freelist;
		p->freelist = t->next;
		p->nfree--;
	} else {
		t = malloc(sizeof *t);
		if (!t)
			return NULL;
	}
	memset(t, 0, sizeof *t);
	return t;
}

static void task_free(pool *p, corral_task *t)
{
	if (p->nfree < FREE_MAX) {
		t->next = p->freelist;
		p->freelist = t;
		p->nfree++;
	} else {
		free(t);
	}
}

static void maybe_release_loop(pool *p)
{
	if (p->draining &&
	    atomic_load_explicit(&p->outstanding, memory_order_relaxed) == 0)
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
				hist_add(&p->wait_h, (t->t_start - t->t_enq) / 1000);
				hist_add(&p->run_h, (t->t_end - t->t_start) / 1000);
			}
			break;
		case CORRAL_ETIMEDOUT:
			p->expired++;
			break;
		case CORRAL_ECANCELED:
			p->cancelled++;
			break;
		}
		atomic_fetch_sub_explicit(&p->outstanding, 1,
		                          memory_order_relaxed);
		t->done(t, t->status, t->arg);
		task_free(p, t);
		t = next;
	}
	if (atomic_load_explicit(&p->want_drain, memory_order_relaxed) &&
	    atomic_load_explicit(&p->nwaiting, memory_order_relaxed) <=
	        p->cfg.max_queue / 2) {
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

/* Moves staged tasks to the lanes under one lock and wakes threads. */
static void flush(pool *p)
{
	if (!p->staged.head) {
		uv_prepare_stop(&p->prepare);
		return;
	}
	unsigned n = p->nstaged;
	pthread_mutex_lock(&p->mu);
	for (corral_task *t = p->staged.head, *next; t; t = next) {
		next = t->next;
		atomic_store_explicit(&t->state, T_QUEUED, memory_order_relaxed);
		tl_push_tail(&p->lanes[t->lane], t);
	}
	for (int l = 0; l < POOL_LANES; l++) {
		if (p->staged_lane[l])
			atomic_fetch_add_explicit(&p->nlane[l], p->staged_lane[l],
			                          memory_order_relaxed);
		p->staged_lane[l] = 0;
	}
	p->nqueued += n;
	unsigned idle = p->idle;
	if (idle) {
		if (n >= idle)
			pthread_cond_broadcast(&p->cv);
		else
			for (unsigned i = 0; i < n; i++)
				pthread_cond_signal(&p->cv);
	}
	pthread_mutex_unlock(&p->mu);
	p->staged.head = p->staged.tail = NULL;
	p->nstaged = 0;
	uv_prepare_stop(&p->prepare);
}

static void on_prepare(uv_prepare_t *h)
{
	flush(h->data);
}

/* Expires queued tasks whose deadline has passed. */
static void on_sweep(uv_timer_t *h)
{
	pool *p = h->data;
	uint64_t now = coarse_ms();
	tlist expired = {NULL, NULL};
	pthread_mutex_lock(&p->mu);
	for (int l = 0; l < POOL_LANES; l++) {
		for (corral_task *t = p->lanes[l].head, *next; t; t = next) {
			next = t->next;
			if (t->deadline_ms && now > t->deadline_ms) {
				dequeue_locked(p, t);
				t->status = CORRAL_ETIMEDOUT;
				atomic_store_explicit(&t->state, T_DONE,
				                      memory_order_relaxed);
				atomic_fetch_sub_explicit(&p->nwaiting, 1,
				                          memory_order_relaxed);
				tl_splice(&expired, &(tlist){t, t});
			}
		}
	}
	pthread_mutex_unlock(&p->mu);
	if (!atomic_load_explicit(&p->ndeadline, memory_order_relaxed))
		uv_timer_stop(&p->sweep);
	complete_list(p, expired.head);
}

int pool_submit(pool *p, int prio, corral_work_fn work, corral_done_fn done,
                void *arg, const corral_task_opts *opts, corral_task **out)
{
	if (!p || !work || !done || prio < 0 || prio >= POOL_LANES)
		return CORRAL_EINVAL;
	if (atomic_load_explicit(&p->closed, memory_order_relaxed))
		return CORRAL_ESTATE;
	if (atomic_fetch_add_explicit(&p->nwaiting, 1, memory_order_relaxed) >=
	    p->cfg.max_queue) {
		atomic_fetch_sub_explicit(&p->nwaiting, 1, memory_order_relaxed);
		atomic_fetch_add_explicit(&p->rejected, 1, memory_order_relaxed);
		atomic_store_explicit(&p->want_drain, 1, memory_order_relaxed);
		return CORRAL_EBUSY;
	}
	int on_loop = pthread_equal(pthread_self(), p->loop_tid);
	corral_task *t = task_alloc(p, on_loop);
	if (!t) {
		atomic_fetch_sub_explicit(&p->nwaiting, 1, memory_order_relaxed);
		return CORRAL_ENOMEM;
	}
	t->work = work;
	t->done = done;
	t->arg = arg;
	t->pool = p;
	t->lane = (uint8_t)prio;
	t->enq_ms = coarse_ms();
	if (opts && opts->deadline_ms)
		t->deadline_ms = t->enq_ms + opts->deadline_ms;
	if (++tl_sample % SAMPLE_EVERY == 0) {
		t->sampled = 1;
		t->t_enq = precise_ns();
	}
	atomic_fetch_add_explicit(&p->submitted, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&p->outstanding, 1, memory_order_relaxed);
	if (out)
		*out = t;

	if (on_loop) {
		atomic_store_explicit(&t->state, T_STAGED, memory_order_relaxed);
		tl_push_tail(&p->staged, t);
		p->staged_lane[t->lane]++;
		if (t->deadline_ms) {
			atomic_fetch_add_explicit(&p->ndeadline, 1,
			                          memory_order_relaxed);
			sweep_start(p);
		}
		if (++p->nstaged >= FLUSH_AT)
			flush(p);
		else if (p->nstaged == 1)
			uv_prepare_start(&p->prepare, on_prepare);
		return 0;
	}
	/* Another thread: straight to the lanes. */
	pthread_mutex_lock(&p->mu);
	atomic_store_explicit(&t->state, T_QUEUED, memory_order_relaxed);
	tl_push_tail(&p->lanes[t->lane], t);
	p->nqueued++;
	atomic_fetch_add_explicit(&p->nlane[t->lane], 1, memory_order_relaxed);
	if (t->deadline_ms)
		atomic_fetch_add_explicit(&p->ndeadline, 1,
		                          memory_order_relaxed);
	if (p->idle)
		pthread_cond_signal(&p->cv);
	pthread_mutex_unlock(&p->mu);
	if (t->deadline_ms)
		uv_async_send(&p->async); /* the loop starts the sweep */
	return 0;
}

/* Queues t (already off every list) for completion on the next wake. */
static void complete_later(pool *p, corral_task *t, int status)
{
	t->status = status;
	t->next = NULL;
	atomic_store_explicit(&t->state, T_DONE, memory_order_relaxed);
	pthread_mutex_lock(&p->cmu);
	tl_splice(&p->done, &(tlist){t, t});
	pthread_mutex_unlock(&p->cmu);
	uv_async_send(&p->async);
}

int pool_task_cancel(corral_task *t)
{
	if (!t)
		return CORRAL_EINVAL;
	pool *p = t->pool;
	switch (atomic_load_explicit(&t->state, memory_order_acquire)) {
	case T_STAGED:
		tl_unlink(&p->staged, t);
		p->nstaged--;
		p->staged_lane[t->lane]--;
		if (t->deadline_ms)
			atomic_fetch_sub_explicit(&p->ndeadline, 1,
			                          memory_order_relaxed);
		atomic_fetch_sub_explicit(&p->nwaiting, 1, memory_order_relaxed);
		complete_later(p, t, CORRAL_ECANCELED);
		return 0;
	case T_QUEUED:
		pthread_mutex_lock(&p->mu);
		if (atomic_load_explicit(&t->state, memory_order_relaxed) ==
		    T_QUEUED) {
			dequeue_locked(p, t);
			pthread_mutex_unlock(&p->mu);
			atomic_fetch_sub_explicit(&p->nwaiting, 1,
			                          memory_order_relaxed);
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
		/* Finished running; done is on its way.  The flag changes
		 * nothing now, but it is harmless. */
		return CORRAL_ESTATE;
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
	return atomic_load_explicit(&((pool *)p)->outstanding,
	                            memory_order_relaxed);
}

void pool_stats_take(pool *p, pool_stats *s)
{
	memset(s, 0, sizeof *s);
	s->submitted = atomic_load(&p->submitted);
	s->rejected = atomic_load(&p->rejected);
	s->completed = p->completed;
	s->expired = p->expired;
	s->cancelled = p->cancelled;
	for (int l = 0; l < POOL_LANES; l++)
		s->queued[l] = atomic_load_explicit(&p->nlane[l],
		                                    memory_order_relaxed) +
		               p->staged_lane[l];
	uint64_t now = coarse_ms(), oldest = 0;
	for (unsigned i = 0; i < p->nthreads; i++) {
		uint64_t since = atomic_load_explicit(
		    &p->threads[i].running_since, memory_order_relaxed);
		if (since) {
			s->running++;
			if (now > since && now - since > oldest)
				oldest = now - since;
		}
	}
	s->oldest_running_ms = oldest;
	s->wait_p50_us = hist_pct(&p->wait_h, 50);
	s->wait_p99_us = hist_pct(&p->wait_h, 99);
	s->run_p50_us = hist_pct(&p->run_h, 50);
	s->run_p99_us = hist_pct(&p->run_h, 99);
	memset(&p->wait_h, 0, sizeof p->wait_h);
	memset(&p->run_h, 0, sizeof p->run_h);
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
				t->status = CORRAL_ECANCELED;
				atomic_store_explicit(&t->state, T_DONE,
				                      memory_order_relaxed);
				atomic_fetch_sub_explicit(&p->nwaiting, 1,
				                          memory_order_relaxed);
				t->next = NULL;
				tl_splice(&gone, &(tlist){t, t});
			}
		}
		pthread_mutex_unlock(&p->mu);
		/* Running tasks see corral_task_cancelled(); a thread's taken
		 * batch sees `closed` through the cancel flags we cannot reach,
		 * so it still runs them: they were already running. */
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
	while (p->freelist) {
		corral_task *t = p->freelist;
		p->freelist = t->next;
		free(t);
	}
	pthread_mutex_destroy(&p->mu);
	pthread_mutex_destroy(&p->cmu);
	pthread_cond_destroy(&p->cv);
	free(p->threads);
	free(p);
}

static void stop_threads(pool *p, unsigned n)
{
	pthread_mutex_lock(&p->mu);
	p->stop = 1;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
	for (unsigned i = 0; i < n; i++)
		pthread_join(p->threads[i].tid, NULL);
}

void pool_free(pool *p)
{
	if (!p)
		return;
	stop_threads(p, p->nthreads);
	uv_close((uv_handle_t *)&p->async, handle_closed);
	uv_close((uv_handle_t *)&p->prepare, handle_closed);
	uv_close((uv_handle_t *)&p->sweep, handle_closed);
}

int pool_new(pool **out, uv_loop_t *loop, const pool_config *cfg)
{
	if (!cfg->threads || !cfg->max_queue)
		return CORRAL_EINVAL;
	pool *p = calloc(1, sizeof *p);
	if (!p)
		return CORRAL_ENOMEM;
	p->loop = loop;
	p->cfg = *cfg;
	if (!p->cfg.name)
		p->cfg.name = "corral-pool";
	p->loop_tid = pthread_self();
	p->threads = calloc(cfg->threads, sizeof *p->threads);
	if (!p->threads) {
		free(p);
		return CORRAL_ENOMEM;
	}
	pthread_mutex_init(&p->mu, NULL);
	pthread_mutex_init(&p->cmu, NULL);
	pthread_cond_init(&p->cv, NULL);
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
			uv_close((uv_handle_t *)&p->async, handle_closed);
			uv_close((uv_handle_t *)&p->prepare, handle_closed);
			uv_close((uv_handle_t *)&p->sweep, handle_closed);
			return CORRAL_ESYS;
		}
	}
	*out = p;
	return 0;
}
