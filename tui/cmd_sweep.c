/* `hasten sweep RECIPE --budgets 1ep,2ep,3ep [--seeds 1,2,3]`: one headless run per budget and seed,
 * each its own `hasten run` process (so every run's schedule decays fully within its own budget),
 * into one folder, then `hasten compare` on it. A baseline swept this way draws the Pareto frontier
 * a speedup method must beat ("just train for less time"). Resumable: finished runs are kept. */
#include "tui/cli.h"
#include "tui/rundir.h"
#include "lua/recipe.h"
#include "engine/runlog.h"
#include "engine/ops.h"
#include "engine/version.h"
#include <cjson/cJSON.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

enum { MAX_LIST = 32, MAX_PASS = 64 };

static volatile sig_atomic_t interrupted;

static void on_interrupt(int sig) { interrupted = 1; }

/* Splits "a,b,c" into at most MAX_LIST items pointing into buf (modified; empty items are
 * skipped). Returns the count, or -1 for none or too many. */
static int split_list(char *buf, char **items)
{
    int n = 0;
    for (char *save = NULL, *p = strtok_r(buf, ",", &save); p; p = strtok_r(NULL, ",", &save)) {
        if (n == MAX_LIST) return -1;
        items[n++] = p;
    }
    return n ? n : -1;
}

/* "baseline", or the --plugin arguments joined by '+' with characters unsafe in a file name made
 * '_': "mixup_alpha=0.4+ema". */
static void variant_tag(char *const *plugins, int n, char *out, size_t len)
{
    out[0] = 0;
    for (int i = 0; i < n; i++) {
        size_t k = strlen(out);
        snprintf(out + k, len - k, "%s%s", k ? "+" : "", plugins[i]);
    }
    for (char *c = out; *c; c++)
        if (!isalnum((unsigned char)*c) && !strchr("=.+-_", *c)) *c = '_';
    if (!out[0]) snprintf(out, len, "baseline");
}

/* The run status in dir/summary.json ("done", "stopped", "failed") into status, or "" when the
 * folder has no readable summary (a run killed mid-way, or no run at all), and the hasten version
 * that trained it into version ("" when not recorded). Returns rundir_summary's code: on
 * RUNDIR_FOREIGN (a summary this hasten does not read) or RUNDIR_DAMAGED, err says so. */
static int summary_status(const char *dir, char *status, size_t len, char *version, size_t vlen, char *err,
                          size_t errlen)
{
    cJSON *s;
    status[0] = version[0] = 0;
    int rc = rundir_summary(dir, &s, err, errlen);
    if (rc) return rc;
    const cJSON *st = cJSON_GetObjectItem(s, "status");
    if (cJSON_IsString(st)) snprintf(status, len, "%s", st->valuestring);
    const cJSON *v = cJSON_GetObjectItem(cJSON_GetObjectItem(s, "fingerprint"), "hasten");
    if (cJSON_IsString(v)) snprintf(version, vlen, "%s", v->valuestring);
    cJSON_Delete(s);
    return RUNDIR_OK;
}

/* Removes an unfinished run's folder: the files a run writes, then the folder. Returns 1 when it
 * removed one, 0 when there was none, -1 (errno set) when something else is in it or it cannot be
 * removed; then nothing else is touched. */
static int clear_run(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return errno == ENOENT ? 0 : -1;
    struct dirent *e;
    int foreign = 0;
    while ((e = readdir(d))) {
        int known = !strcmp(e->d_name, ".") || !strcmp(e->d_name, "..") || strstr(e->d_name, ".tmp.");
        for (const char *const *f = runlog_files; *f; f++) known |= !strcmp(e->d_name, *f);
        foreign |= !known;
    }
    closedir(d);
    if (foreign) {
        errno = ENOTEMPTY;
        return -1;
    }
    char path[1300];
    if ((d = opendir(dir))) {
        while ((e = readdir(d)))
            if (e->d_name[0] != '.') {
                snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
                unlink(path);
            }
        closedir(d);
    }
    return rmdir(dir) ? -1 : 1;
}

/* Runs this program with args; returns its exit code (128 + signal when killed). */
static int run_child(char *const *args)
{
    pid_t pid;
    int e = posix_spawn(&pid, "/proc/self/exe", NULL, NULL, args, environ);
    if (e) {
        fprintf(stderr, "hasten sweep: cannot start a run: %s\n", strerror(e));
        return EXIT_FAILED;
    }
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR) return EXIT_FAILED;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static const char sweep_usage_text[] =
    "usage: hasten sweep RECIPE --budgets 1ep,2ep,3ep [--seeds 1,2,3] [--out DIR]\n"
    "         [--target test_acc=0.9] [--markdown] [--plot] [--plugin NAME[:k=v,...]]\n"
    "         [--plugin-path DIR] [--threads N] [--device cpu|cuda|auto] [--batch N]\n"
    "         [--eval-every N]\n"
    "  one headless run per budget and seed (each schedule fully decayed within its\n"
    "  budget), then hasten compare on the folder; run again, it keeps finished runs\n";

static int sweep_usage(const char *why, const char *arg)
{
    fprintf(stderr, "hasten sweep: ");
    fprintf(stderr, why, arg);
    fprintf(stderr, " (see hasten sweep --help)\n");
    return EXIT_USAGE;
}

int cli_sweep(int argc, char **argv)
{
    static const struct option opts[] = {
        {"budgets", required_argument, 0, 'b'}, {"seeds", required_argument, 0, 's'},
        {"out", required_argument, 0, 'o'}, {"target", required_argument, 0, 'T'},
        {"markdown", no_argument, 0, 'm'}, {"plot", no_argument, 0, 'G'},
        /* passed on to every run (--target too: compare reads it as well) */
        {"plugin", required_argument, 0, 'p'}, {"plugin-path", required_argument, 0, 'P'},
        {"threads", required_argument, 0, 't'}, {"device", required_argument, 0, 'd'},
        {"batch", required_argument, 0, 'B'}, {"eval-every", required_argument, 0, 'e'},
        {"help", no_argument, 0, 'h'}, {0, 0, 0, 0},
    };
    char budgets_buf[512] = "", seeds_buf[256] = "1", *budgets[MAX_LIST], *seeds[MAX_LIST];
    char *plugins[MAX_PASS], *pass[MAX_PASS], flags[MAX_PASS][32], out[800] = "";
    char *target = NULL, *device = NULL, *batch = NULL, *eval_every = NULL;
    int n_plugins = 0, n_pass = 0, c, idx = 0, md = 0, plot = 0;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", opts, &idx)) != -1) {
        switch (c) {
        case 'b': snprintf(budgets_buf, sizeof budgets_buf, "%s", optarg); break;
        case 's': snprintf(seeds_buf, sizeof seeds_buf, "%s", optarg); break;
        case 'o': snprintf(out, sizeof out, "%s", optarg); break;
        case 'm': md = 1; break;
        case 'G': plot = 1; break;
        case 'p': case 'P': case 't': case 'd': case 'B': case 'e': case 'T':
            if (n_pass + 2 > MAX_PASS) return sweep_usage("%s", "too many options");
            if (c == 'p') plugins[n_plugins++] = optarg;
            if (c == 'P' && cli_set_plugin_path(optarg)) return EXIT_USAGE;   /* said once, not by every run */
            if (c == 'd') device = optarg;
            if (c == 'B') batch = optarg;
            if (c == 'e') eval_every = optarg;
            if (c == 'T') target = optarg;   /* the runs' target too, so their lines say the same */
            snprintf(flags[n_pass], sizeof flags[0], "--%s", opts[idx].name);
            pass[n_pass] = flags[n_pass];
            n_pass++;
            pass[n_pass++] = optarg;
            break;
        case 'h': fputs(sweep_usage_text, stdout); return EXIT_DONE;
        default:
            return sweep_usage("unknown option or missing value: '%s'", argv[optind - 1]);
        }
    }
    if (optind >= argc) return sweep_usage("%s", "give a RECIPE");
    const char *recipe = argv[optind++];
    if (optind < argc) return sweep_usage("unexpected argument '%s'", argv[optind]);
    char path[1024];
    if (cli_find_recipe(recipe, path, sizeof path)) {
        cli_recipe_not_found(recipe);
        return EXIT_USAGE;
    }
    if (!budgets_buf[0]) return sweep_usage("%s", "--budgets is required, e.g. --budgets 1ep,2ep,3ep");
    char metric[32];
    double value;
    if (target && cli_parse_target(target, metric, sizeof metric, &value))
        return sweep_usage("--target %s: expected test_acc=VALUE or test_loss=VALUE", target);
    int nb = split_list(budgets_buf, budgets), ns = split_list(seeds_buf, seeds);
    if (nb < 0) return sweep_usage("--budgets: expected up to 32 budgets separated by commas, e.g. 1ep,2ep,3ep%s", "");
    if (ns < 0) return sweep_usage("--seeds: expected up to 32 seeds separated by commas, e.g. 1,2,3%s", "");
    for (int i = 0; i < nb; i++) {
        budget_spec b;
        if (config_parse_budget(budgets[i], &b))
            return sweep_usage("--budgets: '%s' is not a budget (e.g. 5ep, 2000steps, 30s, 60000samples)", budgets[i]);
    }
    for (int i = 0; i < ns; i++) {
        char *end;
        errno = 0;
        long v = strtol(seeds[i], &end, 10);
        if (errno || *end || end == seeds[i] || v < 0) return sweep_usage("--seeds: '%s' is not a seed (an integer >= 0)", seeds[i]);
    }
    /* Runs are named <recipe>-<variant>-<budget>-s<seed>[-<device>][-b<batch>]: several recipes,
     * and sweeps on another device or at another batch size, can share a folder without one
     * taking the other's finished runs for its own. */
    const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    int base_len = (int)strcspn(base, ".");
    if (!out[0]) snprintf(out, sizeof out, "%s/sweep-%.*s", cli_runs_root(), base_len, base);
    char tag[256], setup[64] = "";
    variant_tag(plugins, n_plugins, tag, sizeof tag);
    if (device) {   /* auto resolved once: every run on one device, and named for it */
        device_kind dev;
        int rc = cli_pick_device("hasten sweep", device, &dev, NULL, 0, 0);
        if (rc) return rc;
        device = (char *)ops_device_name(dev);
        for (int p = 0; p + 1 < n_pass; p += 2)
            if (!strcmp(pass[p], "--device")) pass[p + 1] = device;
        if (dev != DEVICE_CPU) snprintf(setup, sizeof setup, "-%s", device);
    }
    if (batch) snprintf(setup + strlen(setup), sizeof setup - strlen(setup), "-b%.20s", batch);
    for (char *ch = setup; *ch; ch++)
        if (!isalnum((unsigned char)*ch) && *ch != '-') *ch = '_';

    /* The cadence this sweep evaluates at, to say when a kept run was evaluated at another. */
    int want_eval = eval_every ? atoi(eval_every) : 0;
    if (!eval_every) {
        train_config rc_cfg;
        char err[512];
        if (!recipe_load(path, &rc_cfg, err, sizeof err)) {
            want_eval = rundir_cadence(&rc_cfg);
            config_free(&rc_cfg);
        }
    }

    struct sigaction sa = { .sa_handler = on_interrupt }, old_int, old_term;
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    int total = nb * ns, done = 0, failed = 0, k = 0, code = EXIT_DONE;
    fprintf(stderr, "hasten sweep: %s, %s, %d budget%s x %d seed%s -> %s\n", path, tag, nb, nb > 1 ? "s" : "",
            ns, ns > 1 ? "s" : "", out);
    for (int i = 0; i < nb && !interrupted; i++)
        for (int j = 0; j < ns && !interrupted; j++) {
            char dir[1200];
            snprintf(dir, sizeof dir, "%s/%.*s-%s-%s-s%s%s", out, base_len, base, tag, budgets[i], seeds[j], setup);
            k++;
            char status[32], version[64], why[1400];
            int sr = summary_status(dir, status, sizeof status, version, sizeof version, why, sizeof why);
            if (sr == RUNDIR_FOREIGN || sr == RUNDIR_DAMAGED) {   /* not ours to replace; nor a damaged record */
                fprintf(stderr, "hasten sweep: [%d/%d] %s; run skipped\n", k, total, why);
                failed++;
                continue;
            }
            if (!strcmp(status, "done")) {
                if (strcmp(version, hasten_version))   /* kept: measured data is never deleted */
                    fprintf(stderr, "hasten sweep: [%d/%d] %s: already done, kept, but by hasten %s (this is %s): "
                            "compare keeps the two versions apart; remove the folder to train it again\n",
                            k, total, dir, version[0] ? version : "unrecorded", hasten_version);
                else fprintf(stderr, "hasten sweep: [%d/%d] %s: already done, kept\n", k, total, dir);
                int have = rundir_eval_cadence(dir);
                if (have && want_eval && have != want_eval) {
                    char h[32], w[32];
                    rundir_format_cadence(have, h, sizeof h);
                    rundir_format_cadence(want_eval, w, sizeof w);
                    fprintf(stderr, "hasten sweep: [%d/%d] %s: evaluated %s, this sweep %s: compare gives no "
                            "speedup between the two; remove the folder to train it again\n", k, total, dir, h, w);
                }
                done++;
                continue;
            }
            int cleared = clear_run(dir);
            if (cleared < 0) {   /* a folder with files no run writes: not ours to delete */
                fprintf(stderr, "hasten sweep: [%d/%d] %s: holds files other than a run's (%s); left as it "
                        "is, run skipped\n", k, total, dir, strerror(errno));
                failed++;
                continue;
            }
            if (cleared)
                fprintf(stderr, "hasten sweep: [%d/%d] %s: the unfinished run there (%s) is replaced\n", k,
                        total, dir, status[0] ? status : "no summary");
            fprintf(stderr, "hasten sweep: [%d/%d] budget %s, seed %s\n", k, total, budgets[i], seeds[j]);
            char *args[MAX_PASS + 16] = { "hasten", "run", path, "--budget", budgets[i], "--seed", seeds[j],
                                          "--out", dir, "--quiet" };
            int a = 10;
            for (int p = 0; p < n_pass; p++) args[a++] = pass[p];
            args[a] = NULL;
            int rc = run_child(args);
            if (rc == EXIT_DONE) done++;
            else failed++;
            if (rc == EXIT_USAGE) {   /* the same options fail every run: stop at the first */
                fprintf(stderr, "hasten sweep: stopped: the run options are wrong (above)\n");
                code = EXIT_USAGE;
                goto out;
            }
        }
    if (interrupted) {
        fprintf(stderr, "hasten sweep: interrupted after %d of %d runs; the same command goes on from there\n",
                done + failed, total);
        code = EXIT_FAILED;
        goto out;
    }
    fprintf(stderr, "hasten sweep: %d of %d runs done%s\n\n", done, total, failed ? ", the others failed (above)" : "");
    char *cmp[8] = { "compare", out };
    int nc = 2;
    if (target) { cmp[nc++] = "--target"; cmp[nc++] = target; }
    if (md) cmp[nc++] = "--markdown";
    if (plot) cmp[nc++] = "--plot";
    cmp[nc] = NULL;
    int rc = cli_compare(nc, cmp);
    code = failed || rc ? EXIT_FAILED : EXIT_DONE;
out:
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    return code;
}
