/* harness.c - see harness.h. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>

#include "tests/harness.h"

uint64_t h_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

double h_now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

const char *h_path(const char *rel, char *buf, size_t len)
{
	const char *b = getenv("CORRAL_BUILDDIR");
	snprintf(buf, len, "%s/%s", b && *b ? b : ".", rel);
	return buf;
}

pid_t h_line_pid(const char *line)
{
	const char *p = strstr(line, " pid ");
	if (!p || (!strstr(line, "slot ") && !strstr(line, "standby ")))
		return 0;
	return (pid_t)atol(p + 5);
}

static void note_pid(harness *h, pid_t pid)
{
	if (pid <= 0 || pid == h->sup)
		return;
	for (int i = 0; i < h->npids; i++)
		if (h->pids[i] == pid)
			return;
	if (h->npids < H_MAX_PIDS)
		h->pids[h->npids++] = pid;
}

/* Appends what the pipe has, waiting up to timeout_ms.  0 on data or
 * timeout, -1 at EOF. */
static int fill(harness *h, int timeout_ms)
{
	if (h->eof)
		return -1;
	struct pollfd pfd = {.fd = h->errfd, .events = POLLIN};
	int r = poll(&pfd, 1, timeout_ms);
	if (r <= 0)
		return 0;
	if (h->logcap - h->loglen < 65536) {
		size_t nc = h->logcap ? h->logcap * 2 : 1 << 20;
		char *nl = realloc(h->log, nc);
		if (!nl)
			return -1;
		h->log = nl;
		h->logcap = nc;
	}
	ssize_t n = read(h->errfd, h->log + h->loglen, h->logcap - h->loglen - 1);
	if (n <= 0) {
		h->eof = 1;
		return -1;
	}
	/* Note worker pids in every new complete line. */
	size_t start = h->loglen;
	while (start > 0 && h->log[start - 1] != '\n')
		start--;
	h->loglen += (size_t)n;
	h->log[h->loglen] = '\0';
	for (size_t i = start; i < h->loglen;) {
		char *nl = memchr(h->log + i, '\n', h->loglen - i);
		if (!nl)
			break;
		*nl = '\0';
		note_pid(h, h_line_pid(h->log + i));
		*nl = '\n';
		i = (size_t)(nl - h->log) + 1;
	}
	return 0;
}

/* True if line contains every '|'-separated part of needles. */
static int line_matches(const char *line, const char *needles)
{
	char part[256];
	for (const char *n = needles;;) {
		const char *bar = strchr(n, '|');
		size_t len = bar ? (size_t)(bar - n) : strlen(n);
		if (len >= sizeof part)
			len = sizeof part - 1;
		memcpy(part, n, len);
		part[len] = '\0';
		if (!strstr(line, part))
			return 0;
		if (!bar)
			return 1;
		n = bar + 1;
	}
}

const char *h_expect(harness *h, const char *needles, int timeout_ms)
{
	static char line[4096];
	uint64_t deadline = h_now_ms() + (uint64_t)timeout_ms;
	for (;;) {
		while (h->pos < h->loglen) {
			char *nl = memchr(h->log + h->pos, '\n',
			                  h->loglen - h->pos);
			if (!nl)
				break;
			size_t len = (size_t)(nl - (h->log + h->pos));
			if (len >= sizeof line)
				len = sizeof line - 1;
			memcpy(line, h->log + h->pos, len);
			line[len] = '\0';
			h->pos = (size_t)(nl - h->log) + 1;
			if (line_matches(line, needles))
				return line;
		}
		uint64_t now = h_now_ms();
		if (now >= deadline || fill(h, (int)(deadline - now)) < 0)
			break;
	}
	if (!h->quiet) {
		fprintf(stderr, "harness: timed out waiting for '%s'; log:\n",
		        needles);
		h_dump(h);
	}
	return NULL;
}

int h_read_log(harness *h, int timeout_ms)
{
	size_t before;
	do {
		before = h->loglen;
		if (fill(h, timeout_ms) < 0)
			return -1;
		timeout_ms = 0;
	} while (h->loglen != before);
	return 0;
}

int h_count(harness *h, const char *needle)
{
	int n = 0;
	for (const char *p = h->log; p && (p = strstr(p, needle)); p++)
		n++;
	return n;
}

void h_dump(harness *h)
{
	if (h->log)
		fwrite(h->log, 1, h->loglen, stderr);
}

int h_spawn(harness *h, const char *const *argv)
{
	int pfd[2];
	if (pipe2(pfd, O_CLOEXEC) != 0)
		return -1;
	pid_t pid = fork();
	if (pid < 0) {
		close(pfd[0]);
		close(pfd[1]);
		return -1;
	}
	if (pid == 0) {
		dup2(pfd[1], 1);
		dup2(pfd[1], 2);
		/* Hand it nothing but stdio, so any other descriptor one of
		 * its workers holds was opened (and leaked) by it. */
		close_range(3, ~0u, 0);
		execvp(argv[0], (char *const *)argv);
		fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	close(pfd[1]);
	h->sup = pid;
	h->errfd = pfd[0];
	return 0;
}

int h_prepare(harness *h)
{
	memset(h, 0, sizeof *h);
	h->errfd = -1;
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	snprintf(h->dir, sizeof h->dir, "/tmp/corral-t-XXXXXX");
	if (!mkdtemp(h->dir))
		return -1;
	snprintf(h->rundir, sizeof h->rundir, "%s/run", h->dir);
	return 0;
}

int h_start(harness *h, const char *const *args)
{
	char bin[4096];
	const char *argv[64];
	int n = 0;

	if (!h->dir[0] && h_prepare(h) != 0)
		return -1;
	const char *env = getenv("CORRAL_BIN");
	argv[n++] = env && *env ? env : h_path("corral", bin, sizeof bin);
	argv[n++] = "--rundir";
	argv[n++] = h->rundir;
	for (int i = 0; args && args[i] && n < 62; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	return h_spawn(h, argv);
}

static int decode_status(int st)
{
	if (WIFEXITED(st))
		return WEXITSTATUS(st);
	if (WIFSIGNALED(st))
		return 128 + WTERMSIG(st);
	return -1;
}

int h_wait_exit(harness *h, int timeout_ms)
{
	uint64_t deadline = h_now_ms() + (uint64_t)timeout_ms;
	if (!h->sup)
		return decode_status(h->sup_status);
	for (;;) {
		int st;
		pid_t r = waitpid(h->sup, &st, WNOHANG);
		if (r == h->sup) {
			h->sup = 0;
			h->sup_status = st;
			while (fill(h, 200) == 0 && !h->eof)
				;
			/* A sanitizer's report is the reason for whatever
			 * exit code follows: show it. */
			if (h->log && (strstr(h->log, "Sanitizer") ||
			               strstr(h->log, "runtime error:")))
				h_dump(h);
			return decode_status(st);
		}
		uint64_t now = h_now_ms();
		if (now >= deadline)
			return -1;
		/* The log pipe hits EOF when the supervisor exits; until
		 * then, reading it is how we wait. */
		if (fill(h, (int)(deadline - now < 20 ? deadline - now : 20)) <
		    0) {
			struct timespec ts = {0, 1000000};
			nanosleep(&ts, NULL);
		}
	}
}

int h_wait_pid_gone(pid_t pid, int timeout_ms)
{
	uint64_t deadline = h_now_ms() + (uint64_t)timeout_ms;
	int pfd = (int)syscall(SYS_pidfd_open, pid, 0);
	for (;;) {
		int st;
		pid_t r = waitpid(pid, &st, WNOHANG);
		if (r == pid || (r < 0 && errno == ECHILD && kill(pid, 0) != 0)) {
			if (pfd >= 0)
				close(pfd);
			return 0;
		}
		uint64_t now = h_now_ms();
		if (now >= deadline) {
			if (pfd >= 0)
				close(pfd);
			return -1;
		}
		if (pfd >= 0) {
			/* Readable when the process exits; a zombie (someone
			 * else's to reap) stays readable: then poll gently. */
			struct pollfd p = {.fd = pfd, .events = POLLIN};
			if (poll(&p, 1, (int)(deadline - now)) > 0) {
				struct timespec ts = {0, 2000000};
				nanosleep(&ts, NULL);
			}
		} else {
			struct timespec ts = {0, 2000000};
			nanosleep(&ts, NULL);
		}
	}
}

int h_sh(char *out, size_t len, const char *fmt, ...)
{
	char cmd[8192];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(cmd, sizeof cmd, fmt, ap);
	va_end(ap);
	FILE *f = popen(cmd, "r");
	if (!f)
		return -1;
	size_t n = out ? fread(out, 1, len - 1, f) : 0;
	if (out)
		out[n] = '\0';
	else {
		char sink[4096];
		while (fread(sink, 1, sizeof sink, f) > 0)
			;
	}
	int st = pclose(f);
	return decode_status(st);
}

/* The parent pid of pid from /proc, or -1. */
static pid_t ppid_of(pid_t pid)
{
	char path[64], buf[512];
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return -1;
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';
	char *rp = strrchr(buf, ')'); /* comm may hold spaces */
	int ppid;
	if (!rp || sscanf(rp + 1, " %*c %d", &ppid) != 1)
		return -1;
	return (pid_t)ppid;
}

void h_cleanup(harness *h)
{
	if (h->sup) {
		kill(h->sup, SIGKILL);
		waitpid(h->sup, &h->sup_status, 0);
		h->sup = 0;
	}
	/* The supervisor is reaped, so its live children are ours now;
	 * anything else with a remembered pid is a stranger reusing it. */
	for (int i = 0; i < h->npids; i++) {
		if (ppid_of(h->pids[i]) == getpid() &&
		    kill(h->pids[i], SIGKILL) == 0)
			h_wait_pid_gone(h->pids[i], 2000);
	}
	h->npids = 0;
	/* Reap anything else that was reparented to us. */
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;
	if (h->errfd >= 0) {
		close(h->errfd);
		h->errfd = -1;
	}
	/* CORRAL_TEST_LOG=1: the supervisor's log of every test, for
	 * whoever is chasing a failure. */
	const char *dump = getenv("CORRAL_TEST_LOG");
	if (dump && *dump == '1')
		h_dump(h);
	if (h->dir[0]) {
		char cmd[128];
		snprintf(cmd, sizeof cmd, "rm -rf '%s'", h->dir);
		if (system(cmd) != 0)
			fprintf(stderr, "harness: could not remove %s\n", h->dir);
		h->dir[0] = '\0';
	}
	free(h->log);
	h->log = NULL;
	h->loglen = h->logcap = h->pos = 0;
	if (h->evsock_open) {
		nng_close(h->evsock);
		h->evsock_open = 0;
		h->ev_out = 0;
	}
	free(h->events);
	h->events = NULL;
	h->nevents = h->capevents = h->evpos = 0;
}

/* ---- events ---- */

static int ev_matches(const ipc_event *e, const char *filter)
{
	char term[256];
	const char *p = filter;
	while (*p) {
		while (*p == ' ')
			p++;
		if (!*p)
			break;
		if (strncmp(p, "why~", 4) == 0)
			return strstr(e->why, p + 4) != NULL;
		size_t n = strcspn(p, " ");
		if (n >= sizeof term)
			n = sizeof term - 1;
		memcpy(term, p, n);
		term[n] = '\0';
		p += n;
		char *eq = strchr(term, '=');
		if (!eq)
			return 0;
		*eq = '\0';
		const char *k = term, *v = eq + 1;
		if (strcmp(k, "kind") == 0 ? strcmp(e->kind, v) != 0
		    : strcmp(k, "from") == 0 ? strcmp(e->from, v) != 0
		    : strcmp(k, "to") == 0 ? strcmp(e->to, v) != 0
		    : strcmp(k, "slot") == 0 ? e->slot != atoi(v)
		    : strcmp(k, "pid") == 0 ? e->pid != atoll(v)
		    : 1)
			return 0;
	}
	return 1;
}

static int ev_open(harness *h)
{
	char url[256];
	if (h->evsock_open)
		return 0;
	if (nng_req0_open(&h->evsock) != 0)
		return -1;
	snprintf(url, sizeof url, "ipc://%s/control", h->rundir);
	nng_socket_set_ms(h->evsock, NNG_OPT_REQ_RESENDTIME,
	                  NNG_DURATION_INFINITE);
	nng_socket_set_size(h->evsock, NNG_OPT_RECVMAXSZ, IPC_MAX_CTL_FRAME);
	/* In the background: the supervisor may not listen yet. */
	nng_socket_set_ms(h->evsock, NNG_OPT_RECONNMINT, 5);
	nng_socket_set_ms(h->evsock, NNG_OPT_RECONNMAXT, 20);
	if (nng_dial(h->evsock, url, NULL, NNG_FLAG_NONBLOCK) != 0) {
		nng_close(h->evsock);
		return -1;
	}
	h->evsock_open = 1;
	return 0;
}

static void ev_append(harness *h, const ipc_event *e)
{
	if (h->nevents && e->seq <= h->events[h->nevents - 1].seq)
		return; /* already have it */
	if (h->nevents == h->capevents) {
		unsigned nc = h->capevents ? h->capevents * 2 : 256;
		ipc_event *ne = realloc(h->events, nc * sizeof *ne);
		if (!ne)
			return;
		h->events = ne;
		h->capevents = nc;
	}
	h->events[h->nevents++] = *e;
	if (e->slot >= 0)
		note_pid(h, (pid_t)e->pid);
}

/* Keeps a long-poll out, so that the supervisor answers with every event
 * as it happens -- including the last ones before it exits. */
static void ev_send(harness *h)
{
	if (h->ev_out || ev_open(h) != 0)
		return;
	uint64_t since = h->nevents ? h->events[h->nevents - 1].seq : 0;
	ipc_events_req q = {.since = since, .wait_ms = 60000,
	                    .max = IPC_MAX_EVENTS};
	nng_msg *m = NULL;
	if (ipc_pack_events_req(&m, &q) != 0)
		return;
	/* Queued until the dial connects (a REQ holds one request). */
	if (nng_sendmsg(h->evsock, m, 0) != 0) {
		nng_msg_free(m);
		return;
	}
	h->ev_out = 1;
}

/* The long-poll's answer: its events appended, the next one sent.  The
 * number of events (maybe 0), or -1 for a bad reply. */
static int ev_take(harness *h, nng_msg *r)
{
	ipc_frame f;
	ipc_events ev;
	h->ev_out = 0;
	int rc = ipc_decode_msg(r, IPC_MAX_CTL_FRAME, &f);
	if (rc)
		return -1;
	rc = ipc_unpack_events(&f, &ev);
	ipc_frame_fini(&f);
	if (rc)
		return -1;
	int n = (int)ev.n;
	for (uint32_t i = 0; i < ev.n; i++)
		ev_append(h, &ev.ev[i]);
	ipc_events_free(&ev);
	ev_send(h);
	return n;
}

/* Waits up to wait_ms for the long-poll's answer, draining the log pipe
 * meanwhile.  The number of events it brought (maybe 0), or -1 when none
 * came. */
static int ev_fetch(harness *h, int wait_ms)
{
	ev_send(h);
	if (!h->ev_out)
		return -1;
	int rfd = -1;
	nng_socket_get_int(h->evsock, NNG_OPT_RECVFD, &rfd);
	uint64_t deadline = h_now_ms() + (uint64_t)wait_ms;
	for (;;) {
		nng_msg *r = NULL;
		int rv = nng_recvmsg(h->evsock, &r, NNG_FLAG_NONBLOCK);
		if (rv == 0)
			return ev_take(h, r);
		if (rv != NNG_EAGAIN) {
			/* The connection it went out on closed (the
			 * supervisor healed its listener, nng#1518): ask
			 * again on the next one -- the same since, so
			 * nothing is missed or repeated. */
			h->ev_out = 0;
			ev_send(h);
			if (!h->ev_out)
				return -1;
		}
		uint64_t now = h_now_ms();
		if (now >= deadline)
			return -1;
		struct pollfd p[2] = {{.fd = rfd, .events = POLLIN},
		                      {.fd = h->eof ? -1 : h->errfd,
		                       .events = POLLIN}};
		if (poll(p, 2, (int)(deadline - now)) > 0 && p[1].revents)
			if (fill(h, 0) < 0 && !h->sup)
				return -1;
	}
}

static void ev_dump(harness *h)
{
	for (unsigned i = 0; i < h->nevents; i++) {
		const ipc_event *e = &h->events[i];
		fprintf(stderr, "event %llu: %s slot=%d pid=%lld %s -> %s: %s\n",
		        (unsigned long long)e->seq, e->kind, e->slot,
		        (long long)e->pid, e->from, e->to, e->why);
	}
}

const ipc_event *h_event(harness *h, const char *filter, int timeout_ms)
{
	static ipc_event found;
	uint64_t deadline = h_now_ms() + (uint64_t)timeout_ms;
	for (;;) {
		for (; h->evpos < h->nevents; h->evpos++)
			if (ev_matches(&h->events[h->evpos], filter)) {
				found = h->events[h->evpos++];
				return &found;
			}
		uint64_t now = h_now_ms();
		if (now >= deadline)
			break;
		/* Its log at EOF and no answer: the supervisor is gone, and
		 * with it whatever it had not handed out yet. */
		if (ev_fetch(h, (int)(deadline - now)) < 0 && h->eof)
			break;
	}
	if (!h->quiet) {
		fprintf(stderr, "harness: %s waiting for event '%s'; "
		        "log and events:\n",
		        h->eof ? "corral exited" : "timed out", filter);
		h_dump(h);
		ev_dump(h);
	}
	return NULL;
}

/* Everything the supervisor has logged by now: a round trip of its own
 * (the long-poll's answer may still be on its way).  -1 if none came. */
static int ev_snapshot(harness *h)
{
	char url[256];
	nng_socket s;
	int got = -1;
	snprintf(url, sizeof url, "ipc://%s/control", h->rundir);
	if (nng_req0_open(&s) != 0)
		return -1;
	nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, 5000);
	nng_socket_set_size(s, NNG_OPT_RECVMAXSZ, IPC_MAX_CTL_FRAME);
	if (nng_dial(s, url, NULL, 0) == 0) {
		for (;;) {
			uint64_t since = h->nevents
			                     ? h->events[h->nevents - 1].seq
			                     : 0;
			ipc_events_req q = {.since = since, .wait_ms = 0,
			                    .max = IPC_MAX_EVENTS};
			nng_msg *m = NULL, *r = NULL;
			if (ipc_pack_events_req(&m, &q) != 0)
				break;
			if (nng_sendmsg(s, m, 0) != 0) {
				nng_msg_free(m);
				break;
			}
			if (nng_recvmsg(s, &r, 0) != 0)
				break;
			ipc_frame f;
			ipc_events ev;
			if (ipc_decode_msg(r, IPC_MAX_CTL_FRAME, &f) != 0)
				break;
			int rc = ipc_unpack_events(&f, &ev);
			ipc_frame_fini(&f);
			if (rc)
				break;
			for (uint32_t i = 0; i < ev.n; i++)
				ev_append(h, &ev.ev[i]);
			got = (got < 0 ? 0 : got) + (int)ev.n;
			int more = ev.n == IPC_MAX_EVENTS;
			ipc_events_free(&ev);
			if (!more)
				break;
		}
	}
	nng_close(s);
	return got;
}

int h_event_count(harness *h, const char *filter)
{
	/* Everything it has now (once it has exited: what we read). */
	if (ev_snapshot(h) < 0)
		while (ev_fetch(h, 0) > 0)
			;
	int n = 0;
	for (unsigned i = 0; i < h->nevents; i++)
		n += ev_matches(&h->events[i], filter);
	return n;
}

const ipc_event *h_event_nth(harness *h, const char *filter, int i)
{
	for (unsigned k = 0; k < h->nevents; k++)
		if (ev_matches(&h->events[k], filter) && i-- == 0)
			return &h->events[k];
	return NULL;
}

/* ---- state changes read back from the log (see harness.h) ---- */

static int is_state(const char *kind, const char *st)
{
	static const char *const slot_states[] = {
		"spawning", "starting", "running", "stopping", "stopped",
		"exited", "backoff", "failed", NULL};
	static const char *const sup_states[] = {
		"starting", "running", "draining", "stopping", "done", NULL};
	const char *const *t = strcmp(kind, "slot") == 0 ? slot_states
	                                                 : sup_states;
	for (; *t; t++)
		if (strcmp(*t, st) == 0)
			return 1;
	return 0;
}

/* Parses one log line (NUL-terminated) into e if it records a state
 * change; 1 if it does. */
static int log_line_event(const char *line, ipc_event *e)
{
	/* "[HH:MM:SS.mmm ]corral: " */
	const char *p = strstr(line, "corral: ");
	if (!p || p - line > 16)
		return 0;
	p += 8;
	memset(e, 0, sizeof *e);
	int slot, n = 0;
	long long pid;
	char from[sizeof e->from], to[sizeof e->to];
	const char *why;
	size_t whylen;
	if (sscanf(p, "slot %d pid %lld: %15[a-z] -> %15[a-z]: %n", &slot,
	           &pid, from, to, &n) == 4 && n > 0) {
		/* WHY, then " (FROM for T ms)" */
		char tail[64];
		snprintf(tail, sizeof tail, " (%s for ", from);
		why = p + n;
		const char *t = NULL;
		for (const char *q = why; (q = strstr(q, tail)); q++)
			t = q;
		if (!t || strcmp(line + strlen(line) - 4, " ms)") != 0)
			return 0;
		whylen = (size_t)(t - why);
		snprintf(e->kind, sizeof e->kind, "slot");
		e->slot = slot;
		e->pid = pid;
	} else if (sscanf(p, "supervisor now %15[a-z] (was %15[a-z]): %n", to,
	                  from, &n) == 2 && n > 0) {
		why = p + n;
		whylen = strlen(why);
		snprintf(e->kind, sizeof e->kind, "supervisor");
		e->slot = -1;
	} else {
		return 0;
	}
	if (!is_state(e->kind, from) || !is_state(e->kind, to))
		return 0;
	snprintf(e->from, sizeof e->from, "%s", from);
	snprintf(e->to, sizeof e->to, "%s", to);
	if (whylen >= sizeof e->why)
		whylen = sizeof e->why - 1;
	memcpy(e->why, why, whylen);
	e->why[whylen] = '\0';
	return 1;
}

/* The i-th state change in the log matching filter (i < 0: none), and how
 * many match in all. */
static int log_events(harness *h, const char *filter, int i, ipc_event *out)
{
	char line[4096];
	ipc_event e;
	int n = 0;
	uint64_t seq = 0;
	for (size_t pos = 0; pos < h->loglen;) {
		char *nl = memchr(h->log + pos, '\n', h->loglen - pos);
		if (!nl)
			break;
		size_t len = (size_t)(nl - (h->log + pos));
		if (len >= sizeof line)
			len = sizeof line - 1;
		memcpy(line, h->log + pos, len);
		line[len] = '\0';
		pos = (size_t)(nl - h->log) + 1;
		if (!log_line_event(line, &e))
			continue;
		e.seq = ++seq;
		if (!ev_matches(&e, filter))
			continue;
		if (n++ == i && out)
			*out = e;
	}
	return n;
}

int h_log_event_count(harness *h, const char *filter)
{
	return log_events(h, filter, -1, NULL);
}

const ipc_event *h_log_event_nth(harness *h, const char *filter, int i)
{
	static ipc_event found;
	if (i < 0 || log_events(h, filter, i, &found) <= i)
		return NULL;
	return &found;
}

/* ---- output ---- */

const char *h_log_find(harness *h, const char *needles, int timeout_ms)
{
	static char line[4096];
	uint64_t deadline = h_now_ms() + (uint64_t)(timeout_ms > 0 ? timeout_ms
	                                                           : 0);
	size_t pos = 0; /* every line before it was looked at */
	for (;;) {
		while (pos < h->loglen) {
			char *nl = memchr(h->log + pos, '\n', h->loglen - pos);
			if (!nl)
				break;
			size_t len = (size_t)(nl - (h->log + pos));
			if (len >= sizeof line)
				len = sizeof line - 1;
			memcpy(line, h->log + pos, len);
			line[len] = '\0';
			pos = (size_t)(nl - h->log) + 1;
			if (line_matches(line, needles))
				return line;
		}
		uint64_t now = h_now_ms();
		if (now >= deadline || fill(h, (int)(deadline - now)) < 0)
			break;
	}
	if (!h->quiet) {
		fprintf(stderr, "harness: no log line with '%s'; log:\n",
		        needles);
		h_dump(h);
	}
	return NULL;
}

/* ---- TCP ---- */

int h_listen_port(pid_t pid)
{
	unsigned long inodes[256];
	int ninodes = 0, port = 0;
	char path[64], link[64];

	snprintf(path, sizeof path, "/proc/%d/fd", (int)pid);
	DIR *d = opendir(path);
	if (!d)
		return -1;
	struct dirent *de;
	while ((de = readdir(d)) && ninodes < 256) {
		char p[320];
		snprintf(p, sizeof p, "%s/%s", path, de->d_name);
		ssize_t k = readlink(p, link, sizeof link - 1);
		if (k <= 0)
			continue;
		link[k] = '\0';
		unsigned long ino;
		if (sscanf(link, "socket:[%lu]", &ino) == 1)
			inodes[ninodes++] = ino;
	}
	closedir(d);
	static const char *const tables[] = {"/proc/net/tcp", "/proc/net/tcp6"};
	for (int t = 0; t < 2; t++) {
		FILE *f = fopen(tables[t], "re");
		if (!f)
			continue;
		char row[512];
		while (fgets(row, sizeof row, f)) {
			char local[64];
			unsigned st;
			unsigned long ino;
			/* sl local rem st tx:rx tr:when retrnsmt uid timeout
			 * inode */
			if (sscanf(row, " %*s %63s %*s %x %*s %*s %*s %*s %*s "
			           "%lu", local, &st, &ino) != 3 || st != 0x0A)
				continue;
			for (int i = 0; i < ninodes; i++) {
				if (inodes[i] != ino)
					continue;
				const char *colon = strrchr(local, ':');
				if (!colon)
					break;
				if (port) {
					fclose(f);
					return -1;
				}
				port = (int)strtol(colon + 1, NULL, 16);
			}
		}
		fclose(f);
	}
	return port;
}

const char *h_ctl(void)
{
	static char buf[PATH_MAX];
	const char *e = getenv("CORRALCTL_BIN");
	return e && *e ? e : h_path("corralctl", buf, sizeof buf);
}

const char *h_bin(const char *rel)
{
	static char b[8][PATH_MAX];
	static int i;
	i = (i + 1) % 8;
	return h_path(rel, b[i], sizeof b[i]);
}

int h_status_is(harness *h, const char *filter)
{
	int rc = h_sh(NULL, 0, "'%s' --rundir '%s' status --json | jq -e '%s' "
	              ">/dev/null 2>&1", h_ctl(), h->rundir, filter);
	if (rc != 0) {
		static char out[32768];
		(void)h_sh(out, sizeof out, "'%s' --rundir '%s' status --json "
		           "2>&1", h_ctl(), h->rundir);
		fprintf(stderr, "status is not '%s':\n%s\n", filter, out);
	}
	return rc;
}
