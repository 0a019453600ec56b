/*
 * proto.c - see proto.h.  Packing writes straight into the nng message;
 * unpacking reads from a frame that ipc_decode() has already bounds-checked,
 * so field helpers only need to check presence, type and range.
 */
#include <inttypes.h>
#include <stddef.h>
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

/* ---- the field tables (proto.h) as data ---- */

#define ROW_POOL(name, type, key, json, col, fmt, ...)                        \
	{key, json, col, IPC_T_##type, IPC_FMT_##fmt,                         \
	 offsetof(ipc_pool_stats, name), "" __VA_ARGS__},
#define ROW_HEALTH(name, type, key, json, col, fmt, ...)                      \
	{key, json, col, IPC_T_##type, IPC_FMT_##fmt,                         \
	 offsetof(ipc_health, name), "" __VA_ARGS__},
#define ROW_SLOT(name, type, key, json, col, fmt, ...)                        \
	{key, json, col, IPC_T_##type, IPC_FMT_##fmt,                         \
	 offsetof(ipc_worker_status, name), "" __VA_ARGS__},
#define ROW_JOBSTAT(name, type, key, json, col, fmt, ...)                     \
	{key, json, col, IPC_T_##type, IPC_FMT_##fmt,                         \
	 offsetof(ipc_job_stats, name), "" __VA_ARGS__},
#define ROW_DECISION(name, type, key, json, col, fmt, ...)                    \
	{key, json, col, IPC_T_##type, IPC_FMT_##fmt,                         \
	 offsetof(ipc_decision, name), "" __VA_ARGS__},
#define COUNT(...) +1

const char *ipc_cause_name(ipc_cause c)
{
	static const char *names[] = {
#define NAME(X, name, str) #str,
		IPC_RESTART_CAUSES(NAME, _)
#undef NAME
	};
	return (unsigned)c < IPC_NCAUSES ? names[c] : "";
}

const ipc_field ipc_pool_fields[] = {IPC_POOL_FIELDS(ROW_POOL)};
const ipc_field ipc_health_fields[] = {IPC_HEALTH_FIELDS(ROW_HEALTH)};
const ipc_field ipc_slot_fields[] = {IPC_SLOT_FIELDS(ROW_SLOT)};
const ipc_field ipc_jobstat_fields[] = {IPC_JOBSTAT_FIELDS(ROW_JOBSTAT)};
const ipc_field ipc_decision_fields[] = {IPC_DECISION_FIELDS(ROW_DECISION)};
const unsigned ipc_pool_nfields = 0 IPC_POOL_FIELDS(COUNT);
const unsigned ipc_health_nfields = 0 IPC_HEALTH_FIELDS(COUNT);
const unsigned ipc_slot_nfields = 0 IPC_SLOT_FIELDS(COUNT);
const unsigned ipc_jobstat_nfields = 0 IPC_JOBSTAT_FIELDS(COUNT);
const unsigned ipc_decision_nfields = 0 IPC_DECISION_FIELDS(COUNT);

/* The fields of one table, as key/value pairs of the map being packed. */
static int pk_fields(msgpack_packer *pk, const ipc_field *f, unsigned n,
                     const void *base)
{
	int rc = 0;
	for (unsigned i = 0; i < n; i++) {
		const char *p = (const char *)base + f[i].off;
		rc |= pk_str(pk, f[i].key);
		switch (f[i].type) {
		case IPC_T_U64:
			rc |= msgpack_pack_uint64(pk, *(const uint64_t *)p);
			break;
		case IPC_T_I64:
			rc |= msgpack_pack_int64(pk, *(const int64_t *)p);
			break;
		case IPC_T_U32:
			rc |= msgpack_pack_uint32(pk, *(const uint32_t *)p);
			break;
		case IPC_T_I32:
			rc |= msgpack_pack_int32(pk, *(const int32_t *)p);
			break;
		case IPC_T_F64:
			rc |= msgpack_pack_double(pk, *(const double *)p);
			break;
		case IPC_T_BOOL:
			rc |= *(const int *)p ? msgpack_pack_true(pk)
			                      : msgpack_pack_false(pk);
			break;
		case IPC_T_STR:
			rc |= pk_str(pk, p);
			break;
		}
	}
	return rc;
}

static int pk_pool(msgpack_packer *pk, const ipc_pool_stats *s)
{
	int rc = pk_str(pk, "pool") | msgpack_pack_map(pk, ipc_pool_nfields);
	return rc | pk_fields(pk, ipc_pool_fields, ipc_pool_nfields, s);
}

/* The health map: its fields, "metrics" and "pool". */
static int pk_health(msgpack_packer *pk, const ipc_health *h)
{
	int rc = pk_fields(pk, ipc_health_fields, ipc_health_nfields, h);
	rc |= pk_metrics(pk, h->metrics, h->nmetrics);
	return rc | pk_pool(pk, &h->pool);
}

#define HEALTH_KEYS (ipc_health_nfields + 2)

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
	switch (msgpack_unpack_next(&f->up, buf, len, &off)) {
	case MSGPACK_UNPACK_SUCCESS:
		break;
	case MSGPACK_UNPACK_NOMEM_ERROR:
		rc = CORRAL_ENOMEM;
		goto fail;
	default:
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

/* msgpack_unpack_next() leaves str and bin objects pointing into the
 * buffer it was given (the message body), not into its zone: so they
 * outlive the zone as long as the message lives. */
nng_msg *ipc_frame_take_msg(ipc_frame *f)
{
	nng_msg *m = f->msg;
	f->msg = NULL;
	return m;
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

/* The array at key, of at most max items. */
static int get_array(const msgpack_object *map, const char *key, uint32_t max,
                     const msgpack_object **out)
{
	const msgpack_object *o = mp_get(map, key);
	if (!o)
		return CORRAL_EMISSING;
	if (o->type != MSGPACK_OBJECT_ARRAY)
		return CORRAL_EFIELD;
	if (o->via.array.size > max)
		return CORRAL_ETOOMANY;
	*out = o;
	return 0;
}

static int obj_u64(const msgpack_object *o, uint64_t *v)
{
	if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
		return CORRAL_EFIELD;
	*v = o->via.u64;
	return 0;
}

static int obj_i64(const msgpack_object *o, int64_t *v)
{
	if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
		*v = o->via.i64;
	else if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER &&
	         o->via.u64 <= INT64_MAX)
		*v = (int64_t)o->via.u64;
	else
		return CORRAL_EFIELD;
	return 0;
}

static int get_i64(const msgpack_object *map, const char *key, int64_t *v)
{
	const msgpack_object *o = mp_get(map, key);
	if (!o)
		return CORRAL_EMISSING;
	return obj_i64(o, v);
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

static int obj_bool(const msgpack_object *o, int *v)
{
	if (o->type != MSGPACK_OBJECT_BOOLEAN)
		return CORRAL_EFIELD;
	*v = o->via.boolean;
	return 0;
}

/* Every field of a table from map: each must be there, of its type. */
static int get_fields(const msgpack_object *map, const ipc_field *f,
                      unsigned n, void *base)
{
	for (unsigned i = 0; i < n; i++) {
		char *p = (char *)base + f[i].off;
		const msgpack_object *o = mp_get(map, f[i].key);
		int64_t v = 0;
		uint64_t u = 0;
		int rc;
		if (!o)
			return CORRAL_EMISSING;
		switch (f[i].type) {
		case IPC_T_U64:
			rc = obj_u64(o, (uint64_t *)p);
			break;
		case IPC_T_I64:
			rc = obj_i64(o, (int64_t *)p);
			break;
		case IPC_T_U32:
			if (!(rc = obj_u64(o, &u)) && u > UINT32_MAX)
				rc = CORRAL_EFIELD;
			*(uint32_t *)p = (uint32_t)u;
			break;
		case IPC_T_I32:
			if (!(rc = obj_i64(o, &v)) && (v < INT32_MIN ||
			                               v > INT32_MAX))
				rc = CORRAL_EFIELD;
			*(int32_t *)p = (int32_t)v;
			break;
		case IPC_T_F64:
			rc = obj_f64(o, (double *)p);
			break;
		case IPC_T_BOOL:
			rc = obj_bool(o, (int *)p);
			break;
		case IPC_T_STR:
			rc = obj_str(o, p, IPC_STATE_LEN);
			break;
		default:
			rc = CORRAL_EFIELD;
			break;
		}
		if (rc)
			return rc;
	}
	return 0;
}

static int get_map(const msgpack_object *map, const char *key,
                   const msgpack_object **out)
{
	*out = mp_get(map, key);
	if (!*out)
		return CORRAL_EMISSING;
	return (*out)->type == MSGPACK_OBJECT_MAP ? 0 : CORRAL_EFIELD;
}

static int get_health(const msgpack_object *map, ipc_health *h)
{
	const msgpack_object *pool;
	memset(h, 0, sizeof *h);
	int rc = get_fields(map, ipc_health_fields, ipc_health_nfields, h);
	if (!rc)
		rc = get_metrics(map, h->metrics, &h->nmetrics);
	if (!rc)
		rc = get_map(map, "pool", &pool);
	if (!rc)
		rc = get_fields(pool, ipc_pool_fields, ipc_pool_nfields,
		                &h->pool);
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
	int rc = pk_begin(out, &pk, IPC_HEALTH, HEALTH_KEYS);
	if (rc)
		return pk_end(out, rc);
	rc |= pk_health(&pk, m);
	return pk_end(out, rc);
}

int ipc_unpack_health(const ipc_frame *f, ipc_health *m)
{
	int rc = want_type(f, IPC_HEALTH);
	return rc ? rc : get_health(&f->body, m);
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
	case IPC_RESULTS:
		return "r";
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

static int pk_result_item(msgpack_packer *pk, const void *item)
{
	const ipc_result *r = item;
	int rc = msgpack_pack_array(pk, 3);
	if (r->ok)
		return rc | msgpack_pack_true(pk) | pk_bin(pk, r->data, r->len) |
		       pk_str(pk, "");
	return rc | msgpack_pack_false(pk) | pk_str(pk, r->err) |
	       pk_str(pk, r->msg);
}

uint32_t ipc_result_bytes(const ipc_result *r)
{
	return r->ok ? r->len
	             : (uint32_t)(strnlen(r->err, sizeof r->err) +
	                          strnlen(r->msg, sizeof r->msg));
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

int ipc_batch_add_result(ipc_batch *b, const ipc_result *r)
{
	return batch_add(b, pk_result_item, r, ipc_result_bytes(r));
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

/* ---- EVENTS_REQ, EVENTS ---- */

int ipc_pack_events_req(nng_msg **out, const ipc_events_req *m)
{
	msgpack_packer pk;
	int rc = pk_begin(out, &pk, IPC_EVENTS_REQ, 3);
	if (rc)
		return pk_end(out, rc);
	rc |= pk_u64(&pk, "since", m->since);
	rc |= pk_u64(&pk, "wait", m->wait_ms);
	rc |= pk_u64(&pk, "max", m->max);
	return pk_end(out, rc);
}

int ipc_unpack_events_req(const ipc_frame *f, ipc_events_req *m)
{
	uint64_t max = 0;
	int rc = want_type(f, IPC_EVENTS_REQ);
	if (!rc)
		rc = get_u64(&f->body, "since", &m->since);
	if (!rc)
		rc = get_u64(&f->body, "wait", &m->wait_ms);
	if (!rc)
		rc = get_u64(&f->body, "max", &max);
	if (!rc && (max == 0 || max > IPC_MAX_EVENTS))
		rc = CORRAL_EFIELD;
	m->max = (uint32_t)max;
	return rc;
}

int ipc_pack_events(nng_msg **out, const ipc_events *m)
{
	msgpack_packer pk;
	int rc = pk_begin(out, &pk, IPC_EVENTS, 3);
	if (rc)
		return pk_end(out, rc);
	rc |= pk_u64(&pk, "first", m->first);
	rc |= pk_u64(&pk, "last", m->last);
	rc |= pk_str(&pk, "ev") | msgpack_pack_array(&pk, m->n);
	for (uint32_t i = 0; i < m->n; i++) {
		const ipc_event *e = &m->ev[i];
		rc |= msgpack_pack_array(&pk, e->has_decision ? 10 : 9);
		rc |= msgpack_pack_uint64(&pk, e->seq);
		rc |= msgpack_pack_uint64(&pk, e->t_ms);
		rc |= pk_str(&pk, e->kind);
		rc |= msgpack_pack_int32(&pk, e->slot);
		rc |= msgpack_pack_int64(&pk, e->pid);
		rc |= msgpack_pack_uint32(&pk, e->gen);
		rc |= pk_str(&pk, e->from);
		rc |= pk_str(&pk, e->to);
		rc |= pk_str(&pk, e->why);
		if (e->has_decision) {
			rc |= msgpack_pack_map(&pk, ipc_decision_nfields);
			rc |= pk_fields(&pk, ipc_decision_fields,
			                ipc_decision_nfields, &e->dec);
		}
	}
	return pk_end(out, rc);
}

static int unpack_event(const msgpack_object *t, uint32_t n, ipc_event *e)
{
	uint64_t gen = 0;
	int rc = obj_u64(&t[0], &e->seq);
	if (!rc)
		rc = obj_u64(&t[1], &e->t_ms);
	if (!rc)
		rc = obj_str(&t[2], e->kind, sizeof e->kind);
	if (!rc)
		rc = obj_i32(&t[3], &e->slot);
	if (!rc)
		rc = obj_i64(&t[4], &e->pid);
	if (!rc)
		rc = obj_u64(&t[5], &gen);
	if (!rc && gen > UINT32_MAX)
		rc = CORRAL_EFIELD;
	e->gen = (uint32_t)gen;
	if (!rc)
		rc = obj_str(&t[6], e->from, sizeof e->from);
	if (!rc)
		rc = obj_str(&t[7], e->to, sizeof e->to);
	if (!rc)
		rc = obj_str(&t[8], e->why, sizeof e->why);
	e->has_decision = 0;
	if (!rc && n == 10) {
		if (t[9].type != MSGPACK_OBJECT_MAP)
			return CORRAL_EFIELD;
		rc = get_fields(&t[9], ipc_decision_fields,
		                ipc_decision_nfields, &e->dec);
		e->has_decision = !rc;
	}
	return rc;
}

int ipc_unpack_events(const ipc_frame *f, ipc_events *m)
{
	memset(m, 0, sizeof *m);
	int rc = want_type(f, IPC_EVENTS);
	if (!rc)
		rc = get_u64(&f->body, "first", &m->first);
	if (!rc)
		rc = get_u64(&f->body, "last", &m->last);
	if (rc)
		return rc;
	const msgpack_object *o;
	if ((rc = get_array(&f->body, "ev", IPC_MAX_EVENTS, &o)))
		return rc;
	uint32_t n = o->via.array.size;
	if (n && !(m->ev = calloc(n, sizeof *m->ev)))
		return CORRAL_ENOMEM;
	for (uint32_t i = 0; i < n; i++) {
		const msgpack_object *t = &o->via.array.ptr[i];
		if (t->type != MSGPACK_OBJECT_ARRAY ||
		    (t->via.array.size != 9 && t->via.array.size != 10))
			rc = CORRAL_EFIELD;
		else
			rc = unpack_event(t->via.array.ptr, t->via.array.size,
			                  &m->ev[i]);
		if (rc) {
			ipc_events_free(m);
			return rc;
		}
	}
	m->n = n;
	return 0;
}

void ipc_events_free(ipc_events *m)
{
	free(m->ev);
	m->ev = NULL;
	m->n = 0;
}

/* ---- CMD, CMD_RESULT ---- */

int ipc_pack_cmd(nng_msg **out, const ipc_cmd *m)
{
	msgpack_packer pk;
	int rc = pk_begin(out, &pk, IPC_CMD, m->id ? 3 : 2);
	if (rc)
		return pk_end(out, rc);
	rc |= pk_kstr(&pk, "cmd", m->cmd);
	if (m->id)
		rc |= pk_u64(&pk, "id", m->id);
	rc |= pk_str(&pk, "args") | msgpack_pack_array(&pk, m->nargs);
	for (uint32_t i = 0; i < m->nargs && i < IPC_MAX_ARGS; i++)
		rc |= pk_str(&pk, m->args[i]);
	return pk_end(out, rc);
}

int ipc_unpack_cmd(const ipc_frame *f, ipc_cmd *m)
{
	const msgpack_object *a;
	int rc = want_type(f, IPC_CMD);
	if (!rc)
		rc = get_str(&f->body, "cmd", m->cmd, sizeof m->cmd);
	if (!rc && !(a = mp_get(&f->body, "args")))
		rc = CORRAL_EMISSING;
	if (rc)
		return rc;
	m->id = 0;
	if (mp_get(&f->body, "id") && (rc = get_u64(&f->body, "id", &m->id)))
		return rc;
	if (a->type != MSGPACK_OBJECT_ARRAY)
		return CORRAL_EFIELD;
	if (a->via.array.size > IPC_MAX_ARGS)
		return CORRAL_ETOOMANY;
	m->nargs = a->via.array.size;
	for (uint32_t i = 0; i < m->nargs; i++)
		if ((rc = obj_str(&a->via.array.ptr[i], m->args[i],
		                  sizeof m->args[i])))
			return rc;
	return 0;
}

int ipc_pack_cmd_result(nng_msg **out, const ipc_cmd_result *m)
{
	msgpack_packer pk;
	int rc = pk_begin(out, &pk, IPC_CMD_RESULT, 3);
	if (rc)
		return pk_end(out, rc);
	rc |= pk_str(&pk, "ok") |
	      (m->ok ? msgpack_pack_true(&pk) : msgpack_pack_false(&pk));
	rc |= pk_i64(&pk, "code", m->code);
	rc |= pk_kstr(&pk, "msg", m->msg);
	return pk_end(out, rc);
}

int ipc_unpack_cmd_result(const ipc_frame *f, ipc_cmd_result *m)
{
	const msgpack_object *ok;
	int rc = want_type(f, IPC_CMD_RESULT);
	if (!rc && !(ok = mp_get(&f->body, "ok")))
		rc = CORRAL_EMISSING;
	if (!rc)
		rc = obj_bool(ok, &m->ok);
	if (!rc)
		rc = get_i32(&f->body, "code", INT32_MIN, &m->code);
	if (!rc)
		rc = get_str(&f->body, "msg", m->msg, sizeof m->msg);
	return rc;
}

/* ---- LOGS_REQ, LOGS ---- */

int ipc_pack_logs_req(nng_msg **out, const ipc_logs_req *m)
{
	msgpack_packer pk;
	int rc = pk_begin(out, &pk, IPC_LOGS_REQ, 5);
	if (rc)
		return pk_end(out, rc);
	rc |= pk_u64(&pk, "since", m->since);
	rc |= pk_u64(&pk, "wait", m->wait_ms);
	rc |= pk_u64(&pk, "max", m->max);
	rc |= pk_i64(&pk, "slot", m->slot);
	rc |= pk_u64(&pk, "tail", m->tail);
	return pk_end(out, rc);
}

int ipc_unpack_logs_req(const ipc_frame *f, ipc_logs_req *m)
{
	uint64_t max = 0, tail = 0;
	int rc = want_type(f, IPC_LOGS_REQ);
	if (!rc)
		rc = get_u64(&f->body, "since", &m->since);
	if (!rc)
		rc = get_u64(&f->body, "wait", &m->wait_ms);
	if (!rc)
		rc = get_u64(&f->body, "max", &max);
	if (!rc && (max == 0 || max > IPC_MAX_LOGLINES))
		rc = CORRAL_EFIELD;
	if (!rc)
		rc = get_i32(&f->body, "slot", -1, &m->slot);
	if (!rc)
		rc = get_u64(&f->body, "tail", &tail);
	if (!rc && tail > UINT32_MAX)
		rc = CORRAL_EFIELD;
	m->max = (uint32_t)max;
	m->tail = (uint32_t)tail;
	return rc;
}

int ipc_pack_logs(nng_msg **out, const ipc_logs *m)
{
	msgpack_packer pk;
	int rc = pk_begin(out, &pk, IPC_LOGS, 3);
	if (rc)
		return pk_end(out, rc);
	rc |= pk_u64(&pk, "next", m->next);
	rc |= pk_str(&pk, "end") |
	      (m->end ? msgpack_pack_true(&pk) : msgpack_pack_false(&pk));
	rc |= pk_str(&pk, "l") | msgpack_pack_array(&pk, m->n);
	for (uint32_t i = 0; i < m->n; i++) {
		const ipc_logline *l = &m->lines[i];
		uint32_t len = l->len > IPC_MAX_LOGLINE ? IPC_MAX_LOGLINE
		                                        : l->len;
		rc |= msgpack_pack_array(&pk, 6);
		rc |= msgpack_pack_uint64(&pk, l->seq);
		rc |= msgpack_pack_uint64(&pk, l->t_ms);
		rc |= msgpack_pack_uint32(&pk, l->level);
		rc |= msgpack_pack_int32(&pk, l->slot);
		rc |= msgpack_pack_int64(&pk, l->pid);
		rc |= msgpack_pack_str(&pk, len) |
		      msgpack_pack_str_body(&pk, l->msg, len);
	}
	return pk_end(out, rc);
}

static int unpack_logline(const msgpack_object *t, ipc_logline *l)
{
	uint64_t level = 0;
	const uint8_t *msg = NULL;
	int rc = obj_u64(&t[0], &l->seq);
	if (!rc)
		rc = obj_u64(&t[1], &l->t_ms);
	if (!rc)
		rc = obj_u64(&t[2], &level);
	if (!rc && level > 3)
		rc = CORRAL_EFIELD;
	l->level = (uint32_t)level;
	if (!rc)
		rc = obj_i32(&t[3], &l->slot);
	if (!rc && l->slot < -1)
		rc = CORRAL_EFIELD;
	if (!rc)
		rc = obj_i64(&t[4], &l->pid);
	if (!rc && t[5].type != MSGPACK_OBJECT_STR)
		rc = CORRAL_EFIELD;
	if (!rc)
		rc = obj_bytes(&t[5], &msg, &l->len);
	if (!rc && l->len > IPC_MAX_LOGLINE)
		rc = CORRAL_ETOOLONG;
	l->msg = (const char *)msg;
	return rc;
}

int ipc_unpack_logs(const ipc_frame *f, ipc_logs *m)
{
	memset(m, 0, sizeof *m);
	int rc = want_type(f, IPC_LOGS);
	if (!rc)
		rc = get_u64(&f->body, "next", &m->next);
	const msgpack_object *end = rc ? NULL : mp_get(&f->body, "end");
	if (!rc && !end)
		rc = CORRAL_EMISSING;
	if (!rc)
		rc = obj_bool(end, &m->end);
	if (rc)
		return rc;
	const msgpack_object *o;
	if ((rc = get_array(&f->body, "l", IPC_MAX_LOGLINES, &o)))
		return rc;
	uint32_t n = o->via.array.size;
	if (n && !(m->lines = calloc(n, sizeof *m->lines)))
		return CORRAL_ENOMEM;
	for (uint32_t i = 0; i < n; i++) {
		const msgpack_object *t = &o->via.array.ptr[i];
		if (t->type != MSGPACK_OBJECT_ARRAY || t->via.array.size != 6)
			rc = CORRAL_EFIELD;
		else
			rc = unpack_logline(t->via.array.ptr, &m->lines[i]);
		if (rc) {
			ipc_logs_free(m);
			return rc;
		}
	}
	m->n = n;
	return 0;
}

void ipc_logs_free(ipc_logs *m)
{
	free(m->lines);
	m->lines = NULL;
	m->n = 0;
}

/* ---- STATUS ---- */

/* A slot in STATUS: the slot's fields and its health as "h". */
static int pk_worker(msgpack_packer *pk, const ipc_worker_status *w)
{
	int rc = msgpack_pack_map(pk, ipc_slot_nfields + 1);
	rc |= pk_fields(pk, ipc_slot_fields, ipc_slot_nfields, w);
	rc |= pk_str(pk, "h") | msgpack_pack_map(pk, HEALTH_KEYS);
	return rc | pk_health(pk, &w->health);
}

int ipc_pack_status(nng_msg **out, const ipc_status *m)
{
	msgpack_packer pk;
	int rc = pk_begin(out, &pk, IPC_STATUS, 14);
	if (rc)
		return pk_end(out, rc);
	rc |= pk_kstr(&pk, "name", m->name);
	rc |= pk_u64(&pk, "gen", m->gen);
	rc |= pk_kstr(&pk, "plugin", m->plugin);
	rc |= pk_kstr(&pk, "pid_", m->plugin_id);
	rc |= pk_kstr(&pk, "op", m->op);
	rc |= pk_kstr(&pk, "lop", m->last_op);
	rc |= pk_kstr(&pk, "url", m->jobs_url);
	rc |= pk_u64(&pk, "heals", m->heals);
	rc |= pk_u64(&pk, "bad", m->bad_frames);
	rc |= pk_u64(&pk, "slow", m->slow_readers);
	rc |= pk_str(&pk, "jobs") | msgpack_pack_map(&pk, ipc_jobstat_nfields);
	rc |= pk_fields(&pk, ipc_jobstat_fields, ipc_jobstat_nfields, &m->jobs);
	rc |= pk_i64(&pk, "pid", m->pid);
	rc |= pk_kstr(&pk, "state", m->state);
	rc |= pk_str(&pk, "workers") | msgpack_pack_array(&pk, m->nworkers);
	for (uint32_t i = 0; i < m->nworkers; i++)
		rc |= pk_worker(&pk, &m->workers[i]);
	return pk_end(out, rc);
}

static int unpack_worker(const msgpack_object *o, ipc_worker_status *w)
{
	const msgpack_object *h;
	if (o->type != MSGPACK_OBJECT_MAP)
		return CORRAL_EFIELD;
	int rc = get_fields(o, ipc_slot_fields, ipc_slot_nfields, w);
	if (!rc)
		rc = get_map(o, "h", &h);
	if (!rc)
		rc = get_health(h, &w->health);
	return rc;
}

int ipc_unpack_status(const ipc_frame *f, ipc_status *m)
{
	const msgpack_object *b = &f->body, *jobs;
	m->workers = NULL;
	m->nworkers = 0;
	int rc = want_type(f, IPC_STATUS);
	if (!rc)
		rc = get_str(b, "name", m->name, sizeof m->name);
	uint64_t gen = 0;
	if (!rc && !(rc = get_u64(b, "gen", &gen)) && gen > UINT32_MAX)
		rc = CORRAL_EFIELD;
	m->gen = (uint32_t)gen;
	if (!rc)
		rc = get_str(b, "plugin", m->plugin, sizeof m->plugin);
	if (!rc)
		rc = get_str(b, "pid_", m->plugin_id, sizeof m->plugin_id);
	if (!rc)
		rc = get_str(b, "op", m->op, sizeof m->op);
	if (!rc)
		rc = get_str(b, "lop", m->last_op, sizeof m->last_op);
	if (!rc)
		rc = get_str(b, "url", m->jobs_url, sizeof m->jobs_url);
	if (!rc)
		rc = get_u64(b, "heals", &m->heals);
	if (!rc)
		rc = get_i64(b, "pid", &m->pid);
	if (!rc)
		rc = get_str(b, "state", m->state, sizeof m->state);
	if (!rc)
		rc = get_u64(b, "bad", &m->bad_frames);
	if (!rc)
		rc = get_u64(b, "slow", &m->slow_readers);
	if (!rc)
		rc = get_map(b, "jobs", &jobs);
	if (!rc)
		rc = get_fields(jobs, ipc_jobstat_fields, ipc_jobstat_nfields,
		                &m->jobs);
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
