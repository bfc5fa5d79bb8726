/* Each shipped plugin does what it claims, through the real engine and the real Lua bridge, and
 * the sandbox stops misbehaving plugins without taking the process down: on the CPU, and again on
 * the CUDA device when one opens (else that group is skipped with the reason). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "datasets/datasets.h"
#include "engine/cpu/cpu.h"
#include "engine/ops.h"
#include "engine/tensor_ops.h"
#include "engine/trainer.h"
#include "lua/plugin.h"
#include "lua/recipe.h"
#include "tests/support.h"

static data_set ds;
static plug_catalog cat;
static device_kind dev;   /* where the method tests of the group now running train */

/* t's values on the host: t itself on the CPU, else a copy in one of a few rotating buffers. */
static const float *host(const tensor *t)
{
    static tensor copies[4];
    static int next;
    if (t->device == DEVICE_CPU) return t->data;
    tensor *c = &copies[next++ % 4];
    tensor_copy(c, t);
    return c->data;
}

static layer_spec cnn_gap[] = {
    { .kind = LAYER_CONV, .out = 8, .k = 3, .stride = 1, .pad = 1 }, { .kind = LAYER_BATCHNORM },
    { .kind = LAYER_RELU }, { .kind = LAYER_MAXPOOL, .k = 2 },
    { .kind = LAYER_CONV, .out = 16, .k = 3, .stride = 1, .pad = 1 }, { .kind = LAYER_RELU },
    { .kind = LAYER_GAP }, { .kind = LAYER_LINEAR, .out = 10, .bias = 1 },
};
static layer_spec mlp[] = {
    { .kind = LAYER_FLATTEN }, { .kind = LAYER_LINEAR, .out = 32, .bias = 1 }, { .kind = LAYER_RELU },
    { .kind = LAYER_LINEAR, .out = 32, .bias = 1 }, { .kind = LAYER_RELU },
    { .kind = LAYER_LINEAR, .out = 10, .bias = 1 },
};

static int setup(void **s)
{
    char dirs[1][512] = { "plugins" };
    if (plug_catalog_load(&cat, dirs, 1)) return -1;
    return data_synthetic(&ds, 1024, 256, 28, 28, 10, 1);
}

static int setup_cpu(void **s)
{
    dev = DEVICE_CPU;
    return setup(s);
}

static int setup_cuda(void **s)
{
    dev = DEVICE_CUDA;
    return setup(s);
}

static int teardown(void **s)
{
    plug_catalog_free(&cat);
    data_set_free(&ds);
    return 0;
}

static void base_config(train_config *c, int gap)
{
    config_defaults(c);
    c->device = dev;
    c->layers = gap ? cnn_gap : mlp;
    c->n_layers = gap ? 8 : 6;
    c->batch = 64;
    c->budget = (budget_spec){ BUDGET_STEPS, 20 };
    c->eval_every_steps = 10;
}

/* "name" or "name:k=v,..." appended to c's plugins. */
static void add(train_config *c, const char *arg)
{
    char err[256];
    assert_int_equal(plug_parse_arg(arg, &c->plugins[c->n_plugins++], err, sizeof err), 0);
}

typedef struct harness {
    trainer *t;
    plug_host *h;
    char err[512];
} harness;

/* The host's hook is added first, so a test hook added after it sees before_* events after the
 * plugins (and after_* events before them). */
static int open_run(harness *hr, const train_config *c)
{
    hr->t = trainer_new(c, &ds, hr->err, sizeof hr->err);
    assert_non_null(hr->t);
    hr->h = plug_host_new(hr->t, &cat, c, NULL, NULL, hr->err, sizeof hr->err);
    return hr->h ? 0 : -1;
}

static void close_run(harness *hr)
{
    plug_host_free(hr->h);
    trainer_free(hr->t);
}

static int run_with(const train_config *c, trainer_hook_fn fn, void *ud, harness *hr)
{
    assert_int_equal(open_run(hr, c), 0);
    if (fn) trainer_add_hook(hr->t, fn, ud);
    return trainer_run(hr->t);
}

/* As run_with, with a second hook registered before the plugin host: it sees before_* events
 * ahead of the plugins and after_* events after them (the batch as loaded, the weights as the
 * plugins leave them). Prints the run's error when it fails. */
static int run_around(const train_config *c, trainer_hook_fn first, void *ud_first, trainer_hook_fn last,
                      void *ud_last, harness *hr)
{
    hr->t = trainer_new(c, &ds, hr->err, sizeof hr->err);
    assert_non_null(hr->t);
    trainer_add_hook(hr->t, first, ud_first);
    hr->h = plug_host_new(hr->t, &cat, c, NULL, NULL, hr->err, sizeof hr->err);
    assert_non_null(hr->h);
    trainer_add_hook(hr->t, last, ud_last);
    int rc = trainer_run(hr->t);
    if (rc) print_message("%s\n", hr->t->error);
    return rc;
}

/* ---- catalogue and parameters ---- */

static void test_catalogue(void **s)
{
    static const char *const shipped[] = { "budget_schedule", "one_cycle", "warmup", "label_smoothing",
        "mixup", "cutmix", "cutout", "progressive_resizing", "selective_backprop", "layer_freezing",
        "ema", "grad_clipping", "data_echoing", "lookahead", "batch_warmup" };
    for (size_t i = 0; i < sizeof shipped / sizeof *shipped; i++) {
        const plug_info *p = plug_find(&cat, shipped[i]);
        if (!p) print_message("missing %s\n", shipped[i]);
        assert_non_null(p);
        assert_true(p->title[0] && p->summary[0] && p->reference[0] && p->events);
    }
    assert_int_equal(cat.n_errors, 0);
}

static void expect_param_error(const char *arg, const char *needle)
{
    train_config c;
    base_config(&c, 0);
    char err[256];
    if (plug_parse_arg(arg, &c.plugins[0], err, sizeof err) == 0) {
        c.n_plugins = 1;
        assert_int_equal(plug_check(&cat, &c, err, sizeof err), -1);
    }
    if (!strstr(err, needle)) print_message("error was: %s\n", err);
    assert_non_null(strstr(err, needle));
}

static void test_param_errors(void **s)
{
    expect_param_error("label_smoothing:alpha=0.9", "alpha = 0.9 is outside [0, 0.5]");
    expect_param_error("label_smoothing:alfa=0.1", "unknown parameter 'alfa' (known: alpha)");
    expect_param_error("cutout:size=2.5", "expected an integer");
    expect_param_error("mixup:alpha=lots", "expected a number");
    expect_param_error("no_such_method", "plugin 'no_such_method' not found");
    expect_param_error("mixup:alpha", "not key=value");
    /* a required parameter: checked with the rest, before the run, not at fit_start */
    expect_param_error("distillation", "plugin distillation: parameter 'teacher' must be set: the teacher's run folder");
    expect_param_error("distillation:teacher=", "parameter 'teacher' must be set");
    /* a whole-number default does not make a parameter an integer: only integer = true does */
    train_config c;
    base_config(&c, 0);
    char err[256];
    add(&c, "one_cycle:peak=1.5,div=2.5");
    assert_int_equal(plug_check(&cat, &c, err, sizeof err), 0);
    c.n_plugins = 0;   /* one lr schedule a run */
    add(&c, "budget_schedule:final=0.05");
    assert_int_equal(plug_check(&cat, &c, err, sizeof err), 0);
}

/* Appends each plugin log line to a buffer of 1024 bytes. */
static void collect_log(void *ud, const char *plugin, const char *line)
{
    char *buf = ud;
    snprintf(buf + strlen(buf), 1024 - strlen(buf), "[%s] %s\n", plugin, line);
}

/* METHODS.md's composition rules: one weight-averaging method a run and no plugin twice are
 * errors before the run; the input-size methods together run, with a warning in the log. */
static void test_composition(void **s)
{
    static const char *const bad[][3] = {
        { "ema", "swa", "plugins ema and swa both take the role \"weight averaging\"" },
        { "ema", "ema:half_life=10", "plugin ema is listed twice (plugins 1 and 3 of the run)" },
        { "one_cycle", "budget_schedule", "plugins one_cycle and budget_schedule" },
        { "data_pruning", "curriculum", "plugins data_pruning and curriculum" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        train_config c;
        base_config(&c, 0);
        char err[256] = "";
        add(&c, bad[i][0]);
        add(&c, "label_smoothing");
        add(&c, bad[i][1]);
        assert_int_equal(plug_check(&cat, &c, err, sizeof err), -1);
        if (!strstr(err, bad[i][2])) print_message("error was: %s\n", err);
        assert_non_null(strstr(err, bad[i][2]));
        c.plugins[1] = c.plugins[2];
        c.n_plugins = 2;
        harness hr;
        assert_int_equal(open_run(&hr, &c), -1);   /* the host checks too */
        trainer_free(hr.t);
    }
    train_config c;
    base_config(&c, 1);
    c.budget = (budget_spec){ BUDGET_STEPS, 2 };
    add(&c, "progressive_resizing");
    add(&c, "colout");
    char err[256], logged[1024] = "";
    assert_int_equal(plug_check(&cat, &c, err, sizeof err), 0);
    harness hr;
    hr.t = trainer_new(&c, &ds, hr.err, sizeof hr.err);
    hr.h = plug_host_new(hr.t, &cat, &c, collect_log, logged, hr.err, sizeof hr.err);
    assert_non_null(hr.h);
    assert_int_equal(trainer_run(hr.t), 0);
    if (!strstr(logged, "[colout] warning: progressive_resizing and colout overlap (\"input size\")"))
        print_message("log was: %s\n", logged);
    assert_non_null(strstr(logged, "[colout] warning: progressive_resizing and colout overlap (\"input size\")"));
    close_run(&hr);
}

/* The parameter of plugin name called param in `hasten plugins --json` output root. */
static const cJSON *json_param(const cJSON *root, const char *name, const char *param)
{
    const cJSON *p, *q;
    cJSON_ArrayForEach(p, cJSON_GetObjectItem(root, "plugins"))
        if (!strcmp(cJSON_GetObjectItem(p, "name")->valuestring, name))
            cJSON_ArrayForEach(q, cJSON_GetObjectItem(p, "params"))
                if (!strcmp(cJSON_GetObjectItem(q, "name")->valuestring, param)) return q;
    fail_msg("%s.%s not in hasten plugins --json", name, param);
    return NULL;
}

/* `hasten plugins --json` (the binary, built before the tests by make test): defaults typed as
 * their parameters, as min and max are; required parameters and roles marked. */
static void test_catalogue_json(void **s)
{
    if (access("./hasten", X_OK)) {
        print_message("skipped: ./hasten not built (make test builds it)\n");
        return;
    }
    char *json, *err;
    assert_int_equal(test_hasten((const char *[]){ "plugins", "--json", NULL }, &json, &err), 0);
    cJSON *root = cJSON_Parse(json);
    assert_non_null(root);
    const cJSON *d = cJSON_GetObjectItem(json_param(root, "label_smoothing", "alpha"), "default");
    assert_true(cJSON_IsNumber(d) && d->valuedouble == 0.1);
    d = cJSON_GetObjectItem(json_param(root, "cutout", "size"), "default");
    assert_true(cJSON_IsNumber(d) && d->valuedouble == 8);
    d = cJSON_GetObjectItem(json_param(root, "lars", "clip"), "default");
    assert_true(cJSON_IsTrue(d));
    const cJSON *teacher = json_param(root, "distillation", "teacher");
    d = cJSON_GetObjectItem(teacher, "default");
    assert_true(cJSON_IsString(d) && !strcmp(d->valuestring, ""));
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(teacher, "required")));
    assert_null(cJSON_GetObjectItem(json_param(root, "distillation", "weight"), "required"));
    const cJSON *p;
    int roles = 0;
    cJSON_ArrayForEach(p, cJSON_GetObjectItem(root, "plugins")) {
        const cJSON *ex = cJSON_GetObjectItem(p, "exclusive"), *ov = cJSON_GetObjectItem(p, "overlaps");
        const char *name = cJSON_GetObjectItem(p, "name")->valuestring;
        if (!strcmp(name, "swa")) roles += ex && !strcmp(ex->valuestring, "weight averaging");
        if (!strcmp(name, "colout")) roles += ov && !strcmp(ov->valuestring, "input size");
    }
    assert_int_equal(roles, 2);
    cJSON_Delete(root);
    free(json);
    free(err);
}

static void test_bad_plugin_files(void **s)
{
    plug_catalog c2;
    char err[300];
    memset(&c2, 0, sizeof c2);
    assert_int_equal(plug_catalog_add_source(&c2, "x", "return { name = 'x' }", err, sizeof err), -1);
    assert_non_null(strstr(err, "hasten.plugin"));
    assert_int_equal(plug_catalog_add_source(&c2, "x", "return hasten.plugin { name = 'x', title = 't', summary = 's', "
        "reference = 'r', taxonomy = { component = 'data', action = 'shuffle', when = 'once' } }", err, sizeof err), -1);
    assert_non_null(strstr(err, "taxonomy.action = 'shuffle'"));
    assert_int_equal(plug_catalog_add_source(&c2, "x", "return hasten.plugin { name = 'x', title = 't', summary = 's', "
        "reference = 'r', taxonomy = { component = 'data', action = 'remove', when = 'once' }, "
        "before_stepp = function() end }", err, sizeof err), -1);
    assert_non_null(strstr(err, "handler 'before_stepp' is not an event: did you mean 'before_step'?"));
    assert_int_equal(plug_catalog_add_source(&c2, "x", "return hasten.plugin { name = 'x', title = 't', summary = 's', "
        "reference = 'r', taxonomy = { component = 'data', action = 'remove', when = 'once' }, "
        "after_step = 3 }", err, sizeof err), -1);
    assert_non_null(strstr(err, "handler 'after_step' must be a function, not a number"));
    assert_int_equal(plug_catalog_add_source(&c2, "x", "return hasten.plugin {", err, sizeof err), -1);
    assert_non_null(strstr(err, "x.lua:1"));
    assert_int_equal(plug_catalog_add_source(&c2, "x", "return hasten.plugin { name = 'x', title = 't', summary = 's', "
        "reference = 'r', taxonomy = { component = 'data', action = 'remove', when = 'once' }, "
        "layers = { 'conv', 'convv' } }", err, sizeof err), -1);
    assert_non_null(strstr(err, "layers[2] = 'convv': not a layer kind"));
    assert_int_equal(plug_catalog_add_source(&c2, "x", "return hasten.plugin { name = 'x', title = 't', summary = 's', "
        "reference = 'r', taxonomy = { component = 'data', action = 'remove', when = 'once' }, layers = 'conv' }",
        err, sizeof err), -1);
    assert_non_null(strstr(err, "field 'layers': expected a list of layer kinds"));
    plug_catalog_free(&c2);
}

/* A plugin's `layers`: the model needs one of those kinds, at any depth; the check says which. */
static void test_plugin_layers(void **s)
{
    plug_catalog c2;
    char err[300];
    memset(&c2, 0, sizeof c2);
    assert_int_equal(plug_catalog_add_source(&c2, "x", "return hasten.plugin { name = 'x', title = 't', summary = 's', "
        "reference = 'r', taxonomy = { component = 'data', action = 'remove', when = 'once' }, "
        "layers = { 'conv', 'maxpool', 'residual' } }", err, sizeof err), 0);
    const plug_info *x = plug_find(&c2, "x");
    assert_non_null(x);
    train_config c;
    config_defaults(&c);
    layer_spec flat[2] = { { .kind = LAYER_FLATTEN }, { .kind = LAYER_LINEAR, .out = 10 } };
    c.layers = flat;
    c.n_layers = 2;
    assert_int_equal(plug_fits_model(x, &c, err, sizeof err), 0);
    assert_string_equal(err, "plugin x needs a conv, maxpool or residual layer; the model has none");
    assert_int_equal(plug_catalog_add_source(&c2, "y", "return hasten.plugin { name = 'y', title = 't', summary = 's', "
        "reference = 'r', taxonomy = { component = 'data', action = 'remove', when = 'once' }, layers = { 'conv' } }",
        err, sizeof err), 0);
    layer_spec inner[1] = { { .kind = LAYER_CONV, .out = 4, .k = 3 } };
    layer_spec nested[2] = { { .kind = LAYER_RESIDUAL, .n_inner = 1, .inner = inner }, { .kind = LAYER_FLATTEN } };
    c.layers = nested;   /* a conv inside a residual block counts */
    assert_int_equal(plug_fits_model(plug_find(&c2, "y"), &c, NULL, 0), 1);
    c.layers = flat;
    assert_int_equal(plug_fits_model(plug_find(&c2, "y"), &c, NULL, 0), 0);
    c.layers = NULL;
    c.n_layers = 0;
    plug_catalog_free(&c2);
}

/* A plugin asked for whose file did not load: the run's error gives the reason, not "not found". */
static void test_broken_plugin_named(void **s)
{
    char dir[] = "/tmp/hasten-broken-XXXXXX", path[64], dirs[1][512], err[512];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/typo.lua", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("return hasten.plugin { name = 'typo', title = 't', summary = 's', reference = 'r', taxonomy = { "
          "component = 'data', action = 'remove', when = 'once' }, after_backwards = function() end }", f);
    fclose(f);
    snprintf(dirs[0], sizeof dirs[0], "%s", dir);
    plug_catalog c2;
    assert_int_equal(plug_catalog_load(&c2, dirs, 1), 0);
    train_config c;
    base_config(&c, 0);
    add(&c, "typo");
    assert_int_equal(plug_check(&c2, &c, err, sizeof err), -1);
    assert_non_null(strstr(err, "plugin 'typo' did not load: "));
    assert_non_null(strstr(err, "typo.lua: handler 'after_backwards' is not an event: did you mean 'after_backward'?"));
    c.n_plugins = 0;
    add(&c, "nosuch");
    assert_int_equal(plug_check(&c2, &c, err, sizeof err), -1);
    assert_string_equal(err, "plugin 'nosuch' not found (hasten plugins lists them)");
    plug_catalog_free(&c2);
    unlink(path);
    rmdir(dir);
}

/* ---- each method ---- */

static int check_smoothing(trainer *t, trainer_event ev, void *ud)
{
    if (ev != EV_BEFORE_LOSS) return 0;
    int k = t->data->classes, n = t->targets.shape[0];
    const float *tg = host(&t->targets);
    for (int i = 0; i < n; i++)
        for (int j = 0; j < k; j++) {
            float v = tg[i * k + j], want = j == t->labels[i] ? 0.9f + 0.01f : 0.01f;
            if (fabsf(v - want) > 1e-6f) return trainer_fail(t, "target %d,%d = %f, want %f", i, j, v, want);
        }
    (*(int *)ud)++;
    return 0;
}

static void test_label_smoothing(void **s)
{
    train_config c;
    base_config(&c, 0);
    add(&c, "label_smoothing:alpha=0.1");
    harness hr;
    int checked = 0;
    assert_int_equal(run_with(&c, check_smoothing, &checked, &hr), 0);
    assert_int_equal(checked, 20);
    close_run(&hr);
}

typedef struct mix_check { tensor x; int labels[256]; int checked; } mix_check;

/* Registered before the host: keeps the batch as loaded, before the plugin mixes it. */
static int keep_batch(trainer *t, trainer_event ev, void *ud)
{
    mix_check *m = ud;
    if (ev == EV_BATCH_START) {
        tensor_copy(&m->x, &t->x);
        memcpy(m->labels, t->labels, (size_t)t->x.shape[0] * sizeof(int));
    }
    return 0;
}

/* Finds the partner j of mixed row i: x_mixed[i] = lam * x[i] + (1 - lam) * x[j]. */
static int find_partner(const float *x, int n, const float *xi, int i, float lam, size_t d)
{
    for (int j = 0; j < n; j++) {
        size_t k = 0;
        for (; k < d; k++)
            if (fabsf(xi[k] - (lam * x[i * d + k] + (1 - lam) * x[j * d + k])) > 1e-4f) break;
        if (k == d) return j;
    }
    return -1;
}

static int check_mixup(trainer *t, trainer_event ev, void *ud)
{
    mix_check *m = ud;
    if (ev != EV_BEFORE_FORWARD) return 0;
    float lam = t->step_extra[0];   /* the plugin's mixup_lambda metric */
    int k = t->data->classes, n = t->x.shape[0];
    size_t d = t->x.n / (size_t)n;
    const float *x = host(&t->x), *tg = host(&t->targets);
    for (int i = 0; i < n; i += 7) {
        int j = find_partner(m->x.data, n, x + i * d, i, lam, d);
        if (j < 0) return trainer_fail(t, "row %d is not a mix of two inputs with lambda %f", i, lam);
        for (int c = 0; c < k; c++) {
            float want = lam * (m->labels[i] == c) + (1 - lam) * (m->labels[j] == c);
            if (fabsf(tg[i * k + c] - want) > 1e-5f)
                return trainer_fail(t, "targets of row %d not mixed with the inputs' lambda", i);
        }
    }
    m->checked++;
    return 0;
}

static void test_mixup(void **s)
{
    train_config c;
    base_config(&c, 0);
    add(&c, "mixup:alpha=0.4");
    harness hr;
    mix_check m = {0};
    assert_int_equal(run_around(&c, keep_batch, &m, check_mixup, &m, &hr), 0);
    assert_int_equal(m.checked, 20);
    tensor_free(&m.x);
    close_run(&hr);
}

static int check_cutmix(trainer *t, trainer_event ev, void *ud)
{
    if (ev != EV_BEFORE_FORWARD) return 0;
    float lam = t->step_extra[0];
    int k = t->data->classes;
    const float *tg = host(&t->targets);
    for (int i = 0; i < t->targets.shape[0]; i++) {
        float sum = 0, own = tg[i * k + t->labels[i]];
        for (int c = 0; c < k; c++) sum += tg[i * k + c];
        if (fabsf(sum - 1) > 1e-5f || own < lam - 1e-5f) return trainer_fail(t, "cutmix targets of row %d", i);
    }
    (*(int *)ud)++;
    return 0;
}

static void test_cutmix(void **s)
{
    train_config c;
    base_config(&c, 0);
    add(&c, "cutmix");
    harness hr;
    int checked = 0;
    assert_int_equal(run_with(&c, check_cutmix, &checked, &hr), 0);
    assert_int_equal(checked, 20);
    close_run(&hr);
}

static int check_cutout(trainer *t, trainer_event ev, void *ud)
{
    if (ev != EV_BEFORE_FORWARD) return 0;
    size_t d = t->x.n / (size_t)t->x.shape[0];
    const float *x = host(&t->x);
    for (int i = 0; i < t->x.shape[0]; i++) {
        int zeros = 0;
        for (size_t k = 0; k < d; k++) zeros += x[i * d + k] == 0.0f;
        if (zeros < 1 || zeros > 6 * 6) return trainer_fail(t, "image %d has %d masked pixels", i, zeros);
    }
    (*(int *)ud)++;
    return 0;
}

static void test_cutout(void **s)
{
    train_config c;
    base_config(&c, 0);
    add(&c, "cutout:size=6");
    harness hr;
    int checked = 0;
    assert_int_equal(run_with(&c, check_cutout, &checked, &hr), 0);
    assert_int_equal(checked, 20);
    close_run(&hr);
}

/* Records the input side and the GEMM work of each step. */
typedef struct size_log { int side[64]; double flops[64]; int n; nn_gemm_shape shapes[256]; } size_log;

static int log_sizes(trainer *t, trainer_event ev, void *ud)
{
    size_log *l = ud;
    if (ev == EV_BEFORE_FORWARD) {
        l->side[l->n] = t->x.shape[1];
        nn_gemm_record(l->shapes, 256);
    } else if (ev == EV_AFTER_STEP && l->n < 64) {
        double f = 0;
        for (int i = 0; i < nn_gemm_recorded(); i++) f += 2.0 * l->shapes[i].M * l->shapes[i].N * l->shapes[i].K;
        nn_gemm_record(NULL, 0);
        l->flops[l->n++] = f;
    }
    return 0;
}

/* An input-size method on the MLP (flatten, then linear1 on 784 features) stops at fit_start,
 * before a step, with one line naming the plugin, the layer and the fix. */
static void expect_fixed_size(const harness *hr, const char *plugin)
{
    char want[160];
    snprintf(want, sizeof want, "plugin %s at fit_start: linear1 takes exactly 784 input features", plugin);
    if (!strstr(hr->t->error, want)) print_message("error was: %s\n", hr->t->error);
    assert_non_null(strstr(hr->t->error, want));
    assert_non_null(strstr(hr->t->error, "nn.gap()"));
    assert_non_null(strstr(hr->t->error, "fmnist_cnn_gap"));
    assert_null(strchr(hr->t->error, '\n'));
    assert_int_equal(hr->t->step, 0);
}

static void test_progressive_resizing(void **s)
{
    train_config c;
    base_config(&c, 1);
    add(&c, "progressive_resizing:start=0.5,hold=0.4,finetune=0.2");
    harness hr;
    size_log l = {0};
    assert_int_equal(run_with(&c, log_sizes, &l, &hr), 0);
    assert_int_equal(l.n, 20);
    /* steps 1..8 have progress < 0.4: side 14; steps 17..20 (progress >= 0.8) full size */
    for (int i = 0; i < 8; i++) assert_int_equal(l.side[i], 16);   /* 14 rounded to a multiple of 4 */
    for (int i = 16; i < 20; i++) assert_int_equal(l.side[i], 28);
    for (int i = 8; i < 16; i++) assert_true(l.side[i] >= 16 && l.side[i] <= 28);
    assert_true(l.flops[0] < 0.5 * l.flops[19]);   /* early steps are cheaper */
    close_run(&hr);
    /* A flatten head cannot take smaller images: the run fails with a clear message. */
    base_config(&c, 0);
    add(&c, "progressive_resizing");
    assert_int_equal(run_with(&c, NULL, NULL, &hr), -1);
    expect_fixed_size(&hr, "progressive_resizing");
    close_run(&hr);
}

static int count_rows(trainer *t, trainer_event ev, void *ud)
{
    int *rows = ud;
    if (ev == EV_AFTER_FORWARD && t->step < 40) rows[t->step] = t->logits->shape[0];
    return 0;
}

static void test_selective_backprop(void **s)
{
    train_config c;
    base_config(&c, 0);
    add(&c, "selective_backprop:keep=0.25,start=0.5,stop=0.9");
    harness hr;
    int rows[40] = {0};
    assert_int_equal(run_with(&c, count_rows, rows, &hr), 0);
    for (int i = 0; i < 20; i++) {
        int active = i >= 10 && i < 18;   /* progress i/20 in [0.5, 0.9) */
        assert_int_equal(rows[i], active ? 16 : 64);
    }
    close_run(&hr);
}

/* Batch warm-up: 16 of 64 rows at first, growing linearly to 64 at half the budget, rows chosen at
 * random (not always the first ones). */
typedef struct warm_check { mix_check loaded; int rows[40], shuffled; } warm_check;

static int check_warmup(trainer *t, trainer_event ev, void *ud)
{
    warm_check *w = ud;
    if (ev == EV_BEFORE_FORWARD && t->x.shape[0] < 64)   /* not just the first rows, in order */
        w->shuffled += memcmp(t->labels, w->loaded.labels, (size_t)t->x.shape[0] * sizeof(int)) != 0;
    return count_rows(t, ev, w->rows);
}

static void test_batch_warmup(void **s)
{
    train_config c;
    base_config(&c, 0);
    c.schedule.kind = SCHED_CONSTANT;
    c.optim.lr = 0.05f;
    add(&c, "batch_warmup:start=0.25,ramp=0.5");
    harness hr;
    warm_check w;
    memset(&w, 0, sizeof w);
    assert_int_equal(run_around(&c, keep_batch, &w.loaded, check_warmup, &w, &hr), 0);
    for (int i = 0; i < 20; i++) {
        double f = 0.25 + 0.75 * fmin(1, (i / 20.0) / 0.5);
        assert_int_equal(w.rows[i], (int)ceil(f * 64 - 1e-9));
    }
    assert_true(w.shuffled >= 5);            /* of the 9 partial batches */
    assert_true(hr.t->samples < 20 * 64);   /* steps trained on fewer samples */
    trainer_record r[64];   /* the linear scaling rule: lr in proportion to the rows */
    int n = trainer_series(hr.t, 0, r, 64);
    for (int i = 0; i < n; i++)
        if (!r[i].is_eval) assert_true(fabs(r[i].lr - 0.05 * w.rows[r[i].step - 1] / 64.0) < 1e-6);
    tensor_free(&w.loaded.x);
    close_run(&hr);
}

typedef struct freeze_check { float first[8]; int gemms_early, gemms_late; nn_gemm_shape shapes[64]; } freeze_check;

static int check_freeze(trainer *t, trainer_event ev, void *ud)
{
    freeze_check *f = ud;
    nn_param *w0 = t->model->params[0];
    if (ev == EV_BATCH_START && (t->step == 1 || t->step == t->total_steps - 1)) nn_gemm_record(f->shapes, 64);
    if (ev == EV_AFTER_STEP && (t->step == 2 || t->step == t->total_steps)) {
        *(t->step == 2 ? &f->gemms_early : &f->gemms_late) = nn_gemm_recorded();
        nn_gemm_record(NULL, 0);
    }
    if (ev == EV_AFTER_STEP && w0->frozen) {
        const float *w = host(&w0->w);
        if (!f->first[0] && !f->first[1]) memcpy(f->first, w, sizeof f->first);
        else if (memcmp(f->first, w, sizeof f->first))
            return trainer_fail(t, "a frozen weight changed");
    }
    return 0;
}

/* The step count at the first forward with the first layer frozen. */
static int first_frozen(trainer *t, trainer_event ev, void *ud)
{
    long *at = ud;
    if (ev == EV_BEFORE_FORWARD && *at < 0 && t->model->params[0]->frozen) *at = t->step;
    return 0;
}

static void test_layer_freezing(void **s)
{
    train_config c;
    base_config(&c, 0);
    c.budget = (budget_spec){ BUDGET_EPOCHS, 4 };   /* 16 steps an epoch */
    add(&c, "layer_freezing:start=0,fraction=0.7");
    harness hr;
    freeze_check f = {0};
    assert_int_equal(run_with(&c, check_freeze, &f, &hr), 0);
    assert_true(hr.t->model->params[0]->frozen);
    assert_true(hr.t->model->params[2]->frozen);   /* two of the three linear layers */
    assert_false(hr.t->model->params[4]->frozen);
    assert_true(f.gemms_late < f.gemms_early);      /* backward skips the frozen prefix */
    close_run(&hr);
    /* Under an epoch (12 of 16 steps): freezing begins at start, step 6 of 12 at start = 0.5, not
     * at an epoch end that never comes; and fraction x layers freeze by the end, one here (0.34 x
     * 3 layers), which froze only at 98% of the ramp, past the last step, before. */
    base_config(&c, 0);
    c.budget = (budget_spec){ BUDGET_STEPS, 12 };
    add(&c, "layer_freezing:start=0.5,fraction=0.34");
    long frozen_at = -1;
    assert_int_equal(run_with(&c, first_frozen, &frozen_at, &hr), 0);
    assert_int_equal(frozen_at, 6);
    assert_false(hr.t->model->params[2]->frozen);   /* only the one */
    close_run(&hr);
}

typedef struct ema_check { tensor avg, live; float decay; int evals, restored; } ema_check;

static int check_ema(trainer *t, trainer_event ev, void *ud)
{
    ema_check *e = ud;
    const tensor *w = &t->model->weights;
    size_t bytes = w->n * sizeof(float);
    if (ev == EV_AFTER_STEP) {   /* runs before the plugin's after_step (reverse order) */
        if (e->live.n && memcmp(e->live.data, host(w), bytes) == 0) e->restored++;
        return 0;
    }
    if (ev == EV_BATCH_START && e->live.n) {   /* after an evaluation, the live weights are back */
        if (memcmp(e->live.data, host(w), bytes)) return trainer_fail(t, "live weights not restored");
        e->restored++;
    }
    if (ev == EV_EVAL_START) {   /* after the plugin: the averaged weights are in place */
        e->evals++;
        if (!memcmp(e->live.data, host(w), bytes)) return trainer_fail(t, "evaluated live weights");
    }
    return 0;
}

static int track_live(trainer *t, trainer_event ev, void *ud)
{
    ema_check *e = ud;
    if (ev == EV_AFTER_STEP) tensor_copy(&e->live, &t->model->weights);   /* registered before the host */
    return 0;
}

/* ema on a model with batch norm: the running statistics are averaged with the weights' decay,
 * evaluated with the averaged weights and put back after. */
typedef struct ema_stats { tensor avg, live; float decay; int evals, restored; } ema_stats;

static int ema_stats_track(trainer *t, trainer_event ev, void *ud)   /* after_* after the plugin */
{
    ema_stats *e = ud;
    if (ev != EV_AFTER_STEP) return 0;
    const tensor *st = &t->model->stats;
    tensor_copy(&e->live, st);
    if (!e->avg.n) tensor_copy(&e->avg, st);
    else for (size_t i = 0; i < st->n; i++) e->avg.data[i] += (1 - e->decay) * (e->live.data[i] - e->avg.data[i]);
    return 0;
}

static int ema_stats_check(trainer *t, trainer_event ev, void *ud)   /* before_* after the plugin */
{
    ema_stats *e = ud;
    const tensor *st = &t->model->stats;
    const float *x = host(st);
    if (ev == EV_EVAL_START) {
        for (size_t i = 0; i < st->n; i++)
            if (fabsf(x[i] - e->avg.data[i]) > 1e-4f * (1 + fabsf(e->avg.data[i])))
                return trainer_fail(t, "evaluated stats[%zu] %g, their average is %g", i, x[i], e->avg.data[i]);
        e->evals++;
    }
    if (ev == EV_BATCH_START && e->evals > e->restored) {
        if (memcmp(x, e->live.data, st->n * sizeof *x)) return trainer_fail(t, "live stats not restored");
        e->restored++;
    }
    return 0;
}

static void test_ema(void **s)
{
    train_config c;
    base_config(&c, 0);
    add(&c, "ema:half_life=5");
    harness hr;
    ema_check e = {0};
    /* track_live sees after_* events last: the final live weights */
    assert_int_equal(run_around(&c, track_live, &e, check_ema, &e, &hr), 0);
    assert_int_equal(e.evals, 2);
    assert_true(e.restored >= 1);
    tensor_free(&e.live);
    close_run(&hr);
    base_config(&c, 1);   /* with batch norm */
    add(&c, "ema:half_life=5");
    ema_stats es = { .decay = powf(0.5f, 1 / 5.0f) };
    assert_int_equal(run_around(&c, ema_stats_track, &es, ema_stats_check, &es, &hr), 0);
    assert_true(hr.t->model->stats.n > 0);
    assert_int_equal(es.evals, 2);
    assert_int_equal(es.restored, 1);   /* the second evaluation is the last */
    tensor_free(&es.avg);
    tensor_free(&es.live);
    close_run(&hr);
}

static int check_clip(trainer *t, trainer_event ev, void *ud)
{
    if (ev != EV_BEFORE_STEP) return 0;
    double n = 0;
    const float *g = host(&t->model->grads);
    for (size_t i = 0; i < t->model->grads.n; i++) n += (double)g[i] * g[i];
    if (sqrt(n) > 0.01 * (1 + 1e-4)) return trainer_fail(t, "gradient norm %f above 0.01", sqrt(n));
    (*(int *)ud)++;
    return 0;
}

typedef struct agc_check { tensor before; int checked, clipped; } agc_check;

static int agc_before(trainer *t, trainer_event ev, void *ud)   /* after_backward before the plugin */
{
    if (ev == EV_AFTER_BACKWARD) tensor_copy(&((agc_check *)ud)->before, &t->model->grads);
    return 0;
}

static int agc_after(trainer *t, trainer_event ev, void *ud)   /* after_backward after it */
{
    agc_check *a = ud;
    if (ev != EV_AFTER_BACKWARD) return 0;
    const nn_model *m = t->model;
    const float *g = host(&m->grads), *w = host(&m->weights), *g0 = a->before.data;
    for (int k = 0; k < m->n_params; k++) {
        const nn_param *p = m->params[k];
        size_t off = (size_t)(p->g.data - m->grads.data), units = p->w.ndim >= 2 ? (size_t)p->w.shape[0] : 1;
        size_t per = p->w.n / units;
        for (size_t u = 0; u < units; u++) {
            double gn = 0, gn0 = 0, wn = 0;
            for (size_t i = off + u * per; i < off + (u + 1) * per; i++) {
                gn += (double)g[i] * g[i];
                gn0 += (double)g0[i] * g0[i];
                wn += (double)w[i] * w[i];
            }
            gn = sqrt(gn), gn0 = sqrt(gn0), wn = fmax(sqrt(wn), 1e-3);
            double want = k >= 4 ? gn0 : fmin(gn0, 0.001 * wn), scale = gn0 > 0 ? want / gn0 : 1;
            if (fabs(gn - want) > 1e-4 * want + 1e-12) return trainer_fail(t, "param %d unit %zu: norm %g, want %g", k, u, gn, want);
            for (size_t i = off + u * per; i < off + (u + 1) * per; i++)
                if (fabs(g[i] - scale * g0[i]) > 1e-5 * fabs(g0[i]) + 1e-12) return trainer_fail(t, "param %d unit %zu redirected", k, u);
            a->clipped += want < gn0;
        }
    }
    a->checked++;
    return 0;
}

static void test_grad_clipping(void **s)
{
    train_config c;
    base_config(&c, 0);
    add(&c, "grad_clipping:max_norm=0.01");
    harness hr;
    int checked = 0;
    assert_int_equal(run_with(&c, check_clip, &checked, &hr), 0);
    assert_int_equal(checked, 20);
    close_run(&hr);
    /* adaptive: each row of linear1 and linear2 (and each bias as a whole) at most 0.001 times its
     * weights' norm, scaled, not redirected; the output layer as it was */
    base_config(&c, 0);
    add(&c, "grad_clipping:adaptive=true,clip=0.001");
    agc_check a;
    memset(&a, 0, sizeof a);
    assert_int_equal(run_around(&c, agc_after, &a, agc_before, &a, &hr), 0);
    assert_int_equal(a.checked, 20);
    assert_true(a.clipped > 20 * 32);   /* most of the 64 hidden rows, every step */
    tensor_free(&a.before);
    close_run(&hr);
}

/* Lookahead with k = 3, alpha = 0.5: weights seen after each step's update (fast: a hook after the
 * host sees after_step first) and after the plugin's turn (synced: a hook before the host). */
typedef struct look_check { float init[16], fast[16], synced[16], slow[16]; int syncs, checked; } look_check;

static void first_weights(trainer *t, float *out) { memcpy(out, host(&t->model->weights), 16 * sizeof(float)); }

static int look_fast(trainer *t, trainer_event ev, void *ud)
{
    look_check *l = ud;
    if (ev == EV_BATCH_START && t->step == 0) {
        first_weights(t, l->init);
        memcpy(l->slow, l->init, sizeof l->slow);
    }
    if (ev == EV_AFTER_STEP) first_weights(t, l->fast);
    return 0;
}

static int look_synced(trainer *t, trainer_event ev, void *ud)
{
    look_check *l = ud;
    if (ev != EV_AFTER_STEP) return 0;
    first_weights(t, l->synced);
    for (int i = 0; i < 16; i++) {
        float want = l->fast[i];
        if (t->step % 3 == 0) {   /* slow += 0.5 (fast - slow); training goes on from slow */
            l->slow[i] += 0.5f * (l->fast[i] - l->slow[i]);
            want = l->slow[i];
        }
        if (l->synced[i] != want) return trainer_fail(t, "step %ld weight %d: %g, want %g", t->step, i, l->synced[i], want);
    }
    l->syncs += t->step % 3 == 0;
    l->checked++;
    return 0;
}

static void test_lookahead(void **s)
{
    train_config c;
    base_config(&c, 0);
    add(&c, "lookahead:k=3,alpha=0.5");
    harness hr;
    look_check l = {0};
    /* look_synced sees after_step after the plugin's, look_fast before it */
    assert_int_equal(run_around(&c, look_synced, &l, look_fast, &l, &hr), 0);
    assert_int_equal(l.checked, 20);
    assert_int_equal(l.syncs, 6);
    assert_true(memcmp(l.init, l.synced, sizeof l.init));   /* it trained */
    close_run(&hr);
}

static int count_echoes(trainer *t, trainer_event ev, void *ud)
{
    if (ev == EV_BEFORE_FORWARD) ((int *)ud)[t->echoed]++;
    return 0;
}

static void test_data_echoing(void **s)
{
    train_config c;
    base_config(&c, 0);
    add(&c, "data_echoing:factor=4");
    harness hr;
    int n[2] = {0};
    assert_int_equal(run_with(&c, count_echoes, n, &hr), 0);
    assert_int_equal(n[0], 5);    /* 20 steps from 5 loaded batches */
    assert_int_equal(n[1], 15);
    close_run(&hr);
}

/* Schedules: the lr of each step's record against the formula at that step's progress. */
static void schedule_case(const char *plugin, double (*want)(double progress))
{
    train_config c;
    base_config(&c, 0);
    c.schedule.kind = SCHED_CONSTANT;
    c.optim.lr = 0.01f;
    add(&c, plugin);
    harness hr;
    assert_int_equal(run_with(&c, NULL, NULL, &hr), 0);
    trainer_record r[64];
    int n = trainer_series(hr.t, 0, r, 64);
    for (int i = 0; i < n; i++) {
        if (r[i].is_eval) continue;
        double p = (double)(r[i].step - 1) / 20, w = 0.01 * want(p);
        if (fabs(r[i].lr - w) > 1e-6) print_message("%s step %ld: lr %g want %g\n", plugin, r[i].step, r[i].lr, w);
        assert_true(fabs(r[i].lr - w) <= 1e-6);
    }
    close_run(&hr);
}

static double want_budget(double p) { return 1 - p; }
static double want_warmup(double p) { return p < 0.25 ? p / 0.25 : 1; }
static double want_one_cycle(double p)   /* peak 5, from 5 / 10 */
{
    return p < 0.25 ? 0.5 + 4.5 * p / 0.25 : 5 * 0.5 * (1 + cos(M_PI * (p - 0.25) / 0.75));
}
static double want_one_cycle_default(double p)   /* peak 1 (the recipe's lr), from 1 / 10, 30% up */
{
    return p < 0.3 ? 0.1 + 0.9 * p / 0.3 : 0.5 * (1 + cos(M_PI * (p - 0.3) / 0.7));
}

static void test_schedules(void **s)
{
    schedule_case("budget_schedule", want_budget);
    schedule_case("warmup:fraction=0.25", want_warmup);
    schedule_case("one_cycle:peak=5,pct_up=0.25", want_one_cycle);
    schedule_case("one_cycle:pct_up=0.3", want_one_cycle_default);
}

static void test_sam_costs_a_pass(void **s)
{
    train_config c;
    base_config(&c, 0);
    add(&c, "sam:rho=0.05,every=1");
    harness hr;
    size_log l = {0};
    assert_int_equal(run_with(&c, log_sizes, &l, &hr), 0);
    close_run(&hr);
    train_config plain;
    base_config(&plain, 0);
    size_log l0 = {0};
    assert_int_equal(run_with(&plain, log_sizes, &l0, &hr), 0);
    assert_true(l.flops[3] > 1.9 * l0.flops[3]);   /* a second forward and backward */
    close_run(&hr);
}

/* Mean squared singular value of a (rows, cols) gradient: its squared norm over min(rows, cols). */
static double mean_sq_singular(const nn_param *p)
{
    const float *g = host(&p->g);
    int rows = p->g.shape[0], cols = (int)(p->g.n / (size_t)rows);
    double ss = 0;
    for (size_t i = 0; i < p->g.n; i++) ss += (double)g[i] * g[i];
    return ss / (rows < cols ? rows : cols);
}

/* Muon on the MLP: before each step the hidden matrices' gradients are orthogonalised (singular
 * values near 1), the decay group steps at muon's lr without momentum. */
static int check_muon(trainer *t, trainer_event ev, void *ud)
{
    if (ev != EV_BEFORE_STEP) return 0;
    const optim_group *d = &t->opt.groups[OPTIM_GROUP_DECAY], *nd = &t->opt.groups[OPTIM_GROUP_NO_DECAY];
    if (d->momentum != 0 || fabsf(d->lr - nd->lr * 0.02f / 0.1f) > 1e-7f)
        return trainer_fail(t, "decay group lr %g momentum %g", d->lr, d->momentum);
    for (int i = 0; i < 4; i += 2) {   /* params 0 and 2: the (32, 784) and (32, 32) weights */
        double ms = mean_sq_singular(t->model->params[i]);
        if (ms < 0.4 || ms > 1.3) return trainer_fail(t, "%s: mean squared singular value %g", t->model->params[i]->name, ms);
    }
    (*(int *)ud)++;
    return 0;
}

static layer_spec head_only[] = { { .kind = LAYER_FLATTEN }, { .kind = LAYER_LINEAR, .out = 10, .bias = 1 } };

static void test_muon(void **s)
{
    train_config c;
    base_config(&c, 0);
    c.optim.lr = 0.1f;
    add(&c, "muon");
    harness hr;
    int checked = 0;
    assert_int_equal(run_with(&c, check_muon, &checked, &hr), 0);
    assert_int_equal(checked, 20);
    close_run(&hr);
    /* The output layer keeps the recipe's Nesterov SGD with weight decay: a model that is only an
     * output layer trains as without muon, to rounding. */
    tensor plain = {0};
    for (int with = 0; with < 2; with++) {
        base_config(&c, 0);
        c.layers = head_only;
        c.n_layers = 2;
        c.optim = (optim_spec){ .kind = OPTIM_SGD, .lr = 0.1f, .momentum = 0.9f, .nesterov = 1, .weight_decay = 5e-3f };
        if (with) add(&c, "muon:lr=0.03");
        assert_int_equal(run_with(&c, NULL, NULL, &hr), 0);
        if (!with) tensor_copy(&plain, &hr.t->model->weights);
        else {
            const float *w = host(&hr.t->model->weights);
            for (size_t i = 0; i < plain.n; i++) assert_float_equal(w[i], plain.data[i], 1e-5);
        }
        close_run(&hr);
    }
    tensor_free(&plain);
    base_config(&c, 0);
    c.optim.kind = OPTIM_ADAMW;
    add(&c, "muon");
    assert_int_equal(run_with(&c, NULL, NULL, &hr), -1);
    assert_non_null(strstr(hr.t->error, "uses adamw"));
    close_run(&hr);
}

/* Pruning with sparsity 0.5 reached at half the budget, masks every 3 steps: each matrix's zeros
 * never fall, reach floor(n / 2) exactly and stay there; biases are left alone. */
typedef struct prune_check { size_t zeros[3]; int at_final; } prune_check;

static int check_pruning(trainer *t, trainer_event ev, void *ud)
{
    prune_check *c = ud;
    if (ev != EV_AFTER_STEP) return 0;   /* registered before the host: after the plugin's turn */
    for (int i = 0, k = 0; i < t->model->n_params; i++) {
        const nn_param *p = t->model->params[i];
        const float *w = host(&p->w);
        size_t z = 0;
        for (size_t j = 0; j < p->w.n; j++) z += w[j] == 0;
        if (p->w.ndim < 2) {
            if (z == p->w.n && t->step > 1) return trainer_fail(t, "%s was pruned", p->name);
            continue;
        }
        if (z < c->zeros[k]) return trainer_fail(t, "%s: %zu zeros after %zu", p->name, z, c->zeros[k]);
        if (t->progress >= 0.5 && z != p->w.n / 2) return trainer_fail(t, "%s: %zu zeros of %zu", p->name, z, p->w.n);
        c->zeros[k++] = z;
    }
    c->at_final += t->progress >= 0.5;
    return 0;
}

static int no_hook(trainer *t, trainer_event ev, void *ud) { return 0; }

static void test_pruning(void **s)
{
    train_config c;
    base_config(&c, 0);
    add(&c, "pruning:sparsity=0.5,start=0,stop=0.5,every=3");
    harness hr;
    prune_check p = { .at_final = 0 };
    assert_int_equal(run_around(&c, check_pruning, &p, no_hook, NULL, &hr), 0);
    assert_int_equal(p.at_final, 11);   /* steps 10..20: after_step sees the progress with its step */
    assert_true(p.zeros[0] == 784 * 32 / 2 && p.zeros[2] == 10 * 32 / 2);
    char names[8][32];
    int n = trainer_metric_names(hr.t, names, 8);
    assert_true(n == 1 && !strcmp(names[0], "sparsity"));
    close_run(&hr);
}

/* Low rank on the MLP: the (32, 784) layer becomes (8, 784) without bias then (32, 8), balanced in
 * norm at the start; their gradients are halved, every other gradient is left as it is. */
typedef struct rank_check { tensor grads; int checked; double norm_a, norm_b; } rank_check;

static int rank_before(trainer *t, trainer_event ev, void *ud)   /* after_* before the plugin */
{
    if (ev == EV_AFTER_BACKWARD) tensor_copy(&((rank_check *)ud)->grads, &t->model->grads);
    return 0;
}

static int rank_after(trainer *t, trainer_event ev, void *ud)
{
    rank_check *r = ud;
    if (ev == EV_BATCH_START && t->step == 0) {
        const tensor *a = &t->model->params[0]->w, *b = &t->model->params[1]->w;
        const float *ha = host(a), *hb = host(b);
        for (size_t i = 0; i < a->n; i++) r->norm_a += (double)ha[i] * ha[i];
        for (size_t i = 0; i < b->n; i++) r->norm_b += (double)hb[i] * hb[i];
    }
    if (ev != EV_AFTER_BACKWARD) return 0;
    const float *g = host(&t->model->grads);
    size_t factors = 784 * 8 + 8 * 32;
    for (size_t i = 0; i < r->grads.n; i++) {
        float want = r->grads.data[i] * (i < factors ? 0.5f : 1.0f);
        if (g[i] != want) return trainer_fail(t, "gradient %zu: %g, want %g", i, g[i], want);
    }
    r->checked++;
    return 0;
}

static void test_low_rank(void **s)
{
    train_config c;
    base_config(&c, 0);
    add(&c, "low_rank");
    harness hr;
    rank_check r = {0};
    assert_int_equal(run_around(&c, rank_after, &r, rank_before, &r, &hr), 0);
    nn_model *m = hr.t->model;
    assert_int_equal(m->n_layers, 7);
    assert_true(m->layers[1].spec.kind == LAYER_LINEAR && m->layers[1].spec.out == 8 && !m->layers[1].spec.bias);
    assert_true(m->layers[2].spec.kind == LAYER_LINEAR && m->layers[2].spec.out == 32);
    assert_int_equal(nn_param_count(m), 784 * 8 + 8 * 32 + 32 + 32 * 32 + 32 + 32 * 10 + 10);
    assert_int_equal(r.checked, 20);
    assert_float_equal(sqrt(r.norm_a), sqrt(r.norm_b), 1e-3 * sqrt(r.norm_b));
    tensor_free(&r.grads);
    close_run(&hr);
    /* nothing to factor (a conv net whose only linear layer is its output): said, not ignored */
    base_config(&c, 1);
    add(&c, "low_rank");
    assert_int_equal(run_with(&c, NULL, NULL, &hr), -1);
    assert_non_null(strstr(hr.t->error, "no hidden linear layer"));
    close_run(&hr);
}

/* SWA from half the budget (bn_batches = 0): each evaluation sees the mean of the weights and
 * running statistics after every step since then; training goes on from the live weights. */
typedef struct swa_check { double *w, *st; tensor live; int n, evals, restored; } swa_check;

static int swa_track(trainer *t, trainer_event ev, void *ud)   /* after_* after the plugin */
{
    swa_check *c = ud;
    const nn_model *m = t->model;
    if (ev == EV_AFTER_STEP) {
        tensor_copy(&c->live, &m->weights);
        if (t->progress < 0.5) return 0;
        const float *st = host(&m->stats);
        for (size_t i = 0; i < m->weights.n; i++) c->w[i] += c->live.data[i];
        for (size_t i = 0; i < m->stats.n; i++) c->st[i] += st[i];
        c->n++;
    }
    if (ev == EV_EVAL_END) {
        if (memcmp(host(&m->weights), c->live.data, c->live.n * sizeof(float))) return trainer_fail(t, "live weights not back");
        c->restored++;
    }
    return 0;
}

static int swa_eval(trainer *t, trainer_event ev, void *ud)   /* before_* after the plugin */
{
    swa_check *c = ud;
    if (ev != EV_EVAL_START) return 0;
    const nn_model *m = t->model;
    const float *w = host(&m->weights), *st = host(&m->stats);
    if (!c->n) {   /* before averaging begins: the live weights */
        if (memcmp(w, c->live.data, c->live.n * sizeof(float))) return trainer_fail(t, "evaluated other weights");
        c->evals++;
        return 0;
    }
    for (size_t i = 0; i < m->weights.n; i++)
        if (fabs(w[i] - c->w[i] / c->n) > 1e-5 * (1 + fabs(w[i]))) return trainer_fail(t, "weight %zu: %g, want %g", i, w[i], c->w[i] / c->n);
    for (size_t i = 0; i < m->stats.n; i++)
        if (fabs(st[i] - c->st[i] / c->n) > 1e-5 * (1 + fabs(st[i]))) return trainer_fail(t, "statistic %zu: %g, want %g", i, st[i], c->st[i] / c->n);
    c->evals++;
    return 0;
}

static void test_swa(void **s)
{
    train_config c;
    base_config(&c, 1);
    add(&c, "swa:start=0.5,bn_batches=0");
    harness hr;
    swa_check w = { .w = calloc(20000, sizeof(double)), .st = calloc(1000, sizeof(double)) };
    assert_int_equal(run_around(&c, swa_track, &w, swa_eval, &w, &hr), 0);
    assert_true(hr.t->model->stats.n == 16 && hr.t->model->weights.n < 20000);
    assert_int_equal(w.evals, 2);     /* step 10 (the live weights, one of the mean) and step 20 (the mean of eleven) */
    assert_int_equal(w.n, 11);        /* after_step of steps 10..20 sees progress >= 0.5 */
    assert_int_equal(w.restored, 2);
    free(w.w);
    free(w.st);
    tensor_free(&w.live);
    close_run(&hr);
}

/* SWA's default recomputes the batch-norm statistics for the averaged weights (Izmailov et al.):
 * 32 batches ask more than the 16 of an epoch, so all 1024 examples go forward in training mode,
 * and the running mean of the one batch norm is the mean of conv1's outputs over the training
 * set under the averaged weights. That pass counts on the training clock. */
typedef struct refresh_check { double clock; int checked; float worst; tensor x; data_batch b; } refresh_check;

static int refresh_clock(trainer *t, trainer_event ev, void *ud)   /* before the plugin */
{
    if (ev == EV_EVAL_START) ((refresh_check *)ud)->clock = t->train_seconds;
    return 0;
}

static int refresh_means(trainer *t, trainer_event ev, void *ud)   /* after the plugin */
{
    refresh_check *r = ud;
    if (ev != EV_EVAL_START || t->step < 20) return 0;   /* at step 10 nothing is averaged yet */
    if (!(t->train_seconds > r->clock)) return trainer_fail(t, "the refresh was not on the clock");
    float got[8];
    memcpy(got, host(&t->model->stats), sizeof got);   /* bn1's running mean, before this forward */
    double sum[8] = {0};
    int idx[256];
    for (int start = 0; start < 1024; start += 256) {
        for (int i = 0; i < 256; i++) idx[i] = start + i;
        data_gather(t->data, &t->data->train, idx, 256, &r->b);
        tensor view = {0};
        tensor_view(&view, r->b.x, 4, (int[]){ 256, r->b.h, r->b.w, r->b.c });
        r->x.device = t->model->device;
        tensor_copy(&r->x, &view);
        if (!nn_forward(t->model, &r->x, 0)) return trainer_fail(t, "%s", t->model->err);
        const tensor *conv = &t->model->layers[0].out;
        const float *o = host(conv);
        for (size_t i = 0; i < conv->n; i++) sum[i % 8] += o[i];
    }
    for (int k = 0; k < 8; k++) {
        double want = sum[k] / (1024.0 * 28 * 28);
        float err = (float)(fabs(got[k] - want) / (1e-3 + fabs(want)));
        if (err > r->worst) r->worst = err;
    }
    r->checked++;
    return 0;
}

static void expect_failure(const char *event, const char *body, const char *needle, double max_s);

static void test_swa_refresh(void **s)
{
    train_config c;
    base_config(&c, 1);
    add(&c, "swa:start=0.5");
    harness hr;
    static refresh_check r;
    memset(&r, 0, sizeof r);
    assert_int_equal(run_around(&c, refresh_clock, &r, refresh_means, &r, &hr), 0);
    assert_int_equal(r.checked, 1);   /* the evaluation at step 20 */
    if (r.worst > 1e-3f) print_message("worst relative error %g\n", r.worst);
    assert_true(r.worst <= 1e-3f);
    assert_true(hr.t->model->layers[1].spec.momentum == 0.1f && hr.t->model->layers[1].spec.ghost == 0);
    tensor_free(&r.x);
    data_batch_free(&r.b);
    close_run(&hr);
    expect_failure("after_loss", "ctx.model:refresh_stats(1)", "not between a step's forward and its backward", 5);
}

/* ---- the sandbox ---- */

static const char *plugin_src(const char *event, const char *body)
{
    static char buf[4096];
    snprintf(buf, sizeof buf, "return hasten.plugin { name = 'bad', title = 'Bad', summary = 'misbehaves', "
             "reference = 'none', taxonomy = { component = 'data', action = 'remove', when = 'once' }, "
             "%s = function(ctx, p) %s end }", event, body);
    return buf;
}

static void expect_failure(const char *event, const char *body, const char *needle, double max_s)
{
    char err[300];
    assert_int_equal(plug_catalog_add_source(&cat, "bad", plugin_src(event, body), err, sizeof err), 0);
    train_config c;
    base_config(&c, 0);
    add(&c, "bad");
    harness hr;
    double t0 = trainer_now();
    assert_int_equal(run_with(&c, NULL, NULL, &hr), -1);
    double dt = trainer_now() - t0;
    if (!strstr(hr.t->error, needle)) print_message("error: %s\n", hr.t->error);
    assert_non_null(strstr(hr.t->error, "plugin bad at "));
    assert_non_null(strstr(hr.t->error, event));
    assert_non_null(strstr(hr.t->error, needle));
    assert_true(dt < max_s);
    assert_true(hr.t->n_rec >= 0);   /* the trainer is intact and its series readable */
    close_run(&hr);
}

/* Runs c (base_config'd by the caller) with plugin "bad" added, whose handler at event is body,
 * and expects it to finish; the caller reads hr and closes it. */
static void expect_run(train_config *c, const char *event, const char *body, harness *hr)
{
    char err[300];
    assert_int_equal(plug_catalog_add_source(&cat, "bad", plugin_src(event, body), err, sizeof err), 0);
    add(c, "bad");
    int rc = run_with(c, NULL, NULL, hr);
    if (rc) print_message("%s\n", hr->t->error);
    assert_int_equal(rc, 0);
}

static void test_sandbox(void **s)
{
    expect_failure("batch_start", "error('boom')", "boom", 5);
    expect_failure("after_step", "local x = nil; return x.y", "attempt to index", 5);
    expect_failure("batch_start", "while true do end", "endless loop", 2);
    expect_failure("batch_start", "pcall(function() while true do end end) while true do end", "endless loop", 2);
    expect_failure("fit_start", "local s = string.rep('x', 1 << 30)", "memory cap", 2);
    expect_failure("fit_start", "os.execute('true')", "os", 5);
    expect_failure("fit_start", "io.open('/tmp/x', 'w')", "io", 5);
    expect_failure("fit_start", "hasten.zeros(1 << 14, 1 << 14)", "memory cap", 2);
    expect_failure("batch_start", "error({})", "error object is a table, not a message", 5);
}

/* The mistakes a new plugin author makes, each one line saying what to write instead (Lua alone
 * says "attempt to call a nil value", returns nil, or logs an empty line). */
static void test_author_mistakes(void **s)
{
    expect_failure("after_backward", "ctx.model.grads:center_row_()",
                   "a tensor has no method 'center_row_': did you mean 'center_rows_'?", 5);
    expect_failure("after_backward", "ctx.model.grads:frobnicate()", "a tensor has no method 'frobnicate'", 5);
    expect_failure("after_backward", "local x = ctx.model.grads[1]", "a tensor is not indexed with t[1]: t:get(i)", 5);
    expect_failure("after_backward", "ctx.model.grads[1] = 0", "not assigned with t[1] = v", 5);
    expect_failure("after_backward", "ctx.model.grads:get(0)", "t:get(0): index out of range 1..", 5);
    expect_failure("after_loss", "local m = ctx.lossses:mean()", "ctx has no field 'lossses': did you mean 'losses'?", 5);
    expect_failure("batch_start", "ctx.batch:cutuot(4)", "ctx.batch has no field 'cutuot': did you mean 'cutout'?", 5);
    expect_failure("before_step", "local x = ctx.optim.lrr", "ctx.optim has no field 'lrr': did you mean 'lr'?", 5);
    expect_failure("batch_start", "ctx.log('x')", "ctx.log(...) needs a colon: ctx:log(...)", 5);
    expect_failure("batch_start", "ctx.rng.uniform(0, 1)", "ctx.rng.uniform(...) needs a colon", 5);
    expect_failure("batch_start", "ctx:metric('m', 0 / 0)", "ctx:metric('m', ", 5);
    expect_failure("batch_start", "ctx:metric('m', 1 / 0)", "the value must be a finite number", 5);
    /* ctx is shared by a run's plugins: a value kept there is refused, with where it goes */
    expect_failure("batch_start", "ctx.seen = (rawget(ctx, 'seen') or 0) + 1",
                   "ctx.seen cannot be set: ctx belongs to the run and all its plugins; keep this plugin's own "
                   "values in p (p.seen = ...)", 5);
    expect_failure("batch_start", "ctx.batch.mask = 1", "ctx.batch.mask cannot be set", 5);
}

/* Tensors a plugin drops are collected in time, however little Lua memory they seem to take: 20
 * steps of 64 MiB each (five times the memory cap in all) run; kept, the fourth step's is refused. */
static void test_sandbox_tensor_memory(void **s)
{
    train_config c;
    base_config(&c, 0);
    harness hr;
    expect_run(&c, "after_step", "for i = 1, 4 do local t = hasten.zeros(1 << 22); t:fill_(1) end", &hr);
    assert_int_equal(hr.t->step, 20);
    close_run(&hr);
    expect_failure("after_step", "kept = kept or {}; for i = 1, 4 do kept[#kept + 1] = hasten.zeros(1 << 22) end",
                   "memory cap", 5);
}

/* Every gradient of step 0 as the backward pass left it (before[]) and as the plugins leave it. */
typedef struct grad_pair { tensor before, after; } grad_pair;

static int grads_before(trainer *t, trainer_event ev, void *ud)   /* after_* before the plugins */
{
    if (ev == EV_AFTER_BACKWARD && t->step == 0) tensor_copy(&((grad_pair *)ud)->before, &t->model->grads);
    return 0;
}

static int grads_after(trainer *t, trainer_event ev, void *ud)   /* after_* after the plugins */
{
    if (ev == EV_AFTER_BACKWARD && t->step == 0) tensor_copy(&((grad_pair *)ud)->after, &t->model->grads);
    return 0;
}

/* Gradient centralization: each conv and linear weight gradient (conv_only: conv only) loses its
 * row means, exactly; every other gradient is untouched. */
static void test_grad_centralization(void **s)
{
    for (int conv_only = 0; conv_only < 2; conv_only++) {
        train_config c;
        base_config(&c, 1);
        c.budget = (budget_spec){ BUDGET_STEPS, 2 };
        add(&c, conv_only ? "grad_centralization:conv_only=true" : "grad_centralization");
        harness hr;
        grad_pair g = { { .device = DEVICE_CPU }, { .device = DEVICE_CPU } };
        assert_int_equal(run_around(&c, grads_after, &g, grads_before, &g, &hr), 0);
        const nn_model *m = hr.t->model;
        int centred = 0;
        for (int i = 0; i < m->n_params; i++) {
            const tensor *w = &m->params[i]->w;
            size_t at = (size_t)(m->params[i]->w.data - m->weights.data);   /* its place in the flat grads */
            int want = w->ndim == 4 || (w->ndim == 2 && !conv_only), units = want ? w->shape[0] : 1;
            size_t len = w->n / (size_t)units;   /* a unit's fan-in; a vector is one unit, kept */
            centred += want;
            for (int r = 0; r < units; r++) {
                const float *b = g.before.data + at + r * len, *a = g.after.data + at + r * len;
                double mean = 0;
                for (size_t j = 0; want && j < len; j++) mean += b[j] / (double)len;
                for (size_t j = 0; j < len; j++) assert_float_equal(a[j], b[j] - mean, 1e-6);
            }
        }
        assert_int_equal(centred, conv_only ? 2 : 3);   /* two convs and the linear head */
        tensor_free(&g.before);
        tensor_free(&g.after);
        close_run(&hr);
    }
}

/* The first step's gradient norm, after the backward pass. */
static int first_grad_norm(trainer *t, trainer_event ev, void *ud)
{
    if (ev == EV_AFTER_BACKWARD && t->step == 0) *(double *)ud = tensor_norm(&t->model->grads);
    return 0;
}

/* The first step's gradient norm with an inline plugin running body at event. */
static double grad_norm_with(const char *event, const char *body)
{
    char err[300];
    assert_int_equal(plug_catalog_add_source(&cat, "bad", plugin_src(event, body), err, sizeof err), 0);
    train_config c;
    base_config(&c, 0);
    c.budget = (budget_spec){ BUDGET_STEPS, 1 };
    add(&c, "bad");
    harness hr;
    double norm = -1;
    int rc = run_with(&c, first_grad_norm, &norm, &hr);
    if (rc) print_message("%s\n", hr.t->error);
    assert_int_equal(rc, 0);
    close_run(&hr);
    return norm;
}

/* Per-sample weights set at after_loss, from the losses, weigh the backward pass that follows
 * (loss weighting, DESIGN.md); they used to be read before after_loss only, so this was a no-op. */
static void test_after_loss_weights(void **s)
{
    double one = grad_norm_with("after_loss", "ctx.batch.weights:fill_(1)");
    double two = grad_norm_with("after_loss", "ctx.batch.weights:fill_(2)");
    double none = grad_norm_with("after_loss", "ctx.batch.weights:fill_(0)");
    print_message("gradient norm: weights 1 %g, 2 %g, 0 %g\n", one, two, none);
    assert_true(one > 0);
    assert_true(fabs(two - 2 * one) < 1e-4 * one);
    assert_true(none == 0);
    /* the losses themselves are unweighted: a weight that follows them is (l / mean l) */
    double by_loss = grad_norm_with("after_loss", "ctx.batch.weights:copy_(ctx.losses):mul_(1 / ctx.losses:mean())");
    assert_true(by_loss > 0 && fabs(by_loss - one) > 1e-3 * one);
    /* targets changed there count too; a handler that changes neither leaves the step as it was */
    double smoothed = grad_norm_with("after_loss", "ctx.batch.targets:smooth_(0.5)");
    assert_true(smoothed > 0 && fabs(smoothed - one) > 1e-3 * one);
    assert_true(grad_norm_with("after_loss", "local m = ctx.losses:mean()") == one);
}

/* The first step's loss, and whether the model did its products in bf16 then. */
typedef struct first_loss { float loss; int bf16; } first_loss;

static int keep_first_loss(trainer *t, trainer_event ev, void *ud)
{
    first_loss *f = ud;
    if (ev == EV_AFTER_LOSS && t->step == 0) *f = (first_loss){ t->batch_loss, t->model->low_precision };
    return 0;
}

/* low_precision on CUDA: bf16 products during the run, off again at its end, and a first loss
 * that moves by bf16's rounding only. On the CPU the run stops at fit_start and says why. */
static void test_low_precision(void **s)
{
    train_config c;
    base_config(&c, 0);
    add(&c, "low_precision");
    harness hr;
    first_loss bf = {0}, fp = {0};
    int rc = run_with(&c, keep_first_loss, &bf, &hr);
    if (dev == DEVICE_CPU) {
        assert_int_equal(rc, -1);
        assert_non_null(strstr(hr.t->error, "plugin low_precision at fit_start"));
        assert_non_null(strstr(hr.t->error, "CUDA device"));
        close_run(&hr);
        return;
    }
    if (rc) print_message("%s\n", hr.t->error);
    assert_int_equal(rc, 0);
    assert_true(bf.bf16);
    assert_false(hr.t->model->low_precision);
    close_run(&hr);
    base_config(&c, 0);
    assert_int_equal(run_with(&c, keep_first_loss, &fp, &hr), 0);
    close_run(&hr);
    print_message("first loss: fp32 %.7f, bf16 %.7f\n", fp.loss, bf.loss);
    assert_false(fp.bf16);
    assert_true(bf.loss != fp.loss);
    assert_true(fabsf(bf.loss - fp.loss) < 0.02f * fp.loss);
}

static void capture_log(void *ud, const char *plugin, const char *line)
{
    snprintf(ud, 128, "%s", line);
}

/* The ctx API as documented, asserted from Lua: a failed assert fails the run. */
static void test_ctx_api(void **s)
{
    static const char body[] =
        "local l = ctx.model:layer(2) "
        "assert(l.name == 'linear1' and l.kind == 'linear' and l.params == 2 and not l.frozen) "
        "assert(l.tensors[1].value:size() == 784 * 32 and l.tensors[2].grad:size() == 32) "
        "assert(ctx.model:layers() == 6 and ctx.model:layer('relu1').index == 3) "
        "assert(#ctx.model.weights == ctx.model.grads:size()) "
        "assert(ctx.batch:size() == 64 and select(2, ctx.batch:dims()) == 28) "
        "assert(ctx.classes == 10 and ctx.optim.base_lr > 0.0499 and ctx.optim.base_lr < 0.0501) "
        "ctx.optim:set('no_decay', 'lr_scale', 0.5) assert(ctx.optim:get('no_decay', 'lr_scale') == 0.5) "
        "local z = hasten.zeros(3, 4) assert(z:size() == 12 and z:sum() == 0) "
        "z:fill_(2):add_(1):mul_(2) assert(z:mean() == 6 and z:max() == 6) "
        "local e = hasten.zeros(4):fill_(2):exp_(-0.5):pow_(2) assert(math.abs(e:get(1) - math.exp(-2)) < 1e-6) "
        "assert(math.abs(hasten.zeros(3):fill_(1):exp_():get(3) - math.exp(1)) < 1e-5) "
        "local cr = hasten.zeros(2, 3):fill_(5):center_rows_() assert(cr:max() == 0 and cr:min() == 0) "
        "local t = ctx.rng:perm(5) assert(t:sum() == 10) "
        "local k = z:clone():add_(hasten.zeros(3, 4), 1):topk(2) assert(k:size() == 2) "
        "local lab = ctx.batch:labels() assert(lab:size() == 64 and lab:min() >= 0 and lab:max() <= 9) "
        "ctx.batch:select(lab:topk(8)) assert(ctx.batch:size() == 8) "
        "assert(not pcall(function() ctx.optim.lr = -1 end)) "
        "local ok, e = pcall(function() ctx.optim.kind = 'adamw' end) assert(not ok and e:find('optim.kind cannot be set'), e) "
        "ctx:log('api', 'ok', 2)";
    char err[300];
    int added = plug_catalog_add_source(&cat, "api", plugin_src("batch_start", body), err, sizeof err);
    if (added) print_message("%s\n", err);
    assert_int_equal(added, 0);
    train_config c;
    base_config(&c, 0);
    c.budget = (budget_spec){ BUDGET_STEPS, 2 };
    add(&c, "api");
    snprintf(c.plugins[0].name, sizeof c.plugins[0].name, "bad");   /* plugin_src names it 'bad' */
    harness hr;
    char logged[128] = "";
    hr.t = trainer_new(&c, &ds, hr.err, sizeof hr.err);
    hr.h = plug_host_new(hr.t, &cat, &c, capture_log, logged, hr.err, sizeof hr.err);
    assert_non_null(hr.h);
    int rc = trainer_run(hr.t);
    if (rc) print_message("%s\n", hr.t->error);
    assert_int_equal(rc, 0);
    assert_string_equal(logged, "api ok 2");   /* the arguments, and nothing else */
    /* lr_scale 0.5 on no_decay: its lr is half the decay group's */
    assert_true(fabsf(hr.t->opt.groups[1].lr - 0.5f * hr.t->opt.groups[0].lr) < 1e-7f);
    close_run(&hr);
    /* tostring: the batch has no dimensions before its first step; the MLP no batch-norm stats */
    static const char shapes[] =
        "assert(tostring(ctx.batch.inputs) == 'tensor()', tostring(ctx.batch.inputs)) "
        "assert(tostring(hasten.zeros(2, 3)) == 'tensor(2x3)' and tostring(ctx.model.stats) == 'tensor(0)') "
        "assert(tostring(ctx.model:layer(2).tensors[1].value) == 'tensor(32x784)') ";
    assert_int_equal(plug_catalog_add_source(&cat, "bad", plugin_src("fit_start", shapes), err, sizeof err), 0);
    rc = run_with(&c, NULL, NULL, &hr);
    if (rc) print_message("%s\n", hr.t->error);
    assert_int_equal(rc, 0);
    close_run(&hr);
}

/* At after_step ctx.step already counts the step, so the clock and the budget spent count it too. */
static void test_ctx_after_step(void **s)
{
    static const char body[] =
        "assert(math.abs(ctx.progress - ctx.step / 4) < 1e-9, 'progress ' .. ctx.progress .. ' at step ' .. ctx.step) "
        "assert(ctx.elapsed > (p.last or 0), 'elapsed ' .. ctx.elapsed .. ' at step ' .. ctx.step) "
        "p.last = ctx.elapsed";
    train_config c;
    base_config(&c, 0);
    c.budget = (budget_spec){ BUDGET_STEPS, 4 };
    harness hr;
    expect_run(&c, "after_step", body, &hr);
    close_run(&hr);
}

/* Model surgery at fit_start: a layer inserted, weights views follow the rebuilt model, old
 * layer tensors refuse to be used, and a layer that breaks the model is a clear error. */
static void test_insert_layer(void **s)
{
    static const char body[] =
        "local old = ctx.model:layer(2).tensors[1].value "
        "ctx.model:insert(3, 'dropout', { p = 0.25 }) "
        "assert(ctx.model:layers() == 7 and ctx.model:layer(3).kind == 'dropout') "
        "assert(ctx.model.weights:size() == 784 * 32 + 32 + 32 * 32 + 32 + 32 * 10 + 10) "
        "assert(not pcall(function() return old:sum() end)) "
        "ctx.model.weights:mul_(1) ";
    train_config c;
    base_config(&c, 0);
    c.budget = (budget_spec){ BUDGET_STEPS, 3 };
    harness hr;
    expect_run(&c, "fit_start", body, &hr);
    assert_int_equal(hr.t->model->n_layers, 7);
    assert_int_equal(hr.t->model->layers[2].spec.kind, LAYER_DROPOUT);
    close_run(&hr);
    expect_failure("fit_start", "ctx.model:insert(7, 'linear', { out = 3 })", "ends with 3 outputs", 5);
    expect_failure("batch_start", "ctx.model:insert(1, 'relu')", "fit_start", 5);
    /* bias as in recipes (a boolean), and a bad option named */
    static const char no_bias[] =
        "ctx.model:insert(2, 'linear', { out = 16, bias = false }) "
        "local l = ctx.model:layer(2) assert(l.kind == 'linear' and l.params == 1 and #l.tensors == 1) "
        "ctx.model:insert(2, 'linear', { out = 16.0, bias = true }) assert(ctx.model:layer(2).params == 2) ";
    base_config(&c, 0);
    c.budget = (budget_spec){ BUDGET_STEPS, 3 };
    expect_run(&c, "fit_start", no_bias, &hr);
    close_run(&hr);
    expect_failure("fit_start", "ctx.model:insert(2, 'linear', { out = 16, bias = 'no' })",
                   "model:insert: bias must be true or false, got no", 5);
    expect_failure("fit_start", "ctx.model:insert(2, 'linear', { out = true })",
                   "model:insert: out must be an integer, got true", 5);
    expect_failure("fit_start", "ctx.model:insert(2, 'dropout', { p = '0.1x' })",
                   "model:insert: p must be a number, got 0.1x", 5);
}

/* Alternating flips through the plugin: each example's flip flag alternates epoch to epoch. */
static int record_flips(trainer *t, trainer_event ev, void *ud)
{
    signed char (*flip)[1024] = ud;
    if (ev != EV_BATCH_START || t->echoed) return 0;
    const data_batch *b = t->cur;
    for (int i = 0; i < b->n; i++) flip[b->epoch][b->idx[i]] = (signed char)b->aug[3 * i + 2];
    return 0;
}

static void test_alternating_flip(void **s)
{
    train_config c;
    base_config(&c, 0);
    c.flip = 1;
    c.budget = (budget_spec){ BUDGET_EPOCHS, 3 };
    add(&c, "alternating_flip");
    harness hr;
    static signed char flip[3][1024];
    memset(flip, -1, sizeof flip);
    assert_int_equal(run_with(&c, record_flips, flip, &hr), 0);
    assert_int_equal(hr.t->aug.flip, DATA_FLIP_ALTERNATE);
    int both = 0;
    for (int i = 0; i < 1024; i++) {
        if (flip[0][i] < 0 || flip[1][i] < 0) continue;   /* in a dropped partial batch */
        assert_int_equal(flip[1][i], !flip[0][i]);
        both++;
    }
    assert_true(both > 900);
    close_run(&hr);
    expect_failure("batch_start", "ctx.data:augment { flip = 'alternate' }", "fit_start", 5);
    expect_failure("fit_start", "ctx.data:augment { flip = 'sometimes' }", "flip must be true, false or", 5);
    expect_failure("fit_start", "ctx.data:augment { crops = 2 }", "unknown field 'crops'", 5);
}

/* Ghost batch norm through the plugin: the batch norm of cnn_gap normalises 4 groups of 16 in
 * training; a wrong setting is a clear error. */
static int count_groups(trainer *t, trainer_event ev, void *ud)
{
    const nn_layer *bn = &t->model->layers[1];
    if (ev == EV_AFTER_FORWARD && bn->spec.ghost == 16 && bn->aux.shape[0] == 4) (*(int *)ud)++;
    return 0;
}

static void test_ghost_batchnorm(void **s)
{
    train_config c;
    base_config(&c, 1);
    add(&c, "ghost_batchnorm:size=16");
    harness hr;
    int grouped = 0;
    assert_int_equal(run_with(&c, count_groups, &grouped, &hr), 0);
    assert_int_equal(grouped, 20);
    close_run(&hr);
    expect_failure("fit_start", "ctx.model:configure(1, { ghost = 8 })", "flatten1 has no setting 'ghost'", 5);
    expect_failure("fit_start", "ctx.model:insert(2, 'batchnorm') ctx.model:configure(2, { ghost = -1 })",
                   "ghost must be a whole number", 5);
}

/* ColOut on cnn_gap: 28x28 inputs lose 4 rows and 4 columns each step, every value kept comes
 * from the same image as loaded; a flatten head is a clear error. */
typedef struct colout_check { mix_check loaded; int steps; } colout_check;

static int check_colout(trainer *t, trainer_event ev, void *ud)
{
    colout_check *c = ud;
    if (ev != EV_BEFORE_FORWARD) return 0;
    if (t->x.shape[1] != 24 || t->x.shape[2] != 24) return trainer_fail(t, "inputs %dx%d", t->x.shape[1], t->x.shape[2]);
    const float *x = host(&t->x), *in = c->loaded.x.data;
    for (int i = 0; i < 4; i++)
        for (int k = 0; k < 24 * 24; k += 37) {
            int found = 0;
            for (int j = 0; j < 28 * 28 && !found; j++) found = in[i * 784 + j] == x[i * 576 + k];
            if (!found) return trainer_fail(t, "image %d value %d is not from its image", i, k);
        }
    c->steps++;
    return 0;
}

static void test_colout(void **s)
{
    train_config c;
    base_config(&c, 1);
    add(&c, "colout");
    harness hr;
    colout_check cc;
    memset(&cc, 0, sizeof cc);
    assert_int_equal(run_around(&c, keep_batch, &cc.loaded, check_colout, &cc, &hr), 0);
    assert_int_equal(cc.steps, 20);
    tensor_free(&cc.loaded.x);
    close_run(&hr);
    base_config(&c, 0);
    add(&c, "colout");
    assert_int_equal(run_with(&c, NULL, NULL, &hr), -1);
    expect_fixed_size(&hr, "colout");
    close_run(&hr);
}

/* LARS on the MLP: each matrix gradient becomes (g + wd w) times its trust ratio (capped at 1 / lr
 * with clip), the decay group's own decay off; biases untouched. */
typedef struct lars_check { tensor before; int clip, checked; } lars_check;

static int lars_before(trainer *t, trainer_event ev, void *ud)   /* before_step before the plugin */
{
    if (ev == EV_BEFORE_STEP) tensor_copy(&((lars_check *)ud)->before, &t->model->grads);
    return 0;
}

static int lars_after(trainer *t, trainer_event ev, void *ud)
{
    lars_check *c = ud;
    if (ev != EV_BEFORE_STEP) return 0;
    const nn_model *m = t->model;
    const float *g = host(&m->grads), *w = host(&m->weights);
    float lr = t->opt.groups[OPTIM_GROUP_DECAY].lr, wd = 5e-4f;
    if (t->opt.groups[OPTIM_GROUP_DECAY].weight_decay != 0) return trainer_fail(t, "decoupled decay still on");
    size_t off = 0;
    for (int i = 0; i < m->n_params; i++) {
        const nn_param *p = m->params[i];
        double wn = 0, gn = 0;
        for (size_t j = 0; j < p->w.n; j++) {
            wn += (double)w[off + j] * w[off + j];
            gn += (double)c->before.data[off + j] * c->before.data[off + j];
        }
        double rate = 1;
        if (p->w.ndim >= 2) {
            rate = 0.01 * sqrt(wn) / (sqrt(gn) + wd * sqrt(wn));
            if (c->clip) rate = fmin(rate / lr, 1);
        }
        for (size_t j = 0; j < p->w.n; j++) {
            double want = p->w.ndim >= 2 ? (c->before.data[off + j] + wd * w[off + j]) * rate : c->before.data[off + j];
            if (fabs(g[off + j] - want) > 1e-5 * (fabs(want) + 1e-3))
                return trainer_fail(t, "%s[%zu]: %g, want %g", p->name, j, g[off + j], want);
        }
        off += p->w.n;
    }
    c->checked++;
    return 0;
}

/* LAMB: the weights at before_step (any hook), and how far each matrix moved, after the plugin's
 * after_step (a hook before the host sees it last). */
typedef struct lamb_check { tensor before; float lr; int clip, checked; } lamb_check;

static int lamb_before(trainer *t, trainer_event ev, void *ud)
{
    lamb_check *c = ud;
    if (ev == EV_BEFORE_STEP) {
        tensor_copy(&c->before, &t->model->weights);
        c->lr = t->opt.groups[OPTIM_GROUP_DECAY].lr;
    }
    return 0;
}

static int lamb_after(trainer *t, trainer_event ev, void *ud)
{
    lamb_check *c = ud;
    if (ev != EV_AFTER_STEP) return 0;
    const nn_model *m = t->model;
    const float *w = host(&m->weights);
    size_t off = 0;
    for (int i = 0; i < m->n_params; i++) {
        const nn_param *p = m->params[i];
        double wn = 0, dn = 0;
        for (size_t j = off; j < off + p->w.n; j++) {
            wn += (double)c->before.data[j] * c->before.data[j];
            dn += ((double)w[j] - c->before.data[j]) * ((double)w[j] - c->before.data[j]);
        }
        off += p->w.n;
        if (p->w.ndim < 2) continue;
        double want = c->lr * sqrt(wn), got = sqrt(dn);
        if (c->clip ? got > want * (1 + 1e-3) : fabs(got - want) > 1e-3 * want)
            return trainer_fail(t, "%s moved %g, want %s%g", p->name, got, c->clip ? "at most " : "", want);
    }
    c->checked++;
    return 0;
}

static void test_lars(void **s)
{
    for (int clip = 0; clip < 2; clip++) {
        train_config c;
        base_config(&c, 0);
        c.optim.weight_decay = 5e-4f;
        add(&c, clip ? "lars:eta=0.01,clip=true" : "lars:eta=0.01,clip=false");
        harness hr;
        lars_check lc = { .clip = clip };
        assert_int_equal(run_around(&c, lars_before, &lc, lars_after, &lc, &hr), 0);
        assert_int_equal(lc.checked, 20);
        tensor_free(&lc.before);
        close_run(&hr);
    }
    /* under adamw, LAMB: each matrix moves by lr |w| (clip = false), or at most that (clip) */
    for (int clip = 0; clip < 2; clip++) {
        train_config c;
        base_config(&c, 0);
        c.optim.kind = OPTIM_ADAMW;
        c.optim.lr = 0.01f;
        c.optim.weight_decay = 0.01f;
        add(&c, clip ? "lars" : "lars:clip=false");
        harness hr;
        lamb_check lc = { .clip = clip };
        assert_int_equal(run_around(&c, lamb_after, &lc, lamb_before, &lc, &hr), 0);
        assert_int_equal(lc.checked, 20);
        tensor_free(&lc.before);
        close_run(&hr);
    }
}

/* BlurPool on cnn_gap: two 2x2 stride-1 box averages (together the 3x3 binomial filter, see
 * test_nn) before its one downsampling layer, the maxpool. */
static void test_blurpool(void **s)
{
    train_config c;
    base_config(&c, 1);
    add(&c, "blurpool");
    harness hr;
    assert_int_equal(run_with(&c, NULL, NULL, &hr), 0);
    nn_model *m = hr.t->model;
    assert_int_equal(m->n_layers, 10);
    for (int i = 3; i < 5; i++)
        assert_true(m->layers[i].spec.kind == LAYER_AVGPOOL && m->layers[i].spec.k == 2 && m->layers[i].spec.stride == 1);
    assert_int_equal(m->layers[5].spec.kind, LAYER_MAXPOOL);
    close_run(&hr);
    /* a model with nothing to blur (or, for dirac_init, no conv filter) is told so, not run as if
     * the method had been applied */
    const char *none[][2] = { { "blurpool", "no strided conv or pooling layer" },
                              { "dirac_init", "no conv layer with an odd kernel" } };
    for (int i = 0; i < 2; i++) {
        base_config(&c, 0);
        add(&c, none[i][0]);
        assert_int_equal(run_with(&c, NULL, NULL, &hr), -1);
        assert_non_null(strstr(hr.t->error, none[i][1]));
        close_run(&hr);
    }
}

/* Whitening init on cnn_gap: conv1's 8 filters become 4 opposite pairs before the first forward
 * and stay put (frozen); dirac init: identity filters where the channels allow. */
typedef struct init_check { float w0[72], w1[16 * 72]; int seen; } init_check;

static int keep_init(trainer *t, trainer_event ev, void *ud)   /* before_forward after the plugin */
{
    init_check *c = ud;
    if (ev == EV_BEFORE_FORWARD && t->step == 0) {
        memcpy(c->w0, host(&t->model->params[0]->w), sizeof c->w0);
        memcpy(c->w1, host(&t->model->params[3]->w), sizeof c->w1);   /* conv2: after conv1, bn gamma, beta */
        c->seen = 1;
    }
    return 0;
}

static void test_init_methods(void **s)
{
    train_config c;
    base_config(&c, 1);
    add(&c, "whitening_init");
    harness hr;
    init_check ic = {0};
    assert_int_equal(run_with(&c, keep_init, &ic, &hr), 0);
    assert_true(ic.seen && hr.t->model->params[0]->frozen);
    for (int f = 0; f < 4; f++)
        for (int e = 0; e < 9; e++) assert_true(ic.w0[(2 * f + 1) * 9 + e] == -ic.w0[2 * f * 9 + e]);
    assert_memory_equal(host(&hr.t->model->params[0]->w), ic.w0, sizeof ic.w0);   /* frozen throughout */
    close_run(&hr);

    base_config(&c, 1);
    add(&c, "dirac_init");
    memset(&ic, 0, sizeof ic);
    assert_int_equal(run_with(&c, keep_init, &ic, &hr), 0);
    for (int e = 0; e < 9; e++) assert_true(ic.w0[e] == (e == 4));   /* conv1 (8, 3, 3, 1): filter 0 */
    for (int o = 0; o < 8; o++)                                      /* conv2 (16, 3, 3, 8): filters 0..7 */
        for (int e = 0; e < 72; e++) assert_true(ic.w1[o * 72 + e] == (e == 4 * 8 + o));
    close_run(&hr);
    expect_failure("fit_start", "ctx.model:layer(2).tensors[2].value:dirac_()", "dirac_: a conv weight", 5);
}

/* Stochastic depth on a two-block residual model, p 0.5: block k of 2 skips with probability
 * 0.25 k, runs scaled by 1 / (1 - 0.25 k) otherwise; evaluation runs both blocks at scale 1. */
static layer_spec res_body[] = { { .kind = LAYER_CONV, .out = 8, .k = 3, .stride = 1, .pad = 1 }, { .kind = LAYER_RELU } };
static layer_spec resnet[] = {
    { .kind = LAYER_CONV, .out = 8, .k = 3, .stride = 2, .pad = 1 }, { .kind = LAYER_RELU },
    { .kind = LAYER_RESIDUAL, .inner = res_body, .n_inner = 2 }, { .kind = LAYER_RESIDUAL, .inner = res_body, .n_inner = 2 },
    { .kind = LAYER_GAP }, { .kind = LAYER_LINEAR, .out = 10, .bias = 1 },
};

typedef struct depth_check { int skips[2], runs[2], evals; } depth_check;

static int check_depth(trainer *t, trainer_event ev, void *ud)
{
    depth_check *d = ud;
    for (int k = 0; k < 2; k++) {
        const nn_layer *l = &t->model->layers[2 + k];
        if (ev == EV_BEFORE_FORWARD) {
            if (fabsf(l->scale - 1 / (1 - 0.25f * (k + 1))) > 1e-6f) return trainer_fail(t, "block %d scale %g", k, l->scale);
            d->skips[k] += l->skip;
            d->runs[k] += !l->skip;
        }
        if (ev == EV_EVAL_START && (l->skip || l->scale != 1)) return trainer_fail(t, "block %d not whole in evaluation", k);
    }
    d->evals += ev == EV_EVAL_START;
    return 0;
}

/* model:matrices() reaches the weights inside residual blocks, in layer order; muon trains such
 * a model. */
static void test_matrices(void **s)
{
    static const char body[] =
        "local m = ctx.model:matrices() "
        "assert(#m == 4, #m) "
        "assert(m[1].layer == 1 and m[2].layer == 3 and m[3].layer == 4 and m[4].layer == 6) "
        "assert(m[2].name:find('residual1.', 1, true) == 1, m[2].name) "
        "local o, i = m[4].value:shape() assert(o == 10 and i == 8) ";
    char err[300];
    assert_int_equal(plug_catalog_add_source(&cat, "bad", plugin_src("fit_start", body), err, sizeof err), 0);
    train_config c;
    base_config(&c, 0);
    c.layers = resnet;
    c.n_layers = 6;
    add(&c, "bad");
    add(&c, "muon");
    harness hr;
    int rc = run_with(&c, NULL, NULL, &hr);
    if (rc) print_message("%s\n", hr.t->error);
    assert_int_equal(rc, 0);
    close_run(&hr);
}

static void test_stochastic_depth(void **s)
{
    train_config c;
    base_config(&c, 0);
    c.layers = resnet;
    c.n_layers = 6;
    add(&c, "stochastic_depth:p=0.5");
    harness hr;
    depth_check d;
    memset(&d, 0, sizeof d);
    assert_int_equal(run_with(&c, check_depth, &d, &hr), 0);
    assert_int_equal(d.skips[0] + d.runs[0], 20);
    assert_true(d.skips[1] > 0 && d.runs[1] > 0);
    assert_int_equal(d.evals, 2);
    close_run(&hr);
    base_config(&c, 0);
    add(&c, "stochastic_depth");
    assert_int_equal(run_with(&c, NULL, NULL, &hr), -1);
    assert_non_null(strstr(hr.t->error, "no residual block"));
    close_run(&hr);
}

/* A method that leaves examples out from an epoch end on, under a budget of one epoch (the last
 * epoch end is the budget's) or less (no epoch end): it never scores the data (no pass wasted
 * after the last step) and logs one line saying why. */
static void expect_no_later_epoch(const char *arg, const char *needle)
{
    static const budget_spec budgets[] = { { BUDGET_EPOCHS, 1 }, { BUDGET_STEPS, 10 } };
    for (int b = 0; b < 2; b++) {
        train_config c;
        base_config(&c, 0);
        c.budget = budgets[b];
        c.eval_every_steps = 0;
        add(&c, arg);
        harness hr;
        char logged[1024] = "";
        hr.t = trainer_new(&c, &ds, hr.err, sizeof hr.err);
        hr.h = plug_host_new(hr.t, &cat, &c, collect_log, logged, hr.err, sizeof hr.err);
        assert_non_null(hr.h);
        assert_int_equal(trainer_run(hr.t), 0);
        assert_int_equal(hr.t->step, b ? 10 : 16);
        assert_null(hr.t->pool);   /* no data:keep */
        if (!strstr(logged, needle)) print_message("log was: %s\n", logged);
        assert_non_null(strstr(logged, needle));
        assert_null(strchr(strchr(logged, '\n') + 1, '\n'));   /* that one line only */
        close_run(&hr);
    }
}

/* Data pruning on the synthetic set (1024 examples, 16 steps an epoch), 3 epochs, a quarter
 * dropped at the end of epoch 0: epochs 1 and 2 are each a permutation of the 768 examples with
 * the highest losses under the model at that point, 12 steps each: 40 steps in all. */
typedef struct prune_data { float loss[1024]; char kept[1024], seen[3][1024]; int scored, outside; } prune_data;

static int score_before(trainer *t, trainer_event ev, void *ud)   /* epoch_end before the plugin */
{
    prune_data *d = ud;
    if (ev == EV_BATCH_START && !t->echoed)
        for (int i = 0; i < t->cur->n; i++) {
            int e = t->cur->epoch, k = t->cur->idx[i];
            if (d->seen[e][k]) return trainer_fail(t, "example %d twice in epoch %d", k, e);
            d->seen[e][k] = 1;
            d->outside += e > 0 && !d->kept[k];
        }
    if (ev != EV_EPOCH_END || t->epoch != 0) return 0;
    trainer_score_train(t, d->loss);
    float sorted[1024];
    memcpy(sorted, d->loss, sizeof sorted);
    for (int i = 1; i < 1024; i++)   /* insertion sort, descending */
        for (int j = i; j > 0 && sorted[j - 1] < sorted[j]; j--) { float x = sorted[j]; sorted[j] = sorted[j - 1]; sorted[j - 1] = x; }
    float cut = sorted[767];
    for (int i = 0; i < 1024; i++) d->kept[i] = d->loss[i] >= cut;
    d->scored = 1;
    return 0;
}

static void test_data_pruning(void **s)
{
    train_config c;
    base_config(&c, 0);
    c.budget = (budget_spec){ BUDGET_EPOCHS, 3 };
    c.eval_every_steps = 0;
    c.eval_every_epochs = 1;
    add(&c, "data_pruning:drop=0.25,at=0.1");
    harness hr;
    static prune_data d;
    memset(&d, 0, sizeof d);
    assert_int_equal(run_with(&c, score_before, &d, &hr), 0);
    assert_true(d.scored);
    assert_int_equal(hr.t->step, 40);
    assert_int_equal(hr.t->samples, 40 * 64);
    assert_int_equal(d.outside, 0);
    for (int e = 1; e < 3; e++) {
        int n = 0;
        for (int i = 0; i < 1024; i++) n += d.seen[e][i];
        assert_int_equal(n, 768);
    }
    close_run(&hr);
    expect_failure("batch_start", "ctx.data:keep(ctx.batch:labels())", "fit_start or epoch_end", 5);
    expect_no_later_epoch("data_pruning", "[data_pruning] pruned nothing: no epoch ended past 10% of the budget");
}

/* Handler time of a plugin, timed from hooks on either side of it (first before the host, last
 * after it): its scoring at fit_start, and at eval_start. */
typedef struct handler_time { double t0, fit, eval; } handler_time;

static int handler_start(trainer *t, trainer_event ev, void *ud)
{
    if (ev == EV_FIT_START || ev == EV_EVAL_START) ((handler_time *)ud)->t0 = trainer_now();
    return 0;
}

static int handler_end(trainer *t, trainer_event ev, void *ud)
{
    handler_time *h = ud;
    if (ev == EV_FIT_START) h->fit += trainer_now() - h->t0;
    if (ev == EV_EVAL_START) h->eval += trainer_now() - h->t0;
    return 0;
}

/* A method's set-up at fit_start (here scoring the training set, as a data-pruning method might
 * before the first step) is on the training clock, from the first step's record on, and in the
 * plugins phase; the same work at eval_start is evaluation and stays out of both. */
static void test_fit_start_cost(void **s)
{
    static const char src[] =
        "return hasten.plugin { name = 'setup', title = 'Set-up', summary = 'scores the data', "
        "reference = 'none', taxonomy = { component = 'data', action = 'remove', when = 'once' }, "
        "fit_start = function(ctx, p) for i = 1, 4 do ctx.data:score() end end, "
        "eval_start = function(ctx, p) for i = 1, 4 do ctx.data:score() end end }";
    char err[300];
    assert_int_equal(plug_catalog_add_source(&cat, "setup", src, err, sizeof err), 0);
    train_config c;
    base_config(&c, 0);
    add(&c, "setup");
    harness hr;
    handler_time h = {0};
    assert_int_equal(run_around(&c, handler_start, &h, handler_end, &h, &hr), 0);
    trainer *t = hr.t;
    trainer_record r[32];
    int n = trainer_series(t, 0, r, 32);
    assert_true(n == 22 && !r[0].is_eval);   /* 20 steps, evaluations at steps 10 and 20 */
    assert_true(h.fit > 0 && h.eval > 0);
    assert_true(r[0].seconds >= h.fit);
    assert_true(t->phase[PHASE_PLUGINS] >= h.fit && t->phase[PHASE_PLUGINS] < h.fit + h.eval);
    assert_true(t->phase[PHASE_EVAL] >= h.eval);
    double sum = 0;
    for (int p = 0; p < PHASE_EVAL; p++) sum += t->phase[p];
    assert_true(sum <= t->train_seconds);
    close_run(&hr);
}

/* Curriculum on the synthetic set, 4 epochs, start 0.25, full at the end: after epoch 0 (progress
 * 1/4) the pool is the easiest 0.25 + 0.75 / 4 of the examples by their loss then, and it grows. */
typedef struct curr_check { float loss[1024]; int in_pool[4]; char easy[1024]; int outside; } curr_check;

static int curr_hook(trainer *t, trainer_event ev, void *ud)
{
    curr_check *c = ud;
    if (ev == EV_BATCH_START && !t->echoed) {
        int e = t->cur->epoch;
        c->in_pool[e] = t->n_pool;
        for (int i = 0; i < t->cur->n && e == 1; i++) c->outside += !c->easy[t->cur->idx[i]];
    }
    if (ev == EV_EPOCH_END && t->epoch == 0) {   /* before the plugin: the same model it scores */
        trainer_score_train(t, c->loss);
        int k = (int)floor((0.25 + 0.75 * 0.25) * 1024);
        for (int i = 0; i < 1024; i++) {   /* example i is among the k easiest */
            int below = 0;
            for (int j = 0; j < 1024; j++) below += c->loss[j] < c->loss[i];
            c->easy[i] = below < k;
        }
    }
    return 0;
}

static void test_curriculum(void **s)
{
    train_config c;
    base_config(&c, 0);
    c.budget = (budget_spec){ BUDGET_EPOCHS, 4 };
    c.eval_every_steps = 0;
    add(&c, "curriculum:start=0.25,full=1");
    harness hr;
    static curr_check cc;
    memset(&cc, 0, sizeof cc);
    assert_int_equal(run_with(&c, curr_hook, &cc, &hr), 0);
    assert_int_equal(cc.in_pool[1], 448);   /* floor(0.4375 * 1024) */
    assert_int_equal(cc.outside, 0);
    assert_true(cc.in_pool[2] > cc.in_pool[1] && cc.in_pool[3] > cc.in_pool[2]);
    close_run(&hr);
    expect_no_later_epoch("curriculum", "[curriculum] no curriculum: the budget ended within its first epoch");
}

/* Squeeze-excite on cnn_gap: a gate after conv1's relu (2 hidden units of 8 channels) and after
 * conv2's (4 of 16), each with its two fully connected layers. */
static void test_squeeze_excite(void **s)
{
    train_config c;
    base_config(&c, 1);
    add(&c, "squeeze_excite");
    harness hr;
    assert_int_equal(run_with(&c, NULL, NULL, &hr), 0);
    nn_model *m = hr.t->model;
    assert_int_equal(m->n_layers, 10);
    assert_true(m->layers[3].spec.kind == LAYER_SE && m->layers[3].spec.out == 2);
    assert_true(m->layers[7].spec.kind == LAYER_SE && m->layers[7].spec.out == 4);
    assert_int_equal(m->layers[7].n_params, 4);
    assert_int_equal(m->layers[7].params[2]->w.shape[0], 16);
    close_run(&hr);
}

/* Distillation from a teacher folder written here (recipe.lua and weights.bin of the MLP trained
 * for 20 steps): every step's targets are 0.5 one-hot + 0.5 softmax(teacher logits / 4). */
typedef struct distill_check { nn_model *teacher; int checked; } distill_check;

static int check_distill(trainer *t, trainer_event ev, void *ud)   /* before_loss after the plugin */
{
    distill_check *d = ud;
    if (ev != EV_BEFORE_LOSS) return 0;
    const tensor *out = nn_forward(d->teacher, &t->x, 0);
    tensor q = {0};
    tensor_copy(&q, out);
    int n = t->x.shape[0];
    const float *y = host(&t->targets);
    for (int i = 0; i < n; i++) {
        float *v = q.data + i * 10, top = -1e30f;
        double sum = 0;
        for (int j = 0; j < 10; j++) top = fmaxf(top, v[j] / 4);
        for (int j = 0; j < 10; j++) sum += exp(v[j] / 4 - top);
        for (int j = 0; j < 10; j++) {
            double want = 0.5 * (j == t->labels[i]) + 0.5 * exp(v[j] / 4 - top) / sum;
            if (fabs(y[i * 10 + j] - want) > 1e-5) { tensor_free(&q); return trainer_fail(t, "target %d,%d: %g, want %g", i, j, y[i * 10 + j], want); }
        }
    }
    tensor_free(&q);
    d->checked++;
    return 0;
}

static void test_distillation(void **s)
{
    char dir[600], path[700], err[300];
    snprintf(dir, sizeof dir, "%s/teacher", test_tmpdir());
    mkdir(dir, 0755);
    train_config c;
    base_config(&c, 0);
    harness hr;
    assert_int_equal(run_with(&c, NULL, NULL, &hr), 0);   /* the teacher: the MLP after 20 steps */
    size_t len;
    void *state = nn_state_pack(hr.t->model, &len);
    snprintf(path, sizeof path, "%s/weights.bin", dir);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(state, 1, len, f), len);
    fclose(f);
    snprintf(path, sizeof path, "%s/recipe.lua", dir);
    f = fopen(path, "w");
    assert_non_null(f);
    fputs("return { data = \"synthetic\", model = nn.sequential { nn.flatten(), nn.linear(32), nn.relu(),\n"
          "  nn.linear(32), nn.relu(), nn.linear(10) } }\n", f);
    fclose(f);
    distill_check d = { .teacher = nn_build(mlp, 6, 28, 28, 1, 1, err, sizeof err) };
    assert_int_equal(nn_state_unpack(d.teacher, state, len, err, sizeof err), 0);
    assert_int_equal(nn_to_device(d.teacher, dev), 0);
    free(state);
    close_run(&hr);

    base_config(&c, 0);
    char arg[800];
    snprintf(arg, sizeof arg, "distillation:teacher=%s,temperature=4,weight=0.5", dir);
    add(&c, arg);
    assert_int_equal(run_with(&c, check_distill, &d, &hr), 0);
    assert_int_equal(d.checked, 20);
    close_run(&hr);
    nn_free(d.teacher);

    base_config(&c, 1);   /* no such folder, and a folder that holds no run: the errors say which */
    snprintf(arg, sizeof arg, "distillation:teacher=%s/nowhere", dir);
    add(&c, arg);
    assert_int_equal(run_with(&c, NULL, NULL, &hr), -1);
    assert_non_null(strstr(hr.t->error, "nowhere: No such file or directory"));
    close_run(&hr);
    base_config(&c, 1);
    snprintf(arg, sizeof arg, "distillation:teacher=%s", test_tmpdir());
    add(&c, arg);
    assert_int_equal(run_with(&c, NULL, NULL, &hr), -1);
    assert_non_null(strstr(hr.t->error, "not a run folder (no recipe.lua)"));
    close_run(&hr);
}

/* ---- the text methods, on a small character model --------------------------------------------- */

static layer_spec text_attend[] = {
    { .kind = LAYER_LAYERNORM, .eps = 1e-5f }, { .kind = LAYER_CONV, .out = 48, .k = 1, .stride = 1, .bias = 1 },
    { .kind = LAYER_ATTENTION, .heads = 2 }, { .kind = LAYER_CONV, .out = 16, .k = 1, .stride = 1, .bias = 1 },
};
static layer_spec text_layers[] = {
    { .kind = LAYER_EMBED, .out = 16, .positions = 1 },
    { .kind = LAYER_RESIDUAL, .n_inner = 4, .inner = text_attend },
    { .kind = LAYER_LAYERNORM, .eps = 1e-5f }, { .kind = LAYER_CONV, .out = 1, .k = 1, .stride = 1, .bias = 1 },
};   /* the head's out: the vocabulary, set by text_run */

typedef struct len_log { int n, len[64], alibi[64]; } len_log;

static int log_lengths(trainer *t, trainer_event ev, void *ud)
{
    len_log *l = ud;
    if (ev == EV_AFTER_FORWARD && l->n < 64) {
        l->len[l->n] = t->logits->shape[2];
        l->alibi[l->n++] = t->model->layers[1].branch->layers[2].spec.alibi;
        assert_int_equal(trainer_tokens(t), t->logits->shape[2]);
        assert_int_equal(t->targets.shape[0], t->x.shape[0] * t->logits->shape[2]);
    }
    return 0;
}

/* muon on a text model: the embedding tables (layer 1's two parameters) reach the optimizer with
 * the gradient backward left, as the recipe's SGD would take it. */
typedef struct embed_check { tensor g[2]; int same; } embed_check;

static int check_embed(trainer *t, trainer_event ev, void *ud)   /* after_* before muon, before_* after */
{
    embed_check *e = ud;
    const nn_layer *emb = &t->model->layers[0];
    for (int i = 0; i < 2; i++) {
        const tensor *g = &emb->params[i]->g;
        if (ev == EV_AFTER_BACKWARD) tensor_copy(&e->g[i], g);
        if (ev == EV_BEFORE_STEP && !memcmp(host(g), e->g[i].data, g->n * sizeof(float))) e->same++;
    }
    return 0;
}

/* Runs 20 steps of the text model on tds with plugin arg, under opt (NULL: AdamW, lr 3e-3) and
 * with hook fn (its ud) after the host's. Returns the trainer (the caller frees it and hr's host)
 * or NULL with the host's error in hr->err. */
static trainer *text_run(const data_set *tds, const char *arg, const optim_spec *opt, trainer_hook_fn fn,
                         void *ud, harness *hr)
{
    static train_config c;
    config_defaults(&c);
    c.device = dev;
    text_layers[3].out = tds->classes;
    c.layers = text_layers;
    c.n_layers = 4;
    c.batch = 16;
    c.optim = opt ? *opt : (optim_spec){ .kind = OPTIM_ADAMW, .lr = 3e-3f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f };
    c.budget = (budget_spec){ BUDGET_STEPS, 20 };
    c.eval_every_steps = 20;
    add(&c, arg);
    hr->t = trainer_new(&c, tds, hr->err, sizeof hr->err);
    assert_non_null(hr->t);
    hr->h = plug_host_new(hr->t, &cat, &c, NULL, NULL, hr->err, sizeof hr->err);
    if (!hr->h) {
        trainer_free(hr->t);
        return NULL;
    }
    trainer_add_hook(hr->t, fn, ud);
    int rc = trainer_run(hr->t);
    if (rc) print_message("%s\n", hr->t->error);
    assert_int_equal(rc, 0);
    return hr->t;
}

/* seq_length_warmup: windows grow from start, in multiples, to the full context by `warmup` of
 * the budget; alibi: every attention layer (nested in a residual block) gets the biases, the
 * position table stays as it was (unused, frozen), training reads the first half of each window
 * and evaluation whole ones. Text methods refuse image data and image methods text data. */
static void test_text_methods(void **s)
{
    char text[30000], err[256];
    rng g;
    rng_seed(&g, 4, 0);
    for (size_t i = 0; i < sizeof text; i++) text[i] = "abcdefgh \n"[rng_below(&g, 10)];
    data_text tx;
    data_set tds;
    assert_int_equal(data_text_read(test_write_file("chars.txt", text, sizeof text), 0.1, &tx, err, sizeof err), 0);
    assert_int_equal(data_text_windows(&tx, 16, &tds, err, sizeof err), 0);
    data_text_free(&tx);
    harness hr;

    len_log l = {0};
    trainer *t = text_run(&tds, "seq_length_warmup:start=4,multiple=4,warmup=0.5", NULL, log_lengths, &l, &hr);
    assert_int_equal(l.n, 20);
    /* step k (0-based) has progress k / 20: length 4 + 12 (k / 20) / 0.5, rounded down to 4s */
    for (int k = 0; k < 20; k++) {
        int want = k >= 10 ? 16 : (4 + 12 * k / 10) / 4 * 4;
        if (want < 4) want = 4;
        if (l.len[k] != want) print_message("step %d: length %d, expected %d\n", k, l.len[k], want);
        assert_int_equal(l.len[k], want);
    }
    assert_true(isfinite(t->last_test_loss));
    plug_host_free(hr.h);
    trainer_free(t);

    memset(&l, 0, sizeof l);
    float pos_before[16 * 16];
    {   /* the initial position table, from a model built the same way */
        nn_model *m = nn_build((layer_spec[]){ { .kind = LAYER_EMBED, .out = 16, .vocab = tds.classes, .positions = 1 } },
                               1, 1, 16, 1, 1, err, sizeof err);
        assert_non_null(m);
        memcpy(pos_before, m->layers[0].params[1]->w.data, sizeof pos_before);
        nn_free(m);
    }
    t = text_run(&tds, "alibi:train=0.5", NULL, log_lengths, &l, &hr);
    for (int k = 0; k < 20; k++) {
        assert_int_equal(l.len[k], 8);
        assert_int_equal(l.alibi[k], 1);
    }
    assert_int_equal(t->model->layers[0].spec.positions, 0);
    assert_true(t->model->layers[0].params[1]->frozen);
    assert_memory_equal(host(&t->model->layers[0].params[1]->w), pos_before, sizeof pos_before);
    assert_true(isfinite(t->last_test_loss) && t->last_test_loss < 3.0f);   /* whole 16-token windows */
    /* this run as a teacher: its folder holds the recipe (vocabulary left to the data, the alibi
     * plugin) and the weights; loaded back, its attention has ALiBi again */
    char dir[600], path[700];
    snprintf(dir, sizeof dir, "%s/text-teacher", test_tmpdir());
    mkdir(dir, 0755);
    size_t len;
    void *state = nn_state_pack(t->model, &len);
    snprintf(path, sizeof path, "%s/weights.bin", dir);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(state, 1, len, f), len);
    fclose(f);
    free(state);
    train_config tc = *t->cfg;
    snprintf(tc.dataset, sizeof tc.dataset, "text");   /* a file of one's own, as a recipe names it */
    snprintf(tc.data_path, sizeof tc.data_path, "%s/chars.txt", test_tmpdir());
    snprintf(tds.name, sizeof tds.name, "text");       /* and the student's data as data_load_text names it */
    snprintf(path, sizeof path, "%s/recipe.lua", dir);
    f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(recipe_write(&tc, f), 0);
    fclose(f);
    plug_host_free(hr.h);
    trainer_free(t);
    nn_model *back = recipe_load_run(dir, 1, 16, 1, tds.classes, &tc, err, sizeof err);
    if (!back) fail_msg("%s", err);
    assert_int_equal(back->layers[1].branch->layers[2].spec.alibi, 1);
    assert_int_equal(back->layers[0].spec.positions, 0);
    nn_free(back);
    config_free(&tc);
    /* its probabilities for a student: a row per token, each summing to 1 */
    static char teach[1600];
    snprintf(teach, sizeof teach,
             "return hasten.plugin { name = 'bad', title = 'Teacher rows', summary = 's', reference = 'none', "
             "taxonomy = { component = 'data', action = 'remove', when = 'once' }, "
             "fit_start = function(ctx, p) ctx:teacher('%s') end, "
             "batch_start = function(ctx, p) local q = ctx:teacher_probs() local r, k = q:shape() "
             "assert(r == ctx.batch:size() * ctx.data.tokens and k == ctx.classes, r .. ' x ' .. k) "
             "assert(math.abs(q:sum() - r) < 1e-3 * r) end }", dir);
    assert_int_equal(plug_catalog_add_source(&cat, "bad", teach, err, sizeof err), 0);
    memset(&l, 0, sizeof l);
    t = text_run(&tds, "bad", NULL, log_lengths, &l, &hr);
    assert_int_equal(l.n, 20);
    plug_host_free(hr.h);
    trainer_free(t);

    /* the ctx API on text: the kind, the window, a label per token, truncation and its bounds */
    static const char body[] =
        "assert(ctx.data.kind == 'text' and ctx.data.tokens == 16) "
        "assert(ctx.batch:labels():size() == 16 * 16 and select(2, ctx.batch:dims()) == 16) "
        "ctx.batch:truncate(8) "
        "assert(ctx.batch:labels():size() == 16 * 8 and ctx.batch.targets:shape() == 16 * 8) "
        "assert(not pcall(function() ctx.batch:truncate(9) end)) "
        /* the image operations say so instead of reading a row per token as a row per image */
        "local perm = ctx.rng:perm(ctx.batch:size()) "
        "for _, f in ipairs { function() ctx.batch:mix(perm, 0.5) end, function() ctx.batch:cutmix(perm, 0.5) end, "
        "  function() ctx.batch:cutout(2) end, function() ctx.batch:resize(4, 4) end, function() ctx.batch:colout(0.1) end } do "
        "  local ok, e = pcall(f) assert(not ok and e:find('chars.txt is text, not images'), e) end";
    assert_int_equal(plug_catalog_add_source(&cat, "bad", plugin_src("batch_start", body), err, sizeof err), 0);
    memset(&l, 0, sizeof l);
    t = text_run(&tds, "bad", NULL, log_lengths, &l, &hr);
    for (int k = 0; k < 20; k++) assert_int_equal(l.len[k], 8);
    plug_host_free(hr.h);
    trainer_free(t);

    /* muon leaves embedding tables to the recipe's SGD (Jordan: hidden matrices only): without
     * that, their gradient was orthogonalised and then stepped again with the no_decay group's
     * momentum and lr */
    optim_spec sgd = { .kind = OPTIM_SGD, .lr = 0.05f, .momentum = 0.9f, .nesterov = 1 };
    embed_check ec = {0};
    t = text_run(&tds, "muon", &sgd, check_embed, &ec, &hr);
    assert_int_equal(ec.same, 2 * 20);
    assert_true(isfinite(t->last_test_loss));
    tensor_free(&ec.g[0]);
    tensor_free(&ec.g[1]);
    plug_host_free(hr.h);
    trainer_free(t);

    assert_null(text_run(&tds, "mixup", NULL, log_lengths, &l, &hr));
    assert_non_null(strstr(hr.err, "plugin mixup needs image data; chars.txt is a text corpus"));
    train_config c;
    base_config(&c, 0);
    add(&c, "alibi");
    assert_int_equal(open_run(&hr, &c), -1);
    assert_non_null(strstr(hr.err, "plugin alibi needs text data; synthetic is an image set"));
    trainer_free(hr.t);
    data_set_free(&tds);
}

int main(void)
{
    const struct CMUnitTest catalogue[] = {
        cmocka_unit_test(test_catalogue), cmocka_unit_test(test_param_errors),
        cmocka_unit_test(test_bad_plugin_files), cmocka_unit_test(test_broken_plugin_named),
        cmocka_unit_test(test_plugin_layers),
        cmocka_unit_test(test_composition),
        cmocka_unit_test(test_catalogue_json),
    };
    /* Everything that trains: once a device. */
    const struct CMUnitTest methods[] = {
        cmocka_unit_test(test_label_smoothing), cmocka_unit_test(test_mixup),
        cmocka_unit_test(test_cutmix), cmocka_unit_test(test_cutout),
        cmocka_unit_test(test_progressive_resizing), cmocka_unit_test(test_selective_backprop),
        cmocka_unit_test(test_layer_freezing), cmocka_unit_test(test_ema),
        cmocka_unit_test(test_grad_clipping), cmocka_unit_test(test_data_echoing),
        cmocka_unit_test(test_lookahead), cmocka_unit_test(test_batch_warmup),
        cmocka_unit_test(test_muon), cmocka_unit_test(test_pruning),
        cmocka_unit_test(test_low_rank), cmocka_unit_test(test_swa), cmocka_unit_test(test_swa_refresh),
        cmocka_unit_test(test_alternating_flip),
        cmocka_unit_test(test_ghost_batchnorm), cmocka_unit_test(test_colout), cmocka_unit_test(test_lars),
        cmocka_unit_test(test_blurpool), cmocka_unit_test(test_init_methods),
        cmocka_unit_test(test_stochastic_depth), cmocka_unit_test(test_matrices), cmocka_unit_test(test_data_pruning),
        cmocka_unit_test(test_fit_start_cost),
        cmocka_unit_test(test_squeeze_excite), cmocka_unit_test(test_distillation),
        cmocka_unit_test(test_curriculum), cmocka_unit_test(test_text_methods),
        cmocka_unit_test(test_schedules), cmocka_unit_test(test_sam_costs_a_pass),
        cmocka_unit_test(test_insert_layer), cmocka_unit_test(test_low_precision),
        cmocka_unit_test(test_ctx_api),
        cmocka_unit_test(test_ctx_after_step), cmocka_unit_test(test_sandbox),
        cmocka_unit_test(test_author_mistakes),
        cmocka_unit_test(test_sandbox_tensor_memory), cmocka_unit_test(test_after_loss_weights),
        cmocka_unit_test(test_grad_centralization),
    };
    cpu_threads_init(2);
    int failed = cmocka_run_group_tests_name("catalogue", catalogue, setup_cpu, teardown);
    failed += cmocka_run_group_tests_name("methods on the cpu", methods, setup_cpu, teardown);
    char why[256];
    if (ops_open(DEVICE_CUDA, why, sizeof why))
        printf("[  SKIPPED ] methods on cuda: %s\n", why);
    else
        failed += cmocka_run_group_tests_name("methods on cuda", methods, setup_cuda, teardown);
    return failed;
}
