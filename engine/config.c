/* Defaults and names for train_config; budget text parsing. */
#include "engine/config.h"
#include <stdio.h>
#include <stdlib.h>
#include <limits.h>
#include <string.h>

static const char *layer_names[LAYER_KIND_COUNT] = {
    "linear", "conv", "maxpool", "avgpool", "gap", "batchnorm",
    "relu", "gelu", "dropout", "flatten", "residual", "se", "embed", "layernorm", "attention",
};

static const char *sched_names[SCHED_KIND_COUNT] = {
    "constant", "linear_decay", "cosine", "one_cycle",
};

static int find_name(const char *const *names, int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(names[i], name)) return i;
    return -1;
}

const char *config_layer_name(enum layer_kind k)
{
    return (unsigned)k < LAYER_KIND_COUNT ? layer_names[k] : NULL;
}

int config_layer_kind(const char *name) { return find_name(layer_names, LAYER_KIND_COUNT, name); }

void config_take_data_sizes(layer_spec *layers, int n, int classes)
{
    for (int i = 0; i < n; i++) {
        layer_spec *l = &layers[i];
        if ((l->kind == LAYER_LINEAR || l->kind == LAYER_CONV) && l->out == CONFIG_CLASSES) l->out = classes;
        if (l->kind == LAYER_EMBED && l->vocab == 0) l->vocab = classes;
    }
}

const char *config_sched_name(enum sched_kind k)
{
    return (unsigned)k < SCHED_KIND_COUNT ? sched_names[k] : NULL;
}

int config_sched_kind(const char *name) { return find_name(sched_names, SCHED_KIND_COUNT, name); }

int config_parse_budget(const char *text, budget_spec *b)
{
    static const struct { const char *suffix; enum budget_unit unit; } units[] = {
        {"steps", BUDGET_STEPS}, {"step", BUDGET_STEPS},   /* a bare number has no unit: refused */
        {"ep", BUDGET_EPOCHS}, {"epochs", BUDGET_EPOCHS}, {"epoch", BUDGET_EPOCHS},
        {"s", BUDGET_SECONDS}, {"sec", BUDGET_SECONDS}, {"seconds", BUDGET_SECONDS},
        {"samples", BUDGET_SAMPLES},
    };
    if (!text || !*text) return -1;
    char *end;
    double v = strtod(text, &end);
    if (end == text || !(v > 0) || v > 1e15) return -1;
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (!strcmp(end, units[i].suffix)) {
            b->unit = units[i].unit;
            b->amount = v;
            return 0;
        }
    }
    return -1;
}

void config_format_budget(const budget_spec *b, char *out, int len)
{
    static const char *suffix[] = {"steps", "ep", "samples", "s"};
    snprintf(out, (size_t)len, "%g%s", b->amount, suffix[b->unit]);
}

int config_target_met(const char *metric, double value, double target)
{
    float v = (float)value, t = (float)target;   /* not NaN: comparisons with NaN are false */
    if (!strcmp(metric, "test_acc")) return v >= t;
    if (!strcmp(metric, "test_loss")) return v <= t;
    return 0;
}

void config_defaults(train_config *c)
{
    memset(c, 0, sizeof *c);
    strcpy(c->dataset, "fashion-mnist");
    c->optim = (optim_spec){ .kind = OPTIM_SGD, .lr = 0.05f, .momentum = 0.9f, .nesterov = 0,
                             .weight_decay = 0, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f };
    c->schedule = (sched_spec){ .kind = SCHED_LINEAR_DECAY, .peak = 10, .pct_up = 0.25f };
    c->batch = 128;
    c->context = 64;
    c->budget = (budget_spec){ BUDGET_EPOCHS, 1 };
    c->eval_every_epochs = 1;
    c->seed = 1;
}

static void free_layers(layer_spec *l, int n)
{
    for (int i = 0; i < n; i++) free_layers(l[i].inner, l[i].n_inner);
    free(l);
}

void config_free(train_config *c)
{
    free_layers(c->layers, c->n_layers);
    c->layers = NULL;
    c->n_layers = 0;
}

static int edit_distance(const char *a, const char *b)
{
    int row[64];
    size_t la = strlen(a), lb = strlen(b);
    if (la >= 64 || lb >= 64) return INT_MAX;
    for (size_t j = 0; j <= lb; j++) row[j] = (int)j;
    for (size_t i = 1; i <= la; i++) {
        int diag = row[0];
        row[0] = (int)i;
        for (size_t j = 1; j <= lb; j++) {
            int up = row[j], best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best) best = up + 1;
            if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

const char *config_nearest_name(const char *word, const char *const *names, int n)
{
    const char *best = NULL;
    int best_d = INT_MAX, len = (int)strlen(word), limit = len < 4 ? 1 : len / 2;
    for (int i = 0; i < n; i++) {
        size_t short_len = strlen(names[i]) < (size_t)len ? strlen(names[i]) : (size_t)len;
        /* "optimizer" for optim, "padding" for pad: a shared start counts as close */
        int d = short_len >= 2 && !strncmp(word, names[i], short_len) ? 1 : edit_distance(word, names[i]);
        if (d < best_d) best_d = d, best = names[i];
    }
    return best_d <= limit ? best : NULL;
}
