/* Fail-fast checks for programmer and driver errors (never for user input, which gets a status
 * code and a message). A fatal hook lets the UI restore the terminal before the message. */
#ifndef HASTEN_CHECK_H
#define HASTEN_CHECK_H

#include <stdio.h>
#include <stdlib.h>

/* Called once before aborting; the UI installs one that ends curses mode. */
extern void (*check_fatal_hook)(void);

void check_fail(const char *file, int line, const char *fmt, ...)
    __attribute__((noreturn, format(printf, 3, 4)));

#define CHECK(cond, ...) \
    do { if (!(cond)) check_fail(__FILE__, __LINE__, __VA_ARGS__); } while (0)

#endif
