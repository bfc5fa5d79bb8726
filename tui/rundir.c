/* Reading a run folder's files back (tui/rundir.h). */
#include "tui/rundir.h"
#include "engine/runlog.h"
#include "engine/trainer.h"
#include "lua/recipe.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *rundir_read(const char *dir, const char *name)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = NULL;
    size_t len = 0, cap = 0;
    for (;;) {   /* grows as it reads: a metrics.jsonl may be appended to meanwhile */
        if (cap - len < 4096) {
            char *nb = realloc(buf, cap = cap ? cap * 2 : 65536);
            if (!nb) goto fail;
            buf = nb;
        }
        size_t got = fread(buf + len, 1, cap - len - 1, f);
        len += got;
        if (got == 0) break;
    }
    if (ferror(f)) goto fail;
    fclose(f);
    buf[len] = 0;
    return buf;
fail:
    free(buf);
    fclose(f);
    return NULL;
}

/* A number hasten writes, and the range it writes it in: one outside it is damage, not a
 * measurement. whole: a count read into an integer (a record's step; a batch size). */
typedef struct number_range {
    const char *key;
    double lo, hi;
    int whole;
} number_range;

static const number_range record_numbers[] = {
    { "step", 0, 1e15, 1 }, { "samples", 0, 1e18, 1 }, { "epoch", 0, 1e15, 0 }, { "seconds", 0, 1e12, 0 },
    { "test_acc", 0, 1, 0 },
};
static const number_range summary_numbers[] = {
    { "test_acc", 0, 1, 0 }, { "train_seconds", 0, 1e12, 0 }, { "samples_per_second", 0, 1e18, 0 },
    { "steps", 0, 1e15, 0 }, { "samples", 0, 1e18, 0 }, { "epochs", 0, 1e15, 0 }, { "batch", 1, 1e9, 1 },
    { "time_to_target", 0, 1e12, 0 }, { "steps_to_target", 0, 1e15, 0 },
};
static const number_range fingerprint_numbers[] = { { "threads", 1, 1e6, 1 }, { "cores", 1, 1e6, 1 } };

/* The first of o's n numbers f that is there (not null) but not a number in its range: says which
 * in why (its name after prefix, e.g. "phase_seconds.") and returns 1; 0 when there is none. */
static int bad_number(const cJSON *o, const number_range *f, int n, const char *prefix, char *why, size_t len)
{
    for (int i = 0; i < n; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, f[i].key);
        if (!v || cJSON_IsNull(v)) continue;
        if (!cJSON_IsNumber(v)) {
            snprintf(why, len, "%s%s is not a number", prefix, f[i].key);
            return 1;
        }
        double x = v->valuedouble;
        if (!(x >= f[i].lo && x <= f[i].hi) || (f[i].whole && x != floor(x))) {
            snprintf(why, len, "%s%s is %g, not a %s in [%g, %g]", prefix, f[i].key, x,
                     f[i].whole ? "whole number" : "number", f[i].lo, f[i].hi);
            return 1;
        }
    }
    return 0;
}

#define COUNT(a) ((int)(sizeof a / sizeof *a))

/* What is wrong with summary s, into why; 0 when its numbers could be hasten's. */
static int summary_problem(const cJSON *s, char *why, size_t len)
{
    number_range phases[PHASE_COUNT];
    for (int p = 0; p < PHASE_COUNT; p++) phases[p] = (number_range){ trainer_phase_name(p), 0, 1e12, 0 };
    return bad_number(s, summary_numbers, COUNT(summary_numbers), "", why, len) ||
           bad_number(cJSON_GetObjectItemCaseSensitive(s, "phase_seconds"), phases, PHASE_COUNT, "phase_seconds.",
                      why, len) ||
           bad_number(cJSON_GetObjectItemCaseSensitive(s, "fingerprint"), fingerprint_numbers,
                      COUNT(fingerprint_numbers), "fingerprint.", why, len);
}

/* What is wrong with record j, into why; 0 when it could be hasten's. */
static int record_problem(const cJSON *j, char *why, size_t len)
{
    if (!cJSON_IsObject(j)) return snprintf(why, len, "not a JSON object"), 1;
    return bad_number(j, record_numbers, COUNT(record_numbers), "", why, len);
}

static const char damaged[] = "so the file is damaged (restore it from a copy, or run again)";

int rundir_summary(const char *dir, cJSON **out, char *err, size_t errlen)
{
    char *text = rundir_read(dir, "summary.json");
    cJSON *s = text ? cJSON_Parse(text) : NULL;
    free(text);
    *out = NULL;
    if (!s) {
        snprintf(err, errlen, "%s/summary.json: missing or not JSON (a run still going, or not a run folder)", dir);
        return RUNDIR_MISSING;
    }
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(s, "version");
    if (!cJSON_IsNumber(v) || v->valuedouble != RUN_SUMMARY_VERSION) {
        if (cJSON_IsNumber(v))
            snprintf(err, errlen, "%s/summary.json: format version %g, this hasten reads version %d (%s hasten "
                     "wrote it: read it with that one)", dir, v->valuedouble, RUN_SUMMARY_VERSION,
                     v->valuedouble > RUN_SUMMARY_VERSION ? "a newer" : "an older");
        else
            snprintf(err, errlen, "%s/summary.json: no format version, so not written by hasten: left alone", dir);
        cJSON_Delete(s);
        return RUNDIR_FOREIGN;
    }
    char why[160];
    if (summary_problem(s, why, sizeof why)) {
        snprintf(err, errlen, "%s/summary.json: %s, %s", dir, why, damaged);
        cJSON_Delete(s);
        return RUNDIR_DAMAGED;
    }
    *out = s;
    return RUNDIR_OK;
}

int rundir_metrics(const char *dir, rundir_record_fn fn, void *ud, char *err, size_t errlen)
{
    char *text = rundir_read(dir, "metrics.jsonl");
    if (!text) {
        snprintf(err, errlen, "%s/metrics.jsonl: cannot read it", dir);
        return RUNDIR_MISSING;
    }
    int rc = 0, n = 0;
    for (char *line = text, *next; line && *line && !rc; line = next) {
        next = strchr(line, '\n');
        if (next) *next++ = 0;
        n++;
        cJSON *j = cJSON_Parse(line);
        if (!j) continue;   /* a line cut by a crash */
        char why[128];
        if (record_problem(j, why, sizeof why)) {
            snprintf(err, errlen, "%s/metrics.jsonl: line %d: %s, %s", dir, n, why, damaged);
            rc = RUNDIR_DAMAGED;
        } else rc = fn(j, ud);
        cJSON_Delete(j);
    }
    free(text);
    return rc;
}

int rundir_cadence(const train_config *c)
{
    return c->eval_every_steps > 0 ? c->eval_every_steps : -(c->eval_every_epochs > 1 ? c->eval_every_epochs : 1);
}

int rundir_eval_cadence(const char *dir)
{
    char path[1200], err[256];
    train_config c;
    snprintf(path, sizeof path, "%s/recipe.lua", dir);
    if (recipe_load(path, &c, err, sizeof err)) return 0;
    int cadence = rundir_cadence(&c);
    config_free(&c);
    return cadence;
}

void rundir_format_cadence(int cadence, char *out, size_t len)
{
    if (cadence == 1) snprintf(out, len, "every step");
    else if (cadence > 0) snprintf(out, len, "every %d steps", cadence);
    else if (cadence == -1) snprintf(out, len, "every epoch");
    else if (cadence < 0) snprintf(out, len, "every %d epochs", -cadence);
    else snprintf(out, len, "unrecorded");
}
