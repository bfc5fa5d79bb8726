/* The CPU op table: the tuned kernels of engine/cpu/ as they are, plus the small loops the engine
 * used to write inline (optimizer updates, dropout, residual sums, plugin maps). */
#include "engine/ops.h"
#include "engine/check.h"
#include "engine/cpu/cpu.h"
#include "engine/data.h"
#include "engine/kernel_math.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

static void *cpu_alloc(size_t bytes) { return tensor_alloc_floats((bytes + sizeof(float) - 1) / sizeof(float)); }
static void cpu_free(void *p) { free(p); }
static void cpu_zero(void *p, size_t bytes) { if (bytes) memset(p, 0, bytes); }
static void cpu_copy(void *dst, const void *src, size_t bytes) { if (bytes && dst != src) memmove(dst, src, bytes); }
static void cpu_sync(void) {}

static void cpu_fill(float *p, float v, size_t n)
{
    for (size_t i = 0; i < n; i++) p[i] = v;
}

static void bn_backward(const float *dy, const float *act, const float *xhat, const float *inv_std,
                        size_t rows, int c, const float *gamma, const float *beta, float *dgamma,
                        float *dbeta, float *dx)
{
    float scratch_g[c], scratch_b[c];   /* a frozen parameter's sums go nowhere */
    cpu_batchnorm_backward(dy, act, xhat, inv_std, rows, c, gamma, beta, dgamma ? dgamma : scratch_g,
                           dbeta ? dbeta : scratch_b, dx);
}

static void bn_pool_backward(const float *dy, const int32_t *arg, const float *xh, const float *x,
                             const float *mean, const float *inv_std, int n, int h, int w, int c,
                             const float *gamma, float *dgamma, float *dbeta, float *dx)
{
    float scratch_g[c], scratch_b[c];   /* a frozen parameter's sums go nowhere */
    cpu_bn_pool_backward(dy, arg, xh, x, mean, inv_std, n, h, w, c, gamma, dgamma ? dgamma : scratch_g,
                         dbeta ? dbeta : scratch_b, dx);
}

static void dropout_forward(const float *x, float *y, float *mask, size_t n, float p, uint64_t seed)
{
    float keep = 1.0f / (1.0f - p);
    for (size_t i = 0; i < n; i++) {
        mask[i] = ops_hash_uniform(seed, i) >= p ? keep : 0.0f;
        y[i] = x[i] * mask[i];
    }
}

static void sigmoid_forward(const float *x, float *y, size_t n)
{
    for (size_t i = 0; i < n; i++) y[i] = 1.0f / (1.0f + expf(-x[i]));
}

static void sigmoid_backward(const float *y, const float *dy, float *dx, size_t n)
{
    for (size_t i = 0; i < n; i++) dx[i] = dy[i] * y[i] * (1 - y[i]);
}

typedef struct gate_args { const float *x, *e; float *y; int hw, c; } gate_args;

static void gate_range(void *p, size_t lo, size_t hi, int chunk)
{
    const gate_args *a = p;
    size_t per = (size_t)a->hw * a->c;
    for (size_t img = lo; img < hi; img++) {
        const float *g = a->e + img * a->c, *x = a->x + img * per;
        float *y = a->y + img * per;
        for (int q = 0; q < a->hw; q++, x += a->c, y += a->c)
            for (int ch = 0; ch < a->c; ch++) y[ch] = x[ch] * g[ch];
    }
}

static void channel_scale(const float *x, const float *e, size_t n, int hw, int c, float *y)
{
    gate_args a = { x, e, y, hw, c };
    cpu_parallel(n / ((size_t)hw * c), 1, gate_range, &a);   /* one image a task */
}

static void mul(const float *a, const float *b, float *out, size_t n)
{
    for (size_t i = 0; i < n; i++) out[i] = a[i] * b[i];
}

static void add(const float *a, const float *b, float *out, size_t n)
{
    for (size_t i = 0; i < n; i++) out[i] = a[i] + b[i];
}

static void sgd_update(const ops_update *u, int count, int nesterov)
{
    for (int k = 0; k < count; k++) {
        float lr = u[k].lr, mu = u[k].mu, shrink = u[k].shrink;
        float *w = u[k].w, *v = u[k].m;
        const float *grad = u[k].g;
        size_t n = u[k].n;
        if (nesterov) {
            for (size_t i = 0; i < n; i++) {
                v[i] = mu * v[i] + grad[i];
                w[i] = w[i] * shrink - lr * (grad[i] + mu * v[i]);
            }
        } else {
            for (size_t i = 0; i < n; i++) {
                v[i] = mu * v[i] + grad[i];
                w[i] = w[i] * shrink - lr * v[i];
            }
        }
    }
}

static void adamw_update(const ops_update *u, int count, float b2, float eps)
{
    for (int k = 0; k < count; k++) {
        float b1 = u[k].mu, shrink = u[k].shrink, step = u[k].step, rc2 = u[k].rc2;
        float *w = u[k].w, *m = u[k].m, *v = u[k].v;
        const float *grad = u[k].g;
        for (size_t i = 0; i < u[k].n; i++) {
            m[i] = b1 * m[i] + (1 - b1) * grad[i];
            v[i] = b2 * v[i] + (1 - b2) * grad[i] * grad[i];
            w[i] = w[i] * shrink - step * m[i] / (sqrtf(v[i]) * rc2 + eps);
        }
    }
}

static void gather(const uint8_t *pixels, const uint8_t *labels, const float *lut, int h, int w,
                   int c, int k, int per, const int *idx, const int *aug, int n, float *x, int *labels_out,
                   float *targets)
{
    size_t img = (size_t)h * w * c;
    for (int i = 0; i < n; i++) {
        const int *a = aug ? aug + 3 * i : (const int[3]){ 0, 0, 0 };
        data_fill_example(x + img * i, pixels + img * idx[i], h, w, c, lut, a[0], a[1], a[2]);
        for (int q = 0; q < per; q++) {
            size_t row = (size_t)i * per + q;
            int label = labels[(size_t)idx[i] * per + q];
            if (labels_out) labels_out[row] = label;
            if (targets) {
                memset(targets + row * k, 0, (size_t)k * sizeof(float));
                targets[row * k + label] = 1.0f;
            }
        }
    }
}

static void select_rows(float *data, size_t row, const int *idx, int n)
{
    float *tmp = tensor_alloc_floats((size_t)n * row);
    for (int i = 0; i < n; i++) memcpy(tmp + (size_t)i * row, data + (size_t)idx[i] * row, row * sizeof(float));
    memcpy(data, tmp, (size_t)n * row * sizeof(float));
    free(tmp);
}

static void mix_rows(float *t, const int *perm, int n, size_t row, float lam)
{
    float *copy = tensor_alloc_floats((size_t)n * row);
    memcpy(copy, t, (size_t)n * row * sizeof(float));
    for (int i = 0; i < n; i++) {
        float *dst = t + (size_t)i * row;
        const float *other = copy + (size_t)perm[i] * row;
        for (size_t j = 0; j < row; j++) dst[j] = lam * dst[j] + (1 - lam) * other[j];
    }
    free(copy);
}

static void paste_boxes(float *t, const int *perm, const int *boxes, int n, int h, int w, int c, float v)
{
    size_t img = (size_t)h * w * c;
    float *copy = NULL;
    if (perm) {
        copy = tensor_alloc_floats((size_t)n * img);
        memcpy(copy, t, (size_t)n * img * sizeof(float));
    }
    for (int i = 0; i < n; i++) {
        const int *b = boxes + 4 * i;
        for (int y = b[0]; y < b[0] + b[2]; y++) {
            size_t at = ((size_t)y * w + b[1]) * c, len = (size_t)b[3] * c;
            float *dst = t + (size_t)i * img + at;
            if (copy) memcpy(dst, copy + (size_t)perm[i] * img + at, len * sizeof(float));
            else for (size_t j = 0; j < len; j++) dst[j] = v;
        }
    }
    free(copy);
}

static void resize_bilinear(const float *src, int n, int h, int w, int c, int oh, int ow, float *dst)
{
    for (int i = 0; i < n; i++) {
        const float *in = src + (size_t)i * h * w * c;
        float *out = dst + (size_t)i * oh * ow * c;
        for (int y = 0; y < oh; y++)
            for (int x = 0; x < ow; x++)
                for (int ch = 0; ch < c; ch++)
                    out[((size_t)y * ow + x) * c + ch] = bilinear_at(in, h, w, c, oh, ow, y, x, ch);
    }
}

static void take_grid(const float *src, int n, int h, int w, int c, const int *rows, int nr,
                      const int *cols, int nc, float *dst)
{
    for (int i = 0; i < n; i++)
        for (int y = 0; y < nr; y++) {
            const float *in = src + (((size_t)i * h + rows[y]) * w) * c;
            float *out = dst + (((size_t)i * nr + y) * nc) * c;
            for (int x = 0; x < nc; x++) memcpy(out + (size_t)x * c, in + (size_t)cols[x] * c, (size_t)c * sizeof(float));
        }
}

static void softmax_rows(float *t, int rows, size_t k, float temp)
{
    for (int r = 0; r < rows; r++) softmax_row(t + (size_t)r * k, k, temp);
}

static void map(enum ops_map op, float *t, const float *a, size_t n, float s1, float s2)
{
    switch (op) {
    case OPS_SCALE:      for (size_t i = 0; i < n; i++) t[i] *= s1; break;
    case OPS_ADD_SCALAR: for (size_t i = 0; i < n; i++) t[i] += s1; break;
    case OPS_AXPY:       for (size_t i = 0; i < n; i++) t[i] += s1 * a[i]; break;
    case OPS_LERP:       for (size_t i = 0; i < n; i++) t[i] += s1 * (a[i] - t[i]); break;
    case OPS_MUL:        for (size_t i = 0; i < n; i++) t[i] *= a[i]; break;
    case OPS_CLAMP:      for (size_t i = 0; i < n; i++) t[i] = fminf(fmaxf(t[i], s1), s2); break;
    case OPS_EXP:        for (size_t i = 0; i < n; i++) t[i] = expf(s1 * t[i]); break;
    case OPS_POW:        for (size_t i = 0; i < n; i++) t[i] = powf(t[i], s1); break;
    }
}

static double reduce(enum ops_reduce op, const float *t, size_t n)
{
    if (!n) return 0;
    double r = op == OPS_MAX || op == OPS_MIN ? t[0] : 0;
    for (size_t i = 0; i < n; i++) {
        switch (op) {
        case OPS_SUM:   r += t[i]; break;
        case OPS_SUMSQ: r += (double)t[i] * t[i]; break;
        case OPS_MAX:   r = t[i] > r ? t[i] : r; break;
        case OPS_MIN:   r = t[i] < r ? t[i] : r; break;
        }
    }
    return r;
}

const engine_ops ops_cpu = {
    .name = "cpu", .device = DEVICE_CPU,
    .alloc = cpu_alloc, .free = cpu_free, .zero = cpu_zero, .fill = cpu_fill, .copy = cpu_copy,
    .upload = cpu_copy, .download = cpu_copy, .sync = cpu_sync,
    .sgemm = cpu_sgemm, .sgemm_bf16 = NULL, .im2col = cpu_im2col, .col2im = cpu_col2im,
    .conv_thin = cpu_conv_thin, .conv_thin_forward = cpu_conv_thin_forward, .conv_thin_wgrad = cpu_conv_thin_wgrad,
    .add_bias = cpu_add_bias, .sum_rows = cpu_sum_rows,
    .relu_forward = cpu_relu_forward, .relu_backward = cpu_relu_backward,
    .gelu_forward = cpu_gelu_forward, .gelu_backward = cpu_gelu_backward,
    .maxpool_forward = cpu_maxpool_forward, .maxpool_backward = cpu_maxpool_backward,
    .avgpool_forward = cpu_avgpool_forward, .avgpool_backward = cpu_avgpool_backward,
    .batchnorm_forward = cpu_batchnorm_forward, .batchnorm_backward = bn_backward,
    .bn_pool_forward = cpu_bn_pool_forward, .bn_pool_backward = bn_pool_backward,
    .dropout_forward = dropout_forward, .mul = mul, .add = add,
    .sigmoid_forward = sigmoid_forward, .sigmoid_backward = sigmoid_backward, .channel_scale = channel_scale,
    .embed_forward = cpu_embed_forward, .embed_backward = cpu_embed_backward,
    .layernorm_forward = cpu_layernorm_forward, .layernorm_backward = cpu_layernorm_backward,
    .sgemm_batched = cpu_sgemm_batched,
    .attn_softmax_forward = cpu_attn_softmax_forward, .attn_softmax_backward = cpu_attn_softmax_backward,
    .softmax_xent = cpu_softmax_xent,
    .sgd_update = sgd_update, .adamw_update = adamw_update,
    .gather = gather, .select_rows = select_rows,
    .mix_rows = mix_rows, .paste_boxes = paste_boxes, .resize_bilinear = resize_bilinear,
    .take_grid = take_grid, .softmax_rows = softmax_rows,
    .map = map, .reduce = reduce,
};
