/* CUDA kernels of the text model's layers: token and position embeddings, layer norm and causal
 * attention weights, on kernel_math.h's row arithmetic as the CPU's (engine/cpu/sequence.c).
 * Not the batched products: device.cu owns cuBLAS. test_cuda checks each against the CPU. */
#include "engine/cuda/common.cuh"
#include "engine/kernel_math.h"

/* Row kernels give each thread a whole row; small blocks spread a few thousand rows over the SMs. */
enum { ROW_THREADS = 64 };

/* The CPU's lrintf: to nearest, ties to even. */
__device__ __forceinline__ int token_id(float v) { return __float2int_rn(v); }

/* ---- embeddings ----------------------------------------------------------------------------- */

/* One thread per element of y (rows, d): its token's table entry plus its position's. */
__global__ void embed_fwd_kernel(const float *__restrict__ ids, const float *__restrict__ table,
                                 const float *__restrict__ pos, idiv t, idiv d, unsigned total,
                                 float *__restrict__ y)
{
    CUDA_FOR32(e, total) {
        unsigned j, r = idiv_qr(d, e, &j);
        float v = table[(size_t)token_id(ids[r]) * d.d + j];
        y[e] = pos ? v + pos[(size_t)idiv_mod(t, r) * d.d + j] : v;
    }
}

void cuda_embed_forward(const float *ids, size_t rows, int t, const float *table, const float *pos, int d,
                        float *y)
{
    unsigned total = cuda_count32(rows * (size_t)d, "embed");
    if (!total) return;
    embed_fwd_kernel<<<cuda_grid(total), CUDA_THREADS, 0, cuda_stream>>>(ids, table, pos,
                                                                         idiv_make(pos ? (unsigned)t : 1),
                                                                         idiv_make((unsigned)d), total, y);
    CUDA_LAUNCHED();
}

/* The gradients below give each sum one thread, which adds its rows in row order onto the old
 * value, as the CPU does: no atomics, and the same floats on every call and device. */

/* Thread (token v, column j) walks every row: vocab x rows id reads, meant for character
 * vocabularies (tens to hundreds of tokens). */
__global__ void embed_table_grad_kernel(const float *__restrict__ ids, unsigned rows,
                                        const float *__restrict__ dy, idiv d, unsigned total,
                                        float *__restrict__ dtable)
{
    CUDA_FOR32(e, total) {
        unsigned j, v = idiv_qr(d, e, &j);
        float acc = dtable[e];
        for (unsigned r = 0; r < rows; r++)
            if (token_id(ids[r]) == (int)v) acc += dy[(size_t)r * d.d + j];
        dtable[e] = acc;
    }
}

/* Thread (position p, column j) walks rows p, p + t, p + 2t, ... */
__global__ void embed_pos_grad_kernel(const float *__restrict__ dy, unsigned rows, unsigned t, idiv d,
                                      unsigned total, float *__restrict__ dpos)
{
    CUDA_FOR32(e, total) {
        unsigned j, p = idiv_qr(d, e, &j);
        float acc = dpos[e];
        for (unsigned r = p; r < rows; r += t) acc += dy[(size_t)r * d.d + j];
        dpos[e] = acc;
    }
}

void cuda_embed_backward(const float *ids, size_t rows, int t, const float *dy, int d, int vocab,
                         float *dtable, float *dpos)
{
    cuda_count32(rows * (size_t)d, "embed backward");
    if (!rows || d < 1) return;
    if (dtable) {
        unsigned total = cuda_count32((size_t)vocab * d, "embed table gradient");
        if (total) {
            embed_table_grad_kernel<<<cuda_grid(total), CUDA_THREADS, 0, cuda_stream>>>(
                ids, (unsigned)rows, dy, idiv_make((unsigned)d), total, dtable);
            CUDA_LAUNCHED();
        }
    }
    if (dpos) {
        unsigned total = cuda_count32((size_t)t * d, "embed position gradient");
        if (total) {
            embed_pos_grad_kernel<<<cuda_grid(total), CUDA_THREADS, 0, cuda_stream>>>(
                dy, (unsigned)rows, (unsigned)t, idiv_make((unsigned)d), total, dpos);
            CUDA_LAUNCHED();
        }
    }
}

/* ---- layer norm ----------------------------------------------------------------------------- */

__global__ void layernorm_fwd_kernel(const float *x, unsigned rows, int c, const float *__restrict__ gamma,
                                     const float *__restrict__ beta, float eps, float *y, float *xhat,
                                     float *inv_std)
{
    CUDA_FOR32(r, rows) {
        size_t o = (size_t)r * c;
        inv_std[r] = layernorm_row(x + o, c, gamma, beta, eps, y + o, xhat + o);
    }
}

void cuda_layernorm_forward(const float *x, size_t rows, int c, const float *gamma, const float *beta,
                            float eps, float *y, float *xhat, float *inv_std)
{
    unsigned n = cuda_count32(rows, "layernorm");
    if (!n || c < 1) return;
    layernorm_fwd_kernel<<<cuda_grid(n, ROW_THREADS), ROW_THREADS, 0, cuda_stream>>>(x, n, c, gamma, beta, eps,
                                                                                      y, xhat, inv_std);
    CUDA_LAUNCHED();
}

__global__ void layernorm_dx_kernel(const float *dy, const float *xhat, const float *__restrict__ inv_std,
                                    unsigned rows, int c, const float *__restrict__ gamma, float *dx)
{
    CUDA_FOR32(r, rows) {
        size_t o = (size_t)r * c;
        layernorm_row_dx(dy + o, xhat + o, inv_std[r], c, gamma, dx + o);
    }
}

/* The parameter sums are layers.cu's column sums (deterministic: their split depends only on the
 * shape); dgamma's through dy xhat, formed in scratch. */
void cuda_layernorm_backward(const float *dy, const float *xhat, const float *inv_std, size_t rows, int c,
                             const float *gamma, float *dgamma, float *dbeta, float *dx)
{
    unsigned n = cuda_count32(rows, "layernorm backward");
    size_t total = rows * (size_t)c;
    if (!n || c < 1) return;
    if (dbeta) cuda_sum_rows(dy, rows, c, dbeta);
    if (dgamma) {
        float *prod = (float *)cuda_scratch(SCRATCH_ROWS, total * sizeof(float));
        cuda_elementwise(EW_MUL, total, dy, xhat, prod, NULL, 0, 0, 0);
        cuda_sum_rows(prod, rows, c, dgamma);
    }
    if (!dx) return;
    layernorm_dx_kernel<<<cuda_grid(n, ROW_THREADS), ROW_THREADS, 0, cuda_stream>>>(dy, xhat, inv_std, n, c,
                                                                                     gamma, dx);
    CUDA_LAUNCHED();
}

/* ---- causal attention weights --------------------------------------------------------------- */

/* One thread per row of scores: rows are one sequence long, a few hundred at most. */
__global__ void attn_softmax_fwd_kernel(float *s, unsigned rows, int t, int heads, int alibi)
{
    CUDA_FOR32(r, rows) {
        int i = (int)(r % (unsigned)t), h = (int)(r / (unsigned)t % (unsigned)heads);
        attn_softmax_row(s + (size_t)r * t, t, i, alibi ? alibi_slope(h, heads) : 0);
    }
}

void cuda_attn_softmax_forward(float *s, size_t rows, int t, int heads, int alibi)
{
    unsigned n = cuda_count32(rows, "attention softmax");
    if (!n || t < 1) return;
    attn_softmax_fwd_kernel<<<cuda_grid(n, ROW_THREADS), ROW_THREADS, 0, cuda_stream>>>(s, n, t, heads, alibi);
    CUDA_LAUNCHED();
}

__global__ void attn_softmax_bwd_kernel(const float *p, float *dp, unsigned rows, int t)
{
    CUDA_FOR32(r, rows) softmax_back_row(p + (size_t)r * t, dp + (size_t)r * t, t);
}

void cuda_attn_softmax_backward(const float *p, float *dp, size_t rows, int t)
{
    unsigned n = cuda_count32(rows, "attention softmax backward");
    if (!n || t < 1) return;
    attn_softmax_bwd_kernel<<<cuda_grid(n, ROW_THREADS), ROW_THREADS, 0, cuda_stream>>>(p, dp, n, t);
    CUDA_LAUNCHED();
}
