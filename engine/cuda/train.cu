/* CUDA training ops: softmax cross-entropy, fused optimizer updates, the batch gather with its
 * augmentation, row selection, the plugins' batch operations and reductions. Same contracts as
 * the CPU table. */
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
    idiv c_, w_, h_, k_, per_;
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

/* Element e of targets (n * per, k): row e / k is label q = row % per of example row / per. */
__global__ void labels_kernel(const uint8_t *__restrict__ labels, const int *__restrict__ idx,
                              gather_geom g, unsigned total, int *__restrict__ labels_out,
                              float *__restrict__ targets)
{
    CUDA_FOR32(e, total) {
        unsigned j, q, row = idiv_qr(g.k_, e, &j), i = idiv_qr(g.per_, row, &q);
        unsigned label = labels[(size_t)idx[i] * g.per_.d + q];
        if (targets) targets[e] = j == label ? 1.0f : 0.0f;
        if (labels_out && j == 0) labels_out[row] = (int)label;
    }
}

void cuda_gather(const uint8_t *pixels, const uint8_t *labels, const float *lut, int h, int w,
                 int c, int k, int per, const int *idx, const int *aug, int n, float *x, int *labels_out,
                 float *targets)
{
    if (n < 1) return;
    const int *d_idx = (const int *)cuda_stage(SCRATCH_STAGE0, idx, (size_t)n * sizeof(int));
    const int *d_aug = aug ? (const int *)cuda_stage(SCRATCH_STAGE1, aug, (size_t)n * 3 * sizeof(int)) : NULL;
    gather_geom g = { h, w, c, k, n, idiv_make((unsigned)c), idiv_make((unsigned)w), idiv_make((unsigned)h),
                      idiv_make((unsigned)k), idiv_make((unsigned)per) };
    unsigned total = cuda_count32((size_t)n * h * w * c, "gather");
    gather_kernel<<<cuda_grid(total), CUDA_THREADS, 0, cuda_stream>>>(pixels, lut, g, d_idx, d_aug, total, x);
    CUDA_LAUNCHED();
    if (!labels_out && !targets) return;
    unsigned nk = cuda_count32((size_t)n * per * k, "gather labels");
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

/* ---- plugin batch operations: each a kernel over its output, host lists staged, no wait ------ */

/* A device copy of t (n floats), so that rows or boxes can be read after others were written. */
static const float *snapshot(const float *t, size_t n)
{
    float *copy = (float *)cuda_scratch(SCRATCH_IMAGES, n * sizeof(float));
    CUDA_CHECK(cudaMemcpyAsync(copy, t, n * sizeof(float), cudaMemcpyDeviceToDevice, cuda_stream));
    return copy;
}

__global__ void mix_rows_kernel(float *t, const float *__restrict__ copy, const int *__restrict__ perm,
                                idiv row, unsigned total, float lam)
{
    CUDA_FOR32(e, total) {
        unsigned j, i = idiv_qr(row, e, &j);
        t[e] = lam * t[e] + (1 - lam) * copy[(size_t)perm[i] * row.d + j];
    }
}

void cuda_mix_rows(float *t, const int *perm, int n, size_t row, float lam)
{
    unsigned total = cuda_count32((size_t)n * row, "mix_rows");
    if (!total) return;
    const float *copy = snapshot(t, total);
    const int *d_perm = (const int *)cuda_stage(SCRATCH_STAGE0, perm, (size_t)n * sizeof(int));
    mix_rows_kernel<<<cuda_grid(total), CUDA_THREADS, 0, cuda_stream>>>(t, copy, d_perm, idiv_make((unsigned)row),
                                                                        total, lam);
    CUDA_LAUNCHED();
}

/* Image geometry (n, h, w, c) for the index kernels below: element e -> image i, y, x, channel. */
struct image_geom {
    idiv c_, w_, h_;
};

static image_geom image_geom_make(int h, int w, int c)
{
    image_geom g = { idiv_make((unsigned)c), idiv_make((unsigned)w), idiv_make((unsigned)h) };
    return g;
}

__device__ __forceinline__ unsigned image_coords(const image_geom &g, unsigned e, unsigned *y, unsigned *x,
                                                 unsigned *ch)
{
    unsigned px = idiv_qr(g.c_, e, ch), r = idiv_qr(g.w_, px, x);
    return idiv_qr(g.h_, r, y);
}

__global__ void paste_kernel(float *t, const float *__restrict__ copy, const int *__restrict__ perm,
                             const int *__restrict__ boxes, image_geom g, unsigned total, float v)
{
    CUDA_FOR32(e, total) {
        unsigned y, x, ch, i = image_coords(g, e, &y, &x, &ch);
        const int *b = boxes + 4 * i;
        if ((int)y < b[0] || (int)y >= b[0] + b[2] || (int)x < b[1] || (int)x >= b[1] + b[3]) continue;
        t[e] = copy ? copy[(((size_t)perm[i] * g.h_.d + y) * g.w_.d + x) * g.c_.d + ch] : v;
    }
}

void cuda_paste_boxes(float *t, const int *perm, const int *boxes, int n, int h, int w, int c, float v)
{
    unsigned total = cuda_count32((size_t)n * h * w * c, "paste_boxes");
    if (!total) return;
    const float *copy = perm ? snapshot(t, total) : NULL;
    const int *d_boxes = (const int *)cuda_stage(SCRATCH_STAGE0, boxes, (size_t)n * 4 * sizeof(int));
    const int *d_perm = perm ? (const int *)cuda_stage(SCRATCH_STAGE1, perm, (size_t)n * sizeof(int)) : NULL;
    paste_kernel<<<cuda_grid(total), CUDA_THREADS, 0, cuda_stream>>>(t, copy, d_perm, d_boxes,
                                                                     image_geom_make(h, w, c), total, v);
    CUDA_LAUNCHED();
}

__global__ void resize_kernel(const float *__restrict__ src, int h, int w, image_geom g, unsigned total,
                              float *__restrict__ dst)
{
    CUDA_FOR32(e, total) {
        unsigned y, x, ch, i = image_coords(g, e, &y, &x, &ch);
        dst[e] = bilinear_at(src + (size_t)i * h * w * g.c_.d, h, w, (int)g.c_.d, (int)g.h_.d, (int)g.w_.d,
                             (int)y, (int)x, (int)ch);
    }
}

void cuda_resize_bilinear(const float *src, int n, int h, int w, int c, int oh, int ow, float *dst)
{
    unsigned total = cuda_count32((size_t)n * oh * ow * c, "resize_bilinear");
    if (!total) return;
    resize_kernel<<<cuda_grid(total), CUDA_THREADS, 0, cuda_stream>>>(src, h, w, image_geom_make(oh, ow, c),
                                                                      total, dst);
    CUDA_LAUNCHED();
}

__global__ void grid_kernel(const float *__restrict__ src, int h, int w, const int *__restrict__ rows,
                            const int *__restrict__ cols, image_geom g, unsigned total, float *__restrict__ dst)
{
    CUDA_FOR32(e, total) {
        unsigned y, x, ch, i = image_coords(g, e, &y, &x, &ch);
        dst[e] = src[(((size_t)i * h + rows[y]) * w + cols[x]) * g.c_.d + ch];
    }
}

void cuda_take_grid(const float *src, int n, int h, int w, int c, const int *rows, int nr,
                    const int *cols, int nc, float *dst)
{
    unsigned total = cuda_count32((size_t)n * nr * nc * c, "take_grid");
    if (!total) return;
    const int *d_rows = (const int *)cuda_stage(SCRATCH_STAGE0, rows, (size_t)nr * sizeof(int));
    const int *d_cols = (const int *)cuda_stage(SCRATCH_STAGE1, cols, (size_t)nc * sizeof(int));
    grid_kernel<<<cuda_grid(total), CUDA_THREADS, 0, cuda_stream>>>(src, h, w, d_rows, d_cols,
                                                                    image_geom_make(nr, nc, c), total, dst);
    CUDA_LAUNCHED();
}

/* One thread a row: the rows are a batch of class scores, a few hundred of ten or so. */
__global__ void softmax_rows_kernel(float *t, unsigned rows, size_t k, float temp)
{
    CUDA_FOR32(r, rows) softmax_row(t + (size_t)r * k, k, temp);
}

void cuda_softmax_rows(float *t, int rows, size_t k, float temp)
{
    if (rows < 1 || !k) return;
    softmax_rows_kernel<<<cuda_grid((size_t)rows), CUDA_THREADS, 0, cuda_stream>>>(t, (unsigned)rows, k, temp);
    CUDA_LAUNCHED();
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
