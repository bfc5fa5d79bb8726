/* CUDA layer kernels: elementwise family, im2col/col2im, bias, column sums, pooling, batch norm.
 * Same contracts as engine/cpu/cpu.h (NHWC, row-major); test_cuda checks each against the CPU. */
#include "engine/cuda/common.cuh"
#include "engine/kernel_math.h"

/* ---- elementwise ---------------------------------------------------------------------------- */

#define GELU_K 0.7978845608f

__global__ void ew_kernel(enum cuda_ew op, size_t n, const float *__restrict__ a,
                          const float *__restrict__ b, float *out, float *out2, float s1, float s2,
                          uint64_t seed)
{
    CUDA_FOR(i, n) {
        switch (op) {
        case EW_FILL:        out[i] = s1; break;
        case EW_RELU_F:      out[i] = a[i] > 0 ? a[i] : 0; break;
        case EW_RELU_B:      out[i] = a[i] > 0 ? b[i] : 0; break;   /* a = y, b = dy */
        case EW_GELU_F: {
            float v = a[i], t = tanhf(GELU_K * (v + 0.044715f * v * v * v));
            out[i] = 0.5f * v * (1 + t);
            break;
        }
        case EW_GELU_B: {                                            /* a = x, b = dy */
            float v = a[i], t = tanhf(GELU_K * (v + 0.044715f * v * v * v));
            float du = GELU_K * (1 + 3 * 0.044715f * v * v);
            out[i] = b[i] * (0.5f * (1 + t) + 0.5f * v * (1 - t * t) * du);
            break;
        }
        case EW_MUL:         out[i] = a[i] * b[i]; break;
        case EW_ADD:         out[i] = a[i] + b[i]; break;
        case EW_DROPOUT: {                                           /* out2 = mask, s1 = p */
            float m = ops_hash_uniform(seed, i) >= s1 ? 1.0f / (1.0f - s1) : 0.0f;
            out2[i] = m;
            out[i] = a[i] * m;
            break;
        }
        case EW_SCALE:       out[i] *= s1; break;
        case EW_ADD_SCALAR:  out[i] += s1; break;
        case EW_AXPY:        out[i] += s1 * a[i]; break;
        case EW_LERP:        out[i] += s1 * (a[i] - out[i]); break;
        case EW_MUL_INPLACE: out[i] *= a[i]; break;
        case EW_CLAMP:       out[i] = fminf(fmaxf(out[i], s1), s2); break;
        case EW_EXP:         out[i] = expf(s1 * out[i]); break;
        case EW_POW:         out[i] = powf(out[i], s1); break;
        case EW_SIGMOID_F:   out[i] = 1.0f / (1.0f + expf(-a[i])); break;
        case EW_SIGMOID_B:   out[i] = b[i] * a[i] * (1 - a[i]); break;   /* a = y, b = dy */
        }
    }
}

void cuda_elementwise(enum cuda_ew op, size_t n, const float *a, const float *b, float *out,
                      float *out2, float s1, float s2, uint64_t seed)
{
    if (!n) return;
    ew_kernel<<<cuda_grid(n), CUDA_THREADS, 0, cuda_stream>>>(op, n, a, b, out, out2, s1, s2, seed);
    CUDA_LAUNCHED();
}

/* Squeeze-excite gating: one thread per element, its image's gate for its channel. */
__global__ void channel_scale_kernel(const float *__restrict__ x, const float *__restrict__ e, size_t n,
                                     size_t per, int c, float *__restrict__ y)
{
    CUDA_FOR(i, n) y[i] = x[i] * e[i / per * c + i % c];
}

void cuda_channel_scale(const float *x, const float *e, size_t n, int hw, int c, float *y)
{
    if (!n) return;
    channel_scale_kernel<<<cuda_grid(n), CUDA_THREADS, 0, cuda_stream>>>(x, e, n, (size_t)hw * c, c, y);
    CUDA_LAUNCHED();
}

/* ---- im2col / col2im ------------------------------------------------------------------------ */

struct conv_geom {
    int h, w, c, k, stride, pad, oh, ow;
    idiv kkc_, c_, k_, ow_, oh_, w_, h_, stride_;
};

static conv_geom conv_geom_of(int h, int w, int c, int k, int stride, int pad, int oh, int ow)
{
    conv_geom g = {};
    g.h = h; g.w = w; g.c = c; g.k = k; g.stride = stride; g.pad = pad; g.oh = oh; g.ow = ow;
    g.kkc_ = idiv_make((unsigned)(k * k * c));
    g.c_ = idiv_make((unsigned)c);
    g.k_ = idiv_make((unsigned)k);
    g.ow_ = idiv_make((unsigned)ow);
    g.oh_ = idiv_make((unsigned)oh);
    g.w_ = idiv_make((unsigned)w);
    g.h_ = idiv_make((unsigned)h);
    g.stride_ = idiv_make((unsigned)stride);
    return g;
}

/* One thread per col element: row (img, oy, ox), column (ky, kx, ch); writes are coalesced. */
__global__ void im2col_kernel(const float *__restrict__ x, conv_geom g, unsigned total,
                              float *__restrict__ col)
{
    CUDA_FOR32(e, total) {
        unsigned j, ch, kx, ox, oy;
        unsigned r = idiv_qr(g.kkc_, e, &j);
        unsigned ky = idiv_qr(g.k_, idiv_qr(g.c_, j, &ch), &kx);
        unsigned img = idiv_qr(g.oh_, idiv_qr(g.ow_, r, &ox), &oy);
        int iy = (int)(oy * g.stride + ky) - g.pad, ix = (int)(ox * g.stride + kx) - g.pad;
        col[e] = iy >= 0 && iy < g.h && ix >= 0 && ix < g.w
                     ? x[((img * g.h + iy) * g.w + ix) * g.c + ch] : 0.0f;
    }
}

/* One thread per dx element, summing the col entries that came from it: no atomics, and the
 * order of the sum is fixed. */
__global__ void col2im_kernel(const float *__restrict__ dcol, conv_geom g, unsigned total,
                              float *__restrict__ dx)
{
    unsigned kkc = g.k * g.k * g.c;
    CUDA_FOR32(e, total) {
        unsigned ch, ix, iy;
        unsigned img = idiv_qr(g.h_, idiv_qr(g.w_, idiv_qr(g.c_, e, &ch), &ix), &iy);
        float acc = 0;
        for (int ky = 0; ky < g.k; ky++) {
            int ny = (int)iy + g.pad - ky;
            unsigned oy, rem;
            if (ny < 0 || (oy = idiv_qr(g.stride_, (unsigned)ny, &rem), rem) || oy >= (unsigned)g.oh) continue;
            for (int kx = 0; kx < g.k; kx++) {
                int nx = (int)ix + g.pad - kx;
                unsigned ox;
                if (nx < 0 || (ox = idiv_qr(g.stride_, (unsigned)nx, &rem), rem) || ox >= (unsigned)g.ow) continue;
                acc += dcol[((img * g.oh + oy) * g.ow + ox) * kkc + (ky * g.k + kx) * g.c + ch];
            }
        }
        dx[e] = acc;
    }
}

void cuda_im2col(const float *x, int n, int h, int w, int c, int k, int stride, int pad, int oh,
                 int ow, float *col)
{
    unsigned total = cuda_count32((size_t)n * oh * ow * k * k * c, "im2col");
    cuda_count32((size_t)n * h * w * c, "im2col input");
    if (!total) return;
    im2col_kernel<<<cuda_grid(total), CUDA_THREADS, 0, cuda_stream>>>(x, conv_geom_of(h, w, c, k, stride, pad, oh, ow), total, col);
    CUDA_LAUNCHED();
}

void cuda_col2im(const float *dcol, int n, int h, int w, int c, int k, int stride, int pad, int oh,
                 int ow, float *dx)
{
    unsigned total = cuda_count32((size_t)n * h * w * c, "col2im");
    cuda_count32((size_t)n * oh * ow * k * k * c, "col2im input");
    if (!total) return;
    col2im_kernel<<<cuda_grid(total), CUDA_THREADS, 0, cuda_stream>>>(dcol, conv_geom_of(h, w, c, k, stride, pad, oh, ow), total, dx);
    CUDA_LAUNCHED();
}

__global__ void add_bias_kernel(float *y, const float *__restrict__ b, unsigned total, idiv cols)
{
    CUDA_FOR32(e, total) y[e] += b[idiv_mod(cols, e)];
}

void cuda_add_bias(float *y, const float *b, size_t rows, int cols)
{
    unsigned total = cuda_count32(rows * cols, "add_bias");
    if (!total) return;
    add_bias_kernel<<<cuda_grid(total), CUDA_THREADS, 0, cuda_stream>>>(y, b, total, idiv_make((unsigned)cols));
    CUDA_LAUNCHED();
}

/* ---- column sums: bias gradients and batch-norm statistics ------------------------------------
 * Pass 1: blocks of (cx channels, cy row lanes) sum a strided share of the rows into per-block
 * partials (G, 2, c). Pass 2: one block per channel adds the G partials in double and finishes:
 * the split depends only on the shape, so results are deterministic. */

enum col_mode {
    COL_SUM,        /* s1 = dy */
    COL_BN_STATS,   /* s1 = x - x0, s2 = (x - x0)^2, shifted by row 0 for accuracy */
    COL_BN_GRAD,    /* s1 = dy', s2 = dy' * xhat, dy' masked by a fused ReLU's output */
};

struct col_args {
    const float *x, *dy, *xhat, *act;
    size_t rows;
    int c;
};

__device__ inline float masked_dy(const col_args &a, size_t i)
{
    return !a.act || a.act[i] > 0 ? a.dy[i] : 0.0f;
}

__global__ void col_partial_kernel(enum col_mode mode, col_args a, float *partial)
{
    extern __shared__ float sh[];   /* (2, cy, cx) */
    int cx = blockDim.x, cy = blockDim.y, j = blockIdx.y * cx + threadIdx.x;
    float s1 = 0, s2 = 0;
    if (j < a.c) {
        for (size_t r = (size_t)blockIdx.x * cy + threadIdx.y; r < a.rows; r += (size_t)gridDim.x * cy) {
            size_t i = r * a.c + j;
            if (mode == COL_SUM) {
                s1 += a.dy[i];
            } else if (mode == COL_BN_STATS) {
                float v = a.x[i] - a.x[j];
                s1 += v;
                s2 += v * v;
            } else {
                float d = masked_dy(a, i);
                s1 += d;
                s2 += d * a.xhat[i];
            }
        }
    }
    float *sh1 = sh, *sh2 = sh + cx * cy;
    sh1[threadIdx.y * cx + threadIdx.x] = s1;
    sh2[threadIdx.y * cx + threadIdx.x] = s2;
    __syncthreads();
    for (int half = cy / 2; half > 0; half /= 2) {
        if (threadIdx.y < half) {
            sh1[threadIdx.y * cx + threadIdx.x] += sh1[(threadIdx.y + half) * cx + threadIdx.x];
            sh2[threadIdx.y * cx + threadIdx.x] += sh2[(threadIdx.y + half) * cx + threadIdx.x];
        }
        __syncthreads();
    }
    if (threadIdx.y == 0 && j < a.c) {
        partial[(size_t)blockIdx.x * 2 * a.c + j] = sh1[threadIdx.x];
        partial[(size_t)blockIdx.x * 2 * a.c + a.c + j] = sh2[threadIdx.x];
    }
}

/* Sums the G partials of channel blockIdx.x in double; thread 0 gets the totals. */
__device__ void channel_totals(const float *partial, int blocks, int c, double *t1, double *t2)
{
    __shared__ double sh1[CUDA_THREADS], sh2[CUDA_THREADS];
    int j = blockIdx.x;
    double s1 = 0, s2 = 0;
    for (int g = threadIdx.x; g < blocks; g += blockDim.x) {
        s1 += partial[(size_t)g * 2 * c + j];
        s2 += partial[(size_t)g * 2 * c + c + j];
    }
    sh1[threadIdx.x] = s1;
    sh2[threadIdx.x] = s2;
    __syncthreads();
    for (int half = blockDim.x / 2; half > 0; half /= 2) {
        if (threadIdx.x < half) {
            sh1[threadIdx.x] += sh1[threadIdx.x + half];
            sh2[threadIdx.x] += sh2[threadIdx.x + half];
        }
        __syncthreads();
    }
    *t1 = sh1[0];
    *t2 = sh2[0];
}

__global__ void sum_finish_kernel(const float *partial, int blocks, int c, float *db)
{
    double s1, s2;
    channel_totals(partial, blocks, c, &s1, &s2);
    if (threadIdx.x == 0) db[blockIdx.x] += (float)s1;
}

/* Launches pass 1 over (rows, c) and returns the number of partial blocks. */
static int col_partials(enum col_mode mode, const col_args &a, float **partial)
{
    int cx = 1;
    while (cx < a.c && cx < 32) cx *= 2;
    int cy = CUDA_THREADS / cx;
    size_t want = (a.rows + (size_t)cy * 8 - 1) / ((size_t)cy * 8);   /* >= 8 rows per thread */
    int blocks = (int)(want < 1 ? 1 : want > 1024 ? 1024 : want);
    dim3 grid(blocks, (a.c + cx - 1) / cx), block(cx, cy);
    *partial = (float *)cuda_scratch(SCRATCH_PARTIAL, (size_t)blocks * 2 * a.c * sizeof(float));
    col_partial_kernel<<<grid, block, 2 * cx * cy * sizeof(float), cuda_stream>>>(mode, a, *partial);
    CUDA_LAUNCHED();
    return blocks;
}

void cuda_sum_rows(const float *dy, size_t rows, int cols, float *db)
{
    if (!rows || !cols) return;
    float *partial;
    col_args a = { NULL, dy, NULL, NULL, rows, cols };
    int blocks = col_partials(COL_SUM, a, &partial);
    sum_finish_kernel<<<cols, CUDA_THREADS, 0, cuda_stream>>>(partial, blocks, cols, db);
    CUDA_LAUNCHED();
}

/* ---- pooling -------------------------------------------------------------------------------- */

struct pool_geom {
    int h, w, c, k, s, oh, ow;
    idiv c_, ow_, oh_, w_, h_;
};

static pool_geom pool_geom_of(int h, int w, int c, int k, int s, int oh, int ow)
{
    pool_geom g = {};
    g.h = h; g.w = w; g.c = c; g.k = k; g.s = s; g.oh = oh; g.ow = ow;
    g.c_ = idiv_make((unsigned)c);
    g.ow_ = idiv_make((unsigned)ow);
    g.oh_ = idiv_make((unsigned)oh);
    g.w_ = idiv_make((unsigned)w);
    g.h_ = idiv_make((unsigned)h);
    return g;
}

/* Output o's channel, window origin and image's first input offset. */
__device__ inline unsigned pool_out_coords(const pool_geom &g, unsigned o, unsigned *ch, unsigned *oy,
                                           unsigned *ox)
{
    unsigned img = idiv_qr(g.oh_, idiv_qr(g.ow_, idiv_qr(g.c_, o, ch), ox), oy);
    return img * g.h * g.w * g.c;
}

/* Same scan as the CPU: the window's first element, then strict '>' so ties keep the first. */
__global__ void maxpool_kernel(const float *__restrict__ x, pool_geom g, unsigned total,
                               float *__restrict__ y, int32_t *__restrict__ arg)
{
    CUDA_FOR32(o, total) {
        unsigned ch, oy, ox, xbase = pool_out_coords(g, o, &ch, &oy, &ox);
        unsigned best_off = xbase + (oy * g.s * g.w + ox * g.s) * g.c + ch;
        float best = x[best_off];
        for (int ky = 0; ky < g.k; ky++) {
            unsigned iy = oy * g.s + ky;
            if (iy >= (unsigned)g.h) break;
            for (int kx = ky ? 0 : 1; kx < g.k; kx++) {
                unsigned ix = ox * g.s + kx;
                if (ix >= (unsigned)g.w) break;
                unsigned off = xbase + (iy * g.w + ix) * g.c + ch;
                if (x[off] > best) { best = x[off]; best_off = off; }
            }
        }
        y[o] = best;
        arg[o] = (int32_t)best_off;
    }
}

void cuda_maxpool_forward(const float *x, int n, int h, int w, int c, int k, int s, int oh, int ow,
                          float *y, int32_t *arg)
{
    unsigned total = cuda_count32((size_t)n * oh * ow * c, "maxpool");
    cuda_count32((size_t)n * h * w * c, "maxpool input");
    if (!total) return;
    maxpool_kernel<<<cuda_grid(total), CUDA_THREADS, 0, cuda_stream>>>(x, pool_geom_of(h, w, c, k, s, oh, ow), total, y, arg);
    CUDA_LAUNCHED();
}

/* Windows that do not overlap (stride >= window) give each dx at most one add: exact. */
__global__ void maxpool_back_kernel(const float *__restrict__ dy, const int32_t *__restrict__ arg,
                                    size_t total, float *dx)
{
    CUDA_FOR(i, total) atomicAdd(dx + arg[i], dy[i]);
}

void cuda_maxpool_backward(const float *dy, const int32_t *arg, int n, size_t ny_per, float *dx,
                           size_t nx_per)
{
    CUDA_CHECK(cudaMemsetAsync(dx, 0, (size_t)n * nx_per * sizeof(float), cuda_stream));
    size_t total = (size_t)n * ny_per;
    if (!total) return;
    maxpool_back_kernel<<<cuda_grid(total), CUDA_THREADS, 0, cuda_stream>>>(dy, arg, total, dx);
    CUDA_LAUNCHED();
}

/* 1 / the window's size at output (oy, ox), clipped to the image as the CPU does. */
__device__ inline float window_scale(const pool_geom &g, unsigned oy, unsigned ox)
{
    int y0 = oy * g.s, x0 = ox * g.s;
    int y1 = min(y0 + g.k, g.h), x1 = min(x0 + g.k, g.w);
    return 1.0f / (float)((y1 - y0) * (x1 - x0));
}

__global__ void avgpool_kernel(const float *__restrict__ x, pool_geom g, unsigned total,
                               float *__restrict__ y)
{
    CUDA_FOR32(o, total) {
        unsigned ch, oy, ox, xbase = pool_out_coords(g, o, &ch, &oy, &ox);
        int y0 = oy * g.s, x0 = ox * g.s, y1 = min(y0 + g.k, g.h), x1 = min(x0 + g.k, g.w);
        float scale = window_scale(g, oy, ox), acc = 0;
        for (int iy = y0; iy < y1; iy++)
            for (int ix = x0; ix < x1; ix++) acc += x[xbase + (iy * g.w + ix) * g.c + ch] * scale;
        y[o] = acc;
    }
}

/* One thread per dx element over the windows that contain it: no atomics. */
__global__ void avgpool_back_kernel(const float *__restrict__ dy, pool_geom g, unsigned total,
                                    float *__restrict__ dx)
{
    CUDA_FOR32(e, total) {
        unsigned ch, ix, iy;
        unsigned img = idiv_qr(g.h_, idiv_qr(g.w_, idiv_qr(g.c_, e, &ch), &ix), &iy);
        int oy0 = (int)iy >= g.k ? ((int)iy - g.k) / g.s + 1 : 0, oy1 = min((int)iy / g.s, g.oh - 1);
        int ox0 = (int)ix >= g.k ? ((int)ix - g.k) / g.s + 1 : 0, ox1 = min((int)ix / g.s, g.ow - 1);
        float acc = 0;
        for (int oy = oy0; oy <= oy1; oy++)
            for (int ox = ox0; ox <= ox1; ox++)
                acc += dy[((img * g.oh + oy) * g.ow + ox) * g.c + ch] * window_scale(g, oy, ox);
        dx[e] = acc;
    }
}

void cuda_avgpool_forward(const float *x, int n, int h, int w, int c, int k, int s, int oh, int ow,
                          float *y)
{
    unsigned total = cuda_count32((size_t)n * oh * ow * c, "avgpool");
    cuda_count32((size_t)n * h * w * c, "avgpool input");
    if (!total) return;
    avgpool_kernel<<<cuda_grid(total), CUDA_THREADS, 0, cuda_stream>>>(x, pool_geom_of(h, w, c, k, s, oh, ow), total, y);
    CUDA_LAUNCHED();
}

void cuda_avgpool_backward(const float *dy, int n, int h, int w, int c, int k, int s, int oh, int ow,
                           float *dx)
{
    unsigned total = cuda_count32((size_t)n * h * w * c, "avgpool backward");
    if (!total) return;
    avgpool_back_kernel<<<cuda_grid(total), CUDA_THREADS, 0, cuda_stream>>>(dy, pool_geom_of(h, w, c, k, s, oh, ow), total, dx);
    CUDA_LAUNCHED();
}

/* ---- batch norm ----------------------------------------------------------------------------- */

/* Training statistics of channel blockIdx.x: mean (into mean), inv_std, running stats. */
__global__ void bn_stats_kernel(const float *partial, int blocks, const float *x, size_t rows, int c,
                                float momentum, float eps, float *mean, float *inv_std,
                                float *running_mean, float *running_var)
{
    double s1, s2;
    channel_totals(partial, blocks, c, &s1, &s2);
    if (threadIdx.x) return;
    int j = blockIdx.x;
    bn_channel_stats(s1, s2, rows, x[j], momentum, eps, &mean[j], &inv_std[j], &running_mean[j], &running_var[j]);
}

__global__ void bn_eval_stats_kernel(const float *running_var, int c, float eps, float *inv_std)
{
    CUDA_FOR(j, (size_t)c) inv_std[j] = 1.0f / sqrtf(running_var[j] + eps);
}

__global__ void bn_apply_kernel(const float *__restrict__ x, unsigned total, idiv c,
                                const float *__restrict__ mean, const float *__restrict__ inv_std,
                                const float *__restrict__ gamma, const float *__restrict__ beta,
                                int relu, float *__restrict__ y, float *__restrict__ xhat)
{
    CUDA_FOR32(i, total) {
        unsigned j = idiv_mod(c, i);
        float v = (x[i] - mean[j]) * inv_std[j];
        if (xhat) xhat[i] = v;
        float out = gamma[j] * v + beta[j];
        y[i] = relu && out < 0 ? 0 : out;
    }
}

void cuda_batchnorm_forward(const float *x, size_t rows, int c, const float *gamma, const float *beta,
                            float *running_mean, float *running_var, float momentum, float eps,
                            int train, int relu, float *y, float *xhat, float *inv_std)
{
    if (!rows || !c) return;
    const float *mean = running_mean;
    if (train) {
        float *partial, *m = (float *)cuda_scratch(SCRATCH_CHANNEL, (size_t)c * sizeof(float));
        col_args a = { x, NULL, NULL, NULL, rows, c };
        int blocks = col_partials(COL_BN_STATS, a, &partial);
        bn_stats_kernel<<<c, CUDA_THREADS, 0, cuda_stream>>>(partial, blocks, x, rows, c, momentum, eps,
                                                             m, inv_std, running_mean, running_var);
        CUDA_LAUNCHED();
        mean = m;
    } else {
        bn_eval_stats_kernel<<<cuda_grid((size_t)c), CUDA_THREADS, 0, cuda_stream>>>(running_var, c, eps, inv_std);
        CUDA_LAUNCHED();
    }
    unsigned total = cuda_count32(rows * c, "batchnorm");
    bn_apply_kernel<<<cuda_grid(total), CUDA_THREADS, 0, cuda_stream>>>(x, total, idiv_make((unsigned)c), mean,
                                                                        inv_std, gamma, beta, relu, y,
                                                                        train ? xhat : NULL);
    CUDA_LAUNCHED();
}

/* dbeta/dgamma sums (when wanted), then the per-channel coefficients of dx into coef (3, c). */
__global__ void bn_grad_stats_kernel(const float *partial, int blocks, size_t rows, int c,
                                     const float *gamma, const float *inv_std, float *dgamma,
                                     float *dbeta, float *coef)
{
    double s1, s2;
    channel_totals(partial, blocks, c, &s1, &s2);
    if (threadIdx.x) return;
    int j = blockIdx.x;
    if (dbeta) dbeta[j] += (float)s1;
    if (dgamma) dgamma[j] += (float)s2;
    coef[j] = (float)(s1 / (double)rows);
    coef[c + j] = (float)(s2 / (double)rows);
    coef[2 * c + j] = gamma[j] * inv_std[j];
}

/* dx = gamma * inv_std * (dy - mean(dy) - xhat * mean(dy * xhat)). */
__global__ void bn_dx_kernel(col_args a, idiv c, unsigned total, const float *__restrict__ coef,
                             float *__restrict__ dx)
{
    CUDA_FOR32(i, total) {
        unsigned j = idiv_mod(c, i);
        dx[i] = coef[2 * a.c + j] * (masked_dy(a, i) - coef[j] - a.xhat[i] * coef[a.c + j]);
    }
}

void cuda_batchnorm_backward(const float *dy, const float *act, const float *xhat,
                             const float *inv_std, size_t rows, int c, const float *gamma,
                             const float *beta, float *dgamma, float *dbeta, float *dx)
{
    (void)beta;   /* the mask is read from act here */
    if (!rows || !c) return;
    float *partial, *coef = (float *)cuda_scratch(SCRATCH_CHANNEL, 3 * (size_t)c * sizeof(float));
    col_args a = { NULL, dy, xhat, act, rows, c };
    int blocks = col_partials(COL_BN_GRAD, a, &partial);
    bn_grad_stats_kernel<<<c, CUDA_THREADS, 0, cuda_stream>>>(partial, blocks, rows, c, gamma, inv_std,
                                                              dgamma, dbeta, coef);
    CUDA_LAUNCHED();
    if (!dx) return;
    unsigned total = cuda_count32(rows * c, "batchnorm backward");
    bn_dx_kernel<<<cuda_grid(total), CUDA_THREADS, 0, cuda_stream>>>(a, idiv_make((unsigned)c), total, coef, dx);
    CUDA_LAUNCHED();
}
