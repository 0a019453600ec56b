/*
 * exitdesc.h - how a process ended, in words an operator reads: "killed
 * by SIGSEGV", "exited with code 3".  One wording for the slot, standby
 * and reload logs and events, so that one grep finds every crash.
 */
#ifndef COMMON_EXITDESC_H
#define COMMON_EXITDESC_H

#include <stddef.h>

/* "SIGSEGV", or "signal 40" for one without a name; into buf. */
const char *sig_name(int sig, char *buf, size_t len);

/* "killed by SIGSEGV" when term_signal, else "exited with code N". */
const char *exit_desc(int code, int term_signal, char *buf, size_t len);

#endif
