/* hasten's command line: run, bench, and (with no command) the default recipe.
 * Parses options, wires recipe, data, trainer and run folder together; owns no training logic. */
#include "tui/cli.h"
#include "datasets/datasets.h"
#include "engine/check.h"
#include "engine/cpu/cpu.h"
#include "engine/trainer.h"
#include "lua/recipe.h"
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#ifndef HASTEN_VERSION
#define HASTEN_VERSION "dev"
#endif

#define DEFAULT_RECIPE "fmnist_cnn"

static const char usage_text[] =
    "usage: hasten [COMMAND] [options]\n"
    "\n"
    "  hasten                      train the default recipe (" DEFAULT_RECIPE ")\n"
    "  hasten run RECIPE [opts]    headless run: progress on stderr, files in runs/<id>/\n"
    "  hasten bench [--json]       training throughput next to the machine's sgemm roofline\n"
    "  hasten help | --version\n"
    "\n"
    "run options:\n"
    "  --budget B     5ep | 2000steps | 30s | 60000samples (overrides the recipe)\n"
    "  --seed N       random seed\n"
    "  --out DIR      run folder (default runs/<date>-<recipe>-s<seed>)\n"
    "  --threads N    CPU threads (default: all cores)\n"
    "  --device D     cpu | cuda | auto (default cpu)\n"
    "  --quiet        no progress lines\n"
    "\n"
    "exit codes: 0 done, 1 run failed, 2 bad usage\n";

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
    int printed_eval;
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

static void default_run_dir(const train_config *cfg, const char *recipe, char *out, size_t len)
{
    char stamp[32], name[128];
    time_t now = time(NULL);
    strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", localtime(&now));
    const char *base = strrchr(recipe, '/');
    snprintf(name, sizeof name, "%s", base ? base + 1 : recipe);
    char *dot = strrchr(name, '.');
    if (dot) *dot = 0;
    for (int k = 0; k < 1000; k++) {
        if (k) snprintf(out, len, "runs/%s-%s-s%llu-%d", stamp, name, (unsigned long long)cfg->seed, k);
        else snprintf(out, len, "runs/%s-%s-s%llu", stamp, name, (unsigned long long)cfg->seed);
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

typedef struct run_opts {
    const char *recipe, *budget, *out, *device;
    long long seed;
    int threads, quiet;
} run_opts;

static int run_recipe(const run_opts *o)
{
    char path[1024], err[1024], dir[1100];
    train_config cfg;
    data_set ds = {0};
    trainer *t = NULL;
    runlog *log = NULL;
    int code = EXIT_FAILED;

    if (cli_find_recipe(o->recipe, path, sizeof path)) {
        fprintf(stderr, "hasten: recipe '%s' not found (looked for it as a path, in recipes/ and in %s/recipes/)\n",
                o->recipe, HASTEN_SHARE);
        return EXIT_USAGE;
    }
    if (cli_load_recipe(path, &cfg, err, sizeof err)) {
        fprintf(stderr, "hasten: %s\n", err);
        return EXIT_USAGE;
    }
    if (o->budget && config_parse_budget(o->budget, &cfg.budget)) {
        fprintf(stderr, "hasten: --budget %s: expected e.g. 5ep, 2000steps, 30s or 60000samples\n", o->budget);
        code = EXIT_USAGE;
        goto done;
    }
    if (o->seed >= 0) cfg.seed = (uint64_t)o->seed;
    if (o->threads >= 0) cfg.threads = o->threads;
    if (o->device && strcmp(o->device, "cpu") && strcmp(o->device, "auto")) {
        if (!strcmp(o->device, "cuda"))
            fprintf(stderr, "hasten: --device cuda: this build has no CUDA backend yet; use cpu\n");
        else
            fprintf(stderr, "hasten: --device %s: expected cpu, cuda or auto\n", o->device);
        code = EXIT_USAGE;
        goto done;
    }
    int threads = cpu_threads_init(cfg.threads);
    if (cli_load_data(&cfg, &ds, err, sizeof err)) {
        fprintf(stderr, "hasten: %s\n", err);
        goto done;
    }
    t = trainer_new(&cfg, &ds, err, sizeof err);
    if (!t) {
        fprintf(stderr, "hasten: %s: %s\n", path, err);
        goto done;
    }
    if (o->out) snprintf(dir, sizeof dir, "%s", o->out);
    else default_run_dir(&cfg, path, dir, sizeof dir);
    log = runlog_open(dir, err, sizeof err);
    if (!log) {
        fprintf(stderr, "hasten: %s\n", err);
        goto done;
    }
    if (write_resolved_recipe(log, &cfg)) fprintf(stderr, "hasten: %s: cannot write recipe.lua\n", dir);
    trainer_set_log(t, log);
    progress prog = { .quiet = o->quiet };
    trainer_add_hook(t, progress_hook, &prog);
    if (!o->quiet)
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
        char ttt[64] = "not reached";
        if (t->time_to_target >= 0) snprintf(ttt, sizeof ttt, "%.2fs", t->time_to_target);
        fprintf(stderr, "hasten: %s: test_acc %.4f, test_loss %.4f, %.2fs of training, %.0f samples/s, "
                "target %s -> %s\n", trainer_status_name(t->status), t->last_test_acc, t->last_test_loss,
                t->train_seconds, t->train_seconds > 0 ? t->samples / t->train_seconds : 0, ttt, dir);
        code = EXIT_DONE;
    }
    if (runlog_error(log)) {
        fprintf(stderr, "hasten: %s\n", runlog_error(log));
        code = EXIT_FAILED;
    }
done:
    trainer_free(t);
    runlog_close(log);
    data_set_free(&ds);
    config_free(&cfg);
    return code;
}

static int parse_int(const char *opt, const char *s, long long min, long long *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end || end == s || v < min) return usage_error("bad value for --%s", opt) , -1;
    *out = v;
    return 0;
}

static int cmd_run(int argc, char **argv, const char *default_recipe)
{
    static const struct option opts[] = {
        {"budget", required_argument, 0, 'b'}, {"seed", required_argument, 0, 's'},
        {"out", required_argument, 0, 'o'}, {"threads", required_argument, 0, 't'},
        {"device", required_argument, 0, 'd'}, {"quiet", no_argument, 0, 'q'},
        {"help", no_argument, 0, 'h'}, {0, 0, 0, 0},
    };
    run_opts o = { .seed = -1, .threads = -1 };
    long long v;
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'b': o.budget = optarg; break;
        case 's': if (parse_int("seed", optarg, 0, &v)) return EXIT_USAGE; o.seed = v; break;
        case 't': if (parse_int("threads", optarg, 0, &v)) return EXIT_USAGE; o.threads = (int)v; break;
        case 'o': o.out = optarg; break;
        case 'd': o.device = optarg; break;
        case 'q': o.quiet = 1; break;
        case 'h': fputs(usage_text, stdout); return EXIT_DONE;
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
    if (argc < 2) return cmd_run(argc, argv, DEFAULT_RECIPE);
    const char *cmd = argv[1];
    if (!strcmp(cmd, "run")) return cmd_run(argc - 1, argv + 1, NULL);
    if (!strcmp(cmd, "bench")) return cli_bench(argc - 1, argv + 1);
    if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
        fputs(usage_text, stdout);
        return EXIT_DONE;
    }
    if (!strcmp(cmd, "--version")) {
        printf("hasten %s\n", HASTEN_VERSION);
        return EXIT_DONE;
    }
    if (cmd[0] == '-') return cmd_run(argc, argv, DEFAULT_RECIPE);
    return usage_error("unknown command '%s'", cmd);
}
