/* Datasets by name: the registry (files, origins, checksums, licences), where a dataset is found
 * (a given folder, HASTEN_DATA_DIR, the system folders, the cache), fetching into the cache, and
 * the readers (IDX for the MNIST family, CIFAR-10 binary batches, plain text). Image readers fill
 * an engine data_set; shuffling, augmenting and batching are the engine's job (engine/data.h). */
#ifndef HASTEN_DATASETS_H
#define HASTEN_DATASETS_H

#include <stddef.h>
#include <stdint.h>
#include "engine/data.h"
#include "datasets/fetch.h"

/* Return codes of the loaders below: 0 success, DATA_MALFORMED for anything present but unusable
 * (bad file, unknown name, out of memory), DATA_MISSING when the dataset (or file) is not there. */
#define DATA_MALFORMED (-1)
#define DATA_MISSING   (-2)

enum data_format { DATA_FORMAT_IDX, DATA_FORMAT_CIFAR10, DATA_FORMAT_TEXT, DATA_FORMAT_SYNTHETIC };

#define DATA_MAX_FILES 4
#define DATA_MAX_DIGESTS 2

/* One file of a dataset as published. */
typedef struct data_file {
    const char *name;        /* file name in the dataset's folder, e.g. "train-images-idx3-ubyte.gz" */
    const char *url;         /* origin */
    long long size;          /* bytes */
    const char *sha256[DATA_MAX_DIGESTS + 1];   /* accepted digests (hex), NULL-terminated: [0] the
                                                 * origin's, then known-good repacks */
} data_file;

/* A registry entry. Static storage; never freed. */
typedef struct data_info {
    const char *name;        /* registry name; also the folder name in every place looked at */
    const char *title;
    enum data_format format;
    int classes;             /* image sets: labels are in [0, classes) */
    const char *homepage, *licence, *citation;
    const char *digests_from;   /* who published the SHA-256 values */
    const char *install_hint;   /* another way to get it (a Debian package), or NULL */
    int n_files;
    data_file files[DATA_MAX_FILES];
} data_info;

/* Registry names, NULL-terminated: "fashion-mnist", "mnist", "kmnist", "cifar10",
 * "tinyshakespeare", "synthetic", "text". Static storage. */
const char *const *data_names(void);

/* The entry called name, or NULL. Static storage. */
const data_info *data_info_find(const char *name);

/* Where a dataset was found. */
enum data_where { DATA_NOWHERE, DATA_GIVEN, DATA_ENV, DATA_SYSTEM, DATA_CACHE, DATA_BUILT_IN };

/* "given folder", "HASTEN_DATA_DIR", "system", "cache", "built in" or "not present". */
const char *data_where_name(enum data_where w);

/* The cache root: $XDG_CACHE_HOME/hasten when XDG_CACHE_HOME is an absolute path, else
 * $HOME/.cache/hasten. Writes it into out; returns 0, or -1 when neither variable gives one. */
int data_cache_dir(char *out, size_t len);

/* Finds dataset d without reading it, in the order data_load uses: $HASTEN_DATA_DIR/<name>, the
 * system folder /usr/share/datasets/<name>, then <cache>/<name>. A folder counts when it holds one
 * of the dataset's files (so a broken copy gives an error rather than being skipped), except the
 * cache, which counts only with every file (files there are installed one by one). Writes the
 * folder into dir (empty when none) and returns where; DATA_BUILT_IN for the synthetic set. */
enum data_where data_locate(const data_info *d, char *dir, size_t len);

/* Loads image dataset `name` into *out (which is zeroed first). A non-NULL dir is the folder
 * holding its files (a recipe's data.path) and the only place looked at; dir NULL means
 * data_locate's order. "synthetic" is made in code. On success returns 0 and *out owns its buffers
 * (free with data_set_free); name, source, geometry, classes, mean/std and both splits are filled.
 * On failure returns DATA_MISSING (not found; err says where it looked and how to get it, and the
 * caller may fetch it or fall back) or DATA_MALFORMED (err names the file and the problem; also for
 * an unknown name and for a text corpus), writes one line (no newline) into err[errlen], and
 * leaves *out zeroed with nothing allocated. Never downloads. */
int data_load(const char *name, const char *dir, data_set *out, char *err, size_t errlen);

/* Makes sure every file of dataset `name` is in <cache>/<name>/, downloading each missing one with
 * fetch_file from its origin, or from $HASTEN_MIRROR/<name>/<file> when HASTEN_MIRROR is set (same
 * checksums). With reverify, files already in the cache are hashed again and a corrupt one is
 * removed and fetched anew. Holds a lock on <cache>/<name>/.lock so that two processes do not
 * fetch the same dataset at once. o sets the progress callback and limits (NULL = defaults; label,
 * file and files are filled in here). Returns FETCH_OK, or a fetch_status with one line in err
 * (FETCH_BAD_ARG for a name that is unknown or has nothing to download). Only verified files ever
 * carry their final name in the cache. */
int data_fetch(const char *name, int reverify, const fetch_options *o, char *err, size_t errlen);

/* State of dataset d in the cache, without reading contents: how many of its files are installed
 * and how many bytes wait in partial downloads (*.part). Either pointer may be NULL. */
void data_cache_state(const data_info *d, int *files_present, long long *partial_bytes);

/* Loads the four standard IDX files (train-images-idx3-ubyte, train-labels-idx1-ubyte,
 * t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte; each gzipped with ".gz" or plain without) from
 * dir as dataset `name` with labels in [0, classes). Returns 0 with *out filled as data_load does;
 * DATA_MISSING when train-images is absent ("<name> not found in <dir>"); DATA_MALFORMED for
 * anything else, including a missing later file. Same ownership and failure rules as data_load. */
int data_load_idx(const char *name, const char *dir, int classes, data_set *out,
                  char *err, size_t errlen);

/* Reads one IDX file of unsigned bytes with exactly `ndims` dimensions (1 to 3) through zlib, so
 * gzipped and plain files both work. Validates the magic, the element type (0x08 only), the number
 * of dimensions, each dimension (non-zero, total under 1e9 bytes), the gzip stream, and that the
 * data is exactly as long as the header says (short = truncated, longer = trailing bytes).
 * On success returns 0, dims[0..ndims) holds the sizes and *data a malloc'd buffer the caller
 * frees. On failure *data is NULL, err holds "<path>: <problem>", and the return is DATA_MISSING
 * when the file does not exist, else DATA_MALFORMED. */
/* Writes "<path>: <message>" into err[errlen] and returns code, so that readers' failures read
 * `return data_error(err, errlen, path, DATA_MALFORMED, "...", ...)`. */
int data_error(char *err, size_t errlen, const char *path, int code, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* Reads a whole regular file of at most max_bytes into a malloc'd *buf (*len bytes; the caller
 * frees). Returns 0, DATA_MISSING when it does not exist, else DATA_MALFORMED; err names the file. */
int data_read_file(const char *path, size_t max_bytes, uint8_t **buf, size_t *len, char *err, size_t errlen);

int data_idx_read(const char *path, int ndims, int dims[3], uint8_t **data,
                  char *err, size_t errlen);

/* Makes a learnable synthetic image set in *out (zeroed first): each of `classes` classes has a
 * fixed smooth random template (gaussian blobs and a faint stripe pattern); each example is its
 * class template shifted by up to 3 pixels, with random contrast and strong pixel noise.
 * Deterministic for a given seed. One channel; name "synthetic", source "generated"; mean/std filled. Returns 0 with
 * *out owning its buffers (data_set_free), or DATA_MALFORMED on a bad argument (sizes must be
 * positive, n_test may be 0, h and w at most 1024, classes at most 256) or out of memory, leaving
 * *out zeroed. */
int data_synthetic(data_set *out, int n_train, int n_test, int h, int w, int classes, uint64_t seed);

/* Reads CIFAR-10 (binary version) from dir: the archive cifar-10-binary.tar.gz, else the extracted
 * folder cifar-10-batches-bin/ (or the batch files in dir itself). Returns as data_load_idx:
 * 0 with *out filled (32x32x3, channels last, 10 classes; 50000 + 10000 examples in the real set);
 * DATA_MISSING when none of those is there; DATA_MALFORMED with the file and problem in err. */
int data_load_cifar10(const char *dir, data_set *out, char *err, size_t errlen);

/* Reads the CIFAR-10 binary batches out of the tar archive (gzipped or plain) at path through
 * libarchive, extracting nothing to disk. An entry whose path is absolute or has a ".." component
 * makes the whole archive an error; entries other than data_batch_1.bin to data_batch_5.bin and
 * test_batch.bin (at the top or in one folder) are skipped. Each batch must hold a whole number of
 * 3073-byte records (a label below 10, then 1024 red, 1024 green and 1024 blue bytes), at most
 * 10000 (as published), and appear once. Pixels are converted to channels last. Returns 0 with *out filled (name
 * "cifar10", source path); else DATA_MISSING (no such file) or DATA_MALFORMED with
 * "<path>: <problem>" in err, and *out zeroed with nothing allocated. */
int data_cifar_read_archive(const char *path, data_set *out, char *err, size_t errlen);

/* A plain-text corpus as a character vocabulary and two id sequences. */
typedef struct data_text {
    char name[32];           /* registry name, or the file's name */
    char source[256];        /* file it came from */
    int vocab;               /* distinct characters, 1 to 65535 */
    uint32_t *chars;         /* (vocab) Unicode code point of each id, ascending */
    uint16_t *train;         /* (n_train) character ids: the text's first part */
    uint16_t *test;          /* (n_test) character ids: its last part */
    size_t n_train, n_test;
} data_text;

/* Reads the UTF-8 text file at path: the vocabulary is every distinct character of the whole text
 * (ids in code point order); the first (1 - test_frac) of the characters are the training
 * sequence, the rest the test sequence. test_frac must be in (0, 1). Rejects an empty file,
 * invalid UTF-8 (naming the byte offset), NUL characters (binary data), files over 256 MiB, more
 * than 65535 distinct characters, and texts too short to give each part a character. Returns 0
 * with *out owning its arrays (data_text_free); else DATA_MISSING (no such file) or DATA_MALFORMED
 * with "<path>: <problem>" in err, and *out zeroed with nothing allocated. */
int data_text_read(const char *path, double test_frac, data_text *out, char *err, size_t errlen);

/* Loads text dataset `name` ("tinyshakespeare") from dir, or data_locate's places when dir is
 * NULL, split 90/10; for "text", dir is the file itself. Same returns as data_load
 * (DATA_MALFORMED also for a name that is not a text corpus). */
int data_load_text(const char *name, const char *dir, data_text *out, char *err, size_t errlen);

/* data_load_text, then data_text_windows of context tokens: a text dataset as the engine trains
 * on it. Same returns. */
int data_load_text_windows(const char *name, const char *dir, int context, data_set *out, char *err,
                           size_t errlen);

/* The examples of a character model from t: each split cut into windows of context tokens (2 to
 * 4096) at a stride of context, inputs the window's ids and labels the next character at each
 * position (engine/data.h's tokens). Returns 0 with *out owning its buffers (data_set_free), or
 * DATA_MALFORMED with "<source>: <problem>" in err (a vocabulary over 256 characters, a part too
 * short for one window) and *out zeroed. */
int data_text_windows(const data_text *t, int context, data_set *out, char *err, size_t errlen);

/* A fingerprint of t's vocabulary (its characters in id order; FNV-1a, 64 bits): two texts with
 * the same value map ids to the same characters. A text without chars (generated ids) hashes as
 * an empty vocabulary. */
uint64_t data_text_vocab_hash(const data_text *t);

/* Decodes the UTF-8 character at s (n > 0 bytes left) into *cp. Returns its length in bytes, or
 * 0 when the bytes are not valid UTF-8 (overlong forms, surrogates and values past U+10FFFF too). */
int data_utf8_next(const uint8_t *s, size_t n, uint32_t *cp);

/* The id of code point cp in t's vocabulary, or -1. */
int data_text_id(const data_text *t, uint32_t cp);

/* Frees the arrays and zeroes *t. */
void data_text_free(data_text *t);

#endif
