/* test_unit.c - runs the unit suites in Check's fork mode. */
#include <stdlib.h>

#include "tests/suites.h"

int main(void)
{
	SRunner *sr = srunner_create(proto_suite());
	srunner_add_suite(sr, policy_suite());
	srunner_add_suite(sr, conf_suite());
	srunner_add_suite(sr, chan_suite());
	srunner_add_suite(sr, common_suite());
	srunner_add_suite(sr, healthwatch_suite());
	srunner_add_suite(sr, srv_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
