/*
 * ops.h - what the supervisor shows and tells the machine it runs on:
 * the HTTP endpoint (GET /metrics, /healthz, /readyz; `http = ADDRESS`),
 * systemd's notifications (master/notify.h), and `workers = auto` sized by
 * the CPU quota of corral's cgroup (common/cpus.h).
 *
 * It only observes the supervisor: a uv_check handle (unreferenced, so it
 * never keeps the loop alive or wakes it) looks after every loop turn
 * whether the event log grew -- every state change of a slot or of the
 * supervisor is an event -- and only then works out what systemd should
 * hear.  Requests are answered from the same snapshot as STATUS
 * (sup_status_fill).  When the supervisor is DONE, ops closes its handles
 * so that the loop can end.  Loop thread only.
 *
 * main.c: ops_prepare() after the configuration is read and before
 * sup_init() (an address that cannot be bound is a start error, before
 * any worker); ops_attach() after sup_init(); ops_close() on the way out.
 */
#ifndef MASTER_OPS_H
#define MASTER_OPS_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "master/httpd.h"
#include "master/listen.h"
#include "master/sup.h"

#define OPS_RATE_SAMPLES 11 /* jobs/s over the last 10 s */

typedef struct ops {
	sup *s;              /* NULL until attached */
	listener http;       /* the bound endpoint (fd -1: none) */
	httpd *srv;
	double start_time_s;
	uv_check_t check;
	int check_open;
	uint64_t seen_seq;   /* event log position last looked at */
	int done;            /* handles closed */
	int all_up;          /* every slot was running at once, once */
	/* answered jobs, sampled at most once a second */
	uint64_t rate_ms[OPS_RATE_SAMPLES], rate_jobs[OPS_RATE_SAMPLES];
	unsigned rate_n, rate_head;
} ops;

/*
 * Before sup_init: resolves workers = auto against the cgroup's CPU quota
 * (cfg->workers set, and logged) and binds cfg->http.  0, or a CORRAL_E*
 * code with err filled (CORRAL_ECONFIG: exit 2; else exit 1).
 */
int ops_prepare(ops *o, config *cfg, char *err, size_t errlen);

/* After sup_init: serves the endpoint and starts the notifier and the
 * observer.  A failure is logged and leaves the part that failed off. */
void ops_attach(ops *o, sup *s);

/* On the way out of main: releases what is still open (the bound
 * endpoint when sup_init failed).  Safe to call more than once. */
void ops_close(ops *o);

/* The answer to one request (the httpd handler), exported for tests. */
void ops_handle(void *arg, const char *path, int head, httpd_reply *r);

#endif
