/* The plugin tensor operations that do more than a loop: Newton-Schulz orthogonalisation against
 * its scalar recurrence, magnitude masks, the batch operations (mixes, boxes, cutout, resize,
 * grids); and the model's flat running statistics. On the CPU
 * (tests/unit/test_cuda.c holds each device against this one). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include "engine/cpu/cpu.h"
#include "engine/nn.h"
#include "engine/tensor_ops.h"

/* The quintic iteration on one singular value, as tensor_orthogonalize_ applies it. */
static double ns_scalar(double s, int steps)
{
    for (int k = 0; k < steps; k++) s = 3.4445 * s - 4.7750 * s * s * s + 2.0315 * s * s * s * s * s;
    return s;
}

/* A generalised permutation matrix (one signed entry per row, distinct columns): its singular
 * values are the entries' magnitudes, so the result is known entry by entry. Wide and tall. */
static void test_orthogonalize_exact(void **s)
{
    for (int tall = 0; tall < 2; tall++) {
        int r = tall ? 11 : 5, c = tall ? 5 : 11, a = 5;
        tensor t = {0};
        tensor_resize2(&t, r, c);
        tensor_zero(&t);
        double sv[5] = { 3, -1, 0.5, 2, -0.25 }, norm = 0;
        int col[5] = { 7, 2, 9, 0, 4 };   /* rows or columns 0..4 map to these positions */
        for (int i = 0; i < a; i++) {
            size_t at = tall ? (size_t)col[i] * c + i : (size_t)i * c + col[i];
            t.data[at] = (float)sv[i];
            norm += sv[i] * sv[i];
        }
        tensor_orthogonalize_(&t, 5);
        for (int i = 0; i < a; i++) {
            size_t at = tall ? (size_t)col[i] * c + i : (size_t)i * c + col[i];
            double want = copysign(ns_scalar(fabs(sv[i]) / sqrt(norm), 5), sv[i]);
            assert_float_equal(t.data[at], want, 1e-4);
            assert_true(fabs(want) > 0.5 && fabs(want) < 1.3);   /* pushed towards 1 */
            t.data[at] = 0;
        }
        for (size_t i = 0; i < t.n; i++) assert_float_equal(t.data[i], 0, 1e-6);   /* nothing else */
        tensor_free(&t);
    }
}

/* A dense random matrix keeps its singular vectors: out in^T = U p(S) S U^T is symmetric. */
static void test_orthogonalize_dense(void **s)
{
    rng g;
    rng_seed(&g, 3, 0);
    tensor in = {0}, out = {0};
    tensor_resize(&in, 4, (int[]){ 6, 3, 3, 2 });   /* a conv filter bank: (6, 18) */
    for (size_t i = 0; i < in.n; i++) in.data[i] = rng_normal(&g);
    tensor_copy(&out, &in);
    tensor_orthogonalize_(&out, 5);
    double m[6][6] = {{0}}, tr = 0;
    for (int i = 0; i < 6; i++)
        for (int j = 0; j < 6; j++)
            for (int k = 0; k < 18; k++) m[i][j] += (double)out.data[i * 18 + k] * in.data[j * 18 + k];
    for (int i = 0; i < 6; i++) {
        for (int j = 0; j < i; j++) assert_float_equal(m[i][j], m[j][i], 1e-4 * (fabs(m[i][j]) + 1));
        for (int k = 0; k < 18; k++) tr += (double)out.data[i * 18 + k] * out.data[i * 18 + k];
    }
    assert_true(tr / 6 > 0.4 && tr / 6 < 1.3);   /* mean squared singular value near 1 */
    tensor zero = {0};
    tensor_resize2(&zero, 3, 4);
    tensor_zero(&zero);
    tensor_orthogonalize_(&zero, 5);
    for (size_t i = 0; i < zero.n; i++) assert_true(zero.data[i] == 0);
    tensor_free(&in); tensor_free(&out); tensor_free(&zero);
}

static void test_magnitude_mask(void **s)
{
    float v[10] = { 0.5f, -0.1f, 2, -3, 0.05f, 1, -0.7f, 0.2f, -0.15f, 4 };
    tensor t = {0}, mask = {0};
    tensor_resize2(&t, 2, 5);
    memcpy(t.data, v, sizeof v);
    tensor_resize2(&mask, 2, 5);
    assert_int_equal(tensor_magnitude_mask(&t, 0.3, &mask), 3);   /* 0.05, -0.1, -0.15 */
    float want[10] = { 1, 0, 1, 1, 0, 1, 1, 1, 0, 1 };
    assert_memory_equal(mask.data, want, sizeof want);
    assert_int_equal(tensor_magnitude_mask(&t, 0, &mask), 0);
    assert_int_equal(tensor_magnitude_mask(&t, 1, &mask), 10);
    assert_int_equal(tensor_magnitude_mask(&t, 0.55, &mask), 5);   /* floor(5.5) */
    tensor_free(&t); tensor_free(&mask);
}

/* ColOut's grid: rows and columns in the order given, every channel, every image. */
static void test_take_grid(void **s)
{
    tensor x = {0}, y = {0};
    tensor_resize4(&x, 2, 4, 5, 2);
    for (size_t i = 0; i < x.n; i++) x.data[i] = (float)i;
    int rows[2] = { 0, 3 }, cols[3] = { 1, 2, 4 };
    tensor_take_grid(&y, &x, rows, 2, cols, 3);
    assert_true(y.shape[0] == 2 && y.shape[1] == 2 && y.shape[2] == 3 && y.shape[3] == 2);
    for (int i = 0; i < 2; i++)
        for (int r = 0; r < 2; r++)
            for (int c = 0; c < 3; c++)
                for (int ch = 0; ch < 2; ch++)
                    assert_true(y.data[((i * 2 + r) * 3 + c) * 2 + ch] == x.data[((i * 4 + rows[r]) * 5 + cols[c]) * 2 + ch]);
    tensor_free(&x); tensor_free(&y);
}

/* The batch operations, each against values worked out by hand: row mixes and pasted boxes read
 * every source before writing (rows and images swap), boxes clip to their image, cutout draws its
 * centres from the rng in image order, and a bilinear resize to the same size is the identity. */
static void test_batch_ops(void **s)
{
    tensor t = {0};
    tensor_resize2(&t, 3, 2);
    for (int i = 0; i < 6; i++) t.data[i] = (float)(i + 1);   /* rows [1 2] [3 4] [5 6] */
    tensor_mix_rows_(&t, (int[]){ 2, 0, 1 }, 0.25f);
    static const float mixed[] = { 4, 5, 1.5f, 2.5f, 3.5f, 4.5f };
    for (int i = 0; i < 6; i++) assert_float_equal(t.data[i], mixed[i], 1e-6);

    tensor_resize4(&t, 2, 3, 3, 1);   /* image 0: 0..8, image 1: 10..18 */
    for (int i = 0; i < 18; i++) t.data[i] = (float)(i < 9 ? i : i + 1);
    tensor_box_(&t, (int[]){ 1, 0 }, 1, 1, 5, 1, 0);   /* rows 1-2 (clipped), column 1, swapped */
    static const float swapped[] = { 0, 1, 2, 3, 14, 5, 6, 17, 8, 10, 11, 12, 13, 4, 15, 16, 7, 18 };
    for (int i = 0; i < 18; i++) assert_float_equal(t.data[i], swapped[i], 0);
    tensor_box_(&t, NULL, -1, 0, 2, 3, -1);   /* from row -1 for 2: row 0 only, every column */
    for (int i = 0; i < 18; i++) assert_float_equal(t.data[i], (i % 9 < 3 ? -1 : swapped[i]), 0);

    tensor_resize4(&t, 4, 5, 6, 1);
    for (size_t i = 0; i < t.n; i++) t.data[i] = 1;
    rng r, want;
    rng_seed(&r, 3, 4);
    rng_seed(&want, 3, 4);
    tensor_cutout_(&t, 3, 0, &r);
    for (int i = 0; i < 4; i++) {
        int cy = (int)rng_below(&want, 5), cx = (int)rng_below(&want, 6);
        for (int y = 0; y < 5; y++)
            for (int x = 0; x < 6; x++) {
                int inside = y >= cy - 1 && y <= cy + 1 && x >= cx - 1 && x <= cx + 1;
                assert_float_equal(t.data[(i * 5 + y) * 6 + x], (inside ? 0 : 1), 0);
            }
    }

    tensor src = {0}, out = {0};
    tensor_resize4(&src, 1, 2, 2, 1);
    for (int i = 0; i < 4; i++) src.data[i] = (float)i;   /* [0 1; 2 3] */
    tensor_resize_bilinear(&out, &src, 4, 4);
    assert_true(out.shape[1] == 4 && out.shape[2] == 4);
    assert_float_equal(out.data[0], 0, 1e-6);              /* a corner: clamped to the corner pixel */
    assert_float_equal(out.data[1 * 4 + 1], 0.75, 1e-6);   /* a quarter of the way in both ways */
    assert_float_equal(out.data[15], 3, 1e-6);
    tensor_resize4(&src, 2, 3, 5, 2);
    for (size_t i = 0; i < src.n; i++) src.data[i] = (float)((i * 7) % 11);
    tensor_resize_bilinear(&out, &src, 3, 5);
    for (size_t i = 0; i < src.n; i++) assert_float_equal(out.data[i], src.data[i], 0);
    tensor_free(&t); tensor_free(&src); tensor_free(&out);
}

/* Patch covariance against a direct sum; whitening filters of a known covariance; a random
 * covariance is whitened (f C f^T = lambda / (lambda + eps) for each filter f, the pairs opposite). */
static void test_patch_cov_and_whiten(void **s)
{
    rng g;
    rng_seed(&g, 8, 0);
    tensor x = {0}, cov = {0};
    tensor_resize4(&x, 3, 4, 5, 2);
    for (size_t i = 0; i < x.n; i++) x.data[i] = rng_normal(&g);
    tensor_patch_cov(&cov, &x, 2);
    assert_true(cov.shape[0] == 8 && cov.shape[1] == 8);
    for (int a = 0; a < 8; a++)
        for (int b = 0; b < 8; b++) {
            double sum = 0;
            int n = 0;
            for (int i = 0; i < 3; i++)
                for (int y = 0; y < 3; y++)
                    for (int xx = 0; xx < 4; xx++, n++) {
                        int ya = a / 4, xa = a / 2 % 2, ca = a % 2, yb = b / 4, xb = b / 2 % 2, cb = b % 2;
                        sum += (double)x.data[((i * 4 + y + ya) * 5 + xx + xa) * 2 + ca] *
                               x.data[((i * 4 + y + yb) * 5 + xx + xb) * 2 + cb];
                    }
            assert_float_equal(cov.data[a * 8 + b], sum / n, 1e-5);
        }
    /* diag(4, 1, 9): filters +-e3 / 3, +-e1 / 2, +-e2 (eps tiny) */
    tensor d = {0}, w = {0};
    tensor_resize2(&d, 3, 3);
    tensor_zero(&d);
    d.data[0] = 4; d.data[4] = 1; d.data[8] = 9;
    tensor_resize(&w, 4, (int[]){ 7, 1, 1, 3 });
    tensor_fill(&w, 7);
    assert_int_equal(tensor_whiten_(&w, &d, 1e-9f), 0);
    static const int axis[3] = { 2, 0, 1 };
    static const float mag[3] = { 1 / 3.0f, 0.5f, 1 };
    for (int i = 0; i < 3; i++)
        for (int e = 0; e < 3; e++) {
            float want = e == axis[i] ? mag[i] : 0;
            assert_float_equal(fabsf(w.data[(2 * i) * 3 + e]), want, 1e-5);
            assert_float_equal(w.data[(2 * i + 1) * 3 + e], -w.data[(2 * i) * 3 + e], 0);
        }
    for (int e = 0; e < 3; e++) assert_true(w.data[6 * 3 + e] == 7);   /* a seventh filter is left */
    /* a random covariance: each filter has unit response to its own direction */
    tensor_resize(&w, 4, (int[]){ 16, 2, 2, 2 });
    assert_int_equal(tensor_whiten_(&w, &cov, 1e-6f), 0);
    for (int f = 0; f < 16; f++) {
        double q = 0;
        for (int a = 0; a < 8; a++)
            for (int b = 0; b < 8; b++) q += (double)w.data[f * 8 + a] * cov.data[a * 8 + b] * w.data[f * 8 + b];
        assert_float_equal(q, 1, 1e-2);
    }
    tensor_free(&x); tensor_free(&cov); tensor_free(&d); tensor_free(&w);
}

/* Row centring (gradient centralization) against each row's mean in double, on a conv filter
 * bank (6, 3, 3, 2) and a vector (one row); exp_ and pow_ against libm. */
static void test_center_rows_and_maps(void **s)
{
    rng g;
    rng_seed(&g, 5, 0);
    tensor t = {0}, before = {0}, scratch = {0};
    tensor_resize(&t, 4, (int[]){ 6, 3, 3, 2 });
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < t.n; i++) t.data[i] = rng_normal(&g) + 3;   /* means far from 0 */
        tensor_copy(&before, &t);
        tensor_center_rows_(&t, &scratch);
        int rows = pass ? 1 : 6, cols = (int)(t.n / rows);
        for (int r = 0; r < rows; r++) {
            double mean = 0, after = 0;
            for (int j = 0; j < cols; j++) mean += before.data[(size_t)r * cols + j] / cols;
            for (int j = 0; j < cols; j++) {
                size_t at = (size_t)r * cols + j;
                assert_float_equal(t.data[at], before.data[at] - mean, 1e-5);
                after += t.data[at];
            }
            assert_float_equal(after, 0, 1e-4);
        }
        tensor_resize(&t, 1, (int[]){ 40 });
    }
    for (size_t i = 0; i < t.n; i++) t.data[i] = (float)i / 8;
    tensor_copy(&before, &t);
    tensor_exp_(&t, -0.5f);
    for (size_t i = 0; i < t.n; i++) assert_float_equal(t.data[i], expf(-0.5f * before.data[i]), 1e-6);
    tensor_pow_(&t, 2.5f);
    for (size_t i = 0; i < t.n; i++) assert_float_equal(t.data[i], powf(expf(-0.5f * before.data[i]), 2.5f), 1e-6);
    tensor_free(&t);
    tensor_free(&before);
    tensor_free(&scratch);
}

static void test_dirac(void **s)
{
    tensor w = {0};
    tensor_resize(&w, 4, (int[]){ 3, 3, 3, 2 });   /* out 3 > in 2: filters 0, 1 identities, 2 left */
    tensor_fill(&w, 5);
    tensor_dirac_(&w);
    for (int o = 0; o < 3; o++)
        for (int e = 0; e < 18; e++) {
            float want = o == 2 ? 5 : e == (1 * 3 + 1) * 2 + o ? 1 : 0;
            assert_true(w.data[o * 18 + e] == want);
        }
    tensor_free(&w);
}

/* Running statistics live in one flat vector, mean then variance per batch norm, nested ones too;
 * a model without batch norm has an empty one. */
static void test_flat_stats(void **s)
{
    layer_spec body[] = { { .kind = LAYER_CONV, .out = 4, .k = 3, .stride = 1, .pad = 1 }, { .kind = LAYER_BATCHNORM } };
    layer_spec specs[] = {
        { .kind = LAYER_CONV, .out = 4, .k = 3, .stride = 1, .pad = 1 }, { .kind = LAYER_BATCHNORM },
        { .kind = LAYER_RESIDUAL, .inner = body, .n_inner = 2 }, { .kind = LAYER_GAP },
        { .kind = LAYER_LINEAR, .out = 3, .bias = 1 },
    };
    char err[256];
    nn_model *m = nn_build(specs, 5, 6, 6, 1, 1, err, sizeof err);
    assert_non_null(m);
    assert_int_equal(m->stats.n, 16);
    nn_layer *bn0 = &m->layers[1], *bn1 = &m->layers[2].branch->layers[1];
    assert_ptr_equal(bn0->run_mean.data, m->stats.data);
    assert_ptr_equal(bn0->run_var.data, m->stats.data + 4);
    assert_ptr_equal(bn1->run_mean.data, m->stats.data + 8);
    assert_ptr_equal(bn1->run_var.data, m->stats.data + 12);
    assert_true(m->stats.data[4] == 1 && m->stats.data[0] == 0);
    tensor x = {0};
    tensor_resize4(&x, 2, 6, 6, 1);
    for (size_t i = 0; i < x.n; i++) x.data[i] = (float)(i % 7);
    assert_non_null(nn_forward(m, &x, 1));   /* training mode moves the running statistics */
    assert_true(m->stats.data[0] != 0 && m->stats.data[8] != 0);
    nn_free(m);
    layer_spec plain[] = { { .kind = LAYER_FLATTEN }, { .kind = LAYER_LINEAR, .out = 3, .bias = 1 } };
    m = nn_build(plain, 2, 6, 6, 1, 1, err, sizeof err);
    assert_int_equal(m->stats.n, 0);
    assert_int_equal(m->stats.ndim, 1);
    nn_free(m);
    tensor_free(&x);
}

/* A weights.bin changed on purpose gets its checksum again (bytes 12..15: CRC-32 of all after
 * the 32-byte header), so that what is tested is the check after it. */
static void reseal(char *buf, size_t len)
{
    uint32_t crc = (uint32_t)crc32(0L, (const Bytef *)buf + 32, (uInt)(len - 32));
    memcpy(buf + 12, &crc, 4);
}

/* weights.bin bytes: a round trip restores weights and statistics; every kind of bad file is a
 * clear error. And the row softmax at a temperature. */
static void test_state_and_softmax(void **s)
{
    layer_spec specs[] = { { .kind = LAYER_CONV, .out = 4, .k = 3, .stride = 1, .pad = 1 }, { .kind = LAYER_BATCHNORM },
                           { .kind = LAYER_GAP }, { .kind = LAYER_LINEAR, .out = 3, .bias = 1 } };
    char err[256];
    nn_model *a = nn_build(specs, 4, 6, 6, 1, 1, err, sizeof err), *b = nn_build(specs, 4, 6, 6, 1, 2, err, sizeof err);
    a->stats.data[3] = 0.25f;
    size_t len;
    char *buf = nn_state_pack(a, &len);
    assert_int_equal(nn_state_unpack(b, buf, len, err, sizeof err), 0);
    assert_memory_equal(b->weights.data, a->weights.data, a->weights.n * sizeof(float));
    assert_memory_equal(b->stats.data, a->stats.data, a->stats.n * sizeof(float));
    assert_int_equal(nn_state_unpack(b, buf, len - 4, err, sizeof err), -1);
    assert_non_null(strstr(err, "truncated"));
    /* numbers no training leaves (a damaged file) are refused, and nothing is loaded */
    char *good = malloc(len);
    memcpy(good, buf, len);
    float nan = NAN, neg = -0.5f;
    size_t var1 = a->weights.n + 4 + 1;   /* the first norm's second running variance */
    memcpy(buf + 32 + 7 * sizeof(float), &neg, sizeof neg);   /* a weight may be negative */
    assert_int_equal(nn_state_unpack(b, buf, len, err, sizeof err), -1);   /* but not changed after the fact */
    assert_non_null(strstr(err, "its checksum does not match: the file is damaged"));
    reseal(buf, len);
    assert_int_equal(nn_state_unpack(b, buf, len, err, sizeof err), 0);
    b->weights.data[0] = 7;
    memcpy(buf + 32 + var1 * sizeof(float), &neg, sizeof neg);
    reseal(buf, len);
    assert_int_equal(nn_state_unpack(b, buf, len, err, sizeof err), -1);
    assert_non_null(strstr(err, "1 of its numbers are not finite, or are negative variances"));
    assert_true(b->weights.data[0] == 7);
    memcpy(buf, good, len);
    memcpy(buf + 32 + 5 * sizeof(float), &nan, sizeof nan);   /* a diverged run writes NaN, sealed */
    reseal(buf, len);
    assert_int_equal(nn_state_unpack(b, buf, len, err, sizeof err), -1);
    assert_non_null(strstr(err, "damaged, or the run diverged"));
    /* version 1 (no checksum, no shapes) still loads */
    memcpy(buf, good, len);
    uint32_t v1 = 1, zero = 0;
    memcpy(buf + 8, &v1, 4);
    memcpy(buf + 12, &zero, 4);
    size_t v1_len = 32 + (a->weights.n + a->stats.n) * sizeof(float);
    assert_int_equal(nn_state_unpack(b, buf, v1_len, err, sizeof err), 0);
    assert_memory_equal(b->stats.data, a->stats.data, a->stats.n * sizeof(float));
    memcpy(buf, good, len);
    free(good);
    buf[8] = 9;
    assert_int_equal(nn_state_unpack(b, buf, len, err, sizeof err), -1);
    assert_non_null(strstr(err, "version 9"));
    buf[0] = 'X';
    assert_int_equal(nn_state_unpack(b, buf, len, err, sizeof err), -1);
    assert_non_null(strstr(err, "not a hasten weights file"));
    free(buf);
    layer_spec other[] = { { .kind = LAYER_FLATTEN }, { .kind = LAYER_LINEAR, .out = 3, .bias = 1 } };
    nn_model *c = nn_build(other, 2, 6, 6, 1, 1, err, sizeof err);
    buf = nn_state_pack(c, &len);
    assert_int_equal(nn_state_unpack(b, buf, len, err, sizeof err), -1);
    assert_non_null(strstr(err, "holds 111 weights and 0 statistics"));
    free(buf);
    /* as many weights in other shapes: (2, 36) against (4, 18) */
    layer_spec two[] = { { .kind = LAYER_FLATTEN }, { .kind = LAYER_LINEAR, .out = 2, .bias = 0 } },
               four[] = { { .kind = LAYER_FLATTEN }, { .kind = LAYER_LINEAR, .out = 4, .bias = 0 } };
    nn_model *d = nn_build(two, 2, 6, 6, 1, 1, err, sizeof err), *e = nn_build(four, 2, 3, 6, 1, 1, err, sizeof err);
    assert_int_equal(d->weights.n, e->weights.n);
    buf = nn_state_pack(d, &len);
    assert_int_equal(nn_state_unpack(e, buf, len, err, sizeof err), -1);
    assert_non_null(strstr(err, "parameter 1 is (2, 36) in the file, (4, 18) in the recipe's model"));
    free(buf);
    nn_free(a); nn_free(b); nn_free(c); nn_free(d); nn_free(e);

    tensor t = {0};
    tensor_resize2(&t, 2, 3);
    float v[6] = { 1, 2, 3, 0, 0, 0 };
    memcpy(t.data, v, sizeof v);
    tensor_softmax_rows_(&t, 2);
    double z = exp(0.5) + exp(1.0) + exp(1.5);
    assert_float_equal(t.data[0], exp(0.5) / z, 1e-6);
    assert_float_equal(t.data[2], exp(1.5) / z, 1e-6);
    assert_float_equal(t.data[4], 1 / 3.0, 1e-6);
    tensor_free(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_orthogonalize_exact), cmocka_unit_test(test_orthogonalize_dense),
        cmocka_unit_test(test_magnitude_mask), cmocka_unit_test(test_take_grid), cmocka_unit_test(test_batch_ops), cmocka_unit_test(test_flat_stats),
        cmocka_unit_test(test_patch_cov_and_whiten), cmocka_unit_test(test_dirac),
        cmocka_unit_test(test_center_rows_and_maps),
        cmocka_unit_test(test_state_and_softmax),
    };
    cpu_threads_init(2);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
