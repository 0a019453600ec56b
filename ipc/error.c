/*
 * error.c - names and messages for the one error table in corral.h, and the
 * translation of nng and errno values into it at the edge.
 */
#include <errno.h>
#include <nng/nng.h>

#include "corral.h"
#include "ipc/error.h"

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

int err_from_nng(int rv)
{
	switch (rv) {
	case 0:
		return 0;
	case NNG_ENOMEM:
		return CORRAL_ENOMEM;
	case NNG_EINVAL:
	case NNG_EADDRINVAL:
		return CORRAL_EINVAL;
	case NNG_ECLOSED:
		return CORRAL_ECLOSED;
	case NNG_EAGAIN:
		return CORRAL_EAGAIN;
	case NNG_ETIMEDOUT:
		return CORRAL_ETIMEDOUT;
	case NNG_ECANCELED:
		return CORRAL_ECANCELED;
	case NNG_EMSGSIZE:
		return CORRAL_ETOOBIG;
	case NNG_EPERM:
		return CORRAL_EPERM;
	default:
		return CORRAL_ENNG;
	}
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
