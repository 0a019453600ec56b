/*
 * guard.c - see guard.h.
 *
 * Why the accept hook.  nng's transport keeps accepting and negotiating
 * OS connections even after its listener died; the new pipes just wait,
 * never handed to the socket.  So the listening descriptor never stays
 * readable, and the listener's error counters do not tell either (its
 * "other" counter also counts every pipe that closes normally).  What
 * does tell: connections the OS handed to nng that the listener neither
 * accepted nor refused with a counted error.  This file defines accept()
 * and accept4(), which the dynamic linker binds nng's own calls to (an
 * executable's definition comes first): they call libc's, count the
 * connection for the guard of that listening descriptor and wake the
 * guard's loop (uv_async_send).  The guard compares over the next ~100 ms
 * (a handshake takes that long at most on a busy machine); a connection
 * the listener has not accounted for once the handshake had time to end
 * means it died, and it is replaced.  A backstop looks at every guard at
 * most once a second, from a prepare hook that adds no wake-ups, for a
 * death the hook could not see.  Idle, none of this runs.
 *
 * Threads: the hook runs on nng's threads and touches only the registry
 * (under reg_mu) and uv_async_send(); everything else is the loop's.
 */
#include <dlfcn.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <dirent.h>

#include "common/error.h"
#include "common/log.h"
#include "common/ratelog.h"
#include "corral_base.h"
#include "ipc/guard.h"
#include "ipc/nngerr.h"

#define RETRY_MS 20      /* a heal that could not complete */
/* A handshake ends within this after the OS accepted the connection: a
 * local one at once, a remote one after a round trip or two. */
#define SETTLE_IPC_MS 100 /* generous: a loaded or sanitized build is slow */
#define SETTLE_TCP_MS 250
#define BACKSTOP_MS 1000 /* every guard looked at, at most this often */

/* After an accept: when to look at the counter, in ms from the last look. */
static const unsigned check_after[] = {10, 30, 45, 100, 200};
#define NCHECKS (sizeof check_after / sizeof check_after[0])

static atomic_ulong heals;

struct ipc_guard {
	uv_loop_t *loop;
	nng_socket sock;
	nng_listener l;
	ipc_sockopts o;
	char url[4200];   /* tcp: with the port resolved */
	int ipc;
	char pub[sizeof(((struct sockaddr_un *)0)->sun_path)];
	char priv[sizeof(((struct sockaddr_un *)0)->sun_path)]; /* its name */
	unsigned names;   /* private names made */
	ino_t ino;        /* our socket file's inode (ipc) */
	atomic_int fd;    /* the listening descriptor, -1 if unknown */
	atomic_ulong os_accepts; /* connections the OS gave nng (the hook) */
	atomic_uint_least64_t os_last_ms; /* ...the last one's uv_hrtime ms,
	                                     stored before the count */
	unsigned long os_base;   /* ...when the listener was adopted */
	uint64_t seen_base;      /* its accounted connections then */
	uint64_t seen_last;      /* ...at the last look */
	unsigned checks;  /* looks left after the last accept */
	int heal_pending; /* a heal failed: the timer retries it */
	int closing;
	int open_handles;
	uv_timer_t timer;
	uv_async_t accepted; /* woken by the hook */
	uv_prepare_t backstop;
	uint64_t last_look;
};

unsigned long ipc_guard_heals(void)
{
	return atomic_load(&heals);
}

const char *ipc_guard_url(const ipc_guard *g)
{
	return g->url;
}

/* ---- the accept hook ---- */

#define MAX_GUARDS 256

static pthread_mutex_t reg_mu = PTHREAD_MUTEX_INITIALIZER;
static ipc_guard *reg[MAX_GUARDS];
static atomic_int nreg;

static void reg_add(ipc_guard *g)
{
	pthread_mutex_lock(&reg_mu);
	for (int i = 0; i < MAX_GUARDS; i++)
		if (!reg[i]) {
			reg[i] = g;
			atomic_fetch_add(&nreg, 1);
			break;
		}
	pthread_mutex_unlock(&reg_mu);
}

static void reg_remove(ipc_guard *g)
{
	pthread_mutex_lock(&reg_mu);
	for (int i = 0; i < MAX_GUARDS; i++)
		if (reg[i] == g) {
			reg[i] = NULL;
			atomic_fetch_sub(&nreg, 1);
		}
	pthread_mutex_unlock(&reg_mu);
}

typedef int (*accept4_fn)(int, struct sockaddr *, socklen_t *, int);
typedef int (*accept_fn)(int, struct sockaddr *, socklen_t *);
static accept4_fn real_accept4;
static accept_fn real_accept;
static pthread_once_t real_once = PTHREAD_ONCE_INIT;

static void find_real(void)
{
	real_accept4 = (accept4_fn)(uintptr_t)dlsym(RTLD_NEXT, "accept4");
	real_accept = (accept_fn)(uintptr_t)dlsym(RTLD_NEXT, "accept");
}

/* A connection was accepted on fd: wake its guard, if it has one. */
static void accepted_on(int fd)
{
	if (!atomic_load(&nreg))
		return;
	pthread_mutex_lock(&reg_mu);
	for (int i = 0; i < MAX_GUARDS; i++)
		if (reg[i] && atomic_load(&reg[i]->fd) == fd) {
			/* The time first: whoever sees the count sees it. */
			atomic_store(&reg[i]->os_last_ms, uv_hrtime() / 1000000u);
			atomic_fetch_add(&reg[i]->os_accepts, 1);
			uv_async_send(&reg[i]->accepted);
		}
	pthread_mutex_unlock(&reg_mu);
}

/* nng's threads (and anyone else's): libc's accept4 and accept (Debian's
 * libnng calls accept), then a word to the guard of fd's listener. */
CORRAL_EXPORT int accept4(int fd, struct sockaddr *addr, socklen_t *len,
                          int flags)
{
	pthread_once(&real_once, find_real);
	if (!real_accept4) {
		errno = ENOSYS; /* callers fall back to accept() */
		return -1;
	}
	int r = real_accept4(fd, addr, len, flags);
	if (r >= 0)
		accepted_on(fd);
	return r;
}

CORRAL_EXPORT int accept(int fd, struct sockaddr *addr, socklen_t *len)
{
	pthread_once(&real_once, find_real);
	if (!real_accept) {
		errno = ENOSYS;
		return -1;
	}
	int r = real_accept(fd, addr, len);
	if (r >= 0)
		accepted_on(fd);
	return r;
}

/* ---- looking at a listener ---- */

static nng_stat *child_named(nng_stat *st, const char *name)
{
	for (nng_stat *c = nng_stat_child(st); c; c = nng_stat_next(c))
		if (strcmp(nng_stat_name(c), name) == 0)
			return c;
	return NULL;
}

/* The "listener" scope whose "id" is id.  (nng 1.5.2's own
 * nng_stat_find_listener() returns the first listener scope of any id.) */
static nng_stat *find_listener(nng_stat *st, int id)
{
	for (; st; st = nng_stat_next(st)) {
		nng_stat *idst;
		if (nng_stat_type(st) == NNG_STAT_SCOPE &&
		    strcmp(nng_stat_name(st), "listener") == 0 &&
		    (idst = child_named(st, "id")) &&
		    nng_stat_value(idst) == (uint64_t)id)
			return st;
		nng_stat *in = find_listener(nng_stat_child(st), id);
		if (in)
			return in;
	}
	return NULL;
}

/* Connections the listener has accounted for: accepted, or refused with
 * an error after which it goes on accepting.  UINT64_MAX without stats. */
static uint64_t accounted(nng_listener l)
{
	static const char *const keys[] = {"accept", "disconnect", "timeout",
	                                   "proto", "auth", "oom", "reject"};
	nng_stat *snap, *ls, *st;
	uint64_t v = UINT64_MAX;
	if (nng_stats_get(&snap) != 0)
		return v;
	if ((ls = find_listener(snap, nng_listener_id(l)))) {
		v = 0;
		for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
			if ((st = child_named(ls, keys[i])))
				v += nng_stat_value(st);
	}
	nng_stats_free(snap);
	return v;
}

/* The descriptor nng listens on: the listening socket bound to the
 * guard's address.  Found once per listener (nng does not expose it). */
static int find_fd(ipc_guard *g)
{
	nng_sockaddr na;
	if (!g->ipc && nng_listener_get_addr(g->l, NNG_OPT_LOCADDR, &na) != 0)
		return -1;
	DIR *d = opendir("/proc/self/fd");
	if (!d)
		return -1;
	int found = -1;
	struct dirent *e;
	while (found < 0 && (e = readdir(d))) {
		int fd = atoi(e->d_name), acc = 0;
		socklen_t alen = sizeof acc;
		struct sockaddr_storage ss;
		socklen_t len = sizeof ss;
		if (e->d_name[0] == '.' || fd == dirfd(d) ||
		    getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &alen) ||
		    !acc || getsockname(fd, (struct sockaddr *)&ss, &len))
			continue;
		if (g->ipc && ss.ss_family == AF_UNIX) {
			const struct sockaddr_un *su = (void *)&ss;
			if (strcmp(su->sun_path, g->priv) == 0)
				found = fd;
		} else if (!g->ipc && ss.ss_family == AF_INET &&
		           na.s_family == NNG_AF_INET) {
			const struct sockaddr_in *si = (void *)&ss;
			if (si->sin_port == na.s_in.sa_port &&
			    si->sin_addr.s_addr == na.s_in.sa_addr)
				found = fd;
		} else if (!g->ipc && ss.ss_family == AF_INET6 &&
		           na.s_family == NNG_AF_INET6) {
			const struct sockaddr_in6 *si = (void *)&ss;
			if (si->sin6_port == na.s_in6.sa_port &&
			    memcmp(&si->sin6_addr, na.s_in6.sa_addr, 16) == 0)
				found = fd;
		}
	}
	closedir(d);
	return found;
}

/* ---- listening, and listening anew ---- */

static void adopt(ipc_guard *g);

static int start_listener(ipc_guard *g, const char *url, nng_listener *out)
{
	nng_listener l;
	int rv = nng_listener_create(&l, g->sock, url);
	if (rv)
		return err_from_nng(rv);
	if (g->ipc && g->o.perms &&
	    (rv = nng_listener_set_int(l, NNG_OPT_IPC_PERMISSIONS,
	                               g->o.perms)) != 0) {
		nng_listener_close(l);
		return err_from_nng(rv);
	}
	if ((rv = nng_listener_start(l, 0)) != 0) {
		nng_listener_close(l);
		return rv == NNG_EADDRINUSE ? CORRAL_EBUSY : err_from_nng(rv);
	}
	*out = l;
	return 0;
}

/* ipc: a listener on a fresh private name, renamed over the public path
 * (atomically: the path never goes missing).  Sets g->l and g->priv. */
static int listen_ipc(ipc_guard *g)
{
	char priv[sizeof g->priv], url[sizeof priv + 8];
	const char *slash = strrchr(g->pub, '/');
	size_t dirlen = slash ? (size_t)(slash - g->pub) + 1 : 0;
	int n = snprintf(priv, sizeof priv, "%.*s.%s.%u.%ld", (int)dirlen,
	                 g->pub, slash ? slash + 1 : g->pub, g->names++,
	                 (long)getpid());
	if (n < 0 || (size_t)n >= sizeof priv)
		return CORRAL_ETOOLONG;
	snprintf(url, sizeof url, "ipc://%s", priv);
	nng_listener l;
	int rc = start_listener(g, url, &l);
	if (rc)
		return rc;
	struct stat st;
	char old_priv[sizeof g->priv];
	nng_listener old_l = g->l;
	snprintf(old_priv, sizeof old_priv, "%s", g->priv);
	/* Known before clients can reach it, so the hook sees its first
	 * connection too. */
	g->l = l;
	snprintf(g->priv, sizeof g->priv, "%s", priv);
	adopt(g);
	if (stat(priv, &st) != 0 || rename(priv, g->pub) != 0) {
		rc = err_from_errno(errno);
		nng_listener_close(l);
		unlink(priv);
		g->l = old_l;
		snprintf(g->priv, sizeof g->priv, "%s", old_priv);
		if (old_priv[0])
			adopt(g);
		return rc ? rc : CORRAL_ESYS;
	}
	g->ino = st.st_ino;
	return 0;
}

/* Takes g->l as the listener to watch: its descriptor and its errors. */
static void adopt(ipc_guard *g)
{
	g->os_base = atomic_load(&g->os_accepts);
	atomic_store(&g->fd, find_fd(g));
	g->seen_base = g->seen_last = accounted(g->l);
	g->checks = 0;
	if (atomic_load(&g->fd) < 0)
		log_warn("cannot find the descriptor of the listener for %s; "
		         "only the once-a-second check guards it against nng "
		         "1.5.2 bug #1518", g->url);
}

static void close_listener(void *arg)
{
	nng_listener_close(*(nng_listener *)arg);
	free(arg);
}

static void on_timer(uv_timer_t *t);

/* Replaces the dead listener, or retries on the timer. */
static void heal(ipc_guard *g, const char *why)
{
	static ratelog rl;
	uint64_t held = 0;
	nng_listener old = g->l;
	int rc, retry = g->heal_pending;
	atomic_store(&g->fd, -1);
	g->heal_pending = 0;
	if (g->ipc) {
		rc = listen_ipc(g);
		if (!rc) {
			/* Closing it closes the pipes that wait in it (their
			 * clients reconnect), and cannot unlink the public
			 * path: its own name was renamed away. */
			nng_listener *lp = malloc(sizeof *lp);
			if (lp) {
				*lp = old;
				ipc_close_later(close_listener, lp);
			}
		}
	} else {
		if (!retry)
			nng_listener_close(old); /* frees the port */
		rc = start_listener(g, g->url, &g->l);
	}
	if (rc) {
		if (!retry)
			log_warn("listener for %s: cannot replace it yet: %s",
			         g->url, corral_strerror(rc));
		g->heal_pending = 1;
		uv_timer_start(&g->timer, on_timer, RETRY_MS, 0);
		return;
	}
	atomic_fetch_add(&heals, 1);
	log_debug("listener for %s replaced (%s)", g->url, why);
	if (ratelog_ok(&rl, &held))
		log_warn("listener for %s had stopped accepting (%s: nng 1.5.2 "
		         "bug #1518); replaced it (%lu replaced so far, %" PRIu64
		         " such lines held back)", g->url, why, ipc_guard_heals(),
		         held);
	if (!g->ipc)
		adopt(g); /* ipc: listen_ipc did, before the rename */
}

/* One look: 1 if the listener died and was replaced.  A connection it
 * has not accounted for once handshakes had time to end means its accept
 * loop stopped (a handshake that failed with "closed" stops it). */
static int look(ipc_guard *g)
{
	g->last_look = uv_now(g->loop);
	uint64_t seen = accounted(g->l);
	unsigned long given = atomic_load(&g->os_accepts) - g->os_base;
	/* The hook's own clock, read after the count: a connection the
	 * count includes is one whose time we see (not the loop's cached
	 * time, nor when its wake-up got here -- a look can come first). */
	uint64_t last = atomic_load(&g->os_last_ms);
	uint64_t now = uv_hrtime() / 1000000u;
	if (seen == UINT64_MAX || seen < g->seen_base)
		return 0;
	log_debug("listener for %s: %lu connection(s), %" PRIu64
	          " accounted for", g->url, given, seen - g->seen_base);
	/* Dead: some not accounted for, none accounted since the last look
	 * (a live one under a burst keeps going), and handshakes had time. */
	int stuck = given > seen - g->seen_base && seen == g->seen_last &&
	            now >= last &&
	            now - last >= (g->ipc ? SETTLE_IPC_MS : SETTLE_TCP_MS);
	g->seen_last = seen;
	if (!stuck)
		return 0;
	heal(g, "its accept loop stopped");
	return 1;
}

static void on_timer(uv_timer_t *t)
{
	ipc_guard *g = t->data;
	if (g->closing)
		return;
	if (g->heal_pending) {
		heal(g, "retry");
		return;
	}
	if (look(g) || !g->checks)
		return;
	g->checks--;
	uv_timer_start(&g->timer, on_timer,
	               check_after[NCHECKS - g->checks - 1], 0);
}

/* The hook says our listener took a connection: look a few times. */
static void on_accepted(uv_async_t *h)
{
	ipc_guard *g = h->data;
	log_debug("listener for %s accepted a connection", g->url);
	if (g->closing || g->heal_pending)
		return;
	g->checks = NCHECKS - 1;
	uv_timer_start(&g->timer, on_timer, check_after[0], 0);
}

static void on_backstop(uv_prepare_t *h)
{
	ipc_guard *g = h->data;
	if (!g->closing && !g->heal_pending &&
	    uv_now(g->loop) - g->last_look >= BACKSTOP_MS)
		look(g);
}

/* ---- life ---- */

static void handle_closed(uv_handle_t *h)
{
	ipc_guard *g = h->data;
	if (--g->open_handles == 0)
		free(g);
}

int ipc_guard_listen(ipc_guard **out, uv_loop_t *loop, nng_socket s,
                     const char *url, const ipc_sockopts *o)
{
	ipc_guard *g = calloc(1, sizeof *g);
	int rc;
	if (!g)
		return CORRAL_ENOMEM;
	g->loop = loop;
	g->sock = s;
	g->o = *o;
	atomic_init(&g->fd, -1);
	atomic_init(&g->os_last_ms, 0);
	snprintf(g->url, sizeof g->url, "%s", url);
	g->ipc = strncmp(url, "ipc://", 6) == 0;
	if (g->ipc) {
		if (strlen(url + 6) >= sizeof g->pub) {
			free(g);
			return CORRAL_ETOOLONG;
		}
		snprintf(g->pub, sizeof g->pub, "%s", url + 6);
		rc = listen_ipc(g);
	} else {
		rc = start_listener(g, url, &g->l);
		nng_sockaddr na;
		/* Heal onto the same port, even when url said port 0. */
		if (!rc && strncmp(url, "tcp://", 6) == 0 &&
		    nng_listener_get_addr(g->l, NNG_OPT_LOCADDR, &na) == 0) {
			const char *colon = strrchr(url, ':');
			unsigned port = na.s_family == NNG_AF_INET6
			                    ? ntohs(na.s_in6.sa_port)
			                    : ntohs(na.s_in.sa_port);
			if (colon && colon > url + 5)
				snprintf(g->url, sizeof g->url, "%.*s:%u",
				         (int)(colon - url), url, port);
		}
	}
	if (rc) {
		free(g);
		return rc;
	}
	if (uv_timer_init(loop, &g->timer) || uv_async_init(loop, &g->accepted,
	                                                    on_accepted) ||
	    uv_prepare_init(loop, &g->backstop)) {
		/* Without allocation these cannot fail on a valid loop. */
		nng_listener_close(g->l);
		free(g);
		return CORRAL_ESYS;
	}
	g->timer.data = g->accepted.data = g->backstop.data = g;
	g->open_handles = 3;
	uv_unref((uv_handle_t *)&g->accepted);
	uv_unref((uv_handle_t *)&g->timer);
	uv_unref((uv_handle_t *)&g->backstop);
	g->last_look = uv_now(loop);
	if (o->one_peer) {
		/* One worker dials it, once: if that handshake aborts, the
		 * worker is gone and its successor dials a socket of its
		 * own.  Watching would only risk taking a slow handshake on
		 * a loaded machine for a dead listener and cutting it. */
		*out = g;
		return 0;
	}
	uv_prepare_start(&g->backstop, on_backstop);
	if (!g->ipc)
		adopt(g);
	reg_add(g);
	*out = g;
	return 0;
}

void ipc_guard_close(ipc_guard *g)
{
	if (!g)
		return;
	g->closing = 1;
	reg_remove(g); /* the hook wakes it no more */
	uv_close((uv_handle_t *)&g->timer, handle_closed);
	uv_close((uv_handle_t *)&g->accepted, handle_closed);
	uv_close((uv_handle_t *)&g->backstop, handle_closed);
	/* Remove the public path if it is still our socket (a newer
	 * instance may have replaced it). */
	struct stat st;
	if (g->ipc && stat(g->pub, &st) == 0 && st.st_ino == g->ino)
		unlink(g->pub);
}
