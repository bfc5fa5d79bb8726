/* Optimizer steps and schedules against values worked out by hand. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <math.h>
#include "engine/optim.h"

/* A 1->1 linear layer: params[0] weight (decay group), params[1] bias (no_decay group). */
static nn_model *tiny(void)
{
    char err[128];
    layer_spec l = { .kind = LAYER_LINEAR, .out = 1, .bias = 1 };
    nn_model *m = nn_build(&l, 1, 1, 1, 1, 1, err, sizeof err);
    assert_non_null(m);
    return m;
}

static void set_wg(nn_model *m, float w, float g)
{
    for (int i = 0; i < 2; i++) { m->params[i]->w.data[0] = w; m->params[i]->g.data[0] = g; }
}

static void lr_all(optim *o, float lr) { for (int g = 0; g < OPTIM_GROUPS; g++) o->groups[g].lr = lr; }

static void test_sgd_momentum(void **s)
{
    nn_model *m = tiny();
    optim o;
    optim_spec sp = { .kind = OPTIM_SGD, .lr = 0.1f, .momentum = 0.9f, .weight_decay = 0.01f };
    optim_init(&o, &sp, m);
    lr_all(&o, 0.1f);
    set_wg(m, 1, 0.5f);
    optim_step(&o, m);
    assert_float_equal(m->params[0]->w.data[0], 0.949f, 1e-6);   /* 1*(1-0.1*0.01) - 0.1*0.5 */
    assert_float_equal(m->params[1]->w.data[0], 0.95f, 1e-6);    /* bias: no decay */
    optim_step(&o, m);                                            /* v = 0.9*0.5 + 0.5 */
    assert_float_equal(m->params[0]->w.data[0], 0.949f * 0.999f - 0.095f, 1e-6);
    nn_free(m);
}

static void test_sgd_nesterov(void **s)
{
    nn_model *m = tiny();
    optim o;
    optim_spec sp = { .kind = OPTIM_SGD, .lr = 0.1f, .momentum = 0.9f, .nesterov = 1, .weight_decay = 0.01f };
    optim_init(&o, &sp, m);
    lr_all(&o, 0.1f);
    set_wg(m, 1, 0.5f);
    optim_step(&o, m);
    assert_float_equal(m->params[0]->w.data[0], 0.999f - 0.1f * (0.5f + 0.45f), 1e-6);
    nn_free(m);
}

static void test_adamw(void **s)
{
    nn_model *m = tiny();
    optim o;
    optim_spec sp = { .kind = OPTIM_ADAMW, .lr = 0.01f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f,
                      .weight_decay = 0.1f, .decay_all = 1 };
    optim_init(&o, &sp, m);
    lr_all(&o, 0.01f);
    set_wg(m, 1, 0.5f);
    optim_step(&o, m);   /* bias-corrected m/sqrt(v) = 1 on the first step */
    assert_float_equal(m->params[0]->w.data[0], 1 * (1 - 0.01f * 0.1f) - 0.01f, 1e-6);
    assert_float_equal(m->params[1]->w.data[0], 1 * (1 - 0.01f * 0.1f) - 0.01f, 1e-6);   /* decay_all */
    m->params[0]->g.data[0] = -0.5f;
    float w1 = m->params[0]->w.data[0];
    optim_step(&o, m);
    /* m = 0.9*0.05 - 0.05 = -0.005, v = 0.999*0.00025 + 0.00025; corrected by 1-0.81 and 1-0.998001 */
    double mh = -0.005 / 0.19, vh = (0.999 * 0.00025 + 0.001 * 0.25) / (1 - 0.998001);
    assert_float_equal(m->params[0]->w.data[0], w1 * (1 - 0.001) - 0.01 * mh / (sqrt(vh) + 1e-8), 1e-5);
    nn_free(m);
}

static void test_frozen_untouched(void **s)
{
    nn_model *m = tiny();
    optim o;
    optim_spec sp = { .kind = OPTIM_SGD, .lr = 0.1f, .momentum = 0.9f, .weight_decay = 0.1f };
    optim_init(&o, &sp, m);
    lr_all(&o, 0.1f);
    set_wg(m, 1, 0.5f);
    m->params[0]->frozen = 1;
    optim_step(&o, m);
    assert_true(m->params[0]->w.data[0] == 1.0f);
    nn_free(m);
}

static void test_schedules(void **s)
{
    sched_spec c = { .kind = SCHED_CONSTANT };
    assert_float_equal(sched_factor(&c, 0.7), 1, 1e-6);
    sched_spec l = { .kind = SCHED_LINEAR_DECAY };
    assert_float_equal(sched_factor(&l, 0), 1, 1e-6);
    assert_float_equal(sched_factor(&l, 0.25), 0.75, 1e-6);
    assert_float_equal(sched_factor(&l, 1), 0, 1e-6);
    sched_spec cs = { .kind = SCHED_COSINE };
    assert_float_equal(sched_factor(&cs, 0.5), 0.5, 1e-6);
    assert_float_equal(sched_factor(&cs, 1), 0, 1e-6);
    sched_spec oc = { .kind = SCHED_ONE_CYCLE, .peak = 10, .pct_up = 0.25f };
    assert_float_equal(sched_factor(&oc, 0), 1, 1e-6);
    assert_float_equal(sched_factor(&oc, 0.125), 5.5, 1e-5);
    assert_float_equal(sched_factor(&oc, 0.25), 10, 1e-5);
    assert_float_equal(sched_factor(&oc, 0.625), 5, 1e-5);
    assert_float_equal(sched_factor(&oc, 1), 0, 1e-5);
    sched_spec w = { .kind = SCHED_CONSTANT, .warmup = 0.1f };
    assert_float_equal(sched_factor(&w, 0.05), 0.5, 1e-6);
    assert_float_equal(sched_factor(&w, 0.2), 1, 1e-6);
    sched_spec lw = { .kind = SCHED_LINEAR_DECAY, .warmup = 0.2f, .final_frac = 0.1f };
    assert_float_equal(sched_factor(&lw, 0.1), 0.5 * (0.1 + 0.9 * 0.9), 1e-6);
    assert_float_equal(sched_factor(&lw, 1), 0.1, 1e-6);
}

static void test_budget_text(void **s)
{
    budget_spec b;
    assert_int_equal(config_parse_budget("5ep", &b), 0);
    assert_int_equal(b.unit, BUDGET_EPOCHS);
    assert_float_equal(b.amount, 5, 0);
    assert_int_equal(config_parse_budget("2000steps", &b), 0);
    assert_int_equal(b.unit, BUDGET_STEPS);
    assert_int_equal(config_parse_budget("30s", &b), 0);
    assert_int_equal(b.unit, BUDGET_SECONDS);
    assert_int_equal(config_parse_budget("6e4samples", &b), 0);
    assert_int_equal(b.unit, BUDGET_SAMPLES);
    assert_float_equal(b.amount, 60000, 0);
    assert_int_equal(config_parse_budget("5 parsecs", &b), -1);
    assert_int_equal(config_parse_budget("5", &b), -1);   /* no unit */
    assert_int_equal(config_parse_budget("-3ep", &b), -1);
    assert_int_equal(config_parse_budget("", &b), -1);
    char out[32];
    b = (budget_spec){ BUDGET_EPOCHS, 2.5 };
    config_format_budget(&b, out, sizeof out);
    assert_string_equal(out, "2.5ep");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sgd_momentum), cmocka_unit_test(test_sgd_nesterov),
        cmocka_unit_test(test_adamw), cmocka_unit_test(test_frozen_untouched),
        cmocka_unit_test(test_schedules), cmocka_unit_test(test_budget_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
