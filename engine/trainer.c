/* The training loop of DESIGN.md: events in order, a clock that excludes evaluation and pauses,
 * per-phase timing, metric records to memory and to the run folder, summary at every evaluation. */
#include "engine/trainer.h"
#include "engine/check.h"
#include "engine/cpu/cpu.h"
#include "engine/version.h"
#include <cblas.h>
#include <cjson/cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>


static const char *event_names[EV_COUNT] = {
    "fit_start", "epoch_start", "batch_start", "before_forward", "after_forward", "before_loss",
    "after_loss", "after_backward", "before_step", "after_step", "epoch_end", "eval_start",
    "eval_end", "fit_end",
};
static const char *phase_names[PHASE_COUNT] = {
    "data_wait", "forward", "backward", "optimizer", "plugins", "eval",
};
static const char *status_names[] = { "ready", "running", "done", "stopped", "failed" };

int trainer_event_reversed(trainer_event e)
{
    return e == EV_AFTER_FORWARD || e == EV_AFTER_LOSS || e == EV_AFTER_BACKWARD || e == EV_AFTER_STEP ||
           e == EV_EPOCH_END || e == EV_EVAL_END || e == EV_FIT_END;
}

const char *trainer_event_name(trainer_event e) { return (unsigned)e < EV_COUNT ? event_names[e] : "?"; }
const char *trainer_phase_name(int p) { return (unsigned)p < PHASE_COUNT ? phase_names[p] : "?"; }
const char *trainer_status_name(run_status s) { return status_names[s]; }

double trainer_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Moves the model and the step tensors to device d and uploads the dataset there. */
static int use_device(trainer *t, device_kind d, char *err, size_t errlen)
{
    if (ops_open(d, err, errlen)) return -1;
    nn_to_device(t->model, d);
    tensor *step[] = { &t->x, &t->targets, &t->weight, &t->loss, &t->dlogits, &t->scratch,
                       &t->tok_weight, &t->tok_loss, &t->ones };
    for (size_t i = 0; i < sizeof step / sizeof *step; i++) step[i]->device = d;
    t->dd = calloc(1, sizeof *t->dd);
    CHECK(t->dd, "out of memory");
    return devdata_open(t->dd, t->data, t->model->ops, err, errlen);
}

/* Text data: the model must start by embedding the token ids, into a table that holds every one
 * (one that leaves its vocabulary to the data gets the dataset's: config_take_data_sizes). */
static int text_model(trainer *t, char *err, size_t errlen)
{
    const train_config *cfg = t->cfg;
    if (cfg->n_layers < 1 || cfg->layers[0].kind != LAYER_EMBED) {
        snprintf(err, errlen, "%s is text: the model must start with nn.embed(dim), which reads token ids",
                 t->data->name);
        return -1;
    }
    int vocab = cfg->layers[0].vocab;
    if (vocab && vocab < t->data->classes) {   /* an id past the table would read outside it */
        snprintf(err, errlen, "embed's vocab %d is smaller than the %d characters of %s (leave vocab out: "
                 "the data's is used)", vocab, t->data->classes, t->data->name);
        return -1;
    }
    return 0;
}

trainer *trainer_new(const train_config *cfg, const data_set *ds, char *err, size_t errlen)
{
    trainer *t = calloc(1, sizeof *t);
    CHECK(t, "out of memory");
    t->cfg = cfg;
    t->aug = (data_augment){ cfg->crop_pad, cfg->flip ? DATA_FLIP_RANDOM : DATA_FLIP_OFF };
    t->data = ds;
    pthread_mutex_init(&t->mu, NULL);
    if (ds->tokens && text_model(t, err, errlen)) goto fail;
    if (cfg->n_layers > 0) {   /* sizes left to the data (nn.classes), in the run's own copy of the layers */
        trainer_layer_spec(t, 0);
        config_take_data_sizes(t->specs, t->n_specs, ds->classes);
    }
    t->model = nn_build(t->specs ? t->specs : cfg->layers, cfg->n_layers, ds->h, ds->w, ds->c, cfg->seed,
                        err, errlen);
    if (!t->model) goto fail;
    if (ds->tokens && t->model->out_features != ds->tokens * ds->classes) {
        snprintf(err, errlen, "a model of %s must end with %d outputs (its vocabulary) at each of %d "
                 "positions, as conv(%d, 1) or nn.conv(nn.classes, 1) does; it ends with %d values an example",
                 ds->name, ds->classes, ds->tokens, ds->classes, t->model->out_features);
        goto fail;
    }
    if (!ds->tokens && t->model->out_features != ds->classes) {
        snprintf(err, errlen, "the model ends with %d outputs but %s has %d classes (nn.linear(nn.classes) "
                 "takes them from the data)",
                 t->model->out_features, ds->name, ds->classes);
        goto fail;
    }
    if (cfg->batch > ds->train.n) {
        snprintf(err, errlen, "batch %d is larger than the %d training examples of %s",
                 cfg->batch, ds->train.n, ds->name);
        goto fail;
    }
    if (cfg->device != DEVICE_CPU && use_device(t, (device_kind)cfg->device, err, errlen)) goto fail;
    optim_init(&t->opt, &cfg->optim, t->model);
    t->last_test_acc = t->last_test_loss = NAN;
    t->time_to_target = -1;
    t->steps_to_target = -1;
    return t;
fail:
    trainer_free(t);
    return NULL;
}

void trainer_free(trainer *t)
{
    if (!t) return;
    if (t->loader) data_loader_stop(t->loader);
    nn_free(t->model);
    free(t->specs);
    free(t->pool);
    tensor_free(&t->x); tensor_free(&t->targets); tensor_free(&t->weight);
    tensor_free(&t->loss); tensor_free(&t->dlogits); tensor_free(&t->scratch);
    tensor_free(&t->tok_weight); tensor_free(&t->tok_loss); tensor_free(&t->ones);
    if (t->dd) devdata_close(t->dd);
    free(t->dd);
    free(t->labels);
    data_batch_free(&t->held);
    free(t->rec);
    pthread_mutex_destroy(&t->mu);
    free(t);
}

int trainer_add_hook(trainer *t, trainer_hook_fn fn, void *ud)
{
    if (t->n_hooks == TRAINER_MAX_HOOKS) return -1;
    t->hooks[t->n_hooks].fn = fn;
    t->hooks[t->n_hooks++].ud = ud;
    return 0;
}

void trainer_set_log(trainer *t, runlog *log) { t->log = log; }
void trainer_pause(trainer *t, int paused) { atomic_store(&t->pause_req, paused); }
void trainer_stop(trainer *t) { atomic_store(&t->stop_req, 1); }

int trainer_fail(trainer *t, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t->error, sizeof t->error, fmt, ap);
    va_end(ap);
    t->status = RUN_FAILED;
    return -1;
}

/* Calls the hooks; after_* events and the closing events run in reverse order so a hook can undo
 * what it did. Their time is the plugins phase of the training clock, but at eval_start and
 * eval_end it is evaluation (run_eval times it). A step's clock covers the events inside it; the
 * others a method pays for (its set-up at fit_start, work at epoch_end, fit_end) are added here. */
static int emit(trainer *t, trainer_event ev)
{
    if (!t->n_hooks) return 0;
    int reverse = trainer_event_reversed(ev);
    double t0 = trainer_now();
    int rc = 0;
    for (int k = 0; k < t->n_hooks && !rc; k++) {
        int i = reverse ? t->n_hooks - 1 - k : k;
        rc = t->hooks[i].fn(t, ev, t->hooks[i].ud);
    }
    double dt = trainer_now() - t0;
    if (ev != EV_EVAL_START && ev != EV_EVAL_END) t->phase[PHASE_PLUGINS] += dt;
    if (ev == EV_FIT_START || ev == EV_EPOCH_END || ev == EV_FIT_END) t->train_seconds += dt;
    if (rc && t->status != RUN_FAILED) trainer_fail(t, "a hook failed at %s", trainer_event_name(ev));
    return rc;
}

/* v as metrics.jsonl writes it: 7 significant digits, or null where it is not finite (an infinite
 * test loss, a NaN loss: JSON has no such numbers, and a reader would drop the whole line). */
static const char *json_number(char out[32], double v)
{
    if (isfinite(v)) snprintf(out, 32, "%.7g", v);
    else snprintf(out, 32, "null");
    return out;
}

static void push_record(trainer *t, const trainer_record *r)
{
    pthread_mutex_lock(&t->mu);
    if (t->n_rec == t->cap_rec) {
        int cap = t->cap_rec ? t->cap_rec * 2 : 1024;
        trainer_record *n = realloc(t->rec, (size_t)cap * sizeof *n);
        CHECK(n, "out of memory");
        t->rec = n;
        t->cap_rec = cap;
    }
    t->rec[t->n_rec++] = *r;
    pthread_mutex_unlock(&t->mu);
    if (!t->log) return;
    char line[1024], a[32], b[32];
    int n = snprintf(line, sizeof line,
                     "{\"step\":%ld,\"epoch\":%.6g,\"samples\":%ld,\"seconds\":%.6f,\"train_loss\":%s,"
                     "\"lr\":%s", r->step, r->epoch, r->samples, r->seconds, json_number(a, r->train_loss),
                     json_number(b, r->lr));
    if (r->is_eval) {
        n += snprintf(line + n, sizeof line - (size_t)n, ",\"test_loss\":%s,\"test_acc\":%s",
                      json_number(a, r->test_loss), json_number(b, r->test_acc));
    } else {
        n += snprintf(line + n, sizeof line - (size_t)n, ",\"phase_seconds\":{");
        for (int p = 0; p < PHASE_EVAL; p++)   /* 4 digits: finer than the clock's jitter */
            n += snprintf(line + n, sizeof line - (size_t)n, "%s\"%s\":%.4g", p ? "," : "", phase_names[p],
                          r->phase[p]);
        n += snprintf(line + n, sizeof line - (size_t)n, "}");
        for (int i = 0; i < t->n_metric_names && n < (int)sizeof line - 64; i++)
            if (r->extra_mask & (1u << i))
                n += snprintf(line + n, sizeof line - (size_t)n, ",\"%s\":%s", t->metric_names[i],
                              json_number(a, r->extra[i]));
    }
    snprintf(line + n, sizeof line - (size_t)n, "}");
    runlog_metric(t->log, line);
}

int trainer_series(trainer *t, int from, trainer_record *out, int max)
{
    pthread_mutex_lock(&t->mu);
    int n = t->n_rec - from;
    if (n > max) n = max;
    if (n < 0) n = 0;
    if (n) memcpy(out, t->rec + from, (size_t)n * sizeof *out);
    pthread_mutex_unlock(&t->mu);
    return n;
}

int trainer_tokens(const trainer *t) { return t->data->tokens ? t->x.shape[2] : 1; }

static void ensure_batch(trainer *t, int n)
{
    int k = t->data->classes, rows = n * data_labels_per(t->data);
    if (rows > t->labels_cap) {
        free(t->labels);
        t->labels = malloc((size_t)rows * sizeof *t->labels);
        CHECK(t->labels, "out of memory");
        t->labels_cap = rows;
    }
    tensor_resize2(&t->targets, rows, k);
    tensor_resize(&t->weight, 1, &n);
    tensor_resize(&t->loss, 1, &n);
}

/* The loss of logits (n examples of len rows each) against targets: per-example losses into loss
 * (n), gradients into dlogits (NULL = none), weighted by weight (n; NULL = 1), the rows whose
 * argmax is their label counted into *correct (labels host, NULL = not counted). For text, each
 * token is a row of the softmax: an example's weight goes to each of its tokens, its loss is the
 * mean of theirs, and the returned mean is over all tokens. */
static float batch_loss(trainer *t, const float *logits, const float *targets, const float *weight, int n,
                        int len, float *loss, float *dlogits, const int *labels, int *correct)
{
    const engine_ops *o = t->model->ops;
    int k = t->data->classes, rows = n * len;
    if (len == 1) return o->softmax_xent(logits, targets, weight, n, k, loss, dlogits, labels, correct);
    tensor_resize(&t->tok_loss, 1, &rows);
    if (t->ones.n != (size_t)len) {
        tensor_resize(&t->ones, 1, &len);
        tensor_fill(&t->ones, 1.0f);
    }
    const float *tw = NULL;
    if (weight) {   /* (n, len) = weight (n, 1) times ones (1, len) */
        tensor_resize(&t->tok_weight, 1, &rows);
        o->sgemm(0, 0, n, len, 1, 1, weight, 1, t->ones.data, len, 0, t->tok_weight.data, len);
        tw = t->tok_weight.data;
    }
    float mean = o->softmax_xent(logits, targets, tw, rows, k, t->tok_loss.data, dlogits, labels, correct);
    /* loss (n) = tok_loss (n, len) times ones (len) / len */
    o->sgemm(0, 0, n, 1, len, 1.0f / (float)len, t->tok_loss.data, len, t->ones.data, 1, 0, loss, 1);
    return mean;
}

int trainer_truncate(trainer *t, int len)
{
    int n = t->x.shape[0], cur = trainer_tokens(t), k = t->data->classes;
    if (!t->data->tokens || len < 1 || len > cur) return -1;
    if (len == cur) return 0;
    const engine_ops *o = t->model->ops;
    int row0 = 0, *cols = malloc((size_t)len * sizeof *cols);
    CHECK(cols, "out of memory");
    for (int j = 0; j < len; j++) cols[j] = j;
    /* each example's first len positions, through a scratch copy: take_grid does not work in place */
    tensor_resize(&t->scratch, 1, (int[]){ (int)(t->targets.n > t->x.n ? t->targets.n : t->x.n) });
    o->take_grid(t->x.data, n, 1, cur, 1, &row0, 1, cols, len, t->scratch.data);
    tensor_resize4(&t->x, n, 1, len, 1);
    o->copy(t->x.data, t->scratch.data, t->x.n * sizeof(float));
    o->take_grid(t->targets.data, n, 1, cur, k, &row0, 1, cols, len, t->scratch.data);
    tensor_resize2(&t->targets, n * len, k);
    o->copy(t->targets.data, t->scratch.data, t->targets.n * sizeof(float));
    for (int i = 0; i < n; i++)
        memmove(t->labels + (size_t)i * len, t->labels + (size_t)i * cur, (size_t)len * sizeof *t->labels);
    free(cols);
    return 0;
}

static void one_hot(tensor *targets, const int *labels, int n, int k)
{
    tensor_zero(targets);
    for (int i = 0; i < n; i++) targets->data[(size_t)i * k + labels[i]] = 1.0f;
}

/* Forward passes in evaluation mode over a whole split: mean loss and accuracy, and each
 * example's loss into per_example (host, split->n) when given. */
const int *trainer_gather(trainer *t, int which, const int *idx, int n, data_batch *b, tensor *x,
                          tensor *targets)
{
    if (t->dd) {
        devdata_gather(t->dd, which, idx, NULL, n, x, targets);
        return t->dd->batch_labels;
    }
    int k = t->data->classes, per = data_labels_per(t->data);
    data_gather(t->data, which == DEVDATA_TEST ? &t->data->test : &t->data->train, idx, n, b);
    tensor_view(x, b->x, 4, (int[]){ n, b->h, b->w, b->c });
    tensor_resize2(targets, n * per, k);
    one_hot(targets, b->labels, n * per, k);
    return b->labels;
}

static void score_split(trainer *t, int which, float *per_example, float *loss_out, float *acc_out)
{
    const data_split *test = which == DEVDATA_TEST ? &t->data->test : &t->data->train;
    enum { EVAL_BATCH = 500 };
    int idx[EVAL_BATCH], per = data_labels_per(t->data);
    data_batch b = {0};
    device_kind d = t->model->device;
    tensor x = { .device = d }, targets = { .device = d }, loss = { .device = d };
    double total = 0;
    long right = 0;
    for (int start = 0; start < test->n; start += EVAL_BATCH) {
        int n = test->n - start < EVAL_BATCH ? test->n - start : EVAL_BATCH;
        for (int i = 0; i < n; i++) idx[i] = start + i;
        const int *labels = trainer_gather(t, which, idx, n, &b, &x, &targets);
        const tensor *out = nn_forward(t->model, &x, 0);
        CHECK(out, "evaluation forward failed: %s", t->model->err);
        tensor_resize(&loss, 1, &n);
        int correct;
        float mean = batch_loss(t, out->data, targets.data, NULL, n, per, loss.data, NULL, labels, &correct);
        total += (double)mean * n;
        right += correct;
        if (per_example) t->model->ops->download(per_example + start, loss.data, (size_t)n * sizeof(float));
    }
    data_batch_free(&b);
    tensor_free(&x);
    tensor_free(&targets);
    tensor_free(&loss);
    *loss_out = (float)(total / test->n);
    *acc_out = (float)((double)right / ((double)test->n * per));
}

void trainer_evaluate(trainer *t, float *loss_out, float *acc_out)
{
    score_split(t, DEVDATA_TEST, NULL, loss_out, acc_out);
}

void trainer_score_train(trainer *t, float *losses)
{
    float loss, acc;
    score_split(t, DEVDATA_TRAIN, losses, &loss, &acc);
}

static long budget_steps(const trainer *t);

static data_loader *start_loader(trainer *t, int first_epoch)
{
    data_pool pool = { t->pool, t->n_pool, first_epoch };
    return data_loader_start_pool(t->data, t->cfg->batch, t->aug, t->cfg->seed, t->dd != NULL, &pool);
}

int trainer_keep_examples(trainer *t, const int *idx, int n, char *err, size_t errlen)
{
    if (n < t->cfg->batch) {
        snprintf(err, errlen, "%d examples are fewer than a batch of %d", n, t->cfg->batch);
        return -1;
    }
    for (int i = 0; i < n; i++)
        if (idx[i] < 0 || idx[i] >= t->data->train.n) {
            snprintf(err, errlen, "example %d is outside the %d training examples", idx[i], t->data->train.n);
            return -1;
        }
    int *copy = malloc((size_t)n * sizeof *copy);
    CHECK(copy, "out of memory");
    memcpy(copy, idx, (size_t)n * sizeof *copy);
    free(t->pool);
    t->pool = copy;
    t->n_pool = n;
    t->steps_per_epoch = n / t->cfg->batch;
    if (!t->loader) {   /* fit_start: trainer_run starts the loader on the pool */
        t->total_steps = budget_steps(t);
        return 0;
    }
    data_loader_stop(t->loader);   /* discards the batches it had made ahead */
    t->cur = NULL;                 /* it pointed into that loader's ring */
    t->loader = start_loader(t, t->epoch + 1);
    CHECK(t->loader, "cannot restart the data loader");
    const budget_spec *b = &t->cfg->budget;
    if (b->unit == BUDGET_EPOCHS) {   /* the epochs left, at the pool's steps an epoch */
        double left = b->amount - (t->epoch + 1);
        t->total_steps = t->step + (left > 0 ? (long)llround(left * t->steps_per_epoch) : 0);
        if (t->total_steps < 1) t->total_steps = 1;
    }
    return 0;
}

static int target_met(const trainer *t)
{
    const train_config *c = t->cfg;
    if (!c->target_metric[0]) return 0;
    double v = !strcmp(c->target_metric, "test_loss") ? t->last_test_loss : t->last_test_acc;
    return config_target_met(c->target_metric, v, c->target_value);
}

static int run_eval(trainer *t)
{
    double t0 = trainer_now();
    t->model->ops->sync();   /* work still queued on a GPU belongs to the training clock */
    t->train_seconds += trainer_now() - t0;
    t0 = trainer_now();
    if (emit(t, EV_EVAL_START)) return -1;
    trainer_evaluate(t, &t->last_test_loss, &t->last_test_acc);
    if (emit(t, EV_EVAL_END)) return -1;
    t->phase[PHASE_EVAL] += trainer_now() - t0;
    trainer_record r = { .step = t->step, .epoch = (double)t->samples / t->data->train.n,
                         .samples = t->samples, .seconds = t->train_seconds,
                         .train_loss = t->batch_loss, .lr = t->opt.groups[0].lr, .is_eval = 1,
                         .test_loss = t->last_test_loss, .test_acc = t->last_test_acc };
    push_record(t, &r);
    if (t->time_to_target < 0 && target_met(t)) {
        t->time_to_target = t->train_seconds;
        t->steps_to_target = t->step;
    }
    if (t->log)
        runlog_log(t->log, "eval step %ld: test_loss %.4f test_acc %.4f after %.2fs", t->step,
                   t->last_test_loss, t->last_test_acc, t->train_seconds);
    trainer_write_summary(t);
    return 0;
}

static void update_progress(trainer *t)
{
    const budget_spec *b = &t->cfg->budget;
    if (b->unit == BUDGET_SECONDS) t->progress = t->train_seconds / b->amount;
    else t->progress = (double)t->step / (double)t->total_steps;
    if (t->progress > 1) t->progress = 1;
}

static long budget_steps(const trainer *t)
{
    const budget_spec *b = &t->cfg->budget;
    double steps;
    switch (b->unit) {
    case BUDGET_STEPS:   steps = b->amount; break;
    case BUDGET_EPOCHS:  steps = b->amount * t->steps_per_epoch; break;
    case BUDGET_SAMPLES: steps = ceil(b->amount / t->cfg->batch); break;
    default:             return 0;
    }
    return steps < 1 ? 1 : (long)llround(steps);
}

static void set_lr(trainer *t)
{
    float f = sched_factor(&t->cfg->schedule, t->progress);
    for (int g = 0; g < OPTIM_GROUPS; g++)
        t->opt.groups[g].lr = t->cfg->optim.lr * f * t->opt.groups[g].lr_scale;
}

/* One training step on the next batch. Returns 1 when the budget is spent, 0 to go on, -1 failed. */
/* The next batch: a held copy while a data-echoing request lasts, else the loader's. */
static const data_batch *next_batch(trainer *t, double *wait)
{
    if (t->echo_left > 0) {
        t->echo_left--;
        *wait = 0;
        t->echoed = 1;
        return &t->held;
    }
    t->echoed = 0;
    return t->cur = data_loader_next(t->loader, wait);
}

int trainer_echo(trainer *t, int times)
{
    if (times < 0 || !t->cur) return -1;
    if (t->echoed) return 0;   /* already an echo: the count in force decides */
    data_batch_copy(&t->held, t->cur);
    t->echo_left = times;
    return 0;
}

int trainer_select(trainer *t, const int *idx, int n)
{
    int old = t->x.shape[0], len = trainer_tokens(t), k = t->data->classes * len;
    if (n < 1 || n > old) return -1;
    for (int i = 0; i < n; i++)
        if (idx[i] < 0 || idx[i] >= old) return -1;
    size_t row = t->x.n / (size_t)old;
    const engine_ops *o = t->model->ops;
    o->select_rows(t->x.data, row, idx, n);
    o->select_rows(t->targets.data, (size_t)k, idx, n);
    o->select_rows(t->weight.data, 1, idx, n);
    int *lab = malloc((size_t)n * len * sizeof *lab);
    CHECK(lab, "out of memory");
    for (int i = 0; i < n; i++) memcpy(lab + (size_t)i * len, t->labels + (size_t)idx[i] * len, (size_t)len * sizeof *lab);
    memcpy(t->labels, lab, (size_t)n * len * sizeof(int));
    free(lab);
    t->x.shape[0] = n;
    t->x.n = (size_t)n * row;
    t->targets.shape[0] = n * len;
    t->targets.n = (size_t)n * k;
    t->weight.shape[0] = n;
    t->weight.n = (size_t)n;
    t->loss.shape[0] = n;
    t->loss.n = (size_t)n;
    return 0;
}

int trainer_score(trainer *t, float *losses)
{
    int n = t->x.shape[0], len = trainer_tokens(t);
    const tensor *out = nn_forward(t->model, &t->x, 0);
    if (!out) return trainer_fail(t, "scoring pass: %s", t->model->err);
    const engine_ops *o = t->model->ops;
    if (t->dd) {
        tensor_resize(&t->scratch, 1, &n);
        batch_loss(t, out->data, t->targets.data, NULL, n, len, t->scratch.data, NULL, NULL, NULL);
        o->download(losses, t->scratch.data, (size_t)n * sizeof(float));
    } else {
        batch_loss(t, out->data, t->targets.data, NULL, n, len, losses, NULL, NULL, NULL);
    }
    return 0;
}

/* Labels for the step's accuracy count: host ones on the CPU; none on a device (the count is only
 * a by-product there, and hooks may have reordered the rows). */
static const int *step_labels(const trainer *t) { return t->dd ? NULL : t->labels; }

/* The loss of the step's logits against its targets, weighted by its weights: per-sample losses
 * into t->loss and their gradient into t->dlogits. Returns the mean loss. */
static float step_loss(trainer *t)
{
    int n = t->logits->shape[0];   /* a hook may have changed the batch */
    tensor_resize(&t->dlogits, t->logits->ndim, t->logits->shape);   /* as the last layer reads it */
    return batch_loss(t, t->logits->data, t->targets.data, t->weight.data, n, trainer_tokens(t), t->loss.data,
                      t->dlogits.data, step_labels(t), &t->batch_correct);
}

void trainer_reloss(trainer *t) { t->batch_loss = step_loss(t); }

/* Forward, loss and backward of the current batch into fresh gradients. */
static int forward_backward(trainer *t)
{
    t->logits = nn_forward(t->model, &t->x, 1);
    if (!t->logits) return trainer_fail(t, "step %ld: %s", t->step + 1, t->model->err);
    float loss = step_loss(t);
    if (!isfinite(loss)) return trainer_fail(t, "step %ld: loss is not finite in a recomputed pass", t->step + 1);
    nn_zero_grad(t->model);
    nn_backward(t->model, &t->dlogits);
    return 0;
}

int trainer_regrad(trainer *t) { return forward_backward(t); }

int trainer_insert_layer(trainer *t, int pos, const layer_spec *spec, char *err, size_t errlen)
{
    const layer_spec *cur = t->specs ? t->specs : t->cfg->layers;
    int n = t->specs ? t->n_specs : t->cfg->n_layers;
    if (t->step != 0) {
        snprintf(err, errlen, "layers can be inserted only at fit_start");
        return -1;
    }
    if (pos < 0 || pos > n || spec->kind == LAYER_RESIDUAL) {
        snprintf(err, errlen, pos < 0 || pos > n ? "insert position %d is outside 1..%d" : "a residual block cannot be inserted",
                 pos + 1, n + 1);
        return -1;
    }
    layer_spec *specs = malloc((size_t)(n + 1) * sizeof *specs);
    CHECK(specs, "out of memory");
    memcpy(specs, cur, (size_t)pos * sizeof *specs);
    specs[pos] = *spec;
    memcpy(specs + pos + 1, cur + pos, (size_t)(n - pos) * sizeof *specs);
    const data_set *ds = t->data;
    nn_model *m = nn_build(specs, n + 1, ds->h, ds->w, ds->c, t->cfg->seed, err, errlen);
    if (m && m->out_features != ds->classes * data_labels_per(ds)) {
        snprintf(err, errlen, "with the new layer the model ends with %d outputs, not %d", m->out_features,
                 ds->classes * data_labels_per(ds));
        nn_free(m);
        m = NULL;
    }
    if (!m) {
        free(specs);
        return -1;
    }
    if (t->model->device != DEVICE_CPU) nn_to_device(m, t->model->device);
    nn_free(t->model);
    t->model = m;
    free(t->specs);
    t->specs = specs;   /* inner arrays of residual blocks still belong to the config */
    t->n_specs = n + 1;
    optim_init(&t->opt, &t->cfg->optim, m);
    set_lr(t);
    return 0;
}

layer_spec *trainer_layer_spec(trainer *t, int pos)
{
    int n = t->specs ? t->n_specs : t->cfg->n_layers;
    if (pos < 0 || pos >= n) return NULL;
    if (!t->specs) {   /* the run's own copy; inner arrays of residual blocks stay the config's */
        t->specs = malloc((size_t)n * sizeof *t->specs);
        CHECK(t->specs, "out of memory");
        memcpy(t->specs, t->cfg->layers, (size_t)n * sizeof *t->specs);
        t->n_specs = n;
    }
    return &t->specs[pos];
}

int trainer_metric(trainer *t, const char *name, float value)
{
    static const char *const taken[] = { "step", "epoch", "samples", "seconds", "train_loss", "lr",
                                         "test_loss", "test_acc", "phase_seconds" };   /* push_record's */
    size_t len = strlen(name);
    if (!len || len >= sizeof t->metric_names[0]) return -1;
    for (size_t i = 0; i < sizeof taken / sizeof *taken; i++)
        if (!strcmp(name, taken[i])) return -1;
    for (size_t i = 0; i < len; i++)
        if (!(name[i] == '_' || (name[i] >= 'a' && name[i] <= 'z') || (name[i] >= 'A' && name[i] <= 'Z') ||
              (i && name[i] >= '0' && name[i] <= '9')))
            return -1;
    int k = 0;
    while (k < t->n_metric_names && strcmp(t->metric_names[k], name)) k++;
    if (k == t->n_metric_names) {
        if (k == TRAINER_MAX_EXTRA) return -1;
        pthread_mutex_lock(&t->mu);
        memcpy(t->metric_names[k], name, len + 1);
        t->n_metric_names++;
        pthread_mutex_unlock(&t->mu);
    }
    t->step_extra[k] = value;
    t->step_mask |= 1u << k;
    return 0;
}

int trainer_metric_names(trainer *t, char names[][32], int max)
{
    pthread_mutex_lock(&t->mu);
    int n = t->n_metric_names < max ? t->n_metric_names : max;
    memcpy(names, t->metric_names, (size_t)n * sizeof t->metric_names[0]);
    pthread_mutex_unlock(&t->mu);
    return n;
}
static int train_step(trainer *t)
{
    double t0 = trainer_now(), wait, tp;
    const data_batch *b = next_batch(t, &wait);
    t->phase[PHASE_DATA] += wait;
    int n = b->n, k = t->data->classes, per = data_labels_per(t->data);
    if (b->index == 0 && !t->echoed) {
        t->epoch = b->epoch;
        if (emit(t, EV_EPOCH_START)) return -1;
    }
    ensure_batch(t, n);
    memcpy(t->labels, b->labels, (size_t)n * per * sizeof *t->labels);
    if (t->dd) {   /* the batch is gathered and augmented on the device */
        devdata_gather(t->dd, DEVDATA_TRAIN, b->idx, b->aug, n, &t->x, &t->targets);
    } else {
        tensor_resize4(&t->x, n, b->h, b->w, b->c);
        memcpy(t->x.data, b->x, t->x.n * sizeof(float));
        one_hot(&t->targets, t->labels, n * per, k);
    }
    tensor_fill(&t->weight, 1.0f);
    if (emit(t, EV_BATCH_START) || emit(t, EV_BEFORE_FORWARD)) return -1;

    tp = trainer_now();
    t->logits = nn_forward(t->model, &t->x, 1);
    if (!t->logits) return trainer_fail(t, "step %ld: %s", t->step + 1, t->model->err);
    t->phase[PHASE_FORWARD] += trainer_now() - tp;
    if (emit(t, EV_AFTER_FORWARD) || emit(t, EV_BEFORE_LOSS)) return -1;

    tp = trainer_now();
    n = t->logits->shape[0];   /* a hook may have changed the batch */
    t->batch_loss = step_loss(t);
    t->phase[PHASE_FORWARD] += trainer_now() - tp;
    if (!isfinite(t->batch_loss))
        return trainer_fail(t, "step %ld: training loss is %s; the run is stopped (lr %g may be too high)",
                            t->step + 1, isnan(t->batch_loss) ? "NaN" : "infinite", t->cfg->optim.lr);
    if (emit(t, EV_AFTER_LOSS)) return -1;

    tp = trainer_now();
    nn_zero_grad(t->model);
    nn_backward(t->model, &t->dlogits);
    t->phase[PHASE_BACKWARD] += trainer_now() - tp;
    if (emit(t, EV_AFTER_BACKWARD)) return -1;

    set_lr(t);
    if (emit(t, EV_BEFORE_STEP)) return -1;
    tp = trainer_now();
    optim_step(&t->opt, t->model);
    t->phase[PHASE_OPTIM] += trainer_now() - tp;
    t->step++;
    t->samples += n;
    /* after_step sees this step on the clock and in the budget spent, as ctx.step counts it */
    double t1 = trainer_now();
    t->train_seconds += t1 - t0;
    update_progress(t);
    if (emit(t, EV_AFTER_STEP)) return -1;

    t->train_seconds += trainer_now() - t1;
    update_progress(t);
    trainer_record r = { .step = t->step, .epoch = (double)t->samples / t->data->train.n,
                         .samples = t->samples, .seconds = t->train_seconds,
                         .train_loss = t->batch_loss, .lr = t->opt.groups[0].lr,
                         .extra_mask = t->step_mask };
    memcpy(r.extra, t->step_extra, sizeof r.extra);
    for (int p = 0; p < PHASE_EVAL; p++) {
        r.phase[p] = (float)(t->phase[p] - t->rec_phase[p]);
        t->rec_phase[p] = t->phase[p];
    }
    push_record(t, &r);
    t->step_mask = 0;

    int epoch_done = !t->echoed && t->echo_left == 0 && b->index == t->steps_per_epoch - 1;
    int spent = t->progress >= 1;
    if (epoch_done && emit(t, EV_EPOCH_END)) return -1;
    const train_config *c = t->cfg;
    int eval_due = c->eval_every_steps > 0 ? t->step % c->eval_every_steps == 0
                 : epoch_done && (t->epoch + 1) % (c->eval_every_epochs > 0 ? c->eval_every_epochs : 1) == 0;
    if (eval_due && !spent && run_eval(t)) return -1;
    return spent;
}

int trainer_run(trainer *t)
{
    const train_config *c = t->cfg;
    t->status = RUN_RUNNING;
    t->run_started = trainer_now();
    /* as the loader: a partial last batch is dropped; a pool chosen at fit_start changes this */
    t->steps_per_epoch = (t->pool ? t->n_pool : t->data->train.n) / c->batch;
    t->total_steps = budget_steps(t);
    if (t->log) runlog_log(t->log, "run started: %zu parameters, %d steps per epoch",
                           nn_param_count(t->model), t->steps_per_epoch);
    set_lr(t);
    int rc = emit(t, EV_FIT_START);
    if (!rc) {
        t->loader = start_loader(t, 0);
        if (!t->loader) rc = trainer_fail(t, "cannot start the data loader for batch %d", c->batch);
    }
    while (!rc) {
        if (atomic_load(&t->stop_req)) { t->status = RUN_STOPPED; break; }
        if (atomic_load(&t->pause_req)) { usleep(10000); continue; }
        rc = train_step(t);
        if (rc == 1) break;
    }
    if (t->status != RUN_FAILED && t->step > 0) rc = run_eval(t);
    if (t->status != RUN_FAILED) emit(t, EV_FIT_END);
    if (t->status == RUN_RUNNING) t->status = RUN_DONE;
    data_loader_stop(t->loader);
    t->loader = NULL;
    if (t->log) {
        if (t->status == RUN_FAILED) runlog_log(t->log, "run failed: %s", t->error);
        else runlog_log(t->log, "run %s after %ld steps, %.2fs of training", trainer_status_name(t->status),
                        t->step, t->train_seconds);
    }
    if (t->log && t->status != RUN_FAILED && t->step > 0) {   /* for distillation and inspection */
        size_t len;
        void *state = nn_state_pack(t->model, &len);
        runlog_write_bytes(t->log, "weights.bin", state, len);
        free(state);
    }
    trainer_write_summary(t);
    return t->status == RUN_FAILED ? -1 : 0;
}

/* ---- summary ------------------------------------------------------------------------------ */

void trainer_cpu_model(char *out, size_t len)
{
    snprintf(out, len, "unknown");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        char *colon = strchr(line, ':');
        if (!strncmp(line, "model name", 10) && colon) {
            colon += 2;
            colon[strcspn(colon, "\n")] = 0;
            snprintf(out, len, "%s", colon);
            break;
        }
    }
    fclose(f);
}

static cJSON *fingerprint(const trainer *t)
{
    cJSON *fp = cJSON_CreateObject();
    char buf[256];
    struct utsname u;
    trainer_cpu_model(buf, sizeof buf);
    cJSON_AddStringToObject(fp, "cpu", buf);
    cJSON_AddNumberToObject(fp, "cores", (double)sysconf(_SC_NPROCESSORS_ONLN));
    cJSON_AddNumberToObject(fp, "threads", cpu_threads());
    cJSON_AddNumberToObject(fp, "memory_gib", (double)sysconf(_SC_PHYS_PAGES) * sysconf(_SC_PAGESIZE) / 1073741824.0);
    if (!uname(&u)) {
        snprintf(buf, sizeof buf, "%s %s %s", u.sysname, u.release, u.machine);
        cJSON_AddStringToObject(fp, "os", buf);
        cJSON_AddStringToObject(fp, "host", u.nodename);
    }
    cJSON_AddStringToObject(fp, "device", ops_device_name(t->model->device));
    if (t->model->device == DEVICE_CUDA) cJSON_AddStringToObject(fp, "gpu", ops_cuda_describe());
    cJSON_AddStringToObject(fp, "blas", openblas_get_config());
    cJSON_AddStringToObject(fp, "compiler", "gcc " __VERSION__);
    cJSON_AddStringToObject(fp, "hasten", hasten_version);
    return fp;
}

static void add_number_or_null(cJSON *o, const char *key, double v, int have)
{
    if (have && isfinite(v)) cJSON_AddNumberToObject(o, key, v);
    else cJSON_AddNullToObject(o, key);
}

void trainer_write_summary(trainer *t)
{
    if (!t->log) return;
    const train_config *c = t->cfg;
    cJSON *s = cJSON_CreateObject();
    cJSON_AddNumberToObject(s, "version", RUN_SUMMARY_VERSION);
    cJSON_AddStringToObject(s, "status", trainer_status_name(t->status));
    if (t->status == RUN_FAILED) cJSON_AddStringToObject(s, "error", t->error);
    cJSON_AddStringToObject(s, "recipe", c->recipe_path);
    cJSON_AddStringToObject(s, "dataset", t->data->name);
    cJSON_AddStringToObject(s, "dataset_source", t->data->source);
    if (t->data->tokens) {   /* hex: a JSON number would round 64 bits */
        char hash[20];
        snprintf(hash, sizeof hash, "%016llx", (unsigned long long)t->data->vocab_hash);
        cJSON_AddStringToObject(s, "vocabulary", hash);
    }
    cJSON_AddNumberToObject(s, "seed", (double)c->seed);
    cJSON *plugins = cJSON_AddArrayToObject(s, "plugins");
    for (int i = 0; i < c->n_plugins; i++) {
        cJSON *p = cJSON_CreateObject(), *params = NULL;
        cJSON_AddStringToObject(p, "name", c->plugins[i].name);
        params = cJSON_AddObjectToObject(p, "params");
        for (int k = 0; k < c->plugins[i].n_params; k++)
            cJSON_AddStringToObject(params, c->plugins[i].keys[k], c->plugins[i].values[k]);
        cJSON_AddItemToArray(plugins, p);
    }
    cJSON_AddNumberToObject(s, "batch", c->batch);
    char budget[64];
    config_format_budget(&c->budget, budget, sizeof budget);
    cJSON_AddStringToObject(s, "budget", budget);
    add_number_or_null(s, "test_acc", t->last_test_acc, 1);
    add_number_or_null(s, "test_loss", t->last_test_loss, 1);
    cJSON_AddNumberToObject(s, "train_seconds", t->train_seconds);
    cJSON_AddNumberToObject(s, "samples_per_second", t->train_seconds > 0 ? t->samples / t->train_seconds : 0);
    cJSON_AddNumberToObject(s, "steps", (double)t->step);
    cJSON_AddNumberToObject(s, "samples", (double)t->samples);
    cJSON_AddNumberToObject(s, "epochs", (double)t->samples / t->data->train.n);
    cJSON_AddNumberToObject(s, "step_seconds", t->step ? t->train_seconds / t->step : 0);
    cJSON_AddNumberToObject(s, "parameters", (double)nn_param_count(t->model));
    struct rusage ru;
    if (!getrusage(RUSAGE_SELF, &ru)) cJSON_AddNumberToObject(s, "peak_rss_mib", ru.ru_maxrss / 1024.0);
    if (c->target_metric[0]) {
        cJSON *tg = cJSON_AddObjectToObject(s, "target");
        cJSON_AddNumberToObject(tg, c->target_metric, c->target_value);
    } else {
        cJSON_AddNullToObject(s, "target");
    }
    add_number_or_null(s, "time_to_target", t->time_to_target, t->time_to_target >= 0);
    add_number_or_null(s, "steps_to_target", (double)t->steps_to_target, t->steps_to_target >= 0);
    cJSON *ph = cJSON_AddObjectToObject(s, "phase_seconds");
    for (int p = 0; p < PHASE_COUNT; p++) cJSON_AddNumberToObject(ph, phase_names[p], t->phase[p]);
    cJSON_AddItemToObject(s, "fingerprint", fingerprint(t));
    char when[64];
    time_t now = time(NULL);
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S%z", localtime(&now));
    cJSON_AddStringToObject(s, "written_at", when);
    if (t->extra_summary[0]) {
        char wrapped[4200];
        snprintf(wrapped, sizeof wrapped, "{%s}", t->extra_summary);
        cJSON *extra = cJSON_Parse(wrapped);
        for (cJSON *e = extra ? extra->child : NULL; e; e = e->next)
            cJSON_AddItemToObject(s, e->string, cJSON_Duplicate(e, 1));
        cJSON_Delete(extra);
    }
    char *text = cJSON_Print(s);
    if (text) {
        runlog_write_file(t->log, "summary.json", text);
        free(text);
    }
    cJSON_Delete(s);
}
