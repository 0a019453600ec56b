/*
 * fuzz_control.c - what arrives on the supervisor's control and jobs
 * sockets, decoded as master/control.c and master/broker.c do
 * (ipc_decode_msg with IPC_MAX_CTL_FRAME, then the request's unpacker:
 * STATUS_REQ has an empty body, CALL and CALLS carry jobs, EVENTS_REQ,
 * LOGS_REQ and CMD), and what corralctl reads back (ERROR, STATUS,
 * CMD_RESULT, EVENTS, LOGS).
 */
#include "corral_base.h"
#include "ipc/proto.h"
#include "tests/fuzz/fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static ipc_call calls[IPC_MAX_BATCH];
	nng_msg *msg = fuzz_msg(data, size);
	ipc_frame f;
	uint32_t n = 0;
	if (!msg)
		return 0;
	int rc = ipc_decode_msg(msg, IPC_MAX_CTL_FRAME, &f);
	FUZZ_CHECK(rc <= 0);
	if (rc)
		return 0;
	switch (f.type) {
	case IPC_STATUS_REQ:
		break;
	case IPC_CALL:
		if (ipc_unpack_call(&f, &calls[0]) == 0) {
			FUZZ_CHECK(calls[0].prio >= 0 && calls[0].prio <= 3);
			FUZZ_CHECK(calls[0].len <= IPC_MAX_PAYLOAD);
			(void)fuzz_touch(calls[0].payload, calls[0].len);
		}
		break;
	case IPC_CALLS:
		if (ipc_unpack_calls(&f, calls, &n) == 0) {
			FUZZ_CHECK(n >= 1 && n <= IPC_MAX_BATCH);
			for (uint32_t i = 0; i < n; i++) {
				FUZZ_CHECK(calls[i].prio >= 0 &&
				           calls[i].prio <= 3);
				(void)fuzz_touch(calls[i].payload,
				                 calls[i].len);
			}
		}
		break;
	case IPC_ERROR: {
		ipc_error e;
		if (ipc_unpack_error(&f, &e) == 0)
			FUZZ_CHECK(memchr(e.msg, '\0', sizeof e.msg));
		break;
	}
	case IPC_STATUS: {
		ipc_status st;
		if (ipc_unpack_status(&f, &st) == 0) {
			for (uint32_t i = 0; i < st.nworkers; i++)
				FUZZ_CHECK(st.workers[i].health.nmetrics <=
				           IPC_MAX_METRICS);
			ipc_status_free(&st);
		}
		break;
	}
	case IPC_EVENTS_REQ: {
		ipc_events_req q;
		(void)ipc_unpack_events_req(&f, &q);
		break;
	}
	case IPC_LOGS_REQ: {
		ipc_logs_req q;
		if (ipc_unpack_logs_req(&f, &q) == 0)
			FUZZ_CHECK(q.max >= 1 && q.max <= IPC_MAX_LOGLINES);
		break;
	}
	case IPC_CMD: {
		static ipc_cmd c;
		if (ipc_unpack_cmd(&f, &c) == 0) {
			FUZZ_CHECK(c.nargs <= IPC_MAX_ARGS);
			FUZZ_CHECK(memchr(c.cmd, '\0', sizeof c.cmd));
		}
		break;
	}
	case IPC_CMD_RESULT: {
		ipc_cmd_result r;
		if (ipc_unpack_cmd_result(&f, &r) == 0)
			FUZZ_CHECK(memchr(r.msg, '\0', sizeof r.msg));
		break;
	}
	case IPC_EVENTS: {
		ipc_events ev;
		if (ipc_unpack_events(&f, &ev) == 0) {
			FUZZ_CHECK(ev.n <= IPC_MAX_EVENTS);
			ipc_events_free(&ev);
		}
		break;
	}
	case IPC_LOGS: {
		ipc_logs lg;
		if (ipc_unpack_logs(&f, &lg) == 0) {
			for (uint32_t i = 0; i < lg.n; i++)
				(void)fuzz_touch((const uint8_t *)lg.lines[i].msg,
				                 lg.lines[i].len);
			ipc_logs_free(&lg);
		}
		break;
	}
	default:
		break; /* control.c answers ETYPE */
	}
	ipc_frame_fini(&f);
	return 0;
}
