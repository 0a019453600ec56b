/*
 * fuzz_client.c - a job client's reply, decoded the way client/client.c
 * finish() does: ipc_decode_msg() with the client's frame limit, then a
 * RESULT (a single call's, or one standing for a whole batch) or a
 * RESULTS batch, then each outcome turned into a corral_result.
 */
#include "corral_base.h"
#include "ipc/proto.h"
#include "tests/fuzz/fuzz.h"

/* As client/client.c: a RESULTS reply may carry up to IPC_MAX_BATCH
 * replies of 1 MiB. */
#define RESULTS_MAX (IPC_MAX_BATCH * (IPC_MAX_STR + 512) + 4096)

/* As client.c to_result(): what the application's callback reads. */
static void use_result(const ipc_result *res)
{
	if (res->ok) {
		(void)fuzz_touch(res->data, res->len);
	} else {
		FUZZ_CHECK(memchr(res->err, '\0', sizeof res->err));
		FUZZ_CHECK(memchr(res->msg, '\0', sizeof res->msg));
		int code = ipc_joberr_code(res->err);
		FUZZ_CHECK(code < 0);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static ipc_result res[IPC_MAX_BATCH];
	nng_msg *msg = fuzz_msg(data, size);
	ipc_frame f;
	if (!msg)
		return 0;
	int rc = ipc_decode_msg(msg, RESULTS_MAX, &f);
	FUZZ_CHECK(rc <= 0);
	if (rc)
		return 0; /* the message is freed */
	/* A single call's reply. */
	if (ipc_unpack_result(&f, &res[0]) == 0)
		use_result(&res[0]);
	/* A batch's: RESULT stands for every job, RESULTS has each one. */
	if (f.type != IPC_RESULT) {
		uint32_t n = 0;
		if (ipc_unpack_results(&f, res, &n) == 0) {
			FUZZ_CHECK(n <= IPC_MAX_BATCH);
			for (uint32_t i = 0; i < n; i++)
				use_result(&res[i]);
		}
	}
	ipc_frame_fini(&f);
	return 0;
}
