/* Reading a run folder's files back: whole files, summary.json checked for the format version
 * this hasten writes, metrics.jsonl's records checked for numbers hasten could have written. Not
 * for writing them (engine/runlog.h) or for what they mean (the callers). */
#ifndef HASTEN_RUNDIR_H
#define HASTEN_RUNDIR_H

#include <cjson/cJSON.h>
#include <stddef.h>

/* The whole of dir/name, NUL-terminated; the caller frees it. NULL when it is missing or cannot be
 * read (errno set). */
char *rundir_read(const char *dir, const char *name);

enum { RUNDIR_OK = 0, RUNDIR_MISSING = -1, RUNDIR_FOREIGN = -2, RUNDIR_DAMAGED = -3 };
/* Parses dir/summary.json into *out (the caller frees it with cJSON_Delete). Returns RUNDIR_OK;
 * RUNDIR_MISSING when there is none or it is not JSON (a run still going, or killed before its
 * first summary); RUNDIR_FOREIGN when it is JSON without this hasten's format version (another
 * program's, or a newer hasten's); RUNDIR_DAMAGED when a number hasten writes there (test_acc,
 * train_seconds, samples_per_second, steps, samples, epochs, batch, time_to_target,
 * steps_to_target, each phase_seconds, the fingerprint's threads and cores) is not a number in its
 * range (null is "not recorded"). Any failure leaves *out NULL and a one-line message that names
 * the file and says what to do in err. */
int rundir_summary(const char *dir, cJSON **out, char *err, size_t errlen);

/* Called with each record of metrics.jsonl, in order; a nonzero return (positive) stops the walk. */
typedef int (*rundir_record_fn)(const cJSON *rec, void *ud);

/* Reads dir/metrics.jsonl and calls fn with each record. A line that is not JSON (one cut by a
 * crash) is skipped. Returns 0 after the last record, or fn's nonzero value when it stopped the
 * walk; RUNDIR_MISSING when the file cannot be read; RUNDIR_DAMAGED when a line is JSON but not a
 * record as hasten writes it (not an object, or a step, samples, epoch, seconds or test_acc that
 * is not a number in its range), with a one-line message in err naming the file, the line and the
 * field; records before it were passed to fn. */
int rundir_metrics(const char *dir, rundir_record_fn fn, void *ud, char *err, size_t errlen);

/* A run's evaluation cadence as one number: N > 0 every N steps, -N every N epochs; 0 unknown.
 * rundir_cadence reads it from c, rundir_eval_cadence from dir/recipe.lua (0 when that cannot be
 * read). A time to target is known only to the evaluation that saw it, so runs compare by it. */
struct train_config;
int rundir_cadence(const struct train_config *c);
int rundir_eval_cadence(const char *dir);

/* "every 117 steps", "every step", "every epoch", "every 2 epochs", "unrecorded" (0) into out. */
void rundir_format_cadence(int cadence, char *out, size_t len);

#endif
