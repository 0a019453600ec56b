/*
 * test_proto.c - every message kind round-trips, and every kind of damage
 * is rejected with its own code, before msgpack-c allocates anything.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "corral.h"
#include "ipc/mpscan.h"
#include "ipc/proto.h"
#include "tests/suites.h"

/* Decodes msg; the frame owns it from here. */
static int decode_msg(nng_msg *msg, ipc_frame *f)
{
	return ipc_decode_msg(msg, IPC_MAX_CTL_FRAME, f);
}

static int decode_bytes(const void *b, size_t n)
{
	ipc_frame f;
	int rc = ipc_decode(b, n, IPC_MAX_FRAME, &f);
	if (rc == 0)
		ipc_frame_fini(&f);
	return rc;
}

START_TEST(hello_roundtrip)
{
	ipc_hello in = {.slot = 7, .pid = 12345, .abi = 1}, out;
	strcpy(in.plugin, "echo");
	nng_msg *m;
	ipc_frame f;
	ck_assert_int_eq(ipc_pack_hello(&m, &in), 0);
	ck_assert_int_eq(decode_msg(m, &f), 0);
	ck_assert_int_eq(f.type, IPC_HELLO);
	ck_assert_int_eq(ipc_unpack_hello(&f, &out), 0);
	ck_assert_int_eq(out.slot, 7);
	ck_assert_int_eq(out.pid, 12345);
	ck_assert_uint_eq(out.abi, 1);
	ck_assert_str_eq(out.plugin, "echo");
	ipc_frame_fini(&f);
}
END_TEST

START_TEST(ready_and_status_req_roundtrip)
{
	nng_msg *m;
	ipc_frame f;
	ck_assert_int_eq(ipc_pack_ready(&m), 0);
	ck_assert_int_eq(decode_msg(m, &f), 0);
	ck_assert_int_eq(f.type, IPC_READY);
	ipc_frame_fini(&f);
	ck_assert_int_eq(ipc_pack_status_req(&m), 0);
	ck_assert_int_eq(decode_msg(m, &f), 0);
	ck_assert_int_eq(f.type, IPC_STATUS_REQ);
	ipc_frame_fini(&f);
}
END_TEST

START_TEST(health_roundtrip)
{
	ipc_health in, out;
	memset(&in, 0, sizeof in);
	in.pid = 99;
	in.uptime_ms = 1234;
	in.rss_bytes = 4u << 20;
	in.cpu_us = 5555;
	in.lag_p50_us = 10;
	in.lag_p99_us = 200;
	in.lag_max_us = 3000;
	in.util = 0.25;
	in.nmetrics = 2;
	strcpy(in.metrics[0].name, "tasks");
	in.metrics[0].value = 42.5;
	strcpy(in.metrics[1].name, "queue");
	in.metrics[1].value = -1;
	nng_msg *m;
	ipc_frame f;
	ck_assert_int_eq(ipc_pack_health(&m, &in), 0);
	ck_assert_int_eq(decode_msg(m, &f), 0);
	ck_assert_int_eq(ipc_unpack_health(&f, &out), 0);
	ck_assert_int_eq(out.pid, 99);
	ck_assert_uint_eq(out.uptime_ms, 1234);
	ck_assert_uint_eq(out.rss_bytes, 4u << 20);
	ck_assert_uint_eq(out.cpu_us, 5555);
	ck_assert_uint_eq(out.lag_p50_us, 10);
	ck_assert_uint_eq(out.lag_p99_us, 200);
	ck_assert_uint_eq(out.lag_max_us, 3000);
	ck_assert_double_eq(out.util, 0.25);
	ck_assert_uint_eq(out.nmetrics, 2);
	ck_assert_str_eq(out.metrics[0].name, "tasks");
	ck_assert_double_eq(out.metrics[0].value, 42.5);
	ck_assert_str_eq(out.metrics[1].name, "queue");
	ck_assert_double_eq(out.metrics[1].value, -1);
	ipc_frame_fini(&f);
}
END_TEST

/* Gives every field of a table a distinct value that fits its type. */
static void fill_fields(const ipc_field *f, unsigned n, void *base,
                        unsigned seed)
{
	for (unsigned i = 0; i < n; i++) {
		char *p = (char *)base + f[i].off;
		unsigned v = seed * 100 + i + 1;
		switch (f[i].type) {
		case IPC_T_U64: *(uint64_t *)p = (uint64_t)v << 33; break;
		case IPC_T_I64: *(int64_t *)p = -(int64_t)v; break;
		case IPC_T_U32: *(uint32_t *)p = v; break;
		case IPC_T_I32: *(int32_t *)p = -(int32_t)v; break;
		case IPC_T_F64: *(double *)p = v + 0.5; break;
		case IPC_T_BOOL: *(int *)p = (int)(v & 1); break;
		case IPC_T_STR: snprintf(p, IPC_STATE_LEN, "s%u", v); break;
		}
	}
}

static size_t ftype_size(ipc_ftype t)
{
	switch (t) {
	case IPC_T_U64: case IPC_T_I64: case IPC_T_F64: return 8;
	case IPC_T_U32: case IPC_T_I32: return 4;
	case IPC_T_BOOL: return sizeof(int);
	case IPC_T_STR: return IPC_STATE_LEN;
	}
	return 0;
}

static void same_fields(const ipc_field *f, unsigned n, const void *a,
                        const void *b)
{
	for (unsigned i = 0; i < n; i++)
		ck_assert_msg(memcmp((const char *)a + f[i].off,
		                     (const char *)b + f[i].off,
		                     ftype_size(f[i].type)) == 0,
		              "field %s did not survive", f[i].key);
}

/* Every row of the field tables travels, whatever is added to them. */
START_TEST(every_table_field_roundtrips)
{
	ipc_worker_status w[1];
	memset(w, 0, sizeof w);
	fill_fields(ipc_slot_fields, ipc_slot_nfields, &w[0], 1);
	fill_fields(ipc_health_fields, ipc_health_nfields, &w[0].health, 2);
	fill_fields(ipc_pool_fields, ipc_pool_nfields, &w[0].health.pool, 3);
	ipc_status in = {.pid = 1, .nworkers = 1, .workers = w}, out;
	fill_fields(ipc_jobstat_fields, ipc_jobstat_nfields, &in.jobs, 4);
	nng_msg *m;
	ipc_frame f;
	ck_assert_int_eq(ipc_pack_status(&m, &in), 0);
	ck_assert_int_eq(decode_msg(m, &f), 0);
	ck_assert_int_eq(ipc_unpack_status(&f, &out), 0);
	ipc_frame_fini(&f);
	same_fields(ipc_slot_fields, ipc_slot_nfields, &w[0], &out.workers[0]);
	same_fields(ipc_health_fields, ipc_health_nfields, &w[0].health,
	            &out.workers[0].health);
	same_fields(ipc_pool_fields, ipc_pool_nfields, &w[0].health.pool,
	            &out.workers[0].health.pool);
	same_fields(ipc_jobstat_fields, ipc_jobstat_nfields, &in.jobs,
	            &out.jobs);
	ipc_status_free(&out);
	/* Wire keys are unique within each table. */
	const ipc_field *t[] = {ipc_slot_fields, ipc_health_fields,
	                        ipc_pool_fields, ipc_jobstat_fields};
	unsigned nt[] = {ipc_slot_nfields, ipc_health_nfields,
	                 ipc_pool_nfields, ipc_jobstat_nfields};
	for (int k = 0; k < 4; k++)
		for (unsigned i = 0; i < nt[k]; i++)
			for (unsigned j = i + 1; j < nt[k]; j++)
				ck_assert_str_ne(t[k][i].key, t[k][j].key);
}
END_TEST

START_TEST(events_roundtrip_with_and_without_decision)
{
	ipc_event ev[2];
	memset(ev, 0, sizeof ev);
	ev[0] = (ipc_event){.seq = 1, .t_ms = 1700000000123ull, .slot = 2,
	                    .pid = 4242, .gen = 3};
	strcpy(ev[0].kind, "slot");
	strcpy(ev[0].from, "running");
	strcpy(ev[0].to, "exited");
	strcpy(ev[0].why, "killed by signal SIGKILL");
	ev[1] = ev[0];
	ev[1].seq = 2;
	strcpy(ev[1].kind, "decision");
	strcpy(ev[1].to, "restart");
	ev[1].has_decision = 1;
	fill_fields(ipc_decision_fields, ipc_decision_nfields, &ev[1].dec, 5);
	ipc_events in = {.first = 1, .last = 2, .n = 2, .ev = ev}, out;
	nng_msg *m;
	ipc_frame f;
	ck_assert_int_eq(ipc_pack_events(&m, &in), 0);
	ck_assert_int_eq(decode_msg(m, &f), 0);
	ck_assert_int_eq(ipc_unpack_events(&f, &out), 0);
	ipc_frame_fini(&f);
	ck_assert_uint_eq(out.n, 2);
	ck_assert_int_eq(out.ev[0].has_decision, 0);
	ck_assert_str_eq(out.ev[0].why, "killed by signal SIGKILL");
	ck_assert_uint_eq(out.ev[0].gen, 3);
	ck_assert_int_eq(out.ev[1].has_decision, 1);
	ck_assert_str_eq(out.ev[1].kind, "decision");
	same_fields(ipc_decision_fields, ipc_decision_nfields, &ev[1].dec,
	            &out.ev[1].dec);
	ipc_events_free(&out);
	for (unsigned i = 0; i < ipc_decision_nfields; i++)
		for (unsigned j = i + 1; j < ipc_decision_nfields; j++)
			ck_assert_str_ne(ipc_decision_fields[i].key,
			                 ipc_decision_fields[j].key);
}
END_TEST

/* [1, type, body] with body packed by fn. */
static nng_msg *frame_of(int type, void (*fn)(msgpack_packer *pk))
{
	msgpack_sbuffer sb;
	msgpack_packer pk;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_array(&pk, 3);
	msgpack_pack_int(&pk, 1);
	msgpack_pack_int(&pk, type);
	fn(&pk);
	nng_msg *m;
	ck_assert_int_eq(nng_msg_alloc(&m, 0), 0);
	ck_assert_int_eq(nng_msg_append(m, sb.data, sb.size), 0);
	msgpack_sbuffer_destroy(&sb);
	return m;
}

static void pk_key(msgpack_packer *pk, const char *k)
{
	msgpack_pack_str(pk, strlen(k));
	msgpack_pack_str_body(pk, k, strlen(k));
}

/* An event as a 10-item array whose 10th is not a map. */
static void bad_decision(msgpack_packer *pk)
{
	msgpack_pack_map(pk, 3);
	pk_key(pk, "first");
	msgpack_pack_uint64(pk, 1);
	pk_key(pk, "last");
	msgpack_pack_uint64(pk, 1);
	pk_key(pk, "ev");
	msgpack_pack_array(pk, 1);
	msgpack_pack_array(pk, 10);
	msgpack_pack_uint64(pk, 1);
	msgpack_pack_uint64(pk, 2);
	pk_key(pk, "decision");
	msgpack_pack_int32(pk, 0);
	msgpack_pack_int64(pk, 1);
	msgpack_pack_uint32(pk, 0);
	pk_key(pk, "exited");
	pk_key(pk, "restart");
	pk_key(pk, "why");
	msgpack_pack_uint64(pk, 7);
}

static void logs_level_9(msgpack_packer *pk)
{
	msgpack_pack_map(pk, 3);
	pk_key(pk, "next");
	msgpack_pack_uint64(pk, 1);
	pk_key(pk, "end");
	msgpack_pack_false(pk);
	pk_key(pk, "l");
	msgpack_pack_array(pk, 1);
	msgpack_pack_array(pk, 6);
	msgpack_pack_uint64(pk, 1);
	msgpack_pack_uint64(pk, 2);
	msgpack_pack_uint32(pk, 9);
	msgpack_pack_int32(pk, 0);
	msgpack_pack_int64(pk, 1);
	pk_key(pk, "x");
}

static void logs_short_tuple(msgpack_packer *pk)
{
	msgpack_pack_map(pk, 3);
	pk_key(pk, "next");
	msgpack_pack_uint64(pk, 1);
	pk_key(pk, "end");
	msgpack_pack_false(pk);
	pk_key(pk, "l");
	msgpack_pack_array(pk, 1);
	msgpack_pack_array(pk, 5);
	for (int i = 0; i < 5; i++)
		msgpack_pack_uint64(pk, 1);
}

static void logs_long_line(msgpack_packer *pk)
{
	static char big[IPC_MAX_LOGLINE + 1];
	memset(big, 'x', sizeof big);
	msgpack_pack_map(pk, 3);
	pk_key(pk, "next");
	msgpack_pack_uint64(pk, 1);
	pk_key(pk, "end");
	msgpack_pack_false(pk);
	pk_key(pk, "l");
	msgpack_pack_array(pk, 1);
	msgpack_pack_array(pk, 6);
	msgpack_pack_uint64(pk, 1);
	msgpack_pack_uint64(pk, 2);
	msgpack_pack_uint32(pk, 2);
	msgpack_pack_int32(pk, 0);
	msgpack_pack_int64(pk, 1);
	msgpack_pack_str(pk, sizeof big);
	msgpack_pack_str_body(pk, big, sizeof big);
}

START_TEST(events_and_logs_reject_damage)
{
	struct {
		int type;
		void (*fn)(msgpack_packer *pk);
		int code;
	} cases[] = {{IPC_EVENTS, bad_decision, CORRAL_EFIELD},
	             {IPC_LOGS, logs_level_9, CORRAL_EFIELD},
	             {IPC_LOGS, logs_short_tuple, CORRAL_EFIELD},
	             {IPC_LOGS, logs_long_line, CORRAL_ETOOLONG}};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		ipc_frame f;
		ipc_events ev;
		ipc_logs lg;
		ck_assert_int_eq(decode_msg(frame_of(cases[i].type, cases[i].fn),
		                            &f), 0);
		int rc = cases[i].type == IPC_EVENTS
		             ? ipc_unpack_events(&f, &ev)
		             : ipc_unpack_logs(&f, &lg);
		ck_assert_msg(rc == cases[i].code, "case %zu: %s", i,
		              corral_errname(rc));
		ipc_frame_fini(&f);
	}
}
END_TEST

START_TEST(logs_roundtrip_and_requests_are_checked)
{
	ipc_logs_req q = {.since = 41, .wait_ms = 30000, .max = 256,
	                  .slot = 3, .tail = 10}, q2;
	nng_msg *m;
	ipc_frame f;
	ck_assert_int_eq(ipc_pack_logs_req(&m, &q), 0);
	ck_assert_int_eq(decode_msg(m, &f), 0);
	ck_assert_int_eq(f.type, IPC_LOGS_REQ);
	ck_assert_int_eq(ipc_unpack_logs_req(&f, &q2), 0);
	ipc_frame_fini(&f);
	ck_assert_uint_eq(q2.since, 41);
	ck_assert_uint_eq(q2.wait_ms, 30000);
	ck_assert_uint_eq(q2.max, 256);
	ck_assert_int_eq(q2.slot, 3);
	ck_assert_uint_eq(q2.tail, 10);
	/* max 0 or past the limit, a slot below -1: refused. */
	ipc_logs_req bad[] = {{.max = 0, .slot = -1},
	                      {.max = IPC_MAX_LOGLINES + 1, .slot = -1},
	                      {.max = 1, .slot = -2}};
	for (size_t i = 0; i < 3; i++) {
		ck_assert_int_eq(ipc_pack_logs_req(&m, &bad[i]), 0);
		ck_assert_int_eq(decode_msg(m, &f), 0);
		ck_assert_int_eq(ipc_unpack_logs_req(&f, &q2), CORRAL_EFIELD);
		ipc_frame_fini(&f);
	}

	/* Lines: bytes kept as they are (not text-checked: a worker may
	 * write anything), pointing into the frame. */
	static const char raw[] = "caf\xc3\xa9 \xff bytes";
	ipc_logline l[2] = {
		{.seq = 7, .t_ms = 1700000000001ull, .level = 1, .slot = -1,
		 .pid = 0, .msg = "supervisor says", .len = 15},
		{.seq = 9, .t_ms = 1700000000002ull, .level = 2, .slot = 4,
		 .pid = 777, .msg = raw, .len = sizeof raw - 1}};
	ipc_logs in = {.next = 9, .end = 1, .n = 2, .lines = l}, out;
	ck_assert_int_eq(ipc_pack_logs(&m, &in), 0);
	ck_assert_int_eq(decode_msg(m, &f), 0);
	ck_assert_int_eq(ipc_unpack_logs(&f, &out), 0);
	ck_assert_uint_eq(out.next, 9);
	ck_assert_int_eq(out.end, 1);
	ck_assert_uint_eq(out.n, 2);
	for (int i = 0; i < 2; i++) {
		ck_assert_uint_eq(out.lines[i].seq, l[i].seq);
		ck_assert_uint_eq(out.lines[i].t_ms, l[i].t_ms);
		ck_assert_uint_eq(out.lines[i].level, l[i].level);
		ck_assert_int_eq(out.lines[i].slot, l[i].slot);
		ck_assert_int_eq(out.lines[i].pid, l[i].pid);
		ck_assert_uint_eq(out.lines[i].len, l[i].len);
		ck_assert(memcmp(out.lines[i].msg, l[i].msg, l[i].len) == 0);
	}
	ipc_logs_free(&out);
	ipc_frame_fini(&f);
}
END_TEST

START_TEST(stop_and_error_roundtrip)
{
	ipc_stop s = {.timeout_ms = 10000}, s2;
	ipc_error e = {.code = CORRAL_ETYPE}, e2;
	strcpy(e.msg, "nope");
	nng_msg *m;
	ipc_frame f;
	ck_assert_int_eq(ipc_pack_stop(&m, &s), 0);
	ck_assert_int_eq(decode_msg(m, &f), 0);
	ck_assert_int_eq(ipc_unpack_stop(&f, &s2), 0);
	ck_assert_uint_eq(s2.timeout_ms, 10000);
	/* The wrong unpacker for a type is refused. */
	ck_assert_int_eq(ipc_unpack_hello(&f, &(ipc_hello){0}), CORRAL_ETYPE);
	ipc_frame_fini(&f);
	ck_assert_int_eq(ipc_pack_error(&m, &e), 0);
	ck_assert_int_eq(decode_msg(m, &f), 0);
	ck_assert_int_eq(ipc_unpack_error(&f, &e2), 0);
	ck_assert_int_eq(e2.code, CORRAL_ETYPE);
	ck_assert_str_eq(e2.msg, "nope");
	ipc_frame_fini(&f);
}
END_TEST

START_TEST(command_roundtrip_with_and_without_id)
{
	ipc_cmd c = {.cmd = "restart", .nargs = 2, .args = {"0", "2"},
	             .id = 0x123456789abcdefULL}, c2;
	nng_msg *m;
	ipc_frame f;
	for (int k = 0; k < 2; k++) {
		ck_assert_int_eq(ipc_pack_cmd(&m, &c), 0);
		ck_assert_int_eq(decode_msg(m, &f), 0);
		memset(&c2, 0xff, sizeof c2);
		ck_assert_int_eq(ipc_unpack_cmd(&f, &c2), 0);
		ck_assert_str_eq(c2.cmd, "restart");
		ck_assert_uint_eq(c2.nargs, 2);
		ck_assert_str_eq(c2.args[1], "2");
		ck_assert(c2.id == c.id); /* an old client's: 0 */
		ipc_frame_fini(&f);
		c.id = 0;
	}
}
END_TEST

START_TEST(status_roundtrip)
{
	ipc_worker_status ws[2];
	memset(ws, 0, sizeof ws);
	ws[0].slot = 0;
	ws[0].pid = 10;
	strcpy(ws[0].state, "running");
	ws[0].restarts = 3;
	ws[0].uptime_ms = 999;
	ws[0].health.rss_bytes = 1000;
	ws[0].cpu_pct = 1.5;
	ws[0].health.lag_p99_us = 77;
	ws[0].exit_code = -1;
	strcpy(ws[0].exit_signal, "SIGKILL");
	ws[0].health.nmetrics = 1;
	strcpy(ws[0].health.metrics[0].name, "m");
	ws[0].health.metrics[0].value = 2;
	ws[1].slot = 1;
	strcpy(ws[1].state, "failed");
	ws[1].exit_code = 78;
	ipc_status in = {.pid = 5, .bad_frames = 3, .slow_readers = 4,
	                 .nworkers = 2,
	                 .workers = ws}, out;
	strcpy(in.name, "web");
	strcpy(in.state, "running");
	nng_msg *m;
	ipc_frame f;
	ck_assert_int_eq(ipc_pack_status(&m, &in), 0);
	ck_assert_int_eq(decode_msg(m, &f), 0);
	ck_assert_int_eq(ipc_unpack_status(&f, &out), 0);
	ipc_frame_fini(&f);
	ck_assert_str_eq(out.name, "web");
	ck_assert_int_eq(out.pid, 5);
	ck_assert_uint_eq(out.bad_frames, 3);
	ck_assert_uint_eq(out.slow_readers, 4);
	ck_assert_uint_eq(out.nworkers, 2);
	ck_assert_int_eq(out.workers[0].pid, 10);
	ck_assert_str_eq(out.workers[0].state, "running");
	ck_assert_uint_eq(out.workers[0].restarts, 3);
	ck_assert_double_eq(out.workers[0].cpu_pct, 1.5);
	ck_assert_uint_eq(out.workers[0].health.lag_p99_us, 77);
	ck_assert_str_eq(out.workers[0].exit_signal, "SIGKILL");
	ck_assert_int_eq(out.workers[0].exit_code, -1);
	ck_assert_double_eq(out.workers[0].health.metrics[0].value, 2);
	ck_assert_str_eq(out.workers[1].state, "failed");
	ck_assert_int_eq(out.workers[1].exit_code, 78);
	ipc_status_free(&out);
}
END_TEST

START_TEST(job_messages_roundtrip)
{
	ipc_job jobs[2] = {
		{.id = 1, .timeout_ms = 500, .prio = 2,
		 .payload = (const uint8_t *)"abc", .len = 3},
		{.id = 1ull << 40, .timeout_ms = 0, .prio = 0,
		 .payload = (const uint8_t *)"", .len = 0},
	};
	nng_msg *m;
	ipc_frame f;
	ipc_job jo[IPC_MAX_BATCH];
	uint32_t n;
	ck_assert_int_eq(ipc_pack_jobs(&m, jobs, 2), 0);
	ck_assert_int_eq(decode_msg(m, &f), 0);
	ck_assert_int_eq(ipc_unpack_jobs(&f, jo, &n), 0);
	ck_assert_uint_eq(n, 2);
	ck_assert_uint_eq(jo[1].id, 1ull << 40);
	ck_assert_uint_eq(jo[0].timeout_ms, 500);
	ck_assert_uint_eq(jo[0].len, 3);
	ck_assert_int_eq(memcmp(jo[0].payload, "abc", 3), 0);
	ipc_frame_fini(&f);

	ipc_reply r[2] = {{.id = 7, .code = 0, .data = (const uint8_t *)"ok",
	                   .len = 2},
	                  {.id = 8, .code = CORRAL_EPLUGIN,
	                   .data = (const uint8_t *)"bad", .len = 3}};
	ipc_reply ro[IPC_MAX_BATCH];
	ck_assert_int_eq(ipc_pack_replies(&m, r, 2), 0);
	ck_assert_int_eq(decode_msg(m, &f), 0);
	ck_assert_int_eq(ipc_unpack_replies(&f, ro, &n), 0);
	ck_assert_uint_eq(n, 2);
	ck_assert_int_eq(ro[1].code, CORRAL_EPLUGIN);
	ck_assert_int_eq(memcmp(ro[1].data, "bad", 3), 0);
	ipc_frame_fini(&f);

	uint64_t ids[3] = {3, 4, 5}, io[IPC_MAX_BATCH];
	ck_assert_int_eq(ipc_pack_cancel(&m, ids, 3), 0);
	ck_assert_int_eq(decode_msg(m, &f), 0);
	ck_assert_int_eq(ipc_unpack_cancel(&f, io, &n), 0);
	ck_assert_uint_eq(n, 3);
	ck_assert_uint_eq(io[2], 5);
	ipc_frame_fini(&f);

	ipc_call c = {.payload = (const uint8_t *)"x", .len = 1,
	              .timeout_ms = 250, .prio = 1}, co;
	ck_assert_int_eq(ipc_pack_call(&m, &c), 0);
	ck_assert_int_eq(decode_msg(m, &f), 0);
	ck_assert_int_eq(ipc_unpack_call(&f, &co), 0);
	ck_assert_uint_eq(co.timeout_ms, 250);
	ck_assert_int_eq(co.prio, 1);
	ck_assert_uint_eq(co.len, 1);
	ipc_frame_fini(&f);

	ipc_result res = {.ok = 0}, ro2;
	strcpy(res.err, "busy");
	strcpy(res.msg, "queue full");
	ck_assert_int_eq(ipc_pack_result(&m, &res), 0);
	ck_assert_int_eq(decode_msg(m, &f), 0);
	ck_assert_int_eq(ipc_unpack_result(&f, &ro2), 0);
	ck_assert_int_eq(ro2.ok, 0);
	ck_assert_str_eq(ro2.err, "busy");
	ck_assert_str_eq(ro2.msg, "queue full");
	ipc_frame_fini(&f);
}
END_TEST

START_TEST(call_from_a_foreign_client_is_checked)
{
	/* [1, 32, {"p": bin "hi"}]: the minimal request a client in any
	 * language sends; timeout and priority are optional. */
	static const uint8_t min[] = {0x93, 0x01, 0x20, 0x81, 0xa1, 'p',
	                              0xc4, 0x02, 'h', 'i'};
	ipc_frame f;
	ipc_call c;
	ck_assert_int_eq(ipc_decode(min, sizeof min, IPC_MAX_FRAME, &f), 0);
	ck_assert_int_eq(ipc_unpack_call(&f, &c), 0);
	ck_assert_uint_eq(c.len, 2);
	ck_assert_uint_eq(c.timeout_ms, 0);
	ck_assert_int_eq(c.prio, 2);
	ipc_frame_fini(&f);
	/* priority out of range */
	static const uint8_t badpr[] = {0x93, 0x01, 0x20, 0x82, 0xa1, 'p',
	                                0xc4, 0x00, 0xa2, 'p', 'r', 0x09};
	ck_assert_int_eq(ipc_decode(badpr, sizeof badpr, IPC_MAX_FRAME, &f), 0);
	ck_assert_int_eq(ipc_unpack_call(&f, &c), CORRAL_EFIELD);
	ipc_frame_fini(&f);
	/* payload missing */
	static const uint8_t nop[] = {0x93, 0x01, 0x20, 0x80};
	ck_assert_int_eq(ipc_decode(nop, sizeof nop, IPC_MAX_FRAME, &f), 0);
	ck_assert_int_eq(ipc_unpack_call(&f, &c), CORRAL_EMISSING);
	ipc_frame_fini(&f);
}
END_TEST

START_TEST(call_batches_roundtrip_and_are_checked)
{
	ipc_call c[3] = {
		{.payload = (const uint8_t *)"a", .len = 1, .prio = 0},
		{.payload = (const uint8_t *)"", .len = 0, .timeout_ms = 50,
		 .prio = 3},
		{.payload = (const uint8_t *)"ccc", .len = 3, .prio = 2},
	};
	nng_msg *m;
	ipc_frame f;
	ipc_call out[IPC_MAX_BATCH];
	uint32_t n;
	ck_assert_int_eq(ipc_pack_calls(&m, c, 3), 0);
	ck_assert_int_eq(decode_msg(m, &f), 0);
	ck_assert_int_eq(ipc_unpack_calls(&f, out, &n), 0);
	ck_assert_uint_eq(n, 3);
	ck_assert_uint_eq(out[1].timeout_ms, 50);
	ck_assert_int_eq(out[1].prio, 3);
	ck_assert_uint_eq(out[2].len, 3);
	ck_assert(memcmp(out[2].payload, "ccc", 3) == 0);
	ipc_frame_fini(&f);

	/* results: ok with data, and an error, in order */
	ipc_result r[2] = {{.ok = 1, .data = (const uint8_t *)"xy", .len = 2},
	                   {.ok = 0}};
	strcpy(r[1].err, "busy");
	strcpy(r[1].msg, "full");
	ipc_result ro[IPC_MAX_BATCH];
	ck_assert_int_eq(ipc_pack_results(&m, r, 2), 0);
	ck_assert_int_eq(decode_msg(m, &f), 0);
	ck_assert_int_eq(ipc_unpack_results(&f, ro, &n), 0);
	ck_assert_uint_eq(n, 2);
	ck_assert(ro[0].ok && ro[0].len == 2 && memcmp(ro[0].data, "xy", 2) == 0);
	ck_assert(!ro[1].ok);
	ck_assert_str_eq(ro[1].err, "busy");
	ck_assert_str_eq(ro[1].msg, "full");
	ipc_frame_fini(&f);
	/* ...and the same built in place (the broker's way), in a message
	 * sized once: ipc_result_bytes is the data, or err and msg. */
	ck_assert_uint_eq(ipc_result_bytes(&r[0]), 2);
	ck_assert_uint_eq(ipc_result_bytes(&r[1]), 8);
	ipc_batch bt;
	ck_assert_int_eq(ipc_batch_begin(&bt, IPC_RESULTS, 64 + 2 *
	                 IPC_CALL_OVERHEAD + 10), 0);
	size_t cap = nng_msg_capacity(bt.msg);
	for (int i = 0; i < 2; i++)
		ck_assert_int_eq(ipc_batch_add_result(&bt, &r[i]), 0);
	ck_assert_uint_eq(nng_msg_capacity(bt.msg), cap); /* never grew */
	ipc_batch_end(&bt, &m);
	ck_assert_int_eq(decode_msg(m, &f), 0);
	ck_assert_int_eq(f.type, IPC_RESULTS);
	ck_assert_int_eq(ipc_unpack_results(&f, ro, &n), 0);
	ck_assert_uint_eq(n, 2);
	ck_assert(ro[0].ok && ro[0].len == 2 && memcmp(ro[0].data, "xy", 2) == 0);
	ck_assert(!ro[1].ok);
	ck_assert_str_eq(ro[1].err, "busy");
	ck_assert_str_eq(ro[1].msg, "full");
	ipc_frame_fini(&f);

	/* empty batch, too many, wrong tuple width, bad priority */
	ck_assert_int_eq(ipc_pack_calls(&m, c, 0), 0);
	ck_assert_int_eq(decode_msg(m, &f), 0);
	ck_assert_int_eq(ipc_unpack_calls(&f, out, &n), CORRAL_EFIELD);
	ipc_frame_fini(&f);
	ipc_call many[IPC_MAX_BATCH + 1];
	for (int i = 0; i <= IPC_MAX_BATCH; i++)
		many[i] = c[0];
	ck_assert_int_eq(ipc_pack_calls(&m, many, IPC_MAX_BATCH + 1), 0);
	ck_assert_int_eq(decode_msg(m, &f), 0);
	ck_assert_int_eq(ipc_unpack_calls(&f, out, &n), CORRAL_ETOOMANY);
	ipc_frame_fini(&f);
	/* [1, 34, {"c": [[bin "a", 0]]}] */
	static const uint8_t narrow[] = {0x93, 0x01, 0x22, 0x81, 0xa1, 'c',
	                                 0x91, 0x92, 0xc4, 0x01, 'a', 0x00};
	ck_assert_int_eq(ipc_decode(narrow, sizeof narrow, IPC_MAX_FRAME, &f), 0);
	ck_assert_int_eq(ipc_unpack_calls(&f, out, &n), CORRAL_EFIELD);
	ipc_frame_fini(&f);
	/* [1, 34, {"c": [[bin "a", 0, 7]]}] */
	static const uint8_t badpr[] = {0x93, 0x01, 0x22, 0x81, 0xa1, 'c',
	                                0x91, 0x93, 0xc4, 0x01, 'a', 0x00,
	                                0x07};
	ck_assert_int_eq(ipc_decode(badpr, sizeof badpr, IPC_MAX_FRAME, &f), 0);
	ck_assert_int_eq(ipc_unpack_calls(&f, out, &n), CORRAL_EFIELD);
	ipc_frame_fini(&f);
}
END_TEST

/* ---- malformed frames, one code each ---- */

START_TEST(rejects_truncated)
{
	nng_msg *m;
	ipc_hello h = {.slot = 1, .pid = 2, .abi = 1};
	strcpy(h.plugin, "truncate-me");
	ck_assert_int_eq(ipc_pack_hello(&m, &h), 0);
	size_t n = nng_msg_len(m);
	for (size_t cut = 1; cut < n; cut++)
		ck_assert_int_eq(decode_bytes(nng_msg_body(m), cut),
		                 CORRAL_ETRUNC);
	ck_assert_int_eq(decode_bytes(nng_msg_body(m), 0), CORRAL_ETRUNC);
	nng_msg_free(m);
}
END_TEST

START_TEST(rejects_length_bomb)
{
	/* array32 declaring 2^32-1 items, in a 5-byte frame */
	static const uint8_t bomb[] = {0xdd, 0xff, 0xff, 0xff, 0xff};
	ck_assert_int_eq(decode_bytes(bomb, sizeof bomb), CORRAL_ETOOMANY);
	/* map32 too */
	static const uint8_t mbomb[] = {0xdf, 0xff, 0xff, 0xff, 0xff};
	ck_assert_int_eq(decode_bytes(mbomb, sizeof mbomb), CORRAL_ETOOMANY);
	/* str32 declaring 4 GiB */
	static const uint8_t sbomb[] = {0x93, 0x01, 0x01, 0xdb, 0xff, 0xff,
	                                0xff, 0xff};
	ck_assert_int_eq(decode_bytes(sbomb, sizeof sbomb), CORRAL_ETOOLONG);
}
END_TEST

START_TEST(rejects_oversize_string)
{
	size_t n = IPC_MAX_STR + 1;
	uint8_t *b = malloc(n + 16);
	size_t o = 0;
	b[o++] = 0x93; /* [1, 1, {"plugin": <str>}] */
	b[o++] = 0x01;
	b[o++] = 0x01;
	b[o++] = 0x81;
	b[o++] = 0xa1;
	b[o++] = 'p';
	b[o++] = 0xdb; /* str32 */
	b[o++] = (uint8_t)(n >> 24);
	b[o++] = (uint8_t)(n >> 16);
	b[o++] = (uint8_t)(n >> 8);
	b[o++] = (uint8_t)n;
	memset(b + o, 'x', n);
	o += n;
	ck_assert_int_eq(decode_bytes(b, o), CORRAL_ETOOLONG);
	free(b);
	/* A string within the frame limits but too long for its field. */
	uint8_t raw[128];
	o = 0;
	raw[o++] = 0x93;
	raw[o++] = 0x01;
	raw[o++] = IPC_HELLO;
	raw[o++] = 0x84;
	raw[o++] = 0xa4; memcpy(raw + o, "slot", 4); o += 4; raw[o++] = 0;
	raw[o++] = 0xa3; memcpy(raw + o, "pid", 3); o += 3; raw[o++] = 1;
	raw[o++] = 0xa3; memcpy(raw + o, "abi", 3); o += 3; raw[o++] = 1;
	raw[o++] = 0xa6; memcpy(raw + o, "plugin", 6); o += 6;
	raw[o++] = 0xd9; raw[o++] = IPC_NAME_LEN;
	memset(raw + o, 'z', IPC_NAME_LEN); o += IPC_NAME_LEN;
	ipc_frame f;
	ipc_hello out;
	ck_assert_int_eq(ipc_decode(raw, o, IPC_MAX_FRAME, &f), 0);
	ck_assert_int_eq(ipc_unpack_hello(&f, &out), CORRAL_ETOOLONG);
	ipc_frame_fini(&f);
}
END_TEST

START_TEST(rejects_too_deep)
{
	uint8_t b[64];
	size_t o = 0;
	b[o++] = 0x93;
	b[o++] = 0x01;
	b[o++] = IPC_HEALTH;
	for (int i = 0; i < 20; i++)
		b[o++] = 0x91; /* [[[[...]]]] */
	b[o++] = 0x00;
	ck_assert_int_eq(decode_bytes(b, o), CORRAL_EDEPTH);
}
END_TEST

START_TEST(rejects_unknown_version_and_type)
{
	static const uint8_t v2[] = {0x93, 0x02, IPC_READY, 0x80};
	static const uint8_t t99[] = {0x93, 0x01, 99, 0x80};
	static const uint8_t big[] = {0x93, 0x01, 0xcd, 0x12, 0x34, 0x80};
	ck_assert_int_eq(decode_bytes(v2, sizeof v2), CORRAL_EVERSION);
	ck_assert_int_eq(decode_bytes(t99, sizeof t99), CORRAL_ETYPE);
	ck_assert_int_eq(decode_bytes(big, sizeof big), CORRAL_ETYPE);
}
END_TEST

START_TEST(rejects_bad_envelope_and_bytes)
{
	static const uint8_t notarr[] = {0x81, 0xa1, 'a', 0x01};
	static const uint8_t two[] = {0x92, 0x01, 0x02};
	static const uint8_t bodyarr[] = {0x93, 0x01, 0x02, 0x90};
	static const uint8_t c1[] = {0x93, 0x01, 0x02, 0xc1};
	static const uint8_t trailing[] = {0x93, 0x01, IPC_READY, 0x80, 0x00};
	ck_assert_int_eq(decode_bytes(notarr, sizeof notarr), CORRAL_EENVELOPE);
	ck_assert_int_eq(decode_bytes(two, sizeof two), CORRAL_EENVELOPE);
	ck_assert_int_eq(decode_bytes(bodyarr, sizeof bodyarr),
	                 CORRAL_EENVELOPE);
	ck_assert_int_eq(decode_bytes(c1, sizeof c1), CORRAL_EMALFORMED);
	ck_assert_int_eq(decode_bytes(trailing, sizeof trailing),
	                 CORRAL_ETRAILING);
}
END_TEST

START_TEST(rejects_missing_key_and_wrong_type)
{
	/* HELLO without "plugin" */
	static const uint8_t missing[] = {
		0x93, 0x01, IPC_HELLO, 0x83,
		0xa4, 's', 'l', 'o', 't', 0x00,
		0xa3, 'p', 'i', 'd', 0x01,
		0xa3, 'a', 'b', 'i', 0x01};
	/* HELLO with "pid" as a string */
	static const uint8_t wrong[] = {
		0x93, 0x01, IPC_HELLO, 0x84,
		0xa4, 's', 'l', 'o', 't', 0x00,
		0xa3, 'p', 'i', 'd', 0xa1, '1',
		0xa3, 'a', 'b', 'i', 0x01,
		0xa6, 'p', 'l', 'u', 'g', 'i', 'n', 0xa0};
	ipc_frame f;
	ipc_hello h;
	ck_assert_int_eq(ipc_decode(missing, sizeof missing, IPC_MAX_FRAME, &f),
	                 0);
	ck_assert_int_eq(ipc_unpack_hello(&f, &h), CORRAL_EMISSING);
	ipc_frame_fini(&f);
	ck_assert_int_eq(ipc_decode(wrong, sizeof wrong, IPC_MAX_FRAME, &f), 0);
	ck_assert_int_eq(ipc_unpack_hello(&f, &h), CORRAL_EFIELD);
	ipc_frame_fini(&f);
}
END_TEST

START_TEST(rejects_oversize_frame)
{
	uint8_t *b = calloc(1, IPC_MAX_FRAME + 1);
	ck_assert_int_eq(decode_bytes(b, IPC_MAX_FRAME + 1), CORRAL_ETOOBIG);
	free(b);
}
END_TEST

START_TEST(codes_are_distinct_and_named)
{
	int codes[] = {CORRAL_ETRUNC, CORRAL_EMALFORMED, CORRAL_EDEPTH,
	               CORRAL_ETOOLONG, CORRAL_ETOOMANY, CORRAL_ETOOBIG,
	               CORRAL_EVERSION, CORRAL_ETYPE, CORRAL_EENVELOPE,
	               CORRAL_EMISSING, CORRAL_EFIELD, CORRAL_ETRAILING};
	size_t n = sizeof codes / sizeof codes[0];
	for (size_t i = 0; i < n; i++) {
		ck_assert_str_ne(corral_strerror(codes[i]), "unknown error");
		for (size_t j = i + 1; j < n; j++)
			ck_assert_int_ne(codes[i], codes[j]);
	}
	ck_assert_str_eq(corral_errname(CORRAL_ETRUNC), "ETRUNC");
	ck_assert_str_eq(corral_strerror(12345), "unknown error");
}
END_TEST

/* Every prefix and every single-byte corruption of a valid frame decodes
 * to a code or a valid frame: never a crash (run under ASan in CI). */
START_TEST(fuzz_single_byte_corruption)
{
	ipc_health h;
	memset(&h, 0, sizeof h);
	h.nmetrics = 3;
	strcpy(h.metrics[0].name, "a");
	strcpy(h.metrics[1].name, "bb");
	strcpy(h.metrics[2].name, "ccc");
	nng_msg *m;
	ck_assert_int_eq(ipc_pack_health(&m, &h), 0);
	size_t n = nng_msg_len(m);
	uint8_t *b = malloc(n);
	for (size_t i = 0; i < n; i++) {
		for (int v = 0; v < 256; v += 7) {
			memcpy(b, nng_msg_body(m), n);
			b[i] = (uint8_t)v;
			ipc_frame f;
			if (ipc_decode(b, n, IPC_MAX_FRAME, &f) == 0) {
				ipc_health out;
				(void)ipc_unpack_health(&f, &out);
				ipc_frame_fini(&f);
			}
		}
	}
	free(b);
	nng_msg_free(m);
}
END_TEST

Suite *proto_suite(void)
{
	Suite *s = suite_create("proto");
	TCase *tc = tcase_create("roundtrip");
	tcase_add_test(tc, hello_roundtrip);
	tcase_add_test(tc, ready_and_status_req_roundtrip);
	tcase_add_test(tc, health_roundtrip);
	tcase_add_test(tc, stop_and_error_roundtrip);
	tcase_add_test(tc, command_roundtrip_with_and_without_id);
	tcase_add_test(tc, status_roundtrip);
	tcase_add_test(tc, every_table_field_roundtrips);
	tcase_add_test(tc, job_messages_roundtrip);
	tcase_add_test(tc, call_from_a_foreign_client_is_checked);
	tcase_add_test(tc, call_batches_roundtrip_and_are_checked);
	tcase_add_test(tc, events_roundtrip_with_and_without_decision);
	tcase_add_test(tc, logs_roundtrip_and_requests_are_checked);
	suite_add_tcase(s, tc);
	tc = tcase_create("malformed");
	tcase_add_test(tc, rejects_truncated);
	tcase_add_test(tc, rejects_length_bomb);
	tcase_add_test(tc, rejects_oversize_string);
	tcase_add_test(tc, rejects_too_deep);
	tcase_add_test(tc, rejects_unknown_version_and_type);
	tcase_add_test(tc, rejects_bad_envelope_and_bytes);
	tcase_add_test(tc, rejects_missing_key_and_wrong_type);
	tcase_add_test(tc, rejects_oversize_frame);
	tcase_add_test(tc, codes_are_distinct_and_named);
	tcase_add_test(tc, fuzz_single_byte_corruption);
	tcase_add_test(tc, events_and_logs_reject_damage);
	suite_add_tcase(s, tc);
	return s;
}
