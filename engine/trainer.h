/* The training loop: budget, events, phase timing, evaluation, metric series and run files.
 * Not for parsing recipes or drawing: lua/ builds the config, tui/ reads the series. */
#ifndef HASTEN_TRAINER_H
#define HASTEN_TRAINER_H

#include <pthread.h>
#include <stdatomic.h>
#include "engine/config.h"
#include "engine/data.h"
#include "engine/devdata.h"
#include "engine/nn.h"
#include "engine/optim.h"
#include "engine/runlog.h"

typedef enum {
    EV_FIT_START, EV_EPOCH_START, EV_BATCH_START, EV_BEFORE_FORWARD, EV_AFTER_FORWARD,
    EV_BEFORE_LOSS, EV_AFTER_LOSS, EV_AFTER_BACKWARD, EV_BEFORE_STEP, EV_AFTER_STEP,
    EV_EPOCH_END, EV_EVAL_START, EV_EVAL_END, EV_FIT_END, EV_COUNT
} trainer_event;

/* 1 for the events whose handlers run in reverse order (after_*, epoch_end, eval_end, fit_end),
 * so a hook or plugin can undo what it did on the matching opening event. */
int trainer_event_reversed(trainer_event e);

/* "fit_start", "batch_start", ... as DESIGN.md spells them. */
const char *trainer_event_name(trainer_event e);

enum { PHASE_DATA, PHASE_FORWARD, PHASE_BACKWARD, PHASE_OPTIM, PHASE_PLUGINS, PHASE_EVAL, PHASE_COUNT };
/* "data_wait", "forward", "backward", "optimizer", "plugins", "eval". */
const char *trainer_phase_name(int phase);

typedef enum { RUN_READY, RUN_RUNNING, RUN_DONE, RUN_STOPPED, RUN_FAILED } run_status;
const char *trainer_status_name(run_status s);

typedef struct trainer_record {
    long step;           /* steps completed */
    double epoch;        /* samples / training-set size */
    long samples;
    double seconds;      /* training clock: evaluation and pauses excluded */
    float train_loss;    /* mean loss of the step's batch */
    float lr;            /* lr of the decay group */
    int is_eval;
    float test_loss, test_acc;   /* eval records only */
    float phase[PHASE_EVAL];     /* (PHASE_EVAL) step records: seconds in each training phase since the
                                  * previous step record (plugins: with fit_start or epoch_end work) */
    unsigned extra_mask;         /* bit i: extra[i] holds custom metric i (trainer_metric_names) */
    float extra[8];              /* (TRAINER_MAX_EXTRA) plugin metrics of this step */
} trainer_record;

typedef struct trainer trainer;

/* A hook sees the trainer at each event. Return 0 to go on; nonzero stops the run as failed, with
 * the hook's message put in t->error by trainer_fail. */
typedef int (*trainer_hook_fn)(trainer *t, trainer_event ev, void *ud);

#define TRAINER_MAX_HOOKS 8
#define TRAINER_MAX_EXTRA 8

struct trainer {
    const train_config *cfg;
    const data_set *data;
    nn_model *model;
    optim opt;
    data_loader *loader;  /* started after fit_start, so plugins may change aug first */
    data_augment aug;    /* the recipe's augmentation, open to plugins at fit_start */

    devdata *dd;         /* the dataset on the model's device; NULL on the CPU */

    /* The current step, open to hooks; tensors live on the model's device. A text example has
     * L = trainer_tokens() labels (its window's length, which a hook may shorten), an image 1:
     * rows below are B x L. */
    tensor x;            /* (B, H, W, C) inputs; text: (B, 1, L, 1) token ids */
    tensor targets;      /* (B L, K) soft targets, one-hot unless a hook changes them */
    int *labels;         /* (B L) host */
    int labels_cap;
    tensor weight;       /* (B) per-sample loss weights, 1 by default */
    tensor loss;         /* (B) per-sample losses after the loss (text: the mean over its tokens) */
    tensor dlogits;      /* (B L, K) values, shaped as the logits */
    tensor tok_weight, tok_loss, ones;   /* text: (B L) weights and losses per token, (L) ones */
    tensor scratch;      /* (B) device-side results bound for the host (trainer_score) */
    const tensor *logits;  /* (B, K) model output of this step */
    float batch_loss;
    int batch_correct;

    long step;           /* steps completed */
    long samples;
    int epoch;           /* 0-based current epoch */
    double progress;     /* [0, 1] of the budget */
    long total_steps;    /* for step, epoch and sample budgets; 0 for seconds */
    int steps_per_epoch;

    double train_seconds;   /* training clock: the steps and the events between them, fit_start and
                             * fit_end included; evaluation (eval_start and eval_end too) and pauses not */
    double phase[PHASE_COUNT];   /* seconds; the phases below PHASE_EVAL are parts of the training clock */
    double rec_phase[PHASE_EVAL];   /* phase at the last step record */
    double run_started;     /* monotonic seconds at trainer_run start */

    atomic_int stop_req, pause_req;
    _Atomic run_status status;
    char error[1024];

    float last_test_loss, last_test_acc;   /* NAN before the first evaluation */
    double time_to_target;                 /* training seconds, or -1 */
    long steps_to_target;

    pthread_mutex_t mu;                    /* guards the series */
    trainer_record *rec;
    int n_rec, cap_rec;

    int n_hooks;
    struct { trainer_hook_fn fn; void *ud; } hooks[TRAINER_MAX_HOOKS];
    runlog *log;                           /* NULL = no files */
    const data_batch *cur;                 /* the loader's batch of this step (borrowed) */
    int *pool, n_pool;                     /* (n_pool) training examples in use; NULL = all */
    layer_spec *specs;                     /* (n_specs) the model's layers after insertions; NULL = cfg's */
    int n_specs;
    int n_metric_names;                    /* custom metrics of the run, in first-seen order */
    char metric_names[TRAINER_MAX_EXTRA][32];   /* appended under mu */
    unsigned step_mask;                    /* the current step's custom values */
    float step_extra[TRAINER_MAX_EXTRA];
    data_batch held;                       /* a copy kept for data echoing */
    int echo_left, echoed;                 /* echoes still to run; this step is one */
    char extra_summary[4096];              /* JSON members appended to summary.json, e.g. "\"x\":1" */
};

/* Builds the model and optimizer for cfg on ds, on cfg->device (the dataset is then uploaded there
 * too). cfg and ds must outlive the trainer. Returns NULL with a one-line message in err (bad model
 * for this data, a device that cannot be opened, etc.). */
trainer *trainer_new(const train_config *cfg, const data_set *ds, char *err, size_t errlen);
void trainer_free(trainer *t);

/* Adds a hook, called in the order added (reverse order on after_* events). Returns 0 or -1 when full. */
int trainer_add_hook(trainer *t, trainer_hook_fn fn, void *ud);

/* Writes the run's files into log (borrowed; the caller closes it after trainer_run). */
void trainer_set_log(trainer *t, runlog *log);

/* Runs the whole budget in the calling thread. Returns 0 when done or stopped, -1 when failed
 * (t->error says why). Whatever was measured is in the series and the run files either way. */
int trainer_run(trainer *t);

/* Thread-safe controls for other threads (the UI). */
void trainer_pause(trainer *t, int paused);
void trainer_stop(trainer *t);

/* Copies up to max records from index `from` into out; returns the number copied. Thread-safe. */
int trainer_series(trainer *t, int from, trainer_record *out, int max);

/* Evaluates on the test split in eval mode; fills loss and accuracy. Not counted as training time. */
void trainer_evaluate(trainer *t, float *loss, float *acc);

/* Requests hooks may make (they change the current step; each returns 0 or -1 on bad arguments):
 * trainer_select keeps rows idx[0..n) of the batch (inputs, targets, labels, weights), e.g. for
 * selective backprop; trainer_echo reuses this step's loaded batch for `times` more steps (data
 * echoing; augmentation is not redone); trainer_score runs a forward-only pass in eval mode and
 * writes the per-sample losses of the current batch into losses (n floats); trainer_regrad redoes
 * forward, loss and backward of the current batch into fresh gradients (SAM). */
int trainer_select(trainer *t, const int *idx, int n);
int trainer_echo(trainer *t, int times);
int trainer_score(trainer *t, float *losses);
int trainer_regrad(trainer *t);

/* After after_loss hooks changed the step's weights or targets: recomputes the per-sample losses,
 * the mean loss and the gradient of the loss that the backward pass starts from. Cheap (one
 * softmax over the logits); no failure. */
void trainer_reloss(trainer *t);

/* Labels per example in the current step: the inputs' length for text, else 1. */
int trainer_tokens(const trainer *t);

/* Text: keeps the first len tokens of every example of the current step (inputs, targets and
 * labels), e.g. for sequence-length warm-up. Returns 0, or -1 for image data or a length outside
 * 1..the current one. */
int trainer_truncate(trainer *t, int len);

/* Model surgery at fit_start: rebuilds the model with spec inserted before 0-based position pos
 * (weights initialised afresh from the seed, optimizer state rebuilt). Returns 0, or -1 with one
 * line in err (not at fit_start, bad position, a layer that does not fit). t->model changes. */
int trainer_insert_layer(trainer *t, int pos, const layer_spec *spec, char *err, size_t errlen);

/* Per-example losses of the whole training split (no augmentation, evaluation mode) into losses
 * (train.n, host). The caller's event time counts as training time: scoring is the method's cost. */
void trainer_score_train(trainer *t, float *losses);

/* Examples idx (n of them) of the training or test split (DEVDATA_TRAIN or DEVDATA_TEST) as a
 * batch on the model's device, without augmentation: x (n, h, w, c) and one-hot targets
 * (n * labels per example, classes). b is the host batch it reads through when the data is not
 * on the device; the caller frees b (data_batch_free), x and targets (tensor_free) after its last
 * call. Returns the labels (n * labels per example), valid until the next call. */
const int *trainer_gather(trainer *t, int which, const int *idx, int n, data_batch *b, tensor *x,
                          tensor *targets);

/* Trains on examples idx[0..n) of the training split only, from the next epoch on (at fit_start:
 * from the start). Call it at fit_start or epoch_end: the loader restarts at the epoch boundary,
 * so the run stays reproducible. An epoch budget then counts epochs of the smaller pool (fewer
 * steps each). Returns 0, or -1 with one line in err (fewer examples than a batch, bad index). */
int trainer_keep_examples(trainer *t, const int *idx, int n, char *err, size_t errlen);

/* The spec of top-level layer pos (0-based) as the run uses it, and the live layer's copy: a
 * change through the returned pointer must be mirrored into t->model->layers[pos].spec, and then
 * survives a later insert. NULL for a position outside the model. */
layer_spec *trainer_layer_spec(trainer *t, int pos);

/* Adds a named value to the current step's record (a custom series, e.g. a plugin's grad_norm):
 * in the in-memory series (trainer_record.extra) and metrics.jsonl. Returns 0, or -1 when the run
 * already has TRAINER_MAX_EXTRA other names, or the name is not a plain identifier or is one of
 * the record's own fields (step, seconds, lr, test_acc, ...). */
int trainer_metric(trainer *t, const char *name, float value);

/* Copies the run's custom metric names (index i is trainer_record.extra[i]) into names; returns
 * their count. Thread-safe. */
int trainer_metric_names(trainer *t, char names[][32], int max);

/* Marks the run failed with a message (for hooks); returns -1 for convenience. */
int trainer_fail(trainer *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* This machine's CPU model ("model name" of /proc/cpuinfo, "unknown" without it), as the
 * summary's fingerprint records it. */
void trainer_cpu_model(char *out, size_t len);

/* Monotonic clock in seconds. */
double trainer_now(void);

/* Writes summary.json for the current state (also called by trainer_run). */
void trainer_write_summary(trainer *t);

#endif
