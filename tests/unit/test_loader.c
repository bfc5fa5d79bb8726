/* Tests for engine/data.c and the synthetic set: epochs are permutations, seeds reproduce bit for
 * bit, flip and crop do what they say, normalisation is (p/255 - mean)/std, stop is prompt. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "datasets/datasets.h"
#include "engine/data.h"

static data_set syn;        /* 1000 train, 200 test, 28x28, made once for the group */

static int group_setup(void **state)
{
    (void)state;
    return data_synthetic(&syn, 1000, 200, 28, 28, 10, 7);
}

static int group_teardown(void **state)
{
    (void)state;
    data_set_free(&syn);
    return 0;
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void sleep_s(double s)
{
    struct timespec t = { (time_t)s, (long)((s - (time_t)s) * 1e9) };
    nanosleep(&t, NULL);
}

static float norm(const data_set *ds, int v) { return (v / 255.0f - ds->mean[0]) / ds->std[0]; }

/* Index of the training example whose pixels normalise to x (unaugmented), or -1. */
static int find_example(const data_set *ds, const float *x)
{
    int img = ds->h * ds->w;
    uint8_t px[28 * 28];
    for (int j = 0; j < img; j++) px[j] = (uint8_t)lrintf((x[j] * ds->std[0] + ds->mean[0]) * 255.0f);
    for (int i = 0; i < ds->train.n; i++)
        if (!memcmp(px, ds->train.pixels + (size_t)i * img, (size_t)img)) return i;
    return -1;
}

static void test_epochs_are_permutations(void **state)
{
    (void)state;
    data_augment none = { 0, 0 };
    data_loader *l = data_loader_start(&syn, 64, none, 3);
    assert_non_null(l);
    int steps = data_loader_steps_per_epoch(l);
    assert_int_equal(steps, 1000 / 64);
    static int order[2][1000];
    for (int epoch = 0; epoch < 2; epoch++) {
        char seen[1000] = { 0 };
        int count = 0;
        for (int s = 0; s < steps; s++) {
            double wait = -1;
            const data_batch *b = data_loader_next(l, &wait);
            assert_true(wait >= 0);
            assert_int_equal(b->epoch, epoch);
            assert_int_equal(b->index, s);
            assert_int_equal(b->n, 64);
            assert_int_equal(b->h * b->w * b->c, 28 * 28);
            for (int i = 0; i < b->n; i++) {
                int k = find_example(&syn, b->x + (size_t)i * 784);
                assert_true(k >= 0);
                assert_false(seen[k]);
                assert_int_equal(b->labels[i], syn.train.labels[k]);
                seen[k] = 1;
                count++;
                order[epoch][count - 1] = k;
            }
        }
        assert_int_equal(count, steps * 64);
    }
    data_loader_stop(l);
    assert_memory_not_equal(order[0], order[1], sizeof order[0]);   /* a fresh shuffle each epoch */
}

/* Copies the first n batches (x then labels) of a loader into one malloc'd buffer. */
static float *first_batches(uint64_t seed, int n, size_t *len)
{
    data_augment aug = { 2, 1 };
    data_loader *l = data_loader_start(&syn, 100, aug, seed);
    assert_non_null(l);
    size_t per = 100 * 784 + 100;
    float *out = malloc(per * (size_t)n * sizeof *out);
    assert_non_null(out);
    for (int k = 0; k < n; k++) {
        const data_batch *b = data_loader_next(l, NULL);
        memcpy(out + per * k, b->x, 100 * 784 * sizeof *out);
        for (int i = 0; i < 100; i++) out[per * k + 100 * 784 + i] = (float)b->labels[i];
    }
    data_loader_stop(l);
    *len = per * (size_t)n * sizeof *out;
    return out;
}

static void test_seed_reproduces(void **state)
{
    (void)state;
    size_t len;
    int n = 12;   /* crosses an epoch boundary (10 steps) */
    float *a = first_batches(11, n, &len), *b = first_batches(11, n, &len), *c = first_batches(12, n, &len);
    assert_memory_equal(a, b, len);
    assert_memory_not_equal(a, c, len);
    free(a);
    free(b);
    free(c);
}

/* A hand-made set of n copies of one 4x4 image with distinct pixel values (all >= 5). */
static void tiny_set(data_set *ds, int n)
{
    memset(ds, 0, sizeof *ds);
    ds->h = 4; ds->w = 4; ds->c = 1; ds->classes = 10;
    ds->train.n = n;
    ds->train.pixels = malloc((size_t)n * 16);
    ds->train.labels = calloc((size_t)n, 1);
    assert_non_null(ds->train.pixels);
    assert_non_null(ds->train.labels);
    for (int i = 0; i < n * 16; i++)   /* a single bright pixel, at (1, 1) */
        ds->train.pixels[i] = i % 16 == 5 ? 255 : (uint8_t)(5 + 15 * (i % 16));
    data_set_stats(ds);
}

/* The naive reference: out(y, x) = img(y + dy, x' + dx), x' mirrored when flip, 0 outside. */
static void reference(const data_set *ds, int dy, int dx, int flip, float out[16])
{
    for (int y = 0; y < 4; y++)
        for (int x = 0; x < 4; x++) {
            int sy = y + dy, sx = (flip ? 3 - x : x) + dx;
            int v = sy < 0 || sy > 3 || sx < 0 || sx > 3 ? 0 : ds->train.pixels[sy * 4 + sx];
            out[y * 4 + x] = norm(ds, v);
        }
}

/* Which (dy, dx, flip) within pad produced x, as (flip * span + dy + pad) * span + dx + pad with
 * span = 2 * pad + 1 (so 0..8 unflipped and 9..17 flipped for pad 1), or -1 for none. */
static int which_transform(const data_set *ds, const float *x, int pad, int allow_flip)
{
    float ref[16];
    for (int flip = 0; flip <= allow_flip; flip++)
        for (int dy = -pad; dy <= pad; dy++)
            for (int dx = -pad; dx <= pad; dx++) {
                reference(ds, dy, dx, flip, ref);
                if (!memcmp(ref, x, sizeof ref)) return (flip * (2 * pad + 1) + dy + pad) * (2 * pad + 1) + dx + pad;
            }
    return -1;
}

/* Runs 8 batches of 8 over the tiny set and counts how often each transform showed up. */
static void count_transforms(data_augment aug, int allow_flip, int counts[18])
{
    data_set ds;
    tiny_set(&ds, 64);
    memset(counts, 0, 18 * sizeof *counts);
    data_loader *l = data_loader_start(&ds, 8, aug, 1);
    assert_non_null(l);
    for (int k = 0; k < 8; k++) {
        const data_batch *b = data_loader_next(l, NULL);
        for (int i = 0; i < 8; i++) {
            int t = which_transform(&ds, b->x + 16 * i, aug.crop_pad, allow_flip);
            if (t < 0) fail_msg("batch %d example %d is no allowed transform of the image", k, i);
            counts[t]++;
        }
    }
    data_loader_stop(l);
    data_set_free(&ds);
}

static void test_flip_mirrors(void **state)
{
    (void)state;
    int counts[18];
    count_transforms((data_augment){ 0, 1 }, 1, counts);
    assert_true(counts[0] > 5);      /* as is */
    assert_true(counts[1] > 5);      /* mirrored: bright pixel (1, 1) now at (1, 2) */
    assert_int_equal(counts[0] + counts[1], 64);

    data_set ds;
    tiny_set(&ds, 1);
    float mirrored[16];
    reference(&ds, 0, 0, 1, mirrored);
    assert_float_equal(mirrored[1 * 4 + 2], norm(&ds, 255), 0);
    data_set_free(&ds);
}

/* Alternating flips: every example is flipped in exactly one of two consecutive epochs, the same
 * way every other epoch, about half of them in epoch 0; and the pixels follow the flag. */
static void test_alternating_flip(void **state)
{
    (void)state;
    data_augment alt = { 0, DATA_FLIP_ALTERNATE };
    data_loader *l = data_loader_start(&syn, 100, alt, 5);
    assert_non_null(l);
    static signed char flip[3][1000];
    memset(flip, -1, sizeof flip);
    for (int k = 0; k < 3 * 10; k++) {
        const data_batch *b = data_loader_next(l, NULL);
        for (int i = 0; i < b->n; i++) {
            int f = b->aug[3 * i + 2];
            flip[b->epoch][b->idx[i]] = (signed char)f;
            assert_int_equal(f, data_alternate_flip(5, b->idx[i], b->epoch));
            const float *x = b->x + (size_t)i * 784;
            float unflipped[784];
            for (int y = 0; y < 28; y++)
                for (int c = 0; c < 28; c++) unflipped[y * 28 + c] = x[y * 28 + (f ? 27 - c : c)];
            assert_int_equal(find_example(&syn, unflipped), b->idx[i]);
        }
    }
    data_loader_stop(l);
    int flipped = 0;
    for (int i = 0; i < 1000; i++) {
        assert_true(flip[0][i] >= 0 && flip[1][i] >= 0 && flip[2][i] >= 0);   /* 1000 / 100: all seen */
        assert_int_equal(flip[1][i], !flip[0][i]);
        assert_int_equal(flip[2][i], flip[0][i]);
        flipped += flip[0][i];
    }
    assert_true(flipped > 400 && flipped < 600);
}

/* A pool loader: each epoch a permutation of the pool's examples only, epochs numbered from
 * first_epoch; a pool smaller than a batch or with an outside index is refused. */
static void test_pool(void **state)
{
    (void)state;
    static int pool[300];
    for (int i = 0; i < 300; i++) pool[i] = 3 * i + 1;
    data_pool p = { pool, 300, 3 };
    data_loader *l = data_loader_start_pool(&syn, 50, (data_augment){ 0, 0 }, 9, 1, &p);
    assert_non_null(l);
    assert_int_equal(data_loader_steps_per_epoch(l), 6);
    for (int epoch = 3; epoch < 5; epoch++) {
        char seen[1000] = { 0 };
        for (int s = 0; s < 6; s++) {
            const data_batch *b = data_loader_next(l, NULL);
            assert_int_equal(b->epoch, epoch);
            assert_null(b->x);   /* indices only */
            for (int i = 0; i < b->n; i++) {
                assert_int_equal(b->idx[i] % 3, 1);
                assert_false(seen[b->idx[i]]);
                seen[b->idx[i]] = 1;
            }
        }
    }
    data_loader_stop(l);
    p.n = 40;
    assert_null(data_loader_start_pool(&syn, 50, (data_augment){ 0, 0 }, 9, 0, &p));
    pool[7] = 1000;
    p.n = 300;
    assert_null(data_loader_start_pool(&syn, 50, (data_augment){ 0, 0 }, 9, 0, &p));
}

static void test_crop_shifts_and_pads_with_zero(void **state)
{
    (void)state;
    int counts[18], kinds = 0;
    count_transforms((data_augment){ 1, 0 }, 0, counts);
    for (int t = 0; t < 9; t++) kinds += counts[t] > 0;
    assert_true(kinds >= 6);          /* 64 draws over 9 shifts */
    assert_true(counts[4] < 64);      /* not always the identity */

    count_transforms((data_augment){ 1, 1 }, 1, counts);   /* both together stay in the family */
    kinds = 0;
    for (int t = 9; t < 18; t++) kinds += counts[t] > 0;
    assert_true(kinds >= 3);
}

static void test_normalisation(void **state)
{
    (void)state;
    /* mean/std against a direct computation */
    double s = 0, sq = 0;
    size_t n = (size_t)syn.train.n * 784;
    for (size_t i = 0; i < n; i++) {
        double v = syn.train.pixels[i] / 255.0;
        s += v;
        sq += v * v;
    }
    double mean = s / n, std = sqrt(sq / n - mean * mean);
    assert_float_equal(syn.mean[0], mean, 1e-6);
    assert_float_equal(syn.std[0], std, 1e-6);

    int idx[3] = { 5, 0, 999 };
    data_batch b = { 0 };
    data_gather(&syn, &syn.train, idx, 3, &b);
    assert_int_equal(b.n, 3);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(b.labels[i], syn.train.labels[idx[i]]);
        for (int j = 0; j < 784; j++) {
            double want = (syn.train.pixels[(size_t)idx[i] * 784 + j] / 255.0 - syn.mean[0]) / syn.std[0];
            assert_float_equal(b.x[i * 784 + j], want, 1e-5);
        }
    }
    int more[2] = { 1, 199 };    /* reuse and shrink: the test split, into the same batch */
    data_gather(&syn, &syn.test, more, 2, &b);
    assert_int_equal(b.n, 2);
    assert_int_equal(b.labels[1], syn.test.labels[199]);
    assert_float_equal(b.x[784 + 10], norm(&syn, syn.test.pixels[199 * 784 + 10]), 1e-6);
    data_batch_free(&b);
}

static void test_stop_is_prompt(void **state)
{
    (void)state;
    data_augment aug = { 2, 1 };
    for (int taken = 0; taken < 3; taken++) {
        data_loader *l = data_loader_start(&syn, 128, aug, 1);
        assert_non_null(l);
        for (int k = 0; k < taken; k++) data_loader_next(l, NULL);
        sleep_s(0.05);                      /* the ring fills and the loader blocks */
        double t0 = now_s();
        data_loader_stop(l);
        assert_true(now_s() - t0 < 0.5);
    }
}

static void test_wait_is_measured(void **state)
{
    (void)state;
    data_loader *l = data_loader_start(&syn, 128, (data_augment){ 0, 0 }, 1);
    assert_non_null(l);
    double wait = -1;
    data_loader_next(l, &wait);
    assert_true(wait >= 0 && wait < 1.0);
    sleep_s(0.2);                           /* now the ring is full: no wait */
    data_loader_next(l, &wait);
    assert_true(wait < 0.01);
    data_loader_stop(l);
}

static void test_bad_arguments(void **state)
{
    (void)state;
    data_augment none = { 0, 0 };
    assert_null(data_loader_start(&syn, 0, none, 1));
    assert_null(data_loader_start(&syn, 1001, none, 1));
    assert_null(data_loader_start(&syn, 10, (data_augment){ -1, 0 }, 1));
    data_set ds;
    assert_int_equal(data_synthetic(&ds, 0, 10, 28, 28, 10, 1), DATA_MALFORMED);
    assert_null(ds.train.pixels);
}

/* The consumer takes batches as fast as it can: the time per batch is the loader's. */
static void test_loader_speed(void **state)
{
    (void)state;
    data_loader *l = data_loader_start(&syn, 128, (data_augment){ 2, 1 }, 1);
    assert_non_null(l);
    data_loader_next(l, NULL);
    int n = 300;
    double t0 = now_s();
    for (int k = 0; k < n; k++) data_loader_next(l, NULL);
    double per = (now_s() - t0) / n;
    data_loader_stop(l);
    print_message("loader: %.1f us per batch of 128 28x28x1 (crop 2, flip)\n", per * 1e6);
    assert_true(per < 0.05);    /* generous: valgrind runs this too */
}

static void test_synthetic_is_learnable_not_trivial(void **state)
{
    (void)state;
    data_set a, b;
    assert_int_equal(data_synthetic(&a, 1000, 200, 28, 28, 10, 7), 0);   /* syn's arguments */
    assert_int_equal(data_synthetic(&b, 1000, 200, 28, 28, 10, 8), 0);
    assert_memory_equal(a.train.pixels, syn.train.pixels, 1000 * 784);
    assert_memory_equal(a.test.labels, syn.test.labels, 200);
    assert_memory_not_equal(a.train.pixels, b.train.pixels, 1000 * 784);
    assert_string_equal(a.name, "synthetic");
    assert_string_equal(a.source, "generated");
    data_set_free(&a);
    data_set_free(&b);

    /* Nearest class mean on raw pixels already does well; the best single pixel does not. */
    enum { D = 784, K = 10 };
    static double mean[K][D];
    int count[K] = { 0 };
    memset(mean, 0, sizeof mean);
    for (int i = 0; i < syn.train.n; i++) {
        int k = syn.train.labels[i];
        count[k]++;
        for (int j = 0; j < D; j++) mean[k][j] += syn.train.pixels[(size_t)i * D + j];
    }
    for (int k = 0; k < K; k++)
        for (int j = 0; j < D; j++) mean[k][j] /= count[k] ? count[k] : 1;
    int right = 0;
    for (int i = 0; i < syn.test.n; i++) {
        double best = INFINITY;
        int guess = 0;
        for (int k = 0; k < K; k++) {
            double d = 0;
            for (int j = 0; j < D; j++) {
                double e = syn.test.pixels[(size_t)i * D + j] - mean[k][j];
                d += e * e;
            }
            if (d < best) { best = d; guess = k; }
        }
        right += guess == syn.test.labels[i];
    }
    assert_true(right > 0.7 * syn.test.n);

    double best_pixel = 0;
    for (int j = 0; j < D; j++) {
        int hist[16][K];
        memset(hist, 0, sizeof hist);
        for (int i = 0; i < syn.train.n; i++) hist[syn.train.pixels[(size_t)i * D + j] >> 4][syn.train.labels[i]]++;
        int ok = 0;
        for (int i = 0; i < syn.test.n; i++) {
            const int *h = hist[syn.test.pixels[(size_t)i * D + j] >> 4];
            int guess = 0;
            for (int k = 1; k < K; k++) if (h[k] > h[guess]) guess = k;
            ok += guess == syn.test.labels[i];
        }
        if ((double)ok / syn.test.n > best_pixel) best_pixel = (double)ok / syn.test.n;
    }
    assert_true(best_pixel < 0.4);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_epochs_are_permutations),
        cmocka_unit_test(test_seed_reproduces),
        cmocka_unit_test(test_flip_mirrors), cmocka_unit_test(test_alternating_flip), cmocka_unit_test(test_pool),
        cmocka_unit_test(test_crop_shifts_and_pads_with_zero),
        cmocka_unit_test(test_normalisation),
        cmocka_unit_test(test_stop_is_prompt),
        cmocka_unit_test(test_wait_is_measured),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_loader_speed),
        cmocka_unit_test(test_synthetic_is_learnable_not_trivial),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
