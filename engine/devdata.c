/* The dataset on a device and the batch gather that replaces the loader's pixel work there. */
#include "engine/devdata.h"
#include <stdio.h>
#include <string.h>

static uint8_t *upload_bytes(const engine_ops *o, const uint8_t *src, size_t n)
{
    uint8_t *p = o->alloc(n ? n : 1);
    if (n) o->upload(p, src, n);
    return p;
}

int devdata_open(devdata *d, const data_set *ds, const engine_ops *ops, char *err, size_t errlen)
{
    memset(d, 0, sizeof *d);
    if (ds->c < 1 || ds->c > DATA_MAX_C) {
        snprintf(err, errlen, "%s has %d channels; the device path handles 1 to %d", ds->name, ds->c, DATA_MAX_C);
        return -1;
    }
    d->ops = ops;
    d->h = ds->h; d->w = ds->w; d->c = ds->c; d->classes = ds->classes;
    d->per = data_labels_per(ds);
    const data_split *split[2] = { &ds->train, &ds->test };
    size_t img = (size_t)ds->h * ds->w * ds->c;
    for (int s = 0; s < 2; s++) {
        d->pixels[s] = upload_bytes(ops, split[s]->pixels, img * split[s]->n);
        d->labels[s] = upload_bytes(ops, split[s]->labels, (size_t)split[s]->n * d->per);
    }
    float lut[DATA_MAX_C * 256];
    data_lut(ds, lut);
    d->lut = ops->alloc(sizeof lut);
    ops->upload(d->lut, lut, sizeof lut);
    return 0;
}

void devdata_close(devdata *d)
{
    if (!d->ops) return;
    for (int s = 0; s < 2; s++) {
        d->ops->free(d->pixels[s]);
        d->ops->free(d->labels[s]);
    }
    d->ops->free(d->lut);
    if (d->batch_labels) d->ops->free(d->batch_labels);
    memset(d, 0, sizeof *d);
}

void devdata_gather(devdata *d, int split, const int *idx, const int *aug, int n, tensor *x,
                    tensor *targets)
{
    if (n > d->cap) {
        if (d->batch_labels) d->ops->free(d->batch_labels);
        d->batch_labels = d->ops->alloc((size_t)n * d->per * sizeof(int));
        d->cap = n;
    }
    tensor_resize4(x, n, d->h, d->w, d->c);
    tensor_resize2(targets, n * d->per, d->classes);
    d->ops->gather(d->pixels[split], d->labels[split], d->lut, d->h, d->w, d->c, d->classes, d->per, idx,
                   aug, n, x->data, d->batch_labels, targets->data);
}
