/* Every layer's backward and the loss against central finite differences; shape errors. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cblas.h>
#include "engine/cpu/cpu.h"
#include "engine/nn.h"

/* Objective f = sum(out * R) for a fixed random R, so dout = R. */
static double objective(nn_model *m, const tensor *x, const tensor *r)
{
    const tensor *out = nn_forward(m, x, 1);
    assert_non_null(out);
    double f = 0;
    for (size_t i = 0; i < out->n; i++) f += (double)out->data[i] * r->data[i];
    return f;
}

static void fill_random(tensor *t, rng *g, float scale)
{
    for (size_t i = 0; i < t->n; i++) t->data[i] = scale * rng_normal(g);
}

/* Inputs whose values are distinct by at least 0.05 and away from 0: no kink within eps. */
static void fill_spaced(tensor *t, rng *g)
{
    int idx[4096];
    assert_true(t->n <= 4096);
    for (size_t i = 0; i < t->n; i++) idx[i] = (int)i;
    rng_shuffle(g, idx, (int)t->n);
    for (size_t i = 0; i < t->n; i++) {
        float v = 0.05f * (float)((int)idx[i] - (int)t->n / 2);
        t->data[i] = v >= 0 ? v + 0.025f : v - 0.025f;
    }
}

static int close_enough(double num, double ana, double tol)
{
    return fabs(num - ana) <= tol * fmax(1.0, fmax(fabs(num), fabs(ana)));
}

enum { FILL_RANDOM, FILL_SPACED, FILL_TOKENS };   /* FILL_TOKENS: ids 0..4, as floats */

/* Checks d f / d x and d f / d params of the model built from specs at input (n, h, w, c). */
static void gradcheck(const layer_spec *specs, int nspecs, int n, int h, int w, int c, int spaced)
{
    char err[256];
    nn_model *m = nn_build(specs, nspecs, h, w, c, 7, err, sizeof err);
    assert_non_null(m);
    rng g;
    rng_seed(&g, 3, 0);
    tensor x = {0}, r = {0};
    tensor_resize4(&x, n, h, w, c);
    if (spaced == FILL_SPACED) fill_spaced(&x, &g);
    else if (spaced == FILL_TOKENS) for (size_t i = 0; i < x.n; i++) x.data[i] = (float)rng_below(&g, 5);
    else fill_random(&x, &g, 1.0f);
    const tensor *out = nn_forward(m, &x, 1);
    assert_non_null(out);
    tensor_resize(&r, out->ndim, out->shape);
    fill_random(&r, &g, 1.0f);
    nn_zero_grad(m);
    nn_backward_full(m, &r);
    const double eps = 1e-2, tol = 2e-2;
    int bad = 0;
    tensor dx = {0};
    tensor_copy(&dx, &m->layers[0].dx);
    assert_int_equal(dx.n, x.n);
    for (size_t i = 0; i < x.n; i++) {
        float keep = x.data[i];
        x.data[i] = keep + (float)eps;
        double fp = objective(m, &x, &r);
        x.data[i] = keep - (float)eps;
        double fm = objective(m, &x, &r);
        x.data[i] = keep;
        double num = (fp - fm) / (2 * eps);
        if (!close_enough(num, dx.data[i], tol)) {
            if (bad++ < 5) print_message("dx[%zu]: numeric %.5f analytic %.5f\n", i, num, dx.data[i]);
        }
    }
    for (int p = 0; p < m->n_params; p++) {
        nn_param *par = m->params[p];
        for (size_t i = 0; i < par->w.n; i++) {
            float keep = par->w.data[i];
            par->w.data[i] = keep + (float)eps;
            double fp = objective(m, &x, &r);
            par->w.data[i] = keep - (float)eps;
            double fm = objective(m, &x, &r);
            par->w.data[i] = keep;
            double num = (fp - fm) / (2 * eps);
            if (!close_enough(num, par->g.data[i], tol)) {
                if (bad++ < 5) print_message("%s[%zu]: numeric %.5f analytic %.5f\n", par->name, i, num, par->g.data[i]);
            }
        }
    }
    assert_int_equal(bad, 0);
    tensor_free(&x); tensor_free(&r); tensor_free(&dx);
    nn_free(m);
}

#define L(...) ((layer_spec){ __VA_ARGS__ })

static void test_linear(void **s)
{
    layer_spec l[] = { L(.kind = LAYER_LINEAR, .out = 4, .bias = 1) };
    gradcheck(l, 1, 3, 1, 1, 5, 0);
    gradcheck(l, 1, 2, 2, 3, 2, 0);   /* implicit flatten of an image */
}

static void test_conv(void **s)
{
    layer_spec a[] = { L(.kind = LAYER_CONV, .out = 3, .k = 3, .stride = 1, .pad = 1, .bias = 1) };
    gradcheck(a, 1, 2, 5, 5, 2, 0);
    layer_spec b[] = { L(.kind = LAYER_CONV, .out = 2, .k = 3, .stride = 2, .pad = 0, .bias = 0) };
    gradcheck(b, 1, 2, 7, 6, 3, 0);
    layer_spec c[] = { L(.kind = LAYER_CONV, .out = 4, .k = 1, .stride = 1, .pad = 0, .bias = 1) };
    gradcheck(c, 1, 2, 3, 3, 3, 0);
    layer_spec d[] = { L(.kind = LAYER_CONV, .out = 2, .k = 5, .stride = 3, .pad = 2, .bias = 1) };
    gradcheck(d, 1, 1, 8, 7, 2, 0);
    /* thin ones (one channel, 3x3, 8 outputs): no patch matrix on the CPU, dx through col2im */
    layer_spec e[] = { L(.kind = LAYER_CONV, .out = 8, .k = 3, .stride = 1, .pad = 1, .bias = 1) };
    assert_true(cpu_conv_thin(3, 1, 8));
    gradcheck(e, 1, 2, 5, 4, 1, 0);
    layer_spec f[] = { L(.kind = LAYER_CONV, .out = 16, .k = 3, .stride = 2, .pad = 0, .bias = 0) };
    gradcheck(f, 1, 2, 7, 6, 1, 0);
}

/* The thin convolutions (no patch matrix) against im2col and OpenBLAS: forward, and the weight
 * gradient added to a dw that already holds values; the specialised shape (3x3, one channel, 16
 * outputs), rows wider than the 32 pixels gathered at a time, 4x4 patches (16 values), two
 * channels, strides and padding. */
static void test_thin_convolutions(void **s)
{
    static const struct { int n, h, w, c, k, stride, pad, out; } cases[] = {
        { 5, 28, 28, 1, 3, 1, 1, 16 }, { 2, 14, 70, 1, 3, 2, 1, 32 }, { 3, 9, 9, 1, 4, 1, 0, 8 },
        { 2, 7, 5, 2, 2, 1, 1, 64 }, { 1, 6, 6, 1, 3, 3, 2, 24 }, { 4, 33, 40, 1, 3, 1, 1, 16 },
    };
    rng g;
    rng_seed(&g, 9, 0);
    for (size_t t = 0; t < sizeof cases / sizeof *cases; t++) {
        int n = cases[t].n, h = cases[t].h, w = cases[t].w, c = cases[t].c, k = cases[t].k;
        int st = cases[t].stride, pad = cases[t].pad, out = cases[t].out, kkc = k * k * c;
        int oh = (h + 2 * pad - k) / st + 1, ow = (w + 2 * pad - k) / st + 1, M = n * oh * ow;
        assert_true(cpu_conv_thin(k, c, out));
        size_t nx = (size_t)n * h * w * c, ny = (size_t)M * out, nw = (size_t)out * kkc;
        float *x = tensor_alloc_floats(nx), *wt = tensor_alloc_floats(nw), *col = tensor_alloc_floats((size_t)M * kkc);
        float *y = tensor_alloc_floats(ny), *ry = tensor_alloc_floats(ny), *dy = tensor_alloc_floats(ny);
        float *dw = tensor_alloc_floats(nw), *rdw = tensor_alloc_floats(nw);
        for (size_t i = 0; i < nx; i++) x[i] = rng_normal(&g);
        for (size_t i = 0; i < ny; i++) dy[i] = rng_normal(&g);
        for (size_t i = 0; i < nw; i++) { wt[i] = rng_normal(&g); dw[i] = rdw[i] = rng_normal(&g); }
        cpu_im2col(x, n, h, w, c, k, st, pad, oh, ow, col);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, out, kkc, 1, col, kkc, wt, kkc, 0, ry, out);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, out, kkc, M, 1, dy, out, col, kkc, 1, rdw, kkc);
        for (size_t i = 0; i < ny; i++) y[i] = NAN;   /* written, never read */
        cpu_conv_thin_forward(x, n, h, w, c, k, st, pad, oh, ow, wt, out, y);
        cpu_conv_thin_wgrad(x, n, h, w, c, k, st, pad, oh, ow, dy, out, dw);
        int bad = 0;
        for (size_t i = 0; i < ny; i++)
            if (!(fabs(y[i] - ry[i]) <= 1e-4 + 1e-5 * fabs(ry[i])) && bad++ < 3)
                print_message("case %zu y[%zu]: %.8g, im2col %.8g\n", t, i, y[i], ry[i]);
        for (size_t i = 0; i < nw; i++)   /* float sums of M unit-normal products: rounding ~ sqrt(M) */
            if (!(fabs(dw[i] - rdw[i]) <= 2e-5 * sqrt((double)M)) && bad++ < 6)
                print_message("case %zu dw[%zu]: %.8g, im2col %.8g\n", t, i, dw[i], rdw[i]);
        assert_int_equal(bad, 0);
        free(x); free(wt); free(col); free(y); free(ry); free(dy); free(dw); free(rdw);
    }
    assert_false(cpu_conv_thin(3, 2, 16));    /* 18 values a patch */
    assert_false(cpu_conv_thin(3, 1, 12));    /* not a multiple of 8 */
    assert_false(cpu_conv_thin(3, 1, 72));    /* more than 64 outputs */
}

/* cpu_sgemm's own kernels for thin products against OpenBLAS: a first convolution's forward
 * (A B^T, K <= 16, N a multiple of 8 up to 64, many rows) and its weight gradient (A^T B over a
 * long K, M a multiple of 8 up to 64, N <= 16); the specialised shapes and general ones, strided
 * operands, beta 0 over a C of NaNs (which must not be read) and beta 1 with alpha. */
static void test_thin_products(void **s)
{
    static const struct { int ta, M, N, K, lda, ldb, ldc; float alpha, beta; } cases[] = {
        { 0, 2048, 16, 9, 9, 9, 16, 1, 0 },  { 0, 1100, 32, 9, 12, 10, 40, 1, 0 },
        { 0, 1500, 64, 9, 9, 9, 64, 0.5f, 1 }, { 0, 1500, 24, 16, 20, 17, 30, 0.5f, 1 },
        { 0, 1024, 8, 3, 3, 3, 8, 2, 0 },
        { 1, 16, 9, 5000, 16, 9, 9, 1, 1 }, { 1, 32, 16, 2048, 40, 20, 17, 0.5f, 1 },
        { 1, 8, 3, 1024, 8, 3, 3, 2, 0 }, { 1, 64, 9, 3001, 64, 9, 9, 1, 0 },
    };
    rng g;
    rng_seed(&g, 5, 0);
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        int ta = cases[k].ta, M = cases[k].M, N = cases[k].N, K = cases[k].K;
        int lda = cases[k].lda, ldb = cases[k].ldb, ldc = cases[k].ldc;
        size_t na = (size_t)(ta ? K : M) * lda, nb = (size_t)(ta ? K : N) * ldb;   /* forward: B is (N, K) */
        float *A = tensor_alloc_floats(na), *B = tensor_alloc_floats(nb);
        float *C = tensor_alloc_floats((size_t)M * ldc), *R = tensor_alloc_floats((size_t)M * ldc);
        for (size_t i = 0; i < na; i++) A[i] = rng_normal(&g);
        for (size_t i = 0; i < nb; i++) B[i] = rng_normal(&g);
        for (size_t i = 0; i < (size_t)M * ldc; i++) R[i] = C[i] = cases[k].beta == 0 ? NAN : rng_normal(&g);
        cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, ta ? CblasNoTrans : CblasTrans, M, N, K,
                    cases[k].alpha, A, lda, B, ldb, cases[k].beta, R, ldc);
        cpu_sgemm(ta, !ta, M, N, K, cases[k].alpha, A, lda, B, ldb, cases[k].beta, C, ldc);
        int bad = 0;
        for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j++) {
                double want = R[(size_t)i * ldc + j], got = C[(size_t)i * ldc + j];
                if (!(fabs(got - want) <= 1e-4 + 1e-5 * fabs(want)) && bad++ < 3)
                    print_message("case %zu [%d, %d]: %.8g, OpenBLAS %.8g\n", k, i, j, got, want);
            }
        assert_int_equal(bad, 0);
        free(A); free(B); free(C); free(R);
    }
}

static void test_pools(void **s)
{
    layer_spec a[] = { L(.kind = LAYER_MAXPOOL, .k = 2) };
    gradcheck(a, 1, 2, 4, 4, 3, 1);
    layer_spec b[] = { L(.kind = LAYER_MAXPOOL, .k = 3, .stride = 2) };
    gradcheck(b, 1, 2, 7, 7, 2, 1);
    layer_spec c[] = { L(.kind = LAYER_AVGPOOL, .k = 2) };
    gradcheck(c, 1, 2, 4, 6, 3, 0);
    layer_spec e[] = { L(.kind = LAYER_AVGPOOL, .k = 2, .stride = 1) };   /* overlapping: blurpool's box */
    gradcheck(e, 1, 2, 5, 4, 3, 0);
    layer_spec d[] = { L(.kind = LAYER_GAP) };
    gradcheck(d, 1, 3, 5, 3, 2, 0);
}

/* A residual block with its branch scaled by s (stochastic depth's inverted scaling): the output
 * is x + s (out_1 - x) and the branch's parameter gradients are s times those at scale 1. */
static void test_residual_scale(void **s)
{
    /* causal: changing the last position's input changes no earlier output */
    {
        char err[256];
        layer_spec at[] = { L(.kind = LAYER_ATTENTION, .heads = 2, .alibi = 1) };
        nn_model *m = nn_build(at, 1, 1, 7, 12, 1, err, sizeof err);
        assert_non_null(m);
        rng g;
        rng_seed(&g, 5, 0);
        tensor x = {0}, before = {0};
        tensor_resize4(&x, 2, 1, 7, 12);
        fill_random(&x, &g, 1.0f);
        tensor_copy(&before, nn_forward(m, &x, 1));
        for (int i = 0; i < 2; i++)
            for (int j = 0; j < 12; j++) x.data[((size_t)i * 7 + 6) * 12 + j] += 1.0f;
        const tensor *after = nn_forward(m, &x, 1);
        for (int i = 0; i < 2; i++)
            for (size_t j = 0; j < 6 * 4; j++)
                assert_float_equal(after->data[(size_t)i * 28 + j], before.data[(size_t)i * 28 + j], 0);
        assert_true(fabsf(after->data[27] - before.data[27]) > 1e-3f);
        tensor_free(&x); tensor_free(&before);
        nn_free(m);
    }
    layer_spec body[] = { L(.kind = LAYER_CONV, .out = 3, .k = 3, .stride = 1, .pad = 1, .bias = 1) };
    layer_spec specs[] = { L(.kind = LAYER_RESIDUAL, .n_inner = 1, .inner = body) };
    char err[128];
    nn_model *a = nn_build(specs, 1, 5, 4, 3, 3, err, sizeof err), *b = nn_build(specs, 1, 5, 4, 3, 3, err, sizeof err);
    b->layers[0].scale = 0.4f;
    rng g;
    rng_seed(&g, 6, 0);
    tensor x = {0}, d = {0};
    tensor_resize4(&x, 2, 5, 4, 3);
    fill_random(&x, &g, 1.0f);
    tensor_resize4(&d, 2, 5, 4, 3);
    fill_random(&d, &g, 1.0f);
    const tensor *ya = nn_forward(a, &x, 1), *yb = nn_forward(b, &x, 1);
    for (size_t i = 0; i < x.n; i++) assert_float_equal(yb->data[i], x.data[i] + 0.4f * (ya->data[i] - x.data[i]), 1e-5);
    nn_zero_grad(a);
    nn_zero_grad(b);
    nn_backward_full(a, &d);
    nn_backward_full(b, &d);
    for (size_t i = 0; i < a->grads.n; i++) assert_float_equal(b->grads.data[i], 0.4f * a->grads.data[i], 1e-5);
    for (size_t i = 0; i < x.n; i++)   /* dx = d + s (dx_1 - d) */
        assert_float_equal(b->layers[0].dx.data[i], d.data[i] + 0.4f * (a->layers[0].dx.data[i] - d.data[i]), 1e-5);
    nn_free(a); nn_free(b);
    tensor_free(&x); tensor_free(&d);
}

/* Builds specs for (h, w, c) inputs and runs them in training mode on n random images: x (the
 * caller frees it) and the output in *y (the model's). Returns the model. */
static nn_model *run_random(const layer_spec *specs, int nspecs, int n, int h, int w, int c, tensor *x,
                            const tensor **y)
{
    char err[128];
    nn_model *m = nn_build(specs, nspecs, h, w, c, 7, err, sizeof err);
    assert_non_null(m);
    rng g;
    rng_seed(&g, 2, 0);
    tensor_resize4(x, n, h, w, c);
    fill_random(x, &g, 1.0f);
    *y = nn_forward(m, x, 1);
    assert_non_null(*y);
    return m;
}

/* Two 2x2 box averages at stride 1 are the 3x3 binomial filter [1 2 1]^2 / 16 (blurpool's). */
static void test_box_box_is_binomial(void **s)
{
    layer_spec boxes[] = { L(.kind = LAYER_AVGPOOL, .k = 2, .stride = 1), L(.kind = LAYER_AVGPOOL, .k = 2, .stride = 1) };
    tensor x = {0};
    const tensor *y;
    nn_model *m = run_random(boxes, 2, 1, 6, 5, 2, &x, &y);
    assert_true(y->shape[1] == 4 && y->shape[2] == 3);
    static const float b[3] = { 0.25f, 0.5f, 0.25f };
    for (int oy = 0; oy < 4; oy++)
        for (int ox = 0; ox < 3; ox++)
            for (int ch = 0; ch < 2; ch++) {
                double want = 0;
                for (int dy = 0; dy < 3; dy++)
                    for (int dx = 0; dx < 3; dx++) want += b[dy] * b[dx] * x.data[((oy + dy) * 5 + ox + dx) * 2 + ch];
                assert_float_equal(y->data[(oy * 3 + ox) * 2 + ch], want, 1e-5);
            }
    nn_free(m);
    tensor_free(&x);
}

/* Squeeze-excite: every gradient (input, both fully connected layers) against finite differences,
 * on a non-square image; and the output is the input times a gate in (0, 1) per image and channel. */
static void test_squeeze_excite(void **s)
{
    layer_spec a[] = { L(.kind = LAYER_SE, .out = 2) };
    gradcheck(a, 1, 2, 3, 4, 5, 0);
    tensor x = {0};
    const tensor *y;
    nn_model *m = run_random(a, 1, 2, 3, 4, 5, &x, &y);
    for (int i = 0; i < 2; i++)
        for (int c = 0; c < 5; c++) {
            float gate = y->data[i * 60 + c] / x.data[i * 60 + c];
            assert_true(gate > 0 && gate < 1);
            for (int p = 0; p < 12; p++) assert_float_equal(y->data[i * 60 + p * 5 + c], gate * x.data[i * 60 + p * 5 + c], 1e-5);
        }
    nn_free(m);
    tensor_free(&x);
}

static void test_batchnorm(void **s)
{
    layer_spec a[] = { L(.kind = LAYER_BATCHNORM) };
    gradcheck(a, 1, 4, 3, 3, 3, 0);
    gradcheck(a, 1, 8, 1, 1, 5, 0);
    gradcheck(a, 1, 3, 3, 3, 16, 0);   /* channels in multiples of 8: the vector passes */
    gradcheck(a, 1, 5, 2, 2, 8, 0);
}

/* Ghost batch norm: groups of 2 examples (the last of 1) normalised apart, exactly as batch norm
 * on each group alone; gradients against finite differences; evaluation ignores the groups. */
static void test_ghost_batchnorm(void **s)
{
    layer_spec ghost[] = { L(.kind = LAYER_BATCHNORM, .ghost = 2) }, whole[] = { L(.kind = LAYER_BATCHNORM) };
    gradcheck(ghost, 1, 5, 3, 3, 3, 0);
    char err[128];
    nn_model *a = nn_build(ghost, 1, 3, 3, 3, 9, err, sizeof err), *b = nn_build(whole, 1, 3, 3, 3, 9, err, sizeof err);
    rng g;
    rng_seed(&g, 5, 0);
    tensor x = {0}, part = {0};
    tensor_resize4(&x, 5, 3, 3, 3);
    fill_random(&x, &g, 2.0f);
    const tensor *ya = nn_forward(a, &x, 1);
    size_t img = 3 * 3 * 3;
    for (int k = 0; k < 3; k++) {
        int n = k < 2 ? 2 : 1;
        tensor_resize4(&part, n, 3, 3, 3);
        memcpy(part.data, x.data + k * 2 * img, n * img * sizeof(float));
        const tensor *yb = nn_forward(b, &part, 1);
        for (size_t i = 0; i < yb->n; i++) assert_float_equal(ya->data[k * 2 * img + i], yb->data[i], 1e-5);
    }
    /* both saw the same three groups in the same order: the same running statistics */
    for (size_t i = 0; i < a->stats.n; i++) assert_float_equal(a->stats.data[i], b->stats.data[i], 1e-6);
    tensor ea = {0};
    tensor_copy(&ea, nn_forward(a, &x, 0));
    const tensor *eb = nn_forward(b, &x, 0);
    for (size_t i = 0; i < ea.n; i++) assert_float_equal(ea.data[i], eb->data[i], 1e-6);
    nn_free(a); nn_free(b);
    tensor_free(&x); tensor_free(&part); tensor_free(&ea);
}

/* Two models that compute the same function, each just run forward: backward from dout, the
 * same input gradient and parameter gradients within 1e-4. */
static void expect_same_gradients(nn_model *a, nn_model *b, const tensor *dout)
{
    nn_zero_grad(a);
    nn_zero_grad(b);
    nn_backward_full(a, dout);
    nn_backward_full(b, dout);
    const tensor *da = &a->layers[0].dx, *db = &b->layers[0].dx;
    assert_int_equal(da->n, db->n);
    for (size_t i = 0; i < da->n; i++) assert_float_equal(da->data[i], db->data[i], 1e-4);
    for (int p = 0; p < a->n_params; p++)
        for (size_t i = 0; i < a->params[p]->g.n; i++)
            assert_float_equal(a->params[p]->g.data[i], b->params[p]->g.data[i], 1e-4);
}

/* The fused batch norm + ReLU kernel against the two layers run apart (a p=0 dropout between
 * them prevents the fusion). */
static void bn_relu_fusion(int c)
{
    char err[128];
    layer_spec fused[] = { L(.kind = LAYER_BATCHNORM), L(.kind = LAYER_RELU),
                           L(.kind = LAYER_CONV, .out = 2, .k = 1, .stride = 1, .bias = 1) };
    layer_spec apart[] = { L(.kind = LAYER_BATCHNORM), L(.kind = LAYER_DROPOUT, .p = 0),
                           L(.kind = LAYER_RELU), L(.kind = LAYER_CONV, .out = 2, .k = 1, .stride = 1, .bias = 1) };
    nn_model *a = nn_build(fused, 3, 5, 5, c, 9, err, sizeof err);
    nn_model *b = nn_build(apart, 4, 5, 5, c, 9, err, sizeof err);
    rng g;
    rng_seed(&g, 11, 0);
    tensor x = {0}, d = {0};
    tensor_resize4(&x, 3, 5, 5, c);
    fill_random(&x, &g, 2.0f);
    for (int p = 0; p < 2; p++)   /* gamma (some negative) and beta, the same in both: the fused */
        for (int j = 0; j < c; j++) {   /* backward takes its mask from gamma xhat + beta */
            float v = p == 0 ? 1.5f * rng_normal(&g) : rng_normal(&g);
            a->layers[0].params[p]->w.data[j] = b->layers[0].params[p]->w.data[j] = v;
        }
    const tensor *ya = nn_forward(a, &x, 1), *yb = nn_forward(b, &x, 1);
    assert_true(a->layers[0].fused && a->layers[1].fused && !b->layers[0].fused);
    for (size_t i = 0; i < ya->n; i++) assert_float_equal(ya->data[i], yb->data[i], 1e-5);
    tensor_copy(&d, ya);
    expect_same_gradients(a, b, &d);
    tensor_free(&x); tensor_free(&d);
    nn_free(a); nn_free(b);
}

static void test_bn_relu_fusion(void **s)
{
    for (int c = 4; c <= 16; c += 12)   /* the scalar passes, then the vector ones */
        bn_relu_fusion(c);
}

/* Batch norm, ReLU and a 2x2 max pool done as one (bn_pool_forward/backward) against the same
 * three layers kept apart by a dropout of 0: the same outputs bit for bit (the same arithmetic),
 * in training and evaluation, and the same gradients up to summation order, with c channels, in
 * ghost groups of `ghost` examples (0: whole batch), on an h x w input (odd: not fused), with
 * gamma frozen or not. */
static void bn_pool_fusion(int c, int ghost, int h, int w, int frozen)
{
    char err[128];
    layer_spec fused[] = { L(.kind = LAYER_BATCHNORM, .ghost = ghost), L(.kind = LAYER_RELU),
                           L(.kind = LAYER_MAXPOOL, .k = 2),
                           L(.kind = LAYER_CONV, .out = 2, .k = 1, .stride = 1, .bias = 1) };
    layer_spec apart[] = { L(.kind = LAYER_BATCHNORM, .ghost = ghost), L(.kind = LAYER_RELU),
                           L(.kind = LAYER_DROPOUT, .p = 0), L(.kind = LAYER_MAXPOOL, .k = 2),
                           L(.kind = LAYER_CONV, .out = 2, .k = 1, .stride = 1, .bias = 1) };
    nn_model *a = nn_build(fused, 4, h, w, c, 9, err, sizeof err);
    nn_model *b = nn_build(apart, 5, h, w, c, 9, err, sizeof err);
    assert_non_null(a);
    assert_non_null(b);
    rng g;
    rng_seed(&g, 13, 0);
    tensor x = {0}, d = {0};
    tensor_resize4(&x, 5, h, w, c);
    fill_random(&x, &g, 2.0f);
    for (int p = 0; p < 2; p++)
        for (int j = 0; j < c; j++) {
            float v = p == 0 ? 1.5f * rng_normal(&g) : rng_normal(&g);
            a->layers[0].params[p]->w.data[j] = b->layers[0].params[p]->w.data[j] = v;
        }
    a->layers[0].params[0]->frozen = b->layers[0].params[0]->frozen = frozen;
    for (int train = 0; train <= 1; train++) {
        const tensor *ya = nn_forward(a, &x, train), *yb = nn_forward(b, &x, train);
        assert_int_equal(a->layers[0].pooled, h % 2 == 0 && w % 2 == 0);
        assert_int_equal(a->layers[2].pooled, a->layers[0].pooled);
        assert_false(b->layers[0].pooled);
        assert_int_equal(ya->n, yb->n);
        assert_memory_equal(ya->data, yb->data, ya->n * sizeof(float));
    }
    tensor_copy(&d, nn_forward(a, &x, 1));
    nn_forward(b, &x, 1);
    expect_same_gradients(a, b, &d);
    tensor_free(&x); tensor_free(&d);
    nn_free(a); nn_free(b);
}

static void test_bn_pool_fusion(void **s)
{
    bn_pool_fusion(16, 0, 6, 8, 0);   /* the vector passes, inlined for 16 and 32 channels */
    bn_pool_fusion(32, 0, 4, 4, 0);
    bn_pool_fusion(5, 0, 6, 4, 0);    /* the scalar ones */
    bn_pool_fusion(16, 2, 4, 4, 0);   /* ghost groups of 2, 2 and 1 examples */
    bn_pool_fusion(8, 0, 4, 6, 1);    /* gamma frozen */
    bn_pool_fusion(8, 0, 5, 6, 0);    /* an odd height: three layers */
    layer_spec l[] = { L(.kind = LAYER_BATCHNORM), L(.kind = LAYER_RELU), L(.kind = LAYER_MAXPOOL, .k = 2) };
    gradcheck(l, 3, 2, 4, 4, 3, FILL_SPACED);
}

/* GELU's kernels (a branch-free tanh through one exponential) against the formula in double,
 * over [-12, 12] and around 0, where 1 - 2 / (e^2u + 1) would lose digits. */
static void test_gelu_accuracy(void)
{
    enum { N = 24001 };
    static float x[N], y[N], dy[N], dx[N];
    for (int i = 0; i < N; i++) {
        x[i] = i < 20000 ? -12 + 24.0f * i / 19999 : 1e-3f * (float)(i - 22000) / 1000;
        dy[i] = 1;
    }
    cpu_gelu_forward(x, y, N);
    cpu_gelu_backward(x, dy, dx, N);
    for (int i = 0; i < N; i++) {
        double v = x[i], t = tanh(0.7978845608 * (v + 0.044715 * v * v * v));
        double f = 0.5 * v * (1 + t), b = 0.5 * (1 + t) + 0.5 * v * (1 - t * t) * 0.7978845608 * (1 + 3 * 0.044715 * v * v);
        if (!(fabs(y[i] - f) <= 1e-6 + 1e-6 * fabs(f)) || !(fabs(dx[i] - b) <= 1e-6 + 1e-6 * fabs(b)))
            fail_msg("gelu(%g): %.9g (want %.9g), derivative %.9g (want %.9g)", v, y[i], f, dx[i], b);
    }
}

static void test_activations(void **s)
{
    test_gelu_accuracy();
    layer_spec a[] = { L(.kind = LAYER_RELU) };
    gradcheck(a, 1, 2, 3, 3, 2, 1);
    layer_spec b[] = { L(.kind = LAYER_GELU) };
    gradcheck(b, 1, 2, 3, 3, 2, 0);
    layer_spec c[] = { L(.kind = LAYER_FLATTEN), L(.kind = LAYER_LINEAR, .out = 3, .bias = 1) };
    gradcheck(c, 2, 2, 3, 2, 2, 0);
}

/* The text model's layers: layer norm; causal attention with and without ALiBi, one and two
 * heads (the gradient reaches queries, keys and values through the mask); a whole pre-norm
 * transformer block; token and position embeddings (ids do not move under a small nudge, so their
 * numeric gradient is the analytic 0). */
static void test_text_layers(void **s)
{
    layer_spec ln[] = { L(.kind = LAYER_LAYERNORM, .eps = 1e-5f) };
    gradcheck(ln, 1, 3, 1, 4, 6, 0);
    for (int alibi = 0; alibi < 2; alibi++)
        for (int heads = 1; heads <= 2; heads++) {
            layer_spec at[] = { L(.kind = LAYER_ATTENTION, .heads = heads, .alibi = alibi) };
            gradcheck(at, 1, 2, 1, 5, 12, 0);
        }
    layer_spec body[] = { L(.kind = LAYER_LAYERNORM, .eps = 1e-5f),
                          L(.kind = LAYER_CONV, .out = 12, .k = 1, .stride = 1, .bias = 1),
                          L(.kind = LAYER_ATTENTION, .heads = 2),
                          L(.kind = LAYER_CONV, .out = 4, .k = 1, .stride = 1, .bias = 1) };
    layer_spec block[] = { L(.kind = LAYER_RESIDUAL, .n_inner = 4, .inner = body),
                           L(.kind = LAYER_LAYERNORM, .eps = 1e-5f),
                           L(.kind = LAYER_CONV, .out = 5, .k = 1, .stride = 1, .bias = 1) };
    gradcheck(block, 3, 2, 1, 6, 4, 0);
    /* the embeddings' small initial values (0.02) are below the check's step, so they are checked
     * under a linear head */
    layer_spec model[] = { L(.kind = LAYER_EMBED, .out = 4, .vocab = 5, .positions = 1),
                           L(.kind = LAYER_CONV, .out = 3, .k = 1, .stride = 1, .bias = 1) };
    gradcheck(model, 2, 2, 1, 6, 1, FILL_TOKENS);
    model[0].positions = 0;
    gradcheck(model, 2, 2, 1, 6, 1, FILL_TOKENS);
}

static void test_residual(void **s)
{
    layer_spec inner[] = { L(.kind = LAYER_CONV, .out = 3, .k = 3, .stride = 1, .pad = 1, .bias = 1),
                           L(.kind = LAYER_GELU) };
    layer_spec a[] = { L(.kind = LAYER_RESIDUAL, .n_inner = 2, .inner = inner) };
    gradcheck(a, 1, 2, 4, 4, 3, 0);
    layer_spec inner2[] = { L(.kind = LAYER_CONV, .out = 4, .k = 3, .stride = 2, .pad = 1, .bias = 1) };
    layer_spec b[] = { L(.kind = LAYER_RESIDUAL, .n_inner = 1, .inner = inner2) };
    gradcheck(b, 1, 2, 6, 6, 2, 0);
}

/* nn_layer_timing: a slot per top-level layer (a residual block is one, its inner layers not
 * counted again), named, with forward and backward seconds summed over the passes while it is on;
 * nothing is added once it is off, and a buffer too short for the model keeps what fits. */
static void test_layer_timing(void **s)
{
    layer_spec inner[] = { L(.kind = LAYER_CONV, .out = 8, .k = 3, .stride = 1, .pad = 1, .bias = 0),
                           L(.kind = LAYER_BATCHNORM) };
    layer_spec specs[] = { L(.kind = LAYER_CONV, .out = 8, .k = 3, .stride = 1, .pad = 1, .bias = 1),
                           L(.kind = LAYER_RESIDUAL, .n_inner = 2, .inner = inner), L(.kind = LAYER_RELU),
                           L(.kind = LAYER_LINEAR, .out = 10, .bias = 1) };
    char err[128];
    nn_model *m = nn_build(specs, 4, 12, 12, 1, 3, err, sizeof err);
    assert_non_null(m);
    rng g;
    rng_seed(&g, 2, 0);
    tensor x = {0};
    tensor_resize4(&x, 16, 12, 12, 1);
    fill_random(&x, &g, 1.0f);
    nn_layer_time t[8], shortbuf[2];
    memset(t, 0x5a, sizeof t);
    nn_layer_timing(t, 8);
    for (int pass = 0; pass < 3; pass++) {
        const tensor *y = nn_forward(m, &x, 1);
        assert_non_null(y);
        nn_zero_grad(m);
        nn_backward(m, y);
    }
    nn_layer_timing(NULL, 0);
    const char *names[] = { "conv1", "residual1", "relu1", "linear1" };
    for (int i = 0; i < 4; i++) {
        assert_string_equal(t[i].name, names[i]);
        assert_int_equal(t[i].calls, 3);
        assert_true(t[i].forward > 0 && t[i].backward > 0);
    }
    for (int i = 4; i < 8; i++) assert_int_equal(t[i].calls, 0);   /* zeroed when turned on */
    nn_layer_time kept = t[1];
    nn_backward(m, nn_forward(m, &x, 1));                            /* off: nothing added */
    assert_true(t[1].forward == kept.forward && t[1].backward == kept.backward && t[1].calls == 3);
    nn_layer_timing(shortbuf, 2);
    nn_backward(m, nn_forward(m, &x, 1));
    nn_layer_timing(NULL, 0);
    assert_string_equal(shortbuf[1].name, "residual1");
    assert_int_equal(shortbuf[1].calls, 1);
    tensor_free(&x);
    nn_free(m);
}

static void test_dropout(void **s)
{
    char err[128];
    layer_spec a[] = { L(.kind = LAYER_DROPOUT, .p = 0.5f) };
    nn_model *m = nn_build(a, 1, 1, 1, 1000, 1, err, sizeof err);
    tensor x = {0}, d = {0};
    tensor_resize4(&x, 4, 1, 1, 1000);
    tensor_fill(&x, 1.0f);
    const tensor *y = nn_forward(m, &x, 1);
    double sum = 0;
    int zeros = 0;
    for (size_t i = 0; i < y->n; i++) { sum += y->data[i]; zeros += y->data[i] == 0; }
    assert_true(fabs(sum / y->n - 1.0) < 0.05);   /* inverted scaling keeps the mean */
    assert_true(zeros > 1800 && zeros < 2200);
    tensor_resize4(&d, 4, 1, 1, 1000);
    tensor_fill(&d, 2.0f);
    nn_backward_full(m, &d);
    for (size_t i = 0; i < y->n; i++) assert_float_equal(m->layers[0].dx.data[i], 2.0f * y->data[i], 1e-6);
    y = nn_forward(m, &x, 0);   /* eval: identity */
    for (size_t i = 0; i < y->n; i++) assert_float_equal(y->data[i], 1.0f, 0);
    tensor_free(&x); tensor_free(&d);
    nn_free(m);
}

static void test_loss(void **s)
{
    enum { N = 3, K = 4 };
    rng g;
    rng_seed(&g, 5, 0);
    float z[N * K], t[N * K], loss[N], d[N * K], w[N] = { 1, 0.5f, 2 };
    for (int i = 0; i < N * K; i++) z[i] = rng_normal(&g);
    for (int i = 0; i < N; i++) {   /* soft targets summing to 1 */
        float sum = 0;
        for (int j = 0; j < K; j++) sum += t[i * K + j] = rng_uniform(&g);
        for (int j = 0; j < K; j++) t[i * K + j] /= sum;
    }
    int labels[N] = { 0, 1, 2 }, correct;
    cpu_softmax_xent(z, t, w, N, K, loss, d, labels, &correct);
    for (int i = 0; i < N * K; i++) {
        float keep = z[i], lp[N], lm[N];
        const double eps = 1e-3;
        z[i] = keep + (float)eps;
        cpu_softmax_xent(z, t, NULL, N, K, lp, NULL, NULL, NULL);
        z[i] = keep - (float)eps;
        cpu_softmax_xent(z, t, NULL, N, K, lm, NULL, NULL, NULL);
        z[i] = keep;
        double fp = 0, fm = 0;   /* weighted mean */
        for (int r = 0; r < N; r++) { fp += w[r] * lp[r] / N; fm += w[r] * lm[r] / N; }
        assert_true(close_enough((fp - fm) / (2 * eps), d[i], 1e-2));
    }
    /* Per-sample loss against the formula for a one-hot row. */
    float z1[K] = { 1, 2, 3, 4 }, t1[K] = { 0, 0, 1, 0 }, l1;
    cpu_softmax_xent(z1, t1, NULL, 1, K, &l1, NULL, NULL, NULL);
    double lse = log(exp(1) + exp(2) + exp(3) + exp(4));
    assert_float_equal(l1, lse - 3, 1e-5);
}

static void test_shape_errors(void **s)
{
    char err[256];
    layer_spec a[] = { L(.kind = LAYER_MAXPOOL, .k = 8) };
    assert_null(nn_build(a, 1, 4, 4, 1, 1, err, sizeof err));
    assert_non_null(strstr(err, "maxpool1"));
    layer_spec b[] = { L(.kind = LAYER_FLATTEN), L(.kind = LAYER_LINEAR, .out = 3, .bias = 1) };
    nn_model *m = nn_build(b, 2, 4, 4, 1, 1, err, sizeof err);
    assert_non_null(m);
    tensor x = {0};
    tensor_resize4(&x, 2, 2, 2, 1);   /* a different size than built for */
    assert_null(nn_forward(m, &x, 1));
    assert_non_null(strstr(m->err, "linear1"));
    assert_non_null(strstr(m->err, "16"));
    tensor_free(&x);
    nn_free(m);
}

/* A GAP head accepts any input size (progressive resizing relies on it). */
static void test_variable_size(void **s)
{
    char err[256];
    layer_spec a[] = { L(.kind = LAYER_CONV, .out = 4, .k = 3, .stride = 1, .pad = 1, .bias = 1),
                       L(.kind = LAYER_GAP), L(.kind = LAYER_LINEAR, .out = 3, .bias = 1) };
    nn_model *m = nn_build(a, 3, 8, 8, 1, 1, err, sizeof err);
    tensor x = {0};
    for (int size = 4; size <= 12; size += 4) {
        tensor_resize4(&x, 2, size, size, 1);
        tensor_fill(&x, 0.5f);
        const tensor *y = nn_forward(m, &x, 1);
        assert_non_null(y);
        assert_int_equal(y->shape[0], 2);
        assert_int_equal(y->shape[3], 3);
        nn_backward(m, y);
    }
    tensor_free(&x);
    nn_free(m);
}

/* Freezing leaves the prefix untouched and skips its backward. */
static void test_freeze_skips(void **s)
{
    char err[256];
    layer_spec a[] = { L(.kind = LAYER_CONV, .out = 4, .k = 3, .stride = 1, .pad = 1, .bias = 1),
                       L(.kind = LAYER_RELU), L(.kind = LAYER_FLATTEN),
                       L(.kind = LAYER_LINEAR, .out = 3, .bias = 1) };
    nn_model *m = nn_build(a, 4, 5, 5, 1, 1, err, sizeof err);
    nn_layer_freeze(&m->layers[0], 1);
    tensor x = {0};
    tensor_resize4(&x, 2, 5, 5, 1);
    tensor_fill(&x, 0.3f);
    const tensor *y = nn_forward(m, &x, 1);
    tensor d = {0};
    tensor_copy(&d, y);
    nn_zero_grad(m);
    nn_backward(m, &d);
    assert_int_equal(m->layers[0].dx.n, 0);   /* never visited */
    assert_int_equal(m->layers[1].dx.n, 0);
    for (size_t i = 0; i < m->params[0]->g.n; i++) assert_float_equal(m->params[0]->g.data[i], 0, 0);
    tensor_free(&x); tensor_free(&d);
    nn_free(m);
}

int main(void)
{
    cpu_threads_init(2);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_linear), cmocka_unit_test(test_conv), cmocka_unit_test(test_pools),
        cmocka_unit_test(test_box_box_is_binomial), cmocka_unit_test(test_thin_products), cmocka_unit_test(test_thin_convolutions), cmocka_unit_test(test_squeeze_excite), cmocka_unit_test(test_residual_scale), cmocka_unit_test(test_batchnorm), cmocka_unit_test(test_ghost_batchnorm), cmocka_unit_test(test_bn_relu_fusion), cmocka_unit_test(test_bn_pool_fusion), cmocka_unit_test(test_activations),
        cmocka_unit_test(test_residual), cmocka_unit_test(test_dropout), cmocka_unit_test(test_loss),
        cmocka_unit_test(test_shape_errors), cmocka_unit_test(test_variable_size),
        cmocka_unit_test(test_freeze_skips), cmocka_unit_test(test_text_layers), cmocka_unit_test(test_layer_timing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
