/*
 * restarts.c - restarts counted by cause (slot.h, "restarts by cause").
 *
 * The reconciler decides a restart in one place (decide(), master/sup.c),
 * right after the slot's process was reaped; every fact about how it
 * ended is still on the slot then.  A kill the supervisor decided for a
 * reason the exit cannot show (a health action: lag or memory; a reload)
 * names its cause in sl->cause before it asks for the kill or the stop.
 * A kill at the slot's own deadline (slot.c: E_HUNG, E_NOT_READY) is known
 * by its recorded reason, whose wording the unit tests pin
 * (tests/test_ops.c, restart_causes_follow_the_slot_table).
 */
#include <string.h>

#include "master/slot.h"

ipc_cause slot_restart_cause(const slot *sl)
{
	if (sl->cause != IPC_CAUSE_CRASH && (unsigned)sl->cause < IPC_NCAUSES)
		return sl->cause;
	if (sl->killed && (strncmp(sl->kill_reason, "hung", 4) == 0 ||
	                   strncmp(sl->kill_reason, "not ready", 9) == 0))
		return IPC_CAUSE_HUNG;
	return sl->failed ? IPC_CAUSE_CRASH : IPC_CAUSE_EXIT;
}

void slot_count_restart(slot *sl)
{
	sl->restarts_by[slot_restart_cause(sl)]++;
	sl->cause = IPC_CAUSE_CRASH;
}
