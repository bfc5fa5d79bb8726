/* Reading a run folder's files back: whole files, and summary.json checked for the format version
 * this hasten writes. Not for writing them (engine/runlog.h) or for what they mean (the callers). */
#ifndef HASTEN_RUNDIR_H
#define HASTEN_RUNDIR_H

#include <cjson/cJSON.h>
#include <stddef.h>

/* The whole of dir/name, NUL-terminated; the caller frees it. NULL when it is missing or cannot be
 * read (errno set). */
char *rundir_read(const char *dir, const char *name);

enum { RUNDIR_OK = 0, RUNDIR_MISSING = -1, RUNDIR_FOREIGN = -2 };
/* Parses dir/summary.json into *out (the caller frees it with cJSON_Delete). Returns RUNDIR_OK;
 * RUNDIR_MISSING when there is none or it is not JSON (a run still going, or killed before its
 * first summary); RUNDIR_FOREIGN when it is JSON without this hasten's format version (another
 * program's, or a newer hasten's). Either failure leaves *out NULL and a one-line message that
 * names the file and says what to do in err. */
int rundir_summary(const char *dir, cJSON **out, char *err, size_t errlen);

#endif
