/* badmetric - a plugin that publishes metrics JSON cannot hold as they
 * are: a name that is not UTF-8, quotes and control characters, NaN and
 * infinity.  Test fixture for the tools' JSON. */
#include <math.h>

#include "corral.h"

static int badmetric_init(corral_worker *w)
{
	corral_metric_set(w, "bad\xff\xfe" "name", 1);
	corral_metric_set(w, "quote\"back\\slash\ttab", 2);
	corral_metric_set(w, "nan", NAN);
	corral_metric_set(w, "inf", INFINITY);
	corral_metric_set(w, "fine", 3.5);
	return 0;
}

CORRAL_PLUGIN(.name = "bad\xffname", .init = badmetric_init);
