/* An LD_PRELOAD library whose Py_GetVersion() is Python 3.13's with the
 * race made wide: the first call marks the version as filled in, then
 * takes 200 ms to fill it in; a call meanwhile gets what is there so far
 * (""). The version is $RACY_PY_VERSION. Python 3.13's getversion.c does
 * the same with a window of one snprintf(); patch 3002 calls it once
 * (pthread_once), so no caller sees "".
 *   cc -O2 -shared -fPIC -o racy_version.so racy_version.c */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static char version[256];
static int initialized;

const char *Py_GetVersion(void)
{
    if (!__atomic_exchange_n(&initialized, 1, __ATOMIC_SEQ_CST)) {
        struct timespec pause = {0, 200 * 1000 * 1000};
        const char *given = getenv("RACY_PY_VERSION");
        nanosleep(&pause, NULL);
        snprintf(version, sizeof(version), "%s", given ? given : "unset");
    }
    return version;
}
