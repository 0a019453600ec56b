/* nngerr.h - nng's error values translated into corral_err at the edge. */
#ifndef IPC_NNGERR_H
#define IPC_NNGERR_H

/* An nng error (NNG_E*) as a corral_err; 0 stays 0. */
int err_from_nng(int rv);

#endif
