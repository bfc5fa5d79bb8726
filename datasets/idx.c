/* IDX files (the MNIST family's format): a validating reader and the four-file dataset layout.
 * Reads gzipped and plain files alike through zlib. Not for other formats, nor for fetching. */
#include "datasets/datasets.h"
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#define IDX_MAX_BYTES 1000000000ull
#define IDX_PATH_MAX 4096
#define READ_CHUNK (1u << 20)

int data_error(char *err, size_t errlen, const char *path, int code, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(err, errlen, "%s: %s", path, msg);
    return code;
}

/* Reads up to len bytes; returns how many were read (short only at end of data or on error). */
static size_t gz_read_full(gzFile g, uint8_t *buf, size_t len)
{
    size_t got = 0;
    while (got < len) {
        size_t chunk = len - got > (1u << 30) ? (1u << 30) : len - got;
        int r = gzread(g, buf + got, (unsigned)chunk);
        if (r <= 0) break;
        got += (size_t)r;
    }
    return got;
}

/* zlib reports a cut gzip stream as Z_BUF_ERROR on a short read, not as a failed gzread, so every
 * read is followed by this check. Returns 0 when the stream is healthy. */
static int gz_check(gzFile g, const char *path, char *err, size_t errlen)
{
    int errnum = Z_OK;
    const char *msg = gzerror(g, &errnum);
    if (errnum == Z_OK) return 0;
    if (errnum == Z_ERRNO) return data_error(err, errlen, path, DATA_MALFORMED, "read error: %s", strerror(errno));
    size_t plen = strlen(path);   /* zlib's message repeats "<path>: " */
    if (!strncmp(msg, path, plen) && !strncmp(msg + plen, ": ", 2)) msg += plen + 2;
    return data_error(err, errlen, path, DATA_MALFORMED, "corrupt gzip stream (%s)", msg);
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* "60000 images of 28x28", "60000 labels" or "3x4 items": what the header promises. */
static void describe(char *buf, size_t len, int ndims, const int dims[3])
{
    if (ndims == 3) snprintf(buf, len, "%d images of %dx%d", dims[0], dims[1], dims[2]);
    else if (ndims == 1) snprintf(buf, len, "%d labels", dims[0]);
    else snprintf(buf, len, "%dx%d items", dims[0], dims[1]);
}

int data_idx_read(const char *path, int ndims, int dims[3], uint8_t **data, char *err, size_t errlen)
{
    uint8_t head[16], extra;
    uint8_t *buf = NULL;
    char what[96];
    size_t total = 1, got;
    int rc = DATA_MALFORMED;

    *data = NULL;
    if (ndims < 1 || ndims > 3) return data_error(err, errlen, path, rc, "cannot read %d-dimensional IDX data", ndims);
    gzFile g = gzopen(path, "rb");
    if (!g) {
        if (errno == ENOENT) return data_error(err, errlen, path, DATA_MISSING, "no such file");
        return data_error(err, errlen, path, rc, "cannot open: %s", strerror(errno));
    }
    gzbuffer(g, 1 << 17);

    got = gz_read_full(g, head, 4 + 4 * (size_t)ndims);
    if (gz_check(g, path, err, errlen)) goto fail;
    if (got >= 4 && (head[0] || head[1])) {
        data_error(err, errlen, path, rc, "not an IDX file (magic 0x%08x, expected 0x%08x)",
             be32(head), 0x800u | (unsigned)ndims);
        goto fail;
    }
    if (got >= 4 && head[2] != 0x08) {
        data_error(err, errlen, path, rc, "unsupported IDX element type 0x%02x (only 0x08, unsigned bytes)", head[2]);
        goto fail;
    }
    if (got >= 4 && head[3] != ndims) {
        data_error(err, errlen, path, rc, "IDX file has %d dimensions, expected %d", head[3], ndims);
        goto fail;
    }
    if (got < 4 + 4 * (size_t)ndims) {
        data_error(err, errlen, path, rc, "truncated: file ends inside the IDX header (%zu bytes)", got);
        goto fail;
    }
    for (int i = 0; i < ndims; i++) {
        uint32_t d = be32(head + 4 + 4 * i);
        if (d == 0) {
            data_error(err, errlen, path, rc, "dimension %d of the IDX header is zero", i);
            goto fail;
        }
        if (d >= IDX_MAX_BYTES || total * d >= IDX_MAX_BYTES) {
            data_error(err, errlen, path, rc, "IDX header dimensions are too large (%u in dimension %d, limit 1e9 bytes in all)", d, i);
            goto fail;
        }
        total *= d;
        dims[i] = (int)d;
    }
    describe(what, sizeof what, ndims, dims);

    /* The buffer grows with the data that arrives, so a 16-byte file claiming a gigabyte costs a
     * megabyte, not a gigabyte. */
    size_t cap = total < READ_CHUNK ? total : READ_CHUNK;
    got = 0;
    for (;;) {
        uint8_t *grown = realloc(buf, cap);
        if (!grown) {
            data_error(err, errlen, path, rc, "out of memory for %zu bytes", cap);
            goto fail;
        }
        buf = grown;
        got += gz_read_full(g, buf + got, cap - got);
        if (gz_check(g, path, err, errlen)) goto fail;
        if (got < cap || cap == total) break;   /* the data ended, or all of it is in */
        cap = cap < total / 2 ? cap * 2 : total;
    }
    if (got < total) {
        data_error(err, errlen, path, rc, "truncated: header says %s, file holds %zu bytes of data", what, got);
        goto fail;
    }
    /* One more read: zlib checks the gzip trailer (CRC, length) only when asked past the data. */
    got = gz_read_full(g, &extra, 1);
    if (gz_check(g, path, err, errlen)) goto fail;
    if (got) {
        data_error(err, errlen, path, rc, "trailing bytes after the data (header says %s)", what);
        goto fail;
    }
    gzclose(g);
    *data = buf;
    return 0;

fail:
    gzclose(g);
    free(buf);
    return rc;
}

static const char *const idx_names[4] = {
    "train-images-idx3-ubyte", "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte",
};

/* Picks dir/base.gz, else dir/base, else dir/base.gz (so a missing file is named the usual way).
 * Returns 1 when a file is there. */
static int idx_path(char *path, const char *dir, const char *base)
{
    struct stat st;
    snprintf(path, IDX_PATH_MAX, "%s/%s.gz", dir, base);
    if (stat(path, &st) == 0) return 1;
    snprintf(path, IDX_PATH_MAX, "%s/%s", dir, base);
    if (stat(path, &st) == 0) return 1;
    snprintf(path, IDX_PATH_MAX, "%s/%s.gz", dir, base);
    return 0;
}

/* Reads one images file and its labels file into s, checking counts and label range. */
static int read_split(const char *dir, int which, int classes, data_split *s,
                      int dims[3], char *err, size_t errlen)
{
    char ipath[IDX_PATH_MAX], lpath[IDX_PATH_MAX];
    int ldims[3];
    uint8_t *pixels = NULL, *labels = NULL;
    int rc;

    idx_path(ipath, dir, idx_names[which]);
    idx_path(lpath, dir, idx_names[which + 1]);
    if ((rc = data_idx_read(ipath, 3, dims, &pixels, err, errlen))) goto fail;
    if ((rc = data_idx_read(lpath, 1, ldims, &labels, err, errlen))) goto fail;
    rc = DATA_MALFORMED;
    if (ldims[0] != dims[0]) {
        data_error(err, errlen, ipath, rc, "%d images but %d labels in %s", dims[0], ldims[0], lpath);
        goto fail;
    }
    for (int i = 0; i < ldims[0]; i++) {
        if (labels[i] >= classes) {
            data_error(err, errlen, lpath, rc, "label %d at index %d is out of range for %d classes",
                 labels[i], i, classes);
            goto fail;
        }
    }
    s->n = dims[0];
    s->pixels = pixels;
    s->labels = labels;
    return 0;

fail:
    free(pixels);
    free(labels);
    return rc == DATA_MISSING ? DATA_MALFORMED : rc;  /* the caller decides what "missing" means */
}

int data_load_idx(const char *name, const char *dir, int classes, data_set *out,
                  char *err, size_t errlen)
{
    char path[IDX_PATH_MAX];
    int train_dims[3], test_dims[3];
    int rc;

    memset(out, 0, sizeof *out);
    if (strlen(dir) + 32 >= IDX_PATH_MAX) {
        snprintf(err, errlen, "%.200s...: folder name too long", dir);
        return DATA_MALFORMED;
    }
    int present = 0;   /* any of the four: a copy, whole or broken (then the missing file is named) */
    for (int i = 0; i < 4; i++) present += idx_path(path, dir, idx_names[i]);
    if (!present) {
        snprintf(err, errlen, "%s not found in %s", name, dir);
        return DATA_MISSING;
    }
    if ((rc = read_split(dir, 0, classes, &out->train, train_dims, err, errlen))) goto fail;
    if ((rc = read_split(dir, 2, classes, &out->test, test_dims, err, errlen))) goto fail;
    if (test_dims[1] != train_dims[1] || test_dims[2] != train_dims[2]) {
        idx_path(path, dir, idx_names[2]);
        rc = data_error(err, errlen, path, DATA_MALFORMED, "images are %dx%d but the training images are %dx%d",
                  test_dims[1], test_dims[2], train_dims[1], train_dims[2]);
        goto fail;
    }
    snprintf(out->name, sizeof out->name, "%s", name);
    snprintf(out->source, sizeof out->source, "%s", dir);
    out->h = train_dims[1];
    out->w = train_dims[2];
    out->c = 1;
    out->classes = classes;
    data_set_stats(out);
    return 0;

fail:
    data_set_free(out);
    memset(out, 0, sizeof *out);
    return rc;
}

int data_read_file(const char *path, size_t max_bytes, uint8_t **buf, size_t *len, char *err, size_t errlen)
{
    struct stat st;
    *buf = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) {
        if (errno == ENOENT) return data_error(err, errlen, path, DATA_MISSING, "no such file");
        return data_error(err, errlen, path, DATA_MALFORMED, "cannot open: %s", strerror(errno));
    }
    if (fstat(fileno(f), &st) || !S_ISREG(st.st_mode)) {
        fclose(f);
        return data_error(err, errlen, path, DATA_MALFORMED, "not a regular file");
    }
    if ((unsigned long long)st.st_size > max_bytes) {
        fclose(f);
        return data_error(err, errlen, path, DATA_MALFORMED, "%lld bytes is over the limit of %zu",
                          (long long)st.st_size, max_bytes);
    }
    *len = (size_t)st.st_size;
    *buf = malloc(*len ? *len : 1);
    int ok = *buf && fread(*buf, 1, *len, f) == *len;
    fclose(f);
    if (!ok) {
        free(*buf);
        *buf = NULL;
        return data_error(err, errlen, path, DATA_MALFORMED, "read error");
    }
    return 0;
}
