/* error.h - errno values translated into corral_err at the edge; the
 * names and messages of the table itself are corral_strerror() and
 * corral_errname() in corral_base.h. */
#ifndef COMMON_ERROR_H
#define COMMON_ERROR_H

/* An errno value as a corral_err; 0 stays 0. */
int err_from_errno(int e);

#endif
