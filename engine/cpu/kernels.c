/* CPU layer kernels: im2col, pooling, batch norm, activations, softmax cross-entropy.
 * Each splits its outer loop over the pool; the inner loops are written for auto-vectorisation. */
#include "engine/cpu/cpu.h"
#include "engine/cpu/thin.h"
#include "engine/tensor.h"
#include "engine/kernel_math.h"
#include "engine/check.h"
#include <pthread.h>
#include <stdlib.h>
#include <float.h>
#include <math.h>
#include <string.h>

#define GRAIN_ELEMS 32768   /* below this, threading costs more than it saves */

/* ---- per-thread scratch ---------------------------------------------------------------------
 * Grow-only buffers each thread keeps between calls (the pool's workers, and whichever thread
 * trains), freed when the thread exits. */

enum cpu_scratch_slot { CPU_SCRATCH_FRAME, CPU_SCRATCH_SUMS, CPU_SCRATCH_BN, CPU_SCRATCH_SLOTS };

typedef struct thread_scratch {
    float *p[CPU_SCRATCH_SLOTS];
    size_t have[CPU_SCRATCH_SLOTS];
} thread_scratch;

static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;

static void scratch_free(void *p)
{
    thread_scratch *s = p;
    for (int i = 0; i < CPU_SCRATCH_SLOTS; i++) free(s->p[i]);
    free(s);
}

static void scratch_key_make(void) { CHECK(!pthread_key_create(&scratch_key, scratch_free), "cannot create a thread key"); }

/* This thread's buffer in slot, at least n floats; its contents last until it grows. */
static float *thread_floats(enum cpu_scratch_slot slot, size_t n)
{
    pthread_once(&scratch_once, scratch_key_make);
    thread_scratch *s = pthread_getspecific(scratch_key);
    if (!s) {
        s = calloc(1, sizeof *s);
        CHECK(s && !pthread_setspecific(scratch_key, s), "out of memory");
    }
    if (n > s->have[slot]) {
        free(s->p[slot]);
        s->p[slot] = tensor_alloc_floats(n);
        s->have[slot] = n;
    }
    return s->p[slot];
}

/* ---- im2col / col2im ---------------------------------------------------------------------- */

typedef struct {
    const float *x; float *col; const float *dcol; float *dx;
    int h, w, c, k, stride, pad, oh, ow;
} conv_args;

/* The image x (h, w, c) copied into this thread's zero-padded frame ((h + 2 pad) x (w + 2 pad) x c),
 * so each patch row is a plain run of k*c floats with no bounds tests. */
static const float *padded_frame(const conv_args *a, const float *x)
{
    const int c = a->c, pw = a->w + 2 * a->pad, ph = a->h + 2 * a->pad;
    size_t need = (size_t)ph * pw * c;
    float *frame = thread_floats(CPU_SCRATCH_FRAME, need);
    memset(frame, 0, need * sizeof(float));
    for (int y = 0; y < a->h; y++)
        memcpy(frame + ((size_t)(y + a->pad) * pw + a->pad) * c, x + (size_t)y * a->w * c,
               (size_t)a->w * c * sizeof(float));
    return frame;
}

/* Patches of `count` output pixels from (oy, ox0) on, one row of k*k*c floats each, from a padded
 * frame. Inlined with constant k and c where the caller knows them. Its callers are compiled with
 * KEEP_LOOPS: GCC would otherwise turn the copy loop into a memmove call for every run of 3 or 9
 * floats, which costs more than the copy (inlined code takes its caller's options). */
#define KEEP_LOOPS __attribute__((optimize("no-tree-loop-distribute-patterns")))

static inline __attribute__((always_inline)) void
frame_patches(const conv_args *a, const float *restrict frame, int oy, int ox0, int count,
              const int k, const int c, float *restrict col)
{
    const int kc = k * c, s = a->stride, rowlen = (a->w + 2 * a->pad) * c;
    for (int ox = ox0; ox < ox0 + count; ox++) {
        const float *restrict src = frame + ((size_t)oy * s * rowlen + (size_t)ox * s * c);
        for (int ky = 0; ky < k; ky++, src += rowlen, col += kc)
            for (int j = 0; j < kc; j++) col[j] = src[j];
    }
}

/* Few channels: whole patch rows from the padded frame (the first layer of an image model). */
static KEEP_LOOPS void im2col_small(const conv_args *a, const float *restrict x, float *restrict col)
{
    const float *frame = padded_frame(a, x);
    for (int oy = 0; oy < a->oh; oy++, col += (size_t)a->ow * a->k * a->k * a->c)
        frame_patches(a, frame, oy, 0, a->ow, a->k, a->c, col);
}

static void im2col_range(void *p, size_t lo, size_t hi, int chunk)
{
    const conv_args *a = p;
    const int kc = a->k * a->c, row = a->k * kc;
    for (size_t img = lo; img < hi; img++) {
        const float *x = a->x + img * (size_t)a->h * a->w * a->c;
        float *col = a->col + img * (size_t)a->oh * a->ow * row;
        if (a->c < 8) {   /* few channels: element loop beats a memcpy call per pixel */
            im2col_small(a, x, col);
            continue;
        }
        for (int oy = 0; oy < a->oh; oy++)
            for (int ox = 0; ox < a->ow; ox++, col += row) {
                int iy0 = oy * a->stride - a->pad, ix0 = ox * a->stride - a->pad;
                for (int ky = 0; ky < a->k; ky++) {
                    float *dst = col + ky * kc;
                    int iy = iy0 + ky;
                    if (iy < 0 || iy >= a->h) { memset(dst, 0, (size_t)kc * sizeof(float)); continue; }
                    int kx0 = ix0 < 0 ? -ix0 : 0;
                    int kx1 = ix0 + a->k > a->w ? a->w - ix0 : a->k;
                    if (kx0 > 0) memset(dst, 0, (size_t)kx0 * a->c * sizeof(float));
                    if (kx1 > kx0)
                        memcpy(dst + kx0 * a->c, x + ((size_t)iy * a->w + ix0 + kx0) * a->c,
                               (size_t)(kx1 - kx0) * a->c * sizeof(float));
                    if (kx1 < a->k)
                        memset(dst + (kx1 > kx0 ? kx1 : kx0) * a->c, 0,
                               (size_t)(a->k - (kx1 > kx0 ? kx1 : kx0)) * a->c * sizeof(float));
                }
            }
    }
}

void cpu_im2col(const float *x, int n, int h, int w, int c, int k, int stride, int pad,
                int oh, int ow, float *col)
{
    conv_args a = { .x = x, .col = col, .h = h, .w = w, .c = c, .k = k, .stride = stride,
                    .pad = pad, .oh = oh, .ow = ow };
    size_t per = (size_t)oh * ow * k * k * c;
    cpu_parallel((size_t)n, per >= GRAIN_ELEMS ? 1 : GRAIN_ELEMS / (per + 1) + 1, im2col_range, &a);
}

static void col2im_range(void *p, size_t lo, size_t hi, int chunk)
{
    const conv_args *a = p;
    const int kc = a->k * a->c, row = a->k * kc;
    for (size_t img = lo; img < hi; img++) {
        float *dx = a->dx + img * (size_t)a->h * a->w * a->c;
        const float *dcol = a->dcol + img * (size_t)a->oh * a->ow * row;
        memset(dx, 0, (size_t)a->h * a->w * a->c * sizeof(float));
        for (int oy = 0; oy < a->oh; oy++)
            for (int ox = 0; ox < a->ow; ox++, dcol += row) {
                int iy0 = oy * a->stride - a->pad, ix0 = ox * a->stride - a->pad;
                for (int ky = 0; ky < a->k; ky++) {
                    int iy = iy0 + ky;
                    if (iy < 0 || iy >= a->h) continue;
                    int kx0 = ix0 < 0 ? -ix0 : 0;
                    int kx1 = ix0 + a->k > a->w ? a->w - ix0 : a->k;
                    const float *src = dcol + ky * kc + kx0 * a->c;
                    float *dst = dx + ((size_t)iy * a->w + ix0 + kx0) * a->c;
                    int len = (kx1 - kx0) * a->c;
                    for (int i = 0; i < len; i++) dst[i] += src[i];
                }
            }
    }
}

void cpu_col2im(const float *dcol, int n, int h, int w, int c, int k, int stride, int pad,
                int oh, int ow, float *dx)
{
    conv_args a = { .dcol = dcol, .dx = dx, .h = h, .w = w, .c = c, .k = k, .stride = stride,
                    .pad = pad, .oh = oh, .ow = ow };
    size_t per = (size_t)oh * ow * k * k * c;
    cpu_parallel((size_t)n, per >= GRAIN_ELEMS ? 1 : GRAIN_ELEMS / (per + 1) + 1, col2im_range, &a);
}

/* ---- thin convolutions: no patch matrix ----------------------------------------------------
 * A first layer's convolution (k*k*c <= THIN_K, out a multiple of THIN_BLOCK up to THIN_N) as a
 * product in registers over patches gathered THIN_PIXELS at a time into a buffer that stays in
 * L1: the patch matrix im2col would write (9 floats for every output pixel of the batch) and
 * read twice never reaches memory. */

enum { THIN_PIXELS = 32 };

int cpu_conv_thin(int k, int c, int out)
{
    return k * k * c <= THIN_K && out % THIN_BLOCK == 0 && out <= THIN_N;
}

typedef struct {
    conv_args g;
    const float *wt;     /* forward: the weights transposed, (k*k*c, out) */
    const float *dy;     /* wgrad: (n*oh*ow, out) */
    float *y;            /* forward: (n*oh*ow, out) */
    float *partial;      /* wgrad: (chunks, k*k*c, out) */
    int out;
} thin_conv_args;

static inline __attribute__((always_inline)) void
thin_conv_forward_nk(const thin_conv_args *t, size_t lo, size_t hi, const int k, const int c, const int out)
{
    const conv_args *a = &t->g;
    const int kkc = k * k * c;
    float buf[THIN_PIXELS * THIN_K];
    for (size_t img = lo; img < hi; img++) {
        const float *frame = padded_frame(a, a->x + img * (size_t)a->h * a->w * a->c);
        float *y = t->y + img * (size_t)a->oh * a->ow * out;
        for (int oy = 0; oy < a->oh; oy++)
            for (int ox = 0; ox < a->ow; ox += THIN_PIXELS) {
                int count = a->ow - ox < THIN_PIXELS ? a->ow - ox : THIN_PIXELS;
                frame_patches(a, frame, oy, ox, count, k, c, buf);
                thin_rows_nk(buf, kkc, t->wt, y, out, out, kkc, 1, 0, 0, (size_t)count);
                y += (size_t)count * out;
            }
    }
}

static KEEP_LOOPS void thin_conv_forward_range(void *p, size_t lo, size_t hi, int chunk)
{
    const thin_conv_args *t = p;
    const conv_args *a = &t->g;
    (void)chunk;
    if (a->k == 3 && a->c == 1 && t->out == 16) thin_conv_forward_nk(t, lo, hi, 3, 1, 16);
    else if (a->k == 3 && a->c == 1 && t->out == 32) thin_conv_forward_nk(t, lo, hi, 3, 1, 32);
    else thin_conv_forward_nk(t, lo, hi, a->k, a->c, t->out);
}

static inline __attribute__((always_inline)) void
thin_conv_wgrad_nk(const thin_conv_args *t, size_t lo, size_t hi, float *part, const int k, const int c)
{
    const conv_args *a = &t->g;
    const int kkc = k * k * c, out = t->out;
    float buf[THIN_PIXELS * THIN_K];
    for (size_t img = lo; img < hi; img++) {
        const float *frame = padded_frame(a, a->x + img * (size_t)a->h * a->w * a->c);
        const float *dy = t->dy + img * (size_t)a->oh * a->ow * out;
        for (int oy = 0; oy < a->oh; oy++)
            for (int ox = 0; ox < a->ow; ox += THIN_PIXELS) {
                int count = a->ow - ox < THIN_PIXELS ? a->ow - ox : THIN_PIXELS;
                frame_patches(a, frame, oy, ox, count, k, c, buf);
                thin_tn_acc(dy, out, buf, kkc, out, kkc, (size_t)count, part);
                dy += (size_t)count * out;
            }
    }
}

static KEEP_LOOPS void thin_conv_wgrad_range(void *p, size_t lo, size_t hi, int chunk)
{
    const thin_conv_args *t = p;
    const int kkc = t->g.k * t->g.k * t->g.c;
    float *part = t->partial + (size_t)chunk * kkc * t->out;
    memset(part, 0, (size_t)kkc * t->out * sizeof *part);
    if (t->g.k == 3 && t->g.c == 1) thin_conv_wgrad_nk(t, lo, hi, part, 3, 1);
    else thin_conv_wgrad_nk(t, lo, hi, part, t->g.k, t->g.c);
}

static size_t thin_conv_grain(int oh, int ow, int out)
{
    size_t per = (size_t)oh * ow * out;
    return per >= GRAIN_ELEMS ? 1 : GRAIN_ELEMS / (per + 1) + 1;
}

void cpu_conv_thin_forward(const float *x, int n, int h, int w, int c, int k, int stride, int pad,
                           int oh, int ow, const float *wt, int out, float *y)
{
    const int kkc = k * k * c;
    CHECK(cpu_conv_thin(k, c, out), "cpu_conv_thin_forward: not a thin convolution");
    float bt[THIN_K * THIN_N];
    for (int j = 0; j < kkc; j++)
        for (int o = 0; o < out; o++) bt[j * out + o] = wt[(size_t)o * kkc + j];
    thin_conv_args t = { .g = { .x = x, .h = h, .w = w, .c = c, .k = k, .stride = stride, .pad = pad,
                                .oh = oh, .ow = ow },
                         .wt = bt, .y = y, .out = out };
    cpu_parallel((size_t)n, thin_conv_grain(oh, ow, out), thin_conv_forward_range, &t);
}

void cpu_conv_thin_wgrad(const float *x, int n, int h, int w, int c, int k, int stride, int pad,
                         int oh, int ow, const float *dy, int out, float *dw)
{
    const int kkc = k * k * c;
    CHECK(cpu_conv_thin(k, c, out), "cpu_conv_thin_wgrad: not a thin convolution");
    size_t grain = thin_conv_grain(oh, ow, out);
    int chunks = cpu_chunks((size_t)n, grain);
    float *partial = thread_floats(CPU_SCRATCH_SUMS, (size_t)chunks * kkc * out);
    thin_conv_args t = { .g = { .x = x, .h = h, .w = w, .c = c, .k = k, .stride = stride, .pad = pad,
                                .oh = oh, .ow = ow },
                         .dy = dy, .partial = partial, .out = out };
    cpu_parallel((size_t)n, grain, thin_conv_wgrad_range, &t);
    for (int o = 0; o < out; o++)   /* the chunks' sums in chunk order: no dependence on timing */
        for (int j = 0; j < kkc; j++) {
            float sum = 0;
            for (int ch = 0; ch < chunks; ch++) sum += partial[((size_t)ch * kkc + j) * out + o];
            dw[(size_t)o * kkc + j] += sum;
        }
}

/* ---- bias, activations ------------------------------------------------------------------- */

typedef struct {
    const float *x, *y, *dy, *b;
    float *out, *dx;
    int cols;
} elem_args;

static size_t row_grain(int cols) { return GRAIN_ELEMS / (size_t)(cols > 0 ? cols : 1) + 1; }

static void add_bias_range(void *p, size_t lo, size_t hi, int chunk)
{
    const elem_args *a = p;
    for (size_t r = lo; r < hi; r++) {
        float *y = a->out + r * a->cols;
        for (int j = 0; j < a->cols; j++) y[j] += a->b[j];
    }
}

void cpu_add_bias(float *y, const float *b, size_t rows, int cols)
{
    elem_args a = { .out = y, .b = b, .cols = cols };
    cpu_parallel(rows, row_grain(cols), add_bias_range, &a);
}

/* Column sums with a fixed split into per-chunk partials, added in chunk order: deterministic. */
#define MAX_CHUNKS 64
typedef struct {
    const float *dy;
    int cols;
    float *partial;   /* (MAX_CHUNKS, cols) */
} sum_args;

static void sum_rows_range(void *p, size_t lo, size_t hi, int chunk)
{
    const sum_args *a = p;
    float *acc = a->partial + (size_t)chunk * a->cols;
    memset(acc, 0, (size_t)a->cols * sizeof(float));
    for (size_t r = lo; r < hi; r++) {
        const float *d = a->dy + r * a->cols;
        for (int j = 0; j < a->cols; j++) acc[j] += d[j];
    }
}

void cpu_sum_rows(const float *dy, size_t rows, int cols, float *db)
{
    float *partial = thread_floats(CPU_SCRATCH_SUMS, (size_t)MAX_CHUNKS * cols);
    sum_args a = { dy, cols, partial };
    size_t grain = row_grain(cols);
    int chunks = cpu_chunks(rows, grain);
    cpu_parallel(rows, grain, sum_rows_range, &a);
    for (int c = 0; c < chunks; c++)
        for (int j = 0; j < cols; j++) db[j] += partial[(size_t)c * cols + j];
}

#define ELEMENTWISE(name, ...)                                                         \
    static void name##_range(void *p, size_t lo, size_t hi, int chunk)                 \
    {                                                                                  \
        const elem_args *a = p;                                                        \
        const float *x = a->x, *y = a->y, *dy = a->dy;                                 \
        float *out = a->out, *dx = a->dx;                                              \
        (void)x; (void)y; (void)dy; (void)out; (void)dx;                               \
        for (size_t i = lo; i < hi; i++) { __VA_ARGS__; }                                  \
    }

ELEMENTWISE(relu_fwd, out[i] = x[i] > 0 ? x[i] : 0)
ELEMENTWISE(relu_bwd, dx[i] = y[i] > 0 ? dy[i] : 0)

/* GELU's tanh, fast: e^x for |x| <= 88 as 2^n e^r, n the nearest integer to x / ln 2, r in
 * [-ln2/2, ln2/2] (ln 2 in two parts), e^r by its Taylor polynomial to r^7 (relative error under
 * 2e-7), 2^n through the exponent bits; then tanh(u) = 1 - 2 / (e^{2|u|} + 1) with u's sign,
 * absolute error under 3e-7 (test_nn holds GELU to 1e-6 of the formula in double). libm's tanhf
 * was most of a GELU layer's time (43% of a text model's step on this CPU); these loops vectorise.
 * Not trapping on floating-point exceptions lets GCC turn the selects into blends (the results
 * are the same). */
#pragma GCC push_options
#pragma GCC optimize("no-trapping-math")
static inline float exp_small(float x)
{
    float fn = (x * 1.44269504f + 12582912.0f) - 12582912.0f;   /* round to nearest: 1.5 x 2^23 */
    int n = (int)fn;
    float r = x - fn * 0.693145751953125f - fn * 1.42860677e-06f;
    float p = 1 + r * (1 + r * (0.5f + r * (1.6666667e-1f + r * (4.1666668e-2f + r * (8.3333338e-3f +
              r * (1.3888889e-3f + r * 1.9841270e-4f))))));
    int32_t bits = (n + 127) << 23;
    float scale;
    memcpy(&scale, &bits, sizeof scale);   /* a union here stops GCC vectorising the loop */
    return p * scale;
}

static inline float tanh_fast(float u)
{
    float a = fabsf(u);
    a = a < 40.0f ? a : 40.0f;   /* tanh is 1 in float long before; e^80 still fits */
    float t = 1 - 2 / (exp_small(2 * a) + 1);
    return u < 0 ? -t : t;
}

/* GELU, tanh approximation (Hendrycks & Gimpel). */
#define GELU_K 0.7978845608f
ELEMENTWISE(gelu_fwd, {
    float v = x[i], t = tanh_fast(GELU_K * (v + 0.044715f * v * v * v));
    out[i] = 0.5f * v * (1 + t);
})
ELEMENTWISE(gelu_bwd, {
    float v = x[i], u = GELU_K * (v + 0.044715f * v * v * v), t = tanh_fast(u);
    float du = GELU_K * (1 + 3 * 0.044715f * v * v);
    dx[i] = dy[i] * (0.5f * (1 + t) + 0.5f * v * (1 - t * t) * du);
})
#pragma GCC pop_options

void cpu_relu_forward(const float *x, float *y, size_t n)
{
    cpu_parallel(n, GRAIN_ELEMS, relu_fwd_range, &(elem_args){ .x = x, .out = y });
}

void cpu_relu_backward(const float *y, const float *dy, float *dx, size_t n)
{
    cpu_parallel(n, GRAIN_ELEMS, relu_bwd_range, &(elem_args){ .y = y, .dy = dy, .dx = dx });
}

void cpu_gelu_forward(const float *x, float *y, size_t n)
{
    cpu_parallel(n, GRAIN_ELEMS / 8, gelu_fwd_range, &(elem_args){ .x = x, .out = y });
}

void cpu_gelu_backward(const float *x, const float *dy, float *dx, size_t n)
{
    cpu_parallel(n, GRAIN_ELEMS / 8, gelu_bwd_range, &(elem_args){ .x = x, .dy = dy, .dx = dx });
}

/* ---- pooling ------------------------------------------------------------------------------ */

typedef struct {
    const float *x, *dy;
    float *y, *dx;
    int32_t *arg;
    int h, w, c, k, s, oh, ow;
} pool_args;

/* Running max over the window in registers-sized local arrays; restrict lets it vectorise. */
static void max_update(float *restrict best, int32_t *restrict barg, const float *restrict x,
                       int c, int32_t off)
{
    for (int ch = 0; ch < c; ch++) {
        int take = x[ch] > best[ch];
        best[ch] = take ? x[ch] : best[ch];
        barg[ch] = take ? off + ch : barg[ch];
    }
}

/* The common 2x2, stride 2 window: four loads and three selects per channel, vectorised. */
static void maxpool2_image(const pool_args *a, size_t img)
{
    const int c = a->c;
    size_t xbase = img * (size_t)a->h * a->w * c;
    for (int oy = 0; oy < a->oh; oy++)
        for (int ox = 0; ox < a->ow; ox++) {
            size_t o = ((img * a->oh + oy) * a->ow + ox) * c;
            size_t o00 = xbase + ((size_t)(2 * oy) * a->w + 2 * ox) * c, o01 = o00 + c;
            size_t o10 = o00 + (size_t)a->w * c, o11 = o10 + c;
            const float *restrict x = a->x;
            float *restrict y = a->y + o;
            int32_t *restrict arg = a->arg + o;
            for (int ch = 0; ch < c; ch++) {
                float best = x[o00 + ch];
                int32_t at = (int32_t)(o00 + ch);
                float v = x[o01 + ch];
                at = v > best ? (int32_t)(o01 + ch) : at; best = v > best ? v : best;
                v = x[o10 + ch];
                at = v > best ? (int32_t)(o10 + ch) : at; best = v > best ? v : best;
                v = x[o11 + ch];
                at = v > best ? (int32_t)(o11 + ch) : at; best = v > best ? v : best;
                y[ch] = best;
                arg[ch] = at;
            }
        }
}

static void maxpool_range(void *p, size_t lo, size_t hi, int chunk)
{
    const pool_args *a = p;
    if (a->k == 2 && a->s == 2 && a->oh * 2 <= a->h && a->ow * 2 <= a->w) {
        for (size_t img = lo; img < hi; img++) maxpool2_image(a, img);
        return;
    }
    for (size_t img = lo; img < hi; img++) {
        size_t xbase = img * (size_t)a->h * a->w * a->c;
        for (int oy = 0; oy < a->oh; oy++)
            for (int ox = 0; ox < a->ow; ox++) {
                size_t o = ((img * a->oh + oy) * a->ow + ox) * a->c;
                float *y = a->y + o;
                int32_t *arg = a->arg + o;
                size_t first = xbase + ((size_t)oy * a->s * a->w + (size_t)ox * a->s) * a->c;
                memcpy(y, a->x + first, (size_t)a->c * sizeof(float));
                for (int ch = 0; ch < a->c; ch++) arg[ch] = (int32_t)(first + ch);
                for (int ky = 0; ky < a->k; ky++) {
                    int iy = oy * a->s + ky;
                    if (iy >= a->h) break;
                    for (int kx = ky ? 0 : 1; kx < a->k; kx++) {
                        int ix = ox * a->s + kx;
                        if (ix >= a->w) break;
                        size_t off = xbase + ((size_t)iy * a->w + ix) * a->c;
                        max_update(y, arg, a->x + off, a->c, (int32_t)off);
                    }
                }
            }
    }
}

void cpu_maxpool_forward(const float *x, int n, int h, int w, int c, int k, int s, int oh, int ow,
                         float *y, int32_t *arg)
{
    pool_args a = { .x = x, .y = y, .arg = arg, .h = h, .w = w, .c = c, .k = k, .s = s, .oh = oh, .ow = ow };
    cpu_parallel((size_t)n, 1, maxpool_range, &a);
}

/* Scatter by argmax; chunks own disjoint images, so writes never collide. */
typedef struct { const float *dy; const int32_t *arg; float *dx; size_t ny_per, nx_per; } maxb_args;

static void maxpool_bwd_range(void *p, size_t lo, size_t hi, int chunk)
{
    const maxb_args *a = p;
    memset(a->dx + lo * a->nx_per, 0, (hi - lo) * a->nx_per * sizeof(float));
    for (size_t i = lo * a->ny_per; i < hi * a->ny_per; i++) a->dx[a->arg[i]] += a->dy[i];
}

void cpu_maxpool_backward(const float *dy, const int32_t *arg, int n, size_t ny_per, float *dx,
                          size_t nx_per)
{
    maxb_args a = { dy, arg, dx, ny_per, nx_per };
    cpu_parallel((size_t)n, 1, maxpool_bwd_range, &a);
}

static void avgpool_range(void *p, size_t lo, size_t hi, int chunk)
{
    const pool_args *a = p;
    int fwd = a->y != NULL;
    for (size_t img = lo; img < hi; img++) {
        size_t xbase = img * (size_t)a->h * a->w * a->c;
        if (!fwd) memset(a->dx + xbase, 0, (size_t)a->h * a->w * a->c * sizeof(float));
        for (int oy = 0; oy < a->oh; oy++)
            for (int ox = 0; ox < a->ow; ox++) {
                size_t o = ((img * a->oh + oy) * a->ow + ox) * a->c;
                int y0 = oy * a->s, x0 = ox * a->s;
                int y1 = y0 + a->k < a->h ? y0 + a->k : a->h, x1 = x0 + a->k < a->w ? x0 + a->k : a->w;
                float scale = 1.0f / (float)((y1 - y0) * (x1 - x0));
                if (fwd) memset(a->y + o, 0, (size_t)a->c * sizeof(float));
                for (int iy = y0; iy < y1; iy++)
                    for (int ix = x0; ix < x1; ix++) {
                        size_t off = xbase + ((size_t)iy * a->w + ix) * a->c;
                        if (fwd)
                            for (int ch = 0; ch < a->c; ch++) a->y[o + ch] += a->x[off + ch] * scale;
                        else
                            for (int ch = 0; ch < a->c; ch++) a->dx[off + ch] += a->dy[o + ch] * scale;
                    }
            }
    }
}

void cpu_avgpool_forward(const float *x, int n, int h, int w, int c, int k, int s, int oh, int ow, float *y)
{
    pool_args a = { .x = x, .y = y, .h = h, .w = w, .c = c, .k = k, .s = s, .oh = oh, .ow = ow };
    cpu_parallel((size_t)n, 1, avgpool_range, &a);
}

void cpu_avgpool_backward(const float *dy, int n, int h, int w, int c, int k, int s, int oh, int ow, float *dx)
{
    pool_args a = { .dy = dy, .dx = dx, .h = h, .w = w, .c = c, .k = k, .s = s, .oh = oh, .ow = ow };
    cpu_parallel((size_t)n, 1, avgpool_range, &a);
}

/* ---- batch norm --------------------------------------------------------------------------- */

typedef struct {
    const float *x, *dy, *xhat, *gamma, *beta, *mean, *inv_std;
    const float *mask_g, *mask_b;         /* fused ReLU (backward): dy counts where g xhat + b > 0 */
    float *y, *xhat_out, *dx, *partial;   /* partial: (MAX_CHUNKS, 2, c) */
    int c, relu;
} bn_args;

/* One row of dy, masked by a fused ReLU (where gamma xhat + beta, its input, is positive: the
 * forward's arithmetic) into buf, or dy itself. */
static inline const float *bn_dy_row(const bn_args *a, size_t r, float *restrict buf)
{
    const float *restrict d = a->dy + r * a->c;
    if (!a->mask_g) return d;
    const float *restrict xh = a->xhat + r * a->c, *restrict g = a->mask_g, *restrict b = a->mask_b;
    for (int j = 0; j < a->c; j++) buf[j] = g[j] * xh[j] + b[j] > 0 ? d[j] : 0;
    return buf;
}

/* Eight channels as one vector (GCC and Clang vector extensions), for channel counts that are
 * multiples of 8 up to BN_VEC_MAX: the compiler left the apply pass scalar for runtime channel
 * counts, and the backward passes copied each masked row first. The same operations in the same
 * order, per channel, as the scalar loops: both give the same floats. */
typedef float bn_vec __attribute__((vector_size(8 * sizeof(float))));
typedef int32_t bn_mask __attribute__((vector_size(8 * sizeof(float))));

static inline bn_vec bn_load(const float *p) { bn_vec v; memcpy(&v, p, sizeof v); return v; }
static inline void bn_store(float *p, bn_vec v) { memcpy(p, &v, sizeof v); }

/* o where it is not below lo, else lo: a NaN stays a NaN (its comparison is false). */
static inline bn_vec bn_clip_below(bn_vec o, bn_vec lo)
{
    bn_mask below = o < lo, oi, li;
    memcpy(&oi, &o, sizeof oi);
    memcpy(&li, &lo, sizeof li);
    bn_mask r = (below & li) | (~below & oi);
    memcpy(&o, &r, sizeof o);
    return o;
}

enum { BN_VEC_MAX = 64 };

static int bn_vectors(int c) { return c % 8 == 0 && c <= BN_VEC_MAX; }

/* dy where the fused ReLU's input gamma xhat + beta is positive (or dy itself without one), 8
 * channels from j, xh being xhat's. */
static inline bn_vec bn_masked_dy(const bn_args *a, size_t r, int j, bn_vec xh)
{
    bn_vec d = bn_load(a->dy + r * a->c + j);
    if (!a->mask_g) return d;
    const bn_vec zero = { 0 };
    bn_mask pos = bn_load(a->mask_g + j) * xh + bn_load(a->mask_b + j) > zero, di;
    memcpy(&di, &d, sizeof di);
    di &= pos;
    memcpy(&d, &di, sizeof d);
    return d;
}

/* The backward sums of dy and dy * xhat over rows [lo, hi) into s1, s2 (c each). */
static void bn_grad_sums_vec(const bn_args *a, size_t lo, size_t hi, float *s1, float *s2)
{
    const int c = a->c, nv = c / 8;
    bn_vec t1[BN_VEC_MAX / 8] = { { 0 } }, t2[BN_VEC_MAX / 8] = { { 0 } };
    for (size_t r = lo; r < hi; r++)
        for (int v = 0; v < nv; v++) {
            bn_vec xh = bn_load(a->xhat + r * c + 8 * v), d = bn_masked_dy(a, r, 8 * v, xh);
            t1[v] += d;
            t2[v] += d * xh;
        }
    for (int v = 0; v < nv; v++) {
        bn_store(s1 + 8 * v, t1[v]);
        bn_store(s2 + 8 * v, t2[v]);
    }
}

/* Pass 1: per-chunk sums of x and x^2 (train) or of dy and dy*xhat (backward). */
static void bn_sums_range(void *p, size_t lo, size_t hi, int chunk)
{
    const bn_args *a = p;
    int c = a->c;
    float *s1 = a->partial + (size_t)chunk * 2 * c, *s2 = s1 + c;
    memset(s1, 0, 2 * (size_t)c * sizeof(float));
    if (a->dy && bn_vectors(c)) {
        bn_grad_sums_vec(a, lo, hi, s1, s2);
    } else if (a->dy) {
        float buf[c];
        for (size_t r = lo; r < hi; r++) {
            const float *restrict xh = a->xhat + r * c, *restrict d = bn_dy_row(a, r, buf);
            for (int j = 0; j < c; j++) {
                s1[j] += d[j];
                s2[j] += d[j] * xh[j];
            }
        }
    } else {
        /* Shifted by the first row's values to keep the variance accurate in float. */
        const float *x0 = a->x;
        for (size_t r = lo; r < hi; r++) {
            const float *x = a->x + r * c;
            for (int j = 0; j < c; j++) { float v = x[j] - x0[j]; s1[j] += v; s2[j] += v * v; }
        }
    }
}

static void bn_apply_vec(const bn_args *a, size_t lo, size_t hi, float lo_clip)
{
    const int c = a->c;
    const bn_vec clip = { lo_clip, lo_clip, lo_clip, lo_clip, lo_clip, lo_clip, lo_clip, lo_clip };
    for (size_t r = lo; r < hi; r++) {
        const float *x = a->x + r * c;
        float *y = a->y + r * c, *xh = a->xhat_out ? a->xhat_out + r * c : NULL;
        for (int j = 0; j < c; j += 8) {
            bn_vec v = (bn_load(x + j) - bn_load(a->mean + j)) * bn_load(a->inv_std + j);
            if (xh) bn_store(xh + j, v);
            bn_store(y + j, bn_clip_below(bn_load(a->gamma + j) * v + bn_load(a->beta + j), clip));
        }
    }
}

static void bn_apply_range(void *p, size_t lo, size_t hi, int chunk)
{
    const bn_args *a = p;
    const int c = a->c;
    const float *restrict mean = a->mean, *restrict inv = a->inv_std, *restrict g = a->gamma, *restrict b = a->beta;
    const float lo_clip = a->relu ? 0.0f : -INFINITY;
    if (bn_vectors(c)) {
        bn_apply_vec(a, lo, hi, lo_clip);
        return;
    }
    for (size_t r = lo; r < hi; r++) {
        const float *restrict x = a->x + r * c;
        float *restrict y = a->y + r * c;
        if (a->xhat_out) {
            float *restrict xh = a->xhat_out + r * c;
            for (int j = 0; j < c; j++) {
                float v = (x[j] - mean[j]) * inv[j];
                xh[j] = v;
                float o = g[j] * v + b[j];
                y[j] = o < lo_clip ? lo_clip : o;   /* not fmaxf: a NaN must stay a NaN */
            }
        } else {
            for (int j = 0; j < c; j++) {
                float o = g[j] * ((x[j] - mean[j]) * inv[j]) + b[j];
                y[j] = o < lo_clip ? lo_clip : o;
            }
        }
    }
}

/* dx = gamma * inv_std * (dy - mean(dy) - xhat * mean(dy * xhat)); mean/inv_std fields reused for
 * the two per-channel means. */
static void bn_dx_range(void *p, size_t lo, size_t hi, int chunk)
{
    const bn_args *a = p;
    int c = a->c;
    const float *m1 = a->mean, *m2 = a->beta, *scale = a->inv_std;
    if (bn_vectors(c)) {
        for (size_t r = lo; r < hi; r++)
            for (int j = 0; j < c; j += 8) {
                bn_vec xh = bn_load(a->xhat + r * c + j), d = bn_masked_dy(a, r, j, xh);
                bn_store(a->dx + r * c + j, bn_load(scale + j) * (d - bn_load(m1 + j) - xh * bn_load(m2 + j)));
            }
        return;
    }
    for (size_t r = lo; r < hi; r++) {
        float buf[c];
        const float *restrict xh = a->xhat + r * c, *restrict d = bn_dy_row(a, r, buf);
        float *restrict dx = a->dx + r * c;
        for (int j = 0; j < c; j++) dx[j] = scale[j] * (d[j] - m1[j] - xh[j] * m2[j]);
    }
}

static float *bn_scratch(int c) { return thread_floats(CPU_SCRATCH_BN, (size_t)(MAX_CHUNKS * 2 + 4) * c); }

/* Sums the per-chunk partials in chunk order into out1/out2 (double for accuracy). */
static void bn_reduce(const float *partial, int chunks, int c, double *out1, double *out2)
{
    for (int j = 0; j < c; j++) out1[j] = out2[j] = 0;
    for (int k = 0; k < chunks; k++)
        for (int j = 0; j < c; j++) {
            out1[j] += partial[(size_t)k * 2 * c + j];
            out2[j] += partial[(size_t)k * 2 * c + c + j];
        }
}

/* The normalisation's mean and inv_std: training, from x's rows (their sums threaded, reduced in
 * chunk order), moving the running statistics; evaluation, from the running statistics. */
static void bn_statistics(const float *x, size_t rows, int c, float *running_mean, float *running_var,
                          float momentum, float eps, int train, float *mean, float *inv_std)
{
    if (!train) {
        for (int j = 0; j < c; j++) {
            mean[j] = running_mean[j];
            inv_std[j] = 1.0f / sqrtf(running_var[j] + eps);
        }
        return;
    }
    float *partial = bn_scratch(c);
    size_t grain = row_grain(c);
    bn_args a = { .x = x, .partial = partial, .c = c };
    double s1[c], s2[c];
    cpu_parallel(rows, grain, bn_sums_range, &a);
    bn_reduce(partial, cpu_chunks(rows, grain), c, s1, s2);
    for (int j = 0; j < c; j++)
        bn_channel_stats(s1[j], s2[j], rows, x[j], momentum, eps, &mean[j], &inv_std[j], &running_mean[j],
                         &running_var[j]);
}

void cpu_batchnorm_forward(const float *x, size_t rows, int c, const float *gamma, const float *beta,
                           float *running_mean, float *running_var, float momentum, float eps,
                           int train, int relu, float *y, float *xhat, float *inv_std)
{
    float *mean = bn_scratch(c) + (size_t)MAX_CHUNKS * 2 * c;
    bn_statistics(x, rows, c, running_mean, running_var, momentum, eps, train, mean, inv_std);
    bn_args a = { .x = x, .gamma = gamma, .beta = beta, .mean = mean, .inv_std = inv_std,
                  .y = y, .xhat_out = train ? xhat : NULL, .c = c, .relu = relu };
    cpu_parallel(rows, row_grain(c), bn_apply_range, &a);
}

/* From the backward sums s1 = sum dy, s2 = sum dy xhat over rows: the parameter gradients (added),
 * and the dx pass's per-channel m1, m2 (the two means) and scale = gamma inv_std. */
static void bn_grad_coefficients(const double *s1, const double *s2, size_t rows, int c, const float *gamma,
                                 const float *inv_std, float *dgamma, float *dbeta, float *m1, float *m2,
                                 float *scale)
{
    for (int j = 0; j < c; j++) {
        dbeta[j] += (float)s1[j];
        dgamma[j] += (float)s2[j];
        m1[j] = (float)(s1[j] / (double)rows);
        m2[j] = (float)(s2[j] / (double)rows);
        scale[j] = gamma[j] * inv_std[j];
    }
}

void cpu_batchnorm_backward(const float *dy, const float *act, const float *xhat, const float *inv_std,
                            size_t rows, int c, const float *gamma, const float *beta, float *dgamma,
                            float *dbeta, float *dx)
{
    float *scratch = bn_scratch(c);
    float *m1 = scratch + (size_t)MAX_CHUNKS * 2 * c, *m2 = m1 + c, *scale = m2 + c;
    size_t grain = row_grain(c);
    const float *mask_g = act ? gamma : NULL, *mask_b = act ? beta : NULL;
    bn_args a = { .dy = dy, .mask_g = mask_g, .mask_b = mask_b, .xhat = xhat, .partial = scratch, .c = c };
    double s1[c], s2[c];
    cpu_parallel(rows, grain, bn_sums_range, &a);
    bn_reduce(scratch, cpu_chunks(rows, grain), c, s1, s2);
    bn_grad_coefficients(s1, s2, rows, c, gamma, inv_std, dgamma, dbeta, m1, m2, scale);
    if (!dx) return;
    bn_args b = { .dy = dy, .mask_g = mask_g, .mask_b = mask_b, .xhat = xhat, .mean = m1, .beta = m2,
                  .inv_std = scale, .dx = dx, .c = c };
    cpu_parallel(rows, grain, bn_dx_range, &b);
}

/* ---- batch norm, ReLU and a 2x2 max pool in one pass ----------------------------------------
 * The first block of an image model: the batch norm's full-size output is only ever read by the
 * pool, and the pool's full-size gradient only by the batch norm's backward. Here neither reaches
 * memory: the forward pools as it normalises (the same floats, compared in the same order, as
 * bn_apply then maxpool2_image), and the backward reads the pool's gradient and argmax where the
 * batch norm would read the scattered gradient. Nor is the full-size xhat kept: the forward keeps
 * it at each argmax only, which is all the gradient sums read, and the dx pass works it out from x
 * again, (x - mean) inv_std, the forward's own arithmetic. An argmax of -1 marks a window whose
 * maximum the ReLU stopped: no gradient flows into it. */

typedef struct {
    const float *x, *mean, *inv_std;       /* the normalisation: xhat = (x - mean) inv_std */
    const float *gamma, *beta;
    float *y, *xh_out;                     /* forward: the pooled output, xhat at its argmax */
    int32_t *arg_out;
    const float *dy, *xh, *m1, *m2, *scale; /* backward: the pool's gradient, xhat at its argmax;
                                             * the dx pass's coefficients */
    const int32_t *arg;
    float *dx, *partial;                   /* partial: (MAX_CHUNKS, 2, c) */
    int h, w, c, pass;                     /* backward: 0 sums, 1 dx */
} bnp_args;

/* One window's four positions in x, in maxpool2_image's order, image img, output (oy, ox). */
static inline void bnp_window(const bnp_args *a, size_t img, int oy, int ox, size_t e[4])
{
    e[0] = ((img * a->h + 2 * (size_t)oy) * a->w + 2 * (size_t)ox) * a->c;
    e[1] = e[0] + a->c;
    e[2] = e[0] + (size_t)a->w * a->c;
    e[3] = e[2] + a->c;
}

/* Runs the statement after it once per 2x2 window of images lo..hi-1, with e the window's four
 * positions in x and o its first channel in the pooled arrays (oh x ow windows an image, c
 * channels): the walk the forward and the dx pass share, as plain loops so that their vector
 * bodies stay inlined. oh and ow are the caller's constants: read through a they would be loaded
 * again each window (the stores may alias a). */
#define BNP_FOR_WINDOWS(a, lo, hi, oh, ow, c, e, o)                                                \
    for (size_t img_ = (lo); img_ < (hi); img_++)                                                  \
        for (int oy_ = 0; oy_ < (oh); oy_++)                                                       \
            for (int ox_ = 0; ox_ < (ow); ox_++)                                                   \
                for (size_t e[4], o = ((img_ * (oh) + oy_) * (ow) + ox_) * (c),                    \
                     once_ = (bnp_window((a), img_, oy_, ox_, e), 1); once_; once_ = 0)

static inline bn_vec bn_select(bn_mask m, bn_vec a, bn_vec b)   /* m ? a : b, lane by lane */
{
    bn_mask ai, bi;
    memcpy(&ai, &a, sizeof ai);
    memcpy(&bi, &b, sizeof bi);
    bn_mask r = (m & ai) | (~m & bi);
    memcpy(&a, &r, sizeof a);
    return a;
}

static inline __attribute__((always_inline)) void
bnp_forward_c(const bnp_args *a, size_t lo, size_t hi, const int c)
{
    const int oh = a->h / 2, ow = a->w / 2;
    const bn_vec zero = { 0 };
    const bn_mask lane = { 0, 1, 2, 3, 4, 5, 6, 7 };
    BNP_FOR_WINDOWS(a, lo, hi, oh, ow, c, e, o) {
        if (bn_vectors(c)) {
            for (int j = 0; j < c; j += 8) {
                bn_vec mean = bn_load(a->mean + j), inv = bn_load(a->inv_std + j);
                bn_vec g = bn_load(a->gamma + j), b = bn_load(a->beta + j), best = zero, at_v = zero;
                bn_mask at = { 0 };
                for (int q = 0; q < 4; q++) {
                    bn_vec v = (bn_load(a->x + e[q] + j) - mean) * inv;
                    bn_vec out = bn_clip_below(g * v + b, zero);
                    bn_mask idx = lane + (int32_t)(e[q] + (size_t)j);
                    bn_mask take = q ? out > best : ~(bn_mask){ 0 };
                    at = (take & idx) | (~take & at);
                    best = bn_select(take, out, best);
                    at_v = bn_select(take, v, at_v);
                }
                at |= ~(best > zero);   /* -1 where the ReLU stopped the maximum */
                bn_store(a->y + o + j, best);
                bn_store(a->xh_out + o + j, at_v);
                memcpy(a->arg_out + o + j, &at, sizeof at);
            }
            continue;
        }
        for (int j = 0; j < c; j++) {
            float best = 0, at_v = 0;
            int32_t at = 0;
            for (int q = 0; q < 4; q++) {
                float v = (a->x[e[q] + j] - a->mean[j]) * a->inv_std[j];
                float out = a->gamma[j] * v + a->beta[j];
                out = out < 0 ? 0 : out;   /* not fmaxf: a NaN must stay a NaN */
                if (!q || out > best) { best = out; at = (int32_t)(e[q] + (size_t)j); at_v = v; }
            }
            a->y[o + j] = best;
            a->xh_out[o + j] = at_v;
            a->arg_out[o + j] = best > 0 ? at : -1;
        }
    }
}

/* Inlined for the common channel counts: the vector loops then unroll and their sums stay in
 * registers. */
static void bnp_forward_range(void *p, size_t lo, size_t hi, int chunk)
{
    const bnp_args *a = p;
    if (a->c == 16) bnp_forward_c(a, lo, hi, 16);
    else if (a->c == 32) bnp_forward_c(a, lo, hi, 32);
    else bnp_forward_c(a, lo, hi, a->c);
}

void cpu_bn_pool_forward(const float *x, int n, int h, int w, int c, const float *gamma, const float *beta,
                         float *running_mean, float *running_var, float momentum, float eps, int train,
                         float *y, int32_t *arg, float *xh, float *mean, float *inv_std)
{
    CHECK(h % 2 == 0 && w % 2 == 0, "cpu_bn_pool_forward: %dx%d is not a whole number of 2x2 windows", h, w);
    bn_statistics(x, (size_t)n * h * w, c, running_mean, running_var, momentum, eps, train, mean, inv_std);
    bnp_args a = { .x = x, .mean = mean, .inv_std = inv_std, .gamma = gamma, .beta = beta,
                   .y = y, .xh_out = xh, .arg_out = arg, .h = h, .w = w, .c = c };
    cpu_parallel((size_t)n, 1, bnp_forward_range, &a);
}

/* Pass 0: the gradient's sum, and its sum times xhat, per channel into the chunk's partial. Only a
 * window's argmax can carry gradient, so this reads the pooled arrays alone, in the order the
 * positions come in x (a window's other three add zeros). */
static inline __attribute__((always_inline)) void
bnp_sums_c(const bnp_args *a, size_t lo, size_t hi, int chunk, const int c)
{
    size_t per = (size_t)(a->h / 2) * (a->w / 2) * c;
    float *s1 = a->partial + (size_t)chunk * 2 * c, *s2 = s1 + c;
    memset(s1, 0, 2 * (size_t)c * sizeof(float));
    if (bn_vectors(c)) {
        const bn_vec zero = { 0 };
        bn_vec t1[BN_VEC_MAX / 8] = { { 0 } }, t2[BN_VEC_MAX / 8] = { { 0 } };
        for (size_t o = lo * per; o < hi * per; o += c)
            for (int j = 0; j < c; j += 8) {
                bn_mask at;
                memcpy(&at, a->arg + o + j, sizeof at);
                bn_vec dq = bn_select(at >= 0, bn_load(a->dy + o + j), zero);
                t1[j / 8] += dq;
                t2[j / 8] += dq * bn_load(a->xh + o + j);
            }
        for (int v = 0; v < c / 8; v++) {
            bn_store(s1 + 8 * v, t1[v]);
            bn_store(s2 + 8 * v, t2[v]);
        }
        return;
    }
    for (size_t o = lo * per; o < hi * per; o += c)
        for (int j = 0; j < c; j++)
            if (a->arg[o + j] >= 0) {
                s1[j] += a->dy[o + j];
                s2[j] += a->dy[o + j] * a->xh[o + j];
            }
}

/* Pass 1: dx = scale (d - m1 - xhat m2) at every position, d the pool's gradient at the argmax
 * and 0 elsewhere; xhat worked out from x as the forward did. */
static inline __attribute__((always_inline)) void
bnp_dx_c(const bnp_args *a, size_t lo, size_t hi, const int c)
{
    const int oh = a->h / 2, ow = a->w / 2;
    const bn_vec zero = { 0 };
    const bn_mask lane = { 0, 1, 2, 3, 4, 5, 6, 7 };
    BNP_FOR_WINDOWS(a, lo, hi, oh, ow, c, e, o) {
        if (bn_vectors(c)) {
            for (int j = 0; j < c; j += 8) {
                bn_vec d = bn_load(a->dy + o + j), mean = bn_load(a->mean + j), inv = bn_load(a->inv_std + j);
                bn_vec m1 = bn_load(a->m1 + j), m2 = bn_load(a->m2 + j), scale = bn_load(a->scale + j);
                bn_mask at;
                memcpy(&at, a->arg + o + j, sizeof at);
                for (int q = 0; q < 4; q++) {
                    bn_vec xh = (bn_load(a->x + e[q] + j) - mean) * inv;
                    bn_vec dq = bn_select(at == lane + (int32_t)(e[q] + (size_t)j), d, zero);
                    bn_store(a->dx + e[q] + j, scale * (dq - m1 - xh * m2));
                }
            }
            continue;
        }
        for (int j = 0; j < c; j++)
            for (int q = 0; q < 4; q++) {
                size_t at = e[q] + (size_t)j;
                float xh = (a->x[at] - a->mean[j]) * a->inv_std[j];
                float dq = a->arg[o + j] == (int32_t)at ? a->dy[o + j] : 0;
                a->dx[at] = a->scale[j] * (dq - a->m1[j] - xh * a->m2[j]);
            }
    }
}

static void bnp_backward_range(void *p, size_t lo, size_t hi, int chunk)
{
    const bnp_args *a = p;
    if (a->pass == 0) {
        if (a->c == 16) bnp_sums_c(a, lo, hi, chunk, 16);
        else if (a->c == 32) bnp_sums_c(a, lo, hi, chunk, 32);
        else bnp_sums_c(a, lo, hi, chunk, a->c);
    } else {
        if (a->c == 16) bnp_dx_c(a, lo, hi, 16);
        else if (a->c == 32) bnp_dx_c(a, lo, hi, 32);
        else bnp_dx_c(a, lo, hi, a->c);
    }
}

void cpu_bn_pool_backward(const float *dy, const int32_t *arg, const float *xh, const float *x, const float *mean,
                          const float *inv_std, int n, int h, int w, int c, const float *gamma, float *dgamma,
                          float *dbeta, float *dx)
{
    float *scratch = bn_scratch(c);
    float *m1 = scratch + (size_t)MAX_CHUNKS * 2 * c, *m2 = m1 + c, *scale = m2 + c;
    size_t rows = (size_t)n * h * w;
    bnp_args a = { .x = x, .mean = mean, .inv_std = inv_std, .gamma = gamma, .partial = scratch,
                   .dy = dy, .xh = xh, .arg = arg, .h = h, .w = w, .c = c };
    double s1[c], s2[c];
    cpu_parallel((size_t)n, 1, bnp_backward_range, &a);
    bn_reduce(scratch, cpu_chunks((size_t)n, 1), c, s1, s2);
    bn_grad_coefficients(s1, s2, rows, c, gamma, inv_std, dgamma, dbeta, m1, m2, scale);
    if (!dx) return;
    a.pass = 1;
    a.m1 = m1;
    a.m2 = m2;
    a.scale = scale;
    a.dx = dx;
    cpu_parallel((size_t)n, 1, bnp_backward_range, &a);
}

/* ---- loss --------------------------------------------------------------------------------- */

float cpu_softmax_xent(const float *logits, const float *targets, const float *weight, int n, int k,
                       float *loss, float *dlogits, const int *labels, int *correct)
{
    double total = 0;
    int right = 0;
    xent_rows(logits, targets, weight, n, k, loss, dlogits, labels, 0, 1, &total, &right);
    if (correct) *correct = right;
    return (float)(total / n);
}
