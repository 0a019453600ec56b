/*
 * corral_base.h - what every corral header shares, without libuv: the
 * export macro, the one error vocabulary, job priorities and the exit-code
 * contract of corral and corral-worker.  The client library needs only
 * this; plugins get it through corral.h.
 */
#ifndef CORRAL_BASE_H
#define CORRAL_BASE_H

#ifdef __cplusplus
extern "C" {
#endif

#define CORRAL_EXPORT __attribute__((visibility("default")))

/*
 * One error vocabulary for the whole project: every corral function returns
 * 0 or one of these negative codes, and corral_strerror() names it.  nng,
 * msgpack and errno values are translated at the edge.
 */
#define CORRAL_ERRNO_MAP(X)                                                   \
	X(EINVAL, -1, "invalid argument")                                     \
	X(ENOMEM, -2, "out of memory")                                        \
	X(ESYS, -3, "system call failed")                                     \
	X(ENNG, -4, "messaging layer error")                                  \
	X(ECLOSED, -5, "channel closed")                                      \
	X(EAGAIN, -6, "try again: send buffer full")                          \
	X(ETRUNC, -10, "message truncated")                                   \
	X(EMALFORMED, -11, "malformed msgpack")                               \
	X(EDEPTH, -12, "message nested too deep")                             \
	X(ETOOLONG, -13, "string or blob longer than allowed")                \
	X(ETOOMANY, -14, "container declares more items than allowed")        \
	X(ETOOBIG, -15, "frame larger than allowed")                          \
	X(EVERSION, -16, "unknown protocol version")                          \
	X(ETYPE, -17, "unknown message type")                                 \
	X(EENVELOPE, -18, "message is not [version, type, body]")             \
	X(EMISSING, -19, "required field missing")                            \
	X(EFIELD, -20, "field has the wrong type or value")                   \
	X(ETRAILING, -21, "trailing bytes after message")                     \
	X(EABI, -30, "plugin ABI mismatch")                                   \
	X(ENOSYM, -31, "plugin symbol missing")                               \
	X(EPLUGIN, -32, "plugin failed")                                      \
	X(ECONFIG, -33, "configuration error")                                \
	X(EPERM, -34, "insecure or foreign path")                             \
	X(ENOSPC, -35, "no room left")                                        \
	X(ESTATE, -36, "not allowed in this state")                           \
	X(ETIMEDOUT, -37, "timed out")                                        \
	X(ECANCELED, -38, "canceled")                                         \
	X(EBUSY, -39, "busy")                                                 \
	X(EPOISON, -40, "job is poison: workers died running it")            \
	X(ESHUTDOWN, -41, "supervisor is shutting down")                      \
	X(ENOENT, -42, "no such name")

typedef enum corral_err {
	CORRAL_OK = 0,
#define CORRAL_ERR_ENUM(name, val, msg) CORRAL_##name = (val),
	CORRAL_ERRNO_MAP(CORRAL_ERR_ENUM)
#undef CORRAL_ERR_ENUM
} corral_err;

/* Never NULL; unknown codes give "unknown error". Any thread. */
CORRAL_EXPORT const char *corral_strerror(int err);
/* "EINVAL" etc.; "EUNKNOWN" for unknown codes. Any thread. */
CORRAL_EXPORT const char *corral_errname(int err);

/* Job and pool-task priorities, served highest (lowest number) first. */
enum corral_priority {
	CORRAL_PRIO_CRITICAL = 0,
	CORRAL_PRIO_HIGH = 1,
	CORRAL_PRIO_NORMAL = 2,
	CORRAL_PRIO_LOW = 3,
};

/*
 * Exit codes.  corral: 0 stopped cleanly; 1 could not start (rundir,
 * sockets, spawn); 2 usage or configuration error, nothing ran; 3 every
 * slot ended FAILED; 4 stopped, but workers had to be killed (deadline,
 * second signal) or crashed while stopping.  corral-worker: 75 lost the
 * supervisor (temporary); 78 fatal plugin or configuration error, never
 * restarted.
 */
enum corral_exit {
	CORRAL_EXIT_OK = 0,
	CORRAL_EXIT_ERROR = 1,
	CORRAL_EXIT_CONFIG = 2,
	CORRAL_EXIT_FAILED = 3,
	CORRAL_EXIT_KILLED = 4,
	CORRAL_EXIT_TEMPFAIL = 75,
	CORRAL_EXIT_FATAL = 78,
};

#ifdef __cplusplus
}
#endif
#endif /* CORRAL_BASE_H */
