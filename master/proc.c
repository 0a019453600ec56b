/*
 * proc.c - see proc.h.
 *
 * What a worker inherits, besides stdout and stderr: the shared listeners
 * of its spec as fds 3.., named in LISTEN_FDS and LISTEN_FDNAMES, and,
 * when the spec names a user, the user to switch to (--user/--uid/--gid,
 * master/privdrop.h; the socket it dials is chowned to that user just
 * before the spawn).  Nothing else: every other descriptor of the
 * supervisor is close-on-exec (main.c marks even the inherited ones).
 *
 * Each worker leads its own session and process group (setsid, libuv's
 * UV_PROCESS_DETACHED), so what a plugin starts can be found and killed
 * with it: kill_mode = group (the default) SIGKILLs what is left of the
 * group the moment the worker is reaped.  The supervisor is a child
 * subreaper, so whatever escapes the group still ends up as our child:
 * proc_reap_strays() reaps those (and, as PID 1 of a container, every
 * orphan), telling them from workers by the table of live procs below.
 */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "corral.h"
#include "common/list.h"
#include "common/log.h"
#include "master/proc.h"

extern char **environ;

#define LINE_MAX_BYTES 2048

typedef struct outpipe {
	uv_pipe_t pipe;
	proc *p;
	size_t len;
	char line[LINE_MAX_BYTES];
} outpipe;

struct proc {
	uv_process_t process;
	outpipe out, err;
	proc_exit_fn on_exit; /* NULL once detached */
	void *owner;
	int slot_id; /* -1 while a standby */
	int64_t pid;
	int open; /* handles not yet closed */
	int pipes_open; /* of them, output pipes */
	int exited; /* reaped by libuv */
	int kill_group; /* kill_mode = group */
	list_node node; /* on procs from spawn until freed */
};

/* Every proc not yet freed: the workers (and standbys) we spawned, told
 * apart from strays by pid, and the pipes to close at the very end. */
static list_head procs = LIST_INIT(procs);

static void proc_release(proc *p)
{
	if (--p->open == 0) {
		if (list_linked(&p->node))
			list_remove(&p->node);
		free(p);
	}
}

static void process_closed(uv_handle_t *h)
{
	proc_release(h->data);
}

static void pipe_closed(uv_handle_t *h)
{
	outpipe *o = h->data;
	o->p->pipes_open--;
	proc_release(o->p);
}

/* The level a worker's line was logged at, from the prefixes its log.c
 * and corral_log() write ("corral-worker: warning: ..."); a plugin's own
 * output is info. */
static log_level line_level(const char *s, size_t n)
{
	static const struct {
		const char *prefix;
		log_level lv;
	} levels[] = {{"error: ", LOG_ERROR}, {"warning: ", LOG_WARN},
	              {"warn: ", LOG_WARN},   {"info: ", LOG_INFO},
	              {"debug: ", LOG_DEBUG}};
	static const char prog[] = "corral-worker: ";
	if (n < sizeof prog - 1 || memcmp(s, prog, sizeof prog - 1) != 0)
		return LOG_INFO;
	s += sizeof prog - 1;
	n -= sizeof prog - 1;
	for (size_t i = 0; i < sizeof levels / sizeof levels[0]; i++) {
		size_t k = strlen(levels[i].prefix);
		if (n >= k && memcmp(s, levels[i].prefix, k) == 0)
			return levels[i].lv;
	}
	return LOG_INFO;
}

/* One line of the worker's output into the supervisor's log (and so into
 * its log ring and log file: common/log.h). */
static void emit(outpipe *o)
{
	log_relay(line_level(o->line, o->len), o->p->slot_id, o->p->pid,
	          o->line, o->len);
	o->len = 0;
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	static char chunk[65536]; /* loop thread only; consumed at once */
	(void)h;
	(void)hint;
	buf->base = chunk;
	buf->len = sizeof chunk;
}

static void on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf)
{
	outpipe *o = st->data;
	if (n < 0) {
		if (o->len)
			emit(o);
		uv_close((uv_handle_t *)st, pipe_closed);
		return;
	}
	for (ssize_t i = 0; i < n; i++) {
		char c = buf->base[i];
		if (c == '\n') {
			emit(o);
		} else {
			o->line[o->len++] = c;
			if (o->len == sizeof o->line)
				emit(o); /* overlong line: split it */
		}
	}
}

static void on_exit_cb(uv_process_t *ph, int64_t status, int term_signal)
{
	proc *p = ph->data;
	proc_exit_fn fn = p->on_exit;
	void *owner = p->owner;
	p->exited = 1;
	/* Now, not on the next reconcile: the group id stays ours only
	 * while something is in the group, and every moment it is empty
	 * the pid may be handed out again.  */
	if (p->kill_group && kill(-(pid_t)p->pid, SIGKILL) == 0)
		log_msg("%s pid %" PRId64 ": killed what was left of its "
		        "process group (kill_mode = group)",
		        p->slot_id >= 0 ? "worker" : "standby", p->pid);
	/* The owner lets go now: it must not touch p after this call. */
	p->on_exit = NULL;
	p->owner = NULL;
	if (fn)
		fn(owner, status, term_signal);
	uv_close((uv_handle_t *)ph, process_closed);
}

/* argv for corral-worker; the "key=value" strings are malloc()ed in kvs. */
enum { NUM_SLOT, NUM_PPID, NUM_HEALTH, NUM_THREADS, NUM_QUEUE, NUM_AGING,
       NUM_UID, NUM_GID, NUM_COUNT };

static char **build_args(const worker_spec *spec, int slot_id,
                         const char *url, char **kvs,
                         char nums[NUM_COUNT][32])
{
	const config *c = spec->cfg;
	char **args = calloc(32 + 2 * c->nsettings, sizeof *args);
	if (!args)
		return NULL;
	snprintf(nums[NUM_SLOT], 32, "%d", slot_id);
	snprintf(nums[NUM_PPID], 32, "%ld", (long)getpid());
	snprintf(nums[NUM_HEALTH], 32, "%" PRIu64, c->health_interval_ms);
	snprintf(nums[NUM_THREADS], 32, "%u",
	         c->threads ? c->threads : uv_available_parallelism());
	snprintf(nums[NUM_QUEUE], 32, "%u", c->max_queue);
	snprintf(nums[NUM_AGING], 32, "%" PRIu64, c->aging_ms);
	size_t n = 0;
	args[n++] = (char *)spec->worker_bin;
	if (slot_id >= 0) {
		args[n++] = "--slot";
		args[n++] = nums[NUM_SLOT];
	} else {
		args[n++] = "--standby";
	}
	const char *fixed[] = {"--url", url, "--plugin", c->plugin,
	                       "--ppid", nums[NUM_PPID],
	                       "--health-ms", nums[NUM_HEALTH],
	                       "--threads", nums[NUM_THREADS],
	                       "--max-queue", nums[NUM_QUEUE],
	                       "--aging-ms", nums[NUM_AGING],
	                       "--pool-drain",
	                       c->pool_drain_cancel ? "cancel" : "run"};
	for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
		args[n++] = (char *)fixed[i];
	const priv_user *u = spec->user;
	if (u && u->active) {
		snprintf(nums[NUM_UID], 32, "%u", (unsigned)u->uid);
		snprintf(nums[NUM_GID], 32, "%u", (unsigned)u->gid);
		args[n++] = "--user";
		args[n++] = (char *)u->name;
		args[n++] = "--uid";
		args[n++] = nums[NUM_UID];
		args[n++] = "--gid";
		args[n++] = nums[NUM_GID];
	}
	for (size_t i = 0; i < c->nsettings; i++) {
		size_t len = strlen(c->settings[i].key) +
		             strlen(c->settings[i].value) + 2;
		if (!(kvs[i] = malloc(len))) {
			free(args);
			return NULL;
		}
		snprintf(kvs[i], len, "%s=%s", c->settings[i].key,
		         c->settings[i].value);
		args[n++] = "--set";
		args[n++] = kvs[i];
	}
	args[n] = NULL;
	return args;
}

/* Our environment less any LISTEN_*, plus LISTEN_FDS and LISTEN_FDNAMES
 * for the listeners (both strings in buf).  NULL when out of memory. */
static char **build_env(const listen_set *ls, char *fds, size_t fdslen,
                        char *names, size_t nameslen)
{
	size_t n = 0;
	while (environ[n])
		n++;
	char **env = calloc(n + 3, sizeof *env);
	if (!env)
		return NULL;
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		if (strncmp(environ[i], "LISTEN_", 7) != 0)
			env[k++] = environ[i];
	snprintf(fds, fdslen, "LISTEN_FDS=%zu", ls->n);
	snprintf(names, nameslen, "LISTEN_FDNAMES=%s", ls->fdnames);
	env[k++] = fds;
	env[k++] = names;
	env[k] = NULL;
	return env;
}

/* The worker's stdout and stderr pipes.  Plain pipes; libuv makes our
 * ends close-on-exec.  0; or an error with p freed (a pipe already open
 * is closed, and frees p when it is) or p left to free (none open). */
static int open_pipes(proc *p, uv_loop_t *loop)
{
	int rc;
	p->process.data = p;
	p->out.p = p->err.p = p;
	p->out.pipe.data = &p->out;
	p->err.pipe.data = &p->err;
	if ((rc = uv_pipe_init(loop, &p->out.pipe, 0)))
		return rc;
	list_node_init(&p->node);
	p->open = 1;
	p->pipes_open = 1;
	if ((rc = uv_pipe_init(loop, &p->err.pipe, 0))) {
		uv_close((uv_handle_t *)&p->out.pipe, pipe_closed);
		return rc;
	}
	p->open = 3;
	p->pipes_open = 2;
	return 0;
}

/* Starts the worker in a process group of its own, stdin ignored, its
 * output into p's pipes, the shared listeners on fds 3.. (uv_spawn dup2s
 * them there, clearing close-on-exec on the copies only). */
static int spawn_child(proc *p, uv_loop_t *loop, const char *bin,
                       char **args, char **env, const listen_set *ls)
{
	uv_stdio_container_t stdio[3 + LISTEN_MAX];
	size_t nl = ls ? ls->n : 0;
	stdio[0] = (uv_stdio_container_t){.flags = UV_IGNORE};
	stdio[1] = (uv_stdio_container_t){
		.flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE,
		.data.stream = (uv_stream_t *)&p->out.pipe};
	stdio[2] = (uv_stdio_container_t){
		.flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE,
		.data.stream = (uv_stream_t *)&p->err.pipe};
	for (size_t i = 0; i < nl; i++)
		stdio[3 + i] = (uv_stdio_container_t){
			.flags = UV_INHERIT_FD, .data.fd = ls->v[i].fd};
	uv_process_options_t opt = {
		.exit_cb = on_exit_cb,
		.file = bin,
		.args = args,
		.env = env,
		.stdio_count = 3 + (int)nl,
		.stdio = stdio,
		.flags = UV_PROCESS_DETACHED, /* setsid: a group of its own */
	};
	return uv_spawn(loop, &p->process, &opt);
}

int proc_spawn(uv_loop_t *loop, const worker_spec *spec, int slot_id,
               const char *url, proc_exit_fn fn, void *owner, proc **out)
{
	const config *c = spec->cfg;
	const listen_set *ls = spec->listeners && spec->listeners->n
	                           ? spec->listeners
	                           : NULL;
	static char fds_var[32], names_var[sizeof(ls->fdnames) + 16];
	char **env = NULL;
	char nums[NUM_COUNT][32];
	char **args = NULL, **kvs = NULL;
	int rc = UV_ENOMEM;

	proc *p = calloc(1, sizeof *p);
	if (!p)
		return UV_ENOMEM;
	kvs = calloc(c->nsettings + 1, sizeof *kvs);
	if (!kvs)
		goto done;
	args = build_args(spec, slot_id, url, kvs, nums);
	if (!args)
		goto done;
	if (ls && !(env = build_env(ls, fds_var, sizeof fds_var, names_var,
	                            sizeof names_var)))
		goto done;
	/* With `user`, the socket this worker dials (slot or standby) is
	 * given to that user first: it switches before dialing. */
	if ((rc = priv_own_socket(spec->user, url)) != 0) {
		rc = UV_EPERM;
		goto done;
	}
	rc = UV_ENOMEM;

	p->slot_id = slot_id;
	p->on_exit = fn;
	p->owner = owner;
	if ((rc = open_pipes(p, loop)))
		goto done;
	if ((rc = spawn_child(p, loop, spec->worker_bin, args, env, ls))) {
		/* libuv wants even a failed process handle closed. */
		uv_close((uv_handle_t *)&p->process, process_closed);
		uv_close((uv_handle_t *)&p->out.pipe, pipe_closed);
		uv_close((uv_handle_t *)&p->err.pipe, pipe_closed);
		p = NULL;
		goto done;
	}
	p->pid = p->process.pid;
	p->kill_group = !c->kill_process_only;
	list_push_back(&procs, &p->node);
	uv_read_start((uv_stream_t *)&p->out.pipe, on_alloc, on_read);
	uv_read_start((uv_stream_t *)&p->err.pipe, on_alloc, on_read);
	*out = p;
	p = NULL;
done:
	for (size_t i = 0; kvs && i < c->nsettings; i++)
		free(kvs[i]);
	free(kvs);
	free(args);
	free(env);
	if (p && p->open == 0)
		free(p);
	return rc;
}

int64_t proc_pid(const proc *p)
{
	return p->pid;
}

void proc_adopt(proc *p, int slot_id, proc_exit_fn fn, void *owner)
{
	p->slot_id = slot_id;
	p->on_exit = fn;
	p->owner = owner;
}

int proc_kill(proc *p, int signum)
{
	return uv_process_kill(&p->process, signum);
}


static int live_proc(pid_t pid)
{
	for (list_node *n = procs.next; n != &procs; n = n->next) {
		proc *p = list_entry(n, proc, node);
		if (!p->exited && p->pid == pid)
			return 1;
	}
	return 0;
}

/* Calls fn for each pid in /proc/self/task/TID/children (every thread:
 * an orphan is handed to any thread of its subreaper).  -1 when /proc
 * cannot tell. */
static int each_child(void (*fn)(pid_t, void *), void *arg)
{
	DIR *d = opendir("/proc/self/task");
	if (!d)
		return -1;
	struct dirent *e;
	while ((e = readdir(d))) {
		char path[64], buf[4096];
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof path, "/proc/self/task/%.20s/children",
		         e->d_name);
		FILE *f = fopen(path, "re");
		if (!f)
			continue;
		size_t n = fread(buf, 1, sizeof buf - 1, f);
		fclose(f);
		buf[n] = '\0';
		/* A list longer than buf loses its tail this time; the
		 * next SIGCHLD comes back for it. */
		for (char *s = buf, *end; *s; s = end) {
			long pid = strtol(s, &end, 10);
			if (end == s)
				break;
			fn((pid_t)pid, arg);
		}
	}
	closedir(d);
	return 0;
}

typedef struct stray_pass {
	int kill;
	unsigned reaped, killed;
} stray_pass;

static void one_child(pid_t pid, void *arg)
{
	stray_pass *sp = arg;
	int st;
	if (pid <= 0 || live_proc(pid))
		return; /* a worker: libuv reaps it, by pid */
	if (sp->kill && kill(pid, SIGKILL) == 0)
		sp->killed++;
	if (waitpid(pid, &st, WNOHANG) == pid)
		sp->reaped++;
}

unsigned proc_reap_strays(int kill_them, unsigned *killed)
{
	stray_pass sp = {.kill = kill_them};
	(void)each_child(one_child, &sp);
	if (killed)
		*killed = sp.killed;
	return sp.reaped;
}

unsigned proc_pipes_held(void)
{
	unsigned n = 0;
	for (list_node *x = procs.next; x != &procs; x = x->next) {
		proc *p = list_entry(x, proc, node);
		n += p->exited && p->pipes_open > 0;
	}
	return n;
}

void proc_close_pipes(void)
{
	for (list_node *n = procs.next, *next; n != &procs; n = next) {
		next = n->next; /* the last close may free p */
		proc *p = list_entry(n, proc, node);
		if (!p->exited)
			continue;
		if (!uv_is_closing((uv_handle_t *)&p->out.pipe))
			uv_close((uv_handle_t *)&p->out.pipe, pipe_closed);
		if (!uv_is_closing((uv_handle_t *)&p->err.pipe))
			uv_close((uv_handle_t *)&p->err.pipe, pipe_closed);
	}
}
