/* Plain-text corpora (tinyshakespeare): UTF-8 validated, a character vocabulary, the text as two
 * id sequences split train/test at a character boundary, and those cut into fixed windows as the
 * examples of a character model. Not a tokenizer beyond characters. */
#include "datasets/datasets.h"
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define TEXT_MAX_BYTES (256u << 20)
#define MAX_CP 0x110000u
#define MAX_VOCAB 65535

/* Decodes the UTF-8 character at s (n > 0 bytes left) into *cp. Returns its length in bytes, or 0
 * when the bytes are not valid UTF-8 (overlong forms, surrogates and values past U+10FFFF too). */
int data_utf8_next(const uint8_t *s, size_t n, uint32_t *cp)
{
    static const uint32_t min[5] = { 0, 0, 0x80, 0x800, 0x10000 };
    uint8_t c = s[0];
    int len;
    if (c < 0x80) { *cp = c; return 1; }
    if ((c & 0xe0) == 0xc0) { len = 2; *cp = c & 0x1fu; }
    else if ((c & 0xf0) == 0xe0) { len = 3; *cp = c & 0x0fu; }
    else if ((c & 0xf8) == 0xf0) { len = 4; *cp = c & 0x07u; }
    else return 0;
    if ((size_t)len > n) return 0;
    for (int i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80) return 0;
        *cp = *cp << 6 | (s[i] & 0x3fu);
    }
    if (*cp < min[len] || *cp >= MAX_CP || (*cp >= 0xd800 && *cp <= 0xdfff)) return 0;
    return len;
}

int data_text_id(const data_text *t, uint32_t cp)
{
    int lo = 0, hi = t->vocab - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (t->chars[mid] == cp) return mid;
        if (t->chars[mid] < cp) lo = mid + 1;
        else hi = mid - 1;
    }
    return -1;
}

void data_text_free(data_text *t)
{
    free(t->chars);
    free(t->train);
    free(t->test);
    memset(t, 0, sizeof *t);
}

int data_text_read(const char *path, double test_frac, data_text *out, char *err, size_t errlen)
{
    uint8_t *bytes = NULL, *seen = NULL;
    uint32_t *cps = NULL;
    size_t len = 0, n = 0;
    int rc;

    memset(out, 0, sizeof *out);
    if (!(test_frac > 0 && test_frac < 1)) return data_error(err, errlen, path, DATA_MALFORMED, "test fraction %g is not in (0, 1)", test_frac);
    if ((rc = data_read_file(path, TEXT_MAX_BYTES, &bytes, &len, err, errlen))) return rc;
    rc = DATA_MALFORMED;
    size_t at = len >= 3 && !memcmp(bytes, "\xef\xbb\xbf", 3) ? 3 : 0;   /* a byte-order mark is no text */
    cps = malloc((len - at + 1) * sizeof *cps);
    seen = calloc(MAX_CP / 8, 1);
    if (!cps || !seen) {
        data_error(err, errlen, path, DATA_MALFORMED, "out of memory for %zu bytes of text", len);
        goto fail;
    }
    while (at < len) {
        uint32_t cp;
        int k = data_utf8_next(bytes + at, len - at, &cp);
        if (!k) {
            data_error(err, errlen, path, DATA_MALFORMED, "not UTF-8 text: invalid byte 0x%02x at offset %zu", bytes[at], at);
            goto fail;
        }
        if (!cp) {
            data_error(err, errlen, path, DATA_MALFORMED, "NUL character at offset %zu: binary data, not text", at);
            goto fail;
        }
        if (!(seen[cp >> 3] & (1u << (cp & 7)))) {
            seen[cp >> 3] |= (uint8_t)(1u << (cp & 7));
            if (++out->vocab > MAX_VOCAB) {
                data_error(err, errlen, path, DATA_MALFORMED, "more than %d distinct characters", MAX_VOCAB);
                goto fail;
            }
        }
        cps[n++] = cp;
        at += (size_t)k;
    }
    size_t n_train = (size_t)((double)n * (1.0 - test_frac));
    if (n_train < 1 || n_train >= n) {
        data_error(err, errlen, path, DATA_MALFORMED, "%zu characters are too few to split into training and test text", n);
        goto fail;
    }
    out->chars = malloc((size_t)out->vocab * sizeof *out->chars);
    out->train = malloc(n_train * sizeof *out->train);
    out->test = malloc((n - n_train) * sizeof *out->test);
    if (!out->chars || !out->train || !out->test) {
        data_error(err, errlen, path, DATA_MALFORMED, "out of memory for %zu characters", n);
        goto fail;
    }
    for (uint32_t cp = 0, v = 0; cp < MAX_CP; cp++)
        if (seen[cp >> 3] & (1u << (cp & 7))) out->chars[v++] = cp;
    for (size_t i = 0; i < n; i++) {
        uint16_t id = (uint16_t)data_text_id(out, cps[i]);
        if (i < n_train) out->train[i] = id;
        else out->test[i - n_train] = id;
    }
    out->n_train = n_train;
    out->n_test = n - n_train;
    const char *base = strrchr(path, '/');
    snprintf(out->name, sizeof out->name, "%s", base ? base + 1 : path);
    snprintf(out->source, sizeof out->source, "%s", path);
    free(bytes);
    free(cps);
    free(seen);
    return 0;

fail:
    free(bytes);
    free(cps);
    free(seen);
    data_text_free(out);
    return rc;
}

/* Cuts ids (n) into windows of context tokens at a stride of context: example i's inputs are
 * ids[i c .. i c + c) and its labels the token after each, ids[i c + 1 .. i c + c]. */
static int cut_windows(const uint16_t *ids, size_t n, int context, data_split *out)
{
    size_t count = n > 1 ? (n - 1) / (size_t)context : 0;
    if (count > 0x7fffffff) count = 0x7fffffff;
    size_t len = count * (size_t)context;
    out->n = (int)count;
    out->pixels = malloc(len ? len : 1);
    out->labels = malloc(len ? len : 1);
    if (!out->pixels || !out->labels) return -1;
    for (size_t i = 0; i < len; i++) {
        out->pixels[i] = (uint8_t)ids[i];
        out->labels[i] = (uint8_t)ids[i + 1];
    }
    return 0;
}

uint64_t data_text_vocab_hash(const data_text *t)
{
    uint64_t h = 0xcbf29ce484222325u;
    for (int i = 0; t->chars && i < t->vocab; i++)   /* generated ids (bench's random text) have none */
        for (int b = 0; b < 4; b++) {
            h ^= (t->chars[i] >> (8 * b)) & 0xff;
            h *= 0x100000001b3u;
        }
    return h;
}

int data_text_windows(const data_text *t, int context, data_set *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (context < 2 || context > 4096)
        return data_error(err, errlen, t->source, DATA_MALFORMED, "context %d is outside 2 to 4096 tokens", context);
    if (t->vocab > 256)
        return data_error(err, errlen, t->source, DATA_MALFORMED, "%d distinct characters; the text model "
                          "reads at most 256", t->vocab);
    if (cut_windows(t->train, t->n_train, context, &out->train) || cut_windows(t->test, t->n_test, context, &out->test)) {
        data_set_free(out);
        return data_error(err, errlen, t->source, DATA_MALFORMED, "out of memory cutting windows");
    }
    if (out->train.n < 1 || out->test.n < 1) {
        size_t need = (size_t)context + 1;
        int train = out->train.n;
        data_set_free(out);
        return data_error(err, errlen, t->source, DATA_MALFORMED, "too short for a context of %d: the %s part "
                          "has fewer than %zu characters", context, train < 1 ? "training" : "test", need);
    }
    snprintf(out->name, sizeof out->name, "%s", t->name);
    snprintf(out->source, sizeof out->source, "%s", t->source);
    out->h = 1;
    out->w = context;
    out->c = 1;
    out->classes = t->vocab;
    out->vocab_hash = data_text_vocab_hash(t);
    out->tokens = context;
    out->std[0] = 1;
    return 0;
}
