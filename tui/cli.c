/* Shared command-line pieces: finding and loading recipes, loading data with the synthetic
 * fallback. Not for option parsing: each command parses its own. */
#include "tui/cli.h"
#include "datasets/datasets.h"
#include "lua/recipe.h"
#include <stdio.h>
#include <sys/stat.h>

static int file_exists(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

int cli_find_recipe(const char *arg, char *out, size_t len)
{
    const char *bases[] = { "", "recipes/", HASTEN_SHARE "/recipes/" };
    const char *exts[] = { "", ".lua" };
    for (size_t b = 0; b < 3; b++)
        for (size_t e = 0; e < 2; e++) {
            if (b == 0 && e == 1) continue;
            snprintf(out, len, "%s%s%s", bases[b], arg, exts[e]);
            if (file_exists(out)) return 0;
        }
    snprintf(out, len, "%s", arg);
    return -1;
}

int cli_load_recipe(const char *path, train_config *cfg, char *err, size_t errlen)
{
    return recipe_load(path, cfg, err, errlen);
}

int cli_load_data(const train_config *cfg, data_set *ds, char *err, size_t errlen)
{
    int rc = data_load(cfg->dataset, NULL, ds, err, errlen);
    if (rc == DATA_MISSING) {
        fprintf(stderr, "hasten: %s\nhasten: using the synthetic dataset instead; results are not "
                "comparable with %s\n", err, cfg->dataset);
        rc = data_load("synthetic", NULL, ds, err, errlen);
    }
    return rc ? -1 : 0;
}

