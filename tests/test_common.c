/* test_common.c - the histogram's nearest-rank percentiles, the
 * intrusive list, and the rate-limited log's counting. */
#include <check.h>
#include <stdint.h>

#include "common/hist.h"
#include "common/list.h"
#include "common/ratelog.h"
#include "tests/suites.h"

START_TEST(hist_empty_is_zero)
{
	hist h;
	hist_reset(&h);
	ck_assert_uint_eq(hist_pct(&h, 50), 0);
	ck_assert_uint_eq(hist_pct(&h, 99), 0);
	ck_assert_uint_eq(h.max, 0);
}
END_TEST

START_TEST(hist_small_values_are_exact)
{
	hist h;
	hist_reset(&h);
	for (uint64_t v = 1; v <= 10; v++)
		hist_add(&h, v);
	ck_assert_uint_eq(hist_pct(&h, 50), 5);
	ck_assert_uint_eq(hist_pct(&h, 90), 9);
	ck_assert_uint_eq(hist_pct(&h, 99), 10);
	ck_assert_uint_eq(hist_pct(&h, 100), 10);
	ck_assert_uint_eq(h.min, 1);
}
END_TEST

/* One stall of 300 ms among 69 samples of 1 ms: nearest rank puts it at
 * p99 (the old "(n-1)*99/100" index picked the second largest). */
START_TEST(hist_one_stall_shows_at_p99)
{
	hist h;
	hist_reset(&h);
	for (int i = 0; i < 69; i++)
		hist_add(&h, 1000);
	hist_add(&h, 300000);
	ck_assert_uint_ge(hist_pct(&h, 99), 300000 * 15 / 16);
	ck_assert_uint_le(hist_pct(&h, 99), 300000);
	ck_assert_uint_ge(hist_pct(&h, 50), 1000 * 15 / 16);
	ck_assert_uint_le(hist_pct(&h, 50), 1000);
}
END_TEST

START_TEST(hist_precision_is_one_sixteenth)
{
	for (uint64_t v = 1; v < (1ull << 40); v = v * 3 + 7) {
		hist h;
		hist_reset(&h);
		hist_add(&h, v);
		hist_add(&h, v + v / 2 + 1); /* max, keeps p50 off the clamp */
		uint64_t p = hist_pct(&h, 50);
		ck_assert_uint_le(p, v);
		ck_assert_uint_ge(p, v - v / 16);
	}
}
END_TEST

START_TEST(hist_merge_adds_up)
{
	hist a, b;
	hist_reset(&a);
	hist_reset(&b);
	for (int i = 0; i < 100; i++)
		hist_add(&a, 10);
	for (int i = 0; i < 100; i++)
		hist_add(&b, 1000);
	hist_merge(&a, &b);
	ck_assert_uint_eq(a.total, 200);
	ck_assert_uint_eq(a.min, 10);
	ck_assert_uint_eq(a.max, 1000);
	ck_assert_uint_eq(hist_pct(&a, 50), 10);
	ck_assert_uint_ge(hist_pct(&a, 51), 1000 - 1000 / 16);
}
END_TEST

typedef struct item {
	int v;
	list_node node;
} item;

START_TEST(list_push_remove_splice)
{
	list_head a = LIST_INIT(a), b;
	list_init(&b);
	item it[5];
	for (int i = 0; i < 5; i++) {
		it[i].v = i;
		list_push_back(i < 3 ? &a : &b, &it[i].node);
	}
	list_remove(&it[1].node);
	ck_assert(!list_linked(&it[1].node));
	list_push_front(&a, &it[1].node);
	list_splice_back(&a, &b);
	ck_assert(list_empty(&b));
	int want[] = {1, 0, 2, 3, 4}, i = 0;
	list_node *n, *tmp;
	list_foreach_safe(n, tmp, &a) {
		ck_assert_int_eq(list_entry(n, item, node)->v, want[i++]);
		list_remove(n);
	}
	ck_assert_int_eq(i, 5);
	ck_assert(list_empty(&a));
	ck_assert_ptr_null(list_first(&a));
}
END_TEST

/* The interval's end is simulated by clearing next_ms (the clock is the
 * real monotonic one). */
START_TEST(ratelog_counts_what_it_holds_back)
{
	ratelog r = {0};
	uint64_t held = 99;
	ck_assert_int_eq(ratelog_ok(&r, &held), 1); /* the first goes out */
	ck_assert_uint_eq(held, 0);
	for (int i = 0; i < 1000; i++)
		ck_assert_int_eq(ratelog_ok(&r, &held), 0);
	ck_assert_int_eq(ratelog_flush(&r, &held), 0); /* not yet */
	uint64_t w = ratelog_wait_ms(&r);
	ck_assert(w > 0 && w <= RATELOG_INTERVAL_MS);
	r.next_ms = 0; /* the interval is over */
	ck_assert_uint_eq(ratelog_wait_ms(&r), 0);
	ck_assert_int_eq(ratelog_flush(&r, &held), 1); /* the summary */
	ck_assert_uint_eq(held, 1000);
	ck_assert_int_eq(ratelog_flush(&r, &held), 0); /* told once */
	ck_assert_int_eq(ratelog_ok(&r, &held), 0); /* the summary was the
	                                              * interval's line */
	r.next_ms = 0;
	ck_assert_int_eq(ratelog_ok(&r, &held), 1);
	ck_assert_uint_eq(held, 1); /* the one after the summary */
	r.next_ms = 0;
	ck_assert_int_eq(ratelog_flush(&r, &held), 0); /* nothing held */
}
END_TEST

Suite *common_suite(void)
{
	Suite *s = suite_create("common");
	TCase *tc = tcase_create("hist+list");
	tcase_add_test(tc, hist_empty_is_zero);
	tcase_add_test(tc, hist_small_values_are_exact);
	tcase_add_test(tc, hist_one_stall_shows_at_p99);
	tcase_add_test(tc, hist_precision_is_one_sixteenth);
	tcase_add_test(tc, hist_merge_adds_up);
	tcase_add_test(tc, list_push_remove_splice);
	tcase_add_test(tc, ratelog_counts_what_it_holds_back);
	suite_add_tcase(s, tc);
	return s;
}
