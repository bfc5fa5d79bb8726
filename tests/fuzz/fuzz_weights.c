/* libFuzzer target for the weights.bin reader (nn_state_unpack), as `hasten sample` and the
 * distillation plugin's teacher use it: each input is one file, loaded into the model that
 * tests/fuzz/tiny.recipe.lua builds (the seeds are weights.bin files of a run of it). Run from
 * the repository root; build and run with `make fuzz`. */
#include "engine/nn.h"
#include "lua/recipe.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static nn_model *model(void)
{
    static nn_model *m;
    if (m) return m;
    train_config c;
    char err[512];
    if (recipe_load("tests/fuzz/tiny.recipe.lua", &c, err, sizeof err)) {
        fprintf(stderr, "fuzz_weights: %s (run from the repository root)\n", err);
        abort();
    }
    m = nn_build(c.layers, c.n_layers, 28, 28, 1, c.seed, err, sizeof err);
    config_free(&c);
    if (!m) abort();
    return m;
}

/* Whether all n floats at p are finite. */
static int all_finite(const float *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(p[i])) return 0;
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    nn_model *m = model();
    char err[512] = "";
    if (nn_state_unpack(m, data, size, err, sizeof err) == 0) {
        /* What is accepted is usable: no NaN or infinity taken for a trained weight. */
        if (!all_finite(m->weights.data, m->weights.n) || !all_finite(m->stats.data, m->stats.n)) abort();
    } else if (!err[0] || strchr(err, '\n')) abort();   /* a failure says why, in one line */
    return 0;
}
