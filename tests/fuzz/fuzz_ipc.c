/*
 * fuzz_ipc.c - ipc_decode() and every unpacker, on the slot sockets'
 * limit.  The decoded type picks the unpacker.  Properties: no crash, no
 * out-of-bounds read, every error a corral_err; and what unpacks, packs
 * and unpacks again to the same values (the round trip).
 */
#include "corral_base.h"
#include "ipc/proto.h"
#include "tests/fuzz/fuzz.h"

/* Decodes a message we packed; 0 or a corral_err.  Takes msg. */
static int redecode(nng_msg *msg, ipc_frame *f)
{
	return ipc_decode_msg(msg, IPC_MAX_FRAME, f);
}

static int same_bytes(const uint8_t *a, uint32_t an, const uint8_t *b,
                      uint32_t bn)
{
	return an == bn && (an == 0 || memcmp(a, b, an) == 0);
}

static void round_trip_jobs(const ipc_job *a, uint32_t n)
{
	nng_msg *m;
	ipc_frame f;
	ipc_job b[IPC_MAX_BATCH];
	uint32_t bn;
	if (ipc_pack_jobs(&m, a, n) != 0 || redecode(m, &f) != 0)
		return; /* out of memory */
	FUZZ_CHECK(ipc_unpack_jobs(&f, b, &bn) == 0 && bn == n);
	for (uint32_t i = 0; i < n; i++)
		FUZZ_CHECK(a[i].id == b[i].id &&
		           a[i].timeout_ms == b[i].timeout_ms &&
		           a[i].prio == b[i].prio &&
		           same_bytes(a[i].payload, a[i].len, b[i].payload,
		                      b[i].len));
	ipc_frame_fini(&f);
}

static void round_trip_replies(const ipc_reply *a, uint32_t n)
{
	nng_msg *m;
	ipc_frame f;
	ipc_reply b[IPC_MAX_BATCH];
	uint32_t bn;
	if (ipc_pack_replies(&m, a, n) != 0 || redecode(m, &f) != 0)
		return;
	FUZZ_CHECK(ipc_unpack_replies(&f, b, &bn) == 0 && bn == n);
	for (uint32_t i = 0; i < n; i++)
		FUZZ_CHECK(a[i].id == b[i].id && a[i].code == b[i].code &&
		           same_bytes(a[i].data, a[i].len, b[i].data,
		                      b[i].len));
	ipc_frame_fini(&f);
}

static void round_trip_calls(const ipc_call *a, uint32_t n, int batch)
{
	nng_msg *m;
	ipc_frame f;
	ipc_call b[IPC_MAX_BATCH];
	uint32_t bn = 1;
	int rc = batch ? ipc_pack_calls(&m, a, n) : ipc_pack_call(&m, a);
	if (rc != 0 || redecode(m, &f) != 0)
		return;
	rc = batch ? ipc_unpack_calls(&f, b, &bn) : ipc_unpack_call(&f, b);
	FUZZ_CHECK(rc == 0 && bn == n);
	for (uint32_t i = 0; i < n; i++)
		FUZZ_CHECK(a[i].timeout_ms == b[i].timeout_ms &&
		           a[i].prio == b[i].prio &&
		           same_bytes(a[i].payload, a[i].len, b[i].payload,
		                      b[i].len));
	ipc_frame_fini(&f);
}

static int same_result(const ipc_result *a, const ipc_result *b)
{
	if (a->ok != b->ok)
		return 0;
	if (a->ok)
		return same_bytes(a->data, a->len, b->data, b->len);
	return strcmp(a->err, b->err) == 0 && strcmp(a->msg, b->msg) == 0;
}

static void round_trip_results(const ipc_result *a, uint32_t n, int batch)
{
	nng_msg *m;
	ipc_frame f;
	ipc_result b[IPC_MAX_BATCH];
	uint32_t bn = 1;
	int rc = batch ? ipc_pack_results(&m, a, n) : ipc_pack_result(&m, a);
	if (rc != 0 || redecode(m, &f) != 0)
		return;
	rc = batch ? ipc_unpack_results(&f, b, &bn)
	           : ipc_unpack_result(&f, b);
	FUZZ_CHECK(rc == 0 && bn == n);
	for (uint32_t i = 0; i < n; i++)
		FUZZ_CHECK(same_result(&a[i], &b[i]));
	ipc_frame_fini(&f);
}

/* Packs *a with pack, unpacks it with unpack into *b (zeroed first, as
 * *a was) and compares the bytes: for the types without pointers. */
#define ROUND_TRIP(type, pack, unpack, a)                                     \
	do {                                                                  \
		nng_msg *m_;                                                  \
		ipc_frame f_;                                                 \
		type b_;                                                      \
		memset(&b_, 0, sizeof b_);                                    \
		if (pack(&m_, (a)) == 0 && redecode(m_, &f_) == 0) {          \
			FUZZ_CHECK(unpack(&f_, &b_) == 0);                    \
			FUZZ_CHECK(memcmp((a), &b_, sizeof b_) == 0);         \
			ipc_frame_fini(&f_);                                  \
		}                                                             \
	} while (0)

static void round_trip_status(const ipc_status *a)
{
	nng_msg *m;
	ipc_frame f;
	ipc_status b;
	memset(&b, 0, sizeof b);
	if (ipc_pack_status(&m, a) != 0 || redecode(m, &f) != 0)
		return;
	int rc = ipc_unpack_status(&f, &b);
	ipc_frame_fini(&f);
	if (rc == CORRAL_ENOMEM)
		return;
	FUZZ_CHECK(rc == 0);
	FUZZ_CHECK(strcmp(a->name, b.name) == 0 && a->pid == b.pid &&
	           strcmp(a->state, b.state) == 0 &&
	           a->bad_frames == b.bad_frames &&
	           memcmp(&a->jobs, &b.jobs, sizeof a->jobs) == 0 &&
	           a->nworkers == b.nworkers);
	for (uint32_t i = 0; i < a->nworkers; i++)
		FUZZ_CHECK(memcmp(&a->workers[i], &b.workers[i],
		                  sizeof b.workers[i]) == 0);
	ipc_status_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	ipc_frame f;
	int rc = ipc_decode(data, size, IPC_MAX_FRAME, &f);
	FUZZ_CHECK(rc <= 0);
	if (rc)
		return 0;
	union {
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
	uint32_t n = 0;
	memset(&u, 0, sizeof u);
	switch (f.type) {
	case IPC_HELLO:
		if (ipc_unpack_hello(&f, &u.hello) == 0)
			ROUND_TRIP(ipc_hello, ipc_pack_hello, ipc_unpack_hello,
			           &u.hello);
		break;
	case IPC_HEALTH:
		if (ipc_unpack_health(&f, &u.health) == 0)
			ROUND_TRIP(ipc_health, ipc_pack_health,
			           ipc_unpack_health, &u.health);
		break;
	case IPC_STOP:
		if (ipc_unpack_stop(&f, &u.stop) == 0)
			ROUND_TRIP(ipc_stop, ipc_pack_stop, ipc_unpack_stop,
			           &u.stop);
		break;
	case IPC_ASSIGN:
		if (ipc_unpack_assign(&f, &u.assign) == 0)
			ROUND_TRIP(ipc_assign, ipc_pack_assign,
			           ipc_unpack_assign, &u.assign);
		break;
	case IPC_ERROR:
		if (ipc_unpack_error(&f, &u.error) == 0)
			ROUND_TRIP(ipc_error, ipc_pack_error, ipc_unpack_error,
			           &u.error);
		break;
	case IPC_STATUS:
		rc = ipc_unpack_status(&f, &u.status);
		FUZZ_CHECK(rc != 0 || u.status.nworkers == 0 ||
		           u.status.workers != NULL);
		if (rc == 0) {
			round_trip_status(&u.status);
			ipc_status_free(&u.status);
		}
		FUZZ_CHECK(u.status.workers == NULL);
		break;
	case IPC_JOB:
		if (ipc_unpack_jobs(&f, u.jobs, &n) == 0) {
			FUZZ_CHECK(n <= IPC_MAX_BATCH);
			for (uint32_t i = 0; i < n; i++)
				(void)fuzz_touch(u.jobs[i].payload,
				                 u.jobs[i].len);
			round_trip_jobs(u.jobs, n);
		}
		break;
	case IPC_REPLY:
		if (ipc_unpack_replies(&f, u.replies, &n) == 0) {
			FUZZ_CHECK(n <= IPC_MAX_BATCH);
			for (uint32_t i = 0; i < n; i++)
				(void)fuzz_touch(u.replies[i].data,
				                 u.replies[i].len);
			round_trip_replies(u.replies, n);
		}
		break;
	case IPC_CANCEL:
		if (ipc_unpack_cancel(&f, u.ids, &n) == 0) {
			nng_msg *m;
			ipc_frame g;
			uint64_t ids[IPC_MAX_BATCH];
			uint32_t gn;
			FUZZ_CHECK(n <= IPC_MAX_BATCH);
			if (ipc_pack_cancel(&m, u.ids, n) == 0 &&
			    redecode(m, &g) == 0) {
				FUZZ_CHECK(ipc_unpack_cancel(&g, ids, &gn) == 0);
				FUZZ_CHECK(gn == n && (n == 0 ||
				           memcmp(ids, u.ids, n * sizeof *ids) == 0));
				ipc_frame_fini(&g);
			}
		}
		break;
	case IPC_CALL:
		if (ipc_unpack_call(&f, &u.calls[0]) == 0) {
			(void)fuzz_touch(u.calls[0].payload, u.calls[0].len);
			round_trip_calls(u.calls, 1, 0);
		}
		break;
	case IPC_CALLS:
		if (ipc_unpack_calls(&f, u.calls, &n) == 0) {
			FUZZ_CHECK(n >= 1 && n <= IPC_MAX_BATCH);
			round_trip_calls(u.calls, n, 1);
		}
		break;
	case IPC_RESULT:
		if (ipc_unpack_result(&f, &u.results[0]) == 0) {
			if (u.results[0].ok)
				(void)fuzz_touch(u.results[0].data,
				                 u.results[0].len);
			round_trip_results(u.results, 1, 0);
		}
		break;
	case IPC_RESULTS:
		if (ipc_unpack_results(&f, u.results, &n) == 0) {
			FUZZ_CHECK(n <= IPC_MAX_BATCH);
			round_trip_results(u.results, n, 1);
		}
		break;
	case IPC_READY:
	case IPC_STATUS_REQ:
		break; /* empty bodies: nothing to unpack */
	case IPC_EVENTS_REQ: {
		ipc_events_req q;
		(void)ipc_unpack_events_req(&f, &q);
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
	case IPC_CMD: {
		static ipc_cmd c;
		if (ipc_unpack_cmd(&f, &c) == 0)
			FUZZ_CHECK(c.nargs <= IPC_MAX_ARGS);
		break;
	}
	case IPC_CMD_RESULT: {
		ipc_cmd_result r;
		(void)ipc_unpack_cmd_result(&f, &r);
		break;
	}
	case IPC_LOGS_REQ: {
		ipc_logs_req q;
		(void)ipc_unpack_logs_req(&f, &q);
		break;
	}
	case IPC_LOGS: {
		ipc_logs lg;
		if (ipc_unpack_logs(&f, &lg) == 0)
			ipc_logs_free(&lg);
		break;
	}
	default:
		FUZZ_CHECK(!"ipc_decode passed an unknown type");
	}
	/* Every unpacker refuses a frame of another type. */
	if (f.type != IPC_HELLO)
		FUZZ_CHECK(ipc_unpack_hello(&f, &u.hello) == CORRAL_ETYPE);
	if (f.type != IPC_STATUS)
		FUZZ_CHECK(ipc_unpack_status(&f, &u.status) == CORRAL_ETYPE);
	ipc_frame_fini(&f);
	return 0;
}
