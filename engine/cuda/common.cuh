/* Shared by the CUDA backend's files: the stream, the cuBLAS handle, fail-fast checks, launch
 * sizes, scratch buffers and host staging. Not for the rest of the engine (cuda.h is its door). */
#ifndef HASTEN_CUDA_COMMON_CUH
#define HASTEN_CUDA_COMMON_CUH

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <stddef.h>
#include <stdint.h>
#include "engine/cuda/cuda.h"
#include "engine/ops.h"
extern "C" {
#include "engine/check.h"
}

/* Every kernel, copy and cuBLAS call goes into this one stream, so work is ordered without
 * host waits; only downloads (the loss, reductions) wait for it. */
extern cudaStream_t cuda_stream;
extern cublasHandle_t cuda_blas;
extern int cuda_sm_count;

#define CUDA_CHECK(call)                                                                         \
    do {                                                                                         \
        cudaError_t e_ = (call);                                                                 \
        if (e_ != cudaSuccess) check_fail(__FILE__, __LINE__, "CUDA: %s: %s", #call,             \
                                          cudaGetErrorString(e_));                               \
    } while (0)

/* cuBLAS's name for a status (cuBLAS is loaded at run time: device.cu). */
const char *cuda_blas_status(cublasStatus_t s);

#define CUBLAS_CHECK(call)                                                                       \
    do {                                                                                         \
        cublasStatus_t s_ = (call);                                                              \
        if (s_ != CUBLAS_STATUS_SUCCESS) check_fail(__FILE__, __LINE__, "cuBLAS: %s: %s", #call, \
                                                    cuda_blas_status(s_));                       \
    } while (0)

/* After a launch: a bad configuration surfaces here, without waiting for the kernel. */
#define CUDA_LAUNCHED() CUDA_CHECK(cudaGetLastError())

enum { CUDA_THREADS = 256 };

/* Blocks for a grid-stride loop over n items: enough to fill the GPU, no more. */
static inline unsigned cuda_grid(size_t n, int threads = CUDA_THREADS)
{
    size_t b = (n + (size_t)threads - 1) / (size_t)threads, cap = (size_t)cuda_sm_count * 32;
    return (unsigned)(b < 1 ? 1 : b > cap ? cap : b);
}

#define CUDA_FOR(i, n) \
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < (n); i += (size_t)gridDim.x * blockDim.x)

/* Index kernels (im2col, pools, gathers) take their element coordinates apart with 32-bit
 * arithmetic: 64-bit division costs more than the memory traffic. */
#define CUDA_FOR32(i, n) \
    for (unsigned i = blockIdx.x * blockDim.x + threadIdx.x; i < (n); i += gridDim.x * blockDim.x)

/* Checks that an index kernel's element count fits; returns it. */
static inline unsigned cuda_count32(size_t n, const char *what)
{
    CHECK(n < (1u << 31), "%s: %zu elements, more than the CUDA index kernels handle (2^31); use a "
          "smaller batch", what, n);
    return (unsigned)n;
}

/* Division by a run-time constant as a multiply-high, an add and a shift, for dividends below
 * 2^31 (the method of PyTorch's IntDivider). */
struct idiv {
    unsigned d, m, s;
};

static inline idiv idiv_make(unsigned d)
{
    idiv f;
    f.d = d;
    f.s = 0;
    while (f.s < 32 && (1ull << f.s) < d) f.s++;
    f.m = (unsigned)(((1ull << 32) * ((1ull << f.s) - d)) / d + 1);
    return f;
}

/* n / d, with n mod d into *r. */
__device__ __forceinline__ unsigned idiv_qr(const idiv &f, unsigned n, unsigned *r)
{
    unsigned q = (__umulhi(n, f.m) + n) >> f.s;
    *r = n - q * f.d;
    return q;
}

__device__ __forceinline__ unsigned idiv_mod(const idiv &f, unsigned n)
{
    unsigned r;
    idiv_qr(f, n, &r);
    return r;
}

/* Device scratch that grows and is never shrunk; one buffer per slot, reused in stream order.
 * Growing waits for the stream, then frees the old buffer. */
enum cuda_scratch_slot {
    SCRATCH_PARTIAL, SCRATCH_CHANNEL, SCRATCH_ROWS, SCRATCH_STAGE0, SCRATCH_STAGE1, SCRATCH_RESULT,
    SCRATCH_BF16, SCRATCH_IMAGES, SCRATCH_COUNT
};
void *cuda_scratch(enum cuda_scratch_slot slot, size_t bytes);

/* Copies bytes of a host array into scratch slot (SCRATCH_STAGE0 or 1) through pinned memory, in
 * stream order; the host array may be reused at once. Returns the device copy. */
void *cuda_stage(enum cuda_scratch_slot slot, const void *host, size_t bytes);

/* Copies bytes of device memory into a pinned host buffer and waits; returns that buffer (valid
 * until the next call). */
const void *cuda_fetch(const void *dev, size_t bytes);

/* Elementwise kernels, one launcher for the family (engine/cuda/layers.cu). */
enum cuda_ew {
    EW_FILL, EW_RELU_F, EW_RELU_B, EW_GELU_F, EW_GELU_B, EW_MUL, EW_ADD, EW_DROPOUT,
    EW_SCALE, EW_ADD_SCALAR, EW_AXPY, EW_LERP, EW_MUL_INPLACE, EW_CLAMP, EW_SIGMOID_F, EW_SIGMOID_B,
    EW_EXP, EW_POW,
};
void cuda_elementwise(enum cuda_ew op, size_t n, const float *a, const float *b, float *out,
                      float *out2, float s1, float s2, uint64_t seed);

/* Layer ops (layers.cu). */
void cuda_im2col(const float *x, int n, int h, int w, int c, int k, int stride, int pad, int oh,
                 int ow, float *col);
void cuda_col2im(const float *dcol, int n, int h, int w, int c, int k, int stride, int pad, int oh,
                 int ow, float *dx);
void cuda_add_bias(float *y, const float *b, size_t rows, int cols);
void cuda_channel_scale(const float *x, const float *e, size_t n, int hw, int c, float *y);
void cuda_sum_rows(const float *dy, size_t rows, int cols, float *db);
void cuda_maxpool_forward(const float *x, int n, int h, int w, int c, int k, int s, int oh, int ow,
                          float *y, int32_t *arg);
void cuda_maxpool_backward(const float *dy, const int32_t *arg, int n, size_t ny_per, float *dx,
                           size_t nx_per);
void cuda_avgpool_forward(const float *x, int n, int h, int w, int c, int k, int s, int oh, int ow,
                          float *y);
void cuda_avgpool_backward(const float *dy, int n, int h, int w, int c, int k, int s, int oh, int ow,
                           float *dx);
void cuda_batchnorm_forward(const float *x, size_t rows, int c, const float *gamma, const float *beta,
                            float *running_mean, float *running_var, float momentum, float eps,
                            int train, int relu, float *y, float *xhat, float *inv_std);
void cuda_batchnorm_backward(const float *dy, const float *act, const float *xhat,
                             const float *inv_std, size_t rows, int c, const float *gamma,
                             const float *beta, float *dgamma, float *dbeta, float *dx);

/* Training ops (train.cu). */
float cuda_softmax_xent(const float *logits, const float *targets, const float *weight, int n, int k,
                        float *loss, float *dlogits, const int *labels, int *correct);
void cuda_sgd_update(const ops_update *u, int count, int nesterov);
void cuda_adamw_update(const ops_update *u, int count, float beta2, float eps);
void cuda_gather(const uint8_t *pixels, const uint8_t *labels, const float *lut, int h, int w,
                 int c, int k, int per, const int *idx, const int *aug, int n, float *x, int *labels_out,
                 float *targets);
void cuda_select_rows(float *data, size_t row, const int *idx, int n);

/* Text model layers (sequence.cu). */
void cuda_embed_forward(const float *ids, size_t rows, int t, const float *table, const float *pos, int d,
                        float *y);
void cuda_embed_backward(const float *ids, size_t rows, int t, const float *dy, int d, int vocab,
                         float *dtable, float *dpos);
void cuda_layernorm_forward(const float *x, size_t rows, int c, const float *gamma, const float *beta,
                            float eps, float *y, float *xhat, float *inv_std);
void cuda_layernorm_backward(const float *dy, const float *xhat, const float *inv_std, size_t rows, int c,
                             const float *gamma, float *dgamma, float *dbeta, float *dx);
void cuda_attn_softmax_forward(float *s, size_t rows, int t, int heads, int alibi);
void cuda_attn_softmax_backward(const float *p, float *dp, size_t rows, int t);

void cuda_mix_rows(float *t, const int *perm, int n, size_t row, float lam);
void cuda_paste_boxes(float *t, const int *perm, const int *boxes, int n, int h, int w, int c, float v);
void cuda_resize_bilinear(const float *src, int n, int h, int w, int c, int oh, int ow, float *dst);
void cuda_take_grid(const float *src, int n, int h, int w, int c, const int *rows, int nr,
                    const int *cols, int nc, float *dst);
void cuda_softmax_rows(float *t, int rows, size_t k, float temp);
double cuda_reduce(enum ops_reduce op, const float *t, size_t n);

#endif
