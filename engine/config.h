/* A training run's configuration as plain C structs: what a recipe resolves to.
 * Not for parsing: lua/recipe.c reads recipe files into this; the engine only consumes it. */
#ifndef HASTEN_CONFIG_H
#define HASTEN_CONFIG_H

#include <stdint.h>

enum layer_kind {
    LAYER_LINEAR, LAYER_CONV, LAYER_MAXPOOL, LAYER_AVGPOOL, LAYER_GAP, LAYER_BATCHNORM,
    LAYER_RELU, LAYER_GELU, LAYER_DROPOUT, LAYER_FLATTEN, LAYER_RESIDUAL, LAYER_SE, LAYER_EMBED,
    LAYER_LAYERNORM, LAYER_ATTENTION, LAYER_KIND_COUNT
};

/* Recipe spelling of each kind ("linear", "conv", "maxpool", "avgpool", "gap", "batchnorm",
 * "relu", "gelu", "dropout", "flatten", "residual", "se", "embed", "layernorm", "attention");
 * NULL for an out-of-range kind. */
const char *config_layer_name(enum layer_kind k);
/* Kind for a recipe spelling, or -1. */
int config_layer_kind(const char *name);

typedef struct layer_spec {
    enum layer_kind kind;
    char name[32];        /* optional user name; "" = auto ("conv1", "linear2", ...) */
    int out;              /* linear: out features; conv: out channels; se: hidden units;
                           * CONFIG_CLASSES (a linear or conv at the top level, nn.classes in a
                           * recipe): the dataset's classes, text's vocabulary */
    int k, stride, pad;   /* conv: kernel/stride/pad; pools: k (window) and stride (0 = k) */
    int bias;             /* linear/conv: has bias (default 1; conv followed by BN may say 0) */
    float p;              /* dropout probability */
    float momentum, eps;  /* batchnorm: running-stat momentum (0.1), eps (1e-5); layernorm: eps */
    int ghost;            /* batchnorm: training statistics over groups of this many examples
                           * (ghost batch norm); 0 = the whole batch */
    int vocab;            /* embed: token ids in [0, vocab); 0 = the dataset's classes */
    int positions;        /* embed: adds learned position embeddings (default 1); 0 = the table is
                           * kept but unused (ALiBi) */
    int heads;            /* attention: heads; the input's channels are 3 x heads x head size */
    int alibi;            /* attention: linear biases by distance instead of positions (0/1) */
    int n_inner;          /* residual: layers of the residual branch */
    struct layer_spec *inner;  /* (n_inner) owned */
} layer_spec;

enum sched_kind { SCHED_CONSTANT, SCHED_LINEAR_DECAY, SCHED_COSINE, SCHED_ONE_CYCLE, SCHED_KIND_COUNT };

typedef struct sched_spec {
    enum sched_kind kind;
    float warmup;         /* fraction of the budget with linear warm-up from 0 (0 = none) */
    float peak;           /* one_cycle: peak multiple of lr (default 10) */
    float pct_up;         /* one_cycle: fraction of budget rising (default 0.25) */
    float final_frac;     /* floor of the decay as a fraction of lr (default 0) */
} sched_spec;

/* layer_spec.out left to the data (recipes write nn.classes), taken by config_take_data_sizes. */
#define CONFIG_CLASSES 0

/* Gives the sizes a recipe left to the data their values for a dataset of `classes` classes (a
 * text's vocabulary): each top-level linear or conv whose out is CONFIG_CLASSES, and an embedding
 * whose vocab is 0. Nested layers are left as they are (nn_build refuses nn.classes there). */
void config_take_data_sizes(layer_spec *layers, int n, int classes);

const char *config_sched_name(enum sched_kind k);   /* "constant", "linear_decay", "cosine", "one_cycle" */
int config_sched_kind(const char *name);             /* or -1 */

enum budget_unit { BUDGET_STEPS, BUDGET_EPOCHS, BUDGET_SAMPLES, BUDGET_SECONDS };

typedef struct budget_spec {
    enum budget_unit unit;
    double amount;        /* > 0 */
} budget_spec;

/* Parses "5ep", "5epochs", "2000steps", "30s", "1e6samples" into *b. Returns 0, or -1 for text
 * that is none of those, a bare number among them (5 what?); b is then untouched. */
int config_parse_budget(const char *text, budget_spec *b);
/* Writes the budget as it parses back ("5ep", "2000steps", "30s", "60000samples"). */
void config_format_budget(const budget_spec *b, char *out, int len);

/* Whether a value of metric ("test_acc": at least; "test_loss": at most; else never) meets the
 * target. Both at float precision, the metrics' own: 9000 right of 10000 meets 0.90. */
int config_target_met(const char *metric, double value, double target);

enum optim_kind { OPTIM_SGD, OPTIM_ADAMW };

typedef struct optim_spec {
    enum optim_kind kind;
    float lr;             /* base learning rate */
    float momentum;       /* sgd; default 0.9 */
    int nesterov;         /* sgd */
    float weight_decay;   /* decoupled, applied to the "decay" group only */
    float beta1, beta2, eps;  /* adamw: 0.9, 0.999, 1e-8 */
    int decay_all;        /* 1 = decay biases and norm parameters too (default 0) */
} optim_spec;

#define CONFIG_MAX_PLUGINS 32
#define CONFIG_MAX_PARAMS 16

typedef struct plugin_spec {
    char name[64];
    int n_params;
    char keys[CONFIG_MAX_PARAMS][32];
    char values[CONFIG_MAX_PARAMS][64];   /* as written; the plugin bridge validates and types them */
} plugin_spec;

typedef struct train_config {
    char recipe_path[512];   /* file it came from ("" when built in code) */
    char dataset[32];        /* registry name: "fashion-mnist", "synthetic", ... */
    char data_path[256];     /* folder holding the dataset's files; "" = the usual places */
    int crop_pad, flip;      /* augmentation */
    int context;             /* text datasets: tokens per example (default 64) */
    int n_layers;
    layer_spec *layers;      /* (n_layers) owned */
    optim_spec optim;
    sched_spec schedule;
    int batch;
    budget_spec budget;
    int eval_every_steps;    /* 0 = evaluate at each epoch end */
    int eval_every_epochs;   /* default 1 when eval_every_steps is 0 */
    char target_metric[16];  /* "test_acc" or "test_loss"; "" = no target */
    double target_value;
    uint64_t seed;
    int threads;             /* 0 = all cores */
    int device;              /* a device_kind (engine/tensor.h): DEVICE_CPU (default) or DEVICE_CUDA,
                              * opened by the caller (ops_pick) before trainer_new */
    int n_plugins;
    plugin_spec plugins[CONFIG_MAX_PLUGINS];
} train_config;

/* Sets every field to its default (no layers, sgd lr 0.05 momentum 0.9, linear_decay, batch 128,
 * 1 epoch, eval every epoch, seed 1, dataset "fashion-mnist"). */
void config_defaults(train_config *c);

/* Frees the layer arrays (recursively); c itself is the caller's. */
void config_free(train_config *c);

/* The name among names (n) nearest to word, when close enough to be a plausible typo ("mnsit" for
 * "mnist", a shared start such as "optimizer" for "optim"); else NULL. For "did you mean". */
const char *config_nearest_name(const char *word, const char *const *names, int n);

#endif
