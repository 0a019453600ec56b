/*
 * test_harden.c - what corral inherits, starts and leaves behind: one
 * instance per run directory (the lock), nothing left of a killed one,
 * the processes a plugin starts (killed with their worker, or left under
 * kill_mode = process without holding up shutdown), escaped ones reaped
 * by corral as their subreaper, corral as PID 1 of a container, inherited
 * descriptors that reach no worker, a low open-file limit, every signal an
 * operator may send, and a supervisor that was itself stopped for a while.
 * Real processes and signals; every pid cleaned up.
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "tests/harness.h"

#define WAIT_MS 20000

static harness H, H2;
static pid_t extra[8]; /* processes a test must kill itself */
static int nextra;

static void teardown(void)
{
	for (int i = 0; i < nextra; i++)
		if (extra[i] > 0)
			kill(extra[i], SIGKILL);
	nextra = 0;
	h_cleanup(&H);
	h_cleanup(&H2);
}

static void keep(pid_t p)
{
	if (nextra < 8)
		extra[nextra++] = p;
}

#define START(...) H_START(&H, __VA_ARGS__)
#define EVENT(filter, ms) H_EVENT(&H, filter, ms)

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

/* The pid a spawned command wrote into path ($$), once it has. */
static pid_t read_pidfile(const char *path)
{
	for (uint64_t end = h_now_ms() + WAIT_MS; h_now_ms() < end;) {
		FILE *f = fopen(path, "r");
		long v = 0;
		if (f) {
			if (fscanf(f, "%ld", &v) != 1)
				v = 0;
			fclose(f);
		}
		if (v > 0)
			return (pid_t)v;
		sleep_ms(10);
	}
	return 0;
}

/* Field 4 (ppid) and 3 (state) of /proc/PID/stat; 0 when gone. */
static pid_t stat_of(pid_t pid, char *state)
{
	char path[64], buf[512];
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return 0;
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';
	char *rp = strrchr(buf, ')');
	char st = 0;
	int ppid = 0;
	if (!rp || sscanf(rp + 2, "%c %d", &st, &ppid) != 2)
		return 0;
	if (state)
		*state = st;
	return (pid_t)ppid;
}

/* Zombies whose parent is pid: nobody reaped them. */
static int zombies_of(pid_t parent)
{
	DIR *d = opendir("/proc");
	int n = 0;
	struct dirent *e;
	while (d && (e = readdir(d))) {
		char st = 0;
		pid_t pid = (pid_t)atoi(e->d_name);
		if (pid > 0 && stat_of(pid, &st) == parent && st == 'Z')
			n++;
	}
	if (d)
		closedir(d);
	return n;
}

static int alive(pid_t pid)
{
	char st = 0;
	return stat_of(pid, &st) != 0 && st != 'Z';
}

/* A spawner worker whose command writes its pid to DIR/name and sleeps. */
static const char *spawn_set(const char *name, const char *then)
{
	static char v[2][600];
	static int k;
	k ^= 1;
	snprintf(v[k], sizeof v[k], "spawn=echo $$ > %s/%s; exec %s", H.dir,
	         name, then);
	return v[k];
}

static const char *in_dir(const char *name)
{
	static char p[4][300];
	static int k;
	k = (k + 1) % 4;
	snprintf(p[k], sizeof p[k], "%s/%s", H.dir, name);
	return p[k];
}

/* ---- one instance per run directory ---- */

START_TEST(a_second_instance_is_refused_by_the_lock)
{
	START("-w", "1", h_bin("examples/echo.so"));
	EVENT("kind=slot to=running", WAIT_MS);
	char out[2048];
	int rc = h_sh(out, sizeof out, "'%s' --rundir '%s' -w 1 '%s' 2>&1",
	              h_bin("corral"), H.rundir, h_bin("examples/echo.so"));
	char want[64];
	snprintf(want, sizeof want, "already running as pid %d", (int)H.sup);
	ck_assert_msg(rc == 1 && strstr(out, want), "rc %d: %s", rc, out);
	/* The first one never noticed: no heal was needed. */
	ck_assert_int_eq(h_sh(out, sizeof out, "'%s' --rundir '%s' call "
	                      "still-mine", h_ctl(), H.rundir), 0);
	ck_assert_str_eq(out, "still-mine");
	ck_assert_int_eq(h_sh(NULL, 0, "'%s' --rundir '%s' status --json | "
	                      "jq -e '.listener_heals == 0' >/dev/null", h_ctl(),
	                      H.rundir), 0);
	/* A clean stop leaves nothing: no socket, no lock, no directory. */
	kill(H.sup, SIGTERM);
	ck_assert_int_eq(h_wait_exit(&H, WAIT_MS), 0);
	ck_assert_int_ne(access(H.rundir, F_OK), 0);
}
END_TEST

START_TEST(what_a_killed_instance_left_is_cleared)
{
	START("-w", "1", h_bin("examples/echo.so"));
	EVENT("kind=slot to=running", WAIT_MS);
	kill(H.sup, SIGKILL);
	ck_assert_int_eq(h_wait_exit(&H, WAIT_MS), 128 + SIGKILL);
	ck_assert_int_eq(access(in_dir("run/control"), F_OK), 0);
	/* A new one on the same directory: the lock is free (it died with
	 * its holder), the stale sockets are removed, and it serves. */
	const char *a[] = {h_bin("corral"), "--rundir", H.rundir, "-w", "1",
	                   h_bin("examples/echo.so"), NULL};
	H2.errfd = -1;
	snprintf(H2.rundir, sizeof H2.rundir, "%s", H.rundir);
	ck_assert_int_eq(h_spawn(&H2, a), 0);
	ck_assert_ptr_nonnull(h_event(&H2, "kind=slot to=running", WAIT_MS));
	char out[256];
	ck_assert_int_eq(h_sh(out, sizeof out, "'%s' --rundir '%s' call "
	                      "again", h_ctl(), H.rundir), 0);
	ck_assert_str_eq(out, "again");
}
END_TEST

/* ---- what a plugin starts ---- */

START_TEST(what_a_worker_started_dies_with_it)
{
	ck_assert_int_eq(h_prepare(&H), 0);
	START("-w", "1", "--standby", "0", "--set",
	      spawn_set("child", "sleep 1000"), h_bin("tests/spawner.so"));
	pid_t w = (pid_t)EVENT("kind=slot to=running", WAIT_MS)->pid;
	pid_t c = read_pidfile(in_dir("child"));
	ck_assert_int_gt(c, 0);
	keep(c);
	ck_assert(alive(c));
	unlink(in_dir("child"));
	kill(w, SIGKILL);
	ck_assert_msg(h_wait_pid_gone(c, WAIT_MS) == 0,
	              "pid %d outlived its worker", (int)c);
	/* The replacement starts its own; a stop takes it too, and does
	 * not wait on it. */
	pid_t c2 = read_pidfile(in_dir("child"));
	ck_assert_int_gt(c2, 0);
	keep(c2);
	kill(H.sup, SIGTERM);
	ck_assert_int_eq(h_wait_exit(&H, WAIT_MS), 0);
	ck_assert_int_eq(h_wait_pid_gone(c2, WAIT_MS), 0);
}
END_TEST

START_TEST(kill_mode_process_leaves_them_and_shutdown_does_not_wait)
{
	ck_assert_int_eq(h_prepare(&H), 0);
	START("-w", "1", "--standby", "0", "--kill-mode", "process", "--set",
	      spawn_set("child", "sleep 1000"), h_bin("tests/spawner.so"));
	pid_t w = (pid_t)EVENT("kind=slot to=running", WAIT_MS)->pid;
	pid_t c = read_pidfile(in_dir("child"));
	ck_assert_int_gt(c, 0);
	keep(c);
	unlink(in_dir("child"));
	kill(w, SIGKILL);
	EVENT("kind=slot to=running", WAIT_MS);
	ck_assert(alive(c));
	pid_t c2 = read_pidfile(in_dir("child")); /* the new worker's */
	ck_assert_int_gt(c2, 0);
	keep(c2);
	/* It holds the old worker's output pipe: shutdown ends anyway. */
	kill(H.sup, SIGTERM);
	ck_assert_int_eq(h_wait_exit(&H, WAIT_MS), 0);
	ck_assert(alive(c));
}
END_TEST

/* A daemon-style escape (double fork, setsid) leaves the worker's group;
 * corral, its subreaper, becomes its parent, reaps it when it dies, and
 * kills it when corral stops. */
START_TEST(an_escaped_process_is_reaped_and_stopped_by_corral)
{
	ck_assert_int_eq(h_prepare(&H), 0);
	START("-w", "1", "--standby", "0", "--set", "escape=1", "--set",
	      spawn_set("child", "sleep 1000"), h_bin("tests/spawner.so"));
	EVENT("kind=slot to=running", WAIT_MS);
	pid_t c = read_pidfile(in_dir("child"));
	ck_assert_int_gt(c, 0);
	keep(c);
	for (uint64_t end = h_now_ms() + WAIT_MS;
	     stat_of(c, NULL) != H.sup && h_now_ms() < end;)
		sleep_ms(10);
	ck_assert_int_eq(stat_of(c, NULL), H.sup);
	kill(c, SIGKILL);
	ck_assert_msg(h_wait_pid_gone(c, WAIT_MS) == 0,
	              "pid %d was left a zombie", (int)c);
	ck_assert_int_eq(zombies_of(H.sup), 0);
	/* Another one, then a restart of the slot and a stop. */
	unlink(in_dir("child"));
	char out[4096];
	int rc = h_sh(out, sizeof out, "'%s' --rundir '%s' restart all 2>&1",
	              h_ctl(), H.rundir);
	ck_assert_msg(rc == 0, "restart: %d: %s", rc, out);
	pid_t c2 = read_pidfile(in_dir("child"));
	ck_assert_int_gt(c2, 0);
	keep(c2);
	kill(H.sup, SIGTERM);
	ck_assert_int_eq(h_wait_exit(&H, WAIT_MS), 0);
	ck_assert_int_eq(h_wait_pid_gone(c2, WAIT_MS), 0);
}
END_TEST

/* corral as PID 1 of a container (a pid namespace): orphans are reparented
 * to it and must be reaped; SIGTERM stops it gracefully. */
START_TEST(corral_as_pid_1_reaps_orphans_and_stops_on_sigterm)
{
	if (h_sh(NULL, 0, "unshare --pid --fork --mount-proc true "
	         ">/dev/null 2>&1") != 0) {
		fprintf(stderr, "corral_as_pid_1: SKIPPED: unshare --pid "
		        "--mount-proc is not allowed here\n");
		return;
	}
	ck_assert_int_eq(h_prepare(&H), 0);
	/* Each worker start leaves an orphan that lives 200 ms. */
	char set[600];
	snprintf(set, sizeof set, "spawn=exec sleep 0.2");
	const char *a[] = {"/usr/bin/unshare", "--pid", "--fork",
	                   "--mount-proc", h_bin("corral"), "--rundir",
	                   H.rundir, "-w", "2", "--set", "escape=1", "--set",
	                   set, h_bin("tests/spawner.so"), NULL};
	ck_assert_int_eq(h_spawn(&H, a), 0);
	EVENT("kind=slot to=running", WAIT_MS);
	EVENT("kind=slot to=running", WAIT_MS);
	/* corral's pid out here: the one child of unshare. */
	char out[64];
	ck_assert_int_eq(h_sh(out, sizeof out, "pgrep -P %d", (int)H.sup), 0);
	pid_t pid1 = (pid_t)atoi(out);
	ck_assert_int_gt(pid1, 0);
	ck_assert_int_eq(h_sh(out, sizeof out, "'%s' --rundir '%s' status "
	                      "--json | jq -r .pid", h_ctl(), H.rundir), 0);
	ck_assert_int_eq(atoi(out), 1);
	/* Kill the workers a few times: orphans pile up unless reaped. */
	for (int round = 0; round < 3; round++) {
		ck_assert_int_eq(h_sh(NULL, 0, "pkill -KILL -P %d -f "
		                      "corral-worker", (int)pid1), 0);
		EVENT("kind=slot to=running", WAIT_MS);
		EVENT("kind=slot to=running", WAIT_MS);
	}
	int z = -1;
	for (uint64_t end = h_now_ms() + WAIT_MS; h_now_ms() < end;) {
		/* The orphans live 200 ms; then none may stay a zombie. */
		if ((z = zombies_of(pid1)) == 0)
			break;
		sleep_ms(50);
	}
	ck_assert_int_eq(z, 0);
	kill(pid1, SIGTERM);
	ck_assert_int_eq(h_wait_exit(&H, WAIT_MS), 0);
}
END_TEST

/* ---- descriptors and limits ---- */

START_TEST(an_inherited_descriptor_reaches_no_worker)
{
	ck_assert_int_eq(h_prepare(&H), 0);
	/* As `exec 7>file` in the shell that starts corral: inherited,
	 * without close-on-exec. */
	char cmd[2048];
	snprintf(cmd, sizeof cmd, "exec 7>'%s'; exec '%s' --rundir '%s' -w 1 "
	         "--standby 0 --set '%s' '%s'", in_dir("inherited"),
	         h_bin("corral"), H.rundir, spawn_set("child", "sleep 1000"),
	         h_bin("tests/spawner.so"));
	const char *a[] = {"/bin/sh", "-c", cmd, NULL};
	ck_assert_int_eq(h_spawn(&H, a), 0);
	pid_t w = (pid_t)EVENT("kind=slot to=running", WAIT_MS)->pid;
	pid_t c = read_pidfile(in_dir("child"));
	ck_assert_int_gt(c, 0);
	keep(c);
	char out[1024];
	pid_t who[3] = {H.sup, w, c};
	for (int i = 0; i < 3; i++) {
		(void)h_sh(out, sizeof out, "ls -l /proc/%d/fd | grep -c "
		           "inherited", (int)who[i]);
		/* corral itself keeps it (it is the shell's business), but
		 * marked close-on-exec: neither the worker nor what the
		 * plugin runs gets it. */
		ck_assert_msg(atoi(out) == (i == 0), "pid %d (%s) has %s "
		              "copies", (int)who[i], i == 0 ? "corral" :
		              i == 1 ? "worker" : "plugin's child", out);
	}
}
END_TEST

START_TEST(a_low_open_file_limit_is_named_not_a_crash)
{
	char out[2048];
	ck_assert_int_eq(h_prepare(&H), 0);
	int rc = h_sh(out, sizeof out, "prlimit --nofile=8:8 '%s' --rundir "
	              "'%s' -w 8 '%s' 2>&1", h_bin("corral"), H.rundir,
	              h_bin("examples/hello.so"));
	ck_assert_msg(rc == 1 && strstr(out, "open-file limit (8"),
	              "rc %d: %s", rc, out);
	/* Room for some: it runs those, and says so. */
	const char *a[] = {"/usr/bin/prlimit", "--nofile=70:70", h_bin("corral"),
	                   "--rundir", H.rundir, "-w", "8",
	                   h_bin("examples/echo.so"), NULL};
	ck_assert_int_eq(h_spawn(&H, a), 0);
	ck_assert_ptr_nonnull(h_log_find(&H, "running degraded|3 worker(s) "
	                                 "instead of 8|open-file limit",
	                                 WAIT_MS));
	for (int i = 0; i < 3; i++)
		EVENT("kind=slot to=running", WAIT_MS);
	ck_assert_int_eq(h_sh(out, sizeof out, "'%s' --rundir '%s' call ok",
	                      h_ctl(), H.rundir), 0);
	ck_assert_str_eq(out, "ok");
}
END_TEST

/* ---- signals ---- */

/* Every signal an operator may send is logged as an event and acted on;
 * none kills the supervisor by its default action. */
START_TEST(every_documented_signal_is_handled)
{
	START("-w", "1", "--reload-gate", "100ms", h_bin("examples/echo.so"));
	EVENT("kind=slot to=running", WAIT_MS);
	kill(H.sup, SIGPIPE); /* ignored */
	kill(H.sup, SIGUSR1);
	EVENT("kind=signal to=SIGUSR1", WAIT_MS);
	kill(H.sup, SIGUSR2);
	EVENT("kind=signal to=SIGUSR2", WAIT_MS);
	kill(H.sup, SIGTTIN);
	EVENT("kind=signal to=SIGTTIN", WAIT_MS);
	EVENT("kind=scale to=done", WAIT_MS);
	kill(H.sup, SIGTTOU);
	EVENT("kind=signal to=SIGTTOU", WAIT_MS);
	EVENT("kind=scale to=done", WAIT_MS);
	kill(H.sup, SIGHUP);
	EVENT("kind=signal to=SIGHUP", WAIT_MS);
	EVENT("kind=reload to=done", WAIT_MS);
	char out[256];
	ck_assert_int_eq(h_sh(out, sizeof out, "'%s' --rundir '%s' call up",
	                      h_ctl(), H.rundir), 0);
	ck_assert_str_eq(out, "up");
	kill(H.sup, SIGQUIT); /* graceful, like TERM */
	EVENT("kind=signal to=SIGQUIT", WAIT_MS);
	ck_assert_int_eq(h_wait_exit(&H, WAIT_MS), 0);
	ck_assert_int_ne(access(H.rundir, F_OK), 0);
}
END_TEST

/* systemd's KillMode=control-group: SIGTERM reaches the supervisor and
 * every worker at once.  The workers stop gracefully (exit 0, not a
 * crash), none is replaced, and corral exits 0. */
START_TEST(sigterm_to_everyone_at_once_is_a_clean_stop)
{
	START("-w", "3", "--standby", "0", h_bin("examples/echo.so"));
	pid_t p[3];
	for (int i = 0; i < 3; i++)
		p[i] = (pid_t)EVENT("kind=slot to=running", WAIT_MS)->pid;
	kill(p[0], SIGTERM);
	kill(H.sup, SIGTERM);
	kill(p[1], SIGTERM);
	kill(p[2], SIGTERM);
	ck_assert_int_eq(h_wait_exit(&H, WAIT_MS), 0);
	/* log: events are not readable once corral has exited */
	ck_assert_int_eq(h_log_event_count(&H, "kind=slot to=starting"), 3);
	ck_assert_int_eq(h_log_event_count(&H, "kind=slot to=spawning"), 3);
}
END_TEST

/* A supervisor stopped (SIGSTOP, a paused VM) past heartbeat_timeout
 * must not take its healthy workers for hung when it resumes. */
START_TEST(a_stopped_supervisor_kills_no_healthy_worker)
{
	START("-w", "2", "--heartbeat-timeout", "1s", "--health-interval",
	      "200ms", h_bin("examples/echo.so"));
	pid_t p[2];
	for (int i = 0; i < 2; i++)
		p[i] = (pid_t)EVENT("kind=slot to=running", WAIT_MS)->pid;
	kill(H.sup, SIGSTOP);
	sleep_ms(2500);
	kill(H.sup, SIGCONT);
	/* Well past the heartbeat timeout again, after the resume. */
	sleep_ms(2000);
	char out[256];
	ck_assert_int_eq(h_sh(out, sizeof out, "'%s' --rundir '%s' call x",
	                      h_ctl(), H.rundir), 0);
	ck_assert_int_eq(h_event_count(&H, "kind=slot to=exited"), 0);
	ck_assert(alive(p[0]) && alive(p[1]));
}
END_TEST

/* The worker binary removed under a running corral (a botched upgrade):
 * the standby refill fails, says which file, and backs off like a slot's
 * restarts instead of trying every second for good; the slot itself is
 * served by the standby that was ready. */
START_TEST(a_missing_worker_binary_is_named_and_backed_off)
{
	char bin[128], out[512];
	ck_assert_int_eq(h_prepare(&H), 0); /* H.dir goes with h_cleanup */
	snprintf(bin, sizeof bin, "%s/corral-worker", H.dir);
	ck_assert_int_eq(h_sh(out, sizeof out, "cp '%s' '%s'",
	                      h_bin("corral-worker"), bin), 0);
	setenv("CORRAL_WORKER", bin, 1);
	START("-w", "1", "--standby", "1", h_bin("examples/echo.so"));
	unsetenv("CORRAL_WORKER");
	pid_t p = (pid_t)EVENT("kind=slot to=running", WAIT_MS)->pid;
	ck_assert_ptr_nonnull(h_log_find(&H, "standby pid|ready", WAIT_MS));
	ck_assert_int_eq(unlink(bin), 0);
	kill(p, SIGKILL);
	const ipc_event *e = EVENT("kind=slot to=running", WAIT_MS);
	ck_assert_int_ne(e->pid, p); /* the standby took the slot */
	char needle[300];
	snprintf(needle, sizeof needle, "standby|spawn of %s failed|next try "
	         "in", bin);
	ck_assert_ptr_nonnull(h_log_find(&H, needle, WAIT_MS));
	sleep_ms(3000);
	h_read_log(&H, 100);
	/* 100, 100, 200, 400, 800, 1600 ms apart (+-20 %, at least 100):
	 * about 7 in 3 s, the gaps doubling, where a fixed 100 ms would be
	 * 30 and one per loop turn thousands. */
	int tries = h_count(&H, "next try in");
	ck_assert_msg(tries >= 3 && tries <= 9, "%d tries in 3 s", tries);
	ck_assert_int_eq(h_sh(out, sizeof out, "'%s' --rundir '%s' call x",
	                      h_ctl(), H.rundir), 0);
	ck_assert_str_eq(out, "x");
}
END_TEST

static Suite *harden_suite(void)
{
	Suite *s = suite_create("harden");
	/* One case per test: CK_RUN_CASE=name runs one alone. */
#define CASE(t) H_CASE(s, t, teardown, 60)
	CASE(a_second_instance_is_refused_by_the_lock);
	CASE(what_a_killed_instance_left_is_cleared);
	CASE(what_a_worker_started_dies_with_it);
	CASE(kill_mode_process_leaves_them_and_shutdown_does_not_wait);
	CASE(an_escaped_process_is_reaped_and_stopped_by_corral);
	CASE(corral_as_pid_1_reaps_orphans_and_stops_on_sigterm);
	CASE(an_inherited_descriptor_reaches_no_worker);
	CASE(a_low_open_file_limit_is_named_not_a_crash);
	CASE(every_documented_signal_is_handled);
	CASE(sigterm_to_everyone_at_once_is_a_clean_stop);
	CASE(a_stopped_supervisor_kills_no_healthy_worker);
	CASE(a_missing_worker_binary_is_named_and_backed_off);
#undef CASE
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(harden_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
