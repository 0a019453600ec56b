/*
 * api.c - the accessors that corral.h promises plugins.  These are the only
 * symbols the worker exports (CORRAL_EXPORT; the rest is hidden), and the
 * worker is linked with --export-dynamic so a dlopen()ed plugin binds to
 * them.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "worker/worker.h"

CORRAL_EXPORT uv_loop_t *corral_loop(corral_worker *w)
{
	return &w->loop;
}

CORRAL_EXPORT int corral_slot(const corral_worker *w)
{
	return w->slot;
}

CORRAL_EXPORT const char *corral_setting(const corral_worker *w,
                                         const char *key)
{
	if (!key)
		return NULL;
	/* Last one wins, as in the config file. */
	for (int i = w->nsettings - 1; i >= 0; i--)
		if (strcmp(w->settings[i].key, key) == 0)
			return w->settings[i].value;
	return NULL;
}

CORRAL_EXPORT void corral_log(corral_worker *w, int level, const char *fmt,
                              ...)
{
	static const char *names[] = {"error", "warn", "info", "debug"};
	char buf[1536];
	const char *lv = level >= 0 && level <= 3 ? names[level] : "info";
	(void)w;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	/* stderr is a pipe to the supervisor, which adds slot and pid. */
	log_plain("%s: %s", lv, buf);
}

CORRAL_EXPORT int corral_metric_set(corral_worker *w, const char *name,
                                    double value)
{
	if (!name || !name[0] || strlen(name) >= 32)
		return CORRAL_EINVAL;
	for (uint32_t i = 0; i < w->nmetrics; i++) {
		if (strcmp(w->metrics[i].name, name) == 0) {
			w->metrics[i].value = value;
			return 0;
		}
	}
	if (w->nmetrics == IPC_MAX_METRICS)
		return CORRAL_ENOSPC;
	ipc_metric *m = &w->metrics[w->nmetrics++];
	snprintf(m->name, sizeof m->name, "%s", name);
	m->value = value;
	return 0;
}

CORRAL_EXPORT int corral_submit(corral_worker *w, int prio,
                                corral_work_fn work, corral_done_fn done,
                                void *arg, const corral_task_opts *opts,
                                corral_task **task)
{
	if (!w || !w->pool)
		return CORRAL_EINVAL;
	return pool_submit(w->pool, prio, work, done, arg, opts, task);
}

CORRAL_EXPORT int corral_task_cancel(corral_task *task)
{
	/* One worker per process: its pool is the only one. */
	return pool_task_cancel(worker_self ? worker_self->pool : NULL, task);
}

CORRAL_EXPORT int corral_task_cancelled(const corral_task *task)
{
	return pool_task_cancelled(task);
}

static void drain_trampoline(void *arg)
{
	corral_worker *w = arg;
	if (w->drain_fn)
		w->drain_fn(w, w->drain_arg);
}

CORRAL_EXPORT void corral_pool_on_drain(corral_worker *w,
                                        void (*fn)(corral_worker *w,
                                                   void *arg),
                                        void *arg)
{
	w->drain_fn = fn;
	w->drain_arg = arg;
	pool_on_drain(w->pool, fn ? drain_trampoline : NULL, w);
}

CORRAL_EXPORT void corral_set_data(corral_worker *w, void *data)
{
	w->data = data;
}

CORRAL_EXPORT void *corral_get_data(const corral_worker *w)
{
	return w->data;
}
