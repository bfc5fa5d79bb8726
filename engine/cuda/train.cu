/* CUDA training ops: softmax cross-entropy, fused optimizer updates, the batch gather with its
 * augmentation, row selection and plugin reductions. Same contracts as the CPU table. */
#include "engine/cuda/common.cuh"
#include "engine/kernel_math.h"
#include <math.h>

/* ---- loss ----------------------------------------------------------------------------------- */

enum { XENT_THREADS = 512 };

/* One block, one row per thread pass, as the CPU computes it (double sums); the block then adds
 * the losses in a fixed order into result (mean, correct). */
__global__ void __launch_bounds__(XENT_THREADS)
xent_kernel(const float *__restrict__ logits, const float *__restrict__ targets,
            const float *__restrict__ weight, int n, int k, float *__restrict__ loss,
            float *__restrict__ dlogits, const int *__restrict__ labels, float *result)
{
    __shared__ double sh_loss[XENT_THREADS];
    __shared__ int sh_right[XENT_THREADS];
    double total = 0;
    int right = 0;
    xent_rows(logits, targets, weight, n, k, loss, dlogits, labels, threadIdx.x, blockDim.x, &total, &right);
    sh_loss[threadIdx.x] = total;
    sh_right[threadIdx.x] = right;
    __syncthreads();
    for (int half = blockDim.x / 2; half > 0; half /= 2) {
        if (threadIdx.x < half) {
            sh_loss[threadIdx.x] += sh_loss[threadIdx.x + half];
            sh_right[threadIdx.x] += sh_right[threadIdx.x + half];
        }
        __syncthreads();
    }
    if (threadIdx.x == 0) {
        result[0] = (float)(sh_loss[0] / n);
        result[1] = (float)sh_right[0];
    }
}

float cuda_softmax_xent(const float *logits, const float *targets, const float *weight, int n, int k,
                        float *loss, float *dlogits, const int *labels, int *correct)
{
    if (n < 1) {
        if (correct) *correct = 0;
        return NAN;
    }
    float *result = (float *)cuda_scratch(SCRATCH_RESULT, 2 * sizeof(float));
    xent_kernel<<<1, XENT_THREADS, 0, cuda_stream>>>(logits, targets, weight, n, k, loss, dlogits,
                                                     labels, result);
    CUDA_LAUNCHED();
    const float *r = (const float *)cuda_fetch(result, 2 * sizeof(float));
    if (correct) *correct = (int)r[1];
    return r[0];
}

/* ---- optimizers ------------------------------------------------------------------------------
 * Every tensor of a step in one launch: tensor t owns blocks [start[t], start[t+1]), each block a
 * chunk of UPDATE_CHUNK elements. The table travels as a kernel parameter. */

enum { UPDATE_MAX = 32, UPDATE_CHUNK = 4 * CUDA_THREADS };

struct update_batch {
    ops_update u[UPDATE_MAX];
    int start[UPDATE_MAX + 1];
    int count;
    int nesterov;
    float beta2, eps;
};

__device__ inline int tensor_of_block(const update_batch &b, int block)
{
    int t = 0;
    while (t + 1 < b.count && b.start[t + 1] <= block) t++;
    return t;
}

__global__ void sgd_kernel(const update_batch b)
{
    int t = tensor_of_block(b, blockIdx.x);
    const ops_update &u = b.u[t];
    size_t base = (size_t)(blockIdx.x - b.start[t]) * UPDATE_CHUNK;
    for (size_t i = base + threadIdx.x; i < u.n && i < base + UPDATE_CHUNK; i += blockDim.x) {
        float v = u.mu * u.m[i] + u.g[i];
        u.m[i] = v;
        u.w[i] = u.w[i] * u.shrink - u.lr * (b.nesterov ? u.g[i] + u.mu * v : v);
    }
}

__global__ void adamw_kernel(const update_batch b)
{
    int t = tensor_of_block(b, blockIdx.x);
    const ops_update &u = b.u[t];
    size_t base = (size_t)(blockIdx.x - b.start[t]) * UPDATE_CHUNK;
    for (size_t i = base + threadIdx.x; i < u.n && i < base + UPDATE_CHUNK; i += blockDim.x) {
        float g = u.g[i];
        float m = u.mu * u.m[i] + (1 - u.mu) * g;
        float v = b.beta2 * u.v[i] + (1 - b.beta2) * g * g;
        u.m[i] = m;
        u.v[i] = v;
        u.w[i] = u.w[i] * u.shrink - u.step * m / (sqrtf(v) * u.rc2 + b.eps);
    }
}

static void launch_updates(const ops_update *u, int count, int adamw, int nesterov, float beta2, float eps)
{
    for (int first = 0; first < count; first += UPDATE_MAX) {
        update_batch b;
        b.count = count - first < UPDATE_MAX ? count - first : UPDATE_MAX;
        b.nesterov = nesterov;
        b.beta2 = beta2;
        b.eps = eps;
        int blocks = 0;
        for (int t = 0; t < b.count; t++) {
            b.u[t] = u[first + t];
            b.start[t] = blocks;
            blocks += (int)((u[first + t].n + UPDATE_CHUNK - 1) / UPDATE_CHUNK);
        }
        b.start[b.count] = blocks;
        if (!blocks) continue;
        if (adamw) adamw_kernel<<<blocks, CUDA_THREADS, 0, cuda_stream>>>(b);
        else sgd_kernel<<<blocks, CUDA_THREADS, 0, cuda_stream>>>(b);
        CUDA_LAUNCHED();
    }
}

void cuda_sgd_update(const ops_update *u, int count, int nesterov)
{
    launch_updates(u, count, 0, nesterov, 0, 0);
}

void cuda_adamw_update(const ops_update *u, int count, float beta2, float eps)
{
    launch_updates(u, count, 1, 0, beta2, eps);
}

/* ---- data ----------------------------------------------------------------------------------- */

struct gather_geom {
    int h, w, c, k, n;
    idiv c_, w_, h_, k_;
};

/* x(i, y, x', ch) = lut[ch][src(y + dy, x'' + dx)], x'' = w-1-x' when flipped; byte 0 outside. */
__global__ void gather_kernel(const uint8_t *__restrict__ pixels, const float *__restrict__ lut,
                              gather_geom g, const int *__restrict__ idx, const int *__restrict__ aug,
                              unsigned total, float *__restrict__ x)
{
    CUDA_FOR32(e, total) {
        unsigned ch, px, py;
        unsigned i = idiv_qr(g.h_, idiv_qr(g.w_, idiv_qr(g.c_, e, &ch), &px), &py);
        int dy = aug ? aug[3 * i] : 0, dx = aug ? aug[3 * i + 1] : 0, flip = aug ? aug[3 * i + 2] : 0;
        int sy = (int)py + dy, sx = (flip ? g.w - 1 - (int)px : (int)px) + dx;
        int v = 0;
        if (sy >= 0 && sy < g.h && sx >= 0 && sx < g.w)
            v = pixels[(((size_t)idx[i] * g.h + sy) * g.w + sx) * g.c + ch];
        x[e] = lut[ch * 256 + v];
    }
}

__global__ void labels_kernel(const uint8_t *__restrict__ labels, const int *__restrict__ idx,
                              gather_geom g, unsigned total, int *__restrict__ labels_out,
                              float *__restrict__ targets)
{
    CUDA_FOR32(e, total) {
        unsigned j, i = idiv_qr(g.k_, e, &j);
        unsigned label = labels[idx[i]];
        if (targets) targets[e] = j == label ? 1.0f : 0.0f;
        if (labels_out && j == 0) labels_out[i] = (int)label;
    }
}

void cuda_gather(const uint8_t *pixels, const uint8_t *labels, const float *lut, int h, int w,
                 int c, int k, const int *idx, const int *aug, int n, float *x, int *labels_out,
                 float *targets)
{
    if (n < 1) return;
    const int *d_idx = (const int *)cuda_stage(SCRATCH_STAGE0, idx, (size_t)n * sizeof(int));
    const int *d_aug = aug ? (const int *)cuda_stage(SCRATCH_STAGE1, aug, (size_t)n * 3 * sizeof(int)) : NULL;
    gather_geom g = { h, w, c, k, n, idiv_make((unsigned)c), idiv_make((unsigned)w), idiv_make((unsigned)h),
                      idiv_make((unsigned)k) };
    unsigned total = cuda_count32((size_t)n * h * w * c, "gather");
    gather_kernel<<<cuda_grid(total), CUDA_THREADS, 0, cuda_stream>>>(pixels, lut, g, d_idx, d_aug, total, x);
    CUDA_LAUNCHED();
    if (!labels_out && !targets) return;
    unsigned nk = cuda_count32((size_t)n * k, "gather labels");
    labels_kernel<<<cuda_grid(nk), CUDA_THREADS, 0, cuda_stream>>>(labels, d_idx, g, nk, labels_out, targets);
    CUDA_LAUNCHED();
}

__global__ void rows_kernel(const float *__restrict__ src, idiv row, const int *__restrict__ idx,
                            unsigned total, float *__restrict__ dst)
{
    CUDA_FOR32(e, total) {
        unsigned j, i = idiv_qr(row, e, &j);
        dst[e] = src[(size_t)idx[i] * row.d + j];
    }
}

void cuda_select_rows(float *data, size_t row, const int *idx, int n)
{
    unsigned total = cuda_count32((size_t)n * row, "select_rows");
    if (!total) return;
    const int *d_idx = (const int *)cuda_stage(SCRATCH_STAGE0, idx, (size_t)n * sizeof(int));
    float *tmp = (float *)cuda_scratch(SCRATCH_ROWS, total * sizeof(float));
    rows_kernel<<<cuda_grid(total), CUDA_THREADS, 0, cuda_stream>>>(data, idiv_make((unsigned)row), d_idx, total, tmp);
    CUDA_LAUNCHED();
    CUDA_CHECK(cudaMemcpyAsync(data, tmp, (size_t)total * sizeof(float), cudaMemcpyDeviceToDevice, cuda_stream));
}

/* ---- reductions ----------------------------------------------------------------------------- */

__device__ inline double reduce_step(enum ops_reduce op, double acc, double v)
{
    switch (op) {
    case OPS_SUM:   return acc + v;
    case OPS_SUMSQ: return acc + v * v;
    case OPS_MAX:   return v > acc ? v : acc;
    default:        return v < acc ? v : acc;
    }
}

/* Per-block partials over a grid-stride share, in double; the host adds the blocks in order. */
__global__ void reduce_kernel(enum ops_reduce op, const float *__restrict__ t, size_t n, double *partial)
{
    __shared__ double sh[CUDA_THREADS];
    double acc = op == OPS_MAX || op == OPS_MIN ? (double)t[0] : 0.0;
    CUDA_FOR(i, n) acc = reduce_step(op, acc, t[i]);
    sh[threadIdx.x] = acc;
    __syncthreads();
    for (int half = blockDim.x / 2; half > 0; half /= 2) {
        if (threadIdx.x < half) {
            double other = sh[threadIdx.x + half];
            sh[threadIdx.x] = op == OPS_SUM || op == OPS_SUMSQ ? sh[threadIdx.x] + other
                                                               : reduce_step(op, sh[threadIdx.x], other);
        }
        __syncthreads();
    }
    if (threadIdx.x == 0) partial[blockIdx.x] = sh[0];
}

double cuda_reduce(enum ops_reduce op, const float *t, size_t n)
{
    if (!n) return 0;
    unsigned blocks = cuda_grid(n);
    double *partial = (double *)cuda_scratch(SCRATCH_RESULT, blocks * sizeof(double));
    reduce_kernel<<<blocks, CUDA_THREADS, 0, cuda_stream>>>(op, t, n, partial);
    CUDA_LAUNCHED();
    const double *p = (const double *)cuda_fetch(partial, blocks * sizeof(double));
    double r = p[0];
    for (unsigned b = 1; b < blocks; b++)
        r = op == OPS_SUM || op == OPS_SUMSQ ? r + p[b] : op == OPS_MAX ? fmax(r, p[b]) : fmin(r, p[b]);
    return r;
}
