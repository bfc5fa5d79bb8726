/* In-memory datasets and the loader thread that turns them into batches.
 * Not for reading files: datasets/ fills a data_set; this module only shuffles, augments and
 * normalises into a ring of ready batches. */
#ifndef HASTEN_DATA_H
#define HASTEN_DATA_H

#include <stdint.h>
#include <stddef.h>
#include <pthread.h>

typedef struct data_split {
    int n;               /* number of examples */
    uint8_t *pixels;     /* (n, h, w, c) raw bytes, row-major, channels last; text: token ids */
    uint8_t *labels;     /* (n * data_labels_per) class index in [0, classes); text: the next
                          * token's id at each position */
} data_split;

typedef struct data_set {
    char name[32];       /* registry name, e.g. "fashion-mnist" */
    char source[256];    /* where it came from (folder or "generated") */
    int h, w, c;         /* image geometry; text: 1, tokens, 1 */
    int classes;         /* text: the vocabulary's size */
    uint64_t vocab_hash; /* text: data_text_vocab_hash of its characters (0 for images), so a
                          * character model's run can tell its text from a changed one */
    int tokens;          /* 0 for images; text: tokens per example (a window of the text), each
                          * with its own label, and ids instead of pixels (data_lut is then the
                          * identity) */
    float mean[4], std[4];  /* per-channel normalisation of x/255 */
    data_split train, test;
} data_set;

/* Labels per example: ds->tokens for text, else 1. */
static inline int data_labels_per(const data_set *ds) { return ds->tokens > 0 ? ds->tokens : 1; }

/* Frees the pixel and label buffers of both splits; the struct itself is the caller's. */
void data_set_free(data_set *ds);

/* Computes per-channel mean and std of the training split into ds->mean/std. */
void data_set_stats(data_set *ds);

enum { DATA_FLIP_OFF, DATA_FLIP_RANDOM, DATA_FLIP_ALTERNATE };

typedef struct data_augment {
    int crop_pad;        /* random crop after zero padding by this many pixels; 0 = off */
    int flip;            /* DATA_FLIP_*: none; a coin per example and epoch; alternating, where an
                          * example is flipped in every other epoch, from a coin in epoch 0 */
} data_augment;

/* Whether example idx is flipped in epoch under DATA_FLIP_ALTERNATE: a coin per (seed, idx),
 * inverted on odd epochs (Jordan 2024, airbench). */
int data_alternate_flip(uint64_t seed, int idx, int epoch);

#define DATA_MAX_C 4     /* channels normalisation has room for */

/* Writes the normalised value of each byte, per channel, into lut (DATA_MAX_C, 256). */
void data_lut(const data_set *ds, float *lut);

/* Writes one (h, w, c) image into dst: dst(y, x) = lut[ch][src(y + dy, x' + dx)] with x' = w-1-x
 * when flip else x, and lut[ch][0] where the source is outside the image (a crop's padding).
 * The one definition of the augmentation every device reproduces. */
void data_fill_example(float *dst, const uint8_t *src, int h, int w, int c, const float *lut,
                       int dy, int dx, int flip);

typedef struct data_batch {
    int n, h, w, c;      /* examples and geometry of this batch */
    int per;             /* labels per example (data_labels_per) */
    float *x;            /* (n, h, w, c) normalised inputs; NULL from an index-only loader */
    int *labels;         /* (n * per) */
    int *idx;            /* (n) example indices in the split */
    int *aug;            /* (n, 3) crop shift dy, dx and flip of each example */
    int epoch;           /* 0-based epoch this batch belongs to */
    int index;           /* 0-based batch index within its epoch */
    int cap_x, cap_n, cap_per;   /* allocated capacity of x (floats), examples and labels per example */
} data_batch;

/* Fills b with examples idx[0..n) of split (normalised, no augmentation); grows b as needed.
 * Used for evaluation and by plugins' scoring passes. */
void data_gather(const data_set *ds, const data_split *split, const int *idx, int n, data_batch *b);

void data_batch_free(data_batch *b);

#define DATA_RING 4

typedef struct data_loader data_loader;

/* Starts a loader thread over ds->train: per-epoch shuffle from seed, augmentation, batches of
 * `batch` examples (the last partial batch of an epoch is dropped). Returns NULL on allocation
 * failure. ds must outlive the loader. */
data_loader *data_loader_start(const data_set *ds, int batch, data_augment aug, uint64_t seed);

/* Same, but batches carry labels, idx and aug only (x is NULL): for a device that holds the
 * dataset and gathers and augments there (engine/devdata.h). */
data_loader *data_loader_start_indices(const data_set *ds, int batch, data_augment aug, uint64_t seed);

/* Which training examples a loader draws from, and the epoch number its first batch carries. */
typedef struct data_pool {
    const int *idx;      /* (n) example indices of the training split, copied; NULL = all of them */
    int n;
    int first_epoch;
} data_pool;

/* As data_loader_start (indices_only = 0) or data_loader_start_indices (1), over pool's examples
 * only (each epoch a permutation of them, from (seed, epoch) as always) and numbering epochs from
 * pool->first_epoch: a run can change its pool at an epoch boundary by starting a new loader.
 * NULL for a pool smaller than a batch or an index outside the split. */
data_loader *data_loader_start_pool(const data_set *ds, int batch, data_augment aug, uint64_t seed,
                                    int indices_only, const data_pool *pool);

/* Copies src into dst, growing dst as needed (pixels only when src has them). Aborts when out of
 * memory. */
void data_batch_copy(data_batch *dst, const data_batch *src);

/* Blocks until the next batch is ready and returns it; the pointer stays valid until the next
 * call to data_loader_next or data_loader_stop. *wait_s receives the seconds spent waiting. */
const data_batch *data_loader_next(data_loader *l, double *wait_s);

/* Number of full batches per epoch. */
int data_loader_steps_per_epoch(const data_loader *l);

/* Stops the thread and frees everything. */
void data_loader_stop(data_loader *l);

#endif
