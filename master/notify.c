/*
 * notify.c - see notify.h.
 *
 * Order on the wire, as the tests assert it: any number of STATUS lines
 * while workers start; one READY=1 (first in its datagram) once every
 * slot is running; STATUS lines on changes; around a reload RELOADING=1
 * ... READY=1; one STOPPING=1 when shutdown begins, after which nothing
 * but STATUS and WATCHDOG=1 is sent.  Each datagram is one sd_notify()
 * call, so READY or STOPPING and the STATUS that explains it arrive
 * together.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "corral_base.h"
#include "master/notify.h"

#if HAVE_LIBSYSTEMD
#include <systemd/sd-daemon.h>
#endif

static struct {
	int enabled;
	int ready;        /* READY=1 sent, and no reload since */
	int ever_ready;
	int reloading;
	int stopping;     /* STOPPING=1 sent */
	uv_timer_t wd;
	int wd_open;
	uint64_t wd_usec;
	notify_view last; /* as of the last STATUS */
	char state[32];
	int have_last;
	char sent[512];   /* the last datagram */
} N;

static void status_line(const notify_view *v, const char *state, char *buf,
                        size_t len)
{
	snprintf(buf, len, "STATUS=%s: %u/%u workers running, %.1f jobs/s, "
	         "%u restart%s", state, v->running, v->total, v->jobs_per_s,
	         v->restarts, v->restarts == 1 ? "" : "s");
}

static void send_text(const char *text)
{
	snprintf(N.sent, sizeof N.sent, "%s", text);
#if HAVE_LIBSYSTEMD
	int rc = sd_notify(0, text);
	if (rc < 0) {
		static int warned;
		if (!warned++)
			log_warn("sd_notify: %s (further failures not logged)",
			         strerror(-rc));
	}
#endif
}

static void on_watchdog(uv_timer_t *t)
{
	(void)t;
	send_text("WATCHDOG=1");
}

int notify_init(uv_loop_t *loop)
{
	memset(&N, 0, sizeof N);
	const char *sock = getenv("NOTIFY_SOCKET");
	if (!sock || !*sock)
		return 0;
#if HAVE_LIBSYSTEMD
	N.enabled = 1;
	uint64_t usec = 0;
	if (sd_watchdog_enabled(0, &usec) > 0 && usec > 0) {
		uint64_t ms = usec / 2000u;
		if (uv_timer_init(loop, &N.wd) != 0)
			return CORRAL_ESYS;
		N.wd_open = 1;
		N.wd_usec = usec;
		uv_timer_start(&N.wd, on_watchdog, ms ? ms : 1, ms ? ms : 1);
		uv_unref((uv_handle_t *)&N.wd); /* never keeps the loop up */
		log_msg("systemd: notifying %s; watchdog every %" PRIu64 " ms "
		        "(WATCHDOG_USEC %" PRIu64 ")", sock, ms ? ms : 1, usec);
	} else {
		log_msg("systemd: notifying %s", sock);
	}
#else
	(void)loop;
	log_warn("NOTIFY_SOCKET is set but corral was built without "
	         "libsystemd: systemd is not told anything (install "
	         "libsystemd-dev and rebuild)");
#endif
	return 0;
}

int notify_enabled(void)
{
	return N.enabled;
}

void notify_update(const notify_view *v)
{
	char status[256], msg[512];
	if (!N.enabled)
		return;
	const char *state = N.reloading ? "reloading" : v->state;
	int changed = !N.have_last || strcmp(state, N.state) != 0 ||
	              v->running != N.last.running ||
	              v->total != N.last.total ||
	              v->restarts != N.last.restarts;
	N.last = *v;
	N.have_last = 1;
	snprintf(N.state, sizeof N.state, "%s", state);
	status_line(v, state, status, sizeof status);
	if (v->stopping && !N.stopping) {
		N.stopping = 1;
		snprintf(msg, sizeof msg, "STOPPING=1\n%s", status);
	} else if (!v->stopping && !N.stopping && !N.ready && !N.ever_ready &&
	           v->total > 0 && v->running == v->total) {
		N.ready = N.ever_ready = 1;
		snprintf(msg, sizeof msg, "READY=1\nMAINPID=%ld\n%s",
		         (long)getpid(), status);
	} else if (changed) {
		snprintf(msg, sizeof msg, "%s", status);
	} else {
		return;
	}
	send_text(msg);
}

void notify_reloading(void)
{
	char status[256], msg[512];
	struct timespec ts;
	if (!N.enabled || N.stopping)
		return;
	N.reloading = 1;
	N.ready = 0;
	snprintf(N.state, sizeof N.state, "reloading");
	status_line(&N.last, "reloading", status, sizeof status);
	clock_gettime(CLOCK_MONOTONIC, &ts);
	snprintf(msg, sizeof msg, "RELOADING=1\nMONOTONIC_USEC=%" PRIu64 "\n%s",
	         (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u,
	         status);
	send_text(msg);
}

void notify_reloaded(int ok)
{
	char status[256], msg[512];
	if (!N.enabled || !N.reloading)
		return;
	N.reloading = 0;
	N.ready = N.ever_ready = 1;
	const char *state = ok ? "reloaded" : "reload failed, rolled back";
	status_line(&N.last, state, status, sizeof status);
	snprintf(N.state, sizeof N.state, "%s", N.last.state ? N.last.state : "");
	snprintf(msg, sizeof msg, "READY=1\n%s", status);
	send_text(msg);
}

void notify_close(void)
{
	if (N.wd_open) {
		N.wd_open = 0;
		uv_close((uv_handle_t *)&N.wd, NULL);
	}
}

const char *notify_last(void)
{
	return N.sent;
}
