/* Reading a run folder's files back (tui/rundir.h). */
#include "tui/rundir.h"
#include "engine/runlog.h"
#include <stdio.h>
#include <stdlib.h>

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
