/*
 * listen.c - the shared listeners, worker side: corral_listener() and
 * corral_listen().
 *
 * The supervisor binds every `listen` once and passes the sockets to each
 * worker as fds 3.., following systemd's convention: LISTEN_FDS (how
 * many) and LISTEN_FDNAMES (their names, ':'-separated).  uv_spawn has no
 * hook between fork and exec, so the supervisor cannot set LISTEN_PID to
 * the child's pid; corral-worker sets LISTEN_PID=getpid() in its own
 * environment here, before any plugin code runs, so that a plugin calling
 * sd_listen_fds() finds the sockets, while a process the plugin spawns
 * (another pid) ignores them.  The descriptors are made close-on-exec for
 * the same reason.
 *
 * Every worker accepts from the same kernel queue.  corral_listen() does
 * not use uv_listen(): that would call listen() again on the shared socket
 * and reset the supervisor's backlog for every worker.  It watches the
 * descriptor with a uv_poll_t and calls accept4() itself, at most
 * ACCEPT_BATCH times per wake-up, and sleeps for the shortest time after
 * each accept: every worker is woken for a new connection (libuv cannot
 * ask for EPOLLEXCLUSIVE), and the first one awake would otherwise take a
 * whole burst.  Measured with wrk opening 64 keep-alive connections at
 * once on 2 workers: 60/5 and 125/5 splits without the sleep, 28/37 and
 * 31/34 with it, at the same throughput (README, "Listeners").  EMFILE and the like pause accepting for
 * ACCEPT_PAUSE_MS instead of spinning on a descriptor that stays readable.
 *
 * When graceful stop begins, the worker stops watching every listener
 * before the plugin's stop hook runs: a stopping worker accepts nothing
 * more, and what waits in the queue goes to the other workers.  The
 * descriptors themselves stay open until the process exits (closing a
 * worker's copy would change nothing for the others anyway).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "worker/worker.h"

#define ACCEPT_BATCH 1
#define ACCEPT_PAUSE_MS 100

struct wlistener {
	corral_worker *w;
	char name[64];
	int fd;               /* shared with the supervisor and other workers */
	int is_unix;          /* AF_UNIX: connections are uv_pipe_t */
	corral_conn_fn fn;    /* set by corral_listen; NULL = not listening */
	uv_poll_t poll;       /* open while fn is set and not stopped */
	uv_timer_t pause;     /* open once needed */
	int pause_open;
	int paused;
	uint64_t accepted;
};

int wlisten_init(corral_worker *w, char *err, size_t errlen)
{
	const char *sfds = getenv("LISTEN_FDS");
	const char *names = getenv("LISTEN_FDNAMES");
	char pid[32];
	if (!sfds)
		return 0;
	snprintf(pid, sizeof pid, "%ld", (long)getpid());
	setenv("LISTEN_PID", pid, 1);
	char *end;
	long n = strtol(sfds, &end, 10);
	if (*end || n < 0 || n > 64) {
		snprintf(err, errlen, "LISTEN_FDS='%s' is not 0..64", sfds);
		return CORRAL_EINVAL;
	}
	if (n == 0)
		return 0;
	w->listeners = calloc((size_t)n, sizeof *w->listeners);
	if (!w->listeners) {
		snprintf(err, errlen, "out of memory");
		return CORRAL_ENOMEM;
	}
	const char *np = names ? names : "";
	for (long i = 0; i < n; i++) {
		wlistener *l = &w->listeners[i];
		const char *colon = strchr(np, ':');
		size_t nl = colon ? (size_t)(colon - np) : strlen(np);
		if (nl >= sizeof l->name)
			nl = sizeof l->name - 1;
		memcpy(l->name, np, nl);
		np = colon ? colon + 1 : np + strlen(np);
		l->w = w;
		l->fd = 3 + (int)i;
		struct stat st;
		struct sockaddr_storage ss;
		socklen_t sl = sizeof ss;
		int fl = fcntl(l->fd, F_GETFD);
		if (fstat(l->fd, &st) != 0 || !S_ISSOCK(st.st_mode) ||
		    getsockname(l->fd, (struct sockaddr *)&ss, &sl) != 0 ||
		    fl < 0 || fcntl(l->fd, F_SETFD, fl | FD_CLOEXEC) != 0) {
			snprintf(err, errlen, "fd %d (listener '%s') is not a "
			         "socket", l->fd, l->name);
			free(w->listeners);
			w->listeners = NULL;
			return CORRAL_EINVAL;
		}
		l->is_unix = ss.ss_family == AF_UNIX;
	}
	w->nlisteners = (size_t)n;
	return 0;
}

static wlistener *find(corral_worker *w, const char *name)
{
	for (size_t i = 0; name && i < w->nlisteners; i++)
		if (strcmp(w->listeners[i].name, name) == 0)
			return &w->listeners[i];
	return NULL;
}

CORRAL_EXPORT int corral_listener(corral_worker *w, const char *name, int *fd)
{
	if (!w || !name || !fd)
		return CORRAL_EINVAL;
	wlistener *l = find(w, name);
	if (!l)
		return CORRAL_ENOENT;
	*fd = l->fd;
	return 0;
}

static void conn_freed(uv_handle_t *h)
{
	free(h);
}

CORRAL_EXPORT void corral_conn_close(uv_stream_t *conn)
{
	if (conn && !uv_is_closing((uv_handle_t *)conn))
		uv_close((uv_handle_t *)conn, conn_freed);
}

/* A heap handle of the right type around an accepted descriptor, or NULL
 * (the descriptor is then closed). */
static uv_stream_t *wrap(wlistener *l, int fd)
{
	uv_loop_t *loop = &l->w->loop;
	int rc;
	uv_stream_t *s;
	if (l->is_unix) {
		uv_pipe_t *p = malloc(sizeof *p);
		if (!p || uv_pipe_init(loop, p, 0) != 0) {
			free(p);
			close(fd);
			return NULL;
		}
		rc = uv_pipe_open(p, fd);
		s = (uv_stream_t *)p;
	} else {
		uv_tcp_t *t = malloc(sizeof *t);
		if (!t || uv_tcp_init(loop, t) != 0) {
			free(t);
			close(fd);
			return NULL;
		}
		rc = uv_tcp_open(t, fd);
		s = (uv_stream_t *)t;
	}
	if (rc) {
		close(fd); /* the handle does not own it after a failed open */
		uv_close((uv_handle_t *)s, conn_freed);
		return NULL;
	}
	s->data = NULL;
	return s;
}

static void on_readable(uv_poll_t *h, int status, int events);

static void on_pause_end(uv_timer_t *t)
{
	wlistener *l = t->data;
	l->paused = 0;
	if (l->fn && l->w->phase != WPHASE_STOPPING)
		uv_poll_start(&l->poll, UV_READABLE, on_readable);
}

/* Out of descriptors or memory: the connection stays queued; try again
 * later rather than spin on a descriptor that stays readable. */
static void pause_accepting(wlistener *l, int err)
{
	if (!l->pause_open) {
		if (uv_timer_init(&l->w->loop, &l->pause) != 0)
			return;
		l->pause.data = l;
		l->pause_open = 1;
	}
	log_plain("warn: listener %s: accept: %s; pausing %d ms", l->name,
	          strerror(err), ACCEPT_PAUSE_MS);
	l->paused = 1;
	uv_poll_stop(&l->poll);
	uv_timer_start(&l->pause, on_pause_end, ACCEPT_PAUSE_MS, 0);
}

static void on_readable(uv_poll_t *h, int status, int events)
{
	wlistener *l = h->data;
	(void)events;
	if (status < 0) {
		log_plain("warn: listener %s: poll: %s", l->name,
		          uv_strerror(status));
		return;
	}
	for (int i = 0; i < ACCEPT_BATCH && l->fn; i++) {
		int fd = accept4(l->fd, NULL, NULL,
		                 SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			int e = errno;
			if (e == EAGAIN || e == EWOULDBLOCK)
				return; /* another worker took it */
			if (e == EINTR || e == ECONNABORTED || e == EPROTO ||
			    e == EPERM)
				continue; /* that connection is gone */
			if (e == EMFILE || e == ENFILE || e == ENOBUFS ||
			    e == ENOMEM) {
				pause_accepting(l, e);
				return;
			}
			log_plain("warn: listener %s: accept: %s", l->name,
			          strerror(e));
			return;
		}
		uv_stream_t *conn = wrap(l, fd);
		if (!conn)
			continue;
		l->accepted++;
		l->fn(l->w, l->name, conn);
		/* Give the CPU away for a moment (as libuv's
		 * UV_TCP_SINGLE_ACCEPT does): the other workers, woken for
		 * the same burst, take their share of it meanwhile. */
		struct timespec ts = {0, 1};
		nanosleep(&ts, NULL);
	}
}

CORRAL_EXPORT int corral_listen(corral_worker *w, const char *name,
                                corral_conn_fn on_connection)
{
	if (!w || !name || !on_connection)
		return CORRAL_EINVAL;
	wlistener *l = find(w, name);
	if (!l)
		return CORRAL_ENOENT;
	if (l->fn || w->phase == WPHASE_STOPPING)
		return CORRAL_ESTATE;
	if (uv_poll_init(&w->loop, &l->poll, l->fd) != 0)
		return CORRAL_ESYS;
	l->poll.data = l;
	l->fn = on_connection;
	if (uv_poll_start(&l->poll, UV_READABLE, on_readable) != 0) {
		l->fn = NULL;
		uv_close((uv_handle_t *)&l->poll, NULL);
		return CORRAL_ESYS;
	}
	return 0;
}

void wlisten_stop(corral_worker *w)
{
	for (size_t i = 0; i < w->nlisteners; i++) {
		wlistener *l = &w->listeners[i];
		if (l->fn) {
			l->fn = NULL;
			uv_close((uv_handle_t *)&l->poll, NULL);
		}
		if (l->pause_open) {
			l->pause_open = 0;
			uv_close((uv_handle_t *)&l->pause, NULL);
		}
	}
}

void wlisten_fini(corral_worker *w)
{
	free(w->listeners);
	w->listeners = NULL;
	w->nlisteners = 0;
}
