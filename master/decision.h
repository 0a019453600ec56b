/*
 * decision.h - what `corralctl explain SLOT` says: every decision the
 * supervisor takes about a slot -- restart it after a delay, give up on
 * it, leave it stopped, kill its worker -- recorded as an event of kind
 * "decision" with what it was taken on (ipc_decision in ipc/proto.h: the
 * exit and the uptime, the delay and how the policy arrived at it, the
 * restart budget used in the window, the figure that triggered a kill, the
 * worker's last health report).
 *
 * decision_note() reads the decision off the slot, so the reconciler calls
 * it in two places (master/sup.c, marked "tools:"):
 *   - reconcile_slot(), case SLOT_EXITED: right after decide(s, sl), which
 *     has fed the slot RESTART (now BACKOFF), GIVE_UP (FAILED), DONE or
 *     STOP (STOPPED);
 *   - reconcile_slot(): right before slot_kill_now(sl), while kill_wanted
 *     and kill_reason say why.
 * A call that finds no decision (the slot still EXITED, no kill pending)
 * records nothing.  Loop thread.
 */
#ifndef MASTER_DECISION_H
#define MASTER_DECISION_H

#include <stdint.h>

#include "ipc/proto.h"
#include "master/policy.h"
#include "master/slot.h"

struct sup;

void decision_note(struct sup *s, const slot *sl);

/*
 * The pure part, for tests: the decision to be read off sl at now_ms (the
 * clock of uv_hrtime() in ms, as the slot's own times) with its inputs in
 * *d.  shutting_down tells a stop from a slot done by policy.  Returns the
 * action -- "kill", "restart", "give-up", "done", "stop" -- or NULL.
 */
const char *decision_read(const slot *sl, const restart_policy *p,
                          const slot_timeouts *to, int shutting_down,
                          uint64_t now_ms, ipc_decision *d);

#endif
