/* The run list and the worker thread: queued runs train one at a time on the worker while the UI
 * thread copies their series (trainer_series) and step times (a hook's atomics), never waiting
 * on the trainer. Not for drawing, and not for run files (cli_run_open writes those). */
#include "tui/ui_runs.h"
#include "tui/ui_catalog.h"
#include "datasets/datasets.h"
#include "lua/recipe.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Share of the past in the train-loss smoothing: a time constant of about 20 steps. */
#define SMOOTH_WEIGHT 0.95
/* Seconds between reads of the live run's log.txt. */
#define TAIL_PERIOD 0.4

static const char *state_names[] = { "queued", "starting", "running", "done", "stopped", "failed" };

const char *ui_run_state_name(int s) { return (unsigned)s < 6 ? state_names[s] : "?"; }

int ui_run_append(ui_run *r, const trainer_record *rec, int n)
{
    if (n <= 0) return 0;
    if (r->n + n > r->cap) {
        int cap = r->cap ? r->cap : 1024;
        while (cap < r->n + n) cap *= 2;
        trainer_record *nr = realloc(r->rec, (size_t)cap * sizeof *nr);
        if (!nr) return -1;
        r->rec = nr;
        float *ns = realloc(r->smooth, (size_t)cap * sizeof *ns);
        if (!ns) return -1;
        r->smooth = ns;
        r->cap = cap;
    }
    if (r->n == 0) {
        ui_ema_init(&r->ema, SMOOTH_WEIGHT);
        r->target_idx = -1;
    }
    for (int i = 0; i < n; i++) {
        int k = r->n + i;
        r->rec[k] = rec[i];
        if (rec[i].is_eval) r->smooth[k] = k ? r->smooth[k - 1] : rec[i].train_loss;
        else r->smooth[k] = (float)ui_ema_push(&r->ema, rec[i].train_loss);
    }
    if (r->target_idx < 0) {
        int t = ui_target_index(r->rec + r->n, n, r->target_metric, r->target_value);
        if (t >= 0) r->target_idx = r->n + t;
    }
    r->n += n;
    return 0;
}

double ui_run_ttt(const ui_run *r)
{
    return r->target_idx >= 0 ? r->rec[r->target_idx].seconds : -1;
}

/* The training seconds r has trained without reaching the target, for a bound against the other
 * run's time to target other; -1 when it gives none. */
static double bound_span(const ui_run *r, double other)
{
    if (!r || !r->n || ui_run_ttt(r) >= 0) return -1;
    double span = r->rec[r->n - 1].seconds;
    return atomic_load(&r->state) >= UI_RUN_DONE || (other > 0 && span > other) ? span : -1;
}

double ui_run_speedup(const ui_run *r, const ui_run *base, char *out, size_t len)
{
    double mine = ui_run_ttt(r), theirs = base ? ui_run_ttt(base) : -1;
    return ui_format_speedup(theirs, bound_span(base, mine), mine, bound_span(r, theirs), out, len);
}

void ui_run_free(ui_run *r)
{
    if (!r) return;
    free(r->plugins);
    free(r->rec);
    free(r->smooth);
    free(r);
}

/* ---- the worker --------------------------------------------------------------------------- */

/* Copies what the UI shows out of the trainer on its own thread: six stores a step, no lock. */
static int live_hook(trainer *t, trainer_event ev, void *ud)
{
    ui_run *r = ud;
    if (ev != EV_AFTER_STEP && ev != EV_EVAL_END && ev != EV_FIT_START && ev != EV_FIT_END) return 0;
    for (int p = 0; p < PHASE_COUNT; p++)
        atomic_store_explicit(&r->live_phase[p], t->phase[p], memory_order_relaxed);
    atomic_store_explicit(&r->live_progress, t->progress, memory_order_relaxed);
    atomic_store_explicit(&r->live_total_steps, t->total_steps, memory_order_relaxed);
    return 0;
}

static void note_log(void *ud, const char *line) { ui_log_add(ud, UI_LOG_INFO, "%s", line); }

static void fail_run(ui_runs *q, ui_run *r, const char *msg)
{
    pthread_mutex_lock(&q->mu);
    snprintf(r->error, sizeof r->error, "%s", msg);
    r->finished = 1;
    atomic_store(&r->state, UI_RUN_FAILED);
    pthread_mutex_unlock(&q->mu);
    ui_log_add(q->log, UI_LOG_ERROR, "#%d %s failed: %.*s", r->id, r->name, (int)strcspn(msg, "\n"), msg);
}

void ui_runs_eval_cadence(const ui_runs *q, train_config *c)
{
    if (q->evals_per_epoch <= 0 || c->eval_every_steps > 0 || c->eval_every_epochs > 1) return;
    int steps = q->ds.train.n / c->batch / q->evals_per_epoch;
    c->eval_every_steps = steps > 0 ? steps : 1;
}

/* Sets up, trains and closes one run on the worker thread. */
static void run_one(ui_runs *q, ui_run *r)
{
    char err[1024];
    cli_run live;
    train_config *cfg = &r->cfg;
    if (atomic_load(&q->data_state) != 1) {
        fail_run(q, r, "the dataset could not be loaded (see above)");
        return;
    }
    if (recipe_load_string(q->recipe_text, q->recipe_path, cfg, err, sizeof err)) {
        fail_run(q, r, err);
        return;
    }
    snprintf(cfg->recipe_path, sizeof cfg->recipe_path, "%s", q->recipe_path);
    cfg->budget = r->budget;
    cfg->seed = q->seed;
    cfg->threads = q->threads;
    cfg->device = q->device;
    ui_runs_eval_cadence(q, cfg);
    cfg->n_plugins = r->n_plugins;
    if (r->n_plugins) memcpy(cfg->plugins, r->plugins, (size_t)r->n_plugins * sizeof *r->plugins);
    if (cli_run_open(&live, cfg, &q->ds, NULL, err, sizeof err)) {
        config_free(cfg);
        fail_run(q, r, err);
        return;
    }
    trainer *t = live.t;
    trainer_add_hook(t, live_hook, r);
    pthread_mutex_lock(&q->mu);
    r->live = live;
    snprintf(r->dir, sizeof r->dir, "%s", live.dir);
    if (r->paused) trainer_pause(t, 1);
    if (r->stop_req || q->quit) trainer_stop(t);
    atomic_store(&r->state, UI_RUN_RUNNING);
    pthread_mutex_unlock(&q->mu);
    ui_log_add(q->log, UI_LOG_INFO, "#%d %s started -> %s", r->id, r->name, live.dir);

    trainer_run(t);

    char werr[1300] = "";
    if (runlog_error(live.log)) snprintf(werr, sizeof werr, "%s", runlog_error(live.log));
    runlog_close(live.log);   /* files complete before anyone is told */
    run_status st = atomic_load(&t->status);
    pthread_mutex_lock(&q->mu);
    r->live.log = NULL;
    if (st == RUN_FAILED) snprintf(r->error, sizeof r->error, "%s", t->error);
    r->finished = 1;
    atomic_store(&r->state, st == RUN_FAILED ? UI_RUN_FAILED : st == RUN_STOPPED ? UI_RUN_STOPPED : UI_RUN_DONE);
    pthread_mutex_unlock(&q->mu);
    /* How it ended is in log.txt, which the log pane shows. */
    if (werr[0]) ui_log_add(q->log, UI_LOG_ERROR, "#%d %s", r->id, werr);
}

static ui_run *next_queued(ui_runs *q)
{
    for (int i = 0; i < q->n; i++)
        if (atomic_load(&q->v[i]->state) == UI_RUN_QUEUED) return q->v[i];
    return NULL;
}

/* Download progress as one line that updates in place in the log pane. */
static int fetch_progress_line(const fetch_progress *p, void *ud)
{
    ui_runs *q = ud;
    char line[UI_LOG_WIDTH];
    fetch_format_progress(p, 1, 100, line, sizeof line);
    if (p->phase == FETCH_RETRY) ui_log_add(q->log, UI_LOG_ERROR, "%s", p->message);   /* why, and the wait */
    else if (p->phase == FETCH_DONE) ui_log_add(q->log, UI_LOG_INFO, "%s", line);
    else ui_log_progress_set(q->log, line);
    pthread_mutex_lock(&q->mu);
    int quit = q->quit;
    pthread_mutex_unlock(&q->mu);
    return quit;   /* cancel on quit: the partial file stays for a later resume */
}

/* Loads the recipe's dataset, downloading it into the cache first when it is nowhere on disk;
 * without it (offline, say) cli_load_data_to falls back to the synthetic set and says so. */
static void load_data(ui_runs *q)
{
    char err[1024], where[1024];
    train_config dcfg;
    config_defaults(&dcfg);
    snprintf(dcfg.dataset, sizeof dcfg.dataset, "%s", q->dataset);
    snprintf(dcfg.data_path, sizeof dcfg.data_path, "%s", q->data_path);
    dcfg.context = q->context;   /* the model's size follows the windows' */
    const data_info *d = data_info_find(q->dataset);
    /* Fetched here rather than in cli_load_data_to, for the live progress line in the log pane. */
    if (!q->data_path[0] && d && d->n_files > 0 && data_locate(d, where, sizeof where) == DATA_NOWHERE) {
        if (cli_offline()) {
            ui_log_add(q->log, UI_LOG_INFO, "%s is not on this machine, and HASTEN_OFFLINE is set", q->dataset);
        } else {
            ui_log_add(q->log, UI_LOG_INFO, "%s is not on this machine: downloading it into the cache", q->dataset);
            fetch_options o;
            fetch_options_init(&o);
            o.progress = fetch_progress_line;
            o.ud = q;
            o.interval = 0.25;
            if (data_fetch(q->dataset, 0, &o, err, sizeof err)) ui_log_add(q->log, UI_LOG_ERROR, "%s", err);
            ui_log_progress_set(q->log, "");
        }
    }
    ui_log_add(q->log, UI_LOG_INFO, "loading %s ...", q->dataset);
    if (cli_load_data_to(&dcfg, &q->ds, note_log, q->log, 0, err, sizeof err)) {
        ui_log_add(q->log, UI_LOG_ERROR, "%s", err);
        atomic_store(&q->data_state, -1);
        return;
    }
    if (q->ds.tokens)
        ui_log_add(q->log, UI_LOG_INFO, "%s: %d training and %d test windows of %d characters, %d distinct (%s)",
                   q->ds.name, q->ds.train.n, q->ds.test.n, q->ds.tokens, q->ds.classes, q->ds.source);
    else
        ui_log_add(q->log, UI_LOG_INFO, "%s: %d training and %d test images (%s)", q->ds.name,
                   q->ds.train.n, q->ds.test.n, q->ds.source);
    atomic_store(&q->data_state, 1);
}

static void *worker_main(void *arg)
{
    ui_runs *q = arg;
    load_data(q);
    pthread_mutex_lock(&q->mu);
    while (!q->quit) {
        ui_run *r = next_queued(q);
        if (!r) {
            pthread_cond_wait(&q->cv, &q->mu);
            continue;
        }
        atomic_store(&r->state, UI_RUN_STARTING);
        int reload = q->reload_plugins;
        q->reload_plugins = 0;
        pthread_mutex_unlock(&q->mu);
        if (reload) cli_catalog_reload();   /* only this thread opens runs, so only it reads it */
        run_one(q, r);
        pthread_mutex_lock(&q->mu);
    }
    pthread_mutex_unlock(&q->mu);
    return NULL;
}

void ui_runs_reload_plugins(ui_runs *q)
{
    pthread_mutex_lock(&q->mu);
    q->reload_plugins = 1;
    pthread_mutex_unlock(&q->mu);
}

int ui_runs_start(ui_runs *q, const train_config *recipe, ui_log *log, char *err, size_t errlen)
{
    memset(q, 0, sizeof *q);
    q->log = log;
    q->next_id = 1;
    snprintf(q->recipe_path, sizeof q->recipe_path, "%s", recipe->recipe_path);
    snprintf(q->dataset, sizeof q->dataset, "%s", recipe->dataset);
    snprintf(q->data_path, sizeof q->data_path, "%s", recipe->data_path);
    q->context = recipe->context;
    snprintf(q->target_metric, sizeof q->target_metric, "%s", recipe->target_metric);
    q->target_value = recipe->target_value;
    q->seed = recipe->seed;
    q->threads = recipe->threads;
    q->device = recipe->device;
    size_t len = 0;
    FILE *f = open_memstream(&q->recipe_text, &len);
    int rc = f ? recipe_write(recipe, f) : -1;
    if (f && fclose(f)) rc = -1;
    if (rc) {
        snprintf(err, errlen, "%s: cannot resolve the recipe", recipe->recipe_path);
        free(q->recipe_text);
        q->recipe_text = NULL;
        return -1;
    }
    pthread_mutex_init(&q->mu, NULL);
    pthread_cond_init(&q->cv, NULL);
    if (pthread_create(&q->worker, NULL, worker_main, q)) {
        snprintf(err, errlen, "cannot start the training thread");
        pthread_mutex_destroy(&q->mu);
        pthread_cond_destroy(&q->cv);
        free(q->recipe_text);
        q->recipe_text = NULL;
        return -1;
    }
    q->started = 1;
    return 0;
}

/* ---- the list (UI thread) ------------------------------------------------------------------- */

static ui_run *new_run(ui_runs *q)
{
    if (q->n == q->cap) {
        int cap = q->cap ? q->cap * 2 : 16;
        ui_run **v = realloc(q->v, (size_t)cap * sizeof *v);
        if (!v) return NULL;
        q->v = v;
        q->cap = cap;
    }
    ui_run *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    r->target_idx = -1;
    snprintf(r->target_metric, sizeof r->target_metric, "%s", q->target_metric);
    r->target_value = q->target_value;
    return r;
}

static void push_run(ui_runs *q, ui_run *r)
{
    pthread_mutex_lock(&q->mu);
    r->id = q->next_id++;
    q->v[q->n++] = r;
    pthread_cond_signal(&q->cv);
    pthread_mutex_unlock(&q->mu);
}

budget_spec ui_runs_scaled_budget(budget_spec full, double fraction)
{
    budget_spec b = full;
    b.amount *= fraction;
    if (b.unit == BUDGET_EPOCHS) b.amount = fmax(0.01, round(b.amount * 100) / 100);
    else if (b.unit != BUDGET_SECONDS) b.amount = fmax(1, ceil(b.amount));
    return b;
}

ui_run *ui_runs_queue(ui_runs *q, const plugin_spec *specs, int n, budget_spec budget, const char *label)
{
    ui_run *r = new_run(q);
    if (!r) return NULL;
    r->plugins = n ? malloc((size_t)n * sizeof *specs) : NULL;
    if (n && !r->plugins) {
        free(r);
        return NULL;
    }
    if (n) memcpy(r->plugins, specs, (size_t)n * sizeof *specs);
    r->n_plugins = n;
    r->budget = budget;
    if (label) snprintf(r->name, sizeof r->name, "%s", label);
    else ui_run_name(specs, n, r->name, sizeof r->name);
    atomic_store(&r->state, UI_RUN_QUEUED);
    push_run(q, r);
    return r;
}

ui_run *ui_runs_add_folder(ui_runs *q, const char *dir, char *err, size_t errlen)
{
    ui_run *r = new_run(q);
    if (!r) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (ui_history_read(dir, r, err, errlen)) {
        ui_run_free(r);
        return NULL;
    }
    push_run(q, r);
    return r;
}

static void pull_series(ui_run *r, trainer *t)
{
    trainer_record buf[512];
    int got;
    do {
        got = trainer_series(t, r->n, buf, 512);
        if (ui_run_append(r, buf, got)) break;
    } while (got == 512);
    r->n_metric_names = trainer_metric_names(t, r->metric_names, TRAINER_MAX_EXTRA);
}

/* Shows the lines the run's log.txt gained since the last look (plugin ctx:log lines among
 * them), without the date. */
static void tail_log(ui_runs *q, ui_run *r)
{
    char path[1200], *line = NULL;
    size_t cap = 0;
    ssize_t len;
    snprintf(path, sizeof path, "%s/log.txt", r->dir);
    FILE *f = fopen(path, "r");
    if (!f) return;
    if (fseek(f, r->log_offset, SEEK_SET) == 0)
        while ((len = getline(&line, &cap, f)) > 0 && line[len - 1] == '\n') {   /* partial: read it next time */
            r->log_offset = ftell(f);
            line[len - 1] = 0;
            if (!(len > 20 && line[4] == '-' && line[10] == ' ')) continue;   /* a message's later lines (a Lua
                                                                               * traceback): log.txt keeps them */
            const char *text = line + 11;
            int err = strstr(text, "failed") || strstr(text, "error");
            ui_log_add(q->log, err ? UI_LOG_ERROR : UI_LOG_INFO, "#%d %s", r->id, text);   /* cut to the pane's width */
        }
    free(line);
    fclose(f);
}

/* Under q->mu: takes r off the list; returns 1 when it was there. */
static int unlist_locked(ui_runs *q, ui_run *r)
{
    for (int i = 0; i < q->n; i++)
        if (q->v[i] == r) {
            memmove(q->v + i, q->v + i + 1, (size_t)(q->n - i - 1) * sizeof *q->v);
            q->n--;
            return 1;
        }
    return 0;
}

static void forget(ui_runs *q, ui_run *r)
{
    if (q->baseline == r) q->baseline = NULL;
    ui_run_free(r);
}

void ui_runs_update(ui_runs *q)
{
    double now = trainer_now();
    int tail = now >= q->next_tail;
    if (tail) q->next_tail = now + TAIL_PERIOD;
    for (int i = 0; i < q->n; i++) {
        ui_run *r = q->v[i];
        pthread_mutex_lock(&q->mu);
        trainer *t = r->live.t;
        int finished = r->finished;
        pthread_mutex_unlock(&q->mu);
        if (t) {
            pull_series(r, t);
            for (int p = 0; p < PHASE_COUNT; p++) r->phase[p] = atomic_load_explicit(&r->live_phase[p], memory_order_relaxed);
            r->progress = atomic_load_explicit(&r->live_progress, memory_order_relaxed);
            r->total_steps = atomic_load_explicit(&r->live_total_steps, memory_order_relaxed);
        }
        if ((t && tail) || (finished && r->dir[0])) tail_log(q, r);
        if (!finished) continue;
        if (t) {   /* the worker is done with it: final numbers, then let go of the trainer */
            memcpy(r->phase, t->phase, sizeof r->phase);
            r->progress = t->progress;
            pthread_mutex_lock(&q->mu);
            cli_run_close(&r->live);
            config_free(&r->cfg);
            pthread_mutex_unlock(&q->mu);
        }
        r->finished = 0;
        if (r->remove_req) {
            pthread_mutex_lock(&q->mu);
            unlist_locked(q, r);
            pthread_mutex_unlock(&q->mu);
            forget(q, r);
            i--;
        }
    }
}

ui_run *ui_runs_active(ui_runs *q)
{
    for (int i = 0; i < q->n; i++) {
        int s = atomic_load(&q->v[i]->state);
        if (s == UI_RUN_STARTING || s == UI_RUN_RUNNING) return q->v[i];
    }
    return NULL;
}

int ui_runs_count(ui_runs *q, ui_run_state state)
{
    int n = 0;
    for (int i = 0; i < q->n; i++) n += atomic_load(&q->v[i]->state) == (int)state;
    return n;
}

void ui_runs_pause(ui_runs *q, int paused)
{
    ui_run *r = ui_runs_active(q);
    if (!r) return;
    pthread_mutex_lock(&q->mu);
    r->paused = paused;
    if (r->live.t) trainer_pause(r->live.t, paused);
    pthread_mutex_unlock(&q->mu);
}

/* Under q->mu: asks a starting or running run to stop; returns 1 when it was training. */
static int stop_locked(ui_run *r)
{
    int s = atomic_load(&r->state);
    if (s != UI_RUN_STARTING && s != UI_RUN_RUNNING) return 0;
    r->stop_req = 1;
    if (r->live.t) trainer_stop(r->live.t);
    return 1;
}

void ui_runs_stop(ui_runs *q, ui_run *r)
{
    pthread_mutex_lock(&q->mu);
    int training = stop_locked(r), queued = atomic_load(&r->state) == UI_RUN_QUEUED;
    pthread_mutex_unlock(&q->mu);
    if (!training && queued) ui_runs_remove(q, r);
}

void ui_runs_remove(ui_runs *q, ui_run *r)
{
    /* Decided under the lock: the worker may take a queued run at any moment. */
    pthread_mutex_lock(&q->mu);
    int busy = stop_locked(r) || r->finished, gone = 0;
    if (busy) r->remove_req = 1;
    else gone = unlist_locked(q, r);
    pthread_mutex_unlock(&q->mu);
    if (gone) forget(q, r);
}

void ui_runs_shutdown(ui_runs *q)
{
    if (!q->started) return;
    pthread_mutex_lock(&q->mu);
    q->quit = 1;
    for (int i = 0; i < q->n; i++) stop_locked(q->v[i]);
    pthread_cond_broadcast(&q->cv);
    pthread_mutex_unlock(&q->mu);
    pthread_join(q->worker, NULL);
    q->started = 0;
    ui_runs_update(q);   /* harvest the stopped run: its files are complete already */
    for (int i = 0; i < q->n; i++) ui_run_free(q->v[i]);
    free(q->v);
    q->v = NULL;
    q->n = 0;
    q->baseline = NULL;
    data_set_free(&q->ds);
    free(q->recipe_text);
    q->recipe_text = NULL;
    pthread_mutex_destroy(&q->mu);
    pthread_cond_destroy(&q->cv);
}
