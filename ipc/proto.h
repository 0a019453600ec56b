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
	X(ERROR, 18, "supervisor -> client: request failed")                 \
	X(EVENTS_REQ, 19, "client -> supervisor: events after a sequence")  \
	X(EVENTS, 20, "supervisor -> client: those events")                  \
	X(CMD, 21, "client -> supervisor: reload, restart, scale, stop")     \
	X(CMD_RESULT, 22, "supervisor -> client: how the command ended")     \
	X(LOGS_REQ, 23, "client -> supervisor: log lines after a sequence")  \
	X(LOGS, 24, "supervisor -> client: those lines")

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

/*
 * The health and status vocabularies.  Each field is declared once, in one
 * of the tables below, and that one row gives its C member, how it travels
 * (msgpack type and wire key), its key in `corralctl status --json` (NULL:
 * not shown) and its column in `corralctl status` (NULL: none) with the
 * column's format.  The structs, the packers and unpackers (proto.c), the
 * JSON and the table (tools/) are all generated from these rows.
 *
 * An optional seventh column makes the field a Prometheus metric (GET
 * /metrics, master/metrics.c): its name without the "corral_" prefix,
 * with at most one label as {label=value}.  The name says the type: a
 * name ending in _total is a counter, one with a quantile label is a
 * summary, anything else a gauge.  Values in _us or _ms (the JSON key's
 * suffix) are given in seconds: such a name must say _seconds.  Rows that
 * share a name are one metric family; every per-slot row also carries the
 * slot="N" label.  A STR field is a label without a value ({state}): its
 * text is the value and the sample is 1.  Rows without the column are not
 * exported.
 */
typedef enum ipc_ftype {
	IPC_T_U64, IPC_T_I64, IPC_T_U32, IPC_T_I32, IPC_T_F64, IPC_T_BOOL,
	IPC_T_STR, /* char[IPC_STATE_LEN] */
} ipc_ftype;

typedef enum ipc_fmt {
	IPC_FMT_NONE,
	IPC_FMT_INT,
	IPC_FMT_STR,
	IPC_FMT_DUR_MS,   /* ms as 5s, 3m, 2h, 1d */
	IPC_FMT_MB,       /* bytes as 1.5 MB */
	IPC_FMT_PCT,      /* 12.5% */
	IPC_FMT_US_AS_MS, /* us as 1.2 ms */
} ipc_fmt;

#define IPC_DECL_U64(n) uint64_t n
#define IPC_DECL_I64(n) int64_t n
#define IPC_DECL_U32(n) uint32_t n
#define IPC_DECL_I32(n) int32_t n
#define IPC_DECL_F64(n) double n
#define IPC_DECL_BOOL(n) int n
#define IPC_DECL_STR(n) char n[IPC_STATE_LEN]

/* A worker's thread pool (HEALTH "pool"); JSON keys with a dot nest. */
#define IPC_POOL_FIELDS(X)                                                    \
	X(submitted, U64, "sub", "submitted", NULL, NONE,                     \
	  "pool_tasks_submitted_total")                                       \
	X(completed, U64, "done", "completed", NULL, NONE,                    \
	  "pool_tasks_total{outcome=completed}")                              \
	X(rejected, U64, "rej", "rejected", NULL, NONE,                       \
	  "pool_tasks_total{outcome=rejected}")                               \
	X(expired, U64, "exp", "expired", NULL, NONE,                         \
	  "pool_tasks_total{outcome=expired}")                                \
	X(cancelled, U64, "can", "cancelled", NULL, NONE,                     \
	  "pool_tasks_total{outcome=cancelled}")                              \
	X(queued_critical, U64, "q0", "queued.critical", NULL, NONE,          \
	  "pool_queued_tasks{lane=critical}")                                 \
	X(queued_high, U64, "q1", "queued.high", NULL, NONE,                  \
	  "pool_queued_tasks{lane=high}")                                     \
	X(queued_normal, U64, "q2", "queued.normal", NULL, NONE,              \
	  "pool_queued_tasks{lane=normal}")                                   \
	X(queued_low, U64, "q3", "queued.low", NULL, NONE,                    \
	  "pool_queued_tasks{lane=low}")                                      \
	X(running, U64, "run", "running", NULL, NONE, "pool_running_tasks")   \
	X(wait_p50_us, U64, "w50", "wait_p50_us", NULL, NONE,                 \
	  "pool_wait_seconds{quantile=0.5}")                                  \
	X(wait_p99_us, U64, "w99", "wait_p99_us", NULL, NONE,                 \
	  "pool_wait_seconds{quantile=0.99}")                                 \
	X(run_p50_us, U64, "r50", "run_p50_us", NULL, NONE,                   \
	  "pool_run_seconds{quantile=0.5}")                                   \
	X(run_p99_us, U64, "r99", "run_p99_us", NULL, NONE,                   \
	  "pool_run_seconds{quantile=0.99}")                                  \
	X(oldest_running_ms, U64, "old", "oldest_running_ms", NULL, NONE,     \
	  "pool_oldest_running_seconds")

/* What a worker reports about itself in every HEALTH (besides its custom
 * metrics and its pool); lags and utilisation are over the interval.
 * jobs: held by the plugin now; jobs_done: answered since it started (a
 * counter: `corralctl top` shows its rate). */
#define IPC_HEALTH_FIELDS(X)                                                  \
	X(pid, I64, "pid", NULL, NULL, NONE)                                  \
	X(uptime_ms, U64, "up", NULL, NULL, NONE)                             \
	X(rss_bytes, U64, "rss", "rss_bytes", "MEM", MB,                      \
	  "worker_resident_memory_bytes")                                     \
	X(cpu_us, U64, "cpu", "cpu_us", NULL, NONE,                           \
	  "worker_cpu_seconds_total")                                         \
	X(lag_p50_us, U64, "lag50", "lag_p50_us", NULL, NONE,                 \
	  "worker_lag_seconds{quantile=0.5}")                                 \
	X(lag_p99_us, U64, "lag99", "lag_p99_us", "LAG P99", US_AS_MS,        \
	  "worker_lag_seconds{quantile=0.99}")                                \
	X(lag_max_us, U64, "lagmax", "lag_max_us", NULL, NONE,                \
	  "worker_lag_seconds{quantile=1}")                                   \
	X(util, F64, "util", "utilization", NULL, NONE,                       \
	  "worker_loop_utilization_ratio")                                    \
	X(jobs, U64, "jobs", "plugin_jobs", NULL, NONE,                       \
	  "worker_plugin_jobs")                                               \
	X(jobs_done, U64, "jdone", "plugin_jobs_done", NULL, NONE,            \
	  "worker_plugin_jobs_done_total")

/* Why a slot's worker was restarted: one counter per cause in STATUS
 * (restarts_by in JSON; the reason label of corral_worker_restarts_total).
 * The cause is decided where the restart is (master/restarts.c). */
#define IPC_RESTART_CAUSES(M, X)                                              \
	M(X, CRASH, crash)   /* it failed: a signal, or a nonzero exit */     \
	M(X, HUNG, hung)     /* killed: silent (or not ready) too long */     \
	M(X, LAG, lag)       /* replaced by a health action: loop lag */      \
	M(X, MEMORY, memory) /* replaced by a health action: memory */        \
	M(X, LEAK, leak)     /* replaced by a health action: a steady leak */ \
	M(X, RELOAD, reload) /* replaced by a reload */                       \
	M(X, RESTART, restart) /* replaced by corralctl restart */            \
	M(X, EXIT, exit)     /* it exited cleanly (restart = always) */

typedef enum ipc_cause {
#define IPC_CAUSE_ENUM(X, name, str) IPC_CAUSE_##name,
	IPC_RESTART_CAUSES(IPC_CAUSE_ENUM, _)
#undef IPC_CAUSE_ENUM
	IPC_NCAUSES
} ipc_cause;

/* "crash", ...; "" for an unknown value. */
const char *ipc_cause_name(ipc_cause c);

#define IPC_CAUSE_ROW(X, name, str)                                           \
	X(restarts_##str, U32, "r_" #str, "restarts_by." #str, NULL, NONE,    \
	  "worker_restarts_total{reason=" #str "}")

/* What the supervisor knows of a slot (STATUS), shown before its health.
 * gen is the generation of its worker; exit_code is -1 and exit_signal ""
 * when it has not exited. */
#define IPC_SLOT_FIELDS(X)                                                    \
	X(slot, I32, "slot", "slot", "SLOT", INT)                             \
	X(pid, I64, "pid", "pid", "PID", INT)                                 \
	X(state, STR, "state", "state", "STATE", STR, "worker_state{state}")  \
	X(gen, U32, "gen", "gen", "GEN", INT, "worker_generation")            \
	X(restarts, U32, "restarts", "restarts", "RESTARTS", INT)             \
	IPC_RESTART_CAUSES(IPC_CAUSE_ROW, X)                                  \
	X(uptime_ms, U64, "up", "uptime_ms", "UPTIME", DUR_MS,                \
	  "worker_uptime_seconds")                                            \
	X(cpu_pct, F64, "cpu", "cpu_pct", "CPU", PCT)                         \
	X(jobs, U64, "jobs", "jobs", NULL, NONE, "worker_jobs_inflight")      \
	X(degraded, BOOL, "deg", "degraded", NULL, NONE, "worker_degraded")   \
	X(exit_code, I32, "xcode", NULL, NULL, NONE)                          \
	X(exit_signal, STR, "xsig", NULL, NULL, NONE)                         \
	X(leaking, BOOL, "leak", "leaking", NULL, NONE, "worker_leaking")     \
	X(leak_bps, F64, "lbps", "leak_bytes_per_s", NULL, NONE,              \
	  "worker_memory_growth_bytes_per_second")                            \
	X(pool_stuck, BOOL, "stuck", "pool_stuck", NULL, NONE,                \
	  "worker_pool_stuck")

/* The broker's counters (STATUS "jobs"). */
#define IPC_JOBSTAT_FIELDS(X)                                                 \
	X(queued, U64, "q", "queued", NULL, NONE, "jobs_queued")              \
	X(inflight, U64, "in", "inflight", NULL, NONE, "jobs_inflight")       \
	X(accepted, U64, "acc", "accepted", NULL, NONE,                       \
	  "jobs_accepted_total")                                              \
	X(ok, U64, "ok", "ok", NULL, NONE, "jobs_total{outcome=ok}")          \
	X(failed, U64, "fail", "failed", NULL, NONE,                          \
	  "jobs_total{outcome=failed}")                                       \
	X(timeouts, U64, "tmo", "timeouts", NULL, NONE,                       \
	  "jobs_total{outcome=timeout}")                                      \
	X(busy, U64, "busy", "busy", NULL, NONE, "jobs_total{outcome=busy}")  \
	X(poison, U64, "poison", "poison", NULL, NONE,                        \
	  "jobs_total{outcome=poison}")                                       \
	X(redispatched, U64, "redo", "redispatched", NULL, NONE,              \
	  "jobs_redispatched_total")                                          \
	X(late, U64, "late", "late_replies", NULL, NONE,                      \
	  "jobs_late_replies_total")

#define IPC_FIELD_DECL(name, type, key, json, col, fmt, ...) IPC_DECL_##type(name);

typedef struct ipc_pool_stats {
	IPC_POOL_FIELDS(IPC_FIELD_DECL)
} ipc_pool_stats;

typedef struct ipc_health {
	IPC_HEALTH_FIELDS(IPC_FIELD_DECL)
	uint32_t nmetrics;
	ipc_metric metrics[IPC_MAX_METRICS];
	ipc_pool_stats pool;
} ipc_health;

typedef struct ipc_job_stats {
	IPC_JOBSTAT_FIELDS(IPC_FIELD_DECL)
} ipc_job_stats;

/* One row of a table above, as data (proto.c). */
typedef struct ipc_field {
	const char *key;  /* on the wire */
	const char *json; /* in JSON, NULL = not shown */
	const char *col;  /* status table column, NULL = none */
	ipc_ftype type;
	ipc_fmt fmt;
	size_t off;
	const char *prom; /* Prometheus name{label=value}, "" = none */
} ipc_field;

extern const ipc_field ipc_pool_fields[], ipc_health_fields[],
    ipc_slot_fields[], ipc_jobstat_fields[];
extern const unsigned ipc_pool_nfields, ipc_health_nfields,
    ipc_slot_nfields, ipc_jobstat_nfields;

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

/* One slot in STATUS: the supervisor's view, and the worker's last
 * health report (zero when there is none). */
typedef struct ipc_worker_status {
	IPC_SLOT_FIELDS(IPC_FIELD_DECL)
	ipc_health health;
} ipc_worker_status;

#define IPC_URL_LEN 512

typedef struct ipc_status {
	char name[IPC_NAME_LEN];
	uint32_t gen;               /* the generation wanted now */
	char plugin[IPC_URL_LEN];   /* its plugin's path */
	char plugin_id[64];         /* and content id (inode:size:mtime) */
	char op[IPC_URL_LEN];       /* a command in progress, or "" */
	char last_op[IPC_URL_LEN];  /* how the last one ended */
	char jobs_url[IPC_URL_LEN]; /* the front end, its port resolved */
	uint64_t heals;      /* dead listeners replaced (nng 1.5.2 #1518) */
	int64_t pid;
	char state[IPC_STATE_LEN];
	uint64_t bad_frames; /* malformed messages received and dropped */
	uint64_t slow_readers; /* connections closed for not reading their
	                        * replies (ipc/srv.h) */
	ipc_job_stats jobs;
	uint32_t nworkers;
	ipc_worker_status *workers; /* owned; ipc_status_free() */
} ipc_status;

/*
 * What a decision about a slot was taken on (an event of kind "decision",
 * `corralctl explain`): the action, the exit it followed, the restart
 * policy's arithmetic (the delay chosen, the delay before jitter, how many
 * restarts in a row, the policy's figures), the restart budget used in the
 * window, the figure that triggered it if one did (a kill: "silent_ms",
 * "starting_ms", "stopping_ms" against its limit), and the worker's last
 * health report.  exit_code -1 and exit_signal "": no exit; figure "": no
 * trigger; health_age_ms UINT64_MAX: no report from that worker.
 */
#define IPC_DECISION_FIELDS(X)                                                \
	X(action, STR, "act", "action", NULL, NONE)                           \
	X(exit_code, I32, "xcode", "exit_code", NULL, NONE)                   \
	X(exit_signal, STR, "xsig", "exit_signal", NULL, NONE)                \
	X(uptime_ms, U64, "up", "uptime_ms", NULL, NONE)                      \
	X(backoff_ms, U64, "delay", "backoff_ms", NULL, NONE)                 \
	X(backoff_base_ms, U64, "base", "backoff_base_ms", NULL, NONE)        \
	X(consecutive, U32, "consec", "restarts_in_a_row", NULL, NONE)        \
	X(restart_delay_ms, U64, "rdelay", "policy.restart_delay_ms", NULL, NONE) \
	X(restart_delay_max_ms, U64, "rdmax", "policy.restart_delay_max_ms",  \
	  NULL, NONE)                                                         \
	X(min_uptime_ms, U64, "minup", "policy.min_uptime_ms", NULL, NONE)    \
	X(restarts_used, U32, "used", "restarts_in_window", NULL, NONE)       \
	X(max_restarts, U32, "maxr", "policy.max_restarts", NULL, NONE)       \
	X(window_ms, U64, "win", "policy.restart_window_ms", NULL, NONE)      \
	X(figure, STR, "fig", "trigger.figure", NULL, NONE)                   \
	X(value, F64, "val", "trigger.value", NULL, NONE)                     \
	X(limit, F64, "lim", "trigger.limit", NULL, NONE)                     \
	X(health_age_ms, U64, "hage", "health.age_ms", NULL, NONE)            \
	X(lag_p99_us, U64, "lag99", "health.lag_p99_us", NULL, NONE)          \
	X(rss_bytes, U64, "rss", "health.rss_bytes", NULL, NONE)              \
	X(cpu_pct, F64, "cpu", "health.cpu_pct", NULL, NONE)

typedef struct ipc_decision {
	IPC_DECISION_FIELDS(IPC_FIELD_DECL)
} ipc_decision;

extern const ipc_field ipc_decision_fields[];
extern const unsigned ipc_decision_nfields;

/* One thing that happened in the supervisor: a state change of a slot, a
 * standby or the supervisor itself, an action it took, or a decision about
 * a slot with its inputs.  seq counts up from 1 without gaps.  On the wire
 * an event is a 9-item array, and a 10th item (a map) for a decision. */
typedef struct ipc_event {
	uint64_t seq;
	uint64_t t_ms;              /* wall clock, ms since the epoch */
	char kind[IPC_STATE_LEN];   /* "slot", "supervisor", "action",
	                             * "decision" */
	int32_t slot;               /* -1 when not about a slot */
	int64_t pid;                /* 0 when none */
	uint32_t gen;               /* generation of the worker */
	char from[IPC_STATE_LEN], to[IPC_STATE_LEN]; /* a decision: the
	                             * slot's state and the action */
	char why[256];
	int has_decision;           /* dec holds a decision's inputs */
	ipc_decision dec;
} ipc_event;

#define IPC_MAX_EVENTS 256 /* per EVENTS reply */

/* An operator's command: reload, restart, scale, stop, with string
 * arguments.  Answered with CMD_RESULT when it has finished or failed. */
#define IPC_CMD_LEN 32
#define IPC_MAX_ARGS 16
#define IPC_ARG_LEN 4096
typedef struct ipc_cmd {
	char cmd[IPC_CMD_LEN];
	uint32_t nargs;
	char args[IPC_MAX_ARGS][IPC_ARG_LEN];
	/* The client's own id for this command, 0 for none: nng's REQ
	 * resends a request whose connection closed, and a resent reload
	 * must join the one in progress, not be refused by it. */
	uint64_t id;
} ipc_cmd;

typedef struct ipc_cmd_result {
	int ok;
	int32_t code;      /* 0 or a corral_err */
	char msg[1024];
} ipc_cmd_result;

/* Events with seq > since; the supervisor answers as soon as there is at
 * least one, or after wait_ms with none. */
typedef struct ipc_events_req {
	uint64_t since;
	uint64_t wait_ms;
	uint32_t max;  /* 1..IPC_MAX_EVENTS */
} ipc_events_req;

typedef struct ipc_events {
	uint64_t first; /* oldest seq the supervisor still holds */
	uint64_t last;  /* newest seq */
	uint32_t n;
	ipc_event *ev;  /* owned; ipc_events_free() */
} ipc_events;

/* One line of the supervisor's log ring (`corralctl logs`): a line the
 * supervisor logged itself (slot -1, pid 0) or one a worker wrote to its
 * stdout or stderr (its slot, or -1 for a standby, and its pid).  msg is
 * the line without the supervisor's prefixes, len bytes, not
 * NUL-terminated; it points into the ring when packing and into the frame
 * once unpacked. */
typedef struct ipc_logline {
	uint64_t seq;
	uint64_t t_ms;   /* wall clock, ms since the epoch */
	uint32_t level;  /* 0 error, 1 warn, 2 info, 3 debug */
	int32_t slot;
	int64_t pid;
	const char *msg;
	uint32_t len;
} ipc_logline;

#define IPC_MAX_LOGLINES 256   /* per LOGS reply */
#define IPC_MAX_LOGLINE 4096   /* bytes of one line */

/* Lines with seq > since, of every source (slot -1) or of slot N's
 * workers; with tail > 0 only the last tail of them.  Answered as soon as
 * there is one, or after wait_ms with none. */
typedef struct ipc_logs_req {
	uint64_t since;
	uint64_t wait_ms;
	uint32_t max;   /* 1..IPC_MAX_LOGLINES */
	int32_t slot;   /* -1: all */
	uint32_t tail;  /* 0: all */
} ipc_logs_req;

typedef struct ipc_logs {
	uint64_t next;       /* the `since` of the next request */
	int end;             /* the supervisor is closing its control socket:
	                      * nothing follows these lines */
	uint32_t n;
	ipc_logline *lines;  /* owned; ipc_logs_free(); msgs in the frame */
} ipc_logs;

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
/* Hands the caller the message a frame from ipc_decode_msg() holds (NULL
 * for one from ipc_decode()): ipc_frame_fini() leaves it alone, and the
 * strings and blobs unpacked from the frame stay valid, after
 * ipc_frame_fini() too, until the caller frees the message.  For keeping
 * a payload without copying it. */
nng_msg *ipc_frame_take_msg(ipc_frame *f);

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
int ipc_pack_events_req(nng_msg **out, const ipc_events_req *m);
int ipc_unpack_events_req(const ipc_frame *f, ipc_events_req *m);
int ipc_pack_events(nng_msg **out, const ipc_events *m);
int ipc_pack_cmd(nng_msg **out, const ipc_cmd *m);
int ipc_unpack_cmd(const ipc_frame *f, ipc_cmd *m);
int ipc_pack_cmd_result(nng_msg **out, const ipc_cmd_result *m);
int ipc_unpack_cmd_result(const ipc_frame *f, ipc_cmd_result *m);
int ipc_unpack_events(const ipc_frame *f, ipc_events *m);
void ipc_events_free(ipc_events *m);
int ipc_pack_logs_req(nng_msg **out, const ipc_logs_req *m);
int ipc_unpack_logs_req(const ipc_frame *f, ipc_logs_req *m);
int ipc_pack_logs(nng_msg **out, const ipc_logs *m);
/* The lines' msg point into f: keep f until they are used. */
int ipc_unpack_logs(const ipc_frame *f, ipc_logs *m);
void ipc_logs_free(ipc_logs *m);

/*
 * Batches built in place, for senders whose items come one at a time (a
 * worker's replies over a loop turn, a client's concurrent calls) or that
 * know the size of the whole in advance (the broker's JOB and RESULTS).
 * ipc_batch_begin() writes the envelope of a JOB, REPLY, CALLS or RESULTS
 * message with a placeholder for the item count (a 16-bit msgpack array
 * header, valid for any count up to IPC_MAX_BATCH); each
 * ipc_batch_add_*() packs one item as ipc_pack_jobs/replies/calls/results
 * would, copying its bytes once, straight into the message;
 * ipc_batch_end() writes the count and hands the message over.  `reserve`
 * is the expected size (the message grows by doubling beyond it).  A
 * failed add leaves the batch as it was.  All return 0 or CORRAL_ENOMEM
 * (CORRAL_ETOOMANY past IPC_MAX_BATCH).
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
int ipc_batch_add_result(ipc_batch *b, const ipc_result *r);
/* Writes the count into the message and moves it to *out. */
void ipc_batch_end(ipc_batch *b, nng_msg **out);
/* Frees an open batch's message. */
void ipc_batch_abort(ipc_batch *b);
/* Bytes a packed CALL (or CALLS, JOB, REPLY or RESULTS item) adds around
 * its payload, at most. */
#define IPC_CALL_OVERHEAD 48
/* A result's payload in that sense: its data, or its err and msg. */
uint32_t ipc_result_bytes(const ipc_result *r);

/* One CALL, packed into a message of the right size from the start (no
 * growing copy of the payload); the same bytes as ipc_pack_call(). */
int ipc_pack_call_sized(nng_msg **out, const ipc_call *m);

/* RESULTS one item at a time, without an array of 64 results: the number
 * of items (checking the envelope and each item's shape), and item i. */
int ipc_results_count(const ipc_frame *f, uint32_t *n);
int ipc_unpack_result_at(const ipc_frame *f, uint32_t i, ipc_result *r);

#endif
