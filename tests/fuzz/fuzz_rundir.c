/* libFuzzer target for the readers of a run folder: each input is summary.json, a NUL byte, then
 * metrics.jsonl (no NUL: metrics.jsonl empty), written into a temporary run folder next to a fixed
 * recipe.lua (tests/fuzz/tiny.recipe.lua) and read back as `hasten compare` (with and without
 * --target), the workbench (a finished run's series, the baseline lookup) and rundir_summary read
 * it. Run from the repository root; build and run with `make fuzz`. */
#include "tui/cli.h"
#include "tui/rundir.h"
#include "tui/ui_runs.h"
#include "engine/ops.h"
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char root[64], dir[96];

/* Replaces dir/name with the n bytes at p. */
static void put(const char *name, const void *p, size_t n)
{
    char path[160];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(p, 1, n, f) != n || fclose(f)) abort();
}

static void setup(void)
{
    snprintf(root, sizeof root, "/tmp/fuzz-rundir.XXXXXX");
    if (!mkdtemp(root)) abort();
    snprintf(dir, sizeof dir, "%s/run", root);
    if (mkdir(dir, 0700)) abort();
    FILE *f = fopen("tests/fuzz/tiny.recipe.lua", "rb");
    char recipe[4096];
    size_t n = f ? fread(recipe, 1, sizeof recipe, f) : 0;
    if (!n) {
        fprintf(stderr, "fuzz_rundir: cannot read tests/fuzz/tiny.recipe.lua (run from the repository root)\n");
        abort();
    }
    fclose(f);
    put("recipe.lua", recipe, n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!dir[0]) setup();
    const uint8_t *nul = memchr(data, 0, size);
    size_t ns = nul ? (size_t)(nul - data) : size;
    put("summary.json", data, ns);
    put("metrics.jsonl", nul ? nul + 1 : data, nul ? size - ns - 1 : 0);

    cJSON *s;
    char err[1400] = "";
    int rc = rundir_summary(dir, &s, err, sizeof err);
    if (rc == RUNDIR_OK ? !s : (s || !err[0])) abort();
    cJSON_Delete(s);

    char *plain[] = { "compare", dir, NULL };
    char *target[] = { "compare", "--target", "test_acc=0.5", "--phases", "--plot", dir, NULL };
    cli_compare(2, plain);
    cli_compare(6, target);

    ui_run *r = calloc(1, sizeof *r);
    if (!r) abort();
    r->target_idx = -1;
    snprintf(r->target_metric, sizeof r->target_metric, "test_acc");
    r->target_value = 0.5;
    if (ui_history_read(dir, r, err, sizeof err) && !err[0]) abort();
    ui_run_free(r);

    train_config want;
    config_defaults(&want);
    snprintf(want.recipe_path, sizeof want.recipe_path, "/tmp/fz/tiny.lua");
    want.batch = 32;
    budget_spec budget = { BUDGET_STEPS, 20 };
    char found[200];
    ui_history_find_baseline(root, &want, "synthetic", &budget, 2, found, sizeof found);
    return 0;
}
