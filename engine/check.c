/* The fail-fast path: restore the terminal via the hook, print file:line and the message, abort. */
#include "engine/check.h"
#include <stdarg.h>

void (*check_fatal_hook)(void);

void check_fail(const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    if (check_fatal_hook) check_fatal_hook();
    fprintf(stderr, "hasten: internal error at %s:%d: ", file, line);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    abort();
}
