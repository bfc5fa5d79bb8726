/* Normalisation, gathering and the loader thread: an in-memory data_set in, ready batches out.
 * Not for reading files (datasets/ does that) nor for copies to a device. */
#include "engine/data.h"
#include "engine/rng.h"
#include <math.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_C DATA_MAX_C
#define LOADER_STREAM 0xD1B54A32D192ED03ull  /* keeps loader streams apart from other seeded users */

typedef struct lut { float v[MAX_C][256]; } lut;   /* normalised value of each byte, per channel */

void data_set_free(data_set *ds)
{
    free(ds->train.pixels);
    free(ds->train.labels);
    free(ds->test.pixels);
    free(ds->test.labels);
    memset(&ds->train, 0, sizeof ds->train);
    memset(&ds->test, 0, sizeof ds->test);
}

void data_set_stats(data_set *ds)
{
    int c = ds->c < 1 ? 1 : ds->c > MAX_C ? MAX_C : ds->c;
    size_t pixels = (size_t)ds->train.n * ds->h * ds->w;
    const uint8_t *p = ds->train.pixels;
    uint64_t hist[MAX_C][256] = { { 0 } };   /* exact sums from byte counts */

    for (int ch = 0; ch < MAX_C; ch++) { ds->mean[ch] = 0.0f; ds->std[ch] = 1.0f; }
    if (!p || !pixels) return;
    if (c == 1) for (size_t i = 0; i < pixels; i++) hist[0][p[i]]++;
    else for (size_t i = 0; i < pixels; i++) for (int ch = 0; ch < c; ch++) hist[ch][p[i * c + ch]]++;
    for (int ch = 0; ch < c; ch++) {
        double s = 0, sq = 0;
        for (int v = 0; v < 256; v++) {
            double x = v / 255.0;
            s += x * hist[ch][v];
            sq += x * x * hist[ch][v];
        }
        double mean = s / pixels, var = sq / pixels - mean * mean;
        ds->mean[ch] = (float)mean;
        ds->std[ch] = var > 1e-12 ? (float)sqrt(var) : 1.0f;   /* a constant channel stays finite */
    }
}

static void lut_build(const data_set *ds, lut *t)
{
    for (int ch = 0; ch < MAX_C; ch++)
        for (int v = 0; v < 256; v++)
            t->v[ch][v] = ds->tokens ? (float)v : (v / 255.0f - ds->mean[ch]) / ds->std[ch];
}

void data_lut(const data_set *ds, float *out)
{
    lut_build(ds, (lut *)out);
}

/* Fills n pixels of the normalised zero (the padding value). */
static void fill_pad(float *dst, int n, int c, const lut *t)
{
    for (int i = 0; i < n; i++)
        for (int ch = 0; ch < c; ch++) *dst++ = t->v[ch][0];
}

/* Normalises n pixels from src into dst, in reverse pixel order when rev (channel order kept). */
static void convert(float *dst, const uint8_t *src, int n, int c, const lut *t, int rev)
{
    const float *t0 = t->v[0];
    if (c == 1 && !rev) {
        for (int i = 0; i < n; i++) dst[i] = t0[src[i]];
    } else if (c == 1) {
        for (int i = 0; i < n; i++) dst[i] = t0[src[n - 1 - i]];
    } else {
        for (int i = 0; i < n; i++) {
            const uint8_t *s = src + (size_t)(rev ? n - 1 - i : i) * c;
            for (int ch = 0; ch < c; ch++) dst[i * c + ch] = t->v[ch][s[ch]];
        }
    }
}

/* Writes one (h, w, c) image into dst: dst(y, x) = src(y + dy, x' + dx) with x' = w-1-x when flip
 * else x, and the normalised zero where the source is outside the image (the crop's padding). */
static void fill_example(float *dst, const uint8_t *src, int h, int w, int c, const lut *t,
                         int dy, int dx, int flip)
{
    int x0 = dx < 0 ? -dx : 0, x1 = dx > 0 ? w - dx : w;    /* x' with a source pixel */
    if (x0 > w) x0 = w;
    if (x1 < x0) x1 = x0;
    for (int y = 0; y < h; y++) {
        float *row = dst + (size_t)y * w * c;
        int sy = y + dy;
        if (sy < 0 || sy >= h || x1 == x0) { fill_pad(row, w, c, t); continue; }
        const uint8_t *s = src + ((size_t)sy * w + x0 + dx) * c;
        int left = flip ? w - x1 : x0, right = flip ? x0 : w - x1;
        fill_pad(row, left, c, t);
        convert(row + (size_t)left * c, s, x1 - x0, c, t, flip);
        fill_pad(row + (size_t)(w - right) * c, right, c, t);
    }
}

void data_fill_example(float *dst, const uint8_t *src, int h, int w, int c, const float *t,
                       int dy, int dx, int flip)
{
    fill_example(dst, src, h, w, c, (const lut *)t, dy, dx, flip);
}

/* Grows *p to n ints; returns 0 or -1 (p unchanged). */
static int grow_ints(int **p, size_t n)
{
    int *q = realloc(*p, n * sizeof *q);
    if (!q) return -1;
    *p = q;
    return 0;
}

/* Grows a batch's per-example arrays to n examples of per labels each; returns 0 or -1. */
static int grow_examples(data_batch *b, int n, int per)
{
    b->per = per;
    if (n <= b->cap_n && per <= b->cap_per) return 0;
    if (grow_ints(&b->labels, (size_t)n * per) || grow_ints(&b->idx, (size_t)n) || grow_ints(&b->aug, (size_t)n * 3))
        return -1;
    b->cap_n = n;
    b->cap_per = per;
    return 0;
}

/* Example i's labels from split example j. */
static void copy_labels(data_batch *b, int i, const data_split *split, int j)
{
    for (int q = 0; q < b->per; q++) b->labels[(size_t)i * b->per + q] = split->labels[(size_t)j * b->per + q];
}

/* Makes room for n examples of ds's geometry (pixels too when with_x); returns 0, or -1 when out
 * of memory (b unchanged). */
static int batch_reserve(data_batch *b, const data_set *ds, int n, int with_x)
{
    size_t need = with_x ? (size_t)n * ds->h * ds->w * ds->c : 0;
    if (need > (size_t)b->cap_x) {
        float *x = realloc(b->x, need * sizeof *x);
        if (!x) return -1;
        b->x = x;
        b->cap_x = (int)need;
    }
    if (grow_examples(b, n, data_labels_per(ds))) return -1;
    b->n = n;
    b->h = ds->h;
    b->w = ds->w;
    b->c = ds->c;
    return 0;
}

void data_gather(const data_set *ds, const data_split *split, const int *idx, int n, data_batch *b)
{
    lut t;
    size_t img = (size_t)ds->h * ds->w * ds->c;

    if (batch_reserve(b, ds, n, 1)) {
        fprintf(stderr, "hasten: out of memory gathering a batch of %d examples\n", n);
        abort();
    }
    lut_build(ds, &t);
    for (int i = 0; i < n; i++) {
        fill_example(b->x + img * i, split->pixels + img * idx[i], ds->h, ds->w, ds->c, &t, 0, 0, 0);
        copy_labels(b, i, split, idx[i]);
        b->idx[i] = idx[i];
        b->aug[3 * i] = b->aug[3 * i + 1] = b->aug[3 * i + 2] = 0;
    }
    b->epoch = 0;
    b->index = 0;
}

void data_batch_free(data_batch *b)
{
    free(b->x);
    free(b->labels);
    free(b->idx);
    free(b->aug);
    memset(b, 0, sizeof *b);
}

void data_batch_copy(data_batch *dst, const data_batch *src)
{
    size_t nx = src->x ? (size_t)src->n * src->h * src->w * src->c : 0;
    if (nx > (size_t)dst->cap_x) {
        float *x = realloc(dst->x, nx * sizeof *x);
        if (!x) goto oom;
        dst->x = x;
        dst->cap_x = (int)nx;
    }
    if (grow_examples(dst, src->n, src->per)) goto oom;
    if (nx) memcpy(dst->x, src->x, nx * sizeof(float));
    memcpy(dst->labels, src->labels, (size_t)src->n * src->per * sizeof(int));
    memcpy(dst->idx, src->idx, (size_t)src->n * sizeof(int));
    memcpy(dst->aug, src->aug, (size_t)src->n * 3 * sizeof(int));
    dst->n = src->n; dst->h = src->h; dst->w = src->w; dst->c = src->c;
    dst->epoch = src->epoch; dst->index = src->index;
    return;
oom:
    fprintf(stderr, "hasten: out of memory copying a batch of %d examples\n", src->n);
    abort();
}

/* The ring: slot k % DATA_RING holds batch k. The loader owns slots from `released` up to
 * `released + DATA_RING`; the consumer holds [released, taken). */
struct data_loader {
    const data_set *ds;
    int batch, steps;
    int indices_only;               /* batches without pixels: a device gathers them */
    data_augment aug;
    uint64_t seed;
    lut norm;                       /* byte -> normalised value */
    int *order;                     /* (pool) this epoch's shuffled example indices */
    int *subset, pool;              /* the examples trained on (NULL = all), and how many */
    int first_epoch;                /* the epoch number of the first batch */
    data_batch ring[DATA_RING];
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t space, ready;    /* loader waits on space, consumer on ready */
    uint64_t filled, taken, released;   /* batch counters, guarded by mu */
    int stop;
};

static uint64_t stream_of(int epoch, uint32_t index)
{
    return ((uint64_t)(uint32_t)epoch << 32 | index) ^ LOADER_STREAM;
}

/* Identity then shuffle, so an epoch's order depends only on (seed, epoch). */
static void shuffle_epoch(data_loader *l, int epoch)
{
    rng r;
    for (int i = 0; i < l->pool; i++) l->order[i] = l->subset ? l->subset[i] : i;
    rng_seed(&r, l->seed, stream_of(epoch, UINT32_MAX));
    rng_shuffle(&r, l->order, l->pool);
}

int data_alternate_flip(uint64_t seed, int idx, int epoch)
{
    rng r;
    rng_seed(&r, seed, (1ull << 63 | (uint32_t)idx) ^ LOADER_STREAM);   /* no batch's stream: epochs < 2^31 */
    return (int)(rng_u64(&r) >> 63) ^ (epoch & 1);
}

/* Fills b with batch `index` of `epoch`; the augmentation rng is seeded per batch so the result
 * does not depend on thread timing. */
static void make_batch(data_loader *l, data_batch *b, int epoch, int index)
{
    const data_set *ds = l->ds;
    size_t img = (size_t)ds->h * ds->w * ds->c;
    int pad = l->aug.crop_pad, span = 2 * pad + 1;
    const int *idx = l->order + (size_t)index * l->batch;
    rng r;

    rng_seed(&r, l->seed, stream_of(epoch, (uint32_t)index));
    for (int i = 0; i < l->batch; i++) {
        int dy = pad ? (int)rng_below(&r, (uint32_t)span) - pad : 0;
        int dx = pad ? (int)rng_below(&r, (uint32_t)span) - pad : 0;
        int flip = l->aug.flip == DATA_FLIP_RANDOM ? (int)(rng_u64(&r) >> 63)
                 : l->aug.flip == DATA_FLIP_ALTERNATE ? data_alternate_flip(l->seed, idx[i], epoch) : 0;
        if (!l->indices_only)
            fill_example(b->x + img * i, ds->train.pixels + img * idx[i], ds->h, ds->w, ds->c,
                         &l->norm, dy, dx, flip);
        copy_labels(b, i, &ds->train, idx[i]);
        b->idx[i] = idx[i];
        b->aug[3 * i] = dy;
        b->aug[3 * i + 1] = dx;
        b->aug[3 * i + 2] = flip;
    }
    b->epoch = epoch;
    b->index = index;
}

static void *loader_main(void *arg)
{
    data_loader *l = arg;
    /* The trainer's threads keep both cores busy; the loader runs in their gaps (a whole ring of
     * batches ahead), so it must not preempt them. SCHED_IDLE does that. */
    struct sched_param sp = { 0 };
    pthread_setschedparam(pthread_self(), SCHED_IDLE, &sp);
    for (uint64_t k = 0;; k++) {
        pthread_mutex_lock(&l->mu);
        while (!l->stop && k - l->released >= DATA_RING) pthread_cond_wait(&l->space, &l->mu);
        int stop = l->stop;
        pthread_mutex_unlock(&l->mu);
        if (stop) break;

        int epoch = l->first_epoch + (int)(k / (uint64_t)l->steps), index = (int)(k % (uint64_t)l->steps);
        if (index == 0) shuffle_epoch(l, epoch);
        make_batch(l, &l->ring[k % DATA_RING], epoch, index);

        pthread_mutex_lock(&l->mu);
        l->filled = k + 1;
        pthread_cond_signal(&l->ready);
        pthread_mutex_unlock(&l->mu);
    }
    return NULL;
}

static void loader_free(data_loader *l)
{
    for (int i = 0; i < DATA_RING; i++) data_batch_free(&l->ring[i]);
    free(l->order);
    free(l->subset);
    free(l);
}

static data_loader *loader_start(const data_set *ds, int batch, data_augment aug, uint64_t seed,
                                 int indices_only, const data_pool *pool)
{
    int n = pool && pool->idx ? pool->n : ds ? ds->train.n : 0;
    if (!ds || batch < 1 || batch > n || ds->c < 1 || ds->c > MAX_C || aug.crop_pad < 0)
        return NULL;
    data_loader *l = calloc(1, sizeof *l);
    if (!l) return NULL;
    l->ds = ds;
    l->batch = batch;
    l->pool = n;
    l->steps = n / batch;
    l->first_epoch = pool ? pool->first_epoch : 0;
    l->aug = aug;
    l->seed = seed;
    l->indices_only = indices_only;
    lut_build(ds, &l->norm);
    l->order = malloc((size_t)n * sizeof *l->order);
    if (!l->order) goto fail;
    if (pool && pool->idx) {
        l->subset = malloc((size_t)n * sizeof *l->subset);
        if (!l->subset) goto fail;
        for (int i = 0; i < n; i++) {
            if (pool->idx[i] < 0 || pool->idx[i] >= ds->train.n) goto fail;
            l->subset[i] = pool->idx[i];
        }
    }
    for (int i = 0; i < DATA_RING; i++)   /* all memory up front: the thread never allocates */
        if (batch_reserve(&l->ring[i], ds, batch, !indices_only)) goto fail;
    /* With default attributes these cannot fail on Linux; the thread is the only real risk. */
    pthread_mutex_init(&l->mu, NULL);
    pthread_cond_init(&l->space, NULL);
    pthread_cond_init(&l->ready, NULL);
    if (pthread_create(&l->thread, NULL, loader_main, l)) {
        pthread_cond_destroy(&l->ready);
        pthread_cond_destroy(&l->space);
        pthread_mutex_destroy(&l->mu);
        goto fail;
    }
    return l;

fail:
    loader_free(l);
    return NULL;
}

data_loader *data_loader_start(const data_set *ds, int batch, data_augment aug, uint64_t seed)
{
    return loader_start(ds, batch, aug, seed, 0, NULL);
}

data_loader *data_loader_start_indices(const data_set *ds, int batch, data_augment aug, uint64_t seed)
{
    return loader_start(ds, batch, aug, seed, 1, NULL);
}

data_loader *data_loader_start_pool(const data_set *ds, int batch, data_augment aug, uint64_t seed,
                                    int indices_only, const data_pool *pool)
{
    return loader_start(ds, batch, aug, seed, indices_only, pool);
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

const data_batch *data_loader_next(data_loader *l, double *wait_s)
{
    double waited = 0;
    pthread_mutex_lock(&l->mu);
    if (l->released < l->taken) {   /* the batch returned last time goes back to the loader */
        l->released = l->taken;
        pthread_cond_signal(&l->space);
    }
    if (l->filled == l->taken) {
        double t0 = now_s();
        while (l->filled == l->taken) pthread_cond_wait(&l->ready, &l->mu);
        waited = now_s() - t0;
    }
    const data_batch *b = &l->ring[l->taken % DATA_RING];
    l->taken++;
    pthread_mutex_unlock(&l->mu);
    if (wait_s) *wait_s = waited;
    return b;
}

int data_loader_steps_per_epoch(const data_loader *l) { return l->steps; }

void data_loader_stop(data_loader *l)
{
    if (!l) return;
    pthread_mutex_lock(&l->mu);
    l->stop = 1;
    pthread_cond_broadcast(&l->space);
    pthread_mutex_unlock(&l->mu);
    pthread_join(l->thread, NULL);
    pthread_cond_destroy(&l->ready);
    pthread_cond_destroy(&l->space);
    pthread_mutex_destroy(&l->mu);
    loader_free(l);
}
