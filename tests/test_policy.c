/* test_policy.c - the backoff sequence and crash-loop counting, driven by a
 * fake clock. */
#include <check.h>
#include <stdint.h>

#include "master/policy.h"
#include "tests/suites.h"

#define MID_JITTER (UINT32_MAX / 2) /* factor 1.0 */

static restart_policy defaults(void)
{
	return (restart_policy){.delay_ms = 0, .delay_max_ms = 10000,
	                        .min_uptime_ms = 1000, .window_ms = 60000,
	                        .max_restarts = 10};
}

START_TEST(backoff_doubles_to_the_ceiling)
{
	restart_policy p = defaults();
	restart_track t;
	ck_assert_int_eq(restart_track_init(&t, &p), 0);
	uint64_t want[] = {0, 100, 200, 400, 800, 1600, 3200, 6400, 10000,
	                   10000};
	for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
		uint64_t d = backoff_next(&p, &t, 10, MID_JITTER);
		ck_assert_uint_le(d > want[i] ? d - want[i] : want[i] - d, 1);
	}
	restart_track_fini(&t);
}
END_TEST

START_TEST(backoff_starts_at_restart_delay)
{
	restart_policy p = defaults();
	p.delay_ms = 250;
	restart_track t;
	restart_track_init(&t, &p);
	ck_assert_uint_eq(backoff_next(&p, &t, 0, MID_JITTER), 250);
	ck_assert_uint_eq(backoff_next(&p, &t, 0, MID_JITTER), 500);
	ck_assert_uint_eq(backoff_next(&p, &t, 0, MID_JITTER), 1000);
	restart_track_fini(&t);
}
END_TEST

START_TEST(backoff_resets_after_min_uptime)
{
	restart_policy p = defaults();
	restart_track t;
	restart_track_init(&t, &p);
	backoff_next(&p, &t, 0, MID_JITTER);
	backoff_next(&p, &t, 0, MID_JITTER);
	ck_assert_uint_eq(backoff_next(&p, &t, 0, MID_JITTER), 200);
	/* Stayed up min_uptime: back to the first delay. */
	ck_assert_uint_eq(backoff_next(&p, &t, 1000, MID_JITTER), 0);
	ck_assert_uint_eq(backoff_next(&p, &t, 999, MID_JITTER), 100);
	restart_track_fini(&t);
}
END_TEST

START_TEST(backoff_jitter_is_within_20_percent)
{
	restart_policy p = defaults();
	p.delay_ms = 1000;
	p.delay_max_ms = 100000;
	restart_track t;
	restart_track_init(&t, &p);
	ck_assert_uint_eq(backoff_next(&p, &t, 5000, 0), 800);
	ck_assert_uint_eq(backoff_next(&p, &t, 5000, UINT32_MAX), 1200);
	/* Never past the ceiling, even with jitter. */
	p.delay_max_ms = 1000;
	ck_assert_uint_eq(backoff_next(&p, &t, 5000, UINT32_MAX), 1000);
	restart_track_fini(&t);
}
END_TEST

START_TEST(crashloop_counts_every_restart_in_window)
{
	restart_policy p = defaults();
	p.max_restarts = 3;
	p.window_ms = 60000;
	restart_track t;
	restart_track_init(&t, &p);
	/* Slow restarts count too: 3 allowed, the 4th within 60 s is not. */
	ck_assert_int_eq(crashloop_record(&p, &t, 0), 0);
	ck_assert_int_eq(crashloop_record(&p, &t, 20000), 0);
	ck_assert_int_eq(crashloop_record(&p, &t, 40000), 0);
	ck_assert_int_eq(crashloop_record(&p, &t, 59999), 1);
	restart_track_fini(&t);
}
END_TEST

START_TEST(crashloop_window_slides)
{
	restart_policy p = defaults();
	p.max_restarts = 2;
	p.window_ms = 1000;
	restart_track t;
	restart_track_init(&t, &p);
	ck_assert_int_eq(crashloop_record(&p, &t, 0), 0);
	ck_assert_int_eq(crashloop_record(&p, &t, 500), 0);
	ck_assert_int_eq(crashloop_record(&p, &t, 900), 1);
	/* The restart at 0 has left the window by 1000. */
	ck_assert_int_eq(crashloop_record(&p, &t, 1000), 0);
	ck_assert_int_eq(crashloop_record(&p, &t, 1400), 1);
	ck_assert_int_eq(crashloop_record(&p, &t, 2500), 0);
	restart_track_fini(&t);
}
END_TEST

START_TEST(crashloop_zero_restarts_allowed)
{
	restart_policy p = defaults();
	p.max_restarts = 0;
	restart_track t;
	restart_track_init(&t, &p);
	ck_assert_int_eq(crashloop_record(&p, &t, 0), 1);
	restart_track_fini(&t);
}
END_TEST

Suite *policy_suite(void)
{
	Suite *s = suite_create("policy");
	TCase *tc = tcase_create("backoff");
	tcase_add_test(tc, backoff_doubles_to_the_ceiling);
	tcase_add_test(tc, backoff_starts_at_restart_delay);
	tcase_add_test(tc, backoff_resets_after_min_uptime);
	tcase_add_test(tc, backoff_jitter_is_within_20_percent);
	suite_add_tcase(s, tc);
	tc = tcase_create("crashloop");
	tcase_add_test(tc, crashloop_counts_every_restart_in_window);
	tcase_add_test(tc, crashloop_window_slides);
	tcase_add_test(tc, crashloop_zero_restarts_allowed);
	suite_add_tcase(s, tc);
	return s;
}
