/*
 * listen.h - the supervisor's shared listeners: `listen = NAME=URL` parsed,
 * bound once before any worker starts (or adopted from systemd's
 * LISTEN_FDS), handed to every worker as LISTEN_FDS, closed only at exit.
 *
 * URLs:
 *   tcp://127.0.0.1:8080   IPv4 address (0.0.0.0: every IPv4 address)
 *   tcp://[::1]:8080       IPv6 address ([::]: every IPv6 address, v6 only)
 *   HOST *                 (tcp:// then *:8080) every address, IPv6 and
 *                          IPv4 (dual stack)
 *   tcp://localhost:8080   a name, resolved once at start (first address)
 *   unix:/run/app.sock     a unix socket file, mode 0666 (as systemd's
 *                          SocketMode); a stale file is replaced
 *   unix:@name             a Linux abstract unix socket
 * Port 0 picks a free port; the log line "listening: NAME on URL" names it.
 */
#ifndef MASTER_LISTEN_H
#define MASTER_LISTEN_H

#include <stddef.h>
#include <sys/types.h>

#define LISTEN_MAX 64       /* listeners per supervisor */
#define LISTEN_NAME_MAX 64  /* names: 1..63 of [A-Za-z0-9._-] */
#define LISTEN_BACKLOG 4096 /* capped by net.core.somaxconn */

typedef enum listen_kind { LISTEN_TCP, LISTEN_UNIX } listen_kind;

typedef struct listen_addr {
	char name[LISTEN_NAME_MAX];
	listen_kind kind;
	char host[256]; /* tcp: without brackets; "*" = dual stack */
	char port[8];
	char path[108]; /* unix: file path, or "@name" for abstract */
} listen_addr;

/* Parses "NAME=URL".  0, or CORRAL_ECONFIG with err saying what is wrong. */
int listen_parse(const char *spec, listen_addr *out, char *err,
                 size_t errlen);

/* Config helper: checks spec and appends a copy to *list ("" is a no-op,
 * so the key can have an empty default).  0, CORRAL_ECONFIG (bad syntax,
 * name given twice) or CORRAL_ENOMEM, with err filled. */
int listen_add_spec(char ***list, size_t *n, const char *spec, char *err,
                    size_t errlen);

typedef struct listener {
	char name[LISTEN_NAME_MAX];
	int fd;          /* listening, non-blocking, close-on-exec */
	int adopted;     /* handed in through LISTEN_FDS, not bound by us */
	char desc[300];  /* the bound address as a URL, for logs */
	char unlink_path[108]; /* a socket file we created, "" if none */
	dev_t dev;       /* of that file: remove it only if it is ours */
	ino_t ino;
} listener;

typedef struct listen_set {
	listener v[LISTEN_MAX];
	size_t n;
	char fdnames[LISTEN_MAX * LISTEN_NAME_MAX]; /* "a:b", LISTEN_FDNAMES */
} listen_set;

/*
 * Before any worker exists: adopts the sockets of LISTEN_FDS when
 * LISTEN_PID is ours (every one, by its LISTEN_FDNAMES name; a configured
 * name that matches one is not bound again), then binds and listens on
 * every other spec.  Clears LISTEN_* from our environment.  0, or
 * CORRAL_ESYS / CORRAL_ECONFIG with err naming the listener and address;
 * on failure nothing stays open.  Logs one line per listener.
 */
int listen_open(listen_set *ls, char *const *specs, size_t nspecs,
                char *err, size_t errlen);

/* At exit only: closes every listener and removes socket files we made. */
void listen_close(listen_set *ls);

/*
 * A listener outside any set, for the supervisor's own use (the metrics
 * endpoint, `http`): url as in `listen` (tcp://HOST:PORT, unix:/PATH),
 * where a bare HOST:PORT means tcp://HOST:PORT.  With l NULL only checks
 * the syntax.  Else binds: l->fd is listening, non-blocking and
 * close-on-exec, l->desc names it.  0, or CORRAL_ECONFIG / CORRAL_ESYS
 * with err naming name and address.  Release with listen_single_close().
 */
int listen_single(const char *name, const char *url, listener *l,
                  char *err, size_t errlen);
/* Closes l->fd unless it is -1 (set it so once the fd is handed on) and
 * removes the socket file it made. */
void listen_single_close(listener *l);

#endif
