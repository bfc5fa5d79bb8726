/* A dataset resident on a device: pixels and labels uploaded once as bytes; batches gathered,
 * augmented and normalised there from the loader's indices (data_loader_start_indices).
 * Not for the CPU path, where the loader thread builds batches itself. */
#ifndef HASTEN_DEVDATA_H
#define HASTEN_DEVDATA_H

#include <stdint.h>
#include "engine/data.h"
#include "engine/ops.h"

typedef struct devdata {
    const engine_ops *ops;
    int h, w, c, classes;
    int per;             /* labels per example: 1, or the tokens of a text example */
    uint8_t *pixels[2];  /* train, test: (n, h, w, c) bytes on the device */
    uint8_t *labels[2];  /* train, test: (n * per) */
    float *lut;          /* (c, 256) normalised value of each byte */
    int *batch_labels;   /* (cap * per) labels of the last gather, on the device */
    int cap;
} devdata;

enum { DEVDATA_TRAIN, DEVDATA_TEST };

/* Uploads ds (both splits) to the device of ops. Returns 0, or -1 with err. The caller owns d
 * (devdata_close). */
int devdata_open(devdata *d, const data_set *ds, const engine_ops *ops, char *err, size_t errlen);
void devdata_close(devdata *d);

/* x (n, h, w, c) and targets (n * per, classes, one-hot) on d's device = examples idx[0..n) (host) of
 * split, augmented per aug (host (n, 3) or NULL), as engine/data.c would make them; their labels
 * go to d->batch_labels. x and targets must be tensors of d's device. Never waits for the device. */
void devdata_gather(devdata *d, int split, const int *idx, const int *aug, int n, tensor *x,
                    tensor *targets);

#endif
