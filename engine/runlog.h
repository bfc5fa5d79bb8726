/* The files a run leaves: metrics.jsonl (whole lines, appended), log.txt, and summary.json written
 * to a temporary name and renamed, so a kill at any moment leaves valid files.
 * Not for deciding what to record: the trainer does that. */
#ifndef HASTEN_RUNLOG_H
#define HASTEN_RUNLOG_H

#include <stddef.h>

typedef struct runlog runlog;

/* Creates dir (and parents) and opens its metrics and log files for appending. A folder that
 * already holds a run (a metrics.jsonl) is refused: one run a folder. Returns NULL with a one-line
 * message naming the path on failure. Caller frees with runlog_close. */
runlog *runlog_open(const char *dir, char *err, size_t errlen);
void runlog_close(runlog *r);
const char *runlog_dir(const runlog *r);

/* Appends one line (a JSON object without the newline) to metrics.jsonl with a single write.
 * Returns 0 or -1 (disk full etc.; the run goes on, the failure is remembered in runlog_error,
 * the part of the line written is taken back and no later line is written, so the file stays
 * the run's first records, whole). */
int runlog_metric(runlog *r, const char *json_line);
/* Appends a timestamped line to log.txt. */
void runlog_log(runlog *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Writes text, or len bytes of data, to dir/name atomically (temp file, fsync, rename). Returns 0
 * or -1. */
int runlog_write_file(runlog *r, const char *name, const char *text);
int runlog_write_bytes(runlog *r, const char *name, const void *data, size_t len);
/* First write error seen, or NULL. */
const char *runlog_error(const runlog *r);

/* summary.json's "version": the format of the run folder's files, which readers check. */
#define RUN_SUMMARY_VERSION 1

/* The name of every file a run folder can hold (the three above, the resolved recipe.lua, the
 * trained weights.bin), NULL-terminated: what a sweep may clear when it retrains a run. */
extern const char *const runlog_files[];

#endif
