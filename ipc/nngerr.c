/* nngerr.c - see nngerr.h. */
#include <nng/nng.h>

#include "corral_base.h"
#include "ipc/nngerr.h"

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
	case NNG_ECONNREFUSED:
	case NNG_ENOENT:
		return CORRAL_ENOTCONN;
	default:
		return CORRAL_ENNG;
	}
}
