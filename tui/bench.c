/* `hasten bench`: training throughput of the MLP, CNN and character-model recipes, next to what
 * OpenBLAS sgemm achieves on exactly the GEMM shapes one training step of each model issues (its
 * roofline).
 * Not a test: it prints figures and never fails on timing. */
#include "tui/cli.h"
#include "lua/plugin.h"
#include "datasets/datasets.h"
#include "engine/check.h"
#include "engine/cpu/cpu.h"
#include "engine/ops.h"
#include "engine/rng.h"
#include "engine/trainer.h"
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#define MAX_SHAPES 256
#define MAX_LAYERS 64

static int bench_layers;                        /* --layers: time each layer too */

static device_kind bench_device = DEVICE_CPU;   /* --device: where the recipes train */

typedef struct bench_result {
    char recipe[64];                     /* its name: the file's, without folder and .lua */
    int batch, steps;
    double samples_per_s, step_ms;
    double step_p10, step_p50, step_p90;   /* ms: the measured steps' spread (CPU: steps are synchronous) */
    double gemm_gflop_step;      /* GEMM work of one step */
    double roofline_ms;          /* sgemm alone on those shapes */
    double phase_ms[PHASE_COUNT];
    int n_shapes;
    nn_layer_time layers[MAX_LAYERS];   /* --layers: seconds over the measured steps */
    int n_layers;
} bench_result;

typedef struct bench_hook {
    int warm, measure;
    double start_seconds, start_phase[PHASE_COUNT];
    nn_gemm_shape shapes[MAX_SHAPES];
    int n_shapes;
    nn_layer_time *layers;               /* NULL: layers not timed */
    double last, *step_s;                /* each measured step's seconds, in order */
    int n_steps;
} bench_hook;

/* Starts the clock after `warm` steps, records the GEMM shapes of the next step, and with
 * --layers times each layer over the measured steps. */
static int bench_hook_fn(trainer *t, trainer_event ev, void *ud)
{
    bench_hook *h = ud;
    if (ev == EV_BATCH_START && t->step == h->warm) {
        h->start_seconds = h->last = t->train_seconds;
        memcpy(h->start_phase, t->phase, sizeof h->start_phase);
        nn_gemm_record(h->shapes, MAX_SHAPES);
        if (h->layers) nn_layer_timing(h->layers, MAX_LAYERS);
    } else if (ev == EV_AFTER_STEP && t->step == h->warm + 1) {
        h->n_shapes = nn_gemm_recorded();
        nn_gemm_record(NULL, 0);
    }
    if (ev == EV_BATCH_START && t->step > h->warm && h->n_steps < h->measure) {
        /* the training clock moves at the end of a step: here it has the previous one whole */
        h->step_s[h->n_steps++] = t->train_seconds - h->last;
        h->last = t->train_seconds;
    }
    if (ev == EV_AFTER_STEP && t->step == h->warm + h->measure && h->layers) nn_layer_timing(NULL, 0);
    return 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The q-quantile (0..1) of n sorted values, the nearest rank. */
static double quantile(const double *v, int n, double q)
{
    int i = (int)(q * (n - 1) + 0.5);
    return n ? v[i < 0 ? 0 : i >= n ? n - 1 : i] : NAN;
}

static double gemm_flops(const nn_gemm_shape *s) { return 2.0 * s->M * s->N * s->K; }

/* Median-of-5 seconds for one sgemm of this shape, each sample long enough to time well. */
static double time_gemm(const nn_gemm_shape *s)
{
    size_t na = (size_t)s->M * s->K, nb = (size_t)s->K * s->N, nc = (size_t)s->M * s->N;
    float *a = malloc(na * 4), *b = malloc(nb * 4), *c = malloc(nc * 4);
    for (size_t i = 0; i < na; i++) a[i] = (float)(i % 7) * 0.1f;
    for (size_t i = 0; i < nb; i++) b[i] = (float)(i % 5) * 0.1f;
    for (size_t i = 0; i < nc; i++) c[i] = 0;
    int lda = s->ta ? s->M : s->K, ldb = s->tb ? s->K : s->N;
    int reps = (int)(2e7 / (gemm_flops(s) + 1)) + 1;
    if (reps > 1000) reps = 1000;
    double samples[5];
    for (int k = 0; k < 5; k++) {
        double t0 = trainer_now();
        for (int r = 0; r < reps; r++)
            cpu_sgemm(s->ta, s->tb, s->M, s->N, s->K, 1, a, lda, b, ldb, s->beta, c, s->N);
        samples[k] = (trainer_now() - t0) / reps;
    }
    free(a); free(b); free(c);
    for (int i = 0; i < 5; i++)
        for (int j = i + 1; j < 5; j++)
            if (samples[j] < samples[i]) { double x = samples[i]; samples[i] = samples[j]; samples[j] = x; }
    return samples[2];
}

/* A plugin that handles every event and does nothing: its cost is the bridge's own. */
static const char noop_source[] =
    "local function nop(ctx, p) end\n"
    "return hasten.plugin { name = 'noop', title = 'No-op', summary = 'handles every event, does nothing',\n"
    "  reference = 'hasten bench', taxonomy = { component = 'optimization', action = 'retrofit', when = 'every step' },\n"
    "  fit_start = nop, epoch_start = nop, batch_start = nop, before_forward = nop, after_forward = nop,\n"
    "  before_loss = nop, after_loss = nop, after_backward = nop, before_step = nop, after_step = nop,\n"
    "  epoch_end = nop, eval_start = nop, eval_end = nop, fit_end = nop }\n";

/* A text recipe's data: the corpus when it is here (never fetched for a benchmark), else random
 * characters over the vocabulary its head predicts, which costs the same per step. Returns 1 with
 * ds filled, or 0 for a recipe that is not on text. */
static int text_data(const train_config *cfg, data_set *ds)
{
    const data_info *d = data_info_find(cfg->dataset);
    char err[1024];
    if (!d || d->format != DATA_FORMAT_TEXT) return 0;
    if (!data_load_text_windows(cfg->dataset, cfg->data_path[0] ? cfg->data_path : NULL, cfg->context, ds,
                                err, sizeof err))
        return 1;
    int head = cfg->layers[cfg->n_layers - 1].out;
    data_text t = { .vocab = head == CONFIG_CLASSES ? 65 : head };   /* nn.classes: Tiny Shakespeare's */
    snprintf(t.name, sizeof t.name, "random text");
    snprintf(t.source, sizeof t.source, "generated");
    t.n_train = 200000;
    t.n_test = 20000;
    t.train = malloc(t.n_train * sizeof *t.train);
    t.test = malloc(t.n_test * sizeof *t.test);
    CHECK(t.train && t.test, "out of memory");
    rng g;
    rng_seed(&g, 1, 0);
    for (size_t i = 0; i < t.n_train; i++) t.train[i] = (uint16_t)rng_below(&g, (uint32_t)t.vocab);
    for (size_t i = 0; i < t.n_test; i++) t.test[i] = (uint16_t)rng_below(&g, (uint32_t)t.vocab);
    int rc = data_text_windows(&t, cfg->context, ds, err, sizeof err);
    free(t.train);
    free(t.test);
    CHECK(rc == 0, "%s", err);
    fprintf(stderr, "hasten bench: %s is not here: random characters instead (the same cost a step)\n",
            cfg->dataset);
    return 1;
}

/* Benchmarks recipe `name`; with_noop adds the no-op plugin. */
static int bench_recipe(const char *name, int steps, int batch, int with_noop, bench_result *r)
{
    char path[1024], err[1024];
    train_config cfg;
    data_set ds = {0};
    if (cli_find_recipe(name, path, sizeof path) || cli_load_recipe(path, &cfg, err, sizeof err)) {
        fprintf(stderr, "hasten bench: %s: %s\n", name, path);
        return -1;
    }
    if (batch > 0) cfg.batch = batch;
    if (text_data(&cfg, &ds)) {   /* text: the corpus if it is here, else random characters */
    } else if (cli_load_data(&cfg, &ds, err, sizeof err)) {
        fprintf(stderr, "hasten bench: %s\n", err);
        config_free(&cfg);
        return -1;
    }
    bench_hook h = { .warm = steps / 5 + 5, .measure = steps, .layers = bench_layers ? r->layers : NULL };
    cfg.budget = (budget_spec){ BUDGET_STEPS, h.warm + steps };
    cfg.eval_every_steps = 1 << 30;
    cfg.device = bench_device;
    plug_catalog cat = {0};
    plug_host *host = NULL;
    if (with_noop) {
        snprintf(cfg.plugins[0].name, sizeof cfg.plugins[0].name, "noop");
        cfg.n_plugins = 1;
        if (plug_catalog_add_source(&cat, "noop", noop_source, err, sizeof err))
            fprintf(stderr, "hasten bench: %s\n", err);
    }
    trainer *t = trainer_new(&cfg, &ds, err, sizeof err);
    if (t && with_noop && !(host = plug_host_new(t, &cat, &cfg, NULL, NULL, err, sizeof err))) {
        trainer_free(t);
        t = NULL;
    }
    if (!t) {
        fprintf(stderr, "hasten bench: %s: %s\n", path, err);
        plug_catalog_free(&cat);
        data_set_free(&ds);
        config_free(&cfg);
        return -1;
    }
    h.step_s = calloc((size_t)steps, sizeof *h.step_s);
    CHECK(h.step_s, "out of memory");
    trainer_add_hook(t, bench_hook_fn, &h);
    trainer_run(t);
    nn_layer_timing(NULL, 0);   /* a run that ended early */
    if (h.n_steps < steps) h.step_s[h.n_steps++] = t->train_seconds - h.last;   /* the last step */
    double secs = t->train_seconds - h.start_seconds;
    const char *base = strrchr(name, '/') ? strrchr(name, '/') + 1 : name;
    snprintf(r->recipe, sizeof r->recipe, "%.*s", (int)strcspn(base, "."), base);
    r->batch = cfg.batch;
    r->steps = steps;
    r->samples_per_s = (double)steps * cfg.batch / secs;
    r->step_ms = 1e3 * secs / steps;
    qsort(h.step_s, (size_t)h.n_steps, sizeof *h.step_s, cmp_double);
    r->step_p10 = 1e3 * quantile(h.step_s, h.n_steps, 0.1);
    r->step_p50 = 1e3 * quantile(h.step_s, h.n_steps, 0.5);
    r->step_p90 = 1e3 * quantile(h.step_s, h.n_steps, 0.9);
    free(h.step_s);
    r->n_shapes = h.n_shapes;
    r->gemm_gflop_step = r->roofline_ms = 0;
    r->n_layers = bench_layers ? (t->model->n_layers < MAX_LAYERS ? t->model->n_layers : MAX_LAYERS) : 0;
    for (int p = 0; p < PHASE_COUNT; p++) r->phase_ms[p] = 1e3 * (t->phase[p] - h.start_phase[p]) / steps;
    for (int i = 0; i < h.n_shapes; i++) {
        r->gemm_gflop_step += h.shapes[i].count * gemm_flops(&h.shapes[i]) * 1e-9;
        r->roofline_ms += 1e3 * h.shapes[i].count * time_gemm(&h.shapes[i]);
    }
    plug_host_free(host);
    plug_catalog_free(&cat);
    trainer_free(t);
    data_set_free(&ds);
    config_free(&cfg);
    return 0;
}

/* --layers: each layer's forward and backward ms per step, and its share of their sum. */
static void print_layers(const bench_result *r, int n)
{
    printf("\ntime per layer (ms per step; each layer timed after the device finished it, so the\n"
           "sum can exceed the step; a batch norm also does the ReLU, and on the CPU the 2x2 max\n"
           "pool, that follow it):\n");
    for (int i = 0; i < n; i++) {
        const bench_result *b = &r[i];
        double total = 0, f = 0, bw = 0;
        for (int k = 0; k < b->n_layers; k++) total += b->layers[k].forward + b->layers[k].backward;
        printf("%-16s %9s %9s %7s\n", b->recipe, "forward", "backward", "share");
        for (int k = 0; k < b->n_layers; k++) {
            const nn_layer_time *l = &b->layers[k];
            f += l->forward;
            bw += l->backward;
            printf("  %-14s %9.3f %9.3f %6.1f%%\n", l->name, 1e3 * l->forward / b->steps,
                   1e3 * l->backward / b->steps, total > 0 ? 100 * (l->forward + l->backward) / total : 0);
        }
        printf("  %-14s %9.3f %9.3f   (step %.3f ms)\n", "all layers", 1e3 * f / b->steps, 1e3 * bw / b->steps,
               b->step_ms);
    }
}

/* The layers' times as a JSON array (ms per step). */
static void print_layers_json(const bench_result *b)
{
    printf(",\"layers\":[");
    for (int k = 0; k < b->n_layers; k++)
        printf("%s{\"name\":\"%s\",\"forward_ms\":%.5f,\"backward_ms\":%.5f}", k ? "," : "",
               b->layers[k].name, 1e3 * b->layers[k].forward / b->steps, 1e3 * b->layers[k].backward / b->steps);
    printf("]");
}

static void print_text(const bench_result *r, int n, double peak, const bench_result *noop)
{
    printf("machine sgemm peak (2048^3): %.1f GFLOP/s on %d threads\n\n", peak, cpu_threads());
    printf("%-16s %6s %10s %9s %10s %10s %11s %7s\n", "recipe", "batch", "samples/s", "step ms",
           "model GF/s", "sgemm GF/s", "roofline ms", "ratio");
    for (int i = 0; i < n; i++) {
        const bench_result *b = &r[i];
        printf("%-16s %6d %10.0f %9.3f %10.1f %10.1f %11.3f %6.1f%%\n", b->recipe, b->batch,
               b->samples_per_s, b->step_ms, b->gemm_gflop_step / (b->step_ms * 1e-3),
               b->gemm_gflop_step / (b->roofline_ms * 1e-3), b->roofline_ms,
               100 * b->roofline_ms / b->step_ms);
    }
    printf("\nstep time over the measured steps (ms; how steadily this machine ran them):\n"
           "%-16s %9s %9s %9s %9s\n", "recipe", "mean", "p10", "median", "p90");
    for (int i = 0; i < n; i++)
        printf("%-16s %9.3f %9.3f %9.3f %9.3f\n", r[i].recipe, r[i].step_ms, r[i].step_p10, r[i].step_p50,
               r[i].step_p90);
    printf("\nstep time breakdown (ms per step):\n%-16s", "recipe");
    for (int p = 0; p < PHASE_EVAL; p++) printf(" %10s", trainer_phase_name(p));
    printf("\n");
    for (int i = 0; i < n; i++) {
        printf("%-16s", r[i].recipe);
        for (int p = 0; p < PHASE_EVAL; p++) printf(" %10.3f", r[i].phase_ms[p]);
        printf("\n");
    }
    if (bench_layers) print_layers(r, n);
    printf("\nratio = time sgemm alone needs for the step's GEMM shapes / measured step time\n");
    if (noop)
        printf("no-op plugin on all 14 events (fmnist_cnn): %.1f us per step in the plugin bridge, "
               "%.3f%% of a %.2f ms step\n", 1e3 * noop->phase_ms[PHASE_PLUGINS],
               100 * noop->phase_ms[PHASE_PLUGINS] / noop->step_ms, noop->step_ms);
}

static void print_json(const bench_result *r, int n, double peak, const bench_result *noop)
{
    printf("{\"threads\":%d,\"sgemm_peak_gflops\":%.2f,\"models\":[", cpu_threads(), peak);
    for (int i = 0; i < n; i++) {
        const bench_result *b = &r[i];
        printf("%s{\"recipe\":\"%s\",\"batch\":%d,\"steps\":%d,\"samples_per_second\":%.1f,"
               "\"step_ms\":%.4f,\"step_ms_p10\":%.4f,\"step_ms_median\":%.4f,\"step_ms_p90\":%.4f,"
               "\"gemm_gflop_per_step\":%.5f,\"model_gflops\":%.2f,"
               "\"sgemm_gflops\":%.2f,\"roofline_step_ms\":%.4f,\"roofline_ratio\":%.4f,\"phase_ms\":{",
               i ? "," : "", b->recipe, b->batch, b->steps, b->samples_per_s, b->step_ms, b->step_p10,
               b->step_p50, b->step_p90, b->gemm_gflop_step, b->gemm_gflop_step / (b->step_ms * 1e-3),
               b->gemm_gflop_step / (b->roofline_ms * 1e-3), b->roofline_ms, b->roofline_ms / b->step_ms);
        for (int p = 0; p < PHASE_EVAL; p++)
            printf("%s\"%s\":%.4f", p ? "," : "", trainer_phase_name(p), b->phase_ms[p]);
        printf("}");
        if (bench_layers) print_layers_json(b);
        printf("}");
    }
    if (noop)
        printf("],\"noop_plugin\":{\"recipe\":\"fmnist_cnn\",\"plugin_ms_per_step\":%.5f,\"step_ms\":%.4f,"
               "\"fraction_of_step\":%.6f", noop->phase_ms[PHASE_PLUGINS], noop->step_ms,
               noop->phase_ms[PHASE_PLUGINS] / noop->step_ms);
    else
        printf("],\"noop_plugin\":null");
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("%s,\"peak_rss_mib\":%.1f}\n", noop ? "}" : "", ru.ru_maxrss / 1024.0);
}

/* On a GPU: throughput only (the sgemm roofline is the CPU's); phases there time the host's
 * launches and the loss read-back, not the kernels. */
static void print_device(const bench_result *r, int n, int json)
{
    if (json) printf("{\"device\":\"cuda\",\"gpu\":\"%s\",\"models\":[", ops_cuda_describe());
    else printf("device: %s\n\n%-16s %6s %7s %10s %9s\n", ops_cuda_describe(), "recipe", "batch",
                "steps", "samples/s", "step ms");
    for (int i = 0; i < n; i++) {
        const bench_result *b = &r[i];
        if (json) {
            printf("%s{\"recipe\":\"%s\",\"batch\":%d,\"steps\":%d,\"samples_per_second\":%.1f,"
                   "\"step_ms\":%.4f", i ? "," : "", b->recipe, b->batch, b->steps, b->samples_per_s, b->step_ms);
            if (bench_layers) print_layers_json(b);
            printf("}");
        } else {
            printf("%-16s %6d %7d %10.0f %9.4f\n", b->recipe, b->batch, b->steps, b->samples_per_s, b->step_ms);
        }
    }
    if (json) printf("]}\n");
    else if (bench_layers) print_layers(r, n);
}

static const char bench_usage[] =
    "usage: hasten bench [RECIPE...] [--json] [--steps N] [--batch N] [--threads N]\n"
    "         [--device cpu|cuda|auto] [--layers]\n"
    "  training samples/s of the MLP, CNN and character-model recipes (or of those\n"
    "  named) next to the machine's sgemm roofline, the spread of step times, the\n"
    "  step-time phases and the cost of a plugin on every event; --layers: each\n"
    "  layer's forward and backward ms; --device cuda: the same on the GPU\n";

int cli_bench(int argc, char **argv)
{
    static const struct option opts[] = {
        {"json", no_argument, 0, 'j'}, {"steps", required_argument, 0, 's'},
        {"batch", required_argument, 0, 'b'}, {"threads", required_argument, 0, 't'},
        {"device", required_argument, 0, 'd'}, {"layers", no_argument, 0, 'l'},
        {"help", no_argument, 0, 'h'}, {0, 0, 0, 0},
    };
    int json = 0, steps = 0, batch = 0, threads = 0, c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'j': json = 1; break;
        case 'l': bench_layers = 1; break;
        case 's': case 'b': case 't': {
            long long v;
            if (cli_int_option("hasten bench", c == 's' ? "steps" : c == 'b' ? "batch" : "threads", optarg,
                               c == 't' ? 0 : 1, 1 << 20, &v))
                return EXIT_USAGE;
            *(c == 's' ? &steps : c == 'b' ? &batch : &threads) = (int)v;
            break;
        }
        case 'd': {
            int rc = cli_pick_device("hasten bench", optarg, &bench_device, NULL, 0, 0);
            if (rc) return rc;
            break;
        }
        case 'h': fputs(bench_usage, stdout); return EXIT_DONE;
        default:
            fprintf(stderr, "hasten bench: unknown option '%s' (see hasten bench --help)\n", argv[optind - 1]);
            return EXIT_USAGE;
        }
    }
    /* RECIPE...: those instead of the three (at most MAX_RECIPES), each checked before any runs */
    enum { MAX_RECIPES = 8 };
    int own = argc - optind;
    if (own > MAX_RECIPES) {
        fprintf(stderr, "hasten bench: %d recipes; at most %d at a time\n", own, MAX_RECIPES);
        return EXIT_USAGE;
    }
    for (int i = optind; i < argc; i++) {
        char path[1024];
        if (cli_find_recipe(argv[i], path, sizeof path)) {
            fprintf(stderr, "hasten bench: recipe '%s' not found (looked for it as a path and in recipes/)\n", argv[i]);
            return EXIT_USAGE;
        }
    }
    cpu_threads_init(threads);
    static bench_result r[MAX_RECIPES], noop;   /* large (layer tables): not on the stack */
    int n = 0, gpu = bench_device == DEVICE_CUDA;   /* GPU steps are short: time many more of them */
    if (own) {
        for (int i = optind; i < argc; i++)
            if (bench_recipe(argv[i], steps ? steps : gpu ? 500 : 50, batch, 0, &r[n]) == 0) n++;
    } else {
        if (bench_recipe("fmnist_mlp", steps ? steps : gpu ? 3000 : 300, batch, 0, &r[n]) == 0) n++;
        if (bench_recipe("fmnist_cnn", steps ? steps : gpu ? 1000 : 60, batch, 0, &r[n]) == 0) n++;
        if (bench_recipe("shakespeare_char", steps ? steps : gpu ? 300 : 40, batch, 0, &r[n]) == 0) n++;
    }
    if (!n) return EXIT_FAILED;
    if (gpu) {
        print_device(r, n, json);
        return EXIT_DONE;
    }
    nn_gemm_shape big = { 0, 0, 2048, 2048, 2048, 0, 1 };
    double peak = gemm_flops(&big) / time_gemm(&big) * 1e-9;
    int have_noop = !own && bench_recipe("fmnist_cnn", steps ? steps : 60, batch, 1, &noop) == 0;
    if (json) print_json(r, n, peak, have_noop ? &noop : NULL);
    else print_text(r, n, peak, have_noop ? &noop : NULL);
    return EXIT_DONE;
}
