/* Arithmetic shared by the CPU kernels (engine/cpu/) and the CUDA kernels (engine/cuda/), so both
 * devices compute the same formulas in the same order: softmax cross-entropy rows, batch-norm
 * channel statistics, the plugins' bilinear resize and tempered softmax, and the text model's
 * layer-norm and causal attention rows. Not always the same bits: nvcc fuses a multiply and an add
 * into one rounding, and the device's expf differs from glibc's in the last place; the parity
 * tests' tolerances allow for both.
 * Not kernels: callers loop (or launch) over rows and channels. */
#ifndef HASTEN_KERNEL_MATH_H
#define HASTEN_KERNEL_MATH_H

#include <math.h>
#include <stddef.h>

#ifdef __CUDACC__
#define KM_HD __host__ __device__
#else
#define KM_HD
#endif

/* Loss of logits z (k) against soft targets t (k); *arg receives the argmax of z. With d not
 * NULL, d = s * (softmax(z) - t). Sums in double. */
KM_HD static inline double xent_row(const float *z, const float *t, int k, float s, float *d, int *arg)
{
    float mx = z[0];
    int best = 0;
    for (int j = 1; j < k; j++)
        if (z[j] > mx) { mx = z[j]; best = j; }
    double sum = 0;
    for (int j = 0; j < k; j++) sum += exp((double)(z[j] - mx));
    double lse = mx + log(sum), li = 0;
    for (int j = 0; j < k; j++) li += t[j] * (lse - z[j]);
    if (d)
        for (int j = 0; j < k; j++) d[j] = s * ((float)exp((double)z[j] - lse) - t[j]);
    *arg = best;
    return li;
}

/* Rows first, first + stride, ... below n of a (n, k) batch: per-row losses into loss (n),
 * gradients into dlogits (n, k; NULL = none) scaled by weight[i] / n (weight NULL = 1). Adds the
 * losses to *total and the rows whose argmax equals labels[i] to *right (labels NULL = none). */
KM_HD static inline void xent_rows(const float *logits, const float *targets, const float *weight, int n,
                                   int k, float *loss, float *dlogits, const int *labels, int first,
                                   int stride, double *total, int *right)
{
    for (int i = first; i < n; i += stride) {
        int arg;
        float s = (weight ? weight[i] : 1.0f) / (float)n;
        double li = xent_row(logits + (size_t)i * k, targets + (size_t)i * k, k, s,
                             dlogits ? dlogits + (size_t)i * k : NULL, &arg);
        loss[i] = (float)li;
        *total += li;
        if (labels && arg == labels[i]) (*right)++;
    }
}

/* One channel's training statistics from the sums s1, s2 of (x - shift) and its square over rows
 * (shift: the channel's first value, for accuracy in float): the batch mean and 1/sqrt(var + eps),
 * and the running mean and (unbiased) variance moved by momentum. */
KM_HD static inline void bn_channel_stats(double s1, double s2, size_t rows, float shift, float momentum,
                                          float eps, float *mean, float *inv_std, float *running_mean,
                                          float *running_var)
{
    double m = s1 / (double)rows, var = s2 / (double)rows - m * m;
    if (var < 0) var = 0;
    *mean = (float)(m + shift);
    *inv_std = (float)(1.0 / sqrt(var + eps));
    double unbiased = rows > 1 ? var * (double)rows / (double)(rows - 1) : var;
    *running_mean = (1 - momentum) * *running_mean + momentum * *mean;
    *running_var = (float)((1 - momentum) * *running_var + momentum * unbiased);
}

/* Channel ch of pixel (y, x) of the (oh, ow) bilinear resize of image in (h, w, c): sample centres
 * aligned (half-pixel offsets), edges clamped. */
KM_HD static inline float bilinear_at(const float *in, int h, int w, int c, int oh, int ow, int y, int x,
                                      int ch)
{
    float fy = fmaxf((y + 0.5f) * ((float)h / oh) - 0.5f, 0), fx = fmaxf((x + 0.5f) * ((float)w / ow) - 0.5f, 0);
    int y0 = (int)fy, y1 = y0 + 1 < h ? y0 + 1 : h - 1, x0 = (int)fx, x1 = x0 + 1 < w ? x0 + 1 : w - 1;
    float wy = fy - y0, wx = fx - x0;
    float a = in[((size_t)y0 * w + x0) * c + ch], b = in[((size_t)y0 * w + x1) * c + ch];
    float d = in[((size_t)y1 * w + x0) * c + ch], e = in[((size_t)y1 * w + x1) * c + ch];
    return (1 - wy) * ((1 - wx) * a + wx * b) + wy * ((1 - wx) * d + wx * e);
}

/* v (k) = softmax(v / temp), in place; the sum in double. */
KM_HD static inline void softmax_row(float *v, size_t k, float temp)
{
    float top = -INFINITY;
    double sum = 0;
    for (size_t j = 0; j < k; j++) top = fmaxf(top, v[j] / temp);
    for (size_t j = 0; j < k; j++) sum += v[j] = expf(v[j] / temp - top);
    for (size_t j = 0; j < k; j++) v[j] = (float)(v[j] / sum);
}

/* ALiBi's slope of head h of heads: 2^(-8 (h + 1) / heads), the geometric sequence of Press et al. */
KM_HD static inline float alibi_slope(int h, int heads)
{
    return exp2f(-8.0f * (float)(h + 1) / (float)heads);
}

/* Row of query position i of causal attention scores v (t), in place: v[j] = softmax over j <= i
 * of v[j] - slope (i - j), and 0 for j > i. The sum in double. */
KM_HD static inline void attn_softmax_row(float *v, int t, int i, float slope)
{
    float top = -INFINITY;
    for (int j = 0; j <= i; j++) {
        v[j] -= slope * (float)(i - j);
        top = fmaxf(top, v[j]);
    }
    double sum = 0;
    for (int j = 0; j <= i; j++) sum += v[j] = expf(v[j] - top);
    for (int j = 0; j <= i; j++) v[j] = (float)(v[j] / sum);
    for (int j = i + 1; j < t; j++) v[j] = 0;
}

/* Backward of a softmax row p (t): d = p (d - sum_j p_j d_j), in place. The sum in double. */
KM_HD static inline void softmax_back_row(const float *p, float *d, int t)
{
    double dot = 0;
    for (int j = 0; j < t; j++) dot += (double)p[j] * d[j];
    for (int j = 0; j < t; j++) d[j] = p[j] * (d[j] - (float)dot);
}

/* One row x (c) of layer norm: xhat and y = gamma xhat + beta; returns 1 / sqrt(var + eps) with
 * the biased variance. Sums in double. */
KM_HD static inline float layernorm_row(const float *x, int c, const float *gamma, const float *beta,
                                        float eps, float *y, float *xhat)
{
    double s1 = 0, s2 = 0;
    for (int j = 0; j < c; j++) s1 += x[j];
    double m = s1 / c;
    for (int j = 0; j < c; j++) s2 += ((double)x[j] - m) * ((double)x[j] - m);
    float inv = (float)(1.0 / sqrt(s2 / c + eps)), mean = (float)m;
    for (int j = 0; j < c; j++) {
        xhat[j] = (x[j] - mean) * inv;
        y[j] = gamma[j] * xhat[j] + beta[j];
    }
    return inv;
}

/* Input gradient of one layer-norm row: dx = inv (g - mean(g) - xhat mean(g xhat)), g = dy gamma.
 * Sums in double. */
KM_HD static inline void layernorm_row_dx(const float *dy, const float *xhat, float inv, int c,
                                          const float *gamma, float *dx)
{
    double sg = 0, sgx = 0;
    for (int j = 0; j < c; j++) {
        double g = (double)dy[j] * gamma[j];
        sg += g;
        sgx += g * xhat[j];
    }
    float mg = (float)(sg / c), mgx = (float)(sgx / c);
    for (int j = 0; j < c; j++) dx[j] = inv * (dy[j] * gamma[j] - mg - xhat[j] * mgx);
}

#endif
