/* nosym - a shared object that is not a corral plugin: it lacks the
 * corral_plugin symbol.  Test fixture. */
#include "corral.h"

CORRAL_EXPORT int not_a_plugin(void);
CORRAL_EXPORT int not_a_plugin(void)
{
	return 42;
}
