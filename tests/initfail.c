/* initfail - a plugin whose init fails.  Test fixture. */
#include "corral.h"

static int initfail_init(corral_worker *w)
{
	corral_log(w, CORRAL_LOG_ERROR, "refusing to start");
	return CORRAL_ECONFIG;
}

CORRAL_PLUGIN(.name = "initfail", .init = initfail_init);
