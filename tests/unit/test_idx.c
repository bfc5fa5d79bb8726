/* Tests for the IDX reader and the dataset registry: good files read back exactly, every kind of
 * broken file gives one line naming the file and the problem, and the real Fashion-MNIST loads. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "datasets/datasets.h"
#include "tests/support.h"

#define FASHION_DIR "/usr/share/datasets/fashion-mnist"

/* A malloc'd IDX file image: magic bytes 00 00 type ndims, big-endian dims, then len data bytes. */
static uint8_t *idx_bytes(int type, int ndims, const uint32_t *dims, const uint8_t *data, size_t len,
                          size_t *out_len)
{
    size_t head = 4 + 4 * (size_t)ndims;
    uint8_t *b = malloc(head + len + 1);
    assert_non_null(b);
    b[0] = 0; b[1] = 0; b[2] = (uint8_t)type; b[3] = (uint8_t)ndims;
    for (int i = 0; i < ndims; i++)
        for (int k = 0; k < 4; k++) b[4 + 4 * i + k] = (uint8_t)(dims[i] >> (24 - 8 * k));
    if (len) memcpy(b + head, data, len);
    *out_len = head + len;
    return b;
}

/* Writes an IDX file (gzipped when gz) and returns its path (static rotating buffer). */
static const char *write_idx(const char *name, int gz, int type, int ndims, const uint32_t *dims,
                             const uint8_t *data, size_t len)
{
    size_t n;
    uint8_t *b = idx_bytes(type, ndims, dims, data, len, &n);
    const char *path = gz ? test_write_gz(name, b, n) : test_write_file(name, b, n);
    free(b);
    return path;
}

/* Reads path expecting failure `code` with an error naming the file and containing word. */
static void expect_fail(const char *path, int ndims, int code, const char *word)
{
    char err[512] = "";
    int dims[3];
    uint8_t *data = (uint8_t *)1;
    int rc = data_idx_read(path, ndims, dims, &data, err, sizeof err);
    if (rc != code) fail_msg("%s: rc %d, expected %d (err: %s)", path, rc, code, err);
    assert_null(data);
    if (!strstr(err, path) || !strstr(err, word))
        fail_msg("error '%s' should name %s and say '%s'", err, path, word);
    assert_null(strchr(err, '\n'));
}

static const uint32_t img_dims[3] = { 3, 2, 4 };
static uint8_t img_data[24];

static void fill_img_data(void)
{
    for (int i = 0; i < 24; i++) img_data[i] = (uint8_t)(i * 11);
}

static void test_good_files_read_back(void **state)
{
    (void)state;
    fill_img_data();
    for (int gz = 0; gz < 2; gz++) {
        const char *path = write_idx(gz ? "good.idx.gz" : "good.idx", gz, 8, 3, img_dims, img_data, 24);
        int dims[3] = { 0, 0, 0 };
        uint8_t *data = NULL;
        char err[256] = "";
        if (data_idx_read(path, 3, dims, &data, err, sizeof err)) fail_msg("%s", err);
        assert_int_equal(dims[0], 3);
        assert_int_equal(dims[1], 2);
        assert_int_equal(dims[2], 4);
        assert_memory_equal(data, img_data, 24);
        free(data);
    }
    uint8_t labels[5] = { 0, 9, 3, 3, 1 };
    uint32_t n = 5;
    const char *path = write_idx("labels.gz", 1, 8, 1, &n, labels, 5);
    int dims[3];
    uint8_t *data = NULL;
    char err[256];
    assert_int_equal(data_idx_read(path, 1, dims, &data, err, sizeof err), 0);
    assert_int_equal(dims[0], 5);
    assert_memory_equal(data, labels, 5);
    free(data);
}

static void test_truncated(void **state)
{
    (void)state;
    fill_img_data();
    expect_fail(write_idx("short.gz", 1, 8, 3, img_dims, img_data, 10), 3, DATA_MALFORMED, "truncated");
    expect_fail(write_idx("short", 0, 8, 3, img_dims, img_data, 23), 3, DATA_MALFORMED, "truncated");
    expect_fail(write_idx("short2", 0, 8, 3, img_dims, img_data, 0), 3, DATA_MALFORMED, "3 images of 2x4");
    uint8_t head[6] = { 0, 0, 8, 3, 0, 0 };   /* ends inside the dimensions */
    expect_fail(test_write_file("header", head, sizeof head), 3, DATA_MALFORMED, "truncated");
    expect_fail(test_write_file("empty", head, 0), 3, DATA_MALFORMED, "truncated");
    /* A header promising nearly a gigabyte over 24 bytes of data: an error, not a big allocation
     * (the buffer grows with the data; found by fuzz_idx, which slowed down on such inputs). */
    uint32_t big[3] = { 999, 1000, 1000 };
    expect_fail(write_idx("promise", 0, 8, 3, big, img_data, 24), 3, DATA_MALFORMED,
                "header says 999 images of 1000x1000, file holds 24 bytes");
    /* Longer than one read chunk, in two sizes around it: read back whole. */
    for (uint32_t n = 1048575; n <= 1048577; n += 2) {
        uint8_t *px = malloc(n);
        assert_non_null(px);
        for (uint32_t i = 0; i < n; i++) px[i] = (uint8_t)(i * 13);
        uint32_t dims[3] = { 1, 1, n };
        int got[3];
        uint8_t *data;
        char err[256];
        const char *p = write_idx("chunks.gz", 1, 8, 3, dims, px, n);
        if (data_idx_read(p, 3, got, &data, err, sizeof err)) fail_msg("%s", err);
        assert_memory_equal(data, px, n);
        free(data);
        free(px);
    }
}

static void test_trailing_bytes(void **state)
{
    (void)state;
    uint8_t more[25] = { 0 };
    expect_fail(write_idx("long.gz", 1, 8, 3, img_dims, more, 25), 3, DATA_MALFORMED, "trailing");
    expect_fail(write_idx("long", 0, 8, 3, img_dims, more, 25), 3, DATA_MALFORMED, "trailing");
}

static void test_wrong_magic(void **state)
{
    (void)state;
    fill_img_data();
    /* A doubly gzipped file: what zlib hands back starts with the inner gzip magic. */
    size_t n;
    uint8_t *b = idx_bytes(8, 3, img_dims, img_data, 24, &n);
    const char *inner = test_write_gz("inner.gz", b, n);
    size_t inner_len;
    char *gz = test_read_file(inner, &inner_len);
    assert_non_null(gz);
    expect_fail(test_write_gz("double.gz", gz, inner_len), 3, DATA_MALFORMED, "not an IDX file (magic 0x1f8b08");
    free(gz);
    free(b);
    expect_fail(test_write_file("text.txt", "hello world, not idx", 20), 3, DATA_MALFORMED, "not an IDX file");
    expect_fail(write_idx("int32", 0, 0x0C, 3, img_dims, img_data, 24), 3, DATA_MALFORMED, "element type 0x0c");
}

static void test_wrong_dims(void **state)
{
    (void)state;
    fill_img_data();
    expect_fail(write_idx("ndims", 0, 8, 3, img_dims, img_data, 24), 1, DATA_MALFORMED, "3 dimensions, expected 1");
    uint32_t zero[3] = { 3, 0, 4 };
    expect_fail(write_idx("zero", 0, 8, 3, zero, NULL, 0), 3, DATA_MALFORMED, "zero");
    uint32_t huge[3] = { 60000, 60000, 60000 };
    expect_fail(write_idx("huge", 0, 8, 3, huge, NULL, 0), 3, DATA_MALFORMED, "too large");
    uint32_t neg[3] = { 0xffffffffu, 1, 1 };
    expect_fail(write_idx("neg", 0, 8, 3, neg, NULL, 0), 3, DATA_MALFORMED, "too large");
}

static void test_corrupt_gzip(void **state)
{
    (void)state;
    uint8_t noise[4096];
    for (size_t i = 0; i < sizeof noise; i++) noise[i] = (uint8_t)(i * 2654435761u >> 13);
    uint32_t dims[3] = { 16, 16, 16 };
    size_t n;
    uint8_t *b = idx_bytes(8, 3, dims, noise, sizeof noise, &n);
    size_t len;
    char *gz = test_read_file(test_write_gz("ok.gz", b, n), &len);
    assert_non_null(gz);
    assert_true(len > 100);

    char *bad = malloc(len);
    assert_non_null(bad);
    memcpy(bad, gz, len);
    memset(bad + 10, 0xff, len - 10);     /* valid header, then an invalid block type */
    expect_fail(test_write_file("garbage.gz", bad, len), 3, DATA_MALFORMED, "corrupt gzip");
    expect_fail(test_write_file("cut.gz", gz, len / 2), 3, DATA_MALFORMED, "corrupt gzip");
    memcpy(bad, gz, len);
    bad[len - 6] ^= 0x55;                 /* CRC in the trailer */
    expect_fail(test_write_file("crc.gz", bad, len), 3, DATA_MALFORMED, "corrupt gzip");
    free(bad);
    free(gz);
    free(b);
}

static void test_missing_file(void **state)
{
    (void)state;
    char path[600];
    snprintf(path, sizeof path, "%s/no-such-file.gz", test_tmpdir());
    expect_fail(path, 3, DATA_MISSING, "no such file");
}

/* What to break in a tiny four-file dataset. */
typedef struct spec {
    int train_n, train_labels, test_n, test_w;
    int bad_label_at;       /* -1: none */
    int skip_file;          /* -1: none; else index into the four files */
} spec;

static const char *const files[4] = {
    "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte",   /* test split plain: both forms work */
};

/* Writes the dataset into test_tmpdir()/sub and returns that folder (static buffer). */
static const char *make_dataset(const char *sub, spec s)
{
    static char dir[600];
    char name[700];
    uint8_t px[10 * 4 * 5], lb[12];
    for (size_t i = 0; i < sizeof px; i++) px[i] = (uint8_t)(i * 37);
    for (int i = 0; i < 12; i++) lb[i] = (uint8_t)(i % 10);
    if (s.bad_label_at >= 0) lb[s.bad_label_at] = 12;

    snprintf(dir, sizeof dir, "%s/%s", test_tmpdir(), sub);
    mkdir(dir, 0755);
    uint32_t train[3] = { (uint32_t)s.train_n, 4, 5 }, test[3] = { (uint32_t)s.test_n, 4, (uint32_t)s.test_w };
    uint32_t ntl = (uint32_t)s.train_labels, nt = (uint32_t)s.test_n;
    for (int f = 0; f < 4; f++) {
        if (f == s.skip_file) continue;
        snprintf(name, sizeof name, "%s/%s", sub, files[f]);
        int gz = f < 2;
        if (f == 0) write_idx(name, gz, 8, 3, train, px, (size_t)s.train_n * 20);
        if (f == 1) write_idx(name, gz, 8, 1, &ntl, lb, ntl);
        if (f == 2) write_idx(name, gz, 8, 3, test, px, (size_t)s.test_n * 4 * s.test_w);
        if (f == 3) write_idx(name, gz, 8, 1, &nt, lb, nt);
    }
    return dir;
}

static const spec good = { 10, 10, 6, 5, -1, -1 };

/* Loads dir expecting failure code; err must contain word and, when given, file. */
static void expect_load_fail(const char *dir, int code, const char *file, const char *word)
{
    data_set ds;
    char err[1024] = "";
    int rc = data_load("fashion-mnist", dir, &ds, err, sizeof err);
    if (rc != code) fail_msg("%s: rc %d, expected %d (err: %s)", dir, rc, code, err);
    assert_null(ds.train.pixels);
    assert_null(ds.test.labels);
    if ((file && !strstr(err, file)) || !strstr(err, word))
        fail_msg("error '%s' should name %s and say '%s'", err, file ? file : "-", word);
}

static void test_load_tiny_dataset(void **state)
{
    (void)state;
    data_set ds;
    char err[512] = "";
    const char *dir = make_dataset("good", good);
    if (data_load("fashion-mnist", dir, &ds, err, sizeof err)) fail_msg("%s", err);
    assert_int_equal(ds.train.n, 10);
    assert_int_equal(ds.test.n, 6);
    assert_int_equal(ds.h, 4);
    assert_int_equal(ds.w, 5);
    assert_int_equal(ds.c, 1);
    assert_int_equal(ds.classes, 10);
    assert_string_equal(ds.name, "fashion-mnist");
    assert_string_equal(ds.source, dir);
    assert_int_equal(ds.train.pixels[21], (uint8_t)(21 * 37));
    assert_int_equal(ds.test.labels[5], 5);
    double sum = 0;
    for (int i = 0; i < 200; i++) sum += ds.train.pixels[i] / 255.0;
    assert_float_equal(ds.mean[0], sum / 200, 1e-5);
    data_set_free(&ds);
}

static void test_load_malformed_dataset(void **state)
{
    (void)state;
    spec s = good;
    s.train_labels = 9;
    expect_load_fail(make_dataset("count", s), DATA_MALFORMED, "train-labels-idx1-ubyte.gz",
                     "10 images but 9 labels");
    s = good;
    s.bad_label_at = 4;
    expect_load_fail(make_dataset("label", s), DATA_MALFORMED, "label/train-labels-idx1-ubyte.gz",
                     "label 12 at index 4 is out of range for 10 classes");
    s = good;
    s.test_w = 6;
    expect_load_fail(make_dataset("geometry", s), DATA_MALFORMED, "t10k-images", "4x6");
    s = good;
    s.skip_file = 3;
    expect_load_fail(make_dataset("partial", s), DATA_MALFORMED, "partial/t10k-labels-idx1-ubyte.gz", "no such file");
    s = good;
    s.skip_file = 0;   /* the training images gone: a broken copy, not a missing dataset */
    expect_load_fail(make_dataset("no-train", s), DATA_MALFORMED, "no-train/train-images-idx3-ubyte.gz", "no such file");
    s = good;
    s.train_n = 9;   /* fewer images than labels */
    expect_load_fail(make_dataset("count2", s), DATA_MALFORMED, "count2/train-images", "9 images but 10 labels");
}

static void test_load_missing_dataset(void **state)
{
    (void)state;
    char dir[600];
    snprintf(dir, sizeof dir, "%s/nothing-here", test_tmpdir());
    expect_load_fail(dir, DATA_MISSING, dir, "not found");
    expect_load_fail(dir, DATA_MISSING, NULL, "sudo apt-get install dataset-fashion-mnist");

    data_set ds;
    char err[512];
    assert_int_equal(data_load("cifar-7", NULL, &ds, err, sizeof err), DATA_MALFORMED);
    assert_non_null(strstr(err, "unknown dataset 'cifar-7'"));
    assert_non_null(strstr(err, "fashion-mnist"));
}

static void test_data_dir_env(void **state)
{
    (void)state;
    data_set ds;
    char err[1024] = "", root[600];
    snprintf(root, sizeof root, "%s/env", test_tmpdir());
    mkdir(root, 0755);
    make_dataset("env/mnist", good);
    setenv("HASTEN_DATA_DIR", root, 1);
    if (data_load("mnist", NULL, &ds, err, sizeof err)) fail_msg("%s", err);
    assert_non_null(strstr(ds.source, root));
    assert_string_equal(ds.name, "mnist");
    data_set_free(&ds);

    struct stat st;
    if (stat("/usr/share/datasets/mnist", &st) != 0) {   /* both places empty: both named */
        snprintf(root, sizeof root, "%s/env-empty", test_tmpdir());
        setenv("HASTEN_DATA_DIR", root, 1);
        assert_int_equal(data_load("mnist", NULL, &ds, err, sizeof err), DATA_MISSING);
        assert_non_null(strstr(err, root));
        assert_non_null(strstr(err, "/usr/share/datasets/mnist"));
    }
    unsetenv("HASTEN_DATA_DIR");
}

static void test_synthetic_by_name(void **state)
{
    (void)state;
    data_set ds;
    char err[256];
    assert_int_equal(data_load("synthetic", NULL, &ds, err, sizeof err), 0);
    assert_int_equal(ds.train.n, 6000);
    assert_int_equal(ds.test.n, 1000);
    assert_int_equal(ds.h, 28);
    assert_int_equal(ds.w, 28);
    assert_int_equal(ds.classes, 10);
    assert_string_equal(ds.source, "generated");
    data_set_free(&ds);
    const char *const *names = data_names();
    assert_string_equal(names[0], "fashion-mnist");
    assert_string_equal(names[5], "synthetic");
    assert_string_equal(names[6], "text");
    assert_null(names[7]);
}

static void test_real_fashion_mnist(void **state)
{
    (void)state;
    struct stat st;
    if (stat(FASHION_DIR, &st) != 0) {
        print_message("skipped: %s not installed (sudo apt-get install dataset-fashion-mnist)\n", FASHION_DIR);
        skip();
    }
    data_set ds;
    char err[512] = "";
    unsetenv("HASTEN_DATA_DIR");
    if (data_load("fashion-mnist", NULL, &ds, err, sizeof err)) fail_msg("%s", err);
    assert_int_equal(ds.train.n, 60000);
    assert_int_equal(ds.test.n, 10000);
    assert_int_equal(ds.h, 28);
    assert_int_equal(ds.w, 28);
    for (int i = 0; i < ds.train.n; i++) assert_true(ds.train.labels[i] < 10);
    for (int i = 0; i < ds.test.n; i++) assert_true(ds.test.labels[i] < 10);
    assert_float_equal(ds.mean[0], 0.286, 0.002);
    assert_float_equal(ds.std[0], 0.353, 0.002);
    data_set_free(&ds);
}

int main(void)
{
    char cache[600];   /* a user's cache must not change what these tests find */
    snprintf(cache, sizeof cache, "%s/cache", test_tmpdir());
    setenv("XDG_CACHE_HOME", cache, 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_files_read_back),
        cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_trailing_bytes),
        cmocka_unit_test(test_wrong_magic),
        cmocka_unit_test(test_wrong_dims),
        cmocka_unit_test(test_corrupt_gzip),
        cmocka_unit_test(test_missing_file),
        cmocka_unit_test(test_load_tiny_dataset),
        cmocka_unit_test(test_load_malformed_dataset),
        cmocka_unit_test(test_load_missing_dataset),
        cmocka_unit_test(test_data_dir_env),
        cmocka_unit_test(test_synthetic_by_name),
        cmocka_unit_test(test_real_fashion_mnist),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
