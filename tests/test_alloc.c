/*
 * test_alloc.c - allocation fault injection (tests/failalloc.h) over every
 * packer and unpacker of the wire protocol, ipc_decode() included: the
 * N-th allocation fails, for every N until the operation runs through.
 * Each failure must come back as CORRAL_ENOMEM, and nothing may leak
 * (counted here; under ASan, LeakSanitizer checks too).
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "corral_base.h"
#include "ipc/proto.h"
#include "tests/failalloc.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
#define LEAK_CHECK() ck_assert_int_eq(__lsan_do_recoverable_leak_check(), 0)
#else
#define LEAK_CHECK() ((void)0)
#endif

/* An operation under test: returns 0 or a corral_err, and frees whatever
 * it made (so that the live block count is back where it was).  It must
 * not call ck_assert(), which allocates. */
typedef int (*op_fn)(void *arg);

/* failalloc_each() with Check's messages; and LeakSanitizer's view. */
static unsigned long fail_each(const char *what, op_fn op, void *arg)
{
	char why[256];
	unsigned long allocs = 0;
	ck_assert_msg(failalloc_each(op, arg, CORRAL_ENOMEM, &allocs, why,
	                             sizeof why) == 0, "%s: %s", what, why);
	LEAK_CHECK();
	return allocs;
}

/* ---- the messages ---- */

static uint8_t big[200000]; /* a payload that makes packing grow */

static ipc_worker_status workers[3];
static ipc_status status = {.name = "corral", .pid = 1, .state = "running",
                            .nworkers = 3, .workers = workers};
static ipc_health health = {.pid = 2, .util = 0.5, .nmetrics = 1,
                            .metrics = {{.name = "m", .value = 1}}};
static ipc_hello hello = {.slot = 1, .pid = 3, .abi = 1, .plugin = "p"};
static ipc_stop stop = {.timeout_ms = 1};
static ipc_assign assign = {.slot = 2};
static ipc_error error = {.code = CORRAL_EINVAL, .msg = "no"};
static ipc_job jobs[IPC_MAX_BATCH];
static ipc_reply replies[IPC_MAX_BATCH];
static ipc_call calls[IPC_MAX_BATCH];
static ipc_result results[IPC_MAX_BATCH];
static uint64_t ids[IPC_MAX_BATCH];

static void setup(void)
{
	for (int i = 0; i < 3; i++)
		workers[i] = (ipc_worker_status){.slot = i, .pid = 10 + i,
		                                 .state = "running",
		                                 .exit_code = -1};
	for (int i = 0; i < IPC_MAX_BATCH; i++) {
		jobs[i] = (ipc_job){.id = (uint64_t)i, .prio = 2,
		                    .payload = big, .len = i ? 10 : sizeof big};
		replies[i] = (ipc_reply){.id = (uint64_t)i, .data = big,
		                         .len = i ? 10 : sizeof big};
		calls[i] = (ipc_call){.payload = big, .len = i ? 5 : sizeof big,
		                      .prio = 1};
		results[i] = (ipc_result){.ok = i % 2, .data = big, .len = 7,
		                          .err = "busy", .msg = "m"};
		ids[i] = (uint64_t)i;
	}
}

/* A batch built in place, as the broker builds JOB and RESULTS: sized
 * once, then filled item by item; a failed step aborts it. */
static int pack_batch(int type, nng_msg **m)
{
	ipc_batch b;
	int rc = ipc_batch_begin(&b, type, 64 + sizeof big + IPC_MAX_BATCH *
	                         (10 + IPC_CALL_OVERHEAD));
	for (int i = 0; !rc && i < IPC_MAX_BATCH; i++)
		rc = type == IPC_JOB ? ipc_batch_add_job(&b, &jobs[i])
		                     : ipc_batch_add_result(&b, &results[i]);
	if (rc) {
		ipc_batch_abort(&b);
		*m = NULL;
		return rc;
	}
	ipc_batch_end(&b, m);
	return 0;
}

/* Packs message number k (one per packer); *n_types is how many. */
static int pack_one(int k, nng_msg **m)
{
	switch (k) {
	case 0: return ipc_pack_hello(m, &hello);
	case 1: return ipc_pack_ready(m);
	case 2: return ipc_pack_health(m, &health);
	case 3: return ipc_pack_stop(m, &stop);
	case 4: return ipc_pack_status_req(m);
	case 5: return ipc_pack_status(m, &status);
	case 6: return ipc_pack_assign(m, &assign);
	case 7: return ipc_pack_jobs(m, jobs, IPC_MAX_BATCH);
	case 8: return ipc_pack_replies(m, replies, IPC_MAX_BATCH);
	case 9: return ipc_pack_cancel(m, ids, IPC_MAX_BATCH);
	case 10: return ipc_pack_call(m, &calls[0]);
	case 11: return ipc_pack_result(m, &results[0]);
	case 12: return ipc_pack_calls(m, calls, IPC_MAX_BATCH);
	case 13: return ipc_pack_results(m, results, IPC_MAX_BATCH);
	case 14: return ipc_pack_error(m, &error);
	case 15: return pack_batch(IPC_JOB, m);
	case 16: return pack_batch(IPC_RESULTS, m);
	}
	return CORRAL_EINVAL;
}
#define NPACKERS 17

/* Unpacks f with the unpacker for its type; frees what that made. */
static int unpack_any(const ipc_frame *f)
{
	static union {
		ipc_hello hello;
		ipc_health health;
		ipc_stop stop;
		ipc_assign assign;
		ipc_error error;
		ipc_status status;
		ipc_job jobs[IPC_MAX_BATCH];
		ipc_reply replies[IPC_MAX_BATCH];
		ipc_call calls[IPC_MAX_BATCH];
		ipc_result results[IPC_MAX_BATCH];
		uint64_t ids[IPC_MAX_BATCH];
	} u;
	uint32_t n;
	int rc;
	switch (f->type) {
	case IPC_HELLO: return ipc_unpack_hello(f, &u.hello);
	case IPC_READY: case IPC_STATUS_REQ: return 0;
	case IPC_HEALTH: return ipc_unpack_health(f, &u.health);
	case IPC_STOP: return ipc_unpack_stop(f, &u.stop);
	case IPC_STATUS:
		/* No ck_assert() while armed: Check allocates. */
		rc = ipc_unpack_status(f, &u.status);
		if (!rc && u.status.nworkers != 3)
			rc = CORRAL_EFIELD;
		ipc_status_free(&u.status);
		return rc;
	case IPC_ASSIGN: return ipc_unpack_assign(f, &u.assign);
	case IPC_JOB: return ipc_unpack_jobs(f, u.jobs, &n);
	case IPC_REPLY: return ipc_unpack_replies(f, u.replies, &n);
	case IPC_CANCEL: return ipc_unpack_cancel(f, u.ids, &n);
	case IPC_CALL: return ipc_unpack_call(f, &u.calls[0]);
	case IPC_RESULT: return ipc_unpack_result(f, &u.results[0]);
	case IPC_CALLS: return ipc_unpack_calls(f, u.calls, &n);
	case IPC_RESULTS: return ipc_unpack_results(f, u.results, &n);
	case IPC_ERROR: return ipc_unpack_error(f, &u.error);
	}
	return CORRAL_ETYPE;
}

static int op_pack(void *arg)
{
	nng_msg *m = NULL;
	int rc = pack_one(*(int *)arg, &m);
	if (rc == 0)
		nng_msg_free(m);
	else if (m)
		rc = CORRAL_EINVAL; /* failed, yet left a message */
	return rc;
}

START_TEST(every_packer_reports_enomem_and_leaks_nothing)
{
	setup();
	for (int k = 0; k < NPACKERS; k++) {
		char what[32];
		snprintf(what, sizeof what, "packer %d", k);
		unsigned long allocs = fail_each(what, op_pack, &k);
		ck_assert_uint_gt(allocs, 0);
	}
}
END_TEST

/* ipc_decode() of a flat buffer, then the unpacker. */
typedef struct decode_arg {
	const void *buf;
	size_t len;
} decode_arg;

static int op_decode(void *arg)
{
	decode_arg *d = arg;
	ipc_frame f;
	int rc = ipc_decode(d->buf, d->len, IPC_MAX_FRAME, &f);
	if (rc)
		return rc;
	rc = unpack_any(&f);
	ipc_frame_fini(&f);
	return rc;
}

START_TEST(every_decoder_reports_enomem_and_leaks_nothing)
{
	setup();
	for (int k = 0; k < NPACKERS; k++) {
		nng_msg *m;
		char what[48];
		ck_assert_int_eq(pack_one(k, &m), 0);
		decode_arg d = {nng_msg_body(m), nng_msg_len(m)};
		snprintf(what, sizeof what, "decode + unpack %d", k);
		unsigned long allocs = fail_each(what, op_decode, &d);
		ck_assert_uint_gt(allocs, 0);
		nng_msg_free(m);
	}
}
END_TEST

/* ipc_decode_msg() takes the message in every case, ENOMEM included. */
static int op_decode_msg(void *arg)
{
	ipc_frame f;
	nng_msg *m = arg;
	int rc = ipc_decode_msg(m, IPC_MAX_FRAME, &f);
	if (rc)
		return rc;
	rc = unpack_any(&f);
	ipc_frame_fini(&f);
	return rc;
}

START_TEST(decode_msg_frees_the_message_on_enomem)
{
	setup();
	nng_msg *src;
	ck_assert_int_eq(pack_one(5, &src), 0); /* STATUS */
	for (unsigned long n = 1;; n++) {
		nng_msg *m;
		long live = failalloc_live();
		ck_assert_int_eq(nng_msg_dup(&m, src), 0);
		failalloc_arm(n);
		int rc = op_decode_msg(m);
		int hit = failalloc_disarm();
		/* Freed with the frame, or at once on an error. */
		ck_assert_int_eq(failalloc_live(), live);
		if (!hit) {
			ck_assert_int_eq(rc, 0);
			break;
		}
		ck_assert_int_eq(rc, CORRAL_ENOMEM);
	}
	nng_msg_free(src);
	LEAK_CHECK();
}
END_TEST

/* ipc_unpack_status() alone, on a frame decoded beforehand. */
static int op_unpack_status(void *arg)
{
	ipc_status st;
	int rc = ipc_unpack_status(arg, &st);
	if (rc == 0)
		ipc_status_free(&st);
	else if (st.workers)
		rc = CORRAL_EINVAL; /* failed, yet left an array */
	return rc;
}

START_TEST(unpack_status_reports_enomem)
{
	setup();
	nng_msg *m;
	ipc_frame f;
	ck_assert_int_eq(ipc_pack_status(&m, &status), 0);
	ck_assert_int_eq(ipc_decode_msg(m, IPC_MAX_FRAME, &f), 0);
	ck_assert_uint_eq(fail_each("unpack_status", op_unpack_status, &f), 1);
	ipc_frame_fini(&f);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("alloc");
	TCase *tc = tcase_create("alloc");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, every_packer_reports_enomem_and_leaks_nothing);
	tcase_add_test(tc, every_decoder_reports_enomem_and_leaks_nothing);
	tcase_add_test(tc, decode_msg_frees_the_message_on_enomem);
	tcase_add_test(tc, unpack_status_reports_enomem);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
