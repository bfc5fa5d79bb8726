/* Recipe reader and writer: the shipped recipes, every error class, the write/load round trip
 * and the sandbox (no io/os, instruction budget, memory cap). Run from the repository root. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lua/recipe.h"
#include "lua/plugin.h"
#include "datasets/datasets.h"
#include "engine/trainer.h"
#include "tests/support.h"

#define NAME "recipes/x.lua"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Seconds a runaway recipe may take to be stopped: about 1 s natively, more under valgrind. */
static double stop_limit(void)
{
    const char *pre = getenv("LD_PRELOAD");
    return pre && strstr(pre, "vgpreload") ? 30.0 : 1.0;
}

static void check_layer(const layer_spec *l, enum layer_kind kind, int out, int k, int stride, int pad,
                        int bias)
{
    assert_int_equal(l->kind, kind);
    assert_int_equal(l->out, out);
    assert_int_equal(l->k, k);
    assert_int_equal(l->stride, stride);
    assert_int_equal(l->pad, pad);
    assert_int_equal(l->bias, bias);
}

static void assert_layers_equal(const layer_spec *a, const layer_spec *b, int n)
{
    for (int i = 0; i < n; i++) {
        assert_int_equal(a[i].kind, b[i].kind);
        assert_string_equal(a[i].name, b[i].name);
        assert_int_equal(a[i].out, b[i].out);
        assert_int_equal(a[i].k, b[i].k);
        assert_int_equal(a[i].stride, b[i].stride);
        assert_int_equal(a[i].pad, b[i].pad);
        assert_int_equal(a[i].bias, b[i].bias);
        assert_true(a[i].p == b[i].p);
        assert_true(a[i].momentum == b[i].momentum);
        assert_true(a[i].eps == b[i].eps);
        assert_int_equal(a[i].vocab, b[i].vocab);
        assert_int_equal(a[i].positions, b[i].positions);
        assert_int_equal(a[i].heads, b[i].heads);
        assert_int_equal(a[i].alibi, b[i].alibi);
        assert_int_equal(a[i].n_inner, b[i].n_inner);
        assert_layers_equal(a[i].inner, b[i].inner, a[i].n_inner);
    }
}

static void assert_config_equal(const train_config *a, const train_config *b)
{
    assert_string_equal(a->dataset, b->dataset);
    assert_string_equal(a->data_path, b->data_path);
    assert_int_equal(a->crop_pad, b->crop_pad);
    assert_int_equal(a->flip, b->flip);
    assert_int_equal(a->context, b->context);
    assert_int_equal(a->n_layers, b->n_layers);
    assert_layers_equal(a->layers, b->layers, a->n_layers);
    assert_int_equal(a->optim.kind, b->optim.kind);
    assert_true(a->optim.lr == b->optim.lr);
    assert_true(a->optim.momentum == b->optim.momentum);
    assert_int_equal(a->optim.nesterov, b->optim.nesterov);
    assert_true(a->optim.weight_decay == b->optim.weight_decay);
    assert_true(a->optim.beta1 == b->optim.beta1);
    assert_true(a->optim.beta2 == b->optim.beta2);
    assert_true(a->optim.eps == b->optim.eps);
    assert_int_equal(a->optim.decay_all, b->optim.decay_all);
    assert_int_equal(a->schedule.kind, b->schedule.kind);
    assert_true(a->schedule.warmup == b->schedule.warmup);
    assert_true(a->schedule.peak == b->schedule.peak);
    assert_true(a->schedule.pct_up == b->schedule.pct_up);
    assert_true(a->schedule.final_frac == b->schedule.final_frac);
    assert_int_equal(a->batch, b->batch);
    assert_int_equal(a->budget.unit, b->budget.unit);
    assert_true(a->budget.amount == b->budget.amount);
    assert_int_equal(a->eval_every_steps, b->eval_every_steps);
    assert_int_equal(a->eval_every_epochs, b->eval_every_epochs);
    assert_string_equal(a->target_metric, b->target_metric);
    assert_true(a->target_value == b->target_value);
    assert_true(a->seed == b->seed);
    assert_int_equal(a->threads, b->threads);
    assert_int_equal(a->n_plugins, b->n_plugins);
    for (int i = 0; i < a->n_plugins; i++) {
        assert_string_equal(a->plugins[i].name, b->plugins[i].name);
        assert_int_equal(a->plugins[i].n_params, b->plugins[i].n_params);
        for (int j = 0; j < a->plugins[i].n_params; j++) {
            assert_string_equal(a->plugins[i].keys[j], b->plugins[i].keys[j]);
            assert_string_equal(a->plugins[i].values[j], b->plugins[i].values[j]);
        }
    }
}

/* Writes c to a file, loads it back, checks equality; the written text is returned (free it). */
static char *round_trip(const train_config *c)
{
    char path[600], err[512];
    train_config back;
    snprintf(path, sizeof path, "%s/resolved.lua", test_tmpdir());
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(recipe_write(c, f), 0);
    assert_int_equal(fclose(f), 0);
    int rc = recipe_load(path, &back, err, sizeof err);
    if (rc) fprintf(stderr, "reload failed: %s\n", err);
    assert_int_equal(rc, 0);
    assert_config_equal(c, &back);
    char *text = test_read_file(path, NULL);
    assert_non_null(text);

    /* Writing the reloaded config gives the same text: the output is a fixed point. */
    memcpy(back.recipe_path, c->recipe_path, sizeof back.recipe_path);
    f = fopen(path, "w");
    assert_int_equal(recipe_write(&back, f), 0);
    fclose(f);
    char *again = test_read_file(path, NULL);
    assert_string_equal(text, again);
    free(again);
    config_free(&back);
    return text;
}

static void load_ok(const char *text, train_config *c)
{
    char err[512] = "";
    int rc = recipe_load_string(text, NAME, c, err, sizeof err);
    if (rc) fprintf(stderr, "unexpected error: %s\n", err);
    assert_int_equal(rc, 0);
}

/* Loads text that must fail; checks the message names the file, is one line, contains each
 * expected piece, and that nothing is left allocated in the config. */
static void load_fails(const char *text, ...)
{
    char err[512] = "";
    train_config c;
    va_list ap;
    assert_int_equal(recipe_load_string(text, NAME, &c, err, sizeof err), -1);
    if (!strstr(err, NAME)) fail_msg("no file name in: %s", err);
    assert_null(strchr(err, '\n'));
    assert_null(c.layers);
    assert_int_equal(c.n_layers, 0);
    va_start(ap, text);
    for (const char *want; (want = va_arg(ap, const char *));)
        if (!strstr(err, want)) fail_msg("expected '%s' in: %s", want, err);
    va_end(ap);
}

static void test_mlp_recipe(void **state)
{
    char err[512];
    train_config c;
    (void)state;
    assert_int_equal(recipe_load("recipes/fmnist_mlp.lua", &c, err, sizeof err), 0);
    assert_string_equal(c.recipe_path, "recipes/fmnist_mlp.lua");
    assert_string_equal(c.dataset, "fashion-mnist");
    assert_int_equal(c.crop_pad, 0);
    assert_int_equal(c.flip, 0);
    assert_int_equal(c.n_layers, 6);
    assert_int_equal(c.layers[0].kind, LAYER_FLATTEN);
    check_layer(&c.layers[1], LAYER_LINEAR, 256, 0, 1, 0, 1);
    assert_int_equal(c.layers[2].kind, LAYER_RELU);
    check_layer(&c.layers[3], LAYER_LINEAR, 256, 0, 1, 0, 1);
    assert_int_equal(c.layers[4].kind, LAYER_RELU);
    check_layer(&c.layers[5], LAYER_LINEAR, 10, 0, 1, 0, 1);
    assert_int_equal(c.optim.kind, OPTIM_SGD);
    assert_true(c.optim.lr == 0.1f);
    assert_true(c.optim.momentum == 0.9f);
    assert_int_equal(c.optim.nesterov, 1);
    assert_true(c.optim.weight_decay == 5e-4f);
    assert_int_equal(c.schedule.kind, SCHED_LINEAR_DECAY);
    assert_int_equal(c.batch, 128);
    assert_int_equal(c.budget.unit, BUDGET_EPOCHS);
    assert_true(c.budget.amount == 10);
    assert_int_equal(c.eval_every_steps, 0);
    assert_int_equal(c.eval_every_epochs, 1);
    assert_string_equal(c.target_metric, "test_acc");
    assert_true(c.target_value == 0.885);
    assert_true(c.seed == 1);
    assert_int_equal(c.n_plugins, 0);
    char *text = round_trip(&c);
    assert_null(strstr(text, "context"));   /* a text's field, meaningless for images */
    assert_non_null(strstr(text, "augment = { crop = 0, flip = false }"));
    free(text);
    config_free(&c);
}

/* The shipped text recipe: embeddings, two pre-norm blocks of attention and MLP, a head onto Tiny
 * Shakespeare's 65 characters; it writes back as it reads, and trains on a text with those 65
 * characters (Tiny Shakespeare itself is a download). */
static void test_text_recipe(void **state)
{
    char err[512];
    train_config c;
    (void)state;
    assert_int_equal(recipe_load("recipes/shakespeare_char.lua", &c, err, sizeof err), 0);
    assert_string_equal(c.dataset, "tinyshakespeare");
    assert_int_equal(c.context, 64);
    assert_int_equal(c.n_layers, 7);
    assert_int_equal(c.layers[0].kind, LAYER_EMBED);
    assert_int_equal(c.layers[0].out, 64);
    assert_int_equal(c.layers[0].positions, 1);
    for (int i = 1; i <= 4; i++) assert_int_equal(c.layers[i].kind, LAYER_RESIDUAL);
    assert_int_equal(c.layers[1].n_inner, 4);
    assert_int_equal(c.layers[1].inner[0].kind, LAYER_LAYERNORM);
    check_layer(&c.layers[1].inner[1], LAYER_CONV, 192, 1, 1, 0, 1);
    assert_int_equal(c.layers[1].inner[2].kind, LAYER_ATTENTION);
    assert_int_equal(c.layers[1].inner[2].heads, 4);
    assert_int_equal(c.layers[2].inner[2].kind, LAYER_GELU);
    assert_int_equal(c.layers[5].kind, LAYER_LAYERNORM);
    check_layer(&c.layers[6], LAYER_CONV, CONFIG_CLASSES, 1, 1, 0, 1);   /* nn.classes: the data's */
    assert_string_equal(c.target_metric, "test_loss");
    char *resolved = round_trip(&c);
    assert_non_null(strstr(resolved, "{ \"tinyshakespeare\", context = 64 }"));   /* no augment: images' */
    assert_non_null(strstr(resolved, "nn.conv(nn.classes, 1, { pad = 0"));
    free(resolved);

    static const char alphabet[] = "\n !$&',-.3:;?ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    assert_int_equal(strlen(alphabet), 65);
    char text[20000];
    for (size_t i = 0; i < sizeof text; i++) text[i] = alphabet[(i * 7919 + i / 3) % 65];
    data_text t;
    data_set ds;
    assert_int_equal(data_text_read(test_write_file("shakespeare-like.txt", text, sizeof text), 0.1, &t, err, sizeof err), 0);
    assert_int_equal(t.vocab, 65);
    assert_int_equal(data_text_windows(&t, c.context, &ds, err, sizeof err), 0);
    data_text_free(&t);
    c.budget = (budget_spec){ BUDGET_STEPS, 3 };
    trainer *tr = trainer_new(&c, &ds, err, sizeof err);
    if (!tr) fail_msg("%s", err);
    assert_int_equal(tr->model->out_features, 64 * 65);   /* the head took the text's 65 */
    assert_int_equal(c.layers[6].out, CONFIG_CLASSES);    /* in the run's copy, not the recipe */
    assert_int_equal(trainer_run(tr), 0);
    assert_true(isfinite(tr->last_test_loss));
    trainer_free(tr);
    data_set_free(&ds);
    /* another text, another vocabulary: the same recipe fits it unchanged */
    for (size_t i = 0; i < sizeof text; i++) text[i] = alphabet[20 + (i * 7919 + i / 3) % 30];
    assert_int_equal(data_text_read(test_write_file("thirty.txt", text, sizeof text), 0.1, &t, err, sizeof err), 0);
    assert_int_equal(data_text_windows(&t, c.context, &ds, err, sizeof err), 0);
    data_text_free(&t);
    tr = trainer_new(&c, &ds, err, sizeof err);
    if (!tr) fail_msg("%s", err);
    assert_int_equal(tr->model->out_features, 64 * 30);
    trainer_free(tr);
    data_set_free(&ds);
    config_free(&c);
}

static void test_cnn_recipe(void **state)
{
    char err[512];
    train_config c;
    (void)state;
    assert_int_equal(recipe_load("recipes/fmnist_cnn.lua", &c, err, sizeof err), 0);
    assert_int_equal(c.crop_pad, 0);
    assert_int_equal(c.flip, 1);
    assert_int_equal(c.n_layers, 11);
    /* conv 16 (stride 1) + bn + relu + maxpool 2, then conv 32 (stride 2) + bn + relu */
    check_layer(&c.layers[0], LAYER_CONV, 16, 3, 1, 1, 0);
    check_layer(&c.layers[4], LAYER_CONV, 32, 3, 2, 1, 0);
    for (int i = 1; i <= 5; i += 4) {
        assert_int_equal(c.layers[i].kind, LAYER_BATCHNORM);
        assert_true(c.layers[i].momentum == 0.1f);
        assert_true(c.layers[i].eps == 1e-5f);
        assert_int_equal(c.layers[i + 1].kind, LAYER_RELU);
    }
    assert_int_equal(c.layers[3].kind, LAYER_MAXPOOL);
    assert_int_equal(c.layers[3].k, 2);
    assert_int_equal(c.layers[3].stride, 2);
    assert_int_equal(c.layers[7].kind, LAYER_FLATTEN);
    check_layer(&c.layers[8], LAYER_LINEAR, 128, 0, 1, 0, 1);
    assert_int_equal(c.layers[9].kind, LAYER_RELU);
    check_layer(&c.layers[10], LAYER_LINEAR, 10, 0, 1, 0, 1);
    assert_true(c.optim.lr == 0.1f);
    assert_int_equal(c.optim.nesterov, 1);
    assert_true(c.optim.weight_decay == 5e-4f);
    assert_int_equal(c.schedule.kind, SCHED_LINEAR_DECAY);
    assert_true(c.budget.amount == 10);
    assert_string_equal(c.target_metric, "test_acc");
    assert_true(c.target_value == 0.90);
    free(round_trip(&c));
    config_free(&c);
}

static const char full_recipe[] =
    "local width = 8\n"
    "return {\n"
    "  data = \"synthetic\",\n"
    "  model = nn.sequential {\n"
    "    nn.conv(width, 3, { pad = 1, stride = 2, name = \"stem\" }), nn.batchnorm { momentum = 0.2, eps = 1e-3 },\n"
    "    nn.residual { nn.conv(width, 3, { pad = 1, bias = false }), nn.gelu(),\n"
    "                  nn.residual { nn.conv(width, 1), name = \"inner\" }, name = \"block1\" },\n"
    "    nn.avgpool(3, { stride = 1 }), nn.gap(), nn.flatten(), nn.dropout(0.25), nn.linear(10, { bias = false }),\n"
    "  },\n"
    "  optim = { \"adamw\", lr = 3e-4, betas = { 0.8, 0.95 }, eps = 1e-6, weight_decay = 0.01, decay_all = true },\n"
    "  schedule = { \"one_cycle\", warmup = 0.05, peak = 10, pct_up = 0.3, final = 0.01 },\n"
    "  batch = 64, budget = \"2000steps\",\n"
    "  eval = { every = 500 }, target = { test_loss = 0.35 },\n"
    "  seed = 1234567890123, threads = 3,\n"
    "  plugins = { \"label_smoothing\",\n"
    "              { \"progressive_resizing\", start = 0.5, hold = 0.4, mode = \"bilinear\", on = true,\n"
    "                steps = 3, text_num = \"0.1\", odd = \"1.0\", [\"odd key\"] = 1, big = 1e20 } },\n"
    "}\n";

/* Ghost batch norm and squeeze-excite layers read from recipes, and their errors. */
static void test_ghost_and_se(void **state)
{
    train_config c;
    (void)state;
    load_ok("return { data = \"synthetic\", model = { nn.conv(8, 3), nn.batchnorm { ghost = 16 }, nn.relu(),\n"
            "  nn.se(4), nn.gap(), nn.linear(10) } }", &c);
    assert_int_equal(c.layers[1].ghost, 16);
    assert_int_equal(c.layers[3].kind, LAYER_SE);
    assert_int_equal(c.layers[3].out, 4);
    config_free(&c);
    load_fails("return { model = { nn.se(0) } }", "model[1].out", NULL);
    load_fails("return { model = { nn.batchnorm { ghost = -2 } } }", "model[1].ghost", NULL);
}

static void test_full_recipe(void **state)
{
    train_config c;
    (void)state;
    load_ok(full_recipe, &c);
    assert_string_equal(c.recipe_path, "");
    assert_string_equal(c.dataset, "synthetic");
    assert_int_equal(c.n_layers, 8);
    check_layer(&c.layers[0], LAYER_CONV, 8, 3, 2, 1, 1);
    assert_string_equal(c.layers[0].name, "stem");
    assert_true(c.layers[1].momentum == 0.2f && c.layers[1].eps == 1e-3f);
    const layer_spec *res = &c.layers[2];
    assert_int_equal(res->kind, LAYER_RESIDUAL);
    assert_string_equal(res->name, "block1");
    assert_int_equal(res->n_inner, 3);
    check_layer(&res->inner[0], LAYER_CONV, 8, 3, 1, 1, 0);
    assert_int_equal(res->inner[1].kind, LAYER_GELU);
    assert_int_equal(res->inner[2].kind, LAYER_RESIDUAL);
    assert_string_equal(res->inner[2].name, "inner");
    assert_int_equal(res->inner[2].n_inner, 1);
    check_layer(&res->inner[2].inner[0], LAYER_CONV, 8, 1, 1, 0, 1);
    assert_int_equal(c.layers[3].kind, LAYER_AVGPOOL);
    assert_int_equal(c.layers[3].k, 3);
    assert_int_equal(c.layers[3].stride, 1);
    assert_int_equal(c.layers[4].kind, LAYER_GAP);
    assert_true(c.layers[6].p == 0.25f);
    check_layer(&c.layers[7], LAYER_LINEAR, 10, 0, 1, 0, 0);
    assert_int_equal(c.optim.kind, OPTIM_ADAMW);
    assert_true(c.optim.lr == 3e-4f && c.optim.beta1 == 0.8f && c.optim.beta2 == 0.95f);
    assert_true(c.optim.eps == 1e-6f && c.optim.weight_decay == 0.01f && c.optim.decay_all == 1);
    assert_int_equal(c.schedule.kind, SCHED_ONE_CYCLE);
    assert_true(c.schedule.warmup == 0.05f && c.schedule.pct_up == 0.3f && c.schedule.final_frac == 0.01f);
    assert_int_equal(c.batch, 64);
    assert_int_equal(c.budget.unit, BUDGET_STEPS);
    assert_true(c.budget.amount == 2000);
    assert_int_equal(c.eval_every_steps, 500);
    assert_int_equal(c.eval_every_epochs, 0);
    assert_string_equal(c.target_metric, "test_loss");
    assert_true(c.target_value == 0.35);
    assert_true(c.seed == 1234567890123ULL);
    assert_int_equal(c.threads, 3);
    assert_int_equal(c.n_plugins, 2);
    assert_string_equal(c.plugins[0].name, "label_smoothing");
    assert_int_equal(c.plugins[0].n_params, 0);
    const plugin_spec *p = &c.plugins[1];
    assert_string_equal(p->name, "progressive_resizing");
    assert_int_equal(p->n_params, 9);
    /* Sorted by key, values as text. */
    static const char *const want[][2] = {
        { "big", "1e+20" }, { "hold", "0.4" }, { "mode", "bilinear" }, { "odd", "1.0" },
        { "odd key", "1" }, { "on", "true" }, { "start", "0.5" }, { "steps", "3" },
        { "text_num", "0.1" } };
    for (int i = 0; i < 9; i++) {
        assert_string_equal(p->keys[i], want[i][0]);
        assert_string_equal(p->values[i], want[i][1]);
    }
    char *text = round_trip(&c);
    assert_non_null(strstr(text, "odd = \"1.0\""));   /* a string that would not come back as itself unquoted */
    assert_non_null(strstr(text, "[\"odd key\"] = 1"));
    assert_non_null(strstr(text, "lr = 0.0003,"));    /* shortest exact form, not 0.000300000014 */
    free(text);
    config_free(&c);
}

/* data = { "name", path = "dir" }: the folder a dataset is read from, written back only when set. */
static void test_data_path(void **state)
{
    train_config c;
    (void)state;
    load_ok("return { data = { \"mnist\", path = \"/srv/data/my \\\"mnist\\\"\", augment = { crop = 1 } }, "
            "model = nn.sequential { nn.flatten(), nn.linear(10) } }", &c);
    assert_string_equal(c.dataset, "mnist");
    assert_string_equal(c.data_path, "/srv/data/my \"mnist\"");
    assert_int_equal(c.crop_pad, 1);
    char *text = round_trip(&c);
    assert_non_null(strstr(text, "path = \"/srv/data/my \\\"mnist\\\"\""));
    free(text);
    config_free(&c);

    load_ok("return { data = \"mnist\", model = nn.sequential { nn.linear(10) } }", &c);
    assert_string_equal(c.data_path, "");
    text = round_trip(&c);
    assert_null(strstr(text, "path ="));
    free(text);
    config_free(&c);

    load_fails("return { data = { \"mnist\", path = 3 }, model = { nn.relu() } }",
               "data.path: expected a string of at most 255 bytes, got 3", NULL);
    char long_recipe[700];
    snprintf(long_recipe, sizeof long_recipe, "return { data = { \"mnist\", path = \"%0300d\" }, model = { nn.relu() } }", 0);
    load_fails(long_recipe, "data.path: expected a string of at most 255 bytes", NULL);
    load_fails("return { data = { \"mnist\", paht = \"/x\" }, model = { nn.relu() } }",
               "data: unknown field 'paht' (did you mean 'path'?)", NULL);
}

static void test_defaults_and_forms(void **state)
{
    train_config c, d;
    (void)state;
    load_ok("return { model = nn.sequential { nn.maxpool(2), nn.maxpool(3, { stride = 1 }), nn.linear(4) } }", &c);
    config_defaults(&d);
    assert_string_equal(c.dataset, d.dataset);
    assert_int_equal(c.batch, d.batch);
    assert_true(c.optim.lr == d.optim.lr);
    assert_int_equal(c.schedule.kind, d.schedule.kind);
    assert_int_equal(c.budget.unit, d.budget.unit);
    assert_int_equal(c.eval_every_epochs, 1);
    assert_string_equal(c.target_metric, "");
    assert_int_equal(c.layers[0].stride, 2);
    assert_int_equal(c.layers[1].stride, 1);
    assert_int_equal(c.layers[2].bias, 1);
    free(round_trip(&c));
    config_free(&c);

    load_ok("return { model = { nn.relu() }, optim = \"adamw\", schedule = \"cosine\", budget = \"30s\","
            " eval = { every = \"3ep\" }, target = false }", &c);
    assert_int_equal(c.optim.kind, OPTIM_ADAMW);
    assert_true(c.optim.beta2 == 0.999f);
    assert_int_equal(c.schedule.kind, SCHED_COSINE);
    assert_int_equal(c.budget.unit, BUDGET_SECONDS);
    assert_true(c.budget.amount == 30);
    assert_int_equal(c.eval_every_epochs, 3);
    assert_int_equal(c.eval_every_steps, 0);
    free(round_trip(&c));
    config_free(&c);

    load_ok("return { model = { nn.relu() }, budget = { samples = 60000 }, batch = 1e3 }", &c);
    assert_int_equal(c.budget.unit, BUDGET_SAMPLES);
    assert_int_equal(c.batch, 1000);
    config_free(&c);
}

static void test_field_errors(void **state)
{
    (void)state;
    load_fails("return { model = { nn.relu() }, optim = { \"sgd\", lr = -1 } }",
               NAME ": optim.lr: expected a number > 0, got -1", NULL);
    load_fails("return { model = { nn.relu() }, optimizer = \"sgd\" }",
               NAME ": unknown field 'optimizer' (did you mean 'optim'?)", NULL);
    load_fails("return { model = { nn.relu() }, zzz = 1 }", "unknown field 'zzz' (expected one of data, model", NULL);
    load_fails("return { optim = \"sgd\" }", NAME ": model: missing", NULL);
    load_fails("return { model = { nn.relu() }, optim = \"rmsprop\" }", "optim: unknown optimizer 'rmsprop'", NULL);
    load_fails("return { model = { nn.relu() }, optim = { \"sgd\", lrate = 1 } }", "optim: unknown field 'lrate'", NULL);
    load_fails("return { model = { nn.relu() }, optim = { \"adamw\", momentum = 0.9 } }",
               "optim: unknown field 'momentum'", NULL);
    load_fails("return { model = { nn.relu() }, optim = { \"adamw\", betas = { 0.9 } } }", "optim.betas", NULL);
    load_fails("return { model = { nn.relu() }, optim = { \"adamw\", betas = { 0.9, 1 } } }",
               "optim.betas[2]: expected a number in [0, 1), got 1", NULL);
    load_fails("return { model = { nn.relu() }, optim = { \"sgd\", nesterov = 1 } }",
               "optim.nesterov: expected true or false, got 1", NULL);
    load_fails("return { model = { nn.relu() }, data = { \"fashion-mnist\", augment = { crop = 2, rotate = 5 } } }",
               "data.augment: unknown field 'rotate'", NULL);
    load_fails("return { model = { nn.relu() }, data = { \"fashion-mnist\", augment = { crop = -1 } } }",
               "data.augment.crop: expected an integer >= 0, got -1", NULL);
    load_fails("return { model = { nn.relu() }, data = { \"tinyshakespeare\", context = 1 } }",
               "data.context: expected an integer in [2, 4096], got 1", NULL);
    load_fails("return { model = { nn.attention() } }", "nn.attention: argument 1 (heads) is missing", NULL);
    load_fails("return { model = { nn.embed(8, { positions = 2 }) } }", "positions: expected true or false", NULL);
    load_fails("return { model = { nn.relu() }, data = { augment = {} } }", "data: expected a dataset name", NULL);
    load_fails("return { model = { nn.relu() }, eval = { every = \"epoch\", often = true } }",
               "eval: unknown field 'often'", NULL);
    load_fails("return { model = { nn.relu() }, eval = { every = \"30s\" } }", "eval.every: expected", NULL);
    load_fails("return { model = { nn.relu() }, eval = { every = 2.5 } }", "eval.every: expected", NULL);
    load_fails("return { model = { nn.relu() }, eval = {} }", "eval.every: missing", NULL);
    load_fails("return { model = { nn.relu() }, schedule = \"cosin\" }",
               "schedule: unknown schedule 'cosin' (did you mean 'cosine'?)", NULL);
    load_fails("return { model = { nn.relu() }, schedule = { \"cosine\", peak = 10 } }",
               "schedule: unknown field 'peak'", NULL);
    load_fails("return { model = { nn.relu() }, schedule = { \"one_cycle\", warmup = 2 } }",
               "schedule.warmup: expected a number in [0, 1], got 2", NULL);
    load_fails("return { model = { nn.relu() }, budget = {} }",
               NAME ": budget: expected one of steps, epochs, samples, seconds", NULL);
    load_fails("return { model = { nn.relu() }, budget = { minutes = 5 } }",
               "budget: unknown field 'minutes' (expected one of steps, epochs, samples, seconds)", NULL);
    load_fails("return { model = { nn.relu() }, budget = { epochs = 1, steps = 5 } }",
               "budget: expected only one of steps, epochs, samples, seconds", NULL);
    load_fails("return { model = { nn.relu() }, budget = { epochs = 0 } }", "budget.epochs: expected a number in (0, 1e15], got 0", NULL);
    load_fails("return { model = { nn.relu() }, budget = \"5 parsecs\" }", "budget: expected", "\"5 parsecs\"", NULL);
    load_fails("return { model = { nn.relu() }, target = { test_acc = 1.5 } }",
               "target.test_acc: expected a number in (0, 1], got 1.5", NULL);
    load_fails("return { model = { nn.relu() }, target = { test_loss = 0 } }", "target.test_loss: expected a number > 0", NULL);
    load_fails("return { model = { nn.relu() }, target = {} }", "target: expected one of test_acc, test_loss", NULL);
    load_fails("return { model = { nn.relu() }, seed = -1 }", "seed: expected an integer >= 0, got -1", NULL);
    load_fails("return { model = { nn.relu() }, threads = 1.5 }", "threads: expected an integer >= 0, got 1.5", NULL);
    load_fails("return { model = { nn.relu() }, batch = 0 }", "batch: expected an integer >= 1, got 0", NULL);
    load_fails("return { model = { nn.relu() }, batch = \"128\" }", "batch: expected an integer >= 1, got \"128\"", NULL);
    load_fails("return 5", NAME ": expected the recipe to return a table", NULL);
}

static void test_layer_errors(void **state)
{
    (void)state;
    load_fails("return { model = nn.sequential { nn.flatten(), nn.relu(), nn.convv(8, 3) } }",
               NAME ": model[3]: unknown layer 'convv' (did you mean 'conv'?)", NULL);
    load_fails("return { model = { { \"transformer\" } } }", "model[1]: unknown layer 'transformer' (expected one of linear", NULL);
    load_fails("return { model = { nn.conv(8, 3, { padding = 1 }) } }",
               "model[1]: unknown field 'padding' (did you mean 'pad'?)", NULL);
    load_fails("return { model = { nn.linear(8, { pad = 1 }) } }", "model[1]: unknown field 'pad'", NULL);
    load_fails("return { model = { nn.conv(0, 3) } }", "model[1].out: expected an integer >= 1 or nn.classes, got 0", NULL);
    load_fails("return { model = { nn.residual { nn.relu(), nn.linear(nn.classes) } } }",
               "model[1].body[2].out: nn.classes (the data's number of classes) is for a layer at the model's top level", NULL);
    load_fails("return { model = { nn.conv(8, 3, { stride = 0 }) } }", "model[1].stride: expected an integer >= 1", NULL);
    load_fails("return { model = { nn.conv(8, 3, { pad = -1 }) } }", "model[1].pad: expected an integer >= 0", NULL);
    load_fails("return { model = { nn.relu(), nn.dropout(1) } }", "model[2].p: expected a number in [0, 1), got 1", NULL);
    load_fails("return { model = { nn.maxpool(0) } }", "model[1].k: expected an integer >= 1, got 0", NULL);
    load_fails("return { model = { nn.linear(2.5) } }", "model[1].out: expected an integer >= 1 or nn.classes, got 2.5", NULL);
    load_fails("return { model = { nn.batchnorm { eps = 0 } } }", "model[1].eps: expected a number > 0", NULL);
    load_fails("return { model = { nn.relu { name = string.rep(\"n\", 40) } } }", "model[1].name", NULL);
    load_fails("return { model = { nn.residual { nn.relu(), nn.conv(8, 3, { pad = -1 }) } } }",
               "model[1].body[2].pad: expected an integer >= 0", NULL);
    load_fails("return { model = { nn.residual { nn.relu(), width = 3 } } }", "model[1]: unknown field 'width'", NULL);
    load_fails("return { model = { nn.residual {} } }", "model[1].body: expected at least one layer", NULL);
    load_fails("return { model = { nn.relu } }", "model[1]: expected a layer", "missing ()", NULL);
    load_fails("return { model = nn.linear(3) }", "model: expected a list of layers", NULL);
    load_fails("return { model = nn.sequential {} }", "model: expected at least one layer", NULL);
    load_fails("return { model = nn.sequential { nn.relu(), name = \"m\" } }", "model: unexpected key \"name\"", NULL);
    load_fails("return {\n model = { nn.conv(8) } }", NAME ":2: nn.conv: argument 2 (k) is missing", NULL);
    load_fails("return { model = { nn.conv(8, 3, 1) } }", "nn.conv: argument 3: expected a table of options", NULL);
    load_fails("return { model = { nn.conv(8, 3, { out = 4 }) } }", "nn.conv: 'out' is an argument", NULL);
    load_fails("local r = nn.residual { nn.relu() }; r.body[2] = r\nreturn { model = { r } }", "nested deeper than", NULL);
}

static void test_plugin_errors(void **state)
{
    char text[4096];
    size_t n = 0;
    (void)state;
    load_fails("return { model = { nn.relu() }, plugins = \"mixup\" }", "plugins: expected a list", NULL);
    load_fails("return { model = { nn.relu() }, plugins = { { alpha = 1 } } }", "plugins[1]: expected a plugin name", NULL);
    load_fails("return { model = { nn.relu() }, plugins = { { \"mixup\", alpha = {} } } }",
               "plugins[1].alpha: expected a number, a boolean or a string, got a table", NULL);
    load_fails("return { model = { nn.relu() }, plugins = { { \"mixup\", 0.2 } } }", "plugins[1]: unexpected entry [2]", NULL);
    n += (size_t)snprintf(text + n, sizeof text - n, "return { model = { nn.relu() }, plugins = { ");
    for (int i = 0; i <= CONFIG_MAX_PLUGINS; i++) n += (size_t)snprintf(text + n, sizeof text - n, "\"p%d\", ", i);
    snprintf(text + n, sizeof text - n, "} }");
    load_fails(text, "plugins: at most 32 plugins, got 33", NULL);
    n = (size_t)snprintf(text, sizeof text, "return { model = { nn.relu() }, plugins = { { \"p\"");
    for (int i = 0; i <= CONFIG_MAX_PARAMS; i++) n += (size_t)snprintf(text + n, sizeof text - n, ", k%d = %d", i, i);
    snprintf(text + n, sizeof text - n, " } } }");
    load_fails(text, "plugins[1]: at most 16 parameters", NULL);
}

/* data names a dataset the registry knows; "text" also names its file. */
static void test_data_errors(void **state)
{
    train_config c;
    (void)state;
    load_fails("return { model = { nn.relu() }, data = \"no-such-data\" }",
               NAME ": data: unknown dataset 'no-such-data' (expected one of fashion-mnist, mnist", NULL);
    load_fails("return { model = { nn.relu() }, data = { \"mnsit\", path = \"/x\" } }",
               NAME ": data: unknown dataset 'mnsit' (did you mean 'mnist'?)", NULL);
    load_fails("return { model = { nn.relu() }, data = { \"text\" } }",
               NAME ": data.path: missing; dataset \"text\" reads the file it names", NULL);
    load_fails("return { model = { nn.relu() }, data = \"text\" }", NAME ": data.path: missing", NULL);
    load_ok("return { model = { nn.relu() }, data = { \"text\", path = \"notes.txt\" } }", &c);
    assert_string_equal(c.data_path, "notes.txt");
    config_free(&c);
}

/* The shipped plugins, as `hasten run` checks them. */
static plug_catalog shipped;

static const plugin_spec *find_plugin(const train_config *c, const char *name)
{
    for (int i = 0; i < c->n_plugins; i++)
        if (!strcmp(c->plugins[i].name, name)) return &c->plugins[i];
    return NULL;
}

static const char *param(const plugin_spec *p, const char *key)
{
    for (int i = 0; i < p->n_params; i++)
        if (!strcmp(p->keys[i], key)) return p->values[i];
    return NULL;
}

static void option_fails(train_config *c, const char *arg, const char *want)
{
    char err[512] = "";
    int n = c->n_plugins;
    plugin_spec before = c->plugins[0];
    assert_int_equal(recipe_plugin_option(c, arg, &shipped, err, sizeof err), -1);
    if (!strstr(err, want)) fail_msg("expected '%s' in: %s", want, err);
    assert_null(strchr(err, '\n'));
    assert_int_equal(c->n_plugins, n);   /* c unchanged */
    assert_memory_equal(&c->plugins[0], &before, sizeof before);
}

/* --plugin over a recipe's plugins: a plugin the recipe has takes the given parameters (the others
 * stay), another is added, a later option overrides an earlier one; the written recipe has each
 * plugin once, each key once. */
static void test_plugin_options(void **state)
{
    char dirs[1][512] = { "plugins" }, err[512] = "";
    train_config c;
    (void)state;
    assert_int_equal(plug_catalog_load(&shipped, dirs, 1), 0);
    assert_non_null(plug_find(&shipped, "ema"));
    load_ok("return { model = { nn.relu() }, plugins = { { \"label_smoothing\", alpha = 0.05 },"
            " { \"ema\", half_life = 50, every = 2 } } }", &c);
    const char *args[] = { "label_smoothing:alpha=0.2", "ema:every=3", "mixup", "mixup:alpha=0.3" };
    for (int i = 0; i < 4; i++) {
        int rc = recipe_plugin_option(&c, args[i], &shipped, err, sizeof err);
        if (rc) fail_msg("%s: %s", args[i], err);
    }
    assert_int_equal(c.n_plugins, 3);
    assert_string_equal(c.plugins[0].name, "label_smoothing");   /* the recipe's order kept */
    assert_int_equal(c.plugins[0].n_params, 1);
    assert_string_equal(param(&c.plugins[0], "alpha"), "0.2");
    assert_string_equal(c.plugins[1].name, "ema");
    assert_int_equal(c.plugins[1].n_params, 2);
    assert_string_equal(param(&c.plugins[1], "every"), "3");
    assert_string_equal(param(&c.plugins[1], "half_life"), "50");
    assert_string_equal(c.plugins[2].name, "mixup");
    assert_int_equal(c.plugins[2].n_params, 1);
    assert_string_equal(param(find_plugin(&c, "mixup"), "alpha"), "0.3");
    assert_int_equal(recipe_check_plugins(&c, &shipped, err, sizeof err), 0);
    char *text = round_trip(&c);
    assert_null(strstr(text, "alpha = 0.05"));
    assert_non_null(strstr(text, "{ \"label_smoothing\", alpha = 0.2 }"));
    assert_non_null(strstr(text, "{ \"ema\", every = 3, half_life = 50 }"));
    free(text);

    /* one line naming the option, and nothing applied */
    option_fails(&c, "label_smoothing:alpha=0.2,alpha=0.3", "--plugin label_smoothing:alpha=0.2,alpha=0.3: parameter 'alpha' given twice");
    option_fails(&c, "ema:", "--plugin ema:: no key=value after ':'");
    option_fails(&c, "ema:,", "--plugin ema:,: no key=value after ':'");
    option_fails(&c, "ema:every=2,", "--plugin ema:every=2,: an empty item");
    option_fails(&c, "ema:every=2,,half_life=3", "an empty item");
    option_fails(&c, "ema:half_life=x", "--plugin ema:half_life=x: plugin ema: half_life = 'x': expected a number");
    option_fails(&c, "ema:half_lif=3", "--plugin ema:half_lif=3: plugin ema: unknown parameter 'half_lif'");
    option_fails(&c, "label_smoothing:alpha=0.2,nope=1", "unknown parameter 'nope'");
    option_fails(&c, "nosuch", "--plugin nosuch: plugin 'nosuch' not found");
    config_free(&c);

    /* the recipe's own entries: its file and plugins[i] */
    const char *bad = "return { model = { nn.relu() }, plugins = { \"label_smoothing\", { \"ema\", half_lif = 3 } } }";
    const char *path = test_write_file("plugins.lua", bad, strlen(bad));
    assert_int_equal(recipe_load(path, &c, err, sizeof err), 0);
    assert_int_equal(recipe_check_plugins(&c, &shipped, err, sizeof err), -1);
    char want[800];
    snprintf(want, sizeof want, "%s: plugins[2]: plugin ema: unknown parameter 'half_lif' (known: every, half_life)", path);
    assert_string_equal(err, want);
    config_free(&c);
    load_ok("return { model = { nn.relu() }, plugins = { \"ema\", { \"nosuch\" } } }", &c);
    assert_int_equal(recipe_check_plugins(&c, &shipped, err, sizeof err), -1);
    assert_string_equal(err, "recipe: plugins[2]: plugin 'nosuch' not found (hasten plugins lists them)");
    config_free(&c);
    load_ok("return { model = { nn.relu() }, plugins = { { \"ema\", half_life = \"x\" } } }", &c);
    assert_int_equal(recipe_check_plugins(&c, &shipped, err, sizeof err), -1);
    assert_string_equal(err, "recipe: plugins[1]: plugin ema: half_life = 'x': expected a number");
    /* an option that sets the recipe's bad value right is not held against it */
    assert_int_equal(recipe_plugin_option(&c, "ema:half_life=7", &shipped, err, sizeof err), 0);
    assert_int_equal(recipe_check_plugins(&c, &shipped, err, sizeof err), 0);
    config_free(&c);
    plug_catalog_free(&shipped);
}

static void test_lua_errors(void **state)
{
    char err[512];
    train_config c;
    (void)state;
    load_fails("return {\n  batch = 128,\n  model = nn.sequential { nn.relu() \n", NAME ":4:", NULL);
    load_fails("return { model = { nn.relu() } }\nerror(\"boom\")", NAME ":2:", "expected", NULL);   /* code after return */
    load_fails("error(\"boom\")", NAME ":1: boom", NULL);
    load_fails("error({})", NAME ": error object is not a string", NULL);
    load_fails("\x1bLua\x54", NAME, "binary", NULL);

    const char *bad_text = "return {\n  model = { nn.relu( },\n}\n";
    const char *bad = test_write_file("bad.lua", bad_text, strlen(bad_text));
    assert_int_equal(recipe_load(bad, &c, err, sizeof err), -1);
    assert_non_null(strstr(err, bad));
    assert_non_null(strstr(err, ":2:"));
    assert_null(c.layers);
    assert_int_equal(recipe_load("recipes/no_such_recipe.lua", &c, err, sizeof err), -1);
    assert_non_null(strstr(err, "recipes/no_such_recipe.lua"));
    assert_int_equal(recipe_load_string("return {", NAME, &c, NULL, 0), -1);   /* no buffer: still fails cleanly */
}

static void test_sandbox(void **state)
{
    train_config c;
    (void)state;
    load_ok("assert(io == nil and os == nil and require == nil and dofile == nil and loadfile == nil"
            " and load == nil and print == nil and package == nil and debug == nil)\n"
            "assert(math.floor(2.5) == 2 and string.rep('a', 2) == 'aa' and table.concat({1, 2}) == '12')\n"
            "return { model = { nn.linear(math.floor(10.7)) } }", &c);
    assert_int_equal(c.layers[0].out, 10);
    config_free(&c);
    load_fails("os.execute('touch /tmp/hasten-recipe-pwned')\nreturn {}", NAME ":1:", "os", NULL);
    load_fails("local f = io.open('/etc/passwd')\nreturn {}", NAME ":1:", "io", NULL);

    double t0 = now();
    load_fails("local x = 0\nwhile true do x = x + 1 end", NAME ":2:", "instructions", NULL);
    assert_true(now() - t0 < stop_limit());
    t0 = now();
    load_fails("while true do pcall(function() while true do end end) end", "instructions", NULL);
    assert_true(now() - t0 < stop_limit());

    load_fails("local s = string.rep('x', 1 << 30)\nreturn { model = { nn.relu() } }", "memory cap", NULL);
    load_fails("local t = {}\nfor i = 1, 1e8 do t[i] = string.rep('y', 100) .. i end", NAME, NULL);
}

static void test_write_errors(void **state)
{
    train_config c;
    (void)state;
    load_ok(full_recipe, &c);
    FILE *full = fopen("/dev/full", "w");
    if (full) {
        assert_int_equal(recipe_write(&c, full), -1);
        fclose(full);
    }
    FILE *null = fopen("/dev/null", "w");
    assert_non_null(null);
    c.schedule.kind = SCHED_KIND_COUNT;
    assert_int_equal(recipe_write(&c, null), -1);
    c.schedule.kind = SCHED_COSINE;
    c.layers[2].inner[0].kind = LAYER_KIND_COUNT;
    assert_int_equal(recipe_write(&c, null), -1);
    c.layers[2].inner[0].kind = LAYER_CONV;
    snprintf(c.target_metric, sizeof c.target_metric, "train_acc");
    assert_int_equal(recipe_write(&c, null), -1);
    fclose(null);
    config_free(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mlp_recipe),
        cmocka_unit_test(test_cnn_recipe), cmocka_unit_test(test_text_recipe),
        cmocka_unit_test(test_full_recipe), cmocka_unit_test(test_ghost_and_se),
        cmocka_unit_test(test_data_path),
        cmocka_unit_test(test_defaults_and_forms),
        cmocka_unit_test(test_field_errors),
        cmocka_unit_test(test_layer_errors),
        cmocka_unit_test(test_plugin_errors),
        cmocka_unit_test(test_data_errors),
        cmocka_unit_test(test_plugin_options),
        cmocka_unit_test(test_lua_errors),
        cmocka_unit_test(test_sandbox),
        cmocka_unit_test(test_write_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
