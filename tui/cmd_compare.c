/* `hasten compare RUN...`: time to target, final quality and throughput of finished runs, grouped
 * by variant (their plugins), with the speedup over the baseline (the variant without plugins).
 * Reads run folders only; trains nothing. */
#include "tui/cli.h"
#include <cjson/cJSON.h>
#include <dirent.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct run_row {
    char recipe[64];
    char variant[256];
    double acc, ttt, sps, steps_to;   /* ttt, steps_to: -1 when the target was not reached */
} run_row;

typedef struct stats { int n, reached; double acc[64], ttt[64], sps[64], steps[64]; } stats;

static char *read_all(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) { free(buf); buf = NULL; }
    if (buf) buf[n] = 0;
    fclose(f);
    return buf;
}

/* "baseline", or the plugins with their parameters: "mixup(alpha=0.4)+ema". */
static void variant_name(const cJSON *plugins, char *out, size_t len)
{
    out[0] = 0;
    const cJSON *p;
    cJSON_ArrayForEach(p, plugins) {
        size_t n = strlen(out);
        snprintf(out + n, len - n, "%s%s", n ? "+" : "", cJSON_GetObjectItem(p, "name")->valuestring);
        const cJSON *params = cJSON_GetObjectItem(p, "params"), *kv;
        int k = 0;
        cJSON_ArrayForEach(kv, params) {
            n = strlen(out);
            snprintf(out + n, len - n, "%s%s=%s", k++ ? "," : "(", kv->string, kv->valuestring);
        }
        if (k) strncat(out, ")", len - strlen(out) - 1);
    }
    if (!out[0]) snprintf(out, len, "baseline");
}

/* First eval record of metrics.jsonl meeting metric >= value (acc) or <= value (loss). */
static void target_from_metrics(const char *dir, const char *metric, double value, run_row *r)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/metrics.jsonl", dir);
    char *text = read_all(path);
    r->ttt = r->steps_to = -1;
    if (!text) return;
    int want_low = !strcmp(metric, "test_loss");
    for (char *save = NULL, *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        cJSON *j = cJSON_Parse(line);
        const cJSON *m = j ? cJSON_GetObjectItem(j, metric) : NULL;
        if (m && (want_low ? m->valuedouble <= value : m->valuedouble >= value)) {
            r->ttt = cJSON_GetObjectItem(j, "seconds")->valuedouble;
            r->steps_to = cJSON_GetObjectItem(j, "step")->valuedouble;
            cJSON_Delete(j);
            break;
        }
        cJSON_Delete(j);
    }
    free(text);
}

static int load_row(const char *dir, const char *metric, double value, run_row *r, char *err, size_t errlen)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/summary.json", dir);
    char *text = read_all(path);
    cJSON *s = text ? cJSON_Parse(text) : NULL;
    free(text);
    if (!s) {
        snprintf(err, errlen, "%s: no readable summary.json (a run still going, or not a run folder)", dir);
        return -1;
    }
    const cJSON *st = cJSON_GetObjectItem(s, "status"), *acc = cJSON_GetObjectItem(s, "test_acc");
    if (!cJSON_IsString(st) || strcmp(st->valuestring, "done") || !cJSON_IsNumber(acc)) {
        snprintf(err, errlen, "%s: status is %s, not done: left out", dir, cJSON_IsString(st) ? st->valuestring : "unknown");
        cJSON_Delete(s);
        return -1;
    }
    variant_name(cJSON_GetObjectItem(s, "plugins"), r->variant, sizeof r->variant);
    const cJSON *rp = cJSON_GetObjectItem(s, "recipe");
    const char *rn = cJSON_IsString(rp) ? rp->valuestring : "?", *slash = strrchr(rn, '/');
    snprintf(r->recipe, sizeof r->recipe, "%s", slash ? slash + 1 : rn);
    char *dot = strrchr(r->recipe, '.');
    if (dot && !strcmp(dot, ".lua")) *dot = 0;
    r->acc = acc->valuedouble;
    r->sps = cJSON_GetObjectItem(s, "samples_per_second")->valuedouble;
    if (metric) target_from_metrics(dir, metric, value, r);
    else {
        const cJSON *t = cJSON_GetObjectItem(s, "time_to_target"), *k = cJSON_GetObjectItem(s, "steps_to_target");
        r->ttt = cJSON_IsNumber(t) ? t->valuedouble : -1;
        r->steps_to = cJSON_IsNumber(k) ? k->valuedouble : -1;
    }
    cJSON_Delete(s);
    return 0;
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

int cli_compare(int argc, char **argv)
{
    static const struct option opts[] = {
        {"target", required_argument, 0, 't'}, {"markdown", no_argument, 0, 'm'}, {0, 0, 0, 0},
    };
    char metric[32] = "", *eq;
    double value = 0;
    int md = 0, c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (c == 'm') md = 1;
        else if (c == 't' && (eq = strchr(optarg, '=')) && eq - optarg < (long)sizeof metric &&
                 (!strncmp(optarg, "test_acc", 8) || !strncmp(optarg, "test_loss", 9))) {
            snprintf(metric, (size_t)(eq - optarg) + 1, "%s", optarg);
            value = atof(eq + 1);
        } else {
            fprintf(stderr, "hasten compare: bad option (usage: hasten compare RUN_OR_FOLDER... "
                    "[--target test_acc=0.9|test_loss=0.3] [--markdown])\n");
            return EXIT_USAGE;
        }
    }
    if (optind >= argc) {
        fprintf(stderr, "hasten compare: give run folders, or folders holding them\n");
        return EXIT_USAGE;
    }
    /* Expand folders of runs, keep order, group by variant in first-seen order. */
    enum { MAX_VARIANTS = 64 };
    char names[MAX_VARIANTS][256], recipes[MAX_VARIANTS][64];
    stats *st = calloc(MAX_VARIANTS, sizeof *st);
    int nv = 0;
    char err[1400];
    for (int a = optind; a < argc; a++) {
        char *dirs[512];
        int nd = 0;
        if (is_run(argv[a])) dirs[nd++] = strdup(argv[a]);
        else {
            struct dirent **list;
            int k = scandir(argv[a], &list, NULL, alphasort);
            if (k < 0) { fprintf(stderr, "hasten compare: %s: not a run folder\n", argv[a]); free(st); return EXIT_USAGE; }
            for (int i = 0; i < k; i++) {
                char p[1100];
                snprintf(p, sizeof p, "%s/%s", argv[a], list[i]->d_name);
                if (list[i]->d_name[0] != '.' && is_run(p) && nd < 512) dirs[nd++] = strdup(p);
                free(list[i]);
            }
            free(list);
        }
        for (int i = 0; i < nd; i++) {
            run_row r;
            if (load_row(dirs[i], metric[0] ? metric : NULL, value, &r, err, sizeof err)) fprintf(stderr, "hasten compare: %s\n", err);
            else {
                int v = 0;
                while (v < nv && (strcmp(names[v], r.variant) || strcmp(recipes[v], r.recipe))) v++;
                if (v == nv && nv < MAX_VARIANTS) {
                    snprintf(recipes[nv], 64, "%s", r.recipe);
                    snprintf(names[nv++], 256, "%s", r.variant);
                }
                stats *s = &st[v];
                if (v < nv && s->n < 64) {
                    s->acc[s->n] = r.acc;
                    s->sps[s->n] = r.sps;
                    if (r.ttt >= 0) { s->ttt[s->reached] = r.ttt; s->steps[s->reached++] = r.steps_to; }
                    s->n++;
                }
            }
            free(dirs[i]);
        }
    }
    const char *fmt_head = md ? "| %s | %s | %s | %s | %s | %s | %s | %s |\n"
                              : "%-14s %-34s %5s %16s %8s %16s %10s %8s\n";
    printf(fmt_head, "recipe", "variant", "runs", "time to target", "reached", "final test_acc", "samples/s", "speedup");
    if (md) printf("|---|---|---:|---:|---:|---:|---:|---:|\n");
    int missing_base = 0;
    for (int v = 0; v < nv; v++) {
        stats *s = &st[v], *b = NULL;
        for (int k = 0; k < nv; k++)
            if (!strcmp(names[k], "baseline") && !strcmp(recipes[k], recipes[v])) b = &st[k];
        missing_base |= !b;
        char ttt[48] = "-", acc[48], speed[32] = "-", reached[16];
        if (s->reached) snprintf(ttt, sizeof ttt, "%.1f ± %.1f s", mean(s->ttt, s->reached), sd(s->ttt, s->reached));
        snprintf(acc, sizeof acc, "%.4f ± %.4f", mean(s->acc, s->n), sd(s->acc, s->n));
        snprintf(reached, sizeof reached, "%d/%d", s->reached, s->n);
        /* Speedup only when every run of both reached the target: otherwise the mean flatters. */
        if (b && s->reached == s->n && b->reached == b->n && s->n && b->n)
            snprintf(speed, sizeof speed, "%.2fx", mean(b->ttt, b->n) / mean(s->ttt, s->n));
        printf(md ? "| %s | %s | %d | %s | %s | %s | %.0f | %s |\n" : "%-14s %-34s %5d %16s %8s %16s %10.0f %8s\n",
               recipes[v], names[v], s->n, ttt, reached, acc, mean(s->sps, s->n), speed);
    }
    if (missing_base) printf("%s(speedup needs a baseline run, without plugins, of the same recipe)\n", md ? "\n" : "");
    free(st);
    return nv ? EXIT_DONE : EXIT_FAILED;
}
