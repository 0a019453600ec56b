/*
 * error.c - names and messages for the one error table in corral_base.h, and the
 * translation of errno values into it (nng's are in ipc/nngerr.c).
 */
#include <errno.h>

#include "corral_base.h"
#include "common/error.h"

CORRAL_EXPORT const char *corral_strerror(int err)
{
	switch (err) {
	case 0:
		return "success";
#define X(name, val, msg)                                                     \
	case val:                                                             \
		return msg;
		CORRAL_ERRNO_MAP(X)
#undef X
	}
	return "unknown error";
}

CORRAL_EXPORT const char *corral_errname(int err)
{
	switch (err) {
	case 0:
		return "OK";
#define X(name, val, msg)                                                     \
	case val:                                                             \
		return #name;
		CORRAL_ERRNO_MAP(X)
#undef X
	}
	return "EUNKNOWN";
}

int err_from_errno(int e)
{
	switch (e) {
	case 0:
		return 0;
	case ENOMEM:
		return CORRAL_ENOMEM;
	case EINVAL:
		return CORRAL_EINVAL;
	case EAGAIN:
		return CORRAL_EAGAIN;
	case EPERM:
	case EACCES:
		return CORRAL_EPERM;
	case ENOSPC:
		return CORRAL_ENOSPC;
	case ETIMEDOUT:
		return CORRAL_ETIMEDOUT;
	default:
		return CORRAL_ESYS;
	}
}
