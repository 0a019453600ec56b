/*
 * gen_seeds.c - writes the seed corpora of the fuzz targets: a valid
 * message of every type (made with the packers), raw msgpack, INI files,
 * key values and durations.  `make fuzz-seeds` runs it into tests/fuzz/;
 * the files are committed, so this runs only when the protocol changes.
 *
 * Usage: gen-seeds DIR   (writes DIR/TARGET/seed-*)
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "corral_base.h"
#include "ipc/proto.h"
#include "master/conf.h"

static const char *outdir;

static void put(const char *target, const char *name, const void *buf,
                size_t len)
{
	char path[4096];
	snprintf(path, sizeof path, "%s/%s", outdir, target);
	if (mkdir(path, 0755) != 0 && errno != EEXIST) {
		perror(path);
		exit(1);
	}
	snprintf(path, sizeof path, "%s/%s/seed-%s", outdir, target, name);
	FILE *f = fopen(path, "wb");
	if (!f || fwrite(buf, 1, len, f) != len || fclose(f) != 0) {
		perror(path);
		exit(1);
	}
}

/* A packed message to the targets named in the space-separated list. */
static void put_msg(const char *targets, const char *name, int rc,
                    nng_msg **mp)
{
	nng_msg *m = *mp;
	if (rc) {
		fprintf(stderr, "%s: cannot pack: %s\n", name,
		        corral_strerror(rc));
		exit(1);
	}
	char list[256];
	snprintf(list, sizeof list, "%s", targets);
	for (char *save, *t = strtok_r(list, " ", &save); t;
	     t = strtok_r(NULL, " ", &save))
		put(t, name, nng_msg_body(m), nng_msg_len(m));
	nng_msg_free(m);
}

static void messages(void)
{
	static const uint8_t pay[] = "\x00\x00\x00\x00\x00\x00\x00\x07hello";
	nng_msg *m;
	const char *all = "ipc mp_scan";

	ipc_hello h = {.slot = 3, .pid = 4242, .abi = 1, .plugin = "echo"};
	put_msg(all, "hello", ipc_pack_hello(&m, &h), &m);
	h.slot = -1;
	put_msg(all, "hello-standby", ipc_pack_hello(&m, &h), &m);
	put_msg(all, "ready", ipc_pack_ready(&m), &m);

	ipc_health he = {.pid = 4242, .uptime_ms = 1500, .rss_bytes = 1 << 20,
	                 .cpu_us = 99, .lag_p50_us = 10, .lag_p99_us = 900,
	                 .lag_max_us = 1200, .util = 0.25, .nmetrics = 2,
	                 .jobs = 5};
	snprintf(he.metrics[0].name, sizeof he.metrics[0].name, "beats");
	he.metrics[0].value = 7;
	snprintf(he.metrics[1].name, sizeof he.metrics[1].name, "ratio");
	he.metrics[1].value = -0.5;
	he.pool = (ipc_pool_stats){.submitted = 10, .completed = 9,
	                           .queued_critical = 1, .queued_high = 2,
	                           .queued_normal = 3, .queued_low = 4,
	                           .running = 1,
	                           .wait_p99_us = 50, .oldest_running_ms = 3};
	put_msg(all, "health", ipc_pack_health(&m, &he), &m);

	ipc_stop st = {.timeout_ms = 10000};
	put_msg(all, "stop", ipc_pack_stop(&m, &st), &m);
	ipc_assign as = {.slot = 1};
	put_msg(all, "assign", ipc_pack_assign(&m, &as), &m);

	ipc_job jobs[3] = {
		{.id = 1, .timeout_ms = 30000, .prio = 2, .payload = pay,
		 .len = sizeof pay - 1},
		{.id = 2, .timeout_ms = 5, .prio = 0, .payload = pay, .len = 0},
		{.id = UINT64_MAX, .timeout_ms = 0, .prio = 3, .payload = pay,
		 .len = 3},
	};
	put_msg(all, "jobs", ipc_pack_jobs(&m, jobs, 3), &m);
	put_msg(all, "jobs-empty", ipc_pack_jobs(&m, jobs, 0), &m);

	ipc_reply rep[2] = {
		{.id = 1, .code = 0, .data = pay, .len = sizeof pay - 1},
		{.id = 2, .code = CORRAL_EPLUGIN, .data = (const uint8_t *)"boom",
		 .len = 4},
	};
	put_msg(all, "replies", ipc_pack_replies(&m, rep, 2), &m);
	uint64_t ids[3] = {1, 2, 3};
	put_msg(all, "cancel", ipc_pack_cancel(&m, ids, 3), &m);

	ipc_call call = {.payload = pay, .len = sizeof pay - 1,
	                 .timeout_ms = 1000, .prio = 1};
	put_msg("ipc mp_scan control", "call", ipc_pack_call(&m, &call), &m);
	ipc_call calls[2] = {call, {.payload = pay, .len = 1, .prio = 3}};
	put_msg("ipc mp_scan control", "calls", ipc_pack_calls(&m, calls, 2),
	        &m);

	ipc_result ok = {.ok = 1, .data = pay, .len = sizeof pay - 1};
	ipc_result bad = {.ok = 0, .err = "timeout", .msg = "job took 30 s"};
	ipc_result odd = {.ok = 0, .err = "weird", .msg = ""};
	put_msg("ipc mp_scan client", "result-ok", ipc_pack_result(&m, &ok),
	        &m);
	put_msg("ipc mp_scan client", "result-err",
	        ipc_pack_result(&m, &bad), &m);
	ipc_result res[3] = {ok, bad, odd};
	put_msg("ipc mp_scan client", "results", ipc_pack_results(&m, res, 3),
	        &m);

	put_msg("ipc mp_scan control", "status-req", ipc_pack_status_req(&m),
	        &m);
	ipc_error e = {.code = CORRAL_ETYPE, .msg = "bad request"};
	put_msg("ipc mp_scan control client", "error", ipc_pack_error(&m, &e),
	        &m);

	static ipc_worker_status ws[2];
	memset(ws, 0, sizeof ws);
	ws[0].slot = 0;
	ws[0].pid = 100;
	snprintf(ws[0].state, sizeof ws[0].state, "running");
	ws[0].gen = 1;
	ws[0].restarts = 2;
	ws[0].uptime_ms = 5000;
	ws[0].cpu_pct = 1.5;
	ws[0].jobs = 3;
	ws[0].exit_code = -1;
	ws[0].health.nmetrics = 1;
	snprintf(ws[0].health.metrics[0].name,
	         sizeof ws[0].health.metrics[0].name, "q");
	ws[0].health.metrics[0].value = 1;
	ws[1].slot = 1;
	snprintf(ws[1].state, sizeof ws[1].state, "backoff");
	ws[1].exit_code = -1;
	snprintf(ws[1].exit_signal, sizeof ws[1].exit_signal, "SIGKILL");
	ws[1].degraded = 1;
	static ipc_status s;
	snprintf(s.name, sizeof s.name, "corral");
	snprintf(s.state, sizeof s.state, "running");
	s.pid = 99;
	s.gen = 1;
	s.bad_frames = 1;
	s.jobs.accepted = 5;
	s.jobs.ok = 4;
	s.nworkers = 2;
	s.workers = ws;
	put_msg("ipc mp_scan control", "status", ipc_pack_status(&m, &s), &m);

	/* The control socket's other requests and answers. */
	ipc_events_req eq = {.since = 3, .wait_ms = 1000, .max = 64};
	put_msg("ipc mp_scan control", "events-req",
	        ipc_pack_events_req(&m, &eq), &m);
	static ipc_event ev[2];
	ev[0] = (ipc_event){.seq = 4, .t_ms = 1, .slot = 0, .pid = 100,
	                    .gen = 1};
	snprintf(ev[0].kind, sizeof ev[0].kind, "slot");
	snprintf(ev[0].from, sizeof ev[0].from, "starting");
	snprintf(ev[0].to, sizeof ev[0].to, "running");
	snprintf(ev[0].why, sizeof ev[0].why, "ready in 3 ms");
	ev[1] = ev[0];
	ev[1].seq = 5;
	ev[1].has_decision = 1;
	snprintf(ev[1].kind, sizeof ev[1].kind, "decision");
	ipc_events es = {.first = 1, .last = 5, .n = 2, .ev = ev};
	put_msg("ipc mp_scan control", "events", ipc_pack_events(&m, &es), &m);
	static ipc_cmd cmd = {.cmd = "reload", .nargs = 1,
	                      .args = {"config=/etc/corral.ini"}, .id = 9};
	put_msg("ipc mp_scan control", "cmd", ipc_pack_cmd(&m, &cmd), &m);
	ipc_cmd_result cr = {.ok = 0, .code = CORRAL_EPLUGIN,
	                     .msg = "reload failed, rolled back"};
	put_msg("ipc mp_scan control", "cmd-result",
	        ipc_pack_cmd_result(&m, &cr), &m);
	ipc_logs_req lq = {.since = 0, .wait_ms = 0, .max = 100, .slot = -1,
	                   .tail = 10};
	put_msg("ipc mp_scan control", "logs-req", ipc_pack_logs_req(&m, &lq),
	        &m);
	ipc_logline ll[1] = {{.seq = 1, .t_ms = 2, .level = 2, .slot = 0,
	                      .pid = 100, .msg = "hello", .len = 5}};
	ipc_logs lg = {.next = 2, .n = 1, .lines = ll};
	put_msg("ipc mp_scan control", "logs", ipc_pack_logs(&m, &lg), &m);
}

static void raw_msgpack(void)
{
	/* Containers, every number width, ext and fixext, str8/16, bin. */
	static const uint8_t nested[] = {0x93, 0x01, 0x92, 0x80, 0x90, 0x81,
	                                 0xa1, 'k', 0xc0};
	static const uint8_t numbers[] = {0x9a, 0xcc, 0xff, 0xcd, 0x01, 0x00,
	                                  0xce, 0, 0, 1, 0, 0xcf, 0, 0, 0, 0,
	                                  0, 0, 1, 0, 0xd0, 0x80, 0xd1, 0x80,
	                                  0, 0xd2, 0x80, 0, 0, 0, 0xd3, 0x80,
	                                  0, 0, 0, 0, 0, 0, 0, 0xca, 0x3f,
	                                  0x80, 0, 0, 0xcb, 0x3f, 0xf0, 0, 0,
	                                  0, 0, 0, 0, 0xe0};
	static const uint8_t ext[] = {0x95, 0xd4, 1, 2, 0xd8, 1, 0, 0, 0, 0,
	                              0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	                              0xc7, 2, 5, 'a', 'b', 0xd9, 2, 'h', 'i',
	                              0xc4, 1, 0};
	static const uint8_t big[] = {0xdd, 0xff, 0xff, 0xff, 0xff, 0xc0};
	put("mp_scan", "nested", nested, sizeof nested);
	put("mp_scan", "numbers", numbers, sizeof numbers);
	put("mp_scan", "ext", ext, sizeof ext);
	put("mp_scan", "array32-huge", big, sizeof big);
}

static void config_texts(void)
{
	static const char readme[] =
	    "[corral]\nworkers = 4\nrestart_delay_max = 30s\n"
	    "shutdown_timeout = 5s\n\n[plugin]\ngreeting = bonjour\n";
	static const char odd[] =
	    "\xEF\xBB\xBF; comment\r\n# other\r\nname: web-1 ; inline\r\n"
	    "[plugin]\r\nlist = a\r\n  b\r\n\tc\r\nempty =\r\n[corral]\r\n"
	    "log_level = debug\r\nset = k=v\r\n";
	static const char bad[] = "workers = 1\nno equals here\n[x\n[nope]\n"
	                          "a = 1\n";
	put("config", "readme", readme, sizeof readme - 1);
	put("config", "odd", odd, sizeof odd - 1);
	put("config", "bad", bad, sizeof bad - 1);

	/* Every key with its default, as one file. */
	char all[8192];
	size_t o = 0;
	for (size_t i = 0; i < config_nkeys; i++)
		if (config_keys[i].def)
			o += (size_t)snprintf(all + o, sizeof all - o,
			                      "%s = %s\n", config_keys[i].key,
			                      config_keys[i].def);
	put("config", "defaults", all, o);

	/* Long lines: a value, a continuation, a comment, a key. */
	char lng[3 * 4096];
	o = (size_t)snprintf(lng, sizeof lng, "plugin = /");
	memset(lng + o, 'p', 300);
	o += 300;
	o += (size_t)snprintf(lng + o, sizeof lng - o, " ; c\n[plugin]\nk = 1\n  ");
	memset(lng + o, 'v', 250);
	o += 250;
	o += (size_t)snprintf(lng + o, sizeof lng - o, "\n; ");
	memset(lng + o, 'c', 250);
	o += 250;
	lng[o++] = '\n';
	memset(lng + o, 'k', 250);
	o += 250;
	o += (size_t)snprintf(lng + o, sizeof lng - o, " = 1\n");
	put("config", "long-lines", lng, o);

	/* One value per key: the first byte picks the key. */
	for (size_t i = 0; i < config_nkeys; i++) {
		char v[128], name[64];
		int n = snprintf(v, sizeof v, "%c%s", (char)i,
		                 config_keys[i].def ? config_keys[i].def
		                                    : "k=v");
		snprintf(name, sizeof name, "key-%s", config_keys[i].key);
		put("config", name, v, (size_t)n);
	}
	static const char *durs[] = {"1.5s", "250ms", "2m", "1h", "3", "0",
	                             "1e3ms", "0x10s"};
	int dur_key = (int)(config_key_find("shutdown_timeout") - config_keys);
	for (size_t i = 0; i < sizeof durs / sizeof durs[0]; i++) {
		char v[32], name[32];
		int n = snprintf(v, sizeof v, "%c%s", dur_key, durs[i]);
		snprintf(name, sizeof name, "duration-%zu", i);
		put("config", name, v, (size_t)n);
	}
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: gen-seeds DIR\n");
		return 2;
	}
	outdir = argv[1];
	messages();
	raw_msgpack();
	config_texts();
	return 0;
}
