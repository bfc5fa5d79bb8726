/* Tensor buffers and shapes, on the tensor's device through its op table (engine/ops.h).
 * Element kernels live in engine/cpu/ and engine/cuda/. */
#include "engine/tensor.h"
#include "engine/check.h"
#include "engine/ops.h"
#include <stdlib.h>
#include <string.h>

void *tensor_alloc_floats(size_t n)
{
    size_t bytes = (n * sizeof(float) + 63) & ~(size_t)63;
    void *p = aligned_alloc(64, bytes ? bytes : 64);
    CHECK(p, "out of memory allocating %zu floats", n);
    return p;
}

void tensor_resize(tensor *t, int ndim, const int *shape)
{
    size_t n = 1;
    CHECK(ndim >= 1 && ndim <= 4, "tensor rank %d", ndim);
    for (int i = 0; i < ndim; i++) {
        CHECK(shape[i] >= 0, "negative dimension %d", shape[i]);
        n *= (size_t)shape[i];
        t->shape[i] = shape[i];
    }
    for (int i = ndim; i < 4; i++) t->shape[i] = 1;
    t->ndim = ndim;
    if (n > t->cap) {
        const engine_ops *o = ops_for(t->device);
        if (t->cap) o->free(t->data);
        t->data = o->alloc(n * sizeof(float));
        t->cap = n;
    }
    t->n = n;
}

void tensor_resize2(tensor *t, int rows, int cols) { tensor_resize(t, 2, (int[]){rows, cols}); }

void tensor_resize4(tensor *t, int n, int h, int w, int c)
{
    tensor_resize(t, 4, (int[]){n, h, w, c});
}

void tensor_view(tensor *t, float *data, int ndim, const int *shape)
{
    CHECK(t->cap == 0, "tensor_view on an owning tensor");
    size_t n = 1;
    for (int i = 0; i < ndim; i++) n *= (size_t)(t->shape[i] = shape[i]);
    for (int i = ndim; i < 4; i++) t->shape[i] = 1;
    t->ndim = ndim;
    t->data = data;
    t->n = n;
}

void tensor_zero(tensor *t) { if (t->n) ops_for(t->device)->zero(t->data, t->n * sizeof(float)); }

void tensor_fill(tensor *t, float v) { if (t->n) ops_for(t->device)->fill(t->data, v, t->n); }

void tensor_copy(tensor *dst, const tensor *src)
{
    tensor_resize(dst, src->ndim, src->shape);
    tensor_assign(dst, src);
}

void tensor_assign(tensor *dst, const tensor *src)
{
    CHECK(dst->n == src->n, "tensor_assign: %zu vs %zu elements", dst->n, src->n);
    size_t bytes = src->n * sizeof(float);
    if (!bytes) return;
    if (dst->device == src->device) ops_for(dst->device)->copy(dst->data, src->data, bytes);
    else if (src->device == DEVICE_CPU) ops_for(dst->device)->upload(dst->data, src->data, bytes);
    else if (dst->device == DEVICE_CPU) ops_for(src->device)->download(dst->data, src->data, bytes);
    else CHECK(0, "tensor_copy between two accelerators");
}

void tensor_free(tensor *t)
{
    device_kind d = t->device;
    if (t->cap) ops_for(d)->free(t->data);
    memset(t, 0, sizeof *t);
    t->device = d;
}

int tensor_same_shape(const tensor *a, const tensor *b)
{
    if (a->ndim != b->ndim) return 0;
    for (int i = 0; i < a->ndim; i++)
        if (a->shape[i] != b->shape[i]) return 0;
    return 1;
}
