/* A small learnable image set made in code, for tests, demos and machines without a dataset.
 * Not a benchmark: it is easy on purpose (a small MLP passes 90% quickly), but no single pixel
 * separates the classes. */
#include "datasets/datasets.h"
#include "engine/rng.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SHIFT 3         /* examples move by up to this many pixels each way */
#define NOISE 0.30f     /* pixel noise sd: with the shifts, a small MLP needs an epoch or two */
#define BLOBS 3         /* gaussian blobs per class template */

/* Fills t (h + 2*SHIFT, w + 2*SHIFT) with one class's template: blobs plus a faint stripe
 * pattern, drawn over the padded area so shifted examples have no hard edges. */
static void make_template(float *t, int h, int w, rng *r)
{
    int th = h + 2 * SHIFT, tw = w + 2 * SHIFT;
    float size = (float)(h < w ? h : w);
    float cy[BLOBS], cx[BLOBS], inv2s2[BLOBS], amp[BLOBS];
    for (int b = 0; b < BLOBS; b++) {
        cy[b] = SHIFT + h * (0.2f + 0.6f * rng_uniform(r));
        cx[b] = SHIFT + w * (0.2f + 0.6f * rng_uniform(r));
        float s = size * (0.08f + 0.10f * rng_uniform(r));
        inv2s2[b] = 1.0f / (2.0f * s * s);
        amp[b] = 0.5f + 0.5f * rng_uniform(r);
    }
    float angle = 3.1415927f * rng_uniform(r), period = 4.0f + 6.0f * rng_uniform(r);
    float ky = sinf(angle) * 6.2831853f / period, kx = cosf(angle) * 6.2831853f / period;
    for (int y = 0; y < th; y++) {
        for (int x = 0; x < tw; x++) {
            float v = 0.15f * (1.0f + sinf(ky * y + kx * x));
            for (int b = 0; b < BLOBS; b++) {
                float dy = y - cy[b], dx = x - cx[b];
                v += amp[b] * expf(-(dy * dy + dx * dx) * inv2s2[b]);
            }
            t[y * tw + x] = v > 1.0f ? 1.0f : v;
        }
    }
}

/* Fills split s with n examples of random classes drawn from the templates. */
static void make_split(data_split *s, int n, const float *tmpl, int h, int w, int classes, rng *r)
{
    int tw = w + 2 * SHIFT;
    size_t tsize = (size_t)(h + 2 * SHIFT) * tw;
    s->n = n;
    for (int i = 0; i < n; i++) {
        s->labels[i] = (uint8_t)rng_below(r, (uint32_t)classes);
        const float *t = tmpl + tsize * s->labels[i];
        int dy = (int)rng_below(r, 2 * SHIFT + 1), dx = (int)rng_below(r, 2 * SHIFT + 1);
        float contrast = 0.6f + 0.4f * rng_uniform(r), bias = 0.1f * rng_uniform(r);
        uint8_t *px = s->pixels + (size_t)i * h * w;
        for (int y = 0; y < h; y++) {
            const float *row = t + (size_t)(y + dy) * tw + dx;
            for (int x = 0; x < w; x++) {
                float v = bias + contrast * row[x] + NOISE * rng_normal(r);
                v = v < 0.0f ? 0.0f : v > 1.0f ? 1.0f : v;
                px[y * w + x] = (uint8_t)(v * 255.0f + 0.5f);
            }
        }
    }
}

int data_synthetic(data_set *out, int n_train, int n_test, int h, int w, int classes, uint64_t seed)
{
    float *tmpl = NULL;
    rng r;

    memset(out, 0, sizeof *out);
    if (n_train < 1 || n_test < 0 || h < 1 || w < 1 || h > 1024 || w > 1024 || classes < 1 || classes > 256)
        return DATA_MALFORMED;
    size_t img = (size_t)h * w, tsize = (size_t)(h + 2 * SHIFT) * (w + 2 * SHIFT);
    tmpl = malloc(tsize * classes * sizeof *tmpl);
    out->train.pixels = malloc(img * n_train);
    out->train.labels = malloc((size_t)n_train);
    out->test.pixels = malloc(img * (n_test ? n_test : 1));
    out->test.labels = malloc(n_test ? (size_t)n_test : 1);
    if (!tmpl || !out->train.pixels || !out->train.labels || !out->test.pixels || !out->test.labels)
        goto fail;

    rng_seed(&r, seed, 0x5e7);
    for (int k = 0; k < classes; k++) make_template(tmpl + tsize * k, h, w, &r);
    rng_seed(&r, seed, 0x5e8);
    make_split(&out->train, n_train, tmpl, h, w, classes, &r);
    rng_seed(&r, seed, 0x5e9);
    make_split(&out->test, n_test, tmpl, h, w, classes, &r);
    free(tmpl);

    snprintf(out->name, sizeof out->name, "synthetic");
    snprintf(out->source, sizeof out->source, "generated");
    out->h = h;
    out->w = w;
    out->c = 1;
    out->classes = classes;
    data_set_stats(out);
    return 0;

fail:
    free(tmpl);
    data_set_free(out);
    memset(out, 0, sizeof *out);
    return DATA_MALFORMED;
}
