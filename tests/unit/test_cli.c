/* The real ./hasten binary end to end: a one-epoch MLP on Fashion-MNIST, kill -9 and SIGTERM in
 * the middle of a run, usage errors and exit codes, --plugin over a recipe's plugins, and the
 * option lists of `hasten help` and README.md against what each command takes. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <cjson/cJSON.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "lua/recipe.h"
#include "engine/ops.h"
#include "tui/cli.h"
#include "tui/ui_catalog.h"
#include "tests/support.h"

extern char **environ;

#define FMNIST "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"

/* Starts ./hasten with args (NULL-terminated), stderr to errpath; returns the pid. */
static pid_t start(const char *errpath, const char *const *args)
{
    const char *argv[32] = { "./hasten" };
    int n = 1;
    while (args[n - 1] && n < 31) { argv[n] = args[n - 1]; n++; }
    argv[n] = NULL;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 2, errpath, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    pid_t pid;
    assert_int_equal(posix_spawn(&pid, "./hasten", &fa, NULL, (char *const *)argv, environ), 0);
    posix_spawn_file_actions_destroy(&fa);
    return pid;
}

static int finish(pid_t pid)
{
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static int run(const char *errpath, const char *const *args) { return finish(start(errpath, args)); }

static const char *path_in(const char *dir, const char *name)
{
    static char buf[4][800];
    static int k;
    char *p = buf[k++ % 4];
    snprintf(p, sizeof buf[0], "%s/%s", dir, name);
    return p;
}

static const char *new_dir(const char *name)
{
    static char buf[4][700];
    static int k;
    char *p = buf[k++ % 4];
    snprintf(p, sizeof buf[0], "%s/%s", test_tmpdir(), name);
    return p;
}

/* Every line of metrics.jsonl parses; returns the count. */
static int check_metrics(const char *dir)
{
    char *text = test_read_file(path_in(dir, "metrics.jsonl"), NULL);
    assert_non_null(text);
    int n = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        cJSON *j = cJSON_Parse(line);
        if (!j) print_message("bad line: %s\n", line);
        assert_non_null(j);
        assert_non_null(cJSON_GetObjectItem(j, "step"));
        cJSON_Delete(j);
        n++;
    }
    free(text);
    return n;
}

static cJSON *read_summary(const char *dir)
{
    char *text = test_read_file(path_in(dir, "summary.json"), NULL);
    if (!text) return NULL;
    cJSON *j = cJSON_Parse(text);
    free(text);
    assert_non_null(j);
    return j;
}

static void check_recipe(const char *dir)
{
    train_config c;
    char err[512];
    assert_int_equal(recipe_load(path_in(dir, "recipe.lua"), &c, err, sizeof err), 0);
    config_free(&c);
}

static void test_mlp_one_epoch(void **s)
{
    if (access(FMNIST, R_OK)) skip();   /* make deps installs dataset-fashion-mnist */
    const char *dir = new_dir("mlp");
    const char *args[] = { "run", "fmnist_mlp", "--budget", "1ep", "--out", dir, "--quiet", NULL };
    assert_int_equal(run(path_in(test_tmpdir(), "mlp.err"), args), 0);
    cJSON *sum = read_summary(dir);
    assert_non_null(sum);
    double acc = cJSON_GetObjectItem(sum, "test_acc")->valuedouble;
    print_message("fmnist_mlp, 1 epoch: test_acc %.4f\n", acc);
    assert_true(acc >= 0.82);
    assert_string_equal(cJSON_GetObjectItem(sum, "dataset")->valuestring, "fashion-mnist");
    assert_true(cJSON_GetObjectItem(sum, "peak_rss_mib")->valuedouble < 200);
    cJSON_Delete(sum);
    assert_int_equal(check_metrics(dir), 468 + 1);
    check_recipe(dir);
}

/* A kill -9 at any moment leaves whole lines, a loadable recipe and a summary that parses. */
static void test_kill9(void **s)
{
    const useconds_t delays[] = { 300000, 900000, 1700000 };
    for (int k = 0; k < 3; k++) {
        char name[32];
        snprintf(name, sizeof name, "kill%d", k);
        const char *dir = new_dir(name);
        const char *args[] = { "run", "fmnist_mlp", "--budget", "20ep", "--out", dir, NULL };
        pid_t pid = start(path_in(test_tmpdir(), "kill.err"), args);
        usleep(delays[k]);
        kill(pid, SIGKILL);
        assert_int_equal(finish(pid), 128 + SIGKILL);
        struct stat st;
        if (stat(path_in(dir, "metrics.jsonl"), &st)) continue;   /* killed before it started */
        check_metrics(dir);
        /* the run's files open with an empty metrics.jsonl, then recipe.lua is written (atomically),
         * then the first record: a kill between the two leaves no recipe, and nothing measured */
        struct stat rst;
        if (st.st_size > 0 || !stat(path_in(dir, "recipe.lua"), &rst)) check_recipe(dir);
        cJSON *sum = read_summary(dir);   /* absent before the first evaluation */
        if (sum) {
            assert_string_equal(cJSON_GetObjectItem(sum, "status")->valuestring, "running");
            cJSON_Delete(sum);
        }
    }
}

static void test_sigterm_stops_cleanly(void **s)
{
    const char *dir = new_dir("term");
    const char *args[] = { "run", "fmnist_mlp", "--budget", "20ep", "--out", dir, NULL };
    pid_t pid = start(path_in(test_tmpdir(), "term.err"), args);
    /* TERM once training has begun (its first record is on disk; before that TERM's default action
     * would end a run still loading its data, on a slow machine), and some steps later */
    struct stat st;
    for (int i = 0; i < 600 && (stat(path_in(dir, "metrics.jsonl"), &st) || st.st_size == 0); i++) usleep(50000);
    usleep(300000);
    kill(pid, SIGTERM);
    assert_int_equal(finish(pid), 0);
    cJSON *sum = read_summary(dir);
    assert_non_null(sum);
    assert_string_equal(cJSON_GetObjectItem(sum, "status")->valuestring, "stopped");
    assert_non_null(cJSON_GetObjectItem(sum, "test_acc"));
    cJSON_Delete(sum);
    check_metrics(dir);
}

static void expect_usage(const char *const *args, int code, const char *needle)
{
    const char *err = path_in(test_tmpdir(), "usage.err");
    assert_int_equal(run(err, args), code);
    char *text = test_read_file(err, NULL);
    if (!strstr(text, needle)) print_message("stderr: %s\n", text);
    assert_non_null(strstr(text, needle));
    free(text);
}

static void test_usage_errors(void **s)
{
    expect_usage((const char *[]){ "frobnicate", NULL }, 2, "unknown command or recipe 'frobnicate'");
    expect_usage((const char *[]){ "datasets", "mnsit", NULL }, 2, "unknown dataset 'mnsit' (did you mean 'mnist'?)");
    expect_usage((const char *[]){ "fetch", "kmnsit", NULL }, 2, "unknown dataset 'kmnsit' (did you mean 'kmnist'?)");
    /* a recipe in the command's place opens the workbench on it (which needs a terminal) */
    expect_usage((const char *[]){ "fmnist_mlp", "--budget", "1ep", NULL }, 2, "needs a terminal");
    expect_usage((const char *[]){ "run", "no_such_recipe", NULL }, 2, "no_such_recipe");
    expect_usage((const char *[]){ "run", "fmnist_mlp", "--budget", "5 parsecs", NULL }, 2, "--budget");
    expect_usage((const char *[]){ "run", "fmnist_mlp", "--seed", "x", NULL }, 2,
                 "bad value for --seed: 'x' (a whole number >= 0)");
    expect_usage((const char *[]){ "run", "fmnist_mlp", "--bogus", NULL }, 2, "--bogus");
    expect_usage((const char *[]){ "run", "fmnist_mlp", "--device", "tpu", NULL }, 2, "tpu");
    /* The workbench and the demo take --device and --batch too, checked before the terminal. */
    expect_usage((const char *[]){ "ui", "fmnist_mlp", "--device", "tpu", NULL }, 2, "tpu");
    expect_usage((const char *[]){ "demo", "--device", "tpu", NULL }, 2, "tpu");
    expect_usage((const char *[]){ "ui", "--batch", "0", NULL }, 2,
                 "bad value for --batch: '0' (a whole number from 1 to 1048576)");
    expect_usage((const char *[]){ "ui", "no_such_recipe", NULL }, 2, "no_such_recipe");
    expect_usage((const char *[]){ "ui", "--device", "cpu", "--batch", "64", NULL }, 2, "needs a terminal");
    char why[256];
    if (ops_open(DEVICE_CUDA, why, sizeof why))   /* no GPU, or no CUDA in this build: a failed start, saying which */
        expect_usage((const char *[]){ "ui", "--device", "cuda", NULL }, 1, why);
    else
        expect_usage((const char *[]){ "ui", "--device", "cuda", NULL }, 2, "needs a terminal");
    const char *bad_text = "return { model = nn.sequential { nn.linear(10) }, optim = { \"sgd\", lr = -1 } }";
    const char *bad = test_write_file("bad.lua", bad_text, strlen(bad_text));
    expect_usage((const char *[]){ "run", bad, NULL }, 2, "optim.lr");
    expect_usage((const char *[]){ "run", bad, NULL }, 2, "bad.lua");
    /* One run a folder: a second run into it would mix its records with the first's. */
    const char *used = new_dir("used");
    mkdir(used, 0755);
    test_write_file("used/metrics.jsonl", "{\"step\":1}\n", 12);
    expect_usage((const char *[]){ "run", "fmnist_mlp", "--out", used, NULL }, 2, "already holds a run");
    char *kept = test_read_file(path_in(used, "metrics.jsonl"), NULL);
    assert_string_equal(kept, "{\"step\":1}\n");
    free(kept);
}

/* A dataset that is not installed falls back to the synthetic set and says so. */
static void test_missing_dataset_fallback(void **s)
{
    const char *text = "return { data = { \"mnist\" }, model = nn.sequential { nn.flatten(), nn.linear(10) }, "
                       "budget = { steps = 5 } }";
    const char *recipe = test_write_file("mnist.lua", text, strlen(text));
    const char *dir = new_dir("fallback");
    const char *err = path_in(test_tmpdir(), "fallback.err");
    setenv("HASTEN_DATA_DIR", test_tmpdir(), 1);
    setenv("HASTEN_OFFLINE", "1", 1);            /* never download during a test */
    setenv("XDG_CACHE_HOME", test_tmpdir(), 1);  /* nor touch the user's cache */
    int rc = run(err, (const char *[]){ "run", recipe, "--out", dir, NULL });
    /* and hasten fetch, asked outright, says it will not, without trying the network */
    const char *ferr = path_in(test_tmpdir(), "offline.err");
    assert_int_equal(run(ferr, (const char *[]){ "fetch", "mnist", NULL }), 1);
    char *said = test_read_file(ferr, NULL);
    assert_non_null(strstr(said, "HASTEN_OFFLINE is set, so nothing is fetched"));
    free(said);
    unsetenv("HASTEN_DATA_DIR");
    unsetenv("HASTEN_OFFLINE");
    unsetenv("XDG_CACHE_HOME");
    if (!access("/usr/share/datasets/mnist", R_OK)) skip();   /* mnist really installed */
    assert_int_equal(rc, 0);
    char *msg = test_read_file(err, NULL);
    assert_non_null(strstr(msg, "synthetic"));
    assert_non_null(strstr(msg, "mnist is not here, and HASTEN_OFFLINE is set: not fetched"));   /* why */
    free(msg);
    cJSON *sum = read_summary(dir);
    assert_string_equal(cJSON_GetObjectItem(sum, "dataset")->valuestring, "synthetic");
    cJSON_Delete(sum);
}

/* A text run end to end: a small character model trained on a file through the "text" dataset,
 * then `hasten sample` writes with it: the same seed the same text, every character one the
 * model knows; a prompt outside its characters, a bad temperature and a missing folder are
 * refused. And the plugin catalogue says which methods need which data. */
static void test_text_run_and_sample(void **s)
{
    char corpus[24000];
    for (size_t i = 0; i < sizeof corpus; i++) corpus[i] = "the cat sat on a mat. "[(i * 3 + i / 22) % 22];
    const char *file = test_write_file("corpus.txt", corpus, sizeof corpus);
    char text[1400];
    snprintf(text, sizeof text,
             "return { data = { \"text\", path = \"%s\", context = 16 },\n"
             "  model = nn.sequential { nn.embed(16), nn.residual { nn.layernorm(), nn.conv(48, 1), nn.attention(2),\n"
             "    nn.conv(16, 1) }, nn.layernorm(), nn.conv(11, 1) },\n"
             "  optim = { \"adamw\", lr = 3e-3 }, batch = 16, budget = { steps = 40 }, eval = { every = 40 } }\n",
             file);
    const char *recipe = test_write_file("chars.lua", text, strlen(text));
    const char *dir = new_dir("text-run");
    assert_int_equal(run(path_in(test_tmpdir(), "text.err"), (const char *[]){ "run", recipe, "--out", dir, "--quiet", NULL }), 0);
    char *out[2], *err;
    for (int k = 0; k < 2; k++) {
        int rc = test_hasten((const char *[]){ "sample", dir, "--length", "60", "--seed", "7", "--prompt", "the ", NULL },
                             &out[k], &err);
        if (rc) print_message("%s", err);
        assert_int_equal(rc, 0);
        free(err);
    }
    assert_string_equal(out[0], out[1]);
    assert_int_equal(strlen(out[0]), 4 + 60 + 1);   /* the prompt, the text, a new line */
    assert_memory_equal(out[0], "the ", 4);
    for (size_t i = 0; i < 64; i++) assert_non_null(strchr("the casonm.", out[0][i]));
    free(out[0]);
    free(out[1]);
    /* no --prompt on a text without a new line: it still writes, from one of its own characters */
    int rc = test_hasten((const char *[]){ "sample", dir, "--length", "20", NULL }, &out[0], &err);
    if (rc) print_message("%s", err);
    assert_int_equal(rc, 0);
    assert_int_equal(strlen(out[0]), 1 + 20 + 1);
    for (size_t i = 0; i < 21; i++) assert_non_null(strchr("the casonm.", out[0][i]));
    free(out[0]);
    free(err);
    expect_usage((const char *[]){ "sample", dir, "--prompt", "dog", NULL }, 2, "'d' is not among the 11 characters");
    expect_usage((const char *[]){ "sample", dir, "--temperature", "0", NULL }, 2, "--temperature");
    expect_usage((const char *[]){ "sample", "tests", NULL }, 2, "tests: not a run folder (no recipe.lua)");
    expect_usage((const char *[]){ "sample", path_in(test_tmpdir(), "nowhere"), NULL }, 2, "nowhere: No such file or directory");
    /* the text changed under the run, its vocabulary's size kept ('!' for 'm'): refused, not
     * written with every id read as another character */
    for (size_t i = 0; i < sizeof corpus; i++) corpus[i] = corpus[i] == 'm' ? '!' : corpus[i];
    test_write_file("corpus.txt", corpus, sizeof corpus);
    expect_usage((const char *[]){ "sample", dir, NULL }, 1, "has changed since");

    /* the catalogue says which methods need which data */
    char *json;
    assert_int_equal(test_hasten((const char *[]){ "plugins", "--json", NULL }, &json, &err), 0);
    free(err);
    cJSON *root = cJSON_Parse(json), *p;
    assert_non_null(root);
    int seen = 0;
    cJSON_ArrayForEach(p, cJSON_GetObjectItem(root, "plugins")) {
        const char *name = cJSON_GetObjectItem(p, "name")->valuestring, *data = cJSON_GetObjectItem(p, "data")->valuestring;
        if (!strcmp(name, "alibi")) { assert_string_equal(data, "text"); seen++; }
        if (!strcmp(name, "mixup")) { assert_string_equal(data, "images"); seen++; }
        if (!strcmp(name, "ema")) { assert_string_equal(data, "any"); seen++; }
        if (!strcmp(name, "stochastic_depth")) {   /* and which layers */
            cJSON *layers = cJSON_GetObjectItem(p, "layers");
            assert_int_equal(cJSON_GetArraySize(layers), 1);
            assert_string_equal(cJSON_GetArrayItem(layers, 0)->valuestring, "residual");
            seen++;
        }
    }
    assert_int_equal(seen, 4);
    cJSON_Delete(root);
    free(json);
    assert_int_equal(test_hasten((const char *[]){ "plugins", NULL }, &json, &err), 0);
    assert_non_null(strstr(json, "(text) Distance biases"));
    assert_non_null(strstr(json, "role: weight averaging (one such plugin a run)"));   /* ema, swa */
    assert_non_null(strstr(json, "overlaps: input size (a warning when combined with another)"));
    assert_non_null(strstr(json, "teacher = \"\"  (required)"));   /* distillation */
    assert_non_null(strstr(json, "needs a layer: conv maxpool avgpool"));   /* blurpool */
    free(json);
    free(err);
}

/* A small recipe on the synthetic set (made in code: nothing to find or fetch) with extra fields. */
static const char *tiny_recipe(const char *name, const char *extra)
{
    char text[1200];
    snprintf(text, sizeof text, "return { data = \"synthetic\", model = nn.sequential { nn.flatten(), nn.linear(10) },\n"
             "  budget = { steps = 2 }, eval = { every = 2 }, %s }\n", extra);
    return test_write_file(name, text, strlen(text));
}

static const char *plugin_param(cJSON *plugins, int i, const char *name, const char *key)
{
    cJSON *p = cJSON_GetArrayItem(plugins, i);
    assert_non_null(p);
    assert_string_equal(cJSON_GetObjectItem(p, "name")->valuestring, name);
    cJSON *v = cJSON_GetObjectItem(cJSON_GetObjectItem(p, "params"), key);
    return v ? v->valuestring : NULL;
}

/* Options override recipe fields: --plugin NAME for a plugin the recipe has sets its parameters
 * (the others stay) instead of adding a second copy; a later --plugin overrides an earlier one. */
static void test_plugin_option_overrides(void **s)
{
    const char *recipe = tiny_recipe("plugged.lua", "plugins = { { \"label_smoothing\", alpha = 0.05 }, "
                                     "{ \"ema\", half_life = 50, every = 2 } }");
    const char *dir = new_dir("plugged");
    int rc = run(path_in(test_tmpdir(), "plugged.err"),
                 (const char *[]){ "run", recipe, "--out", dir, "--quiet", "--plugin", "label_smoothing:alpha=0.2",
                                   "--plugin", "ema:every=3", "--plugin", "mixup", "--plugin", "mixup:alpha=0.3",
                                   "--target", "test_loss=50", NULL });
    assert_int_equal(rc, 0);
    cJSON *sum = read_summary(dir);
    assert_non_null(sum);
    cJSON *plugins = cJSON_GetObjectItem(sum, "plugins");
    assert_int_equal(cJSON_GetArraySize(plugins), 3);
    assert_string_equal(plugin_param(plugins, 0, "label_smoothing", "alpha"), "0.2");
    assert_string_equal(plugin_param(plugins, 1, "ema", "every"), "3");
    assert_string_equal(plugin_param(plugins, 1, "ema", "half_life"), "50");
    assert_string_equal(plugin_param(plugins, 2, "mixup", "alpha"), "0.3");
    cJSON_Delete(sum);
    train_config c;
    char err[512];
    assert_int_equal(recipe_load(path_in(dir, "recipe.lua"), &c, err, sizeof err), 0);
    assert_int_equal(c.n_plugins, 3);
    assert_int_equal(c.plugins[0].n_params, 1);
    assert_string_equal(c.target_metric, "test_loss");   /* --target over the recipe's (none) */
    assert_true(c.target_value == 50);
    config_free(&c);
    char *log = test_read_file(path_in(test_tmpdir(), "plugged.err"), NULL);
    assert_non_null(strstr(log, "target test_loss <= 50 reached in "));
    free(log);
    expect_usage((const char *[]){ "run", recipe, "--target", "test_acc=1.5", NULL }, 2,
                 "hasten: --target test_acc=1.5: expected test_acc=VALUE (0 to 1) or test_loss=VALUE (above 0)");

    /* one bad --plugin: a usage error naming it, before anything runs */
    expect_usage((const char *[]){ "run", recipe, "--plugin", "label_smoothing:alpha=0.2,alpha=0.3", NULL }, 2,
                 "hasten: --plugin label_smoothing:alpha=0.2,alpha=0.3: parameter 'alpha' given twice");
    expect_usage((const char *[]){ "run", recipe, "--plugin", "ema:", NULL }, 2, "hasten: --plugin ema:: no key=value");
    expect_usage((const char *[]){ "run", recipe, "--plugin", "ema:every=2,", NULL }, 2, "--plugin ema:every=2,: an empty item");
    expect_usage((const char *[]){ "run", recipe, "--plugin", "ema:half_life=x", NULL }, 2,
                 "hasten: --plugin ema:half_life=x: plugin ema: half_life = 'x': expected a number");
}

/* A recipe error names the file and the field and is bad usage (exit 2), found before training. */
static void test_recipe_errors(void **s)
{
    char want[900];
    const char *r = tiny_recipe("badplug.lua", "plugins = { \"label_smoothing\", { \"ema\", half_lif = 3 } }");
    snprintf(want, sizeof want, "hasten: %s: plugins[2]: plugin ema: unknown parameter 'half_lif'", r);
    expect_usage((const char *[]){ "run", r, NULL }, 2, want);
    r = tiny_recipe("badval.lua", "plugins = { { \"ema\", half_life = \"x\" } }");
    snprintf(want, sizeof want, "hasten: %s: plugins[1]: plugin ema: half_life = 'x': expected a number", r);
    expect_usage((const char *[]){ "run", r, NULL }, 2, want);
    r = tiny_recipe("noplug.lua", "plugins = { \"nosuch\" }");
    snprintf(want, sizeof want, "hasten: %s: plugins[1]: plugin 'nosuch' not found", r);
    expect_usage((const char *[]){ "run", r, NULL }, 2, want);

    const char *text = "return { data = \"no-such-data\", model = nn.sequential { nn.flatten(), nn.linear(10) } }";
    r = test_write_file("nodata.lua", text, strlen(text));
    snprintf(want, sizeof want, "hasten: %s: data: unknown dataset 'no-such-data' (expected one of fashion-mnist", r);
    expect_usage((const char *[]){ "run", r, NULL }, 2, want);
    text = "return { data = { \"text\" }, model = nn.sequential { nn.embed(8), nn.conv(4, 1) } }";
    r = test_write_file("nopath.lua", text, strlen(text));
    snprintf(want, sizeof want, "hasten: %s: data.path: missing", r);
    expect_usage((const char *[]){ "run", r, NULL }, 2, want);

    text = "return { data = \"synthetic\", model = nn.sequential { nn.linear(10), nn.conv(3, 3) }, budget = { steps = 2 } }";
    r = test_write_file("misfit.lua", text, strlen(text));
    const char *dir = new_dir("misfit");
    snprintf(want, sizeof want, "hasten: %s: model: conv1: kernel 3 does not fit", r);
    expect_usage((const char *[]){ "run", r, "--out", dir, NULL }, 2, want);
    struct stat st;
    assert_int_equal(stat(dir, &st), -1);   /* no run folder for a recipe that cannot run */
    r = tiny_recipe("bigbatch.lua", "batch = 7000");
    snprintf(want, sizeof want, "hasten: %s: batch: 7000 is larger than the 6000 training examples of synthetic", r);
    expect_usage((const char *[]){ "run", r, NULL }, 2, want);
    expect_usage((const char *[]){ "run", tiny_recipe("fine.lua", "seed = 1"), "--batch", "7000", NULL }, 2,
                 "hasten: --batch 7000: larger than the 6000 training examples of synthetic");
    /* two plugins with one exclusive role: bad usage, before the data loads */
    expect_usage((const char *[]){ "run", tiny_recipe("roles.lua", "seed = 1"), "--plugin", "ema", "--plugin", "swa", NULL },
                 2, "plugins ema and swa both take the role \"weight averaging\"");
    /* a text-only method on images, from the recipe or an option: bad usage, no run folder */
    r = tiny_recipe("alibi.lua", "plugins = { \"alibi\" }");
    const char *none = new_dir("alibi-run");
    snprintf(want, sizeof want, "hasten: %s: plugin alibi needs text data; synthetic is an image set", r);
    expect_usage((const char *[]){ "run", r, "--out", none, NULL }, 2, want);
    assert_int_equal(stat(none, &st), -1);
    expect_usage((const char *[]){ "run", tiny_recipe("fine2.lua", "seed = 1"), "--plugin", "alibi", NULL }, 2,
                 "plugin alibi needs text data; synthetic is an image set");
}

/* A dataset missing from the folder data.path names is a failed run, not bad usage, and the advice
 * is about the path: a fetched copy goes to the cache, which a given path never reads, so fetching
 * helps only with data.path left out. */
static void test_given_data_path(void **s)
{
    const char *text = "return { data = { \"mnist\", path = \"/no/such/folder\" }, "
                       "model = nn.sequential { nn.flatten(), nn.linear(10) } }";
    const char *r = test_write_file("givenpath.lua", text, strlen(text));
    expect_usage((const char *[]){ "run", r, NULL }, 1,
                 "mnist not found in /no/such/folder, the folder data.path names and the only place looked at: "
                 "fix the path, or leave data.path out to use an installed or cached copy (fetch it with: "
                 "hasten fetch mnist)");
}

/* An evaluation whose loss is not finite (weights blown up) is written as null, not as "nan" or
 * "inf", which are not JSON: a reader would drop the whole record, its accuracy with it. */
static void test_nonfinite_record(void **s)
{
    mkdir(new_dir("blowup"), 0755);
    static const char plugin[] =
        "return hasten.plugin { name = \"blowup\", title = \"Blow up\", summary = \"Huge weights for the evaluation.\",\n"
        "  reference = \"none\", taxonomy = { component = \"function\", action = \"replace\", when = \"once\" },\n"
        "  eval_start = function(ctx, p) ctx.model.weights:fill_(1e38) end }\n";
    test_write_file("blowup/blowup.lua", plugin, strlen(plugin));
    char dir[800], out[900];
    snprintf(dir, sizeof dir, "%s/blowup", test_tmpdir());
    snprintf(out, sizeof out, "%s/blowup-run", test_tmpdir());
    const char *recipe = tiny_recipe("blowup.lua", "seed = 2");
    char *o, *e;
    int rc = test_hasten((const char *[]){ "run", recipe, "--plugin-path", dir, "--plugin", "blowup", "--out", out,
                                           "--quiet", NULL }, &o, &e);
    free(o);
    free(e);
    assert_int_equal(rc, 0);
    char path[1000];
    snprintf(path, sizeof path, "%s/metrics.jsonl", out);
    char *text = test_read_file(path, NULL);
    assert_non_null(text);
    int evals = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        cJSON *j = cJSON_Parse(line);
        if (!j) fail_msg("not JSON: %s", line);
        cJSON *loss = cJSON_GetObjectItem(j, "test_loss");
        if (loss) {
            evals++;
            assert_true(cJSON_IsNull(loss));
            assert_true(cJSON_IsNumber(cJSON_GetObjectItem(j, "test_acc")));
        }
        cJSON_Delete(j);
    }
    assert_int_equal(evals, 1);
    free(text);
}

/* A plugin that needs a kind of layer the recipe's model lacks (blurpool on an MLP) is bad usage,
 * said before a run folder is made; the workbench leaves it out of its list. */
static void test_plugin_needs_layers(void **s)
{
    char out[900];
    snprintf(out, sizeof out, "%s/sd-run", test_tmpdir());
    const char *recipe = tiny_recipe("flat.lua", "seed = 4");
    expect_usage((const char *[]){ "run", recipe, "--plugin", "stochastic_depth", "--out", out, NULL }, 2,
                 "flat.lua: plugins[1]: plugin stochastic_depth needs a residual layer; the model has none");
    struct stat st;
    assert_int_equal(stat(out, &st), -1);   /* nothing made */
    expect_usage((const char *[]){ "run", recipe, "--plugin", "blurpool", NULL }, 2,
                 "plugin blurpool needs a conv, maxpool or avgpool layer; the model has none");
    /* the image-size methods on the default recipe, whose linear head takes one size: refused
     * before the run (they failed at fit_start, leaving a failed run), not offered in its list */
    expect_usage((const char *[]){ "run", "fmnist_cnn", "--plugin", "colout", NULL }, 2,
                 "plugin colout needs a gap layer; the model has none");
    expect_usage((const char *[]){ "run", "fmnist_cnn", "--plugin", "progressive_resizing", NULL }, 2,
                 "plugin progressive_resizing needs a gap layer; the model has none");
    train_config c;
    char err[256];
    assert_int_equal(recipe_load(recipe, &c, err, sizeof err), 0);
    ui_catalog cat = {0};
    assert_true(ui_catalog_load(&cat) > 0);
    assert_non_null(ui_catalog_find(&cat, "blurpool"));   /* no model given: all of them */
    cat.model = &c;
    assert_true(ui_catalog_load(&cat) > 0);
    assert_null(ui_catalog_find(&cat, "blurpool"));
    assert_null(ui_catalog_find(&cat, "stochastic_depth"));
    assert_non_null(ui_catalog_find(&cat, "label_smoothing"));
    config_free(&c);
    /* the default recipe's list: what it leaves out, and why, for the log */
    assert_int_equal(recipe_load("recipes/fmnist_cnn.lua", &c, err, sizeof err), 0);
    snprintf(cat.data, sizeof cat.data, "images");
    assert_true(ui_catalog_load(&cat) > 0);
    assert_string_equal(cat.left_out, "alibi, seq_length_warmup (text only); colout, progressive_resizing "
                                      "(no gap layer); stochastic_depth (no residual layer)");
    cat.data[0] = 0;
    config_free(&c);
    assert_int_equal(recipe_load("recipes/fmnist_cnn_gap.lua", &c, err, sizeof err), 0);
    cat.model = &c;
    assert_true(ui_catalog_load(&cat) > 0);
    assert_non_null(ui_catalog_find(&cat, "colout"));   /* a gap head takes any size */
    assert_non_null(ui_catalog_find(&cat, "progressive_resizing"));
    ui_catalog_free(&cat);
    config_free(&c);
}

/* --plugin-path DIR: a folder of one's own plugins, for run, ui and demo alike (the workbench lists
 * them too); one that is not there is a usage error. */
static void test_plugin_path(void **s)
{
    const char *dir = new_dir("myplugins");
    mkdir(dir, 0755);
    char *src = test_read_file("plugins/label_smoothing.lua", NULL);
    assert_non_null(src);
    char *name = strstr(src, "name = \"label_smoothing\"");
    assert_non_null(name);
    memcpy(name, "name = \"zz_smoothing\"   ", strlen("name = \"label_smoothing\""));
    test_write_file("myplugins/zz_smoothing.lua", src, strlen(src));
    free(src);
    char nowhere[800];
    snprintf(nowhere, sizeof nowhere, "%s/no-such-folder", test_tmpdir());
    const char *recipe = tiny_recipe("pp.lua", "seed = 3");
    const char *const *with[] = {
        (const char *[]){ "run", "--plugin-path", nowhere, recipe, NULL },
        (const char *[]){ "ui", "--plugin-path", nowhere, recipe, NULL },
        (const char *[]){ "demo", "--plugin-path", nowhere, recipe, NULL },
        (const char *[]){ "plugins", "--plugin-path", nowhere, NULL },
        (const char *[]){ "sweep", recipe, "--budgets", "2steps", "--plugin-path", nowhere, NULL },
    };
    for (int i = 0; i < 5; i++) {
        const char *const *args = with[i];
        expect_usage(args, 2, "--plugin-path");
        expect_usage(args, 2, "no-such-folder: No such file or directory");
    }
    expect_usage((const char *[]){ "run", recipe, "--plugin-path", "README.md", NULL }, 2,
                 "--plugin-path README.md: not a folder");
    /* taken by the workbench and the demo (which then need a terminal) */
    expect_usage((const char *[]){ "ui", "--plugin-path", dir, NULL }, 2, "needs a terminal");
    expect_usage((const char *[]){ "demo", "--plugin-path", dir, NULL }, 2, "needs a terminal");
    /* and the workbench's list holds the folder's plugins */
    assert_int_equal(cli_set_plugin_path(dir), 0);
    ui_catalog cat = {0};
    assert_true(ui_catalog_load(&cat) > 0);
    assert_non_null(ui_catalog_find(&cat, "zz_smoothing"));
    assert_non_null(ui_catalog_find(&cat, "label_smoothing"));
    ui_catalog_free(&cat);
    /* a run finds them there */
    const char *out = new_dir("zz-run");
    int rc = run(path_in(test_tmpdir(), "zz.err"), (const char *[]){ "run", recipe, "--out", out, "--quiet", "--plugin-path",
                                                                    dir, "--plugin", "zz_smoothing:alpha=0.2", NULL });
    assert_int_equal(rc, 0);
    cJSON *sum = read_summary(out);
    assert_non_null(sum);
    assert_string_equal(plugin_param(cJSON_GetObjectItem(sum, "plugins"), 0, "zz_smoothing", "alpha"), "0.2");
    cJSON_Delete(sum);
}

/* The text between the first occurrence of start and the next occurrence of end after it. */
static char *section(const char *text, const char *start, const char *end)
{
    const char *a = strstr(text, start);
    if (!a) fail_msg("'%s' not found", start);
    const char *b = strstr(a + strlen(start), end);
    size_t n = b ? (size_t)(b - a) : strlen(a);
    char *out = malloc(n + 1);
    memcpy(out, a, n);
    out[n] = 0;
    return out;
}

/* opt as a whole word: "--seed" is not in "--seeds", nor "--plugin" in "--plugin-path". */
static int has_option(const char *text, const char *opt)
{
    size_t n = strlen(opt);
    for (const char *p = strstr(text, opt); p; p = strstr(p + 1, opt)) {
        char next = p[n];
        if (!(next == '-' || next == '_' || (next >= 'a' && next <= 'z'))) return 1;
    }
    return 0;
}

/* Every option each command's parser takes (tui/main.c, ui_app.c, bench.c, cmd_*.c), as `hasten
 * help` and README.md's command-line block must list them. */
static const struct { const char *cmd, *help_start, *help_end, *readme_start, *opts; } commands[] = {
    { "ui", "workbench and demo options:", "\n\n", "hasten [ui]",
      "--budget --seed --threads --ascii --mono --device --batch --plugin-path" },
    { "run", "run options:", "\n\n", "hasten run ",
      "--budget --seed --out --threads --device --quiet --plugin --plugin-path --batch --eval-every --target" },
    { "bench", "  hasten bench", "\n  hasten ", "hasten bench ", "--json --steps --batch --threads --device --layers" },
    { "fetch", "  hasten fetch", "\n  hasten ", "hasten fetch ", "--force --quiet" },
    { "plugins", "  hasten plugins", "\n  hasten ", "hasten plugins ", "--json --plugin-path" },
    { "sweep", "  hasten sweep", "\n  hasten ", "hasten sweep ",
      "--budgets --seeds --out --target --markdown --plot --plugin --plugin-path --threads --device --batch --eval-every" },
    { "compare", "  hasten compare", "\n  hasten ", "hasten compare ", "--target --markdown --phases --plot" },
    { "sample", "  hasten sample", "\n  hasten ", "hasten sample ", "--length --prompt --temperature --seed" },
};

static void test_help_lists_options(void **s)
{
    char *help, *err;
    assert_int_equal(test_hasten((const char *[]){ "help", NULL }, &help, &err), 0);
    free(err);
    for (const char *line = help; *line;) {   /* an 80-column terminal shows it unwrapped */
        size_t n = strcspn(line, "\n");
        if (n > 80) fail_msg("hasten help: a line of %zu columns: %.*s", n, (int)n, line);
        line += n + (line[n] == '\n');
    }
    char *readme = test_read_file("README.md", NULL);
    assert_non_null(readme);
    char *block = section(readme, "## Command line\n\n```\n", "```\n\n");
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++) {
        char *h = section(help, commands[i].help_start, commands[i].help_end);
        char *r = section(block, commands[i].readme_start, "\nhasten ");
        char opts[200];
        snprintf(opts, sizeof opts, "%s", commands[i].opts);
        for (char *o = strtok(opts, " "); o; o = strtok(NULL, " ")) {
            if (!has_option(h, o)) fail_msg("hasten help: %s %s missing in:\n%s", commands[i].cmd, o, h);
            if (!has_option(r, o)) fail_msg("README.md: %s %s missing in:\n%s", commands[i].cmd, o, r);
        }
        free(h);
        free(r);
        /* hasten CMD --help: that command's usage on stdout, exit 0, every option, 80 columns */
        char *own, *own_err;
        assert_int_equal(test_hasten((const char *[]){ commands[i].cmd, "--help", NULL }, &own, &own_err), 0);
        if (strncmp(own, "usage: hasten", 13)) fail_msg("hasten %s --help printed:\n%s", commands[i].cmd, own);
        if (strstr(own, "hasten help | --version")) fail_msg("hasten %s --help printed every command:\n%s", commands[i].cmd, own);
        snprintf(opts, sizeof opts, "%s", commands[i].opts);
        for (char *o = strtok(opts, " "); o; o = strtok(NULL, " "))
            if (!has_option(own, o)) fail_msg("hasten %s --help: %s missing in:\n%s", commands[i].cmd, o, own);
        for (const char *line = own; *line;) {
            size_t n = strcspn(line, "\n");
            if (n > 80) fail_msg("hasten %s --help: a line of %zu columns: %.*s", commands[i].cmd, n, (int)n, line);
            line += n + (line[n] == '\n');
        }
        free(own);
        free(own_err);
    }
    free(block);
    free(readme);
    free(help);
}

/* hasten plugins wraps at the terminal's width ($COLUMNS here), continuation lines under their
 * column; into a pipe with no width, one line an entry. */
static void test_plugins_wrap(void **s)
{
    char *out, *err;
    setenv("COLUMNS", "80", 1);
    int rc = test_hasten((const char *[]){ "plugins", NULL }, &out, &err);
    unsetenv("COLUMNS");
    assert_int_equal(rc, 0);
    for (const char *line = out; *line;) {
        size_t n = strcspn(line, "\n");
        if (n > 80) fail_msg("hasten plugins at 80 columns: a line of %zu: %.*s", n, (int)n, line);
        line += n + (line[n] == '\n');
    }
    if (!strstr(out, "  colout               remove    every step  Drop random rows and columns of the\n"
                     "                                             images: smaller inputs; needs a\n"))
        fail_msg("colout's summary not wrapped under its column:\n%s", out);
    free(out);
    free(err);
    assert_int_equal(test_hasten((const char *[]){ "plugins", NULL }, &out, &err), 0);
    assert_non_null(strstr(out, "  colout               remove    every step  Drop random rows and columns of the images: smaller"));
    free(out);
    free(err);
}

int main(void)
{
    if (access("./hasten", X_OK)) {
        fprintf(stderr, "test_cli: ./hasten not built (run from the repository root after make)\n");
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_usage_errors), cmocka_unit_test(test_missing_dataset_fallback),
        cmocka_unit_test(test_kill9), cmocka_unit_test(test_sigterm_stops_cleanly),
        cmocka_unit_test(test_mlp_one_epoch), cmocka_unit_test(test_text_run_and_sample),
        cmocka_unit_test(test_plugin_option_overrides), cmocka_unit_test(test_recipe_errors),
        cmocka_unit_test(test_given_data_path), cmocka_unit_test(test_plugin_path),
        cmocka_unit_test(test_nonfinite_record), cmocka_unit_test(test_plugin_needs_layers),
        cmocka_unit_test(test_help_lists_options), cmocka_unit_test(test_plugins_wrap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
