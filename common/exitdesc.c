/* exitdesc.c - see exitdesc.h. */
#include <stdio.h>
#include <string.h>

#include "common/exitdesc.h"

const char *sig_name(int sig, char *buf, size_t len)
{
	const char *abbrev = sigabbrev_np(sig);
	if (abbrev)
		snprintf(buf, len, "SIG%s", abbrev);
	else
		snprintf(buf, len, "signal %d", sig);
	return buf;
}

const char *exit_desc(int code, int term_signal, char *buf, size_t len)
{
	char sb[32];
	if (term_signal)
		snprintf(buf, len, "killed by %s",
		         sig_name(term_signal, sb, sizeof sb));
	else
		snprintf(buf, len, "exited with code %d", code);
	return buf;
}
