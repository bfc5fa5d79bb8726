/* Vectorised tensor operations for plugins: arithmetic, norms, target smoothing, mixing rows,
 * boxes, bilinear resizing, top-k. Plugins are control logic; the per-element work is here.
 * Not for layers (engine/cpu/ has those kernels). Tensors of any device, (rows, ...) row-major. */
#ifndef HASTEN_TENSOR_OPS_H
#define HASTEN_TENSOR_OPS_H

#include "engine/rng.h"
#include "engine/tensor.h"

/* In-place arithmetic; a must have t's element count where given. */
void tensor_add_(tensor *t, const tensor *a, float alpha);    /* t += alpha * a */
void tensor_scale_(tensor *t, float s);                        /* t *= s */
void tensor_add_scalar_(tensor *t, float s);                   /* t += s */
void tensor_lerp_(tensor *t, const tensor *a, float w);        /* t += w * (a - t) */
void tensor_mul_(tensor *t, const tensor *a);                  /* t *= a, elementwise */
void tensor_clamp_(tensor *t, float lo, float hi);
void tensor_exp_(tensor *t, float s);                          /* t = exp(s * t) */
void tensor_pow_(tensor *t, float e);                          /* t = t ^ e, as powf */
double tensor_sum(const tensor *t);
double tensor_norm(const tensor *t);                           /* L2 */
float tensor_max(const tensor *t);
float tensor_min(const tensor *t);

/* Each row of t (its first dimension; a vector is one row) minus the row's mean: gradient
 * centralization's per-unit centring. On a GPU, two products through scratch, which is resized
 * to hold rows + columns floats (kept by the caller: no allocation once it is large enough) and
 * must be empty or live on t's device; on the CPU a loop, scratch unused. */
void tensor_center_rows_(tensor *t, tensor *scratch);

/* Soft targets (n, k): t = (1 - alpha) * t + alpha / k. */
void tensor_smooth_(tensor *t, float alpha);

/* Row mixing: row i = lam * row i + (1 - lam) * row perm[i], for a (n, ...) tensor. */
void tensor_mix_rows_(tensor *t, const int *perm, float lam);

/* Images (n, h, w, c): for each image i, the box [y0, y0+bh) x [x0, x0+bw) gets image perm[i]'s
 * pixels (perm != NULL; CutMix) or the value v (perm == NULL; Cutout). Boxes are clipped. */
void tensor_box_(tensor *t, const int *perm, int y0, int x0, int bh, int bw, float v);
/* Cutout with a random box position per image (centre uniform over the image, clipped). */
void tensor_cutout_(tensor *t, int size, float v, rng *r);

/* Bilinear resize of images (n, h, w, c) into dst (n, oh, ow, c), align_corners = false. */
void tensor_resize_bilinear(tensor *dst, const tensor *src, int oh, int ow);

/* Images (n, h, w, c) into dst (n, nr, nc, c): rows rows[0..nr) and columns cols[0..nc) of each
 * image (host arrays of indices, any order): ColOut's shrinking. dst keeps its device. */
void tensor_take_grid(tensor *dst, const tensor *src, const int *rows, int nr, const int *cols, int nc);

/* cov (D, D), D = k*k*c: the uncentred second moment of every k x k patch (no padding) of the
 * images x (n, h, w, c), a patch read in conv-weight order ((dy*k + dx)*c + ch). cov keeps its
 * device. */
void tensor_patch_cov(tensor *cov, const tensor *x, int k);

/* Whitening filters for a conv weight w (oc, k, k, c) from a patch covariance cov (D, D) with
 * D = k*k*c: filters 2i and 2i+1 become +v and -v / sqrt(lambda + eps) for the i-th largest
 * eigenvalue lambda and its eigenvector v (LAPACK ssyev), while i < D; any further filters are
 * left as they are. Returns 0, or -1 when the eigensolver fails. */
int tensor_whiten_(tensor *w, const tensor *cov, float eps);

/* Dirac (identity) filters: in a conv weight (oc, k, k, c) with k odd, or a matrix (out, in), the
 * first min(oc, c) filters pass their own input channel through the centre tap and nothing
 * else; the other filters are left as they are. */
void tensor_dirac_(tensor *w);

/* Row-wise softmax of logits (rows = shape[0]) at temperature temp, in place. */
void tensor_softmax_rows_(tensor *t, float temp);

/* Element i of t, read across devices (waits for a GPU): for inspection, not for loops. */
float tensor_get(const tensor *t, size_t i);

/* Copies t->n floats from host memory into t, on whatever device t lives. */
void tensor_from_host(tensor *t, const float *host);

/* Indices of the k largest values of a vector, in descending order of value (ties: lower index
 * first). idx must hold k ints. Returns k clipped to [0, n]. */
int tensor_topk(const tensor *t, int k, int *idx);

/* Replaces a matrix (rows = shape[0], the rest flattened into columns) by an approximation of
 * U V^T from its SVD U S V^T: steps of the quintic Newton-Schulz iteration (Muon; Jordan 2024)
 * push every singular value into about [0.7, 1.2]. Runs on t's device through its sgemm; an all-zero
 * matrix stays zero. */
void tensor_orthogonalize_(tensor *t, int steps);

/* Magnitude pruning mask: mask (as many elements as t, on t's device) becomes 0 at the floor(fraction * n) entries of t
 * with the smallest absolute value and 1 elsewhere (ties at the threshold are kept). Returns the
 * number of zeros. */
size_t tensor_magnitude_mask(const tensor *t, double fraction, tensor *mask);

#endif
