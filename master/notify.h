/*
 * notify.h - systemd's service notification protocol (Type=notify), with
 * libsystemd's sd_notify: what the supervisor tells the service manager.
 *
 *   READY=1        (with MAINPID and STATUS) the first time every slot is
 *                  running; again after a reload (notify_reloaded)
 *   STATUS=...     one line, on every change of the supervisor's state,
 *                  of running workers or of restarts (not on a timer):
 *                  "running: 2/2 workers running, 12.5 jobs/s, 0 restarts"
 *   RELOADING=1    (with MONOTONIC_USEC and STATUS) when a reload begins
 *   STOPPING=1     (with STATUS) once, when shutdown begins (draining)
 *   WATCHDOG=1     every WATCHDOG_USEC / 2 from a loop timer, only when
 *                  systemd asked for it (sd_watchdog_enabled): a wedged
 *                  supervisor loop stops sending and systemd restarts it
 *
 * Nothing is sent, and no timer runs, without NOTIFY_SOCKET (or without
 * libsystemd at build time).  The notification socket belongs to the
 * process, so this state is the process's: one notifier, loop thread only.
 */
#ifndef MASTER_NOTIFY_H
#define MASTER_NOTIFY_H

#include <uv.h>

/* What the supervisor looks like, as the notifier is told it. */
typedef struct notify_view {
	const char *state;   /* the supervisor's state name */
	unsigned running;    /* slots RUNNING */
	unsigned total;      /* slots */
	unsigned restarts;   /* restarts so far, every slot */
	double jobs_per_s;   /* answered jobs per second, lately */
	int stopping;        /* shutdown has begun */
} notify_view;

/* Reads the environment; starts the watchdog timer when systemd wants
 * one.  Logs what it found.  0, or CORRAL_ESYS. */
int notify_init(uv_loop_t *loop);
/* Whether a service manager listens (NOTIFY_SOCKET, libsystemd). */
int notify_enabled(void);
/* A new view: sends what changed (READY, STATUS, STOPPING), if anything. */
void notify_update(const notify_view *v);
/* A reload begins (the integrator's reload: before the first new worker
 * is started): RELOADING=1, MONOTONIC_USEC, STATUS. */
void notify_reloading(void);
/* The reload is over, committed or rolled back (ok says which, for the
 * STATUS line): READY=1 and STATUS. */
void notify_reloaded(int ok);
/* Stops the watchdog timer (at the supervisor's end). */
void notify_close(void);

/* For tests: the text of the last datagram sent ("" if none). */
const char *notify_last(void);

#endif
