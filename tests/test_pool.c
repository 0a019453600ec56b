/*
 * test_pool.c - the CPU pool alone: lane order and aging, the bound and the
 * drain callback, deadlines, cancellation, done-exactly-once under a
 * million tasks from five threads, and both shutdown modes.  Each test
 * checks that the loop closes clean.  Runs under TSan in CI (pool only).
 */
#include <check.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "pool/pool.h"

static uv_loop_t loop;
static pool *P;

/* A task that holds a pool thread until released. */
static sem_t gate_started, gate_release;

static void gate_work(corral_task *t, void *arg)
{
	(void)t;
	(void)arg;
	sem_post(&gate_started);
	sem_wait(&gate_release);
}

static int ndone;
static void count_done(corral_task *t, int status, void *arg)
{
	(void)t;
	(void)status;
	(void)arg;
	ndone++;
}

/* Execution order, recorded by work functions. */
static pthread_mutex_t order_mu = PTHREAD_MUTEX_INITIALIZER;
static int order[64], norder;

static void record_work(corral_task *t, void *arg)
{
	(void)t;
	pthread_mutex_lock(&order_mu);
	order[norder++] = (int)(intptr_t)arg;
	pthread_mutex_unlock(&order_mu);
}

static int statuses[64];
static void record_done(corral_task *t, int status, void *arg)
{
	(void)t;
	statuses[(intptr_t)arg] = status;
	ndone++;
}

static void setup_with(unsigned threads, unsigned max_queue, uint64_t aging)
{
	ck_assert_int_eq(uv_loop_init(&loop), 0);
	pool_config cfg = {.threads = threads, .max_queue = max_queue,
	                   .aging_ms = aging, .name = "test-pool"};
	ck_assert_int_eq(pool_new(&P, &loop, &cfg), 0);
	sem_init(&gate_started, 0, 0);
	sem_init(&gate_release, 0, 0);
	ndone = 0;
	norder = 0;
	memset(statuses, 0x7f, sizeof statuses);
}

static void setup(void)
{
	setup_with(1, 1024, 100);
}

static void run_until_done(int n)
{
	while (ndone < n)
		uv_run(&loop, UV_RUN_ONCE);
}

static void teardown(void)
{
	pool_drain(P, 0);
	uv_run(&loop, UV_RUN_DEFAULT);
	pool_free(P);
	uv_run(&loop, UV_RUN_DEFAULT);
	ck_assert_int_eq(uv_loop_close(&loop), 0);
	sem_destroy(&gate_started);
	sem_destroy(&gate_release);
}

/* Occupies the single pool thread; returns once the gate task runs. */
static void hold_thread(void)
{
	ck_assert_int_eq(pool_submit(P, CORRAL_PRIO_CRITICAL, gate_work,
	                             count_done, NULL, NULL, NULL), 0);
	uv_run(&loop, UV_RUN_NOWAIT); /* flush */
	sem_wait(&gate_started);
}

static void submit_rec(int prio, int id)
{
	ck_assert_int_eq(pool_submit(P, prio, record_work, record_done,
	                             (void *)(intptr_t)id, NULL, NULL), 0);
}

START_TEST(lanes_are_served_highest_first_fifo_within)
{
	hold_thread();
	submit_rec(CORRAL_PRIO_LOW, 0);
	submit_rec(CORRAL_PRIO_NORMAL, 1);
	submit_rec(CORRAL_PRIO_HIGH, 2);
	submit_rec(CORRAL_PRIO_CRITICAL, 3);
	submit_rec(CORRAL_PRIO_HIGH, 4);
	submit_rec(CORRAL_PRIO_LOW, 5);
	uv_run(&loop, UV_RUN_NOWAIT);
	sem_post(&gate_release);
	run_until_done(7);
	int want[] = {3, 2, 4, 1, 0, 5};
	ck_assert_int_eq(norder, 6);
	for (int i = 0; i < 6; i++)
		ck_assert_int_eq(order[i], want[i]);
}
END_TEST

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

START_TEST(aged_low_task_beats_newer_high_but_not_critical)
{
	teardown();
	setup_with(1, 1024, 50);
	hold_thread();
	submit_rec(CORRAL_PRIO_LOW, 0);    /* will age */
	uv_run(&loop, UV_RUN_NOWAIT);
	sleep_ms(80);                      /* aging is about waiting */
	submit_rec(CORRAL_PRIO_HIGH, 1);   /* newer, not aged */
	submit_rec(CORRAL_PRIO_CRITICAL, 2);
	uv_run(&loop, UV_RUN_NOWAIT);
	sem_post(&gate_release);
	run_until_done(4);
	int want[] = {2, 0, 1};
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(order[i], want[i]);
}
END_TEST

START_TEST(fresh_low_task_waits_for_high)
{
	hold_thread();
	submit_rec(CORRAL_PRIO_LOW, 0);
	submit_rec(CORRAL_PRIO_HIGH, 1);
	uv_run(&loop, UV_RUN_NOWAIT);
	sem_post(&gate_release);
	run_until_done(3);
	ck_assert_int_eq(order[0], 1);
	ck_assert_int_eq(order[1], 0);
}
END_TEST

static int drains;
static void on_drain(void *arg)
{
	(void)arg;
	drains++;
}

START_TEST(bound_returns_ebusy_and_drain_fires)
{
	teardown();
	setup_with(1, 4, 100);
	drains = 0;
	pool_on_drain(P, on_drain, NULL);
	hold_thread(); /* running, not waiting: does not count */
	for (int i = 0; i < 4; i++)
		submit_rec(CORRAL_PRIO_NORMAL, i);
	ck_assert_int_eq(pool_submit(P, CORRAL_PRIO_NORMAL, record_work,
	                             record_done, (void *)4, NULL, NULL),
	                 CORRAL_EBUSY);
	pool_stats s;
	pool_stats_take(P, &s);
	ck_assert_uint_eq(s.rejected, 1);
	ck_assert_uint_eq(s.queued[CORRAL_PRIO_NORMAL], 4);
	ck_assert_int_eq(drains, 0);
	sem_post(&gate_release);
	run_until_done(5);
	ck_assert_int_eq(drains, 1);
	ck_assert_int_eq(statuses[4], 0x7f7f7f7f); /* never accepted */
}
END_TEST

static atomic_int ran;
static void mark_ran(corral_task *t, void *arg)
{
	(void)t;
	(void)arg;
	atomic_fetch_add(&ran, 1);
}

START_TEST(deadline_expires_a_task_that_never_started)
{
	atomic_store(&ran, 0);
	hold_thread();
	corral_task_opts o = {.deadline_ms = 20};
	ck_assert_int_eq(pool_submit(P, CORRAL_PRIO_NORMAL, mark_ran,
	                             record_done, (void *)0, &o, NULL), 0);
	/* Completes while the only thread is still held by the gate. */
	run_until_done(1);
	ck_assert_int_eq(statuses[0], CORRAL_ETIMEDOUT);
	ck_assert_int_eq(atomic_load(&ran), 0);
	/* A deadline that is met does not get in the way. */
	o.deadline_ms = 10000;
	ck_assert_int_eq(pool_submit(P, CORRAL_PRIO_NORMAL, mark_ran,
	                             record_done, (void *)1, &o, NULL), 0);
	sem_post(&gate_release);
	run_until_done(3);
	ck_assert_int_eq(statuses[1], 0);
	ck_assert_int_eq(atomic_load(&ran), 1);
	pool_stats s;
	pool_stats_take(P, &s);
	ck_assert_uint_eq(s.expired, 1);
}
END_TEST

START_TEST(cancel_queued_and_staged_tasks)
{
	atomic_store(&ran, 0);
	hold_thread();
	corral_task *a, *b;
	ck_assert_int_eq(pool_submit(P, CORRAL_PRIO_NORMAL, mark_ran,
	                             record_done, (void *)0, NULL, &a), 0);
	uv_run(&loop, UV_RUN_NOWAIT); /* a is queued now */
	ck_assert_int_eq(pool_submit(P, CORRAL_PRIO_NORMAL, mark_ran,
	                             record_done, (void *)1, NULL, &b), 0);
	/* b is still staged */
	ck_assert_int_eq(pool_task_cancel(P, a), 0);
	ck_assert_int_eq(pool_task_cancel(P, b), 0);
	run_until_done(2);
	ck_assert_int_eq(statuses[0], CORRAL_ECANCELED);
	ck_assert_int_eq(statuses[1], CORRAL_ECANCELED);
	sem_post(&gate_release);
	run_until_done(3);
	ck_assert_int_eq(atomic_load(&ran), 0);
	pool_stats s;
	pool_stats_take(P, &s);
	ck_assert_uint_eq(s.cancelled, 2);
}
END_TEST

static sem_t spin_started;
static atomic_int spin_saw_cancel;
static void spin_until_cancelled(corral_task *t, void *arg)
{
	(void)arg;
	sem_post(&spin_started);
	for (int i = 0; i < 10000 && !pool_task_cancelled(t); i++)
		sleep_ms(1);
	atomic_store(&spin_saw_cancel, pool_task_cancelled(t));
}

START_TEST(cancel_running_task_sets_its_flag)
{
	sem_init(&spin_started, 0, 0);
	corral_task *t;
	ck_assert_int_eq(pool_submit(P, CORRAL_PRIO_NORMAL,
	                             spin_until_cancelled, record_done,
	                             (void *)0, NULL, &t), 0);
	uv_run(&loop, UV_RUN_NOWAIT);
	sem_wait(&spin_started);
	ck_assert_int_eq(pool_task_cancel(P, t), 0);
	run_until_done(1);
	ck_assert_int_eq(atomic_load(&spin_saw_cancel), 1);
	ck_assert_int_eq(statuses[0], CORRAL_ECANCELED);
	pool_stats s;
	pool_stats_take(P, &s);
	ck_assert_uint_eq(s.cancelled, 1);
	sem_destroy(&spin_started);
}
END_TEST

/* ---- a million tasks, five submitting threads, random cancels ---- */

#define STRESS_N 1000000
#define STRESS_FOREIGN 4
#define STRESS_PER_FOREIGN 125000

static atomic_uchar *runs;
static unsigned char *dones;
static int *done_status;
static corral_task **handles;
static long stress_done;

static void stress_work(corral_task *t, void *arg)
{
	(void)t;
	atomic_fetch_add_explicit(&runs[(intptr_t)arg], 1,
	                          memory_order_relaxed);
}

static void stress_done_cb(corral_task *t, int status, void *arg)
{
	(void)t;
	intptr_t id = (intptr_t)arg;
	dones[id]++;
	done_status[id] = status;
	handles[id] = NULL;
	stress_done++;
}

static void *foreign_submitter(void *arg)
{
	intptr_t base = (intptr_t)arg;
	for (intptr_t i = 0; i < STRESS_PER_FOREIGN; i++) {
		intptr_t id = base + i;
		int rc;
		while ((rc = pool_submit(P, (int)(id % 4), stress_work,
		                         stress_done_cb, (void *)id, NULL,
		                         NULL)) == CORRAL_EBUSY)
			sched_yield();
		if (rc != 0)
			return (void *)1;
	}
	return NULL;
}

START_TEST(done_runs_exactly_once_for_a_million_tasks)
{
	teardown();
	setup_with(2, 1u << 21, 100);
	runs = calloc(STRESS_N, sizeof *runs);
	dones = calloc(STRESS_N, 1);
	done_status = calloc(STRESS_N, sizeof *done_status);
	handles = calloc(STRESS_N, sizeof *handles);
	stress_done = 0;
	pthread_t th[STRESS_FOREIGN];
	intptr_t loop_n = STRESS_N - STRESS_FOREIGN * STRESS_PER_FOREIGN;
	for (int i = 0; i < STRESS_FOREIGN; i++)
		ck_assert_int_eq(pthread_create(&th[i], NULL, foreign_submitter,
		                                (void *)(loop_n +
		                                         i * STRESS_PER_FOREIGN)),
		                 0);
	unsigned seed = 12345;
	long cancels = 0;
	for (intptr_t id = 0; id < loop_n; id++) {
		ck_assert_int_eq(pool_submit(P, (int)(id % 4), stress_work,
		                             stress_done_cb, (void *)id, NULL,
		                             &handles[id]), 0);
		if (id % 1000 == 999)
			uv_run(&loop, UV_RUN_NOWAIT); /* flush, complete */
		/* Cancel a random earlier task that is not done yet. */
		if (rand_r(&seed) % 8 == 0) {
			intptr_t v = rand_r(&seed) % (id + 1);
			if (handles[v]) {
				int rc = pool_task_cancel(P, handles[v]);
				ck_assert(rc == 0 || rc == CORRAL_ESTATE);
				cancels++;
			}
		}
	}
	for (int i = 0; i < STRESS_FOREIGN; i++) {
		void *r;
		pthread_join(th[i], &r);
		ck_assert_ptr_null(r);
	}
	while (stress_done < STRESS_N)
		uv_run(&loop, UV_RUN_ONCE);
	long ok = 0, canc = 0;
	for (long i = 0; i < STRESS_N; i++) {
		ck_assert_msg(dones[i] == 1, "task %ld done %d times", i,
		              dones[i]);
		unsigned r = atomic_load(&runs[i]);
		ck_assert_uint_le(r, 1);
		if (done_status[i] == 0) {
			ck_assert_uint_eq(r, 1);
			ok++;
		} else {
			ck_assert_int_eq(done_status[i], CORRAL_ECANCELED);
			canc++;
		}
	}
	ck_assert_int_gt(canc, 0);
	ck_assert_int_eq(ok + canc, STRESS_N);
	pool_stats s;
	pool_stats_take(P, &s);
	ck_assert_uint_eq(s.submitted, STRESS_N);
	ck_assert_uint_eq(s.completed + s.cancelled, STRESS_N);
	free(runs);
	free(dones);
	free(done_status);
	free(handles);
}
END_TEST

/* ---- shutdown ---- */

static void short_work(corral_task *t, void *arg)
{
	(void)t;
	(void)arg;
	sleep_ms(1);
	atomic_fetch_add(&ran, 1);
}

START_TEST(drain_run_finishes_queued_tasks_then_frees_the_loop)
{
	atomic_store(&ran, 0);
	for (int i = 0; i < 50; i++)
		ck_assert_int_eq(pool_submit(P, CORRAL_PRIO_NORMAL, short_work,
		                             count_done, NULL, NULL, NULL), 0);
	pool_drain(P, 0);
	ck_assert_int_eq(pool_submit(P, CORRAL_PRIO_NORMAL, short_work,
	                             count_done, NULL, NULL, NULL),
	                 CORRAL_ESTATE);
	uv_run(&loop, UV_RUN_DEFAULT); /* returns only when all are done */
	ck_assert_int_eq(ndone, 50);
	ck_assert_int_eq(atomic_load(&ran), 50);
	ck_assert_uint_eq(pool_outstanding(P), 0);
}
END_TEST

START_TEST(drain_cancel_completes_queued_tasks_canceled)
{
	atomic_store(&ran, 0);
	hold_thread();
	for (int i = 0; i < 20; i++)
		submit_rec(CORRAL_PRIO_LOW, i);
	uv_run(&loop, UV_RUN_NOWAIT);
	pool_drain(P, 1);
	run_until_done(20); /* all 20 cancelled while the gate holds */
	for (int i = 0; i < 20; i++)
		ck_assert_int_eq(statuses[i], CORRAL_ECANCELED);
	ck_assert_int_eq(norder, 0);
	sem_post(&gate_release);
	uv_run(&loop, UV_RUN_DEFAULT);
	ck_assert_int_eq(ndone, 21);
}
END_TEST

START_TEST(stats_show_oldest_running_task)
{
	hold_thread();
	sleep_ms(60);
	pool_stats s;
	pool_stats_take(P, &s);
	ck_assert_uint_eq(s.running, 1);
	ck_assert_uint_ge(s.oldest_running_ms, 40);
	ck_assert_uint_eq(s.submitted, 1);
	sem_post(&gate_release);
	run_until_done(1);
	pool_stats_take(P, &s);
	ck_assert_uint_eq(s.running, 0);
	ck_assert_uint_eq(s.completed, 1);
}
END_TEST

START_TEST(rejects_bad_arguments)
{
	ck_assert_int_eq(pool_submit(P, 7, mark_ran, count_done, NULL, NULL,
	                             NULL), CORRAL_EINVAL);
	ck_assert_int_eq(pool_submit(P, 0, NULL, count_done, NULL, NULL,
	                             NULL), CORRAL_EINVAL);
	ck_assert_int_eq(pool_submit(P, 0, mark_ran, NULL, NULL, NULL, NULL),
	                 CORRAL_EINVAL);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("pool");
	TCase *tc = tcase_create("pool");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, lanes_are_served_highest_first_fifo_within);
	tcase_add_test(tc, aged_low_task_beats_newer_high_but_not_critical);
	tcase_add_test(tc, fresh_low_task_waits_for_high);
	tcase_add_test(tc, bound_returns_ebusy_and_drain_fires);
	tcase_add_test(tc, deadline_expires_a_task_that_never_started);
	tcase_add_test(tc, cancel_queued_and_staged_tasks);
	tcase_add_test(tc, cancel_running_task_sets_its_flag);
	tcase_add_test(tc, done_runs_exactly_once_for_a_million_tasks);
	tcase_add_test(tc, drain_run_finishes_queued_tasks_then_frees_the_loop);
	tcase_add_test(tc, drain_cancel_completes_queued_tasks_canceled);
	tcase_add_test(tc, stats_show_oldest_running_task);
	tcase_add_test(tc, rejects_bad_arguments);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
