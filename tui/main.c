/* hasten's command line: run, bench, and (with no command) the default recipe.
 * Parses options, wires recipe, data, trainer and run folder together; owns no training logic. */
#include "tui/cli.h"
#include "tui/ui.h"
#include "datasets/datasets.h"
#include "engine/check.h"
#include "engine/cpu/cpu.h"
#include "engine/ops.h"
#include "engine/trainer.h"
#include "engine/version.h"
#include "lua/recipe.h"
#include "lua/plugin.h"
#include <errno.h>
#include <limits.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>


#define DEFAULT_RECIPE "fmnist_cnn"

#define RUN_OPTIONS \
    "run options:\n" \
    "  --budget B     5ep | 2000steps | 30s | 60000samples (overrides the recipe)\n" \
    "  --seed N       random seed\n" \
    "  --out DIR      run folder (default runs/<date>-<recipe>-s<seed>)\n" \
    "  --threads N    CPU threads (default: all cores)\n" \
    "  --device D     cpu | cuda | auto (default cpu; auto = cuda when a GPU is\n" \
    "                 present)\n" \
    "  --batch N      batch size (overrides the recipe)\n" \
    "  --quiet        no progress lines\n" \
    "  --plugin NAME[:key=value,...]\n" \
    "                 add a speedup method (repeatable); for one the recipe has,\n" \
    "                 set those parameters instead (a later one wins)\n" \
    "  --plugin-path DIR   also load plugins from DIR\n" \
    "  --eval-every N      evaluate every N steps (default: the recipe's)\n" \
    "  --target M=V        the quality target: test_acc=0.9 or test_loss=0.3\n" \
    "                      (default: the recipe's)\n"

#define EXIT_CODES \
    "exit codes: 0 done, 1 run failed, 2 bad usage (bad option, recipe not found,\n" \
    "  recipe error)\n"

static const char usage_text[] =   /* within 80 columns: a classroom terminal */
    "usage: hasten [COMMAND] [options]\n"
    "\n"
    "  hasten [ui] [RECIPE]        the workbench: live plots against a baseline\n"
    "                              (default recipe fmnist_cnn)\n"
    "  hasten demo [RECIPE]        teaching mode: the baseline, the baseline trained\n"
    "                              for less, and three contrasting methods\n"
    "  hasten run RECIPE [opts]    headless run: progress on stderr, files in\n"
    "                              runs/<id>/\n"
    "  hasten bench [RECIPE...]    training throughput next to the machine's sgemm\n"
    "                              roofline (the MLP, CNN and character model, or\n"
    "                              the recipes named)\n"
    "      [--json] [--steps N] [--threads N] [--batch N]\n"
    "      [--device cuda]         the same recipes on the GPU\n"
    "      [--layers]              and each layer's forward and backward time\n"
    "  hasten fetch NAME... [--force] [--quiet]\n"
    "                              download datasets into the cache, with progress\n"
    "                              and checksums\n"
    "  hasten datasets [NAME]      the datasets hasten knows, and where each one is\n"
    "  hasten plugins [--json] [--plugin-path DIR]\n"
    "                              the catalogue of speedup methods, by taxonomy\n"
    "  hasten sweep RECIPE --budgets 1ep,2ep,3ep [--seeds 1,2,3] [--out DIR]\n"
    "      [--target test_acc=0.9] [--markdown] [--plot]          as for compare\n"
    "                              (and --target for the runs too)\n"
    "      [--plugin ...] [--plugin-path DIR] [--threads N] [--device D]\n"
    "      [--batch N] [--eval-every N]                           as for run\n"
    "                              one run per budget and seed, then compare: the\n"
    "                              baseline's time/quality frontier a method must\n"
    "                              beat\n"
    "  hasten compare RUN... [--target test_acc=0.9] [--markdown] [--phases]\n"
    "      [--plot]                time to target, steps, ms/step, speedup, the\n"
    "                              step-time phases, and each variant against a\n"
    "                              swept baseline's frontier\n"
    "  hasten sample RUN [--length N] [--prompt TEXT] [--temperature T] [--seed N]\n"
    "                              text written by the character model a run trained\n"
    "  hasten help | --version\n"
    "\n"
    RUN_OPTIONS
    "\n"
    "workbench and demo options: --budget, --seed, --threads, --device, --batch as\n"
    "  above; --ascii (no braille or box drawing), --mono (no colours),\n"
    "  --plugin-path DIR\n"
    "\n"
    EXIT_CODES;

static const char run_usage[] =   /* hasten run --help: that command alone */
    "usage: hasten run RECIPE [options]   headless run: progress on stderr, files\n"
    "                                     in runs/<id>/ (or --out DIR)\n"
    "\n"
    RUN_OPTIONS
    "\n"
    EXIT_CODES;

static int usage_error(const char *fmt, const char *arg)
{
    fprintf(stderr, "hasten: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n(see hasten help)\n");
    return EXIT_USAGE;
}

/* ---- run ---------------------------------------------------------------------------------- */

static trainer *running;

static void on_signal(int sig)
{
    if (running) trainer_stop(running);
}

typedef struct progress {
    int quiet;
    double last_print;
} progress;

static int progress_hook(trainer *t, trainer_event ev, void *ud)
{
    progress *p = ud;
    if (p->quiet) return 0;
    double now = trainer_now();
    if (ev == EV_AFTER_STEP && now - p->last_print >= 2.0) {
        p->last_print = now;
        fprintf(stderr, "step %6ld  epoch %5.2f  loss %.4f  lr %.4g  %6.1fs  %7.0f samples/s\n",
                t->step, (double)t->samples / t->data->train.n, t->batch_loss, t->opt.groups[0].lr,
                t->train_seconds, t->train_seconds > 0 ? t->samples / t->train_seconds : 0);
    } else if (ev == EV_EVAL_END) {
        fprintf(stderr, "step %6ld  epoch %5.2f  test_loss %.4f  test_acc %.4f  %6.1fs\n", t->step,
                (double)t->samples / t->data->train.n, t->last_test_loss, t->last_test_acc,
                t->train_seconds);
    }
    return 0;
}

typedef struct run_opts {
    const char *recipe, *budget, *out, *device, *target;
    long long seed, eval_every;
    int threads, quiet;
    int batch;           /* 0 = the recipe's */
    int n_plugins;
    const char *plugins[CONFIG_MAX_PLUGINS];   /* --plugin NAME[:k=v,...], in order */
} run_opts;

/* The --plugin options over the recipe's plugins (a plugin it has takes their parameters, another
 * is added), then the whole list checked against the catalogue: an error names the option, or the
 * recipe file and its plugins[i]. */
static int add_plugins(const run_opts *o, train_config *cfg, char *err, size_t errlen)
{
    const plug_catalog *cat = cli_catalog();
    for (int i = 0; i < cat->n_errors; i++) fprintf(stderr, "hasten: warning: %s\n", cat->errors[i]);
    for (int i = 0; i < o->n_plugins; i++)
        if (recipe_plugin_option(cfg, o->plugins[i], cat, err, errlen)) return -1;
    return recipe_check_plugins(cfg, cat, err, errlen);
}

/* Whether a run that did not open failed on the recipe's model rather than on the device, the
 * plugins or the run folder: then a trainer on the CPU fails the same way, and this says so,
 * naming the recipe's model. */
static int model_misfit(train_config *cfg, const data_set *ds)
{
    char why[1024];
    int device = cfg->device;
    cfg->device = DEVICE_CPU;
    trainer *t = trainer_new(cfg, ds, why, sizeof why);
    cfg->device = device;
    if (t) {
        trainer_free(t);
        return 0;
    }
    fprintf(stderr, "hasten: %s: model: %s\n", cfg->recipe_path, why);
    return 1;
}

static int run_recipe(const run_opts *o)
{
    char path[1024], err[1024];
    train_config cfg;
    data_set ds = {0};
    cli_run run = {0};
    int code = EXIT_FAILED;

    if (cli_find_recipe(o->recipe, path, sizeof path)) {
        cli_recipe_not_found(o->recipe);
        return EXIT_USAGE;
    }
    if (cli_load_recipe(path, &cfg, err, sizeof err)) {
        fprintf(stderr, "hasten: %s\n", err);
        return EXIT_USAGE;
    }
    if (o->out) {   /* one run a folder (the run files refuse it too; say so before loading data) */
        char prev[1100];
        struct stat st;
        snprintf(prev, sizeof prev, "%s/metrics.jsonl", o->out);
        if (!stat(prev, &st)) {
            fprintf(stderr, "hasten: --out %s already holds a run (its metrics.jsonl); give another "
                    "folder, or remove that one\n", o->out);
            code = EXIT_USAGE;
            goto done;
        }
    }
    if (o->budget && config_parse_budget(o->budget, &cfg.budget)) {
        fprintf(stderr, "hasten: --budget %s: expected e.g. 5ep, 2000steps, 30s or 60000samples\n", o->budget);
        code = EXIT_USAGE;
        goto done;
    }
    if (add_plugins(o, &cfg, err, sizeof err)) {
        fprintf(stderr, "hasten: %s\n", err);
        code = EXIT_USAGE;
        goto done;
    }
    if (o->target && cli_parse_target(o->target, cfg.target_metric, sizeof cfg.target_metric,
                                      &cfg.target_value)) {
        fprintf(stderr, "hasten: --target %s: expected test_acc=VALUE (0 to 1) or test_loss=VALUE (above 0)\n",
                o->target);
        code = EXIT_USAGE;
        goto done;
    }
    if (o->seed >= 0) cfg.seed = (uint64_t)o->seed;
    if (o->eval_every > 0) cfg.eval_every_steps = (int)o->eval_every;
    if (o->threads >= 0) cfg.threads = o->threads;
    if (o->batch > 0) cfg.batch = o->batch;
    device_kind dev;
    int picked = cli_pick_device("hasten", o->device, &dev, NULL, 0, o->quiet);
    if (picked) {   /* a bad name is usage; a missing GPU is a failed run */
        code = picked;
        goto done;
    }
    if (dev == DEVICE_CUDA && !o->quiet) fprintf(stderr, "hasten: training on %s\n", ops_cuda_describe());
    cfg.device = dev;
    int threads = cpu_threads_init(cfg.threads);
    if (cli_load_data(&cfg, &ds, err, sizeof err)) {
        fprintf(stderr, "hasten: %s\n", err);
        goto done;
    }
    if (cfg.batch > ds.train.n) {   /* the trainer says so too, but not which field */
        if (o->batch > 0)
            fprintf(stderr, "hasten: --batch %d: larger than the %d training examples of %s\n", cfg.batch,
                    ds.train.n, ds.name);
        else
            fprintf(stderr, "hasten: %s: batch: %d is larger than the %d training examples of %s\n", path,
                    cfg.batch, ds.train.n, ds.name);
        code = EXIT_USAGE;
        goto done;
    }
    if (plug_check_data(cli_catalog(), &cfg, &ds, err, sizeof err)) {   /* the recipe's data or a --plugin */
        fprintf(stderr, "hasten: %s: %s\n", path, err);
        code = EXIT_USAGE;
        goto done;
    }
    if (cli_run_open(&run, &cfg, &ds, o->out, err, sizeof err)) {
        if (model_misfit(&cfg, &ds)) code = EXIT_USAGE;
        else fprintf(stderr, "hasten: %s\n", err);
        goto done;
    }
    trainer *t = run.t;
    const char *dir = run.dir;
    progress prog = { .quiet = o->quiet, .last_print = trainer_now() };   /* first line after 2 s */
    trainer_add_hook(t, progress_hook, &prog);
    if (!o->quiet && ds.tokens)
        fprintf(stderr, "hasten: %s on %s (%d training and %d test windows of %d characters, %d distinct), "
                "%zu parameters, %d threads -> %s\n", path, ds.name, ds.train.n, ds.test.n, ds.tokens,
                ds.classes, nn_param_count(t->model), threads, dir);
    else if (!o->quiet)
        fprintf(stderr, "hasten: %s on %s (%d train, %d test), %zu parameters, %d threads -> %s\n",
                path, ds.name, ds.train.n, ds.test.n, nn_param_count(t->model), threads, dir);
    running = t;
    struct sigaction sa = { .sa_handler = on_signal };
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    int rc = trainer_run(t);
    running = NULL;
    if (rc) {
        fprintf(stderr, "hasten: run failed: %s (measured data kept in %s)\n", t->error, dir);
    } else {
        char ttt[96] = "no target";
        if (cfg.target_metric[0])
            snprintf(ttt, sizeof ttt, "target %s %s %g %s", cfg.target_metric,
                     strcmp(cfg.target_metric, "test_loss") ? ">=" : "<=", cfg.target_value,
                     t->time_to_target >= 0 ? "reached in" : "not reached");
        if (t->time_to_target >= 0)
            snprintf(ttt + strlen(ttt), sizeof ttt - strlen(ttt), " %.2fs", t->time_to_target);
        fprintf(stderr, "hasten: %s: test_acc %.4f, test_loss %.4f, %.2fs of training, %.0f samples/s, "
                "%s -> %s\n", trainer_status_name(t->status), t->last_test_acc, t->last_test_loss,
                t->train_seconds, t->train_seconds > 0 ? t->samples / t->train_seconds : 0, ttt, dir);
        code = EXIT_DONE;
    }
    if (runlog_error(run.log)) {
        fprintf(stderr, "hasten: %s\n", runlog_error(run.log));
        code = EXIT_FAILED;
    }
done:
    cli_run_close(&run);
    data_set_free(&ds);
    config_free(&cfg);
    return code;
}

static int parse_int(const char *opt, const char *s, long long min, long long *out)
{
    return cli_int_option("hasten", opt, s, min, LLONG_MAX, out);
}

static int cmd_run(int argc, char **argv, const char *default_recipe)
{
    static const struct option opts[] = {
        {"budget", required_argument, 0, 'b'}, {"seed", required_argument, 0, 's'},
        {"out", required_argument, 0, 'o'}, {"threads", required_argument, 0, 't'},
        {"device", required_argument, 0, 'd'}, {"quiet", no_argument, 0, 'q'},
        {"plugin", required_argument, 0, 'p'}, {"plugin-path", required_argument, 0, 'P'},
        {"batch", required_argument, 0, 'B'},
        {"eval-every", required_argument, 0, 'e'}, {"target", required_argument, 0, 'T'},
        {"help", no_argument, 0, 'h'}, {0, 0, 0, 0},
    };
    run_opts o = { .seed = -1, .threads = -1, .eval_every = -1 };
    long long v;
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'b': o.budget = optarg; break;
        case 's': if (parse_int("seed", optarg, 0, &v)) return EXIT_USAGE; o.seed = v; break;
        case 't': if (parse_int("threads", optarg, 0, &v)) return EXIT_USAGE; o.threads = (int)v; break;
        case 'B': if (parse_int("batch", optarg, 1, &v)) return EXIT_USAGE; o.batch = (int)v; break;
        case 'o': o.out = optarg; break;
        case 'T': o.target = optarg; break;
        case 'd': o.device = optarg; break;
        case 'q': o.quiet = 1; break;
        case 'p':
            if (o.n_plugins == CONFIG_MAX_PLUGINS) return usage_error("%s", "too many --plugin options");
            o.plugins[o.n_plugins++] = optarg;
            break;
        case 'P': if (cli_set_plugin_path(optarg)) return EXIT_USAGE; break;
        case 'e': if (parse_int("eval-every", optarg, 1, &v)) return EXIT_USAGE; o.eval_every = v; break;
        case 'h': fputs(run_usage, stdout); return EXIT_DONE;
        default:  return usage_error("unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc) o.recipe = argv[optind++];
    else if (default_recipe) o.recipe = default_recipe;
    else return usage_error("%s", "run needs a RECIPE (e.g. hasten run fmnist_mlp)");
    if (optind < argc) return usage_error("unexpected argument '%s'", argv[optind]);
    return run_recipe(&o);
}

int main(int argc, char **argv)
{
    setvbuf(stderr, NULL, _IOLBF, 0);
    if (argc < 2) return ui_cmd(argc, argv, 0);
    const char *cmd = argv[1];
    if (!strcmp(cmd, "ui")) return ui_cmd(argc - 1, argv + 1, 0);
    if (!strcmp(cmd, "demo")) return ui_cmd(argc - 1, argv + 1, 1);
    if (!strcmp(cmd, "run")) return cmd_run(argc - 1, argv + 1, NULL);
    if (!strcmp(cmd, "bench")) return cli_bench(argc - 1, argv + 1);
    if (!strcmp(cmd, "fetch")) return cli_fetch(argc - 1, argv + 1);
    if (!strcmp(cmd, "datasets")) return cli_datasets(argc - 1, argv + 1);
    if (!strcmp(cmd, "plugins")) return cli_plugins(argc - 1, argv + 1);
    if (!strcmp(cmd, "compare")) return cli_compare(argc - 1, argv + 1);
    if (!strcmp(cmd, "sweep")) return cli_sweep(argc - 1, argv + 1);
    if (!strcmp(cmd, "sample")) return cli_sample(argc - 1, argv + 1);
    if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
        fputs(usage_text, stdout);
        return EXIT_DONE;
    }
    if (!strcmp(cmd, "--version")) {
        printf("hasten %s\n", hasten_version);
        return EXIT_DONE;
    }
    char recipe[1024];   /* hasten RECIPE: the workbench on it, as hasten ui RECIPE */
    if (cmd[0] == '-' || !cli_find_recipe(cmd, recipe, sizeof recipe)) return ui_cmd(argc, argv, 0);
    return usage_error("unknown command or recipe '%s'", cmd);
}
