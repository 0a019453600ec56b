/* error.h - translation of foreign error values into corral_err. */
#ifndef IPC_ERROR_H
#define IPC_ERROR_H

/* An nng error (NNG_E*) as a corral_err; 0 stays 0. */
int err_from_nng(int rv);
/* An errno value as a corral_err; 0 stays 0. */
int err_from_errno(int e);

#endif
