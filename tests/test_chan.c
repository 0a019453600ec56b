/*
 * test_chan.c - the background closes that keep nng 1.5.2's hanging
 * nng_close() (see ipc/chan.c) away from the supervisor's loop and exit.
 */
#include <check.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>

#include "ipc/chan.h"
#include "tests/suites.h"

static atomic_int done;

static void quick_close(void *arg)
{
	(void)arg;
	usleep(20 * 1000);
	atomic_fetch_add(&done, 1);
}

static void stuck_close(void *arg)
{
	(void)arg;
	for (;;)
		pause(); /* as nng_close() behind a stuck reaper */
}

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

START_TEST(wait_closed_waits_for_closes_that_finish)
{
	for (int i = 0; i < 5; i++)
		ipc_close_later(quick_close, NULL);
	ck_assert_int_eq(ipc_chan_wait_closed(2000), 0);
	ck_assert_int_eq(atomic_load(&done), 5);
}
END_TEST

START_TEST(wait_closed_gives_up_on_a_stuck_close)
{
	ipc_close_later(stuck_close, NULL);
	ipc_close_later(quick_close, NULL);
	double t0 = now_ms();
	/* The quick one finishes; the stuck one never does: the wait ends
	 * once nothing has finished for a while, long before 5 s. */
	ck_assert_int_eq(ipc_chan_wait_closed(5000), 1);
	ck_assert_int_eq(atomic_load(&done), 1);
	ck_assert_double_lt(now_ms() - t0, 1500);
}
END_TEST

Suite *chan_suite(void)
{
	Suite *s = suite_create("chan");
	TCase *tc = tcase_create("close");
	tcase_add_test(tc, wait_closed_waits_for_closes_that_finish);
	tcase_add_test(tc, wait_closed_gives_up_on_a_stuck_close);
	suite_add_tcase(s, tc);
	return s;
}
