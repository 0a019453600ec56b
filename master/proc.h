/*
 * proc.h - one worker process: spawned with uv_spawn (fork+exec, reaped by
 * pid through libuv, never waitpid(-1)), its stdout and stderr logged line
 * by line with the slot and pid prefix.
 *
 * A proc outlives its exit: the pipes may still hold the worker's last
 * words after the exit callback, so it frees itself once the process
 * handle and both pipes are closed.  Its owner (a slot, or a standby until
 * a slot adopts it) lets go of it in the exit callback -- the process is
 * gone, a fact the callback records -- and never touches it again.
 */
#ifndef MASTER_PROC_H
#define MASTER_PROC_H

#include <stdint.h>
#include <uv.h>

#include "master/conf.h"
#include "master/listen.h"
#include "master/privdrop.h"

typedef struct proc proc;

/* Loop thread, when the process has exited; owner as given to proc_spawn.
 * Records facts only (the owner's reconciler acts on them), and the proc
 * is the owner's no more once it returns. */
typedef void (*proc_exit_fn)(void *owner, int64_t status, int term_signal);

/* What a worker is started with: the binary, the configuration of its
 * generation (plugin, settings, pool and health figures), the shared
 * listeners it inherits (NULL: none) and the user it switches to (NULL or
 * inactive: corral's own). */
typedef struct worker_spec {
	const char *worker_bin;
	const config *cfg;
	const listen_set *listeners;
	const priv_user *user;
} worker_spec;

/* slot_id -1 spawns a standby worker.  0 or a libuv error (UV_E*). */
int proc_spawn(uv_loop_t *loop, const worker_spec *spec, int slot_id,
               const char *url, proc_exit_fn fn, void *owner, proc **out);
int64_t proc_pid(const proc *p);
int proc_kill(proc *p, int signum);
/* Gives the process to a new owner (a slot adopting a standby). */
void proc_adopt(proc *p, int slot_id, proc_exit_fn fn, void *owner);

/* Reaps our children that are not live workers: what escaped a worker's
 * process group, and, as PID 1, every orphan.  With kill_them, SIGKILLs
 * them first (the end of a shutdown under kill_mode = group); *killed
 * says how many.  Returns how many were reaped.  Loop thread; a worker is
 * never touched (libuv reaps those by pid). */
unsigned proc_reap_strays(int kill_them, unsigned *killed);

/* The end of a shutdown: the output pipes of exited workers are closed
 * even if something they started (kill_mode = process) still holds
 * them, so that the loop can finish. */
void proc_close_pipes(void);
/* Exited workers whose output pipes are still open. */
unsigned proc_pipes_held(void);

#endif
