/* CPU kernels of the text model's layers: token and position embeddings, layer norm, causal
 * attention weights, and batches of small products. The row arithmetic is kernel_math.h's, which
 * the CUDA kernels share. Not for shapes: engine/nn.c checks them. */
#include "engine/cpu/cpu.h"
#include "engine/kernel_math.h"
#include <cblas.h>
#include <math.h>

static int token_id(float v) { return (int)lrintf(v); }

typedef struct embed_args {
    const float *ids, *table, *pos, *dy;
    float *y, *dtable, *dpos;
    size_t rows;
    int t, d;
} embed_args;

static void embed_fwd_range(void *p, size_t lo, size_t hi, int chunk)
{
    const embed_args *a = p;
    for (size_t r = lo; r < hi; r++) {
        const float *e = a->table + (size_t)token_id(a->ids[r]) * a->d;
        const float *q = a->pos ? a->pos + (r % (size_t)a->t) * a->d : NULL;
        float *y = a->y + r * a->d;
        for (int j = 0; j < a->d; j++) y[j] = e[j] + (q ? q[j] : 0);
    }
}

void cpu_embed_forward(const float *ids, size_t rows, int t, const float *table, const float *pos, int d,
                       float *y)
{
    embed_args a = { .ids = ids, .table = table, .pos = pos, .y = y, .rows = rows, .t = t, .d = d };
    cpu_parallel(rows, 256, embed_fwd_range, &a);
}

/* Each chunk owns a slice of the d columns and walks every row in order: no two chunks add into
 * the same float, and each sum is in row order whatever the thread count. */
static void embed_bwd_range(void *p, size_t lo, size_t hi, int chunk)
{
    const embed_args *a = p;
    for (size_t r = 0; r < a->rows; r++) {
        const float *g = a->dy + r * a->d;
        if (a->dtable) {
            float *e = a->dtable + (size_t)token_id(a->ids[r]) * a->d;
            for (size_t j = lo; j < hi; j++) e[j] += g[j];
        }
        if (a->dpos) {
            float *q = a->dpos + (r % (size_t)a->t) * a->d;
            for (size_t j = lo; j < hi; j++) q[j] += g[j];
        }
    }
}

void cpu_embed_backward(const float *ids, size_t rows, int t, const float *dy, int d, int vocab,
                        float *dtable, float *dpos)
{
    if (!dtable && !dpos) return;
    embed_args a = { .ids = ids, .dy = dy, .dtable = dtable, .dpos = dpos, .rows = rows, .t = t, .d = d };
    cpu_parallel((size_t)d, 8, embed_bwd_range, &a);
}

typedef struct ln_args {
    const float *x, *gamma, *beta, *dy, *xhat, *inv;
    float *y, *xh, *inv_out, *dx;
    int c;
    float eps;
} ln_args;

static void ln_fwd_range(void *p, size_t lo, size_t hi, int chunk)
{
    const ln_args *a = p;
    size_t c = (size_t)a->c;
    for (size_t r = lo; r < hi; r++)
        a->inv_out[r] = layernorm_row(a->x + r * c, a->c, a->gamma, a->beta, a->eps, a->y + r * c, a->xh + r * c);
}

void cpu_layernorm_forward(const float *x, size_t rows, int c, const float *gamma, const float *beta,
                           float eps, float *y, float *xhat, float *inv_std)
{
    ln_args a = { .x = x, .gamma = gamma, .beta = beta, .y = y, .xh = xhat, .inv_out = inv_std, .c = c, .eps = eps };
    cpu_parallel(rows, 64, ln_fwd_range, &a);
}

static void ln_dx_range(void *p, size_t lo, size_t hi, int chunk)
{
    const ln_args *a = p;
    size_t c = (size_t)a->c;
    for (size_t r = lo; r < hi; r++)
        layernorm_row_dx(a->dy + r * c, a->xhat + r * c, a->inv[r], a->c, a->gamma, a->dx + r * c);
}

void cpu_layernorm_backward(const float *dy, const float *xhat, const float *inv_std, size_t rows, int c,
                            const float *gamma, float *dgamma, float *dbeta, float *dx)
{
    for (size_t r = 0; r < rows; r++) {   /* parameter sums in row order: deterministic */
        const float *g = dy + r * (size_t)c, *xh = xhat + r * (size_t)c;
        if (dgamma) for (int j = 0; j < c; j++) dgamma[j] += g[j] * xh[j];
        if (dbeta) for (int j = 0; j < c; j++) dbeta[j] += g[j];
    }
    if (!dx) return;
    ln_args a = { .dy = dy, .xhat = xhat, .inv = inv_std, .gamma = gamma, .dx = dx, .c = c };
    cpu_parallel(rows, 64, ln_dx_range, &a);
}

typedef struct batched_args {
    int ta, tb, M, N, K, lda, ldb, ldc;
    float alpha, beta;
    const float *A, *B;
    float *C;
    size_t sa, sb, sc;
} batched_args;

static void batched_range(void *p, size_t lo, size_t hi, int chunk)
{
    const batched_args *g = p;
    for (size_t i = lo; i < hi; i++)
        cblas_sgemm(CblasRowMajor, g->ta ? CblasTrans : CblasNoTrans, g->tb ? CblasTrans : CblasNoTrans,
                    g->M, g->N, g->K, g->alpha, g->A + i * g->sa, g->lda, g->B + i * g->sb, g->ldb, g->beta,
                    g->C + i * g->sc, g->ldc);
}

/* Attention's products are many and small (a window's length square): the threads share out the
 * products, each a single-threaded OpenBLAS call, rather than splitting each one. */
void cpu_sgemm_batched(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda, size_t sa,
                       const float *B, int ldb, size_t sb, float beta, float *C, int ldc, size_t sc, int count)
{
    if (M == 0 || N == 0 || count < 1) return;
    batched_args g = { ta, tb, M, N, K, lda, ldb, ldc, alpha, beta, A, B, C, sa, sb, sc };
    double flops = 2.0 * M * N * K;
    cpu_parallel((size_t)count, flops * count < 2e5 ? (size_t)count : 1, batched_range, &g);
}

typedef struct attn_args {
    float *s;
    const float *p;
    int t, heads, alibi;
} attn_args;

static void attn_fwd_range(void *p, size_t lo, size_t hi, int chunk)
{
    const attn_args *a = p;
    for (size_t r = lo; r < hi; r++) {
        int i = (int)(r % (size_t)a->t), h = (int)(r / (size_t)a->t % (size_t)a->heads);
        attn_softmax_row(a->s + r * a->t, a->t, i, a->alibi ? alibi_slope(h, a->heads) : 0);
    }
}

void cpu_attn_softmax_forward(float *s, size_t rows, int t, int heads, int alibi)
{
    attn_args a = { .s = s, .t = t, .heads = heads, .alibi = alibi };
    cpu_parallel(rows, 64, attn_fwd_range, &a);
}

static void attn_bwd_range(void *p, size_t lo, size_t hi, int chunk)
{
    const attn_args *a = p;
    for (size_t r = lo; r < hi; r++) softmax_back_row(a->p + r * a->t, a->s + r * a->t, a->t);
}

void cpu_attn_softmax_backward(const float *p, float *dp, size_t rows, int t)
{
    attn_args a = { .s = dp, .p = p, .t = t };
    cpu_parallel(rows, 64, attn_bwd_range, &a);
}
