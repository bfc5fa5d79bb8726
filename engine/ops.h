/* The engine's op table: every operation nn.c, optim.c, the trainer and the plugin tensor ops do on
 * tensor data, once per device (engine/cpu/ops_cpu.c, engine/cuda/). Pointers are memory of the
 * table's device unless a comment says "host". Not for shapes or policy: callers check those. */
#ifndef HASTEN_OPS_H
#define HASTEN_OPS_H

#include <stddef.h>
#include <stdint.h>
#include "engine/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One parameter tensor's optimizer update; coefficients come from its group. */
typedef struct ops_update {
    float *w;            /* (n) values */
    const float *g;      /* (n) gradient */
    float *m, *v;        /* (n) momentum or first moment; second moment (adamw only) */
    size_t n;
    float lr, mu;        /* learning rate; sgd momentum or adamw beta1 */
    float shrink;        /* 1 - lr * weight_decay (decoupled decay) */
    float step, rc2;     /* adamw: lr / (1 - beta1^t) and 1 / sqrt(1 - beta2^t) */
} ops_update;

/* Elementwise maps for plugins: t = f(t, a, s1, s2) over n elements. */
enum ops_map {
    OPS_SCALE,           /* t *= s1 */
    OPS_ADD_SCALAR,      /* t += s1 */
    OPS_AXPY,            /* t += s1 * a */
    OPS_LERP,            /* t += s1 * (a - t) */
    OPS_MUL,             /* t *= a */
    OPS_CLAMP,           /* t = min(max(t, s1), s2) */
    OPS_EXP,             /* t = exp(s1 * t) */
    OPS_POW,             /* t = t ^ s1 (NaN for t < 0 and a fractional s1, as powf) */
};

/* Reductions for plugins, accumulated in double. */
enum ops_reduce { OPS_SUM, OPS_SUMSQ, OPS_MAX, OPS_MIN };

typedef struct engine_ops {
    const char *name;    /* "cpu", "cuda" */
    device_kind device;

    /* ---- memory: alloc aborts on failure; download waits for queued work ---- */
    void *(*alloc)(size_t bytes);
    void (*free)(void *p);
    void (*zero)(void *p, size_t bytes);
    void (*fill)(float *p, float v, size_t n);
    void (*copy)(void *dst, const void *src, size_t bytes);       /* within the device */
    void (*upload)(void *dst, const void *host, size_t bytes);
    void (*download)(void *host, const void *src, size_t bytes);
    void (*sync)(void);   /* returns when all queued work is done */

    /* ---- layers: the contracts of engine/cpu/cpu.h ---- */
    void (*sgemm)(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda,
                  const float *B, int ldb, float beta, float *C, int ldc);
    /* The same product with bf16 multiplies on tensor cores and fp32 accumulation (inputs and C
     * stay fp32, so weights keep fp32 masters). NULL where the device has no such path. */
    void (*sgemm_bf16)(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda,
                       const float *B, int ldb, float beta, float *C, int ldc);
    void (*im2col)(const float *x, int n, int h, int w, int c, int k, int stride, int pad,
                   int oh, int ow, float *col);
    void (*col2im)(const float *dcol, int n, int h, int w, int c, int k, int stride, int pad,
                   int oh, int ow, float *dx);
    /* A convolution without the patch matrix, for shapes where the device does better that way
     * (the CPU's thin convolutions: a first layer's 3x3 patches of one channel, cpu.h). conv_thin
     * says whether (k, c, out) is such a shape; then conv_thin_forward writes y (n*oh*ow, out)
     * from x and wt (out, k*k*c), and conv_thin_wgrad adds the weight gradient to dw. NULL where
     * the device has none: im2col and sgemm then. */
    int (*conv_thin)(int k, int c, int out);
    void (*conv_thin_forward)(const float *x, int n, int h, int w, int c, int k, int stride, int pad,
                              int oh, int ow, const float *wt, int out, float *y);
    void (*conv_thin_wgrad)(const float *x, int n, int h, int w, int c, int k, int stride, int pad,
                            int oh, int ow, const float *dy, int out, float *dw);
    void (*add_bias)(float *y, const float *b, size_t rows, int cols);
    void (*sum_rows)(const float *dy, size_t rows, int cols, float *db);
    void (*relu_forward)(const float *x, float *y, size_t n);
    void (*relu_backward)(const float *y, const float *dy, float *dx, size_t n);
    void (*gelu_forward)(const float *x, float *y, size_t n);
    void (*gelu_backward)(const float *x, const float *dy, float *dx, size_t n);
    void (*maxpool_forward)(const float *x, int n, int h, int w, int c, int k, int s, int oh, int ow,
                            float *y, int32_t *arg);
    void (*maxpool_backward)(const float *dy, const int32_t *arg, int n, size_t ny_per, float *dx,
                             size_t nx_per);
    void (*avgpool_forward)(const float *x, int n, int h, int w, int c, int k, int s, int oh, int ow,
                            float *y);
    void (*avgpool_backward)(const float *dy, int n, int h, int w, int c, int k, int s, int oh, int ow,
                             float *dx);
    void (*batchnorm_forward)(const float *x, size_t rows, int c, const float *gamma,
                              const float *beta, float *running_mean, float *running_var,
                              float momentum, float eps, int train, int relu, float *y, float *xhat,
                              float *inv_std);
    /* As cpu_batchnorm_backward; dgamma or dbeta NULL = not wanted (a frozen parameter). The
     * fused ReLU's mask, act > 0, is gamma * xhat + beta > 0 bit for bit: a device may read act
     * or work it out (the CPU does, one pass over memory less). */
    void (*batchnorm_backward)(const float *dy, const float *act, const float *xhat,
                               const float *inv_std, size_t rows, int c, const float *gamma,
                               const float *beta, float *dgamma, float *dbeta, float *dx);
    /* Batch norm, its fused ReLU and a 2x2 stride-2 max pool as one (cpu.h's cpu_bn_pool_*: the
     * batch norm's output, xhat and the pool's full-size gradient never reach memory; arg is -1
     * where the ReLU stopped a window's maximum, xh the pooled xhat at each argmax; the backward
     * reads x again with the forward's mean and inv_std); h and w even. dgamma or dbeta NULL =
     * not wanted. NULL where the device has none: the three layers then. */
    void (*bn_pool_forward)(const float *x, int n, int h, int w, int c, const float *gamma,
                            const float *beta, float *running_mean, float *running_var, float momentum,
                            float eps, int train, float *y, int32_t *arg, float *xh, float *mean,
                            float *inv_std);
    void (*bn_pool_backward)(const float *dy, const int32_t *arg, const float *xh, const float *x,
                             const float *mean, const float *inv_std, int n, int h, int w, int c,
                             const float *gamma, float *dgamma, float *dbeta, float *dx);
    /* Inverted dropout: mask[i] = 1/(1-p) or 0 from a counter hash of (seed, i), the same on
     * every device; y = x * mask. */
    void (*dropout_forward)(const float *x, float *y, float *mask, size_t n, float p, uint64_t seed);
    void (*sigmoid_forward)(const float *x, float *y, size_t n);
    void (*sigmoid_backward)(const float *y, const float *dy, float *dx, size_t n);   /* dy y (1 - y) */
    /* Squeeze-excite's gating: y[i] = x[i] * e[image, channel of i], x (n / (hw c), hw, c), e (., c). */
    void (*channel_scale)(const float *x, const float *e, size_t n, int hw, int c, float *y);
    void (*mul)(const float *a, const float *b, float *out, size_t n);   /* out = a * b */
    void (*add)(const float *a, const float *b, float *out, size_t n);   /* out = a + b */

    /* ---- sequence layers (text models): a (rows, d) matrix of token rows, rows = sequences x
     * positions, position of row r = r % t ---- */
    /* y (rows, d) = table[ids[r]] + pos[r % t] (pos NULL = none). ids are token ids stored as
     * floats, as the data pipeline delivers them; each is rounded to the nearest integer, which
     * the caller has checked is in [0, vocab). */
    void (*embed_forward)(const float *ids, size_t rows, int t, const float *table, const float *pos,
                          int d, float *y);
    /* dtable (vocab, d) += the sum of the dy rows of each id; dpos (t, d) += the sum of the dy rows
     * at each position; either NULL = not wanted. The same sums, in the same order, on every call. */
    void (*embed_backward)(const float *ids, size_t rows, int t, const float *dy, int d, int vocab,
                           float *dtable, float *dpos);
    /* Layer norm over each row of x (rows, c): inv_std[r] = 1 / sqrt(biased variance + eps),
     * xhat = (x - mean) inv_std, y = gamma xhat + beta. xhat (rows, c) and inv_std (rows) are kept
     * for the backward. */
    void (*layernorm_forward)(const float *x, size_t rows, int c, const float *gamma, const float *beta,
                              float eps, float *y, float *xhat, float *inv_std);
    /* With g = dy gamma: dx = inv_std (g - mean(g) - xhat mean(g xhat)) per row (overwritten; NULL =
     * not wanted); dgamma += sum over rows of dy xhat, dbeta += sum of dy (NULL = not wanted). */
    void (*layernorm_backward)(const float *dy, const float *xhat, const float *inv_std, size_t rows,
                               int c, const float *gamma, float *dgamma, float *dbeta, float *dx);
    /* count products as sgemm, fp32: C + i sc = alpha op(A + i sa) op(B + i sb) + beta (C + i sc). */
    void (*sgemm_batched)(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda,
                          size_t sa, const float *B, int ldb, size_t sb, float beta, float *C, int ldc,
                          size_t sc, int count);
    /* Causal attention weights, in place over s (rows, t) of scores: row r is query position
     * i = r % t of head h = (r / t) % heads; entries j > i become 0, the others
     * softmax_j(s[j] - slope (i - j)), slope = 2^(-8 (h + 1) / heads) with alibi, else 0
     * (Press et al. 2022). */
    void (*attn_softmax_forward)(float *s, size_t rows, int t, int heads, int alibi);
    /* Through that softmax, in place: dp (rows, t) = p (dp - sum_j p_j dp_j) per row. */
    void (*attn_softmax_backward)(const float *p, float *dp, size_t rows, int t);

    /* ---- loss: as cpu_softmax_xent; labels and weight on the device (may be NULL), correct is a
     * host int (may be NULL). Returns the mean loss, so it waits for the device. ---- */
    float (*softmax_xent)(const float *logits, const float *targets, const float *weight, int n,
                          int k, float *loss, float *dlogits, const int *labels, int *correct);

    /* ---- optimizers: one call updates every tensor of u (host array of count entries) ---- */
    void (*sgd_update)(const ops_update *u, int count, int nesterov);
    void (*adamw_update)(const ops_update *u, int count, float beta2, float eps);

    /* ---- data ---- */
    /* x (n, h, w, c) = lut[ch * 256 + byte] of examples idx[0..n) (host) of pixels (N, h, w, c)
     * shifted by a crop (dy, dx) and flipped per aug (host (n, 3): dy, dx, flip; NULL = none), with
     * byte 0 outside the image (engine/data.c's semantics); lut is (c, 256). Each example has
     * per labels (1 for an image, one per token for text): labels_out (n * per) row i * per + q =
     * labels[idx[i] * per + q], and targets (n * per, k) their one-hot rows, each skipped when NULL. */
    void (*gather)(const uint8_t *pixels, const uint8_t *labels, const float *lut, int h, int w,
                   int c, int k, int per, const int *idx, const int *aug, int n, float *x,
                   int *labels_out, float *targets);
    /* Keeps rows idx[0..n) (host) of a (rows, row) matrix as its first n rows, in place. */
    void (*select_rows)(float *data, size_t row, const int *idx, int n);

    /* ---- plugin tensor ops; the batch ones run on the device, their small lists come from the
     * host, and none waits for the device ---- */
    /* Rows of t (n, row): t[i] = lam t[i] + (1 - lam) t[perm[i]], all read first; perm host (n). */
    void (*mix_rows)(float *t, const int *perm, int n, size_t row, float lam);
    /* Images t (n, h, w, c): image i's box boxes[4i..4i+3] = y0, x0, bh, bw (host, inside the
     * image) is set to v, or with perm (host (n), may be NULL) copied from the same box of image
     * perm[i], all read first. */
    void (*paste_boxes)(float *t, const int *perm, const int *boxes, int n, int h, int w, int c, float v);
    /* dst (n, oh, ow, c) = the bilinear resize of src (n, h, w, c) (kernel_math.h's bilinear_at). */
    void (*resize_bilinear)(const float *src, int n, int h, int w, int c, int oh, int ow, float *dst);
    /* dst (n, nr, nc, c) = src (n, h, w, c) at rows[0..nr) x cols[0..nc) (host, in range). */
    void (*take_grid)(const float *src, int n, int h, int w, int c, const int *rows, int nr,
                      const int *cols, int nc, float *dst);
    /* Each row of t (rows, k) = softmax(row / temp). */
    void (*softmax_rows)(float *t, int rows, size_t k, float temp);
    void (*map)(enum ops_map op, float *t, const float *a, size_t n, float s1, float s2);
    double (*reduce)(enum ops_reduce op, const float *t, size_t n);   /* waits for the device */
} engine_ops;

/* The CPU table (always there). */
extern const engine_ops ops_cpu;

/* The table of device d. Aborts for a device that ops_open has not opened: a tensor can only be on
 * a device that was opened first. */
const engine_ops *ops_for(device_kind d);

/* Opens device d (initialises the CUDA context once). Returns 0, or -1 with one line in why:
 * "this build has no CUDA support (...)" or "no CUDA device found (<CUDA's reason>)". */
int ops_open(device_kind d, char *why, size_t len);

/* Resolves "cpu", "cuda" or "auto" into an opened device: auto is CUDA when a device opens, else
 * the CPU, and then note (may be NULL) receives why. Returns 0, -1 with why for cuda that does not
 * open, -2 with why for a name that is none of the three. */
int ops_pick(const char *name, device_kind *d, char *why, size_t len, char *note, size_t note_len);

/* "cpu" or "cuda". */
const char *ops_device_name(device_kind d);

/* One line naming the opened CUDA device ("NVIDIA H100 80GB HBM3, 132 SMs, CUDA 13.0"), or "" when
 * none is open. Static storage. */
const char *ops_cuda_describe(void);

#ifdef __CUDACC__
#define OPS_HOST_DEVICE __host__ __device__
#else
#define OPS_HOST_DEVICE
#endif

/* Counter-based uniform in [0, 1) for element i of stream seed; the dropout masks of every device. */
static inline OPS_HOST_DEVICE float ops_hash_uniform(uint64_t seed, uint64_t i)
{
    uint64_t z = seed + (i + 1) * 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return (float)(z >> 40) * (1.0f / 16777216.0f);
}

#ifdef __cplusplus
}
#endif

#endif
