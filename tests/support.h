/* Helpers shared by the unit tests: scratch folders and files. Not a mock of anything. */
#ifndef HASTEN_TEST_SUPPORT_H
#define HASTEN_TEST_SUPPORT_H

#include <stddef.h>

/* A fresh folder under $TMPDIR (or /tmp) for this test process; removed at exit.
 * Returns a static string. Aborts if it cannot be made. */
const char *test_tmpdir(void);

/* Writes len bytes to dir/name; returns the full path in a static rotating buffer. Aborts on failure. */
const char *test_write_file(const char *name, const void *data, size_t len);

/* Writes a gzip file of data; same contract as test_write_file. */
const char *test_write_gz(const char *name, const void *data, size_t len);

/* Reads a whole file into a malloc'd NUL-terminated buffer (caller frees); NULL if missing. */
char *test_read_file(const char *path, size_t *len);

/* Runs ./hasten with args (NULL-terminated, at most 30), its stdout and stderr into malloc'd
 * strings (caller frees); returns its exit code, 128 + the signal when killed. Aborts when it
 * cannot be started. */
int test_hasten(const char *const *args, char **out, char **err);

#endif
