/*
 * sup.h - the supervisor's state: the slot table, the control socket and the
 * shutdown bookkeeping.  Everything here belongs to the one loop thread.
 *
 * A slot is a position in the worker table (0..workers-1) that outlives the
 * processes that fill it.  Its lifecycle is one state enum assigned only by
 * slot_transition(), which logs every change; what the operator wants
 * (`want`) is kept apart from what is (`state`), as in s6 and runit.
 *
 *  SPAWNING -exec ok-> STARTING -READY-> RUNNING -stop-> STOPPING -exit-> STOPPED
 *      ^                  | exit/timeout    | exit / hung
 *      |                  v                 v
 *      +---- BACKOFF <-- EXITED -- crash loop / fatal / policy --> FAILED
 */
#ifndef MASTER_SUP_H
#define MASTER_SUP_H

#include <stdint.h>
#include <uv.h>

#include "ipc/chan.h"
#include "ipc/proto.h"
#include "master/conf.h"
#include "master/policy.h"

/* The supervisor's exit-code contract, mirrored in --help and the README. */
enum {
	SUP_EXIT_OK = 0,
	SUP_EXIT_ERROR = 1,   /* could not start: rundir, sockets, spawn */
	SUP_EXIT_CONFIG = 2,  /* usage or configuration error; nothing ran */
	SUP_EXIT_FAILED = 3,  /* every slot ended FAILED (or STOPPED by policy
	                       * after failures): let the init system act */
	SUP_EXIT_KILLED = 4,  /* shut down, but had to SIGKILL workers */
};

/* Worker exit codes the supervisor interprets (see worker/worker.h). */
#define WORKER_EXIT_FATAL_CODE 78

#define SLOT_STATES(X)                                                        \
	X(SPAWNING, "spawning")                                               \
	X(STARTING, "starting")                                               \
	X(RUNNING, "running")                                                 \
	X(STOPPING, "stopping")                                               \
	X(STOPPED, "stopped")                                                 \
	X(EXITED, "exited")                                                   \
	X(BACKOFF, "backoff")                                                 \
	X(FAILED, "failed")

typedef enum slot_state {
#define X(name, str) SLOT_##name,
	SLOT_STATES(X)
#undef X
} slot_state;

typedef enum slot_want { WANT_UP, WANT_DOWN } slot_want;

typedef struct sup sup;
typedef struct proc proc;

typedef struct slot {
	sup *sup;
	int id;
	slot_state state; /* only slot_transition() writes it */
	slot_want want;
	uint64_t state_since_ms;

	proc *proc;       /* the live child, NULL when none */
	int64_t pid;      /* of proc, or of the last one (for logs) */
	ipc_chan *chan;   /* pair socket for the current child */
	uv_timer_t timer; /* the deadline of the current state */
	const char *kill_reason; /* why we SIGKILLed it, NULL if we did not */

	restart_track track;
	uint32_t restarts;
	uint64_t spawned_ms, ready_ms;

	int have_health;
	ipc_health health;
	double cpu_pct;

	int have_exit;
	int exit_code;   /* -1 if killed by a signal */
	int exit_signal; /* 0 if it exited */
	int failed;      /* ended by failure, not by a clean exit */
} slot;

struct sup {
	uv_loop_t *loop;
	config *cfg;
	restart_policy policy;
	char worker_bin[4096];
	char rundir[4096];
	slot *slots;
	unsigned nslots;

	ipc_chan *ctl;
	uv_signal_t sig_term, sig_int, sig_hup;
	int stopping;     /* shutdown began: want DOWN everywhere */
	int signals;      /* shutdown signals received */
	int had_to_kill;
	int done;         /* teardown began */
	int exit_code;
	uint64_t start_ms;
	unsigned long bad_frames;
};

/* sup.c */
uint64_t sup_now_ms(const sup *s);
int sup_init(sup *s, uv_loop_t *loop, config *cfg, const char *worker_bin,
             const char *rundir);
int sup_run(sup *s);
void sup_check_done(sup *s);
void sup_slot_url(const sup *s, int id, char *buf, size_t len);

/* slot.c: the state machine and restart policy */
const char *slot_state_name(slot_state st);
void slot_transition(slot *sl, slot_state to, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int slot_init(slot *sl, sup *s, int id);
void slot_start(slot *sl);
void slot_stop(slot *sl);
void slot_kill(slot *sl, const char *reason);
void slot_on_exit(slot *sl, int64_t status, int term_signal);
void slot_close(slot *sl);
int slot_is_terminal(const slot *sl);

/* proc.c: spawning a worker and capturing its output */
int proc_spawn(slot *sl, proc **out);
int proc_kill(proc *p, int signum);
void proc_detach(proc *p);

/* control.c: the control socket */
int control_open(sup *s);
void control_close(sup *s);

/* rundir.c */
int rundir_prepare(const char *path, char *err, size_t errlen);

#endif
