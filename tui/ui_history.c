/* Finished runs on disk: finding a baseline for this recipe and machine under the runs folder,
 * and reading a run folder (recipe.lua, summary.json, metrics.jsonl) back into a ui_run.
 * Not for writing run files: the engine's runlog does that. */
#include "tui/ui_runs.h"
#include "tui/ui_catalog.h"
#include "tui/rundir.h"
#include "lua/recipe.h"
#include "engine/trainer.h"
#include "engine/ops.h"
#include "engine/version.h"
#include <cjson/cJSON.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *json_str(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : "";
}

static double json_num(const cJSON *o, const char *key, double fallback)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) ? v->valuedouble : fallback;
}

static int same_budget(const budget_spec *a, const budget_spec *b)
{
    return a->unit == b->unit && fabs(a->amount - b->amount) <= 1e-9 * fabs(b->amount);
}

/* What a baseline must share with the runs it is shown against. */
typedef struct baseline_want {
    const char *recipe_path, *dataset, *cpu, *gpu;   /* gpu: "" on the CPU */
    const budget_spec *budget;
    int batch, threads, cores;
    int cadence;                                     /* of evaluation, as rundir_cadence gives it */
    const char *device;                              /* "cpu" or "cuda" */
} baseline_want;

/* Whether run folder dir is a finished plain run of this recipe and batch on this machine and
 * device, trained by this hasten (another version's engine may be faster or slower). */
static int is_baseline(const char *dir, const baseline_want *w)
{
    cJSON *s;
    char why[300];
    if (rundir_summary(dir, &s, why, sizeof why)) return 0;
    const cJSON *fp = cJSON_GetObjectItemCaseSensitive(s, "fingerprint");
    const char *device = fp && cJSON_IsString(cJSON_GetObjectItemCaseSensitive(fp, "device"))
                             ? json_str(fp, "device") : "cpu";   /* runs from before devices */
    int cuda = !strcmp(w->device, "cuda");
    int ok = fp && !strcmp(json_str(s, "status"), "done") && !strcmp(json_str(s, "recipe"), w->recipe_path) &&
             !strcmp(json_str(s, "dataset"), w->dataset) && !strcmp(json_str(fp, "cpu"), w->cpu) &&
             json_num(fp, "cores", -1) == w->cores && !strcmp(device, w->device) &&
             !strcmp(json_str(fp, "hasten"), hasten_version) &&
             (cuda ? !strcmp(json_str(fp, "gpu"), w->gpu) : json_num(fp, "threads", -1) == w->threads);
    if (cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(s, "plugins")) > 0) ok = 0;
    cJSON_Delete(s);
    if (!ok) return 0;
    /* The budget, the batch and the plugins are in the resolved recipe. */
    char path[1200], err[256];
    train_config c;
    snprintf(path, sizeof path, "%s/recipe.lua", dir);
    if (recipe_load(path, &c, err, sizeof err)) return 0;
    ok = c.n_plugins == 0 && same_budget(&c.budget, w->budget) && c.batch == w->batch &&
         rundir_cadence(&c) == w->cadence;   /* a time to target is known to the evaluation that saw it */
    config_free(&c);
    return ok;
}

int ui_history_find_baseline(const char *root, const train_config *c, const char *dataset,
                             const budget_spec *budget, int threads, char *dir, size_t len)
{
    DIR *d = opendir(root);
    if (!d) return 0;
    char cpu[256], path[1200], best[1200] = "";
    trainer_cpu_model(cpu, sizeof cpu);
    baseline_want w = { .recipe_path = c->recipe_path, .dataset = dataset, .cpu = cpu,
                        .gpu = c->device == DEVICE_CUDA ? ops_cuda_describe() : "", .budget = budget,
                        .batch = c->batch, .threads = threads, .cores = (int)sysconf(_SC_NPROCESSORS_ONLN),
                        .cadence = rundir_cadence(c),
                        .device = ops_device_name(c->device) };
    double best_time = -1;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        struct stat st;
        snprintf(path, sizeof path, "%s/%s/summary.json", root, e->d_name);
        if (stat(path, &st) || (double)st.st_mtime < best_time) continue;
        snprintf(path, sizeof path, "%s/%s", root, e->d_name);
        if (!is_baseline(path, &w)) continue;
        best_time = (double)st.st_mtime;
        snprintf(best, sizeof best, "%s", path);
    }
    closedir(d);
    if (!best[0]) return 0;
    snprintf(dir, len, "%s", best);
    return 1;
}

/* Plugin metrics (ctx:metric) are the record's numbers beyond the standard ones (phase_seconds is
 * an object). */
static void read_extras(const cJSON *j, ui_run *r, trainer_record *rec)
{
    static const char *const standard[] = { "step", "epoch", "samples", "seconds", "train_loss", "lr" };
    const cJSON *item;
    cJSON_ArrayForEach(item, j) {
        int known = !cJSON_IsNumber(item) || strlen(item->string) >= sizeof r->metric_names[0];
        for (size_t i = 0; i < sizeof standard / sizeof *standard && !known; i++) known = !strcmp(item->string, standard[i]);
        if (known) continue;
        int k = 0;
        while (k < r->n_metric_names && strcmp(r->metric_names[k], item->string)) k++;
        if (k == r->n_metric_names) {
            if (k == TRAINER_MAX_EXTRA) continue;
            snprintf(r->metric_names[r->n_metric_names++], sizeof r->metric_names[0], "%s", item->string);
        }
        rec->extra[k] = (float)item->valuedouble;
        rec->extra_mask |= 1u << k;
    }
}

/* One record into the run's series (a rundir_record_fn): 1 when out of memory. */
static int add_record(const cJSON *j, void *ud)
{
    ui_run *r = ud;
    trainer_record rec = {
        .step = (long)json_num(j, "step", 0), .epoch = json_num(j, "epoch", 0),
        .samples = (long)json_num(j, "samples", 0), .seconds = json_num(j, "seconds", 0),
        .train_loss = (float)json_num(j, "train_loss", NAN), .lr = (float)json_num(j, "lr", 0),
    };
    if (cJSON_GetObjectItemCaseSensitive(j, "test_acc")) {
        rec.is_eval = 1;
        rec.test_loss = (float)json_num(j, "test_loss", NAN);
        rec.test_acc = (float)json_num(j, "test_acc", NAN);
    } else {   /* runs from before phase_seconds was written read as zeros */
        const cJSON *ph = cJSON_GetObjectItemCaseSensitive(j, "phase_seconds");
        for (int p = 0; p < PHASE_EVAL; p++) rec.phase[p] = (float)json_num(ph, trainer_phase_name(p), 0);
        read_extras(j, r, &rec);
    }
    return ui_run_append(r, &rec, 1) ? 1 : 0;
}

int ui_history_read(const char *dir, ui_run *r, char *err, size_t errlen)
{
    char path[1200], msg[512];
    train_config c;
    snprintf(path, sizeof path, "%s/recipe.lua", dir);
    if (recipe_load(path, &c, msg, sizeof msg)) {
        snprintf(err, errlen, "%s", msg);
        return -1;
    }
    r->budget = c.budget;
    r->n_plugins = c.n_plugins;
    r->plugins = c.n_plugins ? malloc((size_t)c.n_plugins * sizeof *r->plugins) : NULL;
    if (r->plugins) memcpy(r->plugins, c.plugins, (size_t)c.n_plugins * sizeof *r->plugins);
    else r->n_plugins = 0;
    ui_run_name(r->plugins, r->n_plugins, r->name, sizeof r->name);
    config_free(&c);

    cJSON *s;
    if (rundir_summary(dir, &s, err, errlen)) return -1;
    const char *status = json_str(s, "status");
    atomic_store(&r->state, !strcmp(status, "done") ? UI_RUN_DONE : !strcmp(status, "failed") ? UI_RUN_FAILED : UI_RUN_STOPPED);
    const cJSON *ph = cJSON_GetObjectItemCaseSensitive(s, "phase_seconds");
    for (int p = 0; p < PHASE_COUNT; p++) r->phase[p] = json_num(ph, trainer_phase_name(p), 0);
    snprintf(r->error, sizeof r->error, "%s", json_str(s, "error"));
    cJSON_Delete(s);
    snprintf(r->dir, sizeof r->dir, "%s", dir);
    r->from_disk = 1;
    r->progress = 1;
    snprintf(path, sizeof path, "%s/log.txt", dir);
    struct stat st;
    r->log_offset = stat(path, &st) ? 0 : (long)st.st_size;   /* old lines are not news */
    int rc = rundir_metrics(dir, add_record, r, err, errlen);
    if (rc > 0) snprintf(err, errlen, "%s/metrics.jsonl: out of memory reading it", dir);
    return rc ? -1 : 0;
}
