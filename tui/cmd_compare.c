/* `hasten compare RUN...`: time to target, final quality and throughput of finished runs, grouped
 * by setup (recipe, batch size and machine: runs of a recipe on a laptop and on a GPU are two
 * experiments), variant (their plugins) and budget, with the speedup over the baseline (the variant
 * without plugins); where the baseline ran at several budgets, its Pareto frontier and where each
 * variant lands against it. Reads run folders only; trains nothing. */
#include "tui/cli.h"
#include "tui/frontier.h"
#include "tui/rundir.h"
#include "tui/ui_draw.h"
#include "engine/check.h"
#include <cjson/cJSON.h>
#include <dirent.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct run_row {
    char recipe[240];                 /* the setup: "name|batch|machine|engine", the grouping key */
    char name[64];                    /* the recipe's name */
    char machine[128];                /* "NVIDIA H100 80GB HBM3", "AMD EPYC, 2 threads" */
    char engine[64];                  /* "hasten 8aae716": the code that trained it */
    int batch;                        /* 0 when not recorded */
    char variant[256];
    char budget[32];
    double acc, ttt, sps, steps_to;   /* ttt, steps_to: -1 when the target was not reached */
    double seconds;                   /* training time of the whole run */
    double steps;                     /* optimizer steps of the whole run; NAN when not recorded */
    double phase[PHASE_EVAL];         /* seconds in each training phase; NAN when not recorded */
    int eval;                         /* evaluation cadence: N > 0 every N steps, -N every N epochs, 0 unknown */
    char target[48];                  /* what ttt is the time to: "test_acc=0.9"; "" when none */
} run_row;

/* The runs of one recipe, variant and budget: seeds of one experiment. */
typedef struct group {
    char recipe[240], variant[256], budget[32];   /* recipe: the setup key, as run_row's */
    char name[64], machine[128], engine[64], label[256];   /* label: the name, plus what tells setups apart */
    int batch;
    int eval[4], n_eval;              /* the runs' distinct cadences (as run_row's), the first 4 */
    char target[48];                  /* the runs' target, as run_row's */
    int mixed_target;                 /* 1 when its runs were trained to different targets */
    int n, reached;
    double acc[64], ttt[64], sps[64], steps[64], secs[64], iters[64];
    double phase_ms[PHASE_EVAL][64];   /* ms per step in each training phase */
    int first, seen;                   /* order_groups' keys: the recipe and variant's first group, this one's */
} group;

/* "baseline", or the plugins with their parameters: "mixup(alpha=0.4)+ema". Returns -1 when
 * plugins is not a list of { name, params } objects. */
static int variant_name(const cJSON *plugins, char *out, size_t len)
{
    out[0] = 0;
    if (!cJSON_IsArray(plugins)) return -1;
    const cJSON *p;
    cJSON_ArrayForEach(p, plugins) {
        const cJSON *name = cJSON_GetObjectItem(p, "name"), *params = cJSON_GetObjectItem(p, "params"), *kv;
        if (!cJSON_IsString(name)) return -1;
        size_t n = strlen(out);
        snprintf(out + n, len - n, "%s%s", n ? "+" : "", name->valuestring);
        int k = 0;
        cJSON_ArrayForEach(kv, params) {
            n = strlen(out);
            if (cJSON_IsString(kv)) snprintf(out + n, len - n, "%s%s=%s", k++ ? "," : "(", kv->string, kv->valuestring);
            else snprintf(out + n, len - n, "%s%s=%g", k++ ? "," : "(", kv->string, kv->valuedouble);
        }
        if (k) strncat(out, ")", len - strlen(out) - 1);
    }
    if (!out[0]) snprintf(out, len, "baseline");
    return 0;
}

/* o's number field key into *v; returns -1 when it is missing or not a number. */
static int number(const cJSON *o, const char *key, double *v)
{
    const cJSON *f = cJSON_GetObjectItem(o, key);
    if (!cJSON_IsNumber(f)) return -1;
    *v = f->valuedouble;
    return 0;
}

/* The first evaluation record meeting a target (config_target_met), looked for in metrics.jsonl. */
typedef struct target_scan {
    const char *metric;
    double value;
    run_row *r;
} target_scan;

/* A rundir_record_fn: 1 (stop) at the first record whose metric meets the target, its time and
 * step then in the row. Records without these numbers are not evaluations. */
static int meets_target(const cJSON *j, void *ud)
{
    target_scan *t = ud;
    double m, secs, step;
    if (number(j, t->metric, &m) || number(j, "seconds", &secs) || number(j, "step", &step) ||
        !config_target_met(t->metric, m, t->value))
        return 0;
    t->r->ttt = secs;
    t->r->steps_to = step;
    return 1;
}

/* The machine a run's fingerprint names: the GPU's name for a CUDA run, else the CPU's model and
 * the threads it trained on. */
static void machine_name(const cJSON *fp, char *out, size_t len)
{
    const cJSON *dev = cJSON_GetObjectItem(fp, "device"), *gpu = cJSON_GetObjectItem(fp, "gpu"),
                *cpu = cJSON_GetObjectItem(fp, "cpu");
    double threads;
    if (cJSON_IsString(dev) && !strcmp(dev->valuestring, "cuda") && cJSON_IsString(gpu))
        snprintf(out, len, "%.*s", (int)strcspn(gpu->valuestring, ","), gpu->valuestring);
    else if (cJSON_IsString(cpu) && !number(fp, "threads", &threads))
        snprintf(out, len, "%s, %d threads", cpu->valuestring, (int)threads);
    else snprintf(out, len, "unrecorded machine");
}

static int load_row(const char *dir, const char *metric, double value, run_row *r, char *err, size_t errlen)
{
    cJSON *s;
    if (rundir_summary(dir, &s, err, errlen)) return -1;
    char path[1200];   /* for the messages */
    snprintf(path, sizeof path, "%s/summary.json", dir);
    const cJSON *st = cJSON_GetObjectItem(s, "status");
    if (!cJSON_IsString(st) || strcmp(st->valuestring, "done")) {
        snprintf(err, errlen, "%s: status is %s, not done: left out", dir, cJSON_IsString(st) ? st->valuestring : "unknown");
        goto fail;
    }
    static const char *const needed[] = { "test_acc", "train_seconds", "samples_per_second" };
    double v;   /* their ranges rundir_summary checked */
    for (int i = 0; i < 3; i++)
        if (number(s, needed[i], &v)) {
            snprintf(err, errlen, "%s: field %s missing or not a number: left out", path, needed[i]);
            goto fail;
        }
    const cJSON *rp = cJSON_GetObjectItem(s, "recipe"), *bud = cJSON_GetObjectItem(s, "budget");
    if (!cJSON_IsString(rp) || variant_name(cJSON_GetObjectItem(s, "plugins"), r->variant, sizeof r->variant)) {
        snprintf(err, errlen, "%s: field %s is not as hasten writes it: left out", path,
                 cJSON_IsString(rp) ? "plugins" : "recipe");
        goto fail;
    }
    number(s, "test_acc", &r->acc);
    number(s, "train_seconds", &r->seconds);
    number(s, "samples_per_second", &r->sps);
    if (number(s, "steps", &r->steps)) r->steps = NAN;
    const cJSON *ph = cJSON_GetObjectItem(s, "phase_seconds");
    for (int p = 0; p < PHASE_EVAL; p++)
        if (number(ph, trainer_phase_name(p), &r->phase[p])) r->phase[p] = NAN;
    snprintf(r->budget, sizeof r->budget, "%s", cJSON_IsString(bud) ? bud->valuestring : "?");
    const char *rn = rp->valuestring, *slash = strrchr(rn, '/');
    snprintf(r->name, sizeof r->name, "%s", slash ? slash + 1 : rn);
    char *dot = strrchr(r->name, '.');
    if (dot && !strcmp(dot, ".lua")) *dot = 0;
    double batch;
    r->batch = number(s, "batch", &batch) ? 0 : (int)batch;
    const cJSON *fp = cJSON_GetObjectItem(s, "fingerprint"), *ver = cJSON_GetObjectItem(fp, "hasten");
    machine_name(fp, r->machine, sizeof r->machine);
    snprintf(r->engine, sizeof r->engine, "hasten %s", cJSON_IsString(ver) ? ver->valuestring : "unrecorded");
    snprintf(r->recipe, sizeof r->recipe, "%s|%d|%s|%s", r->name, r->batch, r->machine, r->engine);
    r->eval = rundir_eval_cadence(dir);
    if (metric) {   /* without metrics.jsonl, not reached; a damaged one leaves the run out */
        snprintf(r->target, sizeof r->target, "%s=%g", metric, value);
        target_scan scan = { metric, value, r };
        r->ttt = r->steps_to = -1;
        if (rundir_metrics(dir, meets_target, &scan, err, errlen) == RUNDIR_DAMAGED) {
            size_t n = strlen(err);
            snprintf(err + n, errlen - n, ": left out");
            goto fail;
        }
    } else {
        const cJSON *t = cJSON_GetObjectItem(s, "time_to_target"), *k = cJSON_GetObjectItem(s, "steps_to_target");
        r->ttt = cJSON_IsNumber(t) ? t->valuedouble : -1;
        r->steps_to = cJSON_IsNumber(k) ? k->valuedouble : -1;
        const cJSON *tg = cJSON_GetObjectItem(s, "target"), *m = tg ? tg->child : NULL;   /* { metric: value } */
        if (cJSON_IsNumber(m) && m->string) snprintf(r->target, sizeof r->target, "%s=%g", m->string, m->valuedouble);
        else r->target[0] = 0;
    }
    cJSON_Delete(s);
    return 0;
fail:
    cJSON_Delete(s);
    return -1;
}

static double mean(const double *v, int n)
{
    double s = 0;
    for (int i = 0; i < n; i++) s += v[i];
    return n ? s / n : NAN;
}

static double sd(const double *v, int n)
{
    if (n < 2) return 0;
    double m = mean(v, n), s = 0;
    for (int i = 0; i < n; i++) s += (v[i] - m) * (v[i] - m);
    return sqrt(s / (n - 1));
}

static int is_run(const char *dir)
{
    char p[1200];
    struct stat st;
    snprintf(p, sizeof p, "%s/summary.json", dir);
    return !stat(p, &st);
}


enum { MAX_GROUPS = 128 };

typedef struct table {
    group *g;
    int n;
    char **seen;         /* real paths of the runs read (n_seen): one named twice counts once */
    int n_seen;
    int md;              /* Markdown instead of aligned text */
    int plot;            /* each frontier drawn too */
} table;

/* Width of the variant column: in aligned text 30, or the longest name (plugin arguments make
 * long ones); in Markdown 0 (the formats take it as a field width, "%*s" or "%-*s"). */
static int variant_width(const table *t)
{
    int w = 30;
    for (int v = 0; v < t->n && !t->md; v++) {
        int len = (int)strlen(t->g[v].variant);
        if (len > w) w = len;
    }
    return t->md ? 0 : w;
}

static void add_row(table *t, const run_row *r)
{
    int v = 0;
    while (v < t->n && (strcmp(t->g[v].variant, r->variant) || strcmp(t->g[v].recipe, r->recipe) ||
                        strcmp(t->g[v].budget, r->budget)))
        v++;
    if (v == MAX_GROUPS) {
        fprintf(stderr, "hasten compare: more than %d recipe/variant/budget groups; the rest left out\n", MAX_GROUPS);
        return;
    }
    group *g = &t->g[v];
    if (v == t->n) {
        t->n++;
        snprintf(g->recipe, sizeof g->recipe, "%s", r->recipe);
        snprintf(g->name, sizeof g->name, "%s", r->name);
        snprintf(g->machine, sizeof g->machine, "%s", r->machine);
        snprintf(g->engine, sizeof g->engine, "%s", r->engine);
        g->batch = r->batch;
        snprintf(g->variant, sizeof g->variant, "%s", r->variant);
        snprintf(g->budget, sizeof g->budget, "%s", r->budget);
    }
    if (g->n == 64) return;
    if (!g->n) snprintf(g->target, sizeof g->target, "%s", r->target);
    else g->mixed_target |= strcmp(g->target, r->target) != 0;
    int k = 0;
    while (k < g->n_eval && g->eval[k] != r->eval) k++;
    if (k == g->n_eval && k < 4) g->eval[g->n_eval++] = r->eval;
    g->acc[g->n] = r->acc;
    g->sps[g->n] = r->sps;
    g->secs[g->n] = r->seconds;
    g->iters[g->n] = r->steps;
    for (int p = 0; p < PHASE_EVAL; p++) g->phase_ms[p][g->n] = 1000 * r->phase[p] / r->steps;
    if (r->ttt >= 0) { g->ttt[g->reached] = r->ttt; g->steps[g->reached++] = r->steps_to; }
    g->n++;
}

static void add_run(table *t, const char *dir, const char *metric, double value)
{
    char err[1400], *real = realpath(dir, NULL);
    for (int i = 0; real && i < t->n_seen; i++)
        if (!strcmp(t->seen[i], real)) {
            fprintf(stderr, "hasten compare: %s: named twice, counted once\n", dir);
            free(real);
            return;
        }
    char **more = real ? realloc(t->seen, (size_t)(t->n_seen + 1) * sizeof *more) : NULL;
    if (more) {
        t->seen = more;
        t->seen[t->n_seen++] = real;
    } else free(real);
    run_row r;
    if (load_row(dir, metric, value, &r, err, sizeof err)) fprintf(stderr, "hasten compare: %s\n", err);
    else add_row(t, &r);
}

/* Reads one argument: a run folder, or a folder of run folders (alphabetical). Returns -1 when it
 * is neither. */
static int add_arg(table *t, const char *arg, const char *metric, double value)
{
    struct dirent **list;
    if (is_run(arg)) {
        add_run(t, arg, metric, value);
        return 0;
    }
    int k = scandir(arg, &list, NULL, alphasort);
    if (k < 0) return -1;
    for (int i = 0; i < k; i++) {
        char p[1100];
        snprintf(p, sizeof p, "%s/%s", arg, list[i]->d_name);
        if (list[i]->d_name[0] != '.' && is_run(p)) add_run(t, p, metric, value);
        free(list[i]);
    }
    free(list);
    return 0;
}

/* Each group's label: its recipe's name, with the batch, the machine and the hasten version where
 * runs of that name differ in them (two setups of one recipe are two experiments: their baselines
 * and frontiers stay apart; and a faster engine must not make a method look faster). */
static int by_budget(const void *pa, const void *pb)
{
    const group *a = pa, *b = pb;
    if (a->first != b->first) return a->first - b->first;
    budget_spec x, y;
    int bad_x = config_parse_budget(a->budget, &x), bad_y = config_parse_budget(b->budget, &y);
    if (!bad_x && !bad_y && x.unit != y.unit) return (int)x.unit - (int)y.unit;
    if (!bad_x && !bad_y && x.amount != y.amount) return x.amount < y.amount ? -1 : 1;
    return a->seen - b->seen;
}

/* Each recipe and variant where it first came, its budgets in increasing order: folder names sort
 * as text, which put 100steps before 50steps and 10ep before 2ep. */
static void order_groups(table *t)
{
    for (int v = 0; v < t->n; v++) {
        group *g = &t->g[v];
        g->seen = v;
        g->first = v;
        for (int k = 0; k < v; k++)
            if (!strcmp(t->g[k].recipe, g->recipe) && !strcmp(t->g[k].variant, g->variant)) {
                g->first = k;
                break;
            }
    }
    qsort(t->g, (size_t)t->n, sizeof *t->g, by_budget);
}

static void label_groups(table *t)
{
    for (int v = 0; v < t->n; v++) {
        group *g = &t->g[v];
        int batches = 0, machines = 0, engines = 0;
        for (int k = 0; k < t->n; k++) {
            const group *o = &t->g[k];
            if (strcmp(o->name, g->name)) continue;
            batches |= o->batch != g->batch;
            machines |= strcmp(o->machine, g->machine) != 0;
            engines |= strcmp(o->engine, g->engine) != 0;
        }
        char b[32], what[256] = "";
        snprintf(b, sizeof b, g->batch ? "batch %d" : "batch unrecorded", g->batch);
        const char *parts[] = { batches ? b : NULL, machines ? g->machine : NULL, engines ? g->engine : NULL };
        for (int k = 0; k < 3; k++)
            if (parts[k]) snprintf(what + strlen(what), sizeof what - strlen(what), "%s%s", what[0] ? ", " : "", parts[k]);
        if (what[0]) snprintf(g->label, sizeof g->label, "%s (%s)", g->name, what);
        else snprintf(g->label, sizeof g->label, "%s", g->name);
    }
}

/* The label of the groups of setup recipe. */
static const char *label_of(const table *t, const char *recipe)
{
    for (int v = 0; v < t->n; v++)
        if (!strcmp(t->g[v].recipe, recipe)) return t->g[v].label;
    return recipe;
}

/* Width of the recipe column: in aligned text 14, or the longest label; in Markdown 0. */
static int recipe_width(const table *t)
{
    int w = 14;
    for (int v = 0; v < t->n && !t->md; v++) {
        int len = (int)strlen(t->g[v].label);
        if (len > w) w = len;
    }
    return t->md ? 0 : w;
}

static int is_baseline(const group *g) { return !strcmp(g->variant, "baseline"); }

/* The baseline budget of s's setup that reached the target soonest, every run of it, evaluated at
 * s's cadence (times to target known to other steps do not compare) and trained to s's target;
 * NULL when there is none. */
static const group *best_baseline(const table *t, const group *s)
{
    const group *best = NULL;
    for (int v = 0; v < t->n; v++) {
        const group *g = &t->g[v];
        if (!is_baseline(g) || strcmp(g->recipe, s->recipe) || !g->n || g->reached != g->n) continue;
        if (g->n_eval != 1 || s->n_eval != 1 || g->eval[0] != s->eval[0]) continue;
        if (g->mixed_target || s->mixed_target || strcmp(g->target, s->target)) continue;
        if (!best || mean(g->ttt, g->n) < mean(best->ttt, best->n)) best = g;
    }
    return best;
}

static int baseline_budgets(const table *t, const char *recipe)
{
    int k = 0;
    for (int v = 0; v < t->n; v++) k += is_baseline(&t->g[v]) && !strcmp(t->g[v].recipe, recipe);
    return k;
}

/* Seconds as the tables print them: two decimals under a second (a GPU run of a few epochs takes
 * under one), one above. */
static const char *secs_fmt(double v) { return fabs(v) < 1 ? "%.2f" : "%.1f"; }

/* "m ± sd" then unit, both in fmt (as many decimals); "m" alone from a single run, which has no
 * spread to show (a "± 0.0" there read as a spread measured to be nil). */
static void fmt_spread(char *buf, size_t len, const char *fmt, double m, double spread, int n,
                       const char *unit)
{
    char mtxt[24], sdtxt[24] = "";
    snprintf(mtxt, sizeof mtxt, fmt, m);
    if (n > 1) {
        strcpy(sdtxt, " ± ");
        snprintf(sdtxt + strlen(sdtxt), sizeof sdtxt - strlen(sdtxt), fmt, spread);
    }
    snprintf(buf, len, "%s%s%s", mtxt, sdtxt, unit);
}

static char *fmt_secs(char *buf, size_t len, double v)
{
    snprintf(buf, len, secs_fmt(v), v);
    return buf;
}

/* One line per setup whose runs evaluate at more than one cadence, naming them: their times to
 * target are known to different steps, so the table gives speedups only between runs alike. */
static void print_cadence_notes(const table *t)
{
    for (int v = 0; v < t->n; v++) {
        const group *g = &t->g[v];
        int first = 1, mixed = g->n_eval > 1;
        for (int u = 0; u < t->n; u++) {
            if (strcmp(t->g[u].recipe, g->recipe)) continue;
            first &= u >= v;
            mixed |= t->g[u].n_eval > 1 || t->g[u].eval[0] != g->eval[0];
        }
        if (!first || !mixed) continue;
        char line[1024], cad[32];
        int n = snprintf(line, sizeof line, "(%s: runs evaluated at different cadences:", g->label);
        for (int u = 0; u < t->n && n < (int)sizeof line; u++) {
            const group *o = &t->g[u];
            if (strcmp(o->recipe, g->recipe)) continue;
            n += snprintf(line + n, sizeof line - (size_t)n, " %s %s", o->variant, o->budget);
            for (int k = 0; k < o->n_eval && n < (int)sizeof line; k++) {
                rundir_format_cadence(o->eval[k], cad, sizeof cad);
                n += snprintf(line + n, sizeof line - (size_t)n, "%s%s", k ? " and " : " ", cad);
            }
            if (n + 1 < (int)sizeof line) line[n++] = ';', line[n] = 0;
        }
        if (n < (int)sizeof line) printf("%s a time to target is known to its run's evaluation, so speedups "
                                         "are given only between runs evaluated alike)\n", line);
    }
}

static void print_main_table(const table *t)
{
    int md = t->md;
    int vw = variant_width(t), rw = recipe_width(t);
    const char *head = md ? "| %*s | %*s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n"
                          : "%-*s %-*s %-9s %4s %15s %7s %16s %8s %6s %7s %9s %7s\n";
    printf(head, rw, "recipe", vw, "variant", "budget", "runs", "time to target", "reached", "final test_acc",
           "train s", "steps", "ms/step", "samples/s", "speedup");
    if (md) printf("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    int missing_base = 0, swept = 0;
    for (int v = 0; v < t->n; v++) {
        const group *s = &t->g[v], *b = best_baseline(t, s);
        int any_base = baseline_budgets(t, s->recipe);
        missing_base |= !any_base;
        swept |= any_base > 1;
        char ttt[48] = "-", acc[48], speed[32] = "-", reached[16];
        if (s->reached) {
            double m = mean(s->ttt, s->reached);
            fmt_spread(ttt, sizeof ttt, secs_fmt(m), m, sd(s->ttt, s->reached), s->reached, " s");
        }
        fmt_spread(acc, sizeof acc, "%.4f", mean(s->acc, s->n), sd(s->acc, s->n), s->n, "");
        snprintf(reached, sizeof reached, "%d/%d", s->reached, s->n);
        /* Speedup only when every run of both reached the target: otherwise the mean flatters. */
        if (b && s->reached == s->n && s->n)
            snprintf(speed, sizeof speed, "%.2fx", mean(b->ttt, b->n) / mean(s->ttt, s->n));
        /* Time per step and step count apart: a method can win one and lose the other. */
        double steps = mean(s->iters, s->n), secs = mean(s->secs, s->n);
        char nsteps[16] = "-", ms[16] = "-", train[16];
        if (!isnan(steps) && steps > 0) {
            snprintf(nsteps, sizeof nsteps, "%.0f", steps);
            snprintf(ms, sizeof ms, "%.2f", 1000 * secs / steps);
        }
        printf(md ? "| %*s | %*s | %s | %d | %s | %s | %s | %s | %s | %s | %.0f | %s |\n"
                  : "%-*s %-*s %-9s %4d %15s %7s %16s %8s %6s %7s %9.0f %7s\n",
               rw, s->label, vw, s->variant, s->budget, s->n, ttt, reached, acc,
               fmt_secs(train, sizeof train, secs), nsteps, ms,
               mean(s->sps, s->n), speed);
    }
    if (md) printf("\n");
    print_cadence_notes(t);
    int targets = 0;   /* a setup whose runs' summaries name different targets */
    for (int v = 0; v < t->n; v++)
        for (int u = 0; u < t->n; u++)
            targets |= t->g[v].mixed_target ||
                       (!strcmp(t->g[u].recipe, t->g[v].recipe) && strcmp(t->g[u].target, t->g[v].target));
    if (targets) printf("(runs of a setup were trained to different targets: a speedup only between runs of the same "
                        "target; --target reads every run against one)\n");
    if (missing_base) printf("(speedup needs a baseline run, without plugins, of the same recipe, batch, machine and hasten version)\n");
    if (swept) printf("(speedup: against the baseline budget that reached the target soonest)\n");
}

/* Where each variant's step time goes, in ms per step (means over its runs). */
static void print_phases(const table *t)
{
    int md = t->md;
    int vw = variant_width(t), rw = recipe_width(t);
    if (md) printf("\n| recipe | variant | budget |");
    else printf("\n%-*s %-*s %-9s", rw, "recipe", vw, "variant", "budget");
    for (int p = 0; p < PHASE_EVAL; p++) printf(md ? " %s ms |" : " %10s", trainer_phase_name(p));
    printf(md ? "\n|---|---|---|%s\n" : "\n", "---:|---:|---:|---:|---:|");
    for (int v = 0; v < t->n; v++) {
        const group *g = &t->g[v];
        printf(md ? "| %*s | %*s | %s |" : "%-*s %-*s %-9s", rw, g->label, vw, g->variant, g->budget);
        for (int p = 0; p < PHASE_EVAL; p++) {
            double ms = mean(g->phase_ms[p], g->n);
            if (isnan(ms)) printf(md ? " - |" : " %10s", "-");
            else printf(md ? " %.3f |" : " %10.3f", ms);
        }
        printf("\n");
    }
    printf("%s(ms per step on the training clock; plugins include one-off work at fit_start and fit_end, spread\n"
           " over the steps; evaluation is outside the clock)\n", md ? "\n" : "");
}

/* Standard error of the mean, absolute and relative to the mean. */
static double se(const double *v, int n) { return n ? sd(v, n) / sqrt(n) : 0; }
static double rel_se(const double *v, int n) { return n ? se(v, n) / mean(v, n) : 0; }

/* The frontier's quality at seconds, with seconds held inside the sweep. */
static double quality_held(const frontier *f, double seconds)
{
    double lo = f->p[0].seconds, hi = f->p[f->n - 1].seconds;
    return frontier_quality_at(f, seconds < lo ? lo : seconds > hi ? hi : seconds);
}

/* Where (secs, acc) lies against the frontier, given the noise in accuracy (na, absolute) and
 * in time (nt, relative): "above", "below", "level" (within the noise) or "?" (the sweep does not
 * reach its time and the bounds decide nothing). */
static const char *reading(const frontier *f, double secs, double acc, double na, double nt)
{
    double q = frontier_quality_at(f, secs);
    if (!isnan(q)) {   /* the gap at equal time, against accuracy noise and the time noise moved onto the curve */
        double slack = na + fmax(quality_held(f, secs * (1 + nt)) - q, q - quality_held(f, secs * (1 - nt)));
        return acc - q > slack ? "above" : q - acc > slack ? "below" : "level";
    }
    /* Its time is outside the sweep: the time the frontier needs for its accuracy less and plus the
     * accuracy noise. A bound (+1: more than the longest budget; -1: at most the shortest) decides
     * only in its own direction. */
    double ft, lo_t, hi_t;
    int where = frontier_time_for(f, acc, &ft), lo = frontier_time_for(f, acc - na, &lo_t),
        hi = frontier_time_for(f, acc + na, &hi_t);
    if ((lo == 0 && lo_t > secs * (1 + nt)) || (lo > 0 && lo_t >= secs * (1 + nt))) return "above";
    if ((hi == 0 && hi_t < secs * (1 - nt)) || (hi == -1 && hi_t <= secs * (1 - nt))) return "below";
    return where == 0 ? "level" : "?";
}

/* ---- the frontier as a plot: final accuracy against training time ---------------------------- */

/* A variant's point on the plot, with its reading. */
typedef struct mark {
    double secs, acc;
    const group *g;
    char verdict[32];
} mark;

enum { PLOT_W = 64, PLOT_H = 14, PLOT_LABEL = 7 };

static void put_utf8(char *out, size_t *at, unsigned cp)
{
    if (cp < 0x80) {
        out[(*at)++] = (char)cp;
    } else if (cp < 0x800) {
        out[(*at)++] = (char)(0xC0 | cp >> 6);
        out[(*at)++] = (char)(0x80 | (cp & 0x3F));
    } else {
        out[(*at)++] = (char)(0xE0 | cp >> 12);
        out[(*at)++] = (char)(0x80 | (cp >> 6 & 0x3F));
        out[(*at)++] = (char)(0x80 | (cp & 0x3F));
    }
}

/* The mark's letter: a..z then A..Z, '+' beyond. */
static char mark_letter(int k) { return k < 26 ? (char)('a' + k) : k < 52 ? (char)('A' + k - 26) : '+'; }

/* The baseline's points joined along its frontier (braille), '*' at each budget, a letter at each
 * variant (a '#' where two share a cell), axes with ticks, and a legend. Text only: a terminal,
 * a file or (fenced) Markdown shows it alike. */
static void plot_frontier(const table *t, const frontier *f, const frontier_point *pts, const group *const *src,
                          int n, const mark *m, int nm)
{
    double xmax = 0, ylo = INFINITY, yhi = -INFINITY;
    for (int i = 0; i < n; i++) {
        xmax = fmax(xmax, pts[i].seconds);
        ylo = fmin(ylo, pts[i].quality);
        yhi = fmax(yhi, pts[i].quality);
    }
    for (int k = 0; k < nm; k++) {
        xmax = fmax(xmax, m[k].secs);
        ylo = fmin(ylo, m[k].acc);
        yhi = fmax(yhi, m[k].acc);
    }
    ui_scale sx, sy;
    ui_scale_fit(&sx, 0, xmax, 0, 1);
    ui_scale_fit(&sy, ylo, yhi, 0, 0);
    ui_canvas c = { 0 };
    if (ui_canvas_resize(&c, PLOT_W, PLOT_H)) return;
#define DOT_X(v) (ui_scale_pos(&sx, (v)) * (2 * PLOT_W - 1))
#define DOT_Y(v) ((1 - ui_scale_pos(&sy, (v))) * (4 * PLOT_H - 1))
    for (int j = 0; j + 1 < f->n; j++)
        ui_canvas_line(&c, DOT_X(f->p[j].seconds), DOT_Y(f->p[j].quality), DOT_X(f->p[j + 1].seconds),
                       DOT_Y(f->p[j + 1].quality), 1);
    char over[PLOT_H][PLOT_W];
    memset(over, 0, sizeof over);
    for (int i = 0; i < n; i++) {
        int cx = (int)(DOT_X(pts[i].seconds) / 2), cy = (int)(DOT_Y(pts[i].quality) / 4);
        if (cx >= 0 && cx < PLOT_W && cy >= 0 && cy < PLOT_H) over[cy][cx] = '*';
    }
    for (int k = 0; k < nm; k++) {
        int cx = (int)(DOT_X(m[k].secs) / 2), cy = (int)(DOT_Y(m[k].acc) / 4);
        if (cx < 0 || cx >= PLOT_W || cy < 0 || cy >= PLOT_H) continue;
        over[cy][cx] = over[cy][cx] && over[cy][cx] != '*' ? '#' : mark_letter(k);
    }
    double yt[8], xt[12], ystep, xstep;
    int ny = ui_scale_ticks(&sy, 5, yt, 8, &ystep), nx = ui_scale_ticks(&sx, 8, xt, 12, &xstep);
    char label[PLOT_H][16];
    memset(label, 0, sizeof label);
    for (int i = 0; i < ny; i++) {
        int row = (int)(DOT_Y(yt[i]) / 4);
        if (row >= 0 && row < PLOT_H) ui_format_tick(yt[i], ystep, label[row], sizeof label[row]);
    }
    if (t->md) printf("\n```\n");
    else printf("\n");
    printf("%*s final test_acc against training seconds\n", PLOT_LABEL, "");
    for (int r = 0; r < PLOT_H; r++) {
        char line[PLOT_W * 4 + 64];
        size_t at = (size_t)snprintf(line, sizeof line, "%*s", PLOT_LABEL - 1, label[r]);
        put_utf8(line, &at, label[r][0] ? 0x2524 : 0x2502);   /* ┤ at a tick, │ between */
        for (int x = 0; x < PLOT_W; x++) {
            uint8_t bits = c.bits[(size_t)r * PLOT_W + x];
            if (over[r][x]) line[at++] = over[r][x];
            else if (bits) put_utf8(line, &at, ui_braille_codepoint(bits));
            else line[at++] = ' ';
        }
        while (at && line[at - 1] == ' ') at--;
        line[at] = 0;
        printf("%s\n", line);
    }
    char axis[PLOT_W * 4 + 64], ticks[PLOT_W + PLOT_LABEL + 32];
    size_t at = (size_t)snprintf(axis, sizeof axis, "%*s", PLOT_LABEL - 1, "");
    put_utf8(axis, &at, 0x2514);   /* └ */
    int tick_col[12];
    for (int i = 0; i < nx; i++) tick_col[i] = (int)(DOT_X(xt[i]) / 2);
    for (int x = 0; x < PLOT_W; x++) {
        int is_tick = 0;
        for (int i = 0; i < nx; i++) is_tick |= tick_col[i] == x;
        put_utf8(axis, &at, is_tick ? 0x252C : 0x2500);   /* ┬ or ─ */
    }
    axis[at] = 0;
    printf("%s\n", axis);
    memset(ticks, ' ', sizeof ticks);
    int end = 0;
    for (int i = 0; i < nx; i++) {
        char v[16];
        ui_format_tick(xt[i], xstep, v, sizeof v);
        int len = (int)strlen(v), start = PLOT_LABEL + tick_col[i] - len / 2;
        if (start < end + 1 || start + len >= (int)sizeof ticks - 4) continue;   /* no overlaps */
        memcpy(ticks + start, v, (size_t)len);
        end = start + len;
    }
    memcpy(ticks + end + 1, "s", 2);
    printf("%s\n", ticks);
    printf("  * baseline, at its budgets:");
    for (int i = 0; i < n; i++) printf(" %s", src[i]->budget);
    printf("; the line joins those on its frontier\n");
    for (int k = 0; k < nm; k++) {
        char secs[16];
        printf("  %c %s %s: %.4f in %s s, %s\n", mark_letter(k), m[k].g->variant, m[k].g->budget, m[k].acc,
               fmt_secs(secs, sizeof secs, m[k].secs), m[k].verdict);
    }
    if (t->md) printf("```\n");
#undef DOT_X
#undef DOT_Y
    ui_canvas_free(&c);
}

/* A recipe's baseline frontier, and every other variant of that recipe read against it. */
static void print_frontier(const table *t, const char *recipe)
{
    int md = t->md;
    frontier_point pts[FRONTIER_MAX] = {{0}};
    const group *src[FRONTIER_MAX];
    int n = 0;
    /* The largest standard errors of the baseline's means: final accuracy, and training time
     * relative to its mean (on a shared machine mostly the machine's own drift). */
    double noise_acc = 0, noise_time = 0;
    int few = 0, spread = 0;   /* a group of one run: no spread to judge by; one of two or more */
    for (int v = 0; v < t->n && n < FRONTIER_MAX; v++) {
        const group *g = &t->g[v];
        if (!is_baseline(g) || strcmp(g->recipe, recipe) || !g->n) continue;
        src[n] = g;
        noise_acc = fmax(noise_acc, se(g->acc, g->n));
        noise_time = fmax(noise_time, rel_se(g->secs, g->n));
        few |= g->n < 2;
        spread |= g->n >= 2;
        pts[n] = (frontier_point){ mean(g->secs, g->n), mean(g->acc, g->n), n };
        n++;
    }
    frontier f;
    frontier_build(&f, pts, n);
    printf("\n%s%s baseline frontier (final test_acc against training time; means over seeds):%s\n",
           md ? "**" : "", label_of(t, recipe), md ? "**\n" : "");
    for (int i = 0; i < n; i++) {
        int on = 0;
        for (int j = 0; j < f.n; j++) on |= f.p[j].tag == i;
        char t_[16];
        printf(md ? "- %s: %s s, %.4f%s\n" : "  %-9s %7s s  %.4f%s\n", src[i]->budget,
               fmt_secs(t_, sizeof t_, pts[i].seconds), pts[i].quality, on ? "" : "  (off the frontier: a shorter budget did as well)");
    }
    int any = 0;
    for (int v = 0; v < t->n; v++) any |= !is_baseline(&t->g[v]) && !strcmp(t->g[v].recipe, recipe);
    mark *marks = calloc(MAX_GROUPS, sizeof *marks);
    CHECK(marks, "out of memory");
    int nm = 0;
    if (!any) {
        if (t->plot) plot_frontier(t, &f, pts, src, n, marks, 0);
        free(marks);
        return;
    }
    int vw = variant_width(t);
    const char *head = md ? "\n| %*s | %s | %s | %s | %s | %s | %s | %s |\n"
                          : "\n%-*s %-9s %8s %14s %21s %20s %13s %8s\n";
    printf(head, vw, "variant", "budget", "train s", "final test_acc", "frontier at that time",
           "frontier to that acc", "speedup", "verdict");
    if (md) printf("|---|---|---:|---:|---:|---:|---:|---|\n");
    for (int v = 0; v < t->n; v++) {
        const group *g = &t->g[v];
        if (is_baseline(g) || strcmp(g->recipe, recipe) || !g->n) continue;
        double secs = mean(g->secs, g->n), acc = mean(g->acc, g->n), q = frontier_quality_at(&f, secs), ft;
        char at[48] = "outside the sweep", to[32], speed[32];
        if (!isnan(q)) snprintf(at, sizeof at, "%.4f (%+.4f)", q, acc - q);
        int where = frontier_time_for(&f, acc, &ft);
        static const char *const rel[] = { "<", "", ">" };
        char ft_[16], train[16];
        snprintf(to, sizeof to, "%s%s s", rel[where + 1], fmt_secs(ft_, sizeof ft_, ft));
        snprintf(speed, sizeof speed, "%s%.2fx", rel[where + 1], ft / secs);
        /* about two standard errors of the difference of the means */
        double na = 2 * hypot(noise_acc, se(g->acc, g->n)), nt = 2 * hypot(noise_time, rel_se(g->secs, g->n));
        char verdict[32];
        snprintf(verdict, sizeof verdict, "%s%s", reading(&f, secs, acc, na, nt), few || g->n < 2 ? " (1 run)" : "");
        printf(md ? "| %*s | %s | %s | %.4f | %s | %s | %s | %s |\n"
                  : "%-*s %-9s %8s %14.4f %21s %20s %13s %8s\n",
               vw, g->variant, g->budget, fmt_secs(train, sizeof train, secs), acc, at, to, speed, verdict);
        marks[nm] = (mark){ secs, acc, g, "" };
        snprintf(marks[nm++].verdict, sizeof marks[0].verdict, "%s", verdict);
    }
    char errors[120] = "the baseline has no budget of two runs or more: no spread measured";   /* not one of 0 */
    if (spread) snprintf(errors, sizeof errors, "the baseline's are up to %.4f in test_acc and %.1f%% in training time",
                         noise_acc, 100 * noise_time);
    printf("%s(speedup here: the time the frontier needs for the variant's final test_acc over the "
           "variant's time; < and >: bounds, the sweep does not reach that far. above or below: by "
           "more than about two standard errors of the means, in accuracy at equal time and in time "
           "(%s); level: within "
           "them; ?: outside the sweep; (1 run): a group of one run, no spread to judge by)\n",
           md ? "\n" : "", errors);
    if (t->plot) plot_frontier(t, &f, pts, src, n, marks, nm);
    free(marks);
}

static const char compare_usage[] =
    "usage: hasten compare RUN_OR_FOLDER... [--target test_acc=0.9|test_loss=0.3]\n"
    "         [--markdown] [--phases] [--plot]\n"
    "  time to target, final quality, steps and ms/step, samples/s and speedup\n"
    "  against the baseline; with a swept baseline, its frontier and each method\n"
    "  against it (--phases: ms per step in each phase; --plot: the frontier drawn)\n";

int cli_compare(int argc, char **argv)
{
    static const struct option opts[] = {
        {"target", required_argument, 0, 't'}, {"markdown", no_argument, 0, 'm'},
        {"phases", no_argument, 0, 'p'}, {"plot", no_argument, 0, 'P'},
        {"help", no_argument, 0, 'h'}, {0, 0, 0, 0},
    };
    char metric[32] = "";
    double value = 0;
    int md = 0, phases = 0, plot = 0, c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (c == 'm') md = 1;
        else if (c == 'p') phases = 1;
        else if (c == 'P') plot = 1;
        else if (c == 'h') {
            fputs(compare_usage, stdout);
            return EXIT_DONE;
        }
        else if (c != 't' || cli_parse_target(optarg, metric, sizeof metric, &value)) {
            fprintf(stderr, "hasten compare: bad option '%s'%s (see hasten compare --help)\n",
                    c == 't' ? optarg : argv[optind - 1], c == 't' ? " for --target" : "");
            return EXIT_USAGE;
        }
    }
    if (optind >= argc) {
        fprintf(stderr, "hasten compare: give run folders, or folders holding them\n");
        return EXIT_USAGE;
    }
    table t = { .g = calloc(MAX_GROUPS, sizeof(group)), .md = md, .plot = plot };
    CHECK(t.g, "out of memory");
    int code = EXIT_DONE;
    for (int a = optind; a < argc && code == EXIT_DONE; a++)
        if (add_arg(&t, argv[a], metric[0] ? metric : NULL, value)) {
            fprintf(stderr, "hasten compare: %s: not a run folder, nor a folder of runs\n", argv[a]);
            code = EXIT_USAGE;
        }
    for (int i = 0; i < t.n_seen; i++) free(t.seen[i]);
    free(t.seen);
    if (code != EXIT_DONE) {
        free(t.g);
        return code;
    }
    order_groups(&t);
    label_groups(&t);
    if (t.n) print_main_table(&t);
    if (t.n && phases) print_phases(&t);
    for (int v = 0; v < t.n; v++) {   /* each recipe once, where its baseline was swept */
        int first = 1;
        for (int k = 0; k < v; k++) first &= strcmp(t.g[k].recipe, t.g[v].recipe) != 0;
        if (first && baseline_budgets(&t, t.g[v].recipe) > 1) print_frontier(&t, t.g[v].recipe);
    }
    int n = t.n;
    free(t.g);
    if (!n)
        fprintf(stderr, "hasten compare: no run to compare in the folders given: a run counts once it has a "
                "readable summary.json, which it writes when it ends (one still training, killed, or that "
                "could not write has none)\n");
    return n ? EXIT_DONE : EXIT_FAILED;
}
