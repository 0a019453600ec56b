/*
 * procenv.h - the supervisor's process-level set-up, done first thing:
 * what it inherited (descriptors), what it is to its descendants (their
 * subreaper), and whether the open-file limit leaves room for the workers
 * asked for.  Each one is a promise the README makes: workers inherit
 * only stdio and the listeners; nothing a worker starts outlives corral;
 * a low limit is named, never a crash.
 */
#ifndef MASTER_PROCENV_H
#define MASTER_PROCENV_H

#include <stddef.h>

/* Marks every descriptor above 2 close-on-exec: one inherited without it
 * (`exec 7>file` in the shell that starts corral) must not reach the
 * workers.  Listeners handed on are dup2()ed into place at each spawn,
 * so they need no exception.  0, or -1 with errno. */
int procenv_cloexec_inherited(void);

/* PR_SET_CHILD_SUBREAPER: orphans of our descendants become our children
 * (and are reaped by us) instead of init's.  0, or -1 with errno. */
int procenv_subreaper(void);

/* Descriptors the supervisor holds per worker (two output pipes, its
 * socket's listener and connection), and besides them. */
#define PROCENV_FDS_PER_WORKER 4
#define PROCENV_FDS_BASE 48 /* loop, nng, control, jobs, clients */

/*
 * How many of `want` workers the open-file limit leaves room for, with
 * `extra` worker-sized spares (standbys, a reload's incoming workers).
 * Raises the soft limit toward the hard one first when that is enough.
 * Returns the number that fit (0: not even one) and says why in msg.
 */
unsigned procenv_fd_room(unsigned want, unsigned extra, char *msg,
                         size_t len);

#endif
