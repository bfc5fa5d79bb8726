/* CIFAR-10, binary version: the six batch files, read straight out of cifar-10-binary.tar.gz with
 * libarchive (nothing is extracted) or from an extracted folder, records converted to channels last.
 * Not for CIFAR-100 or the Python pickles. */
#include "datasets/datasets.h"
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define SIDE 32
#define PLANE (SIDE * SIDE)
#define RECORD (1 + 3 * PLANE)            /* label, then red, green and blue planes */
#define MAX_RECORDS 10000                 /* per batch file, as in the published set */
#define N_BATCHES 6                       /* data_batch_1..5, test_batch */
#define CIFAR_PATH_MAX 4096

static const char *const batch_names[N_BATCHES] = {
    "data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin", "data_batch_5.bin",
    "test_batch.bin",
};

/* The raw batches as read, before conversion. */
typedef struct raw_batches {
    uint8_t *data[N_BATCHES];
    size_t len[N_BATCHES];
} raw_batches;

static void raw_free(raw_batches *r)
{
    for (int i = 0; i < N_BATCHES; i++) free(r->data[i]);
    memset(r, 0, sizeof *r);
}

/* Index of the batch an archive entry or file name stands for, or -1. */
static int batch_index(const char *name)
{
    for (int i = 0; i < N_BATCHES; i++)
        if (!strcmp(name, batch_names[i])) return i;
    return -1;
}

/* Stores one batch's bytes (taking buf) after checking its length; where names it in errors. */
static int add_batch(raw_batches *r, int which, uint8_t *buf, size_t len, const char *path,
                     const char *where, char *err, size_t errlen)
{
    if (r->data[which]) {
        free(buf);
        return data_error(err, errlen, path, DATA_MALFORMED, "%s appears twice", where);
    }
    if (len == 0 || len % RECORD) {
        free(buf);
        return data_error(err, errlen, path, DATA_MALFORMED, "%s holds %zu bytes, not a whole number of %d-byte records",
                    where, len, RECORD);
    }
    r->data[which] = buf;
    r->len[which] = len;
    return 0;
}

/* Converts batches [first, first + n) into split s: labels checked, pixels to (32, 32, 3). */
static int convert(const raw_batches *r, int first, int n, data_split *s, const char *path,
                   char *err, size_t errlen)
{
    size_t records = 0;
    for (int b = first; b < first + n; b++) records += r->len[b] / RECORD;
    s->pixels = malloc(records * 3 * PLANE);
    s->labels = malloc(records);
    if (!s->pixels || !s->labels) return data_error(err, errlen, path, DATA_MALFORMED, "out of memory for %zu images", records);
    size_t k = 0;
    for (int b = first; b < first + n; b++) {
        for (size_t i = 0; i < r->len[b] / RECORD; i++, k++) {
            const uint8_t *rec = r->data[b] + i * RECORD;
            if (rec[0] >= 10)
                return data_error(err, errlen, path, DATA_MALFORMED, "%s: label %d in record %zu is out of range for 10 classes",
                            batch_names[b], rec[0], i);
            s->labels[k] = rec[0];
            uint8_t *px = s->pixels + k * 3 * PLANE;
            for (int p = 0; p < PLANE; p++)
                for (int ch = 0; ch < 3; ch++) px[p * 3 + ch] = rec[1 + ch * PLANE + p];
        }
    }
    s->n = (int)records;
    return 0;
}

/* All six batches there: fills out from them. */
static int assemble(const raw_batches *r, const char *path, data_set *out, char *err, size_t errlen)
{
    for (int i = 0; i < N_BATCHES; i++)
        if (!r->data[i]) return data_error(err, errlen, path, DATA_MALFORMED, "%s is missing", batch_names[i]);
    int rc = convert(r, 0, 5, &out->train, path, err, errlen);
    if (!rc) rc = convert(r, 5, 1, &out->test, path, err, errlen);
    if (rc) return rc;
    snprintf(out->name, sizeof out->name, "cifar10");
    snprintf(out->source, sizeof out->source, "%s", path);
    out->h = out->w = SIDE;
    out->c = 3;
    out->classes = 10;
    data_set_stats(out);
    return 0;
}

/* ---- the archive ---- */

/* An entry path is safe when it is relative and no component is "..". */
static int safe_path(const char *p)
{
    if (!*p || *p == '/') return 0;
    for (const char *s = p; *s; ) {
        size_t n = strcspn(s, "/");
        if (n == 2 && s[0] == '.' && s[1] == '.') return 0;
        s += n;
        while (*s == '/') s++;
    }
    return 1;
}

/* The batch a safe entry path names: "NAME", "DIR/NAME" (one folder, "./" allowed), else -1. */
static int entry_batch(const char *p)
{
    while (!strncmp(p, "./", 2)) p += 2;
    const char *slash = strchr(p, '/');
    if (slash && strchr(slash + 1, '/')) return -1;
    return batch_index(slash ? slash + 1 : p);
}

/* Reads the current entry's data, at most MAX_RECORDS records' worth. */
static int read_entry(struct archive *a, const char *path, const char *name, uint8_t **buf, size_t *len,
                      char *err, size_t errlen)
{
    size_t cap = 1 << 20, n = 0, limit = (size_t)MAX_RECORDS * RECORD;
    uint8_t *b = malloc(cap);
    if (!b) return data_error(err, errlen, path, DATA_MALFORMED, "out of memory");
    for (;;) {
        if (n == cap) {
            if (cap >= limit + 1) {
                free(b);
                return data_error(err, errlen, path, DATA_MALFORMED, "%s is larger than %d records", name, MAX_RECORDS);
            }
            cap = cap * 2 > limit + 1 ? limit + 1 : cap * 2;
            uint8_t *nb = realloc(b, cap);
            if (!nb) { free(b); return data_error(err, errlen, path, DATA_MALFORMED, "out of memory"); }
            b = nb;
        }
        la_ssize_t r = archive_read_data(a, b + n, cap - n);
        if (r < 0) {
            free(b);
            return data_error(err, errlen, path, DATA_MALFORMED, "%s: %s", name, archive_error_string(a));
        }
        if (r == 0) break;
        n += (size_t)r;
    }
    *buf = b;
    *len = n;
    return 0;
}

int data_cifar_read_archive(const char *path, data_set *out, char *err, size_t errlen)
{
    raw_batches raw = {0};
    struct archive_entry *e;
    int rc = DATA_MALFORMED, r;

    memset(out, 0, sizeof *out);
    struct archive *a = archive_read_new();
    if (!a) return data_error(err, errlen, path, DATA_MALFORMED, "out of memory");
    archive_read_support_filter_gzip(a);
    archive_read_support_format_tar(a);
    if (archive_read_open_filename(a, path, 1 << 16) != ARCHIVE_OK) {
        if (archive_errno(a) == ENOENT) {
            snprintf(err, errlen, "%s: no such file", path);
            rc = DATA_MISSING;
        } else data_error(err, errlen, path, DATA_MALFORMED, "cannot read as a tar or tar.gz archive (%s)", archive_error_string(a));
        goto fail;
    }
    while ((r = archive_read_next_header(a, &e)) == ARCHIVE_OK || r == ARCHIVE_WARN) {
        const char *name = archive_entry_pathname(e);
        if (!name || !safe_path(name)) {
            data_error(err, errlen, path, DATA_MALFORMED, "unsafe entry path '%.200s' (absolute or with ..); archive rejected",
                 name ? name : "(none)");
            goto fail;
        }
        int which = entry_batch(name);
        if (which < 0 || archive_entry_filetype(e) != AE_IFREG) continue;
        uint8_t *buf = NULL;
        size_t len = 0;
        if (read_entry(a, path, name, &buf, &len, err, errlen)) goto fail;
        if (add_batch(&raw, which, buf, len, path, name, err, errlen)) goto fail;
    }
    if (r != ARCHIVE_EOF) {
        data_error(err, errlen, path, DATA_MALFORMED, "corrupt archive (%s)", archive_error_string(a));
        goto fail;
    }
    if ((rc = assemble(&raw, path, out, err, errlen))) goto fail;
    raw_free(&raw);
    archive_read_free(a);
    return 0;

fail:
    raw_free(&raw);
    archive_read_free(a);
    data_set_free(out);
    memset(out, 0, sizeof *out);
    return rc;
}

/* ---- an extracted folder ---- */

static int read_folder(const char *dir, data_set *out, char *err, size_t errlen)
{
    raw_batches raw = {0};
    char path[CIFAR_PATH_MAX];
    int rc = 0;
    memset(out, 0, sizeof *out);
    for (int i = 0; i < N_BATCHES && !rc; i++) {
        uint8_t *buf = NULL;
        size_t len = 0;
        snprintf(path, sizeof path, "%s/%s", dir, batch_names[i]);
        rc = data_read_file(path, (size_t)MAX_RECORDS * RECORD, &buf, &len, err, errlen);
        if (!rc) rc = add_batch(&raw, i, buf, len, path, batch_names[i], err, errlen);
    }
    if (!rc) rc = assemble(&raw, dir, out, err, errlen);
    raw_free(&raw);
    if (rc) {
        data_set_free(out);
        memset(out, 0, sizeof *out);
    }
    return rc;
}

int data_load_cifar10(const char *dir, data_set *out, char *err, size_t errlen)
{
    char path[CIFAR_PATH_MAX];
    struct stat st;
    memset(out, 0, sizeof *out);
    if (strlen(dir) + 64 >= sizeof path) {
        snprintf(err, errlen, "%.200s...: folder name too long", dir);
        return DATA_MALFORMED;
    }
    snprintf(path, sizeof path, "%s/cifar-10-binary.tar.gz", dir);
    if (stat(path, &st) == 0) return data_cifar_read_archive(path, out, err, errlen);
    snprintf(path, sizeof path, "%s/cifar-10-batches-bin", dir);
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) return read_folder(path, out, err, errlen);
    snprintf(path, sizeof path, "%s/%s", dir, batch_names[0]);
    if (stat(path, &st) == 0) return read_folder(dir, out, err, errlen);
    snprintf(err, errlen, "cifar10 not found in %s", dir);
    return DATA_MISSING;
}
