/* suites.h - the unit suites that tests/test_unit.c runs. */
#ifndef TESTS_SUITES_H
#define TESTS_SUITES_H

#include <check.h>

Suite *proto_suite(void);
Suite *policy_suite(void);
Suite *conf_suite(void);
Suite *chan_suite(void);
Suite *common_suite(void);
Suite *healthwatch_suite(void);
Suite *srv_suite(void);

#endif
