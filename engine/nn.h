/* Layers and sequential models: forward/backward pairs over NHWC activations.
 * Not for training policy: the trainer, optimizers and plugins decide what to do with gradients. */
#ifndef HASTEN_NN_H
#define HASTEN_NN_H

#include <stddef.h>
#include <stdint.h>
#include "engine/config.h"
#include "engine/ops.h"
#include "engine/rng.h"
#include "engine/tensor.h"

typedef struct nn_param {
    char name[64];       /* "conv1.weight", "res1.bn2.beta" */
    tensor w;            /* value; conv (OC, K, K, C), linear (O, I), vectors (C) */
    tensor g;            /* gradient, same shape as w; backward accumulates into it */
    tensor m, v;         /* optimizer state, same shape (allocated by the optimizer) */
    int no_decay;        /* bias or norm parameter: weight decay off by default */
    int frozen;          /* no gradient, no update */
} nn_param;

typedef struct nn_model nn_model;
typedef struct nn_layer nn_layer;

struct nn_layer {
    layer_spec spec;     /* a copy; spec.inner is not owned here */
    char name[48];
    int n_params;
    nn_param *params[4]; /* weight/gamma then bias/beta; se: fc1 weight, bias, fc2 weight, bias */
    int skip;            /* residual only: output = shortcut(x) this step (stochastic depth) */
    float scale;         /* residual only: output = shortcut(x) + scale * branch(x); 0 reads as 1 */
    int fused;           /* batchnorm: applied the next layer's ReLU; relu: passed through (a view) */
    int pooled;          /* batchnorm: its last forward also did the 2x2 max pool after that ReLU
                            (op bn_pool_forward), writing the pool layer's out, arg and col; that
                            maxpool: done so (its backward passes the pooled gradient on) */
    const tensor *in;    /* input of the last forward */
    tensor out;          /* (N, OH, OW, OC) output of the last forward */
    tensor dx;           /* (N, H, W, C) gradient with respect to the input */
    tensor col;          /* conv: (N*OH*OW, K*K*C) im2col; batchnorm: xhat (N*H*W, C), or when pooled each
                            group's mean (groups, C); maxpool when pooled: (N, OH, OW, C) the batch
                            norm's xhat at each argmax */
    tensor aux;          /* batchnorm: inv_std (groups, C); dropout: mask (N*H*W*C); se: (N, 2C + R):
                          * squeezed means, hidden activations, gates */
    tensor run_mean, run_var;   /* batchnorm running statistics (C); views into the model's stats */
    int32_t *arg;        /* maxpool: argmax offsets (N*OH*OW*C), on the model's device; when pooled,
                            -1 where the ReLU stopped the window's maximum */
    size_t arg_cap;
    nn_model *branch;    /* residual: the branch */
    nn_layer *proj;      /* residual: 1x1 conv shortcut when shapes differ; NULL = identity */
};

struct nn_model {
    int n_layers;
    nn_layer *layers;    /* (n_layers) */
    int n_params;
    nn_param **params;   /* (n_params) every parameter, nested ones included, in layer order */
    tensor weights;      /* (P) all parameter values, one allocation; params[i]->w are views into it */
    tensor grads;        /* (P) all gradients, same layout */
    tensor stats;        /* (S) every batch-norm running mean then variance, in layer order, one
                          * allocation; the layers' run_mean/run_var are views into it */
    int in_h, in_w, in_c;  /* geometry the model was built for */
    int out_features;
    rng rng;             /* dropout masks: one seed per dropout forward */
    device_kind device;  /* where weights, gradients and activations live */
    const engine_ops *ops;   /* that device's op table */
    int low_precision;   /* 1 = bf16 matrix products on tensor cores (CUDA), fp32 master weights */
    char err[256];       /* last forward error */
};

/* Builds a model from specs for inputs of (h, w, c), initialising parameters from seed (He normal
 * weights, zero biases, unit gammas). Returns NULL with a one-line message in err on a spec that
 * cannot work at this geometry (e.g. a pool larger than its input). The caller owns the model. */
nn_model *nn_build(const layer_spec *specs, int n, int h, int w, int c, uint64_t seed,
                   char *err, size_t errlen);
void nn_free(nn_model *m);

/* Runs the model on x (N, H, W, C); H and W may differ from the build geometry where the layers
 * allow it. Returns the output (owned by the model, valid until the next forward) or NULL with
 * m->err set (e.g. a linear layer given the wrong number of features). */
const tensor *nn_forward(nn_model *m, const tensor *x, int train);

/* Backpropagates dout (the gradient of the last output), accumulating parameter gradients of
 * unfrozen parameters. Stops at the earliest layer that has trainable parameters, so frozen
 * leading layers cost nothing. */
void nn_backward(nn_model *m, const tensor *dout);
/* Same, and also computes the gradient with respect to the input into m->layers[0].dx. */
void nn_backward_full(nn_model *m, const tensor *dout);

/* Moves weights, gradients, optimizer state and running statistics to device d, which must be
 * open (ops_open); activations are dropped and regrow there. Returns 0, or -1 with m->err set. */
int nn_to_device(nn_model *m, device_kind d);

/* Turns bf16 matrix products (fp32 accumulation, fp32 master weights) on (1) or off (0). Returns 0,
 * or -1 with m->err set when the model's device has no bf16 path (the CPU). */
int nn_set_low_precision(nn_model *m, int on);

/* Matrix-product shape recording, for the roofline benchmark and the tests: while on, the shape of
 * each product any model does, on any device, is kept. Not thread-safe: one recorder at a time. */
typedef struct nn_gemm_shape { int ta, tb, M, N, K; float beta; int count; } nn_gemm_shape;   /* count: of a batch */
void nn_gemm_record(nn_gemm_shape *buf, int cap);   /* buf = NULL stops recording */
int nn_gemm_recorded(void);                         /* products recorded since the start */

/* Time per layer, for `hasten bench --layers`: while on, each forward and backward of a layer of a
 * top-level model adds its seconds to buf[i] for the model's layer i < cap (a residual block is one
 * layer), measured after the device has finished the work (ops->sync: on a GPU this serialises,
 * so it slows what it measures). Not thread-safe: one recorder at a time. */
typedef struct nn_layer_time { char name[48]; double forward, backward; long calls; } nn_layer_time;
void nn_layer_timing(nn_layer_time *buf, int cap);   /* buf = NULL stops; buf is zeroed first */

/* A model's state as bytes (weights.bin): "HSTNWTS\0", version 2 (uint32), the CRC-32 of all
 * after these 32 header bytes (uint32), the weight and statistic counts (uint64 each), then the
 * weights and the batch-norm statistics as float32, then the parameter count and each parameter's
 * rank and 4 dimensions (uint32), host byte order; version 1 was the same without checksum (0)
 * and shapes. nn_state_pack returns a malloc'd buffer (version 2) and its length in *len.
 * nn_state_unpack loads either version into a model built from the same layers: returns 0, or -1
 * with one line in err, loading nothing (not such a file, another version, counts or shapes that
 * differ from this model's, a checksum that does not match, numbers no training leaves). */
void *nn_state_pack(const nn_model *m, size_t *len);
int nn_state_unpack(nn_model *m, const void *buf, size_t len, char *err, size_t errlen);

void nn_zero_grad(nn_model *m);
/* Total number of scalar parameters. */
size_t nn_param_count(const nn_model *m);
/* Finds a layer by name at the top level, or NULL. */
nn_layer *nn_find_layer(nn_model *m, const char *name);
/* ALiBi on (1) or off (0): every attention layer, nested ones included, adds (or stops adding)
 * the distance biases, and every embedding stops (or resumes) adding its position table, which is
 * frozen (or unfrozen) with it. Returns the number of attention layers. */
int nn_set_alibi(nn_model *m, int on);

/* Freezes (1) or unfreezes (0) every parameter of a layer, nested ones included. */
void nn_layer_freeze(nn_layer *l, int frozen);

#endif
