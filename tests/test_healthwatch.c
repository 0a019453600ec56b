/*
 * test_healthwatch.c - the judgement behind health actions, on made-up
 * reports: a steady leak is found and a step up is not, max_memory and
 * sustained lag fire on the report that crosses them, pool_stuck flags,
 * and the sample ring stays bounded however long the window.
 */
#include <check.h>
#include <string.h>

#include "master/healthwatch.h"
#include "tests/suites.h"

#define MB (1024u * 1024u)

static ipc_health report(uint64_t rss, uint64_t lag_p99_us)
{
	ipc_health h;
	memset(&h, 0, sizeof h);
	h.rss_bytes = rss;
	h.lag_p99_us = lag_p99_us;
	return h;
}

/* Feeds reports every step_ms for dur_ms, RSS from rss(t); returns the
 * last verdict. */
static hw_verdict feed(healthwatch *w, const hw_limits *l, uint64_t *t,
                       uint64_t dur_ms, uint64_t step_ms,
                       uint64_t (*rss)(uint64_t), char *why)
{
	hw_verdict v = HW_OK;
	for (uint64_t end = *t + dur_ms; *t < end; *t += step_ms) {
		ipc_health h = report(rss(*t), 0);
		v = hw_observe(w, l, *t, &h, why, 256);
	}
	return v;
}

/* 1 MB/s on 50 MB, with +-256 KB of noise. */
static uint64_t leak_1mb(uint64_t t)
{
	uint64_t noise = (t / 1000 * 2654435761u) % (512 * 1024);
	return 50 * MB + t / 1000 * MB + noise;
}

/* Flat at 50 MB, one step of 40 MB at 30 s, flat again. */
static uint64_t one_step(uint64_t t)
{
	return t < 30000 ? 50 * MB : 90 * MB;
}

static uint64_t flat(uint64_t t)
{
	return 50 * MB + (t / 1000 % 3) * 4096;
}

START_TEST(a_steady_leak_is_found_with_its_slope)
{
	static healthwatch w;
	hw_limits l = {.leak_window_ms = 60000, .leak_min_growth = 32 * MB};
	char why[256];
	uint64_t t = 1000;
	hw_reset(&w);
	/* Not before the window is (nearly) covered. */
	ck_assert_int_eq(feed(&w, &l, &t, 40000, 1000, leak_1mb, why), HW_OK);
	ck_assert(!w.leaking);
	ck_assert_int_eq(feed(&w, &l, &t, 20000, 1000, leak_1mb, why),
	                 HW_LEAK);
	ck_assert(w.leaking);
	ck_assert_msg(w.slope_bps > 0.9 * MB && w.slope_bps < 1.1 * MB,
	              "slope %.0f", w.slope_bps);
	ck_assert_ptr_nonnull(strstr(why, "RSS growing"));
	/* A new worker: nothing known. */
	hw_reset(&w);
	ck_assert(!w.leaking && w.n == 0);
}
END_TEST

START_TEST(one_step_up_and_a_flat_line_are_no_leak)
{
	static healthwatch w;
	hw_limits l = {.leak_window_ms = 60000, .leak_min_growth = 32 * MB};
	char why[256];
	uint64_t t = 0;
	hw_reset(&w);
	for (int i = 0; i < 120; i++) {
		ck_assert_int_eq(feed(&w, &l, &t, 1000, 1000, one_step, why),
		                 HW_OK);
		ck_assert_msg(!w.leaking, "a step at %llu ms taken for a leak",
		              (unsigned long long)t);
	}
	hw_reset(&w);
	t = 0;
	ck_assert_int_eq(feed(&w, &l, &t, 120000, 1000, flat, why), HW_OK);
	ck_assert(!w.leaking);
	/* Steady but too slow to matter: under leak_min_growth. */
	l.leak_min_growth = 128 * MB;
	hw_reset(&w);
	t = 0;
	ck_assert_int_eq(feed(&w, &l, &t, 120000, 1000, leak_1mb, why), HW_OK);
}
END_TEST

START_TEST(max_memory_fires_on_the_report_that_crosses_it)
{
	static healthwatch w;
	hw_limits l = {.max_memory = 100 * MB};
	char why[256];
	hw_reset(&w);
	ipc_health h = report(100 * MB, 0);
	ck_assert_int_eq(hw_observe(&w, &l, 1, &h, why, sizeof why), HW_OK);
	h.rss_bytes = 100 * MB + 1;
	ck_assert_int_eq(hw_observe(&w, &l, 2, &h, why, sizeof why), HW_MEMORY);
	ck_assert_str_eq(why, "RSS 100.0 MB over max_memory 100.0 MB");
	/* Off: nothing however large. */
	l.max_memory = 0;
	h.rss_bytes = 1ull << 40;
	ck_assert_int_eq(hw_observe(&w, &l, 3, &h, why, sizeof why), HW_OK);
}
END_TEST

START_TEST(lag_must_be_sustained_and_pool_stuck_flags)
{
	static healthwatch w;
	hw_limits l = {.lag_restart_ms = 100, .lag_for_ms = 3000,
	               .pool_stuck_ms = 5000};
	char why[256];
	hw_reset(&w);
	ipc_health hot = report(MB, 150000), cool = report(MB, 1000);
	/* Over for 2.5 s, then one good report: the clock starts again. */
	for (uint64_t t = 0; t <= 2500; t += 500)
		ck_assert_int_eq(hw_observe(&w, &l, t, &hot, why, 256), HW_OK);
	ck_assert_int_eq(hw_observe(&w, &l, 3000, &cool, why, 256), HW_OK);
	hw_verdict v = HW_OK;
	uint64_t t;
	for (t = 3500; v == HW_OK && t < 20000; t += 500)
		v = hw_observe(&w, &l, t, &hot, why, 256);
	ck_assert_int_eq(v, HW_LAG);
	ck_assert_uint_eq(t - 500, 6500); /* 3 s after it started again */
	ck_assert_ptr_nonnull(strstr(why, "lag p99 150.0 ms over lag_restart "
	                                  "100 ms"));
	/* pool_stuck: a flag, never a verdict of its own. */
	ipc_health stuck = cool;
	stuck.pool.oldest_running_ms = 6000;
	ck_assert_int_eq(hw_observe(&w, &l, 30000, &stuck, why, 256), HW_OK);
	ck_assert(w.pool_stuck);
	ck_assert_int_eq(hw_observe(&w, &l, 31000, &cool, why, 256), HW_OK);
	ck_assert(!w.pool_stuck);
}
END_TEST

START_TEST(the_ring_stays_bounded_over_a_long_window)
{
	static healthwatch w;
	hw_limits l = {.leak_window_ms = 3600 * 1000,
	               .leak_min_growth = 32 * MB};
	char why[256];
	uint64_t t = 0;
	hw_reset(&w);
	/* An hour of reports every 100 ms, growing 1 MB/s. */
	hw_verdict v = feed(&w, &l, &t, 3600 * 1000, 100, leak_1mb, why);
	ck_assert_uint_le(w.n, HW_SAMPLES);
	ck_assert_uint_ge(w.n, HW_SAMPLES - 2);
	ck_assert_int_eq(v, HW_LEAK);
}
END_TEST

Suite *healthwatch_suite(void)
{
	Suite *s = suite_create("healthwatch");
	TCase *tc = tcase_create("healthwatch");
	tcase_add_test(tc, a_steady_leak_is_found_with_its_slope);
	tcase_add_test(tc, one_step_up_and_a_flat_line_are_no_leak);
	tcase_add_test(tc, max_memory_fires_on_the_report_that_crosses_it);
	tcase_add_test(tc, lag_must_be_sustained_and_pool_stuck_flags);
	tcase_add_test(tc, the_ring_stays_bounded_over_a_long_window);
	suite_add_tcase(s, tc);
	return s;
}
