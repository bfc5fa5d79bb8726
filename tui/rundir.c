/* Reading a run folder's files back (tui/rundir.h). */
#include "tui/rundir.h"
#include "engine/runlog.h"
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
    *out = s;
    return RUNDIR_OK;
}

/* What is wrong with record j, in a few words into why, or 0 when it could be hasten's: the
 * numbers every reader takes as measured are in their range (a count is a whole number). */
static int record_problem(const cJSON *j, char *why, size_t len)
{
    static const struct { const char *key; double max; int whole; } fields[] = {
        { "step", 1e15, 1 }, { "samples", 1e18, 1 }, { "epoch", 1e15, 0 }, { "seconds", 1e12, 0 },
        { "test_acc", 1, 0 },
    };
    if (!cJSON_IsObject(j)) return snprintf(why, len, "not a JSON object");
    for (size_t i = 0; i < sizeof fields / sizeof *fields; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, fields[i].key);
        if (!v) continue;
        if (!cJSON_IsNumber(v)) return snprintf(why, len, "%s is not a number", fields[i].key);
        double x = v->valuedouble;
        if (!(x >= 0 && x <= fields[i].max) || (fields[i].whole && x != floor(x)))
            return snprintf(why, len, "%s is %g, not %s in [0, %g]", fields[i].key, x,
                            fields[i].whole ? "a whole number" : "a number", fields[i].max);
    }
    return 0;
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
            snprintf(err, errlen, "%s/metrics.jsonl: line %d: %s, so the file is damaged (restore it from a "
                     "copy, or run again)", dir, n, why);
            rc = RUNDIR_DAMAGED;
        } else rc = fn(j, ud);
        cJSON_Delete(j);
    }
    free(text);
    return rc;
}
