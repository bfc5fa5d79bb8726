/* Datasets by name: the registry, the IDX reader (MNIST family) and the synthetic set made in code.
 * Everything here fills an engine data_set in memory; shuffling, augmenting and batching are the
 * engine's job (engine/data.h). Not for downloading (the fetcher does that). */
#ifndef HASTEN_DATASETS_H
#define HASTEN_DATASETS_H

#include <stddef.h>
#include <stdint.h>
#include "engine/data.h"

/* Return codes of the loaders below: 0 success, DATA_MALFORMED for anything present but unusable
 * (bad file, unknown name, out of memory), DATA_MISSING when the dataset (or file) is not there. */
#define DATA_MALFORMED (-1)
#define DATA_MISSING   (-2)

/* Registry names, NULL-terminated: "fashion-mnist", "mnist", "synthetic". Static storage. */
const char *const *data_names(void);

/* Loads dataset `name` into *out (which is zeroed first). dir NULL means the default places:
 * $HASTEN_DATA_DIR/<name> when that variable is set, then /usr/share/datasets/<name>; a non-NULL
 * dir is the folder holding the files ("synthetic" ignores dir). On success returns 0 and *out owns
 * its buffers (free with data_set_free); name, source, geometry, classes, mean/std and both splits
 * are filled. On failure returns DATA_MISSING (dataset not found; err says where it looked and how
 * to install it) or DATA_MALFORMED (err names the file and the problem), writes one line (no
 * newline) into err[errlen], and leaves *out zeroed with nothing allocated. */
int data_load(const char *name, const char *dir, data_set *out, char *err, size_t errlen);

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

#endif
