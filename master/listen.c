/*
 * listen.c - see listen.h.
 *
 * The model: one listening socket per `listen` key, bound by the supervisor
 * before any worker exists and shared by every worker through fd
 * inheritance, so that all of them accept from one kernel queue.  A worker
 * that dies takes only the connections it had accepted; what waits in the
 * queue is accepted by the others (or its replacement).  Per-worker
 * SO_REUSEPORT sockets would not do: Linux drops the connections waiting in
 * a reuseport socket's queue when its owner closes it.
 *
 * The supervisor never accepts on these sockets and never closes them while
 * it runs (not on a crash, a restart, a reload or a scale): only
 * listen_close() at exit does.  They are close-on-exec here; proc.c hands
 * them to each worker explicitly as fds 3.. (uv_spawn's stdio entries), so
 * nothing else the supervisor spawns can inherit them by accident.  They are
 * non-blocking, a flag of the open file description that every worker
 * shares (workers accept in their loops).
 *
 * Socket activation (systemd .socket units): when LISTEN_PID is our pid,
 * fds 3 .. 3+LISTEN_FDS-1 are adopted under the names of LISTEN_FDNAMES
 * instead of binding; a configured `listen` of the same name uses the
 * adopted socket (its URL is then only documentation).
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "corral.h"
#include "common/log.h"
#include "master/listen.h"

static int valid_name(const char *s, size_t len)
{
	if (len == 0 || len >= LISTEN_NAME_MAX)
		return 0;
	for (size_t i = 0; i < len; i++)
		if (!isalnum((unsigned char)s[i]) && !strchr("._-", s[i]))
			return 0;
	return 1;
}

static int valid_port(const char *p)
{
	if (!*p || strlen(p) > 5)
		return 0;
	for (const char *q = p; *q; q++)
		if (!isdigit((unsigned char)*q))
			return 0;
	return atoi(p) <= 65535;
}

int listen_parse(const char *spec, listen_addr *out, char *err,
                 size_t errlen)
{
	const char *eq = strchr(spec, '=');
	memset(out, 0, sizeof *out);
	if (!eq || !valid_name(spec, (size_t)(eq - spec))) {
		snprintf(err, errlen, "bad listen '%.64s': expected NAME=URL with "
		         "NAME 1-63 of [A-Za-z0-9._-], e.g. "
		         "http=tcp://0.0.0.0:8080", spec);
		return CORRAL_ECONFIG;
	}
	memcpy(out->name, spec, (size_t)(eq - spec));
	const char *url = eq + 1;
	if (strncmp(url, "unix:", 5) == 0) {
		const char *path = url + 5;
		if (strncmp(path, "//", 2) == 0)
			path += 2; /* unix:///run/x.sock */
		out->kind = LISTEN_UNIX;
		if (!*path || (path[0] != '/' && path[0] != '@') ||
		    strlen(path) >= sizeof out->path) {
			snprintf(err, errlen, "bad listen '%.64s': expected "
			         "unix:/absolute/path (under 108 bytes) or "
			         "unix:@abstract", spec);
			return CORRAL_ECONFIG;
		}
		snprintf(out->path, sizeof out->path, "%s", path);
		return 0;
	}
	if (strncmp(url, "tcp://", 6) != 0) {
		snprintf(err, errlen, "bad listen '%.64s': the URL must start with "
		         "tcp:// or unix:", spec);
		return CORRAL_ECONFIG;
	}
	const char *host = url + 6, *colon;
	size_t hlen;
	if (host[0] == '[') {
		const char *rb = strchr(host, ']');
		if (!rb || rb[1] != ':') {
			snprintf(err, errlen, "bad listen '%.64s': expected "
			         "tcp://[IPV6]:PORT", spec);
			return CORRAL_ECONFIG;
		}
		host++;
		hlen = (size_t)(rb - host);
		colon = rb + 1;
		struct in6_addr a6;
		char tmp[64];
		if (hlen >= sizeof tmp ||
		    (memcpy(tmp, host, hlen), tmp[hlen] = '\0',
		     inet_pton(AF_INET6, tmp, &a6) != 1)) {
			snprintf(err, errlen, "bad listen '%.64s': '%.*s' is not "
			         "an IPv6 address", spec, (int)hlen, host);
			return CORRAL_ECONFIG;
		}
	} else {
		colon = strrchr(host, ':');
		if (!colon || memchr(host, ':', (size_t)(colon - host))) {
			snprintf(err, errlen, "bad listen '%.64s': expected "
			         "tcp://HOST:PORT (IPv6 in brackets: "
			         "tcp://[::1]:8080)", spec);
			return CORRAL_ECONFIG;
		}
		hlen = (size_t)(colon - host);
	}
	if (hlen == 0 || hlen >= sizeof out->host || !valid_port(colon + 1)) {
		snprintf(err, errlen, "bad listen '%.64s': expected tcp://HOST:PORT "
		         "with PORT 0..65535 (HOST * for every address)", spec);
		return CORRAL_ECONFIG;
	}
	out->kind = LISTEN_TCP;
	memcpy(out->host, host, hlen);
	snprintf(out->port, sizeof out->port, "%s", colon + 1);
	return 0;
}

int listen_add_spec(char ***list, size_t *n, const char *spec, char *err,
                    size_t errlen)
{
	listen_addr a, b;
	if (!*spec)
		return 0;
	int rc = listen_parse(spec, &a, err, errlen);
	if (rc)
		return rc;
	for (size_t i = 0; i < *n; i++) {
		if (listen_parse((*list)[i], &b, err, errlen) == 0 &&
		    strcmp(a.name, b.name) == 0) {
			snprintf(err, errlen, "listener '%s' is given twice",
			         a.name);
			return CORRAL_ECONFIG;
		}
	}
	if (*n >= LISTEN_MAX) {
		snprintf(err, errlen, "more than %d listeners", LISTEN_MAX);
		return CORRAL_ECONFIG;
	}
	char **nl = realloc(*list, (*n + 1) * sizeof *nl);
	char *copy = strdup(spec);
	if (nl)
		*list = nl;
	if (!nl || !copy) {
		free(copy);
		snprintf(err, errlen, "out of memory");
		return CORRAL_ENOMEM;
	}
	nl[(*n)++] = copy;
	return 0;
}

/* "tcp://1.2.3.4:80", "tcp://[::1]:80" or "unix:/path" of a bound socket. */
static void describe(int fd, char *buf, size_t len)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof ss;
	char host[INET6_ADDRSTRLEN];
	if (getsockname(fd, (struct sockaddr *)&ss, &sl) != 0) {
		snprintf(buf, len, "fd %d", fd);
		return;
	}
	if (ss.ss_family == AF_INET) {
		struct sockaddr_in *a = (struct sockaddr_in *)&ss;
		inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
		snprintf(buf, len, "tcp://%s:%u", host, ntohs(a->sin_port));
	} else if (ss.ss_family == AF_INET6) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
		inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
		snprintf(buf, len, "tcp://[%s]:%u", host, ntohs(a->sin6_port));
	} else if (ss.ss_family == AF_UNIX) {
		struct sockaddr_un *a = (struct sockaddr_un *)&ss;
		size_t plen = sl > offsetof(struct sockaddr_un, sun_path)
		                  ? sl - offsetof(struct sockaddr_un, sun_path)
		                  : 0;
		if (plen && a->sun_path[0] == '\0')
			snprintf(buf, len, "unix:@%.*s", (int)plen - 1,
			         a->sun_path + 1);
		else
			snprintf(buf, len, "unix:%.*s", (int)plen, a->sun_path);
	} else {
		snprintf(buf, len, "fd %d (family %d)", fd, ss.ss_family);
	}
}

static int bind_tcp(listener *l, const listen_addr *a, char *err,
                    size_t errlen)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM,
	                         .ai_flags = AI_PASSIVE | AI_NUMERICSERV},
	                *res = NULL;
	int dual = strcmp(a->host, "*") == 0;
	int e = 0, gai;
	if (dual) {
		/* Every address: [::] without V6ONLY, or 0.0.0.0 where the
		 * kernel has no IPv6. */
		hints.ai_flags |= AI_NUMERICHOST;
		gai = getaddrinfo("::", a->port, &hints, &res);
		if (gai == 0 && res) {
			int fd = socket(AF_INET6, SOCK_STREAM | SOCK_NONBLOCK |
			                SOCK_CLOEXEC, 0);
			if (fd < 0 && errno == EAFNOSUPPORT) {
				freeaddrinfo(res);
				res = NULL;
				gai = getaddrinfo("0.0.0.0", a->port, &hints,
				                  &res);
			} else if (fd >= 0) {
				close(fd);
			}
		}
	} else {
		gai = getaddrinfo(a->host, a->port, &hints, &res);
	}
	if (gai != 0) {
		snprintf(err, errlen, "cannot listen on tcp://%s%s%s:%s (%s): %s",
		         strchr(a->host, ':') ? "[" : "", a->host,
		         strchr(a->host, ':') ? "]" : "", a->port, a->name,
		         gai_strerror(gai));
		return CORRAL_ECONFIG;
	}
	for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
		int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK |
		                SOCK_CLOEXEC, ai->ai_protocol);
		if (fd < 0) {
			e = errno;
			continue;
		}
		int one = 1, v6only = !dual;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
		if (ai->ai_family == AF_INET6)
			setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only,
			           sizeof v6only);
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 &&
		    listen(fd, LISTEN_BACKLOG) == 0) {
			l->fd = fd;
			freeaddrinfo(res);
			return 0;
		}
		e = errno;
		close(fd);
	}
	freeaddrinfo(res);
	snprintf(err, errlen, "cannot listen on tcp://%s%s%s:%s (%s): %s",
	         strchr(a->host, ':') ? "[" : "", a->host,
	         strchr(a->host, ':') ? "]" : "", a->port, a->name,
	         strerror(e));
	return CORRAL_ESYS;
}

/* 1 if something accepts connections on the unix socket at sa. */
static int unix_alive(const struct sockaddr_un *sa, socklen_t sl)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return 1; /* cannot tell: do not remove it */
	int alive = connect(fd, (const struct sockaddr *)sa, sl) == 0 ||
	            errno != ECONNREFUSED;
	close(fd);
	return alive;
}

static int bind_unix(listener *l, const listen_addr *a, char *err,
                     size_t errlen)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	socklen_t sl;
	int abstract = a->path[0] == '@';
	size_t plen = strlen(a->path);
	memcpy(sa.sun_path, a->path, plen);
	if (abstract) {
		sa.sun_path[0] = '\0';
		sl = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + plen);
	} else {
		sl = (socklen_t)sizeof sa;
	}
	struct stat st;
	if (!abstract && lstat(a->path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			snprintf(err, errlen, "cannot listen on unix:%s (%s): the "
			         "path exists and is not a socket", a->path,
			         a->name);
			return CORRAL_ESYS;
		}
		if (unix_alive(&sa, sl)) {
			snprintf(err, errlen, "cannot listen on unix:%s (%s): "
			         "another process is listening there", a->path,
			         a->name);
			return CORRAL_ESYS;
		}
		unlink(a->path); /* stale: left by a process that died */
	}
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		goto fail;
	if (bind(fd, (struct sockaddr *)&sa, sl) != 0)
		goto fail;
	if (!abstract) {
		/* Connecting needs write permission: 0666, like systemd's
		 * SocketMode default; restrict access with the directory. */
		if (chmod(a->path, 0666) != 0 || stat(a->path, &st) != 0)
			goto fail_unlink;
		snprintf(l->unlink_path, sizeof l->unlink_path, "%s", a->path);
		l->dev = st.st_dev;
		l->ino = st.st_ino;
	}
	if (listen(fd, LISTEN_BACKLOG) != 0)
		goto fail_unlink;
	l->fd = fd;
	return 0;
fail_unlink:
	if (!abstract) {
		int e = errno;
		unlink(a->path);
		errno = e;
	}
	l->unlink_path[0] = '\0';
fail:
	snprintf(err, errlen, "cannot listen on unix:%s (%s): %s", a->path,
	         a->name, strerror(errno));
	if (fd >= 0)
		close(fd);
	return CORRAL_ESYS;
}

/* Takes fds 3.. from systemd.  Leaves LISTEN_* unset either way. */
static int adopt(listen_set *ls, char *err, size_t errlen)
{
	const char *spid = getenv("LISTEN_PID"), *sfds = getenv("LISTEN_FDS");
	const char *snames = getenv("LISTEN_FDNAMES");
	int rc = 0;
	if (!sfds)
		goto out;
	if (!spid || strtol(spid, NULL, 10) != (long)getpid()) {
		log_msg("LISTEN_FDS is meant for pid %s, not for us (pid %ld): "
		        "ignored", spid ? spid : "(unset)", (long)getpid());
		goto out;
	}
	char *end;
	long n = strtol(sfds, &end, 10);
	if (*end || n < 0 || n > LISTEN_MAX) {
		snprintf(err, errlen, "LISTEN_FDS='%s': expected 0..%d", sfds,
		         LISTEN_MAX);
		rc = CORRAL_ECONFIG;
		goto out;
	}
	const char *np = snames;
	for (long i = 0; i < n; i++) {
		listener *l = &ls->v[ls->n];
		int fd = 3 + (int)i, acc = 0, type = 0;
		socklen_t ol = sizeof acc;
		memset(l, 0, sizeof *l);
		l->fd = -1;
		/* systemd's default name when a unit sets none */
		const char *name = "unknown";
		size_t nl = strlen(name);
		if (np) {
			const char *colon = strchr(np, ':');
			nl = colon ? (size_t)(colon - np) : strlen(np);
			name = np;
			np = colon ? colon + 1 : np + nl;
		}
		if (!valid_name(name, nl)) {
			snprintf(err, errlen, "LISTEN_FDNAMES: fd %d has the name "
			         "'%.*s': expected 1-63 of [A-Za-z0-9._-]", fd,
			         (int)nl, name);
			rc = CORRAL_ECONFIG;
			goto out;
		}
		memcpy(l->name, name, nl);
		for (size_t j = 0; j < ls->n; j++) {
			if (strcmp(ls->v[j].name, l->name) == 0) {
				snprintf(err, errlen, "LISTEN_FDNAMES: the name "
				         "'%s' is given to fds %d and %d",
				         l->name, ls->v[j].fd, fd);
				rc = CORRAL_ECONFIG;
				goto out;
			}
		}
		ol = sizeof acc;
		if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &ol) != 0 ||
		    !acc ||
		    (ol = sizeof type,
		     getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &ol) != 0) ||
		    type != SOCK_STREAM) {
			snprintf(err, errlen, "LISTEN_FDS: fd %d (%s) is not a "
			         "listening stream socket (corral takes "
			         "ListenStream= sockets with Accept=no)", fd,
			         l->name);
			rc = CORRAL_ECONFIG;
			goto out;
		}
		int fl = fcntl(fd, F_GETFD);
		int sfl = fcntl(fd, F_GETFL);
		if (fl < 0 || fcntl(fd, F_SETFD, fl | FD_CLOEXEC) != 0 ||
		    sfl < 0 || fcntl(fd, F_SETFL, sfl | O_NONBLOCK) != 0) {
			snprintf(err, errlen, "LISTEN_FDS: fd %d (%s): %s", fd,
			         l->name, strerror(errno));
			rc = CORRAL_ESYS;
			goto out;
		}
		l->fd = fd;
		l->adopted = 1;
		describe(fd, l->desc, sizeof l->desc);
		ls->n++;
	}
out:
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
	return rc;
}

int listen_open(listen_set *ls, char *const *specs, size_t nspecs,
                char *err, size_t errlen)
{
	memset(ls, 0, sizeof *ls);
	int rc = adopt(ls, err, errlen);
	if (rc)
		goto fail;
	size_t nadopted = ls->n;
	for (size_t i = 0; i < nadopted; i++)
		log_msg("listening: %s on %s (fd %d, adopted from LISTEN_FDS)",
		        ls->v[i].name, ls->v[i].desc, ls->v[i].fd);
	for (size_t i = 0; i < nspecs; i++) {
		listen_addr a;
		if ((rc = listen_parse(specs[i], &a, err, errlen)))
			goto fail;
		size_t j;
		for (j = 0; j < nadopted; j++)
			if (strcmp(ls->v[j].name, a.name) == 0)
				break;
		if (j < nadopted) {
			log_msg("listener %s: using the adopted socket (%s) "
			        "instead of binding %s", a.name, ls->v[j].desc,
			        strchr(specs[i], '=') + 1);
			continue;
		}
		if (ls->n == LISTEN_MAX) {
			snprintf(err, errlen, "more than %d listeners",
			         LISTEN_MAX);
			rc = CORRAL_ECONFIG;
			goto fail;
		}
		listener *l = &ls->v[ls->n];
		memset(l, 0, sizeof *l);
		l->fd = -1;
		snprintf(l->name, sizeof l->name, "%s", a.name);
		rc = a.kind == LISTEN_TCP ? bind_tcp(l, &a, err, errlen)
		                          : bind_unix(l, &a, err, errlen);
		if (rc)
			goto fail;
		describe(l->fd, l->desc, sizeof l->desc);
		ls->n++;
		log_msg("listening: %s on %s (fd %d)", l->name, l->desc, l->fd);
	}
	size_t off = 0;
	for (size_t i = 0; i < ls->n; i++)
		off += (size_t)snprintf(ls->fdnames + off,
		                        sizeof ls->fdnames - off, "%s%s",
		                        i ? ":" : "", ls->v[i].name);
	return 0;
fail:
	listen_close(ls);
	return rc;
}

void listen_close(listen_set *ls)
{
	for (size_t i = 0; i < ls->n; i++) {
		listener *l = &ls->v[i];
		struct stat st;
		/* Remove the file only if it is still the one we bound. */
		if (l->unlink_path[0] && lstat(l->unlink_path, &st) == 0 &&
		    st.st_dev == l->dev && st.st_ino == l->ino)
			unlink(l->unlink_path);
		if (l->fd >= 0)
			close(l->fd);
		l->fd = -1;
	}
	ls->n = 0;
	ls->fdnames[0] = '\0';
}

int listen_single(const char *name, const char *url, listener *l,
                  char *err, size_t errlen)
{
	char spec[LISTEN_NAME_MAX + 320];
	listen_addr a;
	int bare = !strstr(url, "://") && strncmp(url, "unix:", 5) != 0;
	if ((size_t)snprintf(spec, sizeof spec, "%s=%s%s", name,
	                     bare ? "tcp://" : "", url) >= sizeof spec) {
		snprintf(err, errlen, "bad %s address '%.40s...': too long", name,
		         url);
		return CORRAL_ECONFIG;
	}
	int rc = listen_parse(spec, &a, err, errlen);
	if (rc || !l)
		return rc;
	memset(l, 0, sizeof *l);
	l->fd = -1;
	snprintf(l->name, sizeof l->name, "%s", a.name);
	rc = a.kind == LISTEN_TCP ? bind_tcp(l, &a, err, errlen)
	                          : bind_unix(l, &a, err, errlen);
	if (rc == 0)
		describe(l->fd, l->desc, sizeof l->desc);
	return rc;
}

void listen_single_close(listener *l)
{
	struct stat st;
	if (l->unlink_path[0] && lstat(l->unlink_path, &st) == 0 &&
	    st.st_dev == l->dev && st.st_ino == l->ino)
		unlink(l->unlink_path);
	if (l->fd >= 0)
		close(l->fd);
	l->fd = -1;
	l->unlink_path[0] = '\0';
}
