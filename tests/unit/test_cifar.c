/* The CIFAR-10 binary reader: tiny archives made here with libarchive (gzipped and plain, with and
 * without the folder, in any entry order), the extracted folder, channels-first to channels-last,
 * every kind of malformed archive (unsafe paths, missing, duplicate or ragged batches, bad labels,
 * cut or garbage gzip), and recipes/cifar10_cnn.lua training two steps on the result. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <archive.h>
#include <archive_entry.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "datasets/datasets.h"
#include "engine/trainer.h"
#include "lua/recipe.h"
#include "tests/support.h"

#define RECORD 3073
#define PER 2          /* records per batch in the tiny archives */

typedef struct entry {
    const char *path;
    const uint8_t *data;
    size_t len;
    int dir;           /* a folder entry */
} entry;

static const char *const batch[6] = {
    "data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin", "data_batch_5.bin",
    "test_batch.bin",
};

static uint8_t records[6][PER * RECORD];

/* Byte of batch b, record i, channel ch, pixel p: varies with all four. */
static uint8_t pixel(int b, int i, int ch, int p) { return (uint8_t)(b * 53 + i * 31 + ch * 97 + p * 7 + (p >> 5)); }

static void fill_records(void)
{
    for (int b = 0; b < 6; b++)
        for (int i = 0; i < PER; i++) {
            uint8_t *r = records[b] + i * RECORD;
            r[0] = (uint8_t)((b * PER + i) % 10);
            for (int ch = 0; ch < 3; ch++)
                for (int p = 0; p < 1024; p++) r[1 + ch * 1024 + p] = pixel(b, i, ch, p);
        }
}

/* Writes a tar (gzipped when gz) of the entries to test_tmpdir()/name; returns its path. */
static const char *write_tar(const char *name, int gz, const entry *e, int n)
{
    static char path[4][700];
    static int k;
    char *p = path[k++ % 4];
    snprintf(p, sizeof path[0], "%s/%s", test_tmpdir(), name);
    struct archive *a = archive_write_new();
    if (gz) archive_write_add_filter_gzip(a);
    archive_write_set_format_pax_restricted(a);
    assert_int_equal(archive_write_open_filename(a, p), ARCHIVE_OK);
    for (int i = 0; i < n; i++) {
        struct archive_entry *ae = archive_entry_new();
        archive_entry_set_pathname(ae, e[i].path);
        archive_entry_set_filetype(ae, e[i].dir ? AE_IFDIR : AE_IFREG);
        archive_entry_set_perm(ae, 0644);
        archive_entry_set_size(ae, e[i].dir ? 0 : (la_int64_t)e[i].len);
        assert_int_equal(archive_write_header(a, ae), ARCHIVE_OK);
        if (!e[i].dir && e[i].len) assert_int_equal(archive_write_data(a, e[i].data, e[i].len), (la_ssize_t)e[i].len);
        archive_entry_free(ae);
    }
    archive_write_close(a);
    archive_write_free(a);
    return p;
}

/* The six batches under prefix, test batch first and data_batch_3 before 1 (order must not matter). */
static int standard(entry *e, const char *prefix, char names[6][64])
{
    static const int order[6] = { 5, 2, 0, 1, 4, 3 };
    for (int k = 0; k < 6; k++) {
        int b = order[k];
        snprintf(names[k], 64, "%s%s", prefix, batch[b]);
        e[k] = (entry){ names[k], records[b], sizeof records[b], 0 };
    }
    return 6;
}

static void check_loaded(const data_set *ds)
{
    assert_int_equal(ds->train.n, 5 * PER);
    assert_int_equal(ds->test.n, PER);
    assert_int_equal(ds->h, 32);
    assert_int_equal(ds->w, 32);
    assert_int_equal(ds->c, 3);
    assert_int_equal(ds->classes, 10);
    assert_string_equal(ds->name, "cifar10");
    for (int j = 0; j < ds->train.n; j++) {
        int b = j / PER, i = j % PER;
        assert_int_equal(ds->train.labels[j], (b * PER + i) % 10);
        for (int p = 0; p < 1024; p += 37)
            for (int ch = 0; ch < 3; ch++)
                assert_int_equal(ds->train.pixels[(size_t)j * 3072 + p * 3 + ch], pixel(b, i, ch, p));
    }
    assert_int_equal(ds->test.labels[1], (5 * PER + 1) % 10);
    assert_int_equal(ds->test.pixels[3071], pixel(5, 0, 2, 1023));
    assert_true(ds->std[0] > 0 && ds->std[2] > 0);
}

static void test_archives(void **state)
{
    (void)state;
    entry e[10];
    char names[6][64];
    data_set ds;
    char err[600] = "";
    fill_records();

    int n = standard(e, "cifar-10-batches-bin/", names);
    e[n++] = (entry){ "cifar-10-batches-bin/batches.meta.txt", (const uint8_t *)"airplane\n", 9, 0 };
    e[n++] = (entry){ "cifar-10-batches-bin/", NULL, 0, 1 };
    e[n++] = (entry){ "cifar-10-batches-bin/readme.html", (const uint8_t *)"<p>", 3, 0 };
    const char *p = write_tar("good.tar.gz", 1, e, n);
    if (data_cifar_read_archive(p, &ds, err, sizeof err)) fail_msg("%s", err);
    check_loaded(&ds);
    assert_string_equal(ds.source, p);
    data_set_free(&ds);

    n = standard(e, "./", names);   /* plain tar, "./" paths */
    p = write_tar("plain.tar", 0, e, n);
    if (data_cifar_read_archive(p, &ds, err, sizeof err)) fail_msg("%s", err);
    check_loaded(&ds);
    data_set_free(&ds);

    /* By name from a folder holding the archive, as the cache does. */
    char dir[700];
    snprintf(dir, sizeof dir, "%s/cache-cifar", test_tmpdir());
    mkdir(dir, 0755);
    n = standard(e, "cifar-10-batches-bin/", names);
    write_tar("cache-cifar/cifar-10-binary.tar.gz", 1, e, n);
    if (data_load("cifar10", dir, &ds, err, sizeof err)) fail_msg("%s", err);
    check_loaded(&ds);
    data_set_free(&ds);
}

static void test_extracted_folder(void **state)
{
    (void)state;
    char dir[700], sub[760];
    data_set ds;
    char err[600] = "";
    fill_records();
    snprintf(dir, sizeof dir, "%s/extracted", test_tmpdir());
    snprintf(sub, sizeof sub, "%s/cifar-10-batches-bin", dir);
    mkdir(dir, 0755);
    mkdir(sub, 0755);
    for (int b = 0; b < 6; b++) {
        char name[128];
        snprintf(name, sizeof name, "extracted/cifar-10-batches-bin/%s", batch[b]);
        test_write_file(name, records[b], sizeof records[b]);
    }
    if (data_load_cifar10(dir, &ds, err, sizeof err)) fail_msg("%s", err);
    check_loaded(&ds);
    data_set_free(&ds);

    test_write_file("extracted/cifar-10-batches-bin/data_batch_4.bin", records[3], RECORD + 5);
    assert_int_equal(data_load_cifar10(dir, &ds, err, sizeof err), DATA_MALFORMED);
    assert_non_null(strstr(err, "data_batch_4.bin holds 3078 bytes"));
    assert_null(ds.train.pixels);

    snprintf(dir, sizeof dir, "%s/empty-folder", test_tmpdir());
    mkdir(dir, 0755);
    assert_int_equal(data_load_cifar10(dir, &ds, err, sizeof err), DATA_MISSING);
    assert_int_equal(data_load("cifar10", dir, &ds, err, sizeof err), DATA_MISSING);
    assert_non_null(strstr(err, "hasten fetch cifar10"));
}

/* Reads path expecting DATA_MALFORMED with word in the one-line error and nothing allocated. */
static void expect_bad(const char *path, const char *word)
{
    data_set ds;
    char err[600] = "";
    memset(&ds, 0x55, sizeof ds);
    int rc = data_cifar_read_archive(path, &ds, err, sizeof err);
    if (rc != DATA_MALFORMED) fail_msg("%s: rc %d (err: %s)", path, rc, err);
    if (!strstr(err, word) || !strstr(err, path)) fail_msg("error '%s' should name %s and say '%s'", err, path, word);
    assert_null(strchr(err, '\n'));
    assert_null(ds.train.pixels);
    assert_null(ds.test.labels);
    assert_int_equal(ds.train.n, 0);
}

static void test_malformed_archives(void **state)
{
    (void)state;
    entry e[10];
    char names[6][64];
    fill_records();

    int n = standard(e, "", names);
    e[n++] = (entry){ "/etc/data_batch_1.bin", records[0], RECORD * PER, 0 };
    expect_bad(write_tar("abs.tar.gz", 1, e, n), "unsafe entry path '/etc/data_batch_1.bin'");
    n = standard(e, "", names);
    e[0].path = "../test_batch.bin";
    expect_bad(write_tar("dotdot.tar.gz", 1, e, n), "unsafe entry path '../test_batch.bin'");
    n = standard(e, "", names);
    e[n++] = (entry){ "a/../../readme", (const uint8_t *)"x", 1, 0 };   /* unsafe even when not a batch */
    expect_bad(write_tar("dotdot2.tar", 0, e, n), "absolute or with ..");

    n = standard(e, "", names);
    expect_bad(write_tar("missing.tar.gz", 1, e, n - 1), "data_batch_4.bin is missing");
    n = standard(e, "", names);
    e[n++] = (entry){ "other/data_batch_2.bin", records[1], RECORD * PER, 0 };
    expect_bad(write_tar("twice.tar.gz", 1, e, n), "other/data_batch_2.bin appears twice");
    n = standard(e, "", names);
    e[3].len = RECORD * PER - 1;
    expect_bad(write_tar("ragged.tar.gz", 1, e, n), "not a whole number of 3073-byte records");
    n = standard(e, "", names);
    e[3].len = 0;
    expect_bad(write_tar("emptybatch.tar.gz", 1, e, n), "holds 0 bytes");

    uint8_t bad_label[RECORD * PER];
    memcpy(bad_label, records[2], sizeof bad_label);
    bad_label[RECORD] = 10;
    n = standard(e, "", names);
    e[1].data = bad_label;   /* order[1] is data_batch_3 */
    expect_bad(write_tar("label.tar.gz", 1, e, n), "data_batch_3.bin: label 10 in record 1 is out of range");

    uint8_t *big = calloc(10001, RECORD);
    assert_non_null(big);
    n = standard(e, "", names);
    e[0].data = big;
    e[0].len = (size_t)10001 * RECORD;
    expect_bad(write_tar("big.tar.gz", 1, e, n), "larger than 10000 records");
    free(big);

    /* Damaged containers. */
    n = standard(e, "", names);
    size_t len;
    char *gz = test_read_file(write_tar("whole.tar.gz", 1, e, n), &len);
    assert_non_null(gz);
    expect_bad(test_write_file("cut.tar.gz", gz, len / 2), "truncated");
    gz[len / 2] ^= 0x40;
    gz[len / 2 + 1] ^= 0x11;
    expect_bad(test_write_file("flipped.tar.gz", gz, len), "");
    free(gz);
    expect_bad(test_write_file("text.tar.gz", "this is not an archive at all, just words", 41), "cannot read as a tar");
    expect_bad(test_write_file("zero.tar.gz", "", 0), "");
    uint8_t raw[RECORD * PER];   /* a bare batch file is no archive */
    memcpy(raw, records[0], sizeof raw);
    expect_bad(test_write_file("bare.bin", raw, sizeof raw), "cannot read as a tar");

    data_set ds;
    char err[600], path[700];
    snprintf(path, sizeof path, "%s/nope.tar.gz", test_tmpdir());
    assert_int_equal(data_cifar_read_archive(path, &ds, err, sizeof err), DATA_MISSING);
    assert_non_null(strstr(err, "no such file"));
}

/* recipes/cifar10_cnn.lua builds for 32x32x3 and trains two steps on the tiny set. */
static void test_recipe_trains(void **state)
{
    (void)state;
    entry e[6];
    char names[6][64], err[1024] = "";
    train_config cfg;
    data_set ds;
    fill_records();
    int n = standard(e, "", names);
    if (data_cifar_read_archive(write_tar("train.tar.gz", 1, e, n), &ds, err, sizeof err)) fail_msg("%s", err);
    if (recipe_load("recipes/cifar10_cnn.lua", &cfg, err, sizeof err)) fail_msg("%s", err);
    assert_string_equal(cfg.dataset, "cifar10");
    cfg.batch = 4;
    cfg.budget = (budget_spec){ BUDGET_STEPS, 2 };
    cfg.threads = 1;
    trainer *t = trainer_new(&cfg, &ds, err, sizeof err);
    if (!t) fail_msg("%s", err);
    assert_int_equal(trainer_run(t), 0);
    assert_int_equal(t->step, 2);
    trainer_free(t);
    config_free(&cfg);
    data_set_free(&ds);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_archives),
        cmocka_unit_test(test_extracted_folder),
        cmocka_unit_test(test_malformed_archives),
        cmocka_unit_test(test_recipe_trains),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
