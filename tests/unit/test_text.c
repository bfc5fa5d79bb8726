/* The text corpus reader: character vocabulary (UTF-8, code point order), the train/test split,
 * the ids reading back as the text, and every kind of malformed input (empty, invalid or
 * overlong UTF-8, surrogates, NUL bytes, too short), plus tinyshakespeare by name, and the
 * windows a character model trains on. */
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

/* Encodes code point cp as UTF-8 at out; returns the length. */
static int utf8(uint32_t cp, char *out)
{
    if (cp < 0x80) { out[0] = (char)cp; return 1; }
    if (cp < 0x800) { out[0] = (char)(0xc0 | cp >> 6); out[1] = (char)(0x80 | (cp & 0x3f)); return 2; }
    if (cp < 0x10000) {
        out[0] = (char)(0xe0 | cp >> 12); out[1] = (char)(0x80 | (cp >> 6 & 0x3f)); out[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    out[0] = (char)(0xf0 | cp >> 18); out[1] = (char)(0x80 | (cp >> 12 & 0x3f));
    out[2] = (char)(0x80 | (cp >> 6 & 0x3f)); out[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/* The text t holds, re-encoded from its ids (train then test), into a malloc'd string. */
static char *decode(const data_text *t)
{
    char *s = malloc((t->n_train + t->n_test) * 4 + 1), *p = s;
    assert_non_null(s);
    for (size_t i = 0; i < t->n_train + t->n_test; i++) {
        uint16_t id = i < t->n_train ? t->train[i] : t->test[i - t->n_train];
        assert_true(id < t->vocab);
        p += utf8(t->chars[id], p);
    }
    *p = 0;
    return s;
}

static void test_ascii(void **state)
{
    (void)state;
    static const char text[] = "First Citizen:\nBefore we proceed any further, hear me speak.\n";
    data_text t;
    char err[400] = "";
    const char *p = test_write_file("ascii.txt", text, strlen(text));
    if (data_text_read(p, 0.1, &t, err, sizeof err)) fail_msg("%s", err);
    size_t n = strlen(text);
    assert_int_equal(t.n_train + t.n_test, n);
    assert_int_equal(t.n_train, (size_t)(n * 0.9));
    assert_string_equal(t.name, "ascii.txt");
    assert_string_equal(t.source, p);
    for (int i = 1; i < t.vocab; i++) assert_true(t.chars[i - 1] < t.chars[i]);
    assert_int_equal(t.chars[0], '\n');
    assert_int_equal(data_text_id(&t, 'Q'), -1);
    assert_int_equal(t.chars[data_text_id(&t, 'F')], 'F');
    int distinct = 0;
    for (int c = 0; c < 128; c++) distinct += strchr(text, c) != NULL && c;
    assert_int_equal(t.vocab, distinct);
    char *back = decode(&t);
    assert_string_equal(back, text);
    free(back);
    data_text_free(&t);
    assert_null(t.chars);
}

static void test_unicode(void **state)
{
    (void)state;
    static const char text[] = "\xef\xbb\xbf" "h\xc3\xa9llo w\xc3\xb6rld \xe2\x9c\x93 \xf0\x9f\x98\x80 h\xc3\xa9";
    data_text t;
    char err[400] = "";
    const char *p = test_write_file("utf8.txt", text, strlen(text));
    if (data_text_read(p, 0.25, &t, err, sizeof err)) fail_msg("%s", err);
    assert_int_equal(t.n_train + t.n_test, 18);   /* characters, not bytes; the BOM is not text */
    assert_int_equal(t.n_test, 18 - (size_t)(18 * 0.75));
    assert_true(data_text_id(&t, 0xe9) >= 0);
    assert_true(data_text_id(&t, 0x2713) >= 0);
    assert_int_equal(t.chars[t.vocab - 1], 0x1f600);
    assert_int_equal(data_text_id(&t, 0xfeff), -1);
    char *back = decode(&t);
    assert_string_equal(back, text + 3);
    free(back);
    data_text_free(&t);
}

static void expect_bad(const char *name, const void *data, size_t len, double frac, const char *word)
{
    data_text t;
    char err[400] = "";
    memset(&t, 0x55, sizeof t);
    const char *p = test_write_file(name, data, len);
    int rc = data_text_read(p, frac, &t, err, sizeof err);
    if (rc != DATA_MALFORMED) fail_msg("%s: rc %d (err: %s)", name, rc, err);
    if (!strstr(err, word) || !strstr(err, name)) fail_msg("error '%s' should name %s and say '%s'", err, name, word);
    assert_null(t.chars);
    assert_null(t.train);
    assert_int_equal(t.vocab, 0);
}

static void test_malformed(void **state)
{
    (void)state;
    expect_bad("empty.txt", "", 0, 0.1, "0 characters are too few");
    expect_bad("one.txt", "a", 1, 0.1, "1 characters are too few");
    expect_bad("ff.txt", "abc\xff" "def", 7, 0.1, "invalid byte 0xff at offset 3");
    expect_bad("overlong.txt", "ab\xc0\xaf", 4, 0.1, "invalid byte 0xc0 at offset 2");
    expect_bad("surrogate.txt", "x\xed\xa0\x80y", 5, 0.1, "invalid byte 0xed at offset 1");
    expect_bad("cut.txt", "hello \xe2\x9c", 8, 0.1, "invalid byte 0xe2 at offset 6");
    expect_bad("lonely.txt", "a\x80", 2, 0.1, "offset 1");
    expect_bad("toobig.txt", "\xf4\x90\x80\x80", 4, 0.1, "invalid byte 0xf4");
    expect_bad("nul.txt", "text\0more", 9, 0.1, "NUL character at offset 4");
    expect_bad("frac.txt", "some text", 9, 1.0, "test fraction");
    expect_bad("frac0.txt", "some text", 9, 0.0, "test fraction");

    data_text t;
    char err[400], path[700];
    snprintf(path, sizeof path, "%s/none.txt", test_tmpdir());
    assert_int_equal(data_text_read(path, 0.1, &t, err, sizeof err), DATA_MISSING);
    assert_non_null(strstr(err, "no such file"));
    assert_int_equal(data_text_read(test_tmpdir(), 0.1, &t, err, sizeof err), DATA_MALFORMED);
}

static void test_by_name(void **state)
{
    (void)state;
    char dir[700], err[1200] = "";
    data_text t;
    data_set ds;
    snprintf(dir, sizeof dir, "%s/shakespeare", test_tmpdir());
    mkdir(dir, 0755);
    const char *text = "ROMEO:\nBut soft, what light through yonder window breaks?\n";
    test_write_file("shakespeare/input.txt", text, strlen(text));
    if (data_load_text("tinyshakespeare", dir, &t, err, sizeof err)) fail_msg("%s", err);
    assert_string_equal(t.name, "tinyshakespeare");
    assert_int_equal(t.n_train, (size_t)(strlen(text) * 0.9));
    data_text_free(&t);

    assert_int_equal(data_load_text("mnist", dir, &t, err, sizeof err), DATA_MALFORMED);
    assert_non_null(strstr(err, "not a text corpus"));
    assert_int_equal(data_load("tinyshakespeare", dir, &ds, err, sizeof err), DATA_MALFORMED);
    assert_non_null(strstr(err, "text corpus"));
    assert_int_equal(data_load_text("tinyshakespeare", test_tmpdir(), &t, err, sizeof err), DATA_MISSING);
    assert_non_null(strstr(err, "hasten fetch tinyshakespeare"));
}

/* Windows for a character model: inputs are the ids of consecutive stretches of context
 * characters, labels the next character at each position, the test part cut the same way; the
 * "text" dataset reads a file given as its path; too short a part, a vocabulary past 256 and a
 * context outside 2..4096 are refused by name. */
static void test_windows(void **state)
{
    (void)state;
    char err[1200] = "";
    const char *text = "abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJ";
    const char *path = test_write_file("windows.txt", text, strlen(text));
    data_text t;
    data_set ds;
    if (data_load_text("text", path, &t, err, sizeof err)) fail_msg("%s", err);
    assert_string_equal(t.name, "text");
    if (data_text_windows(&t, 8, &ds, err, sizeof err)) fail_msg("%s", err);
    size_t n_train = (size_t)(strlen(text) * 0.9);   /* 74 characters: 9 windows and one over */
    assert_int_equal(ds.train.n, (int)((n_train - 1) / 8));
    assert_int_equal(ds.test.n, (int)((strlen(text) - n_train - 1) / 8));
    assert_int_equal(ds.tokens, 8);
    assert_int_equal(ds.w, 8);
    assert_int_equal(ds.classes, t.vocab);
    for (int i = 0; i < ds.train.n; i++)
        for (int j = 0; j < 8; j++) {
            assert_int_equal(ds.train.pixels[i * 8 + j], t.train[i * 8 + j]);
            assert_int_equal(ds.train.labels[i * 8 + j], t.train[i * 8 + j + 1]);
        }
    assert_int_equal(ds.test.labels[0], t.test[1]);
    data_set_free(&ds);

    assert_int_equal(data_text_windows(&t, 1, &ds, err, sizeof err), DATA_MALFORMED);
    assert_non_null(strstr(err, "context 1 is outside 2 to 4096"));
    assert_int_equal(data_text_windows(&t, 40, &ds, err, sizeof err), DATA_MALFORMED);
    assert_non_null(strstr(err, "too short for a context of 40: the test part"));
    t.vocab = 300;
    assert_int_equal(data_text_windows(&t, 8, &ds, err, sizeof err), DATA_MALFORMED);
    assert_non_null(strstr(err, "300 distinct characters"));
    data_text_free(&t);
    assert_int_equal(data_load_text("text", NULL, &t, err, sizeof err), DATA_MALFORMED);
    assert_non_null(strstr(err, "data.path must name the text file"));
    assert_int_equal(data_load_text("text", "/nonexistent/file.txt", &t, err, sizeof err), DATA_MISSING);
    assert_non_null(strstr(err, "no such file"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ascii),
        cmocka_unit_test(test_unicode),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_by_name),
        cmocka_unit_test(test_windows),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
