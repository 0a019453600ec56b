/*
 * proto.c - see proto.h.  Packing writes straight into the nng message;
 * unpacking reads from a frame that ipc_decode() has already bounds-checked,
 * so field helpers only need to check presence, type and range.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "corral_base.h"
#include "ipc/mpscan.h"
#include "ipc/proto.h"

const char *ipc_type_name(int type)
{
	switch (type) {
#define X(name, num, what)                                                    \
	case num:                                                             \
		return #name;
		IPC_TYPES(X)
#undef X
	}
	return "UNKNOWN";
}

static int ipc_type_known(int type)
{
	switch (type) {
#define X(name, num, what) case num:
		IPC_TYPES(X)
#undef X
		return 1;
	}
	return 0;
}

const char *ipc_joberr_name(ipc_joberr e)
{
	static const char *names[] = {
#define X(name, str, code) str,
		IPC_JOB_ERRORS(X)
#undef X
	};
	return (unsigned)e < IPC_JOBERR_COUNT ? names[e] : "";
}

ipc_joberr ipc_joberr_parse(const char *err)
{
	for (int e = 0; e < IPC_JOBERR_COUNT; e++)
		if (strcmp(err, ipc_joberr_name((ipc_joberr)e)) == 0)
			return (ipc_joberr)e;
	return IPC_JOBERR_COUNT;
}

int ipc_joberr_code(const char *err)
{
	static const int codes[] = {
#define X(name, str, code) code,
		IPC_JOB_ERRORS(X)
#undef X
	};
	ipc_joberr e = ipc_joberr_parse(err);
	return e < IPC_JOBERR_COUNT ? codes[e] : CORRAL_ENNG;
}

/* ---- packing ---- */

/* msgpack writes a message in many small pieces; nng grows a message to
 * the exact size asked (and zeroes it), so grow it by doubling here or a
 * batch of jobs costs quadratic copying. */
static int pk_write(void *data, const char *buf, size_t len)
{
	nng_msg *m = data;
	size_t need = nng_msg_len(m) + len, cap = nng_msg_capacity(m);
	if (need > cap && nng_msg_reserve(m, need > 2 * cap ? need : 2 * cap))
		return -1;
	return nng_msg_append(m, buf, len) == 0 ? 0 : -1;
}

static int pk_begin(nng_msg **out, msgpack_packer *pk, int type,
                    size_t nkeys)
{
	if (nng_msg_alloc(out, 0) != 0) {
		*out = NULL;
		return CORRAL_ENOMEM;
	}
	if (nng_msg_reserve(*out, 256) != 0) {
		nng_msg_free(*out);
		*out = NULL;
		return CORRAL_ENOMEM;
	}
	msgpack_packer_init(pk, *out, pk_write);
	int rc = msgpack_pack_array(pk, 3);
	rc |= msgpack_pack_int(pk, IPC_VERSION);
	rc |= msgpack_pack_int(pk, type);
	rc |= msgpack_pack_map(pk, nkeys);
	return rc ? CORRAL_ENOMEM : 0;
}

static int pk_end(nng_msg **out, int rc)
{
	if (rc) {
		nng_msg_free(*out);
		*out = NULL;
		return CORRAL_ENOMEM;
	}
	return 0;
}

static int pk_str(msgpack_packer *pk, const char *s)
{
	size_t n = strlen(s);
	return msgpack_pack_str(pk, n) | msgpack_pack_str_body(pk, s, n);
}

static int pk_u64(msgpack_packer *pk, const char *k, uint64_t v)
{
	return pk_str(pk, k) | msgpack_pack_uint64(pk, v);
}

static int pk_i64(msgpack_packer *pk, const char *k, int64_t v)
{
	return pk_str(pk, k) | msgpack_pack_int64(pk, v);
}

static int pk_f64(msgpack_packer *pk, const char *k, double v)
{
	return pk_str(pk, k) | msgpack_pack_double(pk, v);
}

static int pk_kstr(msgpack_packer *pk, const char *k, const char *v)
{
	return pk_str(pk, k) | pk_str(pk, v);
}

static int pk_metrics(msgpack_packer *pk, const ipc_metric *m, uint32_t n)
{
	int rc = pk_str(pk, "metrics") | msgpack_pack_map(pk, n);
	for (uint32_t i = 0; i < n; i++)
		rc |= pk_str(pk, m[i].name) | msgpack_pack_double(pk, m[i].value);
	return rc;
}

/* The pool map: one key per ipc_pool_stats field, in this order. */
#define POOL_KEYS(X)                                                          \
	X(submitted, "sub") X(completed, "done") X(rejected, "rej")           \
	X(expired, "exp") X(cancelled, "can") X(queued[0], "q0")              \
	X(queued[1], "q1") X(queued[2], "q2") X(queued[3], "q3")              \
	X(running, "run") X(wait_p50_us, "w50") X(wait_p99_us, "w99")         \
	X(run_p50_us, "r50") X(run_p99_us, "r99")                             \
	X(oldest_running_ms, "old")

static int pk_pool(msgpack_packer *pk, const ipc_pool_stats *s)
{
	int rc = pk_str(pk, "pool") | msgpack_pack_map(pk, 15);
#define X(field, key) rc |= pk_u64(pk, key, s->field);
	POOL_KEYS(X)
#undef X
	return rc;
}

#define JOB_KEYS(X)                                                           \
	X(queued, "q") X(inflight, "in") X(accepted, "acc") X(ok, "ok")       \
	X(failed, "fail") X(timeouts, "tmo") X(busy, "busy")                  \
	X(poison, "poison") X(redispatched, "redo") X(late, "late")

static int pk_jobstats(msgpack_packer *pk, const ipc_job_stats *s)
{
	int rc = pk_str(pk, "jobs") | msgpack_pack_map(pk, 10);
#define X(field, key) rc |= pk_u64(pk, key, s->field);
	JOB_KEYS(X)
#undef X
	return rc;
}

/* ---- decoding ---- */

int ipc_decode(const void *buf, size_t len, size_t max_frame, ipc_frame *f)
{
	static const mp_limits lim = {
		.max_depth = IPC_MAX_DEPTH,
		.max_str = IPC_MAX_STR,
		.max_items = IPC_MAX_ITEMS,
	};
	if (len > max_frame)
		return CORRAL_ETOOBIG;
	int rc = mp_scan(buf, len, &lim);
	if (rc)
		return rc;
	msgpack_unpacked_init(&f->up);
	size_t off = 0;
	if (msgpack_unpack_next(&f->up, buf, len, &off) !=
	    MSGPACK_UNPACK_SUCCESS) {
		rc = CORRAL_EMALFORMED; /* mp_scan said it was fine: defensive */
		goto fail;
	}
	const msgpack_object *o = &f->up.data;
	if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size != 3) {
		rc = CORRAL_EENVELOPE;
		goto fail;
	}
	const msgpack_object *v = &o->via.array.ptr[0];
	const msgpack_object *t = &o->via.array.ptr[1];
	const msgpack_object *b = &o->via.array.ptr[2];
	if (v->type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
	    t->type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
	    b->type != MSGPACK_OBJECT_MAP) {
		rc = CORRAL_EENVELOPE;
		goto fail;
	}
	if (v->via.u64 != IPC_VERSION) {
		rc = CORRAL_EVERSION;
		goto fail;
	}
	if (t->via.u64 > 0xffff || !ipc_type_known((int)t->via.u64)) {
		rc = CORRAL_ETYPE;
		goto fail;
	}
	f->type = (int)t->via.u64;
	f->body = *b;
	f->msg = NULL;
	return 0;
fail:
	msgpack_unpacked_destroy(&f->up);
	return rc;
}

int ipc_decode_msg(nng_msg *msg, size_t max_frame, ipc_frame *f)
{
	int rc = ipc_decode(nng_msg_body(msg), nng_msg_len(msg), max_frame, f);
	if (rc) {
		nng_msg_free(msg);
		return rc;
	}
	f->msg = msg;
	return 0;
}

void ipc_frame_fini(ipc_frame *f)
{
	msgpack_unpacked_destroy(&f->up);
	if (f->msg)
		nng_msg_free(f->msg);
	f->msg = NULL;
}

static const msgpack_object *mp_get(const msgpack_object *map,
                                    const char *key)
{
	size_t kl = strlen(key);
	for (uint32_t i = 0; i < map->via.map.size; i++) {
		const msgpack_object *k = &map->via.map.ptr[i].key;
		if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == kl &&
		    memcmp(k->via.str.ptr, key, kl) == 0)
			return &map->via.map.ptr[i].val;
	}
	return NULL;
}

static int get_u64(const msgpack_object *map, const char *key, uint64_t *v)
{
	const msgpack_object *o = mp_get(map, key);
	if (!o)
		return CORRAL_EMISSING;
	if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
		return CORRAL_EFIELD;
	*v = o->via.u64;
	return 0;
}

static int get_i64(const msgpack_object *map, const char *key, int64_t *v)
{
	const msgpack_object *o = mp_get(map, key);
	if (!o)
		return CORRAL_EMISSING;
	if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
		*v = o->via.i64;
	else if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER &&
	         o->via.u64 <= INT64_MAX)
		*v = (int64_t)o->via.u64;
	else
		return CORRAL_EFIELD;
	return 0;
}

static int get_i32(const msgpack_object *map, const char *key, int32_t lo,
                   int32_t *v)
{
	int64_t x;
	int rc = get_i64(map, key, &x);
	if (rc)
		return rc;
	if (x < lo || x > INT32_MAX)
		return CORRAL_EFIELD;
	*v = (int32_t)x;
	return 0;
}

static int obj_f64(const msgpack_object *o, double *v)
{
	switch (o->type) {
	case MSGPACK_OBJECT_FLOAT32:
	case MSGPACK_OBJECT_FLOAT64:
		*v = o->via.f64;
		return 0;
	case MSGPACK_OBJECT_POSITIVE_INTEGER:
		*v = (double)o->via.u64;
		return 0;
	case MSGPACK_OBJECT_NEGATIVE_INTEGER:
		*v = (double)o->via.i64;
		return 0;
	default:
		return CORRAL_EFIELD;
	}
}

static int get_f64(const msgpack_object *map, const char *key, double *v)
{
	const msgpack_object *o = mp_get(map, key);
	if (!o)
		return CORRAL_EMISSING;
	return obj_f64(o, v);
}

static int obj_str(const msgpack_object *o, char *dst, size_t cap)
{
	if (o->type != MSGPACK_OBJECT_STR)
		return CORRAL_EFIELD;
	if (o->via.str.size >= cap)
		return CORRAL_ETOOLONG;
	if (memchr(o->via.str.ptr, '\0', o->via.str.size))
		return CORRAL_EFIELD;
	memcpy(dst, o->via.str.ptr, o->via.str.size);
	dst[o->via.str.size] = '\0';
	return 0;
}

static int get_str(const msgpack_object *map, const char *key, char *dst,
                   size_t cap)
{
	const msgpack_object *o = mp_get(map, key);
	if (!o)
		return CORRAL_EMISSING;
	return obj_str(o, dst, cap);
}

static int get_metrics(const msgpack_object *map, ipc_metric *m,
                       uint32_t *n)
{
	const msgpack_object *o = mp_get(map, "metrics");
	*n = 0;
	if (!o)
		return CORRAL_EMISSING;
	if (o->type != MSGPACK_OBJECT_MAP)
		return CORRAL_EFIELD;
	if (o->via.map.size > IPC_MAX_METRICS)
		return CORRAL_ETOOMANY;
	for (uint32_t i = 0; i < o->via.map.size; i++) {
		int rc = obj_str(&o->via.map.ptr[i].key, m[i].name,
		                 sizeof m[i].name);
		if (!rc && m[i].name[0] == '\0')
			rc = CORRAL_EFIELD;
		if (!rc)
			rc = obj_f64(&o->via.map.ptr[i].val, &m[i].value);
		if (rc)
			return rc;
	}
	*n = o->via.map.size;
	return 0;
}

/* "pool" is optional: a worker without a pool leaves it zero. */
static int get_pool(const msgpack_object *map, ipc_pool_stats *s)
{
	memset(s, 0, sizeof *s);
	const msgpack_object *o = mp_get(map, "pool");
	if (!o)
		return 0;
	if (o->type != MSGPACK_OBJECT_MAP)
		return CORRAL_EFIELD;
	int rc = 0;
#define X(field, key)                                                         \
	if (!rc)                                                              \
		rc = get_u64(o, key, &s->field);
	POOL_KEYS(X)
#undef X
	return rc;
}

static int get_jobstats(const msgpack_object *map, ipc_job_stats *s)
{
	memset(s, 0, sizeof *s);
	const msgpack_object *o = mp_get(map, "jobs");
	if (!o)
		return CORRAL_EMISSING;
	if (o->type != MSGPACK_OBJECT_MAP)
		return CORRAL_EFIELD;
	int rc = 0;
#define X(field, key)                                                         \
	if (!rc)                                                              \
		rc = get_u64(o, key, &s->field);
	JOB_KEYS(X)
#undef X
	return rc;
}

static int want_type(const ipc_frame *f, int type)
{
	return f->type == type ? 0 : CORRAL_ETYPE;
}

/* ---- HELLO ---- */

int ipc_pack_hello(nng_msg **out, const ipc_hello *m)
{
	msgpack_packer pk;
	int rc = pk_begin(out, &pk, IPC_HELLO, 4);
	if (rc)
		return pk_end(out, rc);
	rc |= pk_i64(&pk, "slot", m->slot);
	rc |= pk_i64(&pk, "pid", m->pid);
	rc |= pk_u64(&pk, "abi", m->abi);
	rc |= pk_kstr(&pk, "plugin", m->plugin);
	return pk_end(out, rc);
}

int ipc_unpack_hello(const ipc_frame *f, ipc_hello *m)
{
	uint64_t abi;
	int rc = want_type(f, IPC_HELLO);
	if (!rc)
		rc = get_i32(&f->body, "slot", -1, &m->slot);
	if (!rc)
		rc = get_i64(&f->body, "pid", &m->pid);
	if (!rc)
		rc = get_u64(&f->body, "abi", &abi);
	if (!rc && abi > UINT32_MAX)
		rc = CORRAL_EFIELD;
	if (!rc)
		m->abi = (uint32_t)abi;
	if (!rc)
		rc = get_str(&f->body, "plugin", m->plugin, sizeof m->plugin);
	return rc;
}

/* ---- READY, STATUS_REQ: empty bodies ---- */

static int pack_empty(nng_msg **out, int type)
{
	msgpack_packer pk;
	return pk_end(out, pk_begin(out, &pk, type, 0));
}

int ipc_pack_ready(nng_msg **out)
{
	return pack_empty(out, IPC_READY);
}

int ipc_pack_status_req(nng_msg **out)
{
	return pack_empty(out, IPC_STATUS_REQ);
}

/* ---- HEALTH ---- */

int ipc_pack_health(nng_msg **out, const ipc_health *m)
{
	msgpack_packer pk;
	int rc = pk_begin(out, &pk, IPC_HEALTH, 11);
	if (rc)
		return pk_end(out, rc);
	rc |= pk_i64(&pk, "pid", m->pid);
	rc |= pk_u64(&pk, "up", m->uptime_ms);
	rc |= pk_u64(&pk, "rss", m->rss_bytes);
	rc |= pk_u64(&pk, "cpu", m->cpu_us);
	rc |= pk_u64(&pk, "lag50", m->lag_p50_us);
	rc |= pk_u64(&pk, "lag99", m->lag_p99_us);
	rc |= pk_u64(&pk, "lagmax", m->lag_max_us);
	rc |= pk_f64(&pk, "util", m->util);
	rc |= pk_metrics(&pk, m->metrics, m->nmetrics);
	rc |= pk_pool(&pk, &m->pool);
	rc |= pk_u64(&pk, "jobs", m->jobs);
	return pk_end(out, rc);
}

int ipc_unpack_health(const ipc_frame *f, ipc_health *m)
{
	const msgpack_object *b = &f->body;
	int rc = want_type(f, IPC_HEALTH);
	if (!rc)
		rc = get_i64(b, "pid", &m->pid);
	if (!rc)
		rc = get_u64(b, "up", &m->uptime_ms);
	if (!rc)
		rc = get_u64(b, "rss", &m->rss_bytes);
	if (!rc)
		rc = get_u64(b, "cpu", &m->cpu_us);
	if (!rc)
		rc = get_u64(b, "lag50", &m->lag_p50_us);
	if (!rc)
		rc = get_u64(b, "lag99", &m->lag_p99_us);
	if (!rc)
		rc = get_u64(b, "lagmax", &m->lag_max_us);
	if (!rc)
		rc = get_f64(b, "util", &m->util);
	if (!rc)
		rc = get_metrics(b, m->metrics, &m->nmetrics);
	if (!rc)
		rc = get_pool(b, &m->pool);
	m->jobs = 0;
	if (!rc && mp_get(b, "jobs"))
		rc = get_u64(b, "jobs", &m->jobs);
	return rc;
}

/* ---- STOP ---- */

int ipc_pack_stop(nng_msg **out, const ipc_stop *m)
{
	msgpack_packer pk;
	int rc = pk_begin(out, &pk, IPC_STOP, 1);
	if (rc)
		return pk_end(out, rc);
	rc |= pk_u64(&pk, "timeout", m->timeout_ms);
	return pk_end(out, rc);
}

int ipc_unpack_stop(const ipc_frame *f, ipc_stop *m)
{
	int rc = want_type(f, IPC_STOP);
	if (!rc)
		rc = get_u64(&f->body, "timeout", &m->timeout_ms);
	return rc;
}

/* ---- ASSIGN ---- */

int ipc_pack_assign(nng_msg **out, const ipc_assign *m)
{
	msgpack_packer pk;
	int rc = pk_begin(out, &pk, IPC_ASSIGN, 1);
	if (rc)
		return pk_end(out, rc);
	rc |= pk_i64(&pk, "slot", m->slot);
	return pk_end(out, rc);
}

int ipc_unpack_assign(const ipc_frame *f, ipc_assign *m)
{
	int rc = want_type(f, IPC_ASSIGN);
	if (!rc)
		rc = get_i32(&f->body, "slot", 0, &m->slot);
	return rc;
}

/* ---- jobs ---- */

static int pk_bin(msgpack_packer *pk, const uint8_t *b, uint32_t n)
{
	return msgpack_pack_bin(pk, n) | msgpack_pack_bin_body(pk, b, n);
}

static int obj_u64(const msgpack_object *o, uint64_t *v)
{
	if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
		return CORRAL_EFIELD;
	*v = o->via.u64;
	return 0;
}

static int obj_i32(const msgpack_object *o, int32_t *v)
{
	if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER && o->via.u64 <= INT32_MAX)
		*v = (int32_t)o->via.u64;
	else if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER &&
	         o->via.i64 >= INT32_MIN)
		*v = (int32_t)o->via.i64;
	else
		return CORRAL_EFIELD;
	return 0;
}

/* A bin (or, for messages, a str) of at most IPC_MAX_PAYLOAD bytes. */
static int obj_bytes(const msgpack_object *o, const uint8_t **p, uint32_t *n)
{
	if (o->type == MSGPACK_OBJECT_BIN) {
		*p = (const uint8_t *)o->via.bin.ptr;
		*n = o->via.bin.size;
	} else if (o->type == MSGPACK_OBJECT_STR) {
		*p = (const uint8_t *)o->via.str.ptr;
		*n = o->via.str.size;
	} else {
		return CORRAL_EFIELD;
	}
	return *n > IPC_MAX_PAYLOAD ? CORRAL_ETOOLONG : 0;
}

/* The array under key, as tuples of `width` items; at most IPC_MAX_BATCH. */
static int get_tuples(const msgpack_object *map, const char *key,
                      uint32_t width, const msgpack_object **items,
                      uint32_t *n)
{
	const msgpack_object *o = mp_get(map, key);
	if (!o)
		return CORRAL_EMISSING;
	if (o->type != MSGPACK_OBJECT_ARRAY)
		return CORRAL_EFIELD;
	if (o->via.array.size > IPC_MAX_BATCH)
		return CORRAL_ETOOMANY;
	for (uint32_t i = 0; i < o->via.array.size; i++) {
		const msgpack_object *t = &o->via.array.ptr[i];
		if (width && (t->type != MSGPACK_OBJECT_ARRAY ||
		              t->via.array.size != width))
			return CORRAL_EFIELD;
	}
	*items = o->via.array.ptr;
	*n = o->via.array.size;
	return 0;
}

int ipc_pack_jobs(nng_msg **out, const ipc_job *jobs, uint32_t n)
{
	msgpack_packer pk;
	int rc = pk_begin(out, &pk, IPC_JOB, 1);
	if (rc)
		return pk_end(out, rc);
	rc |= pk_str(&pk, "j") | msgpack_pack_array(&pk, n);
	for (uint32_t i = 0; i < n; i++) {
		rc |= msgpack_pack_array(&pk, 4);
		rc |= msgpack_pack_uint64(&pk, jobs[i].id);
		rc |= msgpack_pack_uint64(&pk, jobs[i].timeout_ms);
		rc |= msgpack_pack_int32(&pk, jobs[i].prio);
		rc |= pk_bin(&pk, jobs[i].payload, jobs[i].len);
	}
	return pk_end(out, rc);
}

int ipc_unpack_jobs(const ipc_frame *f, ipc_job *out, uint32_t *n)
{
	const msgpack_object *items;
	int rc = want_type(f, IPC_JOB);
	if (!rc)
		rc = get_tuples(&f->body, "j", 4, &items, n);
	for (uint32_t i = 0; !rc && i < *n; i++) {
		const msgpack_object *t = items[i].via.array.ptr;
		rc = obj_u64(&t[0], &out[i].id);
		if (!rc)
			rc = obj_u64(&t[1], &out[i].timeout_ms);
		if (!rc)
			rc = obj_i32(&t[2], &out[i].prio);
		if (!rc && t[3].type != MSGPACK_OBJECT_BIN)
			rc = CORRAL_EFIELD;
		if (!rc)
			rc = obj_bytes(&t[3], &out[i].payload, &out[i].len);
	}
	return rc;
}

int ipc_pack_replies(nng_msg **out, const ipc_reply *r, uint32_t n)
{
	msgpack_packer pk;
	int rc = pk_begin(out, &pk, IPC_REPLY, 1);
	if (rc)
		return pk_end(out, rc);
	rc |= pk_str(&pk, "r") | msgpack_pack_array(&pk, n);
	for (uint32_t i = 0; i < n; i++) {
		rc |= msgpack_pack_array(&pk, 3);
		rc |= msgpack_pack_uint64(&pk, r[i].id);
		rc |= msgpack_pack_int32(&pk, r[i].code);
		rc |= pk_bin(&pk, r[i].data, r[i].len);
	}
	return pk_end(out, rc);
}

int ipc_unpack_replies(const ipc_frame *f, ipc_reply *out, uint32_t *n)
{
	const msgpack_object *items;
	int rc = want_type(f, IPC_REPLY);
	if (!rc)
		rc = get_tuples(&f->body, "r", 3, &items, n);
	for (uint32_t i = 0; !rc && i < *n; i++) {
		const msgpack_object *t = items[i].via.array.ptr;
		rc = obj_u64(&t[0], &out[i].id);
		if (!rc)
			rc = obj_i32(&t[1], &out[i].code);
		if (!rc)
			rc = obj_bytes(&t[2], &out[i].data, &out[i].len);
	}
	return rc;
}

int ipc_pack_cancel(nng_msg **out, const uint64_t *ids, uint32_t n)
{
	msgpack_packer pk;
	int rc = pk_begin(out, &pk, IPC_CANCEL, 1);
	if (rc)
		return pk_end(out, rc);
	rc |= pk_str(&pk, "ids") | msgpack_pack_array(&pk, n);
	for (uint32_t i = 0; i < n; i++)
		rc |= msgpack_pack_uint64(&pk, ids[i]);
	return pk_end(out, rc);
}

int ipc_unpack_cancel(const ipc_frame *f, uint64_t *ids, uint32_t *n)
{
	const msgpack_object *items;
	int rc = want_type(f, IPC_CANCEL);
	if (!rc)
		rc = get_tuples(&f->body, "ids", 0, &items, n);
	for (uint32_t i = 0; !rc && i < *n; i++)
		rc = obj_u64(&items[i], &ids[i]);
	return rc;
}

int ipc_pack_call(nng_msg **out, const ipc_call *m)
{
	msgpack_packer pk;
	int rc = pk_begin(out, &pk, IPC_CALL, 3);
	if (rc)
		return pk_end(out, rc);
	rc |= pk_str(&pk, "p") | pk_bin(&pk, m->payload, m->len);
	rc |= pk_u64(&pk, "t", m->timeout_ms);
	rc |= pk_i64(&pk, "pr", m->prio);
	return pk_end(out, rc);
}

int ipc_unpack_call(const ipc_frame *f, ipc_call *m)
{
	int rc = want_type(f, IPC_CALL);
	m->timeout_ms = 0;
	m->prio = 2; /* CORRAL_PRIO_NORMAL */
	const msgpack_object *p = rc ? NULL : mp_get(&f->body, "p");
	if (!rc && !p)
		rc = CORRAL_EMISSING;
	if (!rc)
		rc = obj_bytes(p, &m->payload, &m->len);
	if (!rc && mp_get(&f->body, "t"))
		rc = get_u64(&f->body, "t", &m->timeout_ms);
	if (!rc && mp_get(&f->body, "pr"))
		rc = get_i32(&f->body, "pr", 0, &m->prio);
	if (!rc && m->prio > 3)
		rc = CORRAL_EFIELD;
	return rc;
}

int ipc_pack_result(nng_msg **out, const ipc_result *m)
{
	msgpack_packer pk;
	int rc = pk_begin(out, &pk, IPC_RESULT, m->ok ? 2 : 3);
	if (rc)
		return pk_end(out, rc);
	rc |= pk_str(&pk, "ok") |
	      (m->ok ? msgpack_pack_true(&pk) : msgpack_pack_false(&pk));
	if (m->ok) {
		rc |= pk_str(&pk, "p") | pk_bin(&pk, m->data, m->len);
	} else {
		rc |= pk_kstr(&pk, "err", m->err);
		rc |= pk_kstr(&pk, "msg", m->msg);
	}
	return pk_end(out, rc);
}

int ipc_unpack_result(const ipc_frame *f, ipc_result *m)
{
	int rc = want_type(f, IPC_RESULT);
	memset(m, 0, sizeof *m);
	const msgpack_object *ok = rc ? NULL : mp_get(&f->body, "ok");
	if (!rc && !ok)
		rc = CORRAL_EMISSING;
	if (!rc && ok->type != MSGPACK_OBJECT_BOOLEAN)
		rc = CORRAL_EFIELD;
	if (rc)
		return rc;
	m->ok = ok->via.boolean;
	if (m->ok) {
		const msgpack_object *p = mp_get(&f->body, "p");
		if (!p)
			return CORRAL_EMISSING;
		return obj_bytes(p, &m->data, &m->len);
	}
	rc = get_str(&f->body, "err", m->err, sizeof m->err);
	if (!rc)
		rc = get_str(&f->body, "msg", m->msg, sizeof m->msg);
	return rc;
}

/* ---- CALLS, RESULTS: a client's batch ---- */

int ipc_pack_calls(nng_msg **out, const ipc_call *m, uint32_t n)
{
	msgpack_packer pk;
	int rc = pk_begin(out, &pk, IPC_CALLS, 1);
	if (rc)
		return pk_end(out, rc);
	rc |= pk_str(&pk, "c") | msgpack_pack_array(&pk, n);
	for (uint32_t i = 0; i < n; i++) {
		rc |= msgpack_pack_array(&pk, 3);
		rc |= pk_bin(&pk, m[i].payload, m[i].len);
		rc |= msgpack_pack_uint64(&pk, m[i].timeout_ms);
		rc |= msgpack_pack_int32(&pk, m[i].prio);
	}
	return pk_end(out, rc);
}

int ipc_unpack_calls(const ipc_frame *f, ipc_call *out, uint32_t *n)
{
	const msgpack_object *items;
	int rc = want_type(f, IPC_CALLS);
	if (!rc)
		rc = get_tuples(&f->body, "c", 3, &items, n);
	if (!rc && *n == 0)
		rc = CORRAL_EFIELD;
	for (uint32_t i = 0; !rc && i < *n; i++) {
		const msgpack_object *t = items[i].via.array.ptr;
		rc = obj_bytes(&t[0], &out[i].payload, &out[i].len);
		if (!rc)
			rc = obj_u64(&t[1], &out[i].timeout_ms);
		if (!rc)
			rc = obj_i32(&t[2], &out[i].prio);
		if (!rc && (out[i].prio < 0 || out[i].prio > 3))
			rc = CORRAL_EFIELD;
	}
	return rc;
}

int ipc_pack_results(nng_msg **out, const ipc_result *m, uint32_t n)
{
	msgpack_packer pk;
	int rc = pk_begin(out, &pk, IPC_RESULTS, 1);
	if (rc)
		return pk_end(out, rc);
	rc |= pk_str(&pk, "r") | msgpack_pack_array(&pk, n);
	for (uint32_t i = 0; i < n; i++) {
		rc |= msgpack_pack_array(&pk, 3);
		if (m[i].ok) {
			rc |= msgpack_pack_true(&pk);
			rc |= pk_bin(&pk, m[i].data, m[i].len);
			rc |= pk_str(&pk, "");
		} else {
			rc |= msgpack_pack_false(&pk);
			rc |= pk_str(&pk, m[i].err) | pk_str(&pk, m[i].msg);
		}
	}
	return pk_end(out, rc);
}

int ipc_unpack_results(const ipc_frame *f, ipc_result *out, uint32_t *n)
{
	const msgpack_object *items;
	int rc = want_type(f, IPC_RESULTS);
	if (!rc)
		rc = get_tuples(&f->body, "r", 3, &items, n);
	for (uint32_t i = 0; !rc && i < *n; i++) {
		const msgpack_object *t = items[i].via.array.ptr;
		ipc_result *r = &out[i];
		memset(r, 0, sizeof *r);
		if (t[0].type != MSGPACK_OBJECT_BOOLEAN) {
			rc = CORRAL_EFIELD;
			break;
		}
		r->ok = t[0].via.boolean;
		if (r->ok)
			rc = obj_bytes(&t[1], &r->data, &r->len);
		else if (!(rc = obj_str(&t[1], r->err, sizeof r->err)))
			rc = obj_str(&t[2], r->msg, sizeof r->msg);
	}
	return rc;
}

/* ---- batches built in place ---- */

/* An envelope whose body map has one key, holding an array. */
static const char *batch_key(int type)
{
	switch (type) {
	case IPC_JOB:
		return "j";
	case IPC_REPLY:
		return "r";
	case IPC_CALLS:
		return "c";
	default:
		return NULL;
	}
}

int ipc_batch_begin(ipc_batch *b, int type, size_t reserve)
{
	const char *key = batch_key(type);
	msgpack_packer pk;
	*b = (ipc_batch){.msg = NULL};
	if (!key)
		return CORRAL_EINVAL;
	int rc = pk_begin(&b->msg, &pk, type, 1);
	if (!rc && reserve > nng_msg_capacity(b->msg) &&
	    nng_msg_reserve(b->msg, reserve) != 0)
		rc = CORRAL_ENOMEM;
	if (!rc)
		rc = pk_str(&pk, key) ? CORRAL_ENOMEM : 0;
	if (rc) {
		ipc_batch_abort(b);
		return CORRAL_ENOMEM;
	}
	b->count_at = nng_msg_len(b->msg);
	static const uint8_t arr16[3] = {0xdc, 0, 0};
	if (nng_msg_append(b->msg, arr16, sizeof arr16) != 0) {
		ipc_batch_abort(b);
		return CORRAL_ENOMEM;
	}
	return 0;
}

/* Packs one item with fn; on failure, cuts the message back. */
static int batch_add(ipc_batch *b, int (*fn)(msgpack_packer *, const void *),
                     const void *item, uint32_t len)
{
	if (!b->msg)
		return CORRAL_EINVAL;
	if (b->n >= IPC_MAX_BATCH)
		return CORRAL_ETOOMANY;
	size_t before = nng_msg_len(b->msg);
	/* One growth for the whole item, not one per field. */
	size_t need = before + len + IPC_CALL_OVERHEAD,
	       cap = nng_msg_capacity(b->msg);
	if (need > cap &&
	    nng_msg_reserve(b->msg, need > 2 * cap ? need : 2 * cap) != 0)
		return CORRAL_ENOMEM;
	msgpack_packer pk;
	msgpack_packer_init(&pk, b->msg, pk_write);
	if (fn(&pk, item)) {
		nng_msg_chop(b->msg, nng_msg_len(b->msg) - before);
		return CORRAL_ENOMEM;
	}
	b->n++;
	b->bytes += len;
	return 0;
}

static int pk_job_item(msgpack_packer *pk, const void *item)
{
	const ipc_job *j = item;
	return msgpack_pack_array(pk, 4) | msgpack_pack_uint64(pk, j->id) |
	       msgpack_pack_uint64(pk, j->timeout_ms) |
	       msgpack_pack_int32(pk, j->prio) | pk_bin(pk, j->payload, j->len);
}

static int pk_reply_item(msgpack_packer *pk, const void *item)
{
	const ipc_reply *r = item;
	return msgpack_pack_array(pk, 3) | msgpack_pack_uint64(pk, r->id) |
	       msgpack_pack_int32(pk, r->code) | pk_bin(pk, r->data, r->len);
}

static int pk_call_item(msgpack_packer *pk, const void *item)
{
	const ipc_call *c = item;
	return msgpack_pack_array(pk, 3) | pk_bin(pk, c->payload, c->len) |
	       msgpack_pack_uint64(pk, c->timeout_ms) |
	       msgpack_pack_int32(pk, c->prio);
}

int ipc_batch_add_job(ipc_batch *b, const ipc_job *j)
{
	return batch_add(b, pk_job_item, j, j->len);
}

int ipc_batch_add_reply(ipc_batch *b, const ipc_reply *r)
{
	return batch_add(b, pk_reply_item, r, r->len);
}

int ipc_batch_add_call(ipc_batch *b, const ipc_call *c)
{
	return batch_add(b, pk_call_item, c, c->len);
}

void ipc_batch_end(ipc_batch *b, nng_msg **out)
{
	uint8_t *p = (uint8_t *)nng_msg_body(b->msg) + b->count_at;
	p[1] = (uint8_t)(b->n >> 8);
	p[2] = (uint8_t)b->n;
	*out = b->msg;
	*b = (ipc_batch){.msg = NULL};
}

void ipc_batch_abort(ipc_batch *b)
{
	if (b->msg)
		nng_msg_free(b->msg);
	*b = (ipc_batch){.msg = NULL};
}

int ipc_pack_call_sized(nng_msg **out, const ipc_call *m)
{
	msgpack_packer pk;
	int rc = pk_begin(out, &pk, IPC_CALL, 3);
	if (!rc && nng_msg_reserve(*out, nng_msg_len(*out) + m->len +
	                                     IPC_CALL_OVERHEAD) != 0)
		rc = CORRAL_ENOMEM;
	if (rc)
		return pk_end(out, rc);
	rc |= pk_str(&pk, "p") | pk_bin(&pk, m->payload, m->len);
	rc |= pk_u64(&pk, "t", m->timeout_ms);
	rc |= pk_i64(&pk, "pr", m->prio);
	return pk_end(out, rc);
}

/* Item i of a RESULTS frame, whose shape ipc_results_count() checked. */
static int result_item(const msgpack_object *t, ipc_result *r)
{
	memset(r, 0, sizeof *r);
	if (t[0].type != MSGPACK_OBJECT_BOOLEAN)
		return CORRAL_EFIELD;
	r->ok = t[0].via.boolean;
	if (r->ok)
		return obj_bytes(&t[1], &r->data, &r->len);
	int rc = obj_str(&t[1], r->err, sizeof r->err);
	return rc ? rc : obj_str(&t[2], r->msg, sizeof r->msg);
}

int ipc_results_count(const ipc_frame *f, uint32_t *n)
{
	const msgpack_object *items;
	int rc = want_type(f, IPC_RESULTS);
	if (!rc)
		rc = get_tuples(&f->body, "r", 3, &items, n);
	return rc;
}

int ipc_unpack_result_at(const ipc_frame *f, uint32_t i, ipc_result *r)
{
	const msgpack_object *items;
	uint32_t n;
	int rc = want_type(f, IPC_RESULTS);
	if (!rc)
		rc = get_tuples(&f->body, "r", 3, &items, &n);
	if (!rc && i >= n)
		rc = CORRAL_EINVAL;
	return rc ? rc : result_item(items[i].via.array.ptr, r);
}

/* ---- ERROR ---- */

int ipc_pack_error(nng_msg **out, const ipc_error *m)
{
	msgpack_packer pk;
	int rc = pk_begin(out, &pk, IPC_ERROR, 2);
	if (rc)
		return pk_end(out, rc);
	rc |= pk_i64(&pk, "code", m->code);
	rc |= pk_kstr(&pk, "msg", m->msg);
	return pk_end(out, rc);
}

int ipc_unpack_error(const ipc_frame *f, ipc_error *m)
{
	int rc = want_type(f, IPC_ERROR);
	if (!rc)
		rc = get_i32(&f->body, "code", INT32_MIN, &m->code);
	if (!rc)
		rc = get_str(&f->body, "msg", m->msg, sizeof m->msg);
	return rc;
}

/* ---- STATUS ---- */

static int pk_worker(msgpack_packer *pk, const ipc_worker_status *w)
{
	int rc = msgpack_pack_map(pk, 17);
	rc |= pk_i64(pk, "slot", w->slot);
	rc |= pk_i64(pk, "pid", w->pid);
	rc |= pk_kstr(pk, "state", w->state);
	rc |= pk_u64(pk, "restarts", w->restarts);
	rc |= pk_u64(pk, "up", w->uptime_ms);
	rc |= pk_u64(pk, "rss", w->rss_bytes);
	rc |= pk_f64(pk, "cpu", w->cpu_pct);
	rc |= pk_u64(pk, "lag50", w->lag_p50_us);
	rc |= pk_u64(pk, "lag99", w->lag_p99_us);
	rc |= pk_u64(pk, "lagmax", w->lag_max_us);
	rc |= pk_f64(pk, "util", w->util);
	rc |= pk_i64(pk, "xcode", w->exit_code);
	rc |= pk_kstr(pk, "xsig", w->exit_signal);
	rc |= pk_metrics(pk, w->metrics, w->nmetrics);
	rc |= pk_pool(pk, &w->pool);
	rc |= pk_u64(pk, "jobs", w->jobs);
	rc |= pk_str(pk, "deg") |
	      (w->degraded ? msgpack_pack_true(pk) : msgpack_pack_false(pk));
	return rc;
}

int ipc_pack_status(nng_msg **out, const ipc_status *m)
{
	msgpack_packer pk;
	int rc = pk_begin(out, &pk, IPC_STATUS, 6);
	if (rc)
		return pk_end(out, rc);
	rc |= pk_kstr(&pk, "name", m->name);
	rc |= pk_u64(&pk, "bad", m->bad_frames);
	rc |= pk_jobstats(&pk, &m->jobs);
	rc |= pk_i64(&pk, "pid", m->pid);
	rc |= pk_kstr(&pk, "state", m->state);
	rc |= pk_str(&pk, "workers") | msgpack_pack_array(&pk, m->nworkers);
	for (uint32_t i = 0; i < m->nworkers; i++)
		rc |= pk_worker(&pk, &m->workers[i]);
	return pk_end(out, rc);
}

static int unpack_worker(const msgpack_object *o, ipc_worker_status *w)
{
	if (o->type != MSGPACK_OBJECT_MAP)
		return CORRAL_EFIELD;
	int rc = get_i32(o, "slot", 0, &w->slot);
	if (!rc)
		rc = get_i64(o, "pid", &w->pid);
	if (!rc)
		rc = get_str(o, "state", w->state, sizeof w->state);
	uint64_t restarts = 0;
	if (!rc)
		rc = get_u64(o, "restarts", &restarts);
	if (!rc && restarts > UINT32_MAX)
		rc = CORRAL_EFIELD;
	w->restarts = (uint32_t)restarts;
	if (!rc)
		rc = get_u64(o, "up", &w->uptime_ms);
	if (!rc)
		rc = get_u64(o, "rss", &w->rss_bytes);
	if (!rc)
		rc = get_f64(o, "cpu", &w->cpu_pct);
	if (!rc)
		rc = get_u64(o, "lag50", &w->lag_p50_us);
	if (!rc)
		rc = get_u64(o, "lag99", &w->lag_p99_us);
	if (!rc)
		rc = get_u64(o, "lagmax", &w->lag_max_us);
	if (!rc)
		rc = get_f64(o, "util", &w->util);
	if (!rc)
		rc = get_i32(o, "xcode", -1, &w->exit_code);
	if (!rc)
		rc = get_str(o, "xsig", w->exit_signal, sizeof w->exit_signal);
	if (!rc)
		rc = get_metrics(o, w->metrics, &w->nmetrics);
	if (!rc)
		rc = get_pool(o, &w->pool);
	if (!rc)
		rc = get_u64(o, "jobs", &w->jobs);
	const msgpack_object *d = rc ? NULL : mp_get(o, "deg");
	if (!rc && (!d || d->type != MSGPACK_OBJECT_BOOLEAN))
		rc = d ? CORRAL_EFIELD : CORRAL_EMISSING;
	if (!rc)
		w->degraded = d->via.boolean;
	return rc;
}

int ipc_unpack_status(const ipc_frame *f, ipc_status *m)
{
	const msgpack_object *b = &f->body;
	m->workers = NULL;
	m->nworkers = 0;
	int rc = want_type(f, IPC_STATUS);
	if (!rc)
		rc = get_str(b, "name", m->name, sizeof m->name);
	if (!rc)
		rc = get_i64(b, "pid", &m->pid);
	if (!rc)
		rc = get_str(b, "state", m->state, sizeof m->state);
	if (!rc)
		rc = get_u64(b, "bad", &m->bad_frames);
	if (!rc)
		rc = get_jobstats(b, &m->jobs);
	if (rc)
		return rc;
	const msgpack_object *ws = mp_get(b, "workers");
	if (!ws)
		return CORRAL_EMISSING;
	if (ws->type != MSGPACK_OBJECT_ARRAY)
		return CORRAL_EFIELD;
	uint32_t n = ws->via.array.size;
	if (n) {
		m->workers = calloc(n, sizeof *m->workers);
		if (!m->workers)
			return CORRAL_ENOMEM;
	}
	for (uint32_t i = 0; i < n; i++) {
		rc = unpack_worker(&ws->via.array.ptr[i], &m->workers[i]);
		if (rc) {
			ipc_status_free(m);
			return rc;
		}
	}
	m->nworkers = n;
	return 0;
}

void ipc_status_free(ipc_status *m)
{
	free(m->workers);
	m->workers = NULL;
	m->nworkers = 0;
}
