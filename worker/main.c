/*
 * main.c - corral-worker, the process that hosts one plugin.
 *
 * Started only by the supervisor (fork+exec through uv_spawn; nng is not
 * fork-safe), never by users.  Life of a worker:
 *
 *   dial ipc://RUNDIR/slot-N -> dlopen + ABI check -> HELLO -> init -> READY
 *   -> loop (HEALTH every interval) -> STOP or SIGTERM -> plugin stop ->
 *   loop runs dry -> fini -> loop closed -> exit 0
 *
 * A standby worker (--standby) stops after HELLO, with everything costly
 * done (exec, linking, nng threads, dlopen), until the supervisor sends
 * ASSIGN with the slot whose worker just died; then it runs init and sends
 * READY.  That is what makes a restart take well under a millisecond.
 *
 * It never outlives the supervisor: PR_SET_PDEATHSIG(SIGKILL), a getppid()
 * check right after it (the parent may already be gone), and an exit as soon
 * as the nng pipe to the supervisor closes.  Exit codes are in worker.h.
 *
 * With --user (the supervisor's `user` option) it is exec'd as root and
 * switches itself first thing, before nng, dlopen or any plugin code:
 * initgroups, setgid, setuid, proof that setuid(0) fails (common/priv.c),
 * then PR_SET_PDEATHSIG again, since the kernel clears it on a credential
 * change, and the getppid() check again.  A failed switch exits 78.
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "common/log.h"
#include "common/priv.h"
#include "worker/worker.h"

static uv_signal_t sig_term;
static int64_t self_pid; /* getpid() is a system call each time */
corral_worker *worker_self;

static void die_fatal(const char *what)
{
	log_plain("fatal: %s", what);
	exit(CORRAL_EXIT_FATAL);
}

static void usage_fatal(const char *what)
{
	log_plain("%s (corral-worker is started by corral, not by hand)", what);
	exit(CORRAL_EXIT_FATAL);
}

static void send_or_log(corral_worker *w, nng_msg *msg, int rc,
                        const char *what)
{
	if (!rc)
		rc = ipc_chan_send(w->chan, msg);
	if (rc)
		log_plain("warn: cannot send %s: %s", what, corral_strerror(rc));
}

static void send_health(corral_worker *w)
{
	ipc_health h;
	health_snapshot s;
	nng_msg *msg = NULL;
	health_take(&w->health, &w->loop, &s);
	memset(&h, 0, sizeof h);
	h.pid = self_pid;
	h.uptime_ms = s.uptime_ms;
	h.rss_bytes = s.rss_bytes;
	h.cpu_us = s.cpu_us;
	h.lag_p50_us = s.lag_p50_us;
	h.lag_p99_us = s.lag_p99_us;
	h.lag_max_us = s.lag_max_us;
	h.util = s.util;
	pool_stats ps;
	pool_stats_take(w->pool, &ps);
	h.pool = (ipc_pool_stats){
		.submitted = ps.submitted, .completed = ps.completed,
		.rejected = ps.rejected, .expired = ps.expired,
		.cancelled = ps.cancelled,
		.queued_critical = ps.queued[0], .queued_high = ps.queued[1],
		.queued_normal = ps.queued[2], .queued_low = ps.queued[3],
		.running = ps.running,
		.wait_p50_us = ps.wait_p50_us, .wait_p99_us = ps.wait_p99_us,
		.run_p50_us = ps.run_p50_us, .run_p99_us = ps.run_p99_us,
		.oldest_running_ms = ps.oldest_running_ms,
	};
	h.jobs = jobs_inflight(w->jobs);
	h.jobs_done = jobs_done(w->jobs);
	h.nmetrics = w->nmetrics;
	memcpy(h.metrics, w->metrics, w->nmetrics * sizeof h.metrics[0]);
	int rc = ipc_pack_health(&msg, &h);
	send_or_log(w, msg, rc, "HEALTH");
}

static void on_health_timer(uv_timer_t *t)
{
	send_health(t->data);
}

/* Graceful stop: the plugin stops taking work; our own handles stop holding
 * the loop open, so it ends when the plugin's last handle closes. */
static void begin_stop(corral_worker *w)
{
	if (w->phase == WPHASE_STOPPING)
		return;
	int was_running = w->phase == WPHASE_RUNNING;
	w->phase = WPHASE_STOPPING;
	/* Nothing more from the shared queues: the other workers take it. */
	wlisten_stop(w);
	if (was_running) {
		if (w->ops.stop)
			w->ops.stop(w);
		uv_unref((uv_handle_t *)&w->health_timer);
		health_unref(&w->health);
	}
	/* Queued pool work runs (or is cancelled); the pool stops holding
	 * the loop open once every done has run. */
	pool_drain(w->pool, w->pool_drain_cancel);
	ipc_chan_unref(w->chan);
	uv_unref((uv_handle_t *)&sig_term);
}

/* init, health timers, READY: the second half of start-up, run at once by
 * a normal worker and on ASSIGN by a standby one. */
static void start_plugin(corral_worker *w)
{
	char why[512];
	nng_msg *msg = NULL;
	int rc;

	w->phase = WPHASE_INIT;
	if (w->ops.init && (rc = w->ops.init(w)) != 0) {
		snprintf(why, sizeof why, "plugin %s: init failed: %s",
		         w->ops.name ? w->ops.name : w->plugin_path,
		         corral_strerror(rc));
		if (w->ops.fini)
			w->ops.fini(w);
		die_fatal(why);
	}
	w->inited = 1;
	if (health_start(&w->health, &w->loop) != 0 ||
	    uv_timer_init(&w->loop, &w->health_timer) != 0)
		die_fatal("cannot start health timers");
	w->health_timer.data = w;
	uv_timer_start(&w->health_timer, on_health_timer, w->health_ms,
	               w->health_ms);
	w->phase = WPHASE_RUNNING;
	rc = ipc_pack_ready(&msg);
	send_or_log(w, msg, rc, "READY");
}

static void on_msg(ipc_chan *ch, nng_msg *msg, void *arg)
{
	corral_worker *w = arg;
	ipc_frame f;
	int rc = ipc_decode_msg(msg, IPC_MAX_FRAME, &f);
	if (rc) {
		log_plain("warn: dropped a bad frame from the supervisor: %s (%s)",
		          corral_errname(rc), corral_strerror(rc));
		return;
	}
	ipc_stop stop;
	ipc_assign assign;
	if (f.type == IPC_JOB && w->phase == WPHASE_RUNNING) {
		jobs_on_message(w->jobs, &f);
	} else if (f.type == IPC_CANCEL) {
		jobs_on_cancel(w->jobs, &f);
	} else if (f.type == IPC_STOP &&
	           (rc = ipc_unpack_stop(&f, &stop)) == 0) {
		begin_stop(w);
	} else if (f.type == IPC_ASSIGN && w->phase == WPHASE_STANDBY &&
	           (rc = ipc_unpack_assign(&f, &assign)) == 0) {
		w->slot = assign.slot;
		start_plugin(w);
	} else {
		log_plain("warn: dropped %s frame: %s", ipc_type_name(f.type),
		          rc ? corral_strerror(rc) : "unexpected here");
	}
	ipc_frame_fini(&f);
}

static void on_pipe(ipc_chan *ch, int up, void *arg)
{
	corral_worker *w = arg;
	(void)ch;
	if (up)
		return;
	if (w->phase == WPHASE_STOPPING)
		return; /* the deadline is the supervisor's; PDEATHSIG covers death */
	log_plain("lost the supervisor's connection; exiting");
	_exit(CORRAL_EXIT_TEMPFAIL);
}

static void on_sigterm(uv_signal_t *s, int signum)
{
	(void)signum;
	begin_stop(s->data);
}

static void close_leftover(uv_handle_t *h, void *arg)
{
	int *n = arg;
	if (!uv_is_closing(h)) {
		(*n)++;
		uv_close(h, NULL);
	}
}

static void parse_args(corral_worker *w, int argc, char **argv)
{
	static const struct option opts[] = {
		{"slot", required_argument, NULL, 's'},
		{"url", required_argument, NULL, 'u'},
		{"plugin", required_argument, NULL, 'p'},
		{"ppid", required_argument, NULL, 'P'},
		{"health-ms", required_argument, NULL, 'H'},
		{"set", required_argument, NULL, 'S'},
		{"standby", no_argument, NULL, 'B'},
		{"threads", required_argument, NULL, 'T'},
		{"max-queue", required_argument, NULL, 'Q'},
		{"aging-ms", required_argument, NULL, 'A'},
		{"pool-drain", required_argument, NULL, 'D'},
		{"user", required_argument, NULL, 'U'},
		{"uid", required_argument, NULL, 'I'},
		{"gid", required_argument, NULL, 'G'},
		{"check", no_argument, NULL, 'C'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0},
	};
	w->slot = -1;
	w->health_ms = 1000;
	w->pool_cfg = (pool_config){.threads = 2, .max_queue = 1024,
	                            .aging_ms = 100, .name = "corral-pool"};
	w->settings = calloc((size_t)argc, sizeof *w->settings);
	if (!w->settings)
		die_fatal("out of memory");
	int c;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		char *eq;
		switch (c) {
		case 's':
			w->slot = atoi(optarg);
			break;
		case 'u':
			w->url = optarg;
			break;
		case 'p':
			w->plugin_path = optarg;
			break;
		case 'P':
			w->ppid = atoll(optarg);
			break;
		case 'H':
			w->health_ms = strtoull(optarg, NULL, 10);
			break;
		case 'B':
			w->standby = 1;
			break;
		case 'T':
			w->pool_cfg.threads = (unsigned)atoi(optarg);
			break;
		case 'Q':
			w->pool_cfg.max_queue = (unsigned)atoi(optarg);
			break;
		case 'A':
			w->pool_cfg.aging_ms = strtoull(optarg, NULL, 10);
			break;
		case 'D':
			w->pool_drain_cancel = strcmp(optarg, "cancel") == 0;
			break;
		case 'U':
			w->user = optarg;
			break;
		case 'I':
			w->uid = atol(optarg);
			break;
		case 'G':
			w->gid = atol(optarg);
			break;
		case 'C':
			w->check_only = 1;
			break;
		case 'V':
			printf("corral-worker %s (plugin ABI %d)\n",
			       PACKAGE_VERSION, CORRAL_ABI_VERSION);
			exit(CORRAL_EXIT_OK);
		case 'S':
			eq = strchr(optarg, '=');
			if (!eq)
				usage_fatal("--set wants key=value");
			*eq = '\0';
			w->settings[w->nsettings].key = optarg;
			w->settings[w->nsettings].value = eq + 1;
			w->nsettings++;
			break;
		default:
			usage_fatal("bad arguments");
		}
	}
	if (w->check_only && w->plugin_path)
		return;
	if ((w->slot < 0 && !w->standby) || !w->url || !w->plugin_path ||
	    w->ppid <= 0 || w->health_ms == 0)
		usage_fatal("needs --slot or --standby, --url, --plugin, --ppid");
	if (w->user && (w->uid <= 0 || w->gid <= 0))
		usage_fatal("--user needs --uid and --gid above 0");
}

/* Becomes --user before anything else runs; see the top of this file. */
static void switch_user(corral_worker *w)
{
	char why[512];
	if (priv_switch(w->user, (uid_t)w->uid, (gid_t)w->gid, why,
	                sizeof why) != 0)
		die_fatal(why);
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != w->ppid) {
		log_plain("supervisor %lld is gone; exiting", (long long)w->ppid);
		exit(CORRAL_EXIT_TEMPFAIL);
	}
}

/* corral --check-config's child: load and check the plugin, run nothing. */
static int check_plugin(corral_worker *w)
{
	char why[512];
	if (plugin_load(w, why, sizeof why) != 0) {
		log_plain("%s", why);
		return CORRAL_EXIT_FATAL;
	}
	printf("plugin '%s' (abi %u) loads\n",
	       w->plugin->name ? w->plugin->name : "?", w->plugin->abi_version);
	return CORRAL_EXIT_OK;
}

/* The process itself: die with the supervisor (it may have died before
 * the prctl), become --user, take the listeners, ignore what the
 * supervisor decides on (SIGPIPE, the terminal's SIGINT).  0, or the exit
 * code. */
static int process_setup(corral_worker *w)
{
	char why[512];
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != w->ppid) {
		log_plain("supervisor %lld is gone; exiting", (long long)w->ppid);
		return CORRAL_EXIT_TEMPFAIL;
	}
	if (w->user)
		switch_user(w);
	if (wlisten_init(w, why, sizeof why) != 0)
		die_fatal(why);
	signal(SIGPIPE, SIG_IGN);
	signal(SIGINT, SIG_IGN);
	return 0;
}

/* The loop and the channel to the supervisor.  0, or the exit code. */
static int connect_supervisor(corral_worker *w)
{
	nng_socket sock;
	ipc_sockopts so = {.max_frame = IPC_MAX_FRAME, .bufs = 64};
	if (uv_loop_init(&w->loop) != 0)
		die_fatal("cannot create the event loop");
	uv_loop_configure(&w->loop, UV_METRICS_IDLE_TIME);
	int rc = ipc_pair_dial(&sock, w->url, &so);
	if (rc) {
		log_plain("cannot connect to %s: %s", w->url,
		          corral_strerror(rc));
		return CORRAL_EXIT_TEMPFAIL;
	}
	rc = ipc_chan_open(&w->chan, &w->loop, sock, 0, on_msg, on_pipe, w);
	if (rc) {
		log_plain("cannot open channel: %s", corral_strerror(rc));
		return CORRAL_EXIT_TEMPFAIL;
	}
	return 0;
}

/* The plugin loaded, the job table and the pool made, HELLO sent, SIGTERM
 * watched: everything but the plugin's init. */
static void prepare_plugin(corral_worker *w)
{
	char why[512];
	int rc;
	if (plugin_load(w, why, sizeof why) != 0)
		die_fatal(why);
	if (jobs_new(&w->jobs, w, &w->loop, w->chan) != 0)
		die_fatal("out of memory");
	if ((rc = pool_new(&w->pool, &w->loop, &w->pool_cfg)) != 0) {
		snprintf(why, sizeof why, "cannot start the thread pool: %s",
		         corral_strerror(rc));
		die_fatal(why);
	}
	ipc_hello hello = {.slot = w->slot, .pid = self_pid,
	                   .abi = CORRAL_ABI_VERSION};
	snprintf(hello.plugin, sizeof hello.plugin, "%s",
	         w->ops.name ? w->ops.name : "");
	nng_msg *msg = NULL;
	rc = ipc_pack_hello(&msg, &hello);
	send_or_log(w, msg, rc, "HELLO");
	if (uv_signal_init(&w->loop, &sig_term) != 0 ||
	    uv_signal_start(&sig_term, on_sigterm, SIGTERM) != 0)
		die_fatal("cannot watch SIGTERM");
	sig_term.data = w;
}

int main(int argc, char **argv)
{
	static corral_worker w;
	int rc;

	log_set_prog("corral-worker");
	worker_self = &w;
	self_pid = getpid();
	parse_args(&w, argc, argv);
	if (w.check_only)
		return check_plugin(&w);
	if ((rc = process_setup(&w)) != 0 || (rc = connect_supervisor(&w)))
		return rc;
	prepare_plugin(&w);

	if (w.standby)
		w.phase = WPHASE_STANDBY; /* the rest when ASSIGN comes */
	else
		start_plugin(&w);

	uv_run(&w.loop, UV_RUN_DEFAULT);

	/* The loop ran dry after stop: close our handles, then the plugin's. */
	if (w.inited) {
		uv_close((uv_handle_t *)&w.health_timer, NULL);
		health_close(&w.health);
	}
	uv_close((uv_handle_t *)&sig_term, NULL);
	/* libuv gave SIGTERM back its default action with the watcher: a
	 * SIGTERM now (a whole process group told to stop) would kill us in
	 * the middle of the stop it asks for. */
	signal(SIGTERM, SIG_IGN);
	jobs_flush(w.jobs);
	ipc_chan_close(w.chan);
	w.chan = NULL;
	pool_drain(w.pool, w.pool_drain_cancel); /* a no-op after a stop */
	uv_run(&w.loop, UV_RUN_DEFAULT);         /* remaining dones */
	pool_free(w.pool);
	w.pool = NULL;
	jobs_free(w.jobs);
	w.jobs = NULL;
	uv_run(&w.loop, UV_RUN_DEFAULT);
	if (w.inited && w.ops.fini)
		w.ops.fini(&w);
	int leftover = 0;
	uv_walk(&w.loop, close_leftover, &leftover);
	if (leftover)
		log_plain("warn: plugin left %d handle(s) open; closed them",
		          leftover);
	uv_run(&w.loop, UV_RUN_DEFAULT);
	rc = uv_loop_close(&w.loop);
	plugin_unload(&w);
	wlisten_fini(&w);
	free(w.settings);
	if (ipc_chan_wait_closed(1000) == 0)
		nng_fini(); /* else a socket is stuck closing: just exit */
	return rc == 0 ? CORRAL_EXIT_OK : CORRAL_EXIT_TEMPFAIL;
}
