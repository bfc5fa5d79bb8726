/* f32 tensors: a buffer, a shape and a device tag. Activations are NHWC (batch, height, width,
 * channels); a matrix is (rows, cols). Not for autograd: layers carry their own backward.
 * A tensor's buffer lives on its device (set before the first resize; kept by tensor_free). */
#ifndef HASTEN_TENSOR_H
#define HASTEN_TENSOR_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { DEVICE_CPU, DEVICE_CUDA } device_kind;

typedef struct tensor {
    float *data;         /* (n) contiguous, row-major */
    int ndim;
    int shape[4];
    size_t n;            /* elements in use */
    size_t cap;          /* floats allocated; 0 = a view on someone else's buffer */
    device_kind device;  /* where data lives; {0} = DEVICE_CPU */
} tensor;

/* Sets the shape and grows the buffer when needed (contents are then undefined, never shrunk).
 * A view becomes an owned buffer. Aborts on allocation failure: activations are the engine's own
 * working memory, and running out is not recoverable mid-step. */
void tensor_resize(tensor *t, int ndim, const int *shape);
void tensor_resize2(tensor *t, int rows, int cols);
void tensor_resize4(tensor *t, int n, int h, int w, int c);

/* Makes t a view of data with the given shape; t must not own a buffer. */
void tensor_view(tensor *t, float *data, int ndim, const int *shape);

void tensor_zero(tensor *t);
void tensor_fill(tensor *t, float v);
/* Copies src's values into dst, which must hold as many elements (a view stays a view), across
 * devices. */
void tensor_assign(tensor *dst, const tensor *src);
/* Copies src into dst, resizing dst to src's shape; across devices when they differ. */
void tensor_copy(tensor *dst, const tensor *src);
/* Frees an owned buffer and resets t to empty on the same device; views are only reset. */
void tensor_free(tensor *t);
/* Returns 1 when both have the same ndim and shape. */
int tensor_same_shape(const tensor *a, const tensor *b);
/* Aborts when the allocator fails: wraps aligned_alloc on 64 bytes. */
void *tensor_alloc_floats(size_t n);

#ifdef __cplusplus
}
#endif

#endif
