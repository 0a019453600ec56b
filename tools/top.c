/*
 * top.c - see top.h.
 *
 * The interactive loop: one status request per interval, the frame drawn
 * into memory and written in one write() (cursor home, each line cut to
 * the terminal's width and followed by erase-to-end-of-line, erase below),
 * so the screen never scrolls or flickers.  Between requests it waits in
 * poll() on the terminal: a key, a signal (SIGWINCH redraws at the new
 * size; SIGINT, SIGTERM, SIGHUP quit; SIGTSTP gives the terminal back
 * before stopping) or the next refresh.  A terminal that goes away (read
 * gives EOF or EIO, poll gives POLLHUP, a write fails) ends it too; the
 * terminal's modes are restored on every way out.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "corral_base.h"
#include "ipc/proto.h"
#include "tools/ctlreq.h"
#include "tools/show.h"
#include "tools/top.h"

#define MAXCOLS 40
#define CELL 32

/* A slot's jobs/s: from the two latest distinct health reports of the
 * same worker. */
typedef struct rate {
	int64_t pid;      /* the worker the figures are of; 0: none */
	uint64_t up_ms;   /* its uptime at its last report */
	uint64_t done;    /* its jobs_done then */
	double per_s;
	int known;
} rate;

typedef struct view {
	ipc_status st;      /* the last answer */
	int have;
	uint64_t at_ms;     /* when it came (monotonic) */
	uint64_t answered;  /* the broker's answered jobs then */
	double total_per_s;
	int total_known;
	rate *rates;
	uint32_t nrates;
	char err[256];      /* why the last request failed; "" if it did not */
} view;

static uint64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static uint64_t answered(const ipc_status *st)
{
	return st->jobs.ok + st->jobs.failed + st->jobs.timeouts +
	       st->jobs.poison;
}

/* Takes st (the view frees it later). */
static void view_update(view *v, ipc_status *st, uint64_t now)
{
	if (st->nworkers > v->nrates) {
		rate *nr = realloc(v->rates, st->nworkers * sizeof *nr);
		if (nr) {
			memset(nr + v->nrates, 0,
			       (st->nworkers - v->nrates) * sizeof *nr);
			v->rates = nr;
			v->nrates = st->nworkers;
		}
	}
	for (uint32_t i = 0; i < st->nworkers && i < v->nrates; i++) {
		const ipc_health *h = &st->workers[i].health;
		rate *r = &v->rates[i];
		if (h->pid == 0 || st->workers[i].pid == 0) {
			*r = (rate){0};
		} else if (r->pid != h->pid || h->uptime_ms < r->up_ms ||
		           h->jobs_done < r->done) {
			*r = (rate){.pid = h->pid, .up_ms = h->uptime_ms,
			            .done = h->jobs_done};
		} else if (h->uptime_ms > r->up_ms) {
			r->per_s = (double)(h->jobs_done - r->done) * 1000.0 /
			           (double)(h->uptime_ms - r->up_ms);
			r->known = 1;
			r->up_ms = h->uptime_ms;
			r->done = h->jobs_done;
		} /* else the same report again: the rate stands */
	}
	uint64_t a = answered(st);
	if (v->have && v->st.pid == st->pid && now > v->at_ms &&
	    a >= v->answered) {
		v->total_per_s = (double)(a - v->answered) * 1000.0 /
		                 (double)(now - v->at_ms);
		v->total_known = 1;
	} else {
		v->total_known = 0;
	}
	if (v->have)
		ipc_status_free(&v->st);
	v->st = *st;
	v->have = 1;
	v->at_ms = now;
	v->answered = a;
	v->err[0] = '\0';
}

static void view_free(view *v)
{
	if (v->have)
		ipc_status_free(&v->st);
	v->have = 0;
	free(v->rates);
	v->rates = NULL;
	v->nrates = 0;
}

static int fetch(view *v, const char *rundir, uint64_t timeout_ms)
{
	ipc_status st;
	int rc = ctl_status(rundir, timeout_ms, &st);
	if (rc) {
		snprintf(v->err, sizeof v->err, "no answer from %s/control: %s",
		         rundir, corral_strerror(rc));
		return rc;
	}
	view_update(v, &st, mono_ms());
	return 0;
}

/* ---- the frame ---- */

/* How a column's total is made, by the field's JSON name. */
typedef enum agg { AGG_NONE, AGG_SUM, AGG_MAX } agg;

static agg agg_of(const ipc_field *f)
{
	static const struct {
		const char *json;
		agg a;
	} t[] = {{"restarts", AGG_SUM},  {"cpu_pct", AGG_SUM},
	         {"rss_bytes", AGG_SUM}, {"lag_p99_us", AGG_MAX},
	         {"jobs", AGG_SUM}};
	for (size_t i = 0; f->json && i < sizeof t / sizeof t[0]; i++)
		if (strcmp(f->json, t[i].json) == 0)
			return t[i].a;
	return AGG_NONE;
}

/* Adds (or maxes) the field of w into the same field of tot. */
static void accumulate(const show_column *c, const ipc_worker_status *w,
                       ipc_worker_status *tot)
{
	agg a = agg_of(c->f);
	const char *src = (const char *)(c->health ? (const void *)&w->health
	                                           : (const void *)w) +
	                  c->f->off;
	char *dst = (char *)(c->health ? (void *)&tot->health : (void *)tot) +
	            c->f->off;
	if (a == AGG_NONE)
		return;
#define ACC(T)                                                                \
	do {                                                                  \
		T x = *(const T *)src, *y = (T *)dst;                         \
		*y = a == AGG_SUM ? *y + x : (x > *y ? x : *y);               \
	} while (0)
	switch (c->f->type) {
	case IPC_T_U64:
		ACC(uint64_t);
		break;
	case IPC_T_I64:
		ACC(int64_t);
		break;
	case IPC_T_U32:
		ACC(uint32_t);
		break;
	case IPC_T_I32:
		ACC(int32_t);
		break;
	case IPC_T_F64:
		ACC(double);
		break;
	default:
		break;
	}
#undef ACC
}

static void fmt_rate(int known, double v, char *buf)
{
	if (known)
		snprintf(buf, CELL, "%.1f", v);
	else
		snprintf(buf, CELL, "-");
}

/* Writes the frame as lines of text (no escapes). */
/* The two summary lines: the supervisor and its jobs. */
static void render_header(FILE *f, const view *v, const char *now)
{
	const ipc_status *st = &v->st;
	unsigned running = 0, restarts = 0;
	for (uint32_t i = 0; i < st->nworkers; i++) {
		running += strcmp(st->workers[i].state, "running") == 0;
		restarts += st->workers[i].restarts;
	}
	char tot_rate[CELL];
	fmt_rate(v->total_known, v->total_per_s, tot_rate);
	fprintf(f, "%s: supervisor pid %" PRId64 ", %s, %u/%u worker(s) "
	        "running, %u restart(s)  %s\n", st->name, st->pid, st->state,
	        running, st->nworkers, restarts, now);
	fprintf(f, "jobs: %" PRIu64 " queued, %" PRIu64 " in flight, %" PRIu64
	        " ok, %" PRIu64 " failed, %" PRIu64 " timed out; %s/s\n",
	        st->jobs.queued, st->jobs.inflight, st->jobs.ok,
	        st->jobs.failed, st->jobs.timeouts, tot_rate);
	if (v->err[0])
		fprintf(f, "%s (showing the last answer)\n", v->err);
	fputc('\n', f);
}

/* One row per worker and a totals row: the status table's columns (nc of
 * them, in c), then utilisation (column nc) and jobs/s (nc + 1). */
static void fill_cells(const view *v, const show_column *c, unsigned nc,
                       char (*cells)[MAXCOLS][CELL])
{
	const ipc_status *st = &v->st;
	unsigned util_k = nc, rate_k = nc + 1;
	ipc_worker_status tot;
	memset(&tot, 0, sizeof tot);
	double util_sum = 0, rate_sum = 0;
	unsigned util_n = 0, rate_n = 0;
	for (uint32_t i = 0; i < st->nworkers; i++) {
		const ipc_worker_status *w = &st->workers[i];
		for (unsigned k = 0; k < nc; k++) {
			show_cell(&c[k], w, cells[i][k], CELL);
			accumulate(&c[k], w, &tot);
		}
		if (w->pid && w->health.pid) {
			snprintf(cells[i][util_k], CELL, "%.1f%%",
			         w->health.util * 100.0);
			util_sum += w->health.util;
			util_n++;
		} else {
			snprintf(cells[i][util_k], CELL, "-");
		}
		const rate *r = i < v->nrates ? &v->rates[i] : NULL;
		fmt_rate(r && r->known, r ? r->per_s : 0, cells[i][rate_k]);
		if (r && r->known) {
			rate_sum += r->per_s;
			rate_n++;
		}
	}
	char(*trow)[CELL] = cells[st->nworkers];
	for (unsigned k = 0; k < nc; k++) {
		if (k == 0)
			snprintf(trow[k], CELL, "all");
		else if (agg_of(c[k].f) != AGG_NONE)
			show_cell(&c[k], &tot, trow[k], CELL);
	}
	if (util_n)
		snprintf(trow[util_k], CELL, "%.1f%%",
		         util_sum * 100.0 / util_n);
	fmt_rate(rate_n > 0, rate_sum, trow[rate_k]);
}

/* Left-aligned columns as wide as their widest cell; the last column
 * unpadded: no trailing blanks. */
static void print_table(FILE *f, const char *const *head, unsigned ncols,
                        char (*cells)[MAXCOLS][CELL], uint32_t nrows)
{
	int width[MAXCOLS];
	for (unsigned k = 0; k < ncols; k++) {
		width[k] = (int)strlen(head[k]);
		for (uint32_t i = 0; i < nrows; i++)
			if ((int)strlen(cells[i][k]) > width[k])
				width[k] = (int)strlen(cells[i][k]);
	}
	for (unsigned k = 0; k < ncols; k++)
		fprintf(f, "%-*s%s", k + 1 < ncols ? width[k] : 0, head[k],
		        k + 1 < ncols ? " " : "\n");
	for (uint32_t i = 0; i < nrows; i++)
		for (unsigned k = 0; k < ncols; k++)
			fprintf(f, "%-*s%s", k + 1 < ncols ? width[k] : 0,
			        cells[i][k], k + 1 < ncols ? " " : "\n");
}

static void render(FILE *f, const view *v, int interactive,
                   uint64_t interval_ms)
{
	char now[16], ival[32];
	time_t t = time(NULL);
	struct tm tm;
	localtime_r(&t, &tm);
	snprintf(now, sizeof now, "%02d:%02d:%02d", tm.tm_hour, tm.tm_min,
	         tm.tm_sec);
	if (interval_ms % 1000 == 0)
		snprintf(ival, sizeof ival, "%" PRIu64 " s", interval_ms / 1000);
	else
		snprintf(ival, sizeof ival, "%" PRIu64 " ms", interval_ms);
	if (!v->have) {
		fprintf(f, "corralctl top  %s\n%s\n", now,
		        v->err[0] ? v->err : "asking the supervisor...");
		if (interactive)
			fprintf(f, "\nq quits\n");
		return;
	}
	render_header(f, v, now);
	show_column c[MAXCOLS];
	unsigned nc = show_columns(c, MAXCOLS - 2);
	const char *head[MAXCOLS];
	for (unsigned k = 0; k < nc; k++)
		head[k] = c[k].f->col;
	head[nc] = "UTIL";
	head[nc + 1] = "JOBS/S";
	uint32_t nrows = v->st.nworkers + 1; /* and the totals */
	char(*cells)[MAXCOLS][CELL] = calloc(nrows, sizeof *cells);
	if (!cells)
		return;
	fill_cells(v, c, nc, cells);
	print_table(f, head, nc + 2, cells, nrows);
	free(cells);
	if (interactive)
		fprintf(f, "\nq quits; every %s\n", ival);
}

/* ---- the terminal ---- */

static volatile sig_atomic_t got_winch, got_quit, got_tstp;
static struct termios saved_tio;
static int tty_raw;

static void on_signal(int sig)
{
	if (sig == SIGWINCH)
		got_winch = 1;
	else if (sig == SIGTSTP)
		got_tstp = 1;
	else
		got_quit = 1;
}

static void term_size(int *w, int *h)
{
	struct winsize ws;
	*w = 80;
	*h = 24;
	if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col &&
	    ws.ws_row) {
		*w = ws.ws_col;
		*h = ws.ws_row;
	}
}

static int term_enter(void)
{
	static const char enter[] = "\033[?1049h\033[?25l\033[H\033[2J";
	struct termios raw;
	if (tcgetattr(STDIN_FILENO, &saved_tio) != 0)
		return -1;
	raw = saved_tio;
	/* Keys one at a time, unechoed; ^C still a signal. */
	raw.c_lflag &= ~(tcflag_t)(ICANON | ECHO);
	raw.c_cc[VMIN] = 1;
	raw.c_cc[VTIME] = 0;
	if (tcsetattr(STDIN_FILENO, TCSAFLUSH, &raw) != 0)
		return -1;
	tty_raw = 1;
	return log_write_all(STDOUT_FILENO, enter, sizeof enter - 1);
}

/* Whatever state the terminal is in (it may be gone). */
static void term_leave(void)
{
	static const char leave[] = "\033[?25h\033[?1049l";
	if (!tty_raw)
		return;
	(void)log_write_all(STDOUT_FILENO, leave, sizeof leave - 1);
	(void)tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved_tio);
	tty_raw = 0;
}

/* The frame (lines of text) on the screen, cut to w x h.  -1 when the
 * terminal is gone. */
static int draw(const char *frame, size_t len, int w, int h)
{
	size_t cap = 16 + (size_t)h * ((size_t)w + 8);
	char *out = malloc(cap);
	if (!out)
		return 0; /* try again next time */
	size_t n = 0;
	memcpy(out + n, "\033[H", 3);
	n += 3;
	const char *p = frame, *end = frame + len;
	for (int row = 0; row < h && p < end; row++) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t ll = nl ? (size_t)(nl - p) : (size_t)(end - p);
		if (row == h - 1 && nl && nl + 1 < end) {
			/* No room for the rest. */
			static const char more[] = "... (a taller terminal "
			                           "shows more)";
			p = more;
			ll = sizeof more - 1;
		}
		memcpy(out + n, p, ll < (size_t)w ? ll : (size_t)w);
		n += ll < (size_t)w ? ll : (size_t)w;
		memcpy(out + n, "\033[K", 3);
		n += 3;
		if (row < h - 1) {
			memcpy(out + n, "\r\n", 2);
			n += 2;
		}
		p = nl ? nl + 1 : end;
	}
	memcpy(out + n, "\033[J", 3);
	n += 3;
	int rc = log_write_all(STDOUT_FILENO, out, n);
	free(out);
	return rc;
}

static int redraw(const view *v, uint64_t interval_ms)
{
	char *frame = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&frame, &len);
	if (!m)
		return 0;
	render(m, v, 1, interval_ms);
	fclose(m);
	int w, h;
	term_size(&w, &h);
	int rc = draw(frame, len, w, h);
	free(frame);
	return rc;
}

static void catch_signals(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal; /* no SA_RESTART: poll() returns EINTR */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGWINCH, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGTSTP, &sa, NULL);
}

/* ^Z: give the terminal back, stop, take it again when continued. */
static void suspend(void)
{
	term_leave();
	signal(SIGTSTP, SIG_DFL);
	raise(SIGTSTP);
	/* continued */
	catch_signals();
	(void)term_enter();
}

static int interactive(const char *rundir, uint64_t timeout_ms,
                       uint64_t interval_ms)
{
	view v;
	memset(&v, 0, sizeof v);
	if (!isatty(STDIN_FILENO) || !isatty(STDOUT_FILENO)) {
		log_plain("top needs a terminal (for one frame as text: top "
		          "--once)");
		return 2;
	}
	catch_signals();
	if (term_enter() != 0) {
		term_leave();
		log_plain("cannot set up the terminal: %s", strerror(errno));
		return 1;
	}
	uint64_t next = 0;
	int dirty = 1;
	while (!got_quit) {
		if (got_tstp) {
			got_tstp = 0;
			suspend();
			dirty = 1;
		}
		uint64_t now = mono_ms();
		if (now >= next) {
			(void)fetch(&v, rundir, timeout_ms);
			now = mono_ms();
			next = now + interval_ms;
			dirty = 1;
		}
		if (got_winch) {
			got_winch = 0;
			dirty = 1;
		}
		if (dirty) {
			if (redraw(&v, interval_ms) != 0)
				break; /* the terminal is gone */
			dirty = 0;
		}
		struct pollfd p = {.fd = STDIN_FILENO, .events = POLLIN};
		int r = poll(&p, 1, next > now ? (int)(next - now) : 0);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (r == 0)
			continue;
		if (p.revents & (POLLERR | POLLHUP | POLLNVAL))
			break;
		char keys[64];
		ssize_t n = read(STDIN_FILENO, keys, sizeof keys);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n <= 0)
			break; /* EOF or EIO: the terminal is gone */
		for (ssize_t i = 0; i < n; i++) {
			if (keys[i] == 'q' || keys[i] == 'Q')
				got_quit = 1;
			else if (keys[i] == ' ' || keys[i] == 'r')
				next = 0; /* refresh now */
			else if (keys[i] == '\f') /* ^L */
				dirty = 1;
		}
	}
	term_leave();
	view_free(&v);
	return 0;
}

static int once(const char *rundir, uint64_t timeout_ms, uint64_t interval_ms)
{
	view v;
	memset(&v, 0, sizeof v);
	int rc = fetch(&v, rundir, timeout_ms);
	if (!rc && interval_ms) {
		struct timespec ts = {.tv_sec = (time_t)(interval_ms / 1000),
		                      .tv_nsec = (long)(interval_ms % 1000) *
		                                 1000000L};
		while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
			;
		rc = fetch(&v, rundir, timeout_ms);
	}
	if (rc) {
		log_plain("%s", v.err);
		view_free(&v);
		return 1;
	}
	render(stdout, &v, 0, interval_ms);
	fflush(stdout);
	view_free(&v);
	return 0;
}

int top_main(const char *rundir, uint64_t timeout_ms, uint64_t interval_ms,
             int once_only)
{
	return once_only ? once(rundir, timeout_ms, interval_ms)
	                 : interactive(rundir, timeout_ms, interval_ms);
}
