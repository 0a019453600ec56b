/*
 * harness.h - drives a real corral supervisor for process-level tests and
 * benchmarks: starts it in a private temporary directory, reads its log
 * line by line (waiting on the pipe, never sleeping), remembers every worker
 * pid it logs, and at the end kills and reaps every process it started.
 *
 * The calling process becomes a child subreaper, so workers orphaned by a
 * killed supervisor are reparented to it and can be waited for exactly.
 *
 * Tests wait for events, not for log wording: h_event() reads the
 * supervisor's event log over its control socket (long-polling, while it
 * keeps draining the log pipe so the supervisor never blocks on it).
 */
#ifndef TESTS_HARNESS_H
#define TESTS_HARNESS_H

#include <nng/nng.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "ipc/proto.h"

#define H_MAX_PIDS 4096

typedef struct harness {
	char dir[64];      /* private temp dir, removed by h_cleanup */
	char rundir[96];   /* dir/run */
	pid_t sup;         /* supervisor pid, 0 once reaped */
	int sup_status;    /* its wait status once reaped */
	int errfd;         /* its stderr */
	char *log;         /* everything it logged */
	size_t loglen, logcap;
	size_t pos;        /* start of the first line not yet consumed */
	int eof;
	pid_t pids[H_MAX_PIDS]; /* worker pids seen in the log */
	int npids;
	int quiet;         /* do not echo the log on failure */

	ipc_event *events; /* every event fetched so far */
	unsigned nevents, capevents;
	unsigned evpos;    /* first event not consumed by h_event */
	nng_socket evsock; /* REQ to RUNDIR/control, opened on first use: */
	int evsock_open;   /* ...a long-poll for events is always out on it */
	int ev_out;        /* a request is out */
} harness;

/* Milliseconds on the monotonic clock. */
uint64_t h_now_ms(void);
double h_now_us(void);

/* $CORRAL_BUILDDIR/rel (or ./rel); a static buffer per call site. */
const char *h_path(const char *rel, char *buf, size_t len);

/* Makes the private temp dir and names the rundir (not created), for a
 * test that prepares something there before h_start.  0 or -1. */
int h_prepare(harness *h);

/* Starts corral with --rundir and then args (NULL-terminated), in the dir
 * h_prepare made (or a new one).  0 or -1. */
int h_start(harness *h, const char *const *args);

/* Starts any program (argv[0] a path) with stdout and stderr into the log;
 * h->sup is its pid.  For comparisons against other supervisors.  The
 * harness must be zeroed with errfd = -1 first (h_start does that). */
int h_spawn(harness *h, const char *const *argv);

/*
 * Reads the log until a line containing every '|'-separated part of
 * `needles` appears ("slot 1|-> running"), consuming lines up to it.
 * Returns that line (valid until the next call), or NULL on timeout or EOF.
 */
const char *h_expect(harness *h, const char *needles, int timeout_ms);

/* Reads what the log pipe holds now, waiting up to timeout_ms for the
 * first of it, consuming nothing: for a test that keeps the supervisor
 * from blocking on a full pipe while it waits on something else.  0, or
 * -1 at EOF. */
int h_read_log(harness *h, int timeout_ms);

/* Number of unconsumed-or-consumed log lines containing needle so far. */
int h_count(harness *h, const char *needle);

/* The pid in "slot N pid P" or "standby pid P" of line, or 0. */
pid_t h_line_pid(const char *line);

/*
 * Waits up to timeout_ms for the next event (after those consumed) that
 * matches filter, consuming events up to it.  filter is space-separated
 * key=value terms that must all hold -- kind=, slot=, pid=, from=, to= --
 * optionally followed by why~TEXT (a substring of the reason; it takes the
 * rest of the filter, spaces included).  Returns the event (valid until
 * the next call), or NULL on timeout (and dumps the log and events).
 */
const ipc_event *h_event(harness *h, const char *filter, int timeout_ms);
/* How many events fetched so far (consumed or not) match filter, after
 * fetching what the supervisor has now. */
int h_event_count(harness *h, const char *filter);
/* Every event fetched so far matching filter, from the first: the i-th
 * (0-based) or NULL. */
const ipc_event *h_event_nth(harness *h, const char *filter, int i);

/*
 * The event log lives in the supervisor and goes with it: once it has
 * exited, nobody can read it, and the events of its last loop turns (a
 * slot failing, the supervisor stopping and done) are usually not
 * readable even just before, because it closes the control socket in the
 * turn it decides to stop.  So a test cannot wait for those, and what a
 * test checks about a supervisor's whole run is read, after h_wait_exit,
 * from the state changes in its log instead: every event is also logged
 * as one line, "slot N pid P: FROM -> TO: WHY (FROM for T ms)" or
 * "supervisor now TO (was FROM): WHY".  These take h_event's filters (a
 * supervisor's pid reads 0, seq is the line's rank among state changes,
 * t_ms 0) and consume nothing.  A stopgap until the supervisor keeps its
 * events readable past its exit; mark each use with
 * "log: events are not readable once corral has exited".
 */
int h_log_event_count(harness *h, const char *filter);
const ipc_event *h_log_event_nth(harness *h, const char *filter, int i);

/*
 * Output, not synchronisation: waits up to timeout_ms until some line of
 * the log -- anywhere in it, consumed or not -- contains every
 * '|'-separated part of needles, reading more meanwhile; consumes nothing.
 * For lines that are an interface of their own (a plugin's log line with
 * its slot and pid prefix, a warning), whose order against events is not
 * defined.  Returns the line (valid until the next call) or NULL (and
 * dumps the log unless quiet).
 */
const char *h_log_find(harness *h, const char *needles, int timeout_ms);

/* The port of the one listening TCP socket that pid holds, from its
 * descriptors and /proc/net/tcp{,6}: for a server told to bind port 0.
 * 0 if it has none, -1 if more than one (or /proc cannot be read). */
int h_listen_port(pid_t pid);

/* Waits for the supervisor to exit; returns its exit code, 128+signal, or
 * -1 on timeout.  Keeps reading the log meanwhile. */
int h_wait_exit(harness *h, int timeout_ms);

/* Waits until pid has exited (reaping it if it is our child), up to
 * timeout_ms.  0 when gone, -1 on timeout. */
int h_wait_pid_gone(pid_t pid, int timeout_ms);

/* Runs a shell command, captures up to len-1 bytes of its stdout.  Returns
 * its exit code or -1. */
int h_sh(char *out, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Writes the whole log to stderr. */
void h_dump(harness *h);

/* The corralctl to run ($CORRALCTL_BIN, else the build's), and a built
 * file by its path in the tree (examples/echo.so); each call has a buffer
 * of its own among the last eight. */
const char *h_ctl(void);
const char *h_bin(const char *rel);

/* 0 when `corralctl status --json` satisfies the jq filter; else the
 * status is printed (the reason a test fails) and jq's code returned. */
int h_status_is(harness *h, const char *filter);

/* One Check case per test, so that CK_RUN_CASE=name runs one alone:
 * named after the test, with the file's teardown and a time bound. */
#define H_CASE(suite, test, teardown_fn, timeout_s)                           \
	do {                                                                  \
		TCase *tc_ = tcase_create(#test);                             \
		tcase_add_checked_fixture(tc_, NULL, teardown_fn);            \
		tcase_set_timeout(tc_, timeout_s);                            \
		tcase_add_test(tc_, test);                                    \
		suite_add_tcase(suite, tc_);                                  \
	} while (0)

/* Start corral with these arguments, or fail the test. */
#define H_START(h, ...)                                                       \
	do {                                                                  \
		const char *a_[] = {__VA_ARGS__, NULL};                       \
		ck_assert_int_eq(h_start((h), a_), 0);                        \
	} while (0)

/* The next event matching filter within ms, or fail the test. */
#define H_EVENT(h, filter, ms)                                                \
	({                                                                    \
		const ipc_event *e_ = h_event((h), (filter), (ms));           \
		ck_assert_msg(e_ != NULL, "no event '%s'", (filter));         \
		e_;                                                           \
	})

/* Kills (SIGKILL) and reaps the supervisor and every worker pid seen,
 * then removes the temp dir.  Safe to call twice. */
void h_cleanup(harness *h);

#endif
