/*
 * test_sup.c - the slot lifecycle table and the supervisor's reconciler,
 * without processes.
 *
 * The real master/sup.c, slot.c (the table, messages, exits), events.c,
 * status.c, policy.c and conf.c are linked with fakes for what touches the
 * world: the slot actions (slot_act.c: spawn, stop, kill, reap), the
 * broker, the control socket and the standbys.  A test scripts which spawns
 * fail, feeds READY and exits the way the real callbacks would, sends real
 * signals to itself, turns the real libuv loop, and checks the states, the
 * actions taken and the exit code -- ending with uv_loop_close() == 0.
 */
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "corral_base.h"
#include "master/notify.h"
#include "master/sup.h"

#define MAXS 4

/* ---- fakes: slot actions ---- */

static int g_spawn_fail[MAXS]; /* spawns of slot i still to fail */
static int g_spawns[MAXS], g_stops[MAXS], g_kills[MAXS];
static int g_dummy_proc;
static int64_t g_next_pid = 1000;

void slot_spawn(slot *sl, uv_loop_t *loop, const worker_spec *spec,
                unsigned gen, const char *url, proc *spare_proc,
                ipc_chan *spare_chan, int64_t spare_pid)
{
	(void)loop, (void)spec, (void)url, (void)spare_proc, (void)spare_chan;
	sl->gen = gen;
	(void)spare_pid;
	sl->killed = sl->kill_wanted = sl->due = 0;
	sl->ready_us = 0;
	sl->pid = 0;
	slot_event(sl, SLOT_EV_START, "spawning");
	g_spawns[sl->id]++;
	if (g_spawn_fail[sl->id] > 0) {
		g_spawn_fail[sl->id]--;
		sl->failed = 1;
		sl->last_uptime_ms = 0;
		slot_event(sl, SLOT_EV_SPAWN_FAILED, "cannot listen: busy");
		return;
	}
	sl->proc = (proc *)&g_dummy_proc;
	sl->pid = g_next_pid++;
	slot_event(sl, SLOT_EV_SPAWNED, "spawned");
}

void slot_stop(slot *sl, uint64_t timeout_ms)
{
	(void)timeout_ms;
	g_stops[sl->id]++;
	slot_event(sl, SLOT_EV_STOP, "stopping: STOP sent");
}

void slot_kill_now(slot *sl)
{
	if (!sl->proc || sl->killed)
		return;
	sl->killed = 1;
	g_kills[sl->id]++;
}

void slot_reap(slot *sl)
{
	sl->proc = NULL;
	sl->reap = 0;
	sl->kill_wanted = 0;
	sl->have_health = 0;
}

void slot_take_over(slot *sl, proc *p, ipc_chan *chan, int64_t pid,
                    unsigned gen, unsigned lane, uint64_t ready_us,
                    const ipc_health *health, const char *why)
{
	(void)sl, (void)p, (void)chan, (void)pid, (void)gen, (void)lane;
	(void)ready_us, (void)health, (void)why;
	ck_abort_msg("no rollout in these tests");
}

int slot_send(slot *sl, nng_msg *msg)
{
	(void)sl;
	nng_msg_free(msg);
	return 0;
}

/* ---- fakes: broker, control, standbys ---- */

static int g_broker_empty = 1, g_aborts, g_gone[2 * MAXS], g_up[2 * MAXS];
static broker_ops g_bops;
static void *g_bctx;
static int g_dummy;

int broker_open(broker **out, uv_loop_t *loop, const broker_config *cfg,
                const broker_ops *ops, void *ctx)
{
	(void)loop, (void)cfg;
	g_bops = *ops;
	g_bctx = ctx;
	*out = (broker *)&g_dummy;
	return 0;
}
void broker_close(broker *b) { (void)b; }
void broker_worker_set(broker *b, unsigned id, int takes, uint64_t lag)
{
	(void)b, (void)lag;
	g_up[id] = takes;
}
void broker_worker_gone(broker *b, unsigned id)
{
	(void)b;
	g_gone[id]++;
	g_up[id] = 0;
}
void broker_on_reply(broker *b, unsigned id, const ipc_frame *f)
{
	(void)b, (void)id, (void)f;
}
unsigned broker_inflight(const broker *b) { (void)b; return 0; }
const char *broker_url(const broker *b) { (void)b; return ""; }
unsigned broker_slot_jobs(const broker *b, unsigned s) { (void)b, (void)s; return 0; }
int broker_slot_degraded(const broker *b, unsigned s) { (void)b, (void)s; return 0; }
void broker_get_stats(const broker *b, broker_stats *st)
{
	(void)b;
	memset(st, 0, sizeof *st);
}
int broker_drain(broker *b) { (void)b; return g_broker_empty; }
int broker_empty(const broker *b) { (void)b; return g_broker_empty; }
void broker_abort(broker *b)
{
	(void)b;
	g_aborts++;
	g_broker_empty = 1;
}

int control_open(control **out, uv_loop_t *loop, const char *url,
                 const control_ops *ops, void *ctx, evlog *ev)
{
	(void)loop, (void)url, (void)ops, (void)ctx, (void)ev;
	*out = (control *)&g_dummy;
	return 0;
}
void control_close(control *c) { (void)c; }
static struct {
	ipc_req *req;
	ipc_cmd_result r;
} g_answers[8];
static int g_nanswers;
void control_answer(ipc_req *req, const ipc_cmd_result *r)
{
	if (g_nanswers < 8)
		g_answers[g_nanswers++] = (typeof(g_answers[0])){req, *r};
}

int standby_pool_init(standby_pool *p, uv_loop_t *loop, unsigned n,
                      const restart_policy *pol, const standby_hooks *hooks,
                      void *owner)
{
	(void)loop, (void)n, (void)pol, (void)hooks, (void)owner;
	memset(p, 0, sizeof *p);
	return 0;
}
void standby_pool_close(standby_pool *p) { (void)p; }
void standby_reconcile(standby_pool *p, standby_want want, int kill_now,
                       const worker_spec *spec, unsigned gen,
                       const char *plugin_id, const char *rundir,
                       uint64_t stop_ms)
{
	(void)p, (void)want, (void)kill_now, (void)spec, (void)rundir;
	(void)stop_ms, (void)gen, (void)plugin_id;
}
int standby_take(standby_pool *p, unsigned gen, const char *plugin_id,
                 proc **pr, ipc_chan **ch, int64_t *pid)
{
	(void)p, (void)pr, (void)ch, (void)pid, (void)gen, (void)plugin_id;
	return 0;
}
int standby_idle(const standby_pool *p) { (void)p; return 1; }
void notify_reloading(void) {}
void notify_reloaded(int ok) { (void)ok; }
const char *standby_state_name(standby_state st)
{
	(void)st;
	return "fake";
}

/* ---- driving ---- */

static uv_loop_t L;
static config C;
static sup S;

static void setup(void)
{
	memset(g_spawn_fail, 0, sizeof g_spawn_fail);
	memset(g_spawns, 0, sizeof g_spawns);
	memset(g_stops, 0, sizeof g_stops);
	memset(g_kills, 0, sizeof g_kills);
	memset(g_gone, 0, sizeof g_gone);
	memset(g_up, 0, sizeof g_up);
	g_broker_empty = 1;
	g_aborts = 0;
	g_nanswers = 0;
	ck_assert_int_eq(uv_loop_init(&L), 0);
	config_defaults(&C);
	C.workers = 2;
	C.standby = 0;
}

static void start(void)
{
	sup_params sp = {.worker_bin = "/nonexistent/corral-worker",
	                 .rundir = "/tmp/corral-test-sup"};
	ck_assert_int_eq(sup_init(&S, &L, &C, &sp), 0);
	sup_dirty(&S);
}

/* Runs loop turns until nothing is left to decide (or the loop ends). */
static void turn(void)
{
	for (int i = 0; i < 20; i++) {
		uv_run(&L, UV_RUN_NOWAIT);
		if (!S.dirty || S.state == SUP_DONE)
			return;
	}
	ck_abort_msg("the reconciler never settled");
}

static void ready(int i)
{
	slot_event(S.slots[i], SLOT_EV_READY, "ready in 1 ms");
	turn();
}

static void dies(int i, int code, int sig)
{
	slot_exited(S.slots[i], code, sig);
	turn();
}

/* The supervisor ended: the loop runs dry and closes clean. */
static int finish(void)
{
	ck_assert_int_eq(S.state, SUP_DONE);
	uv_run(&L, UV_RUN_DEFAULT);
	ck_assert_int_eq(uv_loop_close(&L), 0);
	int code = S.exit_code;
	for (unsigned i = 0; i < S.nslots; i++)
		free(S.slots[i]);
	free(S.slots);
	evlog_free(&S.events);
	for (int i = 0; i < SUP_MAX_GENS; i++)
		gen_free(S.gens[i]);
	config_free(&C);
	return code;
}

static int count_events(const char *to, int id)
{
	ipc_event buf[IPC_MAX_EVENTS];
	int n = 0;
	uint64_t since = 0;
	uint32_t got;
	while ((got = evlog_copy(&S.events, since, buf, IPC_MAX_EVENTS))) {
		for (uint32_t k = 0; k < got; k++)
			n += strcmp(buf[k].to, to) == 0 && buf[k].slot == id;
		since = buf[got - 1].seq;
	}
	return n;
}

/* ---- the table: every state x event ---- */

static int g_dirty_calls;
static void t_dirty(void *o) { (void)o; g_dirty_calls++; }
static void t_reply(void *o, slot *sl, const ipc_frame *f)
{
	(void)o, (void)sl, (void)f;
}
static void t_bad(void *o, slot *sl, int code) { (void)o, (void)sl, (void)code; }
static const slot_hooks t_hooks = {.dirty = t_dirty, .reply = t_reply,
                                   .bad_frame = t_bad};

#define ILL (-1)
/* The lifecycle as DESIGN.md draws it, written out independently of the
 * table in slot.c: next state per (state, event); ILL = not legal. */
static const int expect_next[SLOT_NSTATES][SLOT_NEVENTS] = {
	/*              HELLO     READY     HEALTH    EXIT     TIMEOUT   START     SPAWNED   SPAWN_F  STOP      KILL     RESTART  GIVE_UP DONE  SWAPPED */
	[SLOT_SPAWNING] = {ILL, ILL, ILL, ILL, ILL, ILL, SLOT_STARTING, SLOT_EXITED, ILL, ILL, ILL, ILL, ILL, ILL},
	[SLOT_STARTING] = {SLOT_STARTING, SLOT_RUNNING, SLOT_STARTING, SLOT_EXITED, SLOT_STARTING, ILL, ILL, ILL, SLOT_STOPPING, SLOT_STARTING, ILL, ILL, ILL, ILL},
	[SLOT_RUNNING] = {ILL, ILL, SLOT_RUNNING, SLOT_EXITED, SLOT_RUNNING, ILL, ILL, ILL, SLOT_STOPPING, SLOT_RUNNING, ILL, ILL, ILL, SLOT_RUNNING},
	[SLOT_STOPPING] = {SLOT_STOPPING, SLOT_STOPPING, SLOT_STOPPING, SLOT_STOPPED, SLOT_STOPPING, ILL, ILL, ILL, SLOT_STOPPING, SLOT_STOPPING, ILL, ILL, ILL, ILL},
	[SLOT_STOPPED] = {ILL, ILL, SLOT_STOPPED, ILL, ILL, SLOT_SPAWNING, ILL, ILL, SLOT_STOPPED, ILL, ILL, ILL, ILL, ILL},
	[SLOT_EXITED] = {ILL, ILL, SLOT_EXITED, ILL, ILL, ILL, ILL, ILL, SLOT_STOPPED, ILL, SLOT_BACKOFF, SLOT_FAILED, SLOT_STOPPED, ILL},
	[SLOT_BACKOFF] = {ILL, ILL, SLOT_BACKOFF, ILL, SLOT_BACKOFF, SLOT_SPAWNING, ILL, ILL, SLOT_STOPPED, ILL, ILL, ILL, ILL, ILL},
	[SLOT_FAILED] = {ILL, ILL, SLOT_FAILED, ILL, ILL, SLOT_SPAWNING, ILL, ILL, SLOT_FAILED, ILL, ILL, ILL, ILL, ILL},
};

START_TEST(table_every_state_and_event)
{
	restart_policy pol = {.delay_max_ms = 1000, .window_ms = 1000,
	                      .max_restarts = 3};
	slot_timeouts to = {.start_ms = 1000, .heartbeat_ms = 1000,
	                    .shutdown_ms = 1000};
	ck_assert_int_eq(uv_loop_init(&L), 0);
	for (int st = 0; st < SLOT_NSTATES; st++) {
		for (int ev = 0; ev < SLOT_NEVENTS; ev++) {
			slot sl;
			ck_assert_int_eq(slot_init(&sl, &L, 0, &pol, &to,
			                           &t_hooks, NULL), 0);
			sl.state = (slot_state)st;
			int live = st == SLOT_STARTING || st == SLOT_RUNNING ||
			           st == SLOT_STOPPING;
			sl.proc = live ? (proc *)&g_dummy_proc : NULL;
			int rc = slot_event(&sl, (slot_ev)ev, "test");
			int want = expect_next[st][ev];
			if (want == ILL) {
				ck_assert_msg(rc == -1 && (int)sl.state == st,
				              "%s in %s should be ignored",
				              slot_event_name((slot_ev)ev),
				              slot_state_name((slot_state)st));
			} else {
				ck_assert_msg(rc == 0 && (int)sl.state == want,
				              "%s in %s: got %s, want %s",
				              slot_event_name((slot_ev)ev),
				              slot_state_name((slot_state)st),
				              slot_state_name(sl.state),
				              slot_state_name((slot_state)want));
			}
			/* What the effects record. */
			if (ev == SLOT_EV_EXIT && want != ILL)
				ck_assert(sl.reap);
			if (ev == SLOT_EV_TIMEOUT && live)
				ck_assert(sl.kill_wanted && sl.kill_reason[0]);
			if (ev == SLOT_EV_TIMEOUT && st == SLOT_BACKOFF)
				ck_assert(sl.due);
			sl.proc = NULL;
			slot_close(&sl);
			uv_run(&L, UV_RUN_NOWAIT);
		}
	}
	ck_assert_int_eq(uv_loop_close(&L), 0);
}
END_TEST

START_TEST(rest_states_are_stopped_and_failed)
{
	slot sl;
	memset(&sl, 0, sizeof sl);
	for (int st = 0; st < SLOT_NSTATES; st++) {
		sl.state = (slot_state)st;
		sl.want = WANT_DOWN;
		ck_assert_int_eq(slot_at_rest(&sl),
		                 st == SLOT_STOPPED || st == SLOT_FAILED);
		ck_assert_int_eq(slot_finished(&sl),
		                 st == SLOT_STOPPED || st == SLOT_FAILED);
		sl.want = WANT_UP; /* a slot still wanted up is not finished */
		ck_assert_int_eq(slot_finished(&sl), st == SLOT_FAILED);
	}
}
END_TEST

/* ---- the reconciler ---- */

START_TEST(failed_spawn_of_one_slot_leaves_the_other_supervised)
{
	C.restart = RESTART_NEVER;
	g_spawn_fail[0] = 1;
	start();
	turn();
	ck_assert_int_eq(S.slots[0]->state, SLOT_FAILED);
	ck_assert_int_eq(S.slots[1]->state, SLOT_STARTING);
	ck_assert_int_eq(S.state, SUP_RUNNING);
	ready(1);
	ck_assert_int_eq(S.slots[1]->state, SLOT_RUNNING);
	ck_assert_int_eq(S.state, SUP_RUNNING);
	ck_assert(g_up[sup_lane(1, 0)] && !g_up[sup_lane(0, 0)]);
	/* Still supervised: its death is noticed, and now nothing is left. */
	dies(1, 1, 0);
	ck_assert_int_eq(S.slots[1]->state, SLOT_FAILED);
	ck_assert_int_eq(g_gone[sup_lane(1, 0)], 1);
	turn();
	ck_assert_int_eq(finish(), CORRAL_EXIT_FAILED);
	ck_assert_int_eq(g_spawns[0], 1);
	ck_assert_int_eq(g_spawns[1], 1);
}
END_TEST

START_TEST(crash_restarts_then_crash_loop_fails)
{
	C.workers = 1;
	C.max_restarts = 2;
	C.restart_delay_ms = 0;
	start();
	turn();
	for (int i = 0; i < 3; i++) {
		ready(0);
		dies(0, 0, SIGSEGV);
		if (i < 2) {
			/* Backoff of 0 ms: spawned again on the next turns. */
			while (S.slots[0]->state == SLOT_BACKOFF)
				uv_run(&L, UV_RUN_ONCE);
			turn();
			ck_assert_int_eq(S.slots[0]->state, SLOT_STARTING);
			ck_assert_int_eq(count_events("backoff", 0), i + 1);
		}
	}
	ck_assert_int_eq(S.slots[0]->state, SLOT_FAILED);
	ck_assert_int_eq(S.slots[0]->restarts, 2);
	ck_assert_int_eq(g_spawns[0], 3);
	ck_assert_int_eq(count_events("backoff", 0), 2);
	turn();
	ck_assert_int_eq(finish(), CORRAL_EXIT_FAILED);
}
END_TEST

/* A SIGTERM to the whole process group reaches a worker and the
 * supervisor together: the worker's exit must not be replaced. */
START_TEST(exit_in_the_same_turn_as_sigterm_is_not_replaced)
{
	start();
	turn();
	ready(0);
	ready(1);
	slot_exited(S.slots[0], 0, 0); /* stopped on its own SIGTERM */
	raise(SIGTERM);
	for (int i = 0; i < 5; i++)
		uv_run(&L, UV_RUN_NOWAIT);
	turn();
	ck_assert_int_eq(S.slots[0]->state, SLOT_STOPPED);
	ck_assert_int_eq(S.slots[1]->state, SLOT_STOPPING);
	ck_assert_int_eq(S.state, SUP_STOPPING);
	dies(1, 0, 0);
	turn();
	ck_assert_int_eq(finish(), CORRAL_EXIT_OK);
	ck_assert_int_eq(g_spawns[0], 1);
	ck_assert_int_eq(g_spawns[1], 1);
}
END_TEST

START_TEST(second_signal_kills_and_never_restarts)
{
	start();
	turn();
	ready(0);
	ready(1);
	raise(SIGINT);
	while (S.state != SUP_STOPPING)
		uv_run(&L, UV_RUN_ONCE);
	turn();
	ck_assert_int_eq(g_stops[0] + g_stops[1], 2);
	raise(SIGINT);
	while (!g_kills[0] || !g_kills[1])
		uv_run(&L, UV_RUN_ONCE);
	dies(0, 0, SIGKILL);
	dies(1, 0, SIGKILL);
	turn();
	ck_assert_int_eq(finish(), CORRAL_EXIT_KILLED);
	ck_assert_int_eq(g_spawns[0] + g_spawns[1], 2);
}
END_TEST

START_TEST(worker_dying_while_jobs_drain_is_not_replaced)
{
	start();
	turn();
	ready(0);
	ready(1);
	g_broker_empty = 0; /* jobs in flight */
	raise(SIGTERM);
	while (S.state != SUP_DRAINING)
		uv_run(&L, UV_RUN_ONCE);
	/* Draining: the workers keep running for their jobs. */
	ck_assert_int_eq(S.slots[0]->state, SLOT_RUNNING);
	dies(0, 0, SIGSEGV);
	ck_assert_int_eq(S.slots[0]->state, SLOT_STOPPED);
	ck_assert_int_eq(S.state, SUP_DRAINING);
	dies(1, 0, SIGSEGV);
	/* No worker left to finish the jobs: they are answered at once. */
	ck_assert_int_eq(g_aborts, 1);
	turn();
	ck_assert_int_eq(finish(), CORRAL_EXIT_KILLED); /* crashed stopping */
	ck_assert_int_eq(g_spawns[0] + g_spawns[1], 2);
}
END_TEST

START_TEST(hung_worker_is_killed_and_restarted)
{
	C.workers = 1;
	C.heartbeat_timeout_ms = 1;
	start();
	turn();
	ready(0);
	while (!g_kills[0])
		uv_run(&L, UV_RUN_ONCE);
	ck_assert_ptr_nonnull(strstr(S.slots[0]->kill_reason, "hung"));
	dies(0, 0, SIGKILL);
	ck_assert_int_eq(count_events("backoff", 0), 1);
	ck_assert_int_eq(g_spawns[0], 2);
	raise(SIGTERM);
	while (S.slots[0]->state != SLOT_STOPPING)
		uv_run(&L, UV_RUN_ONCE);
	dies(0, 0, 0);
	turn();
	ck_assert_int_eq(finish(), CORRAL_EXIT_OK);
}
END_TEST

/* nng's REQ resends a command whose connection closed: it joins the
 * one in progress (answered on the new request), and after the answer it
 * gets that answer again; the command never runs twice. */
START_TEST(a_resent_command_runs_once)
{
	start();
	turn();
	ready(0);
	ready(1);
	ipc_cmd cmd = {.cmd = "scale", .nargs = 1, .args = {"+1"}, .id = 77};
	int r1, r2, r3, other;
	sup_op_command(&S, (ipc_req *)&r1, &cmd);
	turn();
	sup_op_command(&S, (ipc_req *)&r2, &cmd); /* the resend */
	turn();
	ck_assert_int_eq(S.nslots, 3);
	ck_assert_int_eq(g_nanswers, 1); /* r1: moved to r2 */
	ck_assert_ptr_eq(g_answers[0].req, (ipc_req *)&r1);
	ready(2);
	turn();
	ck_assert_int_eq(g_nanswers, 2);
	ck_assert_ptr_eq(g_answers[1].req, (ipc_req *)&r2);
	ck_assert(g_answers[1].r.ok);
	sup_op_command(&S, (ipc_req *)&r3, &cmd); /* late: the answer */
	ck_assert_int_eq(g_nanswers, 3);
	ck_assert_ptr_eq(g_answers[2].req, (ipc_req *)&r3);
	ck_assert_str_eq(g_answers[2].r.msg, g_answers[1].r.msg);
	ck_assert_int_eq(S.nslots, 3);
	/* Another id is another command. */
	cmd.id = 78;
	sup_op_command(&S, (ipc_req *)&other, &cmd);
	turn();
	ck_assert_int_eq(S.nslots, 4);
	ready(3);
	raise(SIGTERM);
	while (S.state != SUP_STOPPING)
		uv_run(&L, UV_RUN_ONCE);
	for (int i = 0; i < 4; i++)
		dies(i, 0, 0);
	turn();
	ck_assert_int_eq(finish(), CORRAL_EXIT_OK);
}
END_TEST

Suite *sup_suite(void);
Suite *sup_suite(void)
{
	Suite *s = suite_create("sup");
	TCase *tc = tcase_create("table");
	tcase_add_test(tc, table_every_state_and_event);
	tcase_add_test(tc, rest_states_are_stopped_and_failed);
	suite_add_tcase(s, tc);
	tc = tcase_create("reconciler");
	tcase_add_checked_fixture(tc, setup, NULL);
	tcase_set_timeout(tc, 10);
	tcase_add_test(tc, failed_spawn_of_one_slot_leaves_the_other_supervised);
	tcase_add_test(tc, crash_restarts_then_crash_loop_fails);
	tcase_add_test(tc, exit_in_the_same_turn_as_sigterm_is_not_replaced);
	tcase_add_test(tc, second_signal_kills_and_never_restarts);
	tcase_add_test(tc, worker_dying_while_jobs_drain_is_not_replaced);
	tcase_add_test(tc, hung_worker_is_killed_and_restarted);
	tcase_add_test(tc, a_resent_command_runs_once);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(sup_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
