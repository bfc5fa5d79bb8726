/* Plugin-facing tensor operations. Single-threaded on the CPU: they touch one batch or one
 * parameter vector, a small fraction of a step. Everything a plugin may do every step (arithmetic,
 * norms, smoothing, the batch's mixes, boxes, resizes, grids and softmax) runs through the tensor's
 * device's op table, without waiting for the device; the rare one-off operations (filter
 * initialisations at fit_start) run on a host copy (VIA_HOST), so every plugin works on every
 * device. */
#include "engine/tensor_ops.h"
#include "engine/check.h"
#include "engine/ops.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Device tensors: the op table's map or reduce. */
#define ON_DEVICE(t) ((t)->device != DEVICE_CPU)
#define DEVICE_MAP(t, op, a, s1, s2) ops_for((t)->device)->map(op, (t)->data, (a) ? (a)->data : NULL, (t)->n, s1, s2)
#define DEVICE_REDUCE(t, op) ops_for((t)->device)->reduce(op, (t)->data, (t)->n)

/* Both operands of a binary op on one device: a mix is a plugin bridge bug, not a user error. */
#define SAME_DEVICE(t, a, what) \
    CHECK((t)->device == (a)->device, "%s: tensors on %s and %s", what, ops_device_name((t)->device), \
          ops_device_name((a)->device))

/* Runs `call` on h, a host copy of device tensor t, then copies h back into t. */
#define VIA_HOST(t, call)                                                                           \
    do {                                                                                            \
        tensor h = {0};                                                                             \
        tensor_copy(&h, (t));                                                                       \
        call;                                                                                       \
        tensor_copy((t), &h);                                                                       \
        tensor_free(&h);                                                                            \
    } while (0)

void tensor_add_(tensor *t, const tensor *a, float alpha)
{
    CHECK(a->n == t->n, "tensor_add_: %zu vs %zu elements", t->n, a->n);
    SAME_DEVICE(t, a, "tensor_add_");
    if (ON_DEVICE(t)) { DEVICE_MAP(t, OPS_AXPY, a, alpha, 0); return; }
    for (size_t i = 0; i < t->n; i++) t->data[i] += alpha * a->data[i];
}

void tensor_scale_(tensor *t, float s)
{
    if (ON_DEVICE(t)) { DEVICE_MAP(t, OPS_SCALE, (const tensor *)NULL, s, 0); return; }
    for (size_t i = 0; i < t->n; i++) t->data[i] *= s;
}

void tensor_add_scalar_(tensor *t, float s)
{
    if (ON_DEVICE(t)) { DEVICE_MAP(t, OPS_ADD_SCALAR, (const tensor *)NULL, s, 0); return; }
    for (size_t i = 0; i < t->n; i++) t->data[i] += s;
}

void tensor_lerp_(tensor *t, const tensor *a, float w)
{
    CHECK(a->n == t->n, "tensor_lerp_: %zu vs %zu elements", t->n, a->n);
    SAME_DEVICE(t, a, "tensor_lerp_");
    if (ON_DEVICE(t)) { DEVICE_MAP(t, OPS_LERP, a, w, 0); return; }
    for (size_t i = 0; i < t->n; i++) t->data[i] += w * (a->data[i] - t->data[i]);
}

void tensor_mul_(tensor *t, const tensor *a)
{
    CHECK(a->n == t->n, "tensor_mul_: %zu vs %zu elements", t->n, a->n);
    SAME_DEVICE(t, a, "tensor_mul_");
    if (ON_DEVICE(t)) { DEVICE_MAP(t, OPS_MUL, a, 0, 0); return; }
    for (size_t i = 0; i < t->n; i++) t->data[i] *= a->data[i];
}

void tensor_clamp_(tensor *t, float lo, float hi)
{
    if (ON_DEVICE(t)) { DEVICE_MAP(t, OPS_CLAMP, (const tensor *)NULL, lo, hi); return; }
    for (size_t i = 0; i < t->n; i++) t->data[i] = fminf(fmaxf(t->data[i], lo), hi);
}

void tensor_exp_(tensor *t, float s) { ops_for(t->device)->map(OPS_EXP, t->data, NULL, t->n, s, 0); }
void tensor_pow_(tensor *t, float e) { ops_for(t->device)->map(OPS_POW, t->data, NULL, t->n, e, 0); }

double tensor_sum(const tensor *t)
{
    if (ON_DEVICE(t)) return DEVICE_REDUCE(t, OPS_SUM);
    double s = 0;
    for (size_t i = 0; i < t->n; i++) s += t->data[i];
    return s;
}

double tensor_norm(const tensor *t)
{
    if (ON_DEVICE(t)) return sqrt(DEVICE_REDUCE(t, OPS_SUMSQ));
    double s = 0;
    for (size_t i = 0; i < t->n; i++) s += (double)t->data[i] * t->data[i];
    return sqrt(s);
}

float tensor_max(const tensor *t)
{
    if (ON_DEVICE(t)) return (float)DEVICE_REDUCE(t, OPS_MAX);
    float m = t->n ? t->data[0] : 0;
    for (size_t i = 1; i < t->n; i++) m = fmaxf(m, t->data[i]);
    return m;
}

float tensor_min(const tensor *t)
{
    if (ON_DEVICE(t)) return (float)DEVICE_REDUCE(t, OPS_MIN);
    float m = t->n ? t->data[0] : 0;
    for (size_t i = 1; i < t->n; i++) m = fminf(m, t->data[i]);
    return m;
}

void tensor_smooth_(tensor *t, float alpha)
{
    int k = t->ndim >= 2 ? t->shape[t->ndim - 1] : (int)t->n;
    float u = alpha / (float)k;
    if (ON_DEVICE(t)) {   /* two roundings, as the loop below: the same values */
        DEVICE_MAP(t, OPS_SCALE, (const tensor *)NULL, 1 - alpha, 0);
        DEVICE_MAP(t, OPS_ADD_SCALAR, (const tensor *)NULL, u, 0);
        return;
    }
    for (size_t i = 0; i < t->n; i++) t->data[i] = (1 - alpha) * t->data[i] + u;
}

void tensor_mix_rows_(tensor *t, const int *perm, float lam)
{
    int n = t->shape[0];
    if (n < 1) return;
    for (int i = 0; i < n; i++) CHECK(perm[i] >= 0 && perm[i] < n, "tensor_mix_rows_: row %d of %d", perm[i], n);
    ops_for(t->device)->mix_rows(t->data, perm, n, t->n / (size_t)n, lam);
}

/* Clips a box's start and length to [0, size). */
static void clip_box(int size, int *start, int *len)
{
    if (*start < 0) { *len += *start; *start = 0; }
    if (*start + *len > size) *len = size - *start;
    if (*len < 0) *len = 0;
}

/* Pastes boxes (n, 4: y0, x0, bh, bw, each clipped here to its image; freed here) into the images
 * of t: the value v, or the same box of image perm[i]. */
static void paste_boxes(tensor *t, const int *perm, int *boxes, float v)
{
    int n = t->shape[0], h = t->shape[1], w = t->shape[2], c = t->shape[3];
    for (int i = 0; i < n; i++) {
        clip_box(h, &boxes[4 * i], &boxes[4 * i + 2]);
        clip_box(w, &boxes[4 * i + 1], &boxes[4 * i + 3]);
        if (perm) CHECK(perm[i] >= 0 && perm[i] < n, "tensor_box_: image %d of %d", perm[i], n);
    }
    ops_for(t->device)->paste_boxes(t->data, perm, boxes, n, h, w, c, v);
    free(boxes);
}

static int *new_boxes(int n)
{
    int *b = malloc((size_t)n * 4 * sizeof *b);
    CHECK(b, "out of memory");
    return b;
}

void tensor_box_(tensor *t, const int *perm, int y0, int x0, int bh, int bw, float v)
{
    int n = t->shape[0];
    if (n < 1) return;
    int *b = new_boxes(n);
    for (int i = 0; i < n; i++) b[4 * i] = y0, b[4 * i + 1] = x0, b[4 * i + 2] = bh, b[4 * i + 3] = bw;
    paste_boxes(t, perm, b, v);
}

void tensor_cutout_(tensor *t, int size, float v, rng *r)
{
    int n = t->shape[0], h = t->shape[1], w = t->shape[2];
    if (n < 1) return;
    int *b = new_boxes(n);
    for (int i = 0; i < n; i++) {   /* the centres in image order: the same draws on every device */
        int cy = (int)rng_below(r, (uint32_t)h), cx = (int)rng_below(r, (uint32_t)w);
        b[4 * i] = cy - size / 2, b[4 * i + 1] = cx - size / 2, b[4 * i + 2] = size, b[4 * i + 3] = size;
    }
    paste_boxes(t, NULL, b, v);
}

/* An empty dst takes src's device; otherwise both must be on one. */
static void same_device_out(tensor *dst, const tensor *src, const char *what)
{
    if (!dst->cap && !dst->n) dst->device = src->device;
    SAME_DEVICE(dst, src, what);
}

void tensor_center_rows_(tensor *t, tensor *scratch)
{
    if (!t->n) return;
    int rows = t->ndim >= 2 ? t->shape[0] : 1, cols = (int)(t->n / (size_t)rows);
    if (!ON_DEVICE(t)) {   /* a loop: OpenBLAS's thin products cost several times more here */
        for (int r = 0; r < rows; r++) {
            float *row = t->data + (size_t)r * cols;
            double sum = 0;
            for (int j = 0; j < cols; j++) sum += row[j];
            float mean = (float)(sum / cols);
            for (int j = 0; j < cols; j++) row[j] -= mean;
        }
        return;
    }
    same_device_out(scratch, t, "tensor_center_rows_");
    const engine_ops *o = ops_for(t->device);
    int all = rows + cols;
    tensor_resize(scratch, 1, &all);
    float *mean = scratch->data, *ones = scratch->data + rows;
    o->fill(ones, 1.0f / (float)cols, (size_t)cols);
    o->sgemm(0, 0, rows, 1, cols, 1, t->data, cols, ones, 1, 0, mean, 1);         /* mean (rows) = t 1/cols */
    o->fill(ones, 1.0f, (size_t)cols);
    o->sgemm(0, 0, rows, cols, 1, -1, mean, 1, ones, cols, 1, t->data, cols);     /* t -= mean 1^T */
}

void tensor_resize_bilinear(tensor *dst, const tensor *src, int oh, int ow)
{
    same_device_out(dst, src, "tensor_resize_bilinear");
    CHECK(dst != src, "tensor_resize_bilinear: dst and src are one tensor");
    int n = src->shape[0], h = src->shape[1], w = src->shape[2], c = src->shape[3];
    tensor_resize4(dst, n, oh, ow, c);
    if (dst->n) ops_for(src->device)->resize_bilinear(src->data, n, h, w, c, oh, ow, dst->data);
}

void tensor_take_grid(tensor *dst, const tensor *src, const int *rows, int nr, const int *cols, int nc)
{
    same_device_out(dst, src, "tensor_take_grid");
    CHECK(dst != src, "tensor_take_grid: dst and src are one tensor");
    int n = src->shape[0], h = src->shape[1], w = src->shape[2], c = src->shape[3];
    for (int y = 0; y < nr; y++) CHECK(rows[y] >= 0 && rows[y] < h, "tensor_take_grid: row %d of %d", rows[y], h);
    for (int x = 0; x < nc; x++) CHECK(cols[x] >= 0 && cols[x] < w, "tensor_take_grid: column %d of %d", cols[x], w);
    tensor_resize4(dst, n, nr, nc, c);
    if (dst->n) ops_for(src->device)->take_grid(src->data, n, h, w, c, rows, nr, cols, nc, dst->data);
}

void tensor_patch_cov(tensor *cov, const tensor *x, int k)
{
    if (ON_DEVICE(x)) {
        tensor hx = {0};
        tensor_copy(&hx, x);
        tensor_patch_cov(cov, &hx, k);
        tensor_free(&hx);
        return;
    }
    int n = x->shape[0], h = x->shape[1], w = x->shape[2], c = x->shape[3], d = k * k * c;
    double *acc = calloc((size_t)d * d, sizeof *acc);
    float *p = malloc((size_t)d * sizeof *p);
    CHECK(acc && p, "out of memory");
    long count = 0;
    for (int i = 0; i < n; i++)
        for (int y = 0; y + k <= h; y++)
            for (int xx = 0; xx + k <= w; xx++, count++) {
                for (int dy = 0; dy < k; dy++)   /* a patch row is k*c contiguous floats */
                    memcpy(p + (size_t)dy * k * c, x->data + (((size_t)i * h + y + dy) * w + xx) * c,
                           (size_t)k * c * sizeof(float));
                for (int a = 0; a < d; a++)
                    for (int b = a; b < d; b++) acc[(size_t)a * d + b] += (double)p[a] * p[b];
            }
    tensor hc = {0};
    tensor_resize2(&hc, d, d);
    for (int a = 0; a < d; a++)
        for (int b = a; b < d; b++)
            hc.data[(size_t)a * d + b] = hc.data[(size_t)b * d + a] = (float)(count ? acc[(size_t)a * d + b] / count : 0);
    tensor_copy(cov, &hc);
    tensor_free(&hc);
    free(acc);
    free(p);
}

/* LAPACK (OpenBLAS carries it): eigenvalues ascending in w, eigenvectors in the columns of a. */
extern void ssyev_(const char *jobz, const char *uplo, const int *n, float *a, const int *lda, float *w,
                   float *work, const int *lwork, int *info);

int tensor_whiten_(tensor *w, const tensor *cov, float eps)
{
    int d = cov->shape[0], oc = w->shape[0], info = 0, lwork = -1;
    CHECK(cov->ndim == 2 && cov->shape[1] == d && w->n == (size_t)oc * d,
          "tensor_whiten_: weight of %zu for a %dx%d covariance", w->n, d, cov->shape[1]);
    tensor a = {0}, hw = {0};
    tensor_copy(&a, cov);   /* host copies; ssyev overwrites a with the eigenvectors */
    tensor_copy(&hw, w);
    float *lambda = malloc((size_t)d * sizeof *lambda), query;
    CHECK(lambda, "out of memory");
    ssyev_("V", "U", &d, a.data, &d, lambda, &query, &lwork, &info);
    lwork = info == 0 ? (int)query : 0;
    float *work = malloc((size_t)(lwork > 0 ? lwork : 1) * sizeof *work);
    CHECK(work, "out of memory");
    if (info == 0) ssyev_("V", "U", &d, a.data, &d, lambda, work, &lwork, &info);
    if (info == 0) {
        for (int i = 0; i < d && 2 * i + 1 < oc; i++) {
            int j = d - 1 - i;   /* the largest eigenvalues first */
            float s = 1.0f / sqrtf(fmaxf(lambda[j], 0) + eps);
            for (int e = 0; e < d; e++) {
                hw.data[(size_t)(2 * i) * d + e] = a.data[(size_t)j * d + e] * s;
                hw.data[(size_t)(2 * i + 1) * d + e] = -a.data[(size_t)j * d + e] * s;
            }
        }
        tensor_assign(w, &hw);
    }
    free(work);
    free(lambda);
    tensor_free(&a);
    tensor_free(&hw);
    return info == 0 ? 0 : -1;
}

void tensor_dirac_(tensor *w)
{
    if (ON_DEVICE(w)) { VIA_HOST(w, tensor_dirac_(&h)); return; }
    int conv = w->ndim == 4, oc = w->shape[0], k = conv ? w->shape[1] : 1;
    int c = conv ? w->shape[3] : (int)(w->n / (size_t)oc), n = oc < c ? oc : c;
    size_t per = w->n / (size_t)oc;
    for (int o = 0; o < n; o++) {
        float *f = w->data + (size_t)o * per;
        memset(f, 0, per * sizeof(float));
        f[((size_t)(k / 2) * k + k / 2) * c + o] = 1;
    }
}

void tensor_softmax_rows_(tensor *t, float temp)
{
    int rows = t->ndim ? t->shape[0] : 1;
    if (rows < 1 || !t->n) return;
    ops_for(t->device)->softmax_rows(t->data, rows, t->n / (size_t)rows, temp);
}

float tensor_get(const tensor *t, size_t i)
{
    CHECK(i < t->n, "tensor_get: index %zu of %zu", i, t->n);
    float v;
    ops_for(t->device)->download(&v, t->data + i, sizeof v);
    return v;
}

void tensor_from_host(tensor *t, const float *host)
{
    ops_for(t->device)->upload(t->data, host, t->n * sizeof(float));
}

static int topk_cmp(const void *a, const void *b, void *vals)
{
    const float *v = vals;
    int i = *(const int *)a, j = *(const int *)b;
    if (v[i] != v[j]) return v[i] < v[j] ? 1 : -1;
    return i - j;
}

int tensor_topk(const tensor *t, int k, int *idx)
{
    if (ON_DEVICE(t)) {
        tensor h = {0};
        tensor_copy(&h, t);
        k = tensor_topk(&h, k, idx);
        tensor_free(&h);
        return k;
    }
    int n = (int)t->n;
    if (k > n) k = n;
    if (k <= 0) return 0;
    int *all = malloc((size_t)n * sizeof *all);
    CHECK(all, "out of memory");
    for (int i = 0; i < n; i++) all[i] = i;
    /* n is a batch: a full sort is cheap and keeps ties stable */
    qsort_r(all, (size_t)n, sizeof *all, topk_cmp, t->data);
    memcpy(idx, all, (size_t)k * sizeof *idx);
    free(all);
    return k;
}

void tensor_orthogonalize_(tensor *t, int steps)
{
    static const float qa = 3.4445f, qb = -4.7750f, qc = 2.0315f;   /* Jordan's quintic */
    const engine_ops *ops = ops_for(t->device);
    int r = t->ndim ? t->shape[0] : 1, c = r ? (int)(t->n / (size_t)r) : 0;
    if (!t->n) return;
    int tall = r > c, a = tall ? c : r;   /* the Gram matrix is (a, a), a = min(r, c) */
    double norm = tensor_norm(t);
    if (norm == 0) return;
    size_t bytes = t->n * sizeof(float), gram = (size_t)a * a * sizeof(float);
    float *x = ops->alloc(bytes), *y = ops->alloc(bytes), *g = ops->alloc(gram), *p = ops->alloc(gram);
    ops->copy(x, t->data, bytes);
    ops->map(OPS_SCALE, x, NULL, t->n, (float)(1 / (norm + 1e-7)), 0);
    for (int s = 0; s < steps; s++) {
        /* wide: G = X X^T, X <- qa X + P X; tall: G = X^T X, X <- qa X + X P; P = qb G + qc G G */
        if (tall) ops->sgemm(1, 0, c, c, r, 1, x, c, x, c, 0, g, c);
        else ops->sgemm(0, 1, r, r, c, 1, x, c, x, c, 0, g, r);
        ops->copy(p, g, gram);
        ops->sgemm(0, 0, a, a, a, qc, g, a, g, a, qb, p, a);
        ops->copy(y, x, bytes);
        if (tall) ops->sgemm(0, 0, r, c, c, 1, x, c, p, c, qa, y, c);
        else ops->sgemm(0, 0, r, c, r, 1, p, r, x, c, qa, y, c);
        float *swap = x; x = y; y = swap;
    }
    ops->copy(t->data, x, bytes);
    ops->free(x); ops->free(y); ops->free(g); ops->free(p);
}

static int abs_cmp(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

size_t tensor_magnitude_mask(const tensor *t, double fraction, tensor *mask)
{
    CHECK(mask->n == t->n && mask->device == t->device, "tensor_magnitude_mask: mask of %zu elements on %s",
          mask->n, ops_device_name(mask->device));
    tensor h = {0};
    tensor_copy(&h, t);   /* on the host, whatever t's device */
    size_t k = (size_t)floor(fraction * (double)t->n), zeros = 0;
    if (k > t->n) k = t->n;
    float *mags = tensor_alloc_floats(t->n ? t->n : 1);
    for (size_t i = 0; i < t->n; i++) mags[i] = fabsf(h.data[i]);
    float thr = -1;   /* k = 0: nothing is below it */
    if (k) {
        /* the k-th smallest magnitude; pruning runs every few hundred steps, so a sort will do */
        qsort(mags, t->n, sizeof *mags, abs_cmp);
        thr = k < t->n ? mags[k] : INFINITY;
    }
    for (size_t i = 0; i < t->n; i++) {
        int keep = fabsf(h.data[i]) >= thr;
        h.data[i] = keep ? 1.0f : 0.0f;
        zeros += !keep;
    }
    tensor_assign(mask, &h);
    free(mags);
    tensor_free(&h);
    return zeros;
}
