/*
 * proc.c - see proc.h.
 *
 * What a worker inherits, besides stdout and stderr: the shared listeners
 * of its spec as fds 3.., named in LISTEN_FDS and LISTEN_FDNAMES, and,
 * when the spec names a user, the user to switch to (--user/--uid/--gid,
 * master/privdrop.h; the socket it dials is chowned to that user just
 * before the spawn).  Nothing else: every other descriptor of the
 * supervisor is close-on-exec.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "corral.h"
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
};

static void proc_release(proc *p)
{
	if (--p->open == 0)
		free(p);
}

static void process_closed(uv_handle_t *h)
{
	proc_release(h->data);
}

static void pipe_closed(uv_handle_t *h)
{
	outpipe *o = h->data;
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

int proc_spawn(uv_loop_t *loop, const worker_spec *spec, int slot_id,
               const char *url, proc_exit_fn fn, void *owner, proc **out)
{
	const config *c = spec->cfg;
	const listen_set *ls = spec->listeners && spec->listeners->n
	                           ? spec->listeners
	                           : NULL;
	static char fds_var[32], names_var[sizeof(ls->fdnames) + 16];
	uv_stdio_container_t stdio[3 + LISTEN_MAX];
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
	p->process.data = p;
	p->out.p = p->err.p = p;
	p->out.pipe.data = &p->out;
	p->err.pipe.data = &p->err;
	/* Plain pipes; libuv makes our ends close-on-exec. */
	if ((rc = uv_pipe_init(loop, &p->out.pipe, 0)))
		goto done;
	p->open = 1;
	if ((rc = uv_pipe_init(loop, &p->err.pipe, 0))) {
		uv_close((uv_handle_t *)&p->out.pipe, pipe_closed);
		p = NULL;
		goto done;
	}
	p->open = 3;

	stdio[0] = (uv_stdio_container_t){.flags = UV_IGNORE};
	stdio[1] = (uv_stdio_container_t){
		.flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE,
		.data.stream = (uv_stream_t *)&p->out.pipe};
	stdio[2] = (uv_stdio_container_t){
		.flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE,
		.data.stream = (uv_stream_t *)&p->err.pipe};
	size_t nl = ls ? ls->n : 0;
	/* The shared listeners land on fds 3.. in the child (uv_spawn dup2s
	 * them there, clearing close-on-exec on the copies only). */
	for (size_t i = 0; i < nl; i++)
		stdio[3 + i] = (uv_stdio_container_t){
			.flags = UV_INHERIT_FD, .data.fd = ls->v[i].fd};
	uv_process_options_t opt = {
		.exit_cb = on_exit_cb,
		.file = spec->worker_bin,
		.args = args,
		.env = env,
		.stdio_count = 3 + (int)nl,
		.stdio = stdio,
	};
	rc = uv_spawn(loop, &p->process, &opt);
	if (rc) {
		/* libuv wants even a failed process handle closed. */
		uv_close((uv_handle_t *)&p->process, process_closed);
		uv_close((uv_handle_t *)&p->out.pipe, pipe_closed);
		uv_close((uv_handle_t *)&p->err.pipe, pipe_closed);
		p = NULL;
		goto done;
	}
	p->pid = p->process.pid;
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

