/*
 * proto.h - corral's wire protocol: one table of message kinds, one C struct
 * and one pack/unpack pair per kind.
 *
 * Every message is one nng message whose body is the msgpack array
 * [version, type, body], body a map with short string keys.  Receivers call
 * ipc_decode() (size check, byte-level scan, envelope check) and then the
 * unpack function for the type it reports; every field is checked for
 * presence, msgpack type and range before it is used.  Unknown keys are
 * ignored so that newer senders can add optional fields.
 */
#ifndef IPC_PROTO_H
#define IPC_PROTO_H

#include <msgpack.h>
#include <nng/nng.h>
#include <stddef.h>
#include <stdint.h>

#define IPC_VERSION 1

#define IPC_MAX_PAYLOAD (1u << 20)            /* one job's payload */
#define IPC_MAX_FRAME (4u * 1024 * 1024)      /* slot sockets: job batches */
#define IPC_MAX_CTL_FRAME (4u * 1024 * 1024)  /* control and jobs sockets */
#define IPC_MAX_BATCH 64                       /* jobs per JOB/REPLY message */
#define IPC_MAX_DEPTH 8
#define IPC_MAX_STR (IPC_MAX_PAYLOAD + 64)   /* any str/bin on the wire */
#define IPC_MAX_ITEMS 4096
#define IPC_MAX_METRICS 32
#define IPC_NAME_LEN 64  /* plugin, instance and metric names, with NUL */
#define IPC_STATE_LEN 16

/* The one table of message kinds: name, wire number, direction. */
#define IPC_TYPES(X)                                                          \
	X(HELLO, 1, "worker -> supervisor: who I am")                        \
	X(READY, 2, "worker -> supervisor: init done")                       \
	X(HEALTH, 3, "worker -> supervisor: periodic report")                \
	X(STOP, 4, "supervisor -> worker: begin graceful stop")              \
	X(ASSIGN, 5, "supervisor -> standby worker: take this slot")         \
	X(JOB, 6, "supervisor -> worker: jobs to handle")                    \
	X(REPLY, 7, "worker -> supervisor: job results")                     \
	X(CANCEL, 8, "supervisor -> worker: stop working on these jobs")     \
	X(CALL, 32, "client -> supervisor: run one job")                     \
	X(RESULT, 33, "supervisor -> client: the job's outcome")             \
	X(CALLS, 34, "client -> supervisor: run several jobs")               \
	X(RESULTS, 35, "supervisor -> client: their outcomes, in order")     \
	X(STATUS_REQ, 16, "client -> supervisor: status please")             \
	X(STATUS, 17, "supervisor -> client: status")                        \
	X(ERROR, 18, "supervisor -> client: request failed")

typedef enum ipc_type {
#define X(name, num, what) IPC_##name = num,
	IPC_TYPES(X)
#undef X
} ipc_type;

const char *ipc_type_name(int type);

typedef struct ipc_hello {
	int32_t slot; /* -1 for a standby worker, not yet assigned */
	int64_t pid;
	uint32_t abi;
	char plugin[IPC_NAME_LEN];
} ipc_hello;

typedef struct ipc_metric {
	char name[IPC_NAME_LEN];
	double value;
} ipc_metric;

/* A worker's thread pool, as reported in HEALTH and STATUS. */
typedef struct ipc_pool_stats {
	uint64_t submitted, completed, rejected, expired, cancelled;
	uint64_t queued[4]; /* critical, high, normal, low */
	uint64_t running;
	uint64_t wait_p50_us, wait_p99_us, run_p50_us, run_p99_us;
	uint64_t oldest_running_ms;
} ipc_pool_stats;

typedef struct ipc_health {
	int64_t pid;
	uint64_t uptime_ms;
	uint64_t rss_bytes;
	uint64_t cpu_us; /* user + system since start */
	uint64_t lag_p50_us, lag_p99_us, lag_max_us; /* over the interval */
	double util;     /* loop utilisation over the interval, 0..1 */
	uint32_t nmetrics;
	ipc_metric metrics[IPC_MAX_METRICS];
	ipc_pool_stats pool; /* optional on the wire ("pool"); zero if absent */
	uint64_t jobs;       /* jobs held by the plugin ("jobs", optional) */
} ipc_health;

typedef struct ipc_stop {
	uint64_t timeout_ms;
} ipc_stop;

typedef struct ipc_assign {
	int32_t slot;
} ipc_assign;

/* One job on the slot socket.  payload points into the decoded frame (or,
 * when packing, into the caller's memory). */
typedef struct ipc_job {
	uint64_t id;
	uint64_t timeout_ms; /* time left when sent */
	int32_t prio;
	const uint8_t *payload;
	uint32_t len;
} ipc_job;

/* A job's result: code 0 and data, or a negative corral_err and a message
 * (in data, as text). */
typedef struct ipc_reply {
	uint64_t id;
	int32_t code;
	const uint8_t *data;
	uint32_t len;
} ipc_reply;

/* A client's request: payload, optional timeout (0 = the server's) and
 * priority (CORRAL_PRIO_*, default normal). */
typedef struct ipc_call {
	const uint8_t *payload;
	uint32_t len;
	uint64_t timeout_ms;
	int32_t prio;
} ipc_call;

/* Why a job failed, as a client sees it: the one table of the reason
 * strings on the wire and the corral_err each stands for. */
#define IPC_JOB_ERRORS(X)                                                     \
	X(BUSY, "busy", CORRAL_EBUSY)                                         \
	X(TIMEOUT, "timeout", CORRAL_ETIMEDOUT)                               \
	X(POISON, "poison", CORRAL_EPOISON)                                   \
	X(SHUTTING_DOWN, "shutting_down", CORRAL_ESHUTDOWN)                   \
	X(FAILED, "failed", CORRAL_EPLUGIN)                                   \
	X(BAD_REQUEST, "bad_request", CORRAL_EINVAL)

typedef enum ipc_joberr {
#define X(name, str, code) IPC_JOBERR_##name,
	IPC_JOB_ERRORS(X)
#undef X
	IPC_JOBERR_COUNT
} ipc_joberr;

/* "busy", ...; "" for an unknown value. */
const char *ipc_joberr_name(ipc_joberr e);
/* The reason named err, or IPC_JOBERR_COUNT if it is not one of them. */
ipc_joberr ipc_joberr_parse(const char *err);
/* The corral_err for a reason string; CORRAL_ENNG for an unknown one. */
int ipc_joberr_code(const char *err);

/* The outcome for a client: ok with data, or err (a short reason such as
 * "busy", "timeout", "poison", "shutting_down", "failed") and msg. */
typedef struct ipc_result {
	int ok;
	const uint8_t *data;
	uint32_t len;
	char err[32];
	char msg[256];
} ipc_result;

typedef struct ipc_error {
	int32_t code;
	char msg[256];
} ipc_error;

typedef struct ipc_worker_status {
	int32_t slot;
	int64_t pid; /* 0 when no process */
	char state[IPC_STATE_LEN];
	uint32_t restarts;
	uint64_t uptime_ms;
	uint64_t rss_bytes;
	double cpu_pct;
	uint64_t lag_p50_us, lag_p99_us, lag_max_us;
	double util;
	int32_t exit_code;              /* -1: none */
	char exit_signal[IPC_STATE_LEN]; /* "" : none */
	uint32_t nmetrics;
	ipc_metric metrics[IPC_MAX_METRICS];
	ipc_pool_stats pool;
	uint64_t jobs;   /* jobs in flight on it (the supervisor's ledger) */
	int degraded;    /* lag p99 above max_lag: no new jobs */
} ipc_worker_status;

/* The broker's counters, as reported in STATUS. */
typedef struct ipc_job_stats {
	uint64_t queued, inflight, accepted, ok, failed, timeouts, busy;
	uint64_t poison, redispatched, late;
} ipc_job_stats;

typedef struct ipc_status {
	char name[IPC_NAME_LEN];
	int64_t pid;
	char state[IPC_STATE_LEN];
	uint64_t bad_frames; /* malformed messages received and dropped */
	ipc_job_stats jobs;
	uint32_t nworkers;
	ipc_worker_status *workers; /* owned; ipc_status_free() */
} ipc_status;

/* A decoded frame: the envelope checked, body still a msgpack object. */
typedef struct ipc_frame {
	int type;
	msgpack_object body;
	msgpack_unpacked up; /* owns the zone body points into */
	nng_msg *msg;        /* strings in body point into it; may be NULL */
} ipc_frame;

/*
 * Validates and unpacks one frame.  Strings in the result point into buf,
 * so buf must outlive the frame.  On success f must be released with
 * ipc_frame_fini().  Returns 0 or a distinct CORRAL_E* code per defect.
 */
int ipc_decode(const void *buf, size_t len, size_t max_frame, ipc_frame *f);
/* The same for a received message, which the frame takes in every case and
 * frees in ipc_frame_fini() (or at once, on error). */
int ipc_decode_msg(nng_msg *msg, size_t max_frame, ipc_frame *f);
void ipc_frame_fini(ipc_frame *f);

/* Packers allocate *out; unpackers fill the struct from a decoded frame
 * whose type matches.  All return 0 or a negative corral_err. */
int ipc_pack_hello(nng_msg **out, const ipc_hello *m);
int ipc_unpack_hello(const ipc_frame *f, ipc_hello *m);
int ipc_pack_ready(nng_msg **out);
int ipc_pack_health(nng_msg **out, const ipc_health *m);
int ipc_unpack_health(const ipc_frame *f, ipc_health *m);
int ipc_pack_stop(nng_msg **out, const ipc_stop *m);
int ipc_unpack_stop(const ipc_frame *f, ipc_stop *m);
int ipc_pack_status_req(nng_msg **out);
int ipc_pack_status(nng_msg **out, const ipc_status *m);
int ipc_unpack_status(const ipc_frame *f, ipc_status *m);
void ipc_status_free(ipc_status *m);
int ipc_pack_assign(nng_msg **out, const ipc_assign *m);
int ipc_unpack_assign(const ipc_frame *f, ipc_assign *m);
/* Batches: pack n items; unpack fills up to IPC_MAX_BATCH into out and
 * sets *n.  Payload pointers refer into the frame. */
int ipc_pack_jobs(nng_msg **out, const ipc_job *jobs, uint32_t n);
int ipc_unpack_jobs(const ipc_frame *f, ipc_job *out, uint32_t *n);
int ipc_pack_replies(nng_msg **out, const ipc_reply *r, uint32_t n);
int ipc_unpack_replies(const ipc_frame *f, ipc_reply *out, uint32_t *n);
int ipc_pack_cancel(nng_msg **out, const uint64_t *ids, uint32_t n);
int ipc_unpack_cancel(const ipc_frame *f, uint64_t *ids, uint32_t *n);
int ipc_pack_call(nng_msg **out, const ipc_call *m);
int ipc_unpack_call(const ipc_frame *f, ipc_call *m);
int ipc_pack_result(nng_msg **out, const ipc_result *m);
int ipc_unpack_result(const ipc_frame *f, ipc_result *m);
/* A batch of calls in one request and their results, in the same order,
 * in one reply (at most IPC_MAX_BATCH; pointers refer into the frame). */
int ipc_pack_calls(nng_msg **out, const ipc_call *m, uint32_t n);
int ipc_unpack_calls(const ipc_frame *f, ipc_call *out, uint32_t *n);
int ipc_pack_results(nng_msg **out, const ipc_result *m, uint32_t n);
int ipc_unpack_results(const ipc_frame *f, ipc_result *out, uint32_t *n);
int ipc_pack_error(nng_msg **out, const ipc_error *m);
int ipc_unpack_error(const ipc_frame *f, ipc_error *m);

/*
 * Batches built in place, for senders whose items come one at a time (a
 * worker's replies over a loop turn, a client's concurrent calls).
 * ipc_batch_begin() writes the envelope of a JOB, REPLY or CALLS message
 * with a placeholder for the item count (a 16-bit msgpack array header,
 * valid for any count up to IPC_MAX_BATCH); each ipc_batch_add_*() packs
 * one item as ipc_pack_jobs/replies/calls would, copying its bytes once,
 * straight into the message; ipc_batch_end() writes the count and hands
 * the message over.  `reserve` is the expected size (the message grows by
 * doubling beyond it).  A failed add leaves the batch as it was.  All
 * return 0 or CORRAL_ENOMEM (CORRAL_ETOOMANY past IPC_MAX_BATCH).
 */
typedef struct ipc_batch {
	nng_msg *msg;    /* NULL when no batch is open */
	size_t count_at; /* offset of the array header */
	uint32_t n;      /* items so far */
	size_t bytes;    /* payload bytes so far */
} ipc_batch;

int ipc_batch_begin(ipc_batch *b, int type, size_t reserve);
int ipc_batch_add_job(ipc_batch *b, const ipc_job *j);
int ipc_batch_add_reply(ipc_batch *b, const ipc_reply *r);
int ipc_batch_add_call(ipc_batch *b, const ipc_call *c);
/* Writes the count into the message and moves it to *out. */
void ipc_batch_end(ipc_batch *b, nng_msg **out);
/* Frees an open batch's message. */
void ipc_batch_abort(ipc_batch *b);
/* Bytes a packed CALL (or CALLS item) adds around its payload, at most. */
#define IPC_CALL_OVERHEAD 48

/* One CALL, packed into a message of the right size from the start (no
 * growing copy of the payload); the same bytes as ipc_pack_call(). */
int ipc_pack_call_sized(nng_msg **out, const ipc_call *m);

/* RESULTS one item at a time, without an array of 64 results: the number
 * of items (checking the envelope and each item's shape), and item i. */
int ipc_results_count(const ipc_frame *f, uint32_t *n);
int ipc_unpack_result_at(const ipc_frame *f, uint32_t i, ipc_result *r);

#endif
