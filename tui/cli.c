/* Shared command-line pieces: finding and loading recipes, loading data with the synthetic
 * fallback. Not for option parsing: each command parses its own. */
#include "tui/cli.h"
#include "datasets/datasets.h"
#include "lua/recipe.h"
#include "lua/plugin.h"
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

static int file_exists(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

int cli_find_recipe(const char *arg, char *out, size_t len)
{
    char shared[700];
    snprintf(shared, sizeof shared, "%s/recipes/", plug_share_dir());
    const char *bases[] = { "", "recipes/", shared };
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

void cli_recipe_not_found(const char *name)
{
    fprintf(stderr, "hasten: recipe '%s' not found (looked for it as a path, in recipes/ and in %s/recipes/)\n",
            name, plug_share_dir());
}

int cli_load_recipe(const char *path, train_config *cfg, char *err, size_t errlen)
{
    return recipe_load(path, cfg, err, errlen);
}

static void note_stderr(void *ud, const char *line) { fprintf(stderr, "hasten: %s\n", line); }

int cli_load_data(const train_config *cfg, data_set *ds, char *err, size_t errlen)
{
    return cli_load_data_to(cfg, ds, note_stderr, NULL, 1, err, errlen);
}

int cli_load_data_to(const train_config *cfg, data_set *ds, cli_note_fn note, void *ud, int fetch,
                     char *err, size_t errlen)
{
    const char *dir = cfg->data_path[0] ? cfg->data_path : NULL;   /* the recipe says where: no fallback */
    const data_info *info = data_info_find(cfg->dataset);
    if (info && info->format == DATA_FORMAT_TEXT) {   /* no image stand-in for text */
        int rc = data_load_text_windows(cfg->dataset, dir, cfg->context, ds, err, errlen);
        if (rc == DATA_MISSING && !dir && fetch && !cli_fetch_missing(cfg->dataset, note, ud))
            rc = data_load_text_windows(cfg->dataset, NULL, cfg->context, ds, err, errlen);
        return rc ? -1 : 0;
    }
    int rc = data_load(cfg->dataset, dir, ds, err, errlen);
    if (rc == DATA_MISSING && !dir && fetch && !cli_fetch_missing(cfg->dataset, note, ud))
        rc = data_load(cfg->dataset, NULL, ds, err, errlen);
    if (rc == DATA_MISSING && !dir) {
        char line[1200];
        note(ud, err);
        snprintf(line, sizeof line, "using the synthetic dataset instead; results are not "
                 "comparable with %s", cfg->dataset);
        note(ud, line);
        rc = data_load("synthetic", NULL, ds, err, errlen);
    }
    return rc ? -1 : 0;
}

int cli_offline(void)
{
    const char *v = getenv("HASTEN_OFFLINE");
    return v && *v && strcmp(v, "0");
}

const char *cli_runs_root(void)
{
    const char *root = getenv("HASTEN_RUNS_DIR");
    return root && *root ? root : "runs";
}

void cli_default_run_dir(const train_config *cfg, char *out, size_t len)
{
    char stamp[32], name[128];
    time_t now = time(NULL);
    strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", localtime(&now));
    const char *recipe = cfg->recipe_path[0] ? cfg->recipe_path : "run";
    const char *base = strrchr(recipe, '/');
    snprintf(name, sizeof name, "%s", base ? base + 1 : recipe);
    char *dot = strrchr(name, '.');
    if (dot) *dot = 0;
    const char *root = cli_runs_root();
    for (int k = 0; k < 1000; k++) {
        if (k) snprintf(out, len, "%s/%s-%s-s%llu-%d", root, stamp, name, (unsigned long long)cfg->seed, k);
        else snprintf(out, len, "%s/%s-%s-s%llu", root, stamp, name, (unsigned long long)cfg->seed);
        struct stat st;
        if (stat(out, &st)) return;
    }
}

static int write_resolved_recipe(runlog *log, const train_config *cfg)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f) return -1;
    int rc = recipe_write(cfg, f);
    if (fclose(f)) rc = -1;
    if (!rc) rc = runlog_write_file(log, "recipe.lua", text);
    free(text);
    return rc;
}

/* ---- plugins ---- */

static char plugin_path[512];
static plug_catalog catalog;
static int catalog_loaded;

static void print_plugin_log(void *ud, const char *plugin, const char *line)
{
    fprintf(stderr, "[%s] %s\n", plugin, line);
}

static struct { plug_log_fn fn; void *ud; } plugin_log = { print_plugin_log, NULL };

void cli_set_plugin_log(plug_log_fn fn, void *ud)
{
    plugin_log.fn = fn;
    plugin_log.ud = ud;
}

int cli_set_plugin_path(const char *dir)
{
    struct stat st;
    int missing = stat(dir, &st);
    if (missing || !S_ISDIR(st.st_mode) || strlen(dir) >= sizeof plugin_path) {
        fprintf(stderr, "hasten: --plugin-path %s: %s\n", dir, missing ? strerror(errno)
                : S_ISDIR(st.st_mode) ? "path too long" : "not a folder");
        return -1;
    }
    snprintf(plugin_path, sizeof plugin_path, "%s", dir);
    return 0;
}

const char *cli_plugin_path(void) { return plugin_path[0] ? plugin_path : NULL; }

const plug_catalog *cli_catalog(void)
{
    if (!catalog_loaded) {
        char dirs[4][512];
        int n = plug_default_dirs(dirs, 4, plugin_path[0] ? plugin_path : NULL);
        plug_catalog_load(&catalog, dirs, n);
        catalog_loaded = 1;
    }
    return &catalog;
}

void cli_catalog_reload(void)
{
    if (!catalog_loaded) return;
    plug_catalog_free(&catalog);
    catalog_loaded = 0;
}

int cli_run_open(cli_run *r, const train_config *cfg, const data_set *ds, const char *out,
                 char *err, size_t errlen)
{
    char msg[1024];
    *r = (cli_run){0};
    r->t = trainer_new(cfg, ds, msg, sizeof msg);
    if (!r->t) {
        snprintf(err, errlen, "%s: %s", cfg->recipe_path[0] ? cfg->recipe_path : "recipe", msg);
        return -1;
    }
    r->host = plug_host_new(r->t, cli_catalog(), cfg, plugin_log.fn, plugin_log.ud, msg, sizeof msg);
    if (!r->host) {
        snprintf(err, errlen, "%s", msg);
        goto fail;
    }
    if (out) snprintf(r->dir, sizeof r->dir, "%s", out);
    else cli_default_run_dir(cfg, r->dir, sizeof r->dir);
    r->log = runlog_open(r->dir, err, errlen);
    if (!r->log) goto fail;
    if (write_resolved_recipe(r->log, cfg)) runlog_log(r->log, "cannot write recipe.lua");
    trainer_set_log(r->t, r->log);
    return 0;
fail:
    cli_run_close(r);
    return -1;
}

void cli_run_close(cli_run *r)
{
    plug_host_free(r->host);   /* its hook points at the trainer: free it first */
    r->host = NULL;
    trainer_free(r->t);
    runlog_close(r->log);
    r->t = NULL;
    r->log = NULL;
}

int cli_pick_device(const char *who, const char *name, device_kind *d, char *note, size_t note_len, int quiet)
{
    char why[512], said[512] = "";
    int picked = ops_pick(name, d, why, sizeof why, said, sizeof said);
    if (picked) {
        fprintf(stderr, "%s: %s\n", who, why);
        return picked == -2 ? EXIT_USAGE : EXIT_FAILED;
    }
    if (note) snprintf(note, note_len, "%s", said);
    else if (said[0] && !quiet) fprintf(stderr, "%s: %s\n", who, said);
    return EXIT_DONE;
}

int cli_parse_int(const char *s, long long min, long long max, long long *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end || end == s || v < min || v > max) return -1;
    *out = v;
    return 0;
}

int cli_int_option(const char *who, const char *opt, const char *s, long long min, long long max,
                   long long *out)
{
    if (!cli_parse_int(s, min, max, out)) return 0;
    char range[64];
    if (max >= (1ll << 40)) snprintf(range, sizeof range, ">= %lld", min);
    else snprintf(range, sizeof range, "from %lld to %lld", min, max);
    fprintf(stderr, "%s: bad value for --%s: '%s' (a whole number %s)\n", who, opt, s, range);
    return -1;
}

int cli_parse_target(const char *arg, char *metric, size_t len, double *value)
{
    static const char *const metrics[] = { "test_acc", "test_loss" };
    const char *eq = strchr(arg, '=');
    if (!eq) return -1;
    for (size_t i = 0; i < sizeof metrics / sizeof *metrics; i++) {
        size_t n = strlen(metrics[i]);
        if ((size_t)(eq - arg) != n || strncmp(arg, metrics[i], n)) continue;
        char *end;
        errno = 0;
        double v = strtod(eq + 1, &end);
        if (errno || end == eq + 1 || *end || !isfinite(v)) return -1;
        if (i == 0 ? !(v > 0 && v <= 1) : !(v > 0)) return -1;   /* as a recipe's target */
        snprintf(metric, len, "%s", metrics[i]);
        *value = v;
        return 0;
    }
    return -1;
}
