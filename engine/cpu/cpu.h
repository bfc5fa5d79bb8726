/* CPU kernels: OpenBLAS sgemm and elementwise/layer ops threaded over the cores.
 * Layout is NHWC for images and row-major for matrices. Not for shape logic: engine/nn.c does that. */
#ifndef HASTEN_CPU_H
#define HASTEN_CPU_H

#include <stddef.h>
#include <stdint.h>

/* Sets the number of threads for OpenBLAS and the elementwise pool (0 = all cores). Call before
 * training, from one thread. Returns the number in use. */
int cpu_threads_init(int n);
int cpu_threads(void);

/* Runs fn(ctx, lo, hi) over [0, n) split into at most cpu_threads() contiguous chunks, each at
 * least `grain` long; returns when all are done. The split depends only on n, grain and the thread
 * count, so reductions per chunk are deterministic. Not re-entrant. */
typedef void (*cpu_range_fn)(void *ctx, size_t lo, size_t hi, int chunk);
void cpu_parallel(size_t n, size_t grain, cpu_range_fn fn, void *ctx);
/* The chunk count cpu_parallel would use for n and grain. */
int cpu_chunks(size_t n, size_t grain);

/* C = alpha * op(A) op(B) + beta * C, row-major; op = transpose when ta/tb. (M, N, K) as BLAS. */
void cpu_sgemm(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda,
               const float *B, int ldb, float beta, float *C, int ldc);

/* im2col for NHWC: col (n*oh*ow, k*k*c) from x (n, h, w, c), zero outside the image. */
void cpu_im2col(const float *x, int n, int h, int w, int c, int k, int stride, int pad,
                int oh, int ow, float *col);
/* col2im: dx (n, h, w, c) = sum of dcol patches; dx is overwritten. */
void cpu_col2im(const float *dcol, int n, int h, int w, int c, int k, int stride, int pad,
                int oh, int ow, float *dx);

/* Whether a convolution of k x k patches over c channels into out channels is thin: k*k*c <= 16
 * and out a multiple of 8 up to 64 (a first layer's). Such a convolution runs without a patch
 * matrix: y (n*oh*ow, out) = conv(x, wt) with wt (out, k*k*c) as the layer holds it, and the weight
 * gradient dw (out, k*k*c) += its sums of dy (n*oh*ow, out) times x's patches. */
int cpu_conv_thin(int k, int c, int out);
void cpu_conv_thin_forward(const float *x, int n, int h, int w, int c, int k, int stride, int pad,
                           int oh, int ow, const float *wt, int out, float *y);
void cpu_conv_thin_wgrad(const float *x, int n, int h, int w, int c, int k, int stride, int pad,
                         int oh, int ow, const float *dy, int out, float *dw);

/* y[r, j] += b[j] for rows r of a (rows, cols) matrix. */
void cpu_add_bias(float *y, const float *b, size_t rows, int cols);
/* db[j] += sum over rows of dy[r, j]. */
void cpu_sum_rows(const float *dy, size_t rows, int cols, float *db);

void cpu_relu_forward(const float *x, float *y, size_t n);
void cpu_relu_backward(const float *y, const float *dy, float *dx, size_t n);
void cpu_gelu_forward(const float *x, float *y, size_t n);
void cpu_gelu_backward(const float *x, const float *dy, float *dx, size_t n);

/* Max pool NHWC, window k, stride s, no padding; arg (n*oh*ow*c) receives the input offset of each max. */
void cpu_maxpool_forward(const float *x, int n, int h, int w, int c, int k, int s, int oh, int ow,
                         float *y, int32_t *arg);
/* dx (n images of nx_per) = dy (n images of ny_per) scattered to the argmax positions. */
void cpu_maxpool_backward(const float *dy, const int32_t *arg, int n, size_t ny_per, float *dx,
                          size_t nx_per);
void cpu_avgpool_forward(const float *x, int n, int h, int w, int c, int k, int s, int oh, int ow, float *y);
void cpu_avgpool_backward(const float *dy, int n, int h, int w, int c, int k, int s, int oh, int ow, float *dx);

/* Batch norm over rows of a (rows, c) matrix. Training: batch statistics, xhat kept, running stats
 * updated with momentum (unbiased variance, as the literature does). Eval: running statistics.
 * relu fuses a following ReLU into the same pass (y = max(0, bn(x))). */
void cpu_batchnorm_forward(const float *x, size_t rows, int c, const float *gamma, const float *beta,
                           float *running_mean, float *running_var, float momentum, float eps,
                           int train, int relu, float *y, float *xhat, float *inv_std);
/* act = the fused forward's output (dy is masked where act <= 0), or NULL without fusion; the
 * mask is taken from gamma * xhat + beta > 0, which is act > 0 (the forward's arithmetic, in the
 * same order: no contraction into fused multiply-adds under -std=c11), so act is not read.
 * dgamma/dbeta accumulate; dx (may be NULL) is overwritten. */
void cpu_batchnorm_backward(const float *dy, const float *act, const float *xhat, const float *inv_std,
                            size_t rows, int c, const float *gamma, const float *beta, float *dgamma,
                            float *dbeta, float *dx);

/* Batch norm, its ReLU and a 2x2 stride-2 max pool in one pass over x (n, h, w, c), h and w even:
 * statistics and running statistics as cpu_batchnorm_forward, the normalisation's mean and
 * inv_std (c each) written out, y the pooled (n, h/2, w/2, c) output, arg its argmax positions in
 * x (as cpu_maxpool_forward's) where the ReLU passed the maximum and -1 where it did not (no
 * gradient flows there), and xh the xhat at each argmax (pooled size); the full-size xhat is not
 * kept. The backward takes that pool's gradient dy, arg and xh, the same x, mean and inv_std, and
 * gives what cpu_batchnorm_backward with the ReLU's mask would give for the gradient the pool
 * scatters (dx, may be NULL, overwritten). */
void cpu_bn_pool_forward(const float *x, int n, int h, int w, int c, const float *gamma, const float *beta,
                         float *running_mean, float *running_var, float momentum, float eps, int train,
                         float *y, int32_t *arg, float *xh, float *mean, float *inv_std);
void cpu_bn_pool_backward(const float *dy, const int32_t *arg, const float *xh, const float *x, const float *mean,
                          const float *inv_std, int n, int h, int w, int c, const float *gamma, float *dgamma,
                          float *dbeta, float *dx);

/* The text model's layers (engine/cpu/sequence.c): the contracts of engine/ops.h's
 * embed_forward, embed_backward, layernorm_forward, layernorm_backward, sgemm_batched,
 * attn_softmax_forward and attn_softmax_backward. */
void cpu_embed_forward(const float *ids, size_t rows, int t, const float *table, const float *pos, int d,
                       float *y);
void cpu_embed_backward(const float *ids, size_t rows, int t, const float *dy, int d, int vocab,
                        float *dtable, float *dpos);
void cpu_layernorm_forward(const float *x, size_t rows, int c, const float *gamma, const float *beta,
                           float eps, float *y, float *xhat, float *inv_std);
void cpu_layernorm_backward(const float *dy, const float *xhat, const float *inv_std, size_t rows, int c,
                            const float *gamma, float *dgamma, float *dbeta, float *dx);
void cpu_sgemm_batched(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda, size_t sa,
                       const float *B, int ldb, size_t sb, float beta, float *C, int ldc, size_t sc, int count);
void cpu_attn_softmax_forward(float *s, size_t rows, int t, int heads, int alibi);
void cpu_attn_softmax_backward(const float *p, float *dp, size_t rows, int t);

/* Softmax cross-entropy with soft targets, rows of (n, k). loss[i] per sample; returns the mean.
 * dlogits = weight[i] * (softmax - target) / n when dlogits is not NULL (weight NULL = all 1).
 * correct (may be NULL) receives the number of rows whose argmax equals labels[i]. */
float cpu_softmax_xent(const float *logits, const float *targets, const float *weight, int n, int k,
                       float *loss, float *dlogits, const int *labels, int *correct);

#endif
